"""The trap regime of Figure 1: closed forms vs enumeration, multiset entropies vs aent on the expanded arms,
the policy-gradient pieces vs references, the batched trainer vs the closed-form fixed point, and the paired test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aent import EntropyConfig, clamped_entropy, entropy
from toy.exact import bandit_gibbs
from toy.experiments.paired import edge_status, paired_test, t_quantile
from toy.pg import adam_init, adam_update, baseline_advantages, inverse_cdf
from toy.regime import TrapRegime, aent_fixed_point, derive_ent_coef, gibbs_point, min_kept
from toy.trap_bandit import TrapBanditConfig, kept_counts, make_layout, multiset_entropy, train_trap_bandit


def _dense_rewards(n, m, traps, r_t):
    r = torch.zeros(n, dtype=torch.float64)
    r[:m] = 1.0
    r[m : m + traps] = r_t
    return r


# ------------------------------------------------------------------------------------------------ closed form
@given(n=st.integers(20, 3000), m=st.integers(1, 8), traps=st.integers(1, 8), r_t=st.floats(0.05, 0.95),
       lam=st.floats(0.03, 2.0), frac=st.floats(0.0, 1.0))
@settings(max_examples=60, deadline=None)
def test_gibbs_point_matches_enumerated_gibbs(n, m, traps, r_t, lam, frac):
    reg = TrapRegime(n_items=n, n_traps=traps, trap_reward=r_t)
    n_kept = m + traps + 1 + int(frac * (n - m - traps - 1))
    r = _dense_rewards(n, m, traps, r_t)
    p_clamp = (n - n_kept) / n  # floor(p n) = n - n_kept exactly up to rounding
    p = bandit_gibbs(r, lam, clamp_p=min(p_clamp + 1e-12, 0.999999)) if n_kept < n else bandit_gibbs(r, lam)
    assert int((p > 0).sum()) == n_kept
    got = gibbs_point(reg, m, lam, n_kept)
    nz = p[p > 0]
    assert got["value"] == pytest.approx(float((p * r).sum()), rel=1e-9, abs=1e-12)
    assert got["p_opt"] == pytest.approx(float(p[:m].sum()), rel=1e-9, abs=1e-12)
    assert got["entropy"] == pytest.approx(float(-(nz * nz.log()).sum()), rel=1e-7, abs=1e-9)


def test_derived_lambda_puts_the_crossover_between_the_two_m():
    reg = TrapRegime()
    lam = derive_ent_coef(reg, 5, 10)
    assert gibbs_point(reg, 5, lam)["value"] < reg.trap_reward < gibbs_point(reg, 10, lam)["value"]
    # the crossover itself: V = r_t at m_c = sqrt(50) (the closed form is smooth in m)
    u = 1 / lam
    mc = math.sqrt(50)
    z = mc + 10 * math.exp(-0.4 * u) + (reg.n_items - mc - 10) * math.exp(-u)
    assert (mc + 0.6 * 10 * math.exp(-0.4 * u)) / z == pytest.approx(0.6, abs=1e-9)


def test_min_kept_is_the_edge_boundary():
    reg = TrapRegime()
    lam = derive_ent_coef(reg, 5, 10)
    k = min_kept(reg, 1, lam)
    assert gibbs_point(reg, 1, lam, k)["value"] > 0.6 >= gibbs_point(reg, 1, lam, k + 1)["value"]


def test_aent_fixed_point_in_band_or_at_edge():
    reg = TrapRegime()
    lam = derive_ent_coef(reg, 5, 10)
    box = (lam / 4, 4 * lam)
    h0 = gibbs_point(reg, 3, lam, 1000)["entropy"]
    inside = aent_fixed_point(reg, 3, 1000, lam, (h0 - 0.1, h0 + 0.1), box)
    assert inside["ent_coef"] == lam
    lo, hi = inside["value_range"]
    assert lo < inside["value"] < hi  # larger lambda, more entropy, lower V
    above = aent_fixed_point(reg, 3, 1000, lam, (h0 + 0.3, h0 + 0.5), box)
    assert above["ent_coef"] > lam and above["entropy"] == pytest.approx(h0 + 0.3, abs=1e-6)
    capped = aent_fixed_point(reg, 3, 1000, lam, (50.0, 60.0), box)
    assert capped["ent_coef"] == 4 * lam and capped["value_range"][0] == capped["value_range"][1]


@pytest.mark.parametrize(("kwargs", "field"), [({"n_traps": 0}, "n_traps"), ({"trap_reward": 1.0}, "trap_reward"),
                                               ({"n_items": 5, "n_traps": 4}, "n_items")])
def test_regime_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrapRegime(**kwargs)


# ------------------------------------------------------------------------------------------- multiset entropy
@given(st.lists(st.integers(1, 5), min_size=2, max_size=12), st.integers(0, 10_000), st.floats(0.0, 0.95))
@settings(max_examples=60, deadline=None)
def test_multiset_entropies_equal_aent_on_the_expanded_arms(counts, seed, p):
    gen = torch.Generator().manual_seed(seed)
    n = torch.tensor(counts, dtype=torch.float32)
    z = 2 * torch.randn(2, len(counts), generator=gen)
    dense = z.repeat_interleave(n.long(), dim=1)
    assert multiset_entropy(z, n).tolist() == pytest.approx(entropy(dense).tolist(), abs=1e-5)
    kept = kept_counts(z, n, p)
    assert kept.sum(1).tolist() == [n.sum().item() - math.floor(p * n.sum().item())] * 2
    assert multiset_entropy(z, kept).tolist() == pytest.approx(clamped_entropy(dense, p).tolist(), abs=1e-5)
    # gradient per entry = sum over its arms of the dense gradient
    zz, dd = z.clone().requires_grad_(True), dense.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(multiset_entropy(zz, kept).sum(), zz)
    (gd,) = torch.autograd.grad(clamped_entropy(dd, p).sum(), dd)
    idx = torch.arange(len(counts)).repeat_interleave(n.long())
    summed = torch.zeros_like(z).index_add_(1, idx, gd)
    assert g.tolist() == [pytest.approx(row, abs=1e-5) for row in summed.tolist()]


# ---------------------------------------------------------------------------------------------- pg pieces
def test_rloo_is_unbiased_and_mean_is_scaled_by_enumeration():
    # 3 arms, G = 2: E[(1/G) sum_j A_j grad log pi(a_j)] over all G-tuples == dV/dz (rloo), (G-1)/G dV/dz (mean)
    z = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    r = torch.tensor([1.0, 0.2, 0.6], dtype=torch.float64)
    pi = torch.softmax(z, 0)
    exact = pi * (r - (pi * r).sum())
    for baseline, scale in (("rloo", 1.0), ("mean", 0.5)):
        total = torch.zeros(3, dtype=torch.float64)
        for a in range(3):
            for b in range(3):
                adv = baseline_advantages(r[[a, b]][None], baseline)[0]
                g = sum(adv[j] * (torch.eye(3, dtype=torch.float64)[x] - pi) for j, x in enumerate((a, b))) / 2
                total += pi[a] * pi[b] * g
        assert torch.allclose(total, scale * exact, atol=1e-12)


def test_inverse_cdf_frequencies_and_zero_probability():
    p = torch.tensor([[0.2, 0.0, 0.5, 0.3, 0.0]])
    u = torch.rand(1, 200_000, generator=torch.Generator().manual_seed(0))
    idx = inverse_cdf(p, u)[0]
    freq = torch.bincount(idx, minlength=5).double() / idx.numel()
    assert freq[1] == 0 and freq[4] == 0
    assert freq.tolist() == pytest.approx(p[0].tolist(), abs=5e-3)
    assert inverse_cdf(p, torch.tensor([[1 - 1e-12]])).item() == 3


def test_adam_matches_torch_adam_and_lazy_rows():
    gen = torch.Generator().manual_seed(0)
    x, ref = torch.randn(4, 3, generator=gen), None
    ref = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.1, eps=1e-12)
    state = adam_init(x)
    for _ in range(5):
        g = torch.randn(4, 3, generator=gen)
        state = adam_update(x, g, state, 0.1)
        ref.grad = -g  # torch minimises
        opt.step()
    assert torch.allclose(x, ref.detach(), atol=1e-6)
    y = torch.zeros(4, 3)
    st_y = adam_update(y, torch.ones(2, 3), adam_init(y), 0.1, rows=torch.tensor([0, 2]))
    assert y[1].abs().sum() == 0 and y[3].abs().sum() == 0 and torch.allclose(y[0], torch.full((3,), 0.1))
    assert st_y.step == 1


# -------------------------------------------------------------------------------------------------- trainer
SMALL = TrapBanditConfig(n_arms=3000, n_individual=1000, tail_group=100, opt_rank_lo=200, opt_rank_hi=900,
                         steps=300, lr=0.05, record_every=50)


def test_exact_training_reaches_the_closed_form_fixed_point():
    lam = 0.1
    reg = TrapRegime(n_items=3000, n_traps=10, trap_reward=0.6)
    rows = [(0, 1), (0, 5), (1, 5)]
    arms = [EntropyConfig(method="entropy_bonus", ent_coef=lam),
            EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=0.9),
            EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=0.9)]
    cfg = SMALL.__class__(**{**SMALL.__dict__, "estimator": "exact"})
    run = train_trap_bandit(cfg, make_layout(cfg, rows), [s for s, _ in rows], arms)
    want = [gibbs_point(reg, 1, lam)["value"], gibbs_point(reg, 5, lam, 300)["value"],
            gibbs_point(reg, 5, lam, 300)["value"]]
    assert run.value[-1].tolist() == pytest.approx(want, abs=2e-3)


def test_layout_prior_is_shared_across_m_and_optima_are_nested():
    lay = make_layout(SMALL, [(3, 1), (3, 5), (4, 5)])
    assert torch.equal(lay.logits0[0], lay.logits0[1]) and not torch.equal(lay.logits0[1], lay.logits0[2])
    assert bool((lay.optimal[0] <= lay.optimal[1]).all()) and lay.optimal.sum(1).tolist() == [1, 5, 5]
    assert lay.counts.sum() == 3000 and bool(lay.trap[:, :10].all())
    ranks = lay.optimal[1].nonzero().squeeze(1)
    assert bool(((ranks >= 199) & (ranks <= 899)).all())


def test_common_random_numbers_and_same_seed_same_run():
    cfg = SMALL.__class__(**{**SMALL.__dict__, "steps": 30, "record_every": 10})
    rows = [(0, 3), (0, 3), (1, 3)]
    none = EntropyConfig(method="none")
    a = train_trap_bandit(cfg, make_layout(cfg, rows), [0, 0, 1], [none] * 3)
    b = train_trap_bandit(cfg, make_layout(cfg, rows), [0, 0, 1], [none] * 3)
    assert torch.equal(a.value, b.value)
    assert torch.equal(a.value[:, 0], a.value[:, 1]) and not torch.equal(a.value[:, 0], a.value[:, 2])


def test_trainer_errors_name_the_input():
    with pytest.raises(ValueError, match="tail_group"):
        TrapBanditConfig(n_arms=3000, n_individual=1000, tail_group=300)
    with pytest.raises(ValueError, match="ecfgs"):
        train_trap_bandit(SMALL, make_layout(SMALL, [(0, 1)]), [0], [EntropyConfig(method="sac")])


# ------------------------------------------------------------------------------------------------ paired test
def test_t_quantile_against_tables():
    assert t_quantile(0.975, 31) == pytest.approx(2.0395, abs=2e-3)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=3e-3)
    assert t_quantile(0.975, 10_000) == pytest.approx(1.95996, abs=1e-3)


def test_paired_test_exact_cases():
    # all 6 differences equal to +1: only the identity and no other flip reach |mean| = 1 ... except all -1
    t = paired_test([1.0] * 6, [0.0] * 6)
    assert t["mean"] == 1 and t["p"] == pytest.approx(2 / 64, abs=0.01)
    same = paired_test(np.arange(10.0), np.arange(10.0))
    assert same["p"] == 1.0 and edge_status(same) == "no edge"
    noisy = paired_test([0.1, -0.1] * 5, [0.0] * 10)
    assert edge_status(noisy) == "undecided"


@given(st.integers(0, 10_000), st.floats(0.0, 0.9), st.floats(0.0, 3.0))
@settings(max_examples=50, deadline=None)
def test_kept_set_reuse_is_exact(seed, p, noise):
    """Whenever the cached kept counts pass the check they equal a fresh kept_counts (so skipping the sort is exact)."""
    from toy.trap_bandit import _still_kept

    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor([1.0] * 6 + [3.0] * 4)
    z = torch.randn(3, 10, generator=gen)
    kept = kept_counts(z, counts, p)
    z2 = z + noise * torch.randn(3, 10, generator=gen)
    ok = _still_kept(z2, counts, kept)
    fresh = kept_counts(z2, counts, p)
    for i in ok.nonzero().squeeze(1).tolist():
        assert multiset_entropy(z2[i], kept[i]) == pytest.approx(float(multiset_entropy(z2[i], fresh[i])), abs=1e-5)
    assert bool(_still_kept(z, counts, kept).all())


# ------------------------------------------------------------------------------------------------------ tree
@pytest.mark.parametrize("clamp_p", [0.0, 0.34])
@pytest.mark.parametrize("baseline", ["rloo", "mean"])
def test_tree_sampled_gradient_is_unbiased_by_enumeration(clamp_p, baseline):
    """E over all G-tuples of sequences of sampled_gradient == gradient of V + lambda sum_s d(s) H~_p(s) (exact, by
    autograd through the enumerated tree); the plain mean baseline scales the score-function part by (G-1)/G."""
    from toy.exact_tree import sequence_logprobs, visitation
    from toy.trap_tree import sampled_gradient

    vocab, horizon, g, lam = 3, 2, 2, 0.3
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(1 + vocab, vocab, generator=gen, dtype=torch.float64)
    r = torch.rand(vocab**horizon, generator=gen, dtype=torch.float64)
    method = "entropy_bonus" if clamp_p == 0 else "clamped_bonus"
    ecfg = EntropyConfig(method=method, ent_coef=lam, clamp_p=clamp_p)
    # reference: autograd of the enumerated objective
    zz = z.clone().requires_grad_(True)
    value = (sequence_logprobs(zz, horizon).exp() * r).sum()
    h_state = clamped_entropy(zz.float(), clamp_p).double()
    d = visitation(zz, horizon)
    # score-function part (through P(y) and d(s)) and direct part (through each state's own entropy)
    (score,) = torch.autograd.grad(value + lam * (d * h_state.detach()).sum(), zz, retain_graph=True)
    (direct,) = torch.autograd.grad(lam * (d.detach() * h_state).sum(), zz)
    want = score + direct if baseline == "rloo" else (g - 1) / g * score + direct
    # expectation of the sampled gradient over all G-tuples
    p_seq = sequence_logprobs(z, horizon).exp()
    got = torch.zeros_like(z)
    for tup in np.ndindex(*(vocab**horizon,) * g):
        seqs = torch.tensor([[s // vocab, s % vocab] for s in tup])
        deep = z[1 + seqs[:, 0]].float()[None, :, None, :]  # (1, G, 1, A)
        (g_root, g_deep), _, _ = sampled_gradient(z[0].float()[None], deep, seqs[None], r[list(tup)].float()[None],
                                                  torch.tensor([lam]), [ecfg], baseline)
        step = torch.zeros_like(z)
        step[0] += g_root[0].double()
        step.index_add_(0, 1 + seqs[:, 0], g_deep[0, :, 0].double())
        got += float(np.prod([p_seq[s] for s in tup])) * step
    assert torch.allclose(got, want, atol=2e-6)

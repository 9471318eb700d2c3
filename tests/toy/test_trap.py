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
                         steps=300, record_every=50)


def test_exact_plain_pg_reaches_the_closed_form_fixed_point():
    """From a flat prior, exact plain gradient steps end at the Gibbs optimum of V + lambda H_kind (closed form; the
    removed arms of the clamped bonus lose their mass only like 1/t, hence the 10,000 steps)."""
    lam, n = 0.2, 300
    cfg = TrapBanditConfig(n_arms=n, n_individual=100, tail_group=10, opt_rank_lo=20, opt_rank_hi=90, init_scale=0.3,
                           estimator="exact", lr=16.0, steps=10_000, record_every=10_000)
    reg = TrapRegime(n_items=n, n_traps=10, trap_reward=0.6)
    rows = [(0, 1), (0, 5), (1, 5)]
    arms = [EntropyConfig(method="entropy_bonus", ent_coef=lam),
            EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=0.9),
            EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=0.9)]
    run = train_trap_bandit(cfg, make_layout(cfg, rows), [s for s, _ in rows], arms)
    want = [gibbs_point(reg, 1, lam)["value"], gibbs_point(reg, 5, lam, 30)["value"],
            gibbs_point(reg, 5, lam, 30)["value"]]
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
    bonus = EntropyConfig(method="entropy_bonus", ent_coef=0.1)
    a = train_trap_bandit(cfg, make_layout(cfg, rows), [0, 0, 1], [bonus] * 3)
    b = train_trap_bandit(cfg, make_layout(cfg, rows), [0, 0, 1], [bonus] * 3)
    assert torch.equal(a.value, b.value)
    assert torch.equal(a.value[:, 0], a.value[:, 1]) and not torch.equal(a.value[:, 0], a.value[:, 2])


def test_trainer_errors_name_the_input():
    with pytest.raises(ValueError, match="tail_group"):
        TrapBanditConfig(n_arms=3000, n_individual=1000, tail_group=300)
    with pytest.raises(ValueError, match="ecfgs"):
        train_trap_bandit(SMALL, make_layout(SMALL, [(0, 1)]), [0], [EntropyConfig(method="pos_reweight")])


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


# ------------------------------------------------------------------------------- sampled arms, no pooling
def _state(cfg, rows, seed=0):
    """The trainer's state for ``rows`` plus an ``origin`` attribute (the starting entry of every arm)."""
    from toy.trap_bandit import _init_state

    st = _init_state(make_layout(cfg, rows))
    st["origin"] = torch.arange(st["z"].shape[1], dtype=torch.float64).expand_as(st["z"]).clone()
    st["attrs"] = [*st["attrs"], "origin"]
    return st


def _expand(st, row):
    """(arm logits, arm rewards) of one row, sorted by (reward, logit): the multiset of its N arms."""
    used = int(st["used"][row])
    n = st["n"][row, :used].round().long()
    z = st["z"][row, :used].repeat_interleave(n)
    r = st["r"][row, :used].repeat_interleave(n)
    key = torch.argsort(z + 100.0 * r)
    return z[key], r[key]


def _dense_clamped_entropy(z, p):
    """Reference in float64: drop the floor(p N) smallest logits (torch.topk keeps the rest), entropy of the rest."""
    keep = torch.topk(z, len(z) - math.floor(p * len(z))).indices
    logp = torch.log_softmax(z[keep], -1)
    return -(logp.exp() * logp).sum()


TINY = TrapBanditConfig(n_arms=80, n_traps=3, n_individual=20, tail_group=20, opt_rank_lo=5, opt_rank_hi=15,
                        init_scale=1.0, group_size=6, lr=6.0)


@pytest.mark.parametrize("method,clamp_p", [("none", 0.0), ("entropy_bonus", 0.0), ("clamped_bonus", 0.3),
                                            ("clamped_bonus", 0.9)])
def test_sparse_sampled_step_equals_the_dense_step_on_all_arms(method, clamp_p):
    """One step on tied entries (drawn arms split off, the clamp threshold split) == the plain PG step on all N
    arms with autograd through a float64 top-k clamped entropy, for every arm (as multisets), for 12 steps."""
    from toy.trap_bandit import _draw, _entropy_step, _groups, _pg_term

    lam = 0.3
    ecfg = EntropyConfig(method=method, ent_coef=lam, clamp_p=clamp_p)
    st = _state(TINY, [(0, 2), (1, 2)])
    groups, coefs = _groups([ecfg] * 2), torch.full((2,), lam if method != "none" else 0.0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for step in range(12):
        st["u_member"] = torch.rand(2, TINY.group_size, generator=gen, dtype=torch.float64)
        before = [_expand(st, i) for i in range(2)]
        actions = _draw(st, torch.rand(2, TINY.group_size, generator=gen, dtype=torch.float64))
        for i in range(2):  # splitting changes no arm
            assert torch.equal(_expand(st, i)[0], before[i][0])
        # dense reference on the split state: one entry per arm (the drawn arms are count-1 entries)
        dense = []
        for i in range(2):
            used = int(st["used"][i])
            n = st["n"][i, :used].round().long()
            owner = torch.arange(used).repeat_interleave(n)
            z = st["z"][i, :used].repeat_interleave(n).clone().requires_grad_(True)
            r = st["r"][i, :used].repeat_interleave(n)
            pos = torch.stack([(owner == a).nonzero()[0, 0] for a in actions[i].tolist()])
            adv = baseline_advantages(r[pos][None], TINY.baseline)[0]
            ent = 0.0 if method == "none" else _dense_clamped_entropy(z, clamp_p)
            obj = (adv * torch.log_softmax(z, -1)[pos]).sum() / TINY.group_size + lam * ent
            (g,) = torch.autograd.grad(obj, z)
            new = (z + TINY.lr * g).detach()
            key = torch.argsort(new + 100.0 * r)
            dense.append(new[key])
        ent_grad, _ = _entropy_step(st, groups, coefs, fresh=step == 0)
        st["z"] += TINY.lr * (_pg_term(TINY, st, actions) + ent_grad)
        for i in range(2):
            assert torch.allclose(_expand(st, i)[0], dense[i], atol=1e-10, rtol=0)


def test_expected_sampled_update_is_the_exact_gradient():
    """Mean over 40,000 independent draws of the sparse REINFORCE term (aggregated per starting entry) == the exact
    term pi (r - V) per arm times the entry's count, within 5 standard errors per entry (RLOO is unbiased)."""
    from toy.trap_bandit import _draw, _pg_term

    k = 40_000
    st = _state(TINY, [(0, 2)] * k)
    exact = _pg_term(TINY, st, None)[0] * st["n"][0]
    gen = torch.Generator().manual_seed(3)
    st["u_member"] = torch.rand(k, TINY.group_size, generator=gen, dtype=torch.float64)
    actions = _draw(st, torch.rand(k, TINY.group_size, generator=gen, dtype=torch.float64))
    pg = _pg_term(TINY, st, actions)
    per_entry = torch.zeros(k, len(exact), dtype=torch.float64).scatter_add_(1, st["origin"].long(), pg)
    mean, se = per_entry.mean(0), per_entry.std(0) / math.sqrt(k)
    assert bool(((mean - exact).abs() <= 5 * se + 1e-12).all()), (mean - exact) / se


@given(st.integers(0, 10_000), st.floats(0.0, 0.95))
@settings(max_examples=40, deadline=None)
def test_entropy_grad_is_the_per_arm_autograd_gradient(seed, p):
    """toy.multiset.entropy_grad (closed form) == autograd of aent.clamped_entropy on the expanded arms, per arm."""
    from toy.multiset import entropy_grad

    gen = torch.Generator().manual_seed(seed)
    n = torch.tensor([1.0, 1.0, 2.0, 3.0, 1.0, 4.0], dtype=torch.float64)
    z = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    kept = kept_counts(z, n, p)
    kept_whole = (kept == n.expand_as(kept)) | (kept == 0)  # compare on entries the threshold does not cut
    g, h = entropy_grad(z, kept)
    dense = z.repeat_interleave(n.long(), dim=1).requires_grad_(True)
    (gd,) = torch.autograd.grad(clamped_entropy(dense, p).sum(), dense)
    first = torch.cumsum(n.long(), 0) - n.long()  # one arm of each entry
    assert h.tolist() == pytest.approx(clamped_entropy(dense.detach(), p).tolist(), abs=1e-6)
    assert torch.allclose(g[kept_whole], gd[:, first][kept_whole].double(), atol=1e-6)

"""Exact toy quantities (toy.exact*) against independent references.

References: plain-numpy re-implementations that walk every sequence prefix by prefix, torch autograd of the
enumerated formulas, central finite differences, the closed form lambda logsumexp(R / lambda), a numerical
maximiser (Adam on V + lambda H), brute force over subsets, and Monte-Carlo estimates from numpy sampling.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aent.entropy import clamped_entropy
from toy import exact
from toy.tasks import TreeTask

F64 = torch.float64


# ------------------------------------------------------------------------------------------ references
def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_sequences(vocab: int, horizon: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(vocab), repeat=horizon))


def np_state(prefix, vocab: int) -> int:
    """Heap index of a prefix, written independently of toy.exact_tree.prefix_index."""
    level = len(prefix)
    start = (vocab**level - 1) // (vocab - 1)
    offset = 0
    for a in prefix:
        offset = offset * vocab + a
    return start + offset


def np_seq_probs(z: np.ndarray, horizon: int) -> np.ndarray:
    """P(y) = prod_t pi(y_t | y_<t) for every y in C order, one prefix at a time."""
    vocab = z.shape[1]
    pi = np_softmax(z)
    return np.array([math.prod(pi[np_state(y[:t], vocab), y[t]] for t in range(horizon))
                     for y in np_sequences(vocab, horizon)])


def np_clamped_entropy(z: np.ndarray, clamp_p: float) -> np.ndarray:
    """Direct formula: sort, drop the floor(p A) smallest logits, entropy of the renormalised softmax."""
    k = min(int(math.floor(clamp_p * z.shape[-1])), z.shape[-1] - 1)
    kept = np.sort(z, -1)[..., k:]
    p = np_softmax(kept)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


@st.composite
def trees(draw, max_seq: int = 64):
    """(logits (n_states, A) float64 tensor, rewards (A**H,) in [0, 1], vocab, horizon)."""
    vocab = draw(st.integers(2, 4))
    horizon = draw(st.integers(1, 3))
    if vocab**horizon > max_seq:
        horizon = 2
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0, 8.0]))
    z = rng.normal(size=(exact.tree_size(vocab, horizon), vocab)) * scale
    r = rng.uniform(size=vocab**horizon)
    if draw(st.booleans()):  # sparse 0/1 rewards with a few optimal sequences
        r = (rng.uniform(size=vocab**horizon) < 0.2).astype(float)
        r[rng.integers(vocab**horizon)] = 1.0
    return torch.tensor(z), r, vocab, horizon


# ------------------------------------------------------------------------------------- indexing / values
def test_prefix_index_matches_level_order() -> None:
    for vocab, horizon in [(2, 3), (3, 2), (4, 3)]:
        starts = exact.level_starts(vocab, horizon)
        assert starts[-1] == exact.tree_size(vocab, horizon) == sum(vocab**t for t in range(horizon))
        for t in range(horizon):
            for prefix in itertools.product(range(vocab), repeat=t):
                assert exact.prefix_index(prefix, vocab) == np_state(prefix, vocab)
        seqs = torch.tensor(np_sequences(vocab, horizon))
        assert exact.sequence_index(seqs, vocab).tolist() == list(range(vocab**horizon))


@given(trees())
def test_sequence_probs_value_entropy_match_numpy_walk(tree) -> None:
    z, r, vocab, horizon = tree
    p_ref = np_seq_probs(z.numpy(), horizon)
    assert np.allclose(exact.sequence_logprobs(z, horizon).exp().numpy(), p_ref, atol=1e-12)
    assert math.isclose(float(exact.trajectory_value(z, r)), float(p_ref @ r), abs_tol=1e-12)
    h_ref = float(-(p_ref * np.log(p_ref)).sum())
    assert math.isclose(float(exact.trajectory_entropy(z, horizon)), h_ref, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(exact.state_values(z, r)[0]), float(p_ref @ r), abs_tol=1e-12)


@given(trees())
def test_trajectory_entropy_equals_chain_rule_sum(tree) -> None:
    """Chain rule: H(P) = sum_s d(s) H(pi(.|s)), with d(s) recomputed here as the numpy prefix probability."""
    z, _, vocab, horizon = tree
    pi = np_softmax(z.numpy())
    total = 0.0
    for t in range(horizon):
        for prefix in itertools.product(range(vocab), repeat=t):
            d = math.prod(pi[np_state(prefix[:i], vocab), prefix[i]] for i in range(t))
            row = pi[np_state(prefix, vocab)]
            total += d * float(-(row * np.log(row)).sum())
    assert math.isclose(float(exact.trajectory_entropy(z, horizon)), total, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(exact.visitation_entropy(z, horizon)), total, rel_tol=1e-9, abs_tol=1e-12)


# ------------------------------------------------------------------------------------------- gradients
@given(trees())
def test_value_grad_matches_autograd(tree) -> None:
    """Policy-gradient-theorem closed form == autograd of sum_y P(y) R(y) written out here."""
    z, r, vocab, horizon = tree
    zz = z.clone().requires_grad_(True)
    logp = torch.log_softmax(zz, -1)
    lp = torch.zeros(1, dtype=F64)
    for t in range(horizon):
        lo, hi = (vocab**t - 1) // (vocab - 1), (vocab ** (t + 1) - 1) // (vocab - 1)
        lp = (lp[:, None] + logp[lo:hi]).reshape(-1)
    (ref,) = torch.autograd.grad((lp.exp() * torch.tensor(r)).sum(), zz)
    assert torch.allclose(exact.value_grad(z, r), ref, atol=1e-12)


@given(trees())
def test_entropy_grad_matches_autograd(tree) -> None:
    z, _, _, horizon = tree
    zz = z.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(exact.trajectory_entropy(zz, horizon), zz)
    assert torch.allclose(exact.entropy_grad(z, horizon), ref, atol=1e-10)


def test_value_and_entropy_grad_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    vocab, horizon, eps = 3, 3, 1e-6
    z = torch.tensor(rng.normal(size=(exact.tree_size(vocab, horizon), vocab)) * 2)
    r = rng.uniform(size=vocab**horizon)

    def value(x):
        return float(np_seq_probs(x.numpy(), horizon) @ r)

    def ent(x):
        p = np_seq_probs(x.numpy(), horizon)
        return float(-(p * np.log(p)).sum())

    gv, gh = exact.value_grad(z, r), exact.entropy_grad(z, horizon)
    for i in range(z.shape[0]):
        for a in range(vocab):
            e = torch.zeros_like(z)
            e[i, a] = eps
            assert abs((value(z + e) - value(z - e)) / (2 * eps) - float(gv[i, a])) < 1e-7
            assert abs((ent(z + e) - ent(z - e)) / (2 * eps) - float(gh[i, a])) < 1e-7


# --------------------------------------------------------------------------------------- clamped entropy
@given(st.integers(2, 40), st.floats(0.0, 0.95), st.integers(0, 2**32 - 1), st.sampled_from([0.5, 3.0, 10.0]))
def test_aent_clamped_entropy_matches_direct_numpy(vocab, clamp_p, seed, scale) -> None:
    """The shared module's per-state clamped entropy vs sort-drop-renormalise in float64."""
    z = np.random.default_rng(seed).normal(size=(5, vocab)) * scale
    got = clamped_entropy(torch.tensor(z, dtype=torch.float32), clamp_p).double().numpy()
    assert np.allclose(got, np_clamped_entropy(z, clamp_p), atol=2e-5)


@given(trees(), st.sampled_from([0.0, 0.25, 0.34, 0.5, 0.7]))
def test_clamped_trajectory_entropy_matches_weighted_numpy(tree, clamp_p) -> None:
    z, _, vocab, horizon = tree
    zn = z.numpy()
    pi = np_softmax(zn)
    total = 0.0
    for t in range(horizon):
        for prefix in itertools.product(range(vocab), repeat=t):
            d = math.prod(pi[np_state(prefix[:i], vocab), prefix[i]] for i in range(t))
            total += d * float(np_clamped_entropy(zn[np_state(prefix, vocab)], clamp_p))
    got = float(exact.clamped_trajectory_entropy(z, horizon, clamp_p))
    assert math.isclose(got, total, abs_tol=2e-5 * horizon)
    if clamp_p == 0.0:
        assert math.isclose(got, float(exact.trajectory_entropy(z, horizon)), abs_tol=2e-5 * horizon)


# ----------------------------------------------------------------------------------- regularised optimum
@given(trees(), st.sampled_from([0.03, 0.1, 0.5, 2.0]))
def test_gibbs_optimum_closed_form(tree, lam) -> None:
    """Optimum of V + lam H: P(y) = softmax(R / lam), value lam logsumexp(R / lam); no policy does better."""
    z, r, vocab, horizon = tree
    w = r / lam
    p_ref = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
    lse = lam * (w.max() + math.log(np.exp(w - w.max()).sum()))
    assert np.allclose(exact.gibbs_distribution(r, vocab, lam).numpy(), p_ref, atol=1e-12)
    opt = exact.regularized_optimum(r, vocab, lam)
    assert np.allclose(np_seq_probs(opt.logits.numpy(), horizon), p_ref, atol=1e-12)
    assert math.isclose(exact.free_energy(r, vocab, lam), lse, rel_tol=1e-12)
    assert math.isclose(opt.objective, lse, rel_tol=1e-12)
    assert math.isclose(exact.regularized_objective(opt.logits, r, lam), lse, rel_tol=1e-9)
    assert math.isclose(opt.value, float(p_ref @ r), abs_tol=1e-12)
    assert exact.regularized_objective(z, r, lam) <= lse + 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gibbs_optimum_matches_numerical_maximiser(seed) -> None:
    """Adam ascent on V + lam H (autograd of the enumerated objective) from random logits reaches the optimum."""
    rng = np.random.default_rng(seed)
    vocab, horizon, lam = 3, 2, 0.2
    r = rng.uniform(size=vocab**horizon)
    z = torch.tensor(rng.normal(size=(exact.tree_size(vocab, horizon), vocab)), requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.1)
    for _ in range(400):
        loss = -(exact.trajectory_value(z, r) + lam * exact.trajectory_entropy(z, horizon))
        opt.zero_grad()
        loss.backward()
        opt.step()
    target = exact.regularized_optimum(r, vocab, lam)
    assert abs(-float(loss.detach()) - target.objective) < 1e-5
    p = exact.sequence_logprobs(z.detach(), horizon).exp().numpy()
    assert 0.5 * np.abs(p - exact.gibbs_distribution(r, vocab, lam).numpy()).sum() < 1e-2


@given(trees(max_seq=27), st.sampled_from([0.05, 0.2, 1.0]), st.sampled_from([0.25, 0.34, 0.5, 0.67]))
def test_clamped_optimum_attains_free_energy_and_dominates(tree, lam, clamp_p) -> None:
    """Clamped optimum: its V + lam H~ (H~ from aent.clamped_entropy) equals the soft-value recursion, and
    neither random logits nor the full-entropy optimum exceed it."""
    z, r, vocab, horizon = tree
    opt = exact.regularized_optimum(r, vocab, lam, clamp_p)
    tol = 5e-5 * lam * horizon  # float32 clamped entropy inside the objective
    assert math.isclose(exact.regularized_objective(opt.logits, r, lam, clamp_p), opt.objective, abs_tol=tol)
    assert exact.regularized_objective(z, r, lam, clamp_p) <= opt.objective + tol
    full = exact.regularized_optimum(r, vocab, lam)
    assert exact.regularized_objective(full.logits, r, lam, clamp_p) <= opt.objective + tol


@settings(max_examples=15)
@given(st.integers(2, 6), st.floats(0.1, 0.9), st.integers(0, 2**32 - 1))
def test_one_state_clamped_supremum_is_top_k_logsumexp(vocab, clamp_p, seed) -> None:
    """max_pi E_pi[w] + H~_p(pi) = logsumexp of the K largest w (the exchange argument of claim 4): random
    search plus Adam from the best draws never exceeds it and gets close."""
    rng = np.random.default_rng(seed)
    w = torch.tensor(rng.normal(size=vocab) * 2)
    kept = exact.kept_count(vocab, clamp_p)
    target = float(torch.logsumexp(torch.topk(w, kept).values, 0))

    def objective(x):
        return (torch.softmax(x, -1) * w).sum(-1) + clamped_entropy(x, clamp_p).double()

    draws = torch.tensor(rng.normal(size=(2000, vocab)) * 3, dtype=torch.float32)
    best = draws[objective(draws).topk(5).indices].clone().requires_grad_(True)
    adam = torch.optim.Adam([best], lr=0.1)
    for _ in range(100):
        adam.zero_grad()
        (-objective(best).sum()).backward()
        adam.step()
    found = float(objective(best.detach()).max())
    assert found <= target + 1e-5
    assert found >= target - 0.05
    gibbs = exact.bandit_gibbs(w, 1.0, clamp_p)
    assert math.isclose(float((gibbs * w).sum() - (gibbs[gibbs > 0] * gibbs[gibbs > 0].log()).sum()), target,
                        rel_tol=1e-9, abs_tol=1e-12)


def test_branching_optimal_count_matches_brute_force() -> None:
    """m_K = largest subset of A* with at most K next tokens after every prefix, by trying every subset."""
    rng = np.random.default_rng(0)
    for vocab, horizon, clamp_p in [(2, 3, 0.5), (3, 2, 0.34), (3, 2, 0.67), (4, 2, 0.5), (3, 2, 0.0)]:
        for _ in range(5):
            r = (rng.uniform(size=vocab**horizon) < 0.5).astype(float)
            r[0] = 1.0
            opt = [y for y, v in zip(np_sequences(vocab, horizon), r) if v == 1.0]
            kept = vocab - int(math.floor(clamp_p * vocab))
            best = 0
            for size in range(len(opt), 0, -1):
                for sub in itertools.combinations(opt, size):
                    branching = {}
                    for y in sub:
                        for t in range(horizon):
                            branching.setdefault(y[:t], set()).add(y[t])
                    if all(len(v) <= kept for v in branching.values()):
                        best = size
                        break
                if best:
                    break
            assert exact.branching_optimal_count(r, vocab, clamp_p) == best


# ------------------------------------------------------------------------------------------------ bandit
@given(st.integers(2, 50), st.integers(0, 2**32 - 1))
def test_bandit_closed_forms(n_arms, seed) -> None:
    rng = np.random.default_rng(seed)
    z = torch.tensor(rng.normal(size=n_arms) * 2, requires_grad=True)
    r = rng.uniform(size=n_arms)
    v = (torch.softmax(z, -1) * torch.tensor(r)).sum()
    (ref,) = torch.autograd.grad(v, z)
    assert math.isclose(float(exact.bandit_value(z.detach(), r)), float(v.detach()), rel_tol=1e-12)
    assert torch.allclose(exact.bandit_policy_gradient(z.detach(), r), ref, atol=1e-14)
    # H = 1 tree and bandit agree
    assert math.isclose(float(exact.trajectory_value(z.detach()[None], r)), float(v.detach()), rel_tol=1e-12)


@given(st.integers(2, 30), st.floats(0.05, 2.0), st.sampled_from([0.0, 0.2, 0.5, 0.9]), st.integers(0, 2**32 - 1))
def test_bandit_gibbs_equals_tree_optimum(n_arms, lam, clamp_p, seed) -> None:
    r = np.random.default_rng(seed).uniform(size=n_arms)
    p = exact.bandit_gibbs(r, lam, clamp_p)
    logits = exact.optimal_logits(r, n_arms, lam, clamp_p)
    assert torch.allclose(p, torch.softmax(logits[0], -1), atol=1e-12)
    assert int((p > 0).sum()) == exact.kept_count(n_arms, clamp_p)


@given(st.integers(1, 6), st.integers(1, 40), st.floats(0.02, 2.0), st.floats(0.0, 0.9), st.integers(0, 40))
def test_sparse_gibbs_matches_enumeration(m, extra, lam, r0, cut) -> None:
    """Closed form for m items worth 1 and the rest r0 vs the Gibbs distribution of the explicit reward vector."""
    n = m + extra
    n_kept = max(1, n - cut)
    r = np.full(n, r0)
    r[:m] = 1.0
    out = exact.sparse_gibbs(n, m, lam, n_kept=n_kept, other_reward=r0)
    w = np.where(np.arange(n) < n_kept, r / lam, -np.inf)  # the top n_kept items (optimal ones first)
    p = np.exp(w - w.max())
    p /= p.sum()
    ent = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    assert math.isclose(out["value"], float(p @ r), rel_tol=1e-10)
    assert math.isclose(out["entropy"], ent, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(out["objective"], float(p @ r) + lam * ent, rel_tol=1e-9)
    assert math.isclose(out["bias"], 1.0 - float(p @ r), rel_tol=1e-9, abs_tol=1e-12)
    assert out["n_optimal_kept"] == min(m, n_kept)


def test_sparse_gibbs_paper_scale_is_finite() -> None:
    """|A| = 10^5 arms and a 10^5-token, H = 4 tree (10^20 sequences) stay finite: no enumeration."""
    for n in [100_000, 10**20]:
        out = exact.sparse_gibbs(n, 5, 0.05)
        assert all(math.isfinite(v) for v in out.values())
        assert 0.0 <= out["bias"] <= 1.0


# ------------------------------------------------------------------------------------------ Monte Carlo
def test_exact_matches_monte_carlo() -> None:
    """V, H and grad V from 40,000 numpy-sampled sequences agree with the exact values within 5 standard
    errors (each quantity; the gradient coordinate-wise, 39 coordinates; seed 0)."""
    vocab, horizon, n = 3, 3, 40_000
    task = TreeTask(vocab=vocab, horizon=horizon, m_targets=3, partial_credit=0.6, seed=1)
    r = task.reward_table().ravel()
    z = torch.tensor(np.random.default_rng(5).normal(size=(exact.tree_size(vocab, horizon), vocab)))
    tokens = exact.sample_sequences(z, horizon, n, np.random.default_rng(0))
    assert tokens.shape == (n, horizon) and tokens.min() >= 0 and tokens.max() < vocab
    idx = exact.sequence_index(torch.tensor(tokens), vocab).numpy()
    rew = r[idx]
    logp = exact.sequence_logprobs(z, horizon).numpy()[idx]

    def within(samples, exact_value, k=5.0):
        se = samples.std(0, ddof=1) / math.sqrt(len(samples))
        return np.all(np.abs(samples.mean(0) - exact_value) <= k * se + 1e-12)

    assert within(rew, float(exact.trajectory_value(z, r)))
    assert within(-logp, float(exact.trajectory_entropy(z, horizon)))
    scores = exact.score_function(z, tokens).reshape(n, -1).numpy()
    assert within(rew[:, None] * scores, exact.value_grad(z, r).reshape(-1).numpy())
    # and the sampler's sequence frequencies follow P(y): chi-square statistic below its 1e-4 upper quantile
    counts = np.bincount(idx, minlength=vocab**horizon)
    expected = n * np.exp(exact.sequence_logprobs(z, horizon).numpy())
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 26 + 4.5 * math.sqrt(2 * 26)  # df = 26; a loose bound on the 0.9999 quantile (~ 59)


def test_sampling_is_seeded() -> None:
    z = torch.zeros(exact.tree_size(2, 3), 2, dtype=F64)
    a = exact.sample_sequences(z, 3, 50, np.random.default_rng(7))
    b = exact.sample_sequences(z, 3, 50, np.random.default_rng(7))
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------------- validation
def test_clear_errors() -> None:
    z = torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="rows"):
        exact.trajectory_entropy(z, 3)
    with pytest.raises(ValueError, match="A\\*\\*H"):
        exact.trajectory_value(torch.zeros(7, 2, dtype=F64), np.zeros(5))
    with pytest.raises(ValueError, match="ent_coef"):
        exact.regularized_optimum(np.zeros(4), 2, 0.0)
    with pytest.raises(ValueError, match="clamp_p"):
        exact.free_energy(np.zeros(4), 2, 0.1, clamp_p=1.0)
    with pytest.raises(ValueError, match="enumeration limit"):
        exact.tree_size(2, 30)
    with pytest.raises(ValueError, match="rng"):
        exact.sample_sequences(torch.zeros(1, 2, dtype=F64), 1, 3, 0)


def test_aent_clamped_entropy_far_threshold_row() -> None:
    """A removed logit far below the kept ones (as in the clamped optimum's logits) must not cost precision."""
    z = np.array([[-1.0e4, -2.2222222, 0.0], [-1.0e4, -1.0e4 + 1.0, 0.0]])
    got = clamped_entropy(torch.tensor(z, dtype=torch.float32), 0.34).double().numpy()
    assert np.allclose(got, np_clamped_entropy(z, 0.34), atol=2e-6)

"""Theory claims 1-5 of DESIGN.md as property tests on exactly enumerated token trees (docs/toy/theory.md).

Every quantity is computed exactly (enumeration, closed forms); each test names the claim it checks. Where a claim
holds only under conditions, the conditions are tested, and a counterexample shows they are needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from toy import dynamics, exact

F64 = torch.float64
TOL = 1e-10


@st.composite
def trees(draw, max_seq: int = 64, sparse: bool | None = None):
    """(logits, rewards in [0, 1], vocab, horizon) with logits from nearly uniform to nearly deterministic."""
    vocab = draw(st.integers(2, 4))
    horizon = draw(st.integers(1, 3))
    if vocab**horizon > max_seq:
        horizon = 2
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0, 8.0, 20.0]))
    z = rng.normal(size=(exact.tree_size(vocab, horizon), vocab)) * scale
    is_sparse = draw(st.booleans()) if sparse is None else sparse
    if is_sparse:
        r = (rng.uniform(size=vocab**horizon) < 0.25).astype(float)
        r[rng.integers(vocab**horizon)] = 1.0
    else:
        r = rng.uniform(size=vocab**horizon)
        r = r / r.max() if draw(st.booleans()) else r  # sometimes a unique optimum at 1
    return torch.tensor(z), r, vocab, horizon


# ----------------------------------------------------------------------------------------------- claim 1
@given(trees())
def test_claim1_gradient_norm_at_most_twice_entropy(tree) -> None:
    """Claim 1: |grad V|_2 <= |grad V|_1 <= 2 sum_s d(s) (1 - max_a pi(a|s)) <= 2 H(pi) for tabular softmax
    logits and rewards in [0, 1] (the middle term is the sharper bound)."""
    z, r, _, horizon = tree
    g = exact.value_grad(z, r)
    pi = torch.softmax(z, -1)
    mode_gap = float((exact.visitation(z, horizon) * (1 - pi.amax(-1))).sum())
    ent = float(exact.trajectory_entropy(z, horizon))
    l2, l1 = float(g.norm()), float(g.abs().sum())
    assert l2 <= l1 + TOL
    assert l1 <= 2 * mode_gap + TOL
    assert mode_gap <= ent + TOL


def test_claim1_sharper_bound_is_tight() -> None:
    """Claim 1: the intermediate bound 2(1 - max pi) is attained asymptotically (two arms, r = (0, 1))."""
    for eps in [1e-2, 1e-4, 1e-6]:
        z = torch.tensor([[math.log(1 - eps), math.log(eps)]], dtype=F64)
        l1 = float(exact.value_grad(z, np.array([0.0, 1.0])).abs().sum())
        assert math.isclose(l1, 2 * eps * (1 - eps), rel_tol=1e-6)
        assert l1 / (2 * eps) > 1 - 2 * eps


def test_claim1_needs_unit_reward_range_and_raw_logits() -> None:
    """Claim 1 conditions: rewards spanning more than 1, or logits z = c * theta with c > 1 (a temperature
    1/c), scale the gradient and break |grad V| <= 2 H. Uniform two-arm policy: H = log 2, |grad_z V|_2 = 0.354."""
    z = torch.zeros(1, 2, dtype=F64)
    ent = math.log(2)
    g = exact.value_grad(z, np.array([0.0, 1.0]))
    assert float(g.norm()) <= 2 * ent
    assert float(exact.value_grad(z, np.array([0.0, 10.0])).norm()) > 2 * ent  # reward range 10
    assert 5.0 * float(g.norm()) > 2 * ent  # d/dtheta of V(softmax(5 theta)) = 5 grad_z V


@given(trees(), st.floats(0.5, 20.0))
def test_claim1_scales_with_reward_range(tree, span) -> None:
    """Claim 1, general form: with rewards in [c, c + span], |grad V|_1 <= 2 span H."""
    z, r, _, horizon = tree
    g = exact.value_grad(z, 3.0 + span * r)
    assert float(g.abs().sum()) <= 2 * span * float(exact.trajectory_entropy(z, horizon)) + 1e-9


# ----------------------------------------------------------------------------------------------- claim 2
@given(trees(), st.sampled_from([0.01, 0.05, 0.2, 1.0]))
def test_claim2_bias_of_regularised_optimum(tree, lam) -> None:
    """Claim 2: at the maximiser P ~ exp(R/lam) of V + lam H, 0 <= V* - V <= lam (H(P) - log|A*|)
    <= lam (H log|A| - log|A*|)."""
    _, r, vocab, horizon = tree
    opt = exact.regularized_optimum(r, vocab, lam)
    m = int((r >= r.max() - 1e-9).sum())
    assert opt.n_optimal == opt.n_optimal_branching == m
    assert -TOL <= opt.bias <= opt.bound_entropy + TOL
    assert opt.bound_entropy <= opt.bound + TOL
    assert math.isclose(opt.bound, lam * (horizon * math.log(vocab) - math.log(m)), rel_tol=1e-12)


@given(trees(sparse=True), st.sampled_from([0.05, 0.2, 1.0]))
def test_claim2_sparse_closed_form_matches_tree(tree, lam) -> None:
    """Claim 2: for 0/1 rewards the bias is (1 - P(A*)), P(A*) = m / (m + (N - m) e^{-1/lam}), N = |A|^H."""
    _, r, vocab, horizon = tree
    m = int(r.sum())
    opt = exact.regularized_optimum(r, vocab, lam)
    closed = exact.sparse_gibbs(vocab**horizon, m, lam)
    assert math.isclose(opt.bias, closed["bias"], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(opt.entropy, closed["entropy"], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(opt.objective, closed["objective"], rel_tol=1e-12)


@given(st.integers(2, 10**5), st.integers(1, 4), st.integers(1, 50), st.floats(0.01, 2.0))
def test_claim2_bias_grows_with_vocab_and_sparsity(vocab, horizon, m, lam) -> None:
    """Claim 2: for m optimal sequences among |A|^H (others 0) the bias and its bound grow with |A| and
    shrink as m grows (sparser optimum -> larger gap)."""
    n = vocab**horizon
    assume(m < n)
    base = exact.sparse_gibbs(n, m, lam)
    wider = exact.sparse_gibbs((vocab + 1) ** horizon, m, lam)
    denser = exact.sparse_gibbs(n, m + 1, lam)
    assert wider["bias"] >= base["bias"] - 1e-15 and wider["bound"] > base["bound"]
    assert denser["bias"] <= base["bias"] + 1e-15 and denser["bound"] < base["bound"]
    assert base["bias"] <= base["bound"] + 1e-12


# ----------------------------------------------------------------------------------------------- claim 3
@given(trees(), st.sampled_from([0.01, 0.1, 0.5, 2.0]))
def test_claim3_decomposition_for_every_theta(tree, lam) -> None:
    """Claim 3: V* - V(theta) <= [max V_lam - V_lam(theta)] + lam (H log|A| - log|A*|), for every theta,
    via the identity V* - V = [F - V_lam(theta)] + lam H(theta) - (F - V*) and F - V* >= lam log|A*|."""
    z, r, vocab, horizon = tree
    best = float(r.max())
    m = int((r >= best - 1e-9).sum())
    free = exact.free_energy(r, vocab, lam)
    value = float(exact.trajectory_value(z, r))
    ent = float(exact.trajectory_entropy(z, horizon))
    reg = exact.regularized_objective(z, r, lam)
    assert math.isclose(best - value, (free - reg) + lam * ent - (free - best), abs_tol=1e-9)
    assert free - best >= lam * math.log(m) - 1e-12
    assert best - value <= (free - reg) + lam * (horizon * math.log(vocab) - math.log(m)) + 1e-9


# ----------------------------------------------------------------------------------------------- claim 4
@given(trees(max_seq=27), st.sampled_from([0.02, 0.1, 0.5]), st.sampled_from([0.2, 0.25, 0.34, 0.5, 0.67]))
def test_claim4_clamped_bias_bound(tree, lam, clamp_p) -> None:
    """Claim 4 (exact form): bias of the maximiser of V + lam H~_p <= lam (H~(opt) - log m_K)
    <= lam (H log K - log m_K), K = |A| - floor(p|A|), m_K = largest subset of A* with <= K next tokens per
    prefix. When A* is K-branching (m_K = |A*|) and p|A| is an integer this is the paper's
    lam (H log((1-p)|A|) - log|A*|)."""
    _, r, vocab, horizon = tree
    opt = exact.regularized_optimum(r, vocab, lam, clamp_p)
    kept = exact.kept_count(vocab, clamp_p)
    assert -TOL <= opt.bias <= opt.bound_entropy + TOL
    assert opt.bound_entropy <= opt.bound + TOL
    assert math.isclose(opt.bound, lam * (horizon * math.log(kept) - math.log(opt.n_optimal_branching)))
    if opt.n_optimal_branching == opt.n_optimal and math.isclose(clamp_p * vocab, round(clamp_p * vocab)):
        assert opt.bias <= opt.bound_paper + 1e-9


@given(trees(max_seq=27), st.sampled_from([0.02, 0.1, 0.5]), st.sampled_from([0.25, 0.5]))
def test_claim4_clamped_bound_below_full_bound(tree, lam, clamp_p) -> None:
    """Claim 4: with every optimal sequence kept, the clamped bound lam (H log K - log|A*|) is below the full
    bound lam (H log|A| - log|A*|) by lam H log(|A|/K)."""
    _, r, vocab, horizon = tree
    clamped, full = exact.regularized_optimum(r, vocab, lam, clamp_p), exact.regularized_optimum(r, vocab, lam)
    assume(clamped.n_optimal_branching == clamped.n_optimal)
    gap = lam * horizon * math.log(vocab / exact.kept_count(vocab, clamp_p))
    assert math.isclose(full.bound - clamped.bound, gap, rel_tol=1e-9, abs_tol=1e-12)


def test_claim4_paper_form_fails_without_its_premises() -> None:
    """Claim 4 counterexamples. (a) p|A| not an integer: |A| = 2, p = 0.49 removes nothing (K = 2 > 1.02);
    (b) A* not K-branching: |A| = 4, p = 0.5 (K = 2) and three optimal arms: bias 0 but the bound is negative."""
    lam = 0.1
    a = exact.regularized_optimum(np.array([1.0, 1.0 - 1.28 * lam]), 2, lam, 0.49)
    assert a.bias > a.bound_paper  # 0.0278 > 0.1 log 1.02 = 0.00198
    assert a.bias <= a.bound  # the exact-K form holds
    b = exact.regularized_optimum(np.array([1.0, 1.0, 1.0, 0.0]), 4, lam, 0.5)
    assert b.bias == 0.0 and b.bound_paper < 0.0
    assert b.n_optimal_branching == 2 and b.bias <= b.bound


# ----------------------------------------------------------------------------------------------- claim 5
@st.composite
def states(draw, max_vocab: int = 30):
    vocab = draw(st.integers(2, max_vocab))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    z = torch.tensor(rng.normal(size=vocab) * draw(st.sampled_from([0.3, 1.0, 3.0, 6.0])))
    step = torch.tensor(rng.normal(size=vocab)) * draw(st.sampled_from([1e-3, 1e-2, 0.1, 1.0, 3.0]))
    return z, step


@given(states())
def test_claim5_first_order_is_the_directional_derivative(state) -> None:
    """Claim 5: -Cov_pi(log pi, dz) = d/dt H(softmax(z + t dz)) at t = 0 (autograd)."""
    z, step = state
    t = torch.zeros((), dtype=F64, requires_grad=True)
    (ref,) = torch.autograd.grad(dynamics.softmax_entropy(z + t * step), t)
    assert math.isclose(float(dynamics.predicted_entropy_change(z, step)), float(ref), rel_tol=1e-9, abs_tol=1e-12)


@given(states())
def test_claim5_second_order_error_bound(state) -> None:
    """Claim 5: |Delta H + Cov_pi(log pi, dz)| <= 1/2 (1 + 2 log|A|) (max dz - min dz)^2."""
    z, step = state
    err = abs(float(dynamics.exact_entropy_change(z, step) - dynamics.predicted_entropy_change(z, step)))
    assert err <= float(dynamics.second_order_bound(z, step)) + 1e-12


@given(trees(max_seq=27), st.sampled_from([1e-3, 1e-2, 0.1, 1.0]), st.integers(0, 2**32 - 1))
def test_claim5_trajectory_form(tree, size, seed) -> None:
    """Claim 5 on trees: the sequence-level -Cov_P(log P, d log P) equals <dH/dz, dz> (closed-form entropy
    gradient), and the exact change of the trajectory entropy is within the stated second-order bound."""
    z, _, _, horizon = tree
    step = torch.tensor(np.random.default_rng(seed).normal(size=z.shape)) * size
    pred = float(dynamics.trajectory_entropy_change(z, step, horizon))
    assert math.isclose(pred, float((exact.entropy_grad(z, horizon) * step).sum()), rel_tol=1e-8, abs_tol=1e-12)
    exact_change = float(exact.trajectory_entropy(z + step, horizon) - exact.trajectory_entropy(z, horizon))
    assert abs(exact_change - pred) <= float(dynamics.trajectory_first_order_bound(z, step, horizon)) + 1e-10


@given(states())
def test_claim5_entropy_sensitivity_signs(state) -> None:
    """Claim 5: a token step dz = lr A (e_a - pi) has first-order Delta H = -lr A s(a); E_pi[g] >= 0, so
    s(a) < 0 when pi(a) < e^-H (rare tokens), and s(mode) >= 0 (the most likely token)."""
    z, _ = state
    s = dynamics.entropy_sensitivity(z)
    pi = torch.softmax(z, -1)
    ent = float(dynamics.softmax_entropy(z))
    assert float(s[pi.argmax()]) >= -1e-12
    assert bool((s[pi < math.exp(-ent) * (1 - 1e-9)] < 0).all())
    a = int(torch.randint(len(z), ()))
    step = dynamics.token_step(z, a, 0.7, 0.01)
    assert math.isclose(float(dynamics.predicted_entropy_change(z, step)), -0.007 * float(s[a]),
                        rel_tol=1e-9, abs_tol=1e-15)


def _safe_lr(z: torch.Tensor, a: int, s: float) -> float:
    """A step lr (advantage 1) small enough that |first-order change| > second-order bound."""
    onehot = torch.nn.functional.one_hot(torch.tensor(a), len(z)).to(F64)
    osc = float((onehot - torch.softmax(z, -1)).amax() - (onehot - torch.softmax(z, -1)).amin())
    return abs(s) / ((1 + 2 * math.log(len(z))) * osc**2)


@given(states())
def test_claim5_positive_advantage_on_likely_token_lowers_entropy(state) -> None:
    """Claim 5: a positive-advantage update on the most likely token lowers the entropy (exactly, for any step
    small enough that the first-order term dominates); on a rare token (pi < e^-H) it raises it, and a
    negative-advantage update reverses both."""
    z, _ = state
    s = dynamics.entropy_sensitivity(z)
    pi = torch.softmax(z, -1)
    mode = int(pi.argmax())
    assume(float(s[mode]) > 1e-8)
    lr = _safe_lr(z, mode, float(s[mode]))
    assert float(dynamics.exact_entropy_change(z, dynamics.token_step(z, mode, 1.0, lr))) < 0
    assert float(dynamics.exact_entropy_change(z, dynamics.token_step(z, mode, -1.0, lr))) > 0
    rare = torch.nonzero(pi < math.exp(-float(dynamics.softmax_entropy(z)))).flatten()
    if rare.numel():
        a = int(rare[0])
        lr = _safe_lr(z, a, float(s[a]))
        assert float(dynamics.exact_entropy_change(z, dynamics.token_step(z, a, 1.0, lr))) > 0
        assert float(dynamics.exact_entropy_change(z, dynamics.token_step(z, a, -1.0, lr))) < 0


@given(st.integers(4, 30), st.integers(0, 2**32 - 1), st.sampled_from([0.5, 2.0, 4.0]))
def test_claim5_clip_low_raises_and_clip_high_lowers_entropy_on_rare_tokens(vocab, seed, scale) -> None:
    """Claim 5: removing a clipped token's update changes the first-order Delta H by +lr/n A rho s(a); for rare
    clipped tokens (s(a) < 0, e.g. pi(a) < e^-H), clip-low (A < 0) therefore raises and clip-high (A > 0)
    lowers the entropy relative to the unclipped step."""
    rng = np.random.default_rng(seed)
    old = torch.tensor(rng.normal(size=vocab) * scale)
    z = old + torch.tensor(rng.normal(size=vocab))  # the policy has moved since sampling: ratios != 1
    tokens = torch.tensor(rng.integers(vocab, size=16))
    adv = torch.tensor(rng.normal(size=16))
    out = dynamics.ppo_token_step(z, old, tokens, adv, 0.1, 0.2, 0.2)
    s = dynamics.entropy_sensitivity(z)[tokens]
    effect_low = -float(dynamics.predicted_entropy_change(z, out["removed_low"]))
    effect_high = -float(dynamics.predicted_entropy_change(z, out["removed_high"]))
    total = float(dynamics.predicted_entropy_change(z, out["step"]) - dynamics.predicted_entropy_change(
        z, out["unclipped"]))
    assert math.isclose(total, effect_low + effect_high, rel_tol=1e-9, abs_tol=1e-13)
    per_token = 0.1 / 16 * adv * out["ratio"] * s
    assert math.isclose(effect_low, float(per_token[out["clip_low"]].sum()), rel_tol=1e-9, abs_tol=1e-13)
    if bool(out["clip_low"].any()) and bool((s[out["clip_low"]] < 0).all()):
        assert effect_low > 0
    if bool(out["clip_high"].any()) and bool((s[out["clip_high"]] < 0).all()):
        assert effect_high < 0


def test_claim5_clip_effect_sign_needs_rare_tokens() -> None:
    """Claim 5 condition: clipping a *likely* token reverses the signs (clip-high on the mode raises H)."""
    z = torch.tensor([3.0, 0.0, 0.0, 0.0], dtype=F64)
    old = z.clone()
    old[0] = 2.0  # the mode's probability grew since sampling: ratio > 1.2
    out = dynamics.ppo_token_step(z, old, torch.tensor([0]), torch.tensor([1.0]), 0.1, 0.2, 0.2)
    assert bool(out["clip_high"][0]) and float(dynamics.entropy_sensitivity(z)[0]) > 0
    assert -float(dynamics.predicted_entropy_change(z, out["removed_high"])) > 0


@pytest.mark.parametrize("size", [1e-1, 1e-2, 1e-3])
def test_claim5_error_is_second_order(size) -> None:
    """Claim 5: the residual divided by |dz|^2 stays bounded as the step shrinks (one fixed state)."""
    rng = np.random.default_rng(0)
    z, d = torch.tensor(rng.normal(size=20) * 2), torch.tensor(rng.normal(size=20))
    err = abs(float(dynamics.exact_entropy_change(z, size * d) - dynamics.predicted_entropy_change(z, size * d)))
    assert err / size**2 <= float(dynamics.second_order_bound(z, d))
    assert err / size**2 > 1e-3  # a genuine second-order term, not numerical noise

"""Policy-loss pieces against hand-computed cases and independent numpy re-implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aent import (
    LOSS_AGG_MODES,
    advantage_sign_weights,
    aggregate_loss,
    approx_kl,
    clip_cov_mask,
    entropic_term,
    group_advantages,
    kl_cov_mask,
    ppo_clip_loss,
    token_covariance,
    top_entropy_mask,
)

BT = (3, 5)
floats = st.floats(-3, 3, allow_nan=False, width=32)  # advantages and log-probs are float32
tok = hnp.arrays(np.float64, BT, elements=floats)
masks = hnp.arrays(np.bool_, BT)


def t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


# ------------------------------------------------------------------------------------------- advantages
@given(hnp.arrays(np.float64, st.sampled_from([(4,), (8,), (12,)]), elements=st.floats(0, 1)),
       st.sampled_from([1, 2, 4]), st.sampled_from(["std", "none"]))
def test_group_advantages_match_numpy(r, g, scale):
    got = group_advantages(t(r), g, scale=scale).numpy()
    x = r.reshape(-1, g)
    want = x - x.mean(1, keepdims=True)
    if scale == "std":
        want = np.zeros_like(x) if g == 1 else want / (x.std(1, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(got, want.reshape(-1), atol=1e-5, rtol=1e-5)


def test_group_advantages_hand_computed():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    # group 1: mean 1/4, sample std sqrt(1/4) = 0.5; group 2 all equal -> 0
    np.testing.assert_allclose(group_advantages(r, 4).numpy(), [1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(group_advantages(r, 4, scale="none").numpy(),
                               [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0], atol=1e-7)


@pytest.mark.parametrize(("args", "field"), [((torch.ones(5), 2), "multiple"), ((torch.ones(4), 0), "group_size"),
                                             ((torch.ones(2, 2), 2), "rewards")])
def test_group_advantages_errors(args, field):
    with pytest.raises(ValueError, match=field):
        group_advantages(*args)


# ----------------------------------------------------------------------------------------------- PPO clip
def np_ppo(logp, old, adv, el, eh, c=None):
    r = np.exp(np.clip(logp - old, -20, 20))
    loss = np.maximum(-adv * r, -adv * np.clip(r, 1 - el, 1 + eh))
    if c is not None:
        loss = np.where(adv < 0, np.minimum(loss, -c * adv), loss)
    return loss


@given(tok, tok, tok, st.floats(0.05, 0.5), st.floats(0.05, 0.5), st.sampled_from([None, 2.0, 3.0]))
def test_ppo_matches_numpy(lp, old, adv, el, eh, c):
    lp, old = lp / 3, old / 3
    loss, clipped = ppo_clip_loss(t(lp), t(old), t(adv), eps_low=el, eps_high=eh, dual_clip=c)
    np.testing.assert_allclose(loss.numpy(), np_ppo(lp, old, adv, el, eh, c), atol=1e-5, rtol=1e-5)
    assert loss.dtype == torch.float32 and clipped.dtype == torch.bool


@given(tok, tok, tok, st.floats(0.05, 0.5), st.floats(0.05, 0.5))
def test_ppo_clipped_tokens_have_zero_gradient(lp, old, adv, el, eh):
    x = t(lp / 3).float().requires_grad_()
    loss, clipped = ppo_clip_loss(x, t(old / 3).float(), t(adv).float(), eps_low=el, eps_high=eh, dual_clip=3.0)
    loss.sum().backward()
    assert torch.all(x.grad[clipped] == 0)
    # unclipped tokens: d(-A r)/dlogp = -A r
    r = np.exp(lp / 3 - old / 3)
    free = ~clipped.numpy()
    np.testing.assert_allclose(x.grad.numpy()[free], (-adv * r)[free], atol=1e-4, rtol=1e-4)


def test_ppo_hand_computed_asymmetric_and_dual():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 5.0]]))
    adv = torch.tensor([[1.0, -1.0, 1.0, -2.0]])
    loss, clipped = ppo_clip_loss(logp, old, adv, eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    # r=1.5,A=1: clipped to 1.28 -> -1.28; r=0.5,A=-1: max(0.5, 0.8) = 0.8; r=1.1,A=1: -1.1; r=5,A=-2: min(10, 6) = 6
    np.testing.assert_allclose(loss.numpy(), [[-1.28, 0.8, -1.1, 6.0]], atol=1e-5)
    assert clipped.tolist() == [[True, True, False, True]]


def test_approx_kl_k3():
    lp, old = torch.tensor([0.0, -1.0, math.log(2)]), torch.zeros(3)
    want = [0.0, math.exp(-1) - 1 + 1, 2 - 1 - math.log(2)]
    np.testing.assert_allclose(approx_kl(lp, old).numpy(), want, atol=1e-6)
    assert torch.all(approx_kl(torch.randn(50), torch.randn(50)) >= 0)


# ------------------------------------------------------------------------------------------- aggregation
def np_agg(loss, m, mode, c=None):
    m = m.astype(float)
    if mode == "token-mean":
        return (loss * m).sum() / max(m.sum(), 1)
    per = (loss * m).sum(1)
    if mode == "seq-mean-token-mean":
        return (per / np.maximum(m.sum(1), 1)).mean()
    if mode == "seq-mean-token-sum":
        return per.mean()
    return per.mean() / (loss.shape[1] if c is None else c)


@given(tok, masks, st.sampled_from(LOSS_AGG_MODES), st.sampled_from([None, 7.0]))
def test_aggregate_matches_numpy(loss, m, mode, c):
    got = aggregate_loss(t(loss), torch.from_numpy(m), mode, norm_const=c).item()
    assert got == pytest.approx(np_agg(loss, m, mode, c), abs=1e-5, rel=1e-5)


def test_aggregate_hand_computed():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate_loss(loss, m, "token-mean").item() == pytest.approx(10 / 4)
    assert aggregate_loss(loss, m, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate_loss(loss, m, "seq-mean-token-sum").item() == pytest.approx((6 + 4) / 2)
    assert aggregate_loss(loss, m, "seq-mean-token-sum-norm").item() == pytest.approx((6 + 4) / 2 / 3)
    assert aggregate_loss(loss, m, "seq-mean-token-sum-norm", norm_const=10).item() == pytest.approx(0.5)
    bad = torch.tensor([[1.0, float("nan")]])
    assert aggregate_loss(bad, torch.tensor([[1, 0]])).item() == 1.0  # padding never leaks
    with pytest.raises(ValueError, match="mode"):
        aggregate_loss(loss, m, "sum")


# ------------------------------------------------------------------------------------------ token weights
@given(tok, st.floats(0, 1), st.floats(0, 2))
def test_advantage_sign_weights(adv, wp, wn):
    got = advantage_sign_weights(t(adv), wp, wn).numpy()
    np.testing.assert_allclose(got, np.where(adv > 0, wp, np.where(adv < 0, wn, 1.0)), atol=1e-7)


# ------------------------------------------------------------------------------------------ EntroPIC term
logps = hnp.arrays(np.float64, BT, elements=st.floats(-3, 0, width=32))


@given(logps, logps, tok, masks, st.floats(0, 1))
@example(  # found un-derandomized: tau = 0.9999999999999999 rounded to 1.0 in float32, so p = 1.0 was not selected
    np.zeros(BT), np.zeros(BT), np.ones(BT), np.ones(BT, dtype=bool), 0.9999999999999999)
def test_entropic_term_matches_paper_formula_and_gradient(lp, old, adv, m, thr):
    """L_pic = -(1/|S|) sum_S r |A|, S = {valid, pi_theta > tau} (arXiv 2511.15248); dL/dlogp_t = -r_t |A_t| / |S|."""
    x = t(lp).float().requires_grad_(True)
    term, sel = entropic_term(x, t(old).float(), t(adv).float(), torch.from_numpy(m), thr)
    term.backward()
    lp32, old32 = lp.astype(np.float32).astype(np.float64), old.astype(np.float32).astype(np.float64)
    s = m & (np.exp(lp32) > thr)
    r = np.exp(lp32 - old32)
    n = max(int(s.sum()), 1)
    np.testing.assert_array_equal(sel.numpy(), s)
    assert float(term.detach()) == pytest.approx(-(r * np.abs(adv))[s].sum() / n, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), np.where(s, -r * np.abs(adv) / n, 0.0), rtol=1e-5, atol=1e-6)


def test_entropic_term_hand_computed_selects_by_current_policy_and_uses_unclipped_ratio():
    # pi_theta = (0.99, 0.97, 0.5); pi_old = (0.5, 0.99, 0.99): token 0 is selected although pi_old < tau,
    # token 2 is not although pi_old > tau. Ratios 1.98 and 0.9798 (unclipped, outside [0.8, 1.2] for token 0).
    lp = torch.log(torch.tensor([[0.99, 0.97, 0.5]]))
    old = torch.log(torch.tensor([[0.5, 0.99, 0.99]]))
    term, sel = entropic_term(lp, old, torch.tensor([[1.0, -2.0, 3.0]]), torch.ones(1, 3), 0.95)
    assert sel.tolist() == [[True, True, False]]
    assert float(term) == pytest.approx(-(0.99 / 0.5 * 1.0 + 0.97 / 0.99 * 2.0) / 2, rel=1e-6)
    term0, sel0 = entropic_term(lp, old, torch.ones(1, 3), torch.ones(1, 3), 1.0)  # nothing selected
    assert float(term0) == 0.0 and not sel0.any()


@given(hnp.arrays(np.float64, BT, elements=st.floats(0, 5), unique=True), masks, st.floats(0.01, 1.0))
@example(  # found un-derandomized: 1e-115 and 0 were ranked after a cast to float32, where both are 0.0
    np.array([[1e-115, 0.0, 1.0, 2.0, 3.0]] + [[4.0 + i + j / 8 for j in range(5)] for i in range(2)]),
    np.array([[True, True, False, False, False]] + [[False] * 5] * 2), 0.5)
def test_top_entropy_mask(ent, m, rho):
    """Exactly k tokens, each of higher entropy than every unselected valid token, for any distinct float64."""
    got = top_entropy_mask(t(ent), torch.from_numpy(m), rho).numpy()
    n = int(m.sum())
    k = 0 if n == 0 else min(n, max(1, math.ceil(rho * n - 1e-9)))
    assert got.sum() == k and not (got & ~m).any()
    if 0 < k < n:  # every selected valid token has higher entropy than every unselected valid one
        assert ent[got].min() > ent[m & ~got].max()


# ---------------------------------------------------------------------------------------- Clip-/KL-Cov
def np_cov(lp, adv, m):
    v = m.astype(bool)
    lpm, am = lp[v].mean(), adv[v].mean()
    return np.where(v, (lp - lpm) * (adv - am), 0.0)


@given(tok, tok, masks.filter(lambda m: m.any()))
def test_token_covariance_matches_numpy(lp, adv, m):
    got = token_covariance(t(lp), t(adv), torch.from_numpy(m)).numpy()
    np.testing.assert_allclose(got, np_cov(lp, adv, m), atol=1e-5, rtol=1e-5)
    # its token mean is the batch covariance (numpy, population)
    assert got[m].mean() == pytest.approx(np.cov(lp[m], adv[m], bias=True)[0, 1], abs=1e-5)


@given(hnp.arrays(np.float64, BT, elements=floats, unique=True), tok, masks.filter(lambda m: m.any()),
       st.floats(0.01, 1.0))
@example(  # found un-derandomized: log-probs 0 and 3.7e-9 give covariances 1.5e-9 apart, a tie in float32
    np.array([[2.0, -1.0, -0.75, 0.0, 3.70917497e-09], [-0.5, 1.0, 3.0, 0.5, -2.0],
              [-3.0, -1.5, -1.25, -2.5, 2.22044605e-16]]),
    np.array([[0.0, 0, 0, 1, 1], [1, 0, 0, 1, 0], [1, 1, 1, 1, 1]]), np.ones(BT, dtype=bool), 0.375)
def test_kl_cov_selects_top_covariance(lp, adv, m, frac):
    got = kl_cov_mask(t(lp), t(adv), torch.from_numpy(m), top_frac=frac).numpy()
    n = int(m.sum())
    k = min(n, max(1, int(frac * n)))
    cov = np_cov(lp, adv, m)
    assert got.sum() == k and not (got & ~m).any()
    if k < n:
        # token_covariance works in float32 (its contract): terms within float32 rounding of each other are a tie
        tol = 1e-6 * (1.0 + np.abs(cov).max())
        assert cov[got].min() >= cov[m & ~got].max() - tol


@given(tok, tok, masks.filter(lambda m: m.any()), st.floats(0.01, 1.0), st.integers(0, 3))
def test_clip_cov_draws_only_band_candidates(lp, adv, m, ratio, seed):
    cov = np_cov(lp, adv, m)
    excl = np.zeros(BT, dtype=bool)
    excl[0, 0] = True
    got = clip_cov_mask(t(lp), t(adv), torch.from_numpy(m), clip_ratio=ratio, cov_lb=0.1, cov_ub=2.0,
                        generator=torch.Generator().manual_seed(seed), exclude=torch.from_numpy(excl)).numpy()
    cand = m & (cov > 0.1) & (cov < 2.0) & ~excl
    n_pick = 0 if not cand.any() else min(int(cand.sum()), max(1, int(ratio * m.sum())))
    assert got.sum() == n_pick and not (got & ~cand).any()

"""The clip study (toy.experiments.clipping): coin-flip rewards, the t test and Holm, and verdicts that can fail."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aent.config import EntropyConfig
from toy.experiments.clipping import CLAIMS, CoinFlipRewards, claim_status, judge_clipping, min_effect
from toy.experiments.paired_t import holm, t_ppf, t_sf, t_test
from toy.pg_trainer import ToyTrainConfig, train_bandit

# ------------------------------------------------------------------------------------------ the coin-flip reward


class _Recorder:
    """Wraps a reward callable and keeps every (actions, rewards) pair the trainer asked for."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, step, actions):
        r = self.fn(step, actions)
        self.calls.append((actions.clone(), r.clone()))
        return r


def _train_recording(sample_rewards_for, n_seeds=64, n_arms=20, steps=30):
    """A peaked-policy PPO run (two clip arms x n_seeds) whose sampled rewards are recorded."""
    seeds = list(range(n_seeds)) * 2
    cfg = ToyTrainConfig(n_arms=n_arms, m_optimal=1, estimator="grpo", steps=steps, group_size=16, lr=2.0,
                      ppo_epochs=2, init="gaussian", init_scale=3.0, seed=5, track_clamped=False,
                      common_random_numbers=True)
    table = (torch.rand(n_seeds, n_arms, generator=torch.Generator().manual_seed(3)) < 0.5).float().repeat(2, 1)
    rec = _Recorder(sample_rewards_for(seeds, table))
    ecfgs = [EntropyConfig(method="none", eps_low=e, eps_high=1e6) for e in (1.0, 0.2) for _ in range(n_seeds)]
    run = train_bandit(cfg, rewards=table, row_seeds=seeds, entropy_cfgs=ecfgs, sample_rewards=rec)
    return run, rec, table


def _reward_action_stats(rec, table):
    """Mean reward, and its correlation with a better-than-average arm being drawn (the table's value of it)."""
    actions = torch.cat([a for a, _ in rec.calls]).double()
    rewards = torch.cat([r for _, r in rec.calls]).double().flatten()
    rows = torch.arange(len(table))[:, None].expand(-1, actions.shape[1]).repeat(len(rec.calls), 1)
    good = table[rows.flatten(), actions.long().flatten()].double()
    corr = float(np.corrcoef(rewards.numpy(), good.numpy())[0, 1])
    return float(rewards.mean()), corr, len(rewards)


def test_coin_flip_rewards_are_fair_and_independent_of_the_action():
    """Mean 1/2 and zero correlation with the drawn arm's quality, each within 4 standard errors
    (a false failure has probability ~6e-5 per check), on the rewards the trainer actually used."""
    run, rec, table = _train_recording(lambda seeds, _: CoinFlipRewards(seeds, seed=11))
    mean, corr, n = _reward_action_stats(rec, table)
    assert set(torch.cat([r for _, r in rec.calls]).unique().tolist()) <= {0.0, 1.0}
    assert abs(mean - 0.5) < 4 * 0.5 / math.sqrt(n)
    assert abs(corr) < 4 / math.sqrt(n)
    # the trainer used these rewards: its per-step reward_mean is their mean
    assert [m["reward_mean"] for m in run.metrics] == pytest.approx([float(r.mean()) for _, r in rec.calls])


def test_the_independence_check_detects_action_dependent_rewards():
    """The same statistic on the learnable table (reward = the drawn arm's quality) is far outside the tolerance,
    so the check above can fail."""
    _, rec, table = _train_recording(lambda seeds, tab: (lambda step, actions: tab.gather(1, actions)))
    _, corr, n = _reward_action_stats(rec, table)
    assert corr > 0.9 > 4 / math.sqrt(n)


def test_coin_flips_pair_rows_of_a_seed_and_are_reproducible():
    seeds = [4, 9, 4, 9, 4]
    flips = CoinFlipRewards(seeds, seed=2)
    actions = torch.zeros(5, 32, dtype=torch.long)
    a, b = flips(3, actions), flips(3, torch.randint(0, 7, (5, 32)))
    assert torch.equal(a, b), "the actions do not enter"
    assert torch.equal(a[0], a[2]) and torch.equal(a[0], a[4]) and torch.equal(a[1], a[3])
    assert not torch.equal(a[0], a[1]) and not torch.equal(a, flips(4, actions))
    assert torch.equal(a, CoinFlipRewards(seeds, seed=2)(3, actions))
    with pytest.raises(ValueError, match="actions"):
        flips(0, torch.zeros(4, 3, dtype=torch.long))


def test_sample_rewards_need_a_sampled_estimator():
    cfg = ToyTrainConfig(n_arms=5, estimator="exact", steps=1, n_seeds=2)
    with pytest.raises(ValueError, match="sample_rewards"):
        train_bandit(cfg, sample_rewards=CoinFlipRewards([0, 1], seed=0))


# -------------------------------------------------------------------------------------------------- verdicts
def _synthetic(low_minus_high: float, noise: float = 0.05, n: int = 32, seed: int = 0):
    """Mechanism and clipping blocks in which clip_low's mean entropy exceeds clip_high's by ``low_minus_high``
    and no_clip lies halfway between them, with per-seed noise."""
    rng = np.random.default_rng(seed)
    base = 1.0 + rng.normal(0, 0.3, n)
    arms = {"no_clip": base, "clip_low": base + low_minus_high / 2 + rng.normal(0, noise, n),
            "clip_high": base - low_minus_high / 2 + rng.normal(0, noise, n)}
    arms["both"] = base
    setting = {"label": "synthetic", "seeds": [0, n - 1], "steps": [0, 1], "initial_entropy_mean": 1.0,
               "arms": {k: {"mean_per_seed": v.tolist(), "final_entropy_mean": float(v.mean())} for k, v in arms.items()}}
    sign = np.sign(low_minus_high) or 1.0
    mech = {"clip_low_effect": (sign * (0.05 + rng.normal(0, 0.01, 40))).tolist(),
            "clip_high_effect": (-sign * (0.05 + rng.normal(0, 0.01, 40))).tolist()}
    clip = {"min_effect": min_effect(200), "coin_flip": setting, "learnable": setting}
    return mech, clip


@pytest.mark.parametrize(("effect", "want"), [(+0.5, "held"), (-0.5, "did not hold"), (0.0, "did not hold")])
def test_verdicts_follow_the_data_and_fail_when_the_claim_is_false(effect, want):
    """A synthetic result where clip-low keeps less entropy (or the same) gives "did not hold" for every training
    claim and, with reversed per-update effects, for the per-update claims; the true one gives "held"."""
    verdicts = judge_clipping(*_synthetic(effect), eps=0.2, epochs=4)
    assert len(verdicts) == len(CLAIMS) == 8
    if effect == 0.0:
        verdicts = [v for v, c in zip(verdicts, CLAIMS) if c[1] is not None]  # per-update effects keep a sign
    assert {v["verdict"] for v in verdicts} == {want}
    assert all(v["claim"].startswith("[") for v in verdicts), "every claim names its setting"


def test_an_effect_below_the_smallest_effect_of_interest_is_not_held():
    """Clip-low above clip-high by half the smallest effect of interest, measured very precisely: significant,
    yet "did not hold", because an effect of delta is excluded."""
    mech, clip = _synthetic(min_effect(200) / 2, noise=1e-4, n=64)
    verdicts = judge_clipping(mech, clip, eps=0.2, epochs=4)
    low_high = verdicts[[c[0] for c in CLAIMS].index("coin_flip_clip_low_vs_clip_high")]
    assert low_high["verdict"] == "did not hold"


def test_claim_status_rule():
    t = {"mean": 0.3, "ci_low": 0.1, "ci_high": 0.5}
    assert claim_status(t, 0.05, 0.01) == "held"
    assert claim_status(t, 0.05, 0.2) == "inconclusive", "Holm-adjusted p too large"
    assert claim_status(t, 0.6, 0.01) == "did not hold"
    assert claim_status({"mean": 0.04, "ci_low": -0.1, "ci_high": 0.18}, 0.05, 0.5) == "inconclusive"


# --------------------------------------------------------------------------------- t distribution and Holm
def _mp_sf(t: float, dof: float) -> float:
    with mpmath.workdps(50):  # x in 50 digits: in floats it rounds to 1 near t = 0
        tm, dm = mpmath.mpf(t), mpmath.mpf(dof)
        tail = mpmath.betainc(dm / 2, 0.5, 0, dm / (dm + tm * tm), regularized=True) / 2
        return float(tail if t >= 0 else 1 - tail)


@settings(max_examples=200, deadline=None)
@given(st.floats(-60, 60), st.floats(0.5, 5000))
def test_t_sf_matches_mpmath(t, dof):
    ref = _mp_sf(t, dof)
    assert math.isclose(t_sf(t, dof), ref, rel_tol=1e-9, abs_tol=1e-300)


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e3, 1e3))
def test_t_sf_closed_forms_at_one_and_two_dof(t):
    assert math.isclose(t_sf(t, 1), 0.5 - math.atan(t) / math.pi, rel_tol=1e-10, abs_tol=1e-15)
    assert math.isclose(t_sf(t, 2), 0.5 - t / (2 * math.sqrt(2 + t * t)), rel_tol=1e-9, abs_tol=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.51, 0.9999), st.integers(1, 3000))
def test_t_ppf_inverts_t_sf(q, dof):
    assert math.isclose(1 - t_sf(t_ppf(q, dof), dof), q, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=40).filter(lambda x: np.std(x) > 1e-6))
def test_t_test_interval_and_p_come_from_the_same_test(d):
    """p < 0.05 exactly when the 95% interval excludes 0 (away from the boundary), and p from mpmath."""
    t = t_test(d)
    stat = abs(t["mean"]) / t["se"]
    assert math.isclose(t["p"], min(1.0, 2 * _mp_sf(stat, len(d) - 1)), rel_tol=1e-8, abs_tol=1e-300)
    excludes = t["ci_low"] > 0 or t["ci_high"] < 0
    if abs(t["p"] - 0.05) > 1e-9:
        assert (t["p"] < 0.05) == excludes


def test_t_test_hand_case():
    # d = 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), se sqrt(5/12), t = 2.5 / se = 3.873 on 3 dof
    t = t_test([1, 2, 3, 4])
    se = math.sqrt(5 / 12)
    assert t["se"] == pytest.approx(se)
    assert t["ci_high"] - t["mean"] == pytest.approx(3.182446305284263 * se, rel=1e-9)  # t_{0.975, 3}
    assert t["p"] == pytest.approx(2 * _mp_sf(2.5 / se, 3), rel=1e-9)
    with pytest.raises(ValueError, match="d must"):
        t_test([1.0])


def _holm_reference(p, alpha):
    """Holm's step-down procedure as a rejection rule: walk up the sorted p while p_(i) <= alpha / (m - i)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected.add(i)
    return rejected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_as_the_step_down_procedure(p, alpha):
    adj = holm(p)
    assert all(a >= q - 1e-15 and a <= 1 for a, q in zip(adj, p))
    mine = {i for i, a in enumerate(adj) if a <= alpha}
    ref = _holm_reference(p, alpha)
    boundary = any(abs(q * k - alpha) < 1e-12 for q in p for k in range(1, len(p) + 1))
    if not boundary:
        assert mine == ref

"""The trap trainers drive every method's controller with the signal its registry entry names (aent.methods).

Reference: the controllers' update rules written out here (Skywork-OR1's threshold rule, SAC's step on log lambda),
applied to the entropy the trainer recorded for the policy that drew each step; one step per record
(record_every=1). The bandit records the exact entropy of the policy that drew step t at step t; the tree records
the token mean over step t's samples at step t + 1.
"""

from __future__ import annotations

import math

import pytest

from aent import EntropyConfig
from aent.methods import METHOD_SPECS
from toy.trap_bandit import TrapBanditConfig, bonus_kinds, make_layout, train_trap_bandit
from toy.trap_tree import TrapTreeConfig, make_tree_layout, train_trap_tree

BANDIT = TrapBanditConfig(n_arms=3000, steps=25, record_every=1, lr=4.0)
TREE = TrapTreeConfig(vocab=20, horizon=2, opt_rank_hi=10, update="sgd", lr=4.0, steps=25, record_every=1)


def _threshold(coef, h, cfg):
    """(state coef, applied coef) after measuring h: coef +- delta in the box; applied only while h <= target."""
    coef = min(cfg.coef_max, max(cfg.coef_min, coef + (cfg.coef_delta if h <= cfg.target_entropy else -cfg.coef_delta)))
    return coef, coef if h <= cfg.target_entropy else 0.0


def _sac(coef, h, cfg):
    log_c = math.log(coef) - cfg.coef_lr * (h - cfg.target_entropy)
    return min(cfg.coef_max, max(cfg.coef_min, math.exp(log_c)))


def _run(domain, ecfgs):
    rows = [(0, 2)] * len(ecfgs)
    if domain == "bandit":
        return train_trap_bandit(BANDIT, make_layout(BANDIT, rows), [0] * len(rows), ecfgs), 0
    return train_trap_tree(TREE, make_tree_layout(TREE, rows), [0] * len(rows), ecfgs), 1


@pytest.mark.parametrize("domain", ["bandit", "tree"])
def test_threshold_and_sac_follow_their_rule_on_the_recorded_entropy(domain):
    probe, lag = _run(domain, [EntropyConfig(method="none")])
    h0 = sorted(probe.entropy[lag:, 0].tolist())
    mid = len(h0) // 2
    target = (h0[mid - 1] + h0[mid]) / 2  # between two entropies of an uncontrolled run: both branches occur
    thr = EntropyConfig(method="threshold", ent_coef=0.0, target_entropy=target, coef_delta=0.01, coef_min=0.0,
                        coef_max=0.05)
    sac = EntropyConfig(method="sac", ent_coef=0.02, target_entropy=target, coef_lr=0.5, coef_min=1e-3,
                        coef_max=0.5)
    run, lag = _run(domain, [thr, sac])
    assert METHOD_SPECS["threshold"].signal == "sampled_entropy" and METHOD_SPECS["sac"].signal == "entropy"
    coef, ent = run.ent_coef.double(), run.entropy.double()
    state, branches = thr.ent_coef, set()
    for t in range(BANDIT.steps - lag):
        h = float(ent[t + lag, 0])
        assert abs(h - target) > 1e-6, "the float32 record must not hide the branch"
        branches.add(h <= target)
        state, applied = _threshold(state, h, thr)
        assert float(coef[t + 1, 0]) == pytest.approx(applied, abs=1e-7)
        h = float(ent[t + lag, 1])
        assert float(coef[t + 1, 1]) == pytest.approx(_sac(float(coef[t, 1]), h, sac), rel=1e-5)
    assert branches == {True, False}


def test_methods_beyond_the_bonus_are_refused_by_name():
    methods = ("none", "entropy_bonus", "clamped_bonus", "aent", "sac", "threshold")
    assert bonus_kinds([EntropyConfig(method=m) for m in methods]) == [None, "full", "clamped", "clamped", "full",
                                                                       "full"]
    for method in (m for m, s in METHOD_SPECS.items() if not s.bonus_only):
        with pytest.raises(ValueError, match=f"ecfgs methods must be in .*got '{method}'"):
            bonus_kinds([EntropyConfig(method=method)])

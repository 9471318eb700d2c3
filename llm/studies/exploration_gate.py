"""The premise gate of the exploration study: is a level a trap for GRPO, with the skill still there?

A claim about escaping a trap is tested only where there is a trap (docs/shared DESIGN: "A claim is tested where
its premise holds (gated on the baseline alone) and reported 'premise absent' elsewhere"). At each level the gate
looks at GRPO alone, on selection seeds only (disjoint from every verdict seed), and at the starting policy:

1. **trapped**: GRPO fails to escape within the budget in most selection runs (strictly more than half);
2. **skill present** on the starting policy: the first worked token forced, its accuracy is at least
   ``min_forced_accuracy`` and beats the unforced (mostly bare) accuracy by ``min_forced_margin``; and
   pass@k over worked-style forced samples is at least ``min_worked_pass``.

A level that fails either part is reported "premise absent", never as a verdict on a method.

**Escape** (the same criterion for every arm, the ``escaped`` field of summary.json): the share of the step's
rollout samples that start a worked line, averaged over the last ``final_window`` steps of the budget, is at
least ``escape_share``. The **step of escape** is the first step whose trailing ``final_window``-step mean reaches
``escape_share`` (None if none does).

How the constants were set, before any run of the study (from the probe in issue 23, one seed per level, 150
GRPO steps at 8 prompts x 8 samples): ``escape_share`` 0.1 is the issue's own example; a trapped probe run stayed
near q0 ~ 1e-3, an escaped one went to the worked style at steps 21-85, so 0.1 (about six worked samples per step)
separates them with a wide margin. The budget (150 steps at 8 x 8) is the probe's. The skill thresholds lie below
the probe's retained skill (forced accuracy 0.58-0.73) and far above its destroyed skill (0.03 at the warm start's
lr): 0.4; the margin 0.1 makes the rewarded style pay more than the bare one; ``min_worked_pass`` 0.75 asks that
most prompts have a correct worked sample among k = 8.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["GateRule", "escape_step", "escaped", "final_worked_share", "gate_level", "skill_present"]


@dataclass(frozen=True)
class GateRule:
    """Escape criterion, budget and skill thresholds of the premise gate (fixed before the first run)."""

    budget_steps: int = 150
    """GRPO steps per run (>= 1); 8 prompts x 8 samples per step (configs/exploration.yaml)."""
    escape_share: float = 0.1
    """A run escaped when its final worked-style share is at least this (in (0, 1))."""
    final_window: int = 10
    """Steps averaged for the final share and for the trailing mean that dates the escape (>= 1)."""
    min_forced_accuracy: float = 0.4
    """Skill: accuracy with the first worked token forced, at least this (in [0, 1])."""
    min_forced_margin: float = 0.1
    """Skill: forced accuracy minus the unforced sampled accuracy, at least this."""
    min_worked_pass: float = 0.75
    """Skill: pass@k over worked-style forced samples, at least this (in [0, 1])."""

    def __post_init__(self) -> None:
        from aent.validation import check

        p = "GateRule."
        check(self.budget_steps >= 1, "budget_steps", ">= 1", self.budget_steps, p)
        check(0 < self.escape_share < 1, "escape_share", "in (0, 1)", self.escape_share, p)
        check(self.final_window >= 1, "final_window", ">= 1", self.final_window, p)
        check(0 <= self.min_forced_accuracy <= 1, "min_forced_accuracy", "in [0, 1]", self.min_forced_accuracy, p)
        check(-1 <= self.min_forced_margin <= 1, "min_forced_margin", "in [-1, 1]", self.min_forced_margin, p)
        check(0 <= self.min_worked_pass <= 1, "min_worked_pass", "in [0, 1]", self.min_worked_pass, p)


def _shares(rows: Sequence[Mapping]) -> list[float]:
    return [float(r["worked_share"]) for r in rows if r.get("step", 0) >= 1 and "worked_share" in r]


def final_worked_share(rows: Sequence[Mapping], rule: GateRule = GateRule()) -> float:
    """Mean rollout worked-style share over the last ``final_window`` steps of a run's metrics rows."""
    s = _shares(rows)
    if not s:
        raise ValueError("final_worked_share: no metrics row has worked_share (was the exploration hook on?)")
    tail = s[-rule.final_window:]
    return sum(tail) / len(tail)


def escaped(rows: Sequence[Mapping], rule: GateRule = GateRule()) -> bool:
    """Did the run escape the trap (final worked share >= escape_share)?"""
    return final_worked_share(rows, rule) >= rule.escape_share


def escape_step(rows: Sequence[Mapping], rule: GateRule = GateRule()) -> int | None:
    """First step whose trailing ``final_window``-step mean worked share reaches ``escape_share``; None if none."""
    steps = [int(r["step"]) for r in rows if r.get("step", 0) >= 1 and "worked_share" in r]
    s = _shares(rows)
    for i in range(len(s)):
        window = s[max(0, i - rule.final_window + 1): i + 1]
        if sum(window) / len(window) >= rule.escape_share:
            return steps[i]
    return None


def skill_present(start: Mapping, rule: GateRule = GateRule()) -> tuple[bool, list[str]]:
    """Does the starting policy (:func:`measure_start`'s dict) still have the skill? (ok, reasons it fails)."""
    why = []
    if start["forced_accuracy"] < rule.min_forced_accuracy:
        why.append(f"forced accuracy {start['forced_accuracy']:.3f} < {rule.min_forced_accuracy}")
    margin = start["forced_accuracy"] - start["sampled_mean_at_k"]
    if margin < rule.min_forced_margin:
        why.append(f"forced minus unforced accuracy {margin:.3f} < {rule.min_forced_margin}")
    if start["worked_pass_at_k"] < rule.min_worked_pass:
        why.append(f"worked pass@k {start['worked_pass_at_k']:.3f} < {rule.min_worked_pass}")
    return not why, why


def gate_level(starts: Sequence[Mapping], grpo_escaped: Sequence[bool], rule: GateRule = GateRule()) -> dict:
    """The gate of one level from its selection starting policies and GRPO's selection runs.

    Args:
        starts: :func:`measure_start` dicts of the level's selection warm starts (the skill must be present in
            every one).
        grpo_escaped: per selection run of GRPO, whether it escaped.
        rule: the thresholds.

    Returns:
        ``{"premise": "holds" | "absent", "trapped_runs", "runs", "skill": [...], "reasons": [...]}``.
    """
    if not starts or not grpo_escaped:
        raise ValueError("gate_level needs at least one starting policy and one GRPO selection run")
    reasons = []
    trapped = sum(not e for e in grpo_escaped)
    if not trapped > len(grpo_escaped) / 2:
        reasons.append(f"GRPO escaped in {len(grpo_escaped) - trapped} of {len(grpo_escaped)} selection runs "
                       "(no trap)")
    skills = [skill_present(s, rule) for s in starts]
    for ok, why in skills:
        if not ok:
            reasons.extend(f"skill lost: {w}" for w in why)
    return {"premise": "absent" if reasons else "holds", "trapped_runs": trapped, "runs": len(grpo_escaped),
            "skill": [ok for ok, _ in skills], "reasons": reasons}

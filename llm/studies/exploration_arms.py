"""The arms of the exploration study, each a function of the calibration of its starting policy.

No constant of an entropy arm is chosen here or from an outcome: every one comes from ``aent calibrate``
(:mod:`llm.calibrate`, the rule of :mod:`aent.calibration`), run on the starting policy of the arm's own level and
warm start, for the run's budget. The arms (issue 23, deliverable 3):

=================  ==========================================================================================
``grpo``           no entropy term (the baseline, the only arm the premise gate looks at)
``bonus_lam0``     fixed full-vocabulary bonus, coefficient = the calibrated lambda0
``bonus_cap``      fixed full-vocabulary bonus, coefficient = the calibrated cap (top of AEnt's box)
``clamped_bonus``  fixed clamped bonus, coefficient lambda0, clamp p = the calibrated p
``aent_paper_p``   AEnt (arXiv 2509.03493, Alg. 1) with the paper's p = 0.33; band, box, lambda0 and beta
                   calibrated for that p
``aent_cal_p``     AEnt with the calibrated p and its band, box, lambda0 and beta
=================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ARMS", "PAPER_P", "ArmConstants", "arm_control", "arm_overrides", "calibrated_aent_overrides",
           "needs_calibration"]

ARMS = ("grpo", "bonus_lam0", "bonus_cap", "clamped_bonus", "aent_paper_p", "aent_cal_p")
PAPER_P = 0.33
"""The clamp fraction the AEnt authors used for Qwen2.5-Math-1.5B (arXiv 2509.03493)."""


@dataclass(frozen=True)
class ArmConstants:
    """AEnt's constants for one starting policy, budget and clamp p (what ``aent calibrate`` proposes)."""

    ent_coef: float
    """lambda0, the starting coefficient (> 0)."""
    coef_min: float
    """Bottom of the box (> 0)."""
    coef_max: float
    """Top of the box, the cap (>= ent_coef)."""
    band_low: float
    """Lower end of the clamped-entropy band, nats (>= 0)."""
    band_high: float
    """Upper end of the band (>= band_low)."""
    coef_lr: float
    """beta, the controller's step size (>= 0)."""
    clamp_p: float
    """Fraction of the vocabulary the clamped entropy removes, in [0, 1)."""
    warmup: int = 0
    """Steps before the controller moves (>= 0)."""

    def __post_init__(self) -> None:
        from aent.validation import check

        p = "ArmConstants."
        check(self.coef_min > 0, "coef_min", "> 0", self.coef_min, p)
        check(self.coef_min <= self.ent_coef <= self.coef_max, "ent_coef", f"in [{self.coef_min}, "
              f"{self.coef_max}]", self.ent_coef, p)
        check(0 <= self.band_low <= self.band_high, "band_low", f"in [0, band_high={self.band_high}]",
              self.band_low, p)
        check(self.coef_lr >= 0, "coef_lr", ">= 0", self.coef_lr, p)
        check(0 <= self.clamp_p < 1, "clamp_p", "in [0, 1)", self.clamp_p, p)
        check(self.warmup >= 0, "warmup", ">= 0", self.warmup, p)

    @classmethod
    def from_calibration(cls, cal: Any) -> ArmConstants:
        """From a calibration result: an object or a mapping with the EntropyConfig field names."""
        get = cal.get if isinstance(cal, Mapping) else (lambda k: getattr(cal, k))
        return cls(**{k: get(k) for k in ("ent_coef", "coef_min", "coef_max", "band_low", "band_high", "coef_lr",
                                           "clamp_p", "warmup")})


def needs_calibration(arm: str) -> float | None:
    """The clamp p an arm must be calibrated for: PAPER_P, or None = the calibrated p; raises for grpo."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(ARMS)}")
    if arm == "grpo":
        raise ValueError("grpo has no entropy constants")
    return PAPER_P if arm == "aent_paper_p" else None


def arm_overrides(arm: str, c: ArmConstants | None) -> list[str]:
    """Trainer overrides of ``arm`` from the constants calibrated for it (None for grpo)."""
    if arm == "grpo":
        return ["entropy.method=none"]
    needs_calibration(arm)
    if c is None:
        raise ValueError(f"arm {arm!r} needs calibrated constants")
    if arm == "bonus_lam0":
        return ["entropy.method=entropy_bonus", f"entropy.ent_coef={c.ent_coef}"]
    if arm == "bonus_cap":
        return ["entropy.method=entropy_bonus", f"entropy.ent_coef={c.coef_max}"]
    if arm == "clamped_bonus":
        return ["entropy.method=clamped_bonus", f"entropy.ent_coef={c.ent_coef}", f"entropy.clamp_p={c.clamp_p}"]
    return ["entropy.method=aent", f"entropy.ent_coef={c.ent_coef}", f"entropy.clamp_p={c.clamp_p}",
            f"entropy.band_low={c.band_low}", f"entropy.band_high={c.band_high}", f"entropy.coef_lr={c.coef_lr}",
            f"entropy.coef_min={c.coef_min}", f"entropy.coef_max={c.coef_max}", f"entropy.warmup={c.warmup}"]


def calibrated_aent_overrides(calibration: Mapping) -> list[str]:
    """The trainer overrides of AEnt (``aent_cal_p``) at the constants of a calibration record (the mapping
    ``aent calibrate --json`` and ``calibrate_start`` write, with its ``constants``)."""
    return arm_overrides("aent_cal_p", ArmConstants(**calibration["constants"]))


def arm_control(arm: str, c: ArmConstants | None) -> dict:
    """What the run record needs to judge the controller: the band, the box and the warm-up (AEnt arms only)."""
    if arm.startswith("aent") and c is not None:
        return {"band": [c.band_low, c.band_high], "box": [c.coef_min, c.coef_max], "warmup": c.warmup,
                "start": c.ent_coef}
    return {}

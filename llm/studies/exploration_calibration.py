"""AEnt's constants for one level and warm start of the exploration study: ``aent calibrate`` on its start.

The rule is :func:`aent.calibration.propose` (the authors' proportions; docs/calibrate.md) applied to what
:func:`llm.calibrate.calibrate` measures on the starting policy of the level and warm start, on the step-1 rollout
batch of run seed :data:`CALIBRATION_SEED`, for the study's budget. Nothing here looks at a run's outcome.
"""

from __future__ import annotations

from dataclasses import replace

__all__ = ["CALIBRATION_SEED", "calibrate_start"]

CALIBRATION_SEED = 0
"""Run seed whose step-1 batch the calibration measures (a fixed rule; the batch is drawn before any update)."""


def calibrate_start(cfg, clamp_p: float | None = None, config_name: str = "exploration") -> dict:
    """Calibrate AEnt for the starting policy and budget of ``cfg``.

    Args:
        cfg: the run's ``llm.config.TrainConfig`` (level, warm start and budget already applied).
        clamp_p: fix p (the paper's 0.33 for ``aent_paper_p``); None lets the rule choose it.
        config_name: how the calibration names the config.

    Returns:
        ``{"constants": {ent_coef, coef_min, coef_max, band_low, band_high, coef_lr, clamp_p, warmup},
        "measurements": {...}, "rules": [...], "warnings": [...], "steps", "batch", "machine", "seconds"}``.
    """
    from llm.calibrate import calibrate

    return calibrate(replace(cfg, seed=CALIBRATION_SEED), steps=cfg.max_steps, clamp_p=clamp_p,
                     config_name=config_name).record()

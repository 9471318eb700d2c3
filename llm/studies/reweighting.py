"""Study ``reweighting``: positive-advantage tokens drive entropy collapse; re-weighting them regulates entropy.

Finding 4 of "Revisiting Entropy in RL for Large Reasoning Models" (arXiv 2511.05993): tokens with A > 0 lower
the entropy (the covariance mechanism of arXiv 2505.22617, logged per step as ``dh_pos`` / ``cov_dh_pos``), so
scaling their loss by w+ < 1 keeps entropy higher. Arms: GRPO (w+ = 1), fixed w+ = 0.5, scheduled (the paper's
stage-based upward schedule: w+ = 0 for the first half of the run, then linear to 1), entropy-guided (from w+ = 0,
as in the paper; w+ -/+ 0.05 per step while entropy is below / above a target) and AEnt (arXiv 2509.03493).
The paper's epoch-wise schedule (w+ = (e - 1) / (E - 1)) is ``entropy.pos_weight_mode=epoch``; it is left out here
to keep the study's budget. The entropy-guided target is the GRPO arm's step-1 entropy (measured before any update
on the batch every arm shares, so no outcome enters it).

AEnt's constants follow one rule with the main job (``configs/reproduce/default.yaml``). The main job calibrates
its AEnt label (``llm.calibrated``), so this arm does too: the constants ``aent calibrate`` proposes on this
study's starting policy for this study's budget, on run seed 0's step-1 batch
(:func:`llm.studies.exploration_calibration.calibrate_start`), computed when the arm's runs start. Were the main
job's AEnt label not calibrated, the arm would take its overrides with the warm-up scaled to the same fraction of
this run. Nothing here is chosen from this study's results.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llm.studies.spec import Arm, Claim, Study


def _step1(runs, key: str) -> float:
    vals = [rows[0][key] for rows in runs.get("grpo", []) if rows and isinstance(rows[0].get(key), (int, float))]
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def main_job_aent(cfg) -> tuple[str, ...] | Callable[[], tuple[str, ...]]:
    """AEnt's overrides by the main job's rule for a run of ``cfg``: calibrated on ``cfg``'s starting policy and
    budget when the main job calibrates its AEnt label (a callable, run when the arm starts), else the main job's
    overrides with the warm-up scaled to ``cfg.max_steps`` by the main job's warm-up fraction."""
    import yaml

    import aent_configs
    from aent.config import EntropyConfig
    from llm.config import load_config

    data = yaml.safe_load(aent_configs.resolve("reproduce/default", folder="reproduce").read_text())["llm"]
    if "aent" in (data.get("calibrated") or ()):
        return lambda: calibrated_aent(cfg)
    overrides = [str(o) for o in data["methods"]["aent"]]
    main_steps = load_config(data.get("config", "tiny"), [str(o) for o in data.get("overrides") or []]).max_steps
    warm = next((int(o.split("=", 1)[1]) for o in overrides if o.startswith("entropy.warmup=")),
                EntropyConfig().warmup)
    scaled = round(warm * cfg.max_steps / main_steps)
    return (*[o for o in overrides if not o.startswith("entropy.warmup=")], f"entropy.warmup={scaled}")


def calibrated_aent(cfg) -> tuple[str, ...]:
    """The overrides of AEnt with the constants ``aent calibrate`` proposes for ``cfg`` (the main job's rule)."""
    from llm.studies.exploration_arms import calibrated_aent_overrides
    from llm.studies.exploration_calibration import calibrate_start

    return tuple(calibrated_aent_overrides(calibrate_start(cfg, config_name="reweighting")))


def arms(cfg, runs) -> list[Arm]:
    """GRPO first: the entropy-guided arm reads its target from its step-1 entropy."""
    h0 = _step1(runs, "entropy_before")
    h0 = h0 if math.isfinite(h0) else 0.5
    pr = "entropy.method=pos_reweight"
    return [
        Arm("grpo", (pr, "entropy.pos_weight=1.0")),
        Arm("w0.5", (pr, "entropy.pos_weight=0.5")),
        Arm("scheduled", (pr, "entropy.pos_weight=0.0", "entropy.pos_weight_mode=stage",
                          "entropy.pos_weight_final=1.0", f"entropy.pos_weight_steps={cfg.max_steps}")),
        Arm("entropy_guided", (pr, "entropy.pos_weight=0.0", "entropy.pos_weight_mode=entropy",
                               f"entropy.target_entropy={h0:.4f}", "entropy.pos_weight_delta=0.05")),
        Arm("aent", main_job_aent(cfg)),
    ]


STUDY = Study(
    name="reweighting",
    title="Positive-advantage token re-weighting (arXiv 2511.05993, finding 4)",
    finding="Positive-advantage tokens drive entropy collapse; re-weighting their loss regulates entropy.",
    arms=arms,
    claims=[
        Claim("pos_tokens_measured", "On GRPO, the entropy at positive-advantage tokens falls after each update",
              "mean_dh_pos", "grpo", None, -1, "mean per-step entropy change at A > 0 tokens, GRPO (nats)",
              "entropy_per_step"),
        Claim("pos_tokens_predicted", "On GRPO, the covariance term of A > 0 tokens predicts an entropy drop",
              "mean_cov_dh_pos", "grpo", None, -1, "mean per-step -Cov contribution of A > 0 tokens, GRPO", "sign"),
        Claim("fixed", "Fixed w+ = 0.5 keeps entropy higher than GRPO", "entropy_change", "w0.5", "grpo", +1,
              "entropy change with w+ = 0.5 minus GRPO (nats)"),
        Claim("scheduled", "Stage-scheduled w+ (0, then up to 1) keeps entropy higher than GRPO", "entropy_change",
              "scheduled", "grpo", +1, "entropy change, scheduled w+ minus GRPO (nats)"),
        Claim("entropy_guided", "Entropy-guided w+ keeps entropy higher than GRPO", "entropy_change",
              "entropy_guided", "grpo", +1, "entropy change, entropy-guided w+ minus GRPO (nats)"),
        Claim("aent", "AEnt keeps entropy higher than GRPO", "entropy_change", "aent", "grpo", +1,
              "entropy change, AEnt minus GRPO (nats)"),
    ],
    smoke_arms=("grpo", "w0.5"),
)

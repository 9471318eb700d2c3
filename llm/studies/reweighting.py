"""Study ``reweighting``: positive-advantage tokens drive entropy collapse; re-weighting them regulates entropy.

Finding 4 of "Revisiting Entropy in RL for Large Reasoning Models" (arXiv 2511.05993): tokens with A > 0 lower
the entropy (the covariance mechanism of arXiv 2505.22617, logged per step as ``dh_pos`` / ``cov_dh_pos``), so
scaling their loss by w+ < 1 keeps entropy higher. Arms: GRPO (w+ = 1), fixed w+ = 0.5, scheduled (the paper's
stage-based upward schedule: w+ = 0 for the first half of the run, then linear to 1), entropy-guided (from w+ = 0,
as in the paper; w+ -/+ 0.05 per step while entropy is below / above a target) and AEnt (arXiv 2509.03493).
The paper's epoch-wise schedule (w+ = (e - 1) / (E - 1)) is ``entropy.pos_weight_mode=epoch``; it is left out here
to keep the study's budget. The entropy-guided target is the GRPO arm's step-1 entropy; the AEnt band is [0.85, 1.0]
times its step-1 clamped entropy (the paper's band is for Qwen2.5-Math-1.5B and means nothing for this model).
AEnt's coefficient box and step are scaled for a 30-step run (warm-up 0, beta 0.05, box [1e-3, 0.1]).
"""

from __future__ import annotations

import math

from llm.studies.spec import Arm, Claim, Study


def _step1(runs, key: str) -> float:
    vals = [rows[0][key] for rows in runs.get("grpo", []) if rows and isinstance(rows[0].get(key), (int, float))]
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def arms(cfg, runs) -> list[Arm]:
    """GRPO first: the entropy-guided and AEnt arms read their targets from its step-1 entropies."""
    h0, hc0 = _step1(runs, "entropy_before"), _step1(runs, "clamped_entropy")
    h0 = h0 if math.isfinite(h0) else 0.5
    hc0 = hc0 if math.isfinite(hc0) else 0.5
    pr = "entropy.method=pos_reweight"
    return [
        Arm("grpo", (pr, "entropy.pos_weight=1.0")),
        Arm("w0.5", (pr, "entropy.pos_weight=0.5")),
        Arm("scheduled", (pr, "entropy.pos_weight=0.0", "entropy.pos_weight_mode=stage",
                          "entropy.pos_weight_final=1.0", f"entropy.pos_weight_steps={cfg.max_steps}")),
        Arm("entropy_guided", (pr, "entropy.pos_weight=0.0", "entropy.pos_weight_mode=entropy",
                               f"entropy.target_entropy={h0:.4f}", "entropy.pos_weight_delta=0.05")),
        Arm("aent", ("entropy.method=aent", "entropy.ent_coef=0.01", "entropy.coef_min=0.001",
                     "entropy.coef_max=0.1", "entropy.coef_lr=0.05", "entropy.warmup=0",
                     f"entropy.band_low={0.85 * hc0:.4f}", f"entropy.band_high={hc0:.4f}")),
    ]


STUDY = Study(
    name="reweighting",
    title="Positive-advantage token re-weighting (arXiv 2511.05993, finding 4)",
    finding="Positive-advantage tokens drive entropy collapse; re-weighting their loss regulates entropy.",
    arms=arms,
    claims=[
        Claim("pos_tokens_measured", "On GRPO, the entropy at positive-advantage tokens falls after each update",
              "mean_dh_pos", "grpo", None, -1, "mean per-step entropy change at A > 0 tokens, GRPO (nats)"),
        Claim("pos_tokens_predicted", "On GRPO, the covariance term of A > 0 tokens predicts an entropy drop",
              "mean_cov_dh_pos", "grpo", None, -1, "mean per-step -Cov contribution of A > 0 tokens, GRPO"),
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

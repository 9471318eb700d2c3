"""Study ``diversity``: training on less diverse data lowers entropy.

Finding 2 of "Revisiting Entropy in RL for Large Reasoning Models" (arXiv 2511.05993): with the same number of
steps, a less diverse training set drives entropy lower. Arms draw every step's prompts from the first K training
problems only (K = all, 64, 8; with 8 prompts per step, K = 8 repeats the same 8 problems every step), from the
same warm-started policy (the warm start and the held-out set do not depend on K: only the RL prompt draw does).
"""

from __future__ import annotations

from llm.studies.spec import Arm, Claim, Study

POOLS = (0, 64, 8)


def arms(cfg, _runs) -> list[Arm]:
    """K = all training problems, 64, and one step's worth of prompts (at least 8)."""
    per = cfg.rollout.prompts_per_step
    return [Arm("all" if k == 0 else f"pool{max(k, per)}", (), 0 if k == 0 else max(k, per)) for k in POOLS]


STUDY = Study(
    name="diversity",
    title="Training-data diversity (arXiv 2511.05993, finding 2)",
    finding="Less diverse training data lowers entropy (same number of steps).",
    arms=arms,
    claims=[
        Claim("lowers", "Less diverse training data lowers entropy", "entropy_change", "pool8", "all", -1,
              "entropy change with 8 distinct problems minus with all problems (nats)"),
        Claim("lowers_64", "A 64-problem pool lowers entropy vs all problems", "entropy_change", "pool64", "all", -1,
              "entropy change with 64 problems minus with all (nats)"),
    ],
    smoke_arms=("all", "pool8"),
)

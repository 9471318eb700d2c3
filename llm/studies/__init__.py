"""Entropy-dynamics studies on the GRPO trainer: one sweep per finding of arXiv 2511.05993.

``python -m llm.studies NAME --out DIR [--smoke] [--seeds N] [--steps N]`` (NAME in :data:`STUDIES`) writes
``DIR/NAME.json`` (per-run metrics, per-arm summaries, generated verdicts) and ``DIR/NAME.png``.

``exploration`` (:mod:`llm.studies.exploration`, issue 23) has another shape (levels x warm starts x seeds x arms,
a premise gate, calibrated constants) and its own command line:
``python -m llm.studies exploration [--arms A,..] [--levels L,..] [--seeds S,..] --out DIR``.
"""

from __future__ import annotations

from llm.studies.exploration import Plan as ExplorationPlan
from llm.studies.exploration import run_exploration
from llm.studies.mechanism import covariance_split, measured_split
from llm.studies.registry import STUDIES
from llm.studies.runner import run_study
from llm.studies.spec import Arm, Claim, Study
from llm.studies.verdict import (
    VERDICTS,
    Hypothesis,
    Judgement,
    PairedTest,
    Verdict,
    coef_status,
    holm,
    judge_family,
    paired_t,
    paired_verdict,
    sign_flip,
    t_critical,
)


def study_main(argv: list[str] | None = None) -> int:
    """Command line ``NAME --out DIR [--smoke] [--seeds N] [--steps N] [--config FILE] [key=value ...]``."""
    from llm.studies.__main__ import main

    return main(argv)


__all__ = ["STUDIES", "VERDICTS", "Arm", "Claim", "ExplorationPlan", "Hypothesis", "Judgement", "PairedTest", "Study", "Verdict",
           "coef_status", "covariance_split", "holm", "judge_family", "measured_split", "paired_t", "paired_verdict",
           "run_exploration", "run_study", "sign_flip", "study_main", "t_critical"]

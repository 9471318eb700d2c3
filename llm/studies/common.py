"""The studies' shared machinery, gathered from its modules (one idea each):

- :mod:`llm.studies.spec`: :class:`Arm`, :class:`Claim`, :class:`Study` (what a sweep is);
- :mod:`llm.studies.hooks`: :class:`StudyHooks`, the trainer hooks that log the per-step mechanism metrics and
  draw prompts from a pool (``train(cfg, hooks=[...])``; nothing replaces the trainer's functions);
- :mod:`llm.studies.runner`: :func:`run_one`, :func:`base_overrides`, :func:`run_study` (arms x seeds);
- :mod:`llm.studies.summaries`: :data:`SUMMARIES` and :func:`summarise` (per-run numbers, mean and sd per arm);
- :mod:`llm.studies.report`: :func:`judge` (paired verdicts), :func:`plot_study`, :func:`record_markdown`.
"""

from __future__ import annotations

from llm.studies.hooks import StudyHooks
from llm.studies.report import judge, plot_study, record_markdown
from llm.studies.runner import base_overrides, run_one, run_study
from llm.studies.spec import DEFAULT_CONFIG, PLOT_KEYS, Arm, Claim, Study
from llm.studies.summaries import (
           SUMMARIES,
           entropy_change,
           eval_key,
           final_eval,
           mean_entropy_change,
           summarise,
)

__all__ = ["DEFAULT_CONFIG", "PLOT_KEYS", "SUMMARIES", "Arm", "Claim", "Study", "StudyHooks", "base_overrides",
           "entropy_change", "eval_key", "final_eval", "judge", "mean_entropy_change", "plot_study", "record_markdown",
           "run_one", "run_study", "summarise"]

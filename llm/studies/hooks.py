"""The studies' trainer hooks (:mod:`llm.hooks`): the per-step mechanism log and the prompt pool.

:class:`StudyHooks` adds to each step's metrics row (``metrics.jsonl``):

- ``entropy_before`` / ``entropy_after``: token-mean entropy of the step's rollout tokens under the policy before /
  after the step's updates; ``dh`` and its split ``dh_pos``, ``dh_neg``, ``dh_zero`` by advantage sign
  (:func:`llm.studies.mechanism.measured_split`);
- the first-order prediction ``cov_dh``, ``cov_dh_pos``, ``cov_dh_neg``, ``cov_dh_zero``, ``cov_pos_share``,
  ``adv_pos_frac`` (:func:`llm.studies.mechanism.covariance_split`);

and, with ``prompt_pool = K > 0`` (the diversity study), draws each step's prompts from the first K training
problems only (the same seeded order as the trainer's, over K problems), leaving the warm start and the held-out
set untouched.
"""

from __future__ import annotations

import torch

from llm.hooks import Hooks, Run, StepState
from llm.studies.mechanism import covariance_split, measured_split

__all__ = ["StudyHooks", "token_entropies"]


def token_entropies(run: Run, batch: dict) -> torch.Tensor:
    """(N, Tc) entropies of the batch's completion tokens under the current policy (no gradient)."""
    from llm.policy import completion_stats

    cfg = run.cfg
    with torch.no_grad():
        st = completion_stats(run.accelerator.unwrap_model(run.model), batch["prompt_ids"], batch["prompt_mask"],
                              batch["completion_ids"], batch["completion_mask"],
                              temperature=cfg.rollout.temperature, clamp_p=cfg.entropy.clamp_p,
                              batch_size=cfg.optim.micro_batch_size)
    return st.entropy


class StudyHooks(Hooks):
    """Mechanism metrics every step; with ``prompt_pool > 0``, prompts from the first ``prompt_pool`` problems."""

    def __init__(self, prompt_pool: int = 0) -> None:
        if isinstance(prompt_pool, bool) or not isinstance(prompt_pool, int) or prompt_pool < 0:
            raise ValueError(f"prompt_pool must be an int >= 0, got {prompt_pool!r}")
        self.prompt_pool = prompt_pool
        self._before: torch.Tensor | None = None

    def before_rollout(self, run: Run, st: StepState) -> None:
        if self.prompt_pool > 0:
            from llm.train import step_prompts

            n = min(self.prompt_pool, len(run.train_set))
            st.prompts = step_prompts(run.cfg.seed, st.step, n, len(st.prompts))

    def before_update(self, run: Run, st: StepState) -> None:
        self._before = token_entropies(run, st.batch)

    def after_update(self, run: Run, st: StepState) -> None:
        after = token_entropies(run, st.batch)
        mask = st.batch["completion_mask"]
        extra = measured_split(self._before, after, st.adv, mask)
        extra.update(covariance_split(st.batch["old_logp"].float(), st.adv, mask))
        st.stats.update(extra)
        self._before = None

"""Trainer hooks: explicit points where a user's code runs inside :func:`llm.train.train`.

A hook is an object with any of the methods of :class:`Hooks` (subclass it and override what you need); pass a
list of them as ``train(cfg, hooks=[...])``. They run in list order, on every process, at these points of each
global step:

============================  =========================================================================
``before_rollout(run, st)``   ``st.prompts`` (this step's problem indices) is set; a hook may replace it.
``after_rollout(run, st)``    ``st.batch`` (the global rollout batch, with ``reward``) and ``st.adv`` are set.
``before_update(run, st)``    just before the PPO updates (after the optional old-log-prob recomputation).
``after_update(run, st)``     ``st.stats`` holds the update's metrics; keys a hook adds land in the row.
``on_evaluation(run, st)``    ``st.eval`` holds the held-out metrics; keys a hook adds land in the row.
``on_checkpoint(run, st)``    after a checkpoint of step ``st.step`` was written to ``st.checkpoint``.
============================  =========================================================================

``run`` (:class:`Run`) holds the run's objects (config, accelerator, model, optimizer, ...), the same for every
step; ``st`` (:class:`StepState`) holds the step's. Hooks must not change the model or the batch unless that is
the point: the trainer's own computation reads them after the hook returns. ``on_evaluation`` also runs for the
evaluation of the starting policy, with ``st.step == 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HOOK_POINTS", "Hooks", "Run", "StepState", "call_hooks"]

HOOK_POINTS = ("before_rollout", "after_rollout", "before_update", "after_update", "on_evaluation",
               "on_checkpoint")


@dataclass
class Run:
    """The objects of one training run (built by :func:`llm.train.setup`), passed to every hook and update."""

    cfg: Any
    """The run's ``llm.config.TrainConfig``."""
    accelerator: Any
    """The ``accelerate.Accelerator``."""
    model: Any
    """The policy, prepared by accelerate (``accelerator.unwrap_model(model)`` is the plain module)."""
    tokenizer: Any = None
    optimizer: Any = None
    """AdamW over the policy's parameters (prepared)."""
    scheduler: Any = None
    """The LR schedule (``lr_lambda``), stepped once per optimizer update."""
    control: Any = None
    """The ``aent.EntropyControl`` (its controller state is saved with every checkpoint)."""
    train_set: list = field(default_factory=list)
    """Training problems (``llm.data.Problem``)."""
    eval_set: list = field(default_factory=list)
    """Held-out problems of the periodic evaluation (may be empty)."""
    reward_fn: Any = None
    """f(completions, problems) -> list of floats (config field ``reward``)."""
    log: Any = None
    """The ``llm.metrics.MetricsLogger`` (``log.write(text)`` prints a line to the console and log file)."""
    out_dir: Path | None = None
    """The run folder (config field ``output_dir``)."""


@dataclass
class StepState:
    """What one global step has produced so far (fields fill in as the step goes)."""

    step: int
    """Global step, counted from 1 (0 for the evaluation of the starting policy)."""
    prompts: list[int] = field(default_factory=list)
    """Indices into ``run.train_set`` of this step's prompts (all processes; each process takes its share)."""
    batch: dict[str, Any] | None = None
    """The global rollout batch: prompt_ids / prompt_mask (N, Tp), completion_ids / completion_mask / old_logp
    (N, Tc), reward (N,), with N = prompts_per_step * group_size in prompt-major order."""
    adv: Any = None
    """Group advantages, a (N,) tensor."""
    stats: dict[str, Any] = field(default_factory=dict)
    """Metrics of the step's updates (token means, grad_norm, lr, ...)."""
    eval: dict[str, Any] = field(default_factory=dict)
    """Held-out metrics of this step's evaluation."""
    checkpoint: Path | None = None
    """Folder of the checkpoint just written."""


class Hooks:
    """Base class of a trainer hook: every method does nothing; override those you need."""

    def before_rollout(self, run: Run, st: StepState) -> None:
        """Before sampling; ``st.prompts`` may be replaced (same length)."""

    def after_rollout(self, run: Run, st: StepState) -> None:
        """After rewards and advantages; ``st.batch`` and ``st.adv`` are set."""

    def before_update(self, run: Run, st: StepState) -> None:
        """Just before the step's PPO updates (the policy is still the one that sampled)."""

    def after_update(self, run: Run, st: StepState) -> None:
        """After the step's PPO updates and the controller step; may add metrics to ``st.stats``."""

    def on_evaluation(self, run: Run, st: StepState) -> None:
        """After a held-out evaluation; may add metrics to ``st.eval``."""

    def on_checkpoint(self, run: Run, st: StepState) -> None:
        """After a checkpoint of step ``st.step`` was written to ``st.checkpoint``."""


def check_hooks(hooks: Sequence[Any] | None) -> list[Any]:
    """The hooks as a list; one clear error for an object that has none of the hook points."""
    if hooks is None:
        return []
    if not isinstance(hooks, (list, tuple)):
        hooks = [hooks]
    for h in hooks:
        if not any(callable(getattr(h, name, None)) for name in HOOK_POINTS):
            raise TypeError(f"train(hooks=...): {h!r} has none of the hook methods {', '.join(HOOK_POINTS)} "
                            f"(subclass llm.hooks.Hooks)")
    return list(hooks)


def call_hooks(hooks: Sequence[Any], point: str, run: Run, st: StepState) -> None:
    """Call ``hook.<point>(run, st)`` on each hook that defines it, in order."""
    for h in hooks:
        fn = getattr(h, point, None)
        if fn is not None:
            fn(run, st)

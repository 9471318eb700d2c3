"""What a study is: arms (config overrides), claims (paired contrasts between arms) and the sweep around them.

Each study (one module per finding of "Revisiting Entropy in RL for Large Reasoning Models", arXiv 2511.05993)
is a :class:`Study`: a list of arms (config overrides of ``configs/tiny.yaml``) and a list of claims. Every arm
runs the same seeds with the same budget from the same warm-started policy (:mod:`llm.studies.runner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_CONFIG", "PLOT_KEYS", "Arm", "Claim", "Study"]

DEFAULT_CONFIG = "tiny"  # packaged config name (aent_configs), independent of the working directory
# Panels of every study figure (missing keys are skipped by the plot).
PLOT_KEYS = ("entropy_before", "clamped_entropy", "reward_mean", "eval_accuracy", "eval_pass", "dh_pos",
             "dh_neg", "cov_dh_pos", "cov_dh_neg")


@dataclass(frozen=True)
class Arm:
    """One setting of a sweep: a name and the ``key=value`` overrides it adds to the study's base config."""

    name: str
    """Short label used in the figure legend and the JSON."""
    overrides: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    """Trainer config overrides (``section.field=value``) of this arm; a callable is called once, when the arm's
    runs start (reweighting's AEnt arm calibrates its constants on the starting policy only then)."""
    prompt_pool: int = 0
    """If > 0, each step's prompts come from the first ``prompt_pool`` training problems only (diversity)."""


@dataclass(frozen=True)
class Claim:
    """A finding tested by a paired contrast between two arms (or one arm against zero)."""

    key: str
    """Short id of the claim."""
    text: str
    """The finding, as stated by the paper."""
    metric: str
    """Name of a per-run summary in :data:`SUMMARIES`."""
    arm: str
    """Arm X of the contrast m(X) - m(Y)."""
    baseline: str | None
    """Arm Y, or None for a one-sample claim on m(X)."""
    sign: int
    """+1 if the claim says m(X) - m(Y) > 0, -1 if < 0."""
    what: str = ""
    """Human description of the contrast, used in the generated text."""
    sesoi: float | str = "entropy"
    """Smallest effect of interest, fixed with the claim (docs/protocol.md): a number in the metric's units, or a
    rule: "entropy" (ENTROPY_SESOI_FRAC x the reference arm's mean step-1 entropy, the reference being the
    baseline, else the arm), "entropy_per_step" (that, divided by the run's steps: a per-step effect that adds up
    to it over the run) or "sign" (0: a claim about the direction only)."""


@dataclass
class Study:
    """A sweep over arms with claims; ``arms`` may depend on the loaded base config and on earlier results."""

    name: str
    title: str
    finding: str
    arms: Callable[[Any, dict[str, list[list[dict]]]], list[Arm]]
    claims: list[Claim]
    steps: int = 30
    smoke_arms: tuple[str, ...] = ()
    extra_overrides: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

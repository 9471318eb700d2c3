"""ToyTrainConfig of the bandit trainer (:func:`toy.pg_trainer.train_bandit`): one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from aent.config import EntropyConfig
from aent.regularizer import BONUS_ENTROPY
from aent.validation import check, is_num
from toy.tasks import BANDIT_PATTERNS

__all__ = ["ESTIMATORS", "INITS", "OPTIMIZERS", "ToyTrainConfig"]

ESTIMATORS = ("exact", "reinforce", "rloo", "grpo")
INITS = ("uniform", "gaussian")
OPTIMIZERS = ("sgd", "adam")


def _fail(name: str, allowed: str, value) -> None:
    """Raise the one-line error of :func:`aent.validation.check` naming ``ToyTrainConfig.<name>``."""
    check(False, name, allowed, value, "ToyTrainConfig.")


@dataclass(frozen=True)
class ToyTrainConfig:
    """One bandit training run (or ``n_seeds`` independent runs trained side by side)."""

    n_arms: int = 1000
    """Number of arms |A| (>= 2). Figure 1 of AEnt uses 10^5."""
    m_optimal: int = 5
    """Number of optimal arms m (reward 1), in [1, n_arms]."""
    pattern: str = "uniform"
    """Rewards of the other arms (toy.tasks.BanditTask): "zero", "uniform" or "distractors"."""
    gap: float = 0.1
    """Suboptimality gap of "uniform"/"distractors" rewards, in (0, 1]."""
    estimator: str = "grpo"
    """Gradient estimator: "exact", "reinforce", "rloo" or "grpo" (see the module docstring)."""
    steps: int = 200
    """Global steps (one batch of G arms per run per step), >= 1."""
    group_size: int = 16
    """G, arms sampled per run per step (>= 2 for "rloo"/"grpo"; unused by "exact")."""
    lr: float = 1.0
    """Step size of the optimizer on the logits, > 0."""
    optimizer: str = "sgd"
    """"sgd" (plain gradient steps, the setting of the theory) or "adam"."""
    ppo_epochs: int = 1
    """Optimizer passes over each step's batch (>= 1); > 1 makes the PPO ratio and clipping matter."""
    init: str = "gaussian"
    """Initial logits: "uniform" (all 0) or "gaussian" (init_scale * N(0, 1) i.i.d. per arm and run)."""
    init_scale: float = 2.0
    """Std of the "gaussian" initial logits, >= 0; larger means a more peaked (LLM-like) initial policy."""
    opt_quantile: float | None = None
    """If set, in [0, 1]: the optimal arms start at this quantile of their run's initial logits (e.g. 0.995:
    plausible but not the mode, as a correct token under a pretrained prior); None leaves them where drawn."""
    n_seeds: int = 1
    """Independent runs; run i uses task seed ``seed + i`` (arm placement) and its own initial logits."""
    seed: int = 0
    """Base seed (>= 0) of tasks, initial logits and sampling."""
    track_clamped: bool = True
    """Measure the clamped entropy of every run each step (one selection over |A| per run); False measures it
    only where a loss or an AEnt controller needs it (the metric is then the mean over those runs)."""
    common_random_numbers: bool = False
    """Sampled estimators: draw each step's uniforms once per row seed and sample by inverse CDF, so rows with the
    same seed (the same run under different entropy controls) see the same sample stream; False draws every row
    independently with torch.multinomial."""
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    """Entropy control (aent.EntropyConfig): method, ent_coef, clamp_p, AEnt band, PPO clip ranges, ..."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), "ToyTrainConfig.")

        _int_field(self, "n_arms", 2)
        _int_field(self, "m_optimal", 1, self.n_arms)
        need(self.pattern in BANDIT_PATTERNS, "pattern", f"one of {BANDIT_PATTERNS}")
        need(is_num(self.gap) and 0.0 < self.gap <= 1.0, "gap", "a number in (0, 1]")
        need(self.estimator in ESTIMATORS, "estimator", f"one of {ESTIMATORS}")
        _int_field(self, "steps", 1)
        _int_field(self, "group_size", 2 if self.estimator in ("rloo", "grpo") else 1)
        need(is_num(self.lr) and self.lr > 0, "lr", "a finite number > 0")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {OPTIMIZERS}")
        _int_field(self, "ppo_epochs", 1)
        need(self.init in INITS, "init", f"one of {INITS}")
        need(is_num(self.init_scale) and self.init_scale >= 0, "init_scale", "a finite number >= 0")
        need(self.opt_quantile is None or (is_num(self.opt_quantile) and 0.0 <= self.opt_quantile <= 1.0),
             "opt_quantile", "None or a number in [0, 1]")
        _int_field(self, "n_seeds", 1)
        _int_field(self, "seed", 0)
        need(isinstance(self.track_clamped, bool), "track_clamped", "True or False")
        need(isinstance(self.common_random_numbers, bool), "common_random_numbers", "True or False")
        if not isinstance(self.entropy, EntropyConfig):
            _fail("entropy", "an aent.EntropyConfig", type(self.entropy).__name__)
        if self.estimator == "exact" and self.entropy.method not in BONUS_ENTROPY:
            _fail("entropy", f"a method in {tuple(BONUS_ENTROPY)} with estimator='exact'", self.entropy.method)

    def replace(self, **changes) -> ToyTrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _int_field(cfg: ToyTrainConfig, name: str, low: int, high: int | None = None) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        _fail(name, f"an integer in [{low}, {high if high is not None else 'inf'}]", value)

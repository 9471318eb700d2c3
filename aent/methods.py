"""The method registry: one :class:`MethodSpec` per entropy control, read by every place that dispatches on a method.

Each entry names what the rest of the code needs to know about a method, so that no module checks method names:

- ``entropy``: the entropy in the loss's bonus term, ``"full"`` (:func:`aent.entropy`), ``"clamped"``
  (:func:`aent.clamped_entropy` with ``clamp_p``) or ``"none"``;
- ``coef`` / ``weight``: factories that build the method's coefficient controller (lambda) and, for the methods
  that have one, its sample-weight controller, from an :class:`aent.EntropyConfig`;
- ``signal``: the key of :meth:`aent.EntropyControl.step_end`'s stats that drives the controllers once per global
  step: ``"entropy"``, ``"clamped_entropy"`` or ``"sampled_entropy"`` (-mean log pi_old);
- ``boxed``: the config fields that must lie in the coefficient box [coef_min, coef_max]; ``positive``: those
  that must be > 0;
- ``presets``: the named settings of :data:`aent.PRESETS` for this method (field overrides of EntropyConfig);
- ``bonus_only``: the loss is the PPO-clip surrogate minus lambda * H_entropy and nothing else (so the toy's exact
  gradient and the verl adapter can run it); the other methods change the loss per token in :mod:`aent.regularizer`;
- ``per_token``: the loss is a sum over tokens of terms of each token's own log-prob and entropies (no statistic
  over the call's tokens), so the hidden-state path forms its gradient during the forward pass
  (:func:`aent.chunked_policy_loss`, assembled in ``EntropyControl._fused_loss``); by default the same as
  ``bonus_only``, and set true by pos_reweight, whose token weights ``_fused_loss`` applies;
- ``expected``: what the method is expected to do to a metric against plain GRPO, with its source (the
  reproduction's findings read it).

Adding a controller: write it in its own module (the contract of :mod:`aent.controllers`) and add one line to
:data:`METHOD_SPECS` (docs/methods.md, "Adding a method", has a worked example).

Example:
    >>> from aent.methods import METHOD_SPECS, spec
    >>> s = spec("aent")
    >>> s.entropy, s.signal, s.boxed
    ('clamped', 'clamped_entropy', ('ent_coef',))
    >>> tuple(m for m, s in METHOD_SPECS.items() if s.signal == "sampled_entropy")
    ('threshold',)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from aent.controllers import AEntCoef, ConstantCoef, PIController, PositiveWeight, SACCoef, ThresholdCoef

if TYPE_CHECKING:
    from aent._controller import _Controller
    from aent.config import EntropyConfig

__all__ = ["ENTROPY_KINDS", "METHOD_SPECS", "SIGNALS", "Expected", "MethodSpec", "spec"]

ENTROPY_KINDS = ("none", "full", "clamped")
SIGNALS = ("entropy", "clamped_entropy", "sampled_entropy")


class Expected(NamedTuple):
    """The effect a method is expected to have against plain GRPO: ``metric`` moves in direction ``sign``."""

    metric: str
    sign: int
    claim: str
    """The claim in words, with its source."""


@dataclass(frozen=True)
class MethodSpec:
    """What the code needs to know about one entropy control (see the module docstring)."""

    entropy: str
    """The entropy of the bonus term: one of ENTROPY_KINDS."""
    coef: Callable[[EntropyConfig], _Controller]
    """Builds the coefficient controller (lambda); ConstantCoef(0) for methods without a bonus."""
    signal: str = "entropy"
    """The step_end stats key that drives the controllers: one of SIGNALS."""
    weight: Callable[[EntropyConfig], _Controller] | None = None
    """Builds the sample-weight controller, or None."""
    weight_metric: str | None = None
    """Metric name of the weight controller's value: "pos_weight" (moved by step_end) or "pi_alpha" (moved per
    micro-batch by the loss)."""
    boxed: tuple[str, ...] = ()
    """Config fields that must lie in [coef_min, coef_max]."""
    positive: tuple[str, ...] = ()
    """Config fields that must be > 0 (sac's ent_coef: lambda = exp(log lambda))."""
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Preset name -> EntropyConfig field overrides (the method itself is implied)."""
    bonus_only: bool = True
    """The loss is PPO-clip - lambda * H_entropy and nothing else."""
    per_token: bool | None = None
    """The loss is a sum of per-token terms (each token's logp, H, H~ and fixed inputs): the fused loss applies.
    None: ``bonus_only``. A method with its own loss branch sets it true only where ``EntropyControl._fused_loss``
    builds that branch too."""
    expected: Expected | None = None
    """The effect the reproduction's findings test, or None (then: keeps the entropy above plain GRPO's)."""

    def __post_init__(self) -> None:
        if self.per_token is None:
            object.__setattr__(self, "per_token", self.bonus_only)
        if self.entropy not in ENTROPY_KINDS:
            raise ValueError(f"MethodSpec.entropy must be one of {ENTROPY_KINDS}, got {self.entropy!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"MethodSpec.signal must be one of {SIGNALS}, got {self.signal!r}")
        if (self.weight is None) != (self.weight_metric is None):
            raise ValueError("MethodSpec.weight and weight_metric are given together or not at all")


# ------------------------------------------------------------------------------------------ factories
def _no_coef(cfg: EntropyConfig) -> ConstantCoef:
    return ConstantCoef(value=0.0)


def _constant(cfg: EntropyConfig) -> ConstantCoef:
    return ConstantCoef(value=cfg.ent_coef)


def _aent(cfg: EntropyConfig) -> AEntCoef:
    return AEntCoef(init=cfg.ent_coef, band_low=cfg.band_low, band_high=cfg.band_high, lr=cfg.coef_lr,
                    warmup=cfg.warmup, coef_min=cfg.coef_min, coef_max=cfg.coef_max)


def _sac(cfg: EntropyConfig) -> SACCoef:
    return SACCoef(init=cfg.ent_coef, target=cfg.target_entropy, lr=cfg.coef_lr, coef_min=cfg.coef_min,
                   coef_max=cfg.coef_max)


def _threshold(cfg: EntropyConfig) -> ThresholdCoef:
    return ThresholdCoef(init=cfg.ent_coef, target=cfg.target_entropy, delta=cfg.coef_delta, coef_min=cfg.coef_min,
                         coef_max=cfg.coef_max)


def _pi(cfg: EntropyConfig) -> PIController:
    return PIController(kp=cfg.pi_kp, ki=cfg.pi_ki, target=cfg.target_entropy, integral_limit=cfg.pi_integral_limit)


def _positive_weight(cfg: EntropyConfig) -> PositiveWeight:
    mode = cfg.pos_weight_mode
    init = cfg.pos_weight if cfg.pos_weight is not None else (1.0 if mode == "fixed" else 0.0)
    final = cfg.pos_weight_final if cfg.pos_weight_final is not None or mode == "scheduled" else 1.0
    return PositiveWeight(mode=mode, init=init, target=cfg.target_entropy, delta=cfg.pos_weight_delta, final=final,
                          schedule_steps=cfg.pos_weight_steps, epochs=cfg.pos_weight_epochs)


_AENT_PAPER = {"ent_coef": 0.002, "clamp_p": 0.33, "band_low": 0.15, "band_high": 0.24, "coef_lr": 0.002,
               "warmup": 30, "coef_min": 6e-4, "coef_max": 9e-3, "eps_low": 0.2, "eps_high": 0.2}
_AENT_R1_DISTILL = {"ent_coef": 3e-4, "clamp_p": 0.25, "band_low": 0.35, "band_high": 0.62, "coef_lr": 1e-4,
                    "warmup": 156, "coef_min": 4e-5, "coef_max": 1e-3, "eps_low": 0.2, "eps_high": 0.2}

# One line per method; the order is that of aent.METHODS and aent.PRESETS.
METHOD_SPECS: dict[str, MethodSpec] = {
    "none": MethodSpec("none", _no_coef, presets={"none": {}, "clip_higher": {"eps_low": 0.2, "eps_high": 0.28}}),
    "entropy_bonus": MethodSpec("full", _constant, presets={"entropy_bonus": {"ent_coef": 0.002}}, expected=Expected(
        "entropy", +1, "a fixed full-vocabulary entropy bonus keeps the entropy above plain GRPO's (AEnt paper, arXiv "
        "2509.03493, Sec. 3: it does, but with a large vocabulary it spends it on irrelevant tokens)")),
    "clamped_bonus": MethodSpec("clamped", _constant, presets={"clamped_bonus": {"ent_coef": 0.002, "clamp_p": 0.33}}),
    "aent": MethodSpec("clamped", _aent, "clamped_entropy", boxed=("ent_coef",),
                       presets={"aent": _AENT_PAPER, "aent_r1_distill": _AENT_R1_DISTILL}, expected=Expected(
                           "entropy", +1, "AEnt (clamped entropy + adaptive coefficient) keeps the entropy above "
                           "plain GRPO's (arXiv 2509.03493)")),
    "sac": MethodSpec("full", _sac, boxed=("ent_coef",), positive=("ent_coef",), presets={"sac": {
        "ent_coef": 0.002, "coef_lr": 0.5, "target_entropy": 0.2, "coef_min": 1e-5, "coef_max": 0.1}}),
    # Skywork-OR1 (arXiv 2505.22312, Sec. 3.2.4): coefficient from 0, step 1e-4, at most 0.005, target 0.2.
    "threshold": MethodSpec("full", _threshold, "sampled_entropy", boxed=("ent_coef",), presets={"threshold": {
        "ent_coef": 0.0, "target_entropy": 0.2, "coef_delta": 1e-4, "coef_min": 0.0, "coef_max": 0.005}}),
    "entropic": MethodSpec("none", _no_coef, weight=_pi, weight_metric="pi_alpha", bonus_only=False, presets={
        "entropic": {"target_entropy": 0.2, "pi_kp": 1.0, "pi_ki": 0.01, "pi_prob_threshold": 0.95}}),
    "pos_reweight": MethodSpec("none", _no_coef, weight=_positive_weight, weight_metric="pos_weight",
                               bonus_only=False, per_token=True, presets={
                                   "pos_reweight": {"pos_weight": 0.5, "pos_weight_mode": "fixed"},
                                   "pos_reweight_entropy": {"pos_weight": 0.0, "pos_weight_mode": "entropy",
                                                            "target_entropy": 0.2, "pos_weight_delta": 0.05}},
                               expected=Expected("entropy", +1, "down-weighting positive-advantage tokens slows the "
                                                 "entropy decline (arXiv 2511.05993, Sec. 5)")),
    "clip_cov": MethodSpec("none", _no_coef, bonus_only=False, presets={"clip_cov": {
        "clip_cov_ratio": 2e-4, "clip_cov_lb": 1.0, "clip_cov_ub": 5.0}}),
    "kl_cov": MethodSpec("none", _no_coef, bonus_only=False, presets={"kl_cov": {"kl_cov_frac": 2e-3,
                                                                                 "kl_cov_coef": 1.0}}),
    "top_entropy": MethodSpec("none", _no_coef, bonus_only=False, presets={"top_entropy": {"top_entropy_rho": 0.2}}),
}
"""Every entropy control, by its ``EntropyConfig.method`` name."""


def spec(method: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``method``; unknown names raise one ValueError listing the known ones."""
    if method not in METHOD_SPECS:
        raise ValueError(f"unknown entropy method {method!r}; known: {tuple(METHOD_SPECS)}")
    return METHOD_SPECS[method]

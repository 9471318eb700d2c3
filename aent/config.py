"""EntropyConfig: one frozen, validated dataclass selecting and tuning every entropy control.

``method`` picks the control; the other fields tune it (fields a method does not use are ignored).

| method          | loss to minimise (per token, then aggregated)                    | controller            |
|-----------------|------------------------------------------------------------------|-----------------------|
| none            | PPO-clip                                                          | -                     |
| entropy_bonus   | PPO-clip - ent_coef * H                                           | ConstantCoef          |
| clamped_bonus   | PPO-clip - ent_coef * H~ (clamp_p)                                | ConstantCoef          |
| aent            | PPO-clip - lambda * H~, lambda kept in a band by AEntCoef         | AEntCoef (on H~)      |
| sac             | PPO-clip - lambda * H, log lambda learned                         | SACCoef (on H)        |
| threshold       | PPO-clip - lambda * H while -mean log pi_old <= target (Skywork)  | ThresholdCoef (-logp) |
| entropic        | PPO-clip + alpha * mean_{pi > t}(-r abs(A)) (EntroPIC)             | PIController (on H)   |
| pos_reweight    | PPO-clip * w+ on A > 0 tokens (arXiv 2511.05993)                  | PositiveWeight (on H) |
| clip_cov        | PPO-clip, a random fraction of high-covariance tokens detached    | -                     |
| kl_cov          | unclipped surrogate + kl_cov_coef * abs log-ratio on top-cov tokens | -                   |
| top_entropy     | PPO-clip on the top rho fraction of tokens by entropy only        | -                     |

Asymmetric clipping (DAPO clip-higher) is ``eps_low`` / ``eps_high`` with any method (preset "clip_higher").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aent.aggregate import LOSS_AGG_MODES
from aent.controllers import PositiveWeight
from aent.methods import METHOD_SPECS
from aent.validation import check, is_int, is_num

__all__ = ["METHODS", "PRESETS", "EntropyConfig"]

METHODS = tuple(METHOD_SPECS)
"""Every method name, in the registry's order (:data:`aent.methods.METHOD_SPECS`)."""
_BOXED = tuple(m for m, s in METHOD_SPECS.items() if s.boxed)  # kept for old imports; the registry decides


@dataclass(frozen=True)
class EntropyConfig:
    """Entropy control of the policy loss (shared by toy/ and llm/). Defaults: AEnt's Qwen2.5-Math-1.5B values."""

    method: str = "none"
    """Which control: one of METHODS (see the module table)."""
    clamp_p: float = 0.33
    """Fraction p in [0, 1) of the vocabulary (smallest logits) removed by the clamped entropy (AEnt)."""
    ent_coef: float = 0.002
    """Entropy coefficient (>= 0): fixed for entropy_bonus / clamped_bonus, initial for aent / sac / threshold."""
    band_low: float = 0.15
    """AEnt: lower end of the clamped-entropy band, nats (>= 0)."""
    band_high: float = 0.24
    """AEnt: upper end of the band, nats (>= band_low)."""
    coef_lr: float = 0.002
    """Controller step size (>= 0): AEnt's beta; SAC's learning rate on log lambda."""
    warmup: int = 30
    """AEnt: global steps (>= 0) run with the initial coefficient; the update after step ``warmup`` moves it first."""
    coef_min: float = 6e-4
    """Lower end of the coefficient box for aent / sac / threshold (>= 0)."""
    coef_max: float = 9e-3
    """Upper end of the coefficient box (>= coef_min)."""
    coef_delta: float = 5e-4
    """threshold: coefficient step per global step (>= 0)."""
    target_entropy: float = 0.2
    """Target token-mean entropy, nats (>= 0), for sac, threshold, entropic and pos_reweight 'entropy' mode."""
    entropy_agg: str = "token-mean"
    """Aggregation of the entropy term: one of LOSS_AGG_MODES, or "loss_agg" for the policy loss's mode (verl and
    the AEnt authors' code); token-mean (TRL) keeps lambda's meaning the same in every loss_agg mode."""
    eps_low: float = 0.2
    """PPO lower clip range, in (0, 1] (1 = no clipping from below)."""
    eps_high: float = 0.2
    """PPO upper clip range (> 0); DAPO's clip-higher uses 0.28."""
    dual_clip: float | None = None
    """Dual-clip constant c (> 1) for negative advantages, or None."""
    loss_agg: str = "token-mean"
    """Aggregation of the policy loss: one of LOSS_AGG_MODES (verl names)."""
    norm_const: float | None = None
    """Constant C (> 0) of seq-mean-token-sum-norm (Dr. GRPO); None = padded length T."""
    pos_weight: float | None = None
    """pos_reweight: (initial) weight w+ in [0, 1] of tokens with positive advantage; None = the paper's start:
    1 for mode fixed (no re-weighting), 0 for the other modes (arXiv 2511.05993 schedules and entropy mode)."""
    pos_weight_mode: str = "fixed"
    """pos_reweight: fixed, scheduled (linear to pos_weight_final), stage / epoch (the paper's upward schedules)
    or entropy (w+ -/+ pos_weight_delta while entropy is below / above target_entropy)."""
    pos_weight_final: float | None = None
    """pos_reweight scheduled / stage / epoch: final w+ in [0, 1] (required for scheduled; None = 1 for stage /
    epoch)."""
    pos_weight_steps: int | None = None
    """pos_reweight scheduled / stage / epoch: global steps of the schedule (>= 1; required)."""
    pos_weight_epochs: int | None = None
    """pos_reweight epoch: number E (>= 2) of equal epochs of the pos_weight_steps; w+ = (e - 1) / (E - 1)."""
    pos_weight_delta: float = 0.05
    """pos_reweight entropy mode: step of w+ per global step, in [0, 1]."""
    pi_kp: float = 1.0
    """entropic: proportional gain (>= 0)."""
    pi_ki: float = 0.01
    """entropic: integral gain (>= 0); paper 0.01."""
    pi_prob_threshold: float = 0.95
    """entropic: tokens with current pi_theta(a) > this, in [0, 1], get EntroPIC's term; paper 0.95."""
    pi_integral_limit: float | None = None
    """entropic: clamp of |integral| (> 0, anti-windup), or None."""
    clip_cov_ratio: float = 2e-4
    """clip_cov: fraction r in (0, 1] of valid tokens detached."""
    clip_cov_lb: float = 1.0
    """clip_cov: lower covariance bound of the candidates."""
    clip_cov_ub: float = 5.0
    """clip_cov: upper covariance bound (> clip_cov_lb)."""
    kl_cov_frac: float = 2e-3
    """kl_cov: fraction k in (0, 1] of valid tokens (largest covariance) penalised."""
    kl_cov_coef: float = 1.0
    """kl_cov: penalty coefficient beta (>= 0) on abs(log pi - log pi_old)."""
    top_entropy_rho: float = 0.2
    """top_entropy: fraction rho in (0, 1] of valid tokens (highest entropy) that keep policy gradient."""
    chunk_size: int | None = None
    """Tokens per chunk in the entropy / log-prob kernels and in aent.chunked_policy_terms (>= 1; there it sets the
    (chunk, V) logits buffer), None = library default."""
    seed: int = 0
    """Seed (>= 0) of the random draw of clip_cov."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "EntropyConfig.") -> None:
        """Raise one ValueError naming the first bad field (as ``prefix + field``), its allowed range and value."""

        def _check(ok: bool, field: str, allowed: str, value: Any) -> None:
            check(ok, field, allowed, value, prefix)

        _check(self.method in METHOD_SPECS, "method", f"one of {tuple(METHOD_SPECS)}", self.method)
        _check(is_num(self.clamp_p) and 0 <= self.clamp_p < 1, "clamp_p", "in [0, 1)", self.clamp_p)
        for name in ("ent_coef", "coef_lr", "coef_delta", "coef_min", "kl_cov_coef", "pi_kp", "pi_ki",
                     "band_low", "target_entropy"):
            _check(is_num(getattr(self, name)) and getattr(self, name) >= 0, name, "a number >= 0", getattr(self, name))
        _check(is_num(self.band_high) and self.band_high >= self.band_low, "band_high",
               f">= band_low = {self.band_low}", self.band_high)
        _check(is_num(self.coef_max) and self.coef_max >= self.coef_min, "coef_max",
               f">= coef_min = {self.coef_min}", self.coef_max)
        _check(is_int(self.warmup) and self.warmup >= 0, "warmup", "an int >= 0", self.warmup)
        spec = METHOD_SPECS[self.method]
        for name in spec.boxed:
            _check(self.coef_min <= getattr(self, name) <= self.coef_max, name,
                   f"in [coef_min, coef_max] = [{self.coef_min}, {self.coef_max}] for method={self.method}",
                   getattr(self, name))
        for name in spec.positive:
            _check(getattr(self, name) > 0, name, f"> 0 for method={self.method}", getattr(self, name))
        _check(is_num(self.eps_low) and 0 < self.eps_low <= 1, "eps_low", "in (0, 1]", self.eps_low)
        _check(is_num(self.eps_high) and self.eps_high > 0, "eps_high", "> 0", self.eps_high)
        _check(self.dual_clip is None or (is_num(self.dual_clip) and self.dual_clip > 1), "dual_clip",
               "None or > 1", self.dual_clip)
        _check(self.loss_agg in LOSS_AGG_MODES, "loss_agg", f"one of {LOSS_AGG_MODES}", self.loss_agg)
        _check(self.entropy_agg in (*LOSS_AGG_MODES, "loss_agg"), "entropy_agg",
               f"one of {(*LOSS_AGG_MODES, 'loss_agg')}", self.entropy_agg)
        _check(self.norm_const is None or (is_num(self.norm_const) and self.norm_const > 0), "norm_const",
               "None or > 0", self.norm_const)
        for name in ("pos_weight_delta", "pi_prob_threshold"):
            v = getattr(self, name)
            _check(is_num(v) and 0 <= v <= 1, name, "in [0, 1]", v)
        _check(self.pos_weight is None or is_num(self.pos_weight) and 0 <= self.pos_weight <= 1, "pos_weight",
               "None or in [0, 1]", self.pos_weight)
        _check(self.pos_weight_mode in PositiveWeight.MODES, "pos_weight_mode", f"one of {PositiveWeight.MODES}",
               self.pos_weight_mode)
        pr, mode = spec.weight_metric == "pos_weight", self.pos_weight_mode  # the pos_weight_* fields' method
        _check(self.pos_weight_final is None and not (pr and mode == "scheduled")
               or is_num(self.pos_weight_final) and 0 <= self.pos_weight_final <= 1, "pos_weight_final",
               "in [0, 1] (required for pos_weight_mode=scheduled)", self.pos_weight_final)
        _check(self.pos_weight_steps is None and not (pr and mode in ("scheduled", "stage", "epoch"))
               or is_int(self.pos_weight_steps) and self.pos_weight_steps >= 1, "pos_weight_steps",
               f"an int >= 1 (required for pos_weight_mode={mode})", self.pos_weight_steps)
        _check(self.pos_weight_epochs is None and not (pr and mode == "epoch")
               or is_int(self.pos_weight_epochs) and self.pos_weight_epochs >= 2, "pos_weight_epochs",
               "an int >= 2 (required for pos_weight_mode=epoch)", self.pos_weight_epochs)
        _check(self.pi_integral_limit is None or (is_num(self.pi_integral_limit) and self.pi_integral_limit > 0),
               "pi_integral_limit", "None or > 0", self.pi_integral_limit)
        for name in ("clip_cov_ratio", "kl_cov_frac", "top_entropy_rho"):
            v = getattr(self, name)
            _check(is_num(v) and 0 < v <= 1, name, "in (0, 1]", v)
        _check(is_num(self.clip_cov_lb), "clip_cov_lb", "a finite number", self.clip_cov_lb)
        _check(is_num(self.clip_cov_ub) and self.clip_cov_ub > self.clip_cov_lb, "clip_cov_ub",
               f"> clip_cov_lb = {self.clip_cov_lb}", self.clip_cov_ub)
        _check(self.chunk_size is None or (is_int(self.chunk_size) and self.chunk_size >= 1), "chunk_size",
               "None or an int >= 1", self.chunk_size)
        _check(is_int(self.seed) and self.seed >= 0, "seed", "an int >= 0", self.seed)

    def check_vocab(self, vocab: int) -> int:
        """The number k = floor(clamp_p * V) of tokens the clamped entropy removes; raises if k >= V.

        Args:
            vocab: vocabulary size V of the policy (>= 1).

        Returns:
            k, 0 <= k < V.
        """
        from aent.entropy import clamp_k

        try:
            return clamp_k(self.clamp_p, vocab)
        except ValueError as err:
            raise ValueError(f"EntropyConfig.clamp_p={self.clamp_p!r} with vocabulary size {vocab!r}: {err}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any], prefix: str = "EntropyConfig.") -> EntropyConfig:
        """Build a validated config from a plain dict; unknown keys raise one ValueError naming them.

        ``prefix`` names the fields in error messages, e.g. ``config field `entropy.`` for a YAML section."""
        if not isinstance(d, dict):
            raise ValueError(f"EntropyConfig.from_dict needs a dict, got {type(d).__name__}")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(f"unknown EntropyConfig field(s) {unknown}; allowed: {sorted(allowed)}")
        if prefix != "EntropyConfig.":  # validate the values under the caller's prefix before building
            trial = object.__new__(cls)
            for f in dataclasses.fields(cls):
                object.__setattr__(trial, f.name, d.get(f.name, f.default))
            trial.validate(prefix)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that :meth:`from_dict` turns back into this config."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EntropyConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def aent_paper(cls) -> EntropyConfig:
        """AEnt with the authors' Qwen2.5-Math-1.5B / MATH settings (arXiv 2509.03493; docs/methods.md).

        lambda0 = 0.002, p = 0.33, band [0.15, 0.24], beta = 0.002, warmup 30, box [6e-4, 9e-3], clip 0.2, no KL
        (group size 16 and lr 2e-6 belong to the trainer config).
        """
        return cls(method="aent", **METHOD_SPECS["aent"].presets["aent"])

    @classmethod
    def aent_r1_distill(cls) -> EntropyConfig:
        """AEnt with the authors' R1-Distill-Qwen-1.5B / OpenR1-Math settings (arXiv 2509.03493; docs/methods.md).

        lambda0 = 3e-4, p = 0.25, band [0.35, 0.62], beta = 1e-4, warmup 156, box [4e-5, 1e-3], clip 0.2
        (group size 8, lr 1e-6 and 7,168 response tokens belong to the trainer config).
        """
        return cls(method="aent", **METHOD_SPECS["aent"].presets["aent_r1_distill"])

    @classmethod
    def preset(cls, name: str) -> EntropyConfig:
        """The named preset from :data:`PRESETS` (unknown names raise one ValueError listing them)."""
        if name not in PRESETS:
            raise ValueError(f"unknown EntropyConfig preset {name!r}; known: {sorted(PRESETS)}")
        return PRESETS[name]


PRESETS: dict[str, EntropyConfig] = {name: EntropyConfig(method=method, **fields)
                                     for method, spec in METHOD_SPECS.items()
                                     for name, fields in spec.presets.items()}
"""Named settings, each a method's entry in the registry (:attr:`aent.methods.MethodSpec.presets`)."""

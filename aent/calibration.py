"""AEnt's constants for a new model and budget, by a stated rule: measurements of the starting policy -> constants.

The authors of AEnt (arXiv 2509.03493) published band, box, lambda0, beta, warmup and p for Qwen2.5-Math-1.5B and
R1-Distill-Qwen-1.5B (DESIGN.md). :func:`propose` keeps the *proportions* of a published setting (a
:class:`Reference`, by default Qwen2.5-Math-1.5B) and rescales them by what ``aent calibrate``
(:mod:`llm.calibrate`) measures on the starting policy and one rollout batch (:class:`Measurements`) and by the
planned number of global steps S. With H0 the starting token-mean clamped entropy, r = |grad L_PG| / |grad H~| the
gradient-norm ratio and u the share of the vocabulary the policy effectively never uses:

- **band** = [H0 * band_low_ref / H0_ref, H0 * band_high_ref / H0_ref];
- **box** = lambda0 * [coef_min_ref / lambda0_ref, coef_max_ref / lambda0_ref];
- **cap** coef_max = cap_share * r (at the cap, lambda |grad H~| = cap_share |grad L_PG|), so
  **lambda0** = coef_max * lambda0_ref / coef_max_ref;
- **beta** = (coef_max - coef_min) / (band_low * f_ref * S): lambda crosses its box in the fraction f_ref of the
  run that it takes in the reference when the clamped entropy sits a whole band_low below the band (fully
  collapsed), f_ref = (coef_max_ref - coef_min_ref) / (beta_ref * band_low_ref * S_ref);
- **warmup** = round(S * warmup_ref / S_ref);
- **p** = u + q_ref (1 - u), rounded up to 4 decimals, with q_ref = (p_ref - u_ref) / (1 - u_ref) the share of the
  usable vocabulary the reference removes: every never-used token is removed and then the reference's share of
  the tokens the policy could still emit, so p >= u always.

Published in DESIGN.md: lambda0, box, band, beta, warmup and p of both settings. **Not published** and therefore
assumed in :data:`QWEN_MATH` (each one named in ``Reference.assumed``): the run length S_ref = 440 (issue 23's
reading of the paper's run), the starting clamped entropy H0_ref (taken at the top of the band, 0.24: the band
lies below the start, so lambda first moves when entropy falls), the never-used share u_ref (0: p_ref is read as
a share of usable tokens) and the gradient share at the cap (1). docs/calibrate.md derives the proportions.

Everything here is plain Python (no torch): the rule is a pure function of numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aent.validation import check, is_int, is_num

__all__ = ["QWEN_MATH", "Measurements", "Proposal", "Reference", "clamp_rule", "propose"]


@dataclass(frozen=True)
class Reference:
    """A published AEnt setting and the quantities the rule reads from it (fields in ``assumed`` are assumptions)."""

    name: str
    """Which setting (model / data)."""
    ent_coef: float
    """lambda0."""
    coef_min: float
    """Lower end of the coefficient box."""
    coef_max: float
    """Upper end of the coefficient box."""
    band_low: float
    """Lower end of the clamped-entropy band, nats."""
    band_high: float
    """Upper end of the band, nats."""
    coef_lr: float
    """beta, the controller's step size."""
    warmup: int
    """Global steps run at lambda0."""
    clamp_p: float
    """Fraction of the vocabulary the clamp removes."""
    steps: int
    """Length of the run, global steps."""
    start_clamped_entropy: float
    """Token-mean clamped entropy of the starting policy at ``clamp_p``, nats."""
    unused_share: float = 0.0
    """Share of the vocabulary the starting policy effectively never uses."""
    cap_share: float = 1.0
    """lambda |grad H~| / |grad L_PG| at the cap coef_max on the starting policy."""
    assumed: tuple[str, ...] = ()
    """Names of the fields that are not published (assumptions)."""

    @property
    def band_fracs(self) -> tuple[float, float]:
        """(band_low, band_high) / start_clamped_entropy."""
        return self.band_low / self.start_clamped_entropy, self.band_high / self.start_clamped_entropy

    @property
    def box_fracs(self) -> tuple[float, float]:
        """(coef_min, coef_max) / ent_coef."""
        return self.coef_min / self.ent_coef, self.coef_max / self.ent_coef

    @property
    def cross_steps(self) -> float:
        """Steps for lambda to cross its box with the clamped entropy a whole band_low below the band."""
        return (self.coef_max - self.coef_min) / (self.coef_lr * self.band_low)

    @property
    def cross_frac(self) -> float:
        """cross_steps as a fraction of the run."""
        return self.cross_steps / self.steps

    @property
    def warmup_frac(self) -> float:
        """warmup as a fraction of the run."""
        return self.warmup / self.steps

    @property
    def usable_clamp(self) -> float:
        """Share of the usable (not never-used) vocabulary the clamp removes."""
        return (self.clamp_p - self.unused_share) / (1.0 - self.unused_share)


QWEN_MATH = Reference(
    name="Qwen2.5-Math-1.5B on MATH (arXiv 2509.03493)", ent_coef=0.002, coef_min=6e-4, coef_max=9e-3,
    band_low=0.15, band_high=0.24, coef_lr=0.002, warmup=30, clamp_p=0.33, steps=440,
    start_clamped_entropy=0.24, unused_share=0.0, cap_share=1.0,
    assumed=("steps", "start_clamped_entropy", "unused_share", "cap_share"))
"""The authors' main setting (DESIGN.md) with the assumptions of the module docstring."""


@dataclass(frozen=True)
class Measurements:
    """What ``aent calibrate`` measures on the starting policy and one rollout batch (:mod:`llm.calibrate`)."""

    clamped_entropy: float
    """H0: token-mean clamped entropy at ``clamp_p`` over the batch's response tokens, nats (> 0)."""
    clamp_p: float
    """The candidate p at which ``clamped_entropy`` and ``ent_grad_norm`` were measured, in [0, 1)."""
    pg_grad_norm: float
    """L2 norm over all trainable parameters of the gradient of the GRPO policy loss on the batch (> 0)."""
    ent_grad_norm: float
    """L2 norm of the gradient of the token-mean clamped entropy (> 0)."""
    unused_share: float
    """u: share of the vocabulary the policy effectively never uses, in [0, 1)."""
    entropy: float | None = None
    """Token-mean full entropy, nats (reported only)."""
    zero_adv_frac: float | None = None
    """Share of groups whose rewards are all equal (no policy gradient; reported only)."""
    tokens: int | None = None
    """Valid response tokens in the batch (reported only)."""
    vocab_size: int | None = None
    """V (reported only)."""

    def __post_init__(self) -> None:
        def _check(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), prefix="Measurements.")

        _check(is_num(self.clamped_entropy) and self.clamped_entropy > 0, "clamped_entropy", "a number > 0")
        _check(is_num(self.clamp_p) and 0 <= self.clamp_p < 1, "clamp_p", "in [0, 1)")
        _check(is_num(self.pg_grad_norm) and self.pg_grad_norm > 0, "pg_grad_norm",
               "> 0 (0 means every group had equal rewards: no policy gradient to scale lambda by)")
        _check(is_num(self.ent_grad_norm) and self.ent_grad_norm > 0, "ent_grad_norm", "a number > 0")
        _check(is_num(self.unused_share) and 0 <= self.unused_share < 1, "unused_share", "in [0, 1)")

    @property
    def grad_ratio(self) -> float:
        """r = pg_grad_norm / ent_grad_norm: the lambda at which the bonus gradient matches the policy gradient."""
        return self.pg_grad_norm / self.ent_grad_norm


@dataclass(frozen=True)
class Proposal:
    """AEnt's constants proposed by :func:`propose`, with the rule and the measurement behind each one."""

    ent_coef: float
    """lambda0."""
    coef_min: float
    """Lower end of the box."""
    coef_max: float
    """Upper end of the box (the cap)."""
    band_low: float
    """Lower end of the clamped-entropy band, nats."""
    band_high: float
    """Upper end of the band, nats."""
    coef_lr: float
    """beta."""
    warmup: int
    """Global steps at lambda0."""
    clamp_p: float
    """p: the candidate p of the measurements (the rule's p unless the user fixed it)."""
    clamp_p_rule: float
    """The p the rule gives for the measured never-used share."""
    steps: int
    """The planned run length the proposal is for."""
    reference: str
    """Name of the published setting whose proportions were kept."""
    rules: tuple[tuple[str, str, str], ...] = ()
    """(field, where it came from, the rule) for every constant, in print order."""
    warnings: tuple[str, ...] = ()
    """Things the user should know (p below the never-used share, a cross shorter than one step, ...)."""

    FIELDS = ("ent_coef", "coef_min", "coef_max", "band_low", "band_high", "coef_lr", "warmup", "clamp_p")

    def entropy_section(self, digits: int = 3) -> dict[str, float | int | str]:
        """The ``entropy:`` config section (method aent), floats rounded to ``digits`` significant digits."""
        out: dict[str, float | int | str] = {"method": "aent"}
        for name in self.FIELDS:
            v = getattr(self, name)
            out[name] = v if isinstance(v, int) or name == "clamp_p" else _sig(v, digits)
        return out

    def overrides(self, digits: int = 3) -> list[str]:
        """The same section as trainer overrides: ``entropy.method=aent entropy.ent_coef=...``."""
        return [f"entropy.{k}={_fmt(v)}" for k, v in self.entropy_section(digits).items()]

    def yaml(self, digits: int = 3) -> str:
        """The ``entropy:`` section as YAML text."""
        return "\n".join(["entropy:", *(f"  {k}: {_fmt(v)}" for k, v in self.entropy_section(digits).items())])


def _sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _fmt(v: float | int | str) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def clamp_rule(unused_share: float, reference: Reference = QWEN_MATH) -> float:
    """p = u + q_ref (1 - u), rounded up to 4 decimals and at most 0.9999 (so p >= u and the kept set is non-empty).

    Four decimals resolve a kept set of a few tokens in a vocabulary of thousands (the tiny config keeps about 11 of
    4,096 ids); coarser rounding would move the kept count by a large share.

    Args:
        unused_share: u, the measured never-used share, in [0, 1).
        reference: the published setting whose share q_ref of the usable vocabulary is removed.
    """
    check(is_num(unused_share) and 0 <= unused_share < 1, "unused_share", "in [0, 1)", unused_share,
          prefix="clamp_rule: ")
    p = unused_share + reference.usable_clamp * (1.0 - unused_share)
    return min(0.9999, math.ceil(round(p * 10_000, 6)) / 10_000)


def propose(m: Measurements, steps: int, *, reference: Reference = QWEN_MATH) -> Proposal:
    """AEnt's band, box, lambda0, beta, warmup and p for a run of ``steps`` global steps (rule: module docstring).

    Args:
        m: the measurements of the starting policy (clamped entropy at ``m.clamp_p``).
        steps: planned number of global steps S (>= 1).
        reference: the published setting whose proportions are kept.

    Returns:
        A :class:`Proposal` (unrounded values; ``entropy_section`` / ``overrides`` / ``yaml`` round them).
    """
    if not isinstance(m, Measurements):
        raise ValueError(f"propose: m must be an aent.calibration.Measurements, got {type(m).__name__}")
    check(is_int(steps) and steps >= 1, "steps", "an int >= 1", steps, prefix="propose: ")
    ref, h0, r = reference, m.clamped_entropy, m.grad_ratio
    lo_f, hi_f = ref.band_fracs
    min_f, max_f = ref.box_fracs
    band_low, band_high = lo_f * h0, hi_f * h0
    coef_max = ref.cap_share * r
    ent_coef = coef_max / max_f
    coef_min = ent_coef * min_f
    cross = ref.cross_frac * steps
    coef_lr = (coef_max - coef_min) / (band_low * cross)
    warmup = int(math.floor(ref.warmup_frac * steps + 0.5))
    p_rule = clamp_rule(m.unused_share, ref)
    rules = (
        ("band_low", f"H0 = {h0:.4g} nats at p = {m.clamp_p:g}",
         f"H0 x {lo_f:.4g} (= {ref.band_low:g} / H0_ref {ref.start_clamped_entropy:g})"),
        ("band_high", f"H0 = {h0:.4g}", f"H0 x {hi_f:.4g} (= {ref.band_high:g} / H0_ref)"),
        ("coef_max", f"r = |g_PG| / |g_H~| = {m.pg_grad_norm:.4g} / {m.ent_grad_norm:.4g} = {r:.4g}",
         f"{ref.cap_share:g} x r: at the cap the bonus gradient is {ref.cap_share:g} x the policy gradient"),
        ("ent_coef", f"coef_max = {coef_max:.4g}", f"coef_max x {1 / max_f:.4g} (= {ref.ent_coef:g} / {ref.coef_max:g})"),
        ("coef_min", f"ent_coef = {ent_coef:.4g}", f"ent_coef x {min_f:.4g} (= {ref.coef_min:g} / {ref.ent_coef:g})"),
        ("coef_lr", f"box width {coef_max - coef_min:.4g}, band_low {band_low:.4g}, S = {steps}",
         f"(coef_max - coef_min) / (band_low x {ref.cross_frac:.4g} S): crosses the box in {cross:.3g} steps at "
         f"H~ = 0 ({ref.cross_steps:.3g} of {ref.steps} in the reference)"),
        ("warmup", f"S = {steps}", f"round(S x {ref.warmup_frac:.4g}) (= {ref.warmup} / {ref.steps})"),
        ("clamp_p", f"u = {m.unused_share:.4g} never used"
         + ("" if m.clamp_p == p_rule else f"; p fixed by the user (rule: {p_rule:g})"),
         f"u + {ref.usable_clamp:.4g} (1 - u), rounded up to 4 decimals"),
    )
    warnings = []
    if m.clamp_p < m.unused_share:
        warnings.append(f"p = {m.clamp_p:g} is below the never-used share u = {m.unused_share:.4g}: the clamp "
                        "removes only tokens the policy never uses, so the clamped entropy is nearly the full one")
    if cross < 1:
        warnings.append(f"beta lets lambda cross its box in {cross:.3g} < 1 step: the run is short for the "
                        "reference's proportions; lambda will jump between the ends of the box")
    if m.zero_adv_frac is not None and m.zero_adv_frac > 0:
        warnings.append(f"{m.zero_adv_frac:.0%} of the groups had all-equal rewards and no policy gradient; their "
                        "tokens stay in the token-mean denominator, as in the trainer's first update")
    return Proposal(ent_coef=ent_coef, coef_min=coef_min, coef_max=coef_max, band_low=band_low,
                    band_high=band_high, coef_lr=coef_lr, warmup=warmup, clamp_p=m.clamp_p, clamp_p_rule=p_rule,
                    steps=steps, reference=ref.name, rules=rules, warnings=tuple(warnings))

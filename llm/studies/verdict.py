"""The verdict protocol of every LLM comparison (docs/protocol.md): paired tests valid at small n, a smallest
effect of interest per claim, Holm's correction within a family, saturation-aware controller checks.

Arms of a comparison share their starting policy and seed, so the per-pair difference d_i = m(X, i) - m(Y, i)
is a paired contrast (a pair is one warm start x one run seed). Two tests of the mean difference, each giving its
p-value and its confidence interval from the same test:

- :func:`paired_t`: t = mean(d) / (sd(d) / sqrt(n)), two-sided p from Student's t with n - 1 degrees of freedom
  (:mod:`aent.stats`), CI mean +- t_{1-alpha/2} sd / sqrt(n);
- :func:`sign_flip`: the statistic sum(d); under "no effect" each d_i is as likely as -d_i, so the reference set is
  the 2^n sign flips, enumerated in full for n <= ``exact_max`` (16) and drawn at random above it (a seeded Monte
  Carlo, p = (1 + hits) / (1 + draws)). Its CI inverts the test: the shifts mu0 for which sum(d - mu0) is not
  rejected, found by bisection between the mean and the outer edges. When even the most extreme flip is not rare
  enough (2 / 2^n > alpha, n <= 5 at alpha 0.05) the test gives a p-value only and its CI is unbounded.

A claim (:class:`Hypothesis`) names its claimed direction and its smallest effect of interest (SESOI, fixed before
the runs, in the metric's units). :func:`decide` applies the rule, with p Holm-adjusted within the claim's family:

- ``held``: adjusted p <= alpha AND the mean effect lies at or beyond the SESOI in the claimed direction;
- ``did not hold``: the CI (at level 1 - alpha / m, Bonferroni over the family's m judged claims) lies wholly short
  of the SESOI in the claimed direction: an effect as large as the SESOI is excluded (this covers a significant
  effect of the wrong sign);
- ``inconclusive``: otherwise, and always with fewer than two pairs.

Two kinds of claim are not judged: a claim that can only hold, by construction or by selection, is reported as a
``description``; a claim whose headroom (the most the effect could be) is below its SESOI is reported as
``headroom below SESOI``; a claim whose premise, gated on the baseline alone, is absent is ``premise absent``.
None of them enters the Holm family.

Paired binary outcomes (escaped or not) are differences in {-1, 0, 1}; their sign-flip test is the exact sign
test on the discordant pairs (McNemar's exact test), since a zero difference is the same under either sign.

:func:`coef_status` is the check on an adaptive coefficient: ``saturated`` (at its cap or floor for most post-warm-up
steps), ``moves`` or ``stays``; a saturated controller never counts as moving.

:func:`paired_verdict` is the earlier, uncorrected rule (|t| beyond the 95% critical value, no SESOI), kept for the
studies' per-claim text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aent.stats import holm, t_quantile, t_two_sided_p
from llm.studies.paired_result import PairedTest
from llm.studies.permutation import sign_flip

__all__ = ["COEF_STATES", "DESCRIPTION", "ENTROPY_SESOI_FRAC", "LABELS", "NOT_RUN", "NO_HEADROOM", "PREMISE_ABSENT",
           "VERDICTS", "Hypothesis", "Judgement",
           "PairedTest", "Verdict", "coef_status", "decide", "holm", "judge_family", "paired_t", "paired_verdict",
           "sign_flip", "t_critical"]

VERDICTS = ("held", "did not hold", "inconclusive")
DESCRIPTION = "description"
"""Label of a claim that can only hold (by construction or selection): described, never judged."""
NO_HEADROOM = "headroom below SESOI"
"""Label of a claim whose headroom is smaller than its smallest effect of interest: it cannot be shown."""
PREMISE_ABSENT = "premise absent"
"""Label of a claim whose premise (gated on the baseline alone) does not hold where it was to be tested."""
NOT_RUN = "not run"
"""Label of a claim whose premise holds but whose verdict runs were not run: it enters no family (an untested claim
counted in Holm's m would only weaken the tested ones)."""
LABELS = (*VERDICTS, DESCRIPTION, NO_HEADROOM, PREMISE_ABSENT, NOT_RUN)
COEF_STATES = ("saturated", "moves", "stays")
ENTROPY_SESOI_FRAC = 0.10
"""SESOI of an entropy effect in every LLM comparison: this fraction of the baseline's mean step-1 entropy (nats),
a quantity measured before any update, so the SESOI is fixed before any method's outcome."""

# Two-sided 95% critical values of Student's t, degrees of freedom 1..30 (standard table; a test reference).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical(df: int, alpha: float = 0.05) -> float:
    """Two-sided critical value of Student's t with ``df`` >= 1 degrees of freedom at level ``alpha``."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return t_quantile(1.0 - alpha / 2.0, df)


def _finite(xs: Sequence[float | None]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(float(x))]


def paired_t(diffs: Sequence[float], alpha: float = 0.05) -> PairedTest:
    """Paired t test of mean(d) = 0, with its two-sided p and its (1 - alpha) t-interval.

    >>> r = paired_t([1.0, 2.0, 3.0])  # mean 2, sd 1, t = 2 sqrt(3), df 2
    >>> round(r.stat, 4), round(r.p, 4), tuple(round(c, 3) for c in r.ci)
    (3.4641, 0.0742, (-0.484, 4.484))
    """
    d = _finite(diffs)
    n = len(d)
    mean = sum(d) / n if n else math.nan
    if n < 2:
        return PairedTest("paired t", n, mean, math.nan, math.nan, math.nan, (-math.inf, math.inf), 1 - alpha)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return PairedTest("paired t", n, mean, sd, t, 1.0 if mean == 0 else 0.0, (mean, mean), 1 - alpha)
    t = mean / se
    half = t_critical(n - 1, alpha) * se
    return PairedTest("paired t", n, mean, sd, t, t_two_sided_p(t, n - 1), (mean - half, mean + half), 1 - alpha)


@dataclass(frozen=True)
class Hypothesis:
    """A claim of a comparison, fixed before the runs."""

    key: str
    """Short id."""
    text: str
    """The claim in words."""
    sign: int
    """+1 if the claim says the mean paired difference is positive, -1 if negative."""
    sesoi: float
    """Smallest effect of interest (>= 0, the metric's units): smaller effects do not count as the claim holding."""
    family: str = "main"
    """Holm's correction runs over the judged claims of one family."""
    description: str = ""
    """Non-empty: the claim can only hold (by construction or by selection); this says why, and it is not judged."""

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise ValueError(f"Hypothesis {self.key!r}: sign must be +1 or -1, got {self.sign!r}")
        if not (self.sesoi >= 0 and math.isfinite(self.sesoi)):
            raise ValueError(f"Hypothesis {self.key!r}: sesoi must be finite and >= 0, got {self.sesoi!r}")


@dataclass(frozen=True)
class Judgement:
    """The outcome of one claim."""

    key: str
    label: str
    """One of LABELS."""
    test: PairedTest
    p_adj: float
    """Holm-adjusted p within the family (NaN when not judged)."""
    sesoi: float
    sign: int
    family: str
    reason: str
    """Why the label: the numbers the rule compared, in words."""

    def as_dict(self) -> dict:
        """A JSON-ready record (non-finite numbers as None)."""
        t = self.test

        def f(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"key": self.key, "verdict": self.label, "family": self.family, "sign": self.sign,
                "sesoi": self.sesoi, "test": t.test, "n": t.n, "effect": f(t.mean), "sd": f(t.sd),
                "stat": f(t.stat), "p": f(t.p), "p_adj": f(self.p_adj), "ci_low": f(t.ci[0]),
                "ci_high": f(t.ci[1]), "ci_level": t.level, "reason": self.reason}


def decide(test: PairedTest, sign: int, sesoi: float, p_adj: float, alpha: float = 0.05) -> tuple[str, str]:
    """(label, reason) by the module's rule; ``test.ci`` is the interval the "did not hold" branch reads."""
    if test.n < 2 or math.isnan(p_adj):
        return "inconclusive", f"{test.n} pair(s): no spread to test against"
    effect = sign * test.mean
    far = max(sign * test.ci[0], sign * test.ci[1])  # the CI's end in the claimed direction
    if p_adj <= alpha and effect >= sesoi:
        return "held", f"adjusted p {p_adj:.3g} <= {alpha:g} and effect {effect:.4g} >= SESOI {sesoi:.4g}"
    if far < sesoi:
        return "did not hold", (f"{100 * test.level:.4g}% CI ends at {far:.4g} in the claimed direction, short of "
                                f"the SESOI {sesoi:.4g}")
    why = (f"adjusted p {p_adj:.3g} > {alpha:g}" if p_adj > alpha
           else f"significant, but effect {effect:.4g} < SESOI {sesoi:.4g}")
    return "inconclusive", f"{why}; the CI still reaches the SESOI"


def judge_family(hyps: Sequence[Hypothesis], diffs: Mapping[str, Sequence[float]], *, test: str = "t",
                 alpha: float = 0.05, headroom: Mapping[str, float] | None = None,
                 premise_absent: Mapping[str, str] | None = None, not_run: Mapping[str, str] | None = None,
                 seed: int = 0) -> list[Judgement]:
    """Judge claims with their paired differences ``diffs[key]``; Holm within each family.

    Args:
        hyps: the claims, fixed in advance.
        diffs: per-pair differences per claim key (NaNs dropped).
        test: "t" (:func:`paired_t`) or "sign-flip" (:func:`sign_flip`).
        alpha: family-wise error rate of each family.
        headroom: the largest effect each claim could show (e.g. 1 - baseline accuracy); a claim whose headroom is
            below its SESOI is not judged.
        premise_absent: claim key -> why its premise (gated on the baseline alone) is absent; not judged.
        not_run: claim key -> why it has no runs although its premise holds; not judged, in no family.
        seed: seed of the sign-flip's Monte Carlo draws (used only above its exact limit).

    Returns:
        One :class:`Judgement` per claim, in the order of ``hyps``.
    """
    if test not in ("t", "sign-flip"):
        raise ValueError(f"test must be 't' or 'sign-flip', got {test!r}")
    headroom, premise_absent, not_run = headroom or {}, premise_absent or {}, not_run or {}
    skipped: dict[str, tuple[str, str]] = {}
    for h in hyps:
        room = headroom.get(h.key, math.inf)
        if h.key in premise_absent:
            skipped[h.key] = (PREMISE_ABSENT, premise_absent[h.key])
        elif h.key in not_run:
            skipped[h.key] = (NOT_RUN, not_run[h.key])
        elif h.description:
            skipped[h.key] = (DESCRIPTION, h.description)
        elif room < h.sesoi:
            skipped[h.key] = (NO_HEADROOM, f"the effect can be at most {room:.4g}, below the SESOI {h.sesoi:.4g}")
    fams: dict[str, list[Hypothesis]] = {}
    for h in hyps:
        if h.key not in skipped:
            fams.setdefault(h.family, []).append(h)
    out: dict[str, Judgement] = {}
    for fam, members in fams.items():
        level = alpha / len(members)  # the Bonferroni CI behind "did not hold"
        tests = {h.key: (paired_t(diffs.get(h.key, ()), level) if test == "t"
                         else sign_flip(diffs.get(h.key, ()), level, seed=seed)) for h in members}
        adj = holm([tests[h.key].p for h in members])
        for h, pa in zip(members, adj):
            label, why = decide(tests[h.key], h.sign, h.sesoi, pa, alpha)
            out[h.key] = Judgement(h.key, label, tests[h.key], pa, h.sesoi, h.sign, fam, why)
    for h in hyps:
        if h.key in skipped:
            t = paired_t(diffs.get(h.key, ()), alpha)
            out[h.key] = Judgement(h.key, skipped[h.key][0], t, math.nan, h.sesoi, h.sign, h.family,
                                   skipped[h.key][1])
    return [out[h.key] for h in hyps]


def coef_status(coefs: Sequence[float], low: float, high: float, start: float, *, most: float = 0.5,
                move_frac: float = 0.1, rtol: float = 1e-3) -> tuple[str, float]:
    """State of an adaptive coefficient over its post-warm-up steps, and the share of them at a bound.

    ``saturated`` when more than ``most`` of the steps sit at ``low`` or ``high`` (within ``rtol`` of the bound);
    otherwise ``moves`` when its range exceeds ``move_frac`` of ``start``, else ``stays``.
    """
    c = _finite(coefs)
    if not c:
        return "stays", math.nan
    at = sum(math.isclose(x, high, rel_tol=rtol) or math.isclose(x, low, rel_tol=rtol) or x >= high or x <= low
             for x in c) / len(c)
    if at > most:
        return "saturated", at
    return ("moves" if max(c) - min(c) > move_frac * abs(start) else "stays"), at


@dataclass(frozen=True)
class Verdict:
    """Outcome of one paired comparison by the earlier rule (:func:`paired_verdict`)."""

    label: str
    mean: float
    sd: float
    t: float
    t_crit: float
    n: int

    @property
    def effect_over_sd(self) -> float:
        """mean / sd (d_z): the effect in units of its across-seed spread."""
        if not self.sd > 0:
            return math.copysign(math.inf, self.mean) if self.mean and self.sd == 0 else math.nan
        return self.mean / self.sd


def paired_verdict(diffs: Sequence[float], sign: int) -> Verdict:
    """held / did not hold when |paired t| exceeds the two-sided 95% critical value with / against ``sign``;
    inconclusive within it or with fewer than two differences. No SESOI, no multiplicity correction."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    r = paired_t(diffs)
    if r.n < 2:
        return Verdict("inconclusive", r.mean, math.nan, math.nan, math.nan, r.n)
    tc = t_critical(r.n - 1)
    label = ("held" if math.copysign(1.0, r.stat) == sign else "did not hold") if abs(r.stat) > tc else "inconclusive"
    return Verdict(label, r.mean, r.sd, r.stat, tc, r.n)

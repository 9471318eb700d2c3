"""Paired, seed-level verdicts: does a claimed effect exceed its spread across seeds?

Every arm of a study runs with the same seeds, so seed s of arm X and seed s of arm Y share the warm-started
policy, the prompts of step 1 and the sampling uniforms: the per-seed difference d_s = m(X, s) - m(Y, s) is a
paired contrast. With n seeds the verdict uses the paired t statistic t = mean(d) / (sd(d) / sqrt(n)) (sd with
n - 1 degrees of freedom) against the two-sided 95% critical value of Student's t with n - 1 degrees of freedom:

- ``held``: the effect has the claimed sign and |t| exceeds the critical value;
- ``did not hold``: the effect has the opposite sign and |t| exceeds the critical value;
- ``inconclusive``: within noise, or fewer than two seeds (no spread to compare with).

The effect size in units of the across-seed spread, d_z = mean(d) / sd(d), is reported next to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["VERDICTS", "Verdict", "paired_verdict", "t_critical"]

VERDICTS = ("held", "did not hold", "inconclusive")

# Two-sided 95% critical values of Student's t, degrees of freedom 1..30 (standard table).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical(df: int) -> float:
    """Two-sided 95% critical value of Student's t with ``df`` >= 1 degrees of freedom (1.96 as df -> inf)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T95):
        return _T95[df - 1]
    return 1.96 + 2.4 / df  # within 0.005 of the exact value for df > 30


@dataclass(frozen=True)
class Verdict:
    """Outcome of one paired comparison across seeds."""

    label: str
    """One of VERDICTS."""
    mean: float
    """Mean paired difference (claimed direction not applied)."""
    sd: float
    """Across-seed standard deviation of the differences (n - 1 dof); NaN with one seed."""
    t: float
    """Paired t statistic; NaN with one seed, +-inf when sd = 0 and mean != 0."""
    t_crit: float
    """Critical value used; NaN with one seed."""
    n: int
    """Number of seeds."""

    @property
    def effect_over_sd(self) -> float:
        """mean / sd (d_z): the effect in units of its across-seed spread."""
        if not self.sd > 0:
            return math.copysign(math.inf, self.mean) if self.mean and self.sd == 0 else math.nan
        return self.mean / self.sd


def paired_verdict(diffs: Sequence[float], sign: int) -> Verdict:
    """Verdict on a claim that the paired differences ``diffs`` have sign ``sign`` (+1 or -1).

    Args:
        diffs: per-seed differences m(X, s) - m(Y, s) (or per-seed values for a one-sample claim); NaNs are
            dropped.
        sign: +1 when the claim says the difference is positive, -1 when negative.

    Returns:
        A :class:`Verdict` (see the module docstring for the rule).
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    d = [float(x) for x in diffs if x is not None and math.isfinite(float(x))]
    n = len(d)
    if n == 0:
        return Verdict("inconclusive", math.nan, math.nan, math.nan, math.nan, 0)
    mean = sum(d) / n
    if n < 2:
        return Verdict("inconclusive", mean, math.nan, math.nan, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    tc = t_critical(n - 1)
    if sd == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    if abs(t) > tc:
        label = "held" if math.copysign(1.0, t) == sign else "did not hold"
    else:
        label = "inconclusive"
    return Verdict(label, mean, sd, t, tc, n)

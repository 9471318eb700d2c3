"""The result of one paired test (a leaf module: the tests in verdict and permutation both build it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PairedTest"]


@dataclass(frozen=True)
class PairedTest:
    """One paired test of the mean difference: its p-value and the CI from the same test."""

    test: str
    """Which test, stated: "paired t", "sign-flip, exact (2^n)" or "sign-flip, Monte Carlo (N draws, seed S)"."""
    n: int
    """Number of pairs (finite differences)."""
    mean: float
    """Mean difference (NaN with no pairs)."""
    sd: float
    """Standard deviation of the differences (n - 1 dof); NaN with fewer than two pairs."""
    stat: float
    """The test statistic (t, or sum(d) for the sign-flip)."""
    p: float
    """Two-sided p-value for "mean difference = 0" (NaN with fewer than two pairs)."""
    ci: tuple[float, float]
    """Confidence interval of the mean difference at ``level``; (-inf, inf) when the test cannot bound it."""
    level: float
    """Confidence level of ``ci`` (0.95 at alpha 0.05)."""

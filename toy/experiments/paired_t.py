"""Student-t tests whose interval and p-value come from the same test, and Holm's step-down correction.

:func:`t_test` is the one-sample t test of a mean (for paired runs: of the per-seed differences d_s = x_A(s) -
x_B(s)): the 95% interval mean +- t_{0.975, n-1} se and the two-sided p-value 2 P(T_{n-1} > |mean| / se) use the
same t distribution, so p < 0.05 exactly when the interval excludes 0. It is exact at any n >= 2 when the
differences are normal, and close to exact for sums of many small effects (entropy curves averaged over steps).

The t distribution needs the regularised incomplete beta function; :func:`t_sf` evaluates it by its continued
fraction (modified Lentz), written here because the project does not depend on scipy. Its reference in the tests
is mpmath and the closed forms at 1 and 2 degrees of freedom.

:func:`holm` is Holm's step-down adjustment (Holm 1979): sort the m p-values, multiply the i-th smallest by
m - i + 1, make the sequence non-decreasing and cap it at 1. It controls the family-wise error rate at any
dependence between the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["holm", "t_ppf", "t_sf", "t_test"]


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), for x < (a + 1) / (a + b + 2)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].

    ``y`` is 1 - x when the caller knows it more precisely than ``1 - x`` rounds (x near 1).
    """
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, y) / b


def t_sf(t: float, dof: float) -> float:
    """P(T > t) for Student's t with ``dof`` > 0 degrees of freedom."""
    if not dof > 0:
        raise ValueError(f"dof must be > 0, got {dof!r}")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    t2 = t * t
    # x = dof / (dof + t^2) rounds to 1 near t = 0, so 1 - x is passed exactly as t^2 / (dof + t^2)
    tail = 0.5 * _betainc(dof / 2, 0.5, dof / (dof + t2), t2 / (dof + t2))  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, dof: float) -> float:
    """The q-quantile of Student's t (q in (0, 1)), by bisection on :func:`t_sf`."""
    if not (0 < q < 1):
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if q < 0.5:
        return -t_ppf(1 - q, dof)
    lo, hi = 0.0, 1.0
    while t_sf(hi, dof) > 1 - q:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, dof) > 1 - q else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def t_test(d: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, float]:
    """One-sample t test of mean(d) = 0: mean, se, the ``level`` interval and the two-sided p of the same test.

    Args:
        d: (n,) values, n >= 2 (per-seed paired differences, or per-state effects).
        level: coverage of the interval, in (0, 1).

    Returns:
        dict with n, mean, se, ci_low, ci_high and p. A sample with zero spread gives se = 0, an interval of
        zero width and p = 0 (mean != 0) or 1 (mean == 0).
    """
    x = np.asarray(d, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
        raise ValueError(f"d must be a finite 1-d sample of length >= 2, got shape {x.shape}")
    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    n, mean = len(x), float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(n))
    half = t_ppf(0.5 + level / 2, n - 1) * se
    if se > 0:
        p = min(1.0, 2 * t_sf(abs(mean) / se, n - 1))
    else:
        p = 1.0 if mean == 0 else 0.0
    return {"n": n, "mean": mean, "se": se, "ci_low": mean - half, "ci_high": mean + half, "p": p}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (reject H_i at level alpha when adjusted p_i < alpha)."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | ~np.isfinite(p)).any():
        raise ValueError(f"p_values must be a 1-d list of numbers in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()

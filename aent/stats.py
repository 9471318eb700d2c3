"""Student's t distribution and Holm's correction, in plain Python (the project does not depend on scipy).

The one implementation behind every paired verdict: the toy studies (:mod:`toy.experiments.paired_t`) and the LLM
studies (:mod:`llm.studies.verdict`) both call it.

Student's t with ``df`` degrees of freedom comes from the regularised incomplete beta function
(Abramowitz & Stegun 26.7.1, 26.5.27)::

    P(|T| >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2),     I_x(a, b) = B(x; a, b) / B(a, b).

I_x(a, b) is its continued fraction (A&S 26.5.8), summed by the modified Lentz method on the side of the symmetry
I_x(a, b) = 1 - I_{1-x}(b, a) where it converges fast (x < (a + 1) / (a + b + 2)). Near t = 0 the argument
df / (df + t^2) rounds to 1, so the complement t^2 / (df + t^2) is passed exactly. Quantiles invert the monotone
CDF by bisection, which cannot miss.

:func:`holm` is Holm's (1979) step-down adjustment: it controls the family-wise error rate under any dependence
between the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["betainc", "holm", "t_cdf", "t_quantile", "t_sf", "t_two_sided_p"]

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 1000


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of A&S 26.5.8, 1 / (1 + d1 / (1 + d2 / (1 + ...))), by the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    f = d
    for m in range(1, _MAX_TERMS + 1):
        # Even term d_{2m}, then odd term d_{2m+1}.
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            f *= c * d
        if abs(c * d - 1.0) < _EPS:
            return f
    raise ArithmeticError(f"incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].

    ``y`` is 1 - x, for a caller that knows it more precisely than ``1 - x`` rounds (x near 1).

    >>> round(betainc(2.0, 3.0, 0.4), 6)  # 1 - (1 - x)^4 - 4 x (1 - x)^3 at x = 0.4
    0.5248
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs x in [0, 1], got {x}")
    y = 1.0 - x if y is None else y
    if x == 0.0 or y <= 0.0:
        return 0.0 if x == 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _check_df(df: float) -> None:
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's T with ``df`` > 0 degrees of freedom (1 at t = 0, 0 at |t| = inf, NaN at NaN).

    >>> round(t_two_sided_p(1.0, 1), 12)  # Cauchy: 1 - 2 atan(1) / pi
    0.5
    """
    _check_df(df)
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2)))


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's T with ``df`` > 0 degrees of freedom."""
    _check_df(df)
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * t_two_sided_p(t, df)
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's T with ``df`` > 0 degrees of freedom."""
    return 1.0 - t_sf(t, df)


def t_quantile(q: float, df: float) -> float:
    """The t with P(T <= t) = q, for q in (0, 1), by bisection on :func:`t_sf` (to about 1e-12 relative).

    >>> round(t_quantile(0.975, 2), 6)  # closed form at df = 2: (2q - 1) sqrt(2 / (4 q (1 - q)))
    4.302653
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q!r}")
    _check_df(df)
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > 1.0 - q:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_sf(mid, df) > 1.0 - q else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: sorted ascending, the i-th (from 0) of m is
    multiplied by (m - i), made non-decreasing along that order, capped at 1. NaN (or None) stays NaN and is not
    counted in m. Reject H_i at level alpha when its adjusted p is below alpha.

    >>> tuple(round(p, 6) for p in holm([0.01, 0.04, 0.03, 0.005]))
    (0.03, 0.06, 0.06, 0.02)
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    bad = [pvalues[i] for i in idx if not 0.0 <= pvalues[i] <= 1.0]
    if bad:
        raise ValueError(f"p-values must lie in [0, 1], got {bad}")
    out = [math.nan] * len(pvalues)
    m, running = len(idx), 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out

"""Student's t distribution without scipy: the regularized incomplete beta function, the t CDF and its quantile.

The paired t test of :mod:`llm.studies.verdict` needs a two-sided p-value and a critical value at any number of
degrees of freedom and any level. Both come from the regularized incomplete beta function

    I_x(a, b) = B(x; a, b) / B(a, b),

through the identity for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.1, 26.5.27):

    P(|T| >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2).

I_x(a, b) is evaluated by its continued fraction (A&S 26.5.8), summed with the modified Lentz method, on the side
of the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges fast (x < (a + 1) / (a + b + 2)).
The quantile inverts the CDF by bisection (the CDF is monotone, so bisection cannot miss).
"""

from __future__ import annotations

import math

__all__ = ["betainc", "t_cdf", "t_quantile", "t_two_sided_p"]

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500


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


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].

    >>> round(betainc(2.0, 3.0, 0.4), 6)  # 1 - (1 - x)^4 - 4 x (1 - x)^3 at x = 0.4
    0.5248
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs x in [0, 1], got {x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's T with ``df`` > 0 degrees of freedom (1 at t = 0, 0 at |t| = inf)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's T with ``df`` > 0 degrees of freedom."""
    tail = 0.5 * t_two_sided_p(t, df)
    return 1.0 - tail if t > 0 else tail


def t_quantile(q: float, df: float) -> float:
    """The t with P(T <= t) = q, for q in (0, 1), by bisection on :func:`t_cdf` (to ~1e-12 relative)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)

"""Student-t tests whose interval and p-value come from the same test, and Holm's step-down correction.

:func:`t_test` is the one-sample t test of a mean (for paired runs: of the per-seed differences d_s = x_A(s) -
x_B(s)): the 95% interval mean +- t_{0.975, n-1} se and the two-sided p-value 2 P(T_{n-1} > |mean| / se) use the
same t distribution, so p < 0.05 exactly when the interval excludes 0. It is exact at any n >= 2 when the
differences are normal, and close to exact for sums of many small effects (entropy curves averaged over steps).

The t distribution (:func:`t_sf`, :func:`t_ppf`) and Holm's step-down adjustment (:func:`holm`) are
:mod:`aent.stats`, the one implementation the LLM studies use too; their references in the tests are mpmath and the
closed forms at 1 and 2 degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import aent.stats as _stats

__all__ = ["holm", "t_ppf", "t_sf", "t_test"]


t_sf = _stats.t_sf
t_ppf = _stats.t_quantile
holm = _stats.holm


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

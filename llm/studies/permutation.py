"""The exact sign-flip (paired permutation) test of a mean difference, and its confidence interval by inversion.

Under the null hypothesis "the mean paired difference is mu0", with differences symmetric about mu0, each
centred difference d_i - mu0 is as likely as its negative. The statistic is the sum T = sum_i (d_i - mu0); its
reference distribution is the set of sums sum_i e_i (d_i - mu0) over sign vectors e in {-1, +1}^n. Two-sided p is
the share of sign vectors whose |sum| is at least the observed |T| (the identity is one of them, so p >= 2 / 2^n
exactly: with n <= 5 pairs no result reaches p < 0.05).

- n <= ``exact_max``: all 2^n sign vectors (65,536 at n = 16), so p is exact;
- above: ``draws`` sign vectors drawn with ``numpy.random.default_rng(seed)``, p = (1 + hits) / (1 + draws), which
  counts the observed data as one draw and keeps the test valid (Phipson & Smyth 2010).

Since sum_i e_i (d_i - mu0) = (e . d) - mu0 (e . 1), the two dot products are computed once and every mu0 costs
one vector operation. The CI is the set of mu0 the test does not reject at level alpha; each end is found by
bisection between the mean (p = 1) and the most extreme difference (beyond it p is its floor, 2 / 2^n). When that
floor is above alpha the test cannot bound the mean and the CI is (-inf, inf): the test then gives a p-value only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from llm.studies.paired_result import PairedTest

__all__ = ["sign_flip"]

_REL = 1e-9  # ties: |T_e| >= |T_obs| up to rounding


def _signs(n: int, exact_max: int, draws: int, seed: int) -> tuple[np.ndarray, bool]:
    if n <= exact_max:
        codes = np.arange(2 ** n, dtype=np.int64)[:, None]  # (2^n, 1)
        return ((codes >> np.arange(n)) & 1) * 2.0 - 1.0, True  # (2^n, n), every sign vector once
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(draws, n)) * 2.0 - 1.0, False  # (draws, n)


def _pvalue(dot_d: np.ndarray, dot_1: np.ndarray, total: float, n: int, mu0: float, exact: bool) -> float:
    obs = abs(total - n * mu0)
    hits = int(np.count_nonzero(np.abs(dot_d - mu0 * dot_1) >= obs * (1 - _REL) - _REL * (1 + abs(total))))
    return hits / len(dot_d) if exact else (1 + hits) / (1 + len(dot_d))


def _edge(p_of, mean: float, far: float, alpha: float) -> float:
    """The point between ``mean`` (accepted) and ``far`` (rejected) where p falls to alpha, by bisection.

    p is a step function of mu0, so the edge is one of its jumps, often a round number (0 when a share of pairs
    differs by exactly 1); bisection stops within 1e-12 of the scale, and the result is rounded to 1e-9 of it so
    that such an edge reads 0.0, not -7e-13.
    """
    scale = max(1.0, abs(mean), abs(far))
    inside, outside = mean, far
    for _ in range(100):
        mid = 0.5 * (inside + outside)
        if p_of(mid) > alpha:
            inside = mid
        else:
            outside = mid
        if abs(outside - inside) <= 1e-12 * scale:
            break
    return round(0.5 * (inside + outside) / scale, 9) * scale + 0.0  # + 0.0: no -0.0


def sign_flip(diffs: Sequence[float], alpha: float = 0.05, *, exact_max: int = 16, draws: int = 20_000,
              seed: int = 0):
    """Sign-flip test of mean(d) = 0 with its two-sided p and the (1 - alpha) CI obtained by inverting it.

    Args:
        diffs: paired differences (NaNs dropped).
        alpha: level of the CI (the p-value does not depend on it).
        exact_max: largest n enumerated in full (2^n sign vectors).
        draws: number of random sign vectors above ``exact_max``.
        seed: seed of those draws.

    Returns:
        A :class:`llm.studies.paired_result.PairedTest` (``stat`` is sum(d)).

    >>> r = sign_flip([1.0, 2.0, 3.0])  # sums +-1 +-2 +-3: only 6 and -6 reach |6|, so p = 2/8
    >>> r.p, r.ci
    (0.25, (-inf, inf))
    """
    d = np.array([float(x) for x in diffs if x is not None and math.isfinite(float(x))], dtype=np.float64)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return PairedTest("sign-flip", n, mean, sd, float(d.sum()) if n else math.nan, math.nan,
                          (-math.inf, math.inf), 1 - alpha)
    signs, exact = _signs(n, exact_max, draws, seed)
    name = "sign-flip, exact (2^n)" if exact else f"sign-flip, Monte Carlo ({draws} draws, seed {seed})"
    dot_d, dot_1, total = signs @ d, signs.sum(axis=1), float(d.sum())

    def p_of(mu0: float) -> float:
        return _pvalue(dot_d, dot_1, total, n, mu0, exact)

    p = p_of(0.0)
    lo_far, hi_far = float(d.min()), float(d.max())
    if sd == 0:  # every d equal: any mu0 != mean gets the smallest p the test can give, 2 / 2^n when exact
        ci = (mean, mean) if p_of(mean + 1.0) <= alpha else (-math.inf, math.inf)
    elif p_of(hi_far + (hi_far - lo_far)) > alpha:  # the floor of p is above alpha: no bounded interval
        ci = (-math.inf, math.inf)
    else:
        ci = (_edge(p_of, mean, lo_far - 1e-12 * (1 + abs(lo_far)), alpha),
              _edge(p_of, mean, hi_far + 1e-12 * (1 + abs(hi_far)), alpha))
    return PairedTest(name, n, mean, sd, total, p, ci, 1 - alpha)

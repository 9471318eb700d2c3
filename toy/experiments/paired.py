"""Paired comparisons with a fixed decision rule, for experiments whose arms share seeds (common random numbers).

Seed s of arm A and seed s of arm B see the same task, initial logits and sample stream, so the per-seed
difference d_s carries the comparison. :func:`paired_test` is ONE test, the two-sided sign-flip permutation test
of "d_s is symmetric about delta", and reports both its p-value (delta = 0) and the 95% interval obtained by
inverting the same test (every delta it does not reject at 0.05). Exact (all 2^n sign patterns) for n <= EXACT_N;
above that a fixed seeded set of N_FLIPS patterns (plus the identity) serves the p-value and the interval alike.
No normality is assumed, which matters for near-binary outcomes ("escaped the trap or not").

Decision rule of every Figure 1 claim (fixed before the runs, docs/toy/results.md):
- "held": the Holm-adjusted p < ALPHA and the mean difference > MIN_EFFECT;
- "did not hold": the upper end of the 95% interval is below MIN_EFFECT (the claimed effect is refuted);
- "inconclusive": neither.
:func:`holm` adjusts a family of p-values; :func:`intersection_union` combines the tests of a claim that needs all of
them (its p is the largest).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["ALPHA", "EXACT_N", "MIN_EFFECT", "N_FLIPS", "edge_status", "holm", "intersection_union", "paired_test"]

ALPHA = 0.05
MIN_EFFECT = 0.02  # smallest difference in V (reward units) that counts as an edge
EXACT_N = 16
N_FLIPS = 2**16


def _signs(n: int, seed: int) -> np.ndarray:
    """(K, n) sign patterns: all 2^n for n <= EXACT_N, else the identity plus N_FLIPS seeded random ones."""
    if n <= EXACT_N:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    rand = np.random.default_rng(seed).choice([-1.0, 1.0], size=(N_FLIPS, n))
    return np.vstack([np.ones((1, n)), rand])


def _p_at(d: np.ndarray, delta: float, signs: np.ndarray) -> float:
    """Two-sided sign-flip p-value of "d - delta is symmetric about 0" (counts the observed pattern)."""
    x = d - delta
    obs = abs(x.mean())
    null = np.abs(signs @ x) / len(x)
    return float(np.mean(null >= obs - 1e-12 * max(1.0, obs)))


def _bound(d: np.ndarray, signs: np.ndarray, inside: float, outside: float, level: float) -> float:
    """Bisection for the edge of {delta: p(delta) >= level} between an accepted and a rejected delta."""
    for _ in range(60):
        mid = (inside + outside) / 2
        inside, outside = (mid, outside) if _p_at(d, mid, signs) >= level else (inside, mid)
    return (inside + outside) / 2


def paired_test(a, b, seed: int = 0) -> dict[str, float]:
    """Paired sign-flip test of a - b (per-seed values, same length >= 2): mean, p and its inverted 95% interval.

    Returns:
        dict with n, mean (of a - b), se (descriptive: sample sd / sqrt(n)), p (two-sided, delta = 0), ci_low, ci_high (the deltas the same test does not
        reject at level 0.05, by bisection from the mean outward) and exact (1.0 when all patterns were used).
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) < 2 or np.shape(a) != np.shape(b):
        raise ValueError(f"a and b must be 1-d of equal length >= 2, got {np.shape(a)} and {np.shape(b)}")
    signs = _signs(len(d), seed)
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
    span = float(d.max() - d.min())
    if span == 0:  # every difference equal: the test rejects every delta but that value
        return {"n": len(d), "mean": mean, "se": se, "p": _p_at(d, 0.0, signs), "ci_low": mean, "ci_high": mean,
                "exact": float(len(d) <= EXACT_N)}
    lo = _bound(d, signs, mean, float(d.min()) - span, 0.05)
    hi = _bound(d, signs, mean, float(d.max()) + span, 0.05)
    return {"n": len(d), "mean": mean, "se": se, "p": _p_at(d, 0.0, signs), "ci_low": lo, "ci_high": hi,
            "exact": float(len(d) <= EXACT_N)}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    order = np.argsort(pvalues, kind="stable")
    k = len(pvalues)
    adj = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * pvalues[i]))
        adj[i] = running
    return adj.tolist()


def intersection_union(tests: list[dict[str, float]]) -> float:
    """p-value of "every one of these effects is present" (intersection-union test): the largest p."""
    return max(t["p"] for t in tests)


def edge_status(test: dict[str, float], p_adjusted: float | None = None) -> str:
    """"edge", "no edge" or "undecided" by the fixed rule of the module docstring (``p_adjusted``: Holm's p)."""
    p = test["p"] if p_adjusted is None else p_adjusted
    if p < ALPHA and test["mean"] > MIN_EFFECT:
        return "edge"
    if test["ci_high"] < MIN_EFFECT:
        return "no edge"
    return "undecided"

"""Paired comparisons with a fixed decision rule, for experiments whose arms share seeds (common random numbers).

Seed s of arm A and seed s of arm B see the same task, initial logits and sample stream, so the per-seed
difference d_s = x_A(s) - x_B(s) carries the comparison. :func:`paired_test` reports its mean, a 95% interval
(t quantile) and a two-sided sign-flip permutation p-value (exact under the null that d_s is symmetric about 0;
no normality needed, which matters for near-binary outcomes such as "escaped the trap or not").

:func:`edge_status` is the rule every Figure 1 verdict uses, fixed before the runs:
- "edge": p < ALPHA and mean difference > MIN_EFFECT;
- "no edge": the upper end of the 95% interval is below MIN_EFFECT (any edge is shown to be smaller than it);
- "undecided": neither.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ALPHA", "MIN_EFFECT", "N_FLIPS", "edge_status", "paired_test", "t_quantile"]

ALPHA = 0.05
MIN_EFFECT = 0.02  # smallest difference in V (reward units) that counts as an edge
N_FLIPS = 20_000


def t_quantile(q: float, dof: int) -> float:
    """Student-t quantile by the Cornish-Fisher expansion around the normal one (error < 1e-3 for dof >= 10)."""
    if not (0.5 <= q < 1 and dof >= 1):
        raise ValueError(f"need q in [0.5, 1) and dof >= 1, got q={q!r}, dof={dof!r}")
    # normal quantile by bisection on erf (no scipy)
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q else (lo, mid)
    z = (lo + hi) / 2
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


def paired_test(a, b, seed: int = 0) -> dict[str, float]:
    """Paired comparison of per-seed values a and b (same length >= 2).

    Returns:
        dict with n, mean (of a - b), se, ci_low, ci_high (95%, t with n - 1 dof) and p (two-sided sign-flip
        permutation test with N_FLIPS random flips, counting the observed assignment; seeded).
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) < 2 or len(np.asarray(a)) != len(np.asarray(b)):
        raise ValueError(f"a and b must be 1-d of equal length >= 2, got {np.shape(a)} and {np.shape(b)}")
    n, mean = len(d), float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    half = t_quantile(0.975, n - 1) * se
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(N_FLIPS, n))
    null = np.abs((signs * d).mean(axis=1))
    p = float((1 + np.sum(null >= abs(mean) - 1e-15)) / (N_FLIPS + 1))
    return {"n": n, "mean": mean, "se": se, "ci_low": mean - half, "ci_high": mean + half, "p": p}


def edge_status(test: dict[str, float]) -> str:
    """"edge", "no edge" or "undecided" by the fixed rule of the module docstring."""
    if test["p"] < ALPHA and test["mean"] > MIN_EFFECT:
        return "edge"
    if test["ci_high"] < MIN_EFFECT:
        return "no edge"
    return "undecided"

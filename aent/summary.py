"""Summaries of metric rows (one dict per step, as ``metrics.jsonl`` holds), shared by the studies and the report.

The toy and the trainer log the same metric names, so one set of helpers summarises both: the finite values of a
metric across steps (:func:`values`, :func:`series` with their steps), the mean of the last quarter of the steps
(:func:`tail_mean`, a 'final' value less noisy than the last step) and a short number format (:func:`fmt`).

    >>> rows = [{"step": 1, "entropy": 0.9}, {"step": 2, "entropy": float("nan")}, {"step": 3, "entropy": 0.5}]
    >>> series(rows, "entropy")
    [(1, 0.9), (3, 0.5)]
    >>> tail_mean([1.0, 2.0, 3.0, 4.0, 5.0]), tail_mean([1.0, 2.0, 3.0, 4.0, 5.0], ceil=True)
    (5.0, 4.5)
    >>> fmt(0.12345), fmt(-0.0012345), fmt(0.12345, signed=False)
    ('+0.123', '-1.23e-03', '0.123')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["finite", "fmt", "series", "tail_mean", "values"]


def finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def values(rows: Sequence[dict], key: str) -> list[float]:
    """The finite values of ``key`` across the rows, in row order (rows without it, or NaN, are skipped)."""
    return [v for r in rows if (v := finite(r.get(key))) is not None]


def series(rows: Sequence[dict], key: str) -> list[tuple[int, float]]:
    """``(step, value)`` pairs of the finite values of ``key`` (every row must have a ``step``)."""
    return [(int(r["step"]), v) for r in rows if (v := finite(r.get(key))) is not None]


def tail_mean(xs: Sequence[float], frac: float = 0.25, *, ceil: bool = False) -> float:
    """Mean of the last k values, k = max(1, round(len * frac)) (``ceil``: rounded up); NaN when empty.

    The studies round k to the nearest integer and the report rounds it up (their published numbers were
    computed that way; both keep their rule)."""
    if not xs:
        return math.nan
    k = max(1, int(math.ceil(len(xs) * frac)) if ceil else int(round(len(xs) * frac)))
    tail = list(xs[-k:])
    return sum(tail) / len(tail)


def fmt(x: float | None, nd: int = 3, *, signed: bool = True) -> str:
    """A number for prose and tables; "nan" for None or a non-finite value.

    ``signed``: with its sign and nd decimals, or nd significant digits when 0 < |x| < 10^-2 (effects).
    Otherwise nd decimals (levels)."""
    if x is None or not math.isfinite(x):
        return "nan"
    if not signed:
        return f"{x:.{nd}f}"
    return f"{x:+.{nd - 1}e}" if 0 < abs(x) < 1e-2 else f"{x:+.{nd}f}"

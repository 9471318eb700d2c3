"""Exact row-wise selection of the k smallest values, ties broken by column, without sorting the rows.

Private kernel of :func:`aent.clamped_entropy` (AEnt, arXiv 2509.03493): the clamped entropy removes the
k = floor(p * V) smallest logits of each row. :func:`kth_smallest` returns, per row, the k-th smallest value t and
the *cut* column c such that the removed set is exactly

    {a : y_a < t}  union  {a : y_a == t and a <= c}              (k tokens in all),

i.e. the first k tokens of a stable ascending sort of the row (equal values: lower column first). Storing (t, c)
instead of a list of tied positions keeps the state two numbers per row, and applying the removal is one
comparison per element (columns <= c against t, columns > c against the next float below t): see
:func:`remove_smallest_`.

How (no sort of the row, no ``nonzero`` over the vocabulary):

1. bracket: two order statistics [lo, hi] of a strided sample of ``SAMPLE`` columns, ``WIDEN`` binomial standard
   deviations either side of rank q * SAMPLE (q = k / V), contain the k-th value except with tiny probability;
2. one pass counts the values below lo and marks the values inside [lo, hi] (about 4% of the row at V = 151,936);
3. the marked positions are listed from the mask viewed as 64-bit words (``nonzero`` over V / 8 words, then the 8
   bytes of each non-zero word), so the listing scans an eighth of the row;
4. the exact (k - below)-th value is selected among those candidates; its copies are in the list in column order,
   which gives the cut column.

Rows whose bracket misses (the check is exact: below < k <= below + inside) are selected directly with
``torch.kthvalue`` on the row. Rows with NaN are not supported (their result is unspecified, not an error).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["kth_smallest", "remove_smallest_", "SAMPLE", "WIDEN"]

SAMPLE = 4096  # columns sampled per row to bracket the k-th value
WIDEN = 3.5  # bracket half-width in binomial standard deviations of the sample rank


def _count(b: Tensor) -> Tensor:
    """Row counts (int64) of a boolean (n, V) tensor; summing its bytes is several times faster than bool.sum."""
    return b.view(torch.uint8).sum(-1, dtype=torch.int32).long()


def _cut_of(rows: Tensor, cols: Tensor, need: Tensor, n: int) -> Tensor:
    """Column of the need[r]-th (1-indexed) listed position of each row r; positions sorted row-major."""
    cut = torch.full((n,), -1, dtype=torch.long, device=cols.device)
    if rows.numel() == 0:
        return cut
    count = torch.bincount(rows, minlength=n)
    start = torch.cumsum(count, 0) - count
    rank = torch.arange(rows.numel(), device=rows.device) - start[rows]
    hit = rank == (need[rows] - 1)
    cut[rows[hit]] = cols[hit]
    return cut


def _direct(y: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(t, cut) of each row by ``torch.kthvalue`` on the whole row (small V, or rows whose bracket missed)."""
    t = y.kthvalue(k, -1).values
    need = k - _count(y < t[:, None])
    rows, cols = torch.nonzero(y == t[:, None], as_tuple=True)
    return t, _cut_of(rows, cols, need, y.shape[0])


def _select_in_band(vals: Tensor, count: Tensor, rank: Tensor, vocab: int) -> Tensor:
    """rank-th smallest (1-indexed) of each row's candidates; vals holds row 0's count[0] values, then row 1's...

    Rows are padded so that every row's target is the same rank J: J - rank copies of -inf in front, +inf after;
    then the J-th smallest of each row of the small padded matrix is selected by :func:`kth_smallest` itself
    (one more bracket when the candidates are many), or by ``kthvalue`` when that would not shrink the problem
    to at most half the row length ``vocab`` (e.g. a row of equal values, whose band is the whole row).
    """
    big_j = int(rank.max())
    lead = big_j - rank
    width = int((lead + count).max())
    n = count.numel()
    padded = torch.full((n, width), math.inf, device=vals.device)  # (n, width)
    cols = torch.arange(width, device=vals.device)
    padded.masked_fill_(cols < lead[:, None], -math.inf)
    row_of = torch.repeat_interleave(torch.arange(n, device=vals.device), count)
    start = torch.cumsum(count, 0) - count
    pos = torch.arange(vals.numel(), device=vals.device) - start[row_of] + lead[row_of]
    padded[row_of, pos] = vals
    if 2 * width > vocab:
        return padded.kthvalue(big_j, -1).values
    return kth_smallest(padded, big_j)[0]


def kth_smallest(y: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Exact k-th smallest value of each row and the cut column of its removed copies.

    Args:
        y: (n, V) float32 tensor (no NaN; -inf and +inf allowed).
        k: 1 <= k <= V.

    Returns:
        t: (n,) float32, the k-th smallest value of each row (``torch.kthvalue(y, k).values``).
        cut: (n,) int64, the column of the last removed copy of t: the k smallest of a row, ties broken by lower
        column first, are {y < t} and {y == t, column <= cut}.
    """
    n, vocab = y.shape
    if not 1 <= k <= vocab:
        raise ValueError(f"k must be in [1, V={vocab}], got {k}")
    if n == 0:
        return y.new_empty(0), torch.empty(0, dtype=torch.long, device=y.device)
    if vocab <= 4 * SAMPLE:
        return _direct(y, k)
    sample = y[:, :: vocab // SAMPLE]  # (n, S) strided view
    size = sample.shape[1]
    q = k / vocab
    half = WIDEN * math.sqrt(size * q * (1 - q)) + 2
    r_lo, r_hi = math.floor(q * size - half), math.ceil(q * size + half)
    lo = sample.kthvalue(r_lo, -1, keepdim=True).values if r_lo >= 1 else y.new_full((n, 1), -math.inf)
    hi = sample.kthvalue(r_hi, -1, keepdim=True).values if r_hi <= size else y.new_full((n, 1), math.inf)
    below = y < lo  # (n, V) bool
    c_lo = _count(below)
    band = torch.le(y, hi).logical_xor_(below)  # lo <= y <= hi: {y <= hi} minus {y < lo}
    del below
    rows, cols = torch.nonzero(band, as_tuple=True)  # row-major: columns ascending within a row
    del band
    vals = y[rows, cols]
    count = torch.bincount(rows, minlength=n)
    ok = (c_lo < k) & (c_lo + count >= k)
    t = torch.empty(n, device=y.device)
    if not bool(ok.all()):
        okr = ok[rows]
        rows, cols, vals = rows[okr], cols[okr], vals[okr]
    if bool(ok.any()):
        t[ok] = _select_in_band(vals, count[ok], (k - c_lo)[ok], vocab)
    # Copies of t lie in the band, listed in column order: the need-th of them is the last one removed.
    tv = t[rows]
    n_below = c_lo + torch.zeros_like(c_lo).index_add_(0, rows, (vals < tv).to(c_lo.dtype))
    eq = vals == tv
    cut = _cut_of(rows[eq], cols[eq], k - n_below, n)
    bad = torch.nonzero(~ok).flatten()
    if bad.numel():  # rare: the bracket missed; select on the whole row
        t[bad], cut[bad] = _direct(y[bad], k)
    return t, cut


def remove_smallest_(y: Tensor, t: Tensor, cut: Tensor, fill: float = -math.inf) -> Tensor:
    """In place: set the removed entries of each row of y (n, V) to ``fill``; see :func:`kth_smallest`.

    Columns <= cut[r] are removed where y <= t[r], later columns where y < t[r] (y <= the next float below t[r]),
    with ``torch.nn.functional.threshold_`` on the row's two slices: one comparison per element, kept values
    untouched. Rows with cut = -1 (nothing removed) are left alone.
    """
    below = torch.nextafter(t, t.new_full((), -math.inf))
    for r, (tv, bv, c) in enumerate(zip(t.tolist(), below.tolist(), cut.tolist())):
        if c >= 0:
            torch.nn.functional.threshold_(y[r, : c + 1], tv, fill)
            if bv > -math.inf:  # t = -inf: no value lies below it
                torch.nn.functional.threshold_(y[r, c + 1:], bv, fill)
    return y

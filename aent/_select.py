"""Exact row-wise selection of the k smallest values, ties broken by column, without sorting the rows.

Private kernel of :func:`aent.clamped_entropy` (AEnt, arXiv 2509.03493): the clamped entropy removes the
k = floor(p * V) smallest logits of each row. :func:`kth_smallest` returns, per row, the k-th smallest value t and
the *cut* column c such that the removed set is exactly

    {a : y_a < t}  union  {a : y_a == t and a <= c}              (k tokens in all),

i.e. the first k tokens of a stable ascending sort of the row (equal values: lower column first). Storing (t, c)
instead of a list of tied positions keeps the state two numbers per row, and applying the removal is one
comparison per element (columns <= c against t, columns > c against the next float below t): see
:func:`remove_smallest_` and :func:`remove_smallest`.

How (no sort of the row; per-operation costs on one CPU core are in docs/benchmarks/entropy.md):

1. lower bound: an order statistic lo of a strided sample of ``SAMPLE`` columns, ``WIDEN`` binomial standard
   deviations below rank q * SAMPLE (q = k / V), lies below the k-th value except with tiny probability; one
   comparison pass counts the values below it exactly. Comparisons are written as fp32 0/1 and summed: on CPU
   that is about 2.5x faster than a boolean comparison;
2. band: the target is now the (k - below)-th value >= lo, and about (k - below) * S / V sample points lie between
   lo and it, with a binomial spread that no longer includes lo's own rank. Two order statistics of the sorted
   sample above lo (``topk``) bracket that rank; two comparison passes count below the bracket and mark the band
   inside it (about 2% of the row at V = 151,936, against 5% for a one-level bracket from the same sample);
3. the band is listed from its mask viewed as 64-bit words (``nonzero`` over V / 8 words, then the 8 bytes of each
   non-zero word), so the listing scans an eighth of the row;
4. each row's band values are contiguous in the listing: the exact (k - below)-th of them is selected with
   ``kthvalue`` on that slice; its copies are in the list in column order, which gives the cut column.

Rows whose bracket misses (the check is exact: below < k <= below + inside) are selected directly with
``torch.kthvalue`` on the row. Rows with NaN are not supported (their result is unspecified, not an error).

Large temporaries come from a :class:`Scratch` reused across chunks when the caller passes one: a fresh
multi-megabyte tensor costs a page fault per 4 KiB on first touch, which on the CPU measured cost twice the pass itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["kth_smallest", "remove_smallest_", "remove_smallest", "Scratch", "SAMPLE", "WIDEN"]

SAMPLE = 4096  # columns sampled per row to bracket the k-th value
WIDEN = 3.5  # bracket half-width in binomial standard deviations of the sample rank


class Scratch:
    """Named (rows, width) work buffers, allocated once at the largest size asked and handed out as row slices.

    Reusing them across the chunks of one call avoids re-faulting fresh pages for every chunk (glibc serves
    blocks of a few MiB with a new ``mmap`` each time). Buffers are zero-filled when made, so padding columns a
    caller never writes stay 0.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._bufs: dict[str, Tensor] = {}

    def get(self, name: str, rows: int, width: int, dtype: torch.dtype = torch.float32) -> Tensor:
        buf = self._bufs.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != width or buf.dtype != dtype:
            buf = torch.zeros(rows, width, dtype=dtype, device=self.device)
            self._bufs[name] = buf
        return buf[:rows]


def _count_below(y: Tensor, t: Tensor, work: Scratch | None = None) -> Tensor:
    """Row counts (int64) of y < t[:, None], as the row sum of an fp32 0/1 comparison (exact for V < 2**24)."""
    out = work.get("below", *y.shape) if work is not None else torch.empty(y.shape, device=y.device)
    return torch.lt(y, t.view(-1, 1), out=out).sum(-1).long()


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


def _direct(y: Tensor, k: int, work: Scratch | None = None) -> tuple[Tensor, Tensor]:
    """(t, cut) of each row by ``torch.kthvalue`` on the whole row (small V, or rows whose bracket missed)."""
    t = y.kthvalue(k, -1).values
    need = k - _count_below(y, t, work)
    rows, cols = torch.nonzero(y == t[:, None], as_tuple=True)
    return t, _cut_of(rows, cols, need, y.shape[0])


def _list_band(band: Tensor) -> tuple[Tensor, Tensor]:
    """(rows, cols) of the True entries of a sparse (n, W) bool mask, W a multiple of 8, row-major (columns
    ascending within a row).

    The mask is scanned as 64-bit words (eight columns each) and only the non-zero words are expanded to their
    bytes: with a band of a few percent of the row this is several times faster than ``nonzero`` on the bytes.
    """
    words_per_row = band.shape[1] // 8
    flat = band.view(torch.int64).view(-1)
    hit = torch.nonzero(flat).flatten()  # (h,) non-zero words, ascending
    byte_i, byte_j = torch.nonzero(flat[hit].view(torch.uint8).view(-1, 8), as_tuple=True)
    word = hit[byte_i]
    rows = torch.div(word, words_per_row, rounding_mode="floor")
    cols = (word - rows * words_per_row) * 8 + byte_j
    return rows, cols


def kth_smallest(y: Tensor, k: int, work: Scratch | None = None) -> tuple[Tensor, Tensor]:
    """Exact k-th smallest value of each row and the cut column of its removed copies.

    Args:
        y: (n, V) float32 tensor (no NaN; -inf and +inf allowed).
        k: 1 <= k <= V.
        work: optional :class:`Scratch` for the (n, V) temporaries (reused across calls by the caller).

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
        return _direct(y, k, work)
    work = work if work is not None else Scratch(y.device)
    sample = y[:, :: vocab // SAMPLE]  # (n, S) strided view
    size = sample.shape[1]
    rate = size / vocab
    q = k / vocab
    # Level 1: a lower bound lo (WIDEN binomial sd below the target's sample rank) and the exact count below it.
    r_lo = math.floor(q * size - WIDEN * math.sqrt(size * q * (1 - q)) - 2)
    lo = sample.kthvalue(r_lo, -1, keepdim=True).values if r_lo >= 1 else y.new_full((n, 1), -math.inf)
    c_lo = torch.lt(y, lo, out=work.get("below", n, vocab)).sum(-1).long()  # fp32 0/1: the fast comparison
    # Level 2: the target is the (k - c_lo)-th value >= lo; about (k - c_lo) * rate sample points lie between.
    # Bracket that sample rank, now without the uncertainty of lo's own rank, among the sorted sample >= lo.
    expect = (k - c_lo).clamp(min=0).double() * rate
    spread = WIDEN * (expect * (1 - rate)).sqrt() + 2
    j_lo = (expect - spread).floor().long()  # 1-indexed ranks among the sample points >= lo
    j_hi = (expect + spread).ceil().long()
    above = torch.where(sample >= lo, sample, math.inf)
    top = int(j_hi.clamp(max=size).max())
    ranked = above.topk(max(top, 1), -1, largest=False).values  # (n, top) ascending
    lo2 = torch.where(j_lo >= 1, ranked.gather(1, (j_lo - 1).clamp(0, top - 1)[:, None]).squeeze(1), lo.squeeze(1))
    hi2 = torch.where(j_hi <= top, ranked.gather(1, (j_hi - 1).clamp(0, top - 1)[:, None]).squeeze(1), math.inf)
    below = torch.lt(y, lo2[:, None], out=work.get("below", n, vocab))  # (n, V) fp32 0/1
    c_lo = below.sum(-1).long()
    inside = torch.le(y, hi2[:, None], out=work.get("inside", n, vocab)).sub_(below)  # lo2 <= y <= hi2
    band = work.get("band", n, -(-vocab // 8) * 8, torch.bool)  # padding columns stay False
    band[:, :vocab].copy_(inside)
    rows, cols = _list_band(band)
    vals = y.reshape(-1)[rows * vocab + cols] if y.is_contiguous() else y[rows, cols]
    count = torch.bincount(rows, minlength=n)
    ok = (c_lo < k) & (c_lo + count >= k)
    t = y.new_full((n,), math.nan)
    # Each row's band values are contiguous in vals (row-major listing): the (k - c_lo)-th of its slice.
    ends = torch.cumsum(count, 0).tolist()
    for r, (good, need, end, c) in enumerate(zip(ok.tolist(), (k - c_lo).tolist(), ends, count.tolist())):
        if good:
            t[r] = vals[end - c:end].kthvalue(need).values
    # Copies of t lie in the band, listed in column order: the need-th of them is the last one removed.
    tv = t[rows]
    n_below = c_lo + torch.zeros_like(c_lo).index_add_(0, rows, (vals < tv).to(c_lo.dtype))
    eq = vals == tv  # False on rows that missed (t is NaN there)
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


def remove_smallest(x: Tensor, t: Tensor, cut: Tensor, out: Tensor, fill: float = -math.inf) -> Tensor:
    """:func:`remove_smallest_` out of place: ``out`` (x's shape) receives x with the removed entries at ``fill``.

    One pass (``torch.threshold`` with ``out=``) instead of a copy followed by the in-place removal.
    """
    below = torch.nextafter(t, t.new_full((), -math.inf))
    for r, (tv, bv, c) in enumerate(zip(t.tolist(), below.tolist(), cut.tolist())):
        if c < 0:
            out[r].copy_(x[r])
            continue
        torch.threshold(x[r, : c + 1], tv, fill, out=out[r, : c + 1])
        if bv > -math.inf:
            torch.threshold(x[r, c + 1:], bv, fill, out=out[r, c + 1:])
        else:  # t = -inf: no value lies below it
            out[r, c + 1:].copy_(x[r, c + 1:])
    return out

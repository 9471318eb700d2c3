"""Softmax policies over arms with tied logits: entries (logit z_b, count n_b) standing for n_b arms each.

Used by toy.trap_bandit. A tie is a property of the *state*, not an approximation: arms of one entry have the same
logit and the same reward, so every update rule here moves them identically until one of them is sampled (it is
then split off into an entry of its own, :func:`split_members`) or the clamp threshold falls inside the entry (the
kept and removed arms are split apart, :func:`split_partial`). Pooling is therefore exact for the exact gradient and
for sampled updates alike, because a sampled update splits the drawn arm off before it moves it.

The entropy gradients are closed forms (tabular softmax, AEnt arXiv 2509.03493, Sec. 4; docs/toy/theory.md claim 5):
per arm a of the kept set K, dH~/dz_a = -pi~(a) (log pi~(a) + H~), zero for removed arms; p = 0 is the full entropy.

Shapes: R runs (rows), E entries; counts are float, 0 marks an unused entry.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aent.entropy import clamp_k

__all__ = ["entropy_grad", "kept_counts", "multiset_entropy", "split_members", "split_partial"]


def _log_counts(counts: Tensor) -> Tensor:
    return torch.where(counts > 0, counts.clamp(min=1e-30).log(), torch.full_like(counts, -math.inf))


def multiset_entropy(logits: Tensor, counts: Tensor) -> Tensor:
    """Entropy (nats) of the softmax over arms when entry b stands for counts[..., b] arms of logit logits[..., b].

    Args:
        logits: (..., E) logits per entry.
        counts: (..., E) or (E,) nonnegative arm counts (at least one positive per row).

    Returns:
        (...) entropies: H = log Z - sum_b n_b pi_b z_b with pi_b = e^{z_b} / Z, Z = sum_b n_b e^{z_b}.
    """
    counts = torch.as_tensor(counts, dtype=logits.dtype).expand_as(logits)
    if bool((counts < 0).any()):
        raise ValueError("counts must be >= 0")
    shifted = logits + _log_counts(counts)
    log_z = torch.logsumexp(shifted, -1, keepdim=True)
    q = (shifted - log_z).exp()  # mass of each entry
    return log_z.squeeze(-1) - (q * torch.where(counts > 0, logits, torch.zeros_like(logits))).sum(-1)


def kept_counts(logits: Tensor, counts: Tensor, clamp_p: float) -> Tensor:
    """Arms of each entry kept by the clamped entropy: the floor(p N) arms of smallest logit are removed.

    Entries are removed whole from the bottom; the entry at the threshold loses the remainder (its arms are tied, so
    which of them go does not change the entropy, as in aent.clamped_entropy). N = counts.sum(-1), equal in all rows.

    Args:
        logits: (R, E) logits per entry.
        counts: (R, E) or (E,) arm counts per entry.
        clamp_p: fraction removed, in [0, 1).

    Returns:
        (R, E) kept counts.
    """
    counts = torch.as_tensor(counts, dtype=logits.dtype).expand_as(logits)
    k = clamp_k(clamp_p, int(round(float(counts[0].sum()))))
    order = logits.detach().argsort(dim=-1)  # ascending (tied arms have equal logits: any order gives the same H)
    sorted_n = counts.gather(-1, order)
    before = sorted_n.cumsum(-1) - sorted_n
    kept_sorted = (sorted_n - (k - before).clamp(min=0)).clamp(min=0)
    return torch.empty_like(kept_sorted).scatter_(-1, order, kept_sorted)


def entropy_grad(logits: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Per-arm gradient of the entropy of the softmax over the arms of ``counts`` (a kept set), and that entropy.

    Args:
        logits: (R, E); counts: (R, E) arms of each entry that the entropy counts (kept counts for H~).

    Returns:
        ((R, E) dH/dz_a for one arm a of each entry, 0 where counts == 0; (R,) H).
    """
    shifted = logits + _log_counts(counts)
    log_z = torch.logsumexp(shifted, -1, keepdim=True)
    logp = torch.where(counts > 0, logits - log_z, torch.zeros_like(logits))  # log pi(a), one arm of the entry
    p = torch.where(counts > 0, logp.exp(), torch.zeros_like(logits))
    h = -(counts * p * logp).sum(-1)
    return -p * (logp + h[:, None]), h


def _grow(tensors: list[Tensor], need: int) -> list[Tensor]:
    """Widen (R, E) tensors to at least ``need`` columns (doubling), padding with zeros."""
    width = tensors[0].shape[1]
    if need <= width:
        return tensors
    new = max(need, 2 * width)
    return [torch.cat([t, t.new_zeros(t.shape[0], new - width)], 1) for t in tensors]


def _allocate(used: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Slots for new entries: ``rows`` (sorted) get consecutive columns after each row's ``used`` count."""
    first = torch.searchsorted(rows.contiguous(), rows.contiguous(), right=False)  # index of the row's first new entry
    rank = torch.arange(len(rows)) - first
    cols = used[rows] + rank
    return cols, used + torch.bincount(rows, minlength=len(used))


def split_members(state: dict, rows: Tensor, entries: Tensor, members: Tensor) -> Tensor:
    """Split drawn arms off their entries: one new count-1 entry per distinct (row, entry, member) with count > 1.

    Args:
        state: dict of (R, E) tensors ``z`` (logits), ``n`` (counts) and per-entry attributes listed in
            ``state["attrs"]`` (copied to the new entries), plus ``used`` (R,) long; updated in place (tensors may be
            replaced by wider ones).
        rows, entries: (D,) the row and entry of each draw; members: (D,) a member index in [0, n) of the draw's
            entry (draws of one entry with equal member index are the same arm).

    Returns:
        (D,) the entry each draw now points to (a count-1 entry).
    """
    n_at = state["n"][rows, entries]
    single = n_at <= 1
    key = torch.stack([rows, entries, torch.where(single, 0, members)], 1)
    uniq, inverse = torch.unique(key[~single], dim=0, return_inverse=True)  # sorted by row
    out = entries.clone()
    if len(uniq) == 0:
        return out
    cols, used = _allocate(state["used"], uniq[:, 0])
    names = ["z", "n", *state["attrs"]]
    grown = _grow([state[k] for k in names], int(used.max()))
    state.update(zip(names, grown))
    r, e = uniq[:, 0], uniq[:, 1]
    for k in ["z", *state["attrs"]]:
        state[k][r, cols] = state[k][r, e]
    state["n"][r, cols] = 1.0
    state["n"].index_put_((r, e), torch.full_like(cols, -1, dtype=state["n"].dtype), accumulate=True)
    state["used"] = used
    out[~single] = cols[inverse]
    return out


def split_partial(state: dict, kept: Tensor, rows: Tensor) -> Tensor:
    """Split every entry of ``rows`` that the clamp threshold cuts (0 < kept < n) into its kept and removed arms.

    Args:
        state: as in :func:`split_members`, restricted to ``rows`` by the caller's indices.
        kept: (len(rows), E) kept counts of those rows (from :func:`kept_counts`).
        rows: (len(rows),) long, sorted, indices into the state's rows.

    Returns:
        (len(rows), E') kept counts after the split (the removed part sits in a new entry, kept count 0).
    """
    n = state["n"][rows, : kept.shape[1]]
    partial = (kept > 0) & (kept < n)
    if not bool(partial.any()):
        return kept
    pr, pe = partial.nonzero(as_tuple=True)
    r = rows[pr]
    cols, used = _allocate(state["used"], r)
    names = ["z", "n", *state["attrs"]]
    grown = _grow([state[k] for k in names], int(used.max()))
    state.update(zip(names, grown))
    for k in ["z", *state["attrs"]]:
        state[k][r, cols] = state[k][r, pe]
    state["n"][r, cols] = n[pr, pe] - kept[pr, pe]
    state["n"][r, pe] = kept[pr, pe]
    state["used"] = used
    out = kept.new_zeros(len(rows), state["n"].shape[1])
    out[:, : kept.shape[1]] = kept
    return out

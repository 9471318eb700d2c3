"""Per-token log-probability, entropy and clamped entropy straight from hidden states, without the full logits.

The policy loss of PPO/GRPO with an entropy term needs, for every response token t with last hidden state h_t,
LM-head weight W (V x d) and logits z_t = W h_t / T,

    logp_t = z_t[a_t] - logsumexp(z_t),       H_t = logsumexp(z_t) - sum_a pi_t(a) z_t[a],

and AEnt's clamped entropy H~_t (arXiv 2509.03493, Sec. 3: the k = floor(p V) smallest logits removed, the softmax
renormalised over the kept set; see :mod:`aent.entropy`). Materialising z for N tokens costs N x V floats and the
same again for its gradient (N = 4,096 and V = 151,936 is 2.5 GB in fp32, per tensor).

:func:`chunked_policy_terms` never holds more than one chunk of rows of z. It is one ``torch.autograd.Function``:

- forward: for each chunk of tokens, logits = h W^T (one matmul into a reused (chunk, V) buffer), then, in
  cache-sized sub-chunks, the three quantities with the kernels of :mod:`aent.entropy` (same max shift, same
  exact selection :func:`aent._select.kth_smallest` on z / T, same fp32 accumulation). It saves only per-token
  numbers: the row max, log sum exp over the vocabulary and over the kept set, both entropies, and the cutoff
  (t, cut) of the removed set, so the backward pass never redoes the selection;
- backward: for each chunk, the logits are recomputed by the same matmul, turned in place into
  dL/dz = g_logp (onehot(a) - pi) / T - g_H pi (log pi + H) / T - g_H~ pi~ (log pi~ + H~) / T (pi~ = 0 on
  removed tokens), and multiplied back: dL/dh = dL/dz W, dL/dW += dL/dz^T h. Outputs that receive no gradient cost
  nothing in backward.

Anchors read (never copied): torchtune's chunked ``LinearCrossEntropyLoss`` (chunks the hidden states and lets
autograd keep each chunk's logits: memory per chunk, all chunks alive at backward), Liger's fused linear cross
entropy and Apple's Cut Cross-Entropy (gradient computed during the forward pass / blockwise Triton kernels, for a
scalar loss), verl's fused log-prob / entropy kernels (per-token outputs, logits recomputed in backward). Ours
follows verl's shape of the problem (per-token outputs with arbitrary upstream gradients, so no gradient can be
formed in forward) and adds the clamped entropy, which none of them computes. For a loss that is a sum of
per-token terms, :func:`aent.chunked_policy_loss` (:mod:`aent.fused`) forms the gradient in forward instead.

Departure from the materialised path: logp uses the same thresholded exp sum as the entropy (terms below 5e-31 of
the row's largest are dropped, as :func:`aent.entropy` does); :func:`aent.token_logprobs` keeps them. The
difference is below fp32 resolution.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from aent._select import Scratch, _direct, kth_smallest, remove_smallest_
from aent.entropy import _CUT, _LOW, CHUNK_BYTES

__all__ = ["CHUNK_BUDGET", "MIN_ROWS", "PolicyTerms", "chunked_policy_terms", "auto_chunk_size"]

CHUNK_BUDGET = 256 * 2**20
"""Upper bound in bytes of the one (chunk, V) logits buffer of the default chunk size (:func:`auto_chunk_size`)."""
MIN_ROWS = 128
"""Least number of tokens per chunk of the default chunk size (fewer when there are fewer tokens)."""

_FLOATS = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


class PolicyTerms(NamedTuple):
    """Per-token policy terms, each (N,): log pi(a_t), entropy H_t and clamped entropy H~_t, in nats."""

    logp: Tensor
    entropy: Tensor
    clamped_entropy: Tensor


# ----------------------------------------------------------------------------------------------- sub-chunk
def _shifted(x: Tensor, m: Tensor, temperature: float, out: Tensor) -> Tensor:
    """(x - m) / T clamped below at _LOW, in out's dtype (as ``aent.entropy._scaled``)."""
    z = torch.sub(x, m, out=out) if x.dtype == out.dtype else out.copy_(x).sub_(m)
    if temperature != 1.0:
        z.div_(temperature)
    return z.clamp_(min=_LOW)


def _kept(x: Tensor, m: Tensor, temperature: float, k: int, t: Tensor | None, cut: Tensor | None,
          work: Scratch, acc: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Shifted logits with the k smallest of x / T removed (-> _LOW), and the cutoff (t, cut) used.

    The cutoff is selected on x / T (forward, ``t`` None) or given (backward), as ``aent.entropy._clamped_scaled``.
    """
    y = work.get("c", *x.shape, dtype=acc).copy_(x)  # (n, V)
    if temperature != 1.0:
        y.div_(temperature)
    if t is None:
        t, cut = kth_smallest(y, k, work) if acc == torch.float32 else _direct(y, k, work)
    remove_smallest_(y, t, cut)
    y.sub_(m if temperature == 1.0 else m / temperature)
    return y.clamp_(min=_LOW), t, cut


def _probs(z: Tensor, out: Tensor) -> Tensor:
    """exp(z) with entries below _CUT set to exactly 0 (removed tokens and negligible ones)."""
    return torch.nn.functional.threshold_(torch.exp(z, out=out), _CUT, 0.0)


def _entropy(z: Tensor, work: Scratch) -> tuple[Tensor, Tensor]:
    """(entropy, log-normaliser) per row of shifted logits z, entries in [_LOW, 0] (as ``aent.entropy``)."""
    e = _probs(z, work.get("e", *z.shape, dtype=z.dtype))
    s = e.sum(-1)
    ez = e.mul_(z).sum(-1)
    log_s = s.log()
    empty = s == 0
    return torch.where(empty, 0.0, log_s - ez / s), torch.where(empty, 0.0, log_s)


def _grad_part(z: Tensor, log_s: Tensor, ent: Tensor, g_ent: Tensor | None, g_logp: Tensor | None,
               temperature: float, work: Scratch) -> Tensor:
    """In place on z (shifted logits): -pi * (g_logp + g_ent (log pi + H)) / T, without the onehot term."""
    p = _probs(z, work.get("e", *z.shape, dtype=z.dtype)).div_(log_s[:, None].exp())  # (n, V) pi
    if g_ent is not None:
        z.sub_(log_s[:, None]).add_(ent[:, None]).mul_(g_ent[:, None])  # g_H (log pi + H)
        if g_logp is not None:
            z.add_(g_logp[:, None])
    else:
        z.copy_(g_logp[:, None].expand_as(z))
    return z.mul_(p).mul_(-1.0 / temperature)


# ----------------------------------------------------------------------------------------------- autograd
def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _matmul_dtype(hidden: Tensor, weight: Tensor) -> torch.dtype:
    dev = hidden.device.type
    if torch.is_autocast_enabled(dev) and hidden.dtype != torch.float64:
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(hidden.dtype, weight.dtype)


def chunk_terms_(logits: Tensor, rows: slice, tokens: Tensor, stats: Tensor, cut: Tensor, temperature: float,
                 k: int, work: Scratch) -> None:
    """Fill ``stats[:, rows]`` (logp, H, H~ when k > 0, max, log_s, log_s~, t) and ``cut[rows]`` from one chunk.

    ``logits`` (c, V) are the chunk's unscaled logits in the matmul dtype, for tokens ``rows`` of the call;
    ``stats`` (7, N) and ``cut`` (N,) are the call's per-token buffers (``stats`` in the accumulation dtype).
    """
    logp, ent, cent, shift, log_s, log_sc, t = stats
    acc = stats.dtype
    sub = max(1, CHUNK_BYTES // (4 * logits.shape[1]))  # rows per cache-sized pass, as aent.entropy
    for r in _chunks(logits.shape[0], sub):
        sel = slice(rows.start + r.start, rows.start + r.stop)
        x = logits[r]  # (s, V) in the matmul dtype
        m = x.amax(-1, keepdim=True).to(acc)  # (s, 1) row max of the unscaled logits
        z = _shifted(x, m, temperature, work.get("z", *x.shape, dtype=acc))
        ent[sel], log_s[sel] = _entropy(z, work)
        za = (x.gather(1, tokens[sel, None]).to(acc) - m) / temperature  # (s, 1)
        logp[sel] = za.squeeze(1) - log_s[sel]
        shift[sel] = m.squeeze(1)
        if k > 0:
            zc, t[sel], cut[sel] = _kept(x, m, temperature, k, None, None, work, acc)
            cent[sel], log_sc[sel] = _entropy(zc, work)


def chunk_backprop_(dz: Tensor, rows: slice, h: Tensor, w: Tensor, grad_h: Tensor | None,
                    grad_w: Tensor | None) -> None:
    """One chunk's dL/dz (c, V) to dL/dh = dz W into ``grad_h[rows]`` and dL/dW += dz^T h into ``grad_w`` (None:
    not wanted)."""
    if grad_h is not None:
        grad_h[rows] = torch.mm(dz, w).to(grad_h.dtype)  # (c, d)
    if grad_w is not None:
        grad_w.addmm_(dz.t(), h)  # (V, d)


def chunk_grad_(logits: Tensor, rows: slice, tokens: Tensor, stats: Tensor, cut: Tensor, g_logp: Tensor | None,
                g_ent: Tensor | None, g_cent: Tensor | None, temperature: float, k: int, work: Scratch) -> Tensor:
    """Turn one chunk's logits in place into dL/dz from the per-token dL/d(logp, H, H~) (each (N,) or None).

    dL/dz = g_logp (onehot(a) - pi) / T - g_H pi (log pi + H) / T - g_H~ pi~ (log pi~ + H~) / T, with the
    statistics of :func:`chunk_terms_`, so the kept set is not selected again. At least one g must be given;
    with k = 0 pass g_cent = None (add it to g_ent: H~ is H).
    """
    _, ent, cent, shift, log_s, log_sc, t = stats
    acc = stats.dtype
    sub = max(1, CHUNK_BYTES // (4 * logits.shape[1]))
    for r in _chunks(logits.shape[0], sub):
        sel = slice(rows.start + r.start, rows.start + r.stop)
        x = logits[r]
        m = shift[sel, None]
        gl = None if g_logp is None else g_logp[sel]
        g = None
        if gl is not None or g_ent is not None:
            z = _shifted(x, m, temperature, work.get("z", *x.shape, dtype=acc))
            g = _grad_part(z, log_s[sel], ent[sel], None if g_ent is None else g_ent[sel], gl, temperature, work)
            if gl is not None:
                g.scatter_add_(1, tokens[sel, None], (gl / temperature)[:, None])
        if g_cent is not None:
            zc = _kept(x, m, temperature, k, t[sel], cut[sel], work, acc)[0]
            gc = _grad_part(zc, log_sc[sel], cent[sel], g_cent[sel], None, temperature, work)
            g = gc if g is None else g.add_(gc)
        x.copy_(g)
    return logits


class _PolicyTermsFn(torch.autograd.Function):
    """(logp, H, H~) per token from hidden states and the LM-head weight; logits recomputed per chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, tokens, temperature, k, chunk, mdt):  # noqa: D102
        n, vocab = hidden.shape[0], weight.shape[0]
        acc = torch.float64 if mdt == torch.float64 else torch.float32
        w = weight.to(mdt)  # (V, d); a copy only when the matmul dtype differs from the weight's
        stats = torch.zeros(7, n, dtype=acc, device=hidden.device)  # logp, H, H~, max, log_s, log_s~, t
        cut = torch.full((n,), -1, dtype=torch.long, device=hidden.device)
        buf = torch.empty(min(chunk, n), vocab, dtype=mdt, device=hidden.device)  # (chunk, V) logits
        work = Scratch(hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            for rows in _chunks(n, chunk):
                logits = torch.mm(hidden[rows].to(mdt), w.t(), out=buf[: rows.stop - rows.start])  # (c, V)
                chunk_terms_(logits, rows, tokens, stats, cut, temperature, k, work)
        if k == 0:
            stats[2].copy_(stats[1])
        ctx.save_for_backward(hidden, weight, tokens, stats, cut)
        ctx.temperature, ctx.k, ctx.chunk, ctx.mdt = temperature, k, chunk, mdt
        ctx.set_materialize_grads(False)
        return stats[0].clone(), stats[1].clone(), stats[2].clone()

    @staticmethod
    def backward(ctx, g_logp, g_ent, g_cent):  # noqa: D102
        hidden, weight, tokens, stats, cut = ctx.saved_tensors
        temperature, k, chunk, mdt = ctx.temperature, ctx.k, ctx.chunk, ctx.mdt
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if (g_logp is None and g_ent is None and g_cent is None) or not (need_h or need_w):
            return None, None, None, None, None, None, None
        acc = stats.dtype
        g_logp, g_ent, g_cent = (None if g is None else g.to(acc) for g in (g_logp, g_ent, g_cent))
        if k == 0 and g_cent is not None:  # H~ is H: one term
            g_ent, g_cent = (g_cent if g_ent is None else g_ent + g_cent), None
        n, vocab = hidden.shape[0], weight.shape[0]
        w = weight.to(mdt)
        grad_h = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=mdt, device=weight.device) if need_w else None
        buf = torch.empty(min(chunk, n), vocab, dtype=mdt, device=hidden.device)
        work = Scratch(hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            for rows in _chunks(n, chunk):
                h = hidden[rows].to(mdt)  # (c, d)
                logits = torch.mm(h, w.t(), out=buf[: rows.stop - rows.start])  # (c, V), becomes dL/dz
                chunk_grad_(logits, rows, tokens, stats, cut, g_logp, g_ent, g_cent, temperature, k, work)
                chunk_backprop_(logits, rows, h, w, grad_h, grad_w)
        if need_w:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None, None


# ----------------------------------------------------------------------------------------------- public API
def auto_chunk_size(n: int, vocab: int, dtype: torch.dtype = torch.float32, budget: int = CHUNK_BUDGET) -> int:
    """Default token chunk: a sixteenth of the tokens, at least ``MIN_ROWS``, at most a ``budget``-byte buffer.

    rows = min(max(MIN_ROWS, ceil(n / 16)), budget // (V * itemsize)), at least 1. The one (rows, V) logits buffer
    is then at most 1/16 of the full logits (once n >= 16 * MIN_ROWS) and never above ``budget`` (256 MiB: 441
    fp32 / 883 bf16 rows at V = 151,936), while a chunk keeps enough rows for an efficient matmul (each chunk
    reads all of W once). At n = 4,096 and V = 151,936: 256 rows, a 148 MiB fp32 / 74 MiB bf16 buffer.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    return max(1, min(max(MIN_ROWS, -(-n // 16)), budget // (vocab * itemsize)))


def _check(hidden, weight, tokens, temperature, clamp, chunk_size) -> None:
    if not isinstance(hidden, Tensor) or hidden.dim() != 2 or hidden.dtype not in _FLOATS:
        raise ValueError(f"hidden must be a float tensor of shape (N, d), got "
                         f"{getattr(hidden, 'dtype', type(hidden).__name__)} {tuple(getattr(hidden, 'shape', ()))}")
    if not isinstance(weight, Tensor) or weight.dim() != 2 or weight.dtype not in _FLOATS:
        raise ValueError(f"weight (the LM-head weight) must be a float tensor of shape (V, d), got "
                         f"{getattr(weight, 'dtype', type(weight).__name__)} {tuple(getattr(weight, 'shape', ()))}")
    if weight.shape[1] != hidden.shape[1] or weight.shape[0] < 1:
        raise ValueError(f"weight must be (V, d) with d = hidden.shape[1] = {hidden.shape[1]} and V >= 1, got "
                         f"{tuple(weight.shape)}; pass lm_head.weight, not its transpose")
    if weight.device != hidden.device:
        raise ValueError(f"hidden and weight must be on one device, got {hidden.device} and {weight.device}")
    if (not isinstance(tokens, Tensor) or tokens.dtype.is_floating_point or tokens.dtype.is_complex
            or tokens.dtype == torch.bool or tuple(tokens.shape) != (hidden.shape[0],)):
        raise ValueError(f"tokens must be an integer tensor of shape (N,) = ({hidden.shape[0]},), got "
                         f"{getattr(tokens, 'dtype', type(tokens).__name__)} {tuple(getattr(tokens, 'shape', ()))}")
    if tokens.device != hidden.device:
        raise ValueError(f"tokens must be on hidden's device {hidden.device}, got {tokens.device}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= weight.shape[0]):
        raise ValueError(f"tokens must be ids in [0, V={weight.shape[0]}), got range "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    if isinstance(temperature, bool) or not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
                                             and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if isinstance(clamp, bool) or not (isinstance(clamp, (int, float)) and 0.0 <= clamp < 1.0):
        raise ValueError(f"clamp (the fraction of the vocabulary removed) must be a number in [0, 1), got {clamp!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None (automatic) or an int >= 1, got {chunk_size!r}")


def chunked_policy_terms(hidden: Tensor, weight: Tensor, tokens: Tensor, *, temperature: float = 1.0,
                         clamp: float = 0.0, chunk_size: int | None = None) -> PolicyTerms:
    """Per-token log pi(a_t), entropy and clamped entropy of softmax(W h_t / T), chunked over tokens.

    The same numbers as :func:`aent.token_logprobs`, :func:`aent.entropy` and :func:`aent.clamped_entropy` on the
    materialised logits ``hidden @ weight.T`` (AEnt, arXiv 2509.03493, Sec. 3 for the clamped entropy), with at
    most one (chunk_size, V) logits buffer alive, in forward and in backward. Differentiable to ``hidden`` and
    ``weight``; the kept set of the clamped entropy is chosen without gradient, so removed tokens get none.

    Masks: pass only the valid tokens (``hidden[mask]``, ``tokens[mask]`` with a boolean mask), which also skips
    their matmuls; scatter the results back if a padded layout is needed.

    Precision: the matmul runs in the promoted dtype of hidden and weight (under ``torch.autocast``, in the autocast
    dtype), as ``torch.nn.functional.linear`` would, so bf16 hidden with an fp32 LM head multiplies in fp32. The
    logits are then upcast to fp32 per chunk (fp64 for fp64 inputs) for everything else. Gradients come back in
    the inputs' dtypes; the weight gradient is accumulated over chunks in the matmul dtype (one rounding per chunk
    in bf16).

    Args:
        hidden: (N, d) last hidden states of the tokens scored (after the final norm), fp32 / bf16 / fp16 / fp64.
        weight: (V, d) LM-head weight (``lm_head.weight``; no bias).
        tokens: (N,) integer ids a_t in [0, V) whose log-probability is returned.
        temperature: sampling temperature T > 0; logits are divided by T before every quantity.
        clamp: fraction p of the vocabulary removed for the clamped entropy, in [0, 1): the k = floor(p V) smallest
            logits, ties broken towards the lower vocabulary index (as :func:`aent.clamped_entropy`). 0 gives H~ = H.
        chunk_size: tokens per matmul; None = :func:`auto_chunk_size` (N / 16 tokens, at least 128, at most a
            256 MiB logits buffer).

    Returns:
        :class:`PolicyTerms` (logp, entropy, clamped_entropy), each (N,) float32 (float64 for fp64 inputs):
        logp <= 0, 0 <= entropy <= log V, 0 <= clamped_entropy <= log(V - k).

    Example:
        Three-token vocabulary, d = 1, weight (2, 1, 0)^T and h = 1: logits (2, 1, 0) as in the
        :func:`aent.clamped_entropy` example, token 0 taken, clamp 1/3 (the logit 0 is removed):

        >>> out = chunked_policy_terms(torch.ones(1, 1), torch.tensor([[2.0], [1.0], [0.0]]),
        ...                            torch.tensor([0]), clamp=1 / 3)
        >>> tuple(round(v.item(), 4) for v in out)
        (-0.4076, 0.8324, 0.5822)
    """
    _check(hidden, weight, tokens, temperature, clamp, chunk_size)
    vocab = weight.shape[0]
    k = math.floor(float(clamp) * vocab)
    if k >= vocab:
        raise ValueError(f"clamp={clamp!r} removes k={k} >= V={vocab} tokens; use a smaller clamp")
    mdt = _matmul_dtype(hidden, weight)
    chunk = chunk_size if chunk_size is not None else auto_chunk_size(hidden.shape[0], vocab, mdt)
    if hidden.shape[0] == 0:
        empty = hidden.new_zeros(0, dtype=torch.float64 if mdt == torch.float64 else torch.float32)
        return PolicyTerms(empty, empty.clone(), empty.clone())
    out = _PolicyTermsFn.apply(hidden, weight, tokens.long(), float(temperature), k, chunk, mdt)
    return PolicyTerms(*out)

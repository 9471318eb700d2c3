"""Full and clamped policy entropy, token log-probabilities and the token mean: fast, chunked, exact.

AEnt (arXiv 2509.03493), clamped entropy (Section 3): with logits z over a vocabulary of size V and clamp fraction p,
remove the k = floor(p * V) tokens with the smallest logits, renormalise over the kept set K and take

    H~(z) = log sum_{a in K} e^{z_a} - sum_{a in K} pi~(a) z_a,        pi~(a) = e^{z_a} / sum_{b in K} e^{z_b}.

p = 0 is the ordinary entropy H. How it is computed, and why (see docs/benchmarks/entropy.md):

- Chunked over tokens (rows): only one chunk of fp32 working tensors (default about ``CHUNK_BYTES`` = 4 MiB per
  tensor, sized for the CPU cache) is alive at a time, whatever the number of tokens; bf16/fp16 logits are upcast
  chunk by chunk (fp32 accumulation).
- No sort of the vocabulary: the exact cutoff of each row (the k-th smallest value t of z = logits / T in fp32 and
  the column of the last removed copy of t) is found by ``aent._select.kth_smallest`` (a two-level sampled
  bracket, three counting passes, the few candidates inside the bracket) and saved for the backward pass: two
  numbers per row. The comparison is made on z before the max-shift, so logits that differ only below the shift's
  rounding are still told apart, and removal (``threshold`` per row, written straight into the work buffer for
  fp32 logits at T = 1) leaves the kept values exactly as they were.
- The chunk-sized fp32 work tensors are allocated once per call and reused by every chunk: a fresh multi-MiB
  tensor is served by a new ``mmap`` and page-faults on first touch, which on the CPU measured costs twice the
  pass itself.
- Analytic backward: dH/dz_a = -pi(a) (log pi(a) + H) / T on kept tokens and exactly 0 on removed ones, recomputed
  from the saved logits chunk by chunk, so autograd never stores pi or log pi.
- Ties at the threshold: exactly k tokens are removed, the first k of a stable ascending sort (among logits equal
  to the k-th smallest value, those with the lowest vocabulary index go first). Tied tokens have identical logits, so which of them go does not change
  the value; it only decides which positions get zero gradient.
- -inf logits are allowed (probability 0, gradient 0). A row whose logits are all -inf has entropy 0 and zero
  gradient. Tokens more than 69.9 nats below their row's maximum get probability exactly 0 (true value < 5e-31;
  this keeps ``exp`` out of its slow underflow range). NaN or +inf logits give NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aent._select import SAMPLE, Scratch, kth_smallest, remove_smallest, remove_smallest_

__all__ = ["entropy", "clamped_entropy", "clamp_k", "token_logprobs", "masked_mean", "CHUNK_BYTES", "SAMPLE"]

CHUNK_BYTES = 4 * 2**20  # bytes of one fp32 chunk-sized working tensor (cache-sized); sets the default chunk_size
# Shifted logits (max 0) are clamped at _LOW and probabilities below _CUT are set to exactly 0: exp() is several
# times slower on inputs in its underflow range, and a token 69.9 nats below the row maximum has p < 5e-31, far
# below fp32 resolution of the entropy. Removed and -inf tokens are stored as _LOW, so they get exactly p = 0.
_LOW = -70.0
_CUT = math.exp(-69.9)


# ----------------------------------------------------------------------------------------------------- checks
def _check(logits: Tensor, mask: Tensor | None, temperature: float, chunk_size: int | None) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() < 1:
        raise ValueError("logits must be a floating-point tensor of shape (..., V)")
    if logits.shape[-1] < 1:
        raise ValueError(f"logits must have a vocabulary dimension V >= 1, got shape {tuple(logits.shape)}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or an int >= 1, got {chunk_size!r}")
    if mask is not None and tuple(mask.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"mask must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}, "
                         f"got {tuple(mask.shape)}")


def _plan(logits: Tensor, mask: Tensor | None, chunk_size: int | None) -> tuple[Tensor, Tensor | None, int]:
    """Flatten to (N, V), list the valid rows (None = all) and pick the chunk size in rows."""
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    rows = None if mask is None else torch.nonzero(mask.reshape(-1) != 0).flatten()
    chunk = chunk_size if chunk_size is not None else max(1, CHUNK_BYTES // (4 * vocab))
    return flat, rows, chunk


def _chunks(flat: Tensor, rows: Tensor | None, chunk: int):
    """Yield (index, rows of flat): a slice view when all rows are valid, else a gathered copy of one chunk."""
    if rows is None:
        for start in range(0, flat.shape[0], chunk):
            sel = slice(start, min(start + chunk, flat.shape[0]))
            yield sel, flat[sel]
    else:
        for start in range(0, rows.numel(), chunk):
            sel = rows[start:start + chunk]
            yield sel, flat.index_select(0, sel)


# ------------------------------------------------------------------------------------------ shared kernels
def _scaled(x: Tensor, shift: Tensor, temperature: float, out: Tensor) -> Tensor:
    """fp32 (x - shift) / T clamped below at _LOW (-inf included), written into ``out`` (x's shape) and returned."""
    z = torch.sub(x, shift, out=out) if x.dtype == torch.float32 else out.copy_(x).sub_(shift)
    if temperature != 1.0:
        z.div_(temperature)
    return z.clamp_(min=_LOW)


def _row_max(x: Tensor) -> Tensor:
    m = x.amax(-1, keepdim=True).float()
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all -inf row -> 0 (entropy defined as 0)


def _clamped_scaled(x: Tensor, shift: Tensor, temperature: float, t: Tensor | None, cut: Tensor | None,
                    k: int, work: Scratch) -> tuple[Tensor, Tensor, Tensor]:
    """fp32 shifted logits (x / T - shift / T, clamped at _LOW) with the k smallest of x / T removed (-> _LOW).

    The cutoff (t, cut) is selected on x / T itself (when ``t`` is None) or taken from the forward pass (backward).
    Returns (z, t, cut), z of shape (n, V), a view of the ``work`` buffer "z".
    """
    z = work.get("z", *x.shape)
    if x.dtype == torch.float32 and temperature == 1.0:  # select on the logits; remove while copying them into z
        if t is None:
            t, cut = kth_smallest(x, k, work)
        remove_smallest(x, t, cut, out=z).sub_(shift)
    else:
        y = z.copy_(x)
        if temperature != 1.0:
            y.div_(temperature)
        if t is None:
            t, cut = kth_smallest(y, k, work)
        remove_smallest_(y, t, cut)
        y.sub_(shift if temperature == 1.0 else shift / temperature)
    return z.clamp_(min=_LOW), t, cut


def _probs(z: Tensor, out: Tensor) -> Tensor:
    """exp(z) into ``out``, with entries below _CUT (tokens at _LOW: removed, -inf or negligible) set to exactly 0."""
    return torch.nn.functional.threshold_(torch.exp(z, out=out), _CUT, 0.0)


def _entropy_of(z: Tensor, work: Scratch) -> tuple[Tensor, Tensor]:
    """Entropy and log-normaliser of rows of shifted fp32 logits z (entries in [_LOW, 0])."""
    e = _probs(z, work.get("e", *z.shape))
    s = e.sum(-1)
    ez = e.mul_(z).sum(-1)  # in place: vecdot would allocate (and page-fault) an (n, V) product per chunk
    log_s = s.log()
    ent = log_s - ez / s
    empty = s == 0
    return torch.where(empty, 0.0, ent), torch.where(empty, 0.0, log_s)


# --------------------------------------------------------------------------------------- autograd function
class _EntropyFn(torch.autograd.Function):
    """Per-row (clamped) entropy with an analytic, chunk-recomputed backward. k = 0 is the full entropy."""

    @staticmethod
    def forward(ctx, logits, rows, k, temperature, chunk):  # noqa: D102
        n = logits.shape[0]
        ent = torch.zeros(n, device=logits.device)  # (N,) per-row entropy; skipped rows stay 0
        shift = torch.zeros(n, device=logits.device)  # (N,) row max of the logits
        log_s = torch.zeros_like(shift)  # (N,) log sum_K exp(z), z the shifted logits
        t = torch.zeros_like(shift)  # (N,) k-th smallest of logits / T
        cut = torch.full((n,), -1, dtype=torch.long, device=logits.device)  # (N,) last removed copy of t
        work = Scratch(logits.device)  # chunk-sized buffers, reused by every chunk
        for sel, x in _chunks(logits, rows, chunk):
            m = _row_max(x)  # (n, 1)
            if k > 0:
                z, t[sel], cut[sel] = _clamped_scaled(x, m, temperature, None, None, k, work)
            else:
                z = _scaled(x, m, temperature, work.get("z", *x.shape))
            ent[sel], log_s[sel] = _entropy_of(z, work)
            shift[sel] = m.squeeze(-1)
        ctx.save_for_backward(logits, rows, ent, shift, log_s, t, cut)
        ctx.k, ctx.temperature, ctx.chunk = k, temperature, chunk
        return ent

    @staticmethod
    def backward(ctx, grad_ent):  # noqa: D102
        logits, rows, ent, shift, log_s, t, cut = ctx.saved_tensors
        k, temperature = ctx.k, ctx.temperature
        grad = torch.zeros_like(logits) if rows is not None else torch.empty_like(logits)
        work = Scratch(logits.device)
        for sel, x in _chunks(logits, rows, ctx.chunk):
            if k > 0:
                z = _clamped_scaled(x, shift[sel, None], temperature, t[sel], cut[sel], k, work)[0]
            else:
                z = _scaled(x, shift[sel, None], temperature, work.get("z", *x.shape))
            p = _probs(z, work.get("e", *x.shape)).div_(log_s[sel, None].exp())
            coef = grad_ent[sel, None] / -temperature
            g = z.sub_(log_s[sel, None]).add_(ent[sel, None]).mul_(coef)  # (log p + H) * dL/dH / -T
            torch.mul(g, p, out=g)
            grad[sel] = g.to(grad.dtype)
        return grad, None, None, None, None


class _LogprobFn(torch.autograd.Function):
    """log softmax(logits / T) gathered at actions, with a softmax-based chunked backward.

    Everything is computed on the shifted logits z = (x - max) / T, so the result's rounding is that of
    log pi(a) itself, not of the (possibly large) max / T that cancels between the picked logit and logsumexp.
    """

    @staticmethod
    def forward(ctx, flat, actions, temperature, chunk):  # noqa: D102
        n = flat.shape[0]
        shift = torch.empty(n, device=flat.device)  # (N,) row max
        log_s = torch.empty(n, device=flat.device)  # (N,) logsumexp of the shifted logits
        out = torch.empty(n, device=flat.device)
        work = Scratch(flat.device)
        for sel, x in _chunks(flat, None, chunk):
            m = _row_max(x)  # (n, 1)
            z = _scaled(x, m, temperature, work.get("z", *x.shape))  # (n, V), max 0
            log_s[sel] = torch.exp(z, out=work.get("e", *x.shape)).sum(-1).log()
            za = (x.gather(1, actions[sel, None]).float() - m) / temperature  # (n, 1) unclamped, as in z
            out[sel] = za.squeeze(1) - log_s[sel]
            shift[sel] = m.squeeze(-1)
        ctx.save_for_backward(flat, actions, shift, log_s)
        ctx.temperature, ctx.chunk = temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        flat, actions, shift, log_s = ctx.saved_tensors
        temperature = ctx.temperature
        grad = torch.zeros_like(flat)
        scale = grad_out / temperature
        work = Scratch(flat.device)
        for sel, x in _chunks(flat, None, ctx.chunk):
            z = _scaled(x, shift[sel, None], temperature, work.get("z", *x.shape)).sub_(log_s[sel, None])
            g = _probs(z, work.get("e", *x.shape)).mul_(-scale[sel, None])
            g.scatter_add_(1, actions[sel, None], scale[sel, None])
            grad[sel] = g.to(grad.dtype)
        return grad, None, None, None


# ------------------------------------------------------------------------------------------------ public API
def clamp_k(clamp_p: float, vocab: int) -> int:
    """Number of tokens the clamped entropy removes: k = floor(clamp_p * V), checked to leave one token.

    Args:
        clamp_p: fraction of the vocabulary removed, in [0, 1).
        vocab: vocabulary size V >= 1.

    Returns:
        k, with 0 <= k <= V - 1.
    """
    if isinstance(clamp_p, bool) or not (isinstance(clamp_p, (int, float)) and 0.0 <= clamp_p < 1.0):
        raise ValueError(f"clamp_p must be a number in [0, 1), got {clamp_p!r}")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise ValueError(f"vocab (the logits' last dimension V) must be an int >= 1, got {vocab!r}")
    k = math.floor(float(clamp_p) * vocab)
    if k >= vocab:
        raise ValueError(f"clamp_p={clamp_p!r} removes k={k} >= V={vocab} tokens; use a smaller clamp_p")
    return k


def clamped_entropy(logits: Tensor, clamp_p: float, mask: Tensor | None = None, temperature: float = 1.0, *,
                    chunk_size: int | None = None) -> Tensor:
    """Clamped entropy of softmax(logits / T) after removing the k = floor(clamp_p * V) smallest logits.

    AEnt (arXiv 2509.03493), Section 3: H~ = -sum_{a in K} pi~(a) log pi~(a) with pi~ the softmax renormalised over
    the kept set K. The kept set is chosen without gradient; removed tokens get exactly zero gradient. clamp_p = 0
    gives exactly :func:`entropy`. Ties: exactly k tokens are removed, the lowest-index copies of the k-th smallest
    value first (the value does not depend on this choice).

    Args:
        logits: (..., V) float tensor (fp32, bf16 or fp16; accumulated in fp32). -inf entries allowed.
        clamp_p: fraction of the vocabulary removed, in [0, 1).
        mask: optional (...) tensor; positions where mask == 0 are skipped and return 0 (and get zero gradient).
        temperature: sampling temperature T > 0; the entropy is that of softmax(logits / T).
        chunk_size: rows (tokens) processed at once; default keeps one fp32 chunk near ``CHUNK_BYTES``.

    Returns:
        (...) float32 tensor of per-token clamped entropies in nats, 0 <= H~ <= log(V - k).

    Example:
        Logits [2, 1, 0], clamp_p = 1/3: k = floor(3 / 3) = 1, the smallest logit (0) goes; the kept two have
        pi~ = (e, 1) / (1 + e) = (0.7311, 0.2689), H~ = log(1 + e) - e / (1 + e) = 0.5822 nats (full H: 0.8324), and
        gradient -pi~ (log pi~ + H~) = -0.7311 (-0.3133 + 0.5822) = -0.1966, +0.1966; the removed one gets 0:

        >>> z = torch.tensor([2.0, 1.0, 0.0], requires_grad=True)
        >>> h = clamped_entropy(z, 1 / 3)
        >>> round(h.item(), 4), round(clamped_entropy(z.detach(), 0.0).item(), 4)
        (0.5822, 0.8324)
        >>> h.backward()
        >>> z.grad
        tensor([-0.1966,  0.1966,  0.0000])
    """
    _check(logits, mask, temperature, chunk_size)
    flat, rows, chunk = _plan(logits, mask, chunk_size)
    k = clamp_k(clamp_p, flat.shape[1])
    ent = _EntropyFn.apply(flat, rows, k, float(temperature), chunk)
    return ent.reshape(logits.shape[:-1])


def entropy(logits: Tensor, mask: Tensor | None = None, temperature: float = 1.0, *,
            chunk_size: int | None = None) -> Tensor:
    """Entropy of softmax(logits / T) per token: H = logsumexp(z) - sum_a pi(a) z_a, z = logits / T.

    The full-vocabulary entropy bonus of PPO/GRPO-style RL; AEnt (arXiv 2509.03493) Eq. for H(pi).
    Backward is analytic: dH/dlogits_a = -pi(a) (log pi(a) + H) / T, recomputed chunk by chunk.

    Args:
        logits: (..., V) float tensor (fp32, bf16 or fp16; accumulated in fp32). -inf entries allowed.
        mask: optional (...) tensor; positions where mask == 0 are skipped and return 0 (and get zero gradient).
        temperature: sampling temperature T > 0.
        chunk_size: rows (tokens) processed at once; default keeps one fp32 chunk near ``CHUNK_BYTES``.

    Returns:
        (...) float32 tensor of per-token entropies in nats, 0 <= H <= log V; 0 for rows that are all -inf.
    """
    return clamped_entropy(logits, 0.0, mask, temperature, chunk_size=chunk_size)


def token_logprobs(logits: Tensor, actions: Tensor, temperature: float = 1.0, *,
                   chunk_size: int | None = None) -> Tensor:
    """log softmax(logits / T) at the taken actions, chunked over tokens, in fp32.

    The per-token log-likelihood log pi(a_t | s_t) of the PPO/GRPO ratio. Backward: (onehot(a) - pi) / T.

    Args:
        logits: (..., V) float tensor (fp32, bf16 or fp16).
        actions: (...) integer tensor of token ids in [0, V).
        temperature: sampling temperature T > 0.
        chunk_size: rows (tokens) processed at once; default keeps one fp32 chunk near ``CHUNK_BYTES``.

    Returns:
        float32 tensor of shape actions.shape.
    """
    _check(logits, None, temperature, chunk_size)
    if not isinstance(actions, Tensor) or actions.dtype.is_floating_point or actions.dtype == torch.bool:
        raise ValueError("actions must be an integer tensor of token ids")
    if tuple(actions.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"actions must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}, "
                         f"got {tuple(actions.shape)}")
    flat, _, chunk = _plan(logits, None, chunk_size)
    acts = actions.reshape(-1).long()
    if acts.numel() and (int(acts.min()) < 0 or int(acts.max()) >= flat.shape[1]):
        raise ValueError(f"actions must be token ids in [0, {flat.shape[1]}), got range "
                         f"[{int(acts.min())}, {int(acts.max())}]")
    return _LogprobFn.apply(flat, acts, float(temperature), chunk).reshape(actions.shape)


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Token mean of x over positions with mask != 0 (the "token-mean" aggregation); 0 when no position is valid.

    Args:
        x: (...) tensor of per-token values.
        mask: optional tensor of x's shape; None means every position is valid.

    Returns:
        Scalar tensor (x's dtype, at least float32 for integer x).
    """
    if not x.is_floating_point():
        x = x.float()
    if mask is None:
        return x.mean() if x.numel() else x.new_zeros(())
    if tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}")
    valid = mask != 0
    total = torch.where(valid, x, torch.zeros_like(x)).sum()
    return total / valid.sum().clamp(min=1).to(x.dtype)

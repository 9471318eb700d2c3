"""A policy loss from hidden states whose gradient is formed during the forward pass, chunk by chunk.

When the loss is a sum of per-token terms, L = sum_t l_t(logp_t, H_t, H~_t) (PPO/GRPO with an entropy term and any
of verl's aggregation modes, whose per-token weights depend on the mask only), the gradient of each chunk of tokens
needs only that chunk: dl_t/d(logp_t, H_t, H~_t) from autograd on a few (n,) tensors, then the logit gradient
analytically (the formulas of :func:`aent.chunked.chunk_grad_`, with temperature and the clamp's kept set), then
dL/dh = dL/dz W and dL/dW += dL/dz^T h. :func:`chunked_policy_loss` does exactly that in its forward pass and keeps
only dL/dh (N, d) and dL/dW (V, d); its backward pass multiplies them by the upstream gradient of the scalar loss.

So each chunk's logits are computed once: three N x d x V matmuls in all, as on the materialised path
(``h @ W.T``, then its two gradient products), where :func:`aent.chunked_policy_terms`, whose per-token outputs
can receive any upstream gradient, recomputes them in backward (four). Memory: one (chunk, V) logits buffer, as
:func:`aent.chunked_policy_terms`; the two gradients exist from the forward pass on instead of from the backward
pass.

Anchors read (never copied): Liger-Kernel's fused linear cross entropy (gradient computed in forward, chunk by
chunk, scaled by the upstream gradient in backward) and torchtune's chunked ``LinearCrossEntropyLoss``. Neither
computes the entropy or AEnt's clamped entropy (arXiv 2509.03493, Sec. 3), and both fix the loss to cross entropy;
here the per-token loss is a callback.

Limits: the loss must be a sum over tokens of terms that depend on the token's own (logp, H, H~) and on fixed
inputs (advantages, old log-probs, weights); statistics over all tokens (a batch mean of the entropy, a top-k
selection) cannot be formed chunk by chunk: use :func:`aent.chunked_policy_terms` for those. A callback whose
result needs a gradient to any other tensor is refused. No double backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from aent._select import Scratch
from aent.chunked import (
    PolicyTerms,
    _check,
    _chunks,
    _matmul_dtype,
    auto_chunk_size,
    chunk_backprop_,
    chunk_grad_,
    chunk_terms_,
    chunked_policy_terms,
)

__all__ = ["PolicyLoss", "TokenLoss", "chunked_policy_loss"]

TokenLoss = Callable[[Tensor, Tensor, Tensor, slice], Tensor]
"""token_loss(logp, entropy, clamped_entropy, rows) -> (n,) per-token loss contributions of tokens ``rows``."""


class PolicyLoss(NamedTuple):
    """Scalar loss (differentiable to hidden and weight) and the detached per-token terms (for metrics)."""

    loss: Tensor
    terms: PolicyTerms


def _foreign_leaf(out: Tensor, leaves: tuple[Tensor, ...]) -> bool:
    """True when ``out``'s graph reaches a tensor requiring gradient other than ``leaves``."""
    stack, seen = [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        var = getattr(node, "variable", None)  # AccumulateGrad nodes hold their leaf
        if var is not None and not any(var is x for x in leaves):
            return True
        stack.extend(f for f, _ in node.next_functions)
    return False


def _term_grads(token_loss: TokenLoss, terms: Tensor, rows: slice) -> tuple[Tensor, list[Tensor | None]]:
    """The chunk's per-token losses (n,) and their gradients to logp, H, H~ (None where a term is unused)."""
    leaves = tuple(t.clone().requires_grad_() for t in terms)  # (n,) each
    with torch.enable_grad():
        out = token_loss(*leaves, rows)
    n = terms.shape[1]
    if not isinstance(out, Tensor) or tuple(out.shape) != (n,) or not out.dtype.is_floating_point:
        raise ValueError(f"token_loss must return a float tensor of shape (n,) = ({n},) for the tokens rows="
                         f"{rows.start}:{rows.stop}, got {getattr(out, 'dtype', type(out).__name__)} "
                         f"{tuple(getattr(out, 'shape', ()))}")
    if not out.requires_grad:
        return out.detach().to(terms.dtype), [None, None, None]
    if _foreign_leaf(out, leaves):
        raise ValueError("token_loss's result needs a gradient to a tensor other than its (logp, entropy, "
                         "clamped_entropy) arguments; detach its other inputs, or use aent.chunked_policy_terms "
                         "and autograd for such a loss")
    with torch.enable_grad():
        grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    return out.detach().to(terms.dtype), [None if g is None else g.to(terms.dtype) for g in grads]


class _FusedLossFn(torch.autograd.Function):
    """Scalar sum_t token_loss(...)_t; dL/dh and dL/dW formed in forward, chunk by chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, tokens, token_loss, temperature, k, chunk, mdt):  # noqa: D102
        n, vocab = hidden.shape[0], weight.shape[0]
        acc = torch.float64 if mdt == torch.float64 else torch.float32
        need_h, need_w = hidden.requires_grad, weight.requires_grad
        w = weight.to(mdt)  # (V, d); a copy only when the matmul dtype differs from the weight's
        stats = torch.zeros(7, n, dtype=acc, device=hidden.device)  # logp, H, H~, max, log_s, log_s~, t
        cut = torch.full((n,), -1, dtype=torch.long, device=hidden.device)
        losses = torch.zeros(n, dtype=acc, device=hidden.device)  # (N,) per-token loss
        g_all = torch.zeros(3, n, dtype=acc, device=hidden.device)  # (3, N) dL/d(logp, H, H~)
        grad_h = torch.zeros(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=mdt, device=weight.device) if need_w else None
        buf = torch.empty(min(chunk, n), vocab, dtype=mdt, device=hidden.device)  # (chunk, V) logits, then dL/dz
        work = Scratch(hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            for rows in _chunks(n, chunk):
                h = hidden[rows].to(mdt)  # (c, d)
                logits = torch.mm(h, w.t(), out=buf[: rows.stop - rows.start])  # (c, V)
                chunk_terms_(logits, rows, tokens, stats, cut, temperature, k, work)
                if k == 0:
                    stats[2, rows] = stats[1, rows]
                losses[rows], grads = _term_grads(token_loss, stats[:3, rows], rows)
                if k == 0 and grads[2] is not None:  # H~ is H: one term
                    grads[1], grads[2] = grads[2] if grads[1] is None else grads[1] + grads[2], None
                if all(g is None for g in grads):
                    continue
                full = [None if g is None else g_all[i] for i, g in enumerate(grads)]
                for f, g in zip(full, grads):
                    if f is not None:
                        f[rows] = g
                chunk_grad_(logits, rows, tokens, stats, cut, *full, temperature, k, work)  # logits -> dL/dz
                chunk_backprop_(logits, rows, h, w, grad_h, grad_w)
        if need_w:
            grad_w = grad_w.to(weight.dtype)
        ctx.save_for_backward(grad_h, grad_w)
        terms = stats[:3].clone()
        ctx.mark_non_differentiable(terms)
        return losses.sum(), terms

    @staticmethod
    def backward(ctx, g_loss, _g_terms):  # noqa: D102
        grad_h, grad_w = ctx.saved_tensors
        if not torch.equal(g_loss, torch.ones_like(g_loss)):  # the usual upstream 1 costs no copy
            grad_h = None if grad_h is None else grad_h * g_loss.to(grad_h.dtype)
            grad_w = None if grad_w is None else grad_w * g_loss.to(grad_w.dtype)
        return grad_h, grad_w, None, None, None, None, None, None


def chunked_policy_loss(hidden: Tensor, weight: Tensor, tokens: Tensor, token_loss: TokenLoss, *,
                        temperature: float = 1.0, clamp: float = 0.0, chunk_size: int | None = None) -> PolicyLoss:
    """Scalar loss sum_t token_loss(logp, H, H~, rows)_t from hidden states, its gradient formed chunk by chunk.

    The terms are those of :func:`aent.chunked_policy_terms` (logp, entropy and AEnt's clamped entropy of
    softmax(W h_t / T), arXiv 2509.03493 Sec. 3), with the same chunks, precision and checks. For each chunk of
    tokens, ``token_loss`` is called once with that chunk's terms (each (n,), float32; float64 for fp64 inputs,
    differentiable) and ``rows``, the slice of the chunk's tokens among the N, so the callback can index its own
    per-token inputs (advantages, old log-probs, aggregation weights). It returns the (n,) loss contributions.
    The gradients of the callback's result to the three terms are taken with autograd, the rest analytically, and
    dL/dh, dL/dW are kept until backward (which only scales them): three (N x d x V) matmuls, one logits buffer.

    Masks: pass only the valid tokens (``hidden[mask]``, ``tokens[mask]``); fold aggregation weights (token mean,
    sequence mean) into ``token_loss``. When neither ``hidden`` nor ``weight`` requires a gradient, or gradients
    are disabled, the terms are computed without any gradient work and ``token_loss`` is called once on all
    tokens (``rows`` = slice(0, N)).

    Args:
        hidden: (N, d) last hidden states (after the final norm), fp32 / bf16 / fp16 / fp64.
        weight: (V, d) LM-head weight (no bias); an fp32 head with bf16 hidden multiplies in fp32.
        tokens: (N,) integer ids a_t in [0, V).
        token_loss: callable (logp, entropy, clamped_entropy, rows) -> (n,) float tensor. Its result may depend
            with gradient on its three tensor arguments only (other inputs must be detached, else ValueError),
            and each token's value on that token's terms only (not checked: a chunk-wide statistic would differ
            with the chunk size).
        temperature: sampling temperature T > 0.
        clamp: fraction p of the vocabulary removed for the clamped entropy, in [0, 1).
        chunk_size: tokens per chunk; None = :func:`aent.chunked.auto_chunk_size`.

    Returns:
        :class:`PolicyLoss` (loss, terms): loss a scalar (float32; float64 for fp64 inputs) with gradients to
        ``hidden`` and ``weight``; terms a detached :class:`aent.PolicyTerms`, each (N,).

    Example:
        Logits (2, 1, 0) as in the :func:`aent.chunked_policy_terms` example; loss -logp - 0.1 H~:

        >>> h = torch.ones(1, 1, requires_grad=True)
        >>> out = chunked_policy_loss(h, torch.tensor([[2.0], [1.0], [0.0]]), torch.tensor([0]),
        ...                           lambda lp, ent, cent, rows: -lp - 0.1 * cent, clamp=1 / 3)
        >>> round(out.loss.item(), 4), round(out.terms.clamped_entropy.item(), 4)
        (0.3494, 0.5822)
    """
    _check(hidden, weight, tokens, temperature, clamp, chunk_size)
    if not callable(token_loss):
        raise ValueError(f"token_loss must be a callable (logp, entropy, clamped_entropy, rows) -> (n,) tensor, "
                         f"got {type(token_loss).__name__}")
    n, vocab = hidden.shape[0], weight.shape[0]
    k = math.floor(float(clamp) * vocab)
    if k >= vocab:
        raise ValueError(f"clamp={clamp!r} removes k={k} >= V={vocab} tokens; use a smaller clamp")
    if n == 0 or not (torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)):
        with torch.no_grad():
            terms = chunked_policy_terms(hidden, weight, tokens, temperature=temperature, clamp=clamp,
                                         chunk_size=chunk_size)
            out = token_loss(*terms, slice(0, n))
            if not isinstance(out, Tensor) or tuple(out.shape) != (n,):
                raise ValueError(f"token_loss must return a float tensor of shape (n,) = ({n},), got "
                                 f"{getattr(out, 'dtype', type(out).__name__)} {tuple(getattr(out, 'shape', ()))}")
        return PolicyLoss(out.to(terms.logp.dtype).sum(), terms)
    mdt = _matmul_dtype(hidden, weight)
    chunk = chunk_size if chunk_size is not None else auto_chunk_size(n, vocab, mdt)
    loss, terms = _FusedLossFn.apply(hidden, weight, tokens.long(), token_loss, float(temperature), k, chunk, mdt)
    return PolicyLoss(loss, PolicyTerms(*terms))

"""The paper's clamped-entropy algorithm, written plainly: for tests and benchmarks only.

AEnt (arXiv 2509.03493), clamped entropy: remove the k = floor(p * V) tokens with the smallest logits, renormalise
the softmax over the kept set K and take its entropy,

    H~(z) = -sum_{a in K} pi~(a) log pi~(a),    pi~(a) = exp(z_a) / sum_{b in K} exp(z_b).

The authors' code runs ``topk(largest=False)`` with k = p * V, builds a full boolean mask and a full masked copy of
the logits (they also copy the logits to the CPU first; this version stays on the input's device). It costs a
partial sort per row and several tensors of size tokens x V. The fast, chunked version is
:func:`aent.entropy.clamped_entropy`; this file exists so tests and ``benchmarks/entropy_bench.py`` can compare
against the algorithm as published.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["clamped_entropy_reference"]


def clamped_entropy_reference(logits: Tensor, clamp_p: float, temperature: float = 1.0) -> Tensor:
    """Clamped entropy by the paper's algorithm: topk smallest -> boolean mask -> masked copy -> renormalise.

    AEnt (arXiv 2509.03493), clamped entropy H~ of Section 3 (definition of the clamped policy pi~).

    Args:
        logits: (..., V) float tensor of unnormalised log-probabilities (fp32/bf16/fp16; computed in fp32).
        clamp_p: fraction of the vocabulary removed, in [0, 1); k = floor(clamp_p * V) smallest logits go.
        temperature: sampling temperature T > 0; logits are divided by T first.

    Returns:
        (...,) float32 tensor of clamped entropies in nats, differentiable through the kept logits.
        Ties at the threshold are broken by ``torch.topk``; which tied token goes does not change the value.
    """
    if not 0.0 <= float(clamp_p) < 1.0:
        raise ValueError(f"clamp_p must be in [0, 1), got {clamp_p!r}")
    if not float(temperature) > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    z = logits.float() / float(temperature)
    all_inf = torch.isneginf(z).all(-1)
    z = z.masked_fill(all_inf[..., None], 0.0)  # entropy 0 by definition (set below); keeps the gradient finite
    vocab = z.shape[-1]
    k = min(int(math.floor(float(clamp_p) * vocab)), vocab - 1)
    removed = torch.zeros_like(z, dtype=torch.bool)
    if k > 0:
        idx = torch.topk(z.detach(), k, dim=-1, largest=False).indices
        removed.scatter_(-1, idx, True)
    masked = z.masked_fill(removed, float("-inf"))
    logp = torch.log_softmax(masked, dim=-1)
    # Zero the log-probabilities that are -inf (removed or -inf logits) before multiplying, so neither the value
    # nor the gradient sees 0 * inf.
    logp_safe = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    ent = -(logp_safe.exp() * logp_safe).sum(-1)
    return torch.where(all_inf, torch.zeros_like(ent), ent)

"""Per-token loss weights and masks that steer entropy through which tokens the policy gradient uses.

Why they work (docs/toy/theory.md claim 5; Cui et al. 2025, arXiv 2505.22617, Lemma 1): for a softmax step
Delta z, the entropy change is Delta H = -Cov_{a~pi}(log pi(a), Delta z(a)) + O(|Delta z|^2). A positive-
advantage update on a likely token (log pi above its mean) raises the logit of an already likely token and
lowers entropy; a negative-advantage update on a likely token raises entropy. So:

- :func:`advantage_sign_weights` scales positive-advantage tokens by w+ in [0, 1] ("Revisiting Entropy in RL for
  Large Reasoning Models", arXiv 2511.05993, Positive-Advantage Reweighting): w+ < 1 slows entropy collapse.
- :func:`top_entropy_mask` keeps the policy gradient only on the highest-entropy fraction rho of tokens
  (Wang et al. 2025, "Beyond the 80/20 Rule", arXiv 2506.01939, Eq. 6; TRL's ``top_entropy_quantile``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["advantage_sign_weights", "top_entropy_mask"]


def advantage_sign_weights(adv: Tensor, pos_weight: float = 1.0, neg_weight: float = 1.0) -> Tensor:
    """Token weights by advantage sign: w+ where A > 0, w- where A < 0, 1 where A = 0.

    Implements Positive-Advantage Reweighting (arXiv 2511.05993, Sec. 5): the per-token loss of tokens with
    A > 0 is multiplied by w+ (in [0, 1] there), all other tokens keep weight 1 (w- = 1).

    Args:
        adv: (...) advantages, e.g. (B, T) or (B, 1).
        pos_weight: w+ >= 0, weight of tokens with A > 0.
        neg_weight: w- >= 0, weight of tokens with A < 0.

    Returns:
        (...) float32 weights, same shape as ``adv``, no gradient.
    """
    if not (math.isfinite(pos_weight) and pos_weight >= 0):
        raise ValueError(f"pos_weight must be a finite number >= 0, got {pos_weight!r}")
    if not (math.isfinite(neg_weight) and neg_weight >= 0):
        raise ValueError(f"neg_weight must be a finite number >= 0, got {neg_weight!r}")
    a = adv.detach()
    w = torch.ones(a.shape, dtype=torch.float32, device=a.device)
    w = torch.where(a > 0, torch.full_like(w, pos_weight), w)
    return torch.where(a < 0, torch.full_like(w, neg_weight), w)


def top_entropy_mask(ent: Tensor, mask: Tensor, rho: float) -> Tensor:
    """Mask of the highest-entropy fraction rho of valid tokens ("forking tokens").

    Implements the token selection of "Beyond the 80/20 Rule" (arXiv 2506.01939, Eq. 6): only tokens whose
    entropy is in the top rho of the batch receive policy gradient. Exactly k = max(1, ceil(rho * n)) of the n
    valid tokens are selected (ties broken by ``torch.topk``); rho = 1 selects every valid token. Entropies are
    compared in their own precision (bf16/fp16 promoted to float32), so any two distinct values keep their order.

    Args:
        ent: (B, T) per-token entropy (no gradient used).
        mask: (B, T) {0, 1} valid-token mask.
        rho: fraction in (0, 1].

    Returns:
        (B, T) bool mask, True on the selected valid tokens; all False when no token is valid.
    """
    if ent.shape != mask.shape:
        raise ValueError(f"ent and mask shapes differ: {tuple(ent.shape)} vs {tuple(mask.shape)}")
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"rho must be in (0, 1], got {rho!r}")
    valid = mask.detach() > 0
    n = int(valid.sum().item())
    out = torch.zeros(ent.shape, dtype=torch.bool, device=ent.device)
    if n == 0:
        return out
    k = min(n, max(1, math.ceil(rho * n - 1e-9)))
    # rank in the input's precision (at least float32): casting float64 to float32 would merge distinct entropies
    # (1e-115 and 0 both become 0.0) and the selection would then no longer follow the given order
    dtype = torch.promote_types(ent.dtype, torch.float32)
    scores = torch.where(valid, ent.detach().to(dtype), torch.full_like(ent, -math.inf, dtype=dtype))
    idx = torch.topk(scores.reshape(-1), k).indices
    out.view(-1)[idx] = True
    return out

"""Clip-Cov and KL-Cov: restrain the tokens whose covariance drives entropy down.

Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(arXiv 2505.22617). Under policy gradient the entropy change of a softmax policy is driven by the
covariance between log pi(a) and the advantage A (their Theorem 2; docs/toy/theory.md claim 5). Per token i of the
batch (N valid tokens, Eq. 10):

    Cov_i = (log pi(y_i) - mean_j log pi(y_j)) * (A(y_i) - mean_j A(y_j))

Tokens with large positive covariance are confident tokens with positive advantage: updating them collapses
entropy. The two methods (their Eq. 11 and 12):

- **Clip-Cov** picks, uniformly at random, r * N tokens (at least one) among those with
  cov_lb < Cov_i < cov_ub and detaches their gradient;
- **KL-Cov** picks the top k * N tokens (at least one) by Cov_i and adds beta * |log pi - log pi_old| to their
  loss.

As in the authors' verl code, tokens that PPO already clipped are not candidates for Clip-Cov (``exclude``),
and the means run over the valid tokens of the whole batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aent.ppo import broadcast_adv

__all__ = ["clip_cov_mask", "kl_cov_mask", "token_covariance"]


def _check(logp: Tensor, mask: Tensor) -> None:
    if logp.dim() != 2 or mask.shape != logp.shape:
        raise ValueError(
            f"logp and mask must both be (B, T) with equal shapes, got {tuple(logp.shape)} and {tuple(mask.shape)}"
        )


def token_covariance(logp: Tensor, adv: Tensor, mask: Tensor) -> Tensor:
    """Per-token centred covariance term (log pi - mean) * (A - mean) over the valid tokens.

    Implements Eq. 10 of arXiv 2505.22617. Means are token means over ``mask == 1`` of the whole batch;
    a per-sequence advantage counts once per valid token of its sequence.

    Args:
        logp: (B, T) log-probability of the sampled tokens (no gradient used).
        adv: (B, T), (B, 1) or (B,) advantages.
        mask: (B, T) {0, 1} valid-token mask.

    Returns:
        (B, T) float32 covariance terms, 0 at invalid positions, no gradient. Their mean over valid tokens
        is the batch covariance Cov(log pi, A).
    """
    _check(logp, mask)
    valid = mask.detach() > 0
    n = valid.sum().clamp(min=1).to(torch.float32)
    lp = torch.where(valid, logp.detach().to(torch.float32), torch.zeros((), dtype=torch.float32))
    a = torch.where(valid, broadcast_adv(adv, logp).expand(logp.shape), torch.zeros((), dtype=torch.float32))
    cov = (lp - lp.sum() / n) * (a - a.sum() / n)
    return torch.where(valid, cov, torch.zeros_like(cov))


def clip_cov_mask(
    logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    *,
    clip_ratio: float,
    cov_lb: float,
    cov_ub: float,
    generator: torch.Generator | None = None,
    exclude: Tensor | None = None,
) -> Tensor:
    """Tokens whose gradient Clip-Cov detaches (arXiv 2505.22617, Eq. 11).

    Candidates are valid tokens with cov_lb < Cov_i < cov_ub (strict) that are not in ``exclude``; of these,
    min(#candidates, max(1, floor(clip_ratio * N))) are drawn uniformly without replacement, N = #valid.

    Args:
        logp: (B, T) log-probability of the sampled tokens.
        adv: (B, T), (B, 1) or (B,) advantages.
        mask: (B, T) {0, 1} valid-token mask.
        clip_ratio: r in (0, 1], the fraction of valid tokens to detach (authors: 2e-4).
        cov_lb: lower covariance bound (authors: 1).
        cov_ub: upper covariance bound > cov_lb (authors: 5).
        generator: CPU torch.Generator for the random draw (reproducible runs).
        exclude: optional (B, T) bool mask of tokens that may not be drawn (PPO-clipped tokens).

    Returns:
        (B, T) bool mask of the tokens to detach.
    """
    if not 0.0 < clip_ratio <= 1.0:
        raise ValueError(f"clip_ratio must be in (0, 1], got {clip_ratio!r}")
    if not cov_lb < cov_ub:
        raise ValueError(f"cov_lb must be < cov_ub, got cov_lb={cov_lb!r}, cov_ub={cov_ub!r}")
    if exclude is not None and exclude.shape != logp.shape:
        raise ValueError(f"exclude must have shape {tuple(logp.shape)}, got {tuple(exclude.shape)}")
    cov = token_covariance(logp, adv, mask)
    valid = mask.detach() > 0
    cand = valid & (cov > cov_lb) & (cov < cov_ub)
    if exclude is not None:
        cand = cand & ~exclude.to(torch.bool)
    out = torch.zeros(logp.shape, dtype=torch.bool, device=logp.device)
    cand_idx = torch.nonzero(cand.reshape(-1)).squeeze(1)
    n_valid = int(valid.sum().item())
    if cand_idx.numel() == 0 or n_valid == 0:
        return out
    n_pick = min(cand_idx.numel(), max(1, int(clip_ratio * n_valid)))
    perm = torch.randperm(cand_idx.numel(), generator=generator)[:n_pick].to(cand_idx.device)
    out.view(-1)[cand_idx[perm]] = True
    return out


def kl_cov_mask(logp: Tensor, adv: Tensor, mask: Tensor, *, top_frac: float) -> Tensor:
    """Tokens that get KL-Cov's penalty beta * |log pi - log pi_old| (arXiv 2505.22617, Eq. 12).

    Selects the max(1, floor(top_frac * N)) valid tokens with the largest covariance (ties broken by
    ``torch.topk``), N = #valid.

    Args:
        logp: (B, T) log-probability of the sampled tokens.
        adv: (B, T), (B, 1) or (B,) advantages.
        mask: (B, T) {0, 1} valid-token mask.
        top_frac: k in (0, 1], the fraction of valid tokens to penalise (authors: 2e-3 to 2e-4).

    Returns:
        (B, T) bool mask; all False when no token is valid.
    """
    if not 0.0 < top_frac <= 1.0:
        raise ValueError(f"top_frac must be in (0, 1], got {top_frac!r}")
    cov = token_covariance(logp, adv, mask)
    valid = mask.detach() > 0
    out = torch.zeros(logp.shape, dtype=torch.bool, device=logp.device)
    n_valid = int(valid.sum().item())
    if n_valid == 0:
        return out
    k = min(n_valid, max(1, int(top_frac * n_valid)))
    scores = torch.where(valid, cov, torch.full_like(cov, -torch.inf))
    out.view(-1)[torch.topk(scores.reshape(-1), k).indices] = True
    return out

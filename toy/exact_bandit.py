"""Closed forms for the one-step (bandit) problem: value, policy gradient, and the entropy-regularised optimum.

A bandit is the token tree with H = 1 (one state, logits of shape (A,)); the functions here do not enumerate,
so they serve vocabularies as large as the paper's |A| = 10^5 (AEnt, arXiv 2509.03493, Figure 1).

- Policy gradient of V(z) = sum_a pi(a) r_a with pi = softmax(z): dV/dz_a = pi(a) (r_a - V).
- Maximiser of V + lambda H~_p over the logits (clamp fraction p, K = A - floor(p A) kept tokens): the Gibbs
  distribution pi(a) ~ exp(r_a / lambda) on the K arms of largest reward, 0 elsewhere (see docs/toy/theory.md,
  claim 4, for the exchange argument). p = 0 is the ordinary soft-max optimum of V + lambda H.
- "Sparse" rewards (m arms worth 1, the rest worth r0 < 1) give that optimum in closed form, for any A.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["bandit_gibbs", "bandit_policy_gradient", "bandit_value", "kept_count", "sparse_gibbs"]

F64 = torch.float64


def kept_count(vocab: int, clamp_p: float) -> int:
    """|K| = A - floor(p A): tokens kept by the clamped entropy (the same k as ``aent.clamped_entropy``)."""
    if not (isinstance(vocab, int) and vocab >= 1):
        raise ValueError(f"vocab must be an int >= 1, got {vocab!r}")
    if not (isinstance(clamp_p, (int, float)) and 0.0 <= clamp_p < 1.0):
        raise ValueError(f"clamp_p must be a number in [0, 1), got {clamp_p!r}")
    return vocab - min(int(math.floor(float(clamp_p) * vocab)), vocab - 1)


def _check_pair(logits: Tensor, rewards) -> tuple[Tensor, Tensor]:
    z = torch.as_tensor(logits, dtype=F64)
    r = torch.as_tensor(rewards, dtype=F64)
    if z.dim() != 1 or r.shape != z.shape:
        raise ValueError(f"logits and rewards must both have shape (A,), got {tuple(z.shape)} and {tuple(r.shape)}")
    return z, r


def bandit_value(logits: Tensor, rewards) -> Tensor:
    """V(z) = sum_a softmax(z)_a r_a, scalar float64 (differentiable in float64 logits)."""
    z, r = _check_pair(logits, rewards)
    return (torch.softmax(z, -1) * r).sum()


def bandit_policy_gradient(logits: Tensor, rewards) -> Tensor:
    """Closed-form gradient dV/dz_a = pi(a) (r_a - V) of the softmax bandit value, (A,) float64."""
    z, r = _check_pair(logits, rewards)
    pi = torch.softmax(z, -1)
    return pi * (r - (pi * r).sum())


def bandit_gibbs(rewards, ent_coef: float, clamp_p: float = 0.0) -> Tensor:
    """Maximiser of V + lambda H~_p for a bandit: Gibbs exp(r / lambda) on the K largest rewards, (A,) float64.

    Args:
        rewards: (A,) rewards.
        ent_coef: lambda > 0.
        clamp_p: clamp fraction p in [0, 1); K = A - floor(p A) arms keep probability.

    Returns:
        Probabilities (A,) float64; the A - K arms of smallest reward get exactly 0 (ties: lowest index removed).
    """
    r = torch.as_tensor(rewards, dtype=F64)
    if r.dim() != 1:
        raise ValueError(f"rewards must have shape (A,), got {tuple(r.shape)}")
    if not (isinstance(ent_coef, (int, float)) and ent_coef > 0):
        raise ValueError(f"ent_coef must be a number > 0, got {ent_coef!r}")
    kept = kept_count(r.numel(), clamp_p)
    w = r / ent_coef
    if kept < r.numel():
        order = torch.argsort(w, stable=True)  # ascending; ties keep index order, so low indices go first
        w = w.clone()
        w[order[: r.numel() - kept]] = -math.inf
    return torch.softmax(w, -1)


def sparse_gibbs(n_items: int, m_optimal: int, ent_coef: float, *, n_kept: int | None = None,
                 other_reward: float = 0.0) -> dict[str, float]:
    """Closed-form Gibbs optimum when m of N items are worth 1 and the others ``other_reward`` (r0 < 1).

    The optimum of V + lambda H over N items (or over the n_kept items of largest reward, the clamped case)
    is P(y) ~ exp(R(y)/lambda). With u = (1 - r0)/lambda and m' = min(m, n_kept) optimal items kept,
    P(optimal) = m' / (m' + (n_kept - m') e^{-u}); bias = V* - V = (1 - r0)(1 - P(optimal)).
    For a tree, items are sequences: N = A**H, and n_kept = K**H when every optimal sequence stays kept.

    Args:
        n_items: N >= 1 (arms of a bandit, or sequences of a tree); may be huge (float arithmetic only).
        m_optimal: m in [1, N], the number of items worth 1.
        ent_coef: lambda > 0.
        n_kept: items that keep probability (default N; the clamped optimum keeps the top n_kept).
        other_reward: r0 in [0, 1), the reward of the non-optimal items.

    Returns:
        dict with value, bias, entropy (nats, of the optimum), objective (max of V + lambda H),
        bound (lambda (log n_kept - log m')), n_optimal_kept.
    """
    n_kept = n_items if n_kept is None else n_kept
    if not (isinstance(n_items, int) and n_items >= 1):
        raise ValueError(f"n_items must be an int >= 1, got {n_items!r}")
    if not (isinstance(m_optimal, int) and 1 <= m_optimal <= n_items):
        raise ValueError(f"m_optimal must be an int in [1, {n_items}], got {m_optimal!r}")
    if not (isinstance(n_kept, int) and 1 <= n_kept <= n_items):
        raise ValueError(f"n_kept must be an int in [1, {n_items}], got {n_kept!r}")
    if not (isinstance(ent_coef, (int, float)) and ent_coef > 0):
        raise ValueError(f"ent_coef must be a number > 0, got {ent_coef!r}")
    if not (isinstance(other_reward, (int, float)) and 0.0 <= other_reward < 1.0):
        raise ValueError(f"other_reward must be a number in [0, 1), got {other_reward!r}")
    m = min(m_optimal, n_kept)
    rest = n_kept - m
    u = (1.0 - other_reward) / ent_coef
    w_rest = rest * math.exp(-u)  # total weight of the kept non-optimal items relative to one optimal item
    z = m + w_rest
    p_opt = m / z
    value = other_reward + (1.0 - other_reward) * p_opt
    ent = math.log(z) + u * w_rest / z
    return {
        "value": value,
        "bias": (1.0 - other_reward) * (1.0 - p_opt),
        "entropy": ent,
        "objective": 1.0 + ent_coef * math.log(z),
        "bound": ent_coef * (math.log(n_kept) - math.log(m)),
        "n_optimal_kept": m,
    }

"""Pieces shared by the batched policy-gradient trainers of the trap regime (toy.trap_bandit, toy.trap_tree).

- :func:`baseline_advantages`: advantages with a mean or leave-one-out baseline and no std normalisation, so that
  the expected update is the gradient of V (RLOO exactly; the plain group mean scales it by (G - 1)/G) and lambda
  trades reward against nats as in AEnt's Proposition (arXiv 2509.03493, Sec. 4; docs/toy/theory.md claim 2).
- :func:`inverse_cdf`: categorical sampling from given uniforms. Drawing the uniforms once per seed and reusing them
  for every arm of a comparison gives common random numbers: the same seed sees the same sample stream.
- :class:`AdamState`, :func:`adam_init`, :func:`adam_update`: Adam (Kingma and Ba, 2015) as an explicit
  init / update pair on a parameter tensor, ascending the objective. ``rows`` restricts an update to the rows
  that received a gradient (the lazy, "sparse" Adam of embedding tables): a tree's unvisited states keep their
  logits and moments.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["BASELINES", "AdamState", "adam_init", "adam_update", "baseline_advantages", "inverse_cdf"]

BASELINES = ("rloo", "mean")


def baseline_advantages(returns: Tensor, baseline: str) -> Tensor:
    """Advantages of G returns per run, (R, G) -> (R, G); they sum to 0 over each run's group.

    Args:
        returns: (R, G) returns of each run's G samples.
        baseline: "rloo" (r_j - mean of the other G - 1; unbiased) or "mean" (r_j - mean of all G; the expected
            update is (G - 1)/G times the gradient).
    """
    if returns.dim() != 2 or returns.shape[1] < 2:
        raise ValueError(f"returns must have shape (R, G >= 2), got {tuple(returns.shape)}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    g = returns.shape[1]
    centred = returns - returns.mean(dim=1, keepdim=True)
    return centred * (g / (g - 1)) if baseline == "rloo" else centred


def inverse_cdf(probs: Tensor, uniforms: Tensor) -> Tensor:
    """Indices drawn from each row of ``probs`` (..., K) by the uniforms (..., G) in [0, 1): (..., G) long.

    Index i is returned for u in [cdf_{i-1}, cdf_i); rounding at the top is clipped to the last index with
    nonzero probability, so an index of probability 0 is never returned.
    """
    if probs.shape[:-1] != uniforms.shape[:-1]:
        raise ValueError(f"probs (..., K) and uniforms (..., G) must share leading dims, got {tuple(probs.shape)} "
                         f"and {tuple(uniforms.shape)}")
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, uniforms.to(cdf.dtype) * cdf[..., -1:], right=True)
    over = idx >= probs.shape[-1]  # u rounded up to the total: take the last index with p > 0
    if bool(over.any()):
        positions = torch.arange(probs.shape[-1], device=probs.device)
        last = torch.where(probs > 0, positions, -1).amax(-1, keepdim=True).expand_as(idx)
        idx = torch.where(over, last, idx)
    return idx


class AdamState(NamedTuple):
    """Adam's moments (the parameter's shape) and its global step count."""

    m: Tensor
    v: Tensor
    step: int


def adam_init(param: Tensor) -> AdamState:
    """Zero moments for ``param``."""
    return AdamState(torch.zeros_like(param), torch.zeros_like(param), 0)


def adam_update(param: Tensor, grad: Tensor, state: AdamState, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                eps: float = 1e-12, rows: Tensor | None = None) -> AdamState:
    """One in-place Adam ascent step ``param += lr * m_hat / (sqrt(v_hat) + eps)``; returns the new state.

    Args:
        param: the parameters (updated in place).
        grad: gradient of the objective to *maximise*, shaped like ``param`` (or like ``param[rows]``).
        state: moments from :func:`adam_init` or the previous update.
        lr: step size.
        betas: moment decay rates.
        eps: added to sqrt(v_hat); small, so that coordinates with tiny gradients (rare arms) still move.
        rows: optional 1-d indices of rows of ``param.view(-1, param.shape[-1])``; only those rows are updated
            (lazy Adam), ``grad`` then has shape (len(rows), param.shape[-1]). Bias correction uses the global
            step. ``param`` and the moments must be contiguous.
    """
    b1, b2 = betas
    step = state.step + 1
    c1, c2 = 1 - b1**step, 1 - b2**step
    if rows is None:
        state.m.mul_(b1).add_(grad, alpha=1 - b1)
        state.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        param.add_(lr * (state.m / c1) / ((state.v / c2).sqrt() + eps))
        return AdamState(state.m, state.v, step)
    width = param.shape[-1]
    flat_p, flat_m, flat_v = param.view(-1, width), state.m.view(-1, width), state.v.view(-1, width)
    m = flat_m.index_select(0, rows).mul_(b1).add_(grad, alpha=1 - b1)
    v = flat_v.index_select(0, rows).mul_(b2).addcmul_(grad, grad, value=1 - b2)
    flat_m.index_copy_(0, rows, m)
    flat_v.index_copy_(0, rows, v)
    flat_p.index_add_(0, rows, lr * (m / c1) / ((v / c2).sqrt() + eps))
    return AdamState(state.m, state.v, step)

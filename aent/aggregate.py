"""Aggregation of a per-token loss matrix into one scalar (verl's ``loss_agg_mode`` names).

With l_{i,t} the loss of token t of sequence i, m_{i,t} in {0, 1} the response mask, B sequences and
|o_i| = sum_t m_{i,t}:

- ``token-mean``              sum_{i,t} m l / sum_{i,t} m                   (DAPO, arXiv 2503.14476 Eq. 8)
- ``seq-mean-token-mean``     (1/B) sum_i [sum_t m l / |o_i|]               (original GRPO, arXiv 2402.03300 Eq. 3)
- ``seq-mean-token-sum``      (1/B) sum_i sum_t m l
- ``seq-mean-token-sum-norm`` (1/B) sum_i sum_t m l / C, C a constant      (Dr. GRPO, arXiv 2503.20783 Sec. 3.1)

The names follow verl (``verl.trainer.ppo.core_algos.agg_loss``). One departure: verl's
``seq-mean-token-sum-norm`` divides the *sum* over sequences by C, so the loss scales with the batch size; here
it is the *mean* over sequences (the 1/G of Dr. GRPO's objective), divided by C. C defaults to T, the padded
length of the batch; pass ``norm_const`` (e.g. the generation budget) to keep it constant across batches, which
is what Dr. GRPO asks for. A sequence with no valid token contributes 0 to ``seq-mean-token-mean``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LOSS_AGG_MODES", "aggregate_loss", "aggregate_weights"]

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def aggregate_loss(
    loss_tok: Tensor, mask: Tensor, mode: str = "token-mean", *, norm_const: float | None = None
) -> Tensor:
    """Reduce a (B, T) per-token loss to a scalar with one of verl's aggregation modes.

    Implements the four formulas in the module docstring (token-mean: DAPO Eq. 8; seq-mean-token-mean: GRPO
    Eq. 3; seq-mean-token-sum-norm: Dr. GRPO Sec. 3.1 with a constant normaliser).

    Args:
        loss_tok: (B, T) per-token loss (any float dtype; reduced in float32).
        mask: (B, T) {0, 1} (bool, int or float) valid-token mask.
        mode: one of ``LOSS_AGG_MODES``.
        norm_const: > 0, the constant C of "seq-mean-token-sum-norm" (default T); ignored by other modes.

    Returns:
        Scalar float32 tensor, differentiable in ``loss_tok``. 0 when no token is valid.
    """
    if loss_tok.dim() != 2 or mask.shape != loss_tok.shape:
        raise ValueError(
            f"loss_tok and mask must both be (B, T) with equal shapes, got {tuple(loss_tok.shape)} and "
            f"{tuple(mask.shape)}"
        )
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"mode must be one of {LOSS_AGG_MODES}, got {mode!r}")
    if norm_const is not None and not norm_const > 0:
        raise ValueError(f"norm_const must be None or > 0, got {norm_const!r}")
    m = mask.to(torch.float32)
    # where() rather than a product so that inf/nan in padded positions cannot leak into the sum.
    masked = torch.where(m > 0, loss_tok.to(torch.float32), torch.zeros((), dtype=torch.float32))
    if mode == "token-mean":
        return masked.sum() / m.sum().clamp(min=1.0)
    seq_sum = masked.sum(dim=1)
    if mode == "seq-mean-token-mean":
        return (seq_sum / m.sum(dim=1).clamp(min=1.0)).mean()
    if mode == "seq-mean-token-sum":
        return seq_sum.mean()
    const = float(loss_tok.shape[1]) if norm_const is None else float(norm_const)
    return seq_sum.mean() / const


def aggregate_weights(mask: Tensor, mode: str = "token-mean", *, norm_const: float | None = None) -> Tensor:
    """The per-token weights w of an aggregation mode: ``aggregate_loss(l, mask, mode) == (w * l).sum()``.

    Every mode of the module docstring is linear in the per-token loss, so a loss aggregated over a batch is a sum of
    per-token terms w_{i,t} l_{i,t} (what a loss formed chunk by chunk, :func:`aent.chunked_policy_loss`, needs):
    token-mean m / sum m; seq-mean-token-mean m / (B |o_i|); seq-mean-token-sum m / B; seq-mean-token-sum-norm
    m / (B C). Padding gets weight 0.

    Args:
        mask: (B, T) {0, 1} (bool, int or float) valid-token mask.
        mode: one of ``LOSS_AGG_MODES``.
        norm_const: > 0, the constant C of "seq-mean-token-sum-norm" (default T); ignored by other modes.

    Returns:
        (B, T) float32 weights, no gradient.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be (B, T), got {tuple(mask.shape)}")
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"mode must be one of {LOSS_AGG_MODES}, got {mode!r}")
    if norm_const is not None and not norm_const > 0:
        raise ValueError(f"norm_const must be None or > 0, got {norm_const!r}")
    m = (mask.detach() > 0).to(torch.float32)
    if mode == "token-mean":
        return m / m.sum().clamp(min=1.0)
    b = float(m.shape[0])
    if mode == "seq-mean-token-mean":
        return m / m.sum(dim=1, keepdim=True).clamp(min=1.0) / b
    if mode == "seq-mean-token-sum":
        return m / b
    const = float(m.shape[1]) if norm_const is None else float(norm_const)
    return m / (b * const)

"""Group-relative advantages for outcome rewards: GRPO and Dr. GRPO.

GRPO (Shao et al. 2024, "DeepSeekMath", arXiv 2402.03300, Sec. 4.1.2) samples a group of G responses per
prompt and scores each response by its reward relative to the group:

    A_i = (r_i - mean_j r_j) / (std_j r_j + eps)                    (GRPO, outcome supervision)

Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", arXiv 2503.20783, Sec. 3.1) drops the
division by the group standard deviation, which biases updates towards prompts that are too easy or too hard:

    A_i = r_i - mean_j r_j                                           (Dr. GRPO)

The standard deviation is the unbiased one (ddof = 1), as in verl's ``compute_grpo_outcome_advantage`` and
TRL's ``GRPOTrainer``. A group of one response has advantage 0 (nothing to compare with).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ADV_SCALES", "group_advantages"]

ADV_SCALES = ("std", "none")


def group_advantages(rewards: Tensor, group_size: int, *, scale: str = "std", eps: float = 1e-6) -> Tensor:
    """Group-normalised advantages of outcome rewards (GRPO, or Dr. GRPO with ``scale="none"``).

    Implements A_i = (r_i - mean_group) / (std_group + eps) (arXiv 2402.03300, Sec. 4.1.2) for
    ``scale="std"`` and A_i = r_i - mean_group (arXiv 2503.20783, Sec. 3.1) for ``scale="none"``.
    Groups are consecutive: responses ``[k*G, (k+1)*G)`` answer the same prompt.

    Args:
        rewards: (N,) scalar reward per response, N a multiple of ``group_size``.
        group_size: G >= 1, responses per prompt.
        scale: "std" (GRPO) or "none" (Dr. GRPO).
        eps: > 0, added to the standard deviation so that a group with equal rewards gets advantage 0.

    Returns:
        (N,) float32 advantages, no gradient. Each group has mean 0; with "std" each group with unequal
        rewards has unbiased standard deviation std / (std + eps) ~= 1.
    """
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"rewards must be a 1-D tensor (N,), got {shape}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, got {group_size!r}")
    if rewards.numel() == 0 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards length {rewards.numel()} must be a positive multiple of group_size={group_size}"
        )
    if scale not in ADV_SCALES:
        raise ValueError(f"scale must be one of {ADV_SCALES}, got {scale!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    with torch.no_grad():
        r = rewards.detach().to(torch.float64).view(-1, group_size)
        centred = r - r.mean(dim=1, keepdim=True)
        if scale == "std":
            if group_size == 1:
                centred = torch.zeros_like(centred)
            else:
                centred = centred / (r.std(dim=1, unbiased=True, keepdim=True) + eps)
        return centred.reshape(-1).to(torch.float32)

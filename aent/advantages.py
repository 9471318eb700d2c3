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

__all__ = ["ADV_SCALES", "group_advantages", "zero_adv_frac"]

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


def zero_adv_frac(adv: Tensor, group_size: int, *, atol: float = 1e-6) -> float:
    """Share of groups whose advantages are all zero: the prompts of a step that give no policy gradient.

    With 0/1 outcome rewards a group has zero advantages exactly when all G responses are right or all are
    wrong (``group_advantages`` then returns 0 for every response). Such a group contributes nothing to the
    policy loss, only to the entropy terms, so a value near 1 means the step learned (almost) nothing from its
    rewards: the prompts are too easy or too hard for the policy, or the policy has collapsed onto one answer.

    Args:
        adv: (N,) advantages, N a multiple of ``group_size``, groups consecutive (as ``group_advantages``).
        group_size: G >= 1, responses per prompt.
        atol: >= 0, an advantage with ``|A| <= atol`` counts as zero (rounding of equal non-binary rewards).

    Returns:
        Fraction in [0, 1] of the N / G groups with ``max |A| <= atol``.
    """
    if not isinstance(adv, Tensor) or adv.dim() != 1:
        shape = tuple(adv.shape) if isinstance(adv, Tensor) else type(adv).__name__
        raise ValueError(f"adv must be a 1-D tensor (N,), got {shape}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, got {group_size!r}")
    if adv.numel() == 0 or adv.numel() % group_size != 0:
        raise ValueError(f"adv length {adv.numel()} must be a positive multiple of group_size={group_size}")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    with torch.no_grad():
        flat = adv.detach().abs().view(-1, group_size).amax(dim=1) <= atol
        return float(flat.to(torch.float64).mean())

"""PPO clipped surrogate with asymmetric (clip-higher) and dual clipping, and the k3 KL estimator.

Per token t with importance ratio r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t) and advantage A_t, the loss to
*minimise* is the negative PPO-clip objective (Schulman et al. 2017, "Proximal Policy Optimization
Algorithms", arXiv 1707.06347, Eq. 7):

    l_t = max( -A_t r_t , -A_t clip(r_t, 1 - eps_low, 1 + eps_high) )

with separate lower / upper clip ranges as in DAPO's clip-higher (Yu et al. 2025, arXiv 2503.14476,
Eq. 10); eps_low = eps_high gives the original PPO. Dual clip (Ye et al. 2020, "Mastering Complex Control
in MOBA Games with Deep RL", arXiv 1912.09729, Eq. 5) bounds the loss of negative-advantage tokens whose
ratio exploded: for A_t < 0, l_t = min(l_t, -c A_t) with c > 1.

On a clipped token the loss is a constant in theta, so its gradient is exactly zero (the token is
"clipped"). Clip-low (small eps_low) raises entropy and clip-high (small eps_high) lowers it
(arXiv 2511.05993, Sec. 4); docs/toy/theory.md claim 5.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["approx_kl", "broadcast_adv", "ppo_clip_loss"]

# verl clamps the log-ratio to +-20 before exp for stability; exp(20) ~ 4.9e8 keeps fp32 finite.
_LOG_RATIO_CLAMP = 20.0


def broadcast_adv(adv: Tensor, like: Tensor) -> Tensor:
    """Advantages as a float32 tensor broadcastable to ``like`` (B, T).

    Args:
        adv: (B,), (B, 1) or (B, T) advantages.
        like: (B, T) tensor whose shape the result must broadcast to.

    Returns:
        (B, 1) or (B, T) float32 tensor, detached.
    """
    if like.dim() != 2:
        raise ValueError(f"expected (B, T) token tensors, got shape {tuple(like.shape)}")
    b, t = like.shape
    if adv.dim() == 1 and adv.shape[0] == b:
        adv = adv.unsqueeze(1)
    if adv.dim() != 2 or adv.shape[0] != b or adv.shape[1] not in (1, t):
        raise ValueError(f"adv must have shape ({b},), ({b}, 1) or ({b}, {t}), got {tuple(adv.shape)}")
    return adv.detach().to(torch.float32)


def ppo_clip_loss(
    logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-token PPO clipped surrogate loss (to minimise) and the mask of clipped tokens.

    Implements l = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high)) (arXiv 1707.06347 Eq. 7 with DAPO's
    decoupled ranges, arXiv 2503.14476 Eq. 10) and, when ``dual_clip = c`` is given, l = min(l, -c A) for
    A < 0 (arXiv 1912.09729 Eq. 5). A token is "clipped" when the clipped branch is strictly active, i.e.
    A > 0 and r > 1 + eps_high, or A < 0 and r < 1 - eps_low, or (dual clip) A < 0 and r > c. Exactly at a
    boundary the token is not clipped. Clipped tokens carry exactly zero gradient.

    Args:
        logp: (B, T) log pi_theta(a_t|s_t), differentiable.
        old_logp: (B, T) log pi_old(a_t|s_t) of the sampling policy (no gradient used).
        adv: (B, T), (B, 1) or (B,) advantages (no gradient used).
        eps_low: lower clip range, in [0, 1]; 1 disables clipping from below.
        eps_high: upper clip range, >= 0 (DAPO uses 0.28).
        dual_clip: None, or c > 1 (verl's ``clip_ratio_c``, typically 3).

    Returns:
        (loss, clipped): (B, T) float32 per-token loss and (B, T) bool mask of clipped tokens.
        Padding is not masked here; aggregate with :func:`aent.aggregate_loss`.
    """
    if logp.dim() != 2 or old_logp.shape != logp.shape:
        raise ValueError(
            f"logp and old_logp must both be (B, T) with equal shapes, got {tuple(logp.shape)} and "
            f"{tuple(old_logp.shape)}"
        )
    if not 0.0 <= eps_low <= 1.0:
        raise ValueError(f"eps_low must be in [0, 1], got {eps_low!r}")
    if not eps_high >= 0.0:
        raise ValueError(f"eps_high must be >= 0, got {eps_high!r}")
    if dual_clip is not None and not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be None or > 1, got {dual_clip!r}")
    a = broadcast_adv(adv, logp)
    log_ratio = (logp.float() - old_logp.detach().float()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    unclipped = -a * ratio
    clipped_val = -a * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    clipped = clipped_val > unclipped
    loss = torch.where(clipped, clipped_val, unclipped)
    if dual_clip is not None:
        bound = -a * dual_clip
        dual = (a < 0) & (loss > bound)
        loss = torch.where(dual, bound.expand_as(loss), loss)
        clipped = clipped | dual
    return loss, clipped


def approx_kl(logp: Tensor, old_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi_old || pi_theta) from samples of pi_old.

    Implements k3 = (r - 1) - log r with r = pi_theta / pi_old (J. Schulman, "Approximating KL divergence",
    2020, http://joschu.net/blog/kl-approx.html): unbiased, and >= 0 for every sample.

    Args:
        logp: (...) log pi_theta of the sampled tokens.
        old_logp: (...) log pi_old of the same tokens, same shape.

    Returns:
        (...) float32 per-token estimate (differentiable in logp). Average over valid tokens for the KL.
    """
    if logp.shape != old_logp.shape:
        raise ValueError(f"logp and old_logp shapes differ: {tuple(logp.shape)} vs {tuple(old_logp.shape)}")
    log_r = (logp.float() - old_logp.float()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return torch.expm1(log_r) - log_r

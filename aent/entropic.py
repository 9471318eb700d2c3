"""EntroPIC's entropy-steering term: alpha * agg(-r |A|) over the high-probability tokens.

EntroPIC (Yang et al. 2025, "EntroPIC: Towards Stable Long-Term Training of LLMs via Entropy Stabilization with
Proportional-Integral Control", arXiv 2511.15248) adds to the PPO loss, per micro-batch,

    alpha * L_pic,    L_pic = -(1 / |S|) sum_{t in S} r_t |A_t|,    S = {valid t : pi_theta(a_t) > tau},

with r_t = pi_theta(a_t) / pi_old(a_t) the *unclipped* ratio, tau the probability threshold (paper: 0.95) and alpha
the PI controller's output (:class:`aent.PIController`). Minimising L_pic raises the probability of tokens that are
already likely, whatever the sign of their advantage, which lowers entropy (docs/toy/theory.md claim 5: a push on a token
whose log pi is above the mean has negative covariance with the entropy change). So alpha > 0 (entropy above
target) lowers entropy and alpha < 0 raises it. S is chosen from the current policy without gradient; the
normaliser is |S|, the high-probability tokens only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aent.ppo import _LOG_RATIO_CLAMP, broadcast_adv

__all__ = ["entropic_term"]


def entropic_term(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor,
                  prob_threshold: float = 0.95) -> tuple[Tensor, Tensor]:
    """EntroPIC's L_pic = -(1/|S|) sum_{t in S} r_t |A_t| over tokens with pi_theta(a_t) > tau (arXiv 2511.15248).

    Args:
        logp: (B, T) log pi_theta(a_t), differentiable.
        old_logp: (B, T) log pi_old(a_t) of the sampling policy (no gradient used).
        adv: (B,), (B, 1) or (B, T) advantages.
        mask: (B, T) {0, 1} valid tokens.
        prob_threshold: tau in [0, 1]; a token is selected when pi_theta(a_t) > tau (strictly).

    Returns:
        (term, selected): scalar float32 L_pic (0 when no token is selected; multiply by alpha and add to the
        loss) and the (B, T) bool mask S.

    Example:
        >>> lp = torch.log(torch.tensor([[0.99, 0.5]]))
        >>> term, sel = entropic_term(lp, lp, torch.tensor([[-2.0, 1.0]]), torch.ones(1, 2))
        >>> float(term), bool(sel[0, 0]), bool(sel[0, 1])
        (-2.0, True, False)
    """
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(f"logp, old_logp and mask must be (B, T) with equal shapes, got {tuple(logp.shape)}, "
                         f"{tuple(old_logp.shape)} and {tuple(mask.shape)}")
    if not 0.0 <= prob_threshold <= 1.0:
        raise ValueError(f"prob_threshold must be in [0, 1], got {prob_threshold!r}")
    a = broadcast_adv(adv, logp).expand(logp.shape)
    # pi_theta(a_t) > tau decided in float64, where the Python float tau is exact: against a float32 tensor torch
    # rounds tau to float32 first, and tau = 0.9999999999999999 became 1.0, so that p = 1.0 was not selected.
    selected = (mask.detach() > 0) & (logp.detach().double().exp() > prob_threshold)
    log_ratio = (logp.float() - old_logp.detach().float()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    per_tok = torch.where(selected, -torch.exp(log_ratio) * a.abs(), torch.zeros((), dtype=torch.float32))
    return per_tok.sum() / selected.sum().clamp(min=1).to(torch.float32), selected

"""Which tokens move the entropy: the covariance decomposition split by the sign of the advantage.

For a softmax policy the first-order entropy change at a state is dH = -Cov_{a~pi}(log pi(a), dz(a)) (docs/toy/theory.md,
claim 5; derived in docs/derivations.md). A vanilla policy-gradient step on the logits, dz(a) = eta * pi(a) A(a), gives
dH ~= -eta * Cov(log pi, pi A) (Cui et al., arXiv 2505.22617, Theorem 1); a natural policy-gradient step, dz(a) =
eta * A(a), gives dH ~= -eta * Cov(log pi, A) (their Theorem 2). This module computes the natural-gradient form: on
a rollout batch the expectation is replaced by the sampled tokens, Cov_i = (log pi(y_i) - mean_j log pi(y_j)) *
(A_i - mean_j A_j) over the N valid tokens (their Eq. 10, the quantity Clip-Cov clips;
:func:`aent.token_covariance`). Summing -Cov_i / N over the tokens with A > 0, with
A < 0 and with A = 0 splits the predicted (unscaled) entropy change into the parts that come from positive- and
negative-advantage tokens ("Revisiting Entropy in RL for Large Reasoning Models", arXiv 2511.05993, finding 4:
positive-advantage tokens drive entropy collapse).

:func:`measured_split` is the matching *measurement*: the change of each token's entropy between two policies
(before / after one global step's updates, on the same tokens), summed over the same sign groups and divided by
N, so the three parts add up to the change of the token-mean entropy of the batch. It records where the entropy
moved, not which gradient moved it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aent import token_covariance

__all__ = ["covariance_split", "measured_split"]


def _groups(adv: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(valid, pos, neg, zero) boolean (B, T) masks; adv is (B,), (B, 1) or (B, T)."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be (B, T), got shape {tuple(mask.shape)}")
    a = adv.detach().to(torch.float32)
    if a.dim() == 1:
        a = a[:, None]
    if a.dim() != 2 or a.shape[0] != mask.shape[0] or a.shape[1] not in (1, mask.shape[1]):
        raise ValueError(f"adv must be (B,), (B, 1) or (B, T) with B, T = {tuple(mask.shape)}, got {tuple(adv.shape)}")
    a = a.expand(mask.shape)
    valid = mask.detach() > 0
    return valid, valid & (a > 0), valid & (a < 0), valid & (a == 0)


def covariance_split(logp: Tensor, adv: Tensor, mask: Tensor) -> dict[str, float]:
    """First-order entropy change predicted by each sign group of the advantage (arXiv 2505.22617, Eq. 10).

    Args:
        logp: (B, T) log pi(y_t) of the sampled tokens under the policy that sampled them.
        adv: (B,), (B, 1) or (B, T) advantages.
        mask: (B, T) {0, 1} valid response tokens.

    Returns:
        ``cov_dh_pos``, ``cov_dh_neg``, ``cov_dh_zero``: sum over the group's tokens of -Cov_i / N (they add up to
        ``cov_dh = -Cov(log pi, A)``, the batch estimate of dH / eta); ``cov_pos_share`` = |pos| / (|pos| + |neg|)
        (NaN when both are 0); ``adv_pos_frac``: share of valid tokens with A > 0.
    """
    if logp.shape != mask.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and mask {tuple(mask.shape)} must have the same (B, T) shape")
    valid, pos, neg, zero = _groups(adv, mask)
    n = max(int(valid.sum()), 1)
    neg_cov = -token_covariance(logp.detach().float(), adv.detach().float(), mask).double()
    parts = {g: float(neg_cov[m].sum() / n) for g, m in (("pos", pos), ("neg", neg), ("zero", zero))}
    denom = abs(parts["pos"]) + abs(parts["neg"])
    return {
        "cov_dh": parts["pos"] + parts["neg"] + parts["zero"],
        "cov_dh_pos": parts["pos"],
        "cov_dh_neg": parts["neg"],
        "cov_dh_zero": parts["zero"],
        "cov_pos_share": abs(parts["pos"]) / denom if denom > 0 else float("nan"),
        "adv_pos_frac": float(pos.sum()) / n,
    }


def measured_split(ent_before: Tensor, ent_after: Tensor, adv: Tensor, mask: Tensor) -> dict[str, float]:
    """Measured change of the token-mean entropy of a batch, split by the sign of each token's advantage.

    Args:
        ent_before: (B, T) per-token entropy (nats) under the policy before the step's updates.
        ent_after: (B, T) per-token entropy on the same tokens after the updates.
        adv: (B,), (B, 1) or (B, T) advantages.
        mask: (B, T) {0, 1} valid response tokens.

    Returns:
        ``entropy_before``, ``entropy_after``: token means; ``dh``: their difference; ``dh_pos``, ``dh_neg``,
        ``dh_zero``: sum over the group's tokens of (after - before) / N, adding up to ``dh``.
    """
    if ent_before.shape != mask.shape or ent_after.shape != mask.shape:
        raise ValueError(f"ent_before {tuple(ent_before.shape)}, ent_after {tuple(ent_after.shape)} and mask "
                         f"{tuple(mask.shape)} must share one (B, T) shape")
    valid, pos, neg, zero = _groups(adv, mask)
    n = max(int(valid.sum()), 1)
    before, after = ent_before.detach().double(), ent_after.detach().double()
    diff = after - before
    out = {"entropy_before": float(before[valid].sum() / n), "entropy_after": float(after[valid].sum() / n),
           "dh": float(diff[valid].sum() / n)}
    out.update({f"dh_{g}": float(diff[m].sum() / n) for g, m in (("pos", pos), ("neg", neg), ("zero", zero))})
    return out

"""aent: understanding and controlling policy entropy in RL for language models.

The shared regularizer of toy/ (simulator) and llm/ (trainer). Depends on torch only: importing it never pulls in
gymnasium, transformers, accelerate or matplotlib (``plot_metrics`` imports matplotlib when called).

- entropies: :func:`entropy`, :func:`clamped_entropy` (AEnt, arXiv 2509.03493), :func:`clamp_k`, :func:`token_logprobs`,
  :func:`masked_mean`; from hidden states without materialising the logits: :func:`chunked_policy_terms`
  (:class:`PolicyTerms`), and a per-token-sum loss with its gradient formed in forward: :func:`chunked_policy_loss`
  (:class:`PolicyLoss`);
- policy-loss pieces: :func:`group_advantages`, :func:`zero_adv_frac`, :func:`ppo_clip_loss`, :func:`approx_kl`, :func:`aggregate_loss`,
  :func:`aggregate_weights`, :func:`advantage_sign_weights`, :func:`entropic_term`, :func:`top_entropy_mask`,
  :func:`token_covariance`, :func:`clip_cov_mask`, :func:`kl_cov_mask`;
- controllers: :class:`ConstantCoef`, :class:`AEntCoef`, :class:`SACCoef`, :class:`ThresholdCoef`,
  :class:`PIController`, :class:`PositiveWeight` (+ :func:`positive_weight_schedule`);
- assembly: :class:`EntropyConfig` (+ :data:`PRESETS`), :class:`EntropyControl`, :class:`LossOutput`,
  :data:`BONUS_ENTROPY` (which entropy each bonus method regularises);
- the method registry every dispatcher reads: :data:`METHOD_SPECS` of :class:`MethodSpec` (:mod:`aent.methods`).
"""

from __future__ import annotations

from typing import Any

from aent.advantages import group_advantages, zero_adv_frac
from aent.aggregate import LOSS_AGG_MODES, aggregate_loss, aggregate_weights
from aent.chunked import PolicyTerms, chunked_policy_terms
from aent.config import METHODS, PRESETS, EntropyConfig
from aent.controllers import (
    AEntCoef,
    ConstantCoef,
    PIController,
    PositiveWeight,
    SACCoef,
    ThresholdCoef,
    positive_weight_schedule,
)
from aent.covariance import clip_cov_mask, kl_cov_mask, token_covariance
from aent.entropic import entropic_term
from aent.entropy import clamp_k, clamped_entropy, entropy, masked_mean, token_logprobs
from aent.fused import PolicyLoss, chunked_policy_loss
from aent.methods import METHOD_SPECS, MethodSpec
from aent.ppo import approx_kl, ppo_clip_loss
from aent.regularizer import BONUS_ENTROPY, EntropyControl, LossOutput
from aent.weights import advantage_sign_weights, top_entropy_mask

__version__ = "0.1.0"

__all__ = [
    "BONUS_ENTROPY",
    "LOSS_AGG_MODES",
    "METHODS",
    "METHOD_SPECS",
    "PRESETS",
    "AEntCoef",
    "ConstantCoef",
    "EntropyConfig",
    "EntropyControl",
    "LossOutput",
    "MethodSpec",
    "PIController",
    "PolicyLoss",
    "PolicyTerms",
    "PositiveWeight",
    "SACCoef",
    "ThresholdCoef",
    "advantage_sign_weights",
    "aggregate_loss",
    "aggregate_weights",
    "approx_kl",
    "clamp_k",
    "chunked_policy_loss",
    "chunked_policy_terms",
    "clamped_entropy",
    "clip_cov_mask",
    "entropic_term",
    "entropy",
    "group_advantages",
    "kl_cov_mask",
    "masked_mean",
    "plot_metrics",
    "positive_weight_schedule",
    "ppo_clip_loss",
    "token_covariance",
    "token_logprobs",
    "top_entropy_mask",
    "zero_adv_frac",
]


def __getattr__(name: str) -> Any:
    # plot_metrics lives with matplotlib-side code; resolve it on first use so `import aent` stays torch-only.
    if name == "plot_metrics":
        from aent.plotting import plot_metrics

        return plot_metrics
    raise AttributeError(f"module 'aent' has no attribute {name!r}")

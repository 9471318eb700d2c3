"""The clamped entropy on verl's fused-kernel path (``actor_rollout_ref.model.use_fused_kernels=true``).

With fused kernels, verl 0.9.0's patched model forwards (``verl.models.transformers.dense_common`` and the
vision-language ones) never build the logits: they hand the last hidden states, ``lm_head.weight``, the rolled
labels and the temperature to ``verl.utils.experimental.torch_functional.FusedLinearForPPO`` (torch backend) or
``verl.utils.kernel.linear_cross_entropy.linear_cross_entropy`` (Triton backend), both imported at call time,
which return per-token (log-probability, entropy). The drop-ins below return (log-probability, clamped entropy)
from :func:`aent.chunked_policy_terms` instead when gradients are on (the actor's update), so the loss's entropy
term is the clamped entropy and no (tokens x V) logits exist; without gradients (``compute_log_prob``: verl's
``actor/entropy``) they are verl's own kernels. The full entropy of the same tokens comes out of the same call and
is handed to ``keep_full`` for the metrics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from aent.chunked import chunked_policy_terms

__all__ = ["fused_linear_class", "linear_cross_entropy_fn", "policy_terms"]


def policy_terms(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, temperature: float,
                 clamp_p: float, chunk: int | None, keep_full: Callable[[torch.Tensor], None]):
    """(log-probability, clamped entropy), each of ``labels``' shape, from hidden states (..., d) and the weight."""
    terms = chunked_policy_terms(hidden.reshape(-1, hidden.shape[-1]), weight, labels.reshape(-1).to(torch.int64),
                                 temperature=float(temperature), clamp=clamp_p, chunk_size=chunk)
    keep_full(terms.entropy.detach().reshape(labels.shape))
    return terms.logp.reshape(labels.shape), terms.clamped_entropy.reshape(labels.shape)


def fused_linear_class(original: type, clamp_p: float, chunk: int | None, keep_full: Callable[[torch.Tensor], None]):
    """A subclass of verl's ``FusedLinearForPPO`` whose forward gives the clamped entropy with gradients on."""

    class AEntFusedLinearForPPO(original):
        def forward(self, hidden_states, vocab_weights, input_ids, temperature: float = 1.0):
            if not torch.is_grad_enabled():
                return super().forward(hidden_states, vocab_weights, input_ids, temperature)
            return policy_terms(hidden_states, vocab_weights, input_ids, temperature, clamp_p, chunk, keep_full)

    AEntFusedLinearForPPO.__name__ = original.__name__
    AEntFusedLinearForPPO.__qualname__ = original.__qualname__
    return AEntFusedLinearForPPO


def linear_cross_entropy_fn(original: Callable, clamp_p: float, chunk: int | None,
                            keep_full: Callable[[torch.Tensor], None]):
    """A drop-in for verl's Triton ``linear_cross_entropy(hidden, weight, labels, temperature, reduction, group)``."""

    def linear_cross_entropy(hidden, weight, labels, temperature=1.0, reduction="none", dist_process_group=None):
        if not torch.is_grad_enabled():
            return original(hidden, weight, labels, temperature, reduction, dist_process_group)
        if reduction != "none" or dist_process_group is not None:
            raise ValueError("aent.integrations.verl: the clamped entropy on verl's fused path supports "
                             "reduction='none' without a tensor-parallel vocabulary group (what verl 0.9.0's FSDP "
                             f"forwards pass), got reduction={reduction!r}, dist_process_group={dist_process_group!r}")
        return policy_terms(hidden, weight, labels, temperature, clamp_p, chunk, keep_full)

    return linear_cross_entropy

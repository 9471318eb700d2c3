"""A second mode of the policy's forward for AEntGRPOTrainer: last hidden states and the LM-head weight, no logits.

TRL 1.16 patches ``model.forward`` with a fused LM head (``trl.trainer.utils.add_fused_lm_head``): called with
``fused_lm_head=True`` it runs the backbone and projects only the scored positions, in vocabulary tiles, into
log-probabilities and the full entropy. The clamped entropy of AEnt needs the kept set of each row (the tokens
above the k-th smallest logit), a selection over the whole row that TRL's one-pass, vocabulary-tiled kernel (Triton
on GPU, a torch fallback elsewhere) has no place for. So :func:`add_hidden_head` wraps TRL's forward once more:
called with ``aent_hidden=Tc`` it returns the (B, Tc, d) last hidden states that score the Tc completion tokens and
the (V, d) LM-head weight, and :meth:`aent.EntropyControl.loss` takes them to :func:`aent.chunked_policy_loss`
or :func:`aent.chunked_policy_terms` (token chunks; no (tokens x V) logits, in forward or backward).

The call goes through the wrapped model (DDP / accelerate) like TRL's own, and the weight is returned through the
forward's output (``weight.view_as(weight)``), so a DDP that looks for unused parameters from the outputs finds the
head. Sharded weights (FSDP, DeepSpeed ZeRO-3) are not gathered here, and heads this path does not reproduce (a
bias, logit scaling, final-logit soft-capping) are reported by :func:`head_unsupported`: the trainer keeps the
materialised logits for both.
"""

from __future__ import annotations

import functools
import types
from typing import Any, NamedTuple

import torch

__all__ = ["HiddenOutput", "add_hidden_head", "head_unsupported"]


class HiddenOutput(NamedTuple):
    """What ``model(..., aent_hidden=Tc)`` returns."""

    hidden: torch.Tensor
    """(B, Tc, d) last hidden states (after the final norm); position j scores completion token j."""
    lm_head_weight: torch.Tensor
    """(V, d) LM-head weight (a view, so that it is part of the forward's output)."""


def head_unsupported(model: Any) -> str | None:
    """Why the hidden-state path cannot reproduce ``model``'s logits (None when it can: a plain bias-free Linear)."""
    cfg = model.config.get_text_config()
    head = model.get_output_embeddings()
    if head is None or not isinstance(getattr(head, "weight", None), torch.Tensor):
        return "the model has no output embedding with a weight"
    if getattr(head, "bias", None) is not None:
        return "the LM head has a bias"
    if getattr(cfg, "final_logit_softcapping", None) is not None:
        return "the model soft-caps its logits (final_logit_softcapping)"
    for name in ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"):
        if getattr(cfg, name, None) not in (None, 1, 1.0):
            return f"the model scales its logits ({name}={getattr(cfg, name)})"
    return None


def add_hidden_head(model: Any) -> None:
    """Wrap ``model.forward`` (TRL's fused forward) with the ``aent_hidden=Tc`` mode (module docstring).

    Args:
        model: the policy as a ``transformers.PreTrainedModel`` (for PEFT, ``get_base_model()``), already given
            TRL's fused head.
    """
    inner = model.forward

    @functools.wraps(inner)
    def forward(self, *args, aent_hidden: int | None = None, **kwargs):
        if aent_hidden is None:
            return inner(*args, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state  # (B, Tp + Tc, d)
        weight = self.get_output_embeddings().weight
        hidden = hidden[:, -(aent_hidden + 1):-1].to(weight.device)  # position Tp - 1 + j scores token j
        return HiddenOutput(hidden, weight.view_as(weight))

    model.forward = types.MethodType(forward, model)

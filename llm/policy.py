"""Policy forward pass for the update: logits, log-probs and entropies at the completion positions only.

Sequence layout: [prompt (left padded) | completion (right padded)]. The logits that score completion token j sit
at input position Tp - 1 + j, so the model runs on [prompt | completion[:, :-1]] and only the last Tc hidden
states go through the output projection (`logits_to_keep`, or the decoder + `lm_head` by hand for models without
it): no (B, Tp + Tc, V) tensor is ever made. The update goes further by default (`optim.chunked_loss`): it takes
those hidden states and the LM-head weight to `aent.chunked_policy_terms`, and no (B, Tc, V) tensor exists either. Position ids count real tokens only, so left padding does not change
any log-prob.

Per-token quantities follow the AEnt paper (arXiv 2509.03493, Sec. 3): logp = log softmax(z / T)[a],
H = -sum_a pi(a) log pi(a) and the clamped entropy over the kept (1 - p) fraction of the vocabulary (eq. 5),
computed by `aent.token_logprobs`, `aent.entropy` and `aent.clamped_entropy`, chunked over tokens.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

import aent
from llm.generate import position_ids_from_mask
from llm.lora import is_lora


@dataclass
class CompletionStats:
    """Per-token statistics of the completions; every tensor is (B, Tc) float32 and 0 where the mask is 0."""

    logp: torch.Tensor
    entropy: torch.Tensor
    clamped_entropy: torch.Tensor


def _check(prompt_ids, prompt_mask, completion_ids, completion_mask) -> None:
    if prompt_ids.ndim != 2 or completion_ids.ndim != 2:
        raise ValueError(
            f"prompt_ids and completion_ids must be (B, T) tensors, got {tuple(prompt_ids.shape)} "
            f"and {tuple(completion_ids.shape)}"
        )
    if prompt_mask.shape != prompt_ids.shape:
        raise ValueError(f"prompt_mask shape {tuple(prompt_mask.shape)} != prompt_ids {tuple(prompt_ids.shape)}")
    if completion_mask.shape != completion_ids.shape:
        raise ValueError(
            f"completion_mask shape {tuple(completion_mask.shape)} != completion_ids {tuple(completion_ids.shape)}"
        )
    if prompt_ids.shape[0] != completion_ids.shape[0]:
        raise ValueError(f"batch sizes differ: prompts {prompt_ids.shape[0]}, completions {completion_ids.shape[0]}")
    if completion_ids.shape[1] < 1 or prompt_ids.shape[1] < 1:
        raise ValueError("prompt and completion must each have at least one position")


def _inner(model):
    """The PreTrainedModel inside DDP / FSDP / DeepSpeed wrappers (`.module`) and peft's LoRA wrapper (whose
    adapters sit inside the base model's layers, so the base model's forward applies them)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    if is_lora(model):
        model = model.get_base_model()
    return model


def _supports_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(_inner(model).forward).parameters


def completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
    """Logits that score each completion token, computed for the completion positions only.

    Args:
        model: Causal LM (`PreTrainedModel`).
        prompt_ids: (B, Tp) long, left padded.
        prompt_mask: (B, Tp) {0, 1}.
        completion_ids: (B, Tc) long, right padded.
        completion_mask: (B, Tc) {0, 1}.

    Returns:
        (B, Tc, V) logits in the model's dtype; row b, position j scores completion_ids[b, j]. Positions with
        completion_mask == 0 hold finite but meaningless values.
    """
    ids, mask, pos, tc = _model_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask)
    if _supports_logits_to_keep(model):
        return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False,
                     logits_to_keep=tc).logits
    inner = _inner(model)
    hidden = inner.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=pos,
                                 use_cache=False).last_hidden_state
    return inner.get_output_embeddings()(hidden[:, -tc:])


def _model_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask):
    """(input ids, attention mask, position ids) of [prompt | completion[:, :-1]], and Tc."""
    _check(prompt_ids, prompt_mask, completion_ids, completion_mask)
    ids = torch.cat([prompt_ids, completion_ids[:, :-1]], dim=1)
    mask = torch.cat([prompt_mask.long(), completion_mask[:, :-1].long()], dim=1)
    # The padded tail of a completion only feeds positions that are masked out, so it may attend freely.
    mask[:, prompt_ids.shape[1]:] = 1
    return ids, mask, position_ids_from_mask(mask), completion_ids.shape[1]


def completion_hidden(model, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
    """Last hidden states (after the final norm) that score each completion token: logits = hidden @ W_head^T.

    Runs the model through its wrappers (DDP) with ``output_hidden_states`` and ``logits_to_keep=1`` (one
    position's logits, unused), or the decoder by hand for models without ``logits_to_keep``.

    Returns:
        (B, Tc, d) in the model's (or autocast's) dtype; arguments as in `completion_logits`.
    """
    ids, mask, pos, tc = _model_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask)
    if _supports_logits_to_keep(model):
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=1,
                    output_hidden_states=True)
        return out.hidden_states[-1][:, -tc:]
    return _inner(model).get_decoder()(input_ids=ids, attention_mask=mask, position_ids=pos,
                                       use_cache=False).last_hidden_state[:, -tc:]


def chunked_head(model, distributed_type: str = "NO") -> torch.Tensor | None:
    """The LM-head weight (V, d) when the logits are exactly hidden @ weight^T and the weight is whole, else None.

    None (use materialised logits) for a head with a bias, LoRA on the head, logit soft-capping or scaling in the
    model config, and under FSDP / DeepSpeed, whose sharded parameters are gathered only inside the wrapper's
    forward.
    """
    if "FSDP" in distributed_type or "DEEPSPEED" in distributed_type:
        return None
    inner = _inner(model)
    head = inner.get_output_embeddings()
    if type(head) is not torch.nn.Linear or head.bias is not None or head.weight.dim() != 2:
        return None
    cfg = getattr(inner, "config", None)
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None) not in (None, 1, 1.0):
        return None
    return head.weight


def loss_inputs(model, mb: dict, head: torch.Tensor | None) -> dict:
    """The model side of ``aent.EntropyControl.loss`` for a micro-batch ``mb``: ``{"logits": (b, Tc, V)}``, or
    ``{"hidden": (b, Tc, d), "lm_head_weight": head}`` (chunked, no full logits) when ``head`` is given."""
    args = (model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"], mb["completion_mask"])
    if head is None:
        return {"logits": completion_logits(*args)}
    return {"hidden": completion_hidden(*args), "lm_head_weight": head}


def loss_logprobs(model, mb: dict, head: torch.Tensor | None, temperature: float,
                  chunk_size: int | None = None) -> torch.Tensor:
    """(b, Tc) float32 log pi(a_t) computed exactly as the update's loss computes it (the PPO old log-probs)."""
    inputs = loss_inputs(model, mb, head)
    if head is None:
        return aent.token_logprobs(inputs["logits"], mb["completion_ids"], temperature, chunk_size=chunk_size)
    valid = mb["completion_mask"] != 0  # the valid tokens only, as EntropyControl.loss does
    lp = aent.chunked_policy_terms(inputs["hidden"][valid], head, mb["completion_ids"][valid],
                                   temperature=temperature, chunk_size=chunk_size).logp
    return torch.zeros(valid.shape, dtype=lp.dtype, device=lp.device).masked_scatter(valid, lp)


def _row_chunks(n: int, batch_size: int | None):
    step = batch_size or n
    if step < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    return [slice(s, s + step) for s in range(0, n, step)]


def completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask, *,
                        temperature: float = 1.0, chunk_size: int | None = None,
                        batch_size: int | None = None) -> torch.Tensor:
    """Per-token log-probabilities log softmax(z / T)[a] of the completion tokens.

    Differentiable when called with grad enabled. With `batch_size`, rows are processed in chunks (use under
    `torch.no_grad()` for the PPO old log-probs / reference log-probs to bound memory).

    Args:
        model, prompt_ids, prompt_mask, completion_ids, completion_mask: as in `completion_logits`.
        temperature: Sampling temperature T > 0 (must equal the rollout temperature).
        chunk_size: Token chunk of `aent.token_logprobs` (bounds the extra vocab-sized memory).
        batch_size: Rows per forward pass; None = all rows at once.

    Returns:
        (B, Tc) float32, 0 where completion_mask == 0.
    """
    _check(prompt_ids, prompt_mask, completion_ids, completion_mask)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    out = []
    for sl in _row_chunks(prompt_ids.shape[0], batch_size):
        logits = completion_logits(model, prompt_ids[sl], prompt_mask[sl], completion_ids[sl], completion_mask[sl])
        lp = aent.token_logprobs(logits, completion_ids[sl], temperature=temperature, chunk_size=chunk_size)
        out.append(lp * completion_mask[sl].to(lp.dtype))
    return torch.cat(out, 0)


def completion_stats(model, prompt_ids, prompt_mask, completion_ids, completion_mask, *,
                     temperature: float = 1.0, clamp_p: float = 0.33, chunk_size: int | None = None,
                     batch_size: int | None = None) -> CompletionStats:
    """Per-token logp, entropy and clamped entropy of the completions (AEnt eq. 5 for the clamped one).

    Args:
        model, prompt_ids, prompt_mask, completion_ids, completion_mask: as in `completion_logits`.
        temperature: T > 0; logits are divided by T before every quantity.
        clamp_p: Fraction of the vocabulary (smallest logits) removed for the clamped entropy, in [0, 1).
        chunk_size: Token chunk of the aent functions.
        batch_size: Rows per forward pass; None = all rows at once.

    Returns:
        `CompletionStats` of (B, Tc) float32 tensors, zero where completion_mask == 0.
    """
    _check(prompt_ids, prompt_mask, completion_ids, completion_mask)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 <= clamp_p < 1:
        raise ValueError(f"clamp_p must be in [0, 1), got {clamp_p}")
    lps, ents, cents = [], [], []
    for sl in _row_chunks(prompt_ids.shape[0], batch_size):
        cm = completion_mask[sl]
        logits = completion_logits(model, prompt_ids[sl], prompt_mask[sl], completion_ids[sl], cm)
        lp = aent.token_logprobs(logits, completion_ids[sl], temperature=temperature, chunk_size=chunk_size)
        lps.append(lp * cm.to(lp.dtype))
        ents.append(aent.entropy(logits, cm, temperature=temperature, chunk_size=chunk_size))
        cents.append(aent.clamped_entropy(logits, clamp_p, cm, temperature=temperature, chunk_size=chunk_size))
    return CompletionStats(logp=torch.cat(lps, 0), entropy=torch.cat(ents, 0), clamped_entropy=torch.cat(cents, 0))


# ------------------------------------------------------------------------------------------ building the policy
def build_policy(model_cfg, data_cfg, train_problems, *, cache_dir: str = "", progress: bool = False):
    """The policy and its tokenizer: loaded from ``model.path``, or built locally (tokenizer + model + warm start).

    A built model depends only on the ``model`` and ``data`` sections (never on the run seed), so every seed and
    every entropy method of a comparison starts from the same weights. The tokenizer
    (:func:`llm.tokenizer.load_or_build_tokenizer`) and the supervised warm start (:func:`llm.warmstart.warm_start`)
    are cached under ``cache_dir`` and reused.

    Args:
        model_cfg: ``llm.config.ModelSection``.
        data_cfg: ``llm.config.DataSection`` (template, seed).
        train_problems: The training problems (tokenizer text and warm-start solutions).
        cache_dir: Cache folder; "" = $AENT_CACHE or ~/.cache/aent.
        progress: tqdm bar for the warm start.

    Returns:
        (model in eval mode, tokenizer).
    """
    import os
    from pathlib import Path

    from llm.data import format_target
    from llm.model import DTYPES, build_model, load_pretrained
    from llm.tokenizer import load_or_build_tokenizer, load_tokenizer
    from llm.warmstart import WarmStartConfig, bare_answer_stage, warm_start

    cache = Path(cache_dir or os.environ.get("AENT_CACHE", "") or Path.home() / ".cache" / "aent").expanduser()
    if model_cfg.path:
        path = Path(model_cfg.path).expanduser()
        if not path.exists() and (model_cfg.path.startswith(("/", ".", "~")) or model_cfg.path.count("/") > 1):
            raise FileNotFoundError(f"config field `model.path`: model folder {model_cfg.path!r} does not exist; "
                                    "pass a folder written by save_pretrained (or a hub id)")
        model, tokenizer = load_pretrained(model_cfg.path, tokenizer_path=model_cfg.tokenizer_path or None,
                                           dtype=model_cfg.dtype)
    else:
        texts = [t for p in train_problems for t in (p.question, format_target(p, data_cfg.template))]
        tokenizer = (load_tokenizer(model_cfg.tokenizer_path) if model_cfg.tokenizer_path
                     else load_or_build_tokenizer(texts, model_cfg.vocab_size, cache / "tokenizers"))
        model = build_model(model_cfg.shape(), tokenizer, seed=data_cfg.seed).float()
    if model_cfg.warm_start_steps:
        ws = WarmStartConfig(steps=model_cfg.warm_start_steps, lr=model_cfg.warm_start_lr, seed=data_cfg.seed,
                             template=data_cfg.template)
        warm_start(model, tokenizer, train_problems, ws, cache_dir=cache / "warmstart", progress=progress)
        if model_cfg.bare_stage_steps:
            bare_answer_stage(model, tokenizer, train_problems, steps=model_cfg.bare_stage_steps,
                              lr=model_cfg.bare_stage_lr, wrong=model_cfg.bare_stage_wrong, seed=data_cfg.seed,
                              template=data_cfg.template, cache_dir=cache / "warmstart", progress=progress,
                              schedule=model_cfg.bare_stage_schedule)
        model = model.to(DTYPES[model_cfg.dtype])
    if model_cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if model_cfg.lora_r:
        from llm.lora import apply_lora

        model = apply_lora(model, model_cfg.lora_r, model_cfg.lora_alpha, model_cfg.lora_targets)
    return model, tokenizer

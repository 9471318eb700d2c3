"""LoRA adapters for the policy (peft), and merging them into the base weights at the end of a run.

LoRA (Hu et al. 2021, arXiv 2106.09685) trains W + (alpha / r) B A on the target linear layers, with A (r x in)
random and B (out x r) zero at the start, so the adapted policy starts equal to the base policy. Only A and B
receive gradient; every base weight stays frozen (TRL's ``peft_config`` and verl's ``lora_rank`` do the same).
Adapters carry no dropout here (``lora_dropout=0``), so a policy's log-probs are deterministic, as the PPO ratio needs.

A checkpoint (``accelerate.save_state``) holds the whole PEFT state, so resume is exact; ``final/`` holds the
adapter (``adapter_config.json`` + ``adapter_model.safetensors``) and the tokenizer; with ``model.lora_merge``,
``final_merged/`` holds the base model with W <- W + (alpha / r) B A, loadable without peft.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

__all__ = ["apply_lora", "is_lora", "merged_state_dict", "save_merged"]

_PREFIX = "base_model.model."


def apply_lora(model, r: int, alpha: float, targets: tuple[str, ...]):
    """Wrap ``model`` in a peft ``PeftModel`` with LoRA adapters of rank ``r`` on the ``targets`` modules.

    Args:
        model: a causal LM (``PreTrainedModel``).
        r: rank (>= 1).
        alpha: scaling numerator; the update is (alpha / r) B A.
        targets: module-name suffixes, e.g. ("q_proj", "v_proj").

    Returns:
        The ``PeftModel``; only the adapters have ``requires_grad``.

    Raises:
        ImportError: peft is missing (one line naming the install command).
        ValueError: no module of the model matches ``targets``.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ImportError("model.lora_r > 0 needs peft: pip install 'aent[lora]' (or pip install peft)") from err
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = sorted(set(targets) - names)
    if missing:
        raise ValueError(f"config field `model.lora_targets`: {missing} name no linear layer of this model; "
                         f"its linear layers are {sorted(names)}")
    cfg = LoraConfig(r=int(r), lora_alpha=float(alpha), target_modules=list(targets), lora_dropout=0.0,
                     bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5.x name
    if checkpointing is None:
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    if checkpointing:
        peft_model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    return peft_model


def is_lora(model) -> bool:
    """True for a peft-wrapped model."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def merged_state_dict(state: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """Base-model state dict with every LoRA pair merged: W + scaling * B @ A (computed in fp32).

    Args:
        state: a full ``PeftModel`` state dict (keys ``base_model.model.<name>.base_layer.weight``,
            ``...lora_A.default.weight``, ``...lora_B.default.weight`` and the untouched weights).
        scaling: alpha / r.

    Returns:
        The state dict of the plain base model (keys ``<name>.weight``), weights in their original dtype.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        if ".base_layer." in name:
            stem = key.split(".base_layer.")[0]
            name = name.replace(".base_layer.", ".")
            if key.endswith(".base_layer.weight"):
                a, b = state[f"{stem}.lora_A.default.weight"], state[f"{stem}.lora_B.default.weight"]
                value = (value.float() + scaling * (b.float() @ a.float())).to(value.dtype)
        out[name] = value
    return out


def save_merged(accelerator, model, tokenizer, out_dir: Path) -> None:
    """Write ``out_dir`` (save_pretrained layout): the base model with the adapters merged in; every process calls.

    Works from ``accelerator.get_state_dict`` (full weights even under FSDP / ZeRO-3), so no process has to hold
    more than one full copy of the weights besides the state dict.
    """
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        peft_model = accelerator.unwrap_model(model)
        lora_cfg = peft_model.peft_config["default"]
        merged = merged_state_dict(state, lora_cfg.lora_alpha / lora_cfg.r)
        base = peft_model.get_base_model()
        plain = type(base)(base.config).to(next(iter(merged.values())).dtype)
        missing, unexpected = plain.load_state_dict(merged, strict=False)
        tied = {"lm_head.weight"} if getattr(base.config, "tie_word_embeddings", False) else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"merging LoRA: state dict mismatch, missing {missing}, unexpected {unexpected}")
        plain.generation_config = base.generation_config
        tmp = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    accelerator.wait_for_everyone()

"""A tiny Qwen2 checkpoint laid out as a hub checkpoint (Qwen2.5-Math style), written locally for tests and smokes.

The folder holds what ``huggingface-cli download Qwen/Qwen2.5-Math-1.5B-Instruct`` gives, at toy size:
``config.json`` + ``model.safetensors`` (a ``Qwen2ForCausalLM``), a fast tokenizer (``tokenizer.json`` +
``tokenizer_config.json``) with the ChatML special tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` and a
real ChatML ``chat_template`` (default system message as Qwen2.5-Math's), and a ``generation_config.json`` whose
``eos_token_id`` is a list ``[<|im_end|>, <|endoftext|>]``, while the tokenizer's own ``eos_token`` is only
``<|endoftext|>``: a sampler that stops at the tokenizer's EOS alone runs past ``<|im_end|>``, as with the real model.
Nothing is downloaded; the BPE is trained on a few hundred synthetic arithmetic lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["CHATML_TEMPLATE", "SPECIAL_TOKENS", "write_tiny_qwen2"]

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nPlease reason step by step, and put your final answer within \\\\boxed{}.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _corpus(n: int = 400) -> list[str]:
    lines = []
    for i in range(n):
        a, b = i % 23, (7 * i) % 19
        lines.append(f"What is {a} plus {b}? Please reason step by step. {a} + {b} = {a + b}. "
                     f"The answer is \\boxed{{{a + b}}}.")
    return lines


def write_tiny_qwen2(folder: str | os.PathLike, *, vocab_size: int = 512, hidden: int = 32, layers: int = 2,
                     heads: int = 4, kv_heads: int = 2, intermediate: int = 64, max_position: int = 512,
                     seed: int = 0) -> Path:
    """Write a randomly initialised tiny Qwen2 with a ChatML tokenizer and a list-valued EOS into ``folder``.

    Args:
        folder: target folder (created; existing files are overwritten).
        vocab_size: BPE vocabulary incl. the 3 special tokens (>= 259 + 3).
        hidden, layers, heads, kv_heads, intermediate, max_position: Qwen2 shape.
        seed: weight initialisation seed.

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained`` and ``model.path``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   clean_up_tokenization_spaces=False, model_max_length=max_position)
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(out)
    ids = {t: fast.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2Config(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate,
                         max_position_embeddings=max_position, tie_word_embeddings=True,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"])
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]])
    model.save_pretrained(out)
    gen = json.loads((out / "generation_config.json").read_text())
    if not isinstance(gen.get("eos_token_id"), list):
        raise RuntimeError(f"{out}/generation_config.json lost its eos_token_id list: {gen}")
    return out

"""Batched sampling of response groups with a key/value cache: temperature, top-p, EOS stop, seeded.

One prompt is repeated `n` times (a GRPO group, rows `i*n .. i*n+n-1` belong to prompt `i`), the prompt is run
once through the model to fill the cache, then one token per step is sampled from softmax(logits / T), optionally
restricted to the smallest set of tokens whose probability reaches `top_p` (nucleus sampling). A row stops at its
first EOS; later positions are padding with mask 0. Sampling draws from a `torch.Generator`, so the same seed and
the same inputs give the same tokens.

For the trainer, each row can instead be driven by its own pre-drawn uniforms (`uniforms`, inverse-CDF sampling):
then a row's tokens depend only on its prompt and its uniforms, never on which other rows share the batch, so one
process or several, one batch or many, sample the same completions (`group_uniforms` draws them per prompt seed).

The log-probability returned for each sampled token is log softmax(logits / T)[token] of the *untruncated*
distribution: exactly what `llm.policy.completion_logprobs` recomputes at training time with the same temperature
(the PPO "old" log-prob). With top_p < 1 this is not the probability of the truncated sampler, as in verl/TRL.
Why our own loop and not `model.generate`: per-row uniforms (above), rows leave the batch at EOS, and the
returned log-probs are exactly the trainer's old log-probs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Samples:
    """A batch of sampled completions, prompt-major: row `i*group_size + j` is sample j of prompt i.

    Attributes:
        prompt_ids: (N, Tp) long, left padded with the pad id.
        prompt_mask: (N, Tp) long, 1 on prompt tokens.
        completion_ids: (N, Tc) long, right padded with the pad id.
        completion_mask: (N, Tc) long, 1 up to and including the first EOS (or max_new_tokens).
        logp: (N, Tc) float32, log softmax(logits / T) of each sampled token (0 where the mask is 0).
            For greedy decoding (T = 0) the log-probability at T = 1.
        texts: N decoded completions (special tokens removed).
        group_size: samples per prompt.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logp: torch.Tensor
    texts: list[str]
    group_size: int

    @property
    def lengths(self) -> torch.Tensor:
        """(N,) number of completion tokens (EOS included)."""
        return self.completion_mask.sum(-1)


def encode_prompts(tokenizer, prompts: Sequence[str], *, max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize prompts and left-pad them to a common length.

    Args:
        tokenizer: A tokenizer with a pad token.
        prompts: B strings.
        max_len: If given, prompts longer than this keep only their last `max_len` tokens.

    Returns:
        ids (B, Tp) long left padded, mask (B, Tp) long.
    """
    if len(prompts) == 0:
        raise ValueError("encode_prompts: prompts must be a non-empty list of strings")
    if max_len is not None and max_len < 1:
        raise ValueError(f"encode_prompts: max_len must be >= 1 or None, got {max_len}")
    rows = [list(x) for x in tokenizer(list(prompts), padding=False, truncation=False)["input_ids"]]
    if max_len is not None:
        rows = [r[-max_len:] for r in rows]
    if any(len(r) == 0 for r in rows):
        raise ValueError("encode_prompts: a prompt encodes to zero tokens; prompts must be non-empty")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(tokenizer.pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


def position_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only real tokens: 0 at the first non-pad token of each row (pads get 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def group_uniforms(seeds: Sequence[int], n: int, max_new_tokens: int) -> torch.Tensor:
    """Uniforms in [0, 1) for `n` samples of each prompt, drawn from one generator per prompt seed.

    Returns:
        (len(seeds) * n, max_new_tokens) float64, prompt-major (rows i*n .. i*n+n-1 belong to seeds[i]).
    """
    rows = [torch.rand(n, max_new_tokens, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64)
            for s in seeds]
    return torch.cat(rows, 0)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                uniforms: torch.Tensor | None = None):
    """Sample one token per row from softmax(logits / T), nucleus-truncated to mass `top_p`.

    Args:
        logits: (B, V) next-token logits (any float dtype; computed in float32).
        temperature: T > 0, or 0 for greedy argmax.
        top_p: Nucleus mass in (0, 1]; 1 disables truncation.
        generator: Source of randomness (used when `uniforms` is None).
        uniforms: Optional (B,) values in [0, 1): row b takes the first token whose cumulative (truncated)
            probability exceeds uniforms[b] times the total (inverse-CDF sampling; zero-probability tokens are
            never chosen).

    Returns:
        tokens (B,) long, logp (B,) float32 = log softmax(logits / T)[token] of the untruncated distribution
        (T = 1 when greedy).
    """
    logits = logits.float()
    if temperature == 0:
        tokens = logits.argmax(-1)
        return tokens, torch.log_softmax(logits, -1).gather(-1, tokens[:, None])[:, 0]
    logp_all = torch.log_softmax(logits / temperature, -1)
    probs = logp_all.exp()
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        # Drop a token when the mass strictly before it already reaches top_p; the top token always stays.
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    if uniforms is None:
        tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
    else:
        cdf = probs.double().cumsum(-1)
        target = uniforms.to(cdf)[:, None] * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, target, right=True)[:, 0].clamp_(max=probs.shape[-1] - 1)
    return tokens, logp_all.gather(-1, tokens[:, None])[:, 0]


@torch.no_grad()
def _sample_rows(model, ids, mask, n, *, eos_ids, pad_id, temperature, top_p, max_new_tokens, generator,
                 uniforms=None):
    """KV-cache sampling for a chunk of prompts, `n` rows each; returns (completion ids, mask, logp), (B*n, Tc).

    The prompt runs once per prompt and its cache is repeated `n` times; rows that reach EOS leave the batch
    (their cache rows are dropped), so later steps only pay for the rows still generating.
    """
    pos = position_ids_from_mask(mask)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    past, logits = out.past_key_values, out.logits[:, -1]
    if n > 1:
        past.batch_repeat_interleave(n)
        logits, mask, pos = (x.repeat_interleave(n, 0) for x in (logits, mask, pos))
    pos = pos[:, -1]
    rows = ids.shape[0] * n
    comp = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=ids.device)
    valid = torch.zeros((rows, max_new_tokens), dtype=torch.long, device=ids.device)
    logp = torch.zeros((rows, max_new_tokens), dtype=torch.float32, device=ids.device)
    active = torch.arange(rows, device=ids.device)
    eos = torch.tensor(sorted(eos_ids), device=ids.device)
    width = max_new_tokens
    for t in range(max_new_tokens):
        u = None if uniforms is None else uniforms[active, t]
        tok, lp = sample_next(logits, temperature, top_p, generator, u)
        comp[active, t], logp[active, t], valid[active, t] = tok, lp, 1
        keep = ~torch.isin(tok, eos)
        if t == max_new_tokens - 1 or not bool(keep.any()):
            width = t + 1
            break
        if not bool(keep.all()):
            idx = keep.nonzero()[:, 0]
            past.batch_select_indices(idx)
            active, mask, pos, tok = active[idx], mask[idx], pos[idx], tok[idx]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos + 1
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=pos[:, None],
                    past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
    return comp[:, :width], valid[:, :width], logp[:, :width]


def stop_token_ids(model, tokenizer) -> set[int]:
    """Every token id that ends a completion: the tokenizer's EOS and all of ``generation_config.eos_token_id``.

    Hub checkpoints often list several (Qwen2.5-Math: ``[<|im_end|>, <|endoftext|>]``) while the tokenizer names
    only one, so a sampler stopping at the tokenizer's EOS alone would run past the end of a chat turn.

    Raises:
        ValueError: neither the tokenizer nor the generation config names an EOS token.
    """
    ids: set[int] = set()
    for eos in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(eos, list | tuple):
            ids.update(int(e) for e in eos)
        elif eos is not None:
            ids.add(int(eos))
    if not ids:
        raise ValueError("generate: neither the tokenizer nor model.generation_config has an eos_token_id; set "
                         "tokenizer.eos_token so that completions can end")
    return ids


def _pad_right(chunks: list[torch.Tensor], value) -> torch.Tensor:
    width = max(c.shape[1] for c in chunks)
    return torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1]), value=value) for c in chunks], 0)


def generate(
    model,
    tokenizer,
    prompts: Sequence[str] | None = None,
    *,
    prompt_ids: torch.Tensor | None = None,
    prompt_mask: torch.Tensor | None = None,
    n: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 32,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    max_prompt_len: int | None = None,
    uniforms: torch.Tensor | None = None,
) -> Samples:
    """Sample `n` completions per prompt with a KV cache (GRPO rollout).

    Args:
        model: A causal LM (`PreTrainedModel`) accepting `position_ids`, `past_key_values`, `logits_to_keep`.
        tokenizer: Its tokenizer (pad and eos ids; decodes the texts).
        prompts: B prompt strings, or None when `prompt_ids`/`prompt_mask` (B, Tp) left-padded are given.
        n: Samples per prompt (group size), >= 1.
        temperature: T > 0 for sampling, 0 for greedy. Must equal the temperature used for logp in the loss.
        top_p: Nucleus mass in (0, 1].
        max_new_tokens: Longest completion, >= 1.
        seed: Seeds a fresh CPU generator when `generator` is None (None: torch's global RNG).
        generator: Explicit generator (takes precedence over `seed`).
        batch_size: Rows (prompt x sample) per forward pass, rounded down to whole groups (at least one
            prompt); None = all at once.
        max_prompt_len: Keep only the last this many prompt tokens.
        uniforms: Optional (B * n, max_new_tokens) values in [0, 1) driving each row's sampling (see
            `group_uniforms`); the result then does not depend on `batch_size`. Replaces `seed`/`generator`.

    Returns:
        `Samples` with N = B * n rows, prompt-major.
    """
    if n < 1:
        raise ValueError(f"generate: n (samples per prompt) must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"generate: batch_size must be >= 1 or None, got {batch_size}")
    if uniforms is not None and (uniforms.ndim != 2 or uniforms.shape[1] < max_new_tokens):
        raise ValueError(f"generate: uniforms must be (B * n, >= max_new_tokens), got {tuple(uniforms.shape)}")
    if (prompts is None) == (prompt_ids is None):
        raise ValueError("generate: pass exactly one of `prompts` (strings) or `prompt_ids` (+ prompt_mask)")
    if prompts is not None:
        prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, max_len=max_prompt_len)
    elif prompt_mask is None or prompt_mask.shape != prompt_ids.shape or prompt_ids.ndim != 2:
        raise ValueError("generate: prompt_mask must be given with the same (B, Tp) shape as prompt_ids")
    device = next(model.parameters()).device
    if generator is None and seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    eos_ids = stop_token_ids(model, tokenizer)
    pad_id = int(tokenizer.pad_token_id)

    ids, mask = prompt_ids.to(device), prompt_mask.to(device).long()
    if uniforms is not None and uniforms.shape[0] != ids.shape[0] * n:
        raise ValueError(f"generate: uniforms has {uniforms.shape[0]} rows, expected B * n = {ids.shape[0] * n}")
    step = max(1, batch_size // n) if batch_size else ids.shape[0]
    was_training = model.training
    model.eval()
    parts = []
    try:
        for s in range(0, ids.shape[0], step):
            parts.append(_sample_rows(model, ids[s:s + step], mask[s:s + step], n, eos_ids=eos_ids, pad_id=pad_id,
                                      temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                      generator=generator,
                                      uniforms=None if uniforms is None else uniforms[s * n:(s + step) * n].to(device)))
    finally:
        model.train(was_training)
    comp = _pad_right([p[0] for p in parts], pad_id)
    cmask = _pad_right([p[1] for p in parts], 0)
    logp = _pad_right([p[2] for p in parts], 0.0)
    texts = tokenizer.batch_decode([row[m.bool()].tolist() for row, m in zip(comp, cmask)], skip_special_tokens=True)
    return Samples(prompt_ids=ids.repeat_interleave(n, 0), prompt_mask=mask.repeat_interleave(n, 0),
                   completion_ids=comp, completion_mask=cmask, logp=logp, texts=texts, group_size=n)

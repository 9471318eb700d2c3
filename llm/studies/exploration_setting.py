"""The exploration-bottleneck setting: a warm-started policy that rarely samples the rewarded style.

Paper claim (AEnt, arXiv 2509.03493, Sec. 3 and Figure 1): when the optimal actions are a small set (m of them)
inside a huge action space, a full-vocabulary entropy bonus spreads its mass over the many useless actions and
loses its edge as m shrinks, while the clamped bonus, which ignores the tail, keeps it. In the LLM analogue
the "optimal actions" are completions that start a worked line (``4-3=1``): the policy has the skill of
writing them (a first stage fitted worked solutions) but a second stage on bare answers (``#### n``, half of them
wrong; :func:`llm.warmstart.bare_answer_stage`) made it start one only at a small rate q0. GRPO needs a group
that contains a worked sample to learn from it, so below some q0 it rarely escapes within the budget: q0 plays
the role of m, and the levels of the study are target levels of q0, numbered from the smallest (level 1 = deepest
trap; :mod:`llm.studies.exploration_levels`).

What is measured on a starting policy (:func:`measure_start`, held-out prompts):

- ``q0``: the share of samples that START A WORKED LINE (the first line matches :data:`WORKED_LINE`), computed
  as (exact probability mass of the first tokens that begin with a digit) x (share of samples forced to start
  with such a token whose first line is a worked line). A junk first token (neither a digit nor ``#``) does not
  count, unlike "not the bare-answer marker", which counts it (11-22% of first tokens at small q0 in the probe).
- ``forced_accuracy``: accuracy when the first token is drawn from the policy restricted to digit tokens (the
  first worked token is forced, the rest is the policy's own);
- ``worked_pass_at_k``: share of prompts where at least one of k forced samples is a worked line with the right
  answer (pass@k over worked-style samples only; plain pass@k is uninformative here, bare single-digit guesses
  cover nearly every prompt);
- ``sampled_*``: unforced samples: mean accuracy and the worked / bare / junk shares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

__all__ = ["WORKED_LINE", "measure_start", "style_of", "worked_share", "worked_start_ids"]

WORKED_LINE = re.compile(r"^\s*\d+\s*[-+*/x]\s*\d+\s*=")
"""A worked line: ``a op b =`` at the start of the completion (the worked solutions' first line is ``4-3=1``)."""
BARE_MARKER = "#"
"""A bare answer starts with ``#### n``."""


def style_of(text: str) -> str:
    """``"worked"`` (starts a worked line), ``"bare"`` (starts with the bare-answer marker) or ``"junk"``."""
    if WORKED_LINE.match(text):
        return "worked"
    if text.lstrip().startswith(BARE_MARKER):
        return "bare"
    return "junk"


def worked_share(texts: Sequence[str]) -> float:
    """Share of completions that start a worked line (NaN for no texts)."""
    return sum(style_of(t) == "worked" for t in texts) / len(texts) if texts else float("nan")


def worked_start_ids(tokenizer) -> list[int]:
    """Ids whose decoded text begins with a digit: the tokens a worked line can start with."""
    out = []
    for i in range(len(tokenizer)):
        text = tokenizer.decode([i], skip_special_tokens=True)
        if text[:1].isdigit():
            out.append(i)
    if not out:
        raise ValueError("worked_start_ids: no token of the vocabulary starts with a digit")
    return out


@torch.no_grad()
def _first_token_mass(model, ids, mask, worked: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) probability mass of the worked-start tokens at the first position, and (B, V) first-token probs."""
    from llm.generate import position_ids_from_mask

    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits[:, -1]
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    return probs[:, worked].sum(-1), probs


@torch.no_grad()
def measure_start(model, tokenizer, problems: Sequence, *, k: int = 8, seed: int = 0, template: str = "plain",
                  temperature: float = 1.0, max_new_tokens: int = 32) -> dict:
    """q0, forced-start accuracy, worked pass@k and the unforced sample styles of a starting policy.

    Args:
        model: the policy (eval mode).
        tokenizer: its tokenizer.
        problems: held-out problems (non-empty).
        k: samples per problem, forced and unforced.
        seed: sampling seed.
        template: prompt template.
        temperature: sampling temperature (the trainer's).
        max_new_tokens: longest completion.

    Returns:
        A dict of floats (see the module docstring) and ``n_problems``, ``k``.
    """
    from llm.data import format_prompts
    from llm.evaluate import evaluate, pass_at_k
    from llm.generate import encode_prompts, generate
    from llm.rewards import score_problems

    if not problems:
        raise ValueError("measure_start: problems is empty")
    worked = torch.tensor(worked_start_ids(tokenizer))
    ids, mask = encode_prompts(tokenizer, format_prompts(problems, template, tokenizer))
    mass, probs = _first_token_mass(model, ids, mask, worked, temperature)
    gen = torch.Generator().manual_seed(seed)
    restricted = probs[:, worked] / probs[:, worked].sum(-1, keepdim=True).clamp_min(1e-30)  # (B, |W|)
    first = worked[torch.multinomial(restricted, k, replacement=True, generator=gen)]  # (B, k)
    rows_ids = torch.cat([ids.repeat_interleave(k, 0), first.reshape(-1, 1)], 1)  # (B*k, Tp+1)
    rows_mask = torch.cat([mask.repeat_interleave(k, 0), torch.ones_like(first.reshape(-1, 1))], 1)
    out = generate(model, tokenizer, prompt_ids=rows_ids, prompt_mask=rows_mask, n=1, temperature=temperature,
                   max_new_tokens=max_new_tokens - 1, seed=seed + 1)
    heads = tokenizer.batch_decode(first.reshape(-1, 1).tolist(), skip_special_tokens=True)
    texts = [h + t for h, t in zip(heads, out.texts)]
    reps = [p for p in problems for _ in range(k)]
    correct = score_problems(texts, reps)
    is_worked = [style_of(t) == "worked" for t in texts]
    forced_worked = sum(is_worked) / len(texts)
    good = [sum(c > 0 and w for c, w in zip(correct[i * k:(i + 1) * k], is_worked[i * k:(i + 1) * k]))
            for i in range(len(problems))]
    sampled = evaluate(model, tokenizer, problems, samples=k, temperature=temperature, max_new_tokens=max_new_tokens,
                       seed=seed, template=template, return_texts=True)
    styles = [style_of(t) for t in sampled["texts"]]
    return {
        "q0": float(mass.mean()) * forced_worked,
        "worked_first_mass": float(mass.mean()),
        "forced_worked_rate": forced_worked,
        "forced_accuracy": sum(correct) / len(correct),
        "worked_pass_at_k": sum(pass_at_k(k, g, k) for g in good) / len(good),
        "sampled_mean_at_k": float(sampled["accuracy"]),
        "sampled_pass_at_k": float(sampled[f"pass@{k}"]),
        **{f"sampled_{s}_share": styles.count(s) / len(styles) for s in ("worked", "bare", "junk")},
        "n_problems": len(problems), "k": k,
    }

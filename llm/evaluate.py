"""Held-out evaluation: pass@k (unbiased estimator) and mean@k of a policy on any problem set.

For each problem we sample n completions with the given temperature / top-p and count the c correct ones
(reward 1.0 from the problem's own reward, :func:`llm.rewards.score_problems`). Then

- ``mean@k`` (avg@k) $= \\frac{1}{|P|}\\sum_i c_i / n$, the expected accuracy of one sample;
- ``pass@j`` for $j \\le n$ is the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374, Eq. 1),
  $\\text{pass@}j = \\mathbb{E}_i\\big[1 - \\binom{n-c_i}{j} / \\binom{n}{j}\\big]$, computed as a stable
  product. For $j = 1$ it equals $c_i / n$, so ``pass@1`` and ``mean@k`` coincide numerically (as in the
  DeepSeek-R1 convention of pass@1 from k samples); both are reported because both names are in use.

`evaluate` is library code (no file IO); `evaluate_cli` loads a saved model and a dataset spec (one
:class:`llm.eval_config.EvalConfig`) and is what
``python -m llm eval`` calls; `eval_main(argv)` is a standalone command line (``python -m llm.evaluate``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from llm.answer_form import is_list
from llm.data import Problem, format_prompts, load_problems
from llm.eval_config import EvalConfig
from llm.rewards import correctness_reward, score_problems

__all__ = ["eval_main", "evaluate", "evaluate_cli", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, Eq. 1): 1 - C(n-c, k) / C(n, k).

    Args:
        n: samples drawn (>= 1).
        c: correct samples, 0 <= c <= n.
        k: 1 <= k <= n.

    Returns:
        The probability that at least one of k samples drawn without replacement from the n is correct.
    """
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("pass_at_k: n, c and k must be integers")
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs n >= 1, 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0  # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def _problem_seed(seed: int, index: int) -> int:
    """A 63-bit seed for problem `index` (numpy SeedSequence of (seed, index, 17))."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(index), 17]).generate_state(1, np.uint64)[0] >> 1)


def _ks(n: int) -> list[int]:
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n]


@torch.no_grad()
def evaluate(
    model,
    tokenizer,
    problems: Sequence[Problem],
    *,
    samples: int = 4,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    template: str = "plain",
    reward: str = "task",
    progress: bool = False,
    return_texts: bool = False,
) -> dict:
    """pass@1, pass@j (j = 1, 2, 4, ..., samples), mean@k and mean response length of a policy.

    Args:
        model: causal LM (sampled with :func:`llm.generate.generate`).
        tokenizer: its tokenizer.
        problems: the problems (non-empty).
        samples: n completions per problem (>= 1).
        temperature: sampling temperature (> 0; 0 = greedy, then use samples = 1).
        top_p: nucleus mass in (0, 1].
        max_new_tokens: longest completion.
        batch_size: rows (problem x sample) per generation call (>= 1); it does not change the result.
        seed: sampling seed; problem i is sampled from its own stream seeded by (seed, i).
        template: prompt template (:data:`llm.data.TEMPLATES`).
        reward: ``"task"`` (each problem's own reward) or ``"correctness"``.
        progress: show a tqdm bar.
        return_texts: also return the completions (``"texts"``) and per-problem correct counts (``"correct"``).

    Returns:
        A dict with ``n_problems, samples, list_golds`` (golds that are comma-separated lists, graded as lists),
        ``pass@1, mean@k, accuracy`` (= mean@k), ``pass@j``, ``mean@{samples}``,
        ``response_len`` (mean tokens, EOS included), ``truncated_frac`` (share that hit max_new_tokens) and the
        sampling settings.
    """
    from llm.generate import generate, group_uniforms

    if not problems:
        raise ValueError("evaluate: problems is empty")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"evaluate: samples must be an integer >= 1, got {samples!r}")
    if temperature == 0 and samples > 1:
        raise ValueError("evaluate: temperature 0 (greedy) gives identical samples; use samples=1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be an integer >= 1, got {batch_size!r}")
    if reward not in ("task", "correctness"):
        raise ValueError(f"evaluate: reward must be 'task' or 'correctness', got {reward!r}")
    prompts = format_prompts(problems, template, tokenizer)
    per_call = max(1, batch_size // samples)
    starts = range(0, len(problems), per_call)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluate", leave=False)
    texts, lengths = [], []
    for s in starts:
        chunk = prompts[s : s + per_call]
        # One uniform stream per problem (seeded by (seed, problem index)): results do not depend on batch_size.
        uniforms = None
        if temperature > 0:
            seeds = [_problem_seed(seed, i) for i in range(s, s + len(chunk))]
            uniforms = group_uniforms(seeds, samples, max_new_tokens)
        out = generate(model, tokenizer, chunk, n=samples, temperature=temperature, top_p=top_p,
                       max_new_tokens=max_new_tokens, uniforms=uniforms)
        texts.extend(out.texts)
        lengths.extend(out.lengths.tolist())
    repeated = [p for p in problems for _ in range(samples)]
    if reward == "task":
        scores = score_problems(texts, repeated)
    else:
        scores = correctness_reward(texts, [p.answer for p in repeated])
    correct = [int(sum(scores[i * samples : (i + 1) * samples])) for i in range(len(problems))]
    result = {"n_problems": len(problems), "samples": samples,
              "list_golds": sum(is_list(p.answer) for p in problems)}  # graded as lists (llm.answer_form)
    for k in _ks(samples):
        result[f"pass@{k}"] = sum(pass_at_k(samples, c, k) for c in correct) / len(problems)
    mean = sum(c / samples for c in correct) / len(problems)
    result.update({"mean@k": mean, f"mean@{samples}": mean, "accuracy": mean,
                   "response_len": sum(lengths) / len(lengths),
                   "truncated_frac": sum(n >= max_new_tokens for n in lengths) / len(lengths),
                   "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed,
                   "template": template})
    if return_texts:
        result.update({"texts": texts, "correct": correct})
    return result


def evaluate_cli(cfg: EvalConfig) -> dict:
    """Load a saved model (and its tokenizer) by path, load a problem set by spec, and :func:`evaluate` it.

    Args:
        cfg: the model, the problem set and the sampling settings (:class:`llm.eval_config.EvalConfig`).

    Returns:
        The dict of :func:`evaluate` plus ``"model"`` and ``"task"``.
    """
    from llm.model import load_pretrained

    samples = 1 if cfg.temperature == 0 else cfg.samples
    model, tokenizer = load_pretrained(cfg.model_path, tokenizer_path=cfg.tokenizer_path, dtype=cfg.dtype)
    problems = load_problems(cfg.task, split=cfg.split, n=cfg.n, seed=cfg.data_seed, difficulty=cfg.difficulty,
                             prompt_field=cfg.prompt_field, answer_field=cfg.answer_field)
    result = evaluate(model, tokenizer, problems, samples=samples, temperature=cfg.temperature, top_p=cfg.top_p,
                      max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, seed=cfg.seed,
                      template=cfg.template, progress=cfg.progress)
    return {"model": str(cfg.model_path), "task": cfg.task, **result}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llm.evaluate", description="pass@1 / pass@k / mean@k of a saved model")
    p.add_argument("--model", required=True, help="model folder written by save_pretrained")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder)")
    p.add_argument("--task", default="arithmetic", help="synthetic task, benchmark (gsm8k:test, math500, ...) or file")
    p.add_argument("--n", type=int, default=64, help="number of problems (0 = all rows of a dataset)")
    p.add_argument("--samples", type=int, default=4, help="k samples per problem")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = greedy, 1 sample)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    p.add_argument("--max-new-tokens", type=int, default=64, help="longest response in tokens")
    p.add_argument("--batch-size", type=int, default=64, help="rows (problem x sample) per generation call")
    p.add_argument("--template", default="plain", help="prompt template of llm.data.TEMPLATES")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--data-seed", type=int, default=0, help="split seed of synthetic tasks")
    p.add_argument("--difficulty", type=int, default=None, help="synthetic task difficulty 1..8")
    p.add_argument("--prompt-field", default="", help="dataset row field of the question or chat messages (dotted)")
    p.add_argument("--answer-field", default="", help="dataset row field of the reference answer (dotted)")
    p.add_argument("--out", default=None, help="also write the result as JSON to this file")
    return p


def eval_main(argv: list[str] | None = None) -> int:
    """Command line: prints the result as JSON; a user error prints one line and returns 2."""
    args = _parser().parse_args(argv)
    try:
        result = evaluate_cli(EvalConfig(
            model_path=args.model, task=args.task, n=args.n, samples=args.samples, temperature=args.temperature,
            max_new_tokens=args.max_new_tokens, template=args.template, seed=args.seed, top_p=args.top_p,
            batch_size=args.batch_size, tokenizer_path=args.tokenizer, data_seed=args.data_seed,
            difficulty=args.difficulty, prompt_field=args.prompt_field, answer_field=args.answer_field))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(f"{result['task']}: {result['list_golds']} of {result['n_problems']} golds are lists (comma-separated; "
          f"graded as lists: as sets, tuples in order)", file=sys.stderr)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(eval_main())

"""Supervised warm start: teach a freshly built model the task's answer format before RL, cached on disk.

A randomly initialised model never writes ``#### n`` with the right n, so every GRPO group has reward 0 and
zero advantage: RL cannot start. As in the SFT stage before RL of DeepSeekMath (arXiv 2402.03300, Sec. 4) and
the AEnt paper's use of instruction-tuned bases (arXiv 2509.03493), we first fit the worked solutions with
the token-mean cross-entropy on completion tokens only (prompt tokens are not scored),
$\\mathcal{L} = -\\frac{1}{\\sum_i |y_i|} \\sum_i \\sum_t \\log \\pi_\\theta(y_{i,t} \\mid x_i, y_{i,<t})$,
where $y_i$ = template target + EOS. AdamW, linear warm-up then cosine decay, batches drawn with replacement
from a seeded generator.

The result is cached in ``cache_dir/warm-<key>/state.pt``; the key is a SHA-256 of everything that decides the
result: the warm-start config, the model's config and initial weights, the tokenizer's vocabulary and the
training texts. The same inputs reuse the cached weights without training; any change retrains.

The fit runs on one CPU thread whatever the process's thread count: CPU kernels sum in an order that depends on
the number of threads, and over hundreds of steps at a large learning rate those roundings grow into a visibly
different policy (on the CPU default, a starting entropy of 0.28 instead of 0.33 nats with 2 threads). The
thread count is not part of the cache key, so the result must not depend on it.

:func:`bare_answer_stage` is an optional second supervised stage after it (config fields ``model.bare_stage_*``):
the same fit on bare answers only (``#### n``, a share of them wrong), at a small learning rate for a few steps.
It suppresses the worked style to a small rate q0 while the skill of writing worked lines survives, so the
rewarded behaviour is rarely sampled: the exploration trap of the AEnt paper's Figure 1 (arXiv 2509.03493), with q0
in the role of the number of optimal actions m (llm/studies/exploration_setting.py). Its cache key chains on the
first stage through the starting weights, which are part of every key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from llm.data.problem import Problem
from llm.data.templates import TEMPLATES, format_prompt, format_target

__all__ = ["WarmStartConfig", "bare_answer_stage", "sft_batch", "sft_loss", "warm_start", "warm_start_key"]

_FORMAT_VERSION = 2  # 2: trained on one thread (results no longer depend on the thread count)


SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules of a supervised stage."""


@dataclass(frozen=True)
class WarmStartConfig:
    """Settings of the supervised warm start.

    Attributes:
        steps: optimizer steps (>= 0; 0 = no warm start).
        lr: peak AdamW learning rate (> 0).
        batch_size: sequences per step (>= 1).
        warmup: linear LR warm-up steps (>= 0), then cosine decay to 10% of `lr`.
        weight_decay: AdamW weight decay (>= 0).
        seed: seed of the batch sampler.
        template: prompt template (a key of :data:`llm.data.TEMPLATES`).
        schedule: ``"cosine"`` (after the warm-up, cosine decay to 10% of `lr`) or ``"constant"`` (`lr` after the
            warm-up; a stage stopped after any number of steps is then the same as one planned that long, which the
            exploration study's level search relies on).
    """

    steps: int = 300
    lr: float = 3e-3
    batch_size: int = 32
    warmup: int = 20
    weight_decay: float = 0.0
    seed: int = 0
    template: str = "plain"
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        for name, low in (("steps", 0), ("batch_size", 1), ("warmup", 0), ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"WarmStartConfig.{name} must be an integer >= {low}, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"WarmStartConfig.lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"WarmStartConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.template not in TEMPLATES:
            raise ValueError(f"WarmStartConfig.template must be one of {sorted(TEMPLATES)}, got {self.template!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"WarmStartConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")


def _pairs(tokenizer, problems: Sequence[Problem], template: str) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids + EOS) per problem, tokenized separately as generation sees them."""
    prompts = [format_prompt(p, template, tokenizer) for p in problems]
    targets = [format_target(p, template) for p in problems]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    t_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    eos = int(tokenizer.eos_token_id)
    return [(list(p), list(t) + [eos]) for p, t in zip(p_ids, t_ids)]


def sft_batch(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
    width = max(len(p) + len(t) for p, t in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    for i, (p, t) in enumerate(pairs):
        row = torch.tensor(p + t, dtype=torch.long)
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        labels[i, len(p) : len(row)] = row[len(p) :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sft_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Token-mean cross-entropy of the labelled (completion) tokens; labels at position t score logits at t-1."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    labels = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def warm_start_key(model, tokenizer, problems: Sequence[Problem], cfg: WarmStartConfig) -> str:
    """SHA-256 (16 hex digits) of the warm-start config, model config + initial weights, vocabulary and texts."""
    h = hashlib.sha256()
    fields = asdict(cfg)
    if fields["schedule"] == "cosine":  # the original schedule: keys written before the field existed stay valid
        del fields["schedule"]
    head = {"cfg": fields, "model": model.config.to_dict(), "format": _FORMAT_VERSION}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for p in problems:
        for text in (format_prompt(p, cfg.template, tokenizer), format_target(p, cfg.template)):
            h.update(len(text).to_bytes(8, "little"))
            h.update(text.encode())
    return h.hexdigest()[:16]


def _train(model, tokenizer, problems, cfg: WarmStartConfig, progress: bool, on_step=None) -> list[float]:
    pairs = _pairs(tokenizer, problems, cfg.template)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        if cfg.schedule == "constant":
            return 1.0
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    device = next(model.parameters()).device
    steps = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="warm start", leave=False)
    model.train()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        losses = _fit(model, tokenizer, pairs, cfg, opt, sched, gen, device, steps, progress, on_step)
    finally:
        torch.set_num_threads(threads)
    # Leave no gradient behind: the first RL update would otherwise apply the last SFT step's gradient again.
    opt.zero_grad(set_to_none=True)
    model.eval()
    return losses


def _fit(model, tokenizer, pairs, cfg, opt, sched, gen, device, steps, progress, on_step=None) -> list[float]:
    losses = []
    for done in steps:
        rows = torch.randint(len(pairs), (cfg.batch_size,), generator=gen).tolist()
        batch = {k: v.to(device) for k, v in sft_batch([pairs[r] for r in rows], int(tokenizer.pad_token_id)).items()}
        loss = sft_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress:
            steps.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_step is not None and on_step(done + 1, model):
            break
    return losses


def warm_start(
    model,
    tokenizer,
    problems: Sequence[Problem],
    cfg: WarmStartConfig = WarmStartConfig(),
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    on_step=None,
) -> dict:
    """Fit `model` in place to the problems' worked solutions, or load the cached result of the same fit.

    Args:
        model: a freshly built causal LM (its current weights are part of the cache key).
        tokenizer: its tokenizer (pad and eos ids).
        problems: training problems; each needs a ``solution`` (else its ``#### answer`` alone is the target).
        cfg: warm-start settings.
        cache_dir: folder of ``warm-<key>`` entries; None = train without caching.
        progress: show a tqdm bar.
        on_step: optional ``on_step(steps_done, model) -> bool`` called after every optimizer step; True stops the
            fit there. Only without ``cache_dir`` (a stopped fit is not the planned one, so it is never cached).

    Returns:
        ``{"key", "cached", "steps", "loss_first", "loss_last", "path"}`` (path None when not cached; ``steps`` is
        the number of steps taken).
    """
    if on_step is not None and cache_dir is not None:
        raise ValueError("warm_start: on_step may stop the fit early, so it cannot be combined with cache_dir")
    if not problems:
        raise ValueError("warm_start: problems is empty; the warm start needs training problems")
    if cfg.steps == 0:
        return {"key": None, "cached": False, "steps": 0, "loss_first": None, "loss_last": None, "path": None}
    key = warm_start_key(model, tokenizer, problems, cfg)
    target = Path(cache_dir) / f"warm-{key}" if cache_dir is not None else None
    if target is not None and (target / "state.pt").is_file():
        model.load_state_dict(torch.load(target / "state.pt", map_location="cpu", weights_only=True))
        info = json.loads((target / "info.json").read_text())
        model.eval()
        return {**info, "cached": True, "path": str(target)}
    losses = _train(model, tokenizer, problems, cfg, progress, on_step)
    info = {"key": key, "cached": False, "steps": len(losses), "loss_first": losses[0], "loss_last": losses[-1]}
    if target is None:
        return {**info, "path": None}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".warm-{key}.tmp-", dir=target.parent))
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "state.pt")
    (tmp / "info.json").write_text(json.dumps({**info, "config": asdict(cfg)}, indent=1))
    try:
        os.replace(tmp, target)  # atomic; if another process won the race its identical result stays
    except OSError:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return {**info, "path": str(target)}


BARE_SEED_OFFSET = 1000
"""The bare stage draws which answers are wrong with seed ``data.seed + BARE_SEED_OFFSET``, independent of the
first stage's draw of styles (llm.data.answer_only hashes the seed with the question)."""


def bare_answer_stage(model, tokenizer, problems: Sequence[Problem], *, steps: int, lr: float, wrong: float,
                      seed: int, template: str = "plain", cache_dir: str | os.PathLike | None = None,
                      progress: bool = False, schedule: str = "cosine", on_step=None) -> dict:
    """Second supervised stage: fit ``model`` (already warm-started) on bare answers only, cached like the first.

    Every problem's target becomes ``#### n`` (llm.data.answer_only with frac 1); a seeded share ``wrong`` of the
    n are off by 1-3. AdamW, batch 32, no warm-up, cosine decay to 10% of ``lr`` (or constant ``lr``). A few steps at a small ``lr``
    lower the probability of starting a worked line to a small q0; the warm start's own lr (3e-3) destroys the
    skill itself within 25 steps (the probe in issue 23), so the stage is short and gentle by design.

    Args:
        model: the warm-started model (its weights are part of the cache key, so the key chains on stage 1).
        tokenizer: its tokenizer.
        problems: training problems (their reference ``answer`` is what the bare targets state, or miss).
        steps: optimizer steps (>= 1).
        lr: peak learning rate (> 0).
        wrong: share in [0, 1] of the bare answers that are wrong.
        seed: the warm-start seed (``data.seed``); the batch sampler uses it, the wrong answers use it + 1000.
        template: prompt template.
        cache_dir: folder of ``warm-<key>`` entries; None = no caching.
        progress: tqdm bar.
        schedule: ``"cosine"`` or ``"constant"`` (:class:`WarmStartConfig`).
        on_step: as :func:`warm_start` (stop early; no caching).

    Returns:
        As :func:`warm_start`.
    """
    from llm.data import answer_only

    if not 0.0 <= wrong <= 1.0:
        raise ValueError(f"bare_answer_stage: wrong must be in [0, 1], got {wrong!r}")
    bare = answer_only(list(problems), 1.0, seed=seed + BARE_SEED_OFFSET, wrong=wrong)
    cfg = WarmStartConfig(steps=steps, lr=lr, warmup=0, seed=seed, template=template, schedule=schedule)
    return warm_start(model, tokenizer, bare, cfg, cache_dir=cache_dir, progress=progress, on_step=on_step)


def main(argv: list[str] | None = None) -> int:
    """``python -m llm.warmstart``: build tokenizer + model on a synthetic task, warm-start, report held-out accuracy.

    Prints one JSON object (parameters, CPU seconds, losses, greedy accuracy, mean@4 and pass@4 at T = 1); the
    numbers quoted in docs/llm/model.md come from this command.
    """
    import argparse
    import time

    from llm.data import make_task
    from llm.evaluate import evaluate
    from llm.model import ModelConfig, build_model, count_parameters
    from llm.tokenizer import build_tokenizer

    p = argparse.ArgumentParser(prog="python -m llm.warmstart", description=main.__doc__.split("\n")[0])
    p.add_argument("--task", default="arithmetic")
    p.add_argument("--difficulty", type=int, default=1)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=64)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--cache-dir", default=None, help="reuse / store the warm-started weights here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train, test = make_task(args.task, args.n_train, args.n_test, difficulty=args.difficulty)
    tok = build_tokenizer([t for q in train for t in (q.question, q.solution)], args.vocab_size)
    model = build_model(ModelConfig(hidden=args.hidden, layers=args.layers), tok)
    cpu = time.process_time()
    info = warm_start(model, tok, train, WarmStartConfig(steps=args.steps, lr=args.lr), cache_dir=args.cache_dir,
                      progress=True)
    cpu = time.process_time() - cpu
    sampled = evaluate(model, tok, test, samples=4, temperature=1.0, max_new_tokens=args.max_new_tokens)
    greedy = evaluate(model, tok, test, samples=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    print(json.dumps({"params": count_parameters(model), "vocab": len(tok), "warm_start_cpu_s": round(cpu, 1),
                      **{k: info[k] for k in ("cached", "loss_first", "loss_last")},
                      "greedy_accuracy": greedy["accuracy"], "mean@4": sampled["mean@4"],
                      "pass@4": sampled["pass@4"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

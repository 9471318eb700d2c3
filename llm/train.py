"""GRPO with entropy control (accelerate + transformers): the whole training loop, top to bottom.

Variant: GRPO (DeepSeekMath, arXiv 2402.03300) with 0/1 outcome rewards, group-normalised advantages
(``adv_scale=std``; Dr. GRPO with ``none``), the PPO clipped surrogate on token log-probs, no KL penalty and no
reference model (as in the AEnt paper, arXiv 2509.03493). Every entropy control (none, fixed full / clamped
bonus, AEnt, SAC, threshold, EntroPIC, positive re-weighting, Clip-Cov, KL-Cov, top-entropy masking, asymmetric
clipping) is one ``aent.EntropyControl`` selected by ``config.entropy``; nothing about entropy lives here.

One global step: prompts -> G rollouts each -> rewards -> group advantages -> ``ppo_epochs`` passes of
mini-batch updates (micro-batches with gradient accumulation, grad clipping, LR warm-up/schedule) ->
``EntropyControl.step_end`` once -> metrics -> periodic held-out eval -> checkpoint.

Departures from the paper's verl setup, and why:
- ``old_logp`` is the log-prob the sampler drew each token with (same temperature, KV-cache forward) unless
  ``recompute_old_logp`` (default: on in bf16 / fp16) replaces it, as verl does, by a no-grad forward of the
  update's own code path; in fp32 the two agree to ~1e-6 (tests/llm/test_generate.py), in half precision the
  incremental decoding kernels can accumulate differently, and the first mini-batch would not start at ratio 1.
- A mini-batch loss is the exact token mean (or sequence mean, per ``entropy.loss_agg``) over the whole global
  mini-batch: each micro-batch loss is weighted by its share of tokens, and all processes see the same global
  rollout batch and split each mini-batch the same way, so neither micro-batching nor the number of processes
  changes the update. (Token selections of clip_cov / kl_cov / top_entropy run per micro-batch.)
- Prompts and sampling uniforms are functions of (seed, step, prompt), so resuming needs no data-loader state
  and the samples do not depend on the number of processes.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from aent import EntropyConfig, EntropyControl, group_advantages, token_logprobs, zero_adv_frac
from llm.checkpoint import resume_checkpoint, save_checkpoint
from llm.config import TrainConfig
from llm.generate import generate, group_uniforms
from llm.metrics import MetricsLogger, StepTimer
from llm.policy import build_policy, completion_logits
from llm.preempt import Preempted, StopGuard
from llm.provenance import write_run_config
from llm.runfolder import prepare_run_folder


def mix_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy SeedSequence), e.g. (seed, step, prompt)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def lr_lambda(cfg: TrainConfig, total_updates: int):
    """Multiplier of the peak LR at optimizer update u: linear warm-up, then constant / linear / cosine decay."""
    o = cfg.optim

    def fn(u: int) -> float:
        if u < o.warmup_steps:
            return (u + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        frac = min(1.0, (u - o.warmup_steps) / max(1, total_updates - o.warmup_steps))
        decay = 1.0 - frac if o.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))
        return o.min_lr_ratio + (1.0 - o.min_lr_ratio) * decay

    return fn


def step_prompts(seed: int, step: int, n_problems: int, per_step: int) -> list[int]:
    """Problem indices of a global step: epochs of seeded permutations, read in order (no loader state)."""
    out, perms = [], {}
    for pos in range((step - 1) * per_step, step * per_step):
        epoch, i = divmod(pos, n_problems)
        if epoch not in perms:
            g = torch.Generator().manual_seed(mix_seed(seed, epoch, 7))
            perms[epoch] = torch.randperm(n_problems, generator=g)
        out.append(int(perms[epoch][i]))
    return out


# ------------------------------------------------------------------------------------------ problems, rewards
def load_problems(cfg: TrainConfig) -> tuple[list, list]:
    """(train, held-out) problems: a synthetic task's two disjoint splits, or dataset specs of
    ``llm.data.load_problems`` (benchmark names, files)."""
    import llm.data as data

    d = cfg.data
    difficulty = d.difficulty or None
    fields = {"prompt_field": d.prompt_field, "answer_field": d.answer_field}  # dataset specs only
    name = data.TASK_ALIASES.get(d.task, d.task)
    if name in data.TASKS:
        train_set, test_set = data.make_task(name, d.n_train, d.n_test, seed=d.seed, difficulty=difficulty)
        if d.answer_only_frac:
            train_set = data.answer_only(train_set, d.answer_only_frac, seed=d.seed, wrong=d.answer_only_wrong)
    else:
        train_set, test_set = data.load_problems(d.task, n=d.n_train, **fields), []
    if d.eval_task:
        ev = data.TASK_ALIASES.get(d.eval_task, d.eval_task)
        if ev in data.TASKS and ev != name:
            test_set = data.load_problems(ev, split="test", n=max(1, d.n_test), seed=d.seed, difficulty=difficulty)
        elif ev not in data.TASKS:
            test_set = data.load_problems(d.eval_task, n=d.n_test, **fields)
    return train_set, test_set[: d.n_test]


def make_reward_fn(spec: str):
    """The reward function named by config field `reward`: f(completions, problems) -> list of floats."""
    from llm.rewards import correctness_reward, score_problems

    if spec == "task":
        return score_problems
    if spec == "correctness":
        return lambda completions, problems: correctness_reward(completions, [p.answer for p in problems])
    if ":" not in spec:
        raise ValueError(f"config field `reward` must be task, correctness or module:function; got {spec!r}")
    module, name = spec.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"config field `reward` = {spec!r}: cannot import it ({err})") from None
    return lambda completions, problems: fn(completions, [p.answer for p in problems])


def score(reward_fn, spec: str, completions: list[str], problems: list, step: int) -> list[float]:
    """Call the reward function; a failure names the step and the sample (index, problem, completion)."""
    try:
        out = [float(r) for r in reward_fn(completions, problems)]
        if len(out) != len(completions):
            raise ValueError(f"returned {len(out)} rewards for {len(completions)} completions")
    except Exception as err:
        bad = _first_failing(reward_fn, completions, problems)
        where = "" if bad is None else (f" on sample {bad} (question {problems[bad].question[:60]!r}, "
                                        f"completion {completions[bad][:60]!r})")
        raise ValueError(f"reward function {spec!r} failed at step {step}{where}: {type(err).__name__}: "
                         f"{err}") from err
    bad = [i for i, r in enumerate(out) if not math.isfinite(r)]
    if bad:
        raise ValueError(f"reward function {spec!r} returned a non-finite reward at step {step} for sample "
                         f"{bad[0]} (completion {completions[bad[0]][:60]!r}); rewards must be finite numbers")
    return out


def _first_failing(reward_fn, completions, problems) -> int | None:
    for i, (c, p) in enumerate(zip(completions, problems)):
        try:
            reward_fn([c], [p])
        except Exception:
            return i
    return None


# ------------------------------------------------------------------------------------------------- rollouts
def sampling_model(accelerator, model):
    """The module to sample from: unwrapped under DDP (no collectives), the wrapper under FSDP / DeepSpeed
    (whose forward gathers the sharded parameters)."""
    kind = str(accelerator.distributed_type)
    return model if ("FSDP" in kind or "DEEPSPEED" in kind) else accelerator.unwrap_model(model)


def rollout(cfg: TrainConfig, model, tokenizer, problems: list, seeds: list[int]) -> dict:
    """G samples per problem (prompt-major), with per-row uniforms drawn from each prompt's seed."""
    r = cfg.rollout
    from llm.data import format_prompts

    s = generate(model, tokenizer, format_prompts(problems, cfg.data.template, tokenizer),
                 n=r.group_size, temperature=r.temperature, top_p=r.top_p, max_new_tokens=r.max_new_tokens,
                 batch_size=r.generate_batch_size or None, max_prompt_len=cfg.data.max_prompt_len,
                 uniforms=group_uniforms(seeds, r.group_size, r.max_new_tokens))
    return {"prompt_ids": s.prompt_ids, "prompt_mask": s.prompt_mask, "completion_ids": s.completion_ids,
            "completion_mask": s.completion_mask, "old_logp": s.logp, "texts": s.texts}


def gather_rollout(accelerator, local: dict, pad_id: int) -> dict:
    """Every process's rollout tensors, concatenated in rank order (= prompt order) on every process."""
    if accelerator.num_processes == 1:
        return local
    out = {}
    for key, value in local.items():
        if not isinstance(value, torch.Tensor):
            continue
        v = value.to(accelerator.device)
        if v.ndim == 2:
            pad = pad_id if key.endswith("_ids") else 0
            v = accelerator.pad_across_processes(v, dim=1, pad_index=pad, pad_first=key.startswith("prompt"))
        out[key] = accelerator.gather(v).cpu()
    return out


def evaluate_heldout(cfg: TrainConfig, model, tokenizer, problems: list) -> dict:
    """Greedy accuracy and mean@k at eval_temperature on the held-out problems (llm.evaluate.evaluate).

    Every process evaluates the whole set with the same seeds (identical results; under FSDP / ZeRO-3 all
    processes must run the same forwards anyway)."""
    from llm.evaluate import evaluate

    kw = {"max_new_tokens": cfg.rollout.max_new_tokens, "template": cfg.data.template, "seed": cfg.seed,
          "batch_size": cfg.rollout.generate_batch_size or 256}
    greedy = evaluate(model, tokenizer, problems, samples=1, temperature=0.0, **kw)
    k = cfg.eval_samples
    sampled = evaluate(model, tokenizer, problems, samples=k, temperature=cfg.eval_temperature,
                       top_p=cfg.rollout.top_p, **kw)
    return {"eval_accuracy": greedy["accuracy"], f"eval_mean_at_{k}": sampled["accuracy"],
            f"eval_pass_at_{k}": sampled[f"pass@{k}"], "eval_response_len": sampled["response_len"]}


# --------------------------------------------------------------------------------------------------- update
def micro_slices(batch: dict, rows: torch.Tensor) -> dict:
    """The rows of a micro-batch with the padding columns that no row uses cut away."""
    p_mask, c_mask = batch["prompt_mask"][rows], batch["completion_mask"][rows]
    first = int((p_mask.sum(0) > 0).nonzero()[0]) if p_mask.any() else 0
    last = max(1, int(c_mask.sum(1).max()))
    return {"prompt_ids": batch["prompt_ids"][rows, first:], "prompt_mask": p_mask[:, first:],
            "completion_ids": batch["completion_ids"][rows, :last], "completion_mask": c_mask[:, :last],
            "old_logp": batch["old_logp"][rows, :last]}


def epoch_micro_batches(cfg, step: int, epoch: int, n: int, world: int, rank: int) -> list:
    """One PPO epoch's mini-batches: (all rows of the mini-batch, this process's micro-batches of rows)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(cfg.seed, step, epoch, 11)))
    m = cfg.mini_batch
    out = []
    for k in range(n // m):
        idx = perm[k * m:(k + 1) * m]
        mine = idx[rank * m // world:(rank + 1) * m // world]
        out.append((idx, list(mine.split(cfg.optim.micro_batch_size))))
    return out


def recompute_old_logp(cfg, step, accelerator, model, batch) -> None:
    """Replace ``batch["old_logp"]`` by a no-grad forward of the update's own code path (verl's compute_log_prob).

    Same micro-batches as the update's first epoch, same column trimming, autocast, train mode and
    ``aent.token_logprobs`` call, so the first mini-batch starts at ratio exactly 1. Each process computes its
    share of the rows; a sum over processes gives every process the whole (N, Tc) tensor.
    """
    dev, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index
    n = batch["completion_ids"].shape[0]
    out = torch.zeros(batch["old_logp"].shape, dtype=torch.float32)  # (N, Tc)
    model.train()
    with torch.no_grad():
        for _, micros in epoch_micro_batches(cfg, step, 0, n, world, rank):
            for rows in micros:
                mb = {key: v.to(dev) for key, v in micro_slices(batch, rows).items()}
                with accelerator.autocast():
                    logits = completion_logits(model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"],
                                               mb["completion_mask"])  # (b, Tc', V)
                    lp = token_logprobs(logits, mb["completion_ids"], cfg.rollout.temperature,
                                        chunk_size=cfg.entropy.chunk_size)  # (b, Tc')
                out[rows, :lp.shape[1]] = (lp * mb["completion_mask"]).float().cpu()
    if world > 1:
        out = accelerator.reduce(out.to(dev), "sum").cpu()
    batch["old_logp"] = out


def run_entropy_config(cfg: TrainConfig) -> EntropyConfig:
    """The run's entropy config: Dr. GRPO's constant normaliser defaults to the generation budget
    (``rollout.max_new_tokens``), not each micro-batch's trimmed length."""
    if cfg.entropy.norm_const is not None:
        return cfg.entropy
    return cfg.entropy.replace(norm_const=float(cfg.rollout.max_new_tokens))


def ppo_update(cfg, step, accelerator, model, optimizer, scheduler, control, batch, adv, log) -> dict:
    """``ppo_epochs`` passes of mini-batch updates over the global rollout batch; returns token-mean metrics.

    Every process holds the whole global batch; mini-batch k of an epoch is the same seeded set of rows on
    all processes, and process r takes the r-th contiguous share of it. Micro-batch losses are scaled by their
    share of the mini-batch's tokens (token-mean aggregation) or sequences, times the number of processes
    (DDP averages gradients), so the accumulated gradient is that of one loss over the whole mini-batch.
    """
    dev = accelerator.device
    n, m_global = batch["completion_ids"].shape[0], cfg.mini_batch
    world, rank = accelerator.num_processes, accelerator.process_index
    token_mean = cfg.entropy.loss_agg == "token-mean"
    mask = batch["completion_mask"].float()
    sums: dict[str, float] = {}
    weight_sum, updates, skipped, norms = 0.0, 0, 0, []
    model.train()
    for epoch in range(cfg.optim.ppo_epochs):
        for idx, micros in epoch_micro_batches(cfg, step, epoch, n, world, rank):
            total = float(mask[idx].sum()) if token_mean else float(m_global)
            bad = False
            for rows in micros:
                mb = {key: v.to(dev) for key, v in micro_slices(batch, rows).items()}
                # accumulate(): no gradient all-reduce (DDP) / no optimizer step (DeepSpeed) until the last micro.
                with accelerator.accumulate(model), accelerator.autocast():
                    logits = completion_logits(model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"],
                                               mb["completion_mask"])
                    out = control.loss(logits=logits, actions=mb["completion_ids"], old_logp=mb["old_logp"],
                                       adv=adv[rows].to(dev), mask=mb["completion_mask"],
                                       temperature=cfg.rollout.temperature)
                    share = float(mb["completion_mask"].sum()) if token_mean else float(len(rows))
                    finite = bool(torch.isfinite(out.loss.detach()))
                    # A non-finite loss must not reach the gradients (or the other processes' all-reduce).
                    loss = out.loss if finite else out.loss.nan_to_num(0.0, 0.0, 0.0) * 0.0
                    # accelerate / DeepSpeed divide by the accumulation steps; the share weighting is exact.
                    gas = accelerator.gradient_accumulation_steps
                    accelerator.backward(loss * (share / max(total, 1.0) * world * gas))
                bad = bad or not finite
                tokens = float(mb["completion_mask"].sum())
                for key, v in out.metrics.items():
                    sums[key] = sums.get(key, 0.0) + tokens * float(v)
                weight_sum += tokens
            bad_any = float(accelerator.reduce(torch.tensor([float(bad)], device=dev), "sum")[0]) > 0
            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            norm = float(norm) if norm is not None else 0.0  # DeepSpeed clips inside its step and returns None
            if bad_any or not math.isfinite(norm):
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                msg = f"step {step}: non-finite loss or gradient (grad_norm={norm:.3g}); optimizer update skipped"
                log.write(f"warning: {msg}")
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                continue
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            updates += 1
            norms.append(norm)
    # Token-weighted means over every micro-batch of every process (non-finite values stay NaN).
    keys = sorted(sums)
    vec = torch.tensor([sums[k] for k in keys] + [weight_sum], dtype=torch.float64, device=dev)
    vec = accelerator.reduce(vec, "sum")
    out = {k: float(vec[i] / max(float(vec[-1]), 1.0)) for i, k in enumerate(keys)}
    out.update(grad_norm=float(np.mean(norms)) if norms else float("nan"), updates=updates, skipped_updates=skipped,
               lr=float(scheduler.get_last_lr()[0]))
    return out


# --------------------------------------------------------------------------------------------- checkpoints
def params_finite(accelerator, model) -> bool:
    """True when every parameter of every process is finite."""
    bad = sum(int(not bool(torch.isfinite(p).all())) for p in model.parameters())
    return float(accelerator.reduce(torch.tensor([float(bad)], device=accelerator.device), "sum")[0]) == 0


def save_final(accelerator, model, tokenizer, out_dir: Path) -> None:
    """Write output_dir/final with save_pretrained (full weights even under FSDP / ZeRO-3), atomically."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the run's own progress bar the only one
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        tmp = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state)
        tokenizer.save_pretrained(tmp)
        old = out_dir.with_name(f".old-{out_dir.name}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


# ------------------------------------------------------------------------------------------------ the loop
def setup(cfg: TrainConfig):
    """Accelerator, problems, reward function, prepared model / optimizer / scheduler, entropy control."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    # step_scheduler_with_optimizer=False: accelerate would otherwise step the LR schedule once per process.
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, step_scheduler_with_optimizer=False)
    world = accelerator.num_processes
    if cfg.rollout.prompts_per_step % world or cfg.mini_batch % world:
        raise ValueError(f"config fields `rollout.prompts_per_step` ({cfg.rollout.prompts_per_step}) and "
                         f"`optim.mini_batch_size` ({cfg.mini_batch}) must be divisible by the {world} processes")
    n_micro = math.ceil(cfg.mini_batch // world / cfg.optim.micro_batch_size)
    ds = getattr(accelerator.state, "deepspeed_plugin", None)
    ds_gas = None if ds is None else ds.deepspeed_config.get("gradient_accumulation_steps")
    if ds is not None and ds_gas != n_micro:  # DeepSpeed scales and steps by its own config's value
        raise ValueError(f"the DeepSpeed config's gradient_accumulation_steps is {ds_gas}; set it to "
                         f"optim.mini_batch_size / (processes x optim.micro_batch_size) = {n_micro}")
    accelerator.gradient_accumulation_steps = n_micro
    set_seed(cfg.seed)
    train_set, eval_set = load_problems(cfg)
    reward_fn = make_reward_fn(cfg.reward)
    with accelerator.main_process_first():  # one process builds the tokenizer / warm start, the others load it
        model, tokenizer = build_policy(cfg.model, cfg.data, train_set, cache_dir=cfg.cache_dir,
                                        progress=cfg.progress and accelerator.is_main_process)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen base weights under LoRA
            continue
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.optim.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.optim.lr,
                                  betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.adam_eps)
    total_updates = cfg.max_steps * cfg.optim.ppo_epochs * (cfg.global_batch // cfg.mini_batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_updates))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    return accelerator, train_set, eval_set, reward_fn, model, tokenizer, optimizer, scheduler


def train(cfg: TrainConfig) -> list[dict]:
    """Run GRPO training as configured; returns the metrics rows (one per global step)."""
    # The run folder is checked (and with overwrite cleared) before minutes go into the model and warm start.
    prepare_run_folder(cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                       main_process=os.environ.get("RANK", "0") == "0")
    accelerator, train_set, eval_set, reward_fn, model, tokenizer, optimizer, scheduler = setup(cfg)
    if not train_set:
        raise ValueError(f"data.task {cfg.data.task!r} gave no training problems (data.n_train={cfg.data.n_train})")
    control = EntropyControl(run_entropy_config(cfg))
    out_dir = Path(cfg.output_dir)
    start, history = 0, []
    state = resume_checkpoint(accelerator, out_dir, control=control, config=cfg.to_dict()) if cfg.resume else None
    if cfg.resume and state is None and accelerator.is_main_process:
        print(f"resume=true but no checkpoint in {out_dir}/checkpoints; starting from step 0", flush=True)
    if state is not None:
        start, history = int(state["step"]), list(state["metrics"])
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        env = write_run_config(cfg, out_dir / "config.yaml")  # config + library versions + grader path
        if "NO symbolic stage" in env["grader"]:
            print(f"warning: grader: {env['grader']}", flush=True)
    log = MetricsLogger(out_dir, enabled=accelerator.is_main_process, total_steps=cfg.max_steps, start_step=start,
                        tensorboard=False, report_to=cfg.trackers, config=cfg.to_dict(), progress=cfg.progress)
    timer, saved_at, state_step = StepTimer(), start, start  # state_step: the step the weights belong to
    if cfg.eval_every and eval_set and start == 0:  # the starting point (e.g. the warm-started model)
        init = evaluate_heldout(cfg, sampling_model(accelerator, model), tokenizer, eval_set)
        if accelerator.is_main_process:
            (out_dir / "initial_eval.json").write_text(json.dumps(init) + "\n")
            log.write(f"initial held-out eval: {init}")
    G, P, world = cfg.rollout.group_size, cfg.rollout.prompts_per_step, accelerator.num_processes
    mine = list(range(P))[accelerator.process_index * P // world:(accelerator.process_index + 1) * P // world]

    guard = StopGuard(cfg.save_every_minutes)  # SIGTERM / SIGUSR1 and the timed checkpoints (llm.preempt)

    def checkpoint(step: int) -> None:
        nonlocal saved_at
        save_checkpoint(accelerator, out_dir, step, control=control, metrics=history, config=cfg.to_dict(),
                        keep=cfg.keep_checkpoints)
        saved_at = step
        guard.saved()

    try:
        guard.__enter__()
        for step in range(start + 1, cfg.max_steps + 1):
            timer.reset()
            # 1. Prompts of this step (a function of seed and step); this process takes a contiguous share.
            order = step_prompts(cfg.seed, step, len(train_set), P)
            problems = [train_set[order[j]] for j in mine]
            # 2. Rollouts: G samples per prompt from the current policy.
            with timer("generate"), accelerator.autocast():  # same precision as the update's forward
                local = rollout(cfg, sampling_model(accelerator, model), tokenizer, problems,
                                [mix_seed(cfg.seed, step, j, 3) for j in mine])
            # 3. Rewards (each process scores its own samples), then the global batch on every process.
            with timer("reward"):
                texts = local.pop("texts")
                rewards = score(reward_fn, cfg.reward, texts, [p for p in problems for _ in range(G)], step)
                local["reward"] = torch.tensor(rewards, dtype=torch.float32)
                batch = gather_rollout(accelerator, local, pad_id=int(tokenizer.pad_token_id))
                adv = group_advantages(batch["reward"], G, scale=cfg.adv_scale)
            if cfg.recomputes_old_logp:
                with timer("old_logp"):
                    recompute_old_logp(cfg, step, accelerator, model, batch)
            # 4. PPO updates; the entropy control adds its terms to every micro-batch loss.
            with timer("train"):
                state_step = -1  # mid-update: the weights belong to no completed step
                stats = ppo_update(cfg, step, accelerator, model, optimizer, scheduler, control, batch, adv, log)
                if not params_finite(accelerator, model):
                    raise FloatingPointError(f"model weights became non-finite at step {step}; the last good "
                                             f"checkpoint is step {saved_at} (lower optim.lr or grad_clip)")
                if stats["updates"] > 0 and all(math.isfinite(stats.get(k, math.nan))
                                                for k in ("entropy", "clamped_entropy")):
                    control.step_end({"entropy": stats["entropy"], "clamped_entropy": stats["clamped_entropy"]})
                state_step = step
            lengths = batch["completion_mask"].sum(1).float()
            row = {"step": step, "reward_mean": float(batch["reward"].mean()),
                   "accuracy": float((batch["reward"] >= 1.0).float().mean()),
                   "response_len": float(lengths.mean()), **stats, "num_processes": world, **timer.as_metrics()}
            row["zero_adv_frac"] = zero_adv_frac(adv, G)  # groups without policy gradient
            # 5. Held-out evaluation and checkpoints.
            if cfg.eval_every and eval_set and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                with timer("eval"):
                    row.update(evaluate_heldout(cfg, sampling_model(accelerator, model), tokenizer, eval_set))
                row["time_eval_s"] = timer.seconds["eval"]
            history.append(row)
            log.log(row)
            timed, signum = guard.poll(accelerator)
            if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or timed or signum:
                checkpoint(step)
            if signum:
                raise Preempted(signum, step)
    except BaseException as err:
        # Lose nothing: keep the last completed step (single process only: saving is collective and the other
        # processes may not have stopped), unless the weights went bad or already hold a later, unlogged update.
        done = history[-1]["step"] if history else 0
        if world == 1 and done > saved_at and state_step == done and not isinstance(err, FloatingPointError):
            if params_finite(accelerator, model):
                checkpoint(done)
                log.write(f"saved checkpoint of completed step {done} before stopping")
            else:
                log.write(f"model weights are not finite; no checkpoint written (last good: step {saved_at})")
        log.close()
        raise
    finally:
        guard.__exit__(None, None, None)
    save_final(accelerator, model, tokenizer, out_dir / "final")
    if cfg.model.lora_r and cfg.model.lora_merge:
        from llm.lora import save_merged

        save_merged(accelerator, model, tokenizer, out_dir / "final_merged")
    log.close()
    return history

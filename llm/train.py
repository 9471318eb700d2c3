"""GRPO with entropy control (accelerate + transformers): the whole training loop, top to bottom.

Variant: GRPO (DeepSeekMath, arXiv 2402.03300) with 0/1 outcome rewards, group-normalised advantages
(``adv_scale=std``; Dr. GRPO with ``none``), the PPO clipped surrogate on token log-probs, no KL penalty and no
reference model (as in the AEnt paper, arXiv 2509.03493). Every entropy control (none, fixed full / clamped
bonus, AEnt, SAC, threshold, EntroPIC, positive re-weighting, Clip-Cov, KL-Cov, top-entropy masking, asymmetric
clipping) is one ``aent.EntropyControl`` selected by ``config.entropy``; nothing about entropy lives here.

One global step (``_global_step``): prompts -> G rollouts each -> rewards -> group advantages -> ``ppo_epochs``
passes of mini-batch updates (:mod:`llm.update`) -> ``EntropyControl.step_end`` once -> metrics -> periodic
held-out eval; then :func:`train` logs and checkpoints. The run's objects travel as one :class:`llm.hooks.Run`.

Extension: ``train(cfg, hooks=[...])`` calls user hooks (:mod:`llm.hooks`) before the rollout, after it, before
and after the updates, on every held-out evaluation and on every checkpoint; the studies (``llm.studies``) add
their metrics that way. Nothing in the package replaces this module's functions at run time.

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

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from aent import EntropyConfig, EntropyControl, group_advantages, zero_adv_frac
from llm.checkpoint import resume_checkpoint, save_checkpoint
from llm.config import TrainConfig
from llm.final_weights import save_final
from llm.generate import generate, group_uniforms
from llm.hooks import Hooks, Run, StepState, call_hooks, check_hooks
from llm.metrics import MetricsLogger, StepTimer
from llm.policy import build_policy
from llm.preempt import Preempted, StopGuard
from llm.problems import load_problems, make_reward_fn, score
from llm.provenance import write_run_config
from llm.runfolder import prepare_run_folder
from llm.seeding import mix_seed
from llm.update import params_finite, ppo_update, recompute_old_logp

__all__ = ["evaluate_heldout", "gather_rollout", "lr_lambda", "rollout", "run_entropy_config", "sampling_model",
           "setup", "step_prompts", "train"]


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


def run_entropy_config(cfg: TrainConfig) -> EntropyConfig:
    """The run's entropy config: Dr. GRPO's constant normaliser defaults to the generation budget
    (``rollout.max_new_tokens``), not each micro-batch's trimmed length."""
    if cfg.entropy.norm_const is not None:
        return cfg.entropy
    return cfg.entropy.replace(norm_const=float(cfg.rollout.max_new_tokens))


def setup(cfg: TrainConfig) -> Run:
    """The run's objects: accelerator, problems, reward function, prepared model / optimizer / scheduler and the
    entropy control (``run.log`` and ``run.out_dir`` are set by :func:`train`)."""
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
    return Run(cfg=cfg, accelerator=accelerator, model=model, tokenizer=tokenizer, optimizer=optimizer,
               scheduler=scheduler, control=EntropyControl(run_entropy_config(cfg)), train_set=train_set,
               eval_set=eval_set, reward_fn=reward_fn, out_dir=Path(cfg.output_dir))


@dataclass
class _Progress:
    """What a stop needs to know: the metrics rows so far and two steps."""

    history: list[dict]
    saved_at: int
    """The last checkpointed step."""
    weights_step: int
    """The step the weights belong to (-1 mid-update: to no completed step)."""


def train(cfg: TrainConfig, *, hooks: Sequence[Hooks] | None = None) -> list[dict]:
    """Run GRPO training as configured; returns the metrics rows (one per global step).

    Args:
        cfg: the run's config.
        hooks: objects with any of the methods of :class:`llm.hooks.Hooks` (before_rollout, after_rollout,
            before_update, after_update, on_evaluation, on_checkpoint), called in order at those points of
            every global step with the run's objects (:class:`llm.hooks.Run`) and the step's
            (:class:`llm.hooks.StepState`). None: no hooks.
    """
    hooks = check_hooks(hooks)
    # The run folder is checked (and with overwrite cleared) before minutes go into the model and warm start.
    prepare_run_folder(cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                       main_process=os.environ.get("RANK", "0") == "0")
    run = setup(cfg)
    if not run.train_set:
        raise ValueError(f"data.task {cfg.data.task!r} gave no training problems (data.n_train={cfg.data.n_train})")
    start, history = _open_run(run)
    if cfg.eval_every and run.eval_set and start == 0:
        _initial_eval(run, hooks)
    progress = _Progress(history=history, saved_at=start, weights_step=start)
    with StopGuard(cfg.save_every_minutes) as guard:  # SIGTERM / SIGUSR1 and timed checkpoints (llm.preempt)
        try:
            for step in range(start + 1, cfg.max_steps + 1):
                row = _global_step(run, hooks, step, progress)
                progress.history.append(row)
                run.log.log(row)
                timed, signum = guard.poll(run.accelerator)
                if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or timed or signum:
                    _checkpoint(run, hooks, guard, progress, step)
                if signum:
                    raise Preempted(signum, step)
        except BaseException as err:
            _save_on_stop(run, hooks, guard, progress, err)
            run.log.close()
            raise
    save_final(run.accelerator, run.model, run.tokenizer, run.out_dir / "final")
    if cfg.model.lora_r and cfg.model.lora_merge:
        from llm.lora import save_merged

        save_merged(run.accelerator, run.model, run.tokenizer, run.out_dir / "final_merged")
    run.log.close()
    return progress.history


def _open_run(run: Run) -> tuple[int, list[dict]]:
    """(the last completed step, its metrics rows) from the run folder's checkpoint under ``resume``, else
    (0, []); writes config.yaml and opens the metrics log (``run.log``)."""
    cfg, accelerator, out_dir = run.cfg, run.accelerator, run.out_dir
    start, history = 0, []
    state = resume_checkpoint(accelerator, out_dir, control=run.control, config=cfg.to_dict()) if cfg.resume else None
    if cfg.resume and state is None and accelerator.is_main_process:
        print(f"resume=true but no checkpoint in {out_dir}/checkpoints; starting from step 0", flush=True)
    if state is not None:
        start, history = int(state["step"]), list(state["metrics"])
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        env = write_run_config(cfg, out_dir / "config.yaml")  # config + library versions + grader path
        if "NO symbolic stage" in env["grader"]:
            print(f"warning: grader: {env['grader']}", flush=True)
    run.log = MetricsLogger(out_dir, enabled=accelerator.is_main_process, total_steps=cfg.max_steps,
                            start_step=start, tensorboard=False, report_to=cfg.trackers, config=cfg.to_dict(),
                            progress=cfg.progress, rows=history if state is not None else None)
    return start, history


def _initial_eval(run: Run, hooks: list) -> None:
    """Evaluate the starting point (e.g. the warm-started model) into initial_eval.json."""
    st = StepState(step=0, eval=evaluate_heldout(run.cfg, sampling_model(run.accelerator, run.model),
                                                 run.tokenizer, run.eval_set))
    call_hooks(hooks, "on_evaluation", run, st)
    if run.accelerator.is_main_process:
        (run.out_dir / "initial_eval.json").write_text(json.dumps(st.eval) + "\n")
        run.log.write(f"initial held-out eval: {st.eval}")


def _global_step(run: Run, hooks: list, step: int, progress: _Progress) -> dict:
    """One global step: prompts, rollouts, rewards, advantages, PPO updates, entropy control; its metrics row
    (with the held-out evaluation when one is due)."""
    cfg, accelerator, timer = run.cfg, run.accelerator, StepTimer()
    G, P, world = cfg.rollout.group_size, cfg.rollout.prompts_per_step, accelerator.num_processes
    mine = range(accelerator.process_index * P // world, (accelerator.process_index + 1) * P // world)
    # 1. Prompts of this step (a function of seed and step); this process takes a contiguous share.
    st = StepState(step=step, prompts=step_prompts(cfg.seed, step, len(run.train_set), P))
    call_hooks(hooks, "before_rollout", run, st)
    problems = [run.train_set[st.prompts[j]] for j in mine]
    # 2. Rollouts: G samples per prompt from the current policy.
    with timer("generate"), accelerator.autocast():  # same precision as the update's forward
        local = rollout(cfg, sampling_model(accelerator, run.model), run.tokenizer, problems,
                        [mix_seed(cfg.seed, step, j, 3) for j in mine])
    # 3. Rewards (each process scores its own samples), then the global batch and advantages on every process.
    with timer("reward"):
        texts = local.pop("texts")
        rewards = score(run.reward_fn, cfg.reward, texts, [p for p in problems for _ in range(G)], step)
        local["reward"] = torch.tensor(rewards, dtype=torch.float32)  # (n_local,)
        st.batch = gather_rollout(accelerator, local, pad_id=int(run.tokenizer.pad_token_id))
        st.adv = group_advantages(st.batch["reward"], G, scale=cfg.adv_scale)  # (N,)
    call_hooks(hooks, "after_rollout", run, st)
    if cfg.recomputes_old_logp:
        with timer("old_logp"):
            recompute_old_logp(run, step, st.batch)
    call_hooks(hooks, "before_update", run, st)
    # 4. PPO updates; the entropy control adds its terms to every micro-batch loss, then steps once.
    with timer("train"):
        progress.weights_step = -1
        st.stats = ppo_update(run, step, st.batch, st.adv)
        if not params_finite(accelerator, run.model):
            raise FloatingPointError(f"model weights became non-finite at step {step}; the last good "
                                     f"checkpoint is step {progress.saved_at} (lower optim.lr or grad_clip)")
        signals = ("entropy", "clamped_entropy", "sampled_entropy")  # token means over the updates
        if st.stats["updates"] > 0 and all(math.isfinite(st.stats.get(k, math.nan)) for k in signals):
            run.control.step_end({k: st.stats[k] for k in signals})
        progress.weights_step = step
    call_hooks(hooks, "after_update", run, st)
    # 5. The metrics row, and the held-out evaluation when due.
    lengths = st.batch["completion_mask"].sum(1).float()  # (N,)
    row = {"step": step, "reward_mean": float(st.batch["reward"].mean()),
           "accuracy": float((st.batch["reward"] >= 1.0).float().mean()),
           "response_len": float(lengths.mean()), **st.stats, "num_processes": world, **timer.as_metrics()}
    row["zero_adv_frac"] = zero_adv_frac(st.adv, G)  # groups without policy gradient
    if cfg.eval_every and run.eval_set and (step % cfg.eval_every == 0 or step == cfg.max_steps):
        with timer("eval"):
            st.eval = evaluate_heldout(cfg, sampling_model(accelerator, run.model), run.tokenizer, run.eval_set)
        call_hooks(hooks, "on_evaluation", run, st)
        row.update(st.eval)
        row["time_eval_s"] = timer.seconds["eval"]
    return row


def _checkpoint(run: Run, hooks: list, guard: StopGuard, progress: _Progress, step: int) -> None:
    """Save a checkpoint of ``step`` (weights, optimizer, controller state, metrics) and call the hooks."""
    path = save_checkpoint(run.accelerator, run.out_dir, step, control=run.control, metrics=progress.history,
                           config=run.cfg.to_dict(), keep=run.cfg.keep_checkpoints)
    progress.saved_at = step
    guard.saved()
    call_hooks(hooks, "on_checkpoint", run, StepState(step=step, checkpoint=path))


def _save_on_stop(run: Run, hooks: list, guard: StopGuard, progress: _Progress, err: BaseException) -> None:
    """Lose nothing: checkpoint the last completed step (single process only: saving is collective and the other
    processes may not have stopped), unless the weights went bad or already hold a later, unlogged update."""
    done = progress.history[-1]["step"] if progress.history else 0
    if (run.accelerator.num_processes != 1 or done <= progress.saved_at or progress.weights_step != done
            or isinstance(err, FloatingPointError)):
        return
    if params_finite(run.accelerator, run.model):
        _checkpoint(run, hooks, guard, progress, done)
        run.log.write(f"saved checkpoint of completed step {done} before stopping")
    else:
        run.log.write(f"model weights are not finite; no checkpoint written (last good: step {progress.saved_at})")

"""Speed of one GRPO step: this project's trainer vs TRL's ``GRPOTrainer``, on the same CPU, alternated.

Equal work in both (said again in docs/benchmarks/vs_trl.md):
- the same model: the project's tiny Qwen2-style model (llm.model.build_model, random init, seed 0) and BPE
  tokenizer, written once with ``save_pretrained`` and loaded from that folder by both trainers;
- the same prompts source (synthetic arithmetic, difficulty 1, same prompt strings), P prompts x G samples per
  rollout batch, temperature 1, no top-p / top-k;
- fixed-length generation: EOS is suppressed in both (TRL: ``min_new_tokens = max_completion_length``; ours:
  the EOS logit is set to -inf before each sampling step), so every completion has exactly L tokens;
- the same reward function (llm.rewards.correctness_reward), group-std advantages, PPO-clip 0.2, no KL
  (beta = 0), token-mean loss, AdamW at the same LR, grad clip 1, and the same optimizer steps per rollout batch
  (mini-batches of M sequences: TRL ``per_device_train_batch_size = M``, ``steps_per_generation = P*G / M``);
- no activation recomputation in either (TRL's GRPOConfig turns gradient checkpointing on by default; it is
  turned off here because ours does not recompute, so the arithmetic is the same).

One *global step* = one rollout batch (generation, reward, P*G/M optimizer steps). Rounds alternate
ours -> TRL -> ours -> TRL ... in one process; each segment builds its trainer afresh and runs S global steps,
and its first step is dropped as warm-up. The reported ratio is median(TRL step) / median(ours step).

Time to a target accuracy from the CPU default's warm start (issue 16) is ``benchmarks/vs_trl_target.py``.

Run:  python benchmarks/vs_trl.py --out benchmarks/results          (about 5 minutes on 2 CPU cores)
      python benchmarks/vs_trl.py --smoke --out /tmp/vs_trl         (seconds; checks the pipeline)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -------------------------------------------------------------------------------------------- shared inputs
def build_inputs(out: Path, n_problems: int, vocab_size: int, seed: int = 0):
    """Problems, their prompt strings, and the saved tiny model folder (tokenizer trained on the problems)."""
    from llm.data import make_task
    from llm.model import ModelConfig, build_model, save_atomic
    from llm.tokenizer import build_tokenizer

    problems, _ = make_task("arithmetic", n_problems, 0, seed=seed, difficulty=1)
    prompts = [prompt_text(p) for p in problems]
    texts = [t for p in problems for t in (p.question, p.solution or "")]
    tok = build_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(ModelConfig(hidden=128, layers=4, heads=4, kv_heads=4, intermediate=512, max_position=256),
                        tok, seed=seed)
    path = out / "model"
    shutil.rmtree(path, ignore_errors=True)
    save_atomic(model, tok, path)
    return problems, prompts, path


def prompt_text(problem) -> str:
    """The prompt string of a problem under the trainer's default template ("plain", llm.data.format_prompt)."""
    from llm.data import format_prompt

    return format_prompt(problem, "plain")


# ------------------------------------------------------------------------------------------------- ours
@contextlib.contextmanager
def no_eos(eos_ids: list[int]):
    """Fixed-length sampling in our generator: the EOS logits are -inf before every draw."""
    import llm.generate as gen

    orig = gen.sample_next

    def sample_next(logits, *args, **kwargs):
        logits = logits.clone()
        logits[:, eos_ids] = -torch.inf
        return orig(logits, *args, **kwargs)

    gen.sample_next = sample_next
    try:
        yield
    finally:
        gen.sample_next = orig


def run_ours(model_dir: Path, args, steps: int, seed: int, work: Path):
    """S global steps of llm.train.train; returns (per-step seconds = generate + reward + train, phases)."""
    from transformers import AutoTokenizer

    from llm.config import load_config
    from llm.train import train

    tok = AutoTokenizer.from_pretrained(model_dir)
    over = [f"model.path={model_dir}", "model.warm_start_steps=0", f"max_steps={steps}", f"seed={seed}",
            f"output_dir={work}", "progress=false", "tensorboard=false", "eval_every=0", "save_every=0",
            "reward=correctness", "adv_scale=std", "data.task=arithmetic", "data.difficulty=1",
            f"data.n_train={args.problems}", "data.n_test=0", f"rollout.prompts_per_step={args.prompts}",
            f"rollout.group_size={args.group}", f"rollout.max_new_tokens={args.max_new_tokens}",
            "rollout.temperature=1.0", "rollout.top_p=1.0", f"optim.lr={args.lr}", "optim.ppo_epochs=1",
            f"optim.mini_batch_size={args.mini_batch}", f"optim.micro_batch_size={args.mini_batch}",
            "optim.grad_clip=1.0", "entropy.method=none", "entropy.eps_low=0.2", "entropy.eps_high=0.2",
            "entropy.loss_agg=token-mean"]
    cfg = load_config(str(ROOT / "configs" / "tiny.yaml"), over)
    shutil.rmtree(work, ignore_errors=True)
    with no_eos([int(tok.eos_token_id)]):
        rows = train(cfg)
    lens = [r["response_len"] for r in rows]
    if any(abs(x - args.max_new_tokens) > 1e-6 for x in lens):
        raise RuntimeError(f"ours: completions are not fixed-length (mean lengths {lens})")
    steps_s = [r["time_generate_s"] + r.get("time_reward_s", 0.0) + r["time_train_s"] for r in rows]
    return steps_s, {"generate_s": [r["time_generate_s"] for r in rows],
                     "rollout_s": [r["time_generate_s"] + r.get("time_reward_s", 0.0) for r in rows]}


# -------------------------------------------------------------------------------------------------- TRL
def run_trl(model_dir: Path, problems, prompts, args, steps: int, seed: int, work: Path):
    """S global steps (S * P*G/M optimizer steps) of trl.GRPOTrainer; returns (per-global-step s, phases)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm.rewards import correctness_reward

    per_gen = args.prompts * args.group // args.mini_batch
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ds = Dataset.from_dict({"prompt": prompts, "answer": [p.answer for p in problems]})

    def reward(completions, answer, **_):
        return correctness_reward(completions, answer)

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self._t = [], 0.0

        def on_step_begin(self, a, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            self.times.append(time.perf_counter() - self._t)

    cfg = GRPOConfig(
        output_dir=str(work), use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000,
        seed=seed, max_steps=steps * per_gen, learning_rate=args.lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        per_device_train_batch_size=args.mini_batch, gradient_accumulation_steps=1, steps_per_generation=per_gen,
        num_generations=args.group, max_completion_length=args.max_new_tokens,
        generation_kwargs={"min_new_tokens": args.max_new_tokens}, temperature=1.0, top_p=1.0, top_k=0,
        beta=0.0, num_iterations=1, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        disable_dropout=True, gradient_checkpointing=False, bf16=False, fp16=False, dataloader_num_workers=0,
        log_completions=False,
    )
    clock = Clock()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds, processing_class=tok,
                          callbacks=[clock])
    # Phase times (profiling only): sampling alone, and the whole rollout phase (sampling, rewards, advantages
    # and TRL's extra no-grad forward for the old log-probs).
    phases = {"generate": [], "rollout": []}
    for name, attr in (("generate", "_generate_single_turn"), ("rollout", "_generate_and_score_completions")):
        setattr(trainer, attr, _timed(getattr(trainer, attr), phases[name]))
    trainer.train()
    t = clock.times
    steps_s = [sum(t[i:i + per_gen]) for i in range(0, len(t) - per_gen + 1, per_gen)]
    return steps_s, {"generate_s": phases["generate"], "rollout_s": phases["rollout"]}


def _timed(fn, sink: list):
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            sink.append(time.perf_counter() - t0)

    return wrapper


# ------------------------------------------------------------------------------------------------- driver
def machine() -> str:
    import os

    return f"{os.cpu_count()}-core {platform.machine()} CPU ({platform.processor() or 'unknown'}), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, TRL) (default 3)")
    p.add_argument("--steps", type=int, default=4, help="global steps per segment; the first is dropped (default 4)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per rollout batch P (default 8)")
    p.add_argument("--group", type=int, default=8, help="samples per prompt G (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="completion length L, forced (default 32)")
    p.add_argument("--mini-batch", type=int, default=32, help="sequences per optimizer step M (default 32)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--problems", type=int, default=256, help="distinct training problems")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--smoke", action="store_true", help="1 round, 2 steps, P=2, G=2, L=4: pipeline check only")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.steps, args.prompts, args.group, args.max_new_tokens, args.mini_batch = 1, 2, 2, 2, 4, 2
        args.problems = 16
    if (args.prompts * args.group) % args.mini_batch:
        p.error("--mini-batch must divide prompts * group")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vs_trl-"))
    try:
        problems, prompts, model_dir = build_inputs(work, args.problems, args.vocab_size)
        ours, trl, order = [], [], []
        phases = {"ours": {"generate_s": [], "rollout_s": []}, "trl": {"generate_s": [], "rollout_s": []}}
        for r in range(args.rounds):
            for name in ("ours", "trl"):
                t0 = time.perf_counter()
                if name == "ours":
                    steps, ph = run_ours(model_dir, args, args.steps, r, work / f"ours{r}")
                else:
                    steps, ph = run_trl(model_dir, problems, prompts, args, args.steps, r, work / f"trl{r}")
                kept = steps[1:] if len(steps) > 1 else steps
                (ours if name == "ours" else trl).extend(kept)
                for k, v in ph.items():
                    phases[name][k].extend(v[1:] if len(v) > 1 else v)
                order.append({"round": r, "trainer": name, "step_s": steps, "phases": ph,
                              "segment_wall_s": time.perf_counter() - t0})
                print(f"round {r} {name:4s}: steps {', '.join(f'{s:.2f}' for s in steps)} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med_o, med_t = statistics.median(ours), statistics.median(trl)
    res = {
        "command": "python benchmarks/vs_trl.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "threads": args.threads,
        "settings": {k: getattr(args, k) for k in ("rounds", "steps", "prompts", "group", "max_new_tokens",
                                                   "mini_batch", "lr", "problems", "vocab_size")},
        "optimizer_steps_per_global_step": args.prompts * args.group // args.mini_batch,
        "ours_step_s": ours, "trl_step_s": trl, "ours_median_s": med_o, "trl_median_s": med_t,
        "ours_mean_s": statistics.mean(ours), "trl_mean_s": statistics.mean(trl),
        "speedup_trl_over_ours": med_t / med_o, "segments": order,
        "phase_medians_s": {n: {k: statistics.median(v) for k, v in ph.items() if v} for n, ph in phases.items()},
    }
    (out / "vs_trl.json").write_text(json.dumps(res, indent=1))
    table = ("| trainer | median s / global step | mean s / global step | steps timed |\n|---|---|---|---|\n"
             f"| ours | {med_o:.3f} | {res['ours_mean_s']:.3f} | {len(ours)} |\n"
             f"| TRL {_trl_version()} GRPOTrainer | {med_t:.3f} | {res['trl_mean_s']:.3f} | {len(trl)} |\n\n"
             f"Speed-up (TRL median / ours median): **{res['speedup_trl_over_ours']:.2f}x**\n\n"
             "| phase (median s per global step) | ours | TRL |\n|---|---|---|\n"
             + "".join(f"| {k} | {res['phase_medians_s']['ours'].get(k, float('nan')):.3f} | "
                       f"{res['phase_medians_s']['trl'].get(k, float('nan')):.3f} |\n"
                       for k in ("generate_s", "rollout_s"))
             + f"| update (step - rollout) | {med_o - res['phase_medians_s']['ours'].get('rollout_s', 0):.3f} | "
               f"{med_t - res['phase_medians_s']['trl'].get('rollout_s', 0):.3f} |\n")
    (out / "vs_trl.md").write_text(table)
    print(table)
    return 0


def _trl_version() -> str:
    import trl

    return trl.__version__


if __name__ == "__main__":
    sys.exit(main())

"""Time to a held-out accuracy gain: our GRPO trainer vs TRL's ``GRPOTrainer``, from the same warm-started model.

Setting: the CPU default ``configs/tiny.yaml`` (task small_arithmetic, the warm start of 600 supervised steps cached
in ~/.cache/aent, 8 prompts x 8 samples, lr 1e-4, PPO-clip 0.2, no KL, token-mean loss, 32 new tokens at T = 1).
The warm-started model is written once with ``save_pretrained`` and both trainers load it from that folder, with
the same training problems (same prompt strings), the same reward function (``llm.rewards.score_problems``, the
``reward: task`` of tiny.yaml), group size, prompts per step, learning rate, optimizer steps per rollout batch and
seed. Completions end at EOS in both (no forced length).

Evaluation protocol (fixed before any run): the config's held-out split (``data.n_test`` = 128 small_arithmetic
problems, disjoint from training), greedy decoding, 32 new tokens, ``llm.evaluate.evaluate(samples=1,
temperature=0)`` for both (ours through ``eval_every``, TRL through a callback), every ``--eval-every`` global
steps. The baseline is the warm-started model's accuracy under the same evaluator. Evaluation time is excluded
from both clocks: ours counts its logged ``time_generate_s + time_reward_s + time_train_s`` (+ ``time_old_logp_s``),
TRL the time between ``on_step_begin`` and ``on_step_end`` of its optimizer steps. A mark is reached at the first
evaluation whose accuracy is >= baseline + gain; its time is the training time spent up to that step.

Rounds alternate ours -> TRL -> ours -> TRL in one process, each trainer built afresh, seed = round index.

Run:  python benchmarks/vs_trl_target.py --out benchmarks/results            (about 10-15 minutes on 2 CPU cores)
      python benchmarks/vs_trl_target.py --smoke --out /tmp/vs_trl_target    (a minute; checks the pipeline)
"""

from __future__ import annotations

import argparse
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

GAINS = (0.05, 0.10)


def base_config(args, overrides: list[str]):
    from llm.config import load_config

    over = ["progress=false", "tensorboard=false", "save_every=0", f"rollout.prompts_per_step={args.prompts}",
            f"rollout.group_size={args.group}", f"optim.lr={args.lr}", "entropy.method=none", *overrides]
    return load_config(str(ROOT / "configs" / "tiny.yaml"), over)


def build_inputs(args, out: Path):
    """Training and held-out problems of tiny.yaml and the warm-started model saved to ``out/warm``."""
    from llm.model import save_atomic
    from llm.policy import build_policy
    from llm.problems import load_problems

    cfg = base_config(args, [])
    train_set, eval_set = load_problems(cfg)
    model, tok = build_policy(cfg.model, cfg.data, train_set, cache_dir=cfg.cache_dir)
    path = out / "warm"
    shutil.rmtree(path, ignore_errors=True)
    save_atomic(model, tok, path)
    return train_set, eval_set[: args.n_eval], path


def greedy_accuracy(model, tok, problems, cfg) -> float:
    """The one evaluator of both trainers (the same call and arguments as ``llm.train.evaluate_heldout``'s greedy)."""
    from llm.evaluate import evaluate

    kw = {"max_new_tokens": cfg.rollout.max_new_tokens, "template": cfg.data.template, "seed": cfg.seed,
          "batch_size": cfg.rollout.generate_batch_size or 256}
    return float(evaluate(model, tok, problems, samples=1, temperature=0.0, **kw)["accuracy"])


# ------------------------------------------------------------------------------------------------- ours
def run_ours(args, model_dir: Path, seed: int, work: Path) -> dict:
    from llm.train import train

    cfg = base_config(args, [f"model.path={model_dir}", "model.warm_start_steps=0", f"max_steps={args.steps}",
                             f"seed={seed}", f"output_dir={work}", f"eval_every={args.eval_every}",
                             "eval_samples=1", f"data.n_test={args.n_eval}"])
    shutil.rmtree(work, ignore_errors=True)
    rows = train(cfg)
    clock, curve, step_s = 0.0, [], []
    for r in rows:
        s = r["time_generate_s"] + r.get("time_reward_s", 0.0) + r["time_train_s"] + r.get("time_old_logp_s", 0.0)
        clock += s
        step_s.append(s)
        if "eval_accuracy" in r:
            curve.append({"step": r["step"], "train_s": round(clock, 3), "accuracy": r["eval_accuracy"]})
    # Sampled completion length per step, EOS included (completion_mask), to compare the work per step.
    return {"curve": curve, "step_s": step_s, "completion_len": [round(r["response_len"], 2) for r in rows]}


# -------------------------------------------------------------------------------------------------- TRL
def run_trl(args, model_dir: Path, train_set, eval_set, seed: int, work: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm.data import format_prompt
    from llm.rewards import score_problems

    cfg = base_config(args, [f"seed={seed}"])
    mini = cfg.optim.mini_batch_size
    per_gen = args.prompts * args.group // mini  # optimizer steps per rollout batch, as ours
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ds = Dataset.from_dict({"prompt": [format_prompt(p, cfg.data.template) for p in train_set],
                            "idx": list(range(len(train_set)))})

    def reward(completions, idx, **_):
        return score_problems(completions, [train_set[i] for i in idx])

    class ClockAndEval(TrainerCallback):
        def __init__(self):
            self.clock, self.opt_steps, self.step_s, self.curve, self._t, self._acc = 0.0, 0, [], [], 0.0, 0.0
            self.lengths: list[float] = []

        def on_step_begin(self, a, state, control, **kw):
            self._t = time.perf_counter()

        def on_log(self, a, state, control, logs=None, **kw):
            # TRL's completion ids end at the first EOS, included, as ours: the work per step, compared.
            if logs and "completions/mean_length" in logs:
                self.lengths.append(round(float(logs["completions/mean_length"]), 2))

        def on_step_end(self, a, state, control, **kw):
            dt = time.perf_counter() - self._t
            self.clock += dt
            self._acc += dt
            self.opt_steps += 1
            if self.opt_steps % per_gen == 0:
                step = self.opt_steps // per_gen
                self.step_s.append(self._acc)
                self._acc = 0.0
                if step % args.eval_every == 0 or step == args.steps:  # outside the clock
                    was = model.training
                    acc = greedy_accuracy(model.eval(), tok, eval_set, cfg)
                    model.train(was)
                    self.curve.append({"step": step, "train_s": round(self.clock, 3), "accuracy": acc})

    gcfg = GRPOConfig(
        output_dir=str(work), use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000,
        seed=seed, max_steps=args.steps * per_gen, learning_rate=args.lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=cfg.optim.grad_clip, adam_beta1=0.9, adam_beta2=0.999,
        adam_epsilon=1e-8, per_device_train_batch_size=mini, gradient_accumulation_steps=1,
        steps_per_generation=per_gen, num_generations=args.group, max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, top_k=0, beta=0.0, num_iterations=1,
        epsilon=0.2, loss_type="dapo", scale_rewards="group", disable_dropout=True, gradient_checkpointing=False,
        bf16=False, fp16=False, dataloader_num_workers=0, log_completions=False,
    )
    cb = ClockAndEval()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=gcfg, train_dataset=ds, processing_class=tok,
                          callbacks=[cb])
    trainer.train()
    return {"curve": cb.curve, "step_s": cb.step_s, "completion_len": cb.lengths}


# ------------------------------------------------------------------------------------------------- driver
def time_to(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first evaluation with accuracy >= target; None if never reached."""
    return next((c["train_s"] for c in curve if c["accuracy"] >= target - 1e-12), None)


def summarise(res: dict) -> dict:
    base = res["baseline_accuracy"]
    out = {}
    for who in ("ours", "trl"):
        runs = [r for r in res["runs"] if r["trainer"] == who]
        s = {"step_s_median": round(statistics.median(x for r in runs for x in r["step_s"][1:] or r["step_s"]), 3)}
        lens = [x for r in runs for x in r.get("completion_len", [])]
        s["completion_len_mean"] = round(statistics.fmean(lens), 2) if lens else None
        for g in GAINS:
            ts = [time_to(r["curve"], base + g) for r in runs]
            s[f"time_to_+{g:.2f}_s"] = ts
            ok = [t for t in ts if t is not None]
            s[f"time_to_+{g:.2f}_s_median"] = round(statistics.median(ok), 2) if len(ok) == len(ts) else None
        out[who] = s
    ratios = {"per_step": round(out["trl"]["step_s_median"] / out["ours"]["step_s_median"], 2)}
    for g in GAINS:
        a, b = out["ours"][f"time_to_+{g:.2f}_s_median"], out["trl"][f"time_to_+{g:.2f}_s_median"]
        ratios[f"time_to_+{g:.2f}"] = round(b / a, 2) if a and b else None
    out["trl_over_ours"] = ratios
    return out


def to_markdown(res: dict) -> str:
    s, base = res["summary"], res["baseline_accuracy"]
    lines = [f"Baseline (warm start) greedy held-out accuracy: {base:.3f} on {res['n_eval']} problems.", "",
             "| trainer | median s / global step | time to +0.05 (s, per round) | time to +0.10 (s, per round) |",
             "|---|---:|---|---|"]
    for who, name in (("ours", "ours"), ("trl", f"TRL {res['trl_version']}")):
        x = s[who]
        lines.append(f"| {name} | {x['step_s_median']:.3f} | {x['time_to_+0.05_s']} | {x['time_to_+0.10_s']} |")
    lens = {who: s[who].get("completion_len_mean") for who in ("ours", "trl")}
    if all(lens.values()):
        lines += ["", f"Mean sampled completion length (tokens, EOS included; the work per step follows it): "
                      f"ours {lens['ours']}, TRL {lens['trl']}."]
    r = s["trl_over_ours"]
    lines += ["", f"TRL / ours: per step {r['per_step']}x, to +0.05 {r['time_to_+0.05']}x, "
                  f"to +0.10 {r['time_to_+0.10']}x (None: a mark not reached by every run in the budget).", "",
              "Accuracy curves (step: train s, accuracy):"]
    for r_ in res["runs"]:
        pts = ", ".join(f"{c['step']}: {c['train_s']:.0f}s {c['accuracy']:.3f}" for c in r_["curve"])
        lines.append(f"- {r_['trainer']} seed {r_['seed']}: {pts}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, TRL), seed = round (default 3)")
    p.add_argument("--steps", type=int, default=12, help="global steps per run (default 12)")
    p.add_argument("--eval-every", type=int, default=1, help="held-out evaluation every N global steps (default 1)")
    p.add_argument("--n-eval", type=int, default=128, help="held-out problems (default 128 = tiny.yaml n_test)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8, tiny.yaml)")
    p.add_argument("--group", type=int, default=8, help="samples per prompt (default 8, tiny.yaml)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4, tiny.yaml)")
    p.add_argument("--smoke", action="store_true", help="1 round, 2 steps, 16 held-out problems")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.steps, args.eval_every, args.n_eval = 1, 2, 1, 16
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_set, eval_set, model_dir = build_inputs(args, work)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = base_config(args, [])
        base = greedy_accuracy(AutoModelForCausalLM.from_pretrained(model_dir).eval(),
                               AutoTokenizer.from_pretrained(model_dir), eval_set, cfg)
        runs = []
        for rnd in range(args.rounds):
            for who in ("ours", "trl"):
                t = time.time()
                r = (run_ours(args, model_dir, rnd, work / f"ours{rnd}") if who == "ours"
                     else run_trl(args, model_dir, train_set, eval_set, rnd, work / f"trl{rnd}"))
                runs.append({"trainer": who, "seed": rnd, "wall_s": round(time.time() - t, 1), **r})
                print(f"round {rnd} {who}: {runs[-1]['curve']}", flush=True)
    res = {"baseline_accuracy": base, "n_eval": len(eval_set), "runs": runs, "trl_version": _trl_version(),
           "meta": {"machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s)",
                    "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "total_s": round(time.time() - t0, 1), "args": vars(args)}}
    res["summary"] = summarise(res)
    (out / "vs_trl_target.json").write_text(json.dumps(res, indent=2))
    md = to_markdown(res)
    (out / "vs_trl_target.md").write_text(md)
    print(md)
    return 0


def _trl_version() -> str:
    import trl

    return trl.__version__


if __name__ == "__main__":
    sys.exit(main())

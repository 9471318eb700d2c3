"""Learning curves of candidate CPU-default settings: the study behind ``configs/tiny.yaml`` (docs/llm/setting.md).

Each candidate is a list of ``key=value`` overrides on a base config. For every candidate and seed the script
runs plain GRPO (``entropy.method=none``: the baseline, so that no entropy method is tuned toward) with
``python -m llm train`` as a subprocess, ``--jobs`` at a time with ``cores // jobs`` torch threads each, then
draws reward, held-out greedy accuracy, mean@k, pass@k and token entropy against step for every candidate and
writes one summary row per candidate with the acceptance criteria of issue 10, fixed before running:

- held-out greedy accuracy and mean@k each gain at least ``+0.10`` from the warm-started policy (step 0) to the
  last evaluation;
- the training reward rises (mean of the last quarter of steps above the mean of the first quarter);
- the starting token entropy (step 1, response tokens) is at least 0.3 nats, and the final entropy (mean of the
  last quarter) is at most half of it.

Usage (the command whose numbers docs/llm/setting.md quotes)::

    python benchmarks/llm_setting_curves.py --out runs/setting --jobs 2 --seeds 0
    python benchmarks/llm_setting_curves.py --out runs/setting --only digits_w300 --seeds 0 1 2

A finished run (its ``final/`` folder exists) is not re-run, so the script can be resumed after a crash and
extended with more seeds. ``--list`` prints the candidates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMON = ["eval_every=20", "eval_samples=8", "tensorboard=false", "progress=false"]
"""Overrides every candidate shares: held-out evaluation every 20 steps with k = 8 samples."""

def candidate(task: str = "arithmetic", frac: float = 0.0, wrong: float = 0.0, warm: int = 600, steps: int = 60,
              prompts: int = 8, *extra: str) -> list[str]:
    """Overrides of one candidate. Every field that differs between candidates is set explicitly, so a candidate
    means the same run whatever the base config's values are (the base config has since become the chosen one)."""
    batch = [] if prompts == 8 else [f"rollout.prompts_per_step={prompts}", f"optim.mini_batch_size={4 * prompts}",
                                     f"optim.micro_batch_size={4 * prompts}"]
    return [f"data.task={task}", "data.difficulty=1", f"data.answer_only_frac={frac}",
            f"data.answer_only_wrong={wrong}", f"model.warm_start_steps={warm}", f"max_steps={steps}", *batch, *extra]


SMALL = "small_arithmetic"
CANDIDATES: dict[str, list[str]] = {
    # The landed default: arithmetic up to 20, long warm start (near-deterministic policy), 8 prompts x 8, lr 1e-4.
    "landed": candidate(warm=800),
    # Short warm start: an uncertain policy whose pass@8 is far above its mean@8 (room for RL to sharpen).
    "w150_lr1e-4": candidate(warm=150, steps=100, prompts=16),
    "w300_lr1e-4": candidate(warm=300, steps=100, prompts=16),
    "w300_lr3e-5": candidate("arithmetic", 0.0, 0.0, 300, 100, 16, "optim.lr=3e-5"),
    "w300_lr3e-4": candidate("arithmetic", 0.0, 0.0, 300, 100, 16, "optim.lr=3e-4"),
    # Two PPO epochs per rollout batch (off-policy updates drive entropy down faster).
    "w300_lr1e-4_2ep": candidate("arithmetic", 0.0, 0.0, 300, 100, 16, "optim.ppo_epochs=2"),
    # Two-style warm-start corpus: 60% of the solutions are the bare answer (llm.data.answer_only).
    "style60_w400": candidate(frac=0.6, warm=400),
    "style60_w400_p16": candidate(frac=0.6, warm=400, prompts=16),
    "style60_w800": candidate(frac=0.6, warm=800, steps=80),
    "style60_w800_p16": candidate(frac=0.6, warm=800, steps=80, prompts=16),
    # Single-digit word problems (every worked line is one fact of the single-digit tables).
    "small_style60_w600": candidate(SMALL, 0.6),
    "small_style70_w300": candidate(SMALL, 0.7, warm=300),
    "small_style70_w600": candidate(SMALL, 0.7),
    "small_style60_w450": candidate(SMALL, 0.6, warm=450),
    "small_style70_w600_s100": candidate(SMALL, 0.7, steps=100),
    "small_style70_w600_s100_lr2e-4": candidate(SMALL, 0.7, 0.0, 600, 100, 8, "optim.lr=2e-4"),
    # ... and some of the bare answers wrong (bare answers in real text are less reliable than worked ones).
    "small_style60_wrong50_w600": candidate(SMALL, 0.6, 0.5, steps=100),
    "small_style70_wrong50_w600": candidate(SMALL, 0.7, 0.5, steps=100),
    "small_style60_wrong60_w600": candidate(SMALL, 0.6, 0.6, steps=100),
    "small_style60_wrong75_w600": candidate(SMALL, 0.6, 0.75, steps=100),
    "small_style60_wrong75_w500": candidate(SMALL, 0.6, 0.75, warm=500),
    # The choice (configs/tiny.yaml).
    "small_style65_wrong75_w600": candidate(SMALL, 0.65, 0.75),
}


def run_dir(out: Path, name: str, seed: int) -> Path:
    return out / f"{name}-seed{seed}"


def launch(config: str, name: str, seed: int, out: Path, threads: int, extra: list[str]) -> tuple[str, float, int]:
    """Train one candidate with one seed (skipped when its final/ folder exists); returns (label, seconds, rc)."""
    d = run_dir(out, name, seed)
    if (d / "final").is_dir():
        return f"{name}-seed{seed}", 0.0, 0
    d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "llm", "train", "--config", config, *COMMON, *CANDIDATES[name], *extra,
           "entropy.method=none", f"seed={seed}", f"output_dir={d}",
           "--resume"]  # continues an interrupted run instead of being refused
    t0 = time.monotonic()
    with open(d / "train.log", "w") as log:
        rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return f"{name}-seed{seed}", time.monotonic() - t0, rc


def _quarter_mean(rows: list[dict], key: str, last: bool) -> float:
    vals = [r[key] for r in rows if key in r]
    q = max(1, len(vals) // 4)
    return float(np.mean(vals[-q:] if last else vals[:q]))


def summarise_run(d: Path) -> dict:
    """The criteria's numbers for one run folder (metrics.jsonl and initial_eval.json)."""
    from llm.metrics import read_metrics

    rows = read_metrics(d)
    init = json.loads((d / "initial_eval.json").read_text())
    evals = [r for r in rows if "eval_accuracy" in r]
    k = next(int(key.rsplit("_", 1)[1]) for key in init if key.startswith("eval_mean_at_"))
    last = evals[-1]
    h0 = rows[0]["entropy"]
    return {
        "steps": len(rows),
        "greedy_start": init["eval_accuracy"], "greedy_end": last["eval_accuracy"],
        f"mean@{k}_start": init[f"eval_mean_at_{k}"], f"mean@{k}_end": last[f"eval_mean_at_{k}"],
        f"pass@{k}_start": init[f"eval_pass_at_{k}"], f"pass@{k}_end": last[f"eval_pass_at_{k}"],
        "reward_first_q": _quarter_mean(rows, "reward_mean", last=False),
        "reward_last_q": _quarter_mean(rows, "reward_mean", last=True),
        "entropy_start": h0, "entropy_last_q": _quarter_mean(rows, "entropy", last=True),
        "entropy_min": float(min(r["entropy"] for r in rows)),
        "seconds": float(sum(r.get("time_generate_s", 0) + r.get("time_train_s", 0) + r.get("time_eval_s", 0)
                             for r in rows)),
    }


def criteria(s: dict) -> dict:
    """Issue 10's acceptance criteria, fixed before running, for one run's summary."""
    k = next(key.split("@")[1].split("_")[0] for key in s if key.startswith("mean@"))
    return {
        "greedy_gain>=0.10": s["greedy_end"] - s["greedy_start"] >= 0.10,
        f"mean@{k}_gain>=0.10": s[f"mean@{k}_end"] - s[f"mean@{k}_start"] >= 0.10,
        "reward_rises": s["reward_last_q"] > s["reward_first_q"],
        "entropy_start>=0.3": s["entropy_start"] >= 0.3,
        "entropy_halves": s["entropy_last_q"] <= 0.5 * s["entropy_start"],
    }


def plot(out: Path, names: list[str], seeds: list[int]) -> Path:
    """One panel per metric; held-out curves start at step 0, the warm-started policy (initial_eval.json)."""
    from aent.plotting import plot_metrics
    from reproduce.analysis import read_metrics

    data = {}
    for n in names:
        runs = [read_metrics(run_dir(out, n, s)) for s in seeds if (run_dir(out, n, s) / "metrics.jsonl").is_file()]
        if runs:
            data[n] = runs[0] if len(runs) == 1 else runs
    keys = ["reward_mean", "eval_accuracy", "eval_mean_at_8", "eval_pass_at_8", "entropy", "response_len"]
    return plot_metrics(data, keys, out / "curves.png", title="plain GRPO on candidate CPU-default settings")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/setting", help="output folder (one run folder per candidate and seed)")
    p.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"), help="base config the overrides apply to")
    p.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--jobs", type=int, default=2, help="runs side by side (each gets cores // jobs threads)")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    p.add_argument("--list", action="store_true", help="print the candidates and exit")
    args = p.parse_args(argv)
    if args.list:
        for name, ov in CANDIDATES.items():
            print(f"{name}: {' '.join(ov)}")
        return 0
    names = args.only or list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidate(s) {unknown}; known: {sorted(CANDIDATES)}")
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    todo = [(n, s) for n in names for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(launch, args.config, n, s, out, threads, args.set) for n, s in todo]
        for i, f in enumerate(futures, 1):
            label, secs, rc = f.result()
            print(f"[{i}/{len(todo)}] {label}: {'ok' if rc == 0 else f'FAILED rc={rc}'} ({secs:.0f} s)", flush=True)
    table = {}
    for n in names:
        for s in args.seeds:
            d = run_dir(out, n, s)
            if (d / "final").is_dir():
                summ = summarise_run(d)
                table[f"{n}-seed{s}"] = {**summ, "criteria": criteria(summ)}
    (out / "summary.json").write_text(json.dumps(table, indent=1))
    for label, row in table.items():
        nums = " ".join(f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float))
        ok = sum(row["criteria"].values())
        print(f"{label}: {ok}/{len(row['criteria'])} criteria | {nums}")
    if table:
        print("figure:", plot(out, names, args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

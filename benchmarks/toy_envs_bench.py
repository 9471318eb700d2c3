"""Steps per second of the native numpy vector envs against gymnasium's SyncVectorEnv (target: >= 50x).

For each of ``toy/SparseBandit-v0`` and ``toy/TokenTree-v0`` the script builds, from the same registered id,
the native vector env (``vectorization_mode="vector_entry_point"``) and ``SyncVectorEnv`` over the single env
(``vectorization_mode="sync"``), resets both with the same seed, and times the same pre-drawn random actions
(gymnasium's default NEXT_STEP autoreset). Throughput counts env steps: num_envs x vector steps / seconds,
best of ``--repeats`` runs. Both runs must give identical rewards and terminations (checked, recorded).

Writes ``toy_envs.json`` and ``toy_envs.md`` (a Markdown table) into ``--out`` (default benchmarks/results/)
and prints the table. The envs use numpy only (no torch), so there are no torch threads to pin.

    python benchmarks/toy_envs_bench.py             # 1,024 envs (the documented numbers)
    python benchmarks/toy_envs_bench.py --quick     # small sizes, a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import toy  # noqa: F401  (registers the ids)

TARGET_SPEEDUP = 50.0
ENVS = {
    "toy/SparseBandit-v0": {"n_arms": 100_000, "m_optimal": 10, "pattern": "zero"},
    "toy/TokenTree-v0": {"vocab": 1024, "horizon": 16, "structure": "targets", "m_targets": 16},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, default=None, help="copies per vector env (default 1024)")
    parser.add_argument("--steps", type=int, default=None, help="timed vector steps per run (default 200)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs, best one kept (default 3)")
    parser.add_argument(
        "--autoreset-mode",
        default="next_step",
        choices=["next_step", "same_step"],
        help="of both vector envs",
    )
    parser.add_argument("--quick", action="store_true", help="small defaults: 64 envs, 20 steps, 1 repeat")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    args = parser.parse_args(argv)
    defaults = (64, 20, 1) if args.quick else (1024, 200, 3)
    for name, default in zip(("num_envs", "steps", "repeats"), defaults):
        value = getattr(args, name)
        if value is None:
            setattr(args, name, default)
        elif value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def time_run(envs: gym.vector.VectorEnv, actions: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Seconds for ``len(actions)`` steps from a fresh reset, and the stacked rewards / terminations."""
    envs.reset(seed=0)
    rewards, terms = [], []
    start = time.perf_counter()
    for batch in actions:
        _, reward, term, _, _ = envs.step(batch)
        rewards.append(reward)
        terms.append(term)
    return time.perf_counter() - start, np.stack(rewards), np.stack(terms)


def bench_env(env_id: str, kwargs: dict, num_envs: int, steps: int, repeats: int, autoreset: str) -> dict:
    """Time the native and the sync vector env of ``env_id`` on the same actions."""
    mode_enum = AutoresetMode[autoreset.upper()]
    made = {
        "vector_entry_point": gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode=mode_enum,
            **kwargs,
        ),
        "sync": gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": mode_enum},
            **kwargs,
        ),
    }
    n_actions = made["sync"].single_action_space.n
    actions = np.random.default_rng(0).integers(0, n_actions, size=(steps, num_envs))
    best, outputs = {}, {}
    for mode, envs in made.items():
        time_run(envs, actions[: min(steps, 5)])  # warm-up (first-call costs, caches)
        runs = [time_run(envs, actions) for _ in range(repeats)]
        best[mode] = min(run[0] for run in runs)
        outputs[mode] = runs[0][1:]
        envs.close()
    same = all(np.array_equal(a, b) for a, b in zip(outputs["vector_entry_point"], outputs["sync"]))
    native, sync = num_envs * steps / best["vector_entry_point"], num_envs * steps / best["sync"]
    return {
        "env": env_id,
        "env_kwargs": kwargs,
        "num_envs": num_envs,
        "autoreset_mode": autoreset,
        "steps": steps,
        "repeats": repeats,
        "native_steps_per_s": native,
        "sync_steps_per_s": sync,
        "speedup": native / sync,
        "same_results": bool(same),
    }


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| env | num_envs | autoreset | native env-steps/s | SyncVectorEnv env-steps/s | speedup | same results |",
        "|---|---:|---|---:|---:|---:|:---:|",
    ]
    for r in results:
        lines.append(
            f"| `{r['env']}` | {r['num_envs']:,} | {r['autoreset_mode']} | {r['native_steps_per_s']:,.0f} | {r['sync_steps_per_s']:,.0f} "
            f"| {r['speedup']:,.0f}x | {'yes' if r['same_results'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = [
        bench_env(env_id, kw, args.num_envs, args.steps, args.repeats, args.autoreset_mode)
        for env_id, kw in ENVS.items()
    ]
    report = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "main(" + repr(argv) + ")",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
        },
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": all(r["speedup"] >= TARGET_SPEEDUP for r in results),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "toy_envs.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(results)
    (args.out / "toy_envs.md").write_text(f"Command: `{report['command']}`\n\n{table}")
    print(table, end="")
    print(
        f"target >= {TARGET_SPEEDUP:.0f}x: {'met' if report['meets_target'] else 'MISSED'}; wrote {args.out}/"
    )
    return report


if __name__ == "__main__":
    main()

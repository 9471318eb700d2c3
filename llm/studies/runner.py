"""Running a study: every arm x seed through the public entry point :func:`llm.train.train`, with the studies'
hooks (:class:`llm.studies.hooks.StudyHooks`), then the verdicts, the figure and the JSON record.

Every arm runs the same seeds with the same budget (global steps, prompts per step, group size, response length)
from the same warm-started policy (the trainer caches the warm start and shares it by every run).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm.studies.hooks import StudyHooks
from llm.studies.report import jsonable, judge, plot_study
from llm.studies.spec import DEFAULT_CONFIG, Arm, Study
from llm.studies.summaries import summarise

__all__ = ["base_overrides", "run_one", "run_study"]


def run_one(config: str, overrides: Sequence[str], out_dir: Path, prompt_pool: int = 0) -> list[dict]:
    """One training run through :func:`llm.train.train`; keeps metrics.jsonl and config.yaml, drops weights."""
    from llm.config import load_config
    from llm.metrics import read_metrics
    from llm.train import train

    cfg = load_config(config, [*overrides, f"output_dir={out_dir}"])
    shutil.rmtree(out_dir, ignore_errors=True)
    train(cfg, hooks=[StudyHooks(prompt_pool)])
    for sub in ("checkpoints", "final", "tb"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    rows = read_metrics(out_dir)
    init = out_dir / "initial_eval.json"  # held-out metrics of the starting policy: plotted at step 0
    if init.is_file():
        rows.insert(0, {"step": 0, **json.loads(init.read_text())})
    return rows


def base_overrides(steps: int, smoke: bool) -> list[str]:
    """Overrides shared by every arm: the budget, quiet logging, periodic held-out evaluation."""
    evals = steps if smoke else max(1, steps // 4)
    common = [f"max_steps={steps}", f"eval_every={evals}", "progress=false", "tensorboard=false", "save_every=0"]
    if smoke:
        # Pipeline check only: a short warm start and a small batch (4 prompts x 4 samples x 16 tokens).
        return [*common, "model.warm_start_steps=10", "data.n_test=4", "eval_samples=2", "data.n_train=64",
                "rollout.prompts_per_step=4", "rollout.group_size=4", "rollout.max_new_tokens=16",
                "optim.mini_batch_size=8"]
    return [*common, "data.n_test=32", "eval_samples=4"]


def run_study(study: Study, out: str | Path, *, smoke: bool = False, seeds: int = 3, steps: int | None = None,
              config: str = DEFAULT_CONFIG, overrides: Sequence[str] = (), progress: bool = True) -> dict[str, Any]:
    """Run every arm of ``study`` for ``seeds`` seeds and write ``OUT/NAME.json`` and ``OUT/NAME.png``.

    Args:
        study: the sweep.
        out: output folder (run folders go to OUT/runs/NAME/ARM/seedS).
        smoke: 2 arms (``study.smoke_arms``), 1 seed, 2 steps, tiny eval: checks the pipeline, not the claim.
        seeds: number of seeds (0, 1, ...) per arm; ignored with ``smoke``.
        steps: global steps per run (default ``study.steps``; 2 with ``smoke``).
        config: base trainer config (YAML).
        overrides: extra ``key=value`` overrides applied to every arm (before the arm's own).
        progress: tqdm bar over the runs.

    Returns:
        The JSON record (also written to disk).
    """
    from llm.config import load_config

    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    steps = 2 if smoke else (steps or study.steps)
    seeds = 1 if smoke else seeds
    out = Path(out)
    base = [*base_overrides(steps, smoke), *study.extra_overrides, *overrides]
    # Every run reads one snapshot of the config file, so an edit of the file mid-study cannot split the arms.
    snap = out / "runs" / study.name / "base_config.yaml"
    snap.parent.mkdir(parents=True, exist_ok=True)
    import aent_configs

    try:
        snap.write_text(aent_configs.resolve(config).read_text())  # a file, or a packaged config name
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    config = str(snap)
    base_cfg = load_config(config, base)
    t0 = time.perf_counter()
    runs: dict[str, list[list[dict]]] = {}
    arm_list: list[Arm] = []
    keep = None
    pending = study.arms(base_cfg, runs)
    if smoke:
        keep = set(study.smoke_arms or [a.name for a in pending[:2]])
        pending = [a for a in pending if a.name in keep]
    # Prime the warm-start cache with a throwaway 1-step run, so every arm loads the identical cached policy
    # (a run that trains the warm start itself differs: llm/warmstart.py leaves its last gradients on the
    # parameters and the first RL update applies them).
    if not smoke:
        prime = out / "runs" / study.name / "_prime"
        run_one(config, [*base, "max_steps=1", "eval_every=0"], prime)
        shutil.rmtree(prime, ignore_errors=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(pending) * seeds, desc=f"study {study.name}", unit="run", disable=not progress)
    while pending:
        arm = pending[0]
        if callable(arm.overrides):  # resolved once, when its runs start (see Arm.overrides)
            arm = dataclasses.replace(arm, overrides=tuple(arm.overrides()))
        arm_list.append(arm)
        runs[arm.name] = []
        for s in range(seeds):
            rows = run_one(config, [*base, *arm.overrides, f"seed={s}"],
                           out / "runs" / study.name / arm.name / f"seed{s}", prompt_pool=arm.prompt_pool)
            runs[arm.name].append(rows)
            bar.update(1)
        # Re-read the arm list: an arm's settings may depend on earlier results (a target measured on GRPO).
        pending = [a for a in study.arms(base_cfg, runs) if a.name not in runs and (keep is None or a.name in keep)]
    bar.close()
    verdicts = judge(study.claims, runs)
    png = plot_study(runs, out / f"{study.name}.png", study.title)
    record = {
        "study": study.name, "title": study.title, "finding": study.finding, "smoke": smoke, "seeds": seeds,
        "steps": steps, "config": config, "base_overrides": base,
        "arms": [{"name": a.name, "overrides": list(a.overrides), "prompt_pool": a.prompt_pool} for a in arm_list],
        "summary": summarise(runs), "verdicts": verdicts, "notes": study.notes, "figure": png.name,
        "wall_s": time.perf_counter() - t0, "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{study.name}.json").write_text(json.dumps(jsonable(record), indent=1))
    return record

"""One run of the exploration study, resumable: its folder, its trainer hook, its summary record.

Each run (arm, level, warm start, seed) trains through the public entry point :func:`llm.train.train` into its own
folder ``OUT/runs/L{level}/ws{warm_start}/{arm}/seed{seed}`` (metrics.jsonl, config.yaml) and, when it has
finished, writes ``record.json`` there. A folder with a record is never re-run (resume); a folder without one
(an interrupted run) is cleared and run again from step 0.

The hook :class:`ExplorationHooks` adds ``worked_share`` to every step's metrics row: the share of the step's
rollout samples that start a worked line (:func:`llm.studies.exploration_setting.style_of`), from which the gate's
escape criterion is computed (:mod:`llm.studies.exploration_gate`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from llm.hooks import Hooks, Run, StepState
from llm.studies.exploration_gate import GateRule, escape_step, escaped, final_worked_share
from llm.studies.exploration_setting import worked_share

__all__ = ["ExplorationHooks", "RECORD_KEYS", "band_share", "default_jobs", "make_record", "run_dir", "run_many",
           "run_or_load"]

RECORD_KEYS = ("arm", "level", "warm_start", "seed", "escaped", "final_mean_at_k")
"""The fields every summary.json record has (docs/shared DESIGN "Interfaces"); records add more."""


class ExplorationHooks(Hooks):
    """Logs ``worked_share``, the share of the step's rollout samples that start a worked line."""

    def __init__(self) -> None:
        self._share = math.nan

    def after_rollout(self, run: Run, st: StepState) -> None:
        texts = run.tokenizer.batch_decode(st.batch["completion_ids"].tolist(), skip_special_tokens=True)
        self._share = worked_share(texts)

    def after_update(self, run: Run, st: StepState) -> None:
        st.stats["worked_share"] = self._share


def run_dir(out: Path, arm: str, level: int, warm_start: int, seed: int) -> Path:
    """The run's folder under OUT."""
    return Path(out) / "runs" / f"L{level}" / f"ws{warm_start}" / arm / f"seed{seed}"


def band_share(rows: Sequence[Mapping], band: tuple[float, float] | None, warmup: int) -> float:
    """Share of the steps after ``warmup`` whose clamped entropy lies inside ``band`` (NaN without a band)."""
    if band is None:
        return math.nan
    vals = [r["clamped_entropy"] for r in rows if r.get("step", 0) > warmup and "clamped_entropy" in r]
    return sum(band[0] <= v <= band[1] for v in vals) / len(vals) if vals else math.nan


def _coef_state(rows: Sequence[Mapping], box: tuple[float, float] | None, start: float, warmup: int) -> str:
    """The adaptive coefficient's state after warm-up (llm.studies.verdict.coef_status); "" for fixed arms."""
    if box is None:
        return ""
    from llm.studies.verdict import coef_status

    coefs = [r["ent_coef"] for r in rows if r.get("step", 0) > warmup and "ent_coef" in r]
    return coef_status(coefs, box[0], box[1], start)[0]


def _final_eval(rows: Sequence[Mapping], key: str) -> float:
    vals = [r[key] for r in rows if key in r]
    return float(vals[-1]) if vals else math.nan


def make_record(rows: Sequence[Mapping], *, arm: str, level: int, warm_start: int, seed: int, role: str,
                k: int, rule: GateRule, control: Mapping | None = None, wall_s: float = math.nan) -> dict:
    """The summary record of one finished run from its metrics rows (step 0 = the starting policy's eval)."""
    control = control or {}
    steps = [r for r in rows if r.get("step", 0) >= 1]
    band = tuple(control["band"]) if control.get("band") else None
    box = tuple(control["box"]) if control.get("box") else None
    gap = [r["entropy"] - r["clamped_entropy"] for r in steps if "entropy" in r and "clamped_entropy" in r]
    return {
        "arm": arm, "level": level, "warm_start": warm_start, "seed": seed, "role": role,
        "escaped": escaped(steps, rule), "final_mean_at_k": _final_eval(steps, f"eval_mean_at_{k}"),
        "final_pass_at_k": _final_eval(steps, f"eval_pass_at_{k}"), "final_greedy": _final_eval(steps,
                                                                                                "eval_accuracy"),
        "start_mean_at_k": _final_eval([r for r in rows if r.get("step") == 0], f"eval_mean_at_{k}"),
        "final_worked_share": final_worked_share(steps, rule), "escape_step": escape_step(steps, rule),
        "steps": len(steps), "k": k,
        "band_share": band_share(steps, band, int(control.get("warmup", 0))),
        "coef_state": _coef_state(steps, box, float(control.get("start", math.nan)), int(control.get("warmup", 0))),
        "entropy_gap": sum(gap) / len(gap) if gap else math.nan,
        "final_entropy": _final_eval(steps, "entropy"), "final_ent_coef": _final_eval(steps, "ent_coef"),
        "wall_s": wall_s,
    }


def run_or_load(config: str, overrides: Sequence[str], folder: Path, **record_kw) -> dict:
    """Run one training run into ``folder`` and write its record.json, or load the record of a finished run."""
    from llm.config import load_config
    from llm.metrics import read_metrics
    from llm.train import train

    done = folder / "record.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = load_config(config, [*overrides, f"output_dir={folder}"])
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    train(cfg, hooks=[ExplorationHooks()])
    wall = time.perf_counter() - t0
    for sub in ("checkpoints", "final", "tb"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    rows = read_metrics(folder)
    init = folder / "initial_eval.json"
    if init.is_file():
        rows.insert(0, {"step": 0, **json.loads(init.read_text())})
    rec = make_record(rows, k=cfg.eval_samples, wall_s=wall, **record_kw)
    done.write_text(json.dumps(rec, indent=1))
    return rec


def default_jobs() -> int:
    """Runs side by side by default: one per core (each with one torch thread), at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_many(fn: Callable, tasks: Sequence[tuple], *, jobs: int = 1, on_done: Callable[[], None] = lambda: None) -> list:
    """``[fn(*t) for t in tasks]``, ``jobs`` at a time in worker processes; results in the order of ``tasks``.

    Each worker gets ``cores // jobs`` torch threads (one on a 2-core machine at ``jobs=2``, which is also what a
    sequential study uses, so a run's numbers do not depend on ``jobs``). ``fn`` must be a module-level function
    and the tasks picklable. A failing run stops the others and raises its error; finished runs keep their
    records (resume).
    """
    if jobs <= 1 or len(tasks) <= 1:
        results = []
        for t in tasks:
            results.append(fn(*t))
            on_done()
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, *t) for t in tasks]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                if f.exception() is not None:
                    for p in pending:
                        p.cancel()
                    raise f.exception()
                on_done()
        return [f.result() for f in futures]

"""The main job: ``python -m reproduce --out runs/demo [--smoke] [--config FILE] [--jobs N] [--fresh]``.

Stages, in order (each resumable; see reproduce.stages):
1. AEnt's calibration per warm start W (``llm.calibrated``; :mod:`reproduce.extra_stages`): ``python -m llm
   calibrate ... --json OUT/llm/calibration/LABEL/wsW.json``; it builds and caches W's warm start, so these go
   first, side by side (without calibration the first run of each warm start takes their place);
2. one exploration level (``exploration``): ``python -m llm study exploration --no-gate ... --out
   OUT/exploration/wsW`` per warm start, then the toy experiments (``python -m toy NAME --out OUT/toy/NAME``,
   ``toy.experiments.EXPERIMENTS``) and the LLM runs (``python -m llm train --config CONFIG data.seed=W seed=S
   output_dir=OUT/llm/METHOD/wsW-seed-S ...`` for every method, warm start W and seed S; an AEnt label of
   ``llm.calibrated`` with its warm start's calibrated constants), ``--jobs`` at a time;
3. summaries: ``OUT/exploration/demo.json``, ``OUT/llm/summary.json``, ``OUT/llm/curves.png``;
4. ``OUT/report.md``, generated from the JSON and written only after every printed number is re-derived from its
   JSON field (``OUT/report.numbers.json`` records which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from reproduce.config import REPO, SMOKE_CONFIG, ReproduceConfig, load_config, resolve
from reproduce.extra_stages import (
    DEMO_NAME,
    calibrated_cmd,
    calibration_path,
    calibration_stage,
    exploration_stages,
    summarise_exploration,
)
from reproduce.stages import Stage, StageError, format_seconds, run_stages
from toy.experiments import EXPERIMENTS


def build_stages(cfg: ReproduceConfig, out: Path) -> tuple[list[Stage], dict[str, dict]]:
    """The stage list of a config, and where each LLM run writes (label -> pair -> run folder; a pair is
    (warm start, seed), or a bare seed when the config names no warm starts)."""
    py = sys.executable
    stages: list[Stage] = []
    for name in cfg.toy.experiments:
        d = out / "toy" / name
        cmd = [py, "-m", "toy", name, "--out", str(d), *(["--smoke"] if cfg.toy.smoke else []),
               *cfg.toy.args.get(name, ())]
        module = EXPERIMENTS[name][0]
        expected = cfg.toy.expected_s.get(name, module.EXPECTED_S / (6 if cfg.toy.smoke else 1))
        stages.append(Stage(name=f"toy-{name}", title=f"toy {name}", cmd=cmd, expected_s=expected,
                            outputs=[d / f"{name}.json", d / f"{name}.png"], parallel=True))

    runs: dict[str, dict] = {}
    llm = cfg.llm
    launcher = list(llm.launcher) or [py]
    first: dict[object, Stage] = {}  # the first stage of each warm start builds its cache
    calibrations: list[Stage] = []
    for label in llm.calibrated:  # AEnt's constants per warm start (reproduce.extra_stages), before any run
        for ws in llm.warm_starts or (None,):
            stage = calibration_stage(llm, out, label, ws, llm.warm_start_expected_s)
            first.setdefault(ws, stage)
            calibrations.append(stage)
    for label, overrides in llm.methods.items():
        for ws in llm.warm_starts or (None,):
            for seed in llm.seeds:
                tag = f"seed-{seed}" if ws is None else f"ws{ws}-seed-{seed}"
                d = out / "llm" / label / tag
                runs.setdefault(label, {})[seed if ws is None else (ws, seed)] = d
                data = [] if ws is None else [f"data.seed={ws}"]
                head = [*launcher, "-m", "llm", "train", "--config", str(resolve(llm.config)), *llm.overrides,
                        *data, *overrides]
                # --resume: a rerun continues an interrupted run (same config) instead of being refused
                tail = [f"seed={seed}", f"output_dir={d}", "progress=false", "--resume"]
                cmd = (calibrated_cmd(head, calibration_path(out, label, ws), tail) if label in llm.calibrated
                       else [*head, *tail])
                stage = Stage(name=f"llm-{label}-{tag.replace('-seed-', '-seed')}", title=f"llm {label} {tag}",
                              cmd=cmd, expected_s=llm.expected_s + (llm.warm_start_expected_s if ws not in first else 0.0),
                              outputs=[d / "metrics.jsonl"], parallel=True)
                first.setdefault(ws, stage)
                stages.append(stage)
    # The first stage of each warm start (its calibration, or else its first run) builds the warm-start cache;
    # those go first, side by side (one warm start per core), and everything else waits for them (the barrier
    # stage), so that no two processes build the same warm start. Further calibrations (a second calibrated
    # label) follow behind a second barrier, since their runs read them. Then everything else forms one parallel
    # group, led by the exploration stages (the longest, so that the short runs fill the end).
    heads = list(first.values())
    rest_cal = [s for s in calibrations if s not in heads]
    later = [s for s in stages if s not in heads and s not in rest_cal]
    stages = heads[:]
    if heads:
        if len(heads) > 1:
            stages.append(_barrier("llm-warm-starts", "warm starts ready"))
        else:
            heads[0].parallel = False
    if rest_cal:
        stages += rest_cal + [_barrier("llm-calibrations", "calibrations ready")]
    stages += exploration_stages(cfg.exploration, out) + later
    return stages, runs


def _barrier(name: str, title: str) -> Stage:
    """A no-op stage that ends a parallel group: the stages after it start when the ones before have finished."""
    return Stage(name=name, title=title, fn=lambda: None, expected_s=0.0, always=True)


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine() -> dict:
    import torch

    # The CPU model and torch's vector-instruction level: warm starts differ across CPUs (docs/llm/setting.md).
    return {"cpu_count": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}",
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__.split("+")[0], "cpu_model": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def run(cfg: ReproduceConfig, out: Path, *, jobs: int = 2, smoke: bool = False) -> Path:
    """Run every stage of ``cfg`` into ``out`` and write ``out/report.md``; returns the report path."""
    from reproduce.analysis import saved_method, summarise_llm
    from reproduce.report import ReportCheckError, write_report

    out.mkdir(parents=True, exist_ok=True)
    stages, runs = build_stages(cfg, out)

    def summarise() -> None:
        sel = cfg.llm.selection
        # each label's method as its runs saw it (presets and the trainer config's own method resolved)
        method_entropy = {lab: saved_method(next(iter(by_pair.values()))) for lab, by_pair in runs.items()}
        summarise_llm(runs, method_entropy, out / "llm" / "summary.json", out / "llm" / "curves.png",
                      selection={"warm_starts": list(sel.warm_starts), "seeds": list(sel.seeds),
                                 "candidates": list(sel.candidates), "page": sel.page})

    if cfg.exploration.arms:
        stages.append(Stage(name="exploration-summary", title="exploration summary", expected_s=1.0, always=True,
                            fn=lambda: summarise_exploration(cfg.exploration, out),
                            outputs=[out / "exploration" / DEMO_NAME]))
    if runs:
        stages.append(Stage(name="llm-summary", title="LLM summary", fn=summarise, expected_s=5.0, always=True,
                            outputs=[out / "llm" / "summary.json", out / "llm" / "curves.png"]))
    planned = sum(s.expected_s / (jobs if s.parallel else 1) for s in stages)
    print(f"reproduce: {len(stages)} stages into {out} (config {cfg.source}; planned wall time about "
          f"{format_seconds(planned)} on {os.cpu_count()} cores, {jobs} LLM runs at a time after the first)",
          file=sys.stderr)
    t0 = time.monotonic()
    seconds = run_stages(out, stages, jobs=jobs)
    previous = (json.loads((out / "run.json").read_text()).get("stage_seconds", {})
                if (out / "run.json").is_file() else {})
    stage_seconds = {s.name: round(seconds.get(s.name, previous.get(s.name, 0.0)), 1) for s in stages}
    source = Path(cfg.source).resolve()
    shown = source.relative_to(REPO) if source.is_relative_to(REPO) else source
    meta = {"date": time.strftime("%Y-%m-%d"), "config": str(shown), "smoke": smoke,
            "machine": _machine(), "total_seconds": round(sum(stage_seconds.values()), 1),
            "this_invocation_seconds": round(time.monotonic() - t0, 1),
            "stage_seconds": stage_seconds, "budget_minutes": cfg.budget_minutes,
            "llm": {"config": cfg.llm.config, "seeds": list(cfg.llm.seeds), "warm_starts": list(cfg.llm.warm_starts),
                    "overrides": list(cfg.llm.overrides),
                    "methods": {k: list(v) for k, v in cfg.llm.methods.items()},
                    "calibrated": list(cfg.llm.calibrated)}}
    if cfg.exploration.arms:
        ex = cfg.exploration
        meta["exploration"] = {"level": ex.level, "arms": list(ex.arms), "warm_starts": list(ex.warm_starts),
                               "seeds": list(ex.seeds), "steps": ex.steps, "overrides": list(ex.overrides)}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    try:
        return write_report(out, cfg.toy.experiments)
    except ReportCheckError as e:
        raise StageError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); reused to resume")
    p.add_argument("--config", default=None,
                   help="reproduce config: a YAML file or packaged name (default reproduce/default; GPUs: "
                        "configs/reproduce/qwen2.5_math_1.5b.yaml)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny budget for every stage (configs/reproduce/smoke.yaml), about 2 minutes")
    p.add_argument("--jobs", type=int, default=2, help="LLM runs side by side after the first (default 2)")
    p.add_argument("--fresh", action="store_true", help="ignore finished stages in --out and redo everything")
    args = p.parse_args(argv)
    if args.smoke and args.config:
        p.error("--smoke and --config are exclusive (--smoke is configs/reproduce/smoke.yaml)")
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    out = Path(args.out)
    try:
        cfg = load_config(SMOKE_CONFIG if args.smoke else args.config)
        if args.fresh and (out / ".stages").is_dir():
            for marker in (out / ".stages").glob("*.json"):
                marker.unlink()
        report = run(cfg, out, jobs=args.jobs, smoke=args.smoke)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StageError as err:
        print(f"error: {err}\nFix the cause and run the same command again: finished stages are kept.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume (finished stages are kept)", file=sys.stderr)
        return 130
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``aent study exploration``: does AEnt get a policy out of an exploration trap where GRPO stays in it?

The study (issue 23, deliverable 3; docs/llm/exploration.md), in the order it runs:

1. **Starting policies**: for each level (:data:`llm.studies.exploration_levels.LEVELS`, each a target q0) and warm start
   (``data.seed``), search the bare stage's length that reaches the target, build that policy and measure q0, forced-start accuracy and worked
   pass@k (:func:`~llm.studies.exploration_setting.measure_start`).
2. **Premise gate** (:mod:`llm.studies.exploration_gate`): GRPO alone on the selection warm starts and seeds
   (:data:`SELECTION`), never on a verdict seed.
3. **Arms** (:mod:`llm.studies.exploration_arms`) on the verdict warm starts x seeds at each level whose premise
   holds, constants calibrated on that level's and warm start's starting policy (``aent calibrate``).
4. **Claims** (:mod:`llm.studies.exploration_claims`, fixed before the first run), the report and the figure.

Every run has its own folder and record (:mod:`llm.studies.exploration_runs`): a finished run is never re-run,
so an interrupted study resumes where it stopped. ``DIR/summary.json`` holds one record per run (``arm, level,
warm_start, seed, escaped, final_mean_at_k`` and more), the gates, the starting policies, the constants and the
judgements; ``DIR/report.md`` and ``DIR/exploration.png`` show them.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llm.studies.exploration_arms import ARMS, ArmConstants, arm_control, arm_overrides, needs_calibration
from llm.studies.exploration_gate import GateRule, gate_level
from llm.studies.exploration_levels import LEVELS, SEARCH, level_steps
from llm.studies.exploration_runs import default_jobs, run_dir, run_many, run_or_load

__all__ = ["SELECTION", "VERDICT", "Plan", "run_exploration"]

SELECTION = ((0,), (100, 101, 102))
"""(warm starts, run seeds) of the premise gate: GRPO only, disjoint from every verdict seed."""
VERDICT = ((1, 2), (0, 1, 2, 3, 4, 5))
"""(warm starts, run seeds) of the verdicts: 6 seeds x 2 warm starts = 12 pairs per gated level."""
START_SEED = 12345
"""Sampling seed of the starting-policy measurement."""


@dataclass(frozen=True)
class Plan:
    """What one invocation runs (every field has the full study's value by default)."""

    arms: tuple[str, ...] = ARMS
    levels: tuple[int, ...] = tuple(lv.index for lv in LEVELS)
    seeds: tuple[int, ...] = VERDICT[1]
    warm_starts: tuple[int, ...] = VERDICT[0]
    gate: bool = True
    gate_only: bool = False
    report_only: bool = False
    config: str = "exploration"
    overrides: tuple[str, ...] = ()
    rule: GateRule = field(default_factory=GateRule)

    def __post_init__(self) -> None:
        from aent.validation import check

        known = {lv.index for lv in LEVELS}
        check(self.gate or not self.gate_only, "--gate-only", "without --no-gate", "both given", "")
        check(bool(self.arms) and set(self.arms) <= set(ARMS), "--arms", f"a non-empty subset of {','.join(ARMS)}",
              ",".join(self.arms), "")
        check(bool(self.levels) and set(self.levels) <= known, "--levels", f"a non-empty subset of "
              f"{sorted(known)}", self.levels, "")
        check(bool(self.seeds) and all(s >= 0 for s in self.seeds), "--seeds", "non-negative integers",
              self.seeds, "")
        check(bool(self.warm_starts) and all(s >= 0 for s in self.warm_starts), "--warm-starts",
              "non-negative integers", self.warm_starts, "")
        used = {(w, s) for w in self.warm_starts for s in self.seeds}
        check(not used & {(w, s) for w in SELECTION[0] for s in SELECTION[1]}, "--seeds/--warm-starts",
              f"disjoint from the selection pairs (warm starts {SELECTION[0]} x seeds {SELECTION[1]})",
              sorted(used), "")

    def full(self) -> bool:
        """Does this plan cover the full study (every arm and level, >= 12 pairs over >= 2 warm starts, the gate)?
        A summary is the full study when its plan is and no planned run is missing (``--report-only`` included)."""
        return (self.gate and not self.gate_only and set(self.arms) == set(ARMS)
                and len(self.levels) == len(LEVELS) and len(self.warm_starts) >= 2
                and len(self.seeds) * len(self.warm_starts) >= 12 and self.rule == GateRule())


class NotReached(Exception):
    """The level's target q0 was not reached on this warm start within the search budget (no starting policy)."""


def _base(out: Path, plan: Plan, level: int, ws: int) -> list[str]:
    """Trainer overrides of every run of ``level`` on warm start ``ws``: the level's bare stage, then the user's."""
    from llm.config import load_config

    steps = plan.rule.budget_steps
    common = [*plan.overrides, f"data.seed={ws}", f"max_steps={steps}", f"eval_every={steps}",
              "progress=false", "tensorboard=false", "save_every=0"]
    if any(o.startswith("model.bare_stage_steps=") for o in plan.overrides):
        return common  # the user fixed the bare stage (a smoke test shortens it): no search
    n = level_steps(out, load_config(plan.config, common), ws)[level]
    if n is None:
        raise NotReached(f"level {level} not reached on warm start {ws}")
    return [f"model.bare_stage_steps={n}", f"model.bare_stage_lr={SEARCH.lr}", "model.bare_stage_schedule=constant",
            *common]


def _policy(out: Path, plan: Plan, level: int, ws: int):
    from llm.config import load_config
    from llm.policy import build_policy
    from llm.problems import load_problems

    cfg = load_config(plan.config, _base(out, plan, level, ws))
    train, test = load_problems(cfg)
    model, tok = build_policy(cfg.model, cfg.data, train)
    return cfg, model, tok, train, test


def starting_policy(out: Path, plan: Plan, level: int, ws: int) -> dict:
    """measure_start of the level's starting policy on warm start ``ws`` (cached in OUT/starts/)."""
    from llm.studies.exploration_setting import measure_start

    path = out / "starts" / f"L{level}_ws{ws}.json"
    if path.is_file():
        return json.loads(path.read_text())
    try:
        cfg, model, tok, _, test = _policy(out, plan, level, ws)
    except NotReached:
        return {"reached": False, "bare_stage_steps": None}
    m = measure_start(model, tok, test, k=cfg.eval_samples, seed=START_SEED, template=cfg.data.template,
                      temperature=cfg.rollout.temperature, max_new_tokens=cfg.rollout.max_new_tokens)
    m = {"reached": True, "bare_stage_steps": cfg.model.bare_stage_steps, **m}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m, indent=1))
    return m


def constants(out: Path, plan: Plan, level: int, ws: int, clamp_p: float | None) -> ArmConstants:
    """AEnt's constants calibrated on the level's starting policy on warm start ``ws`` (cached in OUT/constants/).

    ``clamp_p`` None lets the calibration choose p; a number fixes it (the paper's p for ``aent_paper_p``).
    """
    tag = "cal" if clamp_p is None else f"p{clamp_p}"
    path = out / "constants" / f"L{level}_ws{ws}_{tag}.json"
    if path.is_file():
        return ArmConstants(**json.loads(path.read_text())["constants"])
    from llm.config import load_config
    from llm.studies.exploration_calibration import calibrate_start

    cal = calibrate_start(load_config(plan.config, _base(out, plan, level, ws)), clamp_p=clamp_p)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cal, indent=1, default=str))
    return ArmConstants(**cal["constants"])


def _run(out: Path, plan: Plan, arm: str, level: int, ws: int, seed: int, role: str) -> dict | None:
    if plan.report_only:  # finished runs only; a missing one is listed in the summary, not run
        done = run_dir(out, arm, level, ws, seed) / "record.json"
        return json.loads(done.read_text()) if done.is_file() else None
    if not starting_policy(out, plan, level, ws).get("reached", True):
        return None  # no starting policy at this level on this warm start: listed as missing
    c = None if arm == "grpo" else constants(out, plan, level, ws, needs_calibration(arm))
    return run_or_load(plan.config, [*_base(out, plan, level, ws), *arm_overrides(arm, c), f"seed={seed}"],
                       run_dir(out, arm, level, ws, seed), arm=arm, level=level, warm_start=ws, seed=seed,
                       role=role, rule=plan.rule, control=arm_control(arm, c))


def _gate_decided(escaped: Sequence[bool], planned: int) -> bool:
    """Do the finished gate runs decide the gate whatever the unfinished ones do? (GRPO trapped in most planned
    runs, or escaped in at least half of them; every run finished always decides.)"""
    trapped = sum(not e for e in escaped)
    return len(escaped) >= planned or trapped > planned / 2 or len(escaped) - trapped >= planned / 2


def run_exploration(plan: Plan, out: str | Path, *, progress: bool = True, jobs: int = 1) -> dict:
    """Run (or resume) the study of ``plan`` into ``out``; writes summary.json, report.md and exploration.png.

    ``jobs`` runs train side by side (:func:`~llm.studies.exploration_runs.run_many`); the starting policies and
    the calibrations, shared by several runs, are built first in this process.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sel_pairs = [(w, s) for w in SELECTION[0] for s in SELECTION[1]] if plan.gate else []
    per_level = len(plan.warm_starts) * len(plan.seeds) * len(plan.arms)
    bar = tqdm(total=len(plan.levels) * (len(sel_pairs) + (not plan.gate_only) * per_level),
               desc="study exploration", unit="run", disable=not progress)
    gates, starts, missing = {}, {}, []
    for level in plan.levels:  # 1. starting policies (level searches), in this process
        for ws in sorted({*(() if plan.gate_only else plan.warm_starts), *(SELECTION[0] if plan.gate else ())}):
            path = out / "starts" / f"L{level}_ws{ws}.json"
            if not plan.report_only or path.is_file():
                starts[f"L{level}_ws{ws}"] = starting_policy(out, plan, level, ws)
    # 2. premise gate: GRPO on the selection pairs of every level, side by side
    tasks = [(out, plan, "grpo", level, ws, seed, "selection") for level in plan.levels for ws, seed in sel_pairs]
    jobs = 1 if plan.report_only else jobs  # reading records needs no workers
    gate_recs = list(zip(tasks, run_many(_run, tasks, jobs=jobs, on_done=lambda: bar.update(1))))
    for level in plan.levels if plan.gate else ():
        sel = [r for t, r in gate_recs if t[3] == level]  # in the order of sel_pairs
        missing += [("grpo", level, ws, seed) for (ws, seed), r in zip(sel_pairs, sel) if r is None]
        sel = [r for r in sel if r is not None]
        escaped = [r["escaped"] for r in sel]
        sel_starts = [starts[f"L{level}_ws{ws}"] for ws in SELECTION[0] if f"L{level}_ws{ws}" in starts]
        if not all(s.get("reached", True) for s in sel_starts):
            gates[level] = {"premise": "absent", "trapped_runs": 0, "runs": 0, "skill": [],
                            "reasons": ["the level's target q0 was not reached on a selection warm start"]}
        elif sel and len(sel_starts) == len(SELECTION[0]) and _gate_decided(escaped, len(sel_pairs)):
            gates[level] = gate_level(sel_starts, escaped, plan.rule)
            if len(sel) < len(sel_pairs):
                gates[level]["partial"] = (f"{len(sel)} of {len(sel_pairs)} gate runs finished; the others cannot "
                                           "change the outcome")
        else:  # only with --report-only: a gate run or a starting policy is missing
            gates[level] = {"premise": "not run", "trapped_runs": 0, "runs": len(sel), "skill": [],
                            "reasons": [f"{len(sel)} of {len(sel_pairs)} gate runs finished, which do not decide the"
                                        " gate, or no measured starting policy"]}
    # 3. verdict runs at every level whose premise holds (or every level without the gate), side by side
    verdict_levels = [] if plan.gate_only else [lv for lv in plan.levels
                                                if not plan.gate or gates[lv]["premise"] == "holds"]
    bar.update(per_level * (len(plan.levels) - len(verdict_levels)) * (not plan.gate_only))  # skipped levels
    tasks = [(out, plan, arm, level, ws, seed, "verdict") for level in verdict_levels for ws in plan.warm_starts
             for seed in plan.seeds for arm in plan.arms]
    for level in verdict_levels if not plan.report_only else ():  # calibrations, once per level x warm start
        for ws in plan.warm_starts:
            if starting_policy(out, plan, level, ws).get("reached", True):
                for tag in dict.fromkeys(needs_calibration(a) for a in plan.arms if a != "grpo"):  # arm order
                    constants(out, plan, level, ws, tag)
    verdict_recs = list(zip(tasks, run_many(_run, tasks, jobs=jobs, on_done=lambda: bar.update(1))))
    records = []
    for level in plan.levels:  # the summary's order: level, then its gate runs, then its verdict runs
        records += [r for t, r in gate_recs if t[3] == level and r is not None]
        for t, r in verdict_recs:
            if t[3] == level:
                records += [r] if r is not None else []
                missing += [] if r is not None else [(t[2], level, t[4], t[5])]
    missing.sort(key=lambda m: m[1])  # stable: per level, its gate runs then its verdict runs
    bar.close()
    from llm.studies.exploration_claims import describe_arms, judge
    from llm.studies.exploration_report import write_report

    consts = {p.stem: json.loads(p.read_text()) for p in sorted((out / "constants").glob("*.json"))}
    summary = {
        "study": "exploration", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"platform": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
                    "cpu_count": __import__("os").cpu_count()},
        "full_study": plan.full() and not missing, "plan": {**asdict(plan), "selection": {"warm_starts": SELECTION[0],
                                                                           "seeds": SELECTION[1]}},
        "wall_s_this_invocation": time.perf_counter() - t0,
        "records": records, "missing_runs": missing, "gates": {str(k): v for k, v in gates.items()}, "starts": starts, "constants": consts,
        # A level whose gate has no finished run (--report-only) is not judged at all: nothing is known of it.
        "judgements": judge(records, gates if plan.gate else {},
                            [lv for lv in plan.levels if gates.get(lv, {}).get("premise") != "not run"]),
        "arms": {str(lv): describe_arms(records, lv) for lv in plan.levels},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    write_report(summary, out)
    return summary


def exploration_main(argv: Sequence[str] | None = None) -> int:
    """``aent study exploration [--arms A,..] [--levels L,..] [--seeds S,..] [--warm-starts W,..] --out DIR``."""
    import argparse
    import sys

    import torch

    def ints(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None

    p = argparse.ArgumentParser(prog="aent study exploration", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (summary.json, report.md, exploration.png, runs/)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma list of arms (default all: {','.join(ARMS)})")
    p.add_argument("--levels", type=ints, default=Plan.levels, help="comma list of levels, 1 = deepest trap")
    p.add_argument("--seeds", type=ints, default=VERDICT[1], help="comma list of verdict run seeds")
    p.add_argument("--warm-starts", type=ints, default=VERDICT[0], help="comma list of verdict warm starts")
    p.add_argument("--no-gate", action="store_true", help="skip the premise gate (claims: premise not checked)")
    p.add_argument("--gate-only", action="store_true", help="run only the premise gate (GRPO on selection seeds)")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: summarise the finished runs (missing ones are listed as missing)")
    p.add_argument("--steps", type=int, default=GateRule.budget_steps,
                   help=f"GRPO budget per run (default {GateRule.budget_steps}, the gate's; other values are not the "
                   "study, only a pipeline check)")
    p.add_argument("--config", default="exploration", help="base trainer config (default exploration)")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help=f"runs side by side, one torch thread each (default: one per core, here {default_jobs()})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="trainer overrides applied to every run")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    torch.set_num_threads(1)
    try:
        plan = Plan(arms=tuple(a.strip() for a in args.arms.split(",") if a.strip()), levels=args.levels,
                    seeds=args.seeds, warm_starts=args.warm_starts, gate=not args.no_gate, gate_only=args.gate_only, report_only=args.report_only,
                    config=args.config,
                    overrides=tuple(args.overrides), rule=GateRule(budget_steps=args.steps))
        summary = run_exploration(plan, args.out, progress=not args.quiet, jobs=args.jobs)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for j in summary["judgements"]:
        print(f"- L{j['level']} [{j['verdict']}] {j['text']}")
    print(f"wrote {args.out}/summary.json, report.md and exploration.png")
    return 0

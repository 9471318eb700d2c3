"""The main job's stages beyond the plain runs: AEnt's calibration per warm start, and one exploration level.

**Calibration** (issue 23, deliverable 2; docs/calibrate.md). AEnt's constants in the main job come from a stated
rule, not from the authors' Qwen2.5-Math-1.5B setting: for each warm start W of the comparison and each label of
``llm.calibrated``, one stage runs ``aent calibrate`` (:func:`llm.calibrate.calibrate`) on W's starting policy,
with the runs' own config and budget (``llm.overrides``, the label's overrides, ``data.seed=W``) on the step-1
rollout batch of run seed :data:`llm.studies.exploration_calibration.CALIBRATION_SEED` (the exploration study's
rule: a batch drawn before any update, no outcome looked at), and writes ``OUT/llm/calibration/LABEL/wsW.json``.
Each run of the label on W appends those constants (band, box, lambda0, beta, p, warm-up; unrounded) to its
overrides, the same overrides as the exploration study's ``aent_cal_p`` arm
(:func:`llm.studies.exploration_arms.arm_overrides`); its command is built when it starts, so a changed
calibration re-runs it. The calibration stage also builds and caches W's warm start, so it takes the place of the
first run of W at the head of the job.

**Exploration** (issue 23, deliverable 3; docs/llm/exploration.md). One stage per verdict warm start runs
``aent study exploration --no-gate`` for the configured level, arms and seeds into ``OUT/exploration/wsW`` (its
own level search, starting-policy measurement and calibration, then its runs); :func:`summarise_exploration`
pairs the runs and copies in the committed study's gate and verdict for the level, which the demo does not rerun.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from reproduce.config import ExplorationSection, LLMSection, resolve
from reproduce.stages import Stage

__all__ = ["calibrated_overrides", "calibration_path", "calibration_stage", "exploration_stages",
           "summarise_exploration", "DEMO_NAME"]

DEMO_NAME = "demo.json"
"""What :func:`summarise_exploration` writes into ``OUT/exploration/``."""


def calibration_path(out: Path, label: str, ws: int | None) -> Path:
    """Where the calibration of ``label`` on warm start ``ws`` (None: the config's own) is written."""
    return out / "llm" / "calibration" / label / ("default.json" if ws is None else f"ws{ws}.json")


def calibration_stage(llm: LLMSection, out: Path, label: str, ws: int | None, warm_start_s: float) -> Stage:
    """``aent calibrate`` of ``label`` on warm start ``ws`` for the runs' own config and budget."""
    from llm.studies.exploration_calibration import CALIBRATION_SEED

    path = calibration_path(out, label, ws)
    data = [] if ws is None else [f"data.seed={ws}"]
    cmd = [sys.executable, "-m", "llm", "calibrate", "--config", str(resolve(llm.config)), "--json", str(path),
           *llm.overrides, *data, *llm.methods[label], f"seed={CALIBRATION_SEED}", "progress=false"]
    tag = "" if ws is None else f"-ws{ws}"
    return Stage(name=f"calibrate-{label}{tag}", title=f"calibrate {label}{tag.replace('-', ' ')}", cmd=cmd,
                 expected_s=llm.calibration_expected_s + warm_start_s, outputs=[path], parallel=True)


def calibrated_overrides(path: Path) -> list[str]:
    """The trainer overrides of AEnt with the constants calibrated in ``path`` (the ``aent_cal_p`` arm's)."""
    from llm.studies.exploration_arms import calibrated_aent_overrides

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found: the calibration stage has not run; run the main job again")
    return calibrated_aent_overrides(json.loads(Path(path).read_text()))


def calibrated_cmd(head: list[str], path: Path, tail: list[str]) -> Callable[[], list[str]]:
    """A run's command with the calibrated overrides between ``head`` and ``tail``, read when it starts."""
    return lambda: [*head, *calibrated_overrides(path), *tail]


def exploration_stages(ex: ExplorationSection, out: Path) -> list[Stage]:
    """One ``aent study exploration --no-gate`` stage per warm start of ``ex`` (none without arms)."""
    stages = []
    for ws in ex.warm_starts if ex.arms else ():
        d = out / "exploration" / f"ws{ws}"
        cmd = [sys.executable, "-m", "llm", "study", "exploration", "--arms", ",".join(ex.arms), "--levels",
               str(ex.level), "--seeds", ",".join(map(str, ex.seeds)), "--warm-starts", str(ws), "--no-gate",
               "--quiet", "--out", str(d), *(["--steps", str(ex.steps)] if ex.steps else []), *ex.overrides]
        stages.append(Stage(name=f"exploration-ws{ws}", title=f"exploration level {ex.level} ws{ws}", cmd=cmd,
                            expected_s=ex.expected_s, outputs=[d / "summary.json"], parallel=True))
    return stages


def _committed(ex: ExplorationSection) -> dict | None:
    """The committed study's gate, selection and verdicts for the level (None when its file is absent)."""
    from reproduce.config import REPO

    path = Path(ex.committed) if Path(ex.committed).is_absolute() else REPO / ex.committed
    if not path.is_file():
        return None
    s = json.loads(path.read_text())
    lv = str(ex.level)
    judged = [j for j in s.get("judgements", []) if j.get("level") == ex.level and j.get("family") == "primary"]
    return {"source": ex.committed, "date": s.get("date"), "gate": s["gates"].get(lv),
            "selection": s["plan"]["selection"], "rule": s["plan"]["rule"],
            "gate_start": s["starts"].get(f"L{lv}_ws{s['plan']['selection']['warm_starts'][0]}"),
            "verdicts": {j["claim"]: j for j in judged},
            "records": {f"{r['arm']}/ws{r['warm_start']}-s{r['seed']}": r for r in s["records"]
                        if r["level"] == ex.level and r.get("role") == "verdict"}}


def summarise_exploration(ex: ExplorationSection, out: Path) -> dict:
    """Pair the demo's exploration runs (AEnt minus GRPO per pair) and write ``OUT/exploration/demo.json``."""
    base, other = "grpo", next((a for a in ex.arms if a != "grpo"), None)
    recs, starts, consts = {}, {}, {}
    for ws in ex.warm_starts:
        s = json.loads((out / "exploration" / f"ws{ws}" / "summary.json").read_text())
        recs.update({(r["arm"], r["warm_start"], r["seed"]): r for r in s["records"] if r["level"] == ex.level})
        starts[f"ws{ws}"] = s["starts"].get(f"L{ex.level}_ws{ws}")
        if f"L{ex.level}_ws{ws}_cal" in s["constants"]:
            consts[f"ws{ws}"] = s["constants"][f"L{ex.level}_ws{ws}_cal"]
    committed = _committed(ex)
    pairs = []
    for ws in ex.warm_starts:
        for seed in ex.seeds:
            row = {"pair": f"ws{ws}-s{seed}", "warm_start": ws, "seed": seed}
            for arm in ex.arms:
                r = recs.get((arm, ws, seed))
                row[arm] = r and {k: r[k] for k in ("escaped", "escape_step", "final_mean_at_k", "final_pass_at_k",
                                                    "final_worked_share", "band_share", "coef_state",
                                                    "final_ent_coef", "final_entropy", "wall_s")}
                old = (committed or {}).get("records", {}).get(f"{arm}/ws{ws}-s{seed}")
                row[f"committed_{arm}"] = old and {k: old[k] for k in ("escaped", "final_mean_at_k")}
            if other and row[base] and row[other]:
                row["difference"] = row[other]["final_mean_at_k"] - row[base]["final_mean_at_k"]
            pairs.append(row)
    diffs = [p["difference"] for p in pairs if isinstance(p.get("difference"), float)]
    demo = {"level": ex.level, "arms": list(ex.arms), "baseline": base, "other": other,
            "warm_starts": list(ex.warm_starts), "seeds": list(ex.seeds), "n_pairs": len(pairs),
            "k": next((r["k"] for r in recs.values()), None), "steps": next((r["steps"] for r in recs.values()), None),
            "pairs": pairs, "mean_difference": sum(diffs) / len(diffs) if diffs else math.nan,
            "starts": starts, "constants": consts, "committed": committed and {
                k: v for k, v in committed.items() if k != "records"}}
    path = out / "exploration" / DEMO_NAME
    path.write_text(json.dumps(demo, indent=1, default=str) + "\n")
    return demo

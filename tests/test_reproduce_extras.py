"""The main job's calibration and exploration stages (reproduce.extra_stages) and their report sections."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from reproduce.config import ExplorationSection, load_config
from reproduce.extra_stages import calibration_path, summarise_exploration
from reproduce.numbers import RECORD_NAME, check_report
from reproduce.report import write_report
from reproduce.report_extras import FEWER_SEEDS
from reproduce.stages import Stage, run_stages

REPO = Path(__file__).resolve().parents[1]
CONSTANTS = {"ent_coef": 0.45, "coef_min": 0.135, "coef_max": 2.0, "band_low": 0.16, "band_high": 0.26,
             "coef_lr": 3.0, "clamp_p": 0.9973, "warmup": 4}


def _calibration(path: Path, constants=CONSTANTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"constants": constants, "steps": 60, "batch": "step 1's rollout: 8 prompts",
                                "measurements": {"clamped_entropy": 0.26, "entropy": 0.27, "unused_share": 0.9958,
                                                 "pg_grad_norm": 0.74, "ent_grad_norm": 0.36}}))


def test_a_command_built_from_an_earlier_output_reruns_when_that_output_changes(tmp_path):
    """A callable ``cmd`` is read when the stage is checked: missing input = not done; changed input = redone."""
    src, dst = tmp_path / "src.txt", tmp_path / "dst.txt"
    stage = Stage("late", "late", cmd=lambda: [sys.executable, "-c", f"import pathlib; pathlib.Path({str(dst)!r})"
                                                                      f".write_text({src.read_text()!r})"],
                  outputs=[dst])
    quiet = open("/dev/null", "w")
    src.write_text("a")
    assert set(run_stages(tmp_path / "out", [stage], stream=quiet)) == {"late"} and dst.read_text() == "a"
    assert run_stages(tmp_path / "out", [stage], stream=quiet) == {}
    src.write_text("b")
    assert set(run_stages(tmp_path / "out", [stage], stream=quiet)) == {"late"} and dst.read_text() == "b"


def test_default_aent_runs_take_the_calibration_of_their_own_warm_start(tmp_path):
    """The shipped config: AEnt is calibrated (no authors' constants in its overrides); one calibration stage per
    verdict warm start leads the job (it builds the warm start), with the runs' config and budget and seed 0's
    batch; each AEnt run's command carries exactly its warm start's calibrated constants."""
    from llm.studies.exploration_arms import ArmConstants, arm_overrides
    from llm.studies.exploration_calibration import CALIBRATION_SEED
    from reproduce.__main__ import build_stages

    cfg = load_config()
    assert cfg.llm.calibrated == ("aent",) and cfg.llm.methods["aent"] == ("entropy.method=aent",)
    stages, runs = build_stages(cfg, tmp_path)
    n = len(cfg.llm.warm_starts)
    heads = stages[:n]
    assert [s.name for s in heads] == [f"calibrate-aent-ws{w}" for w in cfg.llm.warm_starts]
    for s, w in zip(heads, cfg.llm.warm_starts):
        assert {f"data.seed={w}", f"seed={CALIBRATION_SEED}", "entropy.method=aent"} <= set(s.cmd)
        assert s.cmd[s.cmd.index("--json") + 1] == str(calibration_path(tmp_path, "aent", w))
        assert not any(a.startswith("max_steps=") for a in s.cmd)  # the config's own budget, as the runs
    assert stages[n].name == "llm-warm-starts"
    by_name = {s.name: s for s in stages}
    aent = by_name[f"llm-aent-ws{cfg.llm.warm_starts[0]}-seed{cfg.llm.seeds[0]}"]
    with pytest.raises(FileNotFoundError, match="calibration stage"):
        aent.command()
    for w, scale in zip(cfg.llm.warm_starts, (1.0, 2.0)):
        _calibration(calibration_path(tmp_path, "aent", w), {**CONSTANTS, "coef_max": 2.0 * scale})
    for w, scale in zip(cfg.llm.warm_starts, (1.0, 2.0)):
        for seed in cfg.llm.seeds:
            cmd = by_name[f"llm-aent-ws{w}-seed{seed}"].command()
            want = arm_overrides("aent_cal_p", ArmConstants(**{**CONSTANTS, "coef_max": 2.0 * scale}))
            assert cmd[cmd.index("entropy.method=aent") + 1:][:len(want)] == want
            assert cmd[-4:] == [f"seed={seed}", f"output_dir={runs['aent'][(w, seed)]}", "progress=false", "--resume"]
    # every other label runs as written
    assert all(not callable(s.cmd) for s in stages if s.name.startswith("llm-grpo"))


def test_the_exploration_stages_run_the_study_on_a_subset_of_its_verdict_pairs(tmp_path):
    from llm.studies.exploration import SELECTION, VERDICT
    from reproduce.__main__ import build_stages

    ex = load_config().exploration
    assert ex.level == 1 and set(ex.arms) == {"grpo", "aent_cal_p"}
    assert set(ex.warm_starts) <= set(VERDICT[0]) and set(ex.seeds) <= set(VERDICT[1])
    assert not set(ex.warm_starts) & set(SELECTION[0])
    stages, _ = build_stages(load_config(), tmp_path)
    explore = [s for s in stages if s.name.startswith("exploration-")]
    assert [s.name for s in explore] == [f"exploration-ws{w}" for w in ex.warm_starts]
    for s, w in zip(explore, ex.warm_starts):
        assert s.cmd[1:5] == ["-m", "llm", "study", "exploration"] and "--no-gate" in s.cmd  # no gate in the demo
        assert s.cmd[s.cmd.index("--warm-starts") + 1] == str(w) and s.parallel
    first_after_barrier = stages.index(next(s for s in stages if s.name == "llm-warm-starts")) + 1
    assert stages[first_after_barrier].name.startswith("exploration-")  # the longest stages go first


def test_exploration_section_validates():
    with pytest.raises(ValueError, match="exploration.arms"):
        ExplorationSection(arms=("aent_cal_p",), warm_starts=(1,), seeds=(0,))
    with pytest.raises(ValueError, match="exploration.warm_starts/seeds"):
        ExplorationSection(arms=("grpo",), warm_starts=(0,), seeds=(100,))
    with pytest.raises(ValueError, match="exploration.level"):
        ExplorationSection(level=9)


def _record(arm, ws, seed, mean, escaped=False, band=None, state=""):
    return {"arm": arm, "level": 1, "warm_start": ws, "seed": seed, "role": "verdict", "escaped": escaped,
            "escape_step": 90 if escaped else None, "final_mean_at_k": mean, "final_pass_at_k": 0.5,
            "final_worked_share": 0.3 if escaped else 0.0, "band_share": float("nan") if band is None else band,
            "coef_state": state, "final_ent_coef": 0.1, "final_entropy": 0.2, "wall_s": 50.0, "k": 8,
            "steps": 150}


def _demo_run(tmp_path: Path, gate: dict) -> tuple[Path, ExplorationSection]:
    """A run folder with two hand-made exploration stages, and a committed study with the given level-1 gate."""
    out = tmp_path / "run"
    for ws, (g, a) in {1: (0.35, 0.02), 2: (0.28, 0.20)}.items():
        d = out / "exploration" / f"ws{ws}"
        d.mkdir(parents=True)
        recs = [_record("grpo", ws, 0, g), _record("aent_cal_p", ws, 0, a, escaped=ws == 2, band=0.1 * ws,
                                                   state="saturated" if ws == 1 else "moves")]
        start = {"reached": True, "bare_stage_steps": 50 * ws, "q0": 0.00098, "forced_accuracy": 0.5,
                 "worked_pass_at_k": 0.9}
        d.joinpath("summary.json").write_text(json.dumps({"records": recs, "starts": {f"L1_ws{ws}": start},
                                                          "constants": {f"L1_ws{ws}_cal": {"constants": CONSTANTS}}}))
    committed = json.loads((REPO / "docs" / "exploration_example" / "summary.json").read_text())
    committed["gates"]["1"] = gate
    path = tmp_path / "committed.json"
    path.write_text(json.dumps(committed))
    return out, ExplorationSection(level=1, arms=("grpo", "aent_cal_p"), warm_starts=(1, 2), seeds=(0,),
                                   committed=str(path))


def test_the_exploration_section_is_labelled_and_cites_the_committed_gate(tmp_path):
    """Per pair: escaped or not, final mean@8, the paired difference, band share and coefficient state; the gate is
    the committed study's (read from its summary, so changing it there changes the report), and the label says
    that two pairs are a description."""
    out, ex = _demo_run(tmp_path, {"premise": "holds", "trapped_runs": 3, "runs": 3, "skill": [True], "reasons": []})
    demo = summarise_exploration(ex, out)
    assert [p["difference"] for p in demo["pairs"]] == pytest.approx([0.02 - 0.35, 0.20 - 0.28])
    assert demo["mean_difference"] == pytest.approx((0.02 - 0.35 + 0.20 - 0.28) / 2)
    text = write_report(out, []).read_text()
    assert f"## LLM: an exploration trap, AEnt vs GRPO ({FEWER_SEEDS})" in text
    assert "2 pairs are a description, not a verdict" in text
    assert "stayed trapped in 3 of 3 runs; premise **holds** at level 1" in text
    assert "| ws1-s0 | no | 0.350 | no | 0.020 | -0.330 | 0.10 | saturated |" in text
    assert "| ws2-s0 | no | 0.280 | yes (90) | 0.200 | -0.080 | 0.20 | moves |" in text
    assert "on 12 pairs" in text and "**did not hold**" in text  # the committed verdict of the study
    assert check_report(out / "report.md", out / RECORD_NAME, out) == []
    # the gate is read, not written into the template
    out2, ex2 = _demo_run(tmp_path / "b", {"premise": "absent", "trapped_runs": 1, "runs": 3, "skill": [True],
                                            "reasons": []})
    summarise_exploration(ex2, out2)
    assert "stayed trapped in 1 of 3 runs; premise **absent**" in write_report(out2, []).read_text()


def test_the_committed_gate_is_the_example_studys(tmp_path):
    from reproduce.extra_stages import _committed

    study = json.loads((REPO / "docs" / "exploration_example" / "summary.json").read_text())
    got = _committed(load_config().exploration)
    assert got["gate"] == study["gates"]["1"] and got["selection"] == study["plan"]["selection"]
    assert got["verdicts"]["aent_vs_grpo"]["n"] >= 12
    missing = _committed(ExplorationSection(committed=str(tmp_path / "none.json")))
    assert missing is None


def test_the_calibration_section_shows_measurements_and_constants(tmp_path):
    out = tmp_path / "run"
    _calibration(calibration_path(out, "aent", 1))
    _calibration(calibration_path(out, "aent", 2), {**CONSTANTS, "band_low": 0.2})
    (out / "llm").mkdir(exist_ok=True)
    from reproduce.numbers import Fields
    from reproduce.report_extras import calibration_lines

    f = Fields()
    text, _ = f.finish("\n".join(calibration_lines(f, out)))
    assert "| `aent`, ws1 | 60 | 0.2600 | 0.2700 | 0.9958 | 0.7400 | 0.3600 | [0.1600, 0.2600] | [0.1350, 2.0000] | " \
           "0.4500 | 3.0000 | 0.9973 | 4 |" in text
    assert "| `aent`, ws2 | 60 | 0.2600 | 0.2700 | 0.9958 | 0.7400 | 0.3600 | [0.2000, 0.2600]" in text


def test_aent_band_is_judged_per_pair_with_its_own_calibrated_band(tmp_path):
    """Warm start 1's band is [0.1, 0.2] and warm start 2's [0.5, 0.6]; each run's clamped entropy sits inside its
    own band at every step, so every pair's share is 1 (minus the 0.5 of 'most'). Judged against the first run's
    band, warm start 2's pairs would score 0."""
    from reproduce.analysis import summarise_llm

    def run(d: Path, clamped: float, band: tuple[float, float] | None) -> Path:
        d.mkdir(parents=True)
        rows = [{"step": i + 1, "reward_mean": 0.5, "accuracy": 0.5, "entropy": 0.6, "clamped_entropy": clamped,
                 "ent_coef": 0.1, "response_len": 10.0} for i in range(4)]
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        ent = ({"method": "aent", "band_low": band[0], "band_high": band[1], "warmup": 1, "ent_coef": 0.1,
                "coef_min": 0.03, "coef_max": 0.5} if band else {"method": "none"})
        (d / "config.yaml").write_text(yaml.safe_dump({"entropy": ent}))
        return d

    pairs = [(1, 0), (1, 1), (2, 0), (2, 1)]
    bands = {1: (0.1, 0.2), 2: (0.5, 0.6)}
    runs = {"grpo": {p: run(tmp_path / f"g{p}", 0.3, None) for p in pairs},
            "aent": {p: run(tmp_path / f"a{p}", sum(bands[p[0]]) / 2, bands[p[0]]) for p in pairs}}
    s = summarise_llm(runs, {"grpo": "none", "aent": "aent"}, tmp_path / "s.json")
    band = next(f for f in s["findings"] if f["key"] == "aent_band")
    assert band["per_pair"] == {f"ws{w}-s{x}": pytest.approx(0.5) for w, x in pairs}
    assert "ws1: [0.1, 0.2] after step 1; ws2: [0.5, 0.6] after step 1" in band["claim"]
    coef = next(f for f in s["findings"] if f["key"] == "aent_coef")
    assert "box [0.03, 0.5], start 0.1, after step 1" in coef["text"]

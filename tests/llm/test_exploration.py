"""Tests of the exploration study's pieces on hand-built inputs: the worked-style classifier behind q0, the premise
gate's escape criterion and rule, the arms' overrides, the run record and resume; and a smoke run of the real
command line (tiny budget, seconds)."""

from __future__ import annotations

import json
import math

import pytest

from llm.studies.exploration_arms import ARMS, ArmConstants, arm_control, arm_overrides, needs_calibration
from llm.studies.exploration_gate import GateRule, escape_step, escaped, final_worked_share, gate_level
from llm.studies.exploration_levels import LEVELS
from llm.studies.exploration_runs import RECORD_KEYS, make_record, run_dir, run_or_load
from llm.studies.exploration_setting import style_of, worked_share


# ------------------------------------------------------------------------------------------------ q0's classifier
@pytest.mark.parametrize("text, style", [
    ("4-3=1\n1+3=4\n#### 4", "worked"),
    ("8+1=9\n9-2=7\n#### 7", "worked"),
    (" 4 - 3 = 1", "worked"),
    ("#### 4", "bare"),
    ("####4", "bare"),
    ("#", "bare"),
    ("4", "junk"),            # a digit alone is a bare guess without the marker, not a worked line
    ("4\n#### 4", "junk"),
    ("coins 4", "junk"),
    ("", "junk"),
    ("=4-3", "junk"),
])
def test_style_of_hand_built_samples(text, style):
    assert style_of(text) == style


def test_worked_share_counts_worked_starts_only():
    # One worked line, one bare answer, two junk first tokens: "not the bare marker" would say 3/4, q0 says 1/4.
    texts = ["4-3=1\n#### 1", "#### 1", "x 1", "1"]
    assert worked_share(texts) == 0.25
    assert sum(style_of(t) != "bare" for t in texts) / len(texts) == 0.75
    assert math.isnan(worked_share([]))


def test_levels_are_numbered_from_the_smallest_target():
    assert [lv.index for lv in LEVELS] == list(range(1, len(LEVELS) + 1))
    targets = [lv.target_mass for lv in LEVELS]
    assert targets == sorted(targets) and len(set(targets)) == len(targets)  # level 1 = deepest trap


# --------------------------------------------------------------------------------------------------- the gate
def _rows(shares):
    return [{"step": i + 1, "worked_share": s} for i, s in enumerate(shares)]


def test_escape_criterion_on_hand_rows():
    rule = GateRule(final_window=3)
    trapped = _rows([0.0, 0.02, 0.0, 0.05, 0.0, 0.03])
    assert not escaped(trapped, rule) and escape_step(trapped, rule) is None
    assert final_worked_share(trapped, rule) == pytest.approx(0.08 / 3)
    out = _rows([0.0, 0.0, 0.45, 0.6, 0.9, 1.0])
    assert escaped(out, rule)
    assert escape_step(out, rule) == 3  # trailing mean over steps 1-3 = 0.15
    with pytest.raises(ValueError, match="worked_share"):
        final_worked_share([{"step": 1}], rule)


START_OK = {"forced_accuracy": 0.6, "sampled_mean_at_k": 0.3, "worked_pass_at_k": 0.9}


def test_gate_fails_when_grpo_escapes():
    g = gate_level([START_OK], [True, True, False])
    assert g["premise"] == "absent" and g["trapped_runs"] == 1
    assert any("escaped in 2 of 3" in r for r in g["reasons"])


def test_gate_needs_a_strict_majority_trapped():
    assert gate_level([START_OK], [True, False])["premise"] == "absent"
    assert gate_level([START_OK], [False, False, True])["premise"] == "holds"


@pytest.mark.parametrize("start, why", [
    ({**START_OK, "forced_accuracy": 0.03, "sampled_mean_at_k": 0.0}, "forced accuracy"),
    ({**START_OK, "sampled_mean_at_k": 0.55}, "forced minus unforced"),
    ({**START_OK, "worked_pass_at_k": 0.5}, "worked pass@k"),
])
def test_gate_fails_when_the_skill_is_lost(start, why):
    g = gate_level([start], [False, False, False])
    assert g["premise"] == "absent" and any(why in r for r in g["reasons"])


def test_gate_rule_validates_its_fields():
    with pytest.raises(ValueError, match="escape_share"):
        GateRule(escape_share=1.5)
    with pytest.raises(ValueError, match="budget_steps"):
        GateRule(budget_steps=0)


# --------------------------------------------------------------------------------------------------- the arms
CONSTS = ArmConstants(ent_coef=0.01, coef_min=0.003, coef_max=0.05, band_low=0.1, band_high=0.2, coef_lr=0.02,
                      clamp_p=0.5, warmup=5)


def test_arm_overrides_come_from_the_constants():
    assert arm_overrides("grpo", None) == ["entropy.method=none"]
    assert "entropy.ent_coef=0.01" in arm_overrides("bonus_lam0", CONSTS)
    assert "entropy.ent_coef=0.05" in arm_overrides("bonus_cap", CONSTS)
    assert {"entropy.method=clamped_bonus", "entropy.clamp_p=0.5"} <= set(arm_overrides("clamped_bonus", CONSTS))
    aent = arm_overrides("aent_cal_p", CONSTS)
    assert {"entropy.method=aent", "entropy.band_low=0.1", "entropy.coef_max=0.05", "entropy.warmup=5"} <= set(aent)
    assert needs_calibration("aent_paper_p") == 0.33 and needs_calibration("aent_cal_p") is None
    assert arm_control("aent_cal_p", CONSTS)["band"] == [0.1, 0.2] and arm_control("bonus_cap", CONSTS) == {}
    from dataclasses import asdict

    from llm.studies.exploration_arms import calibrated_aent_overrides

    record = {"constants": asdict(CONSTS), "measured": {"clamped_entropy": 0.4}}  # as calibrate_start writes it
    assert calibrated_aent_overrides(record) == aent
    with pytest.raises(ValueError, match="needs calibrated"):
        arm_overrides("bonus_cap", None)
    with pytest.raises(ValueError, match="unknown arm"):
        needs_calibration("sac")
    assert len(ARMS) == 6


def test_arm_constants_validate():
    with pytest.raises(ValueError, match="ent_coef"):
        ArmConstants(ent_coef=1.0, coef_min=0.003, coef_max=0.05, band_low=0.1, band_high=0.2, coef_lr=0.02,
                     clamp_p=0.5)


# ----------------------------------------------------------------------------------------- record and resume
def _metrics(shares, k=8):
    rows = [{"step": 0, f"eval_mean_at_{k}": 0.3, f"eval_pass_at_{k}": 0.9, "eval_accuracy": 0.2}]
    for i, s in enumerate(shares):
        rows.append({"step": i + 1, "worked_share": s, "entropy": 0.5, "clamped_entropy": 0.4, "ent_coef": 0.0})
    rows[-1].update({f"eval_mean_at_{k}": 0.55, f"eval_pass_at_{k}": 0.95, "eval_accuracy": 0.6})
    return rows


def test_record_has_the_interface_fields():
    rec = make_record(_metrics([0.0] * 5 + [0.5] * 10), arm="grpo", level=1, warm_start=1, seed=4242,
                      role="verdict", k=8, rule=GateRule())
    assert set(RECORD_KEYS) <= set(rec)
    assert rec["escaped"] is True and rec["final_mean_at_k"] == 0.55 and rec["start_mean_at_k"] == 0.3
    assert rec["entropy_gap"] == pytest.approx(0.1) and rec["coef_state"] == ""
    json.dumps(rec)


def test_a_finished_run_is_not_rerun(tmp_path, monkeypatch):
    folder = run_dir(tmp_path, "grpo", 1, 1, 4242)
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({"arm": "grpo", "escaped": False}))
    import llm.train

    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(llm.train, "train", boom)
    assert run_or_load("exploration", [], folder)["escaped"] is False


# ------------------------------------------------------------------------------------------------------ smoke
SMOKE = ["--steps", "2", "--quiet", "model.vocab_size=300", "model.warm_start_steps=3", "model.bare_stage_steps=2",
         "data.n_train=32", "data.n_test=3", "eval_samples=2", "rollout.prompts_per_step=2", "rollout.group_size=2",
         "rollout.max_new_tokens=6", "optim.mini_batch_size=4", "optim.micro_batch_size=4"]


def _smoke(tmp_path, monkeypatch, *extra):
    from llm.studies.__main__ import main

    monkeypatch.setenv("AENT_CACHE", str(tmp_path / "cache"))
    argv = ["exploration", "--arms", "grpo", "--levels", "1", "--seeds", "4242", "--warm-starts", "1",
            "--out", str(tmp_path / "out"), *SMOKE, *extra]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["full_study"] is False
    for r in summary["records"]:
        assert set(RECORD_KEYS) <= set(r) and isinstance(r["escaped"], bool)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "REDUCED" in report
    n_esc = sum(r["escaped"] for r in summary["records"] if r["role"] == "verdict")
    assert f"- Level 1: GRPO escaped in {n_esc} of 1 verdict runs (warm start 1: {n_esc} of 1)." in report
    assert (tmp_path / "out" / "exploration.png").stat().st_size > 0
    import llm.train

    monkeypatch.setattr(llm.train, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-ran")))
    assert main(argv) == 0  # resumed: every run already has its record
    return summary


def test_smoke_runs_the_real_command_line_and_resumes(tmp_path, monkeypatch):
    """`python -m llm.studies exploration` end to end at a tiny budget, without the gate: summary.json with one
    GRPO record, report, figure; a second invocation trains nothing."""
    summary = _smoke(tmp_path, monkeypatch, "--no-gate")
    assert [(r["arm"], r["role"], r["seed"], r["warm_start"]) for r in summary["records"]] == [
        ("grpo", "verdict", 4242, 1)]
    assert all(j["verdict"] == "premise absent" for j in summary["judgements"])  # the gate was not run


@pytest.mark.slow
def test_smoke_with_the_gate(tmp_path, monkeypatch):
    """The same with the premise gate: three GRPO selection runs on warm start 0, and their gate."""
    summary = _smoke(tmp_path, monkeypatch)
    assert sum(r["role"] == "selection" for r in summary["records"]) == 3
    assert {"L1_ws0", "L1_ws1"} == set(summary["starts"]) and summary["gates"]["1"]["runs"] == 3


def test_command_line_rejects_selection_seeds(tmp_path, capsys):
    from llm.studies.__main__ import main

    assert main(["exploration", "--seeds", "100", "--warm-starts", "0", "--out", str(tmp_path)]) == 2
    assert "disjoint from the selection" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_with_calibrated_entropy_arms(tmp_path, monkeypatch):
    """AEnt and the full bonus at the cap get the constants of the calibration step (stubbed here: the tiny smoke
    policy earns no reward, so aent calibrate rightly refuses it) into their run configs."""
    import llm.studies.exploration_calibration as ec
    from llm.studies.__main__ import main

    seen = []

    def fake(cfg, clamp_p=None):
        seen.append((cfg.data.seed, cfg.max_steps, clamp_p))
        return {"constants": {"ent_coef": 0.01, "coef_min": 0.003, "coef_max": 0.05, "band_low": 0.1,
                              "band_high": 0.2, "coef_lr": 0.02, "clamp_p": 0.5, "warmup": 1}}

    monkeypatch.setattr(ec, "calibrate_start", fake)
    monkeypatch.setenv("AENT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["exploration", "--arms", "grpo,bonus_cap,aent_cal_p", "--levels", "1", "--seeds", "4242",
                 "--warm-starts", "1", "--no-gate", "--out", str(out), *SMOKE]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["arm"] for r in summary["records"]) == ["aent_cal_p", "bonus_cap", "grpo"]
    cal = summary["constants"]["L1_ws1_cal"]["constants"]
    aent_cfg = (out / "runs" / "L1" / "ws1" / "aent_cal_p" / "seed4242" / "config.yaml").read_text()
    assert "method: aent" in aent_cfg and f"coef_max: {cal['coef_max']}" in aent_cfg
    assert seen == [(1, 2, None)]  # one calibration per level x warm start, for the run's budget, reused by arms


def test_report_only_runs_nothing_and_lists_the_missing_runs(tmp_path, monkeypatch):
    import llm.train
    from llm.studies.exploration import Plan, run_exploration

    monkeypatch.setattr(llm.train, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    folder = run_dir(tmp_path, "grpo", 1, 0, 100)
    folder.mkdir(parents=True)
    rec = make_record(_metrics([0.0] * 12), arm="grpo", level=1, warm_start=0, seed=100, role="selection", k=8,
                      rule=GateRule())
    (folder / "record.json").write_text(json.dumps(rec))
    (tmp_path / "starts").mkdir()
    start = {**START_OK, "q0": 1e-3, "worked_first_mass": 1e-3, "sampled_worked_share": 0.0,
             "sampled_bare_share": 1.0, "sampled_junk_share": 0.0}
    (tmp_path / "starts" / "L1_ws0.json").write_text(json.dumps(start))
    summary = run_exploration(Plan(arms=("grpo",), levels=(1, 2), seeds=(4242,), warm_starts=(1,), report_only=True),
                              tmp_path, progress=False)
    assert [r["seed"] for r in summary["records"]] == [100]
    assert summary["gates"]["2"]["premise"] == "not run" and summary["full_study"] is False
    assert ("grpo", 1, 0, 101) in [tuple(m) for m in summary["missing_runs"]]
    # one trapped run of three does not decide level 1's gate: it is not judged, like level 2 without runs
    assert summary["gates"]["1"]["premise"] == "not run" and "1 of 3 gate runs" in summary["gates"]["1"]["reasons"][0]
    assert summary["judgements"] == []
    assert "Level 1: gate not decided (1 of 3 gate runs finished" in (tmp_path / "report.md").read_text()
    # a second trapped run decides it (2 of 3 planned are most of them, whatever the third does)
    folder = run_dir(tmp_path, "grpo", 1, 0, 101)
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({**rec, "seed": 101}))
    summary = run_exploration(Plan(arms=("grpo",), levels=(1, 2), seeds=(4242,), warm_starts=(1,), report_only=True),
                              tmp_path, progress=False)
    gate = summary["gates"]["1"]
    assert gate["premise"] == "holds" and gate["partial"].startswith("2 of 3 gate runs finished")
    assert {j["level"] for j in summary["judgements"]} == {1}


@pytest.mark.parametrize("escaped, decided", [
    ((), False), ((False,), False), ((True,), False), ((False, True), False),
    ((False, False), True), ((True, True), True), ((False, True, True), True), ((False, False, True), True)])
def test_a_partial_gate_is_decided_only_when_the_unfinished_runs_cannot_change_it(escaped, decided):
    from llm.studies.exploration import _gate_decided

    assert _gate_decided(list(escaped), 3) is decided


def test_the_full_plan_includes_its_report_only_reading_and_nothing_less():
    """A summary says "the full study" when its plan covers every arm, level and >= 12 pairs with the gate (a
    --report-only reading of a complete study included) and no planned run is missing."""
    from llm.studies.exploration import Plan

    assert Plan().full() and Plan(report_only=True).full()
    assert not Plan(gate_only=True).full() and not Plan(gate=False).full()
    assert not Plan(arms=("grpo", "aent_cal_p")).full() and not Plan(levels=(1, 2)).full()
    assert not Plan(seeds=(0, 1, 2)).full() and not Plan(warm_starts=(1,), seeds=tuple(range(12))).full()


# ------------------------------------------------------------------------------------------------ level search
def test_level_search_stops_at_the_first_checkpoint_and_the_rebuilt_policy_matches(tmp_path, monkeypatch):
    """The search's step count per target is the first checkpoint at or below it (None when never reached), and the
    policy the study then builds (a constant-lr bare stage planned that long) has exactly the searched mass."""
    import torch

    from llm.config import load_config
    from llm.data import format_prompts
    from llm.generate import encode_prompts
    from llm.policy import build_policy
    from llm.problems import load_problems
    from llm.studies.exploration_levels import Search, _mass, level_steps, search_bare_stage
    from llm.studies.exploration_setting import worked_start_ids

    monkeypatch.setenv("AENT_CACHE", str(tmp_path / "cache"))
    small = ["model.vocab_size=300", "model.warm_start_steps=3", "data.n_train=32", "data.n_test=3"]
    cfg = load_config("exploration", small)
    search = Search(lr=3e-3, every=2, max_steps=6)
    found = search_bare_stage(cfg, [1.0, 1e-30], search)
    traj = found["trajectory"]
    assert [s for s, _ in traj] == [0, 2, 4, 6]  # the tiny target is never reached: the whole budget runs
    assert found["steps"] == {1.0: 0, 1e-30: None}
    mid = traj[2][1]
    assert search_bare_stage(cfg, [mid], search)["steps"] == {mid: next(s for s, m in traj if m <= mid)}
    n = traj[2][0]
    rebuilt = load_config("exploration", [*small, f"model.bare_stage_steps={n}", f"model.bare_stage_lr={search.lr}",
                                          "model.bare_stage_schedule=constant"])
    train, test = load_problems(rebuilt)
    model, tok = build_policy(rebuilt.model, rebuilt.data, train)
    ids, mask = encode_prompts(tok, format_prompts(test, rebuilt.data.template, tok))
    assert _mass(model, ids, mask, torch.tensor(worked_start_ids(tok)), 1.0) == pytest.approx(mid, rel=1e-6)
    steps = level_steps(tmp_path / "out", cfg, 0, search)
    assert set(steps) == {lv.index for lv in LEVELS}
    assert json.loads((tmp_path / "out" / "levels" / "ws0.json").read_text())["trajectory"][0][0] == 0


# ------------------------------------------------------------------------------------------------------ --jobs
def _square_or_fail(x):
    if x < 0:
        raise ValueError(f"bad task {x}")
    return x * x


def test_run_many_keeps_the_task_order_and_counts_each_run():
    from llm.studies.exploration_runs import run_many

    ticks = []
    tasks = [(3,), (1,), (2,), (5,)]
    assert run_many(_square_or_fail, tasks, jobs=2, on_done=lambda: ticks.append(1)) == [9, 1, 4, 25]
    assert len(ticks) == 4
    assert run_many(_square_or_fail, tasks, jobs=1) == [9, 1, 4, 25]


def test_run_many_raises_a_workers_error():
    from llm.studies.exploration_runs import run_many

    with pytest.raises(ValueError, match="bad task -1"):
        run_many(_square_or_fail, [(1,), (-1,), (2,)], jobs=2)


def test_jobs_do_not_change_the_runs(tmp_path, monkeypatch):
    """Two runs side by side (--jobs 2, one torch thread each) give the records of the same runs one after the
    other (--jobs 1, the sequential study's one thread): parallelism is a speed setting, not a result setting."""
    from llm.studies.__main__ import main

    monkeypatch.setenv("AENT_CACHE", str(tmp_path / "cache"))
    got = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        assert main(["exploration", "--arms", "grpo", "--levels", "1", "--seeds", "4242,4243", "--warm-starts", "1",
                     "--no-gate", "--jobs", jobs, "--out", str(out), *SMOKE]) == 0
        recs = json.loads((out / "summary.json").read_text())["records"]
        got[jobs] = [{k: v for k, v in r.items() if k != "wall_s"} for r in recs]
    assert [r["seed"] for r in got["1"]] == [4242, 4243]
    assert got["1"] == got["2"]


def test_command_line_rejects_zero_jobs(tmp_path):
    from llm.studies.__main__ import main

    with pytest.raises(SystemExit):
        main(["exploration", "--jobs", "0", "--out", str(tmp_path)])

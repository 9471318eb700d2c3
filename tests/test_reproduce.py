"""The main job: resumable stages, the generated report and its number check, the verdict rule, the smoke run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.analysis import mean_std, summarise_llm, verdict
from reproduce.config import load_config
from reproduce.report import numbers_not_in_json, report_numbers
from reproduce.stages import Stage, StageError, run_stages

REPO = Path(__file__).resolve().parents[1]


def _write_cmd(path: Path, text: str) -> list[str]:
    return [sys.executable, "-c", f"import pathlib; pathlib.Path({str(path)!r}).write_text({text!r})"]


def test_stages_resume_skips_finished_and_reruns_changed(tmp_path):
    out = tmp_path / "out"
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    stages = [Stage("a", "A", cmd=_write_cmd(a, "1"), outputs=[a]), Stage("b", "B", cmd=_write_cmd(b, "1"),
                                                                          outputs=[b])]
    first = run_stages(out, stages, stream=open("/dev/null", "w"))
    assert set(first) == {"a", "b"} and a.read_text() == "1"
    second = run_stages(out, stages, stream=open("/dev/null", "w"))
    assert second == {}, "finished stages must not be redone"
    # A changed command, or a deleted output, makes the stage run again.
    b.unlink()
    stages[0] = Stage("a", "A", cmd=_write_cmd(a, "2"), outputs=[a])
    third = run_stages(out, stages, stream=open("/dev/null", "w"))
    assert set(third) == {"a", "b"} and a.read_text() == "2"


def test_failed_stage_names_itself_and_keeps_earlier_markers(tmp_path):
    out = tmp_path / "out"
    ok = tmp_path / "ok.txt"
    bad = [sys.executable, "-c", "import sys; print('boom: the cause'); sys.exit(3)"]
    stages = [Stage("ok", "ok", cmd=_write_cmd(ok, "x"), outputs=[ok]), Stage("bad", "bad", cmd=bad)]
    with pytest.raises(StageError, match=r"'bad' failed \(exit code 3\)[\s\S]*boom: the cause"):
        run_stages(out, stages, stream=open("/dev/null", "w"))
    assert (out / ".stages" / "ok.json").is_file() and not (out / ".stages" / "bad.json").exists()


def test_parallel_stages_all_run_and_missing_output_is_an_error(tmp_path):
    out = tmp_path / "out"
    files = [tmp_path / f"p{i}.txt" for i in range(3)]
    stages = [Stage(f"p{i}", f"p{i}", cmd=_write_cmd(f, str(i)), outputs=[f], parallel=True)
              for i, f in enumerate(files)]
    assert set(run_stages(out, stages, jobs=2, stream=open("/dev/null", "w"))) == {"p0", "p1", "p2"}
    assert [f.read_text() for f in files] == ["0", "1", "2"]
    ghost = Stage("ghost", "ghost", cmd=[sys.executable, "-c", "pass"], outputs=[tmp_path / "never.txt"])
    with pytest.raises(StageError, match="did not write"):
        run_stages(out, [ghost], stream=open("/dev/null", "w"))


def test_number_check_finds_numbers_absent_from_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"acc": 0.41234, "note": "went from 2.5 to 1.25", "n": 3}))
    report = tmp_path / "report.md"
    report.write_text("Accuracy 0.412 over 3 seeds; entropy 2.50 then 1.25. See ![f](figure1.png) and "
                      "`python -m toy figure1 --seeds 7`; pass@1 is fine.\n")
    assert numbers_not_in_json(report, [tmp_path / "a.json"]) == []
    report.write_text("Accuracy 0.413 and 17 runs.\n")
    assert numbers_not_in_json(report, [tmp_path / "a.json"]) == ["0.413", "17"]
    assert report_numbers("pass@1 mean@4 figure1.png x-2 1e-3 -0.5") == ["1e-3", "-0.5"]


@pytest.mark.parametrize(("diff", "se", "sign", "n", "expected"), [
    (0.3, 0.1, +1, 3, "held"), (-0.3, 0.1, +1, 3, "did not hold"), (0.15, 0.1, +1, 3, "inconclusive"),
    (-0.3, 0.1, -1, 3, "held"), (0.3, 0.0, +1, 1, "inconclusive"), (math.nan, 0.1, +1, 3, "inconclusive")])
def test_verdict_rule(diff, se, sign, n, expected):
    assert verdict(diff, se, sign, n) == expected


def _fake_run(d: Path, entropy: list[float], eval_acc: list[float | None]) -> Path:
    d.mkdir(parents=True)
    rows = [{"step": i + 1, "reward_mean": 0.5, "accuracy": 0.5, "entropy": h, "clamped_entropy": h / 2,
             "ent_coef": 0.0, "response_len": 10.0, **({"eval_accuracy": e} if e is not None else {})}
            for i, (h, e) in enumerate(zip(entropy, eval_acc))]
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return d


def test_summary_of_hand_made_runs(tmp_path):
    # Baseline entropy falls by 1.0 (seed 0) and 1.2 (seed 1); aent keeps it at 2.0 or 2.2.
    runs = {"grpo": {0: _fake_run(tmp_path / "g0", [2.0, 1.5, 1.2, 1.0], [0.1, None, None, 0.3]),
                     1: _fake_run(tmp_path / "g1", [2.0, 1.6, 1.0, 0.8], [0.2, None, None, 0.3])},
            "aent": {0: _fake_run(tmp_path / "a0", [2.0, 2.0, 2.0, 2.0], [0.1, None, None, 0.5]),
                     1: _fake_run(tmp_path / "a1", [2.0, 2.1, 2.2, 2.2], [0.2, None, None, 0.6])}}
    s = summarise_llm(runs, {"grpo": "none", "aent": "aent"}, tmp_path / "summary.json")
    assert s["accuracy_metric"] == "eval_accuracy"
    ent = s["methods"]["grpo"]["metrics"]["entropy"]
    assert ent["end_per_seed"] == [1.0, 0.8]  # last quarter of 4 steps = the last step
    assert ent["end_mean"] == pytest.approx(0.9) and ent["end_std"] == pytest.approx(math.sqrt(0.02))
    by = {(f["metric"], f.get("method")): f for f in s["findings"]}
    collapse = next(f for f in s["findings"] if f["claim"].endswith("(entropy collapse)"))
    gain = by[("eval_accuracy", None)]
    ent_claim, acc_claim = by[("entropy", "aent")], by[("eval_accuracy", "aent")]
    assert gain["effect"] == pytest.approx((0.3 - 0.1 + 0.3 - 0.2) / 2)
    assert gain["verdict"] == "inconclusive"  # 0.15 gain: clears 0 but not the +0.10 bar by two standard errors
    assert collapse["verdict"] == "held" and collapse["effect"] == pytest.approx(-1.1)
    assert ent_claim["verdict"] == "held" and ent_claim["effect"] == pytest.approx((2.0 + 2.2) / 2 - 0.9)
    assert acc_claim["metric"] == "eval_accuracy" and acc_claim["effect"] == pytest.approx(0.25)
    assert acc_claim["verdict"] == "held"  # 0.25 vs se sqrt(0.005/2 + 0) = 0.05
    assert json.loads((tmp_path / "summary.json").read_text())["baseline"] == "grpo"
    # The trainer's initial_eval.json (the policy before RL) becomes step 0 of the held-out curves.
    (tmp_path / "g0" / "initial_eval.json").write_text(json.dumps({"eval_accuracy": 0.05}))
    (tmp_path / "g1" / "initial_eval.json").write_text(json.dumps({"eval_accuracy": 0.15}))
    s = summarise_llm(runs, {"grpo": "none", "aent": "aent"}, tmp_path / "summary.json")
    acc = s["methods"]["grpo"]["metrics"]["eval_accuracy"]
    assert acc["start_mean"] == pytest.approx(0.1) and s["methods"]["grpo"]["curves"]["eval_accuracy"]["step"][0] == 0
    assert mean_std([1.0]) == (1.0, 0.0)


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("toy:\n  experiments: [figure2]\n")
    with pytest.raises(ValueError, match="toy.experiments"):
        load_config(bad)
    bad.write_text("llm:\n  seeds: [0, 0]\n")
    with pytest.raises(ValueError, match="llm.seeds"):
        load_config(bad)
    bad.write_text("llm:\n  sedes: [0]\n")
    with pytest.raises(ValueError, match="llm.sedes"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    assert load_config().llm.methods, "the default config must list LLM methods"


def test_smoke_run_end_to_end(tmp_path):
    """`python -m reproduce --smoke` runs every stage; the report, its figures and its numbers all check out."""
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "reproduce", "--smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out / "report.md"
    text = report.read_text()
    for png in ["toy/figure1/figure1.png", "toy/bias/bias.png", "toy/dynamics/dynamics.png", "llm/curves.png"]:
        assert (out / png).is_file() and f"]({png})" in text
    assert numbers_not_in_json(report, sorted(out.rglob("*.json"))) == []
    assert "| claim | verdict |" in text
    # Resuming redoes nothing but the cheap summary and report.
    again = subprocess.run([sys.executable, "-m", "reproduce", "--smoke", "--out", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming" in again.stderr


def test_export_copies_report_figures_and_json(tmp_path):
    from reproduce.export import export_report

    run = tmp_path / "run"
    (run / "toy" / "bias").mkdir(parents=True)
    (run / "toy" / "bias" / "bias.png").write_bytes(b"\x89PNG fake")
    (run / "toy" / "bias" / "bias.json").write_text(json.dumps({"x": 0.5}))
    (run / "run.json").write_text(json.dumps({"date": "2026-11-23"}))
    (run / "report.md").write_text("# r\n\n![bias](toy/bias/bias.png)\n\nvalue 0.500\n")
    dest = tmp_path / "docs" / "report_example.md"
    export_report(run, dest)
    text = dest.read_text()
    assert "![bias](report_example/toy/bias/bias.png)" in text
    assert (tmp_path / "docs" / "report_example" / "toy" / "bias" / "bias.png").read_bytes() == b"\x89PNG fake"
    assert numbers_not_in_json(dest, sorted((tmp_path / "docs" / "report_example").rglob("*.json"))) == []
    with pytest.raises(FileNotFoundError, match="report.md"):
        export_report(tmp_path / "nothing", dest)

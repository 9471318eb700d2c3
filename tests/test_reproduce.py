"""The main job: resumable stages, the generated report and its number check, the verdict rule, the smoke run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.analysis import mean_std, summarise_llm
from reproduce.config import load_config
from reproduce.numbers import RECORD_NAME, check_report
from reproduce.report import ReportCheckError, report_numbers, write_report
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


EXAMPLE = REPO / "docs" / "report_example"
EXPERIMENTS = ["figure1", "bias", "dynamics"]


@pytest.fixture
def example_run(tmp_path) -> Path:
    """A real report, generated from the JSON of the shipped example run (docs/report_example/)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    for stale in ("report.md", RECORD_NAME):
        (run / stale).unlink(missing_ok=True)
    write_report(run, EXPERIMENTS)
    return run


def test_report_number_tokens():
    assert report_numbers("pass@1 mean@4 figure1.png x-2 1e-3 -0.5") == ["1e-3", "-0.5"]
    assert report_numbers("a `python -m toy --seeds 7` b ![f](fig2.png) 0.25 [x](y3.md)") == ["0.25"]


def test_generated_report_is_the_shipped_example_and_passes(example_run):
    text = (example_run / "report.md").read_text()
    assert text == (REPO / "docs" / "report_example.md").read_text().replace("](report_example/", "](")
    assert check_report(example_run / "report.md", example_run / RECORD_NAME, example_run) == []
    record = json.loads((example_run / RECORD_NAME).read_text())
    assert len(record) == len(report_numbers(text)) > 500
    assert sum(e["source"] == "template" for e in record) == 4  # "Figure 1", "10^5": title; "440": the paper's run length
    # the shipped copy in docs/ checks against its own JSON too
    assert check_report(REPO / "docs" / "report_example.md", EXAMPLE / RECORD_NAME, EXAMPLE) == []


def _mutations(token: str, others: list[str], rng) -> list[str]:
    """Plausible single changes of a printed number: last digit +-1, a random value in its format, another
    number of the same report (the old check's blind spot), a dropped minus sign."""
    out = []
    last = int(token[-1])
    out.append(token[:-1] + str((last + rng.choice([1, 9])) % 10))
    decimals = len(token.split(".")[1]) if "." in token else 0
    out.append(f"{rng.uniform(0, 1) if decimals else rng.randint(0, 100):.{decimals}f}")
    out.append(rng.choice(others))
    if token.startswith("-"):
        out.append(token[1:])
    return [m for m in out if m != token]


def test_single_number_changes_are_caught(example_run):
    """>= 95% of single changed numbers in a real report are caught (measured: every one)."""
    import random

    from reproduce.numbers import _NUM, _blank

    report, record = example_run / "report.md", example_run / RECORD_NAME
    text = report.read_text()
    spots = list(_NUM.finditer(_blank(text)))
    tokens = [m.group(0) for m in spots]
    rng = random.Random(0)
    tried = caught = 0
    for m in rng.sample(spots, 120):
        for new in _mutations(m.group(0), tokens, rng):
            report.write_text(text[: m.start()] + new + text[m.end():])
            tried += 1
            caught += bool(check_report(report, record, example_run))
    assert tried > 300 and caught / tried >= 0.95, f"{caught}/{tried}"
    report.write_text(text)
    assert check_report(report, record, example_run) == []


def test_check_names_the_field_and_a_changed_json_value(example_run):
    summary = example_run / "llm" / "summary.json"
    data = json.loads(summary.read_text())
    lab = next(iter(data["methods"]))
    key = next(iter(data["methods"][lab]["metrics"]))
    data["methods"][lab]["metrics"][key]["end_mean"] += 0.5
    summary.write_text(json.dumps(data))
    problems = check_report(example_run / "report.md", example_run / RECORD_NAME, example_run)
    assert problems and all("llm/summary.json" in p and "end_mean" in p for p in problems)
    assert len(problems) == sum(1 for e in json.loads((example_run / RECORD_NAME).read_text())
                                if e.get("field", [])[-2:] == [key, "end_mean"] and lab in e["field"])


def test_report_is_written_only_after_its_check_passes(example_run, monkeypatch):
    import reproduce.report as rep

    monkeypatch.setattr(rep, "check_report", lambda *a: ["number 1: printed '9', the template gives '1'"])
    with pytest.raises(ReportCheckError, match="not written.*number 1"):
        write_report(example_run, EXPERIMENTS)
    assert not (example_run / "report.md").exists() and not (example_run / RECORD_NAME).exists()  # stale removed
    assert not list(example_run.glob(".*.tmp"))


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
    by = {f["key"]: f for f in s["findings"]}
    gain, collapse = by["gain_eval_accuracy"], by["collapse"]
    ent_claim, acc_claim = by["aent_entropy"], by["aent_acc"]
    assert gain["effect"] == pytest.approx((0.3 - 0.1 + 0.3 - 0.2) / 2)
    assert collapse["effect"] == pytest.approx(-1.1) and collapse["stat"] == pytest.approx(-11.0)
    # Paired per seed: aent - grpo = 2.0 - 1.0 and 2.2 - 0.8; accuracy 0.5 - 0.3 and 0.6 - 0.3.
    assert ent_claim["effect"] == pytest.approx((2.0 + 2.2) / 2 - 0.9) and ent_claim["per_pair"] == {
        "s0": pytest.approx(1.0), "s1": pytest.approx(1.4)}
    assert acc_claim["metric"] == "eval_accuracy" and acc_claim["effect"] == pytest.approx(0.25)
    # Two pairs leave one degree of freedom: |t| must pass 12.7 (11.0 for the collapse does not), so nothing holds;
    # the training reward (0.5 at every step) did not rise: its interval is the point 0, short of the SESOI; both
    # seeds start at 2.0 nats, so "starts above the bar" has no spread and holds.
    judged = {f["key"]: f["verdict"] for f in s["findings"] if "p" in f}
    assert judged.pop("start_entropy") == "held" and set(judged.values()) - {"did not hold"} == {"inconclusive"}
    assert by["reward"]["verdict"] == "did not hold"
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
    assert check_report(report, out / RECORD_NAME, out) == []
    assert "| claim | verdict |" in text
    # The AEnt runs trained with exactly the constants their calibration stage wrote (issue 23), and the report
    # shows them; the exploration level ran through the study's code, labelled as fewer seeds, and cites the
    # committed study's gate.
    import yaml

    from reproduce.report_extras import FEWER_SEEDS

    cal = json.loads((out / "llm" / "calibration" / "aent" / "ws0.json").read_text())["constants"]
    ent = yaml.safe_load((out / "llm" / "aent" / "ws0-seed-0" / "config.yaml").read_text())["entropy"]
    assert ent["method"] == "aent" and {k: ent[k] for k in cal} == cal
    assert "### AEnt's constants, calibrated per warm start" in text and FEWER_SEEDS in text
    demo = json.loads((out / "exploration" / "demo.json").read_text())
    assert [p["pair"] for p in demo["pairs"]] == ["ws1-s0"] and all(demo["pairs"][0][a] for a in demo["arms"])
    study = json.loads((REPO / "docs" / "exploration_example" / "summary.json").read_text())
    assert demo["committed"]["gate"] == study["gates"]["1"]
    # Resuming redoes nothing but the cheap summary and report.
    again = subprocess.run([sys.executable, "-m", "reproduce", "--smoke", "--out", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming" in again.stderr


def test_export_copies_report_figures_json_and_record(example_run, tmp_path):
    from reproduce.export import export_report

    dest = tmp_path / "docs" / "report_example.md"
    export_report(example_run, dest)
    text = dest.read_text()
    assert "![bias](report_example/toy/bias/bias.png)" in text
    assets = tmp_path / "docs" / "report_example"
    assert (assets / "toy" / "bias" / "bias.png").read_bytes() == (example_run / "toy/bias/bias.png").read_bytes()
    assert check_report(dest, assets / RECORD_NAME, assets) == []
    with pytest.raises(FileNotFoundError, match="report.md"):
        export_report(tmp_path / "nothing", dest)


def test_default_config_judges_off_the_selection(tmp_path):
    """The protocol's first rule on the shipped config: verdict warm starts and seeds are disjoint from the ones
    that chose the setting, there are at least two warm starts, and every candidate tried is listed."""
    from reproduce.__main__ import build_stages

    cfg = load_config()
    sel = cfg.llm.selection
    assert len(cfg.llm.warm_starts) >= 2 and not set(cfg.llm.warm_starts) & set(sel.warm_starts)
    assert not set(cfg.llm.seeds) & set(sel.seeds)
    assert len(sel.candidates) >= 20 and "small_style65_wrong75_w600" in sel.candidates
    stages, runs = build_stages(cfg, tmp_path)
    # The first stage of each warm start (its AEnt calibration, which builds it) goes first, side by side, then a
    # barrier, then everything else.
    n_ws = len(cfg.llm.warm_starts)
    heads = stages[:n_ws]
    assert all(s.parallel and s.name.startswith("calibrate-") for s in heads)
    assert sorted(next(a for a in s.cmd if a.startswith("data.seed=")) for s in heads) == [
        f"data.seed={w}" for w in sorted(cfg.llm.warm_starts)]
    assert stages[n_ws].name == "llm-warm-starts" and not stages[n_ws].parallel
    pairs = {(w, s) for w in cfg.llm.warm_starts for s in cfg.llm.seeds}
    assert all(set(r) == pairs for r in runs.values())


def test_config_rejects_bad_warm_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm:\n  warm_starts: [1, 1]\n")
    with pytest.raises(ValueError, match="llm.warm_starts"):
        load_config(bad)
    bad.write_text("llm:\n  selection: {warm_startz: [0]}\n")
    with pytest.raises(ValueError, match="llm.selection.warm_startz"):
        load_config(bad)


def test_a_labels_method_is_read_from_its_saved_config_with_presets(tmp_path):
    """The main job names each label's method from its run's saved config.yaml (the trainer's loader), so a
    preset counts: here the trainer config says ``preset: threshold`` and the label's overrides name no method,
    which the override parsing this replaced read as "none"."""
    from llm.config import load_config as load_train_config
    from llm.provenance import write_run_config
    from reproduce.analysis import saved_method

    tiny = (REPO / "configs" / "tiny.yaml").read_text()
    assert "\n  method: none\n" in tiny
    trainer_cfg = tmp_path / "thr.yaml"
    trainer_cfg.write_text(tiny.replace("\n  method: none\n", "\n  preset: threshold\n"))
    for label, overrides, want in (("thr", [], "threshold"),
                                   ("r1", ["entropy.preset=aent_r1_distill", "entropy.method=aent"], "aent")):
        run = tmp_path / label / "seed-0"
        run.mkdir(parents=True)
        write_run_config(load_train_config(trainer_cfg, overrides), run / "config.yaml")
        assert saved_method(run) == want
    with pytest.raises(FileNotFoundError, match="never started"):
        saved_method(tmp_path / "missing")


def _adding_a_toy_experiment_blocks() -> tuple[str, str]:
    """The module and the registry line of docs/toy/guide.md, "Adding a toy experiment"."""
    text = (REPO / "docs" / "toy" / "guide.md").read_text()
    section = text[text.index("## Adding a toy experiment"):]
    blocks = section.split("```python\n")[1:3]
    return blocks[0].split("```")[0], blocks[1].split("```")[0]


def test_the_documented_toy_experiment_needs_only_its_module_and_one_registry_line(tmp_path, monkeypatch):
    """docs/toy/guide.md's worked example, as written: its module, and its line in toy.experiments.EXPERIMENTS
    (nothing else). The main job's config accepts it, its stage takes the module's EXPECTED_S, the toy command
    line runs it, and the report heads its section with the module's TITLE."""
    import importlib.util

    from reproduce.__main__ import build_stages
    from toy.__main__ import main as toy_main
    from toy.experiments import EXPERIMENTS

    module_src, line = _adding_a_toy_experiment_blocks()
    (tmp_path / "flat.py").write_text(module_src)  # a file: the command line reads the field docs from source
    spec = importlib.util.spec_from_file_location("toy.experiments.flat", tmp_path / "flat.py")
    flat = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "toy.experiments.flat", flat)
    spec.loader.exec_module(flat)
    for name, entry in eval("{" + line.strip() + "}", {"flat": flat}).items():
        monkeypatch.setitem(EXPERIMENTS, name, entry)

    yaml_cfg = tmp_path / "flat.yaml"
    yaml_cfg.write_text('toy:\n  experiments: [flat]\n  smoke: true\n  args: {flat: [--clamp-ps, "0.5"]}\n')
    cfg = load_config(yaml_cfg)
    out = tmp_path / "run"
    stages, runs = build_stages(cfg, out)
    (stage,) = stages
    assert not runs and stage.name == "toy-flat" and stage.expected_s == pytest.approx(1.0 / 6)
    assert stage.cmd[1:4] == ["-m", "toy", "flat"] and stage.cmd[-2:] == ["--clamp-ps", "0.5"]
    assert toy_main(stage.cmd[3:]) == 0  # what the stage's subprocess runs
    doc = json.loads((out / "toy" / "flat" / "flat.json").read_text())
    assert doc["config"] == {"n_arms": 100, "clamp_ps": [0.5], "smoke": True}
    # the reference: 50 of 100 flat arms kept
    assert doc["results"]["table"][0]["clamped entropy"] == pytest.approx(math.log(50), abs=1e-6)
    text = write_report(out, cfg.toy.experiments).read_text()
    assert "## Toy: The clamped entropy of a flat policy" in text and "![flat](toy/flat/flat.png)" in text
    assert "| p | clamped entropy | log kept |\n|---|---|---|\n| 0.500 | 3.912 | 3.912 |" in text
    assert "✅ held" in text

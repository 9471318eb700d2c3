"""Smoke test of benchmarks/vs_trl.py (skipped when trl is not installed): the fixed-length sampling hook
against a direct check, and one tiny alternated round through both trainers writing its JSON and table.
Timings are never asserted (STYLE.md rule 10)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("trl")


def _load(name: str):
    """Import benchmarks/<name>.py (a script, not a package module) under its own name."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _bench():
    return _load("vs_trl")


def test_no_eos_hook_never_samples_eos_and_restores():
    import llm.generate as gen

    bench = _bench()
    orig = gen.sample_next
    logits = torch.zeros(64, 10)
    logits[:, 3] = 50.0  # EOS (id 3) would be sampled with probability ~1
    with bench.no_eos([3]):
        tok, _ = gen.sample_next(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert not bool((tok == 3).any())
    assert gen.sample_next is orig
    tok, _ = gen.sample_next(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert bool((tok == 3).all())


def test_smoke_round_writes_results(tmp_path):
    bench = _bench()
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "vs_trl.json").read_text())
    assert res["ours_step_s"] and res["trl_step_s"]
    assert res["optimizer_steps_per_global_step"] == 2  # P*G/M = 2*2/2
    assert [s["trainer"] for s in res["segments"]] == ["ours", "trl"]
    assert "Speed-up" in (tmp_path / "vs_trl.md").read_text()


# ------------------------------------------------------------------------- time to target (vs_trl_target.py)
def _target_bench():
    return _load("vs_trl_target")


def test_time_to_mark_is_the_first_evaluation_at_or_above_it():
    bench = _target_bench()
    curve = [{"step": 1, "train_s": 3.0, "accuracy": 0.10}, {"step": 2, "train_s": 6.0, "accuracy": 0.16},
             {"step": 3, "train_s": 9.0, "accuracy": 0.12}, {"step": 4, "train_s": 12.0, "accuracy": 0.25}]
    assert bench.time_to(curve, 0.15) == 6.0
    assert bench.time_to(curve, 0.20) == 12.0  # step 3 fell back below; the mark is reached at step 4
    assert bench.time_to(curve, 0.30) is None


def test_summary_ratios_and_unreached_marks():
    bench = _target_bench()
    curve_ours = [{"step": 1, "train_s": 2.0, "accuracy": 0.2}, {"step": 2, "train_s": 4.0, "accuracy": 0.3}]
    curve_trl = [{"step": 1, "train_s": 5.0, "accuracy": 0.2}, {"step": 2, "train_s": 10.0, "accuracy": 0.2}]
    res = {"baseline_accuracy": 0.1, "runs": [
        {"trainer": "ours", "seed": 0, "curve": curve_ours, "step_s": [2.0, 2.0]},
        {"trainer": "trl", "seed": 0, "curve": curve_trl, "step_s": [5.0, 5.0]}]}
    s = bench.summarise(res)
    assert s["ours"]["time_to_+0.05_s"] == [2.0] and s["trl"]["time_to_+0.05_s"] == [5.0]
    assert s["trl_over_ours"]["time_to_+0.05"] == 2.5 and s["trl_over_ours"]["per_step"] == 2.5
    assert s["ours"]["time_to_+0.10_s"] == [2.0] and s["trl"]["time_to_+0.10_s"] == [5.0]
    assert s["ours"]["completion_len_mean"] is None  # not recorded: reported as unknown, not as 0
    res["runs"][1]["curve"] = [{"step": 1, "train_s": 5.0, "accuracy": 0.12}]
    res["runs"][0]["completion_len"], res["runs"][1]["completion_len"] = [8.0, 11.0], [6.5]
    s = bench.summarise(res)
    assert s["trl"]["time_to_+0.05_s"] == [None] and s["trl_over_ours"]["time_to_+0.05"] is None
    assert s["ours"]["completion_len_mean"] == 9.5 and s["trl"]["completion_len_mean"] == 6.5


@pytest.mark.slow
def test_target_smoke_run_writes_results(tmp_path):
    bench = _target_bench()
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "vs_trl_target.json").read_text())
    assert [r["trainer"] for r in res["runs"]] == ["ours", "trl"]
    for r in res["runs"]:
        assert [c["step"] for c in r["curve"]] == [1, 2] and len(r["step_s"]) == 2
        assert r["completion_len"] and all(x >= 1.0 for x in r["completion_len"])  # EOS counts: at least 1
    assert "Baseline (warm start)" in (tmp_path / "vs_trl_target.md").read_text()

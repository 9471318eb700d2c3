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


def _bench():
    spec = importlib.util.spec_from_file_location("vs_trl", ROOT / "benchmarks" / "vs_trl.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_trl"] = mod
    spec.loader.exec_module(mod)
    return mod


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

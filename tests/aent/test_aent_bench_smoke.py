"""Smoke test of benchmarks/entropy_bench.py: --quick at a tiny size writes the JSON and Markdown it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "entropy_bench.py"


def test_quick_run_writes_json_and_markdown(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--vocab", "4096", "--tokens", "32", "--dtypes", "fp32,bf16",
           "--no-memory", "--step-hidden", "16", "--step-tokens", "32", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    res = json.loads((tmp_path / "entropy_bench.json").read_text())
    assert set(res) == {"rows", "ratios", "meta", "step"}
    assert [r["dtype"] for r in res["step"]] == ["fp32", "bf16"]
    for r in res["step"]:
        assert r["plain_s"] > 0 and r["aent_s"] > 0 and r["aent_over_plain"] > 0 and r["hidden"] == 16
    impls = {(r["impl"], r["dtype"]) for r in res["rows"]}
    assert impls == {(i, d) for i in ("full", "ours", "reference") for d in ("fp32", "bf16")}
    for r in res["rows"]:
        assert {"impl", "dtype", "tokens", "vocab", "time_s_median", "time_s_all", "cpu_s_median"} <= set(r)
        assert r["tokens"] == 32 and r["vocab"] == 4096 and r["time_s_median"] > 0
    for r in res["ratios"]:
        assert {"dtype", "tokens", "ours_over_full", "ours_over_full_cpu", "reference_over_ours"} <= set(r)
    assert {"command", "torch", "chunk_bytes", "chunk_rows"} <= set(res["meta"])
    md = (tmp_path / "entropy_bench.md").read_text()
    assert "| ours |" in md and "Increment of clamping inside the step" in md


def test_memory_case_reports_peak_and_gradient_size():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from entropy_bench import memory_case
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    m = memory_case("ours", "fp32", 16, 4096, 0.33, "cpu")
    assert set(m) == {"peak_extra_mb", "grad_mb", "working_mb"}
    assert m["grad_mb"] == round(16 * 4096 * 4 / 2**20, 1) and m["peak_extra_mb"] >= 0

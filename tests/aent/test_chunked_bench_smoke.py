"""Smoke test of benchmarks/chunked_loss_bench.py at a tiny size: the three paths, both dtypes, agreement and targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "chunked_loss_bench.py"


def test_tiny_run_writes_cases_agreement_and_targets(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--tokens", "24", "--vocab", "600", "--hidden", "16", "--chunk-size", "5",
           "--threads", "1", "--out", str(tmp_path)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    res = json.loads((tmp_path / "chunked_loss_bench.json").read_text())
    paths = ("chunked", "fused")
    assert set(res["cases"]) == {f"{p} {d}" for p in ("materialised", *paths) for d in ("fp32", "bf16")}
    for case in res["cases"].values():
        assert case["time_s"] > 0 and case["peak_extra_mib"] >= 0 and case["grad_mib"] > 0
    for path in paths:
        fp32 = res["agreement"][f"fp32 {path} vs materialised"]
        assert set(fp32) == {"logp", "entropy", "clamped_entropy", "loss", "grad_hidden", "grad_weight"}
        assert max(fp32.values()) < 1e-5
        assert res["targets"][f"fp32 {path} agreement <= 1e-5"]
        assert res["targets"][f"bf16 {path} agreement <= materialised bf16 error"]
        assert f"target fp32 {path} time <= 1.2x:" in done.stdout

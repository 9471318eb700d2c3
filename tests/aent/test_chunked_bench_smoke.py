"""Smoke test of benchmarks/chunked_loss_bench.py at a tiny size: both paths, both dtypes, agreement and targets."""

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
    assert set(res["cases"]) == {f"{p} {d}" for p in ("materialised", "chunked") for d in ("fp32", "bf16")}
    for case in res["cases"].values():
        assert case["time_s"] > 0 and case["peak_extra_mib"] >= 0 and case["grad_mib"] > 0
    fp32 = res["agreement"]["fp32 chunked vs materialised"]
    assert set(fp32) == {"logp", "entropy", "clamped_entropy", "grad_hidden", "grad_weight"}
    assert max(fp32.values()) < 1e-5
    assert res["targets"]["fp32 agreement <= 1e-5"] and res["targets"]["bf16 agreement <= materialised bf16 error"]
    assert "target fp32 time <= 1.2x:" in done.stdout

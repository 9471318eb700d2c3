"""``python -m toy``: the real entry point with --smoke, the JSON schema and verdicts, options, errors, the guide."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from toy.__main__ import build_parser, main
from toy.experiments import EXPERIMENTS

REPO = Path(__file__).resolve().parents[2]
TOP_KEYS = {"schema_version", "experiment", "command", "config", "results", "verdicts", "wall_time_s", "machine"}
VERDICTS = {"held", "did not hold", "inconclusive"}


def test_help_lists_every_experiment():
    out = subprocess.run([sys.executable, "-m", "toy", "--help"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0
    for name in ("figure1", "bias", "dynamics"):
        assert name in out.stdout


def _run(name, tmp_path, *extra):
    assert main([name, "--out", str(tmp_path), "--smoke", "--no-progress", *extra]) == 0
    doc = json.loads((tmp_path / f"{name}.json").read_text())
    png = (tmp_path / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert TOP_KEYS <= set(doc) and doc["experiment"] == name and doc["config"]["smoke"] is True
    assert doc["verdicts"], "every experiment states at least one verdict"
    for v in doc["verdicts"]:
        assert set(v) == {"claim", "verdict", "text"} and v["verdict"] in VERDICTS
        assert v["claim"] and v["text"].endswith(".") and any(ch.isdigit() for ch in v["text"])
    return doc


def test_figure1_smoke(tmp_path):
    doc = _run("figure1", tmp_path)
    res, cfg = doc["results"], doc["config"]
    assert set(res["cells"]) == set(res["arms"]) >= {"none", "entropy_bonus", "aent"}
    assert any(k.startswith("clamped_p") for k in res["cells"])
    for per_m in res["cells"].values():
        assert set(per_m) == {str(m) for m in cfg["m_values"]}
        for cell in per_m.values():
            assert len(cell["final_per_seed"]) == cfg["seeds"]
            assert cell["final_mean"] == pytest.approx(sum(cell["final_per_seed"]) / cfg["seeds"], abs=1e-6)
            assert len(cell["curve_mean"]) == len(res["curve_steps"]) == len(cell["curve_std"])
            assert all(0.0 <= x <= 1.0 for x in cell["curve_mean"])
    # the last curve point is the final success probability
    cell = res["cells"]["none"][str(cfg["m_values"][0])]
    assert cell["curve_mean"][-1] == pytest.approx(cell["final_mean"], abs=1e-6)


def test_bias_smoke(tmp_path):
    doc = _run("bias", tmp_path)
    rows = doc["results"]["tree"]
    assert rows and all(r["bias"] >= -1e-12 for r in rows)
    # hand-checkable case: |A| = 2, H = 1, one optimal arm of reward 1, the other 0, p = 0:
    # bias = 1 / (1 + e^{1/lambda}), bound = lambda log 2
    lam = 0.5
    case = next(r for r in rows if r["vocab"] == 2 and r["horizon"] == 1 and r["m"] == 1 and r["clamp_p"] == 0.0
                and r["ent_coef"] == lam and r["partial_credit"] == 0.0)
    assert case["bias"] == pytest.approx(1 / (1 + math.exp(1 / lam)), rel=1e-9)
    assert case["bound"] == pytest.approx(lam * math.log(2), rel=1e-12)


def test_dynamics_smoke(tmp_path):
    doc = _run("dynamics", tmp_path)
    first = doc["results"]["first_order"]
    assert set(first) == {"exact_pg", "token"}
    assert all(r["bound_holds_frac"] == 1.0 for rows in first.values() for r in rows)


def test_explicit_option_beats_smoke(tmp_path):
    doc = _run("figure1", tmp_path, "--steps", "3", "--m-values", "2", "7", "--clamp-ps", "0.5")
    assert doc["config"]["steps"] == 3 and doc["config"]["m_values"] == [2, 7]
    assert set(doc["results"]["cells"]) == {"none", "entropy_bonus", "clamped_p0.5", "aent"}
    assert len(doc["results"]["curve_steps"]) == 4


@pytest.mark.parametrize(("argv", "needle"), [
    (["figure1", "--seeds", "1"], "seeds"),
    (["figure1", "--estimator", "ppo"], "estimator"),
    (["bias", "--clamp-ps", "1.5"], "clamp_ps"),
    (["dynamics", "--lrs", "0.1"], "lrs"),
    (["nonsense"], "invalid choice"),
])
def test_bad_options_exit_2_with_a_message(tmp_path, capsys, argv, needle):
    with pytest.raises(SystemExit) as err:
        main([*argv[:1], "--out", str(tmp_path), *argv[1:]] if argv[0] in EXPERIMENTS else argv)
    assert err.value.code == 2
    assert needle in capsys.readouterr().err


def test_guide_documents_every_option():
    guide = (REPO / "docs" / "toy" / "guide.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "experiment")
    for name, p in sub.choices.items():
        assert f"python -m toy {name}" in guide
        for action in p._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in guide, f"{name} {flag} missing from docs/toy/guide.md"

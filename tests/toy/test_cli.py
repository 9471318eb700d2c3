"""``python -m toy``: the real entry point with --smoke, the JSON schema and verdicts, options, errors, the guide."""

from __future__ import annotations

import argparse
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


SMOKE_VERDICTS = REPO / "docs" / "toy" / "figure1_smoke_verdicts.json"


def test_figure1_smoke(tmp_path):
    doc = _run("figure1", tmp_path)
    res, cfg = doc["results"], doc["config"]
    # the JSON records the regime, the seeds and the closed-form predictions
    assert res["regime"]["rewards"] == {"irrelevant": 0.0, "trap": cfg["bandit"]["trap_reward"], "optimal": 1.0}
    assert res["regime"]["tree"]["n_sequences"] == cfg["tree"]["vocab"] ** cfg["tree"]["horizon"]
    assert res["seeds"] == list(range(cfg["seed"], cfg["seed"] + cfg["seeds"]))
    for domain, estimators in (("bandit", ("sampled", "exact")), ("tree", ("sampled",))):
        dom = res[domain]
        pred = dom["plan"]["predictions"]
        assert set(pred) == set(dom["arms"]) >= {"none", "aent"}
        for est in estimators:
            cells, n_seeds = dom[est]["cells"], len(dom[est]["seeds"])
            assert set(cells) == set(dom["arms"])
            assert n_seeds == (cfg["exact_seeds"] if est == "exact" else cfg["seeds"])
            for name, per_m in cells.items():
                assert set(per_m) == {str(m) for m in cfg["m_values"]} == set(pred[name])
                for cell in per_m.values():
                    assert len(cell["value"]) == len(cell["p_opt"]) == len(cell["escaped"]) == n_seeds
                    assert len(cell["value_curve"]) == len(dom[est]["curve_steps"])
                    assert cell["value_curve"][-1] == pytest.approx(sum(cell["value"]) / n_seeds, abs=1e-5)
                    assert all(0.0 <= v <= 1.0 + 1e-6 for v in cell["value"])
    # the tree's full-bonus prediction is the Gibbs optimum over sequences, the bandit closed form with N = A^H
    from toy.regime import TrapRegime, gibbs_point

    reg = TrapRegime(n_items=cfg["tree"]["vocab"] ** cfg["tree"]["horizon"], n_traps=cfg["tree"]["n_traps"],
                     trap_reward=cfg["tree"]["trap_reward"])
    lam = cfg["tree_ent_coef"]
    for m in cfg["m_values"]:
        assert res["tree"]["plan"]["predictions"][f"entropy_bonus_l{lam:g}"][str(m)]["value"] == pytest.approx(
            gibbs_point(reg, m, lam)["value"], abs=1e-6)  # float32 reward table (0.6)
    labels = " ".join(v["claim"] for v in doc["verdicts"])
    assert "[bandit sampled" in labels and "[bandit exact" in labels and "[tree sampled" in labels
    assert res["table"] and {"sweep", "arm"} <= set(res["table"][0])
    # the verdicts recorded next to the docs (docs/toy/results.md) are those of this fresh smoke run
    recorded = json.loads(SMOKE_VERDICTS.read_text())
    assert recorded["command"] == "python -m toy figure1 --smoke"
    got = [{"claim": v["claim"], "verdict": v["verdict"]} for v in doc["verdicts"]]
    assert got == recorded["verdicts"], "docs/toy/figure1_smoke_verdicts.json disagrees with a fresh smoke run"


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
    clip = doc["results"]["clipping"]
    assert {"coin_flip", "learnable"} <= set(clip)
    assert all(set(clip[s]["arms"]) == {"no_clip", "clip_low", "clip_high", "both"} for s in ("coin_flip", "learnable"))
    labelled = [v["claim"] for v in doc["verdicts"] if "clip" in v["claim"]]
    assert len(labelled) == 8 and all(c.startswith(("[per update]", "[coin-flip rewards", "[learnable rewards"))
                                      for c in labelled), "every clip verdict names its setting"


def test_explicit_option_beats_smoke(tmp_path):
    doc = _run("figure1", tmp_path, "--bandit-steps", "30", "--m-values", "2", "7", "--clamp-ps", "0.5", "--ent-coefs",
               "0.1")
    assert doc["config"]["bandit"]["steps"] == 30 and doc["config"]["m_values"] == [2, 7]
    assert doc["config"]["bandit"]["n_arms"] == 11_000  # the rest of the section from --smoke
    assert set(doc["results"]["bandit"]["sampled"]["cells"]) == {"none", "entropy_bonus_l0.1", "clamped_p0.5_l0.1",
                                                                  "aent", "aent_oracle"}
    assert set(doc["results"]["tree"]["sampled"]["cells"]) >= {"none", "entropy_bonus_l0.1", "aent"}
    assert doc["results"]["bandit"]["sampled"]["curve_steps"] == [0, 10, 20, 30]


@pytest.mark.parametrize(("argv", "needle"), [
    (["figure1", "--seeds", "1"], "seeds"),
    (["figure1", "--bandit-baseline", "std"], "bandit section (options --bandit-FIELD): TrapBanditConfig.baseline"),
    (["figure1", "--tree-steps", "0"], "TrapTreeConfig.steps must be >= 1"),
    (["figure1", "--bandit-steps", "10"], "figure1 option bandit.steps must be >= llm_budget=100"),
    (["figure1", "--n-arms", "100"], "--n-arms is now --bandit-n-arms: a section's options carry its name"),
    (["figure1", "--lr", "8"], "--lr is now --bandit-lr and --tree-lr"),
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
                if flag.startswith("--") and flag != "--help" and action.help != argparse.SUPPRESS:
                    assert f"`{flag}" in guide, f"{name} {flag} missing from docs/toy/guide.md"

"""The LLM comparison's claims (reproduce.findings) on hand-made paired runs whose verdicts are worked out by hand
from the protocol (docs/protocol.md): paired t, SESOI, Holm within a family, selection and headroom."""

import json
import math
from pathlib import Path

import pytest
import yaml

from llm.studies.verdict import holm, paired_t
from reproduce.analysis import summarise_llm
from reproduce.findings import ACC_SESOI, COLLAPSE_RATIO, ENTROPY_SESOI_FRAC, MIN_GAIN, START_ENTROPY_BAR

PAIRS = [(1, 0), (1, 1), (2, 0), (2, 1)]  # warm start x seed


def _run(d: Path, entropy, reward, evals=None, initial=None, cfg=None, coef=None, clamped=None) -> Path:
    d.mkdir(parents=True)
    rows = []
    for i, (h, r) in enumerate(zip(entropy, reward)):
        row = {"step": i + 1, "reward_mean": r, "accuracy": r, "entropy": h,
               "clamped_entropy": h if clamped is None else clamped[i], "ent_coef": 0.0 if coef is None else coef[i],
               "response_len": 10.0}
        if evals and i + 1 in evals:
            row.update(evals[i + 1])
        rows.append(row)
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if initial:
        (d / "initial_eval.json").write_text(json.dumps(initial))
    if cfg:
        (d / "config.yaml").write_text(yaml.safe_dump({"entropy": cfg}))
    return d


def _ev(acc, mean, pas):
    return {"eval_accuracy": acc, "eval_mean_at_4": mean, "eval_pass_at_4": pas}


def _grpo(tmp_path, gains=(0.30, 0.32, 0.34, 0.36), ends=(0.2, 0.24, 0.22, 0.18), final_acc=None):
    """Entropy 0.6 -> ends; greedy 0.1 -> 0.1 + gain; mean@4 0.1 -> 0.35 + i/50; pass@4 0.5 -> 0.45 - i/100."""
    return {p: _run(tmp_path / f"g{p[0]}{p[1]}", [0.6, 0.5, 0.3, end], [0.1, 0.2, 0.3, 0.4 + i / 100],
                    {4: _ev(final_acc[i] if final_acc else 0.1 + gain, 0.35 + i / 50, 0.45 - i / 100)},
                    _ev(0.1, 0.1, 0.5))
            for i, (p, gain, end) in enumerate(zip(PAIRS, gains, ends))}


def _by_key(s):
    return {f["key"]: f for f in s["findings"]}


def test_baseline_learns_and_collapses(tmp_path):
    s = summarise_llm({"grpo": _grpo(tmp_path)}, {"grpo": "none"}, tmp_path / "summary.json")
    by = _by_key(s)
    # Entropy changes -0.4, -0.36, -0.38, -0.42 (SESOI 0.1 x 0.6 = 0.06): paired t far beyond, mean -0.39.
    collapse = by["collapse"]
    assert collapse["effect"] == pytest.approx(-0.39) and collapse["sesoi"] == pytest.approx(ENTROPY_SESOI_FRAC * 0.6)
    assert collapse["p"] == pytest.approx(paired_t([-0.4, -0.36, -0.38, -0.42]).p)
    assert collapse["verdict"] == "held" and collapse["n"] == 4
    assert by["start_entropy"]["effect"] == pytest.approx(0.6 - START_ENTROPY_BAR)
    assert by["start_entropy"]["verdict"] == "held"  # every pair starts at 0.6 (sd 0: p = 0)
    ratio = by["collapse_ratio"]
    assert ratio["effect"] == pytest.approx((0.2 + 0.24 + 0.22 + 0.18) / 4 / 0.6 - COLLAPSE_RATIO)
    assert ratio["verdict"] == "held"
    assert by["gain_eval_accuracy"]["effect"] == pytest.approx(0.33) and by["gain_eval_accuracy"]["verdict"] == "held"
    assert by["gain_eval_mean_at_4"]["verdict"] == "held" and by["reward"]["verdict"] == "held"
    # pass@4 0.5 -> 0.45, 0.44, 0.43, 0.42: falls by 0.065 on average, beyond the SESOI 0.05.
    assert by["pass_falls"]["effect"] == pytest.approx(-0.065) and by["pass_falls"]["verdict"] == "held"
    # One family (the baseline's), Holm over its seven claims.
    raw = [f["p"] for f in s["findings"]]
    assert [f["p_adj"] for f in s["findings"]] == pytest.approx(holm(raw))
    assert s["protocol"]["warm_starts"] == [1, 2] and s["protocol"]["n_pairs"] == 4
    assert "ws1-s0" in s["methods"]["grpo"]["pairs"]


def test_a_significant_gain_below_its_sesoi_does_not_hold(tmp_path):
    # Gains 0.05, 0.06, 0.05, 0.06: p ~ 1e-4, but the 99% (Bonferroni) CI ends near 0.07 < MIN_GAIN.
    s = summarise_llm({"grpo": _grpo(tmp_path, gains=(0.05, 0.06, 0.05, 0.06))}, {"grpo": "none"},
                      tmp_path / "s.json")
    g = _by_key(s)["gain_eval_accuracy"]
    assert g["p"] < 0.001 and g["ci_high"] < MIN_GAIN and g["verdict"] == "did not hold"


def test_selected_claims_are_judged_off_the_selection(tmp_path):
    runs = {"grpo": _grpo(tmp_path)}
    s = summarise_llm(runs, {"grpo": "none"}, tmp_path / "a.json", selection={"warm_starts": [1]})
    g = _by_key(s)["gain_eval_accuracy"]
    assert g["n"] == 2 and g["effect"] == pytest.approx(0.35)  # warm start 2 only: gains 0.34, 0.36
    assert "over 2 pairs, 1 warm start(s)" in g["text"]
    assert _by_key(s)["pass_falls"]["n"] == 4  # not a claim the setting was chosen to show
    s = summarise_llm(runs, {"grpo": "none"}, tmp_path / "b.json", selection={"warm_starts": [1, 2]})
    assert _by_key(s)["collapse"]["verdict"] == "description"
    assert _by_key(s)["pass_falls"]["verdict"] != "description"


def test_method_contrasts_are_paired_with_headroom(tmp_path):
    base = _grpo(tmp_path, final_acc=[0.97, 0.98, 0.99, 0.98])
    # The bonus ends 0.1 nats above GRPO's entropy in every pair: the same numbers unpaired would be noisy.
    bonus = {p: _run(tmp_path / f"b{p[0]}{p[1]}", [0.6, 0.5, 0.4, end + 0.1], [0.3] * 4,
                     {4: _ev(0.97, 0.5, 0.5)}, _ev(0.1, 0.1, 0.5))
             for p, end in zip(PAIRS, (0.2, 0.24, 0.22, 0.18))}
    s = summarise_llm({"grpo": base, "entropy_bonus": bonus}, {"grpo": "none", "entropy_bonus": "entropy_bonus"},
                      tmp_path / "s.json")
    by = _by_key(s)
    ent = by["entropy_bonus_entropy"]
    assert ent["effect"] == pytest.approx(0.1) and ent["sd"] == pytest.approx(0.0, abs=1e-12)
    assert ent["verdict"] == "held" and ent["family"] == "method entropy_bonus"
    # GRPO ends at 0.98 on average: an accuracy gain can be at most 0.02 < ACC_SESOI.
    assert by["entropy_bonus_acc"]["verdict"] == "headroom below SESOI" and ACC_SESOI > 0.02


def test_aent_band_share_and_saturated_coefficient(tmp_path):
    band = {"method": "aent", "band_low": 0.15, "band_high": 0.24, "warmup": 1, "ent_coef": 0.002,
            "coef_min": 6e-4, "coef_max": 9e-3}
    base = _grpo(tmp_path)
    # After warm-up (steps 2-4) the clamped entropy is below the band at every step; the coefficient sits at its
    # cap for 2 of the 3 steps: saturated, never "moves".
    aent = {p: _run(tmp_path / f"a{p[0]}{p[1]}", [0.6, 0.5, 0.4, 0.3], [0.3] * 4, cfg=band,
                    clamped=[0.5, 0.1, 0.05, 0.04], coef=[0.002, 0.004, 9e-3, 9e-3]) for p in PAIRS}
    s = summarise_llm({"grpo": base, "aent": aent}, {"grpo": "none", "aent": "aent"}, tmp_path / "s.json")
    by = _by_key(s)
    assert by["aent_band"]["effect"] == pytest.approx(-0.5) and by["aent_band"]["verdict"] == "did not hold"
    coef = by["aent_coef"]
    assert coef["verdict"] == "description" and set(coef["states"].values()) == {"saturated"}
    assert "saturated in 4, moves in 0" in coef["text"]


def test_too_large_bonus_arm(tmp_path):
    base = _grpo(tmp_path)
    big = {p: _run(tmp_path / f"L{p[0]}{p[1]}", [0.5, 1.0, 2.0, 3.0 + i / 10], [0.1] * 4,
                   {4: _ev(0.05 + i / 100, 0.05, 0.2)}, _ev(0.1, 0.1, 0.5)) for i, p in enumerate(PAIRS)}
    s = summarise_llm({"grpo": base, "entropy_bonus_large": big},
                      {"grpo": "none", "entropy_bonus_large": "entropy_bonus"}, tmp_path / "s.json")
    by = _by_key(s)
    grows = by["entropy_bonus_large_grows"]
    assert grows["effect"] == pytest.approx(2.65) and grows["verdict"] == "held"
    worse = by["entropy_bonus_large_acc"]  # 0.05..0.08 against 0.40..0.46
    assert worse["effect"] == pytest.approx(0.065 - 0.43) and worse["verdict"] == "held"
    assert not math.isnan(worse["se"])
    # The arm was chosen on warm start 1 by its growth: judged on warm start 2 alone (2 pairs).
    s = summarise_llm({"grpo": base, "entropy_bonus_large": big},
                      {"grpo": "none", "entropy_bonus_large": "entropy_bonus"}, tmp_path / "t.json",
                      selection={"warm_starts": [1]})
    assert _by_key(s)["entropy_bonus_large_grows"]["n"] == 2


def test_a_single_pair_is_inconclusive(tmp_path):
    runs = {"grpo": {0: _run(tmp_path / "g", [0.6, 0.5, 0.3, 0.1], [0.1, 0.2, 0.3, 0.4], {4: _ev(0.5, 0.5, 0.5)},
                             _ev(0.1, 0.1, 0.5))}}
    s = summarise_llm(runs, {"grpo": "none"}, tmp_path / "s.json")
    assert {f["verdict"] for f in s["findings"]} == {"inconclusive"}
    assert s["methods"]["grpo"]["pairs"] == ["s0"]

"""The LLM comparison's claims (reproduce.findings) on hand-made runs whose verdicts are worked out by hand."""

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reproduce.analysis import summarise_llm
from reproduce.findings import COLLAPSE_RATIO, MIN_GAIN, verdict, verdict_within

FLIP = {"held": "did not hold", "did not hold": "held", "inconclusive": "inconclusive"}


@given(st.floats(-5, 5), st.floats(0, 2), st.sampled_from([-1, 1]), st.integers(1, 10), st.floats(-1, 1))
def test_verdict_symmetries(diff, se, sign, n, thr):
    v = verdict(diff, se, sign, n, thr)
    assert verdict(diff, se, -sign, n, thr) == FLIP[v]  # the other expected direction swaps held / did not hold
    assert verdict(-diff, se, -sign, n, -thr) == v  # mirroring everything changes nothing
    assert verdict(diff - thr, se, sign, n) == v  # a threshold is a shift of the effect
    if n < 2:
        assert v == "inconclusive"


@given(st.floats(-3, 3), st.floats(0, 1), st.floats(-1, 1), st.floats(0, 2))
def test_verdict_within_matches_interval_arithmetic(mean, se, low, width):
    high = low + width
    v = verdict_within(mean, se, low, high, 3)
    lo, hi = mean - 2 * se, mean + 2 * se
    assert (v == "held") == (low <= lo and hi <= high)
    assert (v == "did not hold") == (hi < low or lo > high)


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


def test_baseline_learns_and_collapses(tmp_path):
    # Entropy 0.6 -> 0.2 and 0.6 -> 0.24 (ratios 1/3 and 0.4, both far below 1/2); greedy +0.30 / +0.32,
    # mean@4 +0.25 / +0.27: every baseline claim holds; pass@4 0.5 -> 0.45 / 0.44 falls.
    runs = {"grpo": {s: _run(tmp_path / f"g{s}", [0.6, 0.5, 0.3, end], [0.1, 0.2, 0.3, 0.4 + s / 100],
                             {4: _ev(0.4 + s / 50, 0.35 + s / 50, 0.45 - s / 100)}, _ev(0.1, 0.1, 0.5))
                     for s, end in ((0, 0.2), (1, 0.24))}}
    s = summarise_llm(runs, {"grpo": "none"}, tmp_path / "summary.json")
    by = {f["claim"]: f for f in s["findings"]}
    ratio = by[f"grpo's entropy ends at most {COLLAPSE_RATIO:g} of its start"]
    assert ratio["effect"] == pytest.approx((0.2 / 0.6 + 0.24 / 0.6) / 2) and ratio["verdict"] == "held"
    greedy = by[f"RL (grpo) raises held-out greedy accuracy by at least {MIN_GAIN:.2f}"]
    assert greedy["effect"] == pytest.approx(0.31) and greedy["verdict"] == "held"  # se 0.01: 0.21 > 0.02
    mean = by[f"RL (grpo) raises held-out mean@4 (sampled accuracy) by at least {MIN_GAIN:.2f}"]
    assert mean["effect"] == pytest.approx(0.26) and mean["verdict"] == "held"
    reward = next(f for f in s["findings"] if f["metric"] == "reward_mean")
    assert reward["effect"] == pytest.approx((0.3 + 0.31) / 2) and reward["verdict"] == "held"
    pas = next(f for f in s["findings"] if f["metric"] == "eval_pass_at_4")
    assert pas["effect"] == pytest.approx(-0.055) and pas["verdict"] == "held"
    assert s["samples_k"] == 4


def test_entropy_that_only_dips_is_no_collapse(tmp_path):
    # Final / start = 0.9 and 0.95: the entropy fell, but nowhere near half: the half-claim did not hold.
    runs = {"grpo": {s: _run(tmp_path / f"g{s}", [1.0, 0.9, 0.9, end], [0.2] * 4) for s, end in ((0, 0.9), (1, 0.95))}}
    s = summarise_llm(runs, {"grpo": "none"}, tmp_path / "summary.json")
    ratio = next(f for f in s["findings"] if "at most" in f["claim"])
    assert ratio["verdict"] == "did not hold"
    reward = next(f for f in s["findings"] if f["metric"] == "reward_mean")
    assert reward["effect"] == 0.0 and reward["verdict"] == "inconclusive"


def test_aent_band_and_coefficient(tmp_path):
    band = {"method": "aent", "band_low": 0.15, "band_high": 0.24, "warmup": 2, "ent_coef": 0.002}
    base = {s: _run(tmp_path / f"g{s}", [0.5, 0.3, 0.1, 0.1], [0.2] * 4) for s in (0, 1)}
    # After warm-up (steps 3, 4) the clamped entropy is 0.2 / 0.19 and 0.2 / 0.21: inside [0.15, 0.24].
    inside = {s: _run(tmp_path / f"a{s}", [0.5] * 4, [0.2] * 4, cfg=band, clamped=[0.5, 0.5, 0.2, 0.19 + s / 50],
                      coef=[0.002, 0.002, 0.002, 0.0025]) for s in (0, 1)}
    s = summarise_llm({"grpo": base, "aent": inside}, {"grpo": "none", "aent": "aent"}, tmp_path / "s.json")
    by = {f["metric"]: f for f in s["findings"] if f.get("method") == "aent"}
    assert by["clamped_entropy"]["verdict"] == "held"
    assert by["clamped_entropy"]["effect"] == pytest.approx((0.195 + 0.205) / 2)
    assert by["ent_coef"]["verdict"] == "held" and by["ent_coef"]["effect"] == pytest.approx(5e-4)
    # Far below the band, with a coefficient stuck at its start: both claims fail.
    below = {s: _run(tmp_path / f"b{s}", [0.5] * 4, [0.2] * 4, cfg=band, clamped=[0.5, 0.5, 0.05, 0.04 + s / 100],
                     coef=[0.002] * 4) for s in (0, 1)}
    s = summarise_llm({"grpo": base, "aent": below}, {"grpo": "none", "aent": "aent"}, tmp_path / "s.json")
    by = {f["metric"]: f for f in s["findings"] if f.get("method") == "aent"}
    assert by["clamped_entropy"]["verdict"] == "did not hold" and by["ent_coef"]["verdict"] == "did not hold"


def test_too_large_bonus_arm(tmp_path):
    base = {s: _run(tmp_path / f"g{s}", [0.5, 0.4, 0.3, 0.2], [0.2] * 4, {4: _ev(0.5 + s / 100, 0.4, 0.6)},
                    _ev(0.2, 0.2, 0.6)) for s in (0, 1)}
    big = {s: _run(tmp_path / f"L{s}", [0.5, 1.0, 2.0, 3.0 + s / 10], [0.1] * 4, {4: _ev(0.05 + s / 100, 0.05, 0.2)},
                   _ev(0.2, 0.2, 0.6)) for s in (0, 1)}
    s = summarise_llm({"grpo": base, "entropy_bonus_large": big},
                      {"grpo": "none", "entropy_bonus_large": "entropy_bonus"}, tmp_path / "s.json")
    mine = [f for f in s["findings"] if "entropy_bonus_large" in f["claim"]]
    grows = next(f for f in mine if f["metric"] == "entropy")
    assert grows["effect"] == pytest.approx(2.55) and grows["verdict"] == "held"
    worse = next(f for f in mine if f["metric"] == "eval_accuracy")
    assert worse["effect"] == pytest.approx(-0.45) and worse["verdict"] == "held"
    assert not math.isnan(worse["se"])

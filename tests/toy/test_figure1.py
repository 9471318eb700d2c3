"""Figure 1's decision machinery: the sign-flip test and its inverted interval, Holm, and claims that can fail."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toy.experiments.figure1 import Figure1Config
from toy.experiments.figure1_claims import judge
from toy.experiments.figure1_plan import arm_name
from toy.experiments.paired import _p_at, _signs, edge_status, holm, paired_test


# ------------------------------------------------------------------------------------------------ paired test
def test_paired_test_exact_cases():
    t = paired_test([1.0] * 6, [0.0] * 6)  # only the identity and the all-minus pattern reach |mean| = 1
    assert t["mean"] == 1 and t["p"] == pytest.approx(2 / 64) and t["exact"] == 1.0
    same = paired_test(np.arange(10.0), np.arange(10.0))
    assert same["p"] == 1.0 and edge_status(same) == "no edge"
    noisy = paired_test([0.1, -0.1] * 5, [0.0] * 10)
    assert edge_status(noisy) == "undecided"


def test_sign_flip_p_by_hand():
    """d = (1, 2, 3): |mean| of the 8 sign patterns is 2, 0, 2/3, 4/3 (twice each); 2 of 8 reach 2."""
    assert _p_at(np.array([1.0, 2.0, 3.0]), 0.0, _signs(3, 0)) == pytest.approx(2 / 8)
    assert _p_at(np.array([1.0, 2.0, 3.0]), 2.0, _signs(3, 0)) == 1.0


@given(st.lists(st.floats(-1, 1), min_size=6, max_size=12), st.floats(-1.5, 1.5))
@settings(max_examples=60, deadline=None)
def test_interval_is_the_inverted_test(diffs, delta):
    """The 95% interval and the p-value come from one test: a delta clearly inside the interval is not rejected at
    0.05, one clearly outside is (0 included: p >= 0.05 when 0 is inside)."""
    d = np.array(diffs)
    t = paired_test(d, np.zeros_like(d))
    signs = _signs(len(d), 0)
    width = t["ci_high"] - t["ci_low"]
    margin = 1e-6 + 1e-3 * width
    if t["ci_low"] + margin < delta < t["ci_high"] - margin:
        assert _p_at(d, delta, signs) >= 0.05
    # outside the bounds by a margin: rejected unless p is not monotone there (then the bisection edge is inside)
    for x in (t["ci_low"] - margin - 1e-3, t["ci_high"] + margin + 1e-3):
        if abs(x - d.mean()) > 1e-9 and width > 0:
            assert _p_at(d, x, signs) < 0.05 or _p_at(d, x, signs) == pytest.approx(0.05, abs=1e-12)
    zero_inside = t["ci_low"] + margin < 0 < t["ci_high"] - margin
    zero_outside = 0 < t["ci_low"] - margin or t["ci_high"] + margin < 0
    if zero_inside:
        assert t["p"] >= 0.05
    if zero_outside:
        assert t["p"] < 0.05


def test_holm_by_hand():
    # sorted p: 0.01 (x4), 0.03 (x3), 0.04 (x2), 0.5 (x1) -> 0.04, 0.09, 0.09 (monotone), 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.9, 0.6]) == [1.0, 1.0]


# ---------------------------------------------------------------------------------------------- the claims
CFG = Figure1Config(m_values=(1, 3, 10, 15), ent_coefs=(0.1,), clamp_ps=(0.33,), tree_sweep=False)


def _results(full_edge: dict[int, float], clamp_edge: float, n: int = 12, noise: float = 0.02, none_v=0.6):
    """A synthetic bandit-sampled result: V(none) = none_v, V(full) = none_v + full_edge[m] + noise per seed."""
    rng = np.random.default_rng(0)
    lam, p = 0.1, 0.33
    full, clamp = arm_name("entropy_bonus", lam), arm_name("clamped", lam, p)
    cells = {"none": {}, full: {}, clamp: {}, "aent": {}}
    for m in CFG.m_values:
        base = np.full(n, none_v)
        cells["none"][str(m)] = {"value": base.tolist(), "escaped": [0.0] * n}
        cells[full][str(m)] = {"value": (base + full_edge[m] + noise * rng.standard_normal(n)).tolist()}
        cells[clamp][str(m)] = {"value": (base + clamp_edge + noise * rng.standard_normal(n)).tolist()}
        cells["aent"][str(m)] = {"value": (base + clamp_edge + noise * rng.standard_normal(n)).tolist()}
    pred = {a: {str(m): {"value": 0.5} for m in CFG.m_values} for a in cells}
    plan = {"ent_coefs": [lam], "clamp_ps": [p], "aent": {}, "predictions": pred}
    return {"bandit": {"plan": plan, "sampled": {"cells": cells, "steps": 100}}}


def _verdict(results, needle):
    verdicts, _ = judge(CFG, results)
    (v,) = [v for v in verdicts if needle in v["claim"]]
    return v["verdict"]


@pytest.mark.parametrize("small,large", [(-0.2, -0.2), (-0.4, -0.1), (-0.1, -0.05)])
def test_contrast_claim_fails_when_the_bonus_is_uniformly_worse(small, large):
    """Worse at every m (equally, or by more at small m, which makes the difference of differences positive): the
    contrast claim must not hold; it is refuted because the large-m edge lies below MIN_EFFECT."""
    res = _results({1: small, 3: small, 10: large, 15: large}, clamp_edge=0.1)
    assert _verdict(res, "full bonus") == "did not hold"


def test_contrast_claim_fails_without_a_contrast_and_holds_with_one():
    flat = _results({1: 0.2, 3: 0.2, 10: 0.2, 15: 0.2}, clamp_edge=0.1)  # an edge everywhere: no contrast
    assert _verdict(flat, "full bonus") == "did not hold"
    pattern = _results({1: -0.3, 3: -0.2, 10: 0.15, 15: 0.2}, clamp_edge=0.1)
    assert _verdict(pattern, "full bonus") == "held"


def test_edge_claims_fail_when_worse_and_hold_when_better():
    assert _verdict(_results({m: 0.0 for m in CFG.m_values}, clamp_edge=-0.1), "clamped bonus") == "did not hold"
    assert _verdict(_results({m: 0.0 for m in CFG.m_values}, clamp_edge=0.1), "clamped bonus") == "held"
    noisy = _results({m: 0.0 for m in CFG.m_values}, clamp_edge=0.03, noise=0.3)
    assert _verdict(noisy, "clamped bonus") == "inconclusive"


def test_premise_absent_when_no_control_escapes():
    res = _results({m: 0.1 for m in CFG.m_values}, clamp_edge=0.1)
    for cell in res["bandit"]["sampled"]["cells"]["none"].values():
        cell["escaped"] = [1.0] * len(cell["escaped"])
    verdicts, claims = judge(CFG, res)
    assert all(c["status"] == "premise absent" for c in claims)
    tested = [v for v in verdicts if "fixed point" not in v["claim"]]
    assert len(tested) == 3 and all(v["verdict"] == "inconclusive" and "premise absent" in v["text"] for v in tested)


def test_holm_family_spans_the_claims():
    _, claims = judge(CFG, _results({1: -0.3, 3: -0.2, 10: 0.15, 15: 0.2}, clamp_edge=0.1))
    ps = [c["p"] for c in claims]
    assert [c["p_holm"] for c in claims] == pytest.approx(holm(ps))
    assert len(claims) == 3 and all(c["refuted_by"] for c in claims)


def test_exact_signs_enumerate_every_pattern():
    signs = _signs(4, 0)
    assert signs.shape == (16, 4) and len({tuple(r) for r in signs}) == 16
    assert set(map(tuple, signs)) == set(itertools.product((1.0, -1.0), repeat=4))


def test_documented_results_are_generated_from_the_committed_run_summary():
    """The figure1 block of docs/toy/results.md is markdown() of docs/toy/figure1_summary.json, the summary of the
    full run (python -m toy.experiments.figure1_report RUN/figure1.json --summary ...): no hand-copied number ..."""
    from pathlib import Path

    from toy.experiments.figure1_report import BEGIN, END, markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "toy"
    summ = json.loads((docs / "figure1_summary.json").read_text())
    text = (docs / "results.md").read_text()
    block = text[text.index(BEGIN): text.index(END) + len(END)]
    assert block == markdown(summ)
    # ... of a run with the defaults as they stand (changing a default fails this test until the docs are rerun)
    import dataclasses

    default = json.loads(json.dumps({**dataclasses.asdict(Figure1Config()), "smoke": False}))
    assert summ["config"] == default

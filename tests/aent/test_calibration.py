"""The calibration rule (aent/calibration.py): hand-worked numbers, the published settings' own proportions,
properties of the rule, and errors that name the field."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aent.calibration import QWEN_MATH, Measurements, Proposal, Reference, clamp_rule, propose
from aent.config import EntropyConfig

PAPER = EntropyConfig.aent_paper()
R1 = EntropyConfig.aent_r1_distill()


def _m(h0=0.4, pg=0.1, ent=2.0, u=0.5, p=None) -> Measurements:
    return Measurements(clamped_entropy=h0, clamp_p=clamp_rule(u) if p is None else p, pg_grad_norm=pg,
                        ent_grad_norm=ent, unused_share=u)


def test_hand_worked_case():
    # H0 = 0.4 nats, r = 0.1 / 2.0 = 0.05, u = 0.5, S = 100, reference Qwen2.5-Math-1.5B.
    pr = propose(_m(), 100)
    assert pr.clamp_p == pytest.approx(0.665)  # 0.5 + 0.33 * 0.5
    assert pr.band_low == pytest.approx(0.25)  # 0.4 * 0.15 / 0.24
    assert pr.band_high == pytest.approx(0.4)  # 0.4 * 0.24 / 0.24
    assert pr.coef_max == pytest.approx(0.05)  # 1 x r
    assert pr.ent_coef == pytest.approx(0.05 * 2 / 9)  # 0.011111 = coef_max * 0.002 / 0.009
    assert pr.coef_min == pytest.approx(0.05 * 2 / 9 * 0.3)  # 0.0033333
    # The reference crosses its box in 0.0084 / (0.002 * 0.15) = 28 of 440 steps; here 28 * 100 / 440 = 6.3636
    # steps, so beta = (0.05 - 0.0033333) / (0.25 * 6.3636) = 1.54 / 52.5.
    assert pr.coef_lr == pytest.approx(1.54 / 52.5)
    assert pr.warmup == 7  # round(30 * 100 / 440 = 6.82)
    assert pr.steps == 100 and pr.clamp_p_rule == pr.clamp_p and pr.warnings == ()


def test_published_numbers_only_give_the_box_crossing_in_28_steps_for_both_settings():
    # Computed from DESIGN.md's published values only (via the presets, an independent copy of them).
    qwen = (PAPER.coef_max - PAPER.coef_min) / (PAPER.coef_lr * PAPER.band_low)
    r1 = (R1.coef_max - R1.coef_min) / (R1.coef_lr * R1.band_low)
    assert qwen == pytest.approx(28.0) and QWEN_MATH.cross_steps == pytest.approx(qwen)
    assert r1 == pytest.approx(0.00096 / 0.000035)  # 27.43
    assert PAPER.band_high / PAPER.band_low == pytest.approx(1.6) and R1.band_high / R1.band_low == pytest.approx(
        0.62 / 0.35)


def test_reference_is_the_published_setting():
    for name in ("ent_coef", "coef_min", "coef_max", "band_low", "band_high", "coef_lr", "warmup", "clamp_p"):
        assert getattr(QWEN_MATH, name) == getattr(PAPER, name), name
    # What is not published is named as assumed.
    assert set(QWEN_MATH.assumed) == {"steps", "start_clamped_entropy", "unused_share", "cap_share"}


def test_the_reference_quantities_give_back_the_paper_preset():
    # The reference's own (partly assumed) quantities: H0_ref, r_ref = coef_max_ref / cap_share, u_ref, S_ref.
    m = Measurements(clamped_entropy=QWEN_MATH.start_clamped_entropy, clamp_p=clamp_rule(QWEN_MATH.unused_share),
                     pg_grad_norm=QWEN_MATH.coef_max / QWEN_MATH.cap_share, ent_grad_norm=1.0,
                     unused_share=QWEN_MATH.unused_share)
    section = propose(m, QWEN_MATH.steps).entropy_section()
    for name in Proposal.FIELDS:
        assert section[name] == pytest.approx(getattr(PAPER, name), rel=1e-9), name


def test_a_custom_reference_is_recovered_too():
    ref = Reference(name="r1-like", ent_coef=R1.ent_coef, coef_min=R1.coef_min, coef_max=R1.coef_max,
                    band_low=R1.band_low, band_high=R1.band_high, coef_lr=R1.coef_lr, warmup=R1.warmup,
                    clamp_p=R1.clamp_p, steps=1000, start_clamped_entropy=0.7, unused_share=0.1, cap_share=0.5)
    m = Measurements(clamped_entropy=0.7, clamp_p=clamp_rule(0.1, ref), pg_grad_norm=R1.coef_max / 0.5,
                     ent_grad_norm=1.0, unused_share=0.1)
    pr = propose(m, 1000, reference=ref)
    for name in ("ent_coef", "coef_min", "coef_max", "band_low", "band_high", "coef_lr", "warmup"):
        assert getattr(pr, name) == pytest.approx(getattr(R1, name), rel=1e-9), name
    assert pr.clamp_p == pytest.approx(R1.clamp_p, abs=1e-4)


pos = st.floats(1e-3, 10.0)
u_s = st.floats(0.0, 0.99)
steps_s = st.integers(1, 100_000)


@given(h0=pos, k=st.floats(0.1, 10.0), pg=pos, ent=pos, u=u_s, steps=steps_s)
def test_band_scales_linearly_with_the_starting_entropy(h0, k, pg, ent, u, steps):
    a, b = propose(_m(h0, pg, ent, u), steps), propose(_m(h0 * k, pg, ent, u), steps)
    assert b.band_low == pytest.approx(k * a.band_low) and b.band_high == pytest.approx(k * a.band_high)
    assert a.band_low / h0 == pytest.approx(0.15 / 0.24) and a.band_high == pytest.approx(h0)
    assert (b.ent_coef, b.coef_min, b.coef_max, b.warmup) == pytest.approx((a.ent_coef, a.coef_min, a.coef_max,
                                                                              a.warmup))


@given(h0=pos, pg=pos, ent=pos, u=u_s, steps=steps_s)
def test_box_keeps_the_published_proportions_and_scales_with_the_ratio(h0, pg, ent, u, steps):
    pr = propose(_m(h0, pg, ent, u), steps)
    assert pr.coef_min / pr.ent_coef == pytest.approx(6e-4 / 0.002)
    assert pr.coef_max / pr.ent_coef == pytest.approx(9e-3 / 0.002)
    assert pr.coef_max == pytest.approx(pg / ent)
    double = propose(_m(h0, 2 * pg, ent, u), steps)
    assert double.ent_coef == pytest.approx(2 * pr.ent_coef)


@given(h0=pos, pg=pos, ent=pos, u=u_s, steps=steps_s)
def test_beta_crosses_the_box_in_the_reference_fraction_of_the_run(h0, pg, ent, u, steps):
    pr = propose(_m(h0, pg, ent, u), steps)
    cross = (pr.coef_max - pr.coef_min) / (pr.coef_lr * pr.band_low)  # steps to cross at H~ = 0
    assert cross / steps == pytest.approx(28 / 440)
    assert abs(pr.warmup - steps * 30 / 440) <= 0.5 + 1e-9


@given(u=u_s)
def test_p_is_at_least_the_never_used_share_and_the_published_p(u):
    p = clamp_rule(u)
    assert u <= p < 1 and p >= 0.33
    assert p == pytest.approx(u + 0.33 * (1 - u), abs=1e-4) or p == 0.9999
    assert p * 10_000 == pytest.approx(round(p * 10_000))  # 4 decimals


@given(h0=pos, pg=st.floats(1e-6, 1e3), ent=st.floats(1e-3, 1e3), u=u_s, steps=steps_s)
def test_the_snippet_is_a_valid_entropy_config(h0, pg, ent, u, steps):
    pr = propose(_m(h0, pg, ent, u), steps)
    cfg = EntropyConfig.from_dict(pr.entropy_section())
    assert cfg.method == "aent" and cfg.clamp_p == pr.clamp_p
    assert all(o.startswith("entropy.") and "=" in o for o in pr.overrides())
    assert pr.yaml().splitlines()[0] == "entropy:" and len(pr.yaml().splitlines()) == 1 + len(pr.overrides())


def test_a_user_p_below_the_never_used_share_is_kept_and_warned():
    pr = propose(_m(u=0.5, p=0.33), 100)
    assert pr.clamp_p == 0.33 and pr.clamp_p_rule == pytest.approx(0.665)
    assert any("below the never-used share" in w for w in pr.warnings)
    assert any("fixed by the user" in source for name, source, _ in pr.rules if name == "clamp_p")


def test_a_run_too_short_to_cross_is_warned():
    assert any("< 1 step" in w for w in propose(_m(), 10).warnings)  # 28 * 10 / 440 = 0.64 steps


@pytest.mark.parametrize("kw, needle", [
    ({"clamp_p": 1.0}, "Measurements.clamp_p must be in [0, 1), got 1.0"),
    ({"clamp_p": -0.1}, "Measurements.clamp_p"),
    ({"unused_share": 1.0}, "Measurements.unused_share must be in [0, 1)"),
    ({"pg_grad_norm": 0.0}, "equal rewards"),
    ({"ent_grad_norm": float("nan")}, "Measurements.ent_grad_norm"),
    ({"clamped_entropy": 0.0}, "Measurements.clamped_entropy must be a number > 0"),
])
def test_bad_measurements_name_the_field(kw, needle):
    base = {"clamped_entropy": 0.3, "clamp_p": 0.33, "pg_grad_norm": 0.1, "ent_grad_norm": 1.0, "unused_share": 0.1}
    with pytest.raises(ValueError) as err:
        Measurements(**{**base, **kw})
    assert needle in str(err.value)


@pytest.mark.parametrize("steps", [0, -5, 1.5, True])
def test_bad_steps_name_the_field(steps):
    with pytest.raises(ValueError, match=r"propose: steps must be an int >= 1"):
        propose(_m(), steps)


@pytest.mark.parametrize("u", [1.0, -0.01, float("nan")])
def test_bad_unused_share_names_the_field(u):
    with pytest.raises(ValueError, match="clamp_rule: unused_share must be in"):
        clamp_rule(u)


def test_propose_needs_measurements():
    with pytest.raises(ValueError, match="Measurements"):
        propose({"clamped_entropy": 0.3}, 10)


def test_the_rule_module_imports_no_torch():
    tree = ast.parse(Path(__import__("aent.calibration").calibration.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "math", "dataclasses", "aent.validation"}, names
    assert not math.isnan(QWEN_MATH.cross_frac)

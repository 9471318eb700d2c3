"""Coefficient controllers: direction, box, fixed point, hand-computed steps and save/load == uninterrupted.

Each rule is re-implemented here in a few lines of plain Python from its paper's formula (the reference), and the
controller must follow it step for step on arbitrary entropy sequences.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aent import (
    AEntCoef,
    ConstantCoef,
    PIController,
    PositiveWeight,
    SACCoef,
    ThresholdCoef,
    positive_weight_schedule,
)

entropies = st.lists(st.floats(0.0, 3.0), min_size=1, max_size=40)


def make_all():
    return [
        ConstantCoef(value=0.01),
        AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=3, coef_min=6e-4, coef_max=9e-3),
        SACCoef(init=0.01, target=0.5, lr=0.3, coef_min=1e-4, coef_max=1.0),
        ThresholdCoef(init=0.002, target=0.4, delta=5e-4, coef_min=0.0, coef_max=0.01),
        PIController(kp=1.0, ki=0.1, target=0.5, integral_limit=20.0),
        PositiveWeight(mode="entropy", init=0.8, target=0.5, delta=0.05),
        PositiveWeight(mode="scheduled", init=1.0, final=0.2, schedule_steps=7),
        PositiveWeight(mode="stage", init=0.0, final=1.0, schedule_steps=9),
        PositiveWeight(mode="epoch", init=0.0, final=1.0, schedule_steps=12, epochs=4),
    ]


# --------------------------------------------------------------------------------- references (the papers)
def aent_ref(seq, lam, low, high, beta, warmup, lo, hi):
    """The authors' verl loop: global steps count from 1; after step t the coefficient moves when t >= warmup."""
    out = []
    for t, h in enumerate(seq, start=1):
        if t >= warmup:
            lam = min(hi, max(lo, lam - beta * (min(0.0, h - low) + max(0.0, h - high))))
        out.append(lam)
    return out


def sac_ref(seq, lam, target, lr, lo, hi):
    out, log_lam = [], math.log(lam)
    for h in seq:
        log_lam = min(math.log(hi), max(math.log(lo), log_lam - lr * (h - target)))
        out.append(math.exp(log_lam))
    return out


def threshold_ref(seq, coef, target, delta, lo, hi):
    out = []
    for h in seq:
        coef = min(coef + delta, hi) if h <= target else max(coef - delta, lo)
        out.append(coef if h <= target else 0.0)
    return out


def pi_ref(seq, kp, ki, target, limit):
    """EntroPIC per micro-batch: alpha from the current error and the integral *before* it, then integrate."""
    out, integral = [], 0.0
    for h in seq:
        out.append(min(1.0, max(-1.0, kp * (h - target) + ki * integral)))
        integral = min(limit, max(-limit, integral + h - target))
    return out


@given(entropies)
def test_aent_follows_algorithm_and_stays_in_box(seq):
    c = AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=3, coef_min=6e-4, coef_max=9e-3)
    got = [c.update(h) for h in seq]
    assert got == pytest.approx(aent_ref(seq, 0.002, 0.15, 0.24, 0.002, 3, 6e-4, 9e-3), abs=1e-15)
    assert all(6e-4 <= v <= 9e-3 for v in got)
    assert got[: min(2, len(seq))] == [0.002] * min(2, len(seq))  # steps 1-3 run with lambda0


def test_aent_first_moves_after_step_warmup():
    """warmup = 30: steps 1..30 use lambda0, step 31 the first moved value (the authors' verl code)."""
    c = AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=30, coef_min=6e-4, coef_max=9e-3)
    used = [c.value] + [c.update(0.05) for _ in range(31)]  # used[t - 1]: lambda applied in step t
    assert used[:30] == [0.002] * 30
    assert used[30] == pytest.approx(0.002 + 0.002 * 0.10)  # below the band by 0.10
    for w in (0, 1):  # nothing to hold: the update after step 1 moves it
        assert AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=w, coef_min=6e-4, coef_max=9e-3).update(0.05) > 0.002


def test_aent_hand_computed_direction_and_fixed_points():
    c = AEntCoef(init=0.005, band_low=0.2, band_high=0.4, lr=0.01, warmup=0, coef_min=0.0, coef_max=1.0)
    assert c.update(0.1) == pytest.approx(0.005 + 0.01 * 0.1)  # below the band: lambda up by beta (low - H)
    assert c.update(0.6) == pytest.approx(0.006 - 0.01 * 0.2)  # above: down by beta (H - high)
    v = c.value
    for h in (0.2, 0.3, 0.4):  # inside the band (ends included): fixed
        assert c.update(h) == v
    c2 = AEntCoef(init=0.005, band_low=0.2, band_high=0.4, lr=10.0, warmup=0, coef_min=1e-3, coef_max=8e-3)
    assert c2.update(0.0) == 8e-3 and c2.update(3.0) == 1e-3  # the box


@given(entropies)
def test_sac_follows_gradient_step(seq):
    c = SACCoef(init=0.01, target=0.5, lr=0.3, coef_min=1e-4, coef_max=1.0)
    got = [c.update(h) for h in seq]
    assert got == pytest.approx(sac_ref(seq, 0.01, 0.5, 0.3, 1e-4, 1.0), rel=1e-12)
    assert all(1e-4 * (1 - 1e-12) <= v <= 1.0 * (1 + 1e-12) for v in got)


def test_sac_direction_and_fixed_point():
    c = SACCoef(init=0.01, target=0.5, lr=0.1)
    assert c.update(0.2) > 0.01  # entropy below target: lambda rises
    v = c.value
    assert c.update(0.9) < v  # above: falls
    v = c.value
    assert c.update(0.5) == pytest.approx(v, rel=1e-15)  # at target: stationary
    assert c.update(0.2) == pytest.approx(v * math.exp(0.1 * 0.3))  # hand computed


@given(entropies)
def test_threshold_matches_trl_rule(seq):
    c = ThresholdCoef(init=0.002, target=0.4, delta=5e-4, coef_min=0.0, coef_max=0.01)
    assert c.value == 0.0  # no measurement yet: no bonus (TRL starts from +inf)
    got = [c.update(h) for h in seq]
    assert got == pytest.approx(threshold_ref(seq, 0.002, 0.4, 5e-4, 0.0, 0.01), abs=1e-15)
    assert all(0.0 <= c2 <= 0.01 for c2 in got)


def test_threshold_hand_computed():
    c = ThresholdCoef(init=0.002, target=0.4, delta=0.001, coef_min=0.001, coef_max=0.0035)
    assert c.update(0.3) == pytest.approx(0.003)  # below: +delta and applied
    assert c.update(0.3) == pytest.approx(0.0035)  # capped at max
    assert c.update(0.5) == 0.0 and c.coef == pytest.approx(0.0025)  # above: -delta, switched off


@given(entropies)
def test_pi_controller_matches_formula(seq):
    c = PIController(kp=1.0, ki=0.1, target=0.5, integral_limit=20.0)
    got = [c.update(h) for h in seq]
    assert got == pytest.approx(pi_ref(seq, 1.0, 0.1, 0.5, 20.0), abs=1e-12)
    assert all(-1.0 <= a <= 1.0 for a in got)


def test_pi_controller_direction_and_fixed_point():
    c = PIController(kp=0.5, ki=0.2, target=1.0)
    assert c.update(1.4) == pytest.approx(0.5 * 0.4)  # above target: alpha > 0; the integral was 0 before
    a = c.update(1.0)  # at target: integral stationary, alpha = ki * I
    assert a == pytest.approx(0.2 * 0.4) and c.update(1.0) == a
    c2 = PIController(kp=0.5, ki=0.0, target=1.0)
    assert c2.update(0.2) < 0  # below target: alpha < 0 (favour A < 0, raise entropy)


@given(entropies)
def test_positive_weight_entropy_mode(seq):
    c = PositiveWeight(mode="entropy", init=0.8, target=0.5, delta=0.05)
    w = 0.8
    for h in seq:
        w = min(1.0, max(0.0, w - 0.05 if h < 0.5 else (w + 0.05 if h > 0.5 else w)))
        assert c.update(h) == pytest.approx(w, abs=1e-12)
        assert 0.0 <= c.value <= 1.0


def test_positive_weight_modes_hand_computed():
    f = PositiveWeight(mode="fixed", init=0.3)
    assert [f.update(h) for h in (0.0, 5.0)] == [0.3, 0.3]
    s = PositiveWeight(mode="scheduled", init=1.0, final=0.2, schedule_steps=4)
    assert [s.update(0.0) for _ in range(6)] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.2, 0.2])
    e = PositiveWeight(mode="entropy", init=0.5, target=1.0, delta=0.1)
    assert e.update(0.5) == pytest.approx(0.4) and e.update(2.0) == pytest.approx(0.5) and e.update(1.0) == 0.5


def stage_ref(s, total):
    """arXiv 2511.05993 stage-based: 0 while s <= S/2, then linear from 0 to 1 at s = S."""
    return 0.0 if s <= total / 2 else min(1.0, (s - total / 2) / (total / 2))


def epoch_ref(s, total, epochs):
    """arXiv 2511.05993 epoch-wise: (e - 1) / (E - 1), e the 1-based epoch of step s (S / E steps per epoch)."""
    e = min(epochs, math.ceil(s * epochs / total))
    return (e - 1) / (epochs - 1)


@given(st.integers(1, 60), st.integers(1, 80))
def test_stage_schedule_is_the_papers(total, s):
    assert positive_weight_schedule("stage", s, total) == pytest.approx(stage_ref(s, total), abs=1e-12)


@given(st.integers(2, 8), st.integers(1, 10), st.integers(1, 100))
def test_epoch_schedule_is_the_papers(epochs, per_epoch, s):
    total = epochs * per_epoch
    assert positive_weight_schedule("epoch", s, total, epochs) == pytest.approx(epoch_ref(s, total, epochs))


@given(st.sampled_from(["stage", "epoch"]), st.integers(2, 50), st.floats(0, 1), st.floats(0, 1))
def test_upward_schedules_start_end_and_stay_between(mode, total, start, end):
    ws = [positive_weight_schedule(mode, s, total, 2, start, end) for s in range(1, total + 3)]
    assert ws[0] == pytest.approx(start) and ws[total - 1] == pytest.approx(end) and ws[-1] == pytest.approx(end)
    lo, hi = min(start, end), max(start, end)
    assert all(lo - 1e-12 <= w <= hi + 1e-12 for w in ws)
    sign = 1 if end >= start else -1
    assert all(sign * (b - a) >= -1e-12 for a, b in zip(ws, ws[1:]))  # monotone toward end


def test_positive_weight_schedule_hand_computed_and_controller_follows_it():
    assert [positive_weight_schedule("stage", s, 10) for s in range(1, 11)] == pytest.approx(
        [0, 0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert [positive_weight_schedule("epoch", s, 6, epochs=2) for s in range(1, 7)] == [0, 0, 0, 1, 1, 1]
    c = PositiveWeight(mode="stage", init=0.0, final=1.0, schedule_steps=10)
    used = [c.value] + [c.update(0.3) for _ in range(10)]  # used[t - 1]: w+ of step t
    assert used[:10] == pytest.approx([0, 0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0]) and used[10] == 1.0
    e = PositiveWeight(mode="epoch", init=0.0, final=1.0, schedule_steps=9, epochs=3)
    assert [e.value] + [e.update(0.3) for _ in range(8)] == pytest.approx([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1])
    for bad in (0, 1, None):
        with pytest.raises(ValueError, match="epochs"):
            PositiveWeight(mode="epoch", init=0.0, final=1.0, schedule_steps=9, epochs=bad)
    with pytest.raises(ValueError, match="mode"):
        positive_weight_schedule("linear", 1, 4)


def test_constant_never_moves():
    c = ConstantCoef(value=0.01)
    assert [c.update(h) for h in (0.0, 1.0, 9.0)] == [0.01] * 3


# ------------------------------------------------------------------------------------------ save / load
@given(entropies, st.integers(0, 40))
def test_resume_equals_uninterrupted(seq, cut):
    cut = min(cut, len(seq))
    for straight, first in zip(make_all(), make_all()):
        want = [straight.update(h) for h in seq]
        got = [first.update(h) for h in seq[:cut]]
        state = json.loads(json.dumps(first.state_dict()))  # JSON round trip (checkpoint files)
        resumed = _fresh_like(first)
        resumed.load_state_dict(state)
        assert resumed.value == first.value
        got += [resumed.update(h) for h in seq[cut:]]
        assert got == want


def _fresh_like(c):
    """A freshly constructed controller with the same settings as c (not its state)."""
    for fresh in make_all():
        if type(fresh) is type(c) and getattr(fresh, "mode", None) == getattr(c, "mode", None):
            return fresh
    raise AssertionError(type(c))


def test_load_state_dict_rejects_other_type_and_missing_keys():
    a = AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=3, coef_min=6e-4, coef_max=9e-3)
    with pytest.raises(ValueError, match="SACCoef"):
        a.load_state_dict(SACCoef(init=0.01, target=0.5, lr=0.1).state_dict())
    with pytest.raises(ValueError, match="lacks"):
        a.load_state_dict({"type": "AEntCoef"})


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(("make", "field"), [
    (lambda: ConstantCoef(value=-1.0), "value"),
    (lambda: AEntCoef(init=0.002, band_low=0.3, band_high=0.2, lr=0.1, warmup=0, coef_min=0, coef_max=1), "low"),
    (lambda: AEntCoef(init=0.002, band_low=0.1, band_high=0.2, lr=-0.1, warmup=0, coef_min=0, coef_max=1), "lr"),
    (lambda: AEntCoef(init=2.0, band_low=0.1, band_high=0.2, lr=0.1, warmup=0, coef_min=0, coef_max=1), "init"),
    (lambda: AEntCoef(init=0.002, band_low=0.1, band_high=0.2, lr=0.1, warmup=-1, coef_min=0, coef_max=1), "warmup"),
    (lambda: SACCoef(init=0.0, target=0.5, lr=0.1), "init"),
    (lambda: ThresholdCoef(init=0.002, target=0.4, delta=-1.0, coef_min=0.0, coef_max=0.01), "delta"),
    (lambda: PIController(kp=-1.0, ki=0.1, target=0.5), "kp"),
    (lambda: PositiveWeight(mode="entropy", init=0.5), "target"),
    (lambda: PositiveWeight(mode="bogus", init=0.5), "mode"),
    (lambda: PositiveWeight(mode="fixed", init=1.5), "init"),
    (lambda: ConstantCoef(value=0.1).update(float("nan")), "entropy"),
])
def test_errors_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


# ------------------------------------------------------------------------------ state as a value (issue 17)
@given(entropies)
def test_every_state_field_survives_a_checkpoint_round_trip(seq):
    """Each controller's whole state (every NamedTuple field) comes back from JSON and from torch.save files."""
    import io

    import torch

    for c in make_all():
        for h in seq:
            c.update(h)
        d = c.state_dict()
        assert set(d) - {"type"} == set(c.State._fields)
        buf = io.BytesIO()
        torch.save(d, buf)
        buf.seek(0)
        for saved in (json.loads(json.dumps(d)), torch.load(buf, weights_only=False)):
            fresh = _fresh_like(c)
            fresh.load_state_dict(saved)
            assert type(fresh.state) is type(c.state)
            for name in c.State._fields:
                assert getattr(fresh.state, name) == getattr(c.state, name), (type(c).__name__, name)
            assert fresh.value == c.value


@given(entropies)
def test_update_changes_nothing_but_the_state(seq):
    """No hidden state: the settings are the same objects after updates, and next_state is pure."""
    import copy

    for c in make_all():
        settings = copy.deepcopy({k: v for k, v in vars(c).items() if k != "state"})
        before = c.state
        after = c.next_state(before, seq[0])
        assert c.state is before and isinstance(after, c.State)
        for h in seq:
            c.update(h)
        assert {k: v for k, v in vars(c).items() if k != "state"} == settings, type(c).__name__
        assert c.state.steps == len(seq)


def test_old_checkpoint_dicts_still_load():
    """The state_dict layout predates the NamedTuple states: dicts written by earlier versions load as before."""
    a = AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=3, coef_min=6e-4, coef_max=9e-3)
    a.load_state_dict({"type": "AEntCoef", "coef": 0.003, "steps": 5})
    assert a.value == 0.003 and a.steps == 5
    t = ThresholdCoef(init=0.002, target=0.4, delta=5e-4, coef_min=0.0, coef_max=0.01)
    t.load_state_dict({"type": "ThresholdCoef", "coef": 0.004, "last_entropy": 0.3, "steps": 2})
    assert t.value == 0.004
    p = PIController(kp=1.0, ki=0.1, target=0.5)
    p.load_state_dict({"type": "PIController", "integral": -0.5, "alpha": 0.25, "steps": 3})
    assert (p.integral, p.value, p.steps) == (-0.5, 0.25, 3)


def test_state_fields_are_read_only_properties_over_the_state():
    """The properties read the state that update() replaced; assigning one raises instead of shadowing it."""
    c = ThresholdCoef(init=0.002, target=0.4, delta=5e-4, coef_min=0.0, coef_max=0.01)
    c.update(0.1)  # below target: coef + delta, switched on
    assert (c.coef, c.last_entropy, c.steps) == (c.state.coef, 0.1, 1) and c.coef == pytest.approx(0.0025)
    with pytest.raises(AttributeError):
        c.coef = 0.005
    assert c.state.coef == pytest.approx(0.0025) and "coef" not in vars(c)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        c.nope  # noqa: B018


def test_constructors_take_keyword_arguments_only():
    """Seven floats by position could be swapped silently; every controller refuses positional arguments."""
    import inspect

    for c in make_all():
        params = list(inspect.signature(type(c)).parameters.values())
        assert params and all(p.kind is p.KEYWORD_ONLY for p in params), type(c).__name__
        assert not {"min", "max"} & {p.name for p in params}, type(c).__name__
    with pytest.raises(TypeError):
        AEntCoef(0.002, 0.15, 0.24, 0.002, 0, 6e-4, 9e-3)  # type: ignore[misc]


def test_entropy_control_state_round_trips_for_every_method():
    """aent.EntropyControl of every method: state after a few steps == state restored from a torch.save file."""
    import io

    import torch

    from aent import METHODS, EntropyConfig, EntropyControl

    for method in METHODS:
        cfg = EntropyConfig(method=method)
        a = EntropyControl(cfg)
        for h in (0.9, 0.1, 0.5):
            a.step_end({"entropy": h, "clamped_entropy": h / 2, "sampled_entropy": h})
        buf = io.BytesIO()
        torch.save(a.state_dict(), buf)
        buf.seek(0)
        b = EntropyControl(cfg)
        b.load_state_dict(torch.load(buf, weights_only=False))
        assert b.state_dict() == a.state_dict(), method
        assert b.coef_ctrl.state == a.coef_ctrl.state
        assert (b.weight_ctrl is None) or b.weight_ctrl.state == a.weight_ctrl.state

"""Tests of llm.studies: the covariance / measured entropy split against numpy references, the paired verdict
against hand-computed cases and a numerically integrated Student t, the summaries and generated verdict texts
on hand-made metric rows, and a smoke run of the real entry point (``python -m llm.studies NAME --smoke``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llm.studies import STUDIES, covariance_split, measured_split, paired_verdict, t_critical
from llm.studies.common import (
    Claim,
    entropy_change,
    judge,
    mean_entropy_change,
    record_markdown,
    summarise,
)


# --------------------------------------------------------------------------------- batches for property tests
@st.composite
def batches(draw):
    b = draw(st.integers(1, 5))
    t = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    logp = -rng.exponential(1.0, size=(b, t))
    adv = rng.choice([-1.5, -0.5, 0.0, 0.5, 1.5], size=b)
    mask = (rng.random((b, t)) < 0.8).astype(np.int64)
    mask[0, 0] = 1
    return logp, adv, mask, rng


def _ref_cov_split(logp, adv, mask):
    """Direct formula: -Cov_i / N summed per sign group (arXiv 2505.22617 Eq. 10), by loops."""
    toks = [(logp[i, j], adv[i]) for i in range(logp.shape[0]) for j in range(logp.shape[1]) if mask[i, j]]
    n = len(toks)
    ml = sum(lp for lp, _ in toks) / n
    ma = sum(a for _, a in toks) / n
    out = {"pos": 0.0, "neg": 0.0, "zero": 0.0}
    for lp, a in toks:
        g = "pos" if a > 0 else "neg" if a < 0 else "zero"
        out[g] += -(lp - ml) * (a - ma) / n
    return out


@given(batches())
def test_covariance_split_matches_loop_reference(data):
    logp, adv, mask, _ = data
    got = covariance_split(torch.tensor(logp, dtype=torch.float32), torch.tensor(adv, dtype=torch.float32),
                           torch.tensor(mask))
    ref = _ref_cov_split(logp, adv, mask)
    for g in ("pos", "neg", "zero"):
        assert got[f"cov_dh_{g}"] == pytest.approx(ref[g], abs=1e-5)
    # The parts add up to -Cov(log pi, A) over the valid tokens (numpy's covariance with ddof=0).
    v = mask.astype(bool)
    a_tok = np.broadcast_to(adv[:, None], logp.shape)[v]
    full = -np.cov(logp[v], a_tok, ddof=0)[0, 1] if v.sum() > 1 else 0.0
    assert got["cov_dh"] == pytest.approx(full, abs=1e-5)
    assert got["adv_pos_frac"] == pytest.approx(float((a_tok > 0).mean()))


def test_covariance_split_hand_case():
    # Two sequences of one token: logp (-1, -3), advantages (+1, -1). Means -2 and 0.
    # Cov_1 = (1)(1) = 1, Cov_2 = (-1)(-1) = 1; N = 2 -> each group predicts -1/2.
    got = covariance_split(torch.tensor([[-1.0], [-3.0]]), torch.tensor([1.0, -1.0]), torch.ones(2, 1))
    assert got["cov_dh_pos"] == pytest.approx(-0.5)
    assert got["cov_dh_neg"] == pytest.approx(-0.5)
    assert got["cov_pos_share"] == pytest.approx(0.5)


@given(batches())
def test_measured_split_adds_up_and_matches_reference(data):
    _, adv, mask, rng = data
    before = rng.exponential(1.0, size=mask.shape)
    after = rng.exponential(1.0, size=mask.shape)
    got = measured_split(torch.tensor(before), torch.tensor(after), torch.tensor(adv), torch.tensor(mask))
    v = mask.astype(bool)
    n = v.sum()
    a_tok = np.broadcast_to(adv[:, None], mask.shape)
    assert got["entropy_before"] == pytest.approx(before[v].mean())
    assert got["dh"] == pytest.approx(after[v].mean() - before[v].mean())
    assert got["dh_pos"] == pytest.approx((after - before)[v & (a_tok > 0)].sum() / n)
    assert got["dh_neg"] == pytest.approx((after - before)[v & (a_tok < 0)].sum() / n)
    assert got["dh_pos"] + got["dh_neg"] + got["dh_zero"] == pytest.approx(got["dh"])


def test_split_shape_errors_name_the_inputs():
    with pytest.raises(ValueError, match="logp"):
        covariance_split(torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 4))
    with pytest.raises(ValueError, match="adv"):
        measured_split(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3))


# ------------------------------------------------------------------------------------------------- verdicts
def _t_cdf(x: float, df: int) -> float:
    """Student t CDF by Simpson integration of the density from 0 to x (independent of the table)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    n = 4000
    h = x / n
    f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(n + 1)]
    return 0.5 + h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 31, 60, 200])
def test_t_critical_is_the_975_quantile(df):
    assert _t_cdf(t_critical(df), df) == pytest.approx(0.975, abs=1e-3)


def test_paired_verdict_hand_cases():
    # mean 2, sd 1, t = 2 * sqrt(3) = 3.46 < 4.303 (df 2): within noise.
    v = paired_verdict([1.0, 2.0, 3.0], +1)
    assert (v.label, v.mean, v.sd) == ("inconclusive", 2.0, 1.0)
    assert v.t == pytest.approx(2 * math.sqrt(3))
    # mean 1, sd 0.1, t = 17.3 > 4.303.
    assert paired_verdict([1.0, 1.1, 0.9], +1).label == "held"
    assert paired_verdict([1.0, 1.1, 0.9], -1).label == "did not hold"
    assert paired_verdict([0.5], +1).label == "inconclusive"
    assert paired_verdict([], +1).label == "inconclusive"
    assert paired_verdict([0.2, 0.2, 0.2], -1).label == "did not hold"
    assert paired_verdict([1.0, 1.1, 0.9], +1).effect_over_sd == pytest.approx(10.0)
    with pytest.raises(ValueError, match="sign"):
        paired_verdict([1.0], 0)


_diffs = st.lists(st.floats(-10, 10, allow_nan=False), min_size=0, max_size=8)


@given(_diffs, st.sampled_from([1, -1]), st.floats(0.01, 100))
def test_verdict_is_symmetric_and_scale_free(diffs, sign, scale):
    a = paired_verdict(diffs, sign)
    assert a.label in ("held", "did not hold", "inconclusive")
    assert paired_verdict([-d for d in diffs], -sign).label == a.label
    scaled = paired_verdict([scale * d for d in diffs], sign)
    if a.n >= 2 and math.isfinite(a.t) and abs(abs(a.t) - a.t_crit) > 1e-6 * max(1.0, a.t_crit):
        assert scaled.label == a.label


# ----------------------------------------------------------------------------------- summaries and judging
def _rows(entropies, dh_pos=None):
    return [{"step": i + 1, "entropy_before": h, "dh_pos": (dh_pos[i] if dh_pos else -0.01), "reward_mean": 0.5}
            for i, h in enumerate(entropies)]


def test_entropy_change_hand_computed():
    rows = _rows([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.2])
    # last quarter = last 2 steps: mean 0.3; minus step 1 = -0.7.
    assert entropy_change(rows) == pytest.approx(-0.7)
    assert mean_entropy_change(rows) == pytest.approx(sum(h - 1.0 for h in [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.2]) / 8)
    assert math.isnan(entropy_change([]))


def test_judge_generates_numbers_and_labels():
    runs = {
        "x": [_rows([1.0, 0.5, 0.3, 0.2]), _rows([1.0, 0.6, 0.3, 0.1]), _rows([1.0, 0.5, 0.4, 0.3])],
        "y": [_rows([1.0, 1.0, 1.0, 1.0]), _rows([1.0, 1.0, 1.0, 1.1]), _rows([1.0, 0.9, 1.0, 1.0])],
    }
    claims = [Claim("c", "X lowers entropy", "entropy_change", "x", "y", -1, "dH(x) - dH(y)"),
              Claim("d", "X raises entropy", "entropy_change", "x", "y", +1),
              Claim("e", "missing arm", "entropy_change", "z", "y", +1)]
    out = judge(claims, runs)
    # Per-seed differences by hand: (-0.8 - 0), (-0.9 - 0.1), (-0.7 - 0) -> mean -0.8333, sd 0.1528, t -9.4.
    assert [v["verdict"] for v in out] == ["held", "did not hold", "inconclusive"]
    assert out[0]["effect"] == pytest.approx(-0.8333333, abs=1e-6)
    assert out[0]["sd"] == pytest.approx(0.1527525, abs=1e-6)
    assert "-0.833" in out[0]["text"] and "HELD" in out[0]["text"]
    s = summarise(runs)
    assert s["y"]["entropy_change"]["per_seed"] == pytest.approx([0.0, 0.1, 0.0])
    md = record_markdown({"title": "T", "seeds": 3, "steps": 4, "wall_s": 1.0, "summary": s, "verdicts": out})
    assert "| x | -0.800 ± 0.100 |" in md  # x alone: -0.8, -0.9, -0.7 and md.count("- **") == 3


def test_every_study_has_claims_on_its_arms():
    from llm.config import load_config

    cfg = load_config("configs/tiny.yaml", [])
    for study in STUDIES.values():
        names = {a.name for a in study.arms(cfg, {})}
        assert len(names) >= 3 and set(study.smoke_arms) <= names
        for c in study.claims:
            assert c.arm in names and (c.baseline is None or c.baseline in names)


# --------------------------------------------------------------------------------------------------- smoke
def test_smoke_runs_the_real_entry_point(tmp_path, capsys):
    from llm.studies.__main__ import main

    assert main(["reweighting", "--smoke", "--quiet", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "reweighting.json").read_text())
    assert (tmp_path / "reweighting.png").stat().st_size > 0
    assert set(rec["runs"]) == {"grpo", "w0.5"} and rec["steps"] == 2 and rec["seeds"] == 1
    rows = rec["runs"]["grpo"][0]
    assert rows[0]["step"] == 0 and "eval_pass_at_2" in rows[0]  # held-out metrics of the starting policy
    rows = rows[1:]
    assert [r["step"] for r in rows] == [1, 2] and "eval_pass_at_2" in rows[-1]
    for key in ("entropy_before", "entropy_after", "dh_pos", "dh_neg", "cov_dh_pos", "cov_dh_neg"):
        assert all(r[key] is None or math.isfinite(r[key]) for r in rows), key
    # The measured split adds up to the measured change on every step.
    for r in rows:
        assert r["dh_pos"] + r["dh_neg"] + r["dh_zero"] == pytest.approx(r["dh"], abs=1e-9)
        assert r["entropy_after"] - r["entropy_before"] == pytest.approx(r["dh"], abs=1e-9)
    assert all(v["verdict"] == "inconclusive" for v in rec["verdicts"])  # one seed: no spread to judge by
    assert "[inconclusive]" in capsys.readouterr().out


def test_reweighting_arms_follow_the_papers_upward_schedules():
    """arXiv 2511.05993: the scheduled arm is the stage-based schedule (0 for the first half, then linear up to 1
    at the last step) and the entropy-guided arm starts from w+ = 0."""
    import aent
    from llm.config import load_config

    base = load_config(None, ["max_steps=10"])
    arms = {a.name: a for a in STUDIES["reweighting"].arms(base, {})}
    ctrl = aent.EntropyControl(load_config(None, ["max_steps=10", *arms["scheduled"].overrides]).entropy)
    used = [ctrl.pos_weight] + [ctrl.step_end({"entropy": 0.5, "clamped_entropy": 0.5})["pos_weight"]
                                for _ in range(9)]  # w+ of steps 1..10
    assert used == pytest.approx([0.0] * 5 + [0.2, 0.4, 0.6, 0.8, 1.0])
    guided = aent.EntropyControl(load_config(None, list(arms["entropy_guided"].overrides)).entropy)
    assert guided.pos_weight == 0.0


def test_mechanism_split_is_the_natural_gradient_form():
    """covariance_split sums -Cov(log pi, A) (natural policy gradient, arXiv 2505.22617 Thm 2), not -Cov(log pi,
    pi A) (vanilla policy gradient, Thm 1); the module docstring must attribute each form to its gradient."""
    from llm.studies import mechanism

    logp = torch.log(torch.tensor([[0.9, 0.5, 0.1]]))
    adv = torch.tensor([[1.0, -1.0, 2.0]])
    lp, a = logp[0].double(), adv[0].double()
    want = -float(((lp - lp.mean()) * (a - a.mean())).mean())
    assert covariance_split(logp, adv, torch.ones(1, 3))["cov_dh"] == pytest.approx(want, rel=1e-6)
    doc = " ".join(mechanism.__doc__.split())
    assert "vanilla policy-gradient step" in doc and "Cov(log pi, pi A) (Cui et al., arXiv 2505.22617, Theorem 1)" in doc
    assert "natural policy-gradient step" in doc and "-eta * Cov(log pi, A) (their Theorem 2)" in doc


def test_study_sesoi_rules_and_holm():
    from llm.studies.report import sesoi_of

    runs = {"x": [_rows([0.4, 0.3, 0.2, 0.1]), _rows([0.6, 0.4, 0.2, 0.1])],
            "y": [_rows([0.5, 0.5, 0.5, 0.5]), _rows([0.7, 0.6, 0.6, 0.6])]}
    # Reference arm y starts at 0.5 and 0.7: mean 0.6, so "entropy" is 0.06 and "entropy_per_step" 0.06 / 4.
    assert sesoi_of(Claim("a", "a", "entropy_change", "x", "y", -1), runs) == pytest.approx(0.06)
    per_step = Claim("b", "b", "mean_dh_pos", "y", None, -1, sesoi="entropy_per_step")  # one-sample: y itself
    assert sesoi_of(per_step, runs) == pytest.approx(0.06 / 4)
    assert sesoi_of(Claim("c", "c", "mean_dh_pos", "y", None, -1, sesoi="sign"), runs) == 0.0
    assert sesoi_of(Claim("d", "d", "mean_dh_pos", "y", None, -1, sesoi=0.3), runs) == 0.3
    with pytest.raises(ValueError, match="sesoi"):
        sesoi_of(Claim("e", "e", "mean_dh_pos", "y", None, -1, sesoi="big"), runs)
    # A tiny but consistent effect is significant and still not held: below the SESOI, its CI short of it.
    tiny = {"x": [_rows([1.0, 1.0, 1.0, 1.0 + e]) for e in (0.004, 0.005, 0.0045, 0.0042)],
            "y": [_rows([1.0] * 4) for _ in range(4)]}
    v = judge([Claim("t", "X keeps entropy higher", "entropy_change", "x", "y", +1)], tiny)[0]
    assert v["p"] < 0.001 and v["sesoi"] == pytest.approx(0.1) and v["verdict"] == "did not hold"


def test_reweighting_aent_arm_uses_the_main_jobs_constants(monkeypatch):
    """One rule for AEnt's constants (issue 23): the main job calibrates its AEnt label, so the study's AEnt arm is
    calibrated too, on the study's own config and budget (here stubbed: the rule itself is tested in
    tests/llm/test_calibrate.py), only when the arm's runs start, and nothing in it depends on the study's runs."""
    import yaml

    import aent_configs
    import llm.studies.exploration_calibration as ec
    from llm.config import load_config
    from llm.studies.exploration_arms import ArmConstants, arm_overrides

    path = aent_configs.resolve("reproduce/default", folder="reproduce")
    assert "aent" in yaml.safe_load(path.read_text())["llm"]["calibrated"]
    consts = {"ent_coef": 0.4, "coef_min": 0.12, "coef_max": 1.8, "band_low": 0.16, "band_high": 0.26,
              "coef_lr": 3.0, "clamp_p": 0.9973, "warmup": 2}
    seen = []

    def fake(cfg, clamp_p=None, config_name=""):
        seen.append((cfg.max_steps, clamp_p))
        return {"constants": consts}

    monkeypatch.setattr(ec, "calibrate_start", fake)
    base = load_config(None, ["max_steps=30"])
    fake_runs = {"grpo": [[{"step": 1, "entropy_before": 9.0, "clamped_entropy": 9.0}]]}
    arm = {a.name: a for a in STUDIES["reweighting"].arms(base, fake_runs)}["aent"]
    assert callable(arm.overrides) and seen == []  # nothing is measured until the arm runs
    assert arm.overrides() == tuple(arm_overrides("aent_cal_p", ArmConstants(**consts)))
    assert seen == [(30, None)]  # the study's budget, the rule's own p

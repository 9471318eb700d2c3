"""The exploration study's claims on synthetic records: they can fail, they hold on a clear effect, they are
"premise absent" where the gate failed, and the per-arm description counts what it should."""

from __future__ import annotations

import pytest

from llm.studies.exploration_claims import AENT, PRIMARY, describe_arms, judge, paired_diffs

GATE_OK = {1: {"premise": "holds", "reasons": []}}


def _records(effect: float, n_ws: int = 2, n_seeds: int = 6, noise: float = 0.02) -> list[dict]:
    """AEnt = every other arm + effect (+ a small alternating wobble) on every verdict pair of level 1."""
    out = []
    for ws in range(1, n_ws + 1):
        for s in range(n_seeds):
            base = 0.3 + 0.01 * s
            for arm in ("grpo", "bonus_lam0", "bonus_cap", AENT):
                v = base + (effect + noise * (-1) ** s if arm == AENT else 0.0)
                esc = arm == AENT and effect > 0
                out.append({"arm": arm, "level": 1, "warm_start": ws, "seed": s, "role": "verdict", "escaped": esc,
                            "final_mean_at_k": v, "final_pass_at_k": v + 0.3, "final_worked_share": 0.5 * esc,
                            "escape_step": 40 if esc else None, "band_share": 0.7 if arm == AENT else None,
                            "coef_state": "moves" if arm == AENT else "", "entropy_gap": 0.01})
    return out


def _primary(js):
    return {j["claim"]: j for j in js if j["family"] == "primary"}


def test_claims_fail_when_aent_is_worse():
    js = _primary(judge(_records(-0.1), GATE_OK, [1]))
    assert {k for k, _, _ in PRIMARY} == set(js)
    for j in js.values():
        assert j["verdict"] == "did not hold" and j["effect"] == pytest.approx(-0.1) and j["n"] == 12


def test_claims_hold_on_a_clear_effect_with_holm_p():
    js = _primary(judge(_records(0.2), GATE_OK, [1]))
    for j in js.values():
        assert j["verdict"] == "held" and j["p_adj"] >= j["p"] and j["ci_low"] > 0.05


def test_an_effect_below_the_sesoi_never_holds():
    js = _primary(judge(_records(0.03, noise=0.001), GATE_OK, [1]))
    assert all(j["verdict"] != "held" for j in js.values())


def test_claims_are_premise_absent_where_the_gate_failed():
    gates = {1: {"premise": "absent", "reasons": ["GRPO escaped in 3 of 3 selection runs (no trap)"]}}
    js = judge(_records(0.2), gates, [1])
    assert all(j["verdict"] == "premise absent" and "escaped in 3 of 3" in j["reason"] for j in js)


def test_selection_runs_never_enter_a_verdict():
    recs = _records(0.2) + [{**r, "role": "selection", "seed": 100 + r["seed"]} for r in _records(-0.5)]
    assert len(paired_diffs(recs, AENT, "grpo", "final_mean_at_k", 1)) == 12


def test_describe_arms_counts_escapes():
    d = {a["arm"]: a for a in describe_arms(_records(0.2), 1)}
    assert d[AENT]["escaped"] == 12 and d["grpo"]["escaped"] == 0 and d[AENT]["escape_step_mean"] == 40
    assert d[AENT]["reached_bar"] == 12 and d["grpo"]["reached_bar"] == 0
    assert d[AENT]["band_share"] == pytest.approx(0.7) and d[AENT]["coef_states"] == ["moves"]


def test_a_gated_level_without_runs_is_not_run_and_leaves_holm_alone():
    """Level 2 passed its gate but none of its verdict runs exist: its claims are "not run" and do not enter the
    Holm family, so level 1's adjusted p-values are the same as when level 1 is judged alone."""
    gates = {1: GATE_OK[1], 2: {"premise": "holds", "reasons": []}}
    both = {(j["level"], j["claim"]): j for j in judge(_records(0.2, noise=0.05), gates, [1, 2])}
    alone = {(j["level"], j["claim"]): j for j in judge(_records(0.2, noise=0.05), GATE_OK, [1])}
    assert all(both[(2, k)]["verdict"] == "not run" for k, _, _ in PRIMARY)
    for k, _, _ in PRIMARY:
        assert both[(1, k)]["p_adj"] == pytest.approx(alone[(1, k)]["p_adj"])
        assert both[(1, k)]["verdict"] == alone[(1, k)]["verdict"] == "held"


def test_describe_arms_counts_a_run_that_reached_the_bar_then_ran_away_apart_from_escapes():
    recs = _records(0.2)
    ran_away = next(r for r in recs if r["arm"] == "grpo")
    ran_away.update(escape_step=51, escaped=False)
    d = {a["arm"]: a for a in describe_arms(recs, 1)}
    assert d["grpo"]["escaped"] == 0 and d["grpo"]["reached_bar"] == 1 and d["grpo"]["escape_step_mean"] == 51

"""The verdict protocol (llm.studies.verdict) against references: closed forms of the incomplete beta function
and of Student's t, the standard t table, full enumeration of sign flips, and hand-worked Holm and decisions."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aent.stats import betainc, t_cdf, t_quantile, t_two_sided_p
from llm.studies.verdict import (
    _T95,
    DESCRIPTION,
    NO_HEADROOM,
    PREMISE_ABSENT,
    Hypothesis,
    coef_status,
    decide,
    holm,
    judge_family,
    paired_t,
    sign_flip,
    t_critical,
)


# ------------------------------------------------------------------------------------- incomplete beta, t
@pytest.mark.parametrize("x", [0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0])
def test_betainc_closed_forms(x):
    assert betainc(1.0, 1.0, x) == pytest.approx(x, abs=1e-13)
    assert betainc(3.5, 1.0, x) == pytest.approx(x ** 3.5, abs=1e-13)  # I_x(a, 1) = x^a
    assert betainc(1.0, 2.5, x) == pytest.approx(1 - (1 - x) ** 2.5, abs=1e-13)  # I_x(1, b) = 1 - (1 - x)^b
    assert betainc(0.5, 0.5, x) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), abs=1e-12)
    assert betainc(2.0, 3.0, x) == pytest.approx(1 - (1 - x) ** 4 - 4 * x * (1 - x) ** 3, abs=1e-13)


@given(st.floats(0.05, 60), st.floats(0.05, 60), st.floats(0, 1))
def test_betainc_symmetry_and_range(a, b, x):
    v = betainc(a, b, x)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(1 - betainc(b, a, 1 - x), abs=1e-10)


@given(st.floats(0.1, 30), st.floats(0.1, 30), st.floats(0, 1), st.floats(0, 1))
def test_betainc_is_monotone_in_x(a, b, x, y):
    lo, hi = sorted((x, y))
    assert betainc(a, b, lo) <= betainc(a, b, hi) + 1e-12


def test_betainc_rejects_bad_arguments():
    with pytest.raises(ValueError, match="a > 0"):
        betainc(0.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="x in"):
        betainc(1.0, 1.0, 1.5)


@pytest.mark.parametrize("t", [-30.0, -2.0, -0.3, 0.0, 0.7, 1.0, 4.0, 100.0])
def test_t_cdf_closed_forms(t):
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


@pytest.mark.parametrize("df", range(1, 31))
def test_t_quantile_matches_the_table(df):
    assert t_quantile(0.975, df) == pytest.approx(_T95[df - 1], abs=5.1e-4)  # table rounded to 3 decimals
    assert t_critical(df) == pytest.approx(_T95[df - 1], abs=5.1e-4)


def test_t_hand_checked_values():
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.07339, abs=1e-5)  # standard table: t = 2.0, df 10
    assert t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=1e-4)
    assert t_critical(4, alpha=0.01) == pytest.approx(4.604, abs=5e-4)  # 99% column of the table
    assert t_critical(10_000_000) == pytest.approx(1.959964, abs=1e-5)  # the normal limit
    assert t_two_sided_p(0.0, 3) == 1.0 and t_two_sided_p(math.inf, 3) == 0.0
    assert t_quantile(0.5, 7) == 0.0 and t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))


@given(st.floats(0.001, 0.999), st.integers(1, 200))
def test_t_quantile_inverts_the_cdf(q, df):
    assert t_cdf(t_quantile(q, df), df) == pytest.approx(q, abs=1e-9)


# ------------------------------------------------------------------------------------------ paired tests
def test_paired_t_hand_case():
    r = paired_t([1.0, 2.0, 3.0])  # mean 2, sd 1, t = 2 sqrt 3, df 2: p = 1 - t / sqrt(t^2 + 2)
    t = 2 * math.sqrt(3)
    assert (r.n, r.mean, r.sd) == (3, 2.0, 1.0)
    assert r.stat == pytest.approx(t)
    assert r.p == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-12)
    half = 4.302653 / math.sqrt(3)
    assert r.ci == pytest.approx((2 - half, 2 + half), abs=1e-5)
    assert paired_t([0.5]).p != paired_t([0.5]).p  # NaN: one pair has no spread
    assert paired_t([0.2, 0.2]).ci == (0.2, 0.2) and paired_t([0.2, 0.2]).p == 0.0


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12))
def test_paired_t_ci_excludes_zero_exactly_when_p_below_alpha(d):
    r = paired_t(d)
    if r.sd > 1e-6 and abs(abs(r.stat) - t_critical(r.n - 1)) > 1e-6:
        assert (r.p < 0.05) == (r.ci[0] > 0 or r.ci[1] < 0)


def _enumerated_p(d):
    obs = abs(sum(d))
    sums = [abs(sum(e * x for e, x in zip(signs, d))) for signs in itertools.product((-1, 1), repeat=len(d))]
    return sum(s >= obs - 1e-9 for s in sums) / len(sums)


def test_sign_flip_hand_case():
    r = sign_flip([1.0, 2.0, 3.0])  # sums of +-1 +-2 +-3: 6, 4, 2, 0, 0, -2, -4, -6; |s| >= 6 twice of 8
    assert r.p == 0.25 and r.test == "sign-flip, exact (2^n)" and r.stat == 6.0
    assert r.ci == (-math.inf, math.inf)  # floor 2/8 > 0.05: a p-value only
    assert sign_flip([1.0, 2.0, -0.5, 3.0]).p == pytest.approx(4 / 16)  # |5.5|, |6.5| (flip 0.5), mirrored

def test_sign_flip_ci_of_equal_differences_is_bounded_only_when_the_test_can_reject():
    """All d equal: every mu0 != mean gets p = 2 / 2^n, so the CI is the point only when 2 / 2^n <= alpha (n >= 6)."""
    for n in (2, 5):
        assert sign_flip([0.3] * n).ci == (-math.inf, math.inf)
    for n in (6, 9):
        assert sign_flip([0.3] * n).ci == (0.3, 0.3)

def test_sign_flip_ci_edge_at_a_jump_reads_as_the_jump():
    """Escapes 4 of 12 vs 0 of 12: d = 1 in four pairs, 0 in eight. The lower edge is the jump of p at mu0 = 0
    (at mu0 < 0 the eight zero pairs count against the null), found by bisection; it must read 0.0, not -7e-13."""
    r = sign_flip([1.0] * 4 + [0.0] * 8)
    assert r.ci[0] == 0.0 and not math.copysign(1.0, r.ci[0]) < 0
    assert _enumerated_p([x + 1e-6 for x in [1.0] * 4 + [0.0] * 8]) <= 0.05  # just below 0: rejected
    assert r.p == pytest.approx(0.125)  # 2 of the 16 sign patterns of the four ones reach |4|


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3, 3).map(lambda x: round(x, 3)), min_size=2, max_size=9))
def test_sign_flip_equals_enumeration(d):
    assert sign_flip(d).p == pytest.approx(_enumerated_p(d), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-3, 3).map(lambda x: round(x, 2)), min_size=6, max_size=10))
def test_sign_flip_ci_is_the_inverted_test(d):
    r = sign_flip(d)
    if not math.isfinite(r.ci[0]) or r.sd == 0:
        return
    lo, hi = r.ci
    width = max(hi - lo, 1e-3)
    for mu0 in (lo + 0.02 * width, hi - 0.02 * width, r.mean):  # just inside: not rejected
        assert _enumerated_p([x - mu0 for x in d]) > 0.05
    for mu0 in (lo - 0.02 * width, hi + 0.02 * width):  # just outside: rejected
        assert _enumerated_p([x - mu0 for x in d]) <= 0.05 + 1e-12


def test_sign_flip_monte_carlo_is_seeded_and_close_to_exact():
    d = [0.3, -0.1, 0.5, 0.2, 0.4, -0.2, 0.1, 0.6, 0.3, 0.05, 0.25, -0.05, 0.15, 0.35, 0.45, 0.2, 0.1]  # n = 17
    exact = sign_flip(d, exact_max=17)
    mc = sign_flip(d, draws=20_000, seed=3)
    assert mc.test == "sign-flip, Monte Carlo (20000 draws, seed 3)"
    assert mc.p == sign_flip(d, draws=20_000, seed=3).p
    assert mc.p == pytest.approx(exact.p, abs=0.005)
    assert mc.ci == pytest.approx(exact.ci, abs=0.02)


# ----------------------------------------------------------------------------------------------- Holm
def test_holm_hand_worked():
    # Sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> raised to 0.06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]
    out = holm([0.01, math.nan, 0.04])  # NaN is not a test: m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_properties(p):
    adj = holm(p)
    m = len(p)
    assert all(a >= r - 1e-15 and a <= 1.0 for a, r in zip(adj, p))  # never below the raw p, capped at 1
    for i, j in itertools.product(range(m), repeat=2):
        if p[i] <= p[j]:
            assert adj[i] <= adj[j] + 1e-15  # the order of the raw p-values is kept
    assert min(adj) == pytest.approx(min(1.0, m * min(p)))  # the smallest is Bonferroni's
    assert all(a <= min(1.0, m * r) + 1e-15 for a, r in zip(adj, p))  # never above Bonferroni


# ------------------------------------------------------------------------------------- decisions, families
def test_decide_each_branch():
    big = paired_t([1.0, 1.1, 0.9, 1.05])  # mean 1.0125, p ~ 1e-5, CI about [0.88, 1.15]
    assert decide(big, +1, 0.5, big.p)[0] == "held"
    assert decide(big, +1, 1.1, big.p)[0] == "inconclusive"  # significant, mean below the SESOI, CI reaches it
    assert decide(big, +1, 2.0, big.p)[0] == "did not hold"  # the CI excludes an effect as large as the SESOI
    assert decide(big, -1, 0.0, big.p)[0] == "did not hold"  # significant the other way
    noisy = paired_t([1.0, -0.5, 0.8])
    assert decide(noisy, +1, 0.1, noisy.p)[0] == "inconclusive"
    assert decide(paired_t([1.0]), +1, 0.0, math.nan)[0] == "inconclusive"


def test_judge_family_holm_and_skips():
    d = {"a": [0.10, 0.12, 0.11, 0.13], "b": [0.02, 0.05, -0.01, 0.04], "c": [0.3, 0.3, 0.31, 0.29],
         "e": [0.5, 0.5, 0.6, 0.4]}
    hyps = [Hypothesis("a", "a rises", +1, 0.05), Hypothesis("b", "b rises", +1, 0.01),
            Hypothesis("c", "chosen to hold", +1, 0.0, description="the arm was chosen by this criterion"),
            Hypothesis("e", "e rises", +1, 0.2, family="other")]
    out = {j.key: j for j in judge_family(hyps, d, headroom={"e": 0.1})}
    gated = judge_family(hyps, d, premise_absent={"a": "GRPO escaped"})
    assert gated[0].label == PREMISE_ABSENT and gated[1].p_adj == pytest.approx(paired_t(d["b"]).p)  # m = 1
    pa, pb = paired_t(d["a"]).p, paired_t(d["b"]).p
    assert out["a"].p_adj == pytest.approx(holm([pa, pb])[0]) and out["b"].p_adj == pytest.approx(holm([pa, pb])[1])
    assert out["a"].label == "held"
    assert out["c"].label == DESCRIPTION and math.isnan(out["c"].p_adj)
    assert out["e"].label == NO_HEADROOM
    assert out["a"].test.level == pytest.approx(0.975)  # the Bonferroni CI of a family of two
    rec = out["a"].as_dict()
    assert rec["verdict"] == "held" and rec["n"] == 4 and rec["p_adj"] == out["a"].p_adj
    assert out["c"].as_dict()["p_adj"] is None
    with pytest.raises(ValueError, match="sesoi"):
        Hypothesis("x", "x", +1, -0.1)


def test_judge_family_sign_flip_cannot_hold_at_five_pairs():
    d = {"a": [1.0, 1.1, 0.9, 1.2, 1.0]}
    j = judge_family([Hypothesis("a", "a", +1, 0.0)], d, test="sign-flip")[0]
    assert j.test.p == pytest.approx(2 / 32) and j.label == "inconclusive"


# --------------------------------------------------------------------------------------- coefficients
def test_coef_status():
    assert coef_status([9e-3] * 8 + [5e-3] * 2, 6e-4, 9e-3, 2e-3) == ("saturated", 0.8)  # at the cap 80%
    assert coef_status([6e-4] * 6 + [1e-3] * 4, 6e-4, 9e-3, 2e-3)[0] == "saturated"  # at the floor
    assert coef_status([2e-3, 2.5e-3, 3e-3, 9e-3], 6e-4, 9e-3, 2e-3)[0] == "moves"  # one step at the cap
    assert coef_status([2e-3, 2.01e-3, 2.02e-3], 6e-4, 9e-3, 2e-3)[0] == "stays"
    assert coef_status([2e-3, 9e-3, 9e-3, 9e-3], 6e-4, 9e-3, 2e-3)[0] == "saturated"  # never "moves"


def test_sign_flip_on_paired_binary_outcomes_is_the_exact_sign_test():
    # 6 discordant pairs (5 for, 1 against) and 4 ties: McNemar's exact two-sided p = 2 * P(Bin(6, 1/2) >= 5)
    d = [1, 1, 1, 1, 1, -1, 0, 0, 0, 0]
    assert sign_flip(d).p == pytest.approx(2 * (math.comb(6, 5) + math.comb(6, 6)) / 2 ** 6)

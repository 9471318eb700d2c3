"""Grading of issue 25's cases: list answers, answers that are not values, types, timeouts per answer, Preempted.

The regression cases live in ``tests/llm/data/grading_regressions.jsonl`` (completion, gold, expected, why); each
expected verdict is math-verify's (its LaTeX reading of the gold, as for ``\\boxed{-2,1}``) or a refusal that
docs/llm/rewards.md explains.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import llm.math_equiv as me
from llm.answer_form import is_list, split_list, unwrap_dollars
from llm.math_equiv import answers_match
from llm.preempt import Preempted
from llm.rewards import correctness_reward, score_problems

needs_mv = pytest.mark.skipif(not me.HAS_MATH_VERIFY, reason="math-verify not installed")
CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "grading_regressions.jsonl").open()]


@needs_mv
@pytest.mark.parametrize("case", CASES, ids=[f"{c['completion'][-24:]!r}-vs-{c['gold']!r}" for c in CASES])
def test_regression_case(case):
    assert correctness_reward([case["completion"]], [case["gold"]]) == [float(case["expected"])], case["why"]


def mv_latex(pred: str, gold: str) -> bool:
    """math-verify's verdict with both sides read as LaTeX math (as a boxed answer is read)."""
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))


ints = st.integers(-50, 50)


@needs_mv
@given(st.lists(ints, min_size=2, max_size=4, unique=True), st.randoms(use_true_random=False), st.booleans())
@example([-2, 1], None, False)
def test_bare_lists_compare_as_sets_both_ways(items, rnd, spaced):
    """A bare list matches any order of itself (set equality, as math-verify), never one of its items, and the
    verdict is math-verify's in both directions."""
    sep = ", " if spaced else ","
    gold = sep.join(map(str, items))
    perm = list(items)
    if rnd is not None:
        rnd.shuffle(perm)
    pred = sep.join(map(str, perm))
    assert answers_match(pred, gold) and answers_match(gold, pred)
    assert answers_match(pred, gold) is mv_latex(pred, gold)
    for item in (str(items[0]), str(items[-1])):
        assert not answers_match(item, gold) and not answers_match(gold, item)
        assert mv_latex(item, gold) is False
    shorter = sep.join(map(str, items[:-1]))
    assert not answers_match(shorter, gold) and not answers_match(gold, shorter)


@needs_mv
@given(ints, ints, st.sampled_from(["({}, {})", "\\left({}, {}\\right)"]))
def test_tuples_are_ordered(a, b, form):
    """``(a, b)`` matches ``(b, a)`` only when a == b, and its own spelling always (math-verify's verdict)."""
    x, y = form.format(a, b), f"({b}, {a})"
    assert answers_match(x, f"({a}, {b})")
    assert answers_match(x, y) is (a == b) is mv_latex(x, y)


@needs_mv
@given(st.lists(ints, min_size=2, max_size=3, unique=True))
def test_inner_dollars_are_read_whole(items):
    gold = "$,$".join(map(str, items))  # OlympiadBench's "69$,$84"
    assert unwrap_dollars(gold) == ",".join(map(str, items))
    assert answers_match(", ".join(map(str, reversed(items))), gold)
    assert not answers_match(str(items[0]), gold)


@pytest.mark.parametrize(("text", "items"), [
    ("-2,1", ["-2", "1"]), ("69$,$84", ["69", "84"]), ("1,000", ["1,000"]), ("12,345,678", ["12,345,678"]),
    ("(1,2), (3,4)", ["(1,2)", "(3,4)"]), ("[1, 2)", ["[1, 2)"]), ("\\{1,2\\}", ["\\{1,2\\}"]),
    ("\\$32,\\!348", ["\\$32,348"]), ("f(x)=x, f(x)=2-x", ["f(x)=x", "f(x)=2-x"]), ("7", ["7"])])
def test_split_list_hand_cases(text, items):
    assert split_list(text) == items
    assert is_list(text) is (len(items) > 1)


def test_wrong_types_are_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="completions must be a list of str"):
        correctness_reward("55", ["55"])
    with pytest.raises(TypeError, match="answers must be a list of str"):
        correctness_reward(["55"], "55")
    with pytest.raises(TypeError, match=r"answers\[1\] must be a str"):
        correctness_reward(["1", "2"], ["1", 2])
    with pytest.raises(TypeError, match="pred must be a str"):
        answers_match(["5"], "5")
    with pytest.raises(TypeError, match="gold must be a str"):
        answers_match("5", True)
    with pytest.raises(TypeError, match="completions must be a list of str"):
        score_problems("5", [])


def test_numbers_as_answers_and_non_finite_values():
    assert not answers_match(math.nan, math.nan) and not answers_match(math.inf, math.inf)
    assert not answers_match("nan", "nan") and not answers_match("NaN", "nan")
    assert answers_match(5, "5") and answers_match(2.5, "5/2") and answers_match(Fraction(1, 2), "0.5")
    assert not answers_match(5.0000004, "5")


@needs_mv
def test_the_timeout_is_per_answer():
    """Three answers that keep sympy busy do not cost the correct answers after them their reward (issue 25: the
    five correct answers after three pathological ones used to score 0 once a 5 s batch budget was spent)."""
    slow = "\\boxed{9^{9^{9^{9^{9}}}}}"
    comps = [slow] * 3 + ["\\boxed{\\frac{2}{4}}"] * 5
    t0 = time.perf_counter()
    got = correctness_reward(comps, ["x^2+1"] * 3 + ["\\frac{1}{2}"] * 5, timeout_s=2.0)
    assert got == [0.0] * 3 + [1.0] * 5
    assert time.perf_counter() - t0 < 3 * 2.0 + 5  # each slow answer stopped by its own alarm


@needs_mv
def test_preempted_passes_through_the_grader():
    """A second SIGTERM during grading raises Preempted inside math-verify; the grader must not turn it into a
    wrong grade (Preempted is a BaseException, so the grader's and math-verify's ``except Exception`` let it by)."""
    def handler(signum, frame):
        raise Preempted(signum, None)

    old = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Preempted, match="second SIGUSR1"):
            correctness_reward(["\\boxed{9^{9^{9^{9^{9}}}}}"], ["x^2+1"], timeout_s=10.0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert not issubclass(Preempted, Exception)


@needs_mv
def test_number_list_golds_of_the_benchmarks(shared_data):
    """Every gold of MATH-500 and OlympiadBench that is a list of distinct numbers: the list reversed is paid, its
    first item and the decimal-comma reading of its first two items are not."""
    import re

    from llm.data import load_problems

    golds = [p.answer for b in ("math500", "olympiadbench") for p in load_problems(b, n=0) if is_list(p.answer)]
    number_lists = [g for g in golds if all(re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", x) for x in split_list(g))
                    and len(set(split_list(g))) == len(split_list(g))]
    assert len(number_lists) >= 40, len(number_lists)
    for gold in number_lists:
        items = split_list(gold)
        assert answers_match(", ".join(reversed(items)), gold), gold
        assert not answers_match(items[0], gold), gold
        if "." not in items[0] + items[1]:
            assert not answers_match(f"{items[0]}.{items[1].lstrip('-')}", gold), gold

"""llm.rewards: answer extraction, correctness and countdown rewards against hand cases, properties and real labels."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm.data import Problem
from llm.rewards import (
    RewardError,
    correctness_reward,
    countdown_reward,
    evaluate_expression,
    extract_answer,
    last_boxed,
    score_problems,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18 - 3 = 15\n#### 15", "15"),
        ("so #### 7 and later\n#### 1,000", "1,000"),
        ("We get \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{2}}{\\left(3\\right)}} done", "\\frac{\\sqrt{2}}{\\left(3\\right)}"),
        ("first \\boxed{1} then \\boxed{{2}}", "{2}"),
        ("\\fbox{9}", "9"),
        ("He pays 5 * 2 = 10 dollars.\nA: 10", "10"),
        ("Answer: $42$.", "42"),
        ("So the answer is 12.", "12"),
        ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("The answer is \\boxed{5}.", "5"),
        ("A: 18 dollars", "18"),
        ("A: 5\\text{ cm}", "5"),
        ("#### 13*(14/2)", "13*(14/2)"),
        ("3 + 4 = 7 and 7 * 2 = 14 apples", None),  # no declared answer: strict extraction finds none
        ("no numbers here", None),
        ("unbalanced \\boxed{3", None),
    ],
)
def test_extract_answer_hand_cases(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3 + 4 = 7 and 7 * 2 = 14 apples", "14"), ("unbalanced \\boxed{3", "3"), ("#### 5", "5")],
)
def test_lenient_extraction_falls_back_to_the_last_number(text, expected):
    assert extract_answer(text, lenient=True) == expected


# Completions a policy could write to collect reward without answering, or that a reader would grade otherwise.
ADVERSARIAL = [
    # (completion, gold, strict reward, lenient reward), worked out by hand
    ("Tom has 5 apples and gets 3 more", "3", 0.0, 1.0),  # only the question's numbers: lenient reads the last
    ("Tom has 5 apples and gets 3 more", "8", 0.0, 0.0),
    ("the answer is 7 ... actually 9", "9", 0.0, 0.0),  # after the declared answer nothing more is read
    ("the answer is 7 ... actually 9", "7", 1.0, 1.0),
    ("#### 7\nWait, that is wrong.\n#### 9", "9", 1.0, 1.0),  # a self-correction in the declared form counts
    ("#### 7\nWait, that is wrong.\n#### 9", "7", 0.0, 0.0),
    ("\\boxed{7} is tempting, but the answer is 9.", "9", 1.0, 1.0),  # the last declaration wins
    ("The answer is 9. Check: 9 = 4 + 5, so \\boxed{9}", "9", 1.0, 1.0),
    ("The answer is not 12; 3 * 4 = 12 is the cost.\n#### 13", "12", 0.0, 0.0),  # mentioned mid-text
    ("The answer is not 12; 3 * 4 = 12 is the cost.\n#### 13", "13", 1.0, 1.0),
    ("Maybe 3, maybe 5: \\boxed{3} \\boxed{5}", "3", 0.0, 0.0),  # several boxes: only the last counts
    ("Maybe 3, maybe 5: \\boxed{3} \\boxed{5}", "5", 1.0, 1.0),
    ("\\boxed{3, 5}", "5", 0.0, 0.0),  # a set of guesses is not the number
    ("\\boxed{3 5}", "5", 0.0, 0.0),
    ("#### 3 or 5", "5", 0.0, 0.0),
    ("#### 5\nI am not sure the answer is right", "5", 1.0, 1.0),  # a later marker with no answer yields
    ("A:", "0", 0.0, 0.0),
]


@pytest.mark.parametrize(("text", "gold", "strict", "lenient"), ADVERSARIAL)
def test_adversarial_completions(text, gold, strict, lenient):
    assert correctness_reward([text], [gold]) == [strict]
    assert correctness_reward([text], [gold], lenient=True) == [lenient]


def test_huge_outputs():
    filler = "Let me think about it again. " * 40_000  # about 1.2 million characters
    assert correctness_reward([filler + "#### 42"], ["42"]) == [1.0]
    assert correctness_reward([filler], ["42"]) == [0.0]
    assert correctness_reward(["\\boxed{" + "1+" * 20_000 + "1}"], ["20001"]) == [0.0]  # over the length cap
    assert correctness_reward(["#### " + "9" * 3_000], ["9" * 3_000]) == [1.0]  # long, exact: the fast path
    assert correctness_reward(["#### " + "9" * 3_000], ["9" * 2_999 + "8"]) == [0.0]


def test_last_boxed_nested_braces():
    assert last_boxed("x \\boxed{a{b{c}}d} y") == "a{b{c}}d"
    assert last_boxed("\\boxed 5") == "5"
    assert last_boxed("nothing") is None


def test_correctness_reward_hand_cases():
    completions = [
        "Total: 600 + 400 = 1000\n#### 1,000",  # thousands separator
        "The probability is \\boxed{\\dfrac{1}{2}}",  # \dfrac vs decimal reference
        "She makes 9 * 2 = $18 every day.\nA: $18.00",  # $ and trailing zeros
        "so the answer is 0.5",  # reference \frac12
        "#### 18 dollars",  # unit stripped
        "#### 17",  # wrong
        "I do not know",  # no answer
        "\\boxed{-3}",  # sign matters
    ]
    answers = ["1000", "0.5", "Janet sells 9 eggs.\nA: 18", "\\frac12", "18", "18", "18", "3"]
    assert correctness_reward(completions, answers) == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_reference_may_be_full_solution():
    assert correctness_reward(["#### 72"], ["48 + 24 = 72 clips.\n#### 72"]) == [1.0]
    assert correctness_reward(["\\boxed{5}"], ["... so it is $\\boxed{5}$."]) == [1.0]


def test_reward_error_names_the_sample():
    with pytest.raises(TypeError, match=r"completions\[1\] must be a str, got NoneType"):
        correctness_reward(["#### 1", None, "#### 3"], ["1", "2", "3"])
    with pytest.raises(RewardError, match="sample 1"):
        score_problems(["#### 1", "#### 2"], [Problem("q", "1"), Problem("q", "2", meta={"reward": "countdown"})])
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        correctness_reward(["a", "b"], ["1"])


def _spellings(n: int) -> list[str]:
    """Equivalent ways to write the integer n as a declared final answer."""
    return [
        f"#### {n}", f"#### {n:,}", f"\\boxed{{{n}}}", f"A: {n}", f"The answer is {n}.", f"A: ${n}",
        f"#### {n}.00", f"\\boxed{{\\frac{{{2 * n}}}{{2}}}}", f"\\boxed{{\\dfrac{{{3 * n}}}{{3}}}}", f"#### {n} apples",
        f"The final answer is ${n}$. I hope it is correct.", f"Answer: \\boxed{{{n}}}",
    ]


@given(st.integers(-10**7, 10**7))
def test_equivalent_spellings_always_match(n):
    comps = _spellings(n)
    assert correctness_reward(comps, [str(n)] * len(comps)) == [1.0] * len(comps)


@given(st.integers(-10**7, 10**7), st.integers(-10**7, 10**7))
def test_different_number_never_matches(n, m):
    comps = _spellings(n)
    expected = 1.0 if n == m else 0.0
    assert correctness_reward(comps, [str(m)] * len(comps)) == [expected] * len(comps)


_FILLER = st.text(alphabet=st.sampled_from(list("abcdefgh .,;:!?\n()")), max_size=40)


@given(_FILLER, _FILLER, st.integers(0, 10**6), st.sampled_from(["hash", "boxed"]))
def test_extraction_invariant_to_surrounding_text(before, after, n, kind):
    """Text without digits or markers around a marked answer does not change what is extracted."""
    marked = f"#### {n}" if kind == "hash" else f"\\boxed{{{n}}}"
    text = f"{before}\n{marked}" if kind == "hash" else f"{before}{marked}{after}"
    assert extract_answer(text) == str(n)
    assert correctness_reward([text], [str(n)]) == [1.0]


def _countdown_problem(numbers, target):
    return Problem(f"make {target}", str(target), None, "t", {"reward": "countdown", "numbers": numbers, "target": target})


def test_countdown_reward_hand_cases():
    p = _countdown_problem([13, 14, 2], 91)
    comps = [
        "14/2=7\n13*7=91\n#### 13*(14/2)",  # valid
        "<answer>(14 / 2) * 13</answer>",  # another valid answer
        "#### 13*14/2 = 91",  # valid, '= target' tail ignored
        "#### 13*14",  # does not use 2
        "#### 13*(14/2)+2-2",  # uses 2 twice
        "#### 13+14+2",  # wrong value
        "#### __import__('os').system('echo hi')",  # never executed
        "",
    ]
    assert countdown_reward(comps, [p] * len(comps)) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_evaluate_expression_hand_cases():
    assert evaluate_expression("(3 + 5) * 7") == (Fraction(56), [3, 5, 7])
    assert evaluate_expression("7 / 2 - 1") == (Fraction(5, 2), [7, 2, 1])
    assert evaluate_expression("6 × 2 ÷ 4") == (Fraction(3), [6, 2, 4])
    for bad in ["2 ** 3", "1 / 0", "x + 1", "1.5 + 1", "[1]", "1 +"]:
        with pytest.raises(ValueError):
            evaluate_expression(bad)


def _random_expr(rng: random.Random, depth: int) -> tuple[str, Fraction, list[int]]:
    """A random +-*/ expression with its exact value computed independently, bottom-up."""
    if depth == 0 or rng.random() < 0.3:
        n = rng.randint(1, 50)
        return str(n), Fraction(n), [n]
    a, va, ua = _random_expr(rng, depth - 1)
    b, vb, ub = _random_expr(rng, depth - 1)
    op = rng.choice("+-*/" if vb != 0 else "+-*")
    value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else None}[op]
    return f"({a} {op} {b})", value, ua + ub


@given(st.integers(0, 10**9))
def test_evaluate_expression_matches_independent_value(seed):
    expr, value, used = _random_expr(random.Random(seed), 4)
    assert evaluate_expression(expr) == (value, used)


def test_score_problems_dispatches_per_problem():
    cd = _countdown_problem([3, 4], 12)
    arith = Problem("q", "7", "3+4=7\n#### 7", "t", {})
    assert score_problems(["#### 3*4", "#### 7", "#### 3+4"], [cd, arith, cd]) == [1.0, 1.0, 0.0]
    with pytest.raises(RewardError, match="sample 0"):
        score_problems(["#### 1"], [Problem("q", "1", None, "t", {"reward": "nope"})])


@pytest.mark.data
def test_agreement_with_labels_on_real_gsm8k_solutions(shared_data):
    """>= 99% agreement with is_correct on the 4 x 1,319 labelled model solutions (measured: 100%)."""
    path = shared_data / "gsm8k" / "example_model_solutions.jsonl"
    comps, refs, labels = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for value in row.values():
            if isinstance(value, dict) and "is_correct" in value:
                comps.append(value["solution"])
                refs.append(row["ground_truth"])
                labels.append(bool(value["is_correct"]))
    assert len(labels) == 4 * 1319
    rewards = correctness_reward(comps, refs)
    agree = sum(bool(r) == y for r, y in zip(rewards, labels)) / len(labels)
    assert agree >= 0.99, f"agreement {agree:.4f}"
    assert 0.2 < sum(labels) / len(labels) < 0.6  # both classes present: agreement is not trivial


@pytest.mark.data
def test_math500_reference_solutions_score_one(shared_data):
    """Strict extraction and grading on real LaTeX: each MATH-500 reference solution against its own gold answer
    (their answers are boxed; intervals, fractions, tuples, text and units among them). Measured: 500/500."""
    rows = [json.loads(line) for line in (shared_data / "math_bench" / "math500.jsonl").open(encoding="utf-8")]
    scores = []
    for i in range(0, len(rows), 64):  # batches as in training: each batch has its own grading budget
        chunk = rows[i : i + 64]
        scores += correctness_reward([r["solution"] for r in chunk], [r["answer"] for r in chunk])
    assert len(rows) == 500 and sum(scores) >= 495, f"{sum(scores)}/500"

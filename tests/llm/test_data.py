"""llm.data: synthetic tasks (splits, difficulty, worked solutions), file loaders, errors and prompt templates."""

from __future__ import annotations

import itertools
import json
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.data import (
    BENCHMARKS,
    TEMPLATES,
    DataError,
    Problem,
    format_prompt,
    format_target,
    load_file,
    load_problems,
    make_task,
)
from llm.rewards import correctness_reward, countdown_reward, score_problems


def _key(p: Problem):
    return (tuple(sorted(p.meta["numbers"])), p.meta["target"]) if p.meta["task"] == "countdown" else p.question


@pytest.mark.parametrize("task", ["arithmetic", "small_arithmetic", "countdown"])
def test_splits_disjoint_seeded_and_independent(task):
    train, test = make_task(task, 300, 60, seed=3)
    assert len(train) == 300 and len(test) == 60
    assert len({_key(p) for p in train}) == 300 and len({_key(p) for p in test}) == 60
    assert not {_key(p) for p in train} & {_key(p) for p in test}
    assert make_task(task, 300, 60, seed=3) == (train, test)  # same seed, same problems
    small_train, bigger_test = make_task(task, 10, 80, seed=3)
    assert small_train == train[:10] and bigger_test[:60] == test  # each split depends only on its own size
    assert make_task(task, 0, 60, seed=4)[1] != test


@given(st.integers(1, 8), st.integers(0, 10**6))
def test_arithmetic_solutions_are_correct_worked_steps(difficulty, seed):
    """Every solution line 'a op b=c' is true (checked with Fraction), there are difficulty+1 of them,
    each line starts from the previous result, and the last result is the answer."""
    (p,), _ = make_task("arithmetic", 1, 0, seed=seed, difficulty=difficulty)
    *lines, last = p.solution.split("\n")
    assert last == f"#### {p.answer}" and len(lines) == difficulty + 1
    allowed = "+-" if difficulty == 1 else "+-*" if difficulty == 2 else "+-*/"
    prev = int(re.match(r"\w+ has (\d+)", p.question).group(1))
    for line in lines:
        a, op, b, c = re.fullmatch(r"(\d+)([-+*/])(\d+)=(\d+)", line).groups()
        assert op in allowed and int(a) == prev
        value = {"+": Fraction(int(a)) + int(b), "-": Fraction(int(a)) - int(b), "*": Fraction(int(a)) * int(b),
                 "/": Fraction(int(a), int(b))}[op]
        assert value == int(c) and int(c) >= 1
        prev = int(c)
    assert prev == int(p.answer)
    assert correctness_reward([p.solution], [p.answer]) == [1.0]


@given(st.integers(1, 8), st.integers(0, 10**6))
def test_small_arithmetic_stays_in_single_digits(difficulty, seed):
    """Every worked line of the small task is a true single-digit fact chained from the previous amount, with
    every amount, operand and result in 1..9, and the question states each operand."""
    (p,), _ = make_task("small_arithmetic", 1, 0, seed=seed, difficulty=difficulty)
    *lines, last = p.solution.split("\n")
    assert last == f"#### {p.answer}" and len(lines) == difficulty + 1
    prev = int(re.match(r"\w+ has (\d+)", p.question).group(1))
    operands = [int(n) for n in re.findall(r"\d+", p.question)[1:]]
    for line, stated in zip(lines, operands):
        a, op, b, c = re.fullmatch(r"(\d)([-+])(\d)=(\d)", line).groups()
        assert int(a) == prev and int(b) == stated
        assert int(c) == (int(a) + int(b) if op == "+" else int(a) - int(b)) and 1 <= int(c) <= 9
        prev = int(c)
    assert prev == int(p.answer)
    assert correctness_reward([p.solution], [p.answer]) == [1.0]


@given(st.integers(1, 4), st.integers(0, 10**6))
def test_countdown_reference_solution_is_valid(difficulty, seed):
    (p,), _ = make_task("countdown", 1, 0, seed=seed, difficulty=difficulty)
    assert len(p.meta["numbers"]) == difficulty + 2
    assert all(1 <= n <= 10 * (difficulty + 1) for n in p.meta["numbers"])
    assert countdown_reward([p.solution], [p]) == [1.0]
    assert score_problems([p.solution], [p]) == [1.0]


def _all_values(nums):
    """Brute force: every (value, expression) reachable using each number exactly once (exact arithmetic)."""
    if len(nums) == 1:
        return [(Fraction(nums[0]), str(nums[0]))]
    out = []
    for i, j in itertools.permutations(range(len(nums)), 2):
        rest = [nums[k] for k in range(len(nums)) if k not in (i, j)]
        for va, ea in _all_values([nums[i]]):
            for vb, eb in _all_values([nums[j]]):
                for op in "+-*/":
                    if op == "/" and vb == 0:
                        continue
                    v = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else 0}[op]
                    if not rest:
                        out.append((v, f"({ea}{op}{eb})"))
                    else:
                        out.extend((w, e.replace("X", f"({ea}{op}{eb})", 1)) for w, e in _with_hole(rest, v))
    return out


def _with_hole(rest, v):
    """Combine a partial value (written X) with the remaining numbers, left to right."""
    if not rest:
        return [(v, "X")]
    out = []
    for k, n in enumerate(rest):
        others = rest[:k] + rest[k + 1:]
        for op in "+-*/":
            w = {"+": v + n, "-": v - n, "*": v * n, "/": v / n}[op]
            out.extend((u, e.replace("X", f"(X{op}{n})", 1)) for u, e in _with_hole(others, w))
    return out


def test_countdown_has_several_valid_answers_and_reward_accepts_them():
    """On 20 problems, every brute-force expression that reaches the target scores 1, and most problems have
    more than one distinct valid expression (the task has several valid answers)."""
    _, test = make_task("countdown", 0, 20, seed=0, difficulty=1)
    multi = 0
    for p in test:
        valid = {e for v, e in _all_values(p.meta["numbers"]) if v == p.meta["target"]}
        assert valid, p.question
        assert countdown_reward([f"#### {e}" for e in sorted(valid)], [p] * len(valid)) == [1.0] * len(valid)
        wrong = [e for v, e in _all_values(p.meta["numbers"])[:50] if v != p.meta["target"]]
        assert countdown_reward([f"#### {e}" for e in wrong], [p] * len(wrong)) == [0.0] * len(wrong)
        multi += len(valid) > 1
    assert multi >= 15


def test_make_task_errors():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_task("nope", 1, 1)
    with pytest.raises(ValueError, match="difficulty must be an integer in"):
        make_task("arithmetic", 1, 1, difficulty=9)
    with pytest.raises(ValueError, match="n_train"):
        make_task("arithmetic", -1, 1)
    assert make_task("arith", 2, 0)[0] == make_task("arithmetic", 2, 0)[0]


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_load_gsm8k_and_math_formats(tmp_path):
    gsm = _write_jsonl(tmp_path / "g.jsonl", [
        {"question": "Q1?", "answer": "She sold 48/2 = <<48/2=24>>24.\n#### 24"},
        {"question": "Q2?", "answer": "1,000 + 5 = 1,005\n#### 1,005"},
    ])
    ps = load_file(gsm)
    assert [p.answer for p in ps] == ["24", "1,005"]
    assert ps[0].solution == "She sold 48/2 = 24.\n#### 24"  # calculator annotation removed
    math = _write_jsonl(tmp_path / "m.jsonl", [
        {"problem": "P1", "solution": "so $\\boxed{\\frac{1}{2}}$."},
        {"problem": "P2", "solution": "long", "answer": "\\sqrt{2}", "level": 3, "subject": "Algebra"},
        {"question": "P3", "answer": 27.0},
        {"question": "P4", "final_answer": ["$(1,2)$", "$3$"], "solution": ["s1", "s2"], "context": "C"},
        {"question": "P5", "ground_truth": "x\nA: 7"},
    ])
    ps = load_file(math)
    assert [p.answer for p in ps] == ["\\frac{1}{2}", "\\sqrt{2}", "27", "(1,2), 3", "7"]
    assert ps[1].meta == {"level": 3, "subject": "Algebra"} and ps[3].question == "C\nP4" and ps[3].solution == "s1"
    assert len(load_file(math, n=2)) == 2


def test_load_parquet_and_json(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    rows = [{"question": "Q1", "answer": "x\n#### 3"}, {"question": "Q2", "answer": "x\n#### 4"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    assert [p.answer for p in load_file(tmp_path / "d.parquet")] == ["3", "4"]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    assert [p.answer for p in load_problems(str(tmp_path / "d.json"))] == ["3", "4"]


def test_bad_input_gives_one_clear_message(tmp_path):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "a", "answer": "1"}, "", "{not json"])
    with pytest.raises(DataError, match=r"bad\.jsonl:3: malformed JSON"):
        load_file(bad)
    missing = _write_jsonl(tmp_path / "miss.jsonl", [{"question": "a", "answer": "1"}, {"answer": "2"}])
    with pytest.raises(DataError, match=r"miss\.jsonl:2: missing field 'question'"):
        load_file(missing)
    no_answer = _write_jsonl(tmp_path / "noans.jsonl", [{"question": "a", "solution": "no box"}])
    with pytest.raises(DataError, match=r"noans\.jsonl:1: no 'answer' field"):
        load_file(no_answer)
    no_answer2 = _write_jsonl(tmp_path / "noans2.jsonl", [{"question": "a"}])
    with pytest.raises(DataError, match=r"noans2\.jsonl:1: missing field 'answer'"):
        load_file(no_answer2)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_file(tmp_path / "empty.jsonl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_file(tmp_path / "nope.jsonl")
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(DataError, match="unknown dataset extension"):
        load_file(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="AENT_SHARED_DATA"):
        load_problems("math500", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'nonsense'"):
        load_problems("nonsense")


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "q", "answer": True}, r"field 'answer' is true \(bool\), not an answer"),
    ({"question": "q", "answer": [1, 2]}, r"field 'answer' is the list \[1, 2\]"),
    ({"question": "q", "answer": {"a": 1}}, r"field 'answer' is \{\"a\": 1\} \(dict\)"),
    ({"question": "q", "answer": "None"}, r"field 'answer' is 'None': the gold answer is missing"),
    ({"question": "q", "final_answer": [None]}, r"field 'final_answer' is the list \[null\]"),
    ({"question": "q", "final_answer": ["$None$"]}, r"field 'final_answer' .* the gold answer is missing"),
    ({"question": "q", "answer": "1", "answer_type": "x", "unused": 1, "reward_model": 3}, None),
    ({"question": 5, "answer": "1"}, r"field 'question' must be a non-empty string .* \(int\)"),
])
def test_wrong_field_types_are_refused_with_file_and_line(tmp_path, row, message):
    """Issue 25: `"answer": true` became "True" and `[1, 2]` "[1, 2]"; a missing gold became "None", which
    `\\boxed{None}` was paid for. Each is now refused at load time with file:line (here line 2)."""
    path = _write_jsonl(tmp_path / "d.jsonl", [{"question": "ok", "answer": "7"}, row])
    if message is None:
        assert load_file(path)[1].answer == "1"
        return
    with pytest.raises(DataError, match=rf"d\.jsonl:2: {message}"):
        load_file(path)


def test_the_whole_file_is_validated_not_only_the_first_n_rows(tmp_path):
    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(5)] + [{"question": "bad", "answer": True}]
    path = _write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"d\.jsonl:6: field 'answer' is true"):
        load_file(path, n=2)
    good = _write_jsonl(tmp_path / "g.jsonl", rows[:5])
    assert [p.answer for p in load_file(good, n=2)] == ["0", "1"]


def test_load_problems_synthetic_matches_make_task():
    train, test = make_task("countdown", 5, 7, seed=2)
    assert load_problems("countdown", split="train", n=5, seed=2) == train
    assert load_problems("countdown", split="test", n=7, seed=2) == test


@pytest.mark.data
def test_real_benchmarks_load_with_expected_sizes(shared_data):
    sizes = {"gsm8k:train": 7473, "gsm8k:test": 1319, "math500": 500, "aime24": 30, "amc23": 40,
             "minerva_math": 272, "olympiadbench": 675}
    assert set(sizes) == set(BENCHMARKS)
    for name, size in sizes.items():
        ps = load_problems(name, data_dir=shared_data)
        assert len(ps) == size and all(p.answer.strip() for p in ps)
    gsm = load_problems("gsm8k:test", data_dir=shared_data)
    assert gsm[0].answer == "18" and all(re.fullmatch(r"-?[\d,.]+", p.answer) for p in gsm)
    # GSM8K reference solutions score 1 against their own answers (reward and loader agree)
    assert correctness_reward([p.solution for p in gsm], [p.answer for p in gsm]) == [1.0] * len(gsm)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_template_targets_carry_the_answer(template):
    train, _ = make_task("arithmetic", 20, 0, seed=1)
    for p in train:
        prompt, target = format_prompt(p, template), format_target(p, template)
        assert p.question in prompt
        assert correctness_reward([target], [p.answer]) == [1.0]


def test_chat_template_is_used_when_the_tokenizer_has_one():
    class Chat:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return "|".join(f"{m['role']}:{m['content']}" for m in messages) + "|assistant:"

    text = format_prompt("What is 2+2?", "qwen_boxed", Chat())
    assert text.startswith("system:Please reason step by step") and text.endswith("user:What is 2+2?|assistant:")
    assert format_prompt("What is 2+2?", "plain", Chat()) == "What is 2+2?\n"
    with pytest.raises(ValueError, match="unknown prompt template"):
        format_prompt("q", "nope")


def test_problem_validation():
    with pytest.raises(ValueError, match="question"):
        Problem("", "1")
    with pytest.raises(ValueError, match="answer"):
        Problem("q", " ")
    p = Problem("q", "1", "s", "src", {"a": 1})
    assert Problem.from_dict(p.to_dict()) == p


def test_hub_specs_fail_clearly_without_network(monkeypatch):
    """hf:... goes through `datasets`; offline or missing package gives one message (no network used)."""
    import sys
    import types

    fake = types.ModuleType("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    fake.load_dataset = offline
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DataError, match="cannot load 'hf:openai/gsm8k:main@test' from the Hugging Face hub"):
        load_problems("hf:openai/gsm8k:main@test")
    fake.load_dataset = lambda name, config, split: [{"question": f"{name} {config} {split}", "answer": "x\n#### 1"}]
    (p,) = load_problems("hf:openai/gsm8k:main@test")
    assert p.question == "openai/gsm8k main test" and p.answer == "1"
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match="needs the `datasets` package"):
        load_problems("hf:openai/gsm8k")


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.integers(0, 3))
def test_answer_only_keeps_answers_and_nests_in_frac(a, b, seed):
    from llm.data import answer_only

    lo, hi = sorted((a, b))
    train, _ = make_task("arithmetic", 200, 0, seed=0, difficulty=1)
    small, big = answer_only(train, lo, seed), answer_only(train, hi, seed)
    for p, s, g in zip(train, small, big):
        assert s.answer == g.answer == p.answer and s.question == p.question  # the reward's reference never moves
        for q in (s, g):
            assert q.solution in (p.solution, f"#### {p.answer}")
        if s.solution != p.solution:  # bare at the smaller fraction -> bare at the larger one too
            assert g.solution == f"#### {p.answer}"
    n_bare = sum(g.solution != p.solution for p, g in zip(train, big))
    # Binomial(200, hi): within 5 standard deviations (the choice is a hash, i.e. a fixed pseudo-random draw).
    assert abs(n_bare - 200 * hi) <= 5 * (200 * hi * (1 - hi)) ** 0.5 + 1
    assert answer_only(train, hi, seed) == big  # deterministic
    with pytest.raises(ValueError, match="frac"):
        answer_only(train, 1.5)


@settings(max_examples=20, deadline=None)
@given(st.floats(0, 1), st.integers(0, 3))
def test_answer_only_wrong_answers_are_near_misses(wrong, seed):
    from llm.data import answer_only

    train, _ = make_task("small_arithmetic", 300, 0, seed=0)
    out = answer_only(train, 1.0, seed, wrong=wrong)
    shown = [int(q.solution.removeprefix("#### ")) for q in out]
    offs = [s - int(p.answer) for s, p in zip(shown, train)]
    assert all(o == 0 or (1 <= abs(o) <= 3 and s >= 0) for o, s in zip(offs, shown))
    assert [q.answer for q in out] == [p.answer for p in train]  # the reward's reference stays right
    n_wrong = sum(o != 0 for o in offs)
    assert abs(n_wrong - 300 * wrong) <= 5 * (300 * wrong * (1 - wrong)) ** 0.5 + 1
    # The style choice does not depend on `wrong`: the same problems are bare with or without wrong answers.
    assert [q.solution.startswith("####") for q in answer_only(train, 0.5, seed, wrong=wrong)] == \
        [q.solution.startswith("####") for q in answer_only(train, 0.5, seed)]

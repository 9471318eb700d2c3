"""Synthetic tasks with verifiable answers, a difficulty knob and seed-determined, non-overlapping splits.

Three tasks small enough for a CPU-sized model trained from scratch:

- ``"arithmetic"``: multi-step word problems in GSM8K format. A person starts with some items and goes
  through ``steps`` changes (buy/lose/multiply/share); the worked solution is one ``a op b = c`` line per step
  and ends ``#### n``. Difficulty ``d`` (1..8): ``steps = d + 1``, starting amount and operands up to
  ``10 * (d + 1)``, operations ``+ -`` at d = 1, ``+ - *`` at d = 2, ``+ - * /`` from d = 3.
  At the default d = 2 a prompt plus solution is about 50 tokens with the digit-splitting tokenizer.
- ``"small_arithmetic"``: the same word problems with every number a single digit (1..9), so each worked line
  is one fact of the single-digit tables (the CPU default's task, docs/llm/setting.md).
- ``"countdown"``: given ``d + 2`` numbers (each 1..``10 * (d + 1)``) and a target, write an expression that uses
  every number exactly once with ``+ - * /`` and equals the target (many answers are valid; the reward is
  :func:`llm.rewards.countdown_reward`). The reference solution shows one valid expression, built by
  combining the numbers pairwise with exact, positive intermediate results.

`make_task(name, n_train, n_test, seed, difficulty)` gives seeded train/test splits that never share a problem
(arithmetic: same question text; countdown: same numbers and target): the problem space is partitioned by a
hash of the problem's key, and each split has its own ``random.Random`` stream. So the test split depends only on
``(seed, difficulty, n_test)``, not on ``n_train``: an evaluation with the same seed and ``n_test`` sees exactly
the held-out problems of a training run, whatever its ``n_train``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import replace

from llm.data.problem import Problem
from llm.rewards import evaluate_expression

__all__ = ["TASKS", "TASK_ALIASES", "answer_only", "generate_arithmetic", "generate_countdown",
           "generate_small_arithmetic", "make_task"]

_NAMES = [
    ("Tom", "He"), ("Mia", "She"), ("Sam", "He"), ("Lily", "She"), ("Ben", "He"), ("Ava", "She"),
    ("Leo", "He"), ("Zoe", "She"), ("Max", "He"), ("Emma", "She"), ("Noah", "He"), ("Ella", "She"),
    ("Omar", "He"), ("Nina", "She"), ("Ravi", "He"), ("Sara", "She"), ("Jack", "He"), ("Ivy", "She"),
    ("Luca", "He"), ("Maya", "She"), ("Owen", "He"), ("Ruby", "She"), ("Eli", "He"), ("Anna", "She"),
]
_ITEMS = [
    "apples", "marbles", "stickers", "coins", "books", "pencils", "cookies", "shells", "cards", "stamps",
    "eggs", "balloons", "candies", "flowers", "toys", "beads", "rocks", "cupcakes", "pens", "buttons",
]
_PLUS = ["{p} buys {b} more.", "{p} finds {b} more.", "{p} gets {b} more from a friend.", "{p} wins {b} more."]
_MINUS = ["{p} gives away {b}.", "{p} sells {b}.", "{p} loses {b}.", "{p} uses {b}."]
_TIMES = ["Then {q} gets {b} times as many.", "{p} ends up with {b} times as many."]
_DIVIDE = ["{p} splits them into {b} equal groups and keeps one.", "{p} keeps one of {b} equal shares."]


def _check_difficulty(difficulty: int, low: int = 1, high: int = 8) -> None:
    if not isinstance(difficulty, int) or not low <= difficulty <= high:
        raise ValueError(f"difficulty must be an integer in [{low}, {high}], got {difficulty!r}")


def _arith_step(rng: random.Random, x: int, ops: str, cap: int, pron: str) -> tuple[str, str, int]:
    """One change to the amount x: (sentence, solution line, new amount); always a positive integer."""
    choices = [o for o in ops if (o != "-" or x > 1) and (o != "/" or any(x % k == 0 for k in (2, 3, 4)))]
    op = rng.choice(choices)
    if op == "+":
        b = rng.randint(1, cap)
        y, text = x + b, rng.choice(_PLUS)
    elif op == "-":
        b = rng.randint(1, x - 1)
        y, text = x - b, rng.choice(_MINUS)
    elif op == "*":
        b = rng.randint(2, 4)
        y, text = x * b, rng.choice(_TIMES)
    else:
        b = rng.choice([k for k in (2, 3, 4) if x % k == 0])
        y, text = x // b, rng.choice(_DIVIDE)
    sentence = text.format(p=pron, q=pron.lower(), b=b)
    return sentence, f"{x}{op}{b}={y}", y


def generate_arithmetic(rng: random.Random, difficulty: int = 2) -> Problem:
    """One multi-step arithmetic word problem with a worked solution ending ``#### n``.

    Args:
        rng: source of randomness (the only one used).
        difficulty: 1..8; ``steps = difficulty + 1``, numbers up to ``10 * (difficulty + 1)``.

    Returns:
        A Problem with source ``"synthetic:arithmetic"`` and meta ``{"task", "difficulty", "steps"}``.
    """
    _check_difficulty(difficulty)
    steps, cap = difficulty + 1, 10 * (difficulty + 1)
    ops = "+-" if difficulty == 1 else "+-*" if difficulty == 2 else "+-*/"
    name, pron = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    x = rng.randint(2, cap)
    sentences, lines = [f"{name} has {x} {item}."], []
    for _ in range(steps):
        sentence, line, x = _arith_step(rng, x, ops, cap, pron)
        sentences.append(sentence)
        lines.append(line)
    sentences.append(f"How many {item} does {name} have now?")
    solution = "\n".join([*lines, f"#### {x}"])
    meta = {"task": "arithmetic", "difficulty": difficulty, "steps": steps}
    return Problem(" ".join(sentences), str(x), solution, "synthetic:arithmetic", meta)


def _small_step(rng: random.Random, x: int, pron: str) -> tuple[str, str, int]:
    """One change to an amount x in 1..9 that keeps it in 1..9: (sentence, solution line, new amount)."""
    ops = [o for o in "+-" if (o == "+" and x < 9) or (o == "-" and x > 1)]
    op = rng.choice(ops)
    b = rng.randint(1, 9 - x) if op == "+" else rng.randint(1, x - 1)
    y = x + b if op == "+" else x - b
    sentence = rng.choice(_PLUS if op == "+" else _MINUS).format(p=pron, q=pron.lower(), b=b)
    return sentence, f"{x}{op}{b}={y}", y


def generate_small_arithmetic(rng: random.Random, difficulty: int = 1) -> Problem:
    """A word problem of the arithmetic task's form in which every number is a single digit (1..9).

    ``steps = difficulty + 1`` additions and subtractions, each keeping the amount in 1..9, so that each worked
    line is one fact of the single-digit tables: a skill a ~1M-parameter model learns in a few hundred supervised
    steps, while doing all the steps at once without writing them down (the bare ``#### n``) is harder.

    Args:
        rng: source of randomness (the only one used).
        difficulty: 1..8; ``steps = difficulty + 1``.

    Returns:
        A Problem with source ``"synthetic:small_arithmetic"`` and meta ``{"task", "difficulty", "steps"}``.
    """
    _check_difficulty(difficulty)
    steps = difficulty + 1
    name, pron = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    x = rng.randint(2, 9)
    sentences, lines = [f"{name} has {x} {item}."], []
    for _ in range(steps):
        sentence, line, x = _small_step(rng, x, pron)
        sentences.append(sentence)
        lines.append(line)
    sentences.append(f"How many {item} does {name} have now?")
    meta = {"task": "small_arithmetic", "difficulty": difficulty, "steps": steps}
    return Problem(" ".join(sentences), str(x), "\n".join([*lines, f"#### {x}"]), "synthetic:small_arithmetic", meta)


def _combine(rng: random.Random, a: tuple[int, str], b: tuple[int, str]) -> tuple[int, str, str]:
    """Combine two (value, expr) pairs with a random op that keeps the result a positive integer."""
    (va, ea), (vb, eb) = (a, b) if a[0] >= b[0] else (b, a)
    options = ["+", "*"] + (["-"] if va > vb else []) + (["/"] if vb > 1 and va % vb == 0 else [])
    op = rng.choice(options)
    value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va // vb if vb else 0}[op]
    wrap = [e if e.isdigit() else f"({e})" for e in (ea, eb)]
    return value, f"{wrap[0]}{op}{wrap[1]}", f"{va}{op}{vb}={value}"


def generate_countdown(rng: random.Random, difficulty: int = 1, max_target: int = 1000) -> Problem:
    """One countdown problem: reach a target using each of ``difficulty + 2`` numbers exactly once.

    Args:
        rng: source of randomness.
        difficulty: 1..8; ``difficulty + 2`` numbers, each in ``1..10 * (difficulty + 1)``.
        max_target: targets are kept in ``1..max_target`` (redrawn otherwise).

    Returns:
        A Problem with ``answer`` = the target, a reference solution (pairwise steps, then ``#### expr``),
        and meta ``{"reward": "countdown", "numbers", "target", "task", "difficulty"}``.
    """
    _check_difficulty(difficulty)
    cap = 10 * (difficulty + 1)
    while True:
        numbers = [rng.randint(1, cap) for _ in range(difficulty + 2)]
        pool = [(n, str(n)) for n in numbers]
        lines = []
        while len(pool) > 1:
            i, j = sorted(rng.sample(range(len(pool)), 2))
            b, a = pool.pop(j), pool.pop(i)
            value, expr, line = _combine(rng, a, b)
            pool.append((value, expr))
            lines.append(line)
        target, expr = pool[0]
        if 1 <= target <= max_target:
            break
    assert evaluate_expression(expr)[0] == target  # the reference must pass the reward's own checker
    shown = ", ".join(str(n) for n in numbers)
    question = f"Use the numbers {shown} once each with + - * / to make {target}."
    solution = "\n".join([*lines, f"#### {expr}"])
    meta = {"reward": "countdown", "numbers": numbers, "target": target, "task": "countdown", "difficulty": difficulty}
    return Problem(question, str(target), solution, "synthetic:countdown", meta)


def _key(p: Problem) -> tuple:
    if p.meta.get("task") == "countdown":
        return (tuple(sorted(p.meta["numbers"])), p.meta["target"])
    return (p.question,)


TASKS: dict[str, tuple[Callable[[random.Random, int], Problem], int]] = {
    "arithmetic": (generate_arithmetic, 2),
    "small_arithmetic": (generate_small_arithmetic, 1),
    "countdown": (generate_countdown, 1),
}
"""Task name -> (generator(rng, difficulty), default difficulty)."""

TASK_ALIASES = {"arith": "arithmetic", "small": "small_arithmetic"}
"""Short names accepted wherever a task name is."""


def _in_test_split(key: tuple) -> bool:
    """Fixed partition of the problem space: a problem is a test problem iff its key hashes to 0 mod 8."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return digest[0] % TEST_FRACTION_INV == 0


TEST_FRACTION_INV = 8
"""One problem in this many (by key hash) belongs to the test side of the problem space."""


def _draw(name: str, n: int, rng: random.Random, difficulty: int, test: bool) -> list[Problem]:
    generator = TASKS[name][0]
    seen, out = set(), []
    max_draws = 40 * TEST_FRACTION_INV * n + 1000
    for _ in range(max_draws):
        if len(out) == n:
            break
        p = generator(rng, difficulty)
        key = _key(p)
        if key not in seen and _in_test_split(key) == test:
            seen.add(key)
            out.append(p)
    if len(out) < n:
        split = "test" if test else "train"
        raise ValueError(
            f"task {name!r} at difficulty {difficulty} gave only {len(out)} distinct {split} problems in "
            f"{max_draws} draws, fewer than the {n} asked for; lower n_{split} or raise the difficulty"
        )
    return out


def make_task(
    name: str, n_train: int, n_test: int, seed: int = 0, difficulty: int | None = None
) -> tuple[list[Problem], list[Problem]]:
    """Deterministic train/test splits of a synthetic task; no problem appears in both.

    The problem space is partitioned once and for all by a hash of each problem's key (1 in 8 problems is a
    test problem), and each split is drawn from its own ``random.Random`` stream, so the splits never overlap
    and each depends only on ``(name, seed, difficulty)`` and its own size: a larger ``n_train`` never changes
    the test problems, and the first ``k`` problems of a split are the same for every size ``>= k``.

    Args:
        name: a key of :data:`TASKS` ("arithmetic", "countdown") or of :data:`TASK_ALIASES`.
        n_train: number of training problems (>= 0).
        n_test: number of test problems (>= 0).
        seed: seed of the two streams (train and test).
        difficulty: task difficulty (1..8); None for the task's default.

    Returns:
        ``(train, test)`` lists of Problem, of lengths n_train and n_test.

    Raises:
        ValueError: unknown name, bad sizes, or too few distinct problems at this difficulty.
    """
    name = TASK_ALIASES.get(name, name)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)} (aliases {sorted(TASK_ALIASES)})")
    for field_name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{field_name} must be an integer >= 0, got {n!r}")
    difficulty = TASKS[name][1] if difficulty is None else difficulty
    _check_difficulty(difficulty)
    train = _draw(name, n_train, random.Random(f"{name}:{seed}:train"), difficulty, test=False)
    test = _draw(name, n_test, random.Random(f"{name}:{seed}:test"), difficulty, test=True)
    return train, test


def answer_only(problems: list[Problem], frac: float, seed: int = 0, wrong: float = 0.0) -> list[Problem]:
    """A warm-start corpus in two styles: a seeded fraction ``frac`` of the problems keeps only ``#### n``.

    Real pre-training text mixes solutions that show their work with bare answers, and a model fitted to both
    is uncertain about which to write (the first completion token is a choice between styles). For a small model
    the worked lines are far more reliable than mental arithmetic, so the right answer lies in the policy's support
    (pass@k well above pass@1) but the style it writes most often is the unreliable one: the situation in which
    RL with a verifiable reward raises accuracy and, doing so, collapses the policy's entropy (docs/llm/setting.md).

    Bare answers in real text are less reliable than worked ones; ``wrong`` is the fraction of the bare answers
    that are wrong (the answer plus an offset drawn from -3..3 without 0, kept >= 0), so the bare style is both
    the commoner and the worse one.

    The choices are a function of ``(seed, question)`` only, so the same problem gets the same style for every
    ``n_train`` and run seed. Only ``solution`` changes; ``answer`` (the reward's reference) never does.

    Args:
        problems: problems with worked solutions.
        frac: fraction in [0, 1] whose solution becomes ``#### answer``.
        seed: seed of the choice.
        wrong: fraction in [0, 1] of those bare answers that are replaced by a wrong integer (integer answers
            only; others stay right).

    Returns:
        A new list; the other problems are returned unchanged.
    """
    for name, value in (("frac", frac), ("wrong", wrong)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"answer_only: {name} must be in [0, 1], got {value!r}")
    out = []
    for p in problems:
        digest = hashlib.sha256(f"{seed}:{p.question}".encode()).digest()
        u, v = (int.from_bytes(digest[i:i + 8], "little") / 2**64 for i in (0, 8))
        if u >= frac:
            out.append(p)
            continue
        shown = p.answer
        if v < wrong and p.answer.lstrip("-").isdigit():
            offsets = [k for k in (-3, -2, -1, 1, 2, 3) if int(p.answer) + k >= 0]
            shown = str(int(p.answer) + offsets[digest[16] % len(offsets)])
        out.append(replace(p, solution=f"#### {shown}"))
    return out

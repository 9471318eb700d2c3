"""Verifiable rewards: final-answer extraction, correctness against a reference, and the countdown check.

Rewards are 1.0 (correct) or 0.0 (not), one float per completion, as in RLVR/GRPO (DeepSeekMath, arXiv
2402.03300; the AEnt paper, arXiv 2509.03493, trains on exactly such 0/1 correctness rewards).

Answer extraction (`extract_answer`) tries, in order: the text after the last ``####`` (GSM8K), the last
``\\boxed{...}`` / ``\\fbox{...}`` (nested braces allowed; MATH), a line ``A: ...`` / ``Answer: ...`` or the
phrase "the answer is ..." (last occurrence), and finally the last number in the text. Equivalence of the
extracted answer and the reference is :func:`llm.math_equiv.answers_equal`.

A reward function that fails on one sample raises :class:`RewardError` naming the sample's index and the
start of its text, so a bad completion or a bad dataset row can be found at once.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from llm.math_equiv import answers_equal

__all__ = [
    "REWARDS",
    "RewardError",
    "correctness_reward",
    "countdown_reward",
    "evaluate_expression",
    "extract_answer",
    "extract_expression",
    "reference_answer",
    "score_problems",
]

_HASHES = re.compile(r"####\s*(.*)")
_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t*]*(?:A|Answer|Final Answer)\s*:\s*(.+)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?|[-+]?\.\d+")
_MAX_EXPR_CHARS = 200


class RewardError(ValueError):
    """A reward function failed on one sample; the message names the sample index and its text prefix."""


def _prefix(text: object, n: int = 60) -> str:
    s = repr(str(text))
    return s if len(s) <= n else s[: n - 3] + "..."


def _per_sample(name: str, fn: Callable[..., float], completions: Sequence[str], others: Sequence[Any]):
    """Apply `fn(completion, other)` to each pair, wrapping any failure into a RewardError."""
    if len(completions) != len(others):
        raise ValueError(f"{name}: got {len(completions)} completions but {len(others)} references; they must match")
    out = []
    for i, (c, o) in enumerate(zip(completions, others)):
        try:
            out.append(float(fn(c, o)))
        except Exception as e:  # re-raised with the sample that caused it
            raise RewardError(f"{name} failed on sample {i} (completion {_prefix(c)}): {type(e).__name__}: {e}") from e
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces), or ``\\boxed x``; else None."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    head = text[start:i] if i >= 0 else text[start:]
    if i < 0 or head.strip() not in ("\\boxed", "\\fbox"):
        m = re.match(r"\\boxed\s+([^\s$]+)", text[start:])  # "\boxed 5"
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None  # unbalanced braces: no answer


def _clean_tail(s: str) -> str:
    """Trim a free-text answer: first line, closing sentence punctuation and wrapping ``$``/``**``."""
    s = s.strip().split("\n")[0].strip()
    s = s.strip("*").strip()
    if s.count("$") >= 2 and s.startswith("$"):
        s = s[1 : s.index("$", 1)]
    return s.rstrip(".").strip()


def extract_answer(text: str, *, fallback_last_number: bool = True) -> str | None:
    """Extract the final answer from a solution text.

    Args:
        text: a model completion or a dataset solution.
        fallback_last_number: when no marker is found, return the last number in the text.

    Returns:
        The answer string (not normalised), or None when nothing is found.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    hashes = _HASHES.findall(text)
    if hashes and hashes[-1].strip():
        return _clean_tail(hashes[-1])
    boxed = last_boxed(text)
    if boxed:
        return boxed
    for pattern in (_ANSWER_LINE, _ANSWER_IS):
        found = pattern.findall(text)
        if found and _clean_tail(found[-1]):
            return _clean_tail(found[-1])
    if fallback_last_number:
        numbers = _NUMBER.findall(text)
        if numbers:
            return numbers[-1].strip()
    return None


def reference_answer(ref: str) -> str:
    """The final answer of a dataset reference: marker-extracted when it is a full solution, else itself."""
    found = extract_answer(str(ref), fallback_last_number=False)
    return found if found is not None else str(ref).strip()


def correctness_reward(
    completions: Sequence[str], answers: Sequence[str], *, symbolic: bool = True, timeout_s: int = 3
) -> list[float]:
    """0/1 correctness of each completion's final answer against its reference answer.

    Args:
        completions: N generated texts.
        answers: N references: a bare answer (``"18"``, ``"\\frac{14}{3}"``) or a full solution ending in
            ``#### n`` / ``\\boxed{}`` / ``A: n``.
        symbolic: allow the math-verify symbolic check (see :mod:`llm.math_equiv`).
        timeout_s: symbolic-check timeout in whole seconds.

    Returns:
        N floats in {0.0, 1.0}.
    """

    def one(completion: str, ref: str) -> float:
        pred = extract_answer(completion)
        return 1.0 if answers_equal(pred, reference_answer(ref), symbolic=symbolic, timeout_s=timeout_s) else 0.0

    return _per_sample("correctness_reward", one, completions, answers)


def _eval_node(node: ast.AST) -> tuple[Fraction, list[int]]:
    """Exact value of a +-*/ expression tree and the integer literals it uses."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value), [node.value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v, used = _eval_node(node.operand)
        return (-v if isinstance(node.op, ast.USub) else v), used
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, ua = _eval_node(node.left)
        b, ub = _eval_node(node.right)
        if isinstance(node.op, ast.Add):
            return a + b, ua + ub
        if isinstance(node.op, ast.Sub):
            return a - b, ua + ub
        if isinstance(node.op, ast.Mult):
            return a * b, ua + ub
        if b == 0:
            raise ZeroDivisionError("division by zero in expression")
        return a / b, ua + ub
    raise ValueError(f"only integers, + - * / and parentheses are allowed, found {type(node).__name__}")


def evaluate_expression(expr: str) -> tuple[Fraction, list[int]]:
    """Safely evaluate an arithmetic expression (parsed with ``ast``, never ``eval``), exactly.

    Args:
        expr: e.g. ``"(3 + 5) * 7"``; ``×``/``÷`` are read as ``*``/``/``. At most 200 characters.

    Returns:
        ``(value, numbers)``: the exact value as a Fraction and the integer literals used, in order.

    Raises:
        ValueError: for anything but integers, ``+ - * /`` and parentheses, or division by zero.
    """
    expr = expr.replace("×", "*").replace("÷", "/").replace("\\times", "*").replace("\\div", "/").strip()
    if len(expr) > _MAX_EXPR_CHARS:
        raise ValueError(f"expression longer than {_MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(expr, mode="eval")
        return _eval_node(tree.body)
    except (SyntaxError, ZeroDivisionError, RecursionError) as e:
        raise ValueError(f"cannot evaluate {expr!r}: {e}") from None


def extract_expression(text: str) -> str | None:
    """The countdown expression of a completion: ``<answer>..</answer>``, else the extracted answer, left of ``=``."""
    m = re.findall(r"<answer>(.*?)</answer>", text, flags=re.DOTALL)
    found = m[-1] if m else extract_answer(text, fallback_last_number=False)
    if found is None:
        lines = [ln for ln in text.strip().split("\n") if ln.strip()]
        found = lines[-1] if lines else None
    if found is None:
        return None
    return found.split("=")[0].strip().strip("$").strip() or None


def _countdown_one(completion: str, problem: Any) -> float:
    meta = problem.meta
    if "numbers" not in meta or "target" not in meta:
        raise ValueError("problem.meta must hold 'numbers' and 'target' for the countdown reward")
    expr = extract_expression(completion)
    if expr is None:
        return 0.0
    try:
        value, used = evaluate_expression(expr)
    except ValueError:
        return 0.0
    uses_all = Counter(used) == Counter(int(n) for n in meta["numbers"])
    return 1.0 if uses_all and value == Fraction(int(meta["target"])) else 0.0


def countdown_reward(completions: Sequence[str], problems: Sequence[Any]) -> list[float]:
    """1.0 when the completion's expression uses each given number exactly once and equals the target.

    Args:
        completions: N generated texts; the expression is read by :func:`extract_expression`.
        problems: N :class:`llm.data.Problem` with ``meta["numbers"]`` (list of int) and ``meta["target"]`` (int).

    Returns:
        N floats in {0.0, 1.0}. Invalid or unsafe expressions score 0.0 (never executed).
    """
    return _per_sample("countdown_reward", _countdown_one, completions, problems)


def _correctness_one(completion: str, problem: Any) -> float:
    pred = extract_answer(completion)
    return 1.0 if answers_equal(pred, reference_answer(problem.answer)) else 0.0


_ONE_SAMPLE: dict[str, Callable[[str, Any], float]] = {
    "correctness": _correctness_one,
    "countdown": _countdown_one,
}
REWARDS = tuple(sorted(_ONE_SAMPLE))
"""Reward names a problem may ask for in ``problem.meta["reward"]``."""


def score_problems(completions: Sequence[str], problems: Sequence[Any]) -> list[float]:
    """Reward each completion with its problem's reward (``problem.meta["reward"]``, default "correctness").

    Args:
        completions: N generated texts.
        problems: N problems (:class:`llm.data.Problem`), possibly from different tasks.

    Returns:
        N floats in {0.0, 1.0}.
    """

    def one(completion: str, problem: Any) -> float:
        name = problem.meta.get("reward", "correctness")
        if name not in _ONE_SAMPLE:
            raise ValueError(f"problem.meta['reward'] = {name!r} is unknown; known: {list(REWARDS)}")
        return _ONE_SAMPLE[name](completion, problem)

    return _per_sample("score_problems", one, completions, problems)

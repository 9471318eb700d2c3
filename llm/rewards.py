"""Verifiable rewards: final-answer extraction, correctness against a reference, and the countdown check.

Rewards are 1.0 (correct) or 0.0 (not), one float per completion, as in RLVR/GRPO (DeepSeekMath, arXiv
2402.03300; the AEnt paper, arXiv 2509.03493, trains on exactly such 0/1 correctness rewards).

Two layers, kept apart:

- **Extraction** (:func:`extract_answer`, strict by default): the answer is read only from a *declared* final-answer
  form of the data templates: ``#### x`` (GSM8K, the ``plain`` template), ``\\boxed{x}`` / ``\\fbox{x}`` (MATH, the
  ``boxed`` and ``qwen_math`` templates), "the answer is x" and a line ``A: x`` / ``Answer: x`` / ``Final Answer: x``
  (GSM8K model solutions). The declaration that comes *last* in the text wins, so a self-correction counts and an
  earlier claim does not. After a free-text marker (``####``, ``A:``, "the answer is") only the leading mathematical
  expression is kept, up to the first word: "the answer is 7 ... actually 9" declares 7, not 9. A text without a
  declared answer has no answer and scores 0. ``lenient=True`` adds the old fallback, the last number in the text;
  it is off for training because a policy learns to exploit it ("Tom has 5 apples and gets 3 more" would score
  against the answer 3 without ever answering).
- **Equivalence** (:func:`answers_match`, from :mod:`llm.math_equiv`): the answer's form first (a claim such as
  ``2+2 = 5``, an unfinished ``5-`` or, against a plain-number gold, an expression such as ``5-3-1`` is not paid;
  :mod:`llm.answer_form`), then an exact fast path for plain integers and decimals, math-verify for everything else
  (lists, sets, tuples and intervals as such), under a timeout per answer: no answer's grade depends on another's.

A reward function that fails on one sample raises :class:`RewardError` naming the sample's index and the
start of its text, so a bad completion or a bad dataset row can be found at once.
"""

from __future__ import annotations

import ast
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from llm.math_equiv import GradeBudget, answers_match

__all__ = [
    "REWARDS",
    "GradeBudget",
    "RewardError",
    "answers_match",
    "correctness_reward",
    "countdown_reward",
    "evaluate_expression",
    "extract_answer",
    "extract_expression",
    "reference_answer",
    "score_problems",
]

log = logging.getLogger(__name__)

_HASHES = re.compile(r"####")
# "A:" in capitals only: a lower-case "a: 5" is an option line of a multiple-choice list, not the answer.
_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t*]*(?:A|(?i:answer|final answer))[ \t*]*:")
_ANSWER_IS = re.compile(r"answer\s+is\s*:?", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?|[-+]?\.\d+")
# A word of two or more letters not preceded by a backslash ends a free-text answer ("18 dollars", "7 actually 9");
# the few function names a plain-text answer may hold are allowed.
_WORD = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z]{2,})")
_MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "inf", "infty"}
_UNIT_CMD = re.compile(r"\\(?:text|mbox|mathrm)\s*\{")  # "5\text{ cm}": a unit ends the answer too
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


def _boxed_at(text: str, start: int) -> str | None:
    """Content of the ``\\boxed{...}`` / ``\\fbox{...}`` starting at `start` (nested braces), or ``\\boxed x``."""
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


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces), or ``\\boxed x``; else None."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    return None if start < 0 else _boxed_at(text, start)


def _leading_answer(tail: str) -> str | None:
    """The answer a free-text marker declares: its line, up to the first word, without closing punctuation.

    ``$...$`` math is kept whole; a ``\\boxed{}`` in the tail is read as a box.
    """
    line = tail.strip().split("\n")[0].strip().strip("*").strip()
    if line.startswith("\\boxed") or line.startswith("\\fbox"):
        return _boxed_at(line, 0)
    if line.startswith("$"):
        close = line.find("$", 1)
        if close > 1:
            return line[1:close].strip() or None
    unit = _UNIT_CMD.search(line)
    if unit and unit.start() > 0:
        line = line[: unit.start()]
    for m in _WORD.finditer(line):
        if m.group(1).lower() not in _MATH_WORDS:
            line = line[: m.start()]
            break
    line = line.strip().rstrip(".,;:!?").strip()
    return line or None


def _declarations(text: str) -> list[tuple[int, str]]:
    """(position, kind) of the last occurrence of each declared final-answer marker in `text`."""
    found = []
    for kind, pattern in (("hash", _HASHES), ("line", _ANSWER_LINE), ("is", _ANSWER_IS)):
        last = None
        for last in pattern.finditer(text):  # noqa: B007 - keeps the last match
            pass
        if last is not None:
            found.append((last.end(), kind))
    box = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if box >= 0:
        found.append((box, "box"))
    return sorted(found)


def extract_answer(text: str, *, lenient: bool = False) -> str | None:
    """Extract the declared final answer from a solution text (strict; see the module docstring).

    Args:
        text: a model completion or a dataset solution.
        lenient: when no declared answer is found, return the last number in the text (off for training rewards).

    Returns:
        The answer string (not normalised), or None when nothing is declared.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for pos, kind in reversed(_declarations(text)):  # the last declaration wins; an empty one yields to earlier
        found = _boxed_at(text, pos) if kind == "box" else _leading_answer(text[pos:])
        if found:
            return found
    if lenient:
        numbers = _NUMBER.findall(text)
        if numbers:
            return numbers[-1].strip()
    return None


def reference_answer(ref: str) -> str:
    """The final answer of a dataset reference: its declared answer when it is a full solution, else itself."""
    found = extract_answer(str(ref))
    return found if found is not None else str(ref).strip()


def _report(name: str, budget: GradeBudget) -> None:
    if budget.timed_out:
        log.warning("%s: %d answers timed out (each may use timeout_s of math-verify); they score 0", name,
                    budget.timed_out)


def _check_texts(name: str, values: object) -> None:
    """Refuse a str (it would be graded character by character) or a non-sequence where a list of texts belongs."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of str (one per sample), got {type(values).__name__} "
                        f"{values!r:.60}; wrap a single text in a list: [{values!r:.30}]")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(v).__name__} {v!r:.60}")


def correctness_reward(
    completions: Sequence[str], answers: Sequence[str], *, lenient: bool = False, symbolic: bool = True,
    timeout_s: float = 2.0,
) -> list[float]:
    """0/1 correctness of each completion's declared final answer against its reference answer.

    Args:
        completions: N generated texts.
        answers: N references: a bare answer (``"18"``, ``"\\frac{14}{3}"``) or a full solution ending in
            ``#### n`` / ``\\boxed{}`` / ``A: n``.
        lenient: read the last number of a completion that declares no answer (see the module docstring).
        symbolic: allow math-verify beyond the exact fast path (see :mod:`llm.math_equiv`).
        timeout_s: seconds each answer's math-verify call may take (per answer, never shared).

    Returns:
        N floats in {0.0, 1.0}.

    Raises:
        TypeError: `completions` or `answers` is a str or holds a non-str (the message names which).
    """
    _check_texts("completions", completions)
    _check_texts("answers", answers)
    budget = GradeBudget(float("inf"))  # counts timeouts only

    def one(completion: str, ref: str) -> float:
        pred = extract_answer(completion, lenient=lenient)
        return 1.0 if answers_match(pred, reference_answer(ref), symbolic=symbolic, timeout_s=timeout_s,
                                    budget=budget) else 0.0

    out = _per_sample("correctness_reward", one, completions, answers)
    _report("correctness_reward", budget)
    return out


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
    found = m[-1] if m else extract_answer(text)
    if found is None:
        lines = [ln for ln in text.strip().split("\n") if ln.strip()]
        found = lines[-1] if lines else None
    if found is None:
        return None
    return found.split("=")[0].strip().strip("$").strip() or None


def _countdown_one(completion: str, problem: Any, budget: GradeBudget | None = None) -> float:
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


def _correctness_one(completion: str, problem: Any, budget: GradeBudget | None = None) -> float:
    pred = extract_answer(completion)
    return 1.0 if answers_match(pred, reference_answer(problem.answer), budget=budget) else 0.0


# The per-problem rewards of ``reward: task``, one signature: (completion, problem, grading budget) -> float.
_ONE_SAMPLE: dict[str, Callable[[str, Any, GradeBudget | None], float]] = {
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
        N floats in {0.0, 1.0}. Each correctness answer has its own math-verify timeout.
    """
    _check_texts("completions", completions)
    budget = GradeBudget(float("inf"))  # counts timeouts only; each answer has its own timeout

    def one(completion: str, problem: Any) -> float:
        name = problem.meta.get("reward", "correctness")
        if name not in _ONE_SAMPLE:
            raise ValueError(f"problem.meta['reward'] = {name!r} is unknown; known: {list(REWARDS)}")
        return _ONE_SAMPLE[name](completion, problem, budget)

    out = _per_sample("score_problems", one, completions, problems)
    _report("score_problems", budget)
    return out

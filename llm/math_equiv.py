"""Equivalence of final math answers: an exact fast path for plain numbers, math-verify for everything else.

`answers_match(pred, gold)` decides whether an *extracted* final answer (the inside of ``\\boxed{}``, the text
after ``####``) denotes the gold answer. It is the grading layer; reading the answer out of a completion is the
extraction layer (:func:`llm.rewards.extract_answer`). Three stages:

0. **Form** (:func:`not_a_value`, :mod:`llm.answer_form`): a bare answer that is a claim between numbers
   (``2+2 = 5``, ``5 \\approx 6``), unfinished (``5-``, ``5 (``), written with non-ASCII digits (``٥``, ``５``,
   ``5²``) or named ``nan`` is not paid; against a gold that is a plain number (GSM8K, the arithmetic tasks) only a
   number, a fraction of integers or a percentage is (``5-3-1`` is the question copied out, not an answer).
   A text with math delimiters or words is left to math-verify, which finds the answer in it; against a
   plain-number gold, the maths a text without delimiters starts with is checked (``5-3-1 rocks``).
1. **Exact fast path**, only where it provably gives math-verify's verdict or a stricter one. After layout-only
   clean-up (surrounding ``$``, a leading currency ``$``/``\\$``, a trailing ``.``, thousands separators ``1,000``,
   LaTeX spaces), when both sides are plain integers or decimals in ASCII digits they match iff they are exactly
   equal. For at most 6 decimals this is math-verify's verdict (it compares floats after rounding both to 6
   decimals, the identity there; ``tests/llm/test_math_equiv.py`` checks it on generated pairs); beyond 6 decimals
   it is stricter on purpose: ``0.5000004`` is not ``0.5``. Anything else (``+5``, ``1/2``, ``\\frac12``,
   ``50\\%``, units, intervals, sets, lists, matrices, equations) goes to stage 2.
2. **math-verify** (`huggingface/Math-Verify <https://github.com/huggingface/Math-Verify>`_, as TRL's and open-r1's
   accuracy rewards use it): ``verify(parse(gold), parse(pred))``. A bare answer (no ``$``, ``\\(``, ``\\[`` or
   ``\\boxed``) is parsed as LaTeX math, wrapped in ``$...$``, unless it is one plain number without commas
   (``1 000``, ``2.5``); a delimited one as written; each falls back to the other reading when the first finds
   nothing. So a comma between numbers separates the items of a list (``-2,1`` is the set {-2, 1}, as math-verify
   reads ``\\boxed{-2,1}``; a bare ``-2,1`` as written would be the decimal -2.1), lists compare as sets, tuples
   and intervals in order, in both directions. Inner delimiters are dropped first: ``69$,$84`` is the list 69, 84.

Time is bounded per answer, so that no answer's grade depends on its neighbours, because a policy can write answers
that make sympy run for minutes (``9^{9^{9^9}}``): a cheap pre-check refuses answers longer than
:data:`MAX_ANSWER_CHARS` characters (no match), and each math-verify call runs under a ``setitimer`` alarm of
``timeout_s`` seconds (fractions allowed). :class:`GradeBudget` counts time and timeouts over many calls and caps
them only when a caller gives it finite ``seconds`` (the rewards do not). The alarm works only in the main thread;
elsewhere stage 2 is skipped (no match) rather than run unbounded. A :class:`llm.preempt.Preempted` raised by a
stop signal during stage 2 passes through (it is a BaseException).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Real

from llm.answer_form import (
    has_foreign_digits,
    is_claim,
    is_text,
    is_unfinished,
    leading_math,
    not_a_number,
    unwrap_dollars,
)

try:  # math-verify is a dependency of the `llm` extra; without it only the fast path counts
    from math_verify import parse as _mv_parse
    from math_verify import verify as _mv_verify

    HAS_MATH_VERIFY = True
except ImportError:  # pragma: no cover - exercised only without the extra
    HAS_MATH_VERIFY = False

__all__ = ["HAS_MATH_VERIFY", "MAX_ANSWER_CHARS", "GradeBudget", "answers_match", "exact_number",
           "math_verify_match", "not_a_value"]

MAX_ANSWER_CHARS = 20_000
"""Longer answers never match (pre-check; the longest ``pred`` of the math-verify conformance cases has 11,422)."""

_SPACES = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_THOUSANDS = re.compile(r"^-?[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?$")  # ASCII digits only (not "٥")
_INTEGER = re.compile(r"^-?[0-9]+$")
_DECIMAL = re.compile(r"^-?[0-9]+\.[0-9]+$")
_MAX_INT_DIGITS = 4000  # Python refuses int() of longer digit strings (sys.get_int_max_str_digits)


class _Timeout(BaseException):
    """Raised by the alarm. A BaseException, so that math-verify's and sympy's ``except Exception`` cannot swallow
    it (they would turn a timeout into an empty parse and keep going)."""


class _NoTimeoutWarning(logging.Filter):
    """math-verify warns once that its own timeout is off; here :func:`math_verify_match` sets the alarm itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_NoTimeoutWarning())


def _layout(text: str) -> str:
    """Layout-only clean-up of a final answer (no maths): spaces, ``$`` wrappers, currency, trailing period, 1,000."""
    s = _SPACES.sub(" ", str(text)).replace("\u2212", "-").strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    for currency in ("\\$", "$"):
        if s.startswith(currency):
            s = s[len(currency):].strip()
    s = s.rstrip(".").strip() if not s.endswith("..") else s
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    return s


def exact_number(text: str) -> Fraction | None:
    """The exact value of an answer that the fast path may decide, else None.

    Args:
        text: an extracted final answer.

    Returns:
        The value when the answer (after layout clean-up) is a plain integer or decimal in ASCII digits (at most
        4,000 digits); None otherwise (the answer then goes to math-verify).
    """
    s = _layout(text)
    if len(s) > _MAX_INT_DIGITS:
        return None
    if _INTEGER.match(s):
        return Fraction(int(s))
    if _DECIMAL.match(s):
        return Fraction(s)
    return None


@dataclass
class GradeBudget:
    """Time and timeouts of many math-verify calls, with an optional cap (seconds of wall time).

    The rewards pass ``seconds=inf``: they only count, each answer having its own ``timeout_s``. A finite cap
    makes a later answer's grade depend on the earlier ones, so use it only where that is wanted.

    Attributes:
        seconds: total seconds stage 2 may spend; once spent, further stage-2 pairs score no match.
        spent: seconds used so far.
        skipped: stage-2 pairs refused because the budget was spent.
        timed_out: stage-2 pairs stopped by their per-call alarm.
    """

    seconds: float = 5.0
    spent: float = 0.0
    skipped: int = 0
    timed_out: int = 0
    _t0: float = field(default=0.0, repr=False)

    def left(self) -> float:
        return self.seconds - self.spent


def _alarm(seconds: float):
    def handler(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return old


_WARM: list[bool] = []


def _warm_up() -> None:
    """Parse one answer without an alarm: the first call imports math-verify's LaTeX parser (about a second),
    which must not count against the first answer's timeout."""
    if not _WARM:
        _mv_verify(_mv_parse("$1$", parsing_timeout=None), _mv_parse("$\\frac{1}{2}$", parsing_timeout=None),
                   timeout_seconds=None)
        _WARM.append(True)


_DELIMITED = ("$", "\\(", "\\[", "\\boxed")


_PLAIN_NUMBER = re.compile(r"^[+\-]?(?:[0-9]{1,3}(?: [0-9]{3})+|[0-9]+(?:\.[0-9]+)?)$")  # "1 000"; not "1,22"


def _read(answer: str) -> list:
    """math-verify's parse of an answer: a delimited text or a plain number as written (math-verify reads "1 000"
    there), any other bare answer as LaTeX math (``$...$``; read as written, bare ``2\\sqrt{2}`` would give just 2,
    and ``-2,1`` the decimal -2.1 where the LaTeX reading gives the list -2, 1); the other reading when the first
    finds nothing. Inner delimiters are dropped first, so ``69$,$84`` is read whole."""
    answer = unwrap_dollars(answer)
    first, second = answer, f"${answer}$"
    if not any(d in answer for d in _DELIMITED) and not _PLAIN_NUMBER.match(answer):
        first, second = second, first
    return _mv_parse(first, parsing_timeout=None) or _mv_parse(second, parsing_timeout=None)


def math_verify_match(pred: str, gold: str, timeout_s: float = 2.0) -> bool | None:
    """math-verify's verdict, ``verify(parse(gold), parse(pred))``, under a ``timeout_s`` alarm.

    Returns:
        True/False, or None when math-verify is missing, the call is not in the main thread, or the alarm fired.
    """
    if not HAS_MATH_VERIFY or threading.current_thread() is not threading.main_thread():
        return None
    _warm_up()
    old = _alarm(timeout_s)
    try:
        gold_p, pred_p = _read(gold), _read(pred)
        return bool(gold_p and pred_p and _mv_verify(gold_p, pred_p, timeout_seconds=None))
    except _Timeout:
        return None
    except Exception:  # math-verify raises many types on odd LaTeX: no match. Preempted, a BaseException, passes
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _as_text(value: object, name: str) -> str | None:
    """An answer as text: a str as it is, a finite real number (not bool) as its decimal text, None for None or
    a NaN / infinity (which denote no answer); any other type is refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Real) and not isinstance(value, bool):
        if isinstance(value, float) and not value == value or value in (float("inf"), float("-inf")):
            return None
        return _number_text(value)
    raise TypeError(f"{name} must be a str (an extracted final answer) or None, got {type(value).__name__} "
                    f"{value!r:.60}")


def _number_text(value: Real) -> str:
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def not_a_value(pred: str, gold: str) -> bool:
    """Whether `pred` is refused before any comparison (:mod:`llm.answer_form`): a claim, an unfinished text,
    non-ASCII digits, or, against a gold that is a plain number, anything but a number."""
    s = _layout(pred)
    if s.lower().lstrip("+-") == "nan":  # not a number, by its name
        return True
    plain_gold = exact_number(gold) is not None
    if is_text(s):  # prose: math-verify finds the answer in it; against a plain number it must start with one
        s = leading_math(s) if plain_gold else ""
        if not s:
            return False
    if has_foreign_digits(s) or is_claim(s) or is_unfinished(s):
        return True
    return plain_gold and not_a_number(s)


def answers_match(pred: str | None, gold: str | None, *, timeout_s: float = 2.0,
                  budget: GradeBudget | None = None, symbolic: bool = True) -> bool:
    """Whether the extracted answer `pred` denotes the gold answer `gold`.

    Args:
        pred: the predicted final answer (already extracted), or None (no answer: no match). A finite int, float
            or Fraction is read as its number; NaN and infinities are no answer.
        gold: the gold final answer (same types).
        timeout_s: seconds allowed for this pair's math-verify call (> 0): the budget is per answer.
        budget: an optional :class:`GradeBudget` to count time and timeouts over many calls (and, if its
            ``seconds`` is finite, to cap them; the rewards give each answer only its own ``timeout_s``).
        symbolic: False decides by the fast path and, beyond it, equal strings after layout clean-up only.

    Returns:
        True when they match (module docstring); a timed-out, skipped or unparseable pair does not match.

    Raises:
        TypeError: `pred` or `gold` is neither a str, a real number nor None.
    """
    pred, gold = _as_text(pred, "pred"), _as_text(gold, "gold")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
    if pred is None or gold is None:
        return False
    if not pred.strip() or not gold.strip() or len(pred) > MAX_ANSWER_CHARS:
        return False
    if not_a_value(pred, gold):
        return False
    p_num, g_num = exact_number(pred), exact_number(gold)
    if p_num is not None and g_num is not None:
        return p_num == g_num
    if not symbolic:
        return _layout(pred) == _layout(gold)
    if budget is None:
        return bool(math_verify_match(pred, gold, timeout_s))
    if budget.left() <= 0:
        budget.skipped += 1
        return False
    t0 = time.perf_counter()
    verdict = math_verify_match(pred, gold, min(timeout_s, budget.left()))
    budget.spent += time.perf_counter() - t0
    budget.timed_out += verdict is None and HAS_MATH_VERIFY
    return bool(verdict)


"""Equivalence of final math answers: string normalisation, exact numbers, and optional symbolic checks.

`answers_equal(pred, ref)` decides whether two *final answers* (already extracted, e.g. the inside of
``\\boxed{}`` or the text after ``####``) denote the same value. It runs three stages, cheapest first:

1. **Normalised strings** — whitespace, ``$``, ``\\left``/``\\right``, ``\\text{}`` wrappers, trailing ``.``,
   degree signs and ``\\dfrac``/``\\tfrac`` spellings removed; equal strings are equal answers.
2. **Exact numbers** — both sides parsed to :class:`fractions.Fraction` (integers, decimals, ``a/b``,
   ``\\frac{a}{b}``, ``\\frac12``, thousands separators ``1,000``, signs, trailing units such as
   ``18 dollars`` or ``5\\text{ cm}``). Two numbers are equal when they are exactly equal, or when one is
   written as a decimal with at least 3 decimals and the other rounds to it (``0.333`` ~ ``1/3``).
   A percentage ``p%`` equals both ``p`` and ``p/100`` (the convention of math-verify). If both sides are
   numbers the answer is decided here: distinct numbers are never equal.
3. **Symbolic** — when either side is not a plain number (``p - q``, ``\\sqrt{8}``, intervals, tuples) and
   `math-verify <https://github.com/huggingface/Math-Verify>`_ is installed, its ``parse``/``verify`` decide,
   under a ``signal.alarm`` timeout. The alarm only works in the main thread, so elsewhere (and when
   ``symbolic=False`` or math-verify is missing) this stage is skipped and only stages 1–2 count.
   Before it, a number against a *plain arithmetic* answer (``3*9+2``, ``10-2=8``: only digits and
   ``. + - * / ( ) =``) is decided exactly by :func:`arithmetic_value` (the right-most side of ``=``), as
   math-verify would, but about 1000x faster: early in RL most completions are such malformed arithmetic.
"""

from __future__ import annotations

import ast
import operator
import re
import threading
from fractions import Fraction

try:  # optional dependency: symbolic equivalence
    from math_verify import parse as _mv_parse
    from math_verify import verify as _mv_verify

    HAS_MATH_VERIFY = True
except ImportError:  # pragma: no cover - exercised only without the extra
    HAS_MATH_VERIFY = False

__all__ = ["HAS_MATH_VERIFY", "answers_equal", "arithmetic_value", "normalize_answer", "parse_number", "symbolic_equal"]

_LATEX_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_UNIT_TAIL = re.compile(r"^(?P<num>[-+]?[\d.,/]+)\s+(?:[a-zA-Z][a-zA-Z .]*)$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_SPACED_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")
_FRAC = re.compile(r"^([-+]?)\\frac\s*(?:\{([^{}]+)\}|(\d))\s*(?:\{([^{}]+)\}|(\d))$")
_SLASH = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+))\s*/\s*([-+]?(?:\d+\.?\d*|\.\d+))$")


def normalize_answer(text: str) -> str:
    """Canonical string form of a final answer (layout-only changes, no maths).

    Args:
        text: an extracted final answer, e.g. ``"$1,000."`` or ``"\\dfrac{1}{2}"``.

    Returns:
        The answer with LaTeX spacing, ``$``, ``\\left``/``\\right``, ``\\text{...}`` wrappers, degree signs,
        ``\\displaystyle`` and a trailing period removed, ``\\dfrac``/``\\tfrac`` spelt ``\\frac`` and
        ``\\%`` spelt ``%``; surrounding whitespace and repeated spaces collapsed.
    """
    s = str(text).strip().replace("\u2212", "-")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\%", "%").replace("\\$", "$")
    s = _LATEX_SPACING.sub(" ", s)
    s = _TEXT_WRAP.sub(r"\1", s)
    s = _DEGREES.sub("", s)
    s = s.replace("$", "")
    s = re.sub(r"\s+", " ", s).strip()
    return s.rstrip(". ")  # "18." ends a sentence; as a decimal it is 18 anyway


def _parse_plain(s: str) -> Fraction | None:
    """Fraction from a normalised plain number (int, decimal, a/b, \\frac), or None."""
    if re.search(r"\d\s+\d", s) and not _SPACED_THOUSANDS.match(s):
        return None  # "2 9" is two numbers, not 29; "5 000" (LaTeX 5\,000) is one
    s = s.replace(" ", "")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if _DECIMAL.match(s):
        return Fraction(s)
    m = _SLASH.match(s)
    if m:
        den = Fraction(m.group(2))
        return Fraction(m.group(1)) / den if den != 0 else None
    m = _FRAC.match(s)
    if m:
        num = _parse_plain(m.group(2) or m.group(3))
        den = _parse_plain(m.group(4) or m.group(5))
        if num is None or den is None or den == 0:
            return None
        return -num / den if m.group(1) == "-" else num / den
    return None


def parse_number(text: str) -> tuple[Fraction, bool] | None:
    """Parse a final answer as an exact number.

    Args:
        text: a final answer in any of the forms listed in the module docstring.

    Returns:
        ``(value, is_percent)`` with ``value`` the exact :class:`~fractions.Fraction` as written (``"50%"`` gives
        ``(50, True)``), or ``None`` when the answer is not a single number.
    """
    s = normalize_answer(text)
    is_percent = s.endswith("%")
    if is_percent:
        s = s[:-1].rstrip()
    value = _parse_plain(s)
    if value is None:
        m = _UNIT_TAIL.match(s)  # "18 dollars", "5 cm"
        if m:
            value = _parse_plain(m.group("num").rstrip(".,"))
    if value is None:
        return None
    return value, is_percent


def _decimals(text: str) -> int:
    """Number of digits after the decimal point in the written answer (0 when none)."""
    m = re.search(r"\.(\d+)\s*%?$", normalize_answer(text).replace(" ", ""))
    return len(m.group(1)) if m else 0


def _close_by_rounding(a: Fraction, a_text: str, b: Fraction) -> bool:
    """True when `a` is written with >= 3 decimals and `b` rounded to that many decimals equals `a`."""
    d = _decimals(a_text)
    return d >= 3 and round(b, d) == a


def _numbers_equal(pred: str, p: tuple[Fraction, bool], ref: str, r: tuple[Fraction, bool]) -> bool:
    """Exact (or decimal-rounding) equality over the percent readings of both sides."""
    p_vals = [p[0], p[0] / 100] if p[1] else [p[0]]
    r_vals = [r[0], r[0] / 100] if r[1] else [r[0]]
    for a in p_vals:
        for b in r_vals:
            if a == b or _close_by_rounding(a, pred, b) or _close_by_rounding(b, ref, a):
                return True
    return False


_ARITH_ONLY = re.compile(r"^[\d\s.+\-*/()=]+$")
_AST_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _ast_value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _ast_value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        return _AST_OPS[type(node.op)](_ast_value(node.left), _ast_value(node.right))
    raise ValueError("not plain arithmetic")


def arithmetic_value(text: str) -> Fraction | None:
    """Exact value of a plain arithmetic answer such as ``3*9+2`` or ``10-2=8`` (the right-most side of ``=``).

    Only digits, ``. + - * / ( ) =`` and spaces are read; anything else (or a malformed expression, a division by
    zero, more than 200 characters) gives None. This decides, without the slow symbolic stage, the many
    arithmetic-looking answers a policy writes against a numeric reference, the same way math-verify would
    (it also compares the right-hand side of an equation).
    """
    s = text.strip()
    if len(s) > 200 or not _ARITH_ONLY.match(s):
        return None
    s = s.rsplit("=", 1)[-1].strip()
    try:
        return _ast_value(ast.parse(s, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return None


def symbolic_equal(pred: str, ref: str, timeout_s: int = 3) -> bool | None:
    """Symbolic equivalence through math-verify, guarded by a timeout.

    Args:
        pred: predicted final answer (LaTeX or plain).
        ref: reference final answer.
        timeout_s: seconds allowed for each of parsing and verification (``signal.alarm``; integer >= 1).

    Returns:
        True/False from math-verify, or None when it is unavailable, not in the main thread, times out,
        or cannot parse either side.
    """
    if not HAS_MATH_VERIFY or threading.current_thread() is not threading.main_thread():
        return None
    try:
        gold = _mv_parse(f"${ref}$", parsing_timeout=timeout_s)
        target = _mv_parse(f"${pred}$", parsing_timeout=timeout_s)
        if not gold or not target:
            return None
        return bool(_mv_verify(gold, target, timeout_seconds=timeout_s))
    except Exception:  # math-verify raises many types on odd LaTeX; treat as "cannot decide"
        return None


def answers_equal(pred: str | None, ref: str | None, *, symbolic: bool = True, timeout_s: int = 3) -> bool:
    """Whether two final answers denote the same value (symmetric in its arguments).

    Args:
        pred: predicted final answer, or None (no answer: never equal).
        ref: reference final answer, or None.
        symbolic: also try math-verify when the answers are not both plain numbers.
        timeout_s: timeout for the symbolic check, in whole seconds (>= 1).

    Returns:
        True when equal under the rules of the module docstring.
    """
    if timeout_s < 1:
        raise ValueError(f"timeout_s must be an integer >= 1 second, got {timeout_s}")
    if pred is None or ref is None:
        return False
    p_norm, r_norm = normalize_answer(pred), normalize_answer(ref)
    if not p_norm or not r_norm:
        return False
    if p_norm == r_norm:
        return True
    p_num, r_num = parse_number(pred), parse_number(ref)
    if p_num is not None and r_num is not None:
        return _numbers_equal(pred, p_num, ref, r_num)
    for a_num, b_text in ((p_num, r_norm), (r_num, p_norm)):  # a number against plain arithmetic: exact value
        if a_num is not None and _ARITH_ONLY.match(b_text):
            value = arithmetic_value(b_text)
            return value is not None and value in ([a_num[0], a_num[0] / 100] if a_num[1] else [a_num[0]])
    if p_norm.replace(" ", "").lower() == r_norm.replace(" ", "").lower():
        return True
    if symbolic:
        first, second = sorted((p_norm, r_norm))  # one call, in a fixed order: symmetric by construction
        return bool(symbolic_equal(first, second, timeout_s))
    return False

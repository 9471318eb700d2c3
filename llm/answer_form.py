"""The form of a final answer: lists, values, claims and hedges, decided before any maths.

The grader (:mod:`llm.math_equiv`) compares what two answers *denote*. Some texts denote a value only by accident
of a lenient parser, and this module refuses them first:

- **Not a value**: a comparison between numbers (``2+2 = 5``, ``5 \\approx 6``: a claim, true or false, not an
  answer; math-verify keeps the right side), an unfinished text (``5-``, ``5 (`` from "5 (but maybe 6)"), and digits
  that are not ASCII (``٥``, ``５``, the power ``5²``; math-verify reads ``5²`` as 5).
- **Not a number**, where the gold is a plain number (the GSM8K and synthetic arithmetic tasks): anything but a
  number literal, a fraction of two integers or a percentage, optionally after ``x =`` and before a unit
  (``\\text{cm}``). So ``5-3-1``, ``2^{10}``, ``\\sqrt{25}`` are not paid there, although math-verify evaluates them:
  a transcription of the question (``5-3-1`` for "5 rocks, sell 3, use 1") is not an answer.
- **Lists**: :func:`split_list` cuts a text at its top-level commas (outside brackets, not a thousands separator
  ``1,000``), the way math-verify's LaTeX reading turns ``-2,1`` into the set {-2, 1}. Used to count list golds.

:func:`unwrap_dollars` reads a text with inner math delimiters whole: ``69$,$84`` (an OlympiadBench gold) is the
list 69, 84, not the first part 69.
"""

from __future__ import annotations

import re

__all__ = ["has_foreign_digits", "is_claim", "is_list", "is_text", "is_unfinished", "leading_math", "not_a_number",
           "split_list", "unwrap_dollars"]

_RELATION = re.compile(r"\\(?:approx|neq|ne|leqslant|geqslant|leq|geq|le|ge|lt|gt|sim|simeq|equiv)(?![a-zA-Z])"
                       r"|[=<>\u2248\u2260\u2264\u2265]")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_CONSTANTS = {"\\pi", "\\infty", "\\e"}
_OPEN, _CLOSE = "([{", ")]}"
_TRAILING_OP = re.compile(r"(?:[-+*/^=,\u00d7\u00f7]|\\times|\\cdot|\\div|\\pm)\s*$")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")
_WORD = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z]{2,})")
_MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "inf", "infty", "mod", "pmod"}
_UNIT_ANY = re.compile(r"\\(?:text|mbox|mathrm|operatorname)\s*\{[^{}]*\}")
_UNIT = re.compile(r"\s*(?:\\(?:text|mbox|mathrm)\s*\{[^{}]*\}\s*)+$")
_VAR_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?[0-9a-zA-Z]+\}?)?\s*(?:=|\\approx)\s*")
_INT = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)"
_ARG = rf"(?:\{{\s*[+-]?{_INT}\s*\}}|[0-9])"
_NUM = rf"(?:{_INT}(?:\.[0-9]+)?|\.[0-9]+)"
_PLAIN_VALUE = re.compile(
    rf"^[+-]?(?:{_NUM}(?:\s*/\s*{_INT})?|\\[dt]?frac\s*{_ARG}\s*{_ARG})\s*(?:\\?%)?$")


def is_text(text: str) -> bool:
    """Whether `text` is prose with maths in it rather than one bare answer: it holds a math delimiter (``$``,
    ``\\(``, ``\\[``, ``\\boxed``) or a word of two or more letters that is no LaTeX command, unit or function name.
    math-verify finds the answer in a text itself, so the form checks here apply to bare answers only."""
    if any(d in text for d in _DELIMITERS):
        return True
    return any(w.lower() not in _MATH_WORDS for w in _WORD.findall(_UNIT_ANY.sub(" ", text)))


def leading_math(text: str) -> str:
    """The maths a text without math delimiters starts with, up to its first word (``5-3-1 rocks`` -> ``5-3-1``);
    "" when it has a delimiter or starts with a word (math-verify then finds the answer in it)."""
    if any(d in text for d in _DELIMITERS):
        return ""
    bare = _UNIT_ANY.sub(" ", text)
    for m in _WORD.finditer(bare):
        if m.group(1).lower() not in _MATH_WORDS:
            return bare[: m.start()].strip()
    return bare.strip()


def has_foreign_digits(text: str) -> bool:
    """Whether `text` holds a numeric character other than the ASCII digits 0-9 (``٥``, ``５``, ``²``, ``½``)."""
    return any(ch.isnumeric() and not ("0" <= ch <= "9") for ch in text)


def _has_variable(side: str) -> bool:
    bare = _COMMAND.sub(lambda m: "1" if m.group(0) in _CONSTANTS else " ", side)
    return bool(re.search(r"[a-zA-Z]", bare))


def is_claim(text: str) -> bool:
    """Whether `text` is a relation between variable-free sides (``2+2 = 5``, ``5 \\approx 6``, ``1 < 2``).

    ``x = 5``, ``k = \\frac{1}{3}`` and ``-2 \\le x \\le 7`` are answers, not claims: a side names a variable.
    """
    sides = _RELATION.split(text)
    return len(sides) >= 2 and all(s.strip() and not _has_variable(s) for s in sides)


def is_unfinished(text: str) -> bool:
    """Whether `text` stops mid-expression: more opening than closing brackets (``5 (``; an interval ``[1,2)``
    counts its two kinds together) or a trailing operator (``5-``, ``3 \\times``)."""
    bare = text.replace("\\{", "{").replace("\\}", "}")
    opened = sum(bare.count(c) for c in _OPEN[:2]) - sum(bare.count(c) for c in _CLOSE[:2])
    return opened != 0 or bare.count("{") != bare.count("}") or bool(_TRAILING_OP.search(text.strip()))


def not_a_number(text: str) -> bool:
    """Whether `text` (layout already cleaned: no ``$`` wrapper, no currency) is anything but a plain number,
    a fraction of two integers or a percentage, optionally after ``x =`` and before ``\\text{unit}``."""
    s = _UNIT.sub("", _VAR_PREFIX.sub("", text.strip(), count=1)).strip()
    s = re.sub(r"\\[,;:! ]|~", "", s).replace("\\left", "").replace("\\right", "")
    while len(s) >= 2 and s[0] == "(" and s[-1] == ")":  # "(5)"
        s = s[1:-1].strip()
    return not _PLAIN_VALUE.match(s)


def unwrap_dollars(text: str) -> str:
    """`text` without its math delimiters when they sit inside it (``69$,$84`` -> ``69,84``); else unchanged.

    A text with one or no unescaped ``$`` (``$18``, ``\\$5``), or one ``$...$`` wrapper, is returned as it is.
    """
    s = text.strip()
    inner = _UNESCAPED_DOLLAR.findall(s[1:-1]) if s.startswith("$") and s.endswith("$") else ["$", "$"]
    if len(_UNESCAPED_DOLLAR.findall(s)) < 2 or not inner:
        return text
    bare = _UNESCAPED_DOLLAR.sub("", s).strip()
    return text if is_text(bare) else bare  # prose with several $...$ parts is math-verify's to read


def split_list(text: str) -> list[str]:
    """The items of a comma-separated list at bracket depth 0 (``-2,1`` -> ``["-2", "1"]``); one item when the
    text is not a list. A comma between digit groups of three (``1,000``, ``12,345,678``) separates thousands."""
    s = re.sub(r"\\[;:! ]\s*", "", unwrap_dollars(text)).strip()  # LaTeX spaces ("32,\!348"); "\," stays
    if s.startswith("$") and s.endswith("$") and len(s) >= 2:
        s = s[1:-1]
    if re.fullmatch(r"(?:\\?\$)?[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?", s.strip()):  # "\$32,348"
        return [s.strip()]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0 and not s[max(i - 1, 0):i] == "\\":
            items.append(s[start:i].strip())
            start = i + 1
    items.append(s[start:].strip())
    return [x for x in items if x] or [s.strip()]


def is_list(text: str) -> bool:
    """Whether `text` is a comma-separated list of two or more items (:func:`split_list`)."""
    return len(split_list(text)) >= 2

"""Gold answers of dataset rows: the accepted value types, and the refusal of what is no answer (file:line).

A missing gold must fail when the data is loaded, not become the string "None" that a policy can then be paid for
writing (``\\boxed{None}``); a boolean or a list of numbers is a conversion mistake, not an answer.
"""

from __future__ import annotations

import json
from typing import Any

from llm.rewards import extract_answer, last_boxed

__all__ = ["DataError", "answer_text", "gold", "number_text", "strip_dollars"]


class DataError(ValueError):
    """Bad dataset input: the message names the file, the line and the field."""


def number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_MISSING_WORDS = {"none", "null", "nan", "n/a"}


def gold(raw: Any, where: str, name: str) -> str:
    """The gold answer text of a field value, refusing what is no answer (file:line and field named).

    Accepted: a non-empty string, a finite number, or a non-empty list of non-empty strings (OlympiadBench's
    ``final_answer``: one answer per item, joined with ", " and read as a list). Refused: booleans, null, a list
    of numbers or other values, objects, NaN, and the strings "None" / "null" / "nan" that a missing value becomes
    when a dataset is converted.
    """
    fix = f"write the reference answer of field {name!r} as a string, e.g. \"18\" or \"-2, 1\" for a list"
    if isinstance(raw, bool) or raw is None or isinstance(raw, (dict, tuple)):
        raise DataError(f"{where}: field {name!r} is {json.dumps(raw)} ({type(raw).__name__}), not an answer; {fix}")
    if isinstance(raw, (int, float)):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise DataError(f"{where}: field {name!r} is {raw!r}, not an answer; {fix}")
        return number_text(raw)
    if isinstance(raw, list):
        if not raw or not all(isinstance(a, str) and strip_dollars(a) for a in raw):
            raise DataError(f"{where}: field {name!r} is the list {json.dumps(raw)[:60]}; a list answer must be a "
                            f"non-empty list of non-empty strings (one answer each); {fix}")
        text = ", ".join(strip_dollars(a) for a in raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise DataError(f"{where}: field {name!r} has type {type(raw).__name__}, not an answer; {fix}")
    if not text or text.lower().strip("$ ") in _MISSING_WORDS:
        raise DataError(f"{where}: field {name!r} is {raw!r}: the gold answer is missing; {fix}")
    return text


def strip_dollars(s: str) -> str:
    s = s.strip()
    return s[1:-1].strip() if len(s) >= 2 and s.startswith("$") and s.endswith("$") else s


def answer_text(raw: Any, where: str, name: str) -> tuple[str | None, str | None]:
    """(answer, worked solution or None) of an answer value: GSM8K ``#### n`` text, or a bare answer."""
    if isinstance(raw, str) and "####" in raw:
        return extract_answer(raw), raw
    if isinstance(raw, str) and "\\boxed" in raw:
        return last_boxed(raw), raw
    return gold(raw, where, name), None

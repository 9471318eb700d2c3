"""One dataset row -> one :class:`~llm.data.Problem`: the question, answer and solution fields of the common math
dataset formats.

Row formats are recognised by their fields (first match wins); ``prompt_field`` / ``answer_field`` (config
fields ``data.prompt_field`` / ``data.answer_field``, dotted for nested fields: ``extra_info.question``) name
them explicitly instead:

- question: ``question``, else ``problem``, else ``prompt`` (OlympiadBench's ``context``, when set, is put first).
  A list of chat messages (``[{"role": "user", "content": ...}, ...]``: verl's and TRL's conversational rows) is
  kept in ``Problem.meta["messages"]`` and rendered with the tokenizer's chat template; the question is then the
  text of its system and user turns;
- answer: ``final_answer`` (OlympiadBench; a list is joined with ``", "``), else ``answer`` (GSM8K when it
  holds ``#### n``: the text after ``####`` is the answer and the whole text the worked solution; otherwise the
  bare answer, e.g. MATH-500, AIME, AMC, where ``27.0`` becomes ``"27"``), else ``reward_model.ground_truth``
  (verl), else ``ground_truth`` (its final ``A: n``), else the last ``\\boxed{}`` of ``solution`` (MATH, Minerva);
- solution: ``solution`` (the first one when a list), else the GSM8K answer text. GSM8K calculator
  annotations ``<<48/2=24>>`` are removed from solutions.
"""

from __future__ import annotations

import re
from typing import Any

from llm.data.golds import DataError, answer_text, gold, strip_dollars
from llm.data.problem import Problem
from llm.rewards import extract_answer, last_boxed

__all__ = ["problem_from_row"]

_QUESTION_KEYS = ("question", "problem", "prompt")
_META_KEYS = ("id", "unique_id", "idx", "level", "subject", "type", "subfield", "answer_type", "unit", "url")
_CALC = re.compile(r"<<[^<>]*>>")

_MISSING = object()


def _get(row: dict[str, Any], dotted: str) -> Any:
    """``row["a"]["b"]`` for ``"a.b"`` (a key holding a dot is tried whole first); _MISSING when absent."""
    if dotted in row:
        return row[dotted]
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _messages(value: Any, where: str, name: str) -> list[dict[str, str]] | None:
    """A chat-message list as plain ``{"role", "content"}`` dicts; None when ``value`` is not a list."""
    if not isinstance(value, list):
        return None
    out = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise DataError(f"{where}: field {name!r} is a list, so each item must be a chat message "
                            f"{{'role': str, 'content': str}}; item {i} is {m!r}")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        raise DataError(f"{where}: the chat messages of field {name!r} have no non-empty 'user' turn")
    return out


def _question(row: dict[str, Any], where: str, prompt_field: str) -> tuple[str, list[dict[str, str]] | None]:
    """(question text, chat messages or None) of a row."""
    if prompt_field:
        value = _get(row, prompt_field)
        if value is _MISSING:
            raise DataError(f"{where}: missing field {prompt_field!r} (data.prompt_field); the row has {sorted(row)}")
        candidates = [(prompt_field, value)]
    else:
        candidates = [(k, row[k]) for k in _QUESTION_KEYS if k in row]
    for key, value in candidates:
        messages = _messages(value, where, key)
        if messages is not None:
            text = "\n\n".join(m["content"].strip() for m in messages if m["role"] in ("system", "user"))
            return text, messages
        if isinstance(value, str) and value.strip():
            return value.strip(), None
    if prompt_field:
        raise DataError(f"{where}: field {prompt_field!r} (data.prompt_field) must be a non-empty string or a list "
                        f"of chat messages; got {candidates[0][1]!r}")
    if candidates:
        key, value = candidates[0]
        raise DataError(f"{where}: field {key!r} must be a non-empty string or a list of chat messages; got "
                        f"{value!r:.60} ({type(value).__name__})")
    raise DataError(f"{where}: missing field 'question' (or 'problem' / 'prompt', a string or chat messages; "
                    f"set data.prompt_field to name another); the row has {sorted(row)}")


def problem_from_row(row: dict[str, Any], where: str, source: str = "", *, prompt_field: str = "",
                     answer_field: str = "") -> Problem:
    """Build a Problem from one dataset row, recognising GSM8K, MATH, AIME/AMC, Minerva, OlympiadBench, verl and
    TRL conversational fields (see the module docstring).

    Args:
        row: the parsed row.
        where: ``"file:line"`` used in error messages.
        source: stored in ``Problem.source``.
        prompt_field: field (dotted for nested) holding the question or chat messages; "" = recognised.
        answer_field: field (dotted for nested) holding the reference answer; "" = recognised.

    Raises:
        DataError: the row is not an object, or has no question / no answer.
    """
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object per row, got {type(row).__name__}")
    question, messages = _question(row, where, prompt_field)
    if messages is None and isinstance(row.get("context"), str) and row["context"].strip():
        question = f"{row['context'].strip()}\n{question}"
    solution = row.get("solution")
    if isinstance(solution, list):
        solution = next((s for s in solution if isinstance(s, str)), None)
    if not isinstance(solution, str) or not solution.strip():
        solution = None
    answer = None
    verl_truth = _get(row, "reward_model.ground_truth")
    if answer_field:
        raw = _get(row, answer_field)
        if raw is _MISSING or raw in (None, "", []):
            raise DataError(f"{where}: missing field {answer_field!r} (data.answer_field); the row has {sorted(row)}")
        answer, worked = answer_text(raw, where, answer_field)
        solution = solution or worked
    elif row.get("final_answer") not in (None, "", []):  # absent or empty: the next source is tried
        answer = strip_dollars(gold(row["final_answer"], where, "final_answer"))
    elif row.get("answer") not in (None, ""):
        raw = row["answer"]
        if isinstance(raw, str) and "####" in raw:
            answer = extract_answer(raw)
            solution = solution or raw
        else:
            answer = gold(raw, where, "answer")
    elif verl_truth not in (_MISSING, None, "", []):
        answer, worked = answer_text(verl_truth, where, "reward_model.ground_truth")
        solution = solution or worked
    elif isinstance(row.get("ground_truth"), str):
        answer = extract_answer(row["ground_truth"])
        solution = solution or row["ground_truth"]
    elif solution is not None:
        answer = last_boxed(solution)
        if answer is None:
            raise DataError(f"{where}: no 'answer' field and no \\boxed{{}} answer in 'solution'")
    if answer is None or not str(answer).strip():
        raise DataError(
            f"{where}: missing field 'answer' (or 'final_answer' / 'reward_model.ground_truth' / 'ground_truth' / a "
            f"'solution' with \\boxed{{}}; set data.answer_field to name another); the row has {sorted(row)}"
        )
    if solution is not None:
        solution = _CALC.sub("", solution).strip()
    meta: dict[str, Any] = {k: row[k] for k in _META_KEYS if k in row and isinstance(row[k], (str, int, float, bool))}
    if messages is not None:
        meta["messages"] = messages
    return Problem(question=question, answer=str(answer).strip(), solution=solution, source=source, meta=meta)

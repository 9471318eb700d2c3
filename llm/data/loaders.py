"""Load math datasets from JSONL / JSON / parquet files into :class:`~llm.data.Problem` lists.

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

Dataset specs (:func:`load_problems`): a synthetic task name (``arithmetic``, ``arith``, ``countdown``), a named
benchmark (:data:`BENCHMARKS`, read from the shared data folder of :func:`default_data_dir`), a file path
(``.jsonl``, ``.json``, ``.parquet`` read with pyarrow), or ``hf:owner/name[:config][@split]`` through the
``datasets`` library (the ``hub`` extra; needs the hub reachable, so the tests never use it).

Bad input fails with one message naming the file and the line: malformed JSON (file:line), a row without a
question or answer (which field, which line, and the fields the row has), and an empty dataset.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from llm.data.golds import DataError, answer_text, gold, strip_dollars
from llm.data.problem import Problem
from llm.data.synthetic import TASK_ALIASES, TASKS, make_task
from llm.rewards import extract_answer, last_boxed

__all__ = ["BENCHMARKS", "DataError", "default_data_dir", "load_file", "load_problems", "problem_from_row"]

BENCHMARKS = {
    "gsm8k:train": "gsm8k/train.jsonl",
    "gsm8k:test": "gsm8k/test.jsonl",
    "math500": "math_bench/math500.jsonl",
    "aime24": "math_bench/aime24.jsonl",
    "amc23": "math_bench/amc23.jsonl",
    "minerva_math": "math_bench/minerva_math.jsonl",
    "olympiadbench": "math_bench/olympiadbench.jsonl",
}
"""Named benchmarks -> file under the shared data folder (see :func:`default_data_dir`)."""

_ALIASES = {"gsm8k": "gsm8k:test", "minerva": "minerva_math", "math-500": "math500"}
_HUB_EXAMPLE = "hf:HuggingFaceH4/MATH-500@test"
_QUESTION_KEYS = ("question", "problem", "prompt")
_META_KEYS = ("id", "unique_id", "idx", "level", "subject", "type", "subfield", "answer_type", "unit", "url")
_CALC = re.compile(r"<<[^<>]*>>")


def _checkout() -> Path | None:
    """The source checkout this package runs from (it holds the project's pyproject.toml), None once installed."""
    root = Path(__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    return root if project.is_file() and 'name = "aent"' in project.read_text(encoding="utf-8") else None


def default_data_dir() -> Path | None:
    """``$AENT_SHARED_DATA`` when set, else in a checkout ``shared/data`` beside it, else None (an installed
    package never looks for data inside its install location)."""
    env = os.environ.get("AENT_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    root = _checkout()
    return root.parent / "shared" / "data" if root is not None else None


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


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: a .json dataset must be a list of row objects (or {{'data': [...]}})")
    return ((i, r) for i, r in enumerate(data, start=1))


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is in the llm extra
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install 'aent[llm]')") from None
    try:
        rows = pq.read_table(path).to_pylist()  # nested columns (verl's prompt, reward_model) become lists/dicts
    except Exception as e:  # pyarrow raises several types on a corrupt file
        raise DataError(f"{path}: cannot read parquet file ({type(e).__name__}: {e})") from None
    return ((i, r) for i, r in enumerate(rows, start=1))


def _rows_to_problems(rows: Iterable[tuple[int, Any]], label: str, unit: str, n: int, **fields: str) -> list[Problem]:
    """The first n problems (0 = all); every row is validated, so a bad row beyond the first n is found too."""
    out = []
    for lineno, row in rows:
        problem = problem_from_row(row, f"{label}:{unit}{lineno}" if unit else f"{label}:{lineno}", label, **fields)
        if not n or len(out) < n:
            out.append(problem)
    if not out:
        raise DataError(f"{label}: the dataset is empty (no rows)")
    return out


def load_file(path: str | os.PathLike, n: int = 0, *, prompt_field: str = "", answer_field: str = "") -> list[Problem]:
    """Problems from a ``.jsonl``, ``.json`` or ``.parquet`` file.

    Args:
        path: the file.
        n: keep the first n rows (0 = all).
        prompt_field: field holding the question or chat messages (dotted for nested); "" = recognised.
        answer_field: field holding the reference answer (dotted for nested); "" = recognised.

    Returns:
        Problems with ``source`` = the path.

    Raises:
        FileNotFoundError: no such file.
        DataError: malformed row (file:line), missing field, unknown extension, or no rows.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0 (0 = all rows), got {n!r}")
    suffix = path.suffix.lower()
    fields = {"prompt_field": prompt_field, "answer_field": answer_field}
    if suffix == ".jsonl":
        return _rows_to_problems(_jsonl_rows(path), str(path), "", n, **fields)
    if suffix == ".json":
        return _rows_to_problems(_json_rows(path), str(path), "row ", n, **fields)
    if suffix == ".parquet":
        return _rows_to_problems(_parquet_rows(path), str(path), "row ", n, **fields)
    raise DataError(f"{path}: unknown dataset extension {suffix!r}; use .jsonl, .json or .parquet")


def _load_hub(spec: str, n: int, **fields: str) -> list[Problem]:
    """``hf:owner/name[:config][@split]`` through the ``datasets`` library (split defaults to test)."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"dataset {spec!r} needs the `datasets` package (pip install 'aent[hub]')") from None
    body, _, split = spec[3:].partition("@")
    name, _, config = body.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "test")
    except Exception as e:  # offline, unknown repo, gated: all one message
        raise DataError(
            f"cannot load {spec!r} from the Hugging Face hub ({type(e).__name__}: {e}); download it on a machine "
            "with network access and pass the .jsonl/.parquet path instead"
        ) from None
    return _rows_to_problems(((i, dict(r)) for i, r in enumerate(ds, start=1)), spec, "row ", n, **fields)


def load_problems(
    spec: str,
    *,
    split: str = "train",
    n: int = 0,
    seed: int = 0,
    difficulty: int | None = None,
    data_dir: str | os.PathLike | None = None,
    prompt_field: str = "",
    answer_field: str = "",
) -> list[Problem]:
    """Problems of a synthetic task, a named benchmark, a file or a hub dataset.

    Args:
        spec: ``"arithmetic"`` / ``"countdown"`` (synthetic), a key of :data:`BENCHMARKS` (or ``gsm8k``,
            ``minerva``), a ``.jsonl``/``.json``/``.parquet`` path, or ``hf:owner/name[:config][@split]``.
        split: synthetic tasks only: ``"train"`` or ``"test"``.
        n: number of problems; synthetic tasks need n >= 1, datasets keep the first n rows (0 = all).
        seed: synthetic tasks only: split seed (see :func:`llm.data.make_task`).
        difficulty: synthetic tasks only: 1..8, None = the task's default.
        data_dir: folder of the named benchmarks; None = :func:`default_data_dir`.
        prompt_field: datasets only: field holding the question or chat messages (dotted); "" = recognised.
        answer_field: datasets only: field holding the reference answer (dotted); "" = recognised.

    Returns:
        A non-empty list of Problem.
    """
    spec = str(spec).strip()
    name = TASK_ALIASES.get(spec, spec)
    if name in TASKS:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"synthetic task {spec!r} needs n >= 1 problems, got {n!r}")
        train, test = make_task(name, n if split == "train" else 0, n if split == "test" else 0, seed, difficulty)
        return train if split == "train" else test
    fields = {"prompt_field": prompt_field, "answer_field": answer_field}
    if spec.startswith("hf:"):
        return _load_hub(spec, n, **fields)
    key = _ALIASES.get(spec, spec)
    if key in BENCHMARKS:
        root = Path(data_dir) if data_dir is not None else default_data_dir()
        path = None if root is None else root / BENCHMARKS[key]
        if path is None or not path.is_file():
            where = ("no data folder: AENT_SHARED_DATA is unset and aent is not running from a checkout" if path is None
                     else f"{path} does not exist")
            raise FileNotFoundError(
                f"benchmark {spec!r} not found ({where}); either set AENT_SHARED_DATA to the folder holding gsm8k/ "
                "and math_bench/, run from a checkout with shared/data beside it, or pass the dataset itself: a "
                f".jsonl/.parquet path or an hf:owner/name[:config][@split] id (e.g. {_HUB_EXAMPLE}; needs the hub)"
            )
        problems = load_file(path, n)
        return [Problem(p.question, p.answer, p.solution, key, p.meta) for p in problems]
    if Path(spec).suffix.lower() in (".jsonl", ".json", ".parquet") or os.sep in spec:
        return load_file(spec, n, **fields)
    raise ValueError(
        f"unknown dataset {spec!r}: use a synthetic task {sorted(TASKS)}, a benchmark {sorted(BENCHMARKS)}, "
        "a .jsonl/.json/.parquet path, or hf:owner/name"
    )

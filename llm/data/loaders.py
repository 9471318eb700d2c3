"""Load math datasets from JSONL / JSON / parquet files into :class:`~llm.data.Problem` lists.

Row formats are recognised by their fields (first match wins):

- question: ``question``, else ``problem``, else ``prompt`` (OlympiadBench's ``context``, when set, is put first);
- answer: ``final_answer`` (OlympiadBench; a list is joined with ``", "``), else ``answer`` (GSM8K when it
  holds ``#### n``: the text after ``####`` is the answer and the whole text the worked solution; otherwise the
  bare answer, e.g. MATH-500, AIME, AMC, where ``27.0`` becomes ``"27"``), else ``ground_truth`` (its final
  ``A: n``), else the last ``\\boxed{}`` of ``solution`` (MATH, Minerva);
- solution: ``solution`` (the first one when a list), else the GSM8K answer text. GSM8K calculator
  annotations ``<<48/2=24>>`` are removed from solutions.

Dataset specs (:func:`load_problems`): a synthetic task name (``arithmetic``, ``arith``, ``countdown``), a named
benchmark (:data:`BENCHMARKS`, read from the shared data folder), a file path (``.jsonl``, ``.json``,
``.parquet``), or ``hf:owner/name[:config][@split]`` through the ``datasets`` library (needs it installed and
the hub reachable; never used by the tests).

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
_QUESTION_KEYS = ("question", "problem", "prompt")
_META_KEYS = ("id", "unique_id", "idx", "level", "subject", "type", "subfield", "answer_type", "unit", "url")
_CALC = re.compile(r"<<[^<>]*>>")


class DataError(ValueError):
    """Bad dataset input: the message names the file, the line and the field."""


def default_data_dir() -> Path:
    """``$AENT_SHARED_DATA`` when set, else ``shared/data`` beside the project checkout."""
    env = os.environ.get("AENT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _strip_dollars(s: str) -> str:
    s = s.strip()
    return s[1:-1].strip() if len(s) >= 2 and s.startswith("$") and s.endswith("$") else s


def problem_from_row(row: dict[str, Any], where: str, source: str = "") -> Problem:
    """Build a Problem from one dataset row, recognising GSM8K, MATH, AIME/AMC, Minerva and OlympiadBench fields.

    Args:
        row: the parsed row.
        where: ``"file:line"`` used in error messages.
        source: stored in ``Problem.source``.

    Raises:
        DataError: the row is not an object, or has no question / no answer.
    """
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object per row, got {type(row).__name__}")
    q_key = next((k for k in _QUESTION_KEYS if isinstance(row.get(k), str) and row[k].strip()), None)
    if q_key is None:
        raise DataError(f"{where}: missing field 'question' (or 'problem' / 'prompt'); the row has {sorted(row)}")
    question = row[q_key].strip()
    if isinstance(row.get("context"), str) and row["context"].strip():
        question = f"{row['context'].strip()}\n{question}"
    solution = row.get("solution")
    if isinstance(solution, list):
        solution = next((s for s in solution if isinstance(s, str)), None)
    if not isinstance(solution, str) or not solution.strip():
        solution = None
    answer = None
    if row.get("final_answer") not in (None, "", []):
        fa = row["final_answer"]
        answer = ", ".join(_strip_dollars(str(a)) for a in fa) if isinstance(fa, list) else _strip_dollars(str(fa))
    elif row.get("answer") not in (None, ""):
        raw = row["answer"]
        if isinstance(raw, str) and "####" in raw:
            answer = extract_answer(raw, fallback_last_number=False)
            solution = solution or raw
        else:
            answer = _number_text(raw)
    elif isinstance(row.get("ground_truth"), str):
        answer = extract_answer(row["ground_truth"], fallback_last_number=False)
        solution = solution or row["ground_truth"]
    elif solution is not None:
        answer = last_boxed(solution)
        if answer is None:
            raise DataError(f"{where}: no 'answer' field and no \\boxed{{}} answer in 'solution'")
    if answer is None or not str(answer).strip():
        raise DataError(
            f"{where}: missing field 'answer' (or 'final_answer' / 'ground_truth' / a 'solution' with \\boxed{{}}); "
            f"the row has {sorted(row)}"
        )
    if solution is not None:
        solution = _CALC.sub("", solution).strip()
    meta = {k: row[k] for k in _META_KEYS if k in row and isinstance(row[k], (str, int, float, bool))}
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
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency of the dev environment
        raise DataError(f"{path}: reading parquet needs pandas and pyarrow (pip install pandas pyarrow)") from None
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types on a corrupt file
        raise DataError(f"{path}: cannot read parquet file ({type(e).__name__}: {e})") from None
    for i, rec in enumerate(frame.to_dict(orient="records"), start=1):
        yield i, {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in rec.items()}


def _rows_to_problems(rows: Iterable[tuple[int, Any]], label: str, unit: str, n: int) -> list[Problem]:
    out = []
    for lineno, row in rows:
        out.append(problem_from_row(row, f"{label}:{unit}{lineno}" if unit else f"{label}:{lineno}", label))
        if n and len(out) >= n:
            break
    if not out:
        raise DataError(f"{label}: the dataset is empty (no rows)")
    return out


def load_file(path: str | os.PathLike, n: int = 0) -> list[Problem]:
    """Problems from a ``.jsonl``, ``.json`` or ``.parquet`` file.

    Args:
        path: the file.
        n: keep the first n rows (0 = all).

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
    if suffix == ".jsonl":
        return _rows_to_problems(_jsonl_rows(path), str(path), "", n)
    if suffix == ".json":
        return _rows_to_problems(_json_rows(path), str(path), "row ", n)
    if suffix == ".parquet":
        return _rows_to_problems(_parquet_rows(path), str(path), "row ", n)
    raise DataError(f"{path}: unknown dataset extension {suffix!r}; use .jsonl, .json or .parquet")


def _load_hub(spec: str, n: int) -> list[Problem]:
    """``hf:owner/name[:config][@split]`` through the ``datasets`` library (split defaults to test)."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"dataset {spec!r} needs the `datasets` package (pip install datasets)") from None
    body, _, split = spec[3:].partition("@")
    name, _, config = body.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "test")
    except Exception as e:  # offline, unknown repo, gated: all one message
        raise DataError(
            f"cannot load {spec!r} from the Hugging Face hub ({type(e).__name__}: {e}); download it on a machine "
            "with network access and pass the .jsonl/.parquet path instead"
        ) from None
    return _rows_to_problems(((i, dict(r)) for i, r in enumerate(ds, start=1)), spec, "row ", n)


def load_problems(
    spec: str,
    *,
    split: str = "train",
    n: int = 0,
    seed: int = 0,
    difficulty: int | None = None,
    data_dir: str | os.PathLike | None = None,
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
    if spec.startswith("hf:"):
        return _load_hub(spec, n)
    key = _ALIASES.get(spec, spec)
    if key in BENCHMARKS:
        root = Path(data_dir) if data_dir is not None else default_data_dir()
        path = root / BENCHMARKS[key]
        if not path.is_file():
            raise FileNotFoundError(
                f"benchmark {spec!r} expects the file {path}, which does not exist; set AENT_SHARED_DATA to the "
                "folder holding gsm8k/ and math_bench/, pass a file path, or use hf:owner/name"
            )
        problems = load_file(path, n)
        return [Problem(p.question, p.answer, p.solution, key, p.meta) for p in problems]
    if Path(spec).suffix.lower() in (".jsonl", ".json", ".parquet") or os.sep in spec:
        return load_file(spec, n)
    raise ValueError(
        f"unknown dataset {spec!r}: use a synthetic task {sorted(TASKS)}, a benchmark {sorted(BENCHMARKS)}, "
        "a .jsonl/.json/.parquet path, or hf:owner/name"
    )

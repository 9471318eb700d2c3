"""Load math datasets from JSONL / JSON / parquet files into :class:`~llm.data.Problem` lists.

One row becomes one :class:`~llm.data.Problem` by :func:`llm.data.rows.problem_from_row` (the formats it
recognises are listed there).

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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from llm.data.golds import DataError
from llm.data.problem import Problem
from llm.data.rows import problem_from_row
from llm.data.synthetic import TASK_ALIASES, TASKS, make_task

__all__ = ["BENCHMARKS", "DataError", "default_data_dir", "load_file", "load_problems"]

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

"""Run logging for the GRPO trainer: metrics.jsonl, experiment trackers, a tqdm progress bar and step timing.

``metrics.jsonl`` holds one JSON object per global step with the metric names shared by ``toy/`` and ``llm/``
(step, reward_mean, accuracy, entropy, clamped_entropy, ent_coef, clip_frac, response_len, time_generate_s,
time_reward_s, time_train_s, ...). Non-finite numbers are written as ``null`` so every line is strict JSON.
Only the main process writes; other processes get a logger that does nothing. The trackers of config field
``report_to`` (TensorBoard, wandb, trackio, mlflow; :mod:`llm.tracking`) receive the same rows.

The file cannot lose a row that a checkpoint holds. Each checkpoint saves the rows so far (``trainer_state.pt``), and
on resume the file is rebuilt from them, up to the checkpoint's step: a torn, truncated, deleted or garbled file
comes back complete, with one warning line saying what was wrong. The rebuild writes a temporary file, fsyncs it
and renames it over ``metrics.jsonl`` (``os.replace``), so a kill -9 during it leaves the old file whole and the
next resume rebuilds again.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
PAUSE_ENV = "AENT_TEST_PAUSE_IN_METRICS_REWRITE"
"""Test hook only: seconds to sleep halfway through writing the rebuilt file (before the rename), after printing
``metrics rewrite paused`` to stderr, so that a real-process test can kill -9 the run inside the rewrite."""
# Shown in the progress bar, in this order, when present.
PROGRESS_KEYS = ("reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef")


def _clean(value: Any) -> Any:
    """JSON-safe scalar: tensors/numpy scalars become floats, NaN/inf become None."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_metrics_lines(path: Path, text: str) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl text; a torn last line (a run killed mid-write) is dropped with a warning.

    Raises:
        ValueError: A line other than the last is not a JSON object (names the file and the line number).
    """
    lines = text.splitlines()
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    rows = []
    for k, (no, line) in enumerate(numbered):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            if k == len(numbered) - 1:
                msg = (f"{str(path)!r} line {no} is cut short ({line[:40]!r}...), probably by a run killed while "
                       f"writing it; dropped")
                warnings.warn(msg, RuntimeWarning, stacklevel=3)
                break
            raise ValueError(f"{str(path)!r} line {no} is not a JSON object ({err}): {line[:60]!r}") from None
        rows.append(row)
    return rows


def _salvage(text: str) -> tuple[list[dict[str, Any]], int]:
    """(the rows of the lines that are JSON objects, the number of non-empty lines that are not)."""
    rows, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as they read back from the file (non-finite numbers as null, tuples as lists)."""
    return [json.loads(json.dumps({k: _clean(v) for k, v in row.items()})) for row in rows]


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` all at once: a temporary file beside it, fsynced, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as fh:
        pause = os.environ.get(PAUSE_ENV)
        if pause:  # test hook (see PAUSE_ENV): stop inside the rewrite, half of it written
            import sys

            fh.write(text[: len(text) // 2])
            fh.flush()
            print("metrics rewrite paused", file=sys.stderr, flush=True)
            time.sleep(float(pause))
        fh.write(text[len(text) // 2:] if pause else text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename is still atomic
        pass


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a metrics.jsonl file (or the one inside a run folder) into a list of dicts, one per step.

    Args:
        path: A metrics.jsonl file or a run folder that contains one.

    Returns:
        The rows in file order; null values come back as NaN so they plot as gaps. A torn last line is dropped
        with a warning.
    """
    p = Path(path)
    if p.is_dir():
        p = p / METRICS_FILE
    if not p.is_file():
        raise FileNotFoundError(f"no metrics file at {str(p)!r}; pass a run folder written by `python -m llm train`")
    return [{k: (float("nan") if v is None else v) for k, v in row.items()}
            for row in parse_metrics_lines(p, p.read_text())]


class StepTimer:
    """Wall-clock time per phase of one global step (generate / reward / train / eval).

    Use ``with timer("generate"): ...``; ``timer.as_metrics()`` gives ``{"time_generate_s": ..., ...}`` and
    ``timer.reset()`` starts the next step. Phases that did not run report 0.0.
    """

    PHASES = ("generate", "reward", "train")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def reset(self) -> None:
        self.seconds = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def as_metrics(self) -> dict[str, float]:
        out = {f"time_{p}_s": self.seconds.get(p, 0.0) for p in self.PHASES}
        out.update({f"time_{p}_s": s for p, s in self.seconds.items() if p not in self.PHASES})
        return out


class MetricsLogger:
    """Append one row per global step to metrics.jsonl, the experiment trackers and the progress bar.

    Args:
        output_dir: Run folder (created if missing).
        enabled: False on non-main processes: every call is then a no-op.
        total_steps: Length of the progress bar.
        start_step: Steps already done (on resume); rows of metrics.jsonl with a larger step are dropped, since
            they were written after the checkpoint being resumed and will be recomputed.
        rows: On resume, the metric rows saved with the checkpoint; the file is rebuilt from them (a warning when
            the file did not hold exactly these rows). None: keep the file's own rows up to ``start_step``.
        tensorboard: Also write TensorBoard scalars to output_dir/tb (the same as "tensorboard" in report_to).
        progress: Show a tqdm bar with reward and entropy.
        report_to: Trackers of :mod:`llm.tracking` (tensorboard, wandb, trackio, mlflow) that mirror each row.
        config: The run's nested config, stored by the trackers that keep hyperparameters.
    """

    def __init__(self, output_dir: str | Path, *, enabled: bool = True, total_steps: int = 0, start_step: int = 0,
                 tensorboard: bool = True, progress: bool = True, report_to: tuple[str, ...] = (),
                 config: dict[str, Any] | None = None, rows: list[dict[str, Any]] | None = None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / METRICS_FILE
        self._trackers: list = []
        self._bar = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if start_step and rows is not None:
            self._rebuild(start_step, rows)
        else:
            self._truncate_after(start_step)
        names = tuple(dict.fromkeys([*(["tensorboard"] if tensorboard else []), *report_to]))
        if names:
            from llm.tracking import make_trackers

            self._trackers = make_trackers(names, self.path.parent, start_step=start_step, config=config)
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, desc="grpo", unit="step", dynamic_ncols=True)

    def _truncate_after(self, step: int) -> None:
        """Keep only rows with row['step'] <= step (a fresh run, step 0, starts an empty file); a torn last line
        is dropped with a warning."""
        if step == 0 or not self.path.is_file():
            write_atomically(self.path, "")
            return
        kept = [row for row in parse_metrics_lines(self.path, self.path.read_text()) if row.get("step", 0) <= step]
        write_atomically(self.path, "".join(json.dumps(row) + "\n" for row in kept))

    def _rebuild(self, step: int, rows: list[dict[str, Any]]) -> None:
        """Rewrite the file as the checkpoint's rows (steps <= `step`); warn once when the file held other ones."""
        saved = [r for r in _json_rows(rows) if r.get("step", 0) <= step]
        if not self.path.is_file():
            problem = "was missing"
        else:
            found, bad = _salvage(self.path.read_text(errors="replace"))
            found = [r for r in found if isinstance(r.get("step"), int) and r["step"] <= step]
            lost = len(saved) - sum(r in found for r in saved)
            extra = sum(r not in saved for r in found)
            parts = [f"{bad} unreadable line{'s' * (bad != 1)}"] * bool(bad)
            parts += [f"{lost} of the checkpoint's {len(saved)} rows missing or different"] * bool(lost)
            parts += [f"{extra} row{'s' * (extra != 1)} the checkpoint does not hold"] * bool(extra)
            problem = f"had {', '.join(parts)}" if parts or len(found) != len(saved) else None
        write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in saved))
        if problem:
            first, last = (saved[0].get("step"), saved[-1].get("step")) if saved else (None, None)
            self.write(f"warning: {self.path} {problem}; rebuilt from the checkpoint of step {step} "
                       f"({len(saved)} rows, steps {first}-{last})")

    def log(self, row: dict[str, Any]) -> None:
        """Write one step's metrics (must contain "step")."""
        if not self.enabled:
            return
        clean = {k: _clean(v) for k, v in row.items()}
        try:
            with self.path.open("a") as fh:
                fh.write(json.dumps(clean) + "\n")
        except OSError as err:
            from llm.runfolder import disk_full_error

            raise disk_full_error(err, f"the metrics of step {clean.get('step')}", self.path) from err
        step = int(clean["step"])
        scalars = {k: v for k, v in clean.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        for tracker in self._trackers:
            tracker.log(scalars, step=step)
        if self._bar is not None:
            shown = {k: f"{clean[k]:.3g}" for k in PROGRESS_KEYS if isinstance(clean.get(k), (int, float))}
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(step - self._bar.n)

    def write(self, message: str) -> None:
        """Print a line without breaking the progress bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        for tracker in self._trackers:
            tracker.finish()
        self._trackers = []
        if self._bar is not None:
            self._bar.close()
            self._bar = None

"""Run logging for the GRPO trainer: metrics.jsonl, experiment trackers, a tqdm progress bar and step timing.

``metrics.jsonl`` holds one JSON object per global step with the metric names shared by ``toy/`` and ``llm/``
(step, reward_mean, accuracy, entropy, clamped_entropy, ent_coef, clip_frac, response_len, time_generate_s,
time_reward_s, time_train_s, ...). Non-finite numbers are written as ``null`` so every line is strict JSON.
Only the main process writes; other processes get a logger that does nothing. The trackers of config field
``report_to`` (TensorBoard, wandb, trackio, mlflow; :mod:`llm.tracking`) receive the same rows.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
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
        tensorboard: Also write TensorBoard scalars to output_dir/tb (the same as "tensorboard" in report_to).
        progress: Show a tqdm bar with reward and entropy.
        report_to: Trackers of :mod:`llm.tracking` (tensorboard, wandb, trackio, mlflow) that mirror each row.
        config: The run's nested config, stored by the trackers that keep hyperparameters.
    """

    def __init__(self, output_dir: str | Path, *, enabled: bool = True, total_steps: int = 0, start_step: int = 0,
                 tensorboard: bool = True, progress: bool = True, report_to: tuple[str, ...] = (),
                 config: dict[str, Any] | None = None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / METRICS_FILE
        self._trackers: list = []
        self._bar = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
            self.path.write_text("")
            return
        kept = [row for row in parse_metrics_lines(self.path, self.path.read_text()) if row.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))

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

"""Run the main job's stages: resumable (a finished stage leaves a marker and is not redone), with a progress line.

A stage is either a command (run as a subprocess, its output captured in ``OUT/logs/NAME.log``) or a Python
function. When it succeeds, ``OUT/.stages/NAME.json`` records its command and duration; a later run with the same
command and all its declared outputs present skips it. Independent command stages may run ``jobs`` at a time
(each child then gets ``cores // jobs`` torch threads), which is how the LLM runs share a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Stage", "StageError", "run_stages", "format_seconds"]


class StageError(RuntimeError):
    """A stage failed; the message names it and shows the end of its log."""


@dataclass
class Stage:
    """One unit of the main job."""

    name: str
    """Unique file-name-safe id (the marker and log are named after it)."""
    title: str
    """What the progress line shows while it runs."""
    cmd: Sequence[str] | Callable[[], Sequence[str]] = ()
    """Command to run (a subprocess); empty for a Python stage. A callable builds the command when the stage is
    checked or started: a command read from an earlier stage's output (the calibrated AEnt runs read their
    constants from the calibration stage's JSON); while that output is missing the stage counts as not done."""
    fn: Callable[[], None] | None = None
    """Python stage: called in-process when ``cmd`` is empty."""
    expected_s: float = 10.0
    """Expected duration, only for the time-left estimate."""
    outputs: Sequence[Path] = ()
    """Files the stage must leave behind; a marker without them does not count as done."""
    parallel: bool = False
    """May run concurrently with the neighbouring parallel stages."""
    always: bool = False
    """Re-run even when a marker exists (cheap stages whose inputs may have changed, e.g. the report)."""
    env: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        """The command as it runs now (a callable ``cmd`` is called)."""
        return list(self.cmd() if callable(self.cmd) else self.cmd)


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class _Progress:
    """A one-line status: stage(s) running, elapsed time, an estimate of the time left."""

    def __init__(self, stages: Sequence[Stage], done: set[str], stream, jobs: int = 1) -> None:
        # Parallel stages share the cores `jobs` at a time, so each adds 1/jobs of its duration to the wall time.
        self.expected = {s.name: s.expected_s / (max(1, jobs) if s.parallel else 1) for s in stages}
        self.titles = {s.name: s.title for s in stages}
        self.todo = [s.name for s in stages if s.name not in done]
        self.running: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.stream = stream
        self.lock = threading.Lock()
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def left_s(self) -> float:
        # Scale the remaining estimates by how the finished stages compared with theirs.
        spent = sum(self.finished.values())
        planned = sum(self.expected[n] for n in self.finished) or 1.0
        scale = min(max(spent / planned, 0.25), 4.0) if self.finished else 1.0
        now = time.monotonic()
        left = 0.0
        for name in self.todo:
            if name in self.finished:
                continue
            est = self.expected[name] * scale
            if name in self.running:
                est = max(est - (now - self.running[name]), 0.0)
            left += est
        return left

    def line(self) -> str:
        n_done, n_all = len(self.finished), len(self.todo)
        names = ", ".join(self.titles[n] for n in self.running) or "-"
        return (f"[{n_done}/{n_all} stages done] running: {names} | elapsed "
                f"{format_seconds(time.monotonic() - self.t0)} | about {format_seconds(self.left_s())} left")

    def show(self, final: bool = False) -> None:
        with self.lock:
            text = self.line()
            if self.tty:
                self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0 if self.tty else 30.0):
            self.show()

    def start(self, name: str) -> None:
        with self.lock:
            self.running[name] = time.monotonic()
        self.show()

    def finish(self, name: str) -> None:
        with self.lock:
            self.finished[name] = time.monotonic() - self.running.pop(name)
        self.show()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.show(final=True)


def _marker(out: Path, stage: Stage) -> Path:
    return out / ".stages" / f"{stage.name}.json"


def _is_done(out: Path, stage: Stage) -> bool:
    marker = _marker(out, stage)
    if stage.always or not marker.is_file():
        return False
    try:
        record = json.loads(marker.read_text())
        cmd = stage.command()
    except (OSError, ValueError):  # ValueError includes json.JSONDecodeError
        return False
    return record.get("cmd") == cmd and all(Path(p).exists() for p in stage.outputs)


def _run_one(out: Path, stage: Stage, threads: int) -> float:
    t0 = time.monotonic()
    log_path = out / "logs" / f"{stage.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = stage.command()
    if cmd:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", **stage.env}
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if code != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise StageError(f"stage {stage.name!r} failed (exit code {code}); last lines of {log_path}:\n{tail}")
    else:
        assert stage.fn is not None, f"stage {stage.name} has neither cmd nor fn"
        stage.fn()
    missing = [str(p) for p in stage.outputs if not Path(p).exists()]
    if missing:
        raise StageError(f"stage {stage.name!r} finished but did not write {missing}; see {log_path}")
    seconds = time.monotonic() - t0
    marker = _marker(out, stage)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cmd": cmd, "seconds": seconds,
                               "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    os.replace(tmp, marker)
    return seconds


def _groups(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Consecutive parallel stages form one group; every other stage is a group of its own."""
    groups: list[list[Stage]] = []
    for s in stages:
        if s.parallel and groups and groups[-1][0].parallel:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def run_stages(out: Path, stages: Sequence[Stage], *, jobs: int = 1, stream=None) -> dict[str, float]:
    """Run the stages in order (consecutive parallel ones ``jobs`` at a time); returns seconds per stage run.

    Stages already done (marker with the same command and all outputs present) are skipped; a failure raises
    :class:`StageError` after the running parallel stages finish, and leaves the finished ones marked.
    """
    stream = stream if stream is not None else sys.stderr
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    done = {s.name for s in stages if _is_done(out, s)}
    if done:
        stream.write(f"resuming: {len(done)} finished stage(s) kept ({', '.join(sorted(done))})\n")
    cores = os.cpu_count() or 1
    seconds: dict[str, float] = {}
    with _Progress(stages, done, stream, jobs) as progress:
        for group in _groups(stages):
            todo = [s for s in group if s.name not in done]
            if not todo:
                continue
            width = max(1, min(jobs, len(todo))) if todo[0].parallel else 1
            threads = max(1, cores // width)

            def work(stage: Stage, threads: int = threads) -> None:
                progress.start(stage.name)
                seconds[stage.name] = _run_one(out, stage, threads)
                progress.finish(stage.name)

            if width == 1:
                for stage in todo:
                    work(stage)
            else:
                with ThreadPoolExecutor(max_workers=width) as pool:
                    futures = [pool.submit(work, s) for s in todo]
                    errors = [f.exception() for f in futures]
                first = next((e for e in errors if e is not None), None)
                if first is not None:
                    raise first
    return seconds

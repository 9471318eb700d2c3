"""Preemption: SIGTERM / SIGUSR1 save a checkpoint at the next step boundary and stop; timed checkpoints.

Cluster schedulers announce a preemption with a signal and kill the job a grace period later: SLURM sends
SIGTERM (or the signal of ``--signal=USR1@90``), Kubernetes SIGTERM. :class:`StopGuard` turns the first such
signal into a request that the training loop honours after the step in progress: it writes a checkpoint of that
step and raises :class:`Preempted`, which the command line reports in one line with exit status 128 + signal
number (143 for SIGTERM, 138 for SIGUSR1). A second signal stops at once, as Ctrl-C does (the last completed
step is saved on the way out when that is safe).

A kill -9 cannot be caught; ``save_every_minutes`` bounds what it loses to that many minutes of training (plus
the step in progress). The wall-clock decision is taken on the main process and shared, so every process of a
multi-process run saves at the same step.
"""

from __future__ import annotations

import signal
import threading
import time

import torch

__all__ = ["STOP_SIGNALS", "Preempted", "StopGuard"]

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


def _now() -> float:
    """Seconds on a clock that never goes back (one place, so tests can drive the checkpoint clock)."""
    return time.monotonic()


class Preempted(BaseException):
    """Training stopped on a signal after saving a checkpoint of the last completed step.

    A BaseException, like KeyboardInterrupt: the signal handler raises it wherever the main thread is, and the
    ``except Exception`` of a library in progress (math-verify and sympy while grading, a reward function) must not
    turn the stop into a wrong grade and keep training."""

    def __init__(self, signum: int, step: int | None) -> None:
        self.signum, self.step = signum, step
        name = signal.Signals(signum).name
        if step is None:  # a second signal: the loop is left at once (like Ctrl-C)
            super().__init__(f"stopped at once by a second {name}; resume with the same command plus --resume")
        else:
            super().__init__(f"stopped by {name} after saving a checkpoint of step {step}; resume with the same "
                             f"command plus --resume")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopGuard:
    """Signal handlers and the checkpoint clock of one training run (a context manager).

    Args:
        save_every_minutes: Ask for a checkpoint once this many minutes passed since the last one (0 = never).
        signals: Names of the signals to catch (those missing on the platform are skipped).

    Handlers are installed only in the main thread (Python's rule) and restored on exit.
    """

    def __init__(self, save_every_minutes: float = 0.0, signals: tuple[str, ...] = STOP_SIGNALS) -> None:
        self.period_s = 60.0 * float(save_every_minutes)
        self.names = signals
        self.signum: int | None = None
        self._old: dict[int, object] = {}
        self._last_save = _now()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: stop now, like Ctrl-C
            raise Preempted(signum, None)
        self.signum = signum

    def __enter__(self) -> StopGuard:
        if threading.current_thread() is threading.main_thread():
            for name in self.names:
                num = getattr(signal, name, None)
                if num is not None:
                    self._old[num] = signal.signal(num, self._handle)
        self._last_save = _now()
        return self

    def __exit__(self, *exc) -> None:
        for num, old in self._old.items():
            signal.signal(num, old)
        self._old = {}

    def saved(self) -> None:
        """Restart the checkpoint clock (call after every checkpoint)."""
        self._last_save = _now()

    def poll(self, accelerator=None) -> tuple[bool, int | None]:
        """At a step boundary: (a timed checkpoint is due, the signal number of a stop request or None).

        With several processes the answers are combined (any process's signal stops all; the main process's
        clock decides the timed checkpoint) so that all take the same branch of the collective save.
        """
        due = self.period_s > 0 and _now() - self._last_save >= self.period_s
        sig = self.signum or 0
        if accelerator is not None and accelerator.num_processes > 1:
            main = accelerator.is_main_process
            vec = torch.tensor([float(due and main), float(sig)], device=accelerator.device)
            vec = accelerator.gather(vec.unsqueeze(0)).reshape(-1, 2).amax(0)  # (2,): max over processes
            due, sig = bool(vec[0] > 0), int(vec[1])
        return due, (sig or None)

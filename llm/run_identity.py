"""A run's identity: pure functions of its config, shared by the checkpoint code and the run-folder policy.

A run folder holds one run. Its *identity* is the flattened config (``section.field`` keys) less the fields that
are safe to change between the two halves of a run (:data:`SAFE_TO_CHANGE`, e.g. ``max_steps``); :func:`run_id`
hashes it, :func:`identity_diff` names the fields in which two identities differ. :func:`disk_full_error` turns
the ways a full disk surfaces into one line naming what was being written.

This module is a leaf: it imports nothing of the project at import time, so that :mod:`llm.checkpoint` (which
stamps each checkpoint with its run id) and :mod:`llm.runfolder` (which imports the checkpoint code to look into
a folder) both import it and never each other.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SAFE_TO_CHANGE", "RunFolderError", "default_identity", "disk_full_error", "identity", "identity_diff",
           "run_id"]

SAFE_TO_CHANGE = frozenset({
    "max_steps", "output_dir", "resume", "overwrite", "progress", "tensorboard", "report_to", "save_every",
    "save_every_minutes", "keep_checkpoints", "cache_dir", "eval_every", "eval_samples", "eval_temperature"})
"""Config fields that may differ between a checkpoint and the run resuming it: the length of the run, where and
how it logs and saves, and the held-out evaluation (which draws from its own seeds, not the training RNG).
With a linear or cosine LR schedule a new ``max_steps`` stretches the rest of the schedule."""


class RunFolderError(ValueError):
    """A user-fixable problem with the run folder (printed as one line by the command line, exit status 2)."""


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that make a run this run: the flattened config (``section.field`` keys) less :data:`SAFE_TO_CHANGE`."""
    return {k: v for k, v in sorted(_flat(config).items()) if k not in SAFE_TO_CHANGE}


def run_id(config: Mapping[str, Any]) -> str:
    """A short hash of :func:`identity`; two configs share it exactly when their identities are equal."""
    return hashlib.sha256(json.dumps(identity(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_identity() -> dict[str, Any]:
    """:func:`identity` of the default ``llm.config.TrainConfig``: what a field absent from a saved config counts as.

    The one import of the project here, made on call: ``llm.config`` never imports this module, so no cycle.
    Callers that hold the defaults already pass them to :func:`identity_diff` instead.
    """
    from llm.config import TrainConfig

    return identity(TrainConfig().to_dict())


def identity_diff(saved: Mapping[str, Any], current: Mapping[str, Any],
                  defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``field: saved -> current`` for every identity field that differs (fields new on one side included).

    A field absent on one side (a config field added since the checkpoint was written) counts as its default
    value, so a run saved before a new field existed resumes as long as the field keeps its default.

    Args:
        saved: the saved run's config (nested dict).
        current: this run's config (nested dict).
        defaults: the default config (nested dict, e.g. ``TrainConfig().to_dict()``) whose values absent fields
            take; None = :func:`default_identity`. A field absent on one side and from ``defaults`` is reported
            as ``(absent)``.
    """
    a, b = identity(saved), identity(current)
    base = default_identity() if defaults is None else identity(defaults)
    missing = object()
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, base.get(k, missing)), b.get(k, base.get(k, missing))
        if va != vb:
            out.append(f"{k}: {'(absent)' if va is missing else repr(va)} -> {'(absent)' if vb is missing else repr(vb)}")
    return out


def disk_full_error(err: BaseException, what: str, where: str | Path) -> BaseException:
    """The error to raise for ``err``, raised while writing ``what`` to ``where``: one line when the disk is full.

    A full disk surfaces as ``OSError`` (errno ENOSPC, or EDQUOT for a quota) from Python's own writes, and as
    ``RuntimeError('... unexpected pos N vs M')`` or ``'basic_ios::clear: iostream error'`` from ``torch.save``,
    whose writer checks only that a write was short. Other errors come back unchanged.
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "no space left on device"
    elif isinstance(err, RuntimeError) and any(m in str(err) for m in _SHORT_WRITE):
        cause = "the write was cut short (no space left on device?)"
    else:
        return err
    try:
        free = f"{shutil.disk_usage(Path(where) if Path(where).exists() else Path(where).parent).free / 2**20:.0f} MiB"
    except OSError:
        free = "unknown"
    return RunFolderError(f"{cause} while writing {what} to {str(where)!r} (free: {free}); free some space or "
                          f"set output_dir on a larger disk, then resume with --resume")


# What torch.save's writer raises when the file system refuses bytes (it checks only that a write was short).
_SHORT_WRITE = ("unexpected pos", "basic_ios::clear", "iostream error", "file write failed", "No space left")

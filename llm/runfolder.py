"""Run-folder safety: one run per ``output_dir``, checked before any model is built.

A run folder holds one run: its ``config.yaml``, ``metrics.jsonl``, ``checkpoints/`` and ``final/``. Training
into a folder that already holds a run is refused unless the user says what to do with it:

- ``--resume`` continues it, and only when the saved run has the same *identity*: the config less the fields
  that are safe to change between the two halves of a run (:data:`SAFE_TO_CHANGE`, e.g. ``max_steps``);
- ``--overwrite`` deletes the run's files (only those a run writes; other files in the folder are kept).

:func:`prepare_run_folder` also turns the faults of the folder itself (a file, a read-only place, a parent that
is a file) into one line naming the folder, before minutes are spent building a model or a warm start.
:func:`disk_full_error` turns the ways a full disk surfaces (``OSError`` ENOSPC, torch's "unexpected pos") into
one line naming what was being written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILES", "SAFE_TO_CHANGE", "RunFolderError", "describe_run", "disk_full_error", "identity",
           "identity_diff", "prepare_run_folder", "run_id", "saved_identity"]

SAFE_TO_CHANGE = frozenset({
    "max_steps", "output_dir", "resume", "overwrite", "progress", "tensorboard", "report_to", "save_every",
    "save_every_minutes", "keep_checkpoints", "cache_dir", "eval_every", "eval_samples", "eval_temperature"})
"""Config fields that may differ between a checkpoint and the run resuming it: the length of the run, where and
how it logs and saves, and the held-out evaluation (which draws from its own seeds, not the training RNG).
With a linear or cosine LR schedule a new ``max_steps`` stretches the rest of the schedule."""

RUN_FILES = ("metrics.jsonl", "config.yaml", "initial_eval.json", "checkpoints", "final", "final_merged", "tb",
             "wandb", "mlruns", ".tmp-final", ".old-final", ".tmp-final_merged", ".old-final_merged")
"""What a run writes into its folder (with the LoRA merge and the wandb / mlflow trackers' logs); ``--overwrite``
deletes these and nothing else."""


class RunFolderError(ValueError):
    """A user-fixable problem with the run folder (printed as one line by the command line, exit status 2)."""


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The fields that make a run this run: the flattened config (``section.field`` keys) less :data:`SAFE_TO_CHANGE`."""
    return {k: v for k, v in sorted(_flat(config).items()) if k not in SAFE_TO_CHANGE}


def run_id(config: dict[str, Any]) -> str:
    """A short hash of :func:`identity`; two configs share it exactly when their identities are equal."""
    return hashlib.sha256(json.dumps(identity(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _defaults() -> dict[str, Any]:
    from llm.config import TrainConfig

    return identity(TrainConfig().to_dict())


def identity_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``field: saved -> current`` for every identity field that differs (fields new on one side included).

    A field absent on one side (a config field added since the checkpoint was written) counts as its default
    value, so a run saved before a new field existed resumes as long as the field keeps its default.
    """
    a, b = identity(saved), identity(current)
    missing = object()
    defaults = _defaults()
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, defaults.get(k, missing)), b.get(k, defaults.get(k, missing))
        if va != vb:
            out.append(f"{k}: {'(absent)' if va is missing else repr(va)} -> {'(absent)' if vb is missing else repr(vb)}")
    return out


def saved_identity(out_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The config of the run held by a folder and where it was read: the newest checkpoint whose config can be read,
    else ``config.yaml``; None when neither exists."""
    from llm.checkpoint import checkpoint_config, list_checkpoints

    for ckpt in reversed(list_checkpoints(out_dir)):
        cfg = checkpoint_config(ckpt)
        if cfg is not None:
            return cfg, str(ckpt)
    path = out_dir / "config.yaml"
    if path.is_file():
        import yaml

        try:
            cfg = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            return None
        if isinstance(cfg, dict):
            return cfg, str(path)
    return None


def describe_run(out_dir: Path) -> str | None:
    """What of a run the folder holds (e.g. "12 metrics rows, checkpoints step-10, final/"), or None when nothing
    (no metrics row, checkpoint or final model)."""
    from llm.checkpoint import list_checkpoints

    parts = []
    metrics = out_dir / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size > 0:
        with metrics.open("rb") as fh:
            parts.append(f"{sum(1 for line in fh if line.strip())} metrics rows")
    ckpts = list_checkpoints(out_dir)
    if ckpts:
        parts.append(f"checkpoints {', '.join(p.name for p in ckpts)}")
    parts += [f"{name}/" for name in ("final", "final_merged") if (out_dir / name).is_dir()]
    # a config.yaml alone (a run that failed before its first step) holds nothing to lose: not a run
    return ", ".join(parts) or None


def _writable(out_dir: Path) -> None:
    """Create the folder and write (then remove) one small file in it; one line naming the folder otherwise."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"config field `output_dir` = {str(out_dir)!r} is a file, not a folder; choose another "
                             f"output_dir")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create output_dir {str(out_dir)!r}: {err.strerror or err}; choose a folder "
                             f"you can write to") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-") as fh:
            fh.write(b"x")
            fh.flush()
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full_error(err, "a test file", out_dir) from None
        raise RunFolderError(f"output_dir {str(out_dir)!r} is not writable: {err.strerror or err}; choose a folder "
                             f"you can write to") from None


def prepare_run_folder(config: dict[str, Any], *, resume: bool, overwrite: bool, main_process: bool = True) -> None:
    """Check (and with ``overwrite`` clear) the run folder before anything is built.

    Args:
        config: The run's config as a nested dict (``TrainConfig.to_dict()``).
        resume: Continue the run in the folder (its identity must equal this config's).
        overwrite: Delete the run in the folder first (only the files of :data:`RUN_FILES`).
        main_process: Only the main process deletes; the others only check.

    Raises:
        RunFolderError: The folder is a file, cannot be written, holds another run without ``resume`` /
            ``overwrite``, or holds a run whose identity differs (the differing fields are named).
    """
    out_dir = Path(config["output_dir"])
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other: resume continues the run in output_dir, "
                             "overwrite deletes it")
    _writable(out_dir)
    if overwrite and not main_process:  # the main process is deleting the folder's run right now
        return
    held = describe_run(out_dir)
    if held is None:
        return
    if overwrite:
        for name in RUN_FILES:
            p = out_dir / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        return
    if not resume:
        raise RunFolderError(f"output_dir {str(out_dir)!r} holds another run ({held}); pass --resume to continue it, "
                             f"--overwrite to replace it, or choose another output_dir")
    saved = saved_identity(out_dir)
    if saved is None:
        return
    diff = identity_diff(saved[0], config)
    if diff:
        raise RunFolderError(f"--resume: the run in {str(out_dir)!r} ({saved[1]}) has a different config: "
                             f"{'; '.join(diff)}; resume with the same values, or use another output_dir")


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

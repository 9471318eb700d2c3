"""Run-folder safety: one run per ``output_dir``, checked before any model is built.

A run folder holds one run: its ``config.yaml``, ``metrics.jsonl``, ``checkpoints/`` and ``final/``. Training
into a folder that already holds a run is refused unless the user says what to do with it:

- ``--resume`` continues it, and only when the saved run has the same *identity*: the config less the fields
  that are safe to change between the two halves of a run (:data:`SAFE_TO_CHANGE`, e.g. ``max_steps``);
- ``--overwrite`` deletes the run's files (only those a run writes; other files in the folder are kept).

:func:`prepare_run_folder` also turns the faults of the folder itself (a file, a read-only place, a parent that
is a file) into one line naming the folder, before minutes are spent building a model or a warm start.
The run's identity itself (:func:`run_id`, :func:`identity_diff`, :func:`disk_full_error`: pure functions of the
config) lives in :mod:`llm.run_identity`, which the checkpoint code imports too; this module imports both and is
imported by neither.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm.checkpoint import checkpoint_config, list_checkpoints
from llm.run_identity import (  # re-exported: the run identity's names as they were before their module existed
    SAFE_TO_CHANGE,
    RunFolderError,
    disk_full_error,
    identity,
    identity_diff,
    run_id,
)

__all__ = ["RUN_FILES", "SAFE_TO_CHANGE", "RunFolderError", "describe_run", "disk_full_error", "identity",
           "identity_diff", "prepare_run_folder", "run_id", "saved_identity"]

RUN_FILES = ("metrics.jsonl", "config.yaml", "initial_eval.json", "checkpoints", "final", "final_merged", "tb",
             "wandb", "mlruns", ".tmp-final", ".old-final", ".tmp-final_merged", ".old-final_merged")
"""What a run writes into its folder (with the LoRA merge and the wandb / mlflow trackers' logs); ``--overwrite``
deletes these and nothing else."""


def saved_identity(out_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The config of the run held by a folder and where it was read: the newest checkpoint whose config can be read,
    else ``config.yaml``; None when neither exists."""
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


def prepare_run_folder(config: dict[str, Any], *, resume: bool, overwrite: bool, main_process: bool = True,
                       defaults: Mapping[str, Any] | None = None) -> None:
    """Check (and with ``overwrite`` clear) the run folder before anything is built.

    Args:
        config: The run's config as a nested dict (``TrainConfig.to_dict()``).
        resume: Continue the run in the folder (its identity must equal this config's).
        overwrite: Delete the run in the folder first (only the files of :data:`RUN_FILES`).
        main_process: Only the main process deletes; the others only check.
        defaults: The default config (nested dict) whose values the fields absent from the saved run's config
            take (see :func:`identity_diff`); None = the default ``TrainConfig``'s.

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
    diff = identity_diff(saved[0], config, defaults)
    if diff:
        raise RunFolderError(f"--resume: the run in {str(out_dir)!r} ({saved[1]}) has a different config: "
                             f"{'; '.join(diff)}; resume with the same values, or use another output_dir")

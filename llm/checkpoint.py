"""Atomic, resumable checkpoints of a GRPO run.

A checkpoint is the folder ``output_dir/checkpoints/step-XXXXXXXX`` holding

- what ``accelerate.Accelerator.save_state`` writes: model, optimizer and LR-scheduler state (sharded under
  FSDP / DeepSpeed) and the RNG states of every process (python ``random``, numpy, torch, CUDA);
- ``trainer_state.pt``: the global step, the ``aent.EntropyControl`` state (coefficient controllers), the
  metrics rows so far, the torch generator state of the sampler and the run config.

It is written into ``checkpoints/.tmp-step-XXXXXXXX`` first and renamed with ``os.replace`` only once complete,
so a run killed while saving leaves the previous checkpoint as the latest one. Multi-node runs need
``output_dir`` on storage every node sees (all processes write into the same folder).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """Folder of the checkpoint taken after global step ``step``."""
    return Path(output_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders of an interrupted save are ignored)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name) and (p / TRAINER_STATE).is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The most recent complete checkpoint of a run, or None when there is none."""
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def save_checkpoint(accelerator, output_dir: str | Path, step: int, *, control, metrics: list[dict[str, Any]],
                    generator: torch.Generator | None = None, config: dict[str, Any] | None = None,
                    keep: int = 2) -> Path:
    """Write a checkpoint atomically; every process must call this (the model state may be sharded).

    Args:
        accelerator: The run's ``accelerate.Accelerator`` (model, optimizer and scheduler went through prepare).
        output_dir: Run folder.
        step: Global steps completed.
        control: The ``aent.EntropyControl`` (its ``state_dict()`` is saved).
        metrics: Metric rows of the steps so far.
        generator: Optional torch generator whose state is saved too.
        config: The run config as a plain dict (saved for reference).
        keep: Number of most recent checkpoints to keep (>= 1); older ones are deleted.

    Returns:
        The final checkpoint folder.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(f".tmp-{final.name}")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # safe_serialization=False: safetensors refuses the tied embedding / lm_head weights of small models.
    accelerator.save_state(str(tmp), safe_serialization=False)
    if accelerator.is_main_process:
        state = {"step": int(step), "control": control.state_dict(), "metrics": list(metrics),
                 "generator": None if generator is None else generator.get_state(), "config": config}
        torch.save(state, tmp / TRAINER_STATE)
        if final.exists():  # re-saving the same step: move the old copy aside, then swap
            old = final.with_name(f".old-{final.name}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        for stale in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
        for leftover in final.parent.glob(".tmp-step-*"):  # debris of saves that were killed
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path, *, control,
                    generator: torch.Generator | None = None) -> dict[str, Any]:
    """Restore model, optimizer, scheduler, RNG states and the EntropyControl state from a checkpoint folder.

    Args:
        accelerator: The run's accelerator, after ``prepare`` (same objects, same order as when saving).
        path: A folder from :func:`save_checkpoint` (e.g. :func:`latest_checkpoint`).
        control: The ``aent.EntropyControl`` to restore in place.
        generator: Optional torch generator whose saved state is restored.

    Returns:
        The trainer state dict: {"step", "metrics", "config", ...}.
    """
    path = Path(path)
    if not (path / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a complete checkpoint (no {TRAINER_STATE})")
    accelerator.load_state(str(path))
    state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=False)
    control.load_state_dict(state["control"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
    return state

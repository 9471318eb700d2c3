"""Experiment trackers through accelerate's tracker classes: config field ``report_to`` (tensorboard, wandb, ...).

``metrics.jsonl`` stays the record of a run; the trackers mirror each of its rows (the numeric values) at the
same global step. Each name builds the matching ``accelerate.tracking`` class, the ones ``Accelerator(log_with=)``
uses, so a tracker behaves as in every accelerate-based trainer:

- ``tensorboard``: event files in ``OUTPUT_DIR/tb`` (on resume, events after the checkpoint are purged);
- ``wandb``: project ``$WANDB_PROJECT`` (default ``aent``), run files in ``OUTPUT_DIR/wandb``;
  ``WANDB_MODE=offline`` keeps everything local (``wandb sync`` uploads it later);
- ``trackio``: project ``$TRACKIO_PROJECT`` (default ``aent``), stored locally (``$TRACKIO_DIR``) unless a
  Space is configured; ``trackio show`` opens the dashboard;
- ``mlflow``: experiment ``$MLFLOW_EXPERIMENT_NAME`` (default ``aent``) at ``$MLFLOW_TRACKING_URI``, artifacts
  in ``OUTPUT_DIR/mlruns``.

The run is named after the last two parts of the output folder (``aent/seed-0``), and the resolved config goes
to every tracker but tensorboard (which has ``config.yaml`` beside it). Only the main process tracks.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

__all__ = ["TRACKERS", "flat_config", "make_trackers", "run_name"]

TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow"}
"""report_to name -> the package it needs."""


def run_name(output_dir: str | Path) -> str:
    """``aent/seed-0`` for ``runs/demo/llm/aent/seed-0``: the run's name in the trackers."""
    return "/".join(Path(output_dir).resolve().parts[-2:])


def flat_config(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim.lr": 1e-4, ...}``: a nested config as one level of scalars (lists become strings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, f"{key}."))
        else:
            out[key] = v if v is None or isinstance(v, (str, int, float, bool)) else str(v)
    return out


def _build(name: str, out_dir: Path, start_step: int, config: dict[str, Any]):
    from accelerate import tracking

    project, run = os.environ.get(f"{name.upper()}_PROJECT", "aent"), run_name(out_dir)
    if name == "tensorboard":
        return tracking.TensorBoardTracker("tb", out_dir, purge_step=start_step + 1)
    if name == "wandb":
        (out_dir / "wandb").mkdir(parents=True, exist_ok=True)
        return tracking.WandBTracker(project, name=run, dir=str(out_dir), config=config)
    if name == "trackio":
        if not hasattr(tracking, "TrackioTracker"):
            raise ValueError("report_to lists trackio, which needs accelerate >= 1.8 (pip install -U accelerate)")
        return tracking.TrackioTracker(project, name=run, config=config)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "aent")
    return tracking.MLflowTracker(experiment_name=experiment, logging_dir=str(out_dir / "mlruns"), run_name=run)


def make_trackers(names: tuple[str, ...] | list[str], output_dir: str | Path, *, start_step: int = 0,
                  config: dict[str, Any] | None = None) -> list:
    """Started ``accelerate.tracking`` trackers for ``names`` (a subset of :data:`TRACKERS`).

    Args:
        names: tracker names, e.g. ``("tensorboard", "wandb")``.
        output_dir: the run folder.
        start_step: steps already done (a resumed run); tensorboard drops its events after this step.
        config: the nested run config, stored with the run by the trackers that keep hyperparameters.

    Raises:
        ValueError: an unknown name, or a tracker whose package is not installed (the message names it).
    """
    from accelerate import PartialState

    PartialState()  # the trackers log through accelerate's logger (the trainer's Accelerator already made it)
    out_dir = Path(output_dir)
    flat = flat_config(config or {})
    trackers = []
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"config field `report_to` lists unknown tracker {name!r}; allowed: {', '.join(TRACKERS)}")
        package = TRACKERS[name]
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"config field `report_to` lists {name}, but the {package} package is not installed "
                             f"(pip install {package}; wandb and trackio come with aent[track])")
        tracker = _build(name, out_dir, start_step, flat)
        if hasattr(tracker, "start"):  # accelerate >= 1.5 starts trackers explicitly
            tracker.start()
        if name == "mlflow":
            tracker.store_init_configuration(flat)
        trackers.append(tracker)
    return trackers

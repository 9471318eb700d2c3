"""Overlay the learning curves of several runs (``python -m llm plot RUN_DIR ... --out FILE.png``).

Reads each run's metrics.jsonl and draws one panel per metric with ``aent.plotting.plot_metrics`` (the same
function the toy half uses). Run folders whose names differ only by a ``-seedK`` / ``_seedK`` suffix are one
method over several seeds and are drawn as mean +- std; a clamped-entropy band is shaded when every AEnt run
shares the same band.
"""

from __future__ import annotations

import re
from pathlib import Path

PLOT_KEYS = ["reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef", "response_len"]
_SEED = re.compile(r"[-_]seed\d+$")


def _band(run_dirs: list[Path]) -> tuple[float, float] | None:
    import yaml

    bands = set()
    for d in run_dirs:
        cfg = d / "config.yaml"
        if cfg.is_file():
            e = (yaml.safe_load(cfg.read_text()) or {}).get("entropy", {})
            if e.get("method") == "aent":
                bands.add((float(e["band_low"]), float(e["band_high"])))
    return bands.pop() if len(bands) == 1 else None


def plot_runs(runs: list[str | Path], out_png: str | Path, *, keys: list[str] | None = None,
              title: str | None = None) -> Path:
    """Write a PNG overlaying the runs' metrics; returns its path.

    Args:
        runs: Run folders (each holding metrics.jsonl).
        out_png: Output file.
        keys: Metric names, one panel each (default :data:`PLOT_KEYS`).
        title: Optional figure title.
    """
    from aent.plotting import plot_metrics
    from llm.metrics import read_metrics

    if not runs:
        raise ValueError("plot needs at least one run folder")
    dirs = [Path(r) for r in runs]
    grouped: dict[str, list] = {}
    for d in dirs:
        name = _SEED.sub("", d.resolve().name) or str(d)
        grouped.setdefault(name, []).append(read_metrics(d))
    data = {name: (v[0] if len(v) == 1 else v) for name, v in grouped.items()}
    band = _band(dirs)
    return plot_metrics(data, list(keys or PLOT_KEYS), out_png, title=title,
                        band=None if band is None else {"clamped_entropy": band})

"""Plumbing shared by the toy experiments: the result file, verdicts, seeds statistics, progress bars, figures.

Every experiment ``NAME`` writes ``NAME.json`` and ``NAME.png`` into its ``--out`` folder. The JSON always has
the keys of :func:`result_document` (documented in docs/toy/guide.md); ``verdicts`` is a list of
``{"claim": str, "verdict": "held" | "did not hold" | "inconclusive", "text": str}`` so that a report can render
them without hand-written prose.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["VERDICTS", "Timer", "compare", "mean_std", "progress", "pyplot", "result_document", "save_figure",
           "verdict", "write_result"]

VERDICTS = ("held", "did not hold", "inconclusive")
SCHEMA_VERSION = 1


def verdict(claim: str, status: str, text: str) -> dict[str, str]:
    """One verdict entry; ``status`` must be one of :data:`VERDICTS`."""
    if status not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {status!r}")
    return {"claim": claim, "verdict": status, "text": text}


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def compare(a: Sequence[float], b: Sequence[float], z: float = 2.0, min_effect: float = 0.01
            ) -> tuple[float, float, int]:
    """Difference of means d = mean(a) - mean(b), its standard error, and its sign at ``z`` standard errors.

    Returns:
        (d, se, sign): sign = +1 if d > max(z * se, min_effect), -1 if d < -max(z * se, min_effect), else 0
        (within noise, or too small to matter: two arms that both stay at 0 are equal, not different).
        se = sqrt(s_a^2/n_a + s_b^2/n_b) (Welch).
    """
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    se = math.sqrt(sa**2 / len(a) + sb**2 / len(b))
    d = ma - mb
    margin = max(z * se, min_effect)
    return d, se, 1 if d > margin else -1 if d < -margin else 0


def progress(total: int, desc: str, disable: bool = False):
    """A tqdm progress bar on stderr (the experiments' long loops)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, leave=False, dynamic_ncols=True)


class Timer:
    """Wall-clock seconds since construction (``Timer().elapsed``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def result_document(name: str, argv: Sequence[str], config: dict, results: dict, verdicts: list[dict],
                    wall_time_s: float) -> dict:
    """The JSON document every experiment writes (schema in docs/toy/guide.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": name,
        "command": "python -m toy " + " ".join([name, *argv]),
        "config": config,
        "results": results,
        "verdicts": verdicts,
        "wall_time_s": round(wall_time_s, 3),
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
    }


def _clean(x):
    """JSON-safe copy: NaN / inf become None, numpy and torch scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_result(out: Path, name: str, document: dict) -> Path:
    """Write ``out/NAME.json`` (creating ``out``); returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(_clean(document), indent=1) + "\n")
    return path


def save_figure(fig, out: Path, name: str) -> Path:
    """Save a matplotlib figure as ``out/NAME.png`` (130 dpi) and close it; returns the path."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

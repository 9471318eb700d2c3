"""Learning-curve plots shared by the toy simulator and the LLM trainer.

Both halves log the same metric names (``step, reward_mean, accuracy, entropy, clamped_entropy, ent_coef, ...``,
one dict per global step), so one function overlays any of their runs. matplotlib is imported inside the
function with the non-interactive Agg backend, so ``import aent`` never pulls it in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

Band = tuple[float, float]


def _is_seed_list(run: Sequence) -> bool:
    """True when ``run`` is a list of per-seed metric lists rather than one list of step dicts."""
    return len(run) > 0 and not isinstance(run[0], Mapping)


def _curve(records: Sequence[Mapping], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) for ``key``; records without the key or with a non-finite value are skipped."""
    xs, ys = [], []
    for i, rec in enumerate(records):
        if key not in rec or rec[key] is None:
            continue
        y = float(rec[key])
        if not math.isfinite(y):
            continue
        xs.append(float(rec.get("step", i)))
        ys.append(y)
    return xs, ys


def _mean_std(seed_runs: Sequence[Sequence[Mapping]], key: str) -> tuple[list[float], list[float], list[float]]:
    """Mean and population std across seeds at every step that all seeds logged."""
    curves = [dict(zip(*_curve(r, key))) for r in seed_runs]
    common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    means, stds = [], []
    for x in common:
        vals = [c[x] for c in curves]
        mu = sum(vals) / len(vals)
        means.append(mu)
        stds.append(math.sqrt(sum((v - mu) ** 2 for v in vals) / len(vals)))
    return common, means, stds


def _band_for(band: Band | Mapping[str, Band] | None, key: str) -> Band | None:
    if band is None:
        return None
    if isinstance(band, Mapping):
        return band.get(key)
    return band


def plot_metrics(
    runs: Mapping[str, Sequence[Mapping] | Sequence[Sequence[Mapping]]],
    keys: Sequence[str],
    out_png: str | Path,
    *,
    title: str | None = None,
    band: Band | Mapping[str, Band] | None = None,
    log_keys: Sequence[str] = (),
) -> Path:
    """Overlay learning curves of several runs, one panel per metric key, and save a PNG.

    Args:
        runs: run name -> either one run (a list of per-step metric dicts, as in ``metrics.jsonl``) or several
            seeds of the same run (a list of such lists); several seeds are drawn as mean ± std (population)
            over the steps every seed logged. The x axis is each record's ``"step"`` (its index if absent).
            Records missing a key, or holding a non-finite value for it, are skipped for that panel.
        keys: metric names, one panel each (e.g. ``["accuracy", "entropy", "ent_coef"]``).
        out_png: output path; parent folders are created.
        title: optional figure title.
        band: optional horizontal band shaded on the panels: one ``(low, high)`` pair for every panel, or a
            mapping key -> ``(low, high)`` for some panels (e.g. the AEnt band on ``"clamped_entropy"``).
        log_keys: panels drawn on a log y axis (e.g. ``["entropy"]`` when one run's entropy explodes and would
            flatten the others); must be a subset of ``keys``.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: when ``runs`` or ``keys`` is empty, a band has ``low > high``, or a log key is not a key.
    """
    if not runs:
        raise ValueError("runs must map at least one run name to its metrics; got an empty mapping")
    if not keys:
        raise ValueError("keys must name at least one metric to plot; got an empty list")
    unknown = [k for k in log_keys if k not in keys]
    if unknown:
        raise ValueError(f"log_keys {unknown} are not among the plotted keys {list(keys)}")
    for key in keys:
        b = _band_for(band, key)
        if b is not None and (len(b) != 2 or float(b[0]) > float(b[1])):
            raise ValueError(f"band for {key!r} must be a (low, high) pair with low <= high; got {b!r}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(keys)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, run in runs.items():
            if _is_seed_list(run):
                xs, mu, sd = _mean_std(run, key)
                if not xs:
                    continue
                (line,) = ax.plot(xs, mu, label=f"{name} (n={len(run)})")
                ax.fill_between(xs, [m - s for m, s in zip(mu, sd)], [m + s for m, s in zip(mu, sd)],
                                color=line.get_color(), alpha=0.2, linewidth=0)
            else:
                xs, ys = _curve(run, key)
                if xs:
                    ax.plot(xs, ys, label=name)
        b = _band_for(band, key)
        if b is not None:
            ax.axhspan(float(b[0]), float(b[1]), color="grey", alpha=0.15, label="band")
        ax.set_title(f"{key} (log scale)" if key in log_keys else key)
        if key in log_keys:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

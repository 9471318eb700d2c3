"""Summarise the LLM comparison: curves over seeds, start/end numbers per method, and generated verdicts.

Every number the report prints about the LLM runs is computed here and written to ``llm/summary.json``; the
verdict rule is stated once (:func:`verdict`) and applied the same way to every comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from aent.summary import finite, series, tail_mean
from reproduce.findings import baseline_findings, mean_se, method_findings, verdict

__all__ = ["read_metrics", "summarise_llm", "verdict", "CURVE_KEYS", "mean_std", "saved_entropy_config"]

CURVE_KEYS = ("reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef", "response_len")
EVAL_PREFIX = "eval_"
LOG_KEYS = ("entropy", "clamped_entropy", "ent_coef")


def read_metrics(run_dir: Path) -> list[dict]:
    """Rows of ``run_dir/metrics.jsonl`` (one per global step), led by ``initial_eval.json`` as step 0 if present."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    if not rows:
        raise ValueError(f"{path} holds no metrics rows")
    # The held-out evaluation of the starting policy (before any RL step) is step 0 of the eval curves.
    initial = Path(run_dir) / "initial_eval.json"
    if initial.is_file():
        rows.insert(0, {"step": 0, **json.loads(initial.read_text())})
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for an empty list."""
    m, sd, _ = mean_se(values)
    return m, sd


def _tail_mean(sr: list[tuple[int, float]]) -> float | None:
    """Mean over the last quarter of the logged steps (rounded up, at least one): the 'final' value, less noisy
    than one step; None when nothing was logged."""
    return tail_mean([v for _, v in sr], 0.25, ceil=True) if sr else None


def _head(series: list[tuple[int, float]]) -> float | None:
    return series[0][1] if series else None


def _curve(runs: Mapping[int, list[dict]], key: str) -> dict:
    """Mean and std over seeds at every step logged by all seeds."""
    per_seed = [dict(series(rows, key)) for rows in runs.values()]
    steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    mean, std = [], []
    for st in steps:
        m, s = mean_std([d[st] for d in per_seed])
        mean.append(m)
        std.append(s)
    return {"step": steps, "mean": mean, "std": std}


def _eval_keys(runs: Mapping[int, list[dict]]) -> list[str]:
    keys: set[str] = set()
    for rows in runs.values():
        for r in rows:
            keys |= {k for k, v in r.items() if k.startswith(EVAL_PREFIX) and finite(v) is not None}
    return sorted(keys)


def _method_summary(runs: Mapping[int, list[dict]]) -> dict:
    summary: dict = {"seeds": sorted(runs), "n_seeds": len(runs), "steps": max(len(r) for r in runs.values())}
    stats: dict = {}
    for key in list(CURVE_KEYS) + _eval_keys(runs):
        per_seed = [series(rows, key) for rows in runs.values()]
        starts = [_head(sr) for sr in per_seed]
        # Training metrics end as the mean of the last quarter of steps; held-out ones at their last evaluation.
        ends = [(sr[-1][1] if sr else None) if key.startswith(EVAL_PREFIX) else _tail_mean(sr) for sr in per_seed]
        if all(v is None for v in ends):
            continue
        s_mean, s_std = mean_std(starts)
        e_mean, e_std = mean_std(ends)
        stats[key] = {"start_mean": s_mean, "start_std": s_std, "end_mean": e_mean, "end_std": e_std,
                      "start_per_seed": starts, "end_per_seed": ends}
    summary["metrics"] = stats
    summary["curves"] = {k: _curve(runs, k) for k in list(CURVE_KEYS) + _eval_keys(runs) if k in stats}
    return summary


def _accuracy_key(summary: dict) -> str:
    """The held-out accuracy metric when the runs logged one, else the training accuracy."""
    evals = [k for k in summary["metrics"] if k.startswith(EVAL_PREFIX)]
    for pref in ("eval_accuracy", "eval_pass@1"):
        if pref in evals:
            return pref
    return evals[0] if evals else "accuracy"


def saved_entropy_config(run_dir: Path) -> dict:
    """The ``entropy`` section of a run's saved ``config.yaml`` ({} when absent)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    return dict((yaml.safe_load(path.read_text()) or {}).get("entropy") or {})


def _samples_k(summary: dict) -> int | None:
    """k of the held-out ``eval_mean_at_k`` metric, when the runs logged one."""
    for key in summary["metrics"]:
        if key.startswith("eval_mean_at_"):
            return int(key.rsplit("_", 1)[1])
    return None


def summarise_llm(runs: Mapping[str, Mapping[int, Path]], method_entropy: Mapping[str, str],
                  out_json: Path, out_png: Path | None = None) -> dict:
    """Summarise ``runs[label][seed] = run_dir`` into ``out_json`` (and a curves figure into ``out_png``).

    ``method_entropy[label]`` is the aent method name of each label (``none``, ``aent``, ...), which selects the
    claims checked for it (:mod:`reproduce.findings`). The first label is the baseline.
    """
    labels = list(runs)
    if not labels:
        raise ValueError("no LLM runs to summarise")
    rows = {lab: {s: read_metrics(d) for s, d in runs[lab].items()} for lab in labels}
    per_method = {lab: _method_summary(rows[lab]) for lab in labels}
    base = labels[0]
    acc_key = _accuracy_key(per_method[base])
    k = _samples_k(per_method[base])
    findings = baseline_findings(base, per_method[base], rows[base], k)
    for lab in labels[1:]:
        ecfg = saved_entropy_config(next(iter(runs[lab].values())))
        findings += method_findings(lab, method_entropy.get(lab, lab), base, per_method[lab], per_method[base],
                                    rows[lab], ecfg, acc_key)

    summary = {"baseline": base, "accuracy_metric": acc_key, "samples_k": k,
               "methods": per_method, "method_entropy": dict(method_entropy), "findings": findings,
               "verdict_rule": "held / did not hold when the effect, over seeds, clears its threshold (0 unless "
                               "stated) by more than two standard errors in the expected / opposite direction; "
                               "inconclusive otherwise or with one seed"}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    if out_png is not None:
        plot_curves(per_method, out_png)
    return summary


def plot_curves(per_method: Mapping[str, dict], out_png: Path) -> None:
    """Mean ± std over seeds of the learning curves of every method, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = sorted({k for m in per_method.values() for k in m["curves"] if k.startswith(EVAL_PREFIX)})
    keys = [k for k in (*CURVE_KEYS, *evals) if any(k in m["curves"] for m in per_method.values())]
    cols = 3
    rows = max(1, math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for label, m in per_method.items():
            c = m["curves"].get(key)
            if not c or not c["step"]:
                continue
            lo = [a - b for a, b in zip(c["mean"], c["std"])]
            hi = [a + b for a, b in zip(c["mean"], c["std"])]
            (line,) = ax.plot(c["step"], c["mean"], label=label, marker="o" if len(c["step"]) < 6 else None)
            ax.fill_between(c["step"], lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_title(key)
        ax.set_xlabel("global step")
        # One arm whose entropy explodes would flatten every other curve: spread wide positive ranges on a log axis.
        vals = [v for m in per_method.values() for v in (m["curves"].get(key) or {}).get("mean", []) if v > 0]
        if key in LOG_KEYS and vals and max(vals) > 20 * min(vals):
            ax.set_yscale("log")
            ax.set_title(f"{key} (log scale)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if keys:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle("LLM comparison (mean ± std over seeds)")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)

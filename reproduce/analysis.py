"""Summarise the LLM comparison: curves over pairs, start/end numbers per method, and generated verdicts.

A run is keyed by its pair: ``(warm_start, seed)`` (``data.seed`` x run ``seed``), or a bare run seed when every
run shares one warm start. Every number the report prints about the LLM runs is computed here and written to
``llm/summary.json``; the verdicts follow the protocol of docs/protocol.md (:mod:`reproduce.findings`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from aent.summary import finite, series, tail_mean
from reproduce import findings as fd
from reproduce.findings import baseline_items, coefficient_finding, judge_items, mean_se, method_items

__all__ = ["read_metrics", "summarise_llm", "CURVE_KEYS", "mean_std", "pair_id", "saved_entropy_config", "saved_method"]

VERDICT_RULE = (
    "paired t test of the mean per-pair effect (a pair is one warm start x one run seed, shared by every method); "
    "held when the Holm-adjusted p (within the claim's family) is at most {alpha:g} and the mean lies at or beyond "
    "the claim's smallest effect of interest (SESOI) in the claimed direction; did not hold when the confidence "
    "interval (Bonferroni level within the family) lies wholly short of the SESOI; inconclusive otherwise or with "
    "one pair. SESOIs, fixed before the runs: held-out accuracy {acc:g}, greedy and mean@k gain of RL {gain:g}, "
    "training-reward rise {reward:g}, entropy {hfrac:g} x the baseline's mean step-1 entropy, collapse ratio "
    "{ratio:g}, starting entropy at least {bar:g} nats. Claims the setting was chosen to show are judged only on warm starts not used to choose it")


def pair_id(key) -> str:
    """``ws{W}-s{S}`` for a (warm start, seed) key, ``s{S}`` for a bare seed."""
    return f"ws{key[0]}-s{key[1]}" if isinstance(key, tuple) else f"s{key}"

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


def _curve(runs: Mapping[str, list[dict]], key: str) -> dict:
    """Mean and std over pairs at every step logged by all seeds."""
    per_seed = [dict(series(rows, key)) for rows in runs.values()]
    steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    mean, std = [], []
    for st in steps:
        m, s = mean_std([d[st] for d in per_seed])
        mean.append(m)
        std.append(s)
    return {"step": steps, "mean": mean, "std": std}


def _eval_keys(runs: Mapping[str, list[dict]]) -> list[str]:
    keys: set[str] = set()
    for rows in runs.values():
        for r in rows:
            keys |= {k for k, v in r.items() if k.startswith(EVAL_PREFIX) and finite(v) is not None}
    return sorted(keys)


def _method_summary(runs: Mapping[str, list[dict]]) -> dict:
    summary: dict = {"seeds": list(runs), "pairs": list(runs), "n_seeds": len(runs),
                     "steps": max(len(r) for r in runs.values())}
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


def saved_method(run_dir: Path) -> str:
    """The entropy method a run trained with, read from its saved ``config.yaml`` by the trainer's own loader
    (:func:`llm.config.load_config`), so a preset (``entropy.preset=threshold``) or a config file's own method
    counts as the run saw it."""
    from llm.config import load_config

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run never started; run the main job again to train it")
    return load_config(path).entropy.method


def _samples_k(summary: dict) -> int | None:
    """k of the held-out ``eval_mean_at_k`` metric, when the runs logged one."""
    for key in summary["metrics"]:
        if key.startswith("eval_mean_at_"):
            return int(key.rsplit("_", 1)[1])
    return None


def summarise_llm(runs: Mapping[str, Mapping], method_entropy: Mapping[str, str], out_json: Path,
                  out_png: Path | None = None, selection: Mapping | None = None) -> dict:
    """Summarise ``runs[label][pair] = run_dir`` into ``out_json`` (and a curves figure into ``out_png``).

    Args:
        runs: label -> pair -> run folder; a pair is ``(warm_start, seed)`` or a bare seed (one warm start).
        method_entropy: the aent method name of each label (``none``, ``aent``, ...), which selects the claims
            checked for it (:mod:`reproduce.findings`). The first label is the baseline.
        out_json: where the summary goes.
        out_png: the curves figure (optional).
        selection: what chose the setting and its arms: ``warm_starts``, ``seeds``, ``candidates`` (listed in
            the report); claims the setting was chosen to show are judged only on other warm starts.
    """
    labels = list(runs)
    if not labels:
        raise ValueError("no LLM runs to summarise")
    pair_ws = {pair_id(p): (p[0] if isinstance(p, tuple) else None) for lab in labels for p in runs[lab]}
    rows = {lab: {pair_id(p): read_metrics(d) for p, d in sorted(runs[lab].items())} for lab in labels}
    per_method = {lab: _method_summary(rows[lab]) for lab in labels}
    base = labels[0]
    acc_key = _accuracy_key(per_method[base])
    k = _samples_k(per_method[base])
    items = baseline_items(base, per_method[base], rows[base], k)
    extra = []
    for lab in labels[1:]:
        # each pair's own entropy section: AEnt's constants may be calibrated per warm start
        ecfgs = {pair_id(p): saved_entropy_config(d) for p, d in runs[lab].items()}
        method = method_entropy.get(lab, lab)
        items += method_items(lab, method, base, per_method[lab], per_method[base], rows[lab], ecfgs, acc_key)
        if method == "aent" and any(ecfgs.values()):
            extra.append(coefficient_finding(lab, rows[lab], ecfgs))
    selection = dict(selection or {})
    findings = judge_items(items, selection.get("warm_starts", ()), pair_ws)
    for rec in extra:  # the descriptions go after their method's claims
        if rec is not None:
            at = max((i for i, f in enumerate(findings) if f.get("method") == rec["method"]), default=len(findings))
            findings.insert(at + 1, rec)
    warm = sorted({w for w in pair_ws.values() if w is not None})
    seeds = sorted({p[1] if isinstance(p, tuple) else p for lab in labels for p in runs[lab]})
    summary = {"baseline": base, "accuracy_metric": acc_key, "samples_k": k,
               "methods": per_method, "method_entropy": dict(method_entropy), "findings": findings,
               "protocol": {"test": "paired t", "alpha": fd.ALPHA, "warm_starts": warm, "seeds": seeds,
                            "n_pairs": len(pair_ws), "selection": selection},
               "verdict_rule": VERDICT_RULE.format(alpha=fd.ALPHA, acc=fd.ACC_SESOI, gain=fd.MIN_GAIN,
                                                   reward=fd.REWARD_SESOI, hfrac=fd.ENTROPY_SESOI_FRAC,
                                                   ratio=fd.COLLAPSE_RATIO, bar=fd.START_ENTROPY_BAR)}
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

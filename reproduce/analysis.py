"""Summarise the LLM comparison: curves over seeds, start/end numbers per method, and generated verdicts.

Every number the report prints about the LLM runs is computed here and written to ``llm/summary.json``; the
verdict rule is stated once (:func:`verdict`) and applied the same way to every comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["read_metrics", "summarise_llm", "verdict", "CURVE_KEYS", "mean_std"]

CURVE_KEYS = ("reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef", "response_len")
EVAL_PREFIX = "eval_"
# What each method is expected to do relative to the baseline, per the papers (sign of the expected change).
EXPECTED = {
    "entropy_bonus": ("entropy", +1, "a fixed full-vocabulary entropy bonus keeps the entropy above plain GRPO's "
                      "(AEnt paper, arXiv 2509.03493, Sec. 3: it does, but with a large vocabulary it spends it on "
                      "irrelevant tokens)"),
    "aent": ("entropy", +1, "AEnt (clamped entropy + adaptive coefficient) keeps the entropy above plain GRPO's "
             "(arXiv 2509.03493)"),
    "pos_reweight": ("entropy", +1, "down-weighting positive-advantage tokens slows the entropy decline "
                     "(arXiv 2511.05993, Sec. 5)"),
}


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


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for an empty list."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def verdict(diff: float, se: float, expected_sign: int, n_seeds: int) -> str:
    """held / did not hold / inconclusive for an effect ``diff`` with standard error ``se`` (over seeds).

    The rule: an effect counts only when it is larger than two standard errors of the difference of means
    (and, with a single seed, where no spread can be estimated, nothing counts: "inconclusive").
    """
    if n_seeds < 2 or not math.isfinite(diff) or not math.isfinite(se):
        return "inconclusive"
    if abs(diff) <= 2 * se or diff == 0:
        return "inconclusive"
    return "held" if diff * expected_sign > 0 else "did not hold"


def _series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), v) for r in rows if (v := _num(r.get(key))) is not None]


def _tail_mean(series: list[tuple[int, float]], frac: float = 0.25) -> float | None:
    """Mean over the last ``frac`` of the logged steps (at least one): the 'final' value, less noisy than one step."""
    if not series:
        return None
    k = max(1, int(math.ceil(len(series) * frac)))
    vals = [v for _, v in series[-k:]]
    return sum(vals) / len(vals)


def _head(series: list[tuple[int, float]]) -> float | None:
    return series[0][1] if series else None


def _curve(runs: Mapping[int, list[dict]], key: str) -> dict:
    """Mean and std over seeds at every step logged by all seeds."""
    per_seed = [dict(_series(rows, key)) for rows in runs.values()]
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
            keys |= {k for k, v in r.items() if k.startswith(EVAL_PREFIX) and _num(v) is not None}
    return sorted(keys)


def _method_summary(runs: Mapping[int, list[dict]]) -> dict:
    summary: dict = {"seeds": sorted(runs), "n_seeds": len(runs), "steps": max(len(r) for r in runs.values())}
    stats: dict = {}
    for key in list(CURVE_KEYS) + _eval_keys(runs):
        series = [_series(rows, key) for rows in runs.values()]
        starts = [_head(sr) for sr in series]
        # Training metrics end as the mean of the last quarter of steps; held-out ones at their last evaluation.
        ends = [(sr[-1][1] if sr else None) if key.startswith(EVAL_PREFIX) else _tail_mean(sr) for sr in series]
        if all(v is None for v in ends):
            continue
        s_mean, s_std = mean_std(starts)
        e_mean, e_std = mean_std(ends)
        stats[key] = {"start_mean": s_mean, "start_std": s_std, "end_mean": e_mean, "end_std": e_std,
                      "start_per_seed": starts, "end_per_seed": ends}
    summary["metrics"] = stats
    summary["curves"] = {k: _curve(runs, k) for k in list(CURVE_KEYS) + _eval_keys(runs) if k in stats}
    return summary


def _diff(a: dict, b: dict) -> tuple[float, float]:
    """Difference of end means (a - b) and its standard error from the two seed spreads."""
    n_a, n_b = len(a["end_per_seed"]), len(b["end_per_seed"])
    diff = a["end_mean"] - b["end_mean"]
    se = math.sqrt(a["end_std"] ** 2 / max(n_a, 1) + b["end_std"] ** 2 / max(n_b, 1))
    return diff, se


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3f}"


def _accuracy_key(summary: dict) -> str:
    """The held-out accuracy metric when the runs logged one, else the training accuracy."""
    evals = [k for k in summary["metrics"] if k.startswith(EVAL_PREFIX)]
    for pref in ("eval_accuracy", "eval_pass@1"):
        if pref in evals:
            return pref
    return evals[0] if evals else "accuracy"


def summarise_llm(runs: Mapping[str, Mapping[int, Path]], method_entropy: Mapping[str, str],
                  out_json: Path, out_png: Path | None = None) -> dict:
    """Summarise ``runs[label][seed] = run_dir`` into ``out_json`` (and a curves figure into ``out_png``).

    ``method_entropy[label]`` is the aent method name of each label (``none``, ``aent``, ...), which selects the
    claim checked for it. The first label is the baseline.
    """
    labels = list(runs)
    if not labels:
        raise ValueError("no LLM runs to summarise")
    per_method = {lab: _method_summary({s: read_metrics(d) for s, d in runs[lab].items()}) for lab in labels}
    base = labels[0]
    acc_key = _accuracy_key(per_method[base])
    findings = []

    b = per_method[base]
    if "entropy" in b["metrics"]:
        ent = b["metrics"]["entropy"]
        changes = [e - s for e, s in zip(ent["end_per_seed"], ent["start_per_seed"])
                   if e is not None and s is not None]
        c_mean, c_std = mean_std(changes)
        se = c_std / math.sqrt(max(len(changes), 1))
        v = verdict(c_mean, se, -1, len(changes))
        findings.append({
            "claim": f"Without entropy control ({base}) the policy entropy falls during training (entropy collapse)",
            "verdict": v, "effect": c_mean, "se": se, "metric": "entropy",
            "text": (f"{base}: token entropy went from {_fmt(ent['start_mean'])} to {_fmt(ent['end_mean'])} nats "
                     f"(change {_fmt(c_mean)} ± {_fmt(c_std)} over {len(changes)} seeds): {v}.")})

    if acc_key.startswith(EVAL_PREFIX) and acc_key in b["metrics"]:
        acc = b["metrics"][acc_key]
        gains = [e - s for e, s in zip(acc["end_per_seed"], acc["start_per_seed"])
                 if e is not None and s is not None]
        g_mean, g_std = mean_std(gains)
        se = g_std / math.sqrt(max(len(gains), 1))
        v = verdict(g_mean, se, +1, len(gains))
        findings.append({
            "claim": f"RL ({base}) raises held-out {acc_key} above the warm-started policy's", "verdict": v,
            "effect": g_mean, "se": se, "metric": acc_key,
            "text": (f"{base}: held-out {acc_key} went from {_fmt(acc['start_mean'])} to {_fmt(acc['end_mean'])} "
                     f"(change {_fmt(g_mean)} ± {_fmt(g_std)} over {len(gains)} seeds): {v}.")})

    for lab in labels[1:]:
        m = per_method[lab]
        method = method_entropy.get(lab, lab)
        metric, sign, claim = EXPECTED.get(method, ("entropy", +1, f"{lab} keeps the entropy above {base}'s"))
        if metric in m["metrics"] and metric in b["metrics"]:
            d, se = _diff(m["metrics"][metric], b["metrics"][metric])
            v = verdict(d, se, sign, min(m["n_seeds"], b["n_seeds"]))
            findings.append({
                "claim": claim, "verdict": v, "effect": d, "se": se, "metric": metric, "method": lab,
                "text": (f"{lab} vs {base}: final {metric} {_fmt(m['metrics'][metric]['end_mean'])} vs "
                         f"{_fmt(b['metrics'][metric]['end_mean'])} (difference {_fmt(d)}, standard error "
                         f"{_fmt(se)}): {v}.")})
        if acc_key in m["metrics"] and acc_key in b["metrics"]:
            d, se = _diff(m["metrics"][acc_key], b["metrics"][acc_key])
            v = verdict(d, se, +1, min(m["n_seeds"], b["n_seeds"]))
            findings.append({
                "claim": f"{lab} reaches a higher final {acc_key} than {base}", "verdict": v, "effect": d, "se": se,
                "metric": acc_key, "method": lab,
                "text": (f"{lab} vs {base}: final {acc_key} {_fmt(m['metrics'][acc_key]['end_mean'])} vs "
                         f"{_fmt(b['metrics'][acc_key]['end_mean'])} (difference {_fmt(d)}, standard error "
                         f"{_fmt(se)}): {v}.")})

    summary = {"baseline": base, "accuracy_metric": acc_key, "methods": per_method,
               "method_entropy": dict(method_entropy), "findings": findings,
               "verdict_rule": "held / did not hold when the difference of seed means exceeds two standard errors "
                               "in the expected / opposite direction; inconclusive otherwise or with one seed"}
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

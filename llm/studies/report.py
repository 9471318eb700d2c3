"""A study's outputs: the generated verdict per claim, the figure, the JSON record and its markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aent.summary import fmt
from llm.studies.spec import PLOT_KEYS, Claim
from llm.studies.summaries import SUMMARIES, eval_key
from llm.studies.verdict import paired_verdict

__all__ = ["judge", "jsonable", "plot_study", "record_markdown"]


def judge(claims: Sequence[Claim], runs: dict[str, list[list[dict]]]) -> list[dict[str, Any]]:
    """A generated verdict per claim: held / did not hold / inconclusive at this scale, with the numbers."""
    out = []
    for c in claims:
        if c.arm not in runs or (c.baseline is not None and c.baseline not in runs):
            out.append({"claim": c.text, "key": c.key, "verdict": "inconclusive",
                        "text": f"{c.text}: inconclusive (arms {c.arm!r} / {c.baseline!r} were not both run)."})
            continue
        fn = SUMMARIES[c.metric]
        xs = [fn(r) for r in runs[c.arm]]
        ys = [fn(r) for r in runs[c.baseline]] if c.baseline else [0.0] * len(xs)
        diffs = [x - y for x, y in zip(xs, ys)]
        v = paired_verdict(diffs, c.sign)
        lhs = f"{c.metric}[{c.arm}]" + (f" - {c.metric}[{c.baseline}]" if c.baseline else "")
        want = ">" if c.sign > 0 else "<"
        if v.n < 2:
            why = "only one seed, so there is no spread to compare the effect with"
        elif v.label == "inconclusive":
            why = f"|t| = {abs(v.t):.2f} <= {v.t_crit:.2f}: within seed noise"
        else:
            why = f"|t| = {abs(v.t):.2f} > {v.t_crit:.2f}"
        text = (f"{c.text} -> {v.label.upper()} at this scale. {c.what or lhs} (claim: {want} 0): "
                f"{fmt(v.mean)} (mean over {v.n} seeds; across-seed sd {fmt(v.sd).lstrip('+')}; "
                f"effect/sd {fmt(v.effect_over_sd, 2)}; paired t {fmt(v.t, 2)}); {why}. "
                f"Per seed: {', '.join(fmt(d) for d in diffs)}.")
        out.append({"claim": c.text, "key": c.key, "verdict": v.label, "text": text, "metric": c.metric,
                    "arm": c.arm, "baseline": c.baseline, "sign": c.sign, "effect": v.mean, "sd": v.sd,
                    "effect_over_sd": v.effect_over_sd, "t": v.t, "t_crit": v.t_crit, "n_seeds": v.n,
                    "per_seed": diffs})
    return out


def plot_study(runs: dict[str, list[list[dict]]], out_png: Path, title: str) -> Path:
    """Mean +- sd across seeds per arm: entropy, clamped entropy, reward, held-out metrics, entropy split."""
    from aent.plotting import plot_metrics

    rows = [r for seeds in runs.values() for s in seeds for r in s]
    keys = list(PLOT_KEYS)
    acc, pas = eval_key(rows, "accuracy"), eval_key(rows, "pass")
    keys = [(acc or "eval_accuracy") if k == "eval_accuracy" else (pas or "eval_pass") if k == "eval_pass"
            else k for k in keys]
    present = {k for r in rows for k in r}
    keys = [k for k in keys if k in present] or ["entropy"]
    return plot_metrics(runs, keys, out_png, title=title)


def jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def record_markdown(record: dict[str, Any]) -> str:
    """Markdown of a study record: command, per-arm summaries (mean +- sd over seeds) and generated verdicts."""
    s = record["summary"]
    cols = ("entropy_change", "final_entropy", "final_reward", "final_eval_accuracy", "final_eval_pass", "mean_dh_pos",
            "mean_dh_neg", "mean_cov_dh_pos", "mean_cov_dh_neg")
    lines = [f"**{record['title']}** ({record['seeds']} seeds x {record['steps']} steps, "
             f"{record['wall_s']:.0f} s wall)", "",
             "| arm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm in s:
        cells = []
        for c in cols:
            m, sd = s[arm][c]["mean"], s[arm][c]["sd"]
            cells.append("–" if m is None or not math.isfinite(m) else
                         fmt(m) + ("" if sd is None or not math.isfinite(sd) else f" ± {fmt(sd).lstrip('+')}"))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", *[f"- **{v['verdict']}**: {v['text']}" for v in record["verdicts"]]]
    return "\n".join(lines) + "\n"

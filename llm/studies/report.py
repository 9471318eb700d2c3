"""A study's outputs: the generated verdict per claim, the figure, the JSON record and its markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aent.summary import fmt
from llm.studies.spec import PLOT_KEYS, Claim
from llm.studies.summaries import SUMMARIES, eval_key
from llm.studies.verdict import ENTROPY_SESOI_FRAC, Hypothesis, judge_family

__all__ = ["judge", "jsonable", "plot_study", "record_markdown", "sesoi_of"]


def sesoi_of(claim: Claim, runs: dict[str, list[list[dict]]]) -> float:
    """The claim's SESOI: its number, or its rule applied to the reference arm's step-1 entropy (before any update,
    so no outcome enters it)."""
    if not isinstance(claim.sesoi, str):
        return float(claim.sesoi)
    if claim.sesoi == "sign":
        return 0.0
    if claim.sesoi not in ("entropy", "entropy_per_step"):
        raise ValueError(f"claim {claim.key!r}: sesoi must be a number, 'entropy', 'entropy_per_step' or 'sign', "
                         f"got {claim.sesoi!r}")
    ref = [[row for row in rows if row.get("step", 0) >= 1] for rows in runs.get(claim.baseline or claim.arm, [])]
    h = [r[0].get("entropy_before", r[0].get("entropy")) for r in ref if r]  # step 1 of each seed
    h = [float(v) for v in h if isinstance(v, (int, float)) and math.isfinite(v)]
    value = ENTROPY_SESOI_FRAC * sum(h) / len(h) if h else math.nan
    if claim.sesoi == "entropy_per_step":
        steps = max((len(r) for r in ref), default=0)
        value = value / steps if steps else math.nan
    return value


def judge(claims: Sequence[Claim], runs: dict[str, list[list[dict]]]) -> list[dict[str, Any]]:
    """A generated verdict per claim by the protocol (docs/protocol.md): paired t over seeds, the claim's SESOI,
    Holm over the study's claims (one family); held / did not hold / inconclusive at this scale."""
    present = [c for c in claims if c.arm in runs and (c.baseline is None or c.baseline in runs)]
    diffs, hyps = {}, []
    for c in present:
        fn = SUMMARIES[c.metric]
        xs = [fn(r) for r in runs[c.arm]]
        ys = [fn(r) for r in runs[c.baseline]] if c.baseline else [0.0] * len(xs)
        diffs[c.key] = [x - y for x, y in zip(xs, ys)]
        sesoi = sesoi_of(c, runs)
        hyps.append(Hypothesis(c.key, c.text, c.sign, sesoi if math.isfinite(sesoi) else 0.0, "study"))
    judged = {j.key: j for j in judge_family(hyps, diffs)}
    out = []
    for c in claims:
        if c.key not in judged:
            out.append({"claim": c.text, "key": c.key, "verdict": "inconclusive",
                        "text": f"{c.text}: inconclusive (arms {c.arm!r} / {c.baseline!r} were not both run)."})
            continue
        j = judged[c.key]
        t = j.test
        lhs = f"{c.metric}[{c.arm}]" + (f" - {c.metric}[{c.baseline}]" if c.baseline else "")
        want = ">=" if c.sign > 0 else "<="
        sd_ = t.sd if t.n > 1 else math.nan
        text = (f"{c.text} -> {j.label.upper()} at this scale. {c.what or lhs} (claim: {want} "
                f"{fmt(c.sign * j.sesoi) if j.sesoi else '0'}, the SESOI): {fmt(t.mean)} (mean over {t.n} seeds; "
                f"across-seed sd {fmt(sd_).lstrip('+')}; {100 * t.level:.4g}% CI [{fmt(t.ci[0])}, "
                f"{fmt(t.ci[1])}]; paired t {fmt(t.stat, 2)}, p {t.p:.3g}, Holm-adjusted {j.p_adj:.3g} over "
                f"{len(hyps)} claims); {j.reason}. Per seed: {', '.join(fmt(d) for d in diffs[c.key])}.")
        out.append({"claim": c.text, "key": c.key, "verdict": j.label, "text": text, "metric": c.metric,
                    "arm": c.arm, "baseline": c.baseline, "sign": c.sign, "effect": t.mean, "sd": sd_,
                    "effect_over_sd": t.mean / sd_ if sd_ and math.isfinite(sd_) else math.nan, "t": t.stat,
                    "p": t.p, "p_adj": j.p_adj, "ci": list(t.ci), "ci_level": t.level, "sesoi": j.sesoi,
                    "n_seeds": t.n, "per_seed": diffs[c.key]})
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

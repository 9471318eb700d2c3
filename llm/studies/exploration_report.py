"""The exploration study's report (markdown) and figure (PNG), from its summary (:func:`run_exploration`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from llm.studies.exploration_runs import run_dir

__all__ = ["plot_exploration", "report_markdown", "write_report"]


def _f(x, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}g}" if abs(x) < 1e-2 and x != 0 else f"{x:.{nd}f}"
    return str(x)


def _seeds_line(summary: Mapping) -> list[str]:
    plan = summary["plan"]
    sel = plan["selection"]
    recs = summary["records"]
    ver = sorted({(r["warm_start"], r["seed"]) for r in recs if r["role"] == "verdict"})
    return [f"- Selection (premise gate, GRPO only): warm starts {list(sel['warm_starts'])} x run seeds "
            f"{list(sel['seeds'])}" + ("" if plan["gate"] else " (gate not run in this invocation)") + ".",
            f"- Verdict pairs (warm start, seed) run: {ver or 'none'}; planned warm starts "
            f"{list(plan['warm_starts'])} x seeds {list(plan['seeds'])}. The two sets are disjoint."]


def _timing(summary: Mapping) -> list[str]:
    """Runs finished, wall seconds per run and per step (the machine's load included), runs missing."""
    walls = sorted(r["wall_s"] / max(1, r["steps"]) for r in summary["records"] if r.get("wall_s"))
    runs = sorted(r["wall_s"] for r in summary["records"] if r.get("wall_s"))
    out = [f"Runs in this summary: {len(summary['records'])}"
           + (f"; wall per run median {runs[len(runs) // 2]:.0f} s (range {runs[0]:.0f}-{runs[-1]:.0f} s), "
              f"per step median {walls[len(walls) // 2]:.2f} s" if runs else "") + "."]
    if summary.get("missing_runs"):
        out.append(f"Planned but not run in this summary: {len(summary['missing_runs'])} runs "
                   f"({', '.join('/'.join(map(str, m)) for m in summary['missing_runs'][:12])}"
                   + (", ..." if len(summary["missing_runs"]) > 12 else "") + "; arm/level/warm start/seed).")
    return out


def _carry_over(summary: Mapping) -> list[str]:
    """Per level with GRPO verdict runs: how many escaped, per warm start. The gate reads the selection warm start
    only; whether its trap carries over to the verdict warm starts is described here, never judged."""
    out = []
    for lv in sorted({r["level"] for r in summary["records"] if r["role"] == "verdict" and r["arm"] == "grpo"}):
        rs = [r for r in summary["records"] if r["role"] == "verdict" and r["arm"] == "grpo" and r["level"] == lv]
        per_ws = ", ".join(f"warm start {w}: {sum(bool(r['escaped']) for r in rs if r['warm_start'] == w)} of "
                           f"{sum(r['warm_start'] == w for r in rs)}" for w in sorted({r["warm_start"] for r in rs}))
        out.append(f"- Level {lv}: GRPO escaped in {sum(bool(r['escaped']) for r in rs)} of {len(rs)} verdict runs "
                   f"({per_ws}).")
    if not out:
        return []
    return ["", "Does the trap carry over to the verdict warm starts? (a description, not a claim: the gate reads the "
            "selection warm start only)", "", *out]


def report_markdown(summary: Mapping) -> str:
    """The report: scope, seeds, starting policies, gates, constants, claims, per-arm descriptions."""
    m = summary["machine"]
    scope = ("the full study" if summary["full_study"] else
             "a REDUCED run, not the full study (fewer arms, levels, seeds or steps than the full plan)")
    lines = [f"# Exploration study: AEnt in an exploration trap, {scope}", "",
             f"Date {summary['date']}; machine {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}; "
             f"this invocation {summary['wall_s_this_invocation']:.0f} s. Arms {list(summary['plan']['arms'])}, "
             f"levels {list(summary['plan']['levels'])}.", "", *_timing(summary), "", "## Seeds", "",
             *_seeds_line(summary), "",
             "## Starting policies (q0 = share of samples that start a worked line)", "",
             "Each level is a target for the worked first-token mass; the bare stage (constant lr) stops at the first "
             "5-step checkpoint at or below it, searched per warm start (llm.studies.exploration_levels).", "",
             "| level, warm start | bare-stage steps | q0 | worked first-token mass | forced accuracy | worked pass@k "
             "| sampled mean@k | sampled worked / bare / junk |", "|---|---|---|---|---|---|---|---|"]
    for key, s in sorted(summary["starts"].items()):
        if not s.get("reached", True):
            lines.append(f"| {key} | target not reached within the search budget | | | | | | |")
            continue
        lines.append(f"| {key} | {s.get('bare_stage_steps', 'given')} | {_f(s['q0'])} | {_f(s['worked_first_mass'])} | {_f(s['forced_accuracy'])} | "
                     f"{_f(s['worked_pass_at_k'])} | {_f(s['sampled_mean_at_k'])} | {_f(s['sampled_worked_share'])}"
                     f" / {_f(s['sampled_bare_share'])} / {_f(s['sampled_junk_share'])} |")
    lines += ["", "## Premise gate (GRPO alone, selection seeds)", ""]
    if not summary["gates"]:
        lines.append("Not run in this invocation: every claim below is reported as premise not checked.")
    for lv, g in sorted(summary["gates"].items()):
        if g["premise"] == "not run":
            lines.append(f"- Level {lv}: gate not decided ({'; '.join(g.get('reasons') or ['no finished selection run'])}"
                         ").")
            continue
        sel = [r for r in summary["records"] if r["role"] == "selection" and str(r["level"]) == lv]
        runs = ", ".join(f"seed {r['seed']}: final worked share {_f(r['final_worked_share'])}, escape step "
                         f"{r['escape_step']}" for r in sel)
        lines.append(f"- Level {lv}: premise **{g['premise']}**; GRPO trapped in {g['trapped_runs']} of {g['runs']}"
                     f" ({runs})" + (f"; {'; '.join(g['reasons'])}" if g["reasons"] else "")
                     + (f"; {g['partial']}" if g.get("partial") else "") + ".")
    lines += _carry_over(summary)
    lines += ["", "## Constants (aent calibrate on each starting policy)", ""]
    for key, c in sorted(summary["constants"].items()):
        k = c["constants"]
        lines.append(f"- {key}: lambda0 {_f(k['ent_coef'])}, box [{_f(k['coef_min'])}, {_f(k['coef_max'])}], band "
                     f"[{_f(k['band_low'])}, {_f(k['band_high'])}], beta {_f(k['coef_lr'])}, p {_f(k['clamp_p'])}, "
                     f"warm-up {k['warmup']}")
    if not summary["constants"]:
        lines.append("None needed (GRPO only).")
    lines += ["", "## Claims (fixed before the first run; Holm within each family)", "",
              "| level | family | claim | verdict | pairs | effect | CI | p | Holm p | why |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for j in summary["judgements"]:
        ci = f"[{_f(j['ci_low'])}, {_f(j['ci_high'])}]"
        lines.append(f"| {j['level']} | {j['family']} | {j['text']} | **{j['verdict']}** | {j['n']} | "
                     f"{_f(j['effect'])} | {ci} | {_f(j['p'])} | {_f(j['p_adj'])} | {j['reason']} |")
    lines += ["", "## Arms (verdict runs)", "",
              "`escaped`: the worked share of the last 10 steps is at least the escape bar (the gate's criterion); "
              "`reached the bar (mean step)`: runs whose trailing 10-step worked share reached the bar at some step, "
              "and their mean first step (a run that escaped and then ran away counts here, not in `escaped`).", "",
              "| level | arm | runs | escaped | reached the bar (mean step) | mean@k | pass@k | final worked share "
              "| steps in band "
              "| coefficient | H - H~ |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for lv, arms in sorted(summary["arms"].items()):
        for a in arms:
            reached = a.get("reached_bar")
            step = _f(a["escape_step_mean"], 0) if reached else "-"
            lines.append(f"| {lv} | {a['arm']} | {a['runs']} | {a['escaped']} | "
                         f"{'-' if reached is None else reached} ({step}) | "
                         f"{_f(a['final_mean_at_k'])} | {_f(a['final_pass_at_k'])} | {_f(a['final_worked_share'])} | "
                         f"{_f(a['band_share'])} | {', '.join(a['coef_states']) or '-'} | {_f(a['entropy_gap'])} |")
    lines += ["", "![worked-style share per step and final mean@k](exploration.png)", ""]
    return "\n".join(lines)


def plot_exploration(summary: Mapping, out: Path, path: Path) -> Path:
    """Per level: the rollout worked-style share per step of every run (by arm), and final mean@k per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llm.metrics import read_metrics

    levels = sorted({r["level"] for r in summary["records"]}) or [0]
    fig, axes = plt.subplots(2, len(levels), figsize=(4.2 * len(levels), 6.4), squeeze=False)
    arms = sorted({r["arm"] for r in summary["records"]})
    colors = {a: plt.cm.tab10(i) for i, a in enumerate(arms)}
    for col, lv in enumerate(levels):
        top, bottom = axes[0][col], axes[1][col]
        for r in (r for r in summary["records"] if r["level"] == lv):
            folder = run_dir(out, r["arm"], lv, r["warm_start"], r["seed"])
            has = (folder / "metrics.jsonl").is_file()
            rows = [x for x in read_metrics(folder) if "worked_share" in x] if has else []
            style = ":" if r["role"] == "selection" else "-"
            top.plot([x["step"] for x in rows], [x["worked_share"] for x in rows], style, color=colors[r["arm"]],
                     alpha=0.6, lw=1)
        top.set(title=f"level {lv}", xlabel="step", ylabel="rollout worked-style share", ylim=(-0.02, 1.02))
        for i, a in enumerate(arms):
            ys = [r["final_mean_at_k"] for r in summary["records"]
                  if r["level"] == lv and r["arm"] == a and r["role"] == "verdict"]
            bottom.scatter([i] * len(ys), ys, color=colors[a], s=14)
        if not any(r["level"] == lv and r["role"] == "verdict" for r in summary["records"]):
            premise = summary.get("gates", {}).get(str(lv), {}).get("premise", "not run")
            bottom.text(0.5, 0.5, f"no verdict runs\n(premise {premise})", ha="center", va="center",
                        transform=bottom.transAxes, fontsize=9, color="0.4")
            bottom.set_yticks([])
        bottom.set_xticks(range(len(arms)), arms, rotation=40, ha="right", fontsize=7)
        bottom.set(ylabel="final held-out mean@k (verdict runs)")
    handles = [plt.Line2D([], [], color=colors[a], label=a) for a in arms]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(arms)), fontsize=7,
               title="solid: verdict runs; dotted: premise-gate (selection) runs", title_fontsize=7)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(summary: Mapping, out: Path) -> None:
    """Write OUT/report.md and OUT/exploration.png."""
    out = Path(out)
    plot_exploration(summary, out, out / "exploration.png")
    (out / "report.md").write_text(report_markdown(summary))

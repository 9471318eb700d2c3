"""The Figure 1 plot: six panels, one colour per arm kind in every panel, closed-form lines beside the runs.

Top: V at the end against m (mean ± 2 s.e.; closed form dashed) for the bandit sampled, the bandit exact and the
tree, at the middle lambda of the grid. Bottom: V against step on the sampled bandit for the smallest and largest m
(closed form dotted, the LLM budget grey), and the full bonus's contrast (difference of differences, 95% CI of the
sign-flip test) at every lambda of the grid next to its closed form.
"""

from __future__ import annotations

import numpy as np

from toy.experiments.common import pyplot
from toy.experiments.figure1_plan import arm_name, predicted_value

__all__ = ["COLORS", "plot"]

COLORS = {"none": "black", "entropy_bonus": "tab:blue", "clamped_lo": "tab:orange", "clamped_hi": "tab:green",
          "aent": "tab:red", "aent_oracle": "tab:purple"}


def _shown(pl: dict, lam: float) -> dict[str, str]:
    """{arm: colour} of the arms drawn in a panel (the lambda = ``lam`` slice of the grid)."""
    out = {"none": COLORS["none"], arm_name("entropy_bonus", lam): COLORS["entropy_bonus"]}
    ps = sorted(pl["clamp_ps"])
    for i, p in enumerate(ps):
        out[arm_name("clamped", lam, p)] = COLORS["clamped_lo" if i == 0 else "clamped_hi"]
    for key in ("aent", "aent_oracle"):
        if key in pl:
            out[key] = COLORS[key]
    return out


def _middle(values) -> float:
    return sorted(values)[len(values) // 2]


def _end_panel(ax, cfg, dom: dict, est: str, title: str) -> None:
    pl, res, ms = dom["plan"], dom[est], list(cfg.m_values)
    for name, color in _shown(pl, _middle(pl["ent_coefs"])).items():
        vals = [res["cells"][name][str(m)]["value"] for m in ms]
        mean = [np.mean(v) for v in vals]
        err = [2 * np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0 for v in vals]
        ax.errorbar(ms, mean, yerr=err, marker="o", capsize=3, color=color, label=dom["arms"][name]["label"])
        ax.plot(ms, [predicted_value(pl, name, m, est) for m in ms], "--", color=color, alpha=0.6)
    ax.set(xlabel="optimal items m", ylabel="V at the end", xscale="log", xticks=ms, xticklabels=[str(m) for m in ms],
           ylim=(-0.03, 1.03), title=title)


def _curve_panel(ax, cfg, dom: dict, m: int) -> None:
    pl, res = dom["plan"], dom["sampled"]
    for name, color in _shown(pl, _middle(pl["ent_coefs"])).items():
        ax.plot(res["curve_steps"], res["cells"][name][str(m)]["value_curve"], color=color)
        ax.axhline(predicted_value(pl, name, m, "sampled"), color=color, ls=":", alpha=0.7)
    ax.axvline(cfg.llm_budget, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="step", ylabel="V (mean over seeds)", ylim=(-0.03, 1.03), xlim=(0, res["curve_steps"][-1]),
           title=f"bandit sampled, m = {m}: V against step")


def _contrast_panel(ax, results: dict) -> None:
    claims = [c for c in results.get("claims", []) if c["kind"] == "contrast" and "tests" in c]
    for k, c in enumerate(claims):
        t = c["tests"][1]
        color = "tab:blue" if c["sweep"].startswith("bandit") else "tab:cyan"
        ax.errorbar([k], [t["mean"]], yerr=[[t["mean"] - t["ci_low"]], [t["ci_high"] - t["mean"]]], marker="o",
                    capsize=3, color=color)
        cf = c["closed_form"].rsplit(" ", 1)[-1]
        ax.plot([k], [float(cf)], "x", color="grey")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(claims)), [f"{c['sweep'].split()[0]}\n{c['arm'].split('_l')[-1]}" for c in claims],
                  fontsize=7)
    ax.set(ylabel="D = large-m edge − small-m edge", title="full bonus: difference of differences (x: closed form)")


def plot(cfg, results: dict):
    """The six-panel figure (cfg: Figure1Config; results: the ``results`` block of figure1.json)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    panels = [("bandit", "sampled"), ("bandit", "exact"), ("tree", "sampled")]
    for ax, (domain, est) in zip(axes[0], panels):
        dom = results.get(domain) or {}
        if est in dom:
            _end_panel(ax, cfg, dom, est, f"{domain} {est} ({dom['plan']['n_items']:,} items), {dom[est]['steps']} "
                                          f"steps, λ={_middle(dom['plan']['ent_coefs']):g}")
        else:
            ax.set_axis_off()
    axes[0, 0].legend(fontsize=6, loc="lower center", ncol=2, framealpha=0.7)
    if "tree" in results and "sampled" in results["tree"]:
        axes[0, 2].legend(fontsize=6, loc="lower center", ncol=2, framealpha=0.7)
    ms = list(cfg.m_values)
    _curve_panel(axes[1, 0], cfg, results["bandit"], ms[0])
    _curve_panel(axes[1, 1], cfg, results["bandit"], ms[-1])
    _contrast_panel(axes[1, 2], results)
    b = cfg.bandit
    fig.suptitle(f"Trap regime: {b.n_traps} traps (reward {b.trap_reward:g}), m optima (1), the rest 0; plain "
                 f"policy-gradient steps (lr {b.lr:g}); {cfg.seeds} paired seeds. Dashed / dotted: closed-form "
                 f"fixed point; grey: LLM budget ({cfg.llm_budget} steps)", fontsize=9)
    fig.tight_layout()
    return fig

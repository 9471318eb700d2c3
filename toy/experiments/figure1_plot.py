"""The Figure 1 plot: per sweep, V at the end against m and V against step for each m, with the closed form."""

from __future__ import annotations

import math

import numpy as np

from toy.experiments.common import pyplot
from toy.experiments.figure1_plan import predicted_value

__all__ = ["plot"]


def plot(cfg, results: dict):
    """Per sweep: final V vs m (closed form dashed) and V against step for each m (closed form dotted).

    Args:
        cfg: the toy.experiments.figure1.Figure1Config of the run.
        results: the ``results`` block of figure1.json.
    """
    plt = pyplot()
    sweeps = [(d, e) for d in ("bandit", "tree") if d in results for e in ("sampled", "exact") if e in results[d]]
    ms = list(cfg.m_values)
    fig, axes = plt.subplots(len(sweeps), 1 + len(ms), figsize=(3.2 * (1 + len(ms)), 3.3 * len(sweeps)),
                             squeeze=False)
    for row, (domain, est) in enumerate(sweeps):
        dom, res = results[domain], results[domain][est]
        ax0 = axes[row, 0]
        for k, (name, info) in enumerate(dom["arms"].items()):
            color = f"C{k}"
            cells = res["cells"][name]
            mean = [np.mean(cells[str(m)]["value"]) for m in ms]
            se = [np.std(cells[str(m)]["value"], ddof=1) / math.sqrt(cfg.seeds) for m in ms]
            ax0.errorbar(ms, mean, yerr=np.multiply(se, 2), marker="o", capsize=3, color=color, label=info["label"])
            ax0.plot(ms, [predicted_value(dom["plan"], name, m, est) for m in ms], "--", color=color, alpha=0.6)
            for ax, m in zip(axes[row, 1:], ms):
                ax.plot(res["curve_steps"], cells[str(m)]["value_curve"], color=color)
                ax.axhline(predicted_value(dom["plan"], name, m, est), color=color, ls=":", alpha=0.6)
        ax0.set(xlabel="optimal items m", ylabel="V at the end (mean ± 2 s.e.)", xticks=ms, ylim=(-0.03, 1.03),
                title=f"{domain} ({dom['plan']['n_items']:,} items), {est}; λ={dom['plan']['ent_coef']:.3f}",
                xscale="log")
        for ax, m in zip(axes[row, 1:], ms):
            ax.axvline(cfg.llm_budget, color="grey", lw=0.8, ls="--")
            ax.set(xlabel="step", ylabel="V (mean over seeds)", ylim=(-0.03, 1.03), title=f"{domain} {est}, m = {m}",
                   xscale="symlog", xlim=(0, res["curve_steps"][-1]))
        ax0.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"Trap regime: {cfg.n_traps} traps (reward {cfg.trap_reward:g}), m optima (1), the rest 0; "
                 f"{cfg.seeds} paired seeds. Dashed / dotted: closed-form fixed point; grey: LLM budget "
                 f"({cfg.llm_budget} steps)", fontsize=9)
    fig.tight_layout()
    return fig

"""Figure 1 of AEnt (arXiv 2509.03493): entropy bonus vs clamped bonus on a bandit with |A| = 10^5 arms.

DESIGN.md claim 6: with m optimal arms among 10^5, the full entropy bonus beats no bonus for m ~ 10-15 but loses
that edge as m drops to <= 5, while the clamped bonus keeps an edge. The paper gives no code for this figure;
the setting here is ours and is recorded in the JSON:

- rewards: toy.tasks.BanditTask (m arms pay 1; the others ``pattern``, by default i.i.d. uniform in [0, 1 - gap));
- policy: tabular softmax over the arms, initial logits init_scale * N(0, 1) with the optimal arms placed at the
  ``opt_quantile`` quantile (plausible but unlikely, like a correct token under a pretrained prior);
- training: GRPO groups of G arms, group-normalised advantages, SGD on the logits (toy.train, the paper-faithful
  sampled estimator; ``--estimator exact`` runs exact gradient ascent instead);
- arms: no control, full entropy bonus, clamped bonus for each ``clamp_ps`` value, and AEnt (clamped bonus with
  the adaptive coefficient of aent.AEntCoef), all through aent.EntropyControl.

All (m, arm, seed) runs are rows of one (R, |A|) logits tensor, trained in one loop. The seed s run of every arm
shares the task and the initial logits (paired comparison); only the sampling differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aent.config import EntropyConfig
from toy.experiments.common import compare, mean_std, progress, pyplot, verdict
from toy.tasks import BANDIT_PATTERNS, BanditTask
from toy.train import ESTIMATORS, TrainConfig, train_bandit

__all__ = ["NAME", "SUMMARY", "Figure1Config", "arms", "judge", "plot", "run", "simulate"]

NAME = "figure1"
SUMMARY = "AEnt Figure 1: no bonus vs entropy bonus vs clamped bonus vs AEnt on a 10^5-arm bandit (claim 6)"
MAX_CURVE_POINTS = 101


@dataclass(frozen=True)
class Figure1Config:
    """Settings of the Figure 1 sweep (the defaults are the full run; ``--smoke`` shrinks it)."""

    n_arms: int = 100_000
    """Number of arms |A| (>= 100)."""
    m_values: tuple[int, ...] = (1, 3, 5, 10, 15)
    """Numbers m of optimal arms to sweep (each in [1, n_arms])."""
    seeds: int = 5
    """Independent seeds per (m, arm) (>= 2: the verdicts need a spread)."""
    steps: int = 100
    """Training steps per run (>= 1)."""
    estimator: str = "grpo"
    """Gradient estimator of toy.train: grpo (paper-faithful), rloo, reinforce or exact."""
    group_size: int = 16
    """GRPO group size G (arms sampled per run per step, >= 2)."""
    lr: float = 2.0
    """SGD step size on the logits (> 0)."""
    init_scale: float = 3.0
    """Std of the Gaussian initial logits (>= 0); larger is a more peaked initial policy."""
    opt_quantile: float = 0.9995
    """Quantile of a run's initial logits at which its optimal arms start, in [0, 1]."""
    pattern: str = "uniform"
    """Rewards of the non-optimal arms (toy.tasks.BanditTask): zero, uniform or distractors."""
    gap: float = 0.1
    """Suboptimality gap of the uniform / distractor rewards, in (0, 1]."""
    ent_coef: float = 0.1
    """Coefficient lambda of the fixed full and clamped bonuses, and AEnt's initial lambda (> 0)."""
    clamp_ps: tuple[float, ...] = (0.99, 0.9)
    """Clamp fractions p of the fixed clamped-bonus arms (each in [0, 1)); the first is the primary one."""
    aent_clamp_p: float = 0.99
    """Clamp fraction p of the AEnt arm, in [0, 1)."""
    aent_band: tuple[float, ...] = (1.0, 3.0)
    """AEnt's clamped-entropy band [low, high] in nats."""
    aent_coef_lr: float = 0.01
    """AEnt's coefficient step beta (>= 0)."""
    aent_box: tuple[float, ...] = (0.02, 0.3)
    """AEnt's coefficient box [lambda_min, lambda_max] (must contain ent_coef)."""
    aent_warmup: int = 5
    """Steps before AEnt's coefficient starts to move (>= 0)."""
    seed: int = 0
    """Base seed (>= 0): seed s of every arm uses task seed ``seed + s``."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"figure1 option {name} must be {allowed}, got {getattr(self, name)!r}")

        need(self.n_arms >= 100, "n_arms", "an integer >= 100")
        need(len(self.m_values) >= 1 and all(1 <= m <= self.n_arms for m in self.m_values), "m_values",
             f"integers in [1, n_arms={self.n_arms}]")
        need(self.seeds >= 2, "seeds", "an integer >= 2")
        need(self.steps >= 1, "steps", "an integer >= 1")
        need(self.estimator in ESTIMATORS, "estimator", f"one of {ESTIMATORS}")
        need(self.group_size >= 2, "group_size", "an integer >= 2")
        need(self.lr > 0, "lr", "> 0")
        need(self.init_scale >= 0, "init_scale", ">= 0")
        need(0 <= self.opt_quantile <= 1, "opt_quantile", "in [0, 1]")
        need(self.pattern in BANDIT_PATTERNS, "pattern", f"one of {BANDIT_PATTERNS}")
        need(self.ent_coef > 0, "ent_coef", "> 0")
        need(len(self.clamp_ps) >= 1 and all(0 <= p < 1 for p in self.clamp_ps), "clamp_ps", "values in [0, 1)")
        need(len(self.aent_band) == 2 and 0 <= self.aent_band[0] <= self.aent_band[1], "aent_band",
             "two numbers 0 <= low <= high")
        need(len(self.aent_box) == 2 and self.aent_box[0] <= self.ent_coef <= self.aent_box[1], "aent_box",
             f"two numbers [min, max] containing ent_coef={self.ent_coef}")

    @staticmethod
    def smoke() -> dict:
        """Overrides of ``--smoke`` (a few seconds on one core)."""
        return {"n_arms": 5000, "m_values": (1, 15), "seeds": 2, "steps": 12}


def arms(cfg: Figure1Config) -> dict[str, tuple[str, EntropyConfig]]:
    """{arm name: (plot label, aent.EntropyConfig)} in plotting order."""
    lam = cfg.ent_coef
    out = {"none": ("no entropy control", EntropyConfig(method="none")),
           "entropy_bonus": (f"entropy bonus λ={lam:g}", EntropyConfig(method="entropy_bonus", ent_coef=lam))}
    for p in cfg.clamp_ps:
        out[f"clamped_p{p:g}"] = (f"clamped bonus λ={lam:g}, p={p:g}",
                                  EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=p))
    out["aent"] = (f"AEnt p={cfg.aent_clamp_p:g}, band {list(cfg.aent_band)}",
                   EntropyConfig(method="aent", ent_coef=lam, clamp_p=cfg.aent_clamp_p, band_low=cfg.aent_band[0],
                                 band_high=cfg.aent_band[1], coef_lr=cfg.aent_coef_lr, warmup=cfg.aent_warmup,
                                 coef_min=cfg.aent_box[0], coef_max=cfg.aent_box[1]))
    return out


def _curve_index(steps: int) -> np.ndarray:
    """At most MAX_CURVE_POINTS evaluation points among 0..steps (both ends included)."""
    return np.unique(np.linspace(0, steps, min(steps + 1, MAX_CURVE_POINTS)).round().astype(int))


def simulate(cfg: Figure1Config, show_progress: bool = True) -> dict:
    """Train every (m, arm, seed) row together; returns the ``results`` block of figure1.json."""
    arm_cfgs = arms(cfg)
    train_cfg = TrainConfig(n_arms=cfg.n_arms, pattern=cfg.pattern, gap=cfg.gap, estimator=cfg.estimator,
                            steps=cfg.steps, group_size=cfg.group_size, lr=cfg.lr, init="gaussian",
                            init_scale=cfg.init_scale, opt_quantile=cfg.opt_quantile, seed=cfg.seed,
                            track_clamped=False)
    rewards, row_seeds, ecfgs, labels = [], [], [], []
    for m in cfg.m_values:
        tasks = [BanditTask(n_arms=cfg.n_arms, m_optimal=m, pattern=cfg.pattern, gap=cfg.gap,
                            n_distractors=min(10, cfg.n_arms - m), seed=cfg.seed + s).rewards for s in range(cfg.seeds)]
        for name, (_, ecfg) in arm_cfgs.items():
            for s in range(cfg.seeds):
                rewards.append(tasks[s])
                row_seeds.append(cfg.seed + s)
                ecfgs.append(ecfg)
                labels.append((m, name))
    reward_table = torch.as_tensor(np.stack(rewards), dtype=torch.float32)
    with progress(cfg.steps, f"figure1 ({len(labels)} runs x {cfg.n_arms} arms)", disable=not show_progress) as bar:
        run = train_bandit(train_cfg, rewards=reward_table, row_seeds=row_seeds, entropy_cfgs=ecfgs,
                           progress=bar.update)
    idx = _curve_index(cfg.steps)
    acc, ent = run.accuracy.numpy(), run.entropy.numpy()
    cells: dict = {}
    for name in arm_cfgs:
        cells[name] = {}
        for m in cfg.m_values:
            rows = [i for i, lab in enumerate(labels) if lab == (m, name)]
            final = acc[-1, rows]
            mean, std = mean_std(final)
            cells[name][str(m)] = {
                "final_mean": mean, "final_std": std, "final_per_seed": final.tolist(),
                "curve_mean": acc[idx][:, rows].mean(1).tolist(), "curve_std": acc[idx][:, rows].std(1, ddof=1).tolist(),
                "entropy_curve_mean": ent[idx][:, rows].mean(1).tolist(),
                "ent_coef_final_mean": float(run.ent_coef[-1, rows].mean()),
            }
    return {"curve_steps": idx.tolist(), "m_values": list(cfg.m_values),
            "arms": {k: {"label": lab, "entropy_config": e.to_dict()} for k, (lab, e) in arm_cfgs.items()},
            "cells": cells}


def _pooled(results: dict, arm: str, ms: list[int]) -> np.ndarray:
    """Per-seed success averaged over the m values ``ms`` (one number per seed)."""
    return np.mean([results["cells"][arm][str(m)]["final_per_seed"] for m in ms], axis=0)


def _beats(d: float, se: float, sign: int, min_effect: float = 0.01) -> str:
    """Verdict of "A beats B": held beyond 2 s.e.; did not hold when even d + 2 s.e. stays below ``min_effect``."""
    if sign == 1:
        return "held"
    return "did not hold" if d + 2 * se < min_effect else "inconclusive"


def judge(cfg: Figure1Config, results: dict) -> list[dict]:
    """The verdicts of claim 6, each with its numbers (difference of means +- 2 standard errors, Welch)."""
    large = [m for m in cfg.m_values if m >= 10]
    small = [m for m in cfg.m_values if m <= 5]
    if not large or not small:
        note = "needs m values both <= 5 and >= 10"
        return [verdict(c, "inconclusive", f"Not tested: the sweep {list(cfg.m_values)} {note}.")
                for c in ("full bonus beats no bonus for m in 10-15", "full bonus loses that edge for m <= 5",
                          "clamped bonus keeps an edge for m <= 5")]
    primary = f"clamped_p{cfg.clamp_ps[0]:g}"
    none_l, none_s = _pooled(results, "none", large), _pooled(results, "none", small)
    d_l, se_l, sign_l = compare(_pooled(results, "entropy_bonus", large), none_l)
    d_s, se_s, sign_s = compare(_pooled(results, "entropy_bonus", small), none_s)
    d_c, se_c, sign_c = compare(_pooled(results, primary, small), none_s)
    ml, msm = ", ".join(map(str, large)), ", ".join(map(str, small))
    out = [verdict(
        "full bonus beats no bonus for m in 10-15", _beats(d_l, se_l, sign_l),
        f"At m in {{{ml}}} the full entropy bonus (lambda={cfg.ent_coef:g}) ends at success {d_l:+.3f} +- "
        f"{2 * se_l:.3f} (2 s.e., {cfg.seeds} seeds) relative to no entropy control.")]
    lost = sign_s <= 0 and d_s < d_l
    status = "held" if lost and sign_l == 1 else "did not hold" if sign_s == 1 else "inconclusive"
    out.append(verdict(
        "full bonus loses that edge for m <= 5", status,
        f"At m in {{{msm}}} the full bonus differs from no control by {d_s:+.3f} +- {2 * se_s:.3f}, against "
        f"{d_l:+.3f} +- {2 * se_l:.3f} at m in {{{ml}}}."))
    out.append(verdict(
        "clamped bonus keeps an edge for m <= 5", _beats(d_c, se_c, sign_c),
        f"At m in {{{msm}}} the clamped bonus (p={cfg.clamp_ps[0]:g}, lambda={cfg.ent_coef:g}) differs from no "
        f"control by {d_c:+.3f} +- {2 * se_c:.3f} (the full bonus: {d_s:+.3f})."))
    d_a, se_a, sign_a = compare(_pooled(results, "aent", list(cfg.m_values)), _pooled(results, "none", list(cfg.m_values)))
    out.append(verdict(
        "AEnt beats no entropy control averaged over all m", _beats(d_a, se_a, sign_a),
        f"Averaged over m in {list(cfg.m_values)}, AEnt (p={cfg.aent_clamp_p:g}) differs from no control by "
        f"{d_a:+.3f} +- {2 * se_a:.3f} in final success probability."))
    return out


def plot(cfg: Figure1Config, results: dict):
    """Final success vs m (mean +- std over seeds), and learning curves at the smallest and largest m."""
    plt = pyplot()
    ms = list(cfg.m_values)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    steps = results["curve_steps"]
    for k, (name, info) in enumerate(results["arms"].items()):
        color = f"C{k}"
        cells = results["cells"][name]
        mean = [cells[str(m)]["final_mean"] for m in ms]
        std = [cells[str(m)]["final_std"] for m in ms]
        axes[0].errorbar(ms, mean, yerr=std, marker="o", capsize=3, color=color, label=info["label"])
        for ax, m in zip(axes[1:], (ms[0], ms[-1])):
            c = cells[str(m)]
            lo = np.subtract(c["curve_mean"], c["curve_std"])
            hi = np.add(c["curve_mean"], c["curve_std"])
            ax.plot(steps, c["curve_mean"], color=color)
            ax.fill_between(steps, lo, hi, color=color, alpha=0.15)
    axes[0].set(xlabel="number of optimal arms m", ylabel=f"success probability after {cfg.steps} steps",
                title=f"|A| = {cfg.n_arms:,}, {cfg.seeds} seeds (mean ± std)", xticks=ms, ylim=(-0.03, 1.03))
    for ax, m in zip(axes[1:], (ms[0], ms[-1])):
        ax.set(xlabel="step", ylabel="success probability", title=f"learning curves, m = {m}", ylim=(-0.03, 1.03))
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{cfg.estimator.upper()} (G={cfg.group_size}, lr={cfg.lr:g}), init scale {cfg.init_scale:g}, "
                 f"optimal arms at quantile {cfg.opt_quantile:g}, other rewards '{cfg.pattern}'", fontsize=9)
    return fig


def run(cfg: Figure1Config, show_progress: bool = True):
    """Simulate and judge; returns (results, verdicts, figure) for toy.__main__ to write."""
    results = simulate(cfg, show_progress)
    return results, judge(cfg, results), plot(cfg, results)


"""Entropy dynamics (docs/toy/theory.md claim 5): predicted -Cov(log pi, dz) vs measured entropy change, and clipping.

Three measurements on softmax states pi = softmax(z) with Gaussian logits:

1. first order: for policy-gradient steps dz (the exact bandit step lr * pi (r - V), and one-token REINFORCE steps
   lr * A (e_a - pi)), the measured H(z + dz) - H(z) against the prediction -Cov_{a~pi}(log pi(a), dz(a))
   (Cui et al., arXiv 2505.22617, Lemma 1) and the second-order bound of toy.dynamics, at several step sizes;
2. signs: a positive-advantage update on a likely token (pi(a) > e^-H) lowers the entropy, on a rare token raises
   it, and the reverse for negative advantages (toy.dynamics.entropy_sensitivity);
3. clipping: PPO training on a bandit with random rewards (toy.train, aent.ppo_clip_loss, several epochs per step)
   with clip-low only, clip-high only, and no clipping: clip-low should keep more entropy, clip-high less
   (arXiv 2509.26114; docs/toy/theory.md claim 5). Paired runs with common random numbers; the verdict is a paired
   sign-flip test (toy.experiments.paired) on the entropy averaged over training, and the text reports the final
   entropy and the number of runs each metric needs for 80% power at the observed effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aent.config import EntropyConfig
from toy.dynamics import (
    entropy_sensitivity,
    exact_entropy_change,
    ppo_token_step,
    predicted_entropy_change,
    second_order_bound,
    softmax_entropy,
    token_step,
)
from toy.experiments.common import mean_std, progress, pyplot, verdict
from toy.experiments.paired import ALPHA, paired_test
from toy.train import TrainConfig, train_bandit

__all__ = ["NAME", "SUMMARY", "DynamicsConfig", "judge", "plot", "run", "simulate"]

NAME = "dynamics"
SUMMARY = "predicted -Cov(log pi, dz) vs measured entropy change; advantage signs; clip-low vs clip-high (claim 5)"
NO_CLIP_HIGH = 1e6  # eps_high this large never clips


@dataclass(frozen=True)
class DynamicsConfig:
    """Settings of the entropy-dynamics measurements (the defaults are the full run; ``--smoke`` shrinks it)."""

    n_arms: int = 1000
    """Arms (tokens) of each softmax state (>= 2)."""
    n_states: int = 2000
    """Random states (rows) per measurement (>= 10)."""
    init_scale: float = 2.0
    """Std of the Gaussian logits of the states (>= 0)."""
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    """Step sizes of the first-order check (each > 0), smallest first."""
    clip_init_scale: float = 5.0
    """Std of the Gaussian logits of the clipping measurements (>= 0); large = peaked, LLM-like states in which
    the sampled tokens are mostly the mode and occasionally a rare one."""
    clip_eps: float = 0.2
    """Clip range of the clip-low / clip-high arms (> 0)."""
    clip_steps: int = 60
    """Training steps of the clipping comparison (>= 1)."""
    clip_seeds: int = 2048
    """Paired runs per clipping arm (>= 2). Seed s of every arm shares its reward table, initial logits and sample
    stream (common random numbers). 48 runs left the comparison unresolved; a pilot put the runs needed for 80%
    power at ~2,500 for the final entropy and ~300 for the entropy averaged over training."""
    clip_arms: int = 200
    """Arms of the clipping bandit (>= 2)."""
    clip_lr: float = 2.0
    """SGD step size of the clipping comparison (> 0)."""
    clip_epochs: int = 4
    """PPO epochs per step of the clipping comparison (>= 2, so that ratios leave 1)."""
    seed: int = 0
    """Seed (>= 0)."""

    def __post_init__(self) -> None:
        checks = [("n_arms", self.n_arms >= 2, "an integer >= 2"), ("n_states", self.n_states >= 10, ">= 10"),
                  ("init_scale", self.init_scale >= 0, ">= 0"),
                  ("lrs", len(self.lrs) >= 2 and all(x > 0 for x in self.lrs), "at least two numbers > 0"),
                  ("clip_init_scale", self.clip_init_scale >= 0, ">= 0"), ("clip_eps", self.clip_eps > 0, "> 0"), ("clip_steps", self.clip_steps >= 1, ">= 1"),
                  ("clip_seeds", self.clip_seeds >= 2, ">= 2"), ("clip_arms", self.clip_arms >= 2, ">= 2"),
                  ("clip_lr", self.clip_lr > 0, "> 0"), ("clip_epochs", self.clip_epochs >= 2, ">= 2"),
                  ("seed", self.seed >= 0, ">= 0")]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"dynamics option {name} must be {allowed}, got {getattr(self, name)!r}")

    @staticmethod
    def smoke() -> dict:
        """Overrides of ``--smoke``."""
        return {"n_arms": 200, "n_states": 200, "lrs": (0.01, 0.1, 1.0), "clip_steps": 15, "clip_seeds": 8,
                "clip_arms": 100}


def _first_order(cfg: DynamicsConfig, gen: torch.Generator) -> dict:
    """Measured vs predicted entropy change of exact-PG and one-token steps at every lr."""
    z = cfg.init_scale * torch.randn(cfg.n_states, cfg.n_arms, generator=gen, dtype=torch.float64)
    pi = torch.softmax(z, -1)
    r = torch.rand(cfg.n_states, cfg.n_arms, generator=gen, dtype=torch.float64)
    pg_dir = pi * (r - (pi * r).sum(-1, keepdim=True))
    tok = torch.multinomial(pi, 1, generator=gen).squeeze(1)
    adv = torch.randn(cfg.n_states, generator=gen, dtype=torch.float64)
    out = {}
    for kind in ("exact_pg", "token"):
        per_lr = []
        for lr in cfg.lrs:
            dz = lr * pg_dir if kind == "exact_pg" else token_step(z, tok, adv, lr)
            pred, meas = predicted_entropy_change(z, dz), exact_entropy_change(z, dz)
            err = (meas - pred).abs()
            per_lr.append({"lr": lr, "median_abs_pred": float(pred.abs().median()),
                           "median_abs_error": float(err.median()),
                           "median_rel_error": float((err / meas.abs().clamp_min(1e-300)).median()),
                           "bound_holds_frac": float((err <= second_order_bound(z, dz) + 1e-12).double().mean()),
                           "sign_agree_frac": float((torch.sign(pred) == torch.sign(meas)).double().mean())})
        out[kind] = per_lr
    return out


def _signs(cfg: DynamicsConfig, gen: torch.Generator) -> dict:
    """Fraction of one-token updates that lower the entropy, by advantage sign, for the mode and for rare tokens.

    toy.dynamics: the first-order change of the step lr A (e_a - pi) is -lr A s(a), with s(mode) >= 0 and
    s(a) < 0 whenever pi(a) < e^-H. Half the states update their most likely token, half a uniformly drawn one.
    """
    z = cfg.init_scale * torch.randn(cfg.n_states, cfg.n_arms, generator=gen, dtype=torch.float64)
    pi = torch.softmax(z, -1)
    h = softmax_entropy(z)
    is_mode = torch.arange(cfg.n_states) % 2 == 0
    tok = torch.where(is_mode, pi.argmax(-1), torch.randint(0, cfg.n_arms, (cfg.n_states,), generator=gen))
    adv = torch.where(torch.rand(cfg.n_states, generator=gen) < 0.5, 1.0, -1.0).double()
    meas = exact_entropy_change(z, token_step(z, tok, adv, cfg.lrs[0]))
    rare = pi.gather(1, tok[:, None]).squeeze(1) < torch.exp(-h)
    sens = entropy_sensitivity(z).gather(1, tok[:, None]).squeeze(1)
    first_order = torch.sign(-adv * sens) == torch.sign(meas)
    cells = {}
    for name, sel_adv in (("positive", adv > 0), ("negative", adv < 0)):
        for tok_name, sel_tok in (("mode", is_mode), ("rare", ~is_mode & rare)):
            sel = sel_adv & sel_tok
            cells[f"{name}_{tok_name}"] = {
                "n": int(sel.sum()), "frac_entropy_down": float((meas[sel] < 0).double().mean()) if sel.any() else None,
                "mean_dH": float(meas[sel].mean()) if sel.any() else None}
    return {"lr": cfg.lrs[0], "cells": cells, "first_order_sign_agreement": float(first_order.double().mean())}


def _clip_mechanism(cfg: DynamicsConfig, gen: torch.Generator) -> dict:
    """First-order entropy effect of the updates that clip-low / clip-high remove, in a second PPO epoch.

    Per state: G tokens from pi_old, GRPO advantages of coin-flip rewards, one unclipped epoch (so that ratios
    leave 1), then the second epoch's update split by toy.dynamics.ppo_token_step. Removing an update dz_removed
    changes the entropy change by -(-Cov(log pi, dz_removed)) to first order.
    """
    n_tok, eps = 16, cfg.clip_eps
    low_eff, high_eff = [], []
    for _ in range(cfg.n_states // 4):
        z_old = cfg.clip_init_scale * torch.randn(cfg.n_arms, generator=gen, dtype=torch.float64)
        tok = torch.multinomial(torch.softmax(z_old, -1), n_tok, replacement=True, generator=gen)
        r = (torch.rand(n_tok, generator=gen) < 0.5).double()
        adv = (r - r.mean()) / (r.std() + 1e-6)
        z1 = z_old + ppo_token_step(z_old, z_old, tok, adv, cfg.clip_lr, 1.0, NO_CLIP_HIGH)["unclipped"]
        parts = ppo_token_step(z1, z_old, tok, adv, cfg.clip_lr, eps, eps)
        if parts["clip_low"].any():
            low_eff.append(-float(predicted_entropy_change(z1, parts["removed_low"])))
        if parts["clip_high"].any():
            high_eff.append(-float(predicted_entropy_change(z1, parts["removed_high"])))
    return {"clip_low_effect": low_eff, "clip_high_effect": high_eff,
            "clip_low_mean": mean_std(low_eff)[0] if low_eff else None,
            "clip_high_mean": mean_std(high_eff)[0] if high_eff else None}


def _clipping(cfg: DynamicsConfig, show_progress: bool) -> dict:
    """Entropy after PPO training with random rewards: no clipping, clip-low only, clip-high only."""
    arms = {"no_clip": EntropyConfig(method="none", eps_low=1.0, eps_high=NO_CLIP_HIGH),
            "clip_low": EntropyConfig(method="none", eps_low=cfg.clip_eps, eps_high=NO_CLIP_HIGH),
            "clip_high": EntropyConfig(method="none", eps_low=1.0, eps_high=cfg.clip_eps),
            "both": EntropyConfig(method="none", eps_low=cfg.clip_eps, eps_high=cfg.clip_eps)}
    n = cfg.clip_seeds
    # Random rewards: every arm pays an independent coin flip each time it is sampled is not expressible as a
    # fixed table, so each run gets its own i.i.d. Bernoulli(1/2) reward table (no arm is better on average
    # across runs); the same tables and initial logits serve every arm (paired comparison).
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    table = (torch.rand(n, cfg.clip_arms, generator=gen) < 0.5).float()
    rewards = table.repeat(len(arms), 1)
    seeds = [cfg.seed + i for i in range(n)] * len(arms)
    ecfgs = [e for e in arms.values() for _ in range(n)]
    tcfg = TrainConfig(n_arms=cfg.clip_arms, m_optimal=1, estimator="grpo", steps=cfg.clip_steps, group_size=16,
                       lr=cfg.clip_lr, ppo_epochs=cfg.clip_epochs, init="gaussian", init_scale=cfg.clip_init_scale,
                       seed=cfg.seed, track_clamped=False, common_random_numbers=True)
    with progress(cfg.clip_steps, "dynamics (clipping)", disable=not show_progress) as bar:
        run = train_bandit(tcfg, rewards=rewards, row_seeds=seeds, entropy_cfgs=ecfgs, progress=bar.update)
    ent = run.entropy.numpy()
    out = {"steps": list(range(cfg.clip_steps + 1)), "arms": {}}
    for k, name in enumerate(arms):
        rows = slice(k * n, (k + 1) * n)
        final = ent[-1, rows]
        m, s = mean_std(final)
        out["arms"][name] = {"final_entropy_mean": m, "final_entropy_std": s, "final_per_seed": final.tolist(),
                             "mean_per_seed": ent[:, rows].mean(0).tolist(),
                             "entropy_curve_mean": ent[:, rows].mean(1).tolist()}
    out["initial_entropy_mean"] = float(ent[0, :n].mean())
    return out


def simulate(cfg: DynamicsConfig, show_progress: bool = True) -> dict:
    """All three measurements; returns the ``results`` block of dynamics.json."""
    gen = torch.Generator().manual_seed(cfg.seed)
    return {"first_order": _first_order(cfg, gen), "signs": _signs(cfg, gen),
            "clip_mechanism": _clip_mechanism(cfg, gen), "clipping": _clipping(cfg, show_progress)}


def judge(cfg: DynamicsConfig, results: dict) -> list[dict]:
    """Verdicts of claim 5."""
    out = []
    fo = results["first_order"]
    errs = {k: [x["median_abs_error"] for x in v] for k, v in fo.items()}
    bound_ok = min(x["bound_holds_frac"] for v in fo.values() for x in v)
    # error ~ lr^2: the fitted log-log slope of the median error against lr
    slopes = {k: float(np.polyfit(np.log(cfg.lrs), np.log(np.maximum(e, 1e-300)), 1)[0]) for k, e in errs.items()}
    rel = {k: v[0]["median_rel_error"] for k, v in fo.items()}
    ok = bound_ok == 1.0 and all(1.7 <= s <= 2.3 for s in slopes.values()) and max(rel.values()) < 0.05
    out.append(verdict(
        "Delta H = -Cov(log pi, dz) + O(|dz|^2)", "held" if ok else "did not hold",
        f"At lr={cfg.lrs[0]:g} the median relative error of the prediction is {rel['exact_pg']:.2%} (exact PG step) "
        f"and {rel['token']:.2%} (one-token step); the error grows as lr^{slopes['exact_pg']:.2f} and "
        f"lr^{slopes['token']:.2f}, and the second-order bound holds in {bound_ok:.1%} of "
        f"{len(cfg.lrs) * 2 * cfg.n_states} steps."))
    cells = results["signs"]["cells"]
    want = {"positive_mode": True, "negative_mode": False, "positive_rare": False, "negative_rare": True}
    fracs = {k: cells[k]["frac_entropy_down"] for k in want}
    agree = {k: (f if want[k] else 1 - f) for k, f in fracs.items() if f is not None}
    status = "held" if len(agree) == 4 and min(agree.values()) >= 0.99 else "did not hold" if agree else \
        "inconclusive"
    out.append(verdict(
        "positive-advantage updates on likely tokens lower entropy (and on rare tokens raise it)", status,
        "With lr={:g}, entropy fell in {:.1%} of positive-advantage updates of the most likely token and in {:.1%} "
        "of those of rare tokens (pi < e^-H); for negative advantages {:.1%} / {:.1%}; the first-order sign "
        "-A s(a) matched the measured sign in {:.1%} of all updates.".format(
            cfg.lrs[0], *(fracs[k] if fracs[k] is not None else float("nan")
                          for k in ("positive_mode", "positive_rare", "negative_mode", "negative_rare")),
            results["signs"]["first_order_sign_agreement"])))
    mech = results["clip_mechanism"]
    low, high = mech["clip_low_effect"], mech["clip_high_effect"]
    if len(low) >= 2 and len(high) >= 2:
        (ml, sl), (mh, sh) = mean_std(low), mean_std(high)
        sel, seh = sl / np.sqrt(len(low)), sh / np.sqrt(len(high))
        status = "held" if ml > 2 * sel and mh < -2 * seh else "did not hold" if ml < -2 * sel or mh > 2 * seh \
            else "inconclusive"
        text = (f"Removing the clip-low updates changes the entropy change by {ml:+.2e} +- {2 * sel:.1e} nats on "
                f"average ({len(low)} states with clip-low tokens), removing the clip-high updates by {mh:+.2e} +- "
                f"{2 * seh:.1e} ({len(high)} states); first order, second PPO epoch, eps={cfg.clip_eps:g}.")
    else:
        status, text = "inconclusive", f"Too few clipped tokens ({len(low)} / {len(high)} states) to measure."
    out.append(verdict("clip-low raises entropy and clip-high lowers it (per update)", status, text))
    clip = results["clipping"]["arms"]
    tests = {k: paired_test(clip["clip_low"][f"{k}_per_seed"], clip["clip_high"][f"{k}_per_seed"], seed=cfg.seed)
             for k in ("mean", "final")}
    need = {k: _runs_for_power(t) for k, t in tests.items()}
    t = tests["mean"]
    status = "held" if t["p"] < ALPHA and t["mean"] > 0 else "did not hold" if t["p"] < ALPHA else "inconclusive"
    d_low = clip["clip_low"]["final_entropy_mean"] - clip["no_clip"]["final_entropy_mean"]
    d_high = clip["clip_high"]["final_entropy_mean"] - clip["no_clip"]["final_entropy_mean"]
    out.append(verdict(
        "training with clip-low only keeps more entropy than with clip-high only", status,
        f"Over {cfg.clip_steps} PPO steps ({cfg.clip_epochs} epochs, eps={cfg.clip_eps:g}, random rewards, "
        f"{t['n']} paired runs with common random numbers) clip-low only keeps {t['mean']:+.4f} nats (95% CI "
        f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], paired sign-flip p = {t['p']:.4f}) more entropy than clip-high "
        f"only on average over training ({need['mean']} runs give 80% power at this effect); at the end "
        f"{tests['final']['mean']:+.4f} (p = {tests['final']['p']:.4f}; {need['final']} runs needed); relative to no "
        f"clipping they end at {d_low:+.3f} and {d_high:+.3f} (clipping also shrinks the updates)."))
    return out


def _runs_for_power(test: dict, power_z: float = 0.8416) -> int:
    """Paired runs a two-sided 5% test needs for 80% power at the observed mean difference and spread."""
    sd = test["se"] * np.sqrt(test["n"])
    return int(np.ceil(((1.96 + power_z) * sd / max(abs(test["mean"]), 1e-12)) ** 2))


def plot(cfg: DynamicsConfig, results: dict):
    """Prediction error vs lr, measured vs predicted change, and entropy under the clipping arms."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for k, (kind, rows) in enumerate(results["first_order"].items()):
        lrs = [r["lr"] for r in rows]
        axes[0].loglog(lrs, [r["median_abs_error"] for r in rows], "o-", color=f"C{k}", label=f"{kind}: |error|")
        axes[0].loglog(lrs, [r["median_abs_pred"] for r in rows], "s:", color=f"C{k}", label=f"{kind}: |prediction|")
    axes[0].set(xlabel="step size lr", ylabel="median over states (nats)", title="first-order prediction of ΔH")
    axes[0].legend(fontsize=7)
    cells = results["signs"]["cells"]
    names = list(cells)
    axes[1].bar(range(len(names)), [cells[n]["frac_entropy_down"] or 0 for n in names], color="C2")
    axes[1].set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    axes[1].set(ylim=(0, 1), ylabel="fraction of updates with ΔH < 0",
                title="sign of ΔH by advantage and token likelihood")
    clip = results["clipping"]
    for k, (name, info) in enumerate(clip["arms"].items()):
        axes[2].plot(clip["steps"], info["entropy_curve_mean"], color=f"C{k}", label=name)
    axes[2].set(xlabel="step", ylabel="entropy (nats), mean over runs",
                title=f"PPO with random rewards, eps={cfg.clip_eps:g}")
    axes[2].legend(fontsize=8)
    return fig


def run(cfg: DynamicsConfig, show_progress: bool = True):
    """Simulate and judge; returns (results, verdicts, figure) for toy.__main__ to write."""
    results = simulate(cfg, show_progress)
    return results, judge(cfg, results), plot(cfg, results)

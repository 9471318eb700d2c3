"""Figure 1 of AEnt (arXiv 2509.03493) in the regime the paper argues about: irrelevant arms, traps, m optima.

docs/concepts.md claim 6: with |A| = 10^5 and m optimal actions, the full entropy bonus beats no bonus for m ~ 10-15 but
loses that edge for m <= 5, while the clamped bonus keeps an edge. The regime and its closed form live in toy.regime;
the trainers in toy.trap_bandit and toy.trap_tree; the rules that fix every setting in toy.experiments.figure1_plan;
the claims, what refutes each, and the tests in toy.experiments.figure1_claims.

Sweeps (all with the plain policy-gradient step, z <- z + lr g, the update whose convergence the paper's
propositions discuss; no Adam):
- bandit, sampled (primary): G arms drawn per run per step from all 10^5 arms, no pooling of samples;
- bandit, exact: the expected update (exact gradient), long enough to see whether each arm reaches its fixed point;
- tree, sampled: the token tree (10^5 sequences), G sequences per step.
Step size rule: lr = G, so that one draw moves its own logit by at most one nat (|A| <= 1 for the leave-one-out
advantage of rewards in [0, 1], and the REINFORCE term is A / G). Budgets: fixed step counts stated in the config,
set by the time limit of the whole command (5 minutes on 2 cores), never by outcomes.
Runs: every (m, arm, seed) is one row of one batched computation; seed s of every arm and every m shares the prior
logits and the uniforms of its samples (common random numbers), and tests are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aent.config import EntropyConfig
from aent.validation import check
from toy.experiments.common import Timer, progress
from toy.experiments.figure1_claims import judge
from toy.experiments.figure1_plan import arm_name, plan_bandit, plan_tree, predicted_value
from toy.experiments.figure1_plot import plot
from toy.experiments.paired import ALPHA, MIN_EFFECT
from toy.regime import TrapRegime
from toy.trap_bandit import TrapBanditConfig, make_layout, train_trap_bandit
from toy.trap_tree import TrapTreeConfig, make_tree_layout, train_trap_tree

__all__ = ["EXPECTED_S", "NAME", "SUMMARY", "TITLE", "Figure1Config", "arms", "judge", "plot", "run", "simulate"]

NAME = "figure1"
SUMMARY = ("AEnt Figure 1 in the trap regime (10^5 arms or sequences: irrelevant, traps, m optima) on a bandit and a "
           "token tree, plain policy-gradient steps: no control vs entropy bonus vs clamped bonus vs AEnt over a "
           "fixed lambda grid, closed form next to training, paired Holm-corrected verdicts (claim 6)")
TITLE = "Figure 1 of the AEnt paper in its trap regime: a 10^5-arm bandit and a token tree, paired seeds"
EXPECTED_S = 280.0


@dataclass(frozen=True)
class Figure1Config:
    """Settings of the Figure 1 sweep (the defaults are the full run; ``--smoke`` shrinks it)."""

    n_arms: int = 100_000
    """Number of arms |A| (n_individual + a multiple of tail_group)."""
    n_traps: int = 10
    """Trap arms at the top of the prior (>= 1)."""
    trap_reward: float = 0.6
    """Reward of a trap arm, in (0, 1); irrelevant arms pay 0, optimal ones 1."""
    m_values: tuple[int, ...] = (1, 3, 10, 15)
    """Numbers m of optimal arms (each in [1, opt_rank_hi - opt_rank_lo + 1])."""
    small_m_max: int = 5
    """m <= this is 'small m' (the paper: the full bonus loses its edge for m <= 5)."""
    large_m_min: int = 10
    """m >= this is 'large m' (the paper: the full bonus has an edge for m ~ 10-15)."""
    ent_coefs: tuple[float, ...] = (0.05, 0.1, 0.2)
    """The fixed lambda grid of the bonus arms, reported whole (each > 0); its middle value is AEnt's lambda0."""
    clamp_ps: tuple[float, ...] = (0.33, 0.9)
    """Clamp fractions p of the fixed clamped-bonus arms: the paper's 0.33 and a larger one (each in [0, 1))."""
    aent_clamp_p: float = 0.33
    """Clamp fraction of the non-oracle AEnt arm (the paper's), in [0, 1)."""
    aent_band_fractions: tuple[float, ...] = (0.5, 0.8)
    """AEnt's band as fractions (low, high) of the starting policy's clamped entropy (0 < low <= high)."""
    aent_oracle_clamp_p: float = 0.9
    """Clamp fraction of the AEnt oracle arm (band from the closed-form optimum: an upper bound), in [0, 1)."""
    aent_warmup: int = 30
    """Steps before AEnt's coefficient moves (>= 0; the authors' 30)."""
    seeds: int = 16
    """Paired seeds per cell (>= 2; the exact sign-flip test needs >= 10 to reach p < 0.05 / 20 at all)."""
    init_scale: float = 3.0
    """Std of the Gaussian prior logits (>= 0)."""
    opt_rank_lo: int = 200
    """Highest prior rank of an optimal arm (> n_traps)."""
    opt_rank_hi: int = 900
    """Lowest prior rank of an optimal arm (<= n_individual, inside every kept set)."""
    n_individual: int = 1000
    """Arms of highest prior with a logit of their own; the rest are tied in blocks (see toy.trap_bandit)."""
    tail_group: int = 1000
    """Arms per tied block of the prior's tail."""
    baseline: str = "rloo"
    """Baseline of the sampled estimator: rloo or mean (no std normalisation either way)."""
    group_size: int = 16
    """G, arms or sequences sampled per run per step (>= 2)."""
    lr: float = 16.0
    """Plain policy-gradient step size of every sweep (> 0); the rule lr = G (one draw moves its logit <= 1 nat)."""
    steps: int = 800
    """Steps of the sampled bandit runs (>= llm_budget; budget rule: the command's CPU time, docs/toy/results.md)."""
    exact_steps: int = 6000
    """Steps of the exact-gradient bandit runs (>= 1; 0 skips them)."""
    exact_seeds: int = 4
    """Seeds of the exact-gradient runs (the first ones of the sampled seeds; >= 1)."""
    llm_budget: int = 100
    """An LLM-like budget (steps) whose V is reported next to the end of training (>= 1)."""
    record_every: int = 10
    """Curve resolution in steps (>= 1; divides llm_budget)."""
    fixed_point_tol: float = 0.02
    """A cell 'ends at its fixed point' when its mean V is within this of the closed form (> 0)."""
    tree_vocab: int = 316
    """Tokens per step of the token tree (>= n_traps + 2)."""
    tree_horizon: int = 2
    """Tokens per sequence of the tree (>= 1; vocab^horizon sequences)."""
    tree_init_scale: float = 2.0
    """Std of the Gaussian prior logits of every tree state (>= 0)."""
    tree_opt_rank_hi: int = 32
    """Lowest prior rank of an optimal sequence's tokens."""
    tree_ent_coef: float = 0.1
    """lambda of the tree's bonus arms and AEnt's lambda0 there (> 0; the middle of the bandit grid)."""
    tree_clamp_p: float = 0.33
    """Per-token clamp fraction of the tree's clamped arm and AEnt (the paper's), in [0, 1)."""
    tree_steps: int = 300
    """Steps of the tree runs (>= llm_budget; 0 skips the tree)."""
    seed: int = 100
    """Base seed (>= 0): run seeds are seed .. seed + seeds - 1 (the verdict seeds 100-115 are disjoint from the
    development seeds 0-11 on which the budgets were timed)."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), "figure1 option ")

        n_cand = self.opt_rank_hi - self.opt_rank_lo + 1
        need(len(self.m_values) >= 1 and all(1 <= m <= n_cand for m in self.m_values), "m_values",
             f"integers in [1, opt_rank_hi - opt_rank_lo + 1 = {n_cand}]")
        need(1 <= self.small_m_max < self.large_m_min, "small_m_max", f"in [1, large_m_min={self.large_m_min})")
        need(len(self.ent_coefs) >= 1 and all(c > 0 for c in self.ent_coefs), "ent_coefs", "values > 0")
        need(len(self.clamp_ps) >= 1 and all(0 <= p < 1 for p in self.clamp_ps), "clamp_ps", "values in [0, 1)")
        need(0 <= self.aent_clamp_p < 1, "aent_clamp_p", "in [0, 1)")
        need(0 <= self.aent_oracle_clamp_p < 1, "aent_oracle_clamp_p", "in [0, 1)")
        need(len(self.aent_band_fractions) == 2 and 0 < self.aent_band_fractions[0] <= self.aent_band_fractions[1],
             "aent_band_fractions", "two numbers 0 < low <= high")
        need(self.aent_warmup >= 0, "aent_warmup", ">= 0")
        need(self.seeds >= 2, "seeds", "an integer >= 2")
        need(1 <= self.exact_seeds <= self.seeds, "exact_seeds", f"in [1, seeds={self.seeds}]")
        need(self.llm_budget >= 1 and self.llm_budget % self.record_every == 0, "llm_budget",
             f">= 1 and a multiple of record_every={self.record_every}")
        need(self.steps >= self.llm_budget, "steps", f">= llm_budget={self.llm_budget}")
        need(self.exact_steps >= 0, "exact_steps", ">= 0")
        need(self.fixed_point_tol > 0, "fixed_point_tol", "> 0")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.tree_steps == 0 or self.tree_steps >= self.llm_budget, "tree_steps",
             f"0 or >= llm_budget={self.llm_budget}")
        need(self.tree_ent_coef > 0, "tree_ent_coef", "> 0")
        need(0 <= self.tree_clamp_p < 1, "tree_clamp_p", "in [0, 1)")
        self.bandit_config("sampled")  # validate the task and training fields, naming them
        if self.tree_steps:
            self.tree_config()

    @staticmethod
    def smoke() -> dict:
        """Overrides of ``--smoke`` (seconds on one core)."""
        return {"n_arms": 11_000, "steps": 100, "exact_steps": 100, "exact_seeds": 2, "llm_budget": 20,
                "tree_vocab": 40, "tree_opt_rank_hi": 20, "tree_steps": 40}

    def regime(self) -> TrapRegime:
        return TrapRegime(n_items=self.n_arms, n_traps=self.n_traps, trap_reward=self.trap_reward)

    def bandit_config(self, estimator: str) -> TrapBanditConfig:
        exact = estimator == "exact"
        return TrapBanditConfig(
            n_arms=self.n_arms, n_traps=self.n_traps, trap_reward=self.trap_reward, init_scale=self.init_scale,
            opt_rank_lo=self.opt_rank_lo, opt_rank_hi=self.opt_rank_hi, n_individual=self.n_individual,
            tail_group=self.tail_group, estimator=estimator, baseline=self.baseline, group_size=self.group_size,
            lr=self.lr, steps=max(1, self.exact_steps if exact else self.steps), record_every=self.record_every,
            dtype="float32")

    def tree_config(self) -> TrapTreeConfig:
        return TrapTreeConfig(
            vocab=self.tree_vocab, horizon=self.tree_horizon, n_traps=self.n_traps, trap_reward=self.trap_reward,
            init_scale=self.tree_init_scale, opt_rank_hi=self.tree_opt_rank_hi, baseline=self.baseline,
            group_size=self.group_size, update="sgd", lr=self.lr, steps=max(1, self.tree_steps),
            record_every=self.record_every)


def _aent_config(spec: dict) -> EntropyConfig:
    (lo, hi), (bmin, bmax) = spec["band"], spec["box"]
    return EntropyConfig(method="aent", ent_coef=spec["ent_coef"], clamp_p=spec["clamp_p"], band_low=lo, band_high=hi,
                         coef_lr=spec["coef_lr"], warmup=spec["warmup"], coef_min=bmin, coef_max=bmax)


def arms(pl: dict) -> dict[str, tuple[str, EntropyConfig]]:
    """{arm name: (plot label, aent.EntropyConfig)} of a plan, in plotting order."""
    out = {"none": ("no entropy control", EntropyConfig(method="none"))}
    for lam in pl["ent_coefs"]:
        out[arm_name("entropy_bonus", lam)] = (f"entropy bonus λ={lam:g}",
                                               EntropyConfig(method="entropy_bonus", ent_coef=lam))
        for p in pl["clamp_ps"]:
            out[arm_name("clamped", lam, p)] = (f"clamped bonus p={p:g} λ={lam:g}",
                                                EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=p))
    for key, what in (("aent", "start band"), ("aent_oracle", "oracle band, upper bound")):
        if key in pl:
            a = pl[key]
            out[key] = (f"AEnt p={a['clamp_p']:g} ({what} [{a['band'][0]:.2f}, {a['band'][1]:.2f}])", _aent_config(a))
    return out


def _train(cfg: Figure1Config, domain: str, estimator: str, arm_cfgs: dict, show_progress: bool) -> dict:
    """One batched run of every (m, arm, seed); returns {arm: {m: cell}} plus the curve steps."""
    bcfg = cfg.bandit_config(estimator) if domain == "bandit" else cfg.tree_config()
    n_seeds = cfg.exact_seeds if estimator == "exact" else cfg.seeds
    seeds = [cfg.seed + s for s in range(n_seeds)]
    rows, ecfgs, labels = [], [], []
    for m in cfg.m_values:
        for name, (_, ecfg) in arm_cfgs.items():
            for s in seeds:
                rows.append((s, m))
                ecfgs.append(ecfg)
                labels.append((m, name))
    make, train = (make_layout, train_trap_bandit) if domain == "bandit" else (make_tree_layout, train_trap_tree)
    with progress(bcfg.steps, f"figure1 {domain} {estimator} ({len(rows)} runs)", disable=not show_progress) as bar:
        run = train(bcfg, make(bcfg, rows), [s for s, _ in rows], ecfgs, uniform_seed=cfg.seed, progress=bar.update)
    budget = run.steps.index(min(cfg.llm_budget, run.steps[-1]))
    cells: dict = {}
    for name in arm_cfgs:
        cells[name] = {}
        for m in cfg.m_values:
            idx = [i for i, lab in enumerate(labels) if lab == (m, name)]
            v = run.value[:, idx].numpy().astype(float)
            cells[name][str(m)] = {
                "value": v[-1].tolist(), "p_opt": run.p_opt[-1, idx].tolist(),
                "escaped": (run.p_trap[-1, idx] < 0.5).float().tolist(),
                "value_budget": v[budget].tolist(), "value_curve": v.mean(1).tolist(),
                "entropy_final": float(run.entropy[-1, idx].nanmean()),
                "ent_coef_final": float(run.ent_coef[-1, idx].mean()),
            }
    return {"curve_steps": run.steps, "steps": bcfg.steps, "lr": bcfg.lr, "seeds": seeds, "cells": cells,
            "max_entries": getattr(run, "entries", None)}


def _table(cfg: Figure1Config, results: dict) -> list[dict]:
    """Rows for the report: mean V at the end per arm and m, the closed-form fixed point in parentheses."""
    rows = []
    for domain, est in (("bandit", "sampled"), ("bandit", "exact"), ("tree", "sampled")):
        dom = results.get(domain) or {}
        if est not in dom:
            continue
        for name, info in dom["arms"].items():
            row = {"sweep": f"{domain} {est}, {dom[est]['steps']} steps", "arm": info["label"]}
            for m in cfg.m_values:
                v = np.mean(dom[est]["cells"][name][str(m)]["value"])
                row[f"V at m={m} (closed form)"] = f"{v:.3f} ({predicted_value(dom['plan'], name, m, est):.3f})"
            rows.append(row)
    return rows


def simulate(cfg: Figure1Config, show_progress: bool = True) -> dict:
    """Plan, then train the bandit (sampled, exact) and tree sweeps; returns the ``results`` of figure1.json."""
    out = {"regime": {"rewards": cfg.regime().rewards_summary(), "n_traps": cfg.n_traps,
                      "m_values": list(cfg.m_values),
                      "bandit": {"n_arms": cfg.n_arms, "optimal_prior_ranks": [cfg.opt_rank_lo, cfg.opt_rank_hi],
                                 "init_scale": cfg.init_scale},
                      "tree": {"vocab": cfg.tree_vocab, "horizon": cfg.tree_horizon,
                               "n_sequences": cfg.tree_vocab**cfg.tree_horizon,
                               "optimal_token_ranks": [2, cfg.tree_opt_rank_hi], "init_scale": cfg.tree_init_scale}},
           "seeds": [cfg.seed + s for s in range(cfg.seeds)],
           "rule": {"alpha": ALPHA, "min_effect": MIN_EFFECT, "fixed_point_tol": cfg.fixed_point_tol,
                    "update": "plain policy gradient, lr = G", "lr": cfg.lr, "multiple_testing": "Holm"}}
    domains = {"bandit": ("sampled", "exact") if cfg.exact_steps else ("sampled",)}
    if cfg.tree_steps:
        domains["tree"] = ("sampled",)
    for domain, estimators in domains.items():
        pl = plan_bandit(cfg, cfg.bandit_config("sampled")) if domain == "bandit" else plan_tree(cfg, cfg.tree_config())
        arm_cfgs = arms(pl)
        out[domain] = {"plan": pl, "arms": {k: {"label": lab, "entropy_config": e.to_dict()}
                                            for k, (lab, e) in arm_cfgs.items()}}
        for est in estimators:
            timer = Timer()
            out[domain][est] = _train(cfg, domain, est, arm_cfgs, show_progress)
            out[domain][est]["wall_s"] = round(timer.elapsed, 1)
    out["table"] = _table(cfg, out)
    return out


def run(cfg: Figure1Config, show_progress: bool = True):
    """Simulate and judge; returns (results, verdicts, figure) for toy.__main__ to write."""
    results = simulate(cfg, show_progress)
    verdicts, claims = judge(cfg, results)
    results["claims"] = claims
    return results, verdicts, plot(cfg, results)

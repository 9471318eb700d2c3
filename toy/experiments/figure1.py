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

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

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


def _bandit() -> TrapBanditConfig:
    """Figure 1's bandit: TrapBanditConfig's task (10^5 arms, 10 traps at 0.6, optima at prior ranks 200-900) and
    plain PG with lr = G = 16; 800 sampled steps (budget rule: the command's CPU time, docs/toy/results.md);
    float32 state."""
    return TrapBanditConfig(steps=800, dtype="float32")


def _tree() -> TrapTreeConfig:
    """Figure 1's token tree: 316 tokens x 2 (10^5 sequences), plain PG steps with lr = G = 16, 300 steps."""
    return TrapTreeConfig(update="sgd", lr=16.0, steps=300)


@dataclass(frozen=True)
class Figure1Config:
    """Settings of the Figure 1 sweep (the defaults are the full run; ``--smoke`` shrinks it).

    The bandit and the tree are sections, each its trainer's own config (``--bandit-FIELD``, ``--tree-FIELD``);
    the fields here are the sweep's: which m, which arms, how many seeds, how long the exact runs are."""

    FIXED: ClassVar[tuple[str, ...]] = ("bandit.estimator", "tree.update")
    """Set by the sweep, never an option: the bandit runs both estimators; every update is the plain PG step."""

    bandit: TrapBanditConfig = field(default_factory=_bandit)
    """The bandit task and its sampled runs (toy.trap_bandit.TrapBanditConfig; steps >= llm_budget)."""
    tree: TrapTreeConfig = field(default_factory=_tree)
    """The token-tree task and its runs (toy.trap_tree.TrapTreeConfig; steps >= llm_budget)."""
    tree_sweep: bool = True
    """Run the token-tree sweep (--no-tree-sweep skips it)."""
    m_values: tuple[int, ...] = (1, 3, 10, 15)
    """Numbers m of optimal arms (each in [1, bandit.opt_rank_hi - bandit.opt_rank_lo + 1])."""
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
    exact_steps: int = 6000
    """Steps of the exact-gradient bandit runs (>= 0; 0 skips them)."""
    exact_seeds: int = 4
    """Seeds of the exact-gradient runs (the first ones of the sampled seeds; >= 1)."""
    llm_budget: int = 100
    """An LLM-like budget (steps) whose V is reported next to the end of training (>= 1)."""
    fixed_point_tol: float = 0.02
    """A cell 'ends at its fixed point' when its mean V is within this of the closed form (> 0)."""
    tree_ent_coef: float = 0.1
    """lambda of the tree's bonus arms and AEnt's lambda0 there (> 0; the middle of the bandit grid)."""
    tree_clamp_p: float = 0.33
    """Per-token clamp fraction of the tree's clamped arm and AEnt (the paper's), in [0, 1)."""
    seed: int = 100
    """Base seed (>= 0): run seeds are seed .. seed + seeds - 1 (the verdict seeds 100-115 are disjoint from the
    development seeds 0-11 on which the budgets were timed)."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            value = self
            for part in name.split("."):
                value = getattr(value, part)
            check(ok, name, allowed, value, "figure1 option ")

        need(isinstance(self.bandit, TrapBanditConfig), "bandit", "a toy.trap_bandit.TrapBanditConfig")
        need(isinstance(self.tree, TrapTreeConfig), "tree", "a toy.trap_tree.TrapTreeConfig")
        need(self.bandit.estimator == "sampled", "bandit.estimator", "'sampled' (exact_steps sets the exact runs)")
        need(self.tree.update == "sgd", "tree.update", "'sgd' (the plain policy-gradient step of every sweep)")
        bandit, tree = self.bandit, self.tree
        n_cand = bandit.opt_rank_hi - bandit.opt_rank_lo + 1
        need(len(self.m_values) >= 1 and all(1 <= m <= n_cand for m in self.m_values), "m_values",
             f"integers in [1, bandit.opt_rank_hi - bandit.opt_rank_lo + 1 = {n_cand}]")
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
        need(self.llm_budget >= 1 and self.llm_budget % bandit.record_every == 0
             and (not self.tree_sweep or self.llm_budget % tree.record_every == 0), "llm_budget",
             f">= 1 and a multiple of bandit.record_every={bandit.record_every}"
             + (f" and tree.record_every={tree.record_every}" if self.tree_sweep else ""))
        need(bandit.steps >= self.llm_budget, "bandit.steps", f">= llm_budget={self.llm_budget}")
        need(self.exact_steps >= 0, "exact_steps", ">= 0")
        need(self.fixed_point_tol > 0, "fixed_point_tol", "> 0")
        need(self.seed >= 0, "seed", ">= 0")
        need(not self.tree_sweep or tree.steps >= self.llm_budget, "tree.steps", f">= llm_budget={self.llm_budget}")
        need(self.tree_ent_coef > 0, "tree_ent_coef", "> 0")
        need(0 <= self.tree_clamp_p < 1, "tree_clamp_p", "in [0, 1)")

    @staticmethod
    def smoke() -> dict:
        """Overrides of ``--smoke`` (seconds on one core)."""
        return {"bandit.n_arms": 11_000, "bandit.steps": 100, "exact_steps": 100, "exact_seeds": 2, "llm_budget": 20,
                "tree.vocab": 40, "tree.opt_rank_hi": 20, "tree.steps": 40}

    def regime(self) -> TrapRegime:
        b = self.bandit
        return TrapRegime(n_items=b.n_arms, n_traps=b.n_traps, trap_reward=b.trap_reward)

    def bandit_config(self, estimator: str) -> TrapBanditConfig:
        """The bandit section for one estimator: the exact runs take ``exact_steps``."""
        if estimator == "exact":
            return dataclasses.replace(self.bandit, estimator="exact", steps=max(1, self.exact_steps))
        return self.bandit


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
    bcfg = cfg.bandit_config(estimator) if domain == "bandit" else cfg.tree
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
    b, t = cfg.bandit, cfg.tree
    out = {"regime": {"rewards": cfg.regime().rewards_summary(), "n_traps": b.n_traps,
                      "m_values": list(cfg.m_values),
                      "bandit": {"n_arms": b.n_arms, "optimal_prior_ranks": [b.opt_rank_lo, b.opt_rank_hi],
                                 "init_scale": b.init_scale},
                      "tree": {"vocab": t.vocab, "horizon": t.horizon, "n_sequences": t.vocab**t.horizon,
                               "optimal_token_ranks": [2, t.opt_rank_hi], "init_scale": t.init_scale}},
           "seeds": [cfg.seed + s for s in range(cfg.seeds)],
           "rule": {"alpha": ALPHA, "min_effect": MIN_EFFECT, "fixed_point_tol": cfg.fixed_point_tol,
                    "update": "plain policy gradient, lr = G", "lr": b.lr, "multiple_testing": "Holm"}}
    domains = {"bandit": ("sampled", "exact") if cfg.exact_steps else ("sampled",)}
    if cfg.tree_sweep:
        domains["tree"] = ("sampled",)
    for domain, estimators in domains.items():
        pl = plan_bandit(cfg, cfg.bandit) if domain == "bandit" else plan_tree(cfg, cfg.tree)
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

"""Figure 1 of AEnt (arXiv 2509.03493) in the regime the paper argues about: irrelevant arms, traps, m optima.

docs/concepts.md claim 6: with |A| = 10^5 and m optimal actions, the full entropy bonus beats no bonus for m ~ 10-15 but
loses that edge for m <= 5, while the clamped bonus keeps an edge. The regime (docs/toy/results.md, written before
the runs) and its closed form live in toy.regime; the trainers in toy.trap_bandit (and toy.trap_tree).

Everything that decides the outcome is fixed before training, from the closed form only:
- lambda = toy.regime.derive_ent_coef: the full bonus's regularised optimum reaches V = r_t (the value of a policy
  trapped on the traps) at m_c = sqrt(5 * 10), between the m values the paper contrasts;
- the clamp fractions 0.33 (the LLM value), 0.9 and 0.99 are compared with the largest kept set that still beats
  the trap at m = 1 (toy.regime.min_kept);
- AEnt's band is the range of the clamped entropy of its clamped optimum over the m values, its box [lambda/4,
  4 lambda];
- the verdict rule (toy.experiments.paired.edge_status) and the times at which it is applied: the end of training
  (the fixed point; criterion below) and an LLM-like budget of ``llm_budget`` steps.
Fixed-point criterion: a cell counts as converged when its mean V moved by less than FIXED_POINT_TOL over the last
``fixed_window`` steps. Runs: every (m, arm, seed) is one row of one batched computation; seed s of every arm and
every m shares the prior logits and the uniforms of its samples (common random numbers), and tests are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aent.config import EntropyConfig
from aent.validation import check
from toy.experiments.common import Timer, progress, verdict
from toy.experiments.figure1_plan import plan_bandit, plan_tree, predicted_value
from toy.experiments.figure1_plot import plot
from toy.experiments.paired import ALPHA, MIN_EFFECT, edge_status, paired_test
from toy.regime import TrapRegime
from toy.trap_bandit import TrapBanditConfig, make_layout, train_trap_bandit
from toy.trap_tree import TrapTreeConfig, make_tree_layout, train_trap_tree

__all__ = ["NAME", "SUMMARY", "Figure1Config", "arms", "judge", "plot", "run", "simulate"]

NAME = "figure1"
SUMMARY = ("AEnt Figure 1 in the trap regime (10^5 arms or sequences: irrelevant, traps, m optima) on a bandit and a "
           "token tree: no control vs entropy bonus vs clamped bonus vs AEnt, closed form next to training, paired "
           "verdicts (claim 6)")
FIXED_POINT_TOL = 0.01


@dataclass(frozen=True)
class Figure1Config:
    """Settings of the Figure 1 sweep (the defaults are the full run; ``--smoke`` shrinks it)."""

    n_arms: int = 100_000
    """Number of arms |A| (n_individual + a multiple of tail_group)."""
    n_traps: int = 10
    """Trap arms at the top of the prior (>= 1)."""
    trap_reward: float = 0.6
    """Reward of a trap arm, in (0, 1); irrelevant arms pay 0, optimal ones 1."""
    m_values: tuple[int, ...] = (1, 3, 5, 10, 15)
    """Numbers m of optimal arms (each in [1, opt_rank_hi - opt_rank_lo + 1])."""
    crossover: tuple[int, ...] = (5, 10)
    """The two m values between which lambda puts the full bonus's crossover (lambda is derived, not tuned)."""
    seeds: int = 32
    """Paired seeds per cell (>= 2)."""
    init_scale: float = 3.0
    """Std of the Gaussian prior logits (>= 0)."""
    opt_rank_lo: int = 200
    """Highest prior rank of an optimal arm (> n_traps); below ~init_scale^2 std the entropy gradient lifts it."""
    opt_rank_hi: int = 900
    """Lowest prior rank of an optimal arm (<= n_individual, inside every kept set)."""
    n_individual: int = 1000
    """Arms of highest prior represented one by one (the rest pooled, see toy.trap_bandit)."""
    tail_group: int = 1000
    """Irrelevant arms per pooled tail entry."""
    clamp_ps: tuple[float, ...] = (0.33, 0.9, 0.99)
    """Clamp fractions p of the fixed clamped-bonus arms (each in [0, 1)); the last is the primary one."""
    aent_clamp_p: float = 0.99
    """Clamp fraction of the AEnt arm, in [0, 1)."""
    aent_coef_lr: float = 0.01
    """AEnt's coefficient step beta (>= 0)."""
    aent_warmup: int = 10
    """Steps before AEnt's coefficient moves (>= 0)."""
    baseline: str = "rloo"
    """Baseline of the sampled estimator: rloo or mean (no std normalisation either way)."""
    group_size: int = 16
    """Arms sampled per run per step (>= 2)."""
    lr: float = 0.1
    """Adam step size of the sampled runs (> 0)."""
    steps: int = 2000
    """Steps of the sampled runs (>= llm_budget)."""
    exact_lr: float = 0.05
    """Adam step size of the exact-gradient runs (> 0)."""
    exact_steps: int = 400
    """Steps of the exact-gradient runs (>= 1; 0 skips them)."""
    llm_budget: int = 100
    """Step at which the 'LLM budget' verdicts are taken (>= 1)."""
    fixed_window: int = 200
    """Window (steps) of the fixed-point criterion (>= record_every)."""
    record_every: int = 10
    """Curve resolution in steps (>= 1; divides llm_budget)."""
    tree_vocab: int = 316
    """Tokens per step of the token tree (>= n_traps + 2)."""
    tree_horizon: int = 2
    """Tokens per sequence of the tree (>= 1; vocab^horizon sequences)."""
    tree_init_scale: float = 2.0
    """Std of the Gaussian prior logits of every tree state (>= 0)."""
    tree_opt_rank_hi: int = 32
    """Lowest prior rank of an optimal sequence's tokens (inside every kept set: <= tokens kept per state)."""
    tree_clamp_ps: tuple[float, ...] = (0.33, 0.68, 0.9)
    """Per-token clamp fractions of the tree's clamped arms; the last is the primary one."""
    tree_aent_clamp_p: float = 0.9
    """Per-token clamp fraction of the tree's AEnt arm."""
    tree_lr: float = 0.1
    """Adam step size of the tree runs (> 0)."""
    tree_steps: int = 300
    """Steps of the tree runs (>= llm_budget; 0 skips the tree)."""
    seed: int = 0
    """Base seed (>= 0): run seeds are seed .. seed + seeds - 1."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), "figure1 option ")

        n_cand = self.opt_rank_hi - self.opt_rank_lo + 1
        need(len(self.m_values) >= 1 and all(1 <= m <= n_cand for m in self.m_values), "m_values",
             f"integers in [1, opt_rank_hi - opt_rank_lo + 1 = {n_cand}]")
        need(len(self.crossover) == 2 and 1 <= self.crossover[0] < self.crossover[1], "crossover",
             "two integers 1 <= low < high")
        need(self.seeds >= 2, "seeds", "an integer >= 2")
        need(len(self.clamp_ps) >= 1 and all(0 <= p < 1 for p in self.clamp_ps), "clamp_ps", "values in [0, 1)")
        need(0 <= self.aent_clamp_p < 1, "aent_clamp_p", "in [0, 1)")
        need(self.aent_coef_lr >= 0, "aent_coef_lr", ">= 0")
        need(self.aent_warmup >= 0, "aent_warmup", ">= 0")
        need(self.llm_budget >= 1 and self.llm_budget % self.record_every == 0, "llm_budget",
             f">= 1 and a multiple of record_every={self.record_every}")
        need(self.steps >= self.llm_budget, "steps", f">= llm_budget={self.llm_budget}")
        need(self.exact_steps >= 0, "exact_steps", ">= 0")
        need(self.exact_lr > 0, "exact_lr", "> 0")
        need(self.fixed_window >= self.record_every, "fixed_window", f">= record_every={self.record_every}")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.tree_steps == 0 or self.tree_steps >= self.llm_budget, "tree_steps",
             f"0 or >= llm_budget={self.llm_budget}")
        need(all(0 <= p < 1 for p in self.tree_clamp_ps) and len(self.tree_clamp_ps) >= 1, "tree_clamp_ps",
             "values in [0, 1)")
        need(0 <= self.tree_aent_clamp_p < 1, "tree_aent_clamp_p", "in [0, 1)")
        self.bandit_config("sampled")  # validate the task and training fields, naming them
        if self.tree_steps:
            self.tree_config()

    @staticmethod
    def smoke() -> dict:
        """Overrides of ``--smoke`` (seconds on one core)."""
        return {"n_arms": 11_000, "n_individual": 1000, "tail_group": 1000, "m_values": (1, 15), "seeds": 3,
                "steps": 40, "exact_steps": 20, "llm_budget": 20, "fixed_window": 20, "tree_vocab": 40,
                "tree_opt_rank_hi": 20, "tree_steps": 20}

    def regime(self) -> TrapRegime:
        return TrapRegime(n_items=self.n_arms, n_traps=self.n_traps, trap_reward=self.trap_reward)

    def bandit_config(self, estimator: str) -> TrapBanditConfig:
        exact = estimator == "exact"
        return TrapBanditConfig(
            n_arms=self.n_arms, n_traps=self.n_traps, trap_reward=self.trap_reward, init_scale=self.init_scale,
            opt_rank_lo=self.opt_rank_lo, opt_rank_hi=self.opt_rank_hi, n_individual=self.n_individual,
            tail_group=self.tail_group, estimator=estimator, baseline=self.baseline, group_size=self.group_size,
            lr=self.exact_lr if exact else self.lr, steps=max(1, self.exact_steps if exact else self.steps),
            record_every=self.record_every)

    def tree_config(self) -> TrapTreeConfig:
        return TrapTreeConfig(
            vocab=self.tree_vocab, horizon=self.tree_horizon, n_traps=self.n_traps, trap_reward=self.trap_reward,
            init_scale=self.tree_init_scale, opt_rank_hi=self.tree_opt_rank_hi, baseline=self.baseline,
            group_size=self.group_size, lr=self.tree_lr, steps=max(1, self.tree_steps),
            record_every=self.record_every)


def arms(cfg: Figure1Config, pl: dict) -> dict[str, tuple[str, EntropyConfig]]:
    """{arm name: (plot label, aent.EntropyConfig)} in plotting order."""
    lam = pl["ent_coef"]
    out = {"none": ("no entropy control", EntropyConfig(method="none")),
           "entropy_bonus": (f"entropy bonus λ={lam:.3f}", EntropyConfig(method="entropy_bonus", ent_coef=lam))}
    for p in pl["clamp_ps"]:
        out[f"clamped_p{p:g}"] = (f"clamped bonus p={p:g}",
                                  EntropyConfig(method="clamped_bonus", ent_coef=lam, clamp_p=p))
    (lo, hi), (bmin, bmax), pa = pl["aent_band"], pl["aent_box"], pl["aent_clamp_p"]
    out["aent"] = (f"AEnt p={pa:g}, band [{lo:.2f}, {hi:.2f}]",
                   EntropyConfig(method="aent", ent_coef=lam, clamp_p=pa, band_low=lo, band_high=hi,
                                 coef_lr=cfg.aent_coef_lr, warmup=cfg.aent_warmup, coef_min=bmin, coef_max=bmax))
    return out


def _train(cfg: Figure1Config, domain: str, estimator: str, arm_cfgs: dict, show_progress: bool) -> dict:
    """One batched run of every (m, arm, seed); returns {arm: {m: cell}} plus the curve steps."""
    bcfg = cfg.bandit_config(estimator) if domain == "bandit" else cfg.tree_config()
    seeds = [cfg.seed + s for s in range(cfg.seeds)]
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
    steps = run.steps
    budget = steps.index(min(cfg.llm_budget, steps[-1]))
    back = steps.index(max(0, steps[-1] - cfg.fixed_window) // cfg.record_every * cfg.record_every) \
        if steps[-1] >= cfg.fixed_window else 0
    cells: dict = {}
    for name in arm_cfgs:
        cells[name] = {}
        for m in cfg.m_values:
            idx = [i for i, lab in enumerate(labels) if lab == (m, name)]
            v = run.value[:, idx].numpy().astype(float)
            cells[name][str(m)] = {
                "value": v[-1].tolist(), "p_opt": run.p_opt[-1, idx].tolist(),
                "escaped": (run.p_trap[-1, idx] < 0.5).float().tolist(),
                "value_budget": v[budget].tolist(), "p_opt_budget": run.p_opt[budget, idx].tolist(),
                "escaped_budget": (run.p_trap[budget, idx] < 0.5).float().tolist(),
                "value_curve": v.mean(1).tolist(),
                "entropy_final": float(run.entropy[-1, idx].nanmean()),
                "ent_coef_final": float(run.ent_coef[-1, idx].mean()),
                "fixed_point_drift": float(abs(v[-1].mean() - v[back].mean())),
            }
    return {"curve_steps": steps, "steps": bcfg.steps, "lr": bcfg.lr, "cells": cells}


def _table(cfg: Figure1Config, results: dict) -> list[dict]:
    """Rows for the report: mean V at the end per arm and m, with the closed-form fixed point in parentheses."""
    rows = []
    for domain in ("bandit", "tree"):
        dom = results.get(domain)
        if not dom:
            continue
        for est in ("sampled", "exact"):
            if est not in dom:
                continue
            for name, info in dom["arms"].items():
                row = {"sweep": f"{domain} {est}", "arm": info["label"]}
                for m in cfg.m_values:
                    v = dom[est]["cells"][name][str(m)]["value"]
                    row[f"V at m={m} (closed form)"] = f"{np.mean(v):.3f} ({predicted_value(dom['plan'], name, m, est):.3f})"
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
           "rule": {"alpha": ALPHA, "min_effect": MIN_EFFECT, "fixed_point_tol": FIXED_POINT_TOL}}
    domains = {"bandit": ("sampled", "exact") if cfg.exact_steps else ("sampled",)}
    if cfg.tree_steps:
        domains["tree"] = ("sampled",)
    for domain, estimators in domains.items():
        pl = plan_bandit(cfg) if domain == "bandit" else plan_tree(cfg, cfg.tree_config())
        arm_cfgs = arms(cfg, pl)
        out[domain] = {"plan": pl, "arms": {k: {"label": lab, "entropy_config": e.to_dict()}
                                            for k, (lab, e) in arm_cfgs.items()}}
        for est in estimators:
            timer = Timer()
            out[domain][est] = _train(cfg, domain, est, arm_cfgs, show_progress)
            out[domain][est]["wall_s"] = round(timer.elapsed, 1)
    out["table"] = _table(cfg, out)
    return out


# --------------------------------------------------------------------------------------------------- verdicts
def _pooled(cells: dict, arm: str, ms: list[int], key: str) -> np.ndarray:
    """Per-seed mean over the m values ``ms`` of one metric (one number per seed)."""
    return np.mean([cells[arm][str(m)][key] for m in ms], axis=0)


def _pred_pooled(pl: dict, arm: str, ms: list[int], estimator: str) -> float:
    return float(np.mean([predicted_value(pl, arm, m, estimator) - predicted_value(pl, "none", m, estimator) for m in ms]))


def _claims(cfg: Figure1Config, pl: dict) -> list[tuple[str, str, list[int], str]]:
    """(claim, arm, m values, wanted status) of the four Figure 1 claims."""
    large = [m for m in cfg.m_values if m >= cfg.crossover[1]]
    small = [m for m in cfg.m_values if m <= cfg.crossover[0]]
    p = pl["clamp_ps"][-1]
    return [("full bonus beats no control for large m", "entropy_bonus", large, "edge"),
            ("full bonus loses that edge for small m", "entropy_bonus", small, "no edge"),
            (f"clamped bonus (p={p:g}) keeps an edge for small m", f"clamped_p{p:g}", small, "edge"),
            ("AEnt beats no control averaged over all m", "aent", list(cfg.m_values), "edge")]


def _judge_one(cfg: Figure1Config, dom: dict, cells: dict, when: str, label: str, estimator: str) -> list[dict]:
    key, esc_key = ("value", "escaped") if when == "end" else ("value_budget", "escaped_budget")
    out = []
    for claim, arm, ms, want in _claims(cfg, dom["plan"]):
        if not ms:
            out.append(verdict(f"{claim} [{label}]", "inconclusive", f"Not tested: no m value on that side of "
                               f"the crossover {list(cfg.crossover)}."))
            continue
        t = paired_test(_pooled(cells, arm, ms, key), _pooled(cells, "none", ms, key), seed=cfg.seed)
        status = edge_status(t)
        result = "held" if status == want else "inconclusive" if status == "undecided" else "did not hold"
        pred = _pred_pooled(dom["plan"], arm, ms, estimator)
        esc = np.mean([cells[arm][str(m)][esc_key] for m in ms])
        out.append(verdict(
            f"{claim} [{label}]", result,
            f"At m in {ms}, V({arm}) - V(none) = {t['mean']:+.3f} (95% CI [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}], "
            f"paired sign-flip p = {t['p']:.4f}, {t['n']} seeds): {status}; the closed form predicts "
            f"{pred:+.3f} at the fixed point; {esc:.0%} of the {arm} runs escaped the trap."))
    return out


def _matches_closed_form(cfg: Figure1Config, dom: dict, res: dict, label: str) -> dict:
    """Verdict: the regularised arms of a sweep end within FIXED_POINT_TOL of their closed-form fixed point."""
    pred = dom["plan"]["predictions"]
    gaps = {(a, m): abs(np.mean(res["cells"][a][str(m)]["value"]) - pred[a][str(m)]["value"])
            for a in res["cells"] if a not in ("none", "aent") for m in cfg.m_values}
    (arm, m), worst = max(gaps.items(), key=lambda kv: kv[1])
    status = "held" if worst < FIXED_POINT_TOL else "did not hold"
    return verdict(f"training ends at the closed-form fixed point [{label}]", status,
                   f"Largest gap between the mean final V and the closed form over the fixed-lambda bonus arms: "
                   f"{worst:.4f} ({arm}, m = {m}); tolerance {FIXED_POINT_TOL:g}.")


def judge(cfg: Figure1Config, results: dict) -> list[dict]:
    """Per sweep: the four claims at the end of training (and, sampled, at the LLM budget); closed-form match."""
    out = []
    for domain in ("bandit", "tree"):
        dom = results.get(domain)
        if not dom:
            continue
        for est in ("sampled", "exact"):
            res = dom.get(est)
            if res is None:
                continue
            cells = res["cells"]
            drift = max(c["fixed_point_drift"] for per_m in cells.values() for c in per_m.values())
            at_fp = "fixed point" if drift < FIXED_POINT_TOL else f"end of training, {res['steps']} steps"
            label = f"{domain}, {est}, {at_fp}"
            out += _judge_one(cfg, dom, cells, "end", label, est)
            if est == "sampled":
                out += _judge_one(cfg, dom, cells, "budget", f"{domain}, {est}, LLM budget {cfg.llm_budget} steps", est)
            out.append(_matches_closed_form(cfg, dom, res, f"{domain}, {est}"))
    return out


def run(cfg: Figure1Config, show_progress: bool = True):
    """Simulate and judge; returns (results, verdicts, figure) for toy.__main__ to write."""
    results = simulate(cfg, show_progress)
    return results, judge(cfg, results), plot(cfg, results)

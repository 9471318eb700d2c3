"""What Figure 1 fixes before training, by stated rules only: lambda grid, kept sets, AEnt's bands, predictions.

Rules (docs/toy/results.md, "The rules, written before the runs"):
- lambda: a fixed grid (Figure1Config.ent_coefs), reported whole; every fixed bonus arm runs at every lambda;
- clamp fractions: the paper's p = 0.33 next to a larger p (Figure1Config.clamp_ps);
- AEnt (the non-oracle arm, as an LLM user would set it): lambda0 = the middle of the grid, p = aent_clamp_p, band =
  ``aent_band_fractions`` times the clamped entropy of the *starting* policy (mean over the run seeds' priors), box
  and beta in the authors' ratios to lambda0 (box [0.3, 4.5] lambda0, beta = lambda0: their Qwen2.5-Math setting,
  lambda0 = 0.002, box [6e-4, 9e-3], beta = 0.002), warm-up as theirs;
- AEnt oracle (labelled upper bound): its band is the range over m of the clamped entropy of its own clamped optimum,
  which no LLM run can know.
Predictions: the Gibbs optimum pi(y) ~ exp(R(y) / lambda) on the kept items (toy.regime.gibbs_point for the bandit;
toy.exact.regularized_optimum on a task's reward table for the tree).
"""

from __future__ import annotations

import math

import torch

from aent.entropy import clamped_entropy
from toy.exact import regularized_optimum
from toy.multiset import kept_counts, multiset_entropy
from toy.regime import TrapRegime, aent_fixed_point, gibbs_point
from toy.trap_bandit import make_layout
from toy.trap_tree import TrapTreeConfig, make_tree_layout

__all__ = ["AUTHORS_BETA_RATIO", "AUTHORS_BOX_RATIO", "arm_name", "plan_bandit", "plan_tree", "predicted_value"]

AUTHORS_BOX_RATIO = (0.3, 4.5)  # [6e-4, 9e-3] / 0.002 (AEnt, Qwen2.5-Math-1.5B on MATH)
AUTHORS_BETA_RATIO = 1.0  # beta / lambda0 = 0.002 / 0.002


def arm_name(kind: str, lam: float | None = None, p: float | None = None) -> str:
    """Result-file key of an arm: none, aent, aent_oracle, entropy_bonus_l0.1, clamped_p0.33_l0.1."""
    if kind in ("none", "aent", "aent_oracle"):
        return kind
    return f"entropy_bonus_l{lam:g}" if kind == "entropy_bonus" else f"clamped_p{p:g}_l{lam:g}"


def _kept(n: int, p: float) -> int:
    return n - math.floor(p * n)


def _lam0(grid) -> float:
    return sorted(grid)[len(grid) // 2]


def _aent_common(cfg, lam0: float) -> dict:
    lo, hi = AUTHORS_BOX_RATIO
    return {"ent_coef": lam0, "box": [lo * lam0, hi * lam0], "coef_lr": AUTHORS_BETA_RATIO * lam0,
            "warmup": cfg.aent_warmup}


def _start_band(cfg, start_entropy: float) -> list[float]:
    return [f * start_entropy for f in cfg.aent_band_fractions]


def plan_bandit(cfg, bcfg) -> dict:
    """The bandit's plan (cfg: toy.experiments.figure1.Figure1Config; bcfg: its bandit section)."""
    reg = TrapRegime(n_items=bcfg.n_arms, n_traps=bcfg.n_traps, trap_reward=bcfg.trap_reward)
    seeds = [cfg.seed + s for s in range(cfg.seeds)]
    lay = make_layout(bcfg, [(s, 1) for s in seeds])
    counts = lay.counts.expand_as(lay.logits0)
    h0 = float(multiset_entropy(lay.logits0, kept_counts(lay.logits0, counts, cfg.aent_clamp_p)).mean())
    lam0 = _lam0(cfg.ent_coefs)
    pred: dict = {"none": {str(m): {"value": bcfg.trap_reward, "value_exact": 1.0, "note": "a policy committed to "
                                    "the traps stays there (V = r_t); the exact gradient's only stable point is "
                                    "V* = 1"} for m in cfg.m_values}}
    for lam in cfg.ent_coefs:
        pred[arm_name("entropy_bonus", lam)] = {str(m): gibbs_point(reg, m, lam) for m in cfg.m_values}
        for p in cfg.clamp_ps:
            pred[arm_name("clamped", lam, p)] = {str(m): gibbs_point(reg, m, lam, _kept(bcfg.n_arms, p))
                                                 for m in cfg.m_values}
    common = _aent_common(cfg, lam0)
    band = _start_band(cfg, h0)
    k_a, k_o = _kept(bcfg.n_arms, cfg.aent_clamp_p), _kept(bcfg.n_arms, cfg.aent_oracle_clamp_p)
    pred["aent"] = {str(m): aent_fixed_point(reg, m, k_a, lam0, tuple(band), tuple(common["box"]))
                    for m in cfg.m_values}
    ents = [gibbs_point(reg, m, lam0, k_o)["entropy"] for m in cfg.m_values]
    oracle_band = [min(ents), max(ents)]
    pred["aent_oracle"] = {str(m): aent_fixed_point(reg, m, k_o, lam0, tuple(oracle_band), tuple(common["box"]))
                           for m in cfg.m_values}
    return {"n_items": bcfg.n_arms, "ent_coefs": list(cfg.ent_coefs), "clamp_ps": list(cfg.clamp_ps),
            "kept": {f"p{p:g}": _kept(bcfg.n_arms, p) for p in {*cfg.clamp_ps, cfg.aent_clamp_p,
                                                                cfg.aent_oracle_clamp_p}},
            "aent": {**common, "clamp_p": cfg.aent_clamp_p, "band": band, "start_clamped_entropy": h0,
                     "band_rule": f"{list(cfg.aent_band_fractions)} x the starting policy's clamped entropy"},
            "aent_oracle": {**common, "clamp_p": cfg.aent_oracle_clamp_p, "band": oracle_band,
                            "band_rule": "range over m of the clamped entropy of the clamped optimum (oracle)"},
            "predictions": pred}


def _tree_point(table, vocab: int, horizon: int, lam: float, p: float) -> dict[str, float]:
    opt = regularized_optimum(table, vocab, lam, p)
    return {"value": opt.value, "entropy_per_token": opt.entropy / horizon}


def plan_tree(cfg, tcfg: TrapTreeConfig) -> dict:
    """The tree's plan: one lambda (tree_ent_coef), the full bonus, one clamp fraction and the non-oracle AEnt."""
    n_seq = tcfg.vocab**tcfg.horizon
    seeds = [cfg.seed + s for s in range(cfg.seeds)]
    lay = make_tree_layout(tcfg, [(cfg.seed, m) for m in cfg.m_values])
    tables = lay.tables.double()
    lam, p = cfg.tree_ent_coef, cfg.tree_clamp_p
    args = (tcfg.vocab, tcfg.horizon, lam)
    pred: dict = {"none": {str(m): {"value": tcfg.trap_reward} for m in cfg.m_values},
                  arm_name("entropy_bonus", lam): {str(m): _tree_point(t, *args, 0.0)
                                                   for m, t in zip(cfg.m_values, tables)},
                  arm_name("clamped", lam, p): {str(m): _tree_point(t, *args, p) for m, t in zip(cfg.m_values, tables)}}
    roots = torch.stack([make_tree_layout(tcfg, [(s, 1)]).logits0[s][0] for s in seeds])
    h0 = float(clamped_entropy(roots, p).mean())  # the starting policy's per-token clamped entropy at the root
    common = _aent_common(cfg, lam)
    band = _start_band(cfg, h0)
    pred["aent"] = {str(m): {**_tree_point(t, *args, p), "ent_coef": lam} for m, t in zip(cfg.m_values, tables)}
    return {"n_items": n_seq, "ent_coefs": [lam], "clamp_ps": [p],
            "kept_tokens_per_state": {f"p{p:g}": _kept(tcfg.vocab, p)},
            "aent": {**common, "clamp_p": p, "band": band, "start_clamped_entropy": h0,
                     "band_rule": f"{list(cfg.aent_band_fractions)} x the starting root's clamped entropy per token"},
            "predictions": pred}


def predicted_value(pl: dict, arm: str, m: int, estimator: str) -> float:
    """Closed-form fixed point of an arm (no control: trapped when sampled, V* = 1 with the exact gradient)."""
    cell = pl["predictions"][arm][str(m)]
    return cell.get("value_exact", cell["value"]) if estimator == "exact" else cell["value"]

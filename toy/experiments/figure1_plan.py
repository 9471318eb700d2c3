"""What Figure 1 fixes before training, from the closed form only: lambda, kept sets, AEnt's band, predictions.

For the bandit (N = n_arms items) toy.regime gives everything in closed form. For the token tree (N = A^H
sequences) the full bonus's optimum is the same closed form over sequences, and the per-token clamped optimum is
solved exactly on a task's reward table by toy.exact.regularized_optimum (soft value recursion keeping the K
children of largest soft value per state). The tasks of one m differ between seeds only in which tokens are
optimal, not in their counts or kept-tree shape, so the prediction of the first seed's task holds for all.

lambda (both domains): toy.regime.derive_ent_coef puts the full bonus's crossover V = r_t at
m_c = sqrt(crossover[0] crossover[1]). AEnt's band is the range over m of the (token-mean) clamped entropy of its
clamped optimum at that lambda; its box is [lambda/4, 4 lambda].
"""

from __future__ import annotations

import math

from toy.exact import regularized_optimum
from toy.regime import TrapRegime, aent_fixed_point, derive_ent_coef, gibbs_point, min_kept
from toy.trap_tree import TrapTreeConfig, make_tree_layout

__all__ = ["BOX_FACTOR", "plan_bandit", "plan_tree", "predicted_value"]

BOX_FACTOR = 4.0  # AEnt's box is [lambda / BOX_FACTOR, lambda * BOX_FACTOR]


def _kept(n: int, p: float) -> int:
    return n - math.floor(p * n)


def _base(regime: TrapRegime, m_values, crossover, trap_reward: float) -> tuple[float, dict]:
    lam = derive_ent_coef(regime, *crossover)
    # Sampled updates stop reinforcing arms that are no longer drawn, so a policy that committed to the traps stays
    # there (V = r_t); the exact gradient of V has the global optimum V* = 1 as its only stable point.
    none = {str(m): {"value": trap_reward, "value_exact": 1.0, "p_opt": 0.0, "note": "sampled: trapped at r_t; "
                     "exact gradient: V* = 1"} for m in m_values}
    return lam, none


def plan_bandit(cfg) -> dict:
    """The bandit's plan (cfg: toy.experiments.figure1.Figure1Config)."""
    reg = TrapRegime(n_items=cfg.n_arms, n_traps=cfg.n_traps, trap_reward=cfg.trap_reward)
    lam, none = _base(reg, cfg.m_values, cfg.crossover, cfg.trap_reward)
    k_aent = _kept(cfg.n_arms, cfg.aent_clamp_p)
    ents = [gibbs_point(reg, m, lam, k_aent)["entropy"] for m in cfg.m_values]
    band, box = (min(ents), max(ents)), (lam / BOX_FACTOR, lam * BOX_FACTOR)
    pred = {"none": none, "entropy_bonus": {str(m): gibbs_point(reg, m, lam) for m in cfg.m_values}}
    for p in cfg.clamp_ps:
        pred[f"clamped_p{p:g}"] = {str(m): gibbs_point(reg, m, lam, _kept(cfg.n_arms, p)) for m in cfg.m_values}
    pred["aent"] = {str(m): aent_fixed_point(reg, m, k_aent, lam, band, box) for m in cfg.m_values}
    return {"n_items": cfg.n_arms, "ent_coef": lam, "m_crossover": math.sqrt(cfg.crossover[0] * cfg.crossover[1]),
            "largest_kept_with_edge_at_min_m": min_kept(reg, min(cfg.m_values), lam),
            "clamp_ps": list(cfg.clamp_ps), "aent_clamp_p": cfg.aent_clamp_p,
            "kept": {f"clamped_p{p:g}": _kept(cfg.n_arms, p) for p in cfg.clamp_ps} | {"aent": k_aent},
            "aent_band": list(band), "aent_box": list(box), "predictions": pred}


def _tree_point(table, vocab: int, horizon: int, lam: float, p: float) -> dict[str, float]:
    opt = regularized_optimum(table, vocab, lam, p)
    return {"value": opt.value, "entropy_per_token": opt.entropy / horizon, "n_optimal_kept": opt.n_optimal_kept}


def plan_tree(cfg, tcfg: TrapTreeConfig) -> dict:
    """The tree's plan (cfg: Figure1Config; tcfg: the tree task family)."""
    n_seq = tcfg.vocab**tcfg.horizon
    reg = TrapRegime(n_items=n_seq, n_traps=cfg.n_traps, trap_reward=cfg.trap_reward)
    lam, none = _base(reg, cfg.m_values, cfg.crossover, cfg.trap_reward)
    tables = make_tree_layout(tcfg, [(cfg.seed, m) for m in cfg.m_values]).tables.double()
    args = (tcfg.vocab, tcfg.horizon, lam)
    pred = {"none": none, "entropy_bonus": {str(m): _tree_point(t, *args, 0.0) for m, t in zip(cfg.m_values, tables)}}
    for p in cfg.tree_clamp_ps:
        pred[f"clamped_p{p:g}"] = {str(m): _tree_point(t, *args, p) for m, t in zip(cfg.m_values, tables)}
    aent = {str(m): _tree_point(t, *args, cfg.tree_aent_clamp_p) for m, t in zip(cfg.m_values, tables)}
    ents = [a["entropy_per_token"] for a in aent.values()]
    for a in aent.values():  # the band is the range of these entropies, so lambda stays put at the optimum
        a["ent_coef"] = lam
    pred["aent"] = aent
    kept_tok = {f"clamped_p{p:g}": _kept(tcfg.vocab, p) for p in cfg.tree_clamp_ps}
    return {"n_items": n_seq, "ent_coef": lam, "m_crossover": math.sqrt(cfg.crossover[0] * cfg.crossover[1]),
            "clamp_ps": list(cfg.tree_clamp_ps), "aent_clamp_p": cfg.tree_aent_clamp_p,
            "kept_tokens_per_state": kept_tok | {"aent": _kept(tcfg.vocab, cfg.tree_aent_clamp_p)},
            "aent_band": [min(ents), max(ents)], "aent_box": [lam / BOX_FACTOR, lam * BOX_FACTOR],
            "predictions": pred}


def predicted_value(pl: dict, arm: str, m: int, estimator: str) -> float:
    """Closed-form fixed point of an arm (no control: trapped when sampled, V* = 1 with the exact gradient)."""
    cell = pl["predictions"][arm][str(m)]
    return cell.get("value_exact", cell["value"]) if estimator == "exact" else cell["value"]

"""The claims of Figure 1, what refutes each, and their paired tests (Holm-corrected as one family).

Claims per sampled sweep (stated in docs/toy/results.md before the runs; "small m" = m <= small_m_max, "large m" =
m >= large_m_min; V is the end-of-training value; d(arm) = V(arm) - V(no control) on the same seed):

- contrast, one per lambda of the grid: "the full bonus has an edge for large m and loses it for small m". One test of
  the difference of differences D = mean_large d(full) - mean_small d(full), together with its premise that the
  edge at large m exists, E = mean_large d(full) (intersection-union: p = max of the two). A bonus that is uniformly
  worse has E < 0 and fails, whatever D is. Refuted when the 95% interval of D or of E lies below MIN_EFFECT.
- clamped edge, one per (lambda, p): "the clamped bonus keeps an edge for small m": mean_small d(clamped). Refuted
  when its 95% interval lies below MIN_EFFECT.
- AEnt, per AEnt arm: "AEnt beats no control averaged over all m". The oracle arm is labelled an upper bound.
Premise (gated on the baseline alone): no control stays on the trap (fewer than half of its runs escape); where it
does not, the claims are reported as "premise absent" and left out of the family.
Rule: toy.experiments.paired (exact sign-flip test, its inverted 95% interval, Holm over the family).
Descriptive, outside the family: the closed form's own verdict on each contrast, and whether each fixed-lambda arm
ends within fixed_point_tol of its closed-form fixed point (bandit exact and sampled, tree).
"""

from __future__ import annotations

import numpy as np

from toy.experiments.common import verdict
from toy.experiments.figure1_plan import arm_name, predicted_value
from toy.experiments.paired import ALPHA, MIN_EFFECT, holm, intersection_union, paired_test

__all__ = ["claim_specs", "decide", "judge"]


def _ms(cfg) -> tuple[list[int], list[int]]:
    return ([m for m in cfg.m_values if m <= cfg.small_m_max], [m for m in cfg.m_values if m >= cfg.large_m_min])


def claim_specs(cfg, plan: dict) -> list[dict]:
    """The claims of one sweep: {key, claim, kind ("contrast" or "edge"), arm, ms, refuted_by}."""
    small, large = _ms(cfg)
    out = []
    for lam in plan["ent_coefs"]:
        full = arm_name("entropy_bonus", lam)
        out.append({"key": f"contrast_{full}", "kind": "contrast", "arm": full, "ms": (small, large),
                    "claim": f"the full bonus (λ={lam:g}) has an edge for large m and loses it for small m",
                    "refuted_by": "the 95% interval of the large-m edge or of the difference of differences below "
                                  f"{MIN_EFFECT:g}"})
        for p in plan["clamp_ps"]:
            arm = arm_name("clamped", lam, p)
            out.append({"key": f"edge_{arm}", "kind": "edge", "arm": arm, "ms": small,
                        "claim": f"the clamped bonus (p={p:g}, λ={lam:g}) keeps an edge for small m",
                        "refuted_by": f"the 95% interval of its small-m edge below {MIN_EFFECT:g}"})
    for key, what in (("aent", "AEnt (band from the starting policy)"), ("aent_oracle", "AEnt oracle (upper bound)")):
        if key in plan:
            out.append({"key": f"edge_{key}", "kind": "edge", "arm": key, "ms": list(cfg.m_values),
                        "claim": f"{what} beats no control averaged over all m",
                        "refuted_by": f"the 95% interval of its edge below {MIN_EFFECT:g}"})
    return out


def _per_seed(cells: dict, arm: str, ms: list[int]) -> np.ndarray:
    """Per-seed mean over ``ms`` of V(arm) - V(none)."""
    return np.mean([np.subtract(cells[arm][str(m)]["value"], cells["none"][str(m)]["value"]) for m in ms], axis=0)


def _tests(spec: dict, cells: dict, seed: int) -> list[dict]:
    """The tests of a claim: [edge] or [large-m edge E, difference of differences D]."""
    if spec["kind"] == "edge":
        d = _per_seed(cells, spec["arm"], spec["ms"])
        return [paired_test(d, np.zeros_like(d), seed)]
    small, large = spec["ms"]
    e, s = _per_seed(cells, spec["arm"], large), _per_seed(cells, spec["arm"], small)
    return [paired_test(e, np.zeros_like(e), seed), paired_test(e, s, seed)]


def decide(tests: list[dict], p_holm: float) -> str:
    """held / did not hold / inconclusive for a claim whose effects must all exceed MIN_EFFECT."""
    if p_holm < ALPHA and all(t["mean"] > MIN_EFFECT for t in tests):
        return "held"
    if any(t["ci_high"] < MIN_EFFECT for t in tests):
        return "did not hold"
    return "inconclusive"


def _fmt(t: dict, what: str) -> str:
    return (f"{what} {t['mean']:+.3f} (95% CI [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}], sign-flip p = {t['p']:.4f})")


def _closed_form(plan: dict, spec: dict, est: str) -> str:
    def d(ms):
        return float(np.mean([predicted_value(plan, spec["arm"], m, est) - predicted_value(plan, "none", m, est)
                              for m in ms]))
    if spec["kind"] == "edge":
        return f"closed form {d(spec['ms']):+.3f}"
    small, large = spec["ms"]
    return f"closed form: large-m edge {d(large):+.3f}, difference of differences {d(large) - d(small):+.3f}"


def _fixed_point(cfg, dom: dict, est: str, label: str) -> dict:
    """Descriptive verdict: do the fixed-lambda bonus arms end within fixed_point_tol of their closed form?"""
    res, pl = dom[est], dom["plan"]
    gaps = {(a, m): abs(np.mean(res["cells"][a][str(m)]["value"]) - predicted_value(pl, a, m, est))
            for a in res["cells"] if a not in ("none", "aent", "aent_oracle") for m in cfg.m_values}
    (arm, m), worst = max(gaps.items(), key=lambda kv: kv[1])
    at = sum(g < cfg.fixed_point_tol for g in gaps.values())
    status = "held" if at == len(gaps) else "did not hold"
    return verdict(f"[{label}] the fixed-λ bonus arms end at their closed-form fixed point", status,
                   f"{at} of {len(gaps)} cells (arm, m) end within {cfg.fixed_point_tol:g} of the closed-form V; the "
                   f"largest gap is {worst:.3f} ({arm}, m = {m}).")


def judge(cfg, results: dict) -> tuple[list[dict], list[dict]]:
    """Verdicts (for figure1.json) and the claim records (tests, Holm p, refutation rule) of every sweep."""
    claims, verdicts = [], []
    for domain in ("bandit", "tree"):
        dom = results.get(domain)
        if not dom or "sampled" not in dom:
            continue
        cells, steps = dom["sampled"]["cells"], dom["sampled"]["steps"]
        escaped = np.mean([cells["none"][str(m)]["escaped"] for m in cfg.m_values])
        for spec in claim_specs(cfg, dom["plan"]):
            rec = {**spec, "sweep": f"{domain} sampled, {steps} steps", "none_escaped": float(escaped)}
            sides = spec["ms"] if spec["kind"] == "contrast" else [spec["ms"]]
            if not all(sides):
                rec["status"] = "no m value on a side"
            elif escaped >= 0.5:
                rec["status"] = "premise absent"
            else:
                rec["tests"] = _tests(spec, cells, cfg.seed)
                rec["p"] = intersection_union(rec["tests"])
                rec["closed_form"] = _closed_form(dom["plan"], spec, "sampled")
            claims.append(rec)
    family = [c for c in claims if "p" in c]
    for c, p_adj in zip(family, holm([c["p"] for c in family])):
        c["p_holm"] = p_adj
    for c in claims:
        label = c["sweep"]
        if "p" not in c:
            verdicts.append(verdict(f"[{label}] {c['claim']}", "inconclusive",
                                    f"Not tested: {c['status']} (no control escaped in {c['none_escaped']:.0%} of "
                                    f"its runs; {len(cfg.m_values)} m values)."))
            continue
        names = ["edge"] if c["kind"] == "edge" else ["large-m edge", "difference of differences"]
        parts = "; ".join(_fmt(t, w) for t, w in zip(c["tests"], names))
        verdicts.append(verdict(
            f"[{label}] {c['claim']}", decide(c["tests"], c["p_holm"]),
            f"V({c['arm']}) - V(none), {c['tests'][0]['n']} paired seeds: {parts}; Holm-adjusted p = "
            f"{c['p_holm']:.4f} over {len(family)} claims; {c['closed_form']}; refuted by {c['refuted_by']}."))
    for domain, est in (("bandit", "sampled"), ("bandit", "exact"), ("tree", "sampled")):
        dom = results.get(domain) or {}
        if est in dom:
            verdicts.append(_fixed_point(cfg, dom, est, f"{domain} {est}, {dom[est]['steps']} steps"))
    return verdicts, claims

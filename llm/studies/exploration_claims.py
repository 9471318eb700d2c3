"""The exploration study's claims, fixed before its first run, and how its records are judged.

Paper claim (AEnt, arXiv 2509.03493, Sec. 3 / Figure 1): where the rewarded behaviour is rare and the action space
large, a clamped, adaptively weighted entropy bonus helps exploration where a full-vocabulary bonus does not.

**Primary claims** (one Holm family over every gated level; paired over (warm start, seed); paired t with its
CI and p from the same test, :func:`llm.studies.verdict.judge_family`; smallest effect of interest 0.05):

- ``aent_vs_grpo``: AEnt (calibrated p) beats GRPO on final held-out mean@k (aent_cal_p - grpo > 0);
- ``aent_vs_bonus_lam0`` / ``aent_vs_bonus_cap``: AEnt beats the fixed full-vocabulary bonus (at the calibrated
  lambda0, and at the calibrated cap) on final held-out mean@k.

A claim **holds** when its Holm-adjusted p <= 0.05 and the mean paired effect is >= 0.05; it **fails** (did not
hold) when its Bonferroni CI lies wholly below +0.05 (an effect of 0.05 is excluded; a significant effect of the
wrong sign is this case); otherwise it is inconclusive. At a level whose premise gate failed the claims are
"premise absent" and enter no family; at a gated level with no verdict pair run they are "not run" and enter no
family either. The SESOI 0.05 of mean@k is a sixth of what an escape is worth here (the
forced worked style is right 0.6-0.7 of the time, the bare one about 0.3 in the probe of issue 23), and 3 prompts
of the 64 held-out ones.

**Secondary, reported either way** (a separate Holm family; the step of escape, the band share and the entropy gap
are descriptions): escape rate AEnt vs GRPO (paired binary outcomes: the exact sign-flip test is McNemar's exact
test on the discordant pairs; SESOI 0.2), pass@k AEnt vs GRPO (SESOI 0.05), the mean step of escape per arm, the
share of post-warm-up steps inside AEnt's band (AEnt "works as designed" only when that share exceeds 0.5 with an
unsaturated coefficient), and the mean gap between the full and the clamped entropy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from llm.studies.verdict import Hypothesis, judge_family

__all__ = ["AENT", "PRIMARY", "SECONDARY", "SESOI_MEAN_AT_K", "describe_arms", "judge", "paired_diffs"]

AENT = "aent_cal_p"
"""The AEnt arm of the primary claims: the project's AEnt runs with the calibrated constants."""
SESOI_MEAN_AT_K = 0.05
PRIMARY = (
    ("aent_vs_grpo", "grpo", "AEnt beats GRPO on final held-out mean@k"),
    ("aent_vs_bonus_lam0", "bonus_lam0", "AEnt beats the fixed full bonus at lambda0 on final held-out mean@k"),
    ("aent_vs_bonus_cap", "bonus_cap", "AEnt beats the fixed full bonus at the cap on final held-out mean@k"),
)
"""(key, baseline arm, text) of the primary claims: final_mean_at_k(AENT) - final_mean_at_k(baseline) > 0."""
SECONDARY = (
    ("escape_vs_grpo", "grpo", "escaped", 0.2, "AEnt escapes the trap more often than GRPO"),
    ("pass_vs_grpo", "grpo", "final_pass_at_k", 0.05, "AEnt's final held-out pass@k beats GRPO's"),
)
"""(key, baseline, record field, SESOI, text) of the secondary tests."""


def paired_diffs(records: Sequence[Mapping], arm: str, base: str, field: str, level: int) -> list[float]:
    """field(arm) - field(base) over the verdict pairs (warm start, seed) of ``level`` that both arms ran."""
    by = {(r["arm"], r["warm_start"], r["seed"]): r for r in records
          if r["level"] == level and r.get("role", "verdict") == "verdict"}
    out = []
    for (a, ws, s), r in sorted(by.items()):
        other = by.get((base, ws, s))
        if a == arm and other is not None:
            out.append(float(r[field]) - float(other[field]))
    return out


def judge(records: Sequence[Mapping], gates: Mapping[int, Mapping], levels: Sequence[int]) -> list[dict]:
    """Primary and secondary judgements per level (JSON-ready dicts with ``level``, ``claim``, ``text``)."""
    hyps, diffs, absent, meta = [], {}, {}, {}
    for lv in levels:
        gate = gates.get(lv, {})
        for key, base, text in PRIMARY:
            k = f"L{lv}:{key}"
            hyps.append(Hypothesis(k, text, +1, SESOI_MEAN_AT_K, family="primary"))
            diffs[k] = paired_diffs(records, AENT, base, "final_mean_at_k", lv)
            meta[k] = (lv, key, text, "primary")
        for key, base, field, sesoi, text in SECONDARY:
            k = f"L{lv}:{key}"
            hyps.append(Hypothesis(k, text, +1, sesoi, family="secondary"))
            diffs[k] = paired_diffs(records, AENT, base, field, lv)
            meta[k] = (lv, key, text, "secondary")
        if gate.get("premise") != "holds":
            why = "; ".join(gate.get("reasons", [])) or "the premise gate was not run"
            absent.update({k: why for k, m in meta.items() if m[0] == lv})
    unrun = {k: "no verdict pair of both arms was run at this gated level" for k, m in meta.items()
             if k not in absent and not diffs[k]}
    fams = {"primary": judge_family([h for h in hyps if h.family == "primary"], diffs, test="t",
                                    premise_absent=absent, not_run=unrun),
            "secondary": judge_family([h for h in hyps if h.family == "secondary"], diffs, test="sign-flip",
                                      premise_absent=absent, not_run=unrun)}
    out = []
    for js in fams.values():
        for j in js:
            lv, key, text, fam = meta[j.key]
            out.append({**j.as_dict(), "level": lv, "claim": key, "text": text})
    return out


def _mean(xs: Sequence[float]) -> float:
    xs = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    return sum(xs) / len(xs) if xs else math.nan


def describe_arms(records: Sequence[Mapping], level: int) -> list[dict]:
    """Per arm at ``level`` (verdict runs): runs, escapes (by the final-window criterion), runs that reached the
    escape bar at some step (``reached_bar``: an escape that later ran away counts here, not in ``escaped``) and
    their mean first step, mean@k, pass@k, band share, coefficient states and the full-minus-clamped entropy gap."""
    out = []
    arms = sorted({r["arm"] for r in records if r["level"] == level and r.get("role") == "verdict"})
    for arm in arms:
        rs = [r for r in records if r["level"] == level and r["arm"] == arm and r.get("role") == "verdict"]
        steps = [r["escape_step"] for r in rs if r["escape_step"] is not None]
        out.append({
            "arm": arm, "runs": len(rs), "escaped": sum(bool(r["escaped"]) for r in rs),
            "reached_bar": len(steps), "escape_step_mean": _mean(steps),
            "final_mean_at_k": _mean([r["final_mean_at_k"] for r in rs]),
            "final_pass_at_k": _mean([r["final_pass_at_k"] for r in rs]),
            "final_worked_share": _mean([r["final_worked_share"] for r in rs]),
            "band_share": _mean([r["band_share"] for r in rs]),
            "coef_states": sorted({r["coef_state"] for r in rs if r.get("coef_state")}),
            "entropy_gap": _mean([r["entropy_gap"] for r in rs]),
        })
    return out

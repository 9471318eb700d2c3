"""The claims the LLM comparison checks, judged by the verdict protocol of docs/protocol.md.

Every claim, its direction and its smallest effect of interest (SESOI) are fixed here, before any run. Each claim
reduces to one number per pair (a pair is one warm start ``data.seed`` x one run ``seed``; every method runs
every pair, so a contrast between methods is paired), then to a paired t test of the mean (two-sided p and its
t-interval), then to a verdict by :func:`llm.studies.verdict.judge_family`: ``held`` when the Holm-adjusted p is at
most ``ALPHA`` and the mean lies at or beyond the SESOI in the claimed direction; ``did not hold`` when the
(Bonferroni) interval lies wholly short of the SESOI; ``inconclusive`` otherwise. Holm runs within a family: the
baseline's claims form one family, and each method's claims against the baseline form one.

- the baseline (plain GRPO) learns: held-out greedy accuracy and mean@k each gain at least ``MIN_GAIN``, and the
  training reward rises (last quarter of the steps above the first) by at least ``REWARD_SESOI``;
- the baseline collapses: it starts with at least ``START_ENTROPY_BAR`` nats, its entropy falls by at least the
  entropy SESOI and ends at most ``COLLAPSE_RATIO`` of its start;
- pass@k before and after RL (whether RL lowers it is a published finding, arXiv 2504.13837; reported either way);
- every other method against the baseline: the paper's expected effect on entropy (or, for the too-large bonus,
  that its entropy grows while its accuracy ends below the baseline's) and the final held-out accuracy;
- AEnt: most of its post-warm-up steps have the clamped entropy inside its band; its coefficient is described as
  ``saturated`` (at its cap or floor for most post-warm-up steps), ``moves`` or ``stays`` (it moves by
  construction whenever the entropy is outside the band, so this is a description, not a verdict). Each pair is
  judged with its own run's band, box and warm-up: calibrated constants (``llm.calibrated``) differ by warm start.

SESOIs: ``ACC_SESOI`` for held-out accuracies (0.05: about 6 of 128 held-out problems); for entropy,
``ENTROPY_SESOI_FRAC`` of the baseline's mean starting entropy (a pre-treatment quantity, so the rule is fixed
before any method's outcome). A claim whose headroom (the largest effect the metric allows, e.g. 1 minus the
baseline's final accuracy) is below its SESOI is reported as ``headroom below SESOI``. A claim the setting or the
arm was chosen to show (``selected``) is judged only on pairs whose warm start was not used for that choice; with
none left it is a ``description``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aent.methods import METHOD_SPECS
from aent.summary import fmt
from llm.studies.verdict import DESCRIPTION, ENTROPY_SESOI_FRAC, Hypothesis, coef_status, judge_family

__all__ = ["ACC_SESOI", "ALPHA", "COLLAPSE_RATIO", "ENTROPY_SESOI_FRAC", "MIN_GAIN", "REWARD_SESOI",
           "START_ENTROPY_BAR", "Item",
           "baseline_items", "judge_items", "mean_se", "method_items"]

ALPHA = 0.05
"""Family-wise error rate of each family of claims."""
MIN_GAIN = 0.10
"""SESOI of 'GRPO learns': held-out greedy accuracy and mean@k each gain at least this much (issue 10's bar)."""
COLLAPSE_RATIO = 0.5
"""The baseline's final entropy must be at most this fraction of its starting entropy to count as a collapse."""
START_ENTROPY_BAR = 0.22
"""The baseline must start with at least this token entropy (nats, step 1) for a collapse to mean anything. Rule
(docs/llm/setting.md): (1 - 2 x 0.20) x 0.368, the mean step-1 entropy of the selection runs (warm start 0, seeds
0-2, 2-core development machine), less twice the largest cross-machine difference measured on it (-20%)."""
ACC_SESOI = 0.05
"""SESOI of a difference in a held-out accuracy (greedy, mean@k, pass@k) between methods or before / after RL."""
REWARD_SESOI = 0.05
"""SESOI of the rise of the training reward (last quarter of the steps minus the first)."""
BAND_MOST = 0.5
"""AEnt 'working as designed': more than this share of its post-warm-up steps inside its band."""

# What each method is expected to do relative to the baseline, per the papers (metric, sign, claim): read from the
# method registry (aent.methods), where each method declares it.
EXPECTED = {m: tuple(s.expected) for m, s in METHOD_SPECS.items() if s.expected is not None}
TOO_LARGE = "entropy_bonus_large"
"""Label of the arm with a full-vocabulary bonus whose coefficient is too large (the AEnt paper's failure case)."""


@dataclass
class Item:
    """One claim with its per-pair numbers, before judging."""

    hyp: Hypothesis
    per_pair: dict[str, float]
    """Pair id -> the claim's number for that pair."""
    metric: str
    what: str
    """What the per-pair number is, in words."""
    method: str | None = None
    headroom: float = math.inf
    selected: bool = False
    """The setting or arm was chosen to show this claim (judged only on pairs outside the selection)."""


def mean_se(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, std, standard error) over the finite values; NaNs when there are none."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, math.nan
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd, sd / math.sqrt(len(vals))


def _by_pair(summary: dict, key: str, which: str) -> dict[str, float]:
    st = summary["metrics"].get(key)
    if st is None:
        return {}
    return {p: v for p, v in zip(summary["pairs"], st[f"{which}_per_seed"]) if v is not None and math.isfinite(v)}


def _op(a: Mapping[str, float], b: Mapping[str, float], f) -> dict[str, float]:
    return {p: f(a[p], b[p]) for p in a if p in b}


def entropy_sesoi(base: dict) -> float:
    """ENTROPY_SESOI_FRAC of the baseline's mean starting entropy (NaN without entropy)."""
    st = base["metrics"].get("entropy")
    return ENTROPY_SESOI_FRAC * st["start_mean"] if st else math.nan


def baseline_items(lab: str, summary: dict, rows: Mapping[str, list[dict]], k: int | None) -> list[Item]:
    """The baseline's claims: it learns (greedy, mean@k, reward), it collapses, and what happens to pass@k."""
    fam, h_sesoi, out = f"baseline {lab}", entropy_sesoi(summary), []
    h0, h1 = _by_pair(summary, "entropy", "start"), _by_pair(summary, "entropy", "end")
    if h0:
        out.append(Item(Hypothesis("collapse", f"Without entropy control ({lab}) the policy entropy falls during "
                                   "training (entropy collapse)", -1, h_sesoi, fam), _op(h1, h0, lambda a, b: a - b),
                        "entropy", "final minus step-1 entropy (nats)", selected=True))
        out.append(Item(Hypothesis("start_entropy", f"{lab} starts with at least {START_ENTROPY_BAR:g} nats of token "
                                   "entropy (a premise of the collapse claims)", +1, 0.0, fam),
                        {p: v - START_ENTROPY_BAR for p, v in h0.items()}, "entropy",
                        f"step-1 entropy minus {START_ENTROPY_BAR:g} (nats)", selected=True))
        out.append(Item(Hypothesis("collapse_ratio", f"{lab}'s entropy ends at most {COLLAPSE_RATIO:g} of its "
                                   "start", -1, 0.0, fam),
                        _op(h1, h0, lambda a, b: a / b - COLLAPSE_RATIO if b else math.nan), "entropy",
                        f"final / step-1 entropy minus {COLLAPSE_RATIO:g}", selected=True))
    names = {"eval_accuracy": "greedy accuracy", f"eval_mean_at_{k}": f"mean@{k} (sampled accuracy)"}
    for key, name in names.items():
        s0, s1 = _by_pair(summary, key, "start"), _by_pair(summary, key, "end")
        if s0:
            room = 1.0 - mean_se(list(s0.values()))[0]
            out.append(Item(Hypothesis(f"gain_{key}", f"RL ({lab}) raises held-out {name} by at least "
                                       f"{MIN_GAIN:.2f}", +1, MIN_GAIN, fam), _op(s1, s0, lambda a, b: a - b), key,
                            f"{key} after minus before RL", headroom=room, selected=True))
    rises = {}
    for p, r in rows.items():
        vals = [x["reward_mean"] for x in r if isinstance(x.get("reward_mean"), (int, float))]
        q = max(1, len(vals) // 4)
        if len(vals) >= 2:
            rises[p] = sum(vals[-q:]) / q - sum(vals[:q]) / q
    out.append(Item(Hypothesis("reward", f"the training reward of {lab} rises (last quarter of steps above the "
                               "first)", +1, REWARD_SESOI, fam), rises, "reward_mean",
                    "training reward, last quarter minus first quarter of the steps", selected=True))
    if k:
        key = f"eval_pass_at_{k}"
        s0, s1 = _by_pair(summary, key, "start"), _by_pair(summary, key, "end")
        if s0:
            out.append(Item(Hypothesis("pass_falls", f"RL ({lab}) lowers held-out pass@{k} (arXiv 2504.13837; "
                                       "reported either way)", -1, ACC_SESOI, fam), _op(s1, s0, lambda a, b: a - b),
                            key, f"{key} after minus before RL", headroom=mean_se(list(s0.values()))[0]))
    return out


def _diff_item(key: str, text: str, lab: str, m: dict, b: dict, metric: str, sign: int, sesoi: float,
               headroom: float = math.inf) -> Item | None:
    a, c = _by_pair(m, metric, "end"), _by_pair(b, metric, "end")
    if not a or not c:
        return None
    return Item(Hypothesis(key, text, sign, sesoi, f"method {lab}"), _op(a, c, lambda x, y: x - y), metric,
                f"final {metric}, {lab} minus the baseline", method=lab, headroom=headroom)


def _per_start(cfgs: Mapping[str, Mapping], show) -> str:
    """``show(config)`` once when every pair has the same, else per warm start (``ws1: ...; ws2: ...``): AEnt's
    constants are calibrated per warm start, so its band and box may differ between them."""
    shown = {p: show(c) for p, c in sorted(cfgs.items())}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    by_ws = {}
    for p, text in shown.items():
        by_ws.setdefault(p.split("-")[0], set()).add(text)
    return "; ".join(f"{w}: {' / '.join(sorted(t))}" for w, t in by_ws.items())


def method_items(lab: str, method: str, base: str, m: dict, b: dict, rows: Mapping[str, list[dict]],
                 ecfgs: Mapping[str, Mapping], acc_key: str) -> list[Item]:
    """Claims about one method against the baseline (the same pairs); ``ecfgs`` is each pair's saved entropy
    section (its band and warm-up judge that pair)."""
    h_sesoi = entropy_sesoi(b)
    acc_end = mean_se(list(_by_pair(b, acc_key, "end").values()))[0]
    if lab == TOO_LARGE:
        h0, h1 = _by_pair(m, "entropy", "start"), _by_pair(m, "entropy", "end")
        out = [Item(Hypothesis(f"{lab}_grows", f"{lab}: a too-large full-vocabulary bonus makes the entropy grow "
                               "(arXiv 2509.03493)", +1, h_sesoi, f"method {lab}"), _op(h1, h0, lambda x, y: x - y),
                    "entropy", f"final minus step-1 entropy of {lab} (nats)", method=lab, selected=True),
               _diff_item(f"{lab}_acc", f"{lab} ends below {base}'s held-out accuracy (the bonus's cost, "
                          "arXiv 2509.03493)", lab, m, b, acc_key, -1, ACC_SESOI, acc_end)]
        return [i for i in out if i is not None]
    metric, sign, claim = EXPECTED.get(method, ("entropy", +1, f"{lab} keeps the entropy above {base}'s"))
    out = [_diff_item(f"{lab}_entropy", claim, lab, m, b, metric, sign, h_sesoi),
           _diff_item(f"{lab}_acc", f"{lab} reaches a higher final {acc_key} than {base}", lab, m, b, acc_key, +1,
                      ACC_SESOI, 1.0 - acc_end)]
    cfgs = {p: c for p, c in ecfgs.items() if c}
    if method == "aent" and cfgs:
        share = {}
        for p, r in rows.items():
            c = cfgs.get(p)
            if not c:
                continue
            low, high, warm = float(c["band_low"]), float(c["band_high"]), int(c.get("warmup", 0))
            h = [x["clamped_entropy"] for x in r
                 if x.get("step", 0) > warm and isinstance(x.get("clamped_entropy"), (int, float))]
            if h:
                share[p] = sum(low <= v <= high for v in h) / len(h) - BAND_MOST
        where = _per_start(cfgs, lambda c: f"[{float(c['band_low']):g}, {float(c['band_high']):g}] after step "
                                           f"{int(c.get('warmup', 0))}")
        out.append(Item(Hypothesis(f"{lab}_band", f"{lab}'s clamped entropy lies inside its band for most steps "
                                   f"after warm-up ({where})", +1, 0.0, f"method {lab}"), share, "clamped_entropy",
                        f"share of post-warm-up steps inside the band minus {BAND_MOST:g}", method=lab))
    return [i for i in out if i is not None]


def coefficient_finding(lab: str, rows: Mapping[str, list[dict]], ecfgs: Mapping[str, Mapping]) -> dict | None:
    """The saturation-aware description of an adaptive coefficient after warm-up (per pair, with that pair's own
    box, start and warm-up, then counted)."""
    states, shares, spans = {}, [], []
    for p, r in rows.items():
        e = ecfgs.get(p)
        if not e:
            continue
        low, high, warm = float(e["coef_min"]), float(e["coef_max"]), int(e.get("warmup", 0))
        c = [x["ent_coef"] for x in r if x.get("step", 0) > warm and isinstance(x.get("ent_coef"), (int, float))]
        if c:
            states[p], at = coef_status(c, low, high, float(e.get("ent_coef", 0.0)))
            shares.append(at)
            spans.append((min(c), max(c)))
    if not states:
        return None
    count = {s: sum(v == s for v in states.values()) for s in ("saturated", "moves", "stays")}
    box = _per_start({p: ecfgs[p] for p in states}, lambda e: f"box [{float(e['coef_min']):g}, "
                     f"{float(e['coef_max']):g}], start {float(e.get('ent_coef', 0.0)):g}, after step "
                     f"{int(e.get('warmup', 0))}")
    text = (f"{lab}'s coefficient after warm-up ({box}): "
            f"saturated in {count['saturated']}, moves in {count['moves']}, stays in {count['stays']} of "
            f"{len(states)} pairs (saturated: at the cap or floor for more than half of the steps; mean share of "
            f"steps at a bound {mean_se(shares)[0]:.2f}); it spans {min(a for a, _ in spans):.2e} to "
            f"{max(b for _, b in spans):.2e}. A description, not a verdict: the coefficient moves by construction "
            "whenever the clamped entropy is outside the band.")
    return {"claim": f"{lab}'s coefficient after warm-up: saturated, moves or stays", "key": f"{lab}_coef",
            "verdict": DESCRIPTION, "family": f"method {lab}", "metric": "ent_coef", "method": lab,
            "states": states, "text": text}


def judge_items(items: Sequence[Item], selection_ws: Sequence[int], pair_ws: Mapping[str, int | None]) -> list[dict]:
    """Judge the claims (Holm within each family) and write one finding record per claim."""
    sel = set(selection_ws)
    hyps, diffs, rooms, used = [], {}, {}, {}
    for it in items:
        pairs = {p: v for p, v in it.per_pair.items() if math.isfinite(v)}
        h = it.hyp
        if it.selected and sel:
            pairs = {p: v for p, v in pairs.items() if pair_ws.get(p) not in sel}
            if not pairs:
                h = Hypothesis(h.key, h.text, h.sign, h.sesoi, h.family, description=(
                    f"the setting was chosen on warm start(s) {sorted(sel)} to show this, and every pair here uses "
                    "one of them"))
        hyps.append(h)
        used[h.key] = sorted(pairs) if pairs else sorted(it.per_pair)
        diffs[h.key] = [(pairs or it.per_pair)[p] for p in used[h.key]]
        rooms[h.key] = it.headroom
    out = []
    for it, h, j in zip(items, hyps, judge_family(hyps, diffs, alpha=ALPHA, headroom=rooms)):
        t = j.test
        n_ws = len({pair_ws.get(p) for p in used[h.key]})
        want = ">=" if h.sign > 0 else "<="
        text = (f"{h.text}: {it.what} {fmt(t.mean)} (mean over {t.n} pairs, {n_ws} warm start(s); "
                f"{100 * t.level:.4g}% CI [{fmt(t.ci[0])}, {fmt(t.ci[1])}]; claim {want} "
                f"{fmt(h.sign * h.sesoi) if h.sesoi else '0'}, the SESOI); paired t {fmt(t.stat, 2)}, p {t.p:.3g}, "
                f"Holm-adjusted {j.p_adj:.3g} in family '{j.family}': {j.label} ({j.reason}). Per pair: "
                + ", ".join(f"{p} {fmt(v)}" for p, v in sorted(it.per_pair.items())) + ".")
        rec = j.as_dict()
        rec.update({"claim": h.text, "metric": it.metric, "text": text, "se": (t.sd / math.sqrt(t.n)
                    if t.n > 1 else math.nan), "per_pair": dict(sorted(it.per_pair.items()))})
        if it.method:
            rec["method"] = it.method
        out.append(rec)
    return out

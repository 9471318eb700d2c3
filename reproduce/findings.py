"""The claims the LLM comparison checks, each with a verdict by one fixed rule (stated before any run).

Every claim reduces to one number per seed (a change from the start, a ratio, a difference to the baseline), then
to the mean and standard error over seeds, then to a verdict by :func:`verdict`: the effect counts only when it
clears its threshold by more than two standard errors. Which claims exist, their thresholds and their expected
directions are fixed here, not chosen after looking at results:

- the baseline (plain GRPO) learns: held-out greedy accuracy and mean@k each gain at least ``MIN_GAIN``, and the
  training reward rises (last quarter of the steps above the first quarter);
- the baseline collapses: its token entropy falls, and ends at most ``COLLAPSE_RATIO`` of its start;
- pass@k before and after RL (whether RL lowers it is a published finding, arXiv 2504.13837; reported either way);
- every other method, against the baseline: the paper's expected effect on entropy (or per-label claims such as
  the too-large bonus growing entropy while accuracy suffers) and the final held-out accuracy;
- AEnt: its clamped entropy after warm-up lies inside its band, and its coefficient moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["COLLAPSE_RATIO", "MIN_GAIN", "baseline_findings", "mean_se", "method_findings", "verdict", "verdict_within"]

MIN_GAIN = 0.10
"""Smallest held-out accuracy gain (absolute) that counts as 'GRPO learns' (issue 10's bar)."""
COLLAPSE_RATIO = 0.5
"""The baseline's final entropy must be at most this fraction of its starting entropy to count as a collapse."""
MOVE_FRAC = 0.1
"""An adaptive coefficient 'moves' when its post-warm-up range exceeds this fraction of its starting value."""

# What each method is expected to do relative to the baseline, per the papers (metric, sign, claim).
EXPECTED = {
    "entropy_bonus": ("entropy", +1, "a fixed full-vocabulary entropy bonus keeps the entropy above plain GRPO's "
                      "(AEnt paper, arXiv 2509.03493, Sec. 3: it does, but with a large vocabulary it spends it on "
                      "irrelevant tokens)"),
    "aent": ("entropy", +1, "AEnt (clamped entropy + adaptive coefficient) keeps the entropy above plain GRPO's "
             "(arXiv 2509.03493)"),
    "pos_reweight": ("entropy", +1, "down-weighting positive-advantage tokens slows the entropy decline "
                     "(arXiv 2511.05993, Sec. 5)"),
}
TOO_LARGE = "entropy_bonus_large"
"""Label of the arm with a full-vocabulary bonus whose coefficient is too large (the AEnt paper's failure case)."""


def verdict(diff: float, se: float, expected_sign: int, n_seeds: int, threshold: float = 0.0) -> str:
    """held / did not hold / inconclusive for an effect ``diff`` with standard error ``se`` (over seeds).

    The rule: the effect counts only when ``diff - threshold`` is larger in size than two standard errors; then it
    "held" if it lies on the ``expected_sign`` side of the threshold, "did not hold" otherwise. With a single seed,
    where no spread can be estimated, nothing counts ("inconclusive").
    """
    d = diff - threshold
    if n_seeds < 2 or not math.isfinite(d) or not math.isfinite(se):
        return "inconclusive"
    if abs(d) <= 2 * se or d == 0:
        return "inconclusive"
    return "held" if d * expected_sign > 0 else "did not hold"


def verdict_within(mean: float, se: float, low: float, high: float, n_seeds: int) -> str:
    """held when ``mean ± 2 se`` lies inside [low, high]; did not hold when it lies wholly outside."""
    if n_seeds < 2 or not (math.isfinite(mean) and math.isfinite(se)):
        return "inconclusive"
    if low <= mean - 2 * se and mean + 2 * se <= high:
        return "held"
    if mean + 2 * se < low or mean - 2 * se > high:
        return "did not hold"
    return "inconclusive"


def mean_se(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, std, standard error) over the finite values; NaNs when there are none."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, math.nan
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd, sd / math.sqrt(len(vals))


def _f(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3f}"


def _finding(claim: str, v: str, effect: float, se: float, metric: str, text: str, **extra) -> dict:
    return {"claim": claim, "verdict": v, "effect": effect, "se": se, "metric": metric, "text": text, **extra}


def _changes(stat: dict) -> list[float]:
    return [e - s for e, s in zip(stat["end_per_seed"], stat["start_per_seed"]) if e is not None and s is not None]


def _gain(stats: dict, key: str, base: str, claim: str, sign: int = +1, threshold: float = 0.0) -> dict | None:
    """A claim about the change of one metric from the start to the end of the baseline's runs."""
    if key not in stats:
        return None
    st = stats[key]
    ch = _changes(st)
    m, sd, se = mean_se(ch)
    v = verdict(m, se, sign, len(ch), threshold)
    need = f" (needs {'+' if sign > 0 else '-'}{threshold:.2f} beyond two standard errors)" if threshold else ""
    return _finding(claim, v, m, se, key,
                    f"{base}: {key} went from {_f(st['start_mean'])} to {_f(st['end_mean'])} (change {_f(m)} ± "
                    f"{_f(sd)} over {len(ch)} seeds{need}): {v}.")


def baseline_findings(base: str, summary: dict, rows: Mapping[int, list[dict]], k: int | None) -> list[dict]:
    """The baseline's claims: it learns (greedy, mean@k, reward), it collapses, and what happens to pass@k."""
    stats = summary["metrics"]
    out = []
    out.append(_gain(stats, "entropy", base,
                     f"Without entropy control ({base}) the policy entropy falls during training (entropy collapse)", -1))
    if "entropy" in stats:
        st = stats["entropy"]
        ratios = [e / s for e, s in zip(st["end_per_seed"], st["start_per_seed"]) if e is not None and s]
        m, sd, se = mean_se(ratios)
        v = verdict(m, se, -1, len(ratios), COLLAPSE_RATIO)
        out.append(_finding(f"{base}'s entropy ends at most {COLLAPSE_RATIO:g} of its start", v, m, se, "entropy",
                            f"{base}: final / starting entropy {_f(m)} ± {_f(sd)} over {len(ratios)} seeds (start "
                            f"{_f(st['start_mean'])} nats): {v}."))
    out.append(_gain(stats, "eval_accuracy", base,
                     f"RL ({base}) raises held-out greedy accuracy by at least {MIN_GAIN:.2f}", +1, MIN_GAIN))
    if k:
        out.append(_gain(stats, f"eval_mean_at_{k}", base,
                         f"RL ({base}) raises held-out mean@{k} (sampled accuracy) by at least {MIN_GAIN:.2f}",
                         +1, MIN_GAIN))
    rises = []
    for r in rows.values():
        vals = [x["reward_mean"] for x in r if isinstance(x.get("reward_mean"), (int, float))]
        q = max(1, len(vals) // 4)
        if len(vals) >= 2:
            rises.append(sum(vals[-q:]) / q - sum(vals[:q]) / q)
    m, sd, se = mean_se(rises)
    v = verdict(m, se, +1, len(rises))
    out.append(_finding(f"the training reward of {base} rises (last quarter of steps above the first)", v, m, se,
                        "reward_mean", f"{base}: training reward, last quarter minus first quarter of the steps "
                        f"{_f(m)} ± {_f(sd)} over {len(rises)} seeds: {v}."))
    if k:
        out.append(_gain(stats, f"eval_pass_at_{k}", base,
                         f"RL ({base}) lowers held-out pass@{k} (arXiv 2504.13837; reported either way)", -1))
    return [f for f in out if f is not None]


def _diff_claim(lab: str, base: str, m: dict, b: dict, metric: str, sign: int, claim: str) -> dict | None:
    if metric not in m["metrics"] or metric not in b["metrics"]:
        return None
    a, c = m["metrics"][metric], b["metrics"][metric]
    n_a, n_b = len(a["end_per_seed"]), len(c["end_per_seed"])
    d = a["end_mean"] - c["end_mean"]
    se = math.sqrt(a["end_std"] ** 2 / max(n_a, 1) + c["end_std"] ** 2 / max(n_b, 1))
    v = verdict(d, se, sign, min(m["n_seeds"], b["n_seeds"]))
    return _finding(claim, v, d, se, metric,
                    f"{lab} vs {base}: final {metric} {_f(a['end_mean'])} vs {_f(c['end_mean'])} (difference "
                    f"{_f(d)}, standard error {_f(se)}): {v}.", method=lab)


def _aent_findings(lab: str, rows: Mapping[int, list[dict]], ecfg: Mapping) -> list[dict]:
    low, high, warm = float(ecfg["band_low"]), float(ecfg["band_high"]), int(ecfg.get("warmup", 0))
    means, inside, moves, ranges = [], [], [], []
    for r in rows.values():
        post = [x for x in r if x.get("step", 0) > warm and isinstance(x.get("clamped_entropy"), (int, float))]
        if not post:
            continue
        h = [x["clamped_entropy"] for x in post]
        means.append(sum(h) / len(h))
        inside.append(sum(low <= v <= high for v in h) / len(h))
        c = [x["ent_coef"] for x in post if isinstance(x.get("ent_coef"), (int, float))]
        if c:
            ranges.append((min(c), max(c)))
            moves.append(max(c) - min(c) > MOVE_FRAC * float(ecfg.get("ent_coef", c[0]) or c[0]))
    m, sd, se = mean_se(means)
    v = verdict_within(m, se, low, high, len(means))
    frac, _, _ = mean_se(inside)
    out = [_finding(f"{lab}'s clamped entropy lies inside its band [{low:g}, {high:g}] after warm-up (step > {warm})",
                    v, m, se, "clamped_entropy",
                    f"{lab}: mean clamped entropy after warm-up {_f(m)} ± {_f(sd)} over {len(means)} seeds, "
                    f"{_f(frac)} of those steps inside [{low:g}, {high:g}]: {v}.", method=lab)]
    if ranges:
        v2 = "held" if all(moves) and len(moves) >= 2 else ("did not hold" if not any(moves) else "inconclusive")
        lo, hi = min(a for a, _ in ranges), max(b for _, b in ranges)
        out.append(_finding(f"{lab}'s coefficient moves after warm-up", v2, hi - lo, 0.0, "ent_coef",
                            f"{lab}: ent_coef after warm-up spans {lo:.2e} to {hi:.2e} over the seeds "
                            f"({sum(moves)} of {len(moves)} seeds move by more than {MOVE_FRAC:g} of the start): "
                            f"{v2}.", method=lab))
    return out


def method_findings(lab: str, method: str, base: str, m: dict, b: dict, rows: Mapping[int, list[dict]],
                    ecfg: Mapping, acc_key: str) -> list[dict]:
    """Claims about one method against the baseline."""
    out = []
    if lab == TOO_LARGE:
        out.append(_gain(m["metrics"], "entropy", lab,
                         f"{lab}: a too-large full-vocabulary bonus makes the entropy grow (arXiv 2509.03493)"))
        out.append(_diff_claim(lab, base, m, b, acc_key, -1,
                               f"{lab} ends below {base}'s held-out accuracy (the bonus's cost, arXiv 2509.03493)"))
        return [f for f in out if f is not None]
    metric, sign, claim = EXPECTED.get(method, ("entropy", +1, f"{lab} keeps the entropy above {base}'s"))
    out.append(_diff_claim(lab, base, m, b, metric, sign, claim))
    out.append(_diff_claim(lab, base, m, b, acc_key, +1, f"{lab} reaches a higher final {acc_key} than {base}"))
    if method == "aent" and ecfg:
        out += _aent_findings(lab, rows, ecfg)
    return [f for f in out if f is not None]

"""Per-run summaries of a study's metric rows (entropy change, final reward, held-out metrics, the mechanism's
entropy split) and their mean and across-seed sd per arm. Row helpers come from :mod:`aent.summary`, shared with
the ``reproduce`` report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from aent.summary import tail_mean, values

__all__ = ["SUMMARIES", "entropy_change", "eval_key", "final_eval", "mean_entropy_change", "summarise"]


def _onpolicy_entropy(rows: list[dict]) -> list[float]:
    return values(rows, "entropy_before") or values(rows, "entropy")


def entropy_change(rows: list[dict]) -> float:
    """Final minus initial on-policy entropy: mean of the last quarter of steps minus step 1 (nats)."""
    h = _onpolicy_entropy(rows)
    return tail_mean(h) - h[0] if h else math.nan


def mean_entropy_change(rows: list[dict]) -> float:
    """Mean over steps of (entropy - entropy at step 1): the area between the curve and its start (nats)."""
    h = _onpolicy_entropy(rows)
    return sum(x - h[0] for x in h) / len(h) if h else math.nan


def _mean(rows: list[dict], key: str) -> float:
    xs = values(rows, key)
    return sum(xs) / len(xs) if xs else math.nan


def eval_key(rows: list[dict], kind: str) -> str | None:
    """Name of the held-out metric of a kind ("accuracy" or "pass") the trainer logged, if any."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    if kind == "accuracy":
        return "eval_accuracy" if "eval_accuracy" in keys else None
    return next((k for k in keys if k.startswith("eval_pass_at_")), None)


def final_eval(rows: list[dict], kind: str) -> float:
    key = eval_key(rows, kind)
    xs = values(rows, key) if key else []
    return xs[-1] if xs else math.nan


SUMMARIES: dict[str, Callable[[list[dict]], float]] = {
    "entropy_change": entropy_change,
    "abs_entropy_change": lambda r: abs(entropy_change(r)),
    "mean_entropy_change": mean_entropy_change,
    "final_entropy": lambda r: tail_mean(_onpolicy_entropy(r)),
    "final_clamped_entropy": lambda r: tail_mean(values(r, "clamped_entropy")),
    "mean_reward": lambda r: _mean(r, "reward_mean"),
    "final_reward": lambda r: tail_mean(values(r, "reward_mean")),
    "final_eval_accuracy": lambda r: final_eval(r, "accuracy"),
    "final_eval_pass": lambda r: final_eval(r, "pass"),
    "mean_dh": lambda r: _mean(r, "dh"),
    "mean_dh_pos": lambda r: _mean(r, "dh_pos"),
    "mean_dh_neg": lambda r: _mean(r, "dh_neg"),
    "mean_cov_dh_pos": lambda r: _mean(r, "cov_dh_pos"),
    "mean_cov_dh_neg": lambda r: _mean(r, "cov_dh_neg"),
    "mean_cov_pos_share": lambda r: _mean(r, "cov_pos_share"),
    "cov_sign_agreement": lambda r: _sign_agreement(r),
}


def _sign_agreement(rows: list[dict]) -> float:
    """Share of steps where the covariance prediction cov_dh and the measured dh have the same sign."""
    pairs = [(r.get("cov_dh"), r.get("dh")) for r in rows]
    pairs = [(a, b) for a, b in pairs if isinstance(a, (int, float)) and isinstance(b, (int, float))
             and math.isfinite(a) and math.isfinite(b) and a != 0 and b != 0]
    return sum((a > 0) == (b > 0) for a, b in pairs) / len(pairs) if pairs else math.nan


def summarise(runs: dict[str, list[list[dict]]]) -> dict[str, dict[str, Any]]:
    """Per arm and summary: per-seed values, mean and across-seed sd (n - 1 dof)."""
    out: dict[str, dict[str, Any]] = {}
    for arm, seeds in runs.items():
        out[arm] = {}
        for name, fn in SUMMARIES.items():
            vals = [fn(rows) for rows in seeds]
            fin = [v for v in vals if math.isfinite(v)]
            mu = sum(fin) / len(fin) if fin else math.nan
            sd = math.sqrt(sum((v - mu) ** 2 for v in fin) / (len(fin) - 1)) if len(fin) > 1 else math.nan
            out[arm][name] = {"per_seed": vals, "mean": mu, "sd": sd}
    return out

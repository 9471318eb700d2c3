"""The trap regime of AEnt's Figure 1 in closed form: where the entropy-regularised optimum puts its mass.

AEnt (arXiv 2509.03493, Sec. 4 and Figure 1) argues about a large action space in which

- most of the N items (arms of a bandit, or sequences of a token tree) are irrelevant, reward 0;
- a few ``n_traps`` trap items pay an intermediate ``trap_reward`` r_t and sit where an uncontrolled policy
  gradient commits to them (the top of the prior);
- m optimal items pay 1.

The maximiser of V + lambda H~_p is the Gibbs policy P(y) ~ exp(R(y) / lambda) on the items the clamped entropy
keeps (docs/toy/theory.md claims 2 and 4; toy.exact.bandit_gibbs / regularized_optimum compute it by enumeration). With
u = 1 / lambda and n_kept items kept (all optimal and trap items among them):

    Z = m e^u + n_traps e^(r_t u) + (n_kept - m - n_traps),
    P(A*) = m e^u / Z,   P(trap) = n_traps e^(r_t u) / Z,   V = P(A*) + r_t P(trap).

An uncontrolled policy that committed to the traps ends at V = r_t, so a bonus "beats no control" at its fixed
point exactly when V > r_t. Because P(A*) grows with m, the full bonus (n_kept = N) crosses r_t at some m_c;
:func:`derive_ent_coef` finds the lambda at which m_c sits between two chosen m values (a closed-form device of the
tutorials; toy.experiments.figure1 does not use it, because a lambda solved for the crossing reproduces the crossing
by construction: its lambda is a fixed grid),
:func:`min_kept` says how small the kept set must be for the clamped bonus to keep its edge at the smallest m,
and :func:`aent_fixed_point` where AEnt's coefficient settles for a given entropy band. All float64 arithmetic on
counts, so N may be 10^5 or 10^9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TrapRegime", "aent_fixed_point", "derive_ent_coef", "gibbs_point", "min_kept"]


def _need(ok: bool, name: str, allowed: str, value) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


@dataclass(frozen=True)
class TrapRegime:
    """Reward levels and counts of a trap regime (validated).

    Args:
        n_items: N, arms of a bandit or sequences of a tree (>= n_traps + 2).
        n_traps: number of trap items (>= 1).
        trap_reward: r_t in (0, 1), the reward of a trap item; irrelevant items pay 0, optimal ones 1.
    """

    n_items: int = 100_000
    n_traps: int = 10
    trap_reward: float = 0.6

    def __post_init__(self) -> None:
        _need(isinstance(self.n_traps, int) and self.n_traps >= 1, "n_traps", "an int >= 1", self.n_traps)
        _need(isinstance(self.n_items, int) and self.n_items >= self.n_traps + 2, "n_items",
              f"an int >= n_traps + 2 = {self.n_traps + 2}", self.n_items)
        _need(isinstance(self.trap_reward, (int, float)) and 0.0 < self.trap_reward < 1.0, "trap_reward",
              "a number in (0, 1)", self.trap_reward)

    def rewards_summary(self) -> dict[str, float]:
        """The three reward levels, for the result files."""
        return {"irrelevant": 0.0, "trap": float(self.trap_reward), "optimal": 1.0}


def gibbs_point(regime: TrapRegime, m: int, ent_coef: float, n_kept: int | None = None) -> dict[str, float]:
    """The Gibbs optimum of V + lambda H~ on the n_kept kept items (default: all N), in closed form.

    Args:
        regime: reward levels and counts.
        m: number of optimal items, 1 <= m <= n_kept - n_traps - 1 (all optimal and trap items kept).
        ent_coef: lambda > 0.
        n_kept: items the clamped entropy keeps at the optimum (N for the full bonus; K^H for a tree).

    Returns:
        dict with value V, p_opt P(A*), p_trap, p_irrelevant and entropy (nats) of the optimum.
    """
    n_kept = regime.n_items if n_kept is None else n_kept
    _need(isinstance(n_kept, int) and regime.n_traps + 2 <= n_kept <= regime.n_items, "n_kept",
          f"an int in [n_traps + 2, n_items] = [{regime.n_traps + 2}, {regime.n_items}]", n_kept)
    _need(isinstance(m, int) and 1 <= m <= n_kept - regime.n_traps - 1, "m",
          f"an int in [1, n_kept - n_traps - 1 = {n_kept - regime.n_traps - 1}]", m)
    _need(isinstance(ent_coef, (int, float)) and ent_coef > 0 and math.isfinite(ent_coef), "ent_coef",
          "a finite number > 0", ent_coef)
    u, r = 1.0 / ent_coef, regime.trap_reward
    # weights relative to one optimal item, e^{-u} scaling keeps every term finite for tiny lambda
    w_opt, w_trap = float(m), regime.n_traps * math.exp((r - 1.0) * u)
    w_irr = (n_kept - m - regime.n_traps) * math.exp(-u)
    z = w_opt + w_trap + w_irr
    p_opt, p_trap, p_irr = w_opt / z, w_trap / z, w_irr / z
    # H = log Z' - E[R]/lambda with Z' = Z e^u: each item of reward R has log-probability R u - log Z'
    log_z = math.log(z) + u
    ent = log_z - u * (p_opt + r * p_trap)
    return {"value": p_opt + r * p_trap, "p_opt": p_opt, "p_trap": p_trap, "p_irrelevant": p_irr, "entropy": ent}


def derive_ent_coef(regime: TrapRegime, m_low: int, m_high: int) -> float:
    """lambda at which the full bonus's optimum reaches V = r_t at m_c = sqrt(m_low m_high) (geometric middle).

    V of the full Gibbs optimum falls with lambda at fixed m (from 1 at lambda -> 0 towards 0), and rises with m;
    this lambda makes the full bonus beat a trapped policy (V > r_t) for m >= m_high and lose to it for m <= m_low.
    Solved by bisection on log lambda (m_c may be fractional: the closed form is smooth in m).
    """
    _need(isinstance(m_low, int) and isinstance(m_high, int) and 1 <= m_low < m_high, "m_low, m_high",
          "ints with 1 <= m_low < m_high", (m_low, m_high))
    m_c = math.sqrt(m_low * m_high)

    def excess(lam: float) -> float:
        u, r, n = 1.0 / lam, regime.trap_reward, regime.n_items
        w_trap, w_irr = regime.n_traps * math.exp((r - 1.0) * u), (n - m_c - regime.n_traps) * math.exp(-u)
        z = m_c + w_trap + w_irr
        return (m_c + r * w_trap) / z - r

    lo, hi = 1e-3, 10.0
    _need(excess(lo) > 0 > excess(hi), "regime", "one in which V(lambda) crosses r_t for lambda in [1e-3, 10]",
          regime)
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return math.sqrt(lo * hi)


def min_kept(regime: TrapRegime, m: int, ent_coef: float) -> int:
    """Largest kept count n_kept at which the clamped optimum still beats the trap (V > r_t) with m optimal items.

    Returns n_items when even the full bonus beats the trap, and raises when no kept set does (impossible for
    m >= 1 as n_kept -> m + n_traps + 1 only if lambda is so large that the traps outweigh the optimal items).
    """
    def beats(k: int) -> bool:
        return gibbs_point(regime, m, ent_coef, k)["value"] > regime.trap_reward

    lo, hi = m + regime.n_traps + 1, regime.n_items
    _need(beats(lo), "ent_coef", f"small enough that the clamped optimum beats the trap with m={m}", ent_coef)
    if beats(hi):
        return hi
    while hi - lo > 1:  # V falls as n_kept grows: beats(lo) and not beats(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if beats(mid) else (lo, mid)
    return lo


def _lambda_at_entropy(ent, target: float, box: tuple[float, float]) -> float:
    """The lambda in ``box`` at which the increasing function ``ent(lambda)`` equals ``target`` (clipped)."""
    lo, hi = box
    if ent(lo) >= target:
        return lo
    if ent(hi) <= target:
        return hi
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ent(mid) < target else (lo, mid)
    return math.sqrt(lo * hi)


def aent_fixed_point(regime: TrapRegime, m: int, n_kept: int, ent_coef: float, band: tuple[float, float],
                     box: tuple[float, float]) -> dict[str, float]:
    """Where AEnt can settle if the policy sits at the clamped Gibbs optimum for its current lambda.

    AEnt's update lambda <- clip(lambda - beta [min(0, H~ - low) + max(0, H~ - high)], box) stops when H~ is in
    the band or lambda hits the box. H~ of the clamped optimum grows with lambda, so the fixed points form the
    interval of lambda (within the box) whose optimum has H~ in the band; which one a run reaches depends on its
    path. The point prediction is lambda0 when H~(lambda0) is in the band, otherwise the near edge.

    Returns:
        gibbs_point(...) at the point prediction, plus ``ent_coef`` (its lambda) and ``value_range`` [V at the
        largest fixed-point lambda, V at the smallest].
    """
    low, high = band
    _need(0 <= low <= high, "band", "two numbers 0 <= low <= high", band)
    _need(0 < box[0] <= ent_coef <= box[1], "box", f"[min, max] with 0 < min <= ent_coef={ent_coef} <= max", box)

    def ent(lam: float) -> float:
        return gibbs_point(regime, m, lam, n_kept)["entropy"]

    lam_low, lam_high = _lambda_at_entropy(ent, low, box), _lambda_at_entropy(ent, high, box)
    lam = min(max(ent_coef, lam_low), lam_high)
    values = [gibbs_point(regime, m, x, n_kept)["value"] for x in (lam_high, lam_low)]
    return {**gibbs_point(regime, m, lam, n_kept), "ent_coef": lam, "value_range": values}

"""Batched policy-gradient training on the trap bandit of AEnt's Figure 1 (|A| = 10^5 arms), many runs at once.

Task (toy.regime): N arms; at the top of the prior sit ``n_traps`` trap arms (reward r_t); m optimal arms (reward
1) sit at random ranks in [opt_rank_lo, opt_rank_hi] of the prior; every other arm is irrelevant (reward 0).
A seed fixes the prior logits (init_scale * N(0, 1) per arm, sorted) and the optimal ranks (the first m of one
random order, so the m = 1 arm is also optimal at m = 3, ...: the same per-arm prior for every m).

Representation (exact symmetry reduction): the ``n_individual`` arms of highest prior logit are kept one by one;
the remaining irrelevant arms are pooled, in prior order, into groups of ``tail_group`` arms sharing one logit (the
log-mean-exp of their draws, which keeps each group's prior mass). Arms of one group have the same reward and
logit, so the exact gradient moves them together; a sampled update of one member is replaced by its average over
the members (the same expectation, less noise on the tail only). The kept set of the clamped entropy at every p
used here (0.33, 0.9, 0.99 of 10^5) ends on a group boundary. Each entry b stands for counts[b] arms:
H = -sum_b n_b pi_b log pi_b (computed with aent.entropy on z + log n, see :func:`multiset_entropy`).

Update: Adam ascent (toy.pg) on the per-arm gradient of V + lambda H_kind, where

- ``estimator="sampled"``: G arms per run per step from shared uniforms (common random numbers: a seed's sample
  stream is the same for every entropy control); PG term (1/G) sum_j A_j grad log pi(a_j), A from
  toy.pg.baseline_advantages (no std normalisation); the entropy term exactly, as the LLM trainer computes it
  over the vocabulary;
- ``estimator="exact"``: dV/dz_a = pi(a) (r_a - V) plus the exact entropy gradient.

Entropy control per run: an aent.EntropyConfig with method none, entropy_bonus, clamped_bonus or aent; AEnt's
coefficient is aent.EntropyControl's controller, fed the run's clamped entropy once per step.

Departure from SGD: plain gradient steps move an arm's logit at a rate proportional to its probability, so from a
prior in which most arms have pi ~ e^-16 the regularised optimum is out of reach in any affordable number of
steps; Adam (the optimizer of LLM RL) normalises per coordinate and has the same fixed points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aent.config import EntropyConfig
from aent.entropy import clamp_k, entropy
from aent.regularizer import EntropyControl
from aent.validation import check
from toy.pg import BASELINES, adam_init, adam_update, baseline_advantages, inverse_cdf

__all__ = ["BanditLayout", "TrapBanditConfig", "TrapRun", "kept_counts", "make_layout", "multiset_entropy",
           "train_trap_bandit"]

KINDS = {"none": None, "entropy_bonus": "full", "clamped_bonus": "clamped", "aent": "clamped"}


def multiset_entropy(logits: Tensor, counts: Tensor) -> Tensor:
    """Entropy (nats) of the softmax over arms when entry b stands for counts[b] arms of logit logits[..., b].

    With q = softmax(z + log n) (the mass of each entry), H = H(q) + sum_b q_b log n_b. Entries with count 0
    are absent. Differentiable in ``logits``; the gradient with respect to z_b is the sum over its arms.

    Args:
        logits: (..., E) float logits per entry.
        counts: (..., E) or (E,) nonnegative arm counts (at least one positive per row).

    Returns:
        (...) float32 entropies.
    """
    counts = torch.as_tensor(counts, dtype=logits.dtype).expand_as(logits)
    if bool((counts < 0).any()):
        raise ValueError("counts must be >= 0")
    log_n = torch.where(counts > 0, counts.log(), torch.full_like(counts, -math.inf))
    shifted = logits + log_n
    q = torch.softmax(shifted, -1)
    return entropy(shifted) + (q * torch.where(counts > 0, log_n, torch.zeros_like(log_n))).sum(-1)


def kept_counts(logits: Tensor, counts: Tensor, clamp_p: float) -> Tensor:
    """Arms of each entry kept by the clamped entropy: the floor(p N) arms of smallest logit are removed.

    Entries are removed whole from the bottom; the entry at the threshold loses the remainder (its arms are tied,
    so which of them go does not change the entropy, as in aent.clamped_entropy). N = counts.sum().

    Args:
        logits: (R, E) logits per entry.
        counts: (E,) arm counts per entry.
        clamp_p: fraction removed, in [0, 1).

    Returns:
        (R, E) kept counts, float.
    """
    n = int(counts.sum())
    k = clamp_k(clamp_p, n)
    order = logits.detach().argsort(dim=-1)  # ascending (tied arms have equal logits: any order gives the same H)
    sorted_n = counts.to(logits.dtype)[order]
    before = sorted_n.cumsum(-1) - sorted_n
    kept_sorted = (sorted_n - (k - before).clamp(min=0)).clamp(min=0)
    return torch.empty_like(kept_sorted).scatter_(-1, order, kept_sorted)


@dataclass(frozen=True)
class TrapBanditConfig:
    """A trap-bandit task family and its training settings (validated)."""

    n_arms: int = 100_000
    """N, arms (>= n_individual)."""
    n_traps: int = 10
    """Trap arms at prior ranks 1..n_traps (>= 1)."""
    trap_reward: float = 0.6
    """Reward of a trap arm, in (0, 1)."""
    init_scale: float = 3.0
    """Std of the Gaussian prior logits (>= 0)."""
    opt_rank_lo: int = 200
    """Highest prior rank an optimal arm may take (> n_traps)."""
    opt_rank_hi: int = 900
    """Lowest prior rank an optimal arm may take (<= n_individual, so inside every kept set)."""
    n_individual: int = 1000
    """Arms of highest prior kept one by one; the rest pooled in groups."""
    tail_group: int = 1000
    """Arms per pooled tail group (divides n_arms - n_individual)."""
    estimator: str = "sampled"
    """"sampled" (G arms per step) or "exact" (exact gradient)."""
    baseline: str = "rloo"
    """Baseline of the sampled estimator: "rloo" or "mean"."""
    group_size: int = 16
    """G, arms sampled per run per step (>= 2)."""
    lr: float = 0.05
    """Adam step size (> 0)."""
    steps: int = 1000
    """Training steps (>= 1)."""
    record_every: int = 10
    """Record V, P(A*), P(trap), entropies and lambda every this many steps (>= 1)."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), "TrapBanditConfig.")

        need(self.n_traps >= 1, "n_traps", ">= 1")
        need(0 < self.trap_reward < 1, "trap_reward", "in (0, 1)")
        need(self.init_scale >= 0, "init_scale", ">= 0")
        need(self.n_traps < self.opt_rank_lo <= self.opt_rank_hi, "opt_rank_lo", "in (n_traps, opt_rank_hi]")
        need(self.opt_rank_hi <= self.n_individual, "opt_rank_hi", f"<= n_individual={self.n_individual}")
        need(self.n_individual <= self.n_arms, "n_individual", f"<= n_arms={self.n_arms}")
        need(self.tail_group >= 1 and (self.n_arms - self.n_individual) % self.tail_group == 0, "tail_group",
             f"a divisor of n_arms - n_individual = {self.n_arms - self.n_individual}")
        need(self.estimator in ("sampled", "exact"), "estimator", "'sampled' or 'exact'")
        need(self.baseline in BASELINES, "baseline", f"one of {BASELINES}")
        need(self.group_size >= 2, "group_size", ">= 2")
        need(self.lr > 0, "lr", "> 0")
        need(self.steps >= 1, "steps", ">= 1")
        need(self.record_every >= 1, "record_every", ">= 1")


@dataclass
class BanditLayout:
    """Entries of every run: counts (E,), rewards (R, E), initial logits (R, E), optimal / trap masks (R, E)."""

    counts: Tensor
    rewards: Tensor
    logits0: Tensor
    optimal: Tensor
    trap: Tensor


def _prior(cfg: TrapBanditConfig, seed: int) -> tuple[Tensor, np.ndarray]:
    """Entry logits (E,) of one seed's prior and its order of candidate optimal ranks (0-based entry indices)."""
    gen = torch.Generator().manual_seed(7_919 * seed + 11)
    z = (cfg.init_scale * torch.randn(cfg.n_arms, generator=gen, dtype=torch.float64)).sort(descending=True).values
    tail = z[cfg.n_individual:].reshape(-1, cfg.tail_group)
    pooled = torch.logsumexp(tail, -1) - math.log(cfg.tail_group)
    order = np.random.default_rng(seed).permutation(np.arange(cfg.opt_rank_lo - 1, cfg.opt_rank_hi))
    return torch.cat([z[: cfg.n_individual], pooled]).float(), order


def make_layout(cfg: TrapBanditConfig, rows: list[tuple[int, int]]) -> BanditLayout:
    """Entries for runs given as (seed, m): same seed, same prior and optimal ranks (nested in m)."""
    n_tail = (cfg.n_arms - cfg.n_individual) // cfg.tail_group
    counts = torch.cat([torch.ones(cfg.n_individual), torch.full((n_tail,), float(cfg.tail_group))])
    priors = {s: _prior(cfg, s) for s in sorted({s for s, _ in rows})}
    n_cand = cfg.opt_rank_hi - cfg.opt_rank_lo + 1
    z0, opt = torch.empty(len(rows), len(counts)), torch.zeros(len(rows), len(counts), dtype=torch.bool)
    for i, (s, m) in enumerate(rows):
        if not 1 <= m <= n_cand:
            raise ValueError(f"m must be in [1, {n_cand}] (the candidate optimal ranks), got {m}")
        z0[i], order = priors[s]
        opt[i, torch.as_tensor(order[:m])] = True
    trap = torch.zeros_like(opt)
    trap[:, : cfg.n_traps] = True
    rewards = opt.float() + cfg.trap_reward * trap.float()
    return BanditLayout(counts=counts, rewards=rewards, logits0=z0, optimal=opt, trap=trap)


@dataclass
class TrapRun:
    """Curves of a batched run, each (n_records, R): recorded at ``steps`` (0, record_every, ..., final)."""

    steps: list[int]
    value: Tensor
    p_opt: Tensor
    p_trap: Tensor
    entropy: Tensor
    clamped_entropy: Tensor
    ent_coef: Tensor


def _still_kept(z: Tensor, counts: Tensor, kept: Tensor) -> Tensor:
    """(R,) bool: the kept counts of the previous step are still those of ``kept_counts`` for logits ``z``.

    They are when no removed arm has a larger logit than a kept one (a partly kept entry counts on both sides);
    the sort of ``kept_counts`` is then skipped (the kept set rarely changes between steps).
    """
    low_kept = torch.where(kept > 0, z, torch.full_like(z, math.inf)).amin(-1)
    high_removed = torch.where(kept < counts, z, torch.full_like(z, -math.inf)).amax(-1)
    return low_kept >= high_removed


def _entropy_grad(z: Tensor, counts: Tensor, ecfgs: list[EntropyConfig], coefs: Tensor, cache: dict
                  ) -> tuple[Tensor, Tensor]:
    """Gradient (per entry, summed over its arms) of sum_r lambda_r H_kind_r, and the clamped entropies (NaN for
    rows without a clamp) of every row. ``cache`` keeps each clamp fraction's kept counts between steps."""
    grad = torch.zeros_like(z)
    h_clamp = torch.full((len(z),), float("nan"))
    kinds = [KINDS[e.method] for e in ecfgs]
    full = torch.tensor([k == "full" for k in kinds])
    if full.any():
        sub = z[full].detach().requires_grad_(True)
        (g,) = torch.autograd.grad((coefs[full] * multiset_entropy(sub, counts)).sum(), sub)
        grad[full] = g
    for p in sorted({e.clamp_p for e, k in zip(ecfgs, kinds) if k == "clamped"}):
        rows = torch.tensor([k == "clamped" and e.clamp_p == p for e, k in zip(ecfgs, kinds)])
        sub = z[rows].detach().requires_grad_(True)
        kept = cache.get(p)
        if kept is None:
            kept = kept_counts(sub, counts, p)
        else:
            stale = ~_still_kept(sub.detach(), counts, kept)
            if stale.any():
                kept[stale] = kept_counts(sub.detach()[stale], counts, p)
        cache[p] = kept
        h = multiset_entropy(sub, kept)
        (g,) = torch.autograd.grad((coefs[rows] * h).sum(), sub)
        grad[rows], h_clamp[rows] = g, h.detach()
    return grad, h_clamp


def train_trap_bandit(cfg: TrapBanditConfig, layout: BanditLayout, row_seeds: list[int],
                      ecfgs: list[EntropyConfig], uniform_seed: int = 0, progress=None) -> TrapRun:
    """Train every run (row of ``layout``) for cfg.steps Adam steps; returns the recorded curves.

    Args:
        cfg: task family and training settings.
        layout: :func:`make_layout` for the runs.
        row_seeds: (R,) the seed of each run; runs with one seed share their sample stream (common random numbers).
        ecfgs: (R,) one aent.EntropyConfig per run (method none, entropy_bonus, clamped_bonus or aent).
        uniform_seed: seed of the uniforms' generator.
        progress: optional callable(n) after each step.
    """
    n_rows = len(layout.rewards)
    if len(row_seeds) != n_rows or len(ecfgs) != n_rows:
        raise ValueError(f"row_seeds and ecfgs must have one entry per run ({n_rows})")
    bad = [e.method for e in ecfgs if e.method not in KINDS]
    if bad:
        raise ValueError(f"ecfgs methods must be in {tuple(KINDS)}, got {bad[0]!r}")
    counts, rewards = layout.counts, layout.rewards
    log_n = counts.log()
    z = layout.logits0.clone()  # (R, E)
    state = adam_init(z)
    controls = [EntropyControl(e) for e in ecfgs]
    seeds = sorted(set(row_seeds))
    seed_row = torch.tensor([seeds.index(s) for s in row_seeds])
    gen = torch.Generator().manual_seed(uniform_seed)
    kept_cache: dict = {}
    rec: dict[str, list] = {k: [] for k in ("steps", "value", "p_opt", "p_trap", "entropy", "clamped", "coef")}
    for step in range(cfg.steps + 1):
        coefs = torch.tensor([c.ent_coef if KINDS[e.method] else 0.0 for c, e in zip(controls, ecfgs)])
        q = torch.softmax(z + log_n, -1)  # (R, E) mass of each entry
        ent_grad, h_clamp = _entropy_grad(z, counts, ecfgs, coefs, kept_cache)
        if step % cfg.record_every == 0 or step == cfg.steps:
            with torch.no_grad():
                h_full = multiset_entropy(z, counts)
            rec["steps"].append(step)
            rec["value"].append((q * rewards).sum(-1))
            rec["p_opt"].append((q * layout.optimal).sum(-1))
            rec["p_trap"].append((q * layout.trap).sum(-1))
            rec["entropy"].append(h_full)
            rec["clamped"].append(h_clamp)
            rec["coef"].append(coefs)
        if step == cfg.steps:
            break
        if cfg.estimator == "exact":
            pg = q * (rewards - (q * rewards).sum(-1, keepdim=True))
        else:
            u = torch.rand(len(seeds), cfg.group_size, generator=gen)[seed_row]  # (R, G), shared per seed
            actions = inverse_cdf(q, u)
            adv = baseline_advantages(rewards.gather(1, actions), cfg.baseline)
            pg = torch.zeros_like(z).scatter_add_(1, actions, adv / cfg.group_size)
        state = adam_update(z, (pg + ent_grad) / counts, state, cfg.lr)
        for c, e, h in zip(controls, ecfgs, h_clamp.tolist()):
            if e.method == "aent":
                c.step_end({"clamped_entropy": h, "entropy": h})
        if progress is not None:
            progress(1)
    stack = {k: torch.stack(v) for k, v in rec.items() if k != "steps"}
    return TrapRun(steps=rec["steps"], value=stack["value"], p_opt=stack["p_opt"], p_trap=stack["p_trap"],
                   entropy=stack["entropy"], clamped_entropy=stack["clamped"], ent_coef=stack["coef"])

"""Batched plain policy-gradient training on the trap bandit of AEnt's Figure 1 (|A| = 10^5 arms), many runs at once.

Task (toy.regime): N arms; at the top of the prior sit ``n_traps`` trap arms (reward r_t); m optimal arms (reward
1) sit at random ranks in [opt_rank_lo, opt_rank_hi] of the prior; every other arm is irrelevant (reward 0).
A seed fixes the prior and the optimal ranks (the first m of one random order, so the m = 1 arm is also optimal at
m = 3, ...: the same per-arm prior for every m). Prior: the ``n_individual`` highest of N draws init_scale * N(0, 1)
are the logits of the top arms; the remaining arms come in blocks of ``tail_group`` consecutive prior ranks, and the
arms of a block share one logit, the log-mean-exp of the block's draws (the block keeps its prior mass). These ties
are part of the task; every arm is still an arm of its own.

State (toy.multiset): entries (logit, count); tied arms share an entry only while they are tied. Sampling draws an
entry by its mass and then a uniform member, and splits the drawn arm off before it is updated, so the sampled run
draws individual arms from all N (no pooling of samples); the exact gradient moves tied arms together.

Update: the plain ("vanilla") policy-gradient step on the logits, z <- z + lr * g, with g the per-arm gradient of
V + lambda H_kind:

- ``estimator="sampled"``: G arms per run per step from shared uniforms (common random numbers: a seed's sample
  stream is the same for every entropy control); REINFORCE term (1/G) sum_j A_j e_{a_j} (A from
  toy.pg.baseline_advantages sums to 0 over the group, so the -pi part of grad log pi cancels and only the drawn
  logits move); the entropy term exactly and densely, -lambda pi~(a) (log pi~(a) + H~) on every kept arm;
- ``estimator="exact"``: dV/dz_a = pi(a) (r_a - V), the expectation of the sampled term (RLOO), plus the same entropy
  term.

Entropy control per run: an aent.EntropyConfig whose method's loss is the bonus alone (``bonus_only`` in the
method registry, aent.methods: none, entropy_bonus, clamped_bonus, aent, sac, threshold); its coefficient is
aent.EntropyControl's controller, whose ``step_end`` gets, once per step, the signal the method's spec names,
computed exactly on the policy that drew the step: the entropy, the clamped entropy, or for ``sampled_entropy``
(-mean log pi_old in the LLM trainer) the exact entropy, which that Monte-Carlo estimate estimates. Constant
coefficients (none, the fixed bonuses) have nothing to update (:func:`driven_runs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aent.config import EntropyConfig
from aent.controllers import ConstantCoef
from aent.methods import METHOD_SPECS
from aent.regularizer import EntropyControl
from aent.validation import check
from toy.multiset import entropy_grad, kept_counts, multiset_entropy, split_members, split_partial
from toy.pg import BASELINES, baseline_advantages, inverse_cdf

__all__ = ["BanditLayout", "TrapBanditConfig", "TrapRun", "bonus_kinds", "driven_runs", "kept_counts", "make_layout",
           "multiset_entropy", "signal_stats", "train_trap_bandit"]


def _runs_here(method: str) -> bool:
    """The trap trainers run a method whose loss is the bonus alone and whose driving signal they compute (the
    clamped entropy only for a clamped bonus)."""
    s = METHOD_SPECS[method]
    return s.bonus_only and (s.signal != "clamped_entropy" or s.entropy == "clamped")


def bonus_kinds(ecfgs: list[EntropyConfig]) -> list[str | None]:
    """Each run's bonus entropy from the method registry: "full", "clamped" or None (no bonus); a method the trap
    trainers cannot run raises one ValueError listing those they can."""
    for e in ecfgs:
        if not _runs_here(e.method):
            raise ValueError(f"ecfgs methods must be in {tuple(m for m in METHOD_SPECS if _runs_here(m))} (the "
                             f"methods whose loss is the entropy bonus alone), got {e.method!r}")
    return [None if METHOD_SPECS[e.method].entropy == "none" else METHOD_SPECS[e.method].entropy for e in ecfgs]


def driven_runs(controls: list[EntropyControl]) -> list[int]:
    """The runs whose controllers move with a signal; a constant coefficient without a weight controller (none,
    the fixed bonuses) has nothing to update, so its signal is neither computed nor passed."""
    return [i for i, c in enumerate(controls)
            if not isinstance(c.coef_ctrl, ConstantCoef) or c.weight_ctrl is not None]


def signal_stats(h_full: list[float], h_kind: list[float], kinds: list[str | None]) -> list[dict[str, float]]:
    """Per run, the ``step_end`` stats of one step from its exact entropies: ``entropy`` and ``sampled_entropy``
    (the exact entropy in place of -mean log pi_old) from ``h_full``; ``clamped_entropy`` from the clamped bonus's
    ``h_kind`` (only clamped runs have it)."""
    return [{"entropy": h, "sampled_entropy": h, **({"clamped_entropy": hk} if k == "clamped" else {})}
            for h, hk, k in zip(h_full, h_kind, kinds)]


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
    """Lowest prior rank an optimal arm may take (<= n_individual)."""
    n_individual: int = 1000
    """Arms of highest prior with a logit of their own; the others are tied in blocks of tail_group."""
    tail_group: int = 1000
    """Arms per tied block of the prior's tail (divides n_arms - n_individual)."""
    estimator: str = "sampled"
    """"sampled" (G arms per step) or "exact" (exact gradient)."""
    baseline: str = "rloo"
    """Baseline of the sampled estimator: "rloo" or "mean"."""
    group_size: int = 16
    """G, arms sampled per run per step (>= 2)."""
    lr: float = 16.0
    """Step size of the plain policy-gradient step (> 0)."""
    steps: int = 1000
    """Training steps (>= 1)."""
    record_every: int = 10
    """Record V, P(A*), P(trap), entropies and lambda every this many steps (>= 1)."""
    dtype: str = "float64"
    """Floating type of the training state: "float64" or "float32" (half the cost; the prior is drawn in float64)."""

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
        need(self.dtype in ("float64", "float32"), "dtype", "'float64' or 'float32'")


@dataclass
class BanditLayout:
    """Entries of every run at the start: counts (E,), rewards (R, E), logits (R, E), optimal / trap masks (R, E)."""

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
    tied = torch.logsumexp(tail, -1) - math.log(cfg.tail_group)
    order = np.random.default_rng(seed).permutation(np.arange(cfg.opt_rank_lo - 1, cfg.opt_rank_hi))
    return torch.cat([z[: cfg.n_individual], tied]), order


def make_layout(cfg: TrapBanditConfig, rows: list[tuple[int, int]]) -> BanditLayout:
    """Entries for runs given as (seed, m): same seed, same prior and optimal ranks (nested in m)."""
    n_tail = (cfg.n_arms - cfg.n_individual) // cfg.tail_group
    counts = torch.cat([torch.ones(cfg.n_individual), torch.full((n_tail,), float(cfg.tail_group))]).double()
    priors = {s: _prior(cfg, s) for s in sorted({s for s, _ in rows})}
    n_cand = cfg.opt_rank_hi - cfg.opt_rank_lo + 1
    z0 = torch.empty(len(rows), len(counts), dtype=torch.float64)
    opt = torch.zeros(len(rows), len(counts), dtype=torch.bool)
    for i, (s, m) in enumerate(rows):
        if not 1 <= m <= n_cand:
            raise ValueError(f"m must be in [1, {n_cand}] (the candidate optimal ranks), got {m}")
        z0[i], order = priors[s]
        opt[i, torch.as_tensor(order[:m])] = True
    trap = torch.zeros_like(opt)
    trap[:, : cfg.n_traps] = True
    rewards = opt.double() + cfg.trap_reward * trap.double()
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
    entries: int = 0
    """Largest number of entries a run used (the sampled run's cost; N when every arm was split off)."""


def _groups(ecfgs: list[EntropyConfig]) -> dict[float, Tensor]:
    """{clamp fraction (0 for the full bonus): sorted rows} of the rows with an entropy term."""
    out: dict[float, list[int]] = {}
    for i, (e, kind) in enumerate(zip(ecfgs, bonus_kinds(ecfgs))):
        if kind:
            out.setdefault(0.0 if kind == "full" else e.clamp_p, []).append(i)
    return {p: torch.tensor(rows) for p, rows in out.items()}


def _kept_now(st: dict, rows: Tensor, p: float, fresh: bool) -> Tensor:
    """Kept counts (len(rows), E) of clamp fraction p for ``rows``, each entry kept or removed whole.

    The kept/removed flag ``keep`` is an entry attribute (a drawn arm split off an entry inherits it); it stays right
    while no removed arm has a larger logit than a kept one, so the sort of :func:`kept_counts` runs only for rows
    where that fails (or all rows when ``fresh``) and the threshold entry is then split (toy.multiset.split_partial).
    """
    z, n, keep = st["z"][rows], st["n"][rows], st["keep"][rows]
    live = n > 0
    low_kept = torch.where(live & (keep > 0), z, torch.full_like(z, torch.inf)).amin(-1)
    high_removed = torch.where(live & (keep == 0), z, torch.full_like(z, -torch.inf)).amax(-1)
    stale = torch.ones_like(low_kept, dtype=torch.bool) if fresh else low_kept < high_removed
    if bool(stale.any()):
        sub = rows[stale]
        kept = split_partial(st, kept_counts(st["z"][sub], st["n"][sub], p), sub)
        st["keep"][sub, : kept.shape[1]] = (kept > 0).to(kept.dtype)
    return st["n"][rows] * st["keep"][rows]


def _entropy_step(st: dict, groups: dict[float, Tensor], coefs: Tensor, fresh: bool) -> tuple[Tensor, Tensor]:
    """(lambda * per-arm entropy gradient (R, E), the bonus entropy H_kind per row (NaN without a bonus))."""
    h_kind = torch.full((len(coefs),), float("nan"), dtype=coefs.dtype)
    kept_of = {p: (st["n"][rows] if p == 0 else _kept_now(st, rows, p, fresh)) for p, rows in groups.items()}
    grad = torch.zeros_like(st["z"])
    for p, rows in groups.items():
        kept = kept_of[p]
        width = kept.shape[1]
        g, h = entropy_grad(st["z"][rows, :width], kept)
        grad[rows, :width] = coefs[rows, None] * g
        h_kind[rows] = h
    return grad, h_kind


def _draw(st: dict, u: Tensor) -> Tensor:
    """(R, G) entries of G arms drawn per run by the uniforms ``u``, each split off into a count-1 entry."""
    n = st["n"]
    logq = st["z"] + torch.where(n > 0, n.clamp(min=1e-30).log(), torch.full_like(n, -math.inf))
    entries = inverse_cdf(logq.softmax(-1), u)  # (R, G) the drawn entry
    rows = torch.arange(len(n))[:, None].expand_as(entries)
    # a uniform member of the drawn entry (tied arms are exchangeable); uniforms shared per seed like ``u``
    members = (st["u_member"] * n[rows, entries]).long()
    return split_members(st, rows.reshape(-1), entries.reshape(-1), members.reshape(-1)).view_as(entries)


def _pg_term(cfg: TrapBanditConfig, st: dict, actions: Tensor | None) -> Tensor:
    """Per-arm policy-gradient term (R, E): exact pi (r - V), or REINFORCE (1/G) sum_j A_j e_{a_j} on ``actions``."""
    z, n = st["z"], st["n"]
    if actions is None:
        logq = z + torch.where(n > 0, n.clamp(min=1e-30).log(), torch.full_like(n, -math.inf))
        p_arm = (z - torch.logsumexp(logq, -1, keepdim=True)).exp()
        value = (logq.softmax(-1) * st["r"]).sum(-1, keepdim=True)
        return torch.where(n > 0, p_arm * (st["r"] - value), torch.zeros_like(z))
    adv = baseline_advantages(st["r"].gather(1, actions), cfg.baseline)
    return torch.zeros_like(z).scatter_add_(1, actions, adv / cfg.group_size)


def _init_state(layout: BanditLayout, dtype: torch.dtype = torch.float64) -> dict:
    """The trainer's state: (R, E) logits z, counts n, per-entry attributes (reward r, optimal, trap, kept flag),
    used (R,) entries per row."""
    n_rows, e0 = layout.logits0.shape
    return {"z": layout.logits0.to(dtype, copy=True), "n": layout.counts.to(dtype).expand(n_rows, e0).clone(),
            "r": layout.rewards.to(dtype, copy=True), "opt": layout.optimal.to(dtype), "trap": layout.trap.to(dtype),
            "keep": torch.zeros(n_rows, e0, dtype=dtype), "attrs": ["r", "opt", "trap", "keep"],
            "used": torch.full((n_rows,), e0, dtype=torch.long)}


def _record(rec: dict, st: dict, step: int, h_kind: Tensor, coefs: Tensor, is_clamped: Tensor) -> None:
    n = st["n"]
    q = (st["z"] + torch.where(n > 0, n.clamp(min=1e-30).log(), torch.full_like(n, -math.inf))).softmax(-1)
    rec["steps"].append(step)
    rec["value"].append((q * st["r"]).sum(-1))
    rec["p_opt"].append((q * st["opt"]).sum(-1))
    rec["p_trap"].append((q * st["trap"]).sum(-1))
    rec["entropy"].append(multiset_entropy(st["z"], n))
    rec["clamped"].append(torch.where(is_clamped, h_kind, torch.tensor(float("nan"), dtype=h_kind.dtype)))
    rec["coef"].append(coefs)


def train_trap_bandit(cfg: TrapBanditConfig, layout: BanditLayout, row_seeds: list[int],
                      ecfgs: list[EntropyConfig], uniform_seed: int = 0, progress=None) -> TrapRun:
    """Train every run (row of ``layout``) for cfg.steps plain policy-gradient steps; returns the recorded curves.

    Args:
        cfg: task family and training settings.
        layout: :func:`make_layout` for the runs.
        row_seeds: (R,) the seed of each run; runs with one seed share their sample stream (common random numbers).
        ecfgs: (R,) one aent.EntropyConfig per run (a method of :func:`bonus_kinds`).
        uniform_seed: seed of the uniforms' generator.
        progress: optional callable(n) after each step.
    """
    n_rows = len(layout.rewards)
    if len(row_seeds) != n_rows or len(ecfgs) != n_rows:
        raise ValueError(f"row_seeds and ecfgs must have one entry per run ({n_rows})")
    kinds = bonus_kinds(ecfgs)
    st = _init_state(layout, getattr(torch, cfg.dtype))
    controls = [EntropyControl(e) for e in ecfgs]
    driven = driven_runs(controls)
    full_rows = torch.tensor([i for i in driven if METHOD_SPECS[ecfgs[i].method].signal != "clamped_entropy"],
                             dtype=torch.long)
    groups = _groups(ecfgs)
    seeds = sorted(set(row_seeds))
    seed_row = torch.tensor([seeds.index(s) for s in row_seeds])
    gen = torch.Generator().manual_seed(uniform_seed)
    is_clamped = torch.tensor([k == "clamped" for k in kinds])
    rec: dict[str, list] = {k: [] for k in ("steps", "value", "p_opt", "p_trap", "entropy", "clamped", "coef")}
    for step in range(cfg.steps + 1):
        coefs = torch.tensor([c.ent_coef if k else 0.0 for c, k in zip(controls, kinds)], dtype=st["z"].dtype)
        actions = None
        if step < cfg.steps and cfg.estimator == "sampled":  # split the drawn arms off before anything moves
            u = torch.rand(len(seeds), cfg.group_size, generator=gen, dtype=torch.float64)[seed_row]  # per seed
            st["u_member"] = torch.rand(len(seeds), cfg.group_size, generator=gen, dtype=torch.float64)[seed_row]
            actions = _draw(st, u)
        ent_grad, h_kind = _entropy_step(st, groups, coefs, fresh=step == 0)
        if step % cfg.record_every == 0 or step == cfg.steps:
            _record(rec, st, step, h_kind, coefs, is_clamped)
        if step == cfg.steps:
            break
        h_full = torch.full_like(h_kind, math.nan)  # (R,) of the policy that drew this step, where a signal needs it
        if len(full_rows):
            h_full[full_rows] = multiset_entropy(st["z"][full_rows], st["n"][full_rows])
        st["z"] += cfg.lr * (_pg_term(cfg, st, actions) + ent_grad)
        for i, stats in zip(driven, signal_stats(h_full[driven].tolist(), h_kind[driven].tolist(),
                                                 [kinds[i] for i in driven])):
            controls[i].step_end(stats)
        if progress is not None:
            progress(1)
    stack = {k: torch.stack(v).float() for k, v in rec.items() if k != "steps"}
    return TrapRun(steps=rec["steps"], value=stack["value"], p_opt=stack["p_opt"], p_trap=stack["p_trap"],
                   entropy=stack["entropy"], clamped_entropy=stack["clamped"], ent_coef=stack["coef"],
                   entries=int(st["used"].max()))

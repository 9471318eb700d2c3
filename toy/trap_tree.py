"""Batched policy-gradient training on a trap token tree (toy/TokenTree-v0's MDP), many runs at once.

The MDP: a sequence y = (y_1, ..., y_H) over a vocabulary of A tokens, tabular softmax logits per prefix (level
order: the child of state i by token a is A i + 1 + a, as in toy.exact_tree), terminal reward R(y). Trap regime
(toy.regime) over the A^H sequences: ``n_traps`` trap sequences (reward r_t) follow the prior's most likely path
and end in the top ``n_traps`` tokens of its last state; m optimal sequences (reward 1) start with distinct root
tokens at random prior ranks in [2, opt_rank_hi] and continue with tokens at random ranks in [1, opt_rank_hi] of
their states; every other sequence pays 0. A seed fixes the prior (init_scale * N(0, 1) per logit) and the
optimal sequences (the first m of one random order: nested in m, the same per-sequence prior for every m).

Objective: V + lambda H_kind, with H_kind the visitation-weighted sum of per-state (clamped) entropies, i.e. the
trajectory entropy for the full bonus (docs/toy/theory.md claims 2 and 4, whose maximiser toy.exact.regularized_optimum
computes). Its unbiased sampled gradient, LLM-style:

- G sequences per run per step, drawn with shared uniforms (common random numbers across entropy controls);
- one advantage per sequence, applied to each of its tokens: the baseline-corrected return
  R(y) + lambda sum_{t >= 1} H_kind(s_t) (the entropy of the states a token leads to is part of its return; a term
  that a token cannot influence has zero mean under its score, so one return serves every token);
- plus lambda grad H_kind(s) at the root and at every visited state, averaged over the G sequences (the token-mean
  entropy bonus of the LLM trainer), computed by aent.entropy / aent.clamped_entropy.

The update (``update``) is the plain policy-gradient step on the visited states' logits ("sgd", the rule of
toy.experiments.figure1) or lazy Adam (toy.pg; the tutorials); unvisited states keep their logits either way. V, P(A*)
and P(trap) are exact (products of the relevant sequences' token probabilities); the recorded entropy is the
step's token mean over its samples, as in the LLM metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aent.config import EntropyConfig
from aent.entropy import clamped_entropy, entropy
from aent.methods import METHOD_SPECS
from aent.regularizer import EntropyControl
from aent.validation import check
from toy.pg import BASELINES, adam_init, adam_update, baseline_advantages, inverse_cdf
from toy.trap_bandit import TrapRun, bonus_kinds, driven_runs, signal_stats

__all__ = ["TrapTreeConfig", "TreeLayout", "make_tree_layout", "sampled_gradient", "train_trap_tree"]


@dataclass(frozen=True)
class TrapTreeConfig:
    """A trap-tree task family and its training settings (validated)."""

    vocab: int = 316
    """A, tokens per step (>= n_traps + 2)."""
    horizon: int = 2
    """H, tokens per sequence (>= 1); A^H sequences."""
    n_traps: int = 10
    """Trap sequences (>= 1), on the prior's most likely path."""
    trap_reward: float = 0.6
    """Reward of a trap sequence, in (0, 1)."""
    init_scale: float = 2.0
    """Std of the Gaussian prior logits of every state (>= 0)."""
    opt_rank_hi: int = 32
    """Lowest prior rank of an optimal sequence's tokens (in [2, vocab]; root ranks start at 2)."""
    baseline: str = "rloo"
    """Baseline: "rloo" or "mean" (no std normalisation)."""
    group_size: int = 16
    """G, sequences per run per step (>= 2)."""
    update: str = "adam"
    """"sgd": the plain policy-gradient step z <- z + lr g; "adam": lazy Adam (toy.pg) with step size lr."""
    lr: float = 0.1
    """Step size (> 0)."""
    steps: int = 1000
    """Training steps (>= 1)."""
    record_every: int = 10
    """Record every this many steps (>= 1)."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            check(ok, name, allowed, getattr(self, name), "TrapTreeConfig.")

        need(self.n_traps >= 1, "n_traps", ">= 1")
        need(self.vocab >= self.n_traps + 2, "vocab", f">= n_traps + 2 = {self.n_traps + 2}")
        need(self.horizon >= 1 and self.vocab**self.horizon <= 1 << 24, "horizon", "an int >= 1 with vocab^H <= 2^24")
        need(0 < self.trap_reward < 1, "trap_reward", "in (0, 1)")
        need(self.init_scale >= 0, "init_scale", ">= 0")
        need(2 <= self.opt_rank_hi <= self.vocab, "opt_rank_hi", f"in [2, vocab={self.vocab}]")
        need(self.baseline in BASELINES, "baseline", f"one of {BASELINES}")
        need(self.group_size >= 2, "group_size", ">= 2")
        need(self.update in ("sgd", "adam"), "update", "'sgd' or 'adam'")
        need(self.lr > 0, "lr", "> 0")
        need(self.steps >= 1, "steps", ">= 1")
        need(self.record_every >= 1, "record_every", ">= 1")

    @property
    def n_states(self) -> int:
        return sum(self.vocab**t for t in range(self.horizon))


@dataclass
class TreeLayout:
    """Runs' tasks: prior logits per seed, reward tables per task, and the relevant sequences of every run.

    Attributes:
        logits0: {seed: (n_states, A) prior logits}.
        tables: (n_tasks, A^H) rewards; row r of the runs uses ``task[r]``.
        task: (R,) task index of each run.
        rel_tokens: (R, M, H) the run's optimal and trap sequences (padded with sequence 0 and weight 0).
        rel_reward: (R, M) their rewards (0 for padding); rel_opt: (R, M) bool, optimal.
    """

    logits0: dict[int, Tensor]
    tables: Tensor
    task: Tensor
    rel_tokens: Tensor
    rel_reward: Tensor
    rel_opt: Tensor


def _child(state: Tensor | int, token: Tensor | int, vocab: int):
    return vocab * state + 1 + token


def _seed_task(cfg: TrapTreeConfig, seed: int) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """(prior logits, trap sequences (n_traps, H), candidate optimal sequences in draw order (opt_rank_hi - 1, H))."""
    gen = torch.Generator().manual_seed(104_729 * seed + 3)
    z = cfg.init_scale * torch.randn(cfg.n_states, cfg.vocab, generator=gen)
    order = z.argsort(dim=-1, descending=True)  # order[s, k] = token of prior rank k + 1 in state s
    path, s = [], 0
    for _ in range(cfg.horizon - 1):
        path.append(int(order[s, 0]))
        s = _child(s, path[-1], cfg.vocab)
    traps = np.array([[*path, int(order[s, k])] for k in range(cfg.n_traps)], dtype=np.int64)
    rng = np.random.default_rng(seed)
    roots = rng.permutation(np.arange(1, cfg.opt_rank_hi))  # 0-based root ranks 1.. (rank 0 is the trap path)
    cands = []
    for r0 in roots:
        tok, s = [int(order[0, r0])], _child(0, int(order[0, r0]), cfg.vocab)
        for _ in range(cfg.horizon - 1):
            tok.append(int(order[s, rng.integers(0, cfg.opt_rank_hi)]))
            s = _child(s, tok[-1], cfg.vocab)
        cands.append(tok)
    return z, traps, np.array(cands, dtype=np.int64)


def make_tree_layout(cfg: TrapTreeConfig, rows: list[tuple[int, int]]) -> TreeLayout:
    """Tasks of runs given as (seed, m)."""
    seeds = sorted({s for s, _ in rows})
    per_seed = {s: _seed_task(cfg, s) for s in seeds}
    tasks = sorted(set(rows))
    powers = torch.tensor([cfg.vocab ** (cfg.horizon - 1 - t) for t in range(cfg.horizon)])
    tables = torch.zeros(len(tasks), cfg.vocab**cfg.horizon)
    m_max = max(m for _, m in rows)
    width = m_max + cfg.n_traps
    rel_tok = torch.zeros(len(rows), width, cfg.horizon, dtype=torch.long)
    rel_r, rel_opt = torch.zeros(len(rows), width), torch.zeros(len(rows), width, dtype=torch.bool)
    for k, (s, m) in enumerate(tasks):
        _, traps, cands = per_seed[s]
        if not 1 <= m <= len(cands):
            raise ValueError(f"m must be in [1, opt_rank_hi - 1 = {len(cands)}], got {m}")
        tables[k, torch.as_tensor(traps) @ powers] = cfg.trap_reward
        tables[k, torch.as_tensor(cands[:m]) @ powers] = 1.0
    for i, (s, m) in enumerate(rows):
        _, traps, cands = per_seed[s]
        seqs = torch.as_tensor(np.concatenate([cands[:m], traps]))
        rel_tok[i, : len(seqs)] = seqs
        rel_r[i, :m], rel_r[i, m : len(seqs)] = 1.0, cfg.trap_reward
        rel_opt[i, :m] = True
    return TreeLayout(logits0={s: per_seed[s][0] for s in seeds}, tables=tables,
                      task=torch.tensor([tasks.index(r) for r in rows]), rel_tokens=rel_tok, rel_reward=rel_r,
                      rel_opt=rel_opt)


def _relevant_probs(z: Tensor, layout: TreeLayout, vocab: int) -> Tensor:
    """P(y) of every run's relevant sequences, (R, M), exact."""
    n_rows, width, horizon = layout.rel_tokens.shape
    rows = torch.arange(n_rows)[:, None].expand(n_rows, width)
    state = torch.zeros(n_rows, width, dtype=torch.long)
    logp = torch.zeros(n_rows, width)
    for t in range(horizon):
        tok = layout.rel_tokens[:, :, t]
        logp += torch.log_softmax(z[rows, state], -1).gather(-1, tok[..., None]).squeeze(-1)
        state = _child(state, tok, vocab)
    return logp.exp()


def _entropy_kind(logits: Tensor, ecfgs: list[EntropyConfig], with_grad: bool) -> tuple[Tensor, Tensor]:
    """(full entropy, H_kind) per row of (R, ..., A) logits; H_kind is the row's bonus entropy (full or clamped
    with its p; 0 for rows without a bonus), differentiable when ``with_grad``."""
    with torch.no_grad():
        h_full = entropy(logits)
    h_kind = torch.zeros(logits.shape[:-1])
    kinds = bonus_kinds(ecfgs)
    for p in sorted({0.0 if k == "full" else e.clamp_p for e, k in zip(ecfgs, kinds) if k}):
        sel = torch.tensor([bool(k) and (0.0 if k == "full" else e.clamp_p) == p for e, k in zip(ecfgs, kinds)])
        with torch.set_grad_enabled(with_grad):
            h = clamped_entropy(logits[sel], p)
        h_kind = h_kind.index_put((sel.nonzero().squeeze(1),), h)
    return h_full, h_kind


def sampled_gradient(root: Tensor, deep: Tensor, y: Tensor, reward: Tensor, coefs: Tensor,
                     ecfgs: list[EntropyConfig], baseline: str) -> tuple[tuple, tuple, tuple]:
    """One step's sampled gradient of V + lambda H_kind (trajectory form) for each run's root and visited states.

    Args:
        root: (R, A) root logits.
        deep: (R, G, H-1, A) logits of the states each sample visits after its first token.
        y: (R, G, H) sampled sequences; reward: (R, G) their rewards.
        coefs: (R,) lambda of each run (0 without a bonus); ecfgs: (R,) its aent.EntropyConfig.
        baseline: "rloo" or "mean".

    Returns:
        ((g_root (R, A), g_deep (R, G, H-1, A) or None for H = 1), (H, H_kind) of the root (R,),
        (H, H_kind) of the deep states (R, G, H-1)). Summing g_deep over repeated visits of a state gives that
        state's gradient; its expectation is the exact gradient (tests/toy/test_trap.py, by enumeration).
    """
    g = y.shape[1]
    root = root.detach().requires_grad_(True)
    deep = deep.detach().requires_grad_(True)
    logp = torch.log_softmax(root, -1).gather(-1, y[:, :, 0]) + \
        torch.log_softmax(deep, -1).gather(-1, y[:, :, 1:, None]).squeeze(-1).sum(-1)  # (R, G)
    h_root, k_root = _entropy_kind(root, ecfgs, with_grad=True)  # (R,)
    h_deep, k_deep = _entropy_kind(deep, ecfgs, with_grad=True)  # (R, G, H-1)
    # The entropy of the states a token leads to is part of its return (score-function term of H_traj).
    ret = reward + coefs[:, None] * k_deep.detach().sum(-1)
    adv = baseline_advantages(ret, baseline)
    objective = (adv * logp).sum() / g + (coefs * k_root).sum() + (coefs[:, None, None] * k_deep).sum() / g
    grads = torch.autograd.grad(objective, [root, deep], allow_unused=True)
    return grads, (h_root, k_root.detach()), (h_deep, k_deep.detach())


def train_trap_tree(cfg: TrapTreeConfig, layout: TreeLayout, row_seeds: list[int], ecfgs: list[EntropyConfig],
                    uniform_seed: int = 0, progress=None) -> TrapRun:
    """Train every run for cfg.steps steps; returns curves (``entropy`` is the step's token-mean full entropy,
    ``clamped_entropy`` the token-mean clamped entropy of the rows it drives (AEnt), NaN elsewhere).

    Each run's controller gets, once per step, the signal its method's spec names (toy.trap_bandit.signal_stats):
    the token means over the step's samples of the exact per-state entropies, full or clamped (constant
    coefficients have nothing to update: toy.trap_bandit.driven_runs)."""
    n_rows = len(row_seeds)
    if len(ecfgs) != n_rows or len(layout.task) != n_rows:
        raise ValueError(f"row_seeds, ecfgs and the layout must all have one entry per run ({n_rows})")
    kinds = bonus_kinds(ecfgs)
    A, H, G = cfg.vocab, cfg.horizon, cfg.group_size
    z = torch.stack([layout.logits0[s] for s in row_seeds])  # (R, n_states, A)
    state = adam_init(z)
    controls = [EntropyControl(e) for e in ecfgs]
    driven = driven_runs(controls)
    seeds = sorted(set(row_seeds))
    seed_row = torch.tensor([seeds.index(s) for s in row_seeds])
    clamp_driven = torch.tensor([METHOD_SPECS[e.method].signal == "clamped_entropy" for e in ecfgs])
    gen = torch.Generator().manual_seed(uniform_seed)
    powers = torch.tensor([A ** (H - 1 - t) for t in range(H)])
    rows_g = torch.arange(n_rows)[:, None].expand(n_rows, G)
    rec: dict[str, list] = {k: [] for k in ("steps", "value", "p_opt", "p_trap", "entropy", "clamped", "coef")}
    h_tok = torch.full((n_rows,), float("nan"))
    h_clamp_tok = torch.full((n_rows,), float("nan"))
    for step in range(cfg.steps + 1):
        coefs = torch.tensor([c.ent_coef if k else 0.0 for c, k in zip(controls, kinds)])
        if step % cfg.record_every == 0 or step == cfg.steps:
            with torch.no_grad():
                prob = _relevant_probs(z, layout, A) * (layout.rel_reward > 0)
            rec["steps"].append(step)
            rec["value"].append((prob * layout.rel_reward).sum(-1))
            rec["p_opt"].append((prob * layout.rel_opt).sum(-1))
            rec["p_trap"].append((prob * ~layout.rel_opt).sum(-1))
            rec["entropy"].append(h_tok.clone())
            rec["clamped"].append(h_clamp_tok.clone())
            rec["coef"].append(coefs)
        if step == cfg.steps:
            break
        u = torch.rand(len(seeds), H, G, generator=gen)[seed_row]  # (R, H, G), shared per seed
        root = z[:, 0]  # (R, A): the root once per run, not once per sample
        with torch.no_grad():
            tokens = [inverse_cdf(torch.softmax(root, -1), u[:, 0])]  # (R, G)
            visited = []
            for t in range(1, H):
                visited.append(_child(visited[-1] if visited else 0, tokens[-1], A))
                tokens.append(inverse_cdf(torch.softmax(z[rows_g, visited[-1]], -1), u[:, t, :, None]).squeeze(-1))
        y = torch.stack(tokens, -1)  # (R, G, H)
        reward = layout.tables[layout.task[:, None], y @ powers]  # (R, G)
        vis = torch.stack(visited, -1) if visited else torch.zeros(n_rows, G, 0, dtype=torch.long)  # (R, G, H-1)
        deep = z[rows_g[..., None].expand_as(vis), vis]  # (R, G, H-1, A)
        (g_root, g_deep), (h_root, k_root), (h_deep, k_deep) = sampled_gradient(
            root.detach(), deep, y, reward, coefs, ecfgs, cfg.baseline)
        # Repeated visits of one state in a step add their gradients; every touched state gets one Adam update.
        keys = torch.cat([torch.arange(n_rows) * cfg.n_states, (torch.arange(n_rows)[:, None, None] * cfg.n_states
                                                                  + vis).reshape(-1)])
        grads = torch.cat([g_root, g_deep.reshape(-1, A) if g_deep is not None else g_root[:0]])
        uniq, inverse = torch.unique(keys, return_inverse=True)
        g = torch.zeros(len(uniq), A).index_add_(0, inverse, grads)
        if cfg.update == "adam":
            state = adam_update(z, g, state, cfg.lr, rows=uniq)
        else:  # plain policy-gradient step on the touched states
            z.view(-1, A).index_add_(0, uniq, cfg.lr * g)
        h_full = (h_root + h_deep.sum(-1).mean(1)) / H
        k_tok = (k_root.detach() + k_deep.detach().sum(-1).mean(1)) / H
        h_tok = h_full
        h_clamp_tok = torch.where(clamp_driven, k_tok, torch.tensor(float("nan")))
        for i, stats in zip(driven, signal_stats(h_tok[driven].tolist(), k_tok[driven].tolist(),
                                                 [kinds[i] for i in driven])):
            controls[i].step_end(stats)
        if progress is not None:
            progress(1)
    stack = {k: torch.stack(v) for k, v in rec.items() if k != "steps"}
    return TrapRun(steps=rec["steps"], value=stack["value"], p_opt=stack["p_opt"], p_trap=stack["p_trap"],
                   entropy=stack["entropy"], clamped_entropy=stack["clamped"], ent_coef=stack["coef"])

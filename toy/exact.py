"""The entropy-regularised optimum of the token tree, its bias, and the bias bounds (exact, by enumeration).

Theory claims 2-4 of docs/toy/theory.md (AEnt, arXiv 2509.03493, Sec. 4): with V(pi) = E_pi[R], H(pi) the trajectory
entropy and lambda > 0, the maximiser of V + lambda H over tabular softmax policies is the Gibbs distribution over
sequences P_lambda(y) ~ exp(R(y)/lambda); its logits come from the soft value recursion

    w(y) = R(y)/lambda at the leaves,   z(s, a) = w(s a),   w(s) = logsumexp_a z(s, a),

and max (V + lambda H) = lambda w(root) (the free energy). Its bias V* - V(P_lambda) is at most
lambda (H(P_lambda) - log|A*|) <= lambda (T log|A| - log|A*|), A* the set of optimal sequences.

Clamped analogue (clamp fraction p, K = |A| - floor(p|A|) tokens kept per state): the maximiser of
V + lambda H~_p (H~_p the visitation-weighted per-state clamped entropy) keeps, at every state, only the K children
of largest soft value w(s a) (the others get probability 0) and is Gibbs on the surviving subtree T_K; its bias is
at most lambda (H log K - log m_K), m_K the size of the largest subset of A* that uses at most K distinct next
tokens after every prefix (m_K = |A*| when A* itself does: "optimal tokens stay in the kept set"). The paper's
form lambda (H log((1-p)|A|) - log|A*|) equals this when p|A| is an integer and A* uses at most K tokens per
prefix; otherwise it can fail (docs/toy/theory.md, claim 4).

This module is also the single import point of the exact toolkit: it re-exports toy.exact_tree and
toy.exact_bandit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from toy.exact_bandit import bandit_gibbs, bandit_policy_gradient, bandit_value, kept_count, sparse_gibbs
from toy.exact_tree import (
    as_reward_table,
    clamped_trajectory_entropy,
    entropy_grad,
    level_starts,
    prefix_index,
    q_values,
    sample_sequences,
    score_function,
    sequence_index,
    sequence_logprobs,
    state_entropies,
    state_values,
    trajectory_entropy,
    trajectory_value,
    tree_size,
    value_grad,
    visitation,
    visitation_entropy,
)

__all__ = [
    "RegularizedOptimum", "as_reward_table", "bandit_gibbs", "bandit_policy_gradient", "bandit_value",
    "bias_bound", "branching_optimal_count", "clamped_trajectory_entropy", "entropy_grad", "free_energy",
    "gibbs_distribution", "kept_count", "level_starts", "optimal_logits", "optimal_mask", "prefix_index",
    "q_values", "regularized_objective", "regularized_optimum", "sample_sequences", "score_function",
    "sequence_index", "sequence_logprobs", "sparse_gibbs", "state_entropies", "state_values",
    "trajectory_entropy", "trajectory_value", "tree_size", "value_grad", "visitation", "visitation_entropy",
]

REMOVED_GAP = 1.0e4  # removed tokens sit this far below their state's largest logit: probability exactly 0
OPT_ATOL = 1e-9  # rewards within this of the maximum count as optimal


def _check_coef(ent_coef: float, clamp_p: float) -> None:
    if not (isinstance(ent_coef, (int, float)) and math.isfinite(ent_coef) and ent_coef > 0):
        raise ValueError(f"ent_coef must be a finite number > 0, got {ent_coef!r}")
    if not (isinstance(clamp_p, (int, float)) and 0.0 <= clamp_p < 1.0):
        raise ValueError(f"clamp_p must be a number in [0, 1), got {clamp_p!r}")


def optimal_mask(rewards, vocab: int, atol: float = OPT_ATOL) -> Tensor:
    """Boolean (A**H,) mask of the optimal sequences A* = {y : R(y) >= max R - atol}."""
    r, _ = as_reward_table(rewards, vocab)
    return r >= r.max() - atol


def branching_optimal_count(rewards, vocab: int, clamp_p: float = 0.0, atol: float = OPT_ATOL) -> int:
    """m_K: size of the largest subset of A* that uses at most K = |A| - floor(p|A|) next tokens per prefix.

    Dynamic programme from the leaves: c(y) = 1[y in A*], c(s) = sum of the K largest c(s a). It equals |A*|
    exactly when every prefix of an optimal sequence has at most K optimal continuations (the premise
    "optimal tokens stay in the kept set" of docs/toy/theory.md claim 4); p = 0 always gives |A*|.
    """
    _check_coef(1.0, clamp_p)
    r, horizon = as_reward_table(rewards, vocab)
    kept = kept_count(vocab, clamp_p)
    c = optimal_mask(r, vocab, atol).to(torch.float64)
    for _ in range(horizon):
        c = torch.topk(c.reshape(-1, vocab), kept, dim=-1).values.sum(-1)
    return int(round(float(c.sum())))


def gibbs_distribution(rewards, vocab: int, ent_coef: float) -> Tensor:
    """P_lambda(y) = exp(R(y)/lambda) / Z over all sequences, (A**H,) float64: the maximiser of V + lambda H."""
    _check_coef(ent_coef, 0.0)
    r, _ = as_reward_table(rewards, vocab)
    return torch.softmax(r / ent_coef, 0)


def _soft_recursion(rewards, vocab: int, ent_coef: float, clamp_p: float) -> tuple[Tensor, Tensor]:
    """Per-state logits z(s, a) = w(s a) (removed children at -inf) and the root soft value w(root)."""
    _check_coef(ent_coef, clamp_p)
    r, horizon = as_reward_table(rewards, vocab)
    n_removed = vocab - kept_count(vocab, clamp_p)
    w = r / ent_coef
    levels = []
    for _ in range(horizon):
        z = w.reshape(-1, vocab)
        if n_removed:
            drop = torch.topk(z, n_removed, dim=-1, largest=False).indices
            z = z.scatter(1, drop, -math.inf)
        levels.append(z)
        w = torch.logsumexp(z, -1)
    return torch.cat(levels[::-1]), w.reshape(())


def optimal_logits(rewards, vocab: int, ent_coef: float, clamp_p: float = 0.0) -> Tensor:
    """Tabular logits (n_states, A) of the maximiser of V + lambda H~_p (soft value recursion, level order).

    With clamp_p = 0 the induced sequence distribution is exactly ``gibbs_distribution``. With clamp_p > 0 the
    floor(p A) children of smallest soft value at each state are removed: their logit is the state's largest
    logit minus ``REMOVED_GAP``, so their probability is exactly 0 and ``aent.clamped_entropy`` removes them.
    """
    z, _ = _soft_recursion(rewards, vocab, ent_coef, clamp_p)
    floor = z.amax(-1, keepdim=True) - REMOVED_GAP
    return torch.where(torch.isinf(z), floor.expand_as(z), z)


def free_energy(rewards, vocab: int, ent_coef: float, clamp_p: float = 0.0) -> float:
    """max over policies of V + lambda H~_p; for p = 0 it is lambda log sum_y exp(R(y)/lambda)."""
    _, w_root = _soft_recursion(rewards, vocab, ent_coef, clamp_p)
    return float(ent_coef * w_root)


def regularized_objective(logits: Tensor, rewards, ent_coef: float, clamp_p: float = 0.0) -> float:
    """V(pi) + lambda H~_p(pi) of a tabular policy (clamp_p = 0: the float64 trajectory entropy)."""
    _check_coef(ent_coef, clamp_p)
    r, horizon = as_reward_table(rewards, logits.shape[-1])
    value = float(trajectory_value(logits, r))
    if clamp_p == 0.0:
        return value + ent_coef * float(trajectory_entropy(logits, horizon))
    return value + ent_coef * float(clamped_trajectory_entropy(logits, horizon, clamp_p))


def bias_bound(vocab: int, horizon: int, n_optimal: int, ent_coef: float, clamp_p: float = 0.0, *,
               paper_form: bool = False) -> float:
    """Bias bound lambda (H log K - log m) of the regularised optimum.

    Args:
        vocab: |A|.
        horizon: H.
        n_optimal: m, the number of optimal sequences (for the clamped bound: m_K of ``branching_optimal_count``).
        ent_coef: lambda > 0.
        clamp_p: p in [0, 1); p = 0 is the full-entropy bound lambda (T log|A| - log m).
        paper_form: use K = (1 - p)|A| as written in docs/toy/theory.md claim 4 instead of the exact K = |A| - floor(p|A|).

    Returns:
        The bound (may be negative when m > K**H, in which case the clamped premise fails).
    """
    _check_coef(ent_coef, clamp_p)
    if not (isinstance(n_optimal, (int, np.integer)) and n_optimal >= 1):
        raise ValueError(f"n_optimal must be an int >= 1, got {n_optimal!r}")
    kept = (1.0 - clamp_p) * vocab if paper_form else kept_count(vocab, clamp_p)
    return ent_coef * (horizon * math.log(kept) - math.log(n_optimal))


@dataclass(frozen=True)
class RegularizedOptimum:
    """The maximiser of V + lambda H~_p on one reward table and its bias, all exact.

    Attributes:
        logits: (n_states, A) float64 tabular logits of the optimum (level order).
        value: V(pi_lambda).
        entropy: its (clamped, for p > 0) trajectory entropy, nats; float64 -sum P log P over its support.
        objective: max of V + lambda H~_p (the free energy).
        max_reward: V* = max_y R(y).
        n_optimal: |A*|.
        n_optimal_kept: |A* & T_K|, optimal sequences with nonzero probability under the optimum.
        n_optimal_branching: m_K of ``branching_optimal_count`` (|A*| for p = 0).
        bias: V* - V(pi_lambda) >= 0.
        bound: lambda (T log K - log m_K) (exact K = |A| - floor(p|A|)); p = 0: lambda (T log|A| - log|A*|).
        bound_paper: lambda (H log((1 - p)|A|) - log |A*|), the form of docs/toy/theory.md claims 2 and 4.
        bound_entropy: lambda (entropy - log m_K), the tighter bound before H~ <= H log K.
    """

    logits: Tensor
    value: float
    entropy: float
    objective: float
    max_reward: float
    n_optimal: int
    n_optimal_kept: int
    n_optimal_branching: int
    bias: float
    bound: float
    bound_paper: float
    bound_entropy: float


def regularized_optimum(rewards, vocab: int, ent_coef: float, clamp_p: float = 0.0) -> RegularizedOptimum:
    """Solve max V + lambda H~_p exactly on a reward table of shape (A,)*H or (A**H,) and report its bias."""
    r, horizon = as_reward_table(rewards, vocab)
    logits = optimal_logits(r, vocab, ent_coef, clamp_p)
    lp = sequence_logprobs(logits, horizon)
    p = lp.exp()
    ent = float(-(p * lp).sum())  # removed tokens have p = 0 exactly, so this is the clamped entropy too
    opt = optimal_mask(r, vocab)
    m, m_kept = int(opt.sum()), int((opt & (p > 0)).sum())
    m_branch = branching_optimal_count(r, vocab, clamp_p)
    value, best = float((p * r).sum()), float(r.max())
    return RegularizedOptimum(
        logits=logits, value=value, entropy=ent, objective=free_energy(r, vocab, ent_coef, clamp_p),
        max_reward=best, n_optimal=m, n_optimal_kept=m_kept, n_optimal_branching=m_branch, bias=best - value,
        bound=bias_bound(vocab, horizon, m_branch, ent_coef, clamp_p),
        bound_paper=bias_bound(vocab, horizon, m, ent_coef, clamp_p, paper_form=True),
        bound_entropy=ent_coef * (ent - math.log(m_branch)),
    )

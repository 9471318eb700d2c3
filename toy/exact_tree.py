"""Exact (enumerated, float64) quantities of a tabular softmax policy on the token-tree MDP.

Token tree: a vocabulary of A tokens, horizon H, a terminal reward R(y) for each of the A**H sequences y
(docs/toy/theory.md). The policy holds one logit vector per prefix (state).

Prefix indexing is level order, which for an A-ary tree is heap order: the root (empty prefix) is state 0 and
the child of state i by token a is state A*i + 1 + a. Level t (prefixes of length t) occupies the states
[(A**t - 1)/(A - 1), (A**(t+1) - 1)/(A - 1)); inside a level, prefixes are ordered as base-A numbers with y_1
most significant, the C order of a reward table of shape (A,)*H (the order of ``toy.tasks``). So ``logits`` has
shape (n_states, A) with n_states = (A**H - 1)/(A - 1), and every sequence-indexed vector here has length A**H.

Everything is enumeration over all A**H sequences (at most ``MAX_SEQUENCES``): exact, for tests and theory.
Gradients are closed forms (the policy-gradient theorem, AEnt arXiv 2509.03493 Sec. 4 / Sutton et al. 2000),
not autograd; tests cross-check them against autograd and finite differences. Sampling uses numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from aent.entropy import clamped_entropy

__all__ = [
    "MAX_SEQUENCES", "as_reward_table", "check_logits", "clamped_trajectory_entropy", "entropy_grad",
    "level_starts", "prefix_index", "q_values", "sample_sequences", "score_function", "sequence_index",
    "sequence_logprobs", "state_entropies", "state_values", "trajectory_entropy", "trajectory_value", "tree_size",
    "value_grad", "visitation", "visitation_entropy",
]

MAX_SEQUENCES = 1 << 22  # enumeration limit: 4.2 M sequences (34 MB per float64 vector)
F64 = torch.float64
NEGLIGIBLE = 200.0  # logit gap below the row max beyond which a token's probability is below e^-200 (0 in fp32)


# ----------------------------------------------------------------------------------------------- indexing
def tree_size(vocab: int, horizon: int) -> int:
    """Number of states (prefixes of length 0..H-1): sum_{t<H} A**t."""
    _check_sizes(vocab, horizon)
    return sum(vocab**t for t in range(horizon))


def level_starts(vocab: int, horizon: int) -> list[int]:
    """First state index of each level t = 0..H (the last entry is ``tree_size``)."""
    _check_sizes(vocab, horizon)
    return [sum(vocab**s for s in range(t)) for t in range(horizon + 1)]


def prefix_index(prefix: Sequence[int], vocab: int) -> int:
    """State index of a prefix (y_1, ..., y_t), t >= 0, in level order."""
    index = 0
    for a in prefix:
        if not 0 <= int(a) < vocab:
            raise ValueError(f"prefix tokens must lie in [0, {vocab}), got {list(prefix)}")
        index = vocab * index + 1 + int(a)
    return index


def sequence_index(tokens: Tensor, vocab: int) -> Tensor:
    """Flat C-order index sum_t y_t A**(H-1-t) of each sequence in ``tokens`` (n, H) -> (n,) long."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must have shape (n, H), got {tuple(tokens.shape)}")
    weights = vocab ** torch.arange(tokens.shape[1] - 1, -1, -1, dtype=torch.long)
    return (tokens.long() * weights).sum(-1)


# --------------------------------------------------------------------------------------------- validation
def _check_sizes(vocab: int, horizon: int) -> None:
    if not (isinstance(vocab, int) and vocab >= 2):
        raise ValueError(f"vocab must be an int >= 2, got {vocab!r}")
    if not (isinstance(horizon, int) and horizon >= 1):
        raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
    if vocab**horizon > MAX_SEQUENCES:
        raise ValueError(f"vocab**horizon = {vocab}**{horizon} exceeds the enumeration limit {MAX_SEQUENCES}; "
                         "use a smaller tree (or toy.exact_bandit closed forms for one-step problems)")


def check_logits(logits: Tensor, horizon: int) -> Tensor:
    """Validate tabular logits (n_states, A) for a tree of depth ``horizon``; return them as float64."""
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError("logits must be a float tensor of shape (n_states, vocab)")
    vocab = logits.shape[1]
    _check_sizes(vocab, horizon)
    n = tree_size(vocab, horizon)
    if logits.shape[0] != n:
        raise ValueError(f"logits must have {n} rows (states of a vocab={vocab}, horizon={horizon} tree), "
                         f"got {logits.shape[0]}")
    if bool(torch.isnan(logits).any()) or bool((logits == math.inf).any()):
        raise ValueError("logits must not contain NaN or +inf")
    return logits.to(F64)


def as_reward_table(rewards, vocab: int) -> tuple[Tensor, int]:
    """Flatten a reward table of shape (A,)*H or (A**H,) to float64 (A**H,) and return it with H."""
    if isinstance(rewards, Tensor):
        r = rewards.detach().to(F64).reshape(-1).clone()
    else:  # copy: reward tables of toy.tasks are read-only numpy arrays
        r = torch.tensor(np.array(rewards, dtype=np.float64)).reshape(-1)
    horizon = round(math.log(max(r.numel(), 1)) / math.log(vocab)) if vocab >= 2 else 0
    if horizon < 1 or vocab**horizon != r.numel():
        raise ValueError(f"rewards must have A**H entries for vocab A={vocab} and some H >= 1, got {r.numel()}")
    _check_sizes(vocab, horizon)
    if not bool(torch.isfinite(r).all()):
        raise ValueError("rewards must be finite")
    return r, horizon


# ------------------------------------------------------------------------------------------ probabilities
def _level_logprobs(logits: Tensor, horizon: int) -> list[Tensor]:
    """log pi(. | s) for the states of each level t, shape (A**t, A)."""
    logp = torch.log_softmax(logits, -1)
    starts = level_starts(logits.shape[1], horizon)
    return [logp[starts[t]:starts[t + 1]] for t in range(horizon)]


def sequence_logprobs(logits: Tensor, horizon: int) -> Tensor:
    """log P(y) = sum_t log pi(y_t | y_<t) for every sequence y, differentiable.

    Args:
        logits: (n_states, A) tabular logits in level order.
        horizon: H.

    Returns:
        (A**H,) float64, C order.
    """
    logits = check_logits(logits, horizon)
    lp = torch.zeros(1, dtype=F64)
    for level in _level_logprobs(logits, horizon):
        lp = (lp[:, None] + level).reshape(-1)
    return lp


def visitation(logits: Tensor, horizon: int) -> Tensor:
    """d(s) = probability that a sampled sequence passes through state s, (n_states,) float64."""
    logits = check_logits(logits, horizon)
    out, lp = [torch.zeros(1, dtype=F64)], torch.zeros(1, dtype=F64)
    for level in _level_logprobs(logits, horizon)[:-1]:
        lp = (lp[:, None] + level).reshape(-1)
        out.append(lp)
    return torch.cat(out).exp()


def trajectory_value(logits: Tensor, rewards) -> Tensor:
    """V(pi) = sum_y P(y) R(y), scalar float64, differentiable in logits."""
    r, horizon = as_reward_table(rewards, logits.shape[-1])
    return (sequence_logprobs(logits, horizon).exp() * r).sum()


def _backup(logits: Tensor, horizon: int, leaf: Tensor, step_reward: Tensor | None) -> tuple[Tensor, Tensor]:
    """Backward recursion Q(s, a) = c(s, a) + V(s a), V(s) = sum_a pi(a|s) Q(s, a); leaf values V(y) given.

    Args:
        logits: validated float64 (n_states, A).
        horizon: H.
        leaf: (A**H,) values of the complete sequences.
        step_reward: optional (n_states, A) per-step reward c(s, a) (None: 0).

    Returns:
        Q (n_states, A) and V (n_states,), level order.
    """
    vocab = logits.shape[1]
    starts = level_starts(vocab, horizon)
    pi = torch.softmax(logits, -1)
    q_levels, v_levels, v_next = [], [], leaf
    for t in range(horizon - 1, -1, -1):
        q = v_next.reshape(-1, vocab)
        if step_reward is not None:
            q = q + step_reward[starts[t]:starts[t + 1]]
        v_next = (pi[starts[t]:starts[t + 1]] * q).sum(-1)
        q_levels.append(q)
        v_levels.append(v_next)
    return torch.cat(q_levels[::-1]), torch.cat(v_levels[::-1])


def q_values(logits: Tensor, rewards) -> Tensor:
    """Q(s, a) = E[R | prefix s, then token a], (n_states, A) float64, by backward recursion (no enumeration)."""
    r, horizon = as_reward_table(rewards, logits.shape[-1])
    return _backup(check_logits(logits, horizon), horizon, r, None)[0]


def state_values(logits: Tensor, rewards) -> Tensor:
    """V(s) = E[R | prefix s] for every state, (n_states,) float64; V(root) = trajectory_value."""
    r, horizon = as_reward_table(rewards, logits.shape[-1])
    return _backup(check_logits(logits, horizon), horizon, r, None)[1]


def value_grad(logits: Tensor, rewards) -> Tensor:
    """Exact gradient dV/dz(s, a) = d(s) pi(a|s) (Q(s, a) - V(s)) of the value, (n_states, A) float64.

    The policy-gradient theorem for tabular softmax (AEnt, arXiv 2509.03493, Sec. 4, proof of the
    gradient-norm bound): d is the visitation probability, Q and V the expected terminal reward.
    """
    r, horizon = as_reward_table(rewards, logits.shape[-1])
    z = check_logits(logits, horizon).detach()
    q, v = _backup(z, horizon, r, None)
    return visitation(z, horizon)[:, None] * torch.softmax(z, -1) * (q - v[:, None])


def entropy_grad(logits: Tensor, horizon: int) -> Tensor:
    """Exact gradient of the trajectory entropy, dH/dz(s, a) = d(s) pi(a|s) (Q_H(s, a) - V_H(s)).

    H is the value of the per-step "reward" -log pi(a|s); the term from differentiating the reward itself has
    mean zero, so the policy-gradient theorem applies with Q_H(s, a) = -log pi(a|s) + V_H(s a), where V_H(s) is
    the entropy of the subtree below s (V_H(root) = H).

    Returns:
        (n_states, A) float64.
    """
    z = check_logits(logits, horizon).detach()
    logp = torch.log_softmax(z, -1)
    leaf = torch.zeros(z.shape[1] ** horizon, dtype=F64)
    q, v = _backup(z, horizon, leaf, -logp)
    return visitation(z, horizon)[:, None] * logp.exp() * (q - v[:, None])


# --------------------------------------------------------------------------------------------- entropies
def trajectory_entropy(logits: Tensor, horizon: int) -> Tensor:
    """Sequence-level entropy H(pi) = -sum_y P(y) log P(y) in nats, scalar float64, differentiable."""
    lp = sequence_logprobs(logits, horizon)
    return -(lp.exp() * lp).sum()


def state_entropies(logits: Tensor) -> Tensor:
    """Per-state entropy H(pi(.|s)) in nats, (n_states,) float64 (an independent float64 formula)."""
    logp = torch.log_softmax(logits.to(F64), -1)
    return -(logp.exp() * logp).sum(-1)


def visitation_entropy(logits: Tensor, horizon: int) -> Tensor:
    """sum_s d(s) H(pi(.|s)): equals the trajectory entropy by the chain rule of entropy."""
    logits = check_logits(logits, horizon)
    return (visitation(logits, horizon) * state_entropies(logits)).sum()


def clamped_trajectory_entropy(logits: Tensor, horizon: int, clamp_p: float) -> Tensor:
    """Trajectory clamped entropy sum_s d(s) H~_p(pi(.|s)) (AEnt, arXiv 2509.03493, Sec. 3, per state).

    The per-state clamped entropy comes from ``aent.clamped_entropy`` (float32, removes floor(p * A) tokens);
    the visitation weights are float64. clamp_p = 0 gives the trajectory entropy (to float32 rounding). With
    fixed horizon this is H times the expected token-mean clamped entropy of a sampled sequence.

    Returns:
        Scalar float64 tensor (no gradient).
    """
    logits = check_logits(logits, horizon).detach()
    shifted = logits - logits.amax(-1, keepdim=True)
    # Tokens more than NEGLIGIBLE below the max have float32 probability exactly 0; passing them as -inf keeps
    # aent's per-row threshold near the kept logits (a far threshold costs float32 precision on the kept ones).
    shifted = shifted.masked_fill(shifted < -NEGLIGIBLE, -math.inf).float()
    per_state = clamped_entropy(shifted, clamp_p).to(F64)
    return (visitation(logits, horizon) * per_state).sum()


# ---------------------------------------------------------------------------------------------- sampling
def sample_sequences(logits: Tensor, horizon: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sample n sequences from the tabular policy by walking the tree with numpy, (n, H) int64.

    Args:
        logits: (n_states, A) tabular logits in level order.
        horizon: H.
        n: number of sequences (>= 1).
        rng: a ``numpy.random.Generator`` (the only source of randomness).
    """
    z = check_logits(logits, horizon).detach().numpy()
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    probs = np.exp(z - z.max(-1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), -1)
    vocab = z.shape[1]
    state = np.zeros(n, dtype=np.int64)
    tokens = np.empty((n, horizon), dtype=np.int64)
    for t in range(horizon):
        u = rng.random(n)[:, None]
        tokens[:, t] = np.minimum((cdf[state] < u).sum(-1), vocab - 1)  # inverse-CDF draw
        state = vocab * state + 1 + tokens[:, t]
    return tokens


def score_function(logits: Tensor, tokens) -> Tensor:
    """Per-sequence score d log P(y) / dz, (n, n_states, A) float64 (REINFORCE, Williams 1992).

    d log P(y)/dz(s, a) = sum_t [s_t = s] (1[a = y_t] - pi(a|s)); the mean of R(y) times it over samples is the
    unbiased score-function estimate of ``value_grad``.

    Args:
        logits: (n_states, A) tabular logits.
        tokens: (n, H) int sequences (numpy or torch).
    """
    tok = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    if tok.dim() != 2:
        raise ValueError(f"tokens must have shape (n, H), got {tuple(tok.shape)}")
    z = check_logits(logits, tok.shape[1]).detach()
    pi = torch.softmax(z, -1)
    n, vocab = tok.shape[0], z.shape[1]
    out = torch.zeros(n, z.shape[0], vocab, dtype=F64)
    rows, state = torch.arange(n), torch.zeros(n, dtype=torch.long)
    for t in range(tok.shape[1]):
        out[rows, state] -= pi[state]
        out[rows, state, tok[:, t]] += 1.0
        state = vocab * state + 1 + tok[:, t]
    return out

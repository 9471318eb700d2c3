"""Reward definitions of the two toy problems, shared by the environments and the exact solvers.

A task is a frozen, validated dataclass: the same arguments (seed included) always give the same rewards.
- `BanditTask`: a one-step problem with ``n_arms`` actions, ``m_optimal`` of them worth 1 and the others
  below 1 (the setting of Figure 1 in AEnt, arXiv 2509.03493, with |A| = 10^5).
- `TreeTask`: a language model as an MDP. A sequence y = (y_1, ..., y_H) of tokens from a vocabulary of size
  ``vocab`` gets a terminal reward R(y) in [0, 1]; the optimal set A* = {y : R(y) = 1} is sparse.

Sequences are indexed in lexicographic (C) order: the flat index of y is sum_t y_t * vocab^(H-1-t), which is
the index of y in ``reward_table().ravel()`` and the order of ``itertools.product(range(vocab), repeat=H)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["BANDIT_PATTERNS", "TREE_RULES", "TREE_STRUCTURES", "BanditTask", "TreeTask", "all_sequences"]

BANDIT_PATTERNS = ("zero", "uniform", "distractors")
TREE_STRUCTURES = ("targets", "rule")
TREE_RULES = ("sum_mod", "ends_with")
_MAX_TABLE = 1 << 24  # largest reward_table() / optimal_set enumeration (16.7 M entries, 134 MB in float64)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise one ValueError naming ``name`` unless ``value`` is an int in [low, high]."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    ok = ok and value >= low and (high is None or value <= high)
    if not ok:
        allowed = f"[{low}, {high}]" if high is not None else f"[{low}, inf)"
        raise ValueError(f"{name} must be an integer in {allowed}, got {value!r}")


def all_sequences(vocab: int, length: int) -> np.ndarray:
    """Every token sequence of ``length`` over ``vocab`` tokens in lexicographic (C) order.

    Returns:
        int64 array of shape (vocab**length, length); row i is the base-``vocab`` digits of i.
    """
    _check_int("vocab", vocab, 1)
    _check_int("length", length, 0)
    idx = np.arange(vocab**length, dtype=np.int64)
    out = np.empty((len(idx), length), dtype=np.int64)
    for t in range(length - 1, -1, -1):
        out[:, t] = idx % vocab
        idx //= vocab
    return out


@dataclass(frozen=True)
class BanditTask:
    """A sparse multi-armed bandit: ``m_optimal`` arms pay 1, the others pay less (deterministically).

    AEnt (arXiv 2509.03493), Figure 1: |A| = 10^5 actions, m optimal ones; the entropy bonus helps for
    m ~ 10-15 and loses its edge for m <= 5, the clamped bonus keeps it.

    Args:
        n_arms: number of actions |A| (>= 1).
        m_optimal: number of optimal arms m, reward 1, in [1, n_arms].
        pattern: rewards of the non-optimal arms. ``"zero"``: all 0. ``"uniform"``: i.i.d. uniform in
            [0, 1 - gap). ``"distractors"``: ``n_distractors`` arms pay 1 - gap, the rest 0.
        gap: suboptimality gap in (0, 1]; used by ``"uniform"`` and ``"distractors"``.
        n_distractors: number of near-optimal arms for ``"distractors"``; m_optimal + n_distractors <= n_arms.
        seed: seed of the arm placement and of the uniform rewards (>= 0).
    """

    n_arms: int = 100_000
    m_optimal: int = 10
    pattern: str = "zero"
    gap: float = 0.1
    n_distractors: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("n_arms", self.n_arms, 1)
        _check_int("m_optimal", self.m_optimal, 1, self.n_arms)
        if self.pattern not in BANDIT_PATTERNS:
            raise ValueError(f"pattern must be one of {BANDIT_PATTERNS}, got {self.pattern!r}")
        if not (isinstance(self.gap, (int, float)) and 0.0 < self.gap <= 1.0):
            raise ValueError(f"gap must be a number in (0, 1], got {self.gap!r}")
        if self.pattern == "distractors":
            _check_int("n_distractors", self.n_distractors, 0, self.n_arms - self.m_optimal)
        _check_int("seed", self.seed, 0)

    @property
    def rewards(self) -> np.ndarray:
        """Reward of every arm, float64 array of shape (n_arms,), read-only, values in [0, 1]."""
        return _bandit_arrays(self)[0]

    @property
    def optimal(self) -> np.ndarray:
        """Sorted indices of the optimal arms (reward exactly 1), int64 array of shape (m_optimal,)."""
        return _bandit_arrays(self)[1]

    @property
    def max_reward(self) -> float:
        """The optimal value V* = 1."""
        return 1.0

    def reward(self, actions: ArrayLike) -> np.ndarray | float:
        """Reward of one arm (float) or of an int array of arms (float64 array of the same shape)."""
        r = self.rewards[np.asarray(actions)]
        return float(r) if np.ndim(r) == 0 else r


@functools.lru_cache(maxsize=8)
def _bandit_arrays(task: BanditTask) -> tuple[np.ndarray, np.ndarray]:
    """Build (rewards, optimal) once per distinct task: many env copies then share one read-only array."""
    rng = np.random.default_rng(task.seed)
    n_special = task.m_optimal + (task.n_distractors if task.pattern == "distractors" else 0)
    special = rng.choice(task.n_arms, size=n_special, replace=False)
    optimal = np.sort(special[: task.m_optimal]).astype(np.int64)
    if task.pattern == "uniform":
        rewards = rng.uniform(0.0, 1.0 - task.gap, size=task.n_arms)
    else:
        rewards = np.zeros(task.n_arms)
        rewards[special[task.m_optimal :]] = 1.0 - task.gap
    rewards[optimal] = 1.0
    rewards.setflags(write=False)
    optimal.setflags(write=False)
    return rewards, optimal


@dataclass(frozen=True)
class TreeTask:
    """Terminal reward of a token sequence of length ``horizon`` over a vocabulary of size ``vocab``.

    The token-tree MDP of docs/toy/theory.md: each step appends one token, R(y) in [0, 1] is paid at the end, and the
    optimal set A* = {y : R(y) = 1} is sparse (|A*| << vocab^horizon).

    Structures:
        ``"targets"``: ``m_targets`` distinct target sequences drawn uniformly at random (seeded) pay 1.
            Any other sequence pays ``partial_credit * l / horizon``, with l the length of the longest prefix
            it shares with a target (0 by default: a pure needle-in-a-haystack).
        ``"rule"``: a verifier-like rule pays 1, everything else 0. ``rule="sum_mod"``: sum(y) mod vocab ==
            rule_value. ``rule="ends_with"``: y_H == rule_value. Both give |A*| = vocab^(horizon-1).

    Args:
        vocab: vocabulary size |A| (>= 2).
        horizon: sequence length H (>= 1).
        structure: ``"targets"`` or ``"rule"``.
        m_targets: number of targets |A*| for ``"targets"``, in [1, vocab^horizon].
        partial_credit: prefix credit in [0, 1) for ``"targets"``; must be 0 for ``"rule"``.
        rule: ``"sum_mod"`` or ``"ends_with"`` (used by ``"rule"``).
        rule_value: the residue / final token c of the rule, in [0, vocab).
        seed: seed of the target draw (>= 0).
    """

    vocab: int = 4
    horizon: int = 3
    structure: str = "targets"
    m_targets: int = 1
    partial_credit: float = 0.0
    rule: str = "sum_mod"
    rule_value: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("vocab", self.vocab, 2)
        _check_int("horizon", self.horizon, 1)
        if self.structure not in TREE_STRUCTURES:
            raise ValueError(f"structure must be one of {TREE_STRUCTURES}, got {self.structure!r}")
        if self.structure == "targets":
            _check_int("m_targets", self.m_targets, 1, self.n_sequences)
            if not (isinstance(self.partial_credit, (int, float)) and 0.0 <= self.partial_credit < 1.0):
                raise ValueError(f"partial_credit must be a number in [0, 1), got {self.partial_credit!r}")
        else:
            if self.rule not in TREE_RULES:
                raise ValueError(f"rule must be one of {TREE_RULES}, got {self.rule!r}")
            _check_int("rule_value", self.rule_value, 0, self.vocab - 1)
            if self.partial_credit != 0:
                raise ValueError(
                    f"partial_credit must be 0 with structure='rule', got {self.partial_credit!r}"
                )
        _check_int("seed", self.seed, 0)

    @property
    def n_sequences(self) -> int:
        """Number of complete sequences vocab^horizon (a Python int, exact)."""
        return int(self.vocab) ** int(self.horizon)

    @property
    def n_optimal(self) -> int:
        """|A*|, the number of sequences with reward 1 (closed form, no enumeration)."""
        if self.structure == "targets":
            return int(self.m_targets)
        return int(self.vocab) ** (int(self.horizon) - 1)

    @property
    def max_reward(self) -> float:
        """The optimal value V* = 1."""
        return 1.0

    @property
    def targets(self) -> np.ndarray:
        """The target sequences, int64 array of shape (m_targets, horizon), sorted lexicographically.

        Raises ValueError for ``structure="rule"`` (use ``optimal_set``).
        """
        if self.structure != "targets":
            raise ValueError("targets exists only for structure='targets'; use optimal_set for a rule")
        return _tree_targets(self)

    @property
    def optimal_set(self) -> frozenset[tuple[int, ...]]:
        """A* as a frozenset of token tuples. Enumerates rules, so needs n_optimal <= 2^24."""
        if self.structure == "targets":
            return frozenset(tuple(int(t) for t in row) for row in self.targets)
        if self.n_optimal > _MAX_TABLE:
            raise ValueError(f"optimal_set would enumerate {self.n_optimal} sequences (> {_MAX_TABLE})")
        free = all_sequences(self.vocab, self.horizon - 1)
        if self.rule == "ends_with":
            last = np.full(self.n_optimal, self.rule_value)
        else:
            last = (self.rule_value - free.sum(axis=1)) % self.vocab
        return frozenset(tuple(int(t) for t in row) + (int(c),) for row, c in zip(free, last))

    def rewards(self, seqs: ArrayLike) -> np.ndarray:
        """Terminal rewards of a batch of complete sequences.

        Args:
            seqs: int array of shape (N, horizon) with tokens in [0, vocab).
        Returns:
            float64 array of shape (N,), values in [0, 1].
        """
        seqs = np.asarray(seqs)
        if seqs.ndim != 2 or seqs.shape[1] != self.horizon:
            raise ValueError(f"seqs must have shape (N, {self.horizon}), got {seqs.shape}")
        if seqs.size and (seqs.min() < 0 or seqs.max() >= self.vocab):
            raise ValueError(
                f"seqs tokens must lie in [0, {self.vocab}), got range [{seqs.min()}, {seqs.max()}]"
            )
        if self.structure == "rule":
            if self.rule == "ends_with":
                hit = seqs[:, -1] == self.rule_value
            else:
                hit = seqs.sum(axis=1, dtype=np.int64) % self.vocab == self.rule_value
            return hit.astype(np.float64)
        lcp = _prefix_match(self, seqs.astype(np.int64, copy=False))
        return np.where(lcp == self.horizon, 1.0, self.partial_credit * lcp / self.horizon)

    def reward(self, seq: ArrayLike) -> float:
        """Terminal reward R(y) of one complete sequence ``seq`` (length horizon), a float in [0, 1]."""
        return float(self.rewards(np.asarray(seq).reshape(1, -1))[0])

    def reward_table(self) -> np.ndarray:
        """R(y) for every sequence, float64 array of shape (vocab,) * horizon, read-only.

        Entry [y_1, ..., y_H] equals ``reward((y_1, ..., y_H))``. Needs vocab^horizon <= 2^24.
        """
        return _tree_table(self)


@functools.lru_cache(maxsize=8)
def _tree_targets(task: TreeTask) -> np.ndarray:
    """Draw ``m_targets`` distinct sequences uniformly without replacement (seeded), sorted."""
    rng = np.random.default_rng(task.seed)
    if task.n_sequences < (1 << 62):
        flat = rng.choice(task.n_sequences, size=task.m_targets, replace=False)
        digits = np.array(np.unravel_index(np.sort(flat), (task.vocab,) * task.horizon)).T
    else:  # too many sequences for an int64 index: rejection sampling, collisions are negligible
        found: dict[tuple[int, ...], None] = {}
        while len(found) < task.m_targets:
            found[tuple(rng.integers(0, task.vocab, size=task.horizon).tolist())] = None
        digits = np.array(sorted(found))
    digits = np.ascontiguousarray(digits.reshape(task.m_targets, task.horizon), dtype=np.int64)
    digits.setflags(write=False)
    return digits


@functools.lru_cache(maxsize=8)
def _target_keys(task: TreeTask) -> np.ndarray:
    """Flat (C-order) indices of the sorted targets, increasing; needs vocab^horizon < 2^62."""
    powers = task.vocab ** np.arange(task.horizon - 1, -1, -1, dtype=np.int64)
    keys = task.targets @ powers
    keys.setflags(write=False)
    return keys


def _shared_prefix(seqs: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Length of the common prefix of seqs[i] and others[i, j], shape (N, J), for shapes (N, H) and (N, J, H)."""
    eq = seqs[:, None, :] == others
    return np.where(eq.all(axis=2), seqs.shape[1], eq.argmin(axis=2))


def _prefix_match(task: TreeTask, seqs: np.ndarray) -> np.ndarray:
    """Longest prefix each row of ``seqs`` (N, H) shares with any target, int array of shape (N,).

    The targets are sorted lexicographically, and in a sorted set the string with the longest common prefix
    with y is a neighbour of y's insertion point, so two comparisons per row suffice. Trees too large for an
    int64 flat index fall back to comparing every row with every target, in chunks.
    """
    targets = task.targets
    if task.n_sequences < (1 << 62):
        powers = task.vocab ** np.arange(task.horizon - 1, -1, -1, dtype=np.int64)
        pos = np.searchsorted(_target_keys(task), seqs @ powers)
        neighbours = np.stack([np.maximum(pos - 1, 0), np.minimum(pos, len(targets) - 1)], axis=1)
        return _shared_prefix(seqs, targets[neighbours]).max(axis=1)
    out = np.empty(len(seqs), dtype=np.int64)
    step = max(1, (1 << 22) // (len(targets) * task.horizon))  # bounds the (chunk, m, H) comparison
    for i in range(0, len(seqs), step):
        out[i : i + step] = _shared_prefix(seqs[i : i + step], targets[None]).max(axis=1)
    return out


@functools.lru_cache(maxsize=4)
def _tree_table(task: TreeTask) -> np.ndarray:
    """Enumerate all vocab^horizon sequences in C order and score them."""
    if task.n_sequences > _MAX_TABLE:
        raise ValueError(
            f"reward_table needs vocab**horizon <= {_MAX_TABLE}, got {task.vocab}**{task.horizon} = {task.n_sequences}"
        )
    shape = (task.vocab,) * task.horizon
    table = task.rewards(all_sequences(task.vocab, task.horizon)).reshape(shape)
    table.setflags(write=False)
    return table

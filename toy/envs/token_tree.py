"""`toy/TokenTree-v0`: a language model as an MDP (append tokens, terminal reward), and its native vector env."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Env, spaces
from gymnasium.vector import AutoresetMode

from toy.envs._vector import NumpyVectorEnv, check_render_mode, is_int
from toy.tasks import TreeTask

__all__ = ["TokenTreeEnv", "TokenTreeVectorEnv", "make_tree_task", "tree_observation_space"]


def make_tree_task(task: TreeTask | None, task_seed: int, **fields: Any) -> TreeTask:
    """Return ``task`` when given, else the validated `TreeTask` built from ``fields`` and ``task_seed``."""
    if task is not None:
        if not isinstance(task, TreeTask):
            raise ValueError(f"task must be a toy.tasks.TreeTask or None, got {type(task).__name__}")
        return task
    if not is_int(task_seed) or task_seed < 0:
        raise ValueError(f"task_seed must be an integer in [0, inf), got {task_seed!r}")
    return TreeTask(seed=int(task_seed), **fields)


def tree_observation_space(task: TreeTask) -> spaces.MultiDiscrete:
    """MultiDiscrete of length H + 1: H token slots in [0, vocab] (vocab = pad), then the length in [0, H]."""
    nvec = np.array([task.vocab + 1] * task.horizon + [task.horizon + 1], dtype=np.int64)
    return spaces.MultiDiscrete(nvec, dtype=np.int64)


def _describe(task: TreeTask, obs: np.ndarray, reward: float | None) -> str:
    """Text of the ansi / human render: the prefix with pads shown as '_', and the reward once finished."""
    h = task.horizon
    tokens = " ".join("_" if tok == task.vocab else str(int(tok)) for tok in obs[:h])
    text = f"TokenTree(vocab={task.vocab}, horizon={h}, {task.structure}): [{tokens}] t={int(obs[h])}/{h}"
    return text if reward is None else f"{text} reward={reward:.4f}"


class TokenTreeEnv(Env):
    """A language model as an MDP: append ``horizon`` tokens, get a sparse terminal reward on the sequence.

    ## Description
    The token-tree MDP of the theory (docs/toy/theory.md) (AEnt, arXiv 2509.03493): the state is the prefix
    y_<t generated so far, an action appends a token from a vocabulary of size |A| = ``vocab``, and after
    H = ``horizon`` tokens the whole sequence y gets the reward R(y) of a `toy.tasks.TreeTask`: a few random
    target sequences (``structure="targets"``) or a verifier-like rule (``structure="rule"``). The optimal
    set A* = {y : R(y) = 1} is sparse. Transitions and rewards are deterministic.

    ## Action Space
    `Discrete(vocab)`: the next token.

    ## Observation Space
    `MultiDiscrete([vocab + 1] * horizon + [horizon + 1])`, int64, length H + 1. Entries 0..H-1 hold the
    prefix: obs[i] = y_{i+1} for i < t and the pad value ``vocab`` for i >= t. The last entry obs[H] = t is
    the current length (0 at the start, H at the end). Example (vocab=4, H=3, after tokens 2, 0):
    ``[2, 0, 4, 2]``.

    ## Rewards
    0 on every step but the last; R(y) in [0, 1] on step H, 1 exactly when y is in A*. By ``structure``:
    ``"targets"``: ``m_targets`` random target sequences pay 1 and any other y pays
    ``partial_credit * l / H``, l the longest prefix y shares with a target (0 by default);
    ``"rule"``: ``rule="sum_mod"`` pays 1 when sum(y) mod vocab == ``rule_value``, ``rule="ends_with"`` when
    y_H == ``rule_value`` (|A*| = vocab^(H-1) for both), 0 otherwise. The optimal return is V* = 1.

    ## Starting State
    The empty prefix: ``[vocab] * horizon + [0]``.

    ## Episode End
    ``terminated`` is True after the H-th token; ``truncated`` is always False. Calling ``step`` again before
    ``reset`` raises a RuntimeError.

    ## Arguments
    ```python
    gymnasium.make("toy/TokenTree-v0", vocab=8, horizon=4, structure="targets", m_targets=1,
                   partial_credit=0.0, rule="sum_mod", rule_value=0, task_seed=0, task=None, render_mode=None)
    ```
    - ``vocab``: vocabulary size |A|, an integer >= 2.
    - ``horizon``: sequence length H, an integer >= 1.
    - ``structure``: ``"targets"`` (a set of target strings) or ``"rule"`` (a verifier-like rule).
    - ``m_targets``: |A*| for ``"targets"``, an integer in [1, vocab^horizon].
    - ``partial_credit``: prefix credit in [0, 1) for ``"targets"``; must be 0 for ``"rule"``.
    - ``rule``: ``"sum_mod"`` or ``"ends_with"`` (used by ``"rule"``).
    - ``rule_value``: the residue / final token of the rule, an integer in [0, vocab).
    - ``task_seed``: seed (>= 0) of the target draw (the `TreeTask` seed); it is not the ``reset`` seed,
      which only seeds ``np_random`` since the dynamics draw nothing.
    - ``task``: a ready `toy.tasks.TreeTask`; when given it replaces the seven fields and ``task_seed``.
    - ``render_mode``: None, ``"ansi"`` (render returns a string) or ``"human"`` (render prints it).

    Invalid values raise a ValueError naming the argument. ``gymnasium.make_vec("toy/TokenTree-v0",
    num_envs=N)`` returns the native `TokenTreeVectorEnv` (its ``vector_entry_point``).

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        vocab: int = 8,
        horizon: int = 4,
        structure: str = "targets",
        m_targets: int = 1,
        partial_credit: float = 0.0,
        rule: str = "sum_mod",
        rule_value: int = 0,
        task_seed: int = 0,
        task: TreeTask | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.task = make_tree_task(
            task, task_seed, vocab=vocab, horizon=horizon, structure=structure, m_targets=m_targets,
            partial_credit=partial_credit, rule=rule, rule_value=rule_value,
        )  # fmt: skip
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(self.task.vocab)
        self.observation_space = tree_observation_space(self.task)
        self._obs = self._empty()
        self._reward: float | None = None
        self._done = True  # step() needs a reset() first, as after the last token

    def _empty(self) -> np.ndarray:
        """The empty-prefix observation."""
        obs = np.full(self.task.horizon + 1, self.task.vocab, dtype=np.int64)
        obs[-1] = 0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Start from the empty prefix; ``seed`` seeds ``self.np_random`` (the dynamics draw nothing)."""
        super().reset(seed=seed)
        self._obs = self._empty()
        self._reward = None
        self._done = False
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Append token ``action``; on the H-th token return the terminal reward and terminated=True."""
        h = self.task.horizon
        t = int(self._obs[h])
        if self._done:
            raise RuntimeError("step() needs reset() first: at the start and after the episode has ended")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {self.task.vocab}), got {action!r}")
        self._obs[t] = int(action)
        self._obs[h] = t + 1
        terminated = t + 1 == h
        self._done = terminated
        reward = self.task.reward(self._obs[:h]) if terminated else 0.0
        self._reward = reward if terminated else None
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), reward, terminated, False, {}

    def render(self) -> str | None:
        """``"ansi"``: return the prefix as text (pads as '_'); ``"human"``: print it."""
        text = _describe(self.task, self._obs, self._reward)
        if self.render_mode == "ansi":
            return text
        if self.render_mode == "human":
            print(text)
        return None


class TokenTreeVectorEnv(NumpyVectorEnv):
    """``num_envs`` copies of `TokenTreeEnv` stepped together with numpy (no Python loop over copies).

    Registered as the ``vector_entry_point`` of ``toy/TokenTree-v0``. Observations have shape
    (num_envs, horizon + 1) with the encoding of `TokenTreeEnv`; results equal those of
    ``gymnasium.vector.SyncVectorEnv`` over `TokenTreeEnv` for the same actions in each of the three autoreset
    modes (see `toy.envs._vector`; NEXT_STEP by default). Infos are empty except for SAME_STEP's
    ``final_obs`` / ``final_info``.

    The task arguments ``vocab``, ``horizon``, ``structure``, ``m_targets``, ``partial_credit``, ``rule``,
    ``rule_value``, ``task_seed`` and ``task`` are those of `TokenTreeEnv`; all copies share one task.

    Args:
        num_envs: number of copies (>= 1).
        autoreset_mode: a `gymnasium.vector.AutoresetMode` or its name (``"next_step"``, ``"same_step"``,
            ``"disabled"``); stored in ``metadata["autoreset_mode"]``.
        render_mode: None, ``"ansi"`` (render returns one line per copy) or ``"human"`` (prints them).
    """

    def __init__(
        self,
        num_envs: int = 1,
        vocab: int = 8,
        horizon: int = 4,
        structure: str = "targets",
        m_targets: int = 1,
        partial_credit: float = 0.0,
        rule: str = "sum_mod",
        rule_value: int = 0,
        task_seed: int = 0,
        task: TreeTask | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
    ) -> None:
        self.task = make_tree_task(
            task, task_seed, vocab=vocab, horizon=horizon, structure=structure, m_targets=m_targets,
            partial_credit=partial_credit, rule=rule, rule_value=rule_value,
        )  # fmt: skip
        single_obs = tree_observation_space(self.task)
        self._setup(num_envs, spaces.Discrete(self.task.vocab), single_obs, autoreset_mode, render_mode)
        # row i = observation of copy i: the prefix padded with `vocab`, then its length t
        self._obs = np.full((self.num_envs, self.task.horizon + 1), self.task.vocab, dtype=np.int64)
        self._obs[:, -1] = 0
        self._rewards = np.zeros(self.num_envs)  # terminal reward of the finished copies, for render
        self._rows = np.arange(self.num_envs)

    def _reset_copies(self, mask: np.ndarray) -> None:
        self._obs[mask, :-1] = self.task.vocab
        self._obs[mask, -1] = 0

    def _advance(self, actions: np.ndarray, active: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        h = self.task.horizon
        length = self._obs[:, h]  # a view: the prefix lengths t
        if active is None:
            self._obs[self._rows, length] = actions
            length += 1
            terminated = length == h
        else:
            rows = np.flatnonzero(active)
            self._obs[rows, length[rows]] = actions[rows]
            length[rows] += 1
            terminated = active & (length == h)
        rewards = np.zeros(self.num_envs)
        if terminated.any():
            rewards[terminated] = self.task.rewards(self._obs[terminated, :h])
        self._rewards = rewards
        return rewards, terminated

    def _observe(self) -> np.ndarray:
        return self._obs.copy()

    def _render_lines(self) -> tuple[str, ...]:
        h = self.task.horizon
        return tuple(
            _describe(self.task, row, float(r) if row[h] == h else None)
            for row, r in zip(self._obs, self._rewards)
        )

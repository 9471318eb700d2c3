"""`toy/SparseBandit-v0`: a one-step bandit with |A| arms and m optimal ones, and its native numpy vector env."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Env, spaces
from gymnasium.vector import AutoresetMode

from toy.envs._vector import NumpyVectorEnv, check_render_mode, is_int
from toy.tasks import BanditTask

__all__ = ["SparseBanditEnv", "SparseBanditVectorEnv", "make_bandit_task"]


def make_bandit_task(
    task: BanditTask | None,
    n_arms: int,
    m_optimal: int,
    pattern: str,
    gap: float,
    n_distractors: int,
    task_seed: int,
) -> BanditTask:
    """Return ``task`` when given, else the validated `BanditTask` built from the keyword arguments."""
    if task is not None:
        if not isinstance(task, BanditTask):
            raise ValueError(f"task must be a toy.tasks.BanditTask or None, got {type(task).__name__}")
        return task
    if not is_int(task_seed) or task_seed < 0:
        raise ValueError(f"task_seed must be an integer in [0, inf), got {task_seed!r}")
    return BanditTask(n_arms, m_optimal, pattern, gap, n_distractors, int(task_seed))


def _describe(task: BanditTask, action: int | None, reward: float | None) -> str:
    """Text of the ansi / human render: the task and the last pull."""
    head = f"SparseBandit(n_arms={task.n_arms}, m_optimal={task.m_optimal}, pattern={task.pattern!r})"
    if action is None:
        return f"{head}: no arm pulled yet"
    tag = " (optimal)" if reward == task.max_reward else ""
    return f"{head}: pulled arm {action} -> reward {reward:.4f}{tag}"


class SparseBanditEnv(Env):
    """A sparse multi-armed bandit: among ``n_arms`` arms only ``m_optimal`` pay 1.

    ## Description
    The one-step decision problem of Figure 1 in AEnt (arXiv 2509.03493): a softmax policy over |A| = 10^5
    actions must find one of m optimal arms. The non-optimal arms pay below 1 following a pattern (all 0,
    uniform in [0, 1 - gap), or a few near-optimal distractors paying 1 - gap); see `toy.tasks.BanditTask`.
    The arm rewards are fixed at construction by ``task_seed``; the environment itself is deterministic.

    ## Action Space
    `Discrete(n_arms)`: the arm to pull.

    ## Observation Space
    `Discrete(1)`: there is a single state, always observed as 0.

    ## Rewards
    The deterministic reward r(a) in [0, 1] of the pulled arm: r(a) = 1 exactly for the m optimal arms, and
    for the others, by ``pattern``: ``"zero"`` 0; ``"uniform"`` a fixed draw from U[0, 1 - gap);
    ``"distractors"`` 1 - gap for ``n_distractors`` arms and 0 for the rest. The optimal return is V* = 1.

    ## Starting State
    The single state 0.

    ## Episode End
    Every episode lasts one step: ``terminated`` is True after the first step; ``truncated`` is always False.
    Calling ``step`` again before ``reset`` raises a RuntimeError.

    ## Arguments
    ```python
    gymnasium.make("toy/SparseBandit-v0", n_arms=100_000, m_optimal=10, pattern="zero", gap=0.1,
                   n_distractors=10, task_seed=0, task=None, render_mode=None)
    ```
    - ``n_arms``: number of arms |A|, an integer >= 1.
    - ``m_optimal``: number of optimal arms m, an integer in [1, n_arms].
    - ``pattern``: rewards of the other arms, ``"zero"``, ``"uniform"`` or ``"distractors"``.
    - ``gap``: suboptimality gap in (0, 1], used by ``"uniform"`` and ``"distractors"``.
    - ``n_distractors``: number of arms paying 1 - gap with ``"distractors"``; m_optimal + n_distractors
      <= n_arms.
    - ``task_seed``: seed (>= 0) of the arm placement and the uniform draws (the `BanditTask` seed); it is
      not the ``reset`` seed, which only seeds ``np_random`` since the dynamics draw nothing.
    - ``task``: a ready `toy.tasks.BanditTask`; when given it replaces the five fields and ``task_seed``.
    - ``render_mode``: None, ``"ansi"`` (render returns a string) or ``"human"`` (render prints it).

    Invalid values raise a ValueError naming the argument. ``gymnasium.make_vec("toy/SparseBandit-v0",
    num_envs=N)`` returns the native `SparseBanditVectorEnv` (its ``vector_entry_point``).

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        n_arms: int = 100_000,
        m_optimal: int = 10,
        pattern: str = "zero",
        gap: float = 0.1,
        n_distractors: int = 10,
        task_seed: int = 0,
        task: BanditTask | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.task = make_bandit_task(task, n_arms, m_optimal, pattern, gap, n_distractors, task_seed)
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(self.task.n_arms)
        self.observation_space = spaces.Discrete(1)
        self._rewards = self.task.rewards
        self._done = True
        self._last: tuple[int, float] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        """Start a new one-step episode; ``seed`` seeds ``self.np_random`` (the dynamics draw nothing)."""
        super().reset(seed=seed)
        self._done = False
        self._last = None
        if self.render_mode == "human":
            self.render()
        return 0, {}

    def step(self, action) -> tuple[int, float, bool, bool, dict]:
        """Pull arm ``action``; returns (0, r(action), True, False, {})."""
        if self._done:
            raise RuntimeError("step() needs reset() first: at the start and after the episode has ended")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {self.task.n_arms}), got {action!r}")
        reward = float(self._rewards[int(action)])
        self._done = True
        self._last = (int(action), reward)
        if self.render_mode == "human":
            self.render()
        return 0, reward, True, False, {}

    def render(self) -> str | None:
        """``"ansi"``: return a one-line description of the last pull; ``"human"``: print it."""
        text = _describe(self.task, *(self._last or (None, None)))
        if self.render_mode == "ansi":
            return text
        if self.render_mode == "human":
            print(text)
        return None


class SparseBanditVectorEnv(NumpyVectorEnv):
    """``num_envs`` copies of `SparseBanditEnv` stepped together with numpy (no Python loop over copies).

    Registered as the ``vector_entry_point`` of ``toy/SparseBandit-v0``. Same spaces per copy, same rewards,
    and the same results as ``gymnasium.vector.SyncVectorEnv`` over `SparseBanditEnv` for the same actions,
    in each of the three autoreset modes (see `toy.envs._vector`). With the default NEXT_STEP mode every
    episode lasts one step, so copies alternate between a pull and a reset step whose action is ignored;
    ``autoreset_mode="same_step"`` makes every step a pull. Infos are empty except for SAME_STEP's
    ``final_obs`` / ``final_info``.

    The task arguments ``n_arms``, ``m_optimal``, ``pattern``, ``gap``, ``n_distractors``, ``task_seed`` and
    ``task`` are those of `SparseBanditEnv`; all copies share one task and one read-only reward array.

    Args:
        num_envs: number of copies (>= 1).
        autoreset_mode: a `gymnasium.vector.AutoresetMode` or its name (``"next_step"``, ``"same_step"``,
            ``"disabled"``); stored in ``metadata["autoreset_mode"]``.
        render_mode: None, ``"ansi"`` (render returns one line per copy) or ``"human"`` (prints them).
    """

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 100_000,
        m_optimal: int = 10,
        pattern: str = "zero",
        gap: float = 0.1,
        n_distractors: int = 10,
        task_seed: int = 0,
        task: BanditTask | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
    ) -> None:
        self.task = make_bandit_task(task, n_arms, m_optimal, pattern, gap, n_distractors, task_seed)
        self._setup(
            num_envs, spaces.Discrete(self.task.n_arms), spaces.Discrete(1), autoreset_mode, render_mode
        )
        self._rewards = self.task.rewards
        self._last_actions = np.full(self.num_envs, -1, dtype=np.int64)  # -1: no arm pulled since reset
        self._last_rewards = np.zeros(self.num_envs)

    def _reset_copies(self, mask: np.ndarray) -> None:
        self._last_actions[mask] = -1

    def _advance(self, actions: np.ndarray, active: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if active is None:
            rewards = self._rewards[actions]
            self._last_actions, self._last_rewards = actions.copy(), rewards.copy()
            return rewards, np.ones(self.num_envs, dtype=np.bool_)
        rewards = np.where(active, self._rewards[np.where(active, actions, 0)], 0.0)
        self._last_actions = np.where(active, actions, self._last_actions)
        self._last_rewards = np.where(active, rewards, self._last_rewards)
        return rewards, active.copy()

    def _observe(self) -> np.ndarray:
        return np.zeros(self.num_envs, dtype=np.int64)

    def _render_lines(self) -> tuple[str, ...]:
        return tuple(
            _describe(self.task, None if a < 0 else int(a), float(r))
            for a, r in zip(self._last_actions, self._last_rewards)
        )

"""Shared machinery of the native numpy vector envs: argument checks, seeding, reset masks, autoreset modes.

A subclass holds the state of all copies in numpy arrays and implements four small hooks (`_reset_copies`,
`_advance`, `_observe`, `_render_lines`); this base turns them into gymnasium 1.x ``reset`` / ``step`` with the
three autoreset modes of `gymnasium.vector.AutoresetMode`, returning what `gymnasium.vector.SyncVectorEnv`
over the single env returns for the same actions (see https://farama.org/Vector-Autoreset-Mode):

- ``NEXT_STEP`` (gymnasium's default): a copy that ended at step t is reset during step t+1, where its action
  is ignored and it returns (first observation, reward 0, terminated False, truncated False).
- ``SAME_STEP``: a copy that ends is reset in the same step; the returned observation is the first one of the
  new episode and ``infos["final_obs"]`` / ``infos["final_info"]`` (masks ``"_final_obs"``, ``"_final_info"``)
  hold the last observation and info of the finished episode.
- ``DISABLED``: nothing is reset automatically; the caller resets finished copies with
  ``reset(options={"reset_mask": mask})`` before stepping them again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

__all__ = ["NumpyVectorEnv", "check_actions", "check_render_mode", "parse_autoreset_mode", "reset_mask"]

RENDER_MODES = ("ansi", "human")


def is_int(value: Any) -> bool:
    """True for Python / numpy integers, False for bools and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_render_mode(render_mode: str | None) -> str | None:
    """Return ``render_mode`` unless it is neither None nor one of ``"ansi"``, ``"human"``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {list(RENDER_MODES)}, got {render_mode!r}")
    return render_mode


def parse_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An `AutoresetMode` from itself, its value (``"NextStep"``) or its name (``"next_step"``, any case)."""
    if isinstance(mode, AutoresetMode):
        return mode
    if isinstance(mode, str):
        for candidate in AutoresetMode:
            if mode in (candidate.value, candidate.name) or mode.upper() == candidate.name:
                return candidate
    allowed = [m.name.lower() for m in AutoresetMode]
    raise ValueError(
        f"autoreset_mode must be a gymnasium.vector.AutoresetMode or one of {allowed}, got {mode!r}"
    )


def reset_mask(options: dict[str, Any] | None, num_envs: int) -> np.ndarray:
    """The copies to reset: ``options["reset_mask"]`` when given (validated), else all of them."""
    if options is None or "reset_mask" not in options:
        return np.ones(num_envs, dtype=np.bool_)
    mask = options["reset_mask"]
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (num_envs,):
        got = f"{mask.dtype} array of shape {mask.shape}" if isinstance(mask, np.ndarray) else repr(mask)
        raise ValueError(
            f"options['reset_mask'] must be a bool numpy array of shape ({num_envs},), got {got}"
        )
    if not mask.any():
        raise ValueError("options['reset_mask'] must contain at least one True value")
    return mask


def check_actions(actions: Any, num_envs: int, n: int, active: np.ndarray | None = None) -> np.ndarray:
    """Return ``actions`` as int64 of shape (num_envs,); the ``active`` entries (None: all) must lie in [0, n).

    Entries of inactive copies (those being reset in NEXT_STEP mode) are ignored, as SyncVectorEnv does.
    """
    actions = np.asarray(actions)
    if actions.shape != (num_envs,) or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(
            f"actions must be integers of shape ({num_envs},), got {actions.dtype} {actions.shape}"
        )
    actions = actions.astype(np.int64, copy=False)
    if active is None:
        if actions.min() >= 0 and actions.max() < n:
            return actions
        active = np.ones(num_envs, dtype=np.bool_)
    bad = active & ((actions < 0) | (actions >= n))
    if bad.any():
        where = np.flatnonzero(bad)[:4].tolist()
        raise ValueError(f"actions must lie in [0, {n}), got {actions[bad][:4].tolist()} at envs {where}")
    return actions


class NumpyVectorEnv(VectorEnv):
    """Base of the native vector envs: ``num_envs`` copies of one single env, stepped with numpy.

    Subclasses call `_setup` in ``__init__`` and implement the hooks below; all copies share one task.
    The dynamics are deterministic, so the ``reset`` seed only seeds ``self.np_random`` (gymnasium's
    convention), which the envs never draw from.
    """

    metadata: dict[str, Any] = {
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def _setup(
        self,
        num_envs: int,
        single_action_space: spaces.Discrete,
        single_observation_space: spaces.Space,
        autoreset_mode: AutoresetMode | str,
        render_mode: str | None,
    ) -> None:
        """Validate the common arguments and build the batched spaces (call after the task is built)."""
        if not is_int(num_envs) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer in [1, inf), got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = check_render_mode(render_mode)
        self.single_action_space = single_action_space
        self.single_observation_space = single_observation_space
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        # copies whose episode ended at the last step (NEXT_STEP: reset at the next; DISABLED: must be reset)
        self._ended = np.zeros(self.num_envs, dtype=np.bool_)
        # copies never reset: stepping them raises gymnasium's ResetNeeded, as SyncVectorEnv's copies do
        self._unreset = np.ones(self.num_envs, dtype=np.bool_)

    # ------------------------------------------------------------------ hooks implemented by subclasses
    def _reset_copies(self, mask: np.ndarray) -> None:
        """Put the copies in the bool ``mask`` (shape (num_envs,)) in the starting state."""
        raise NotImplementedError

    def _advance(self, actions: np.ndarray, active: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Apply int64 ``actions`` to the ``active`` copies only (a bool mask; None: all copies).

        Returns:
            rewards float64 (num_envs,) and terminated bool (num_envs,), both 0 / False where inactive.
        """
        raise NotImplementedError

    def _observe(self) -> np.ndarray:
        """A fresh copy of the batched observation, shape (num_envs, *single_observation_space.shape)."""
        raise NotImplementedError

    def _render_lines(self) -> tuple[str, ...]:
        """One line of text per copy, equal to the single env's ``render()`` in ``"ansi"`` mode."""
        raise NotImplementedError

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all copies, or only those in ``options["reset_mask"]`` (bool array of shape (num_envs,)).

        Args:
            seed: None, an int, or a list of num_envs ints / None; seeds ``np_random`` only.
            options: None or {"reset_mask": mask}.
        Returns:
            the batched observation (copies not in the mask keep theirs) and an empty info dict.
        """
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"seed as a list must have num_envs={self.num_envs} entries, got {len(seed)}"
                )
            seed = seed[0]
        super().reset(seed=seed)
        mask = reset_mask(options, self.num_envs)
        self._reset_copies(mask)
        self._ended[mask] = False
        self._unreset[mask] = False
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every copy under ``metadata["autoreset_mode"]`` (see the module docstring).

        Args:
            actions: ints of shape (num_envs,); entries of copies being reset (NEXT_STEP) are ignored.
        Returns:
            obs (num_envs, ...), rewards float64 (num_envs,), terminated bool (num_envs,),
            truncated bool (num_envs,) (always False: episodes have a fixed length), infos dict.
        """
        if self._unreset.any():
            raise ResetNeeded(
                f"step() called before reset() on copies {np.flatnonzero(self._unreset)[:8].tolist()}: "
                "call reset() first, as for gymnasium.vector.SyncVectorEnv"
            )
        mode = self.autoreset_mode
        any_ended = bool(self._ended.any())
        if mode == AutoresetMode.DISABLED and any_ended:
            raise RuntimeError(
                f"step() called on finished copies {np.flatnonzero(self._ended)[:8].tolist()} with "
                "autoreset_mode=DISABLED: reset them first with reset(options={'reset_mask': mask})"
            )
        active = ~self._ended if mode == AutoresetMode.NEXT_STEP and any_ended else None
        actions = check_actions(actions, self.num_envs, self.single_action_space.n, active)
        if active is not None:
            self._reset_copies(self._ended)
            if not active.any():  # every copy is being reset: no action to apply
                rewards, terminated = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=np.bool_)
            else:
                rewards, terminated = self._advance(actions, active)
        else:
            rewards, terminated = self._advance(actions, None)
        obs = self._observe()
        infos: dict[str, Any] = {}
        if mode == AutoresetMode.SAME_STEP:
            if terminated.any():
                final_obs = np.full(self.num_envs, None, dtype=object)
                if obs.ndim == 1:
                    final_obs[terminated] = obs[terminated]
                else:  # one array per finished copy, as SyncVectorEnv stores them
                    for i in np.flatnonzero(terminated):
                        final_obs[i] = obs[i]
                infos = {"final_obs": final_obs, "_final_obs": terminated.copy(),
                         "final_info": {}, "_final_info": terminated.copy()}  # fmt: skip
                self._reset_copies(terminated)
                obs = self._observe()
        else:
            self._ended = terminated.copy()
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=np.bool_), infos

    def render(self) -> tuple[str, ...] | None:
        """``"ansi"``: a tuple with one line per copy (as SyncVectorEnv.render()); ``"human"``: print them."""
        if self.render_mode is None:
            return None
        lines = self._render_lines()
        if self.render_mode == "ansi":
            return lines
        print("\n".join(lines))
        return None

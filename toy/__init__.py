"""Didactic simulator: sparse bandit and token-tree tasks, their gymnasium environments, exact solvers.

Importing ``toy`` registers the gymnasium ids ``toy/SparseBandit-v0`` and ``toy/TokenTree-v0``, each with a
native numpy vector env as its ``vector_entry_point``::

    import gymnasium as gym
    import toy  # noqa: F401  (registers the ids)

    env = gym.make("toy/TokenTree-v0", vocab=8, horizon=4)
    envs = gym.make_vec("toy/TokenTree-v0", num_envs=1024, vectorization_mode="vector_entry_point")

The registration itself lives in `toy.envs`. ``import toy`` loads numpy and gymnasium only; the torch-based submodules ``toy.exact``, ``toy.exact_bandit``,
``toy.exact_tree``, ``toy.pg_trainer``, ``toy.regime``, ``toy.pg``, ``toy.multiset``, ``toy.trap_bandit`` and ``toy.trap_tree`` are imported on first
attribute access (``toy.exact.bias_bound``).
"""

import importlib
from types import ModuleType

from toy.envs import SparseBanditEnv, SparseBanditVectorEnv, TokenTreeEnv, TokenTreeVectorEnv
from toy.tasks import BanditTask, TreeTask

__all__ = [
    "BanditTask",
    "SparseBanditEnv",
    "SparseBanditVectorEnv",
    "TokenTreeEnv",
    "TokenTreeVectorEnv",
    "TreeTask",
    "dynamics",
    "exact",
    "exact_bandit",
    "exact_tree",
    "multiset",
    "pg",
    "pg_trainer",
    "regime",
    "trap_bandit",
    "trap_tree",
]

_LAZY_SUBMODULES = ("dynamics", "exact", "exact_bandit", "exact_tree", "multiset", "pg", "pg_trainer", "regime",
                    "trap_bandit", "trap_tree")


def __getattr__(name: str) -> ModuleType:
    """Import the torch-based submodules on first use, so that ``import toy`` stays light."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"toy.{name}")
    raise AttributeError(f"module 'toy' has no attribute {name!r}")

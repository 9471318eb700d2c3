"""Gymnasium environments of the didactic simulator, each with a native numpy vector version.

Importing this package (``import toy`` does) registers ``toy/SparseBandit-v0`` and ``toy/TokenTree-v0`` with
their single-env ``entry_point`` and native ``vector_entry_point``.
"""

import gymnasium

from toy.envs.bandit import SparseBanditEnv, SparseBanditVectorEnv
from toy.envs.token_tree import TokenTreeEnv, TokenTreeVectorEnv

__all__ = ["ENV_IDS", "SparseBanditEnv", "SparseBanditVectorEnv", "TokenTreeEnv", "TokenTreeVectorEnv"]

ENV_IDS = {
    "toy/SparseBandit-v0": "toy.envs.bandit:SparseBandit",
    "toy/TokenTree-v0": "toy.envs.token_tree:TokenTree",
}
for _env_id, _entry in ENV_IDS.items():
    if _env_id not in gymnasium.registry:  # re-importing must not register twice
        gymnasium.register(
            id=_env_id,
            entry_point=_entry + "Env",
            vector_entry_point=_entry + "VectorEnv",
            reward_threshold=1.0,  # the optimal return V* = 1 of both tasks
        )

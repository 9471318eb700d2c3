"""Tests of the gymnasium envs toy/SparseBandit-v0 and toy/TokenTree-v0 and of their native vector envs.

References: gymnasium's own env checker (warnings are errors), gymnasium's SyncVectorEnv over the single env
(the native vector env must return the same trajectories in every autoreset mode), the reward definitions
re-implemented in plain Python, and hand-computed episodes.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

import toy.envs  # registers the ids (under pytest, the name `toy` alone is the tests/toy package)
from toy.envs import SparseBanditEnv, SparseBanditVectorEnv, TokenTreeEnv, TokenTreeVectorEnv
from toy.tasks import BanditTask, TreeTask

BANDIT, TREE = "toy/SparseBandit-v0", "toy/TokenTree-v0"
REPO = Path(__file__).resolve().parents[2]
MODES = list(AutoresetMode)

# ---------------------------------------------------------------------------------------------- helpers


def assert_same(a, b, where: str) -> None:
    """Recursive equality of step outputs: dicts, numeric arrays, object arrays (final_obs), scalars."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {a} != {b}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a, b)):
            assert (x is None) == (y is None), f"{where}[{i}]"
            if x is not None:
                assert np.array_equal(np.asarray(x), np.asarray(y)), f"{where}[{i}]: {x} != {y}"
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{where}: {a} != {b}"


def make_pair(env_id: str, num_envs: int, mode: AutoresetMode, **kwargs):
    """The native vector env and SyncVectorEnv over the single env, built from the registered id."""
    native = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs
    )
    sync = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs
    )
    return native, sync


def compare_rollout(env_id: str, kwargs: dict, num_envs: int, mode: AutoresetMode, seed: int, n_steps: int):
    """Drive both vector envs with the same actions and resets; assert every output is equal."""
    native, sync = make_pair(env_id, num_envs, mode, render_mode="ansi", **kwargs)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    rng = np.random.default_rng(seed)
    n = native.single_action_space.n
    assert_same(native.reset(seed=seed), sync.reset(seed=seed), "reset")
    ended = np.zeros(num_envs, dtype=bool)
    n_terminated = 0
    for t in range(n_steps):
        actions = rng.integers(0, n, size=num_envs)
        if mode == AutoresetMode.NEXT_STEP:
            actions[ended] = -1  # ignored by both: these copies are being reset
        out_native, out_sync = native.step(actions), sync.step(actions)
        assert_same(out_native, out_sync, f"step {t}")
        assert native.render() == sync.render(), f"render at step {t}"
        terminated = out_sync[2]
        n_terminated += int(terminated.sum())
        ended = terminated.copy()
        if mode == AutoresetMode.DISABLED and ended.any() or rng.random() < 0.15:
            mask = ended.copy() if ended.any() else rng.random(num_envs) < 0.5
            mask[rng.integers(num_envs)] = True
            out_native = native.reset(options={"reset_mask": mask.copy()})
            out_sync = sync.reset(options={"reset_mask": mask.copy()})  # SyncVectorEnv pops the key
            assert_same(out_native, out_sync, f"partial reset after step {t}")
            ended &= ~mask
    native.close()
    sync.close()
    return n_terminated


# ---------------------------------------------------------------------------------------------- registration


def test_import_registers_ids_with_vector_entry_points() -> None:
    for env_id, cls, vec_cls in [
        (BANDIT, SparseBanditEnv, SparseBanditVectorEnv),
        (TREE, TokenTreeEnv, TokenTreeVectorEnv),
    ]:
        spec = gym.spec(env_id)
        assert spec.entry_point == f"{cls.__module__}:{cls.__name__}"
        assert spec.vector_entry_point == f"{vec_cls.__module__}:{vec_cls.__name__}"
        assert isinstance(gym.make(env_id).unwrapped, cls)
        assert isinstance(gym.make_vec(env_id, num_envs=2), vec_cls)  # the default vectorization


@pytest.mark.filterwarnings("error")
def test_reimport_does_not_register_twice() -> None:
    importlib.reload(toy.envs)
    assert sum(env_id.startswith("toy/") for env_id in gym.registry) == 2


def test_import_toy_registers_and_loads_no_torch() -> None:
    code = (
        "import sys, gymnasium as gym, toy\n"
        "assert {'toy/SparseBandit-v0', 'toy/TokenTree-v0'} <= set(gym.registry), 'not registered'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert callable(toy.exact_bandit.bandit_value) and 'torch' in sys.modules  # lazy submodule\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_user_guide_examples_run(capsys) -> None:
    """Every Python block of docs/toy/envs.md runs as written."""
    text = (REPO / "docs" / "toy" / "envs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(block, namespace)  # our own documentation
    assert "TokenTree(vocab=8, horizon=4, targets): [1 2 3 4] t=4/4 reward=" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- gymnasium checks

CONFIGS = [
    (BANDIT, {}),
    (BANDIT, {"n_arms": 50, "m_optimal": 3, "pattern": "uniform", "gap": 0.2, "task_seed": 4}),
    (BANDIT, {"n_arms": 30, "m_optimal": 2, "pattern": "distractors", "n_distractors": 5}),
    (TREE, {}),
    (TREE, {"vocab": 3, "horizon": 5, "m_targets": 4, "partial_credit": 0.5, "task_seed": 2}),
    (TREE, {"vocab": 5, "horizon": 2, "structure": "rule", "rule": "ends_with", "rule_value": 3}),
    (TREE, {"vocab": 100_000, "horizon": 6, "m_targets": 3}),
]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS)
def test_check_env_passes_without_warning(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped)  # also makes the env in every render mode through its spec
    # the wrapped env (PassiveEnvChecker, OrderEnforcing) through whole episodes, still without a warning
    obs, _ = env.reset(seed=3)
    for _ in range(12):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and 0.0 <= reward <= 1.0 and not truncated
        if terminated:
            obs, _ = env.reset()
    env.close()


# ---------------------------------------------------------------------------------------------- rewards, spaces


def test_bandit_env_pays_task_rewards_for_every_arm() -> None:
    task = BanditTask(n_arms=200, m_optimal=4, pattern="distractors", gap=0.3, n_distractors=6, seed=9)
    env = SparseBanditEnv(task=task)
    paid = []
    for arm in range(task.n_arms):
        assert env.reset()[0] == 0
        obs, reward, terminated, truncated, info = env.step(arm)
        assert (obs, terminated, truncated, info) == (0, True, False, {})
        paid.append(reward)
    paid = np.array(paid)
    assert np.array_equal(np.flatnonzero(paid == 1.0), task.optimal)
    assert sorted(set(paid.tolist())) == [0.0, 0.7, 1.0] and np.sum(paid == 0.7) == 6
    assert env.observation_space == gym.spaces.Discrete(1) and env.action_space == gym.spaces.Discrete(200)


def test_bandit_vector_env_same_step_pulls_every_arm_at_once() -> None:
    task = BanditTask(n_arms=1000, m_optimal=7, pattern="uniform", gap=0.25, seed=1)
    envs = SparseBanditVectorEnv(num_envs=task.n_arms, task=task, autoreset_mode="same_step")
    envs.reset(seed=0)
    obs, rewards, terminated, truncated, infos = envs.step(np.arange(task.n_arms))
    assert np.array_equal(rewards, task.rewards) and np.sum(rewards == 1.0) == 7
    assert np.all(rewards[rewards < 1] < 0.75) and terminated.all() and not truncated.any()
    assert np.array_equal(obs, np.zeros(task.n_arms, dtype=np.int64)) and infos["_final_obs"].all()


def test_tree_hand_computed_episode() -> None:
    task = TreeTask(vocab=3, horizon=2, structure="rule", rule="sum_mod", rule_value=1)
    env = TokenTreeEnv(task=task, render_mode="ansi")
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [3, 3, 0] and info == {} and obs.dtype == np.int64
    assert env.render() == "TokenTree(vocab=3, horizon=2, rule): [_ _] t=0/2"
    obs, reward, terminated, truncated, _ = env.step(2)
    assert obs.tolist() == [2, 3, 1] and (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, _ = env.step(2)  # 2 + 2 = 4 = 1 mod 3: optimal
    assert obs.tolist() == [2, 2, 2] and (reward, terminated, truncated) == (1.0, True, False)
    assert env.render() == "TokenTree(vocab=3, horizon=2, rule): [2 2] t=2/2 reward=1.0000"
    env.reset()
    env.step(0)
    assert env.step(0)[1] == 0.0  # 0 + 0 != 1 mod 3
    assert env.observation_space == gym.spaces.MultiDiscrete([4, 4, 3])


def test_tree_docstring_example_observation() -> None:
    env = TokenTreeEnv(vocab=4, horizon=3)
    env.reset()
    env.step(2)
    assert env.step(0)[0].tolist() == [2, 0, 4, 2]


def reference_tree_reward(task: TreeTask, seq: tuple[int, ...]) -> float:
    """R(y) from the TreeTask docstring, in plain Python."""
    if task.structure == "rule":
        return float((sum(seq) % task.vocab if task.rule == "sum_mod" else seq[-1]) == task.rule_value)
    targets = [tuple(t) for t in task.targets.tolist()]
    if seq in targets:
        return 1.0
    shared = [next((i for i, (a, b) in enumerate(zip(seq, t)) if a != b), len(seq)) for t in targets]
    return task.partial_credit * max(shared) / task.horizon


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vocab": 3, "horizon": 4, "m_targets": 5, "partial_credit": 0.6, "task_seed": 1},
        {"vocab": 4, "horizon": 3, "structure": "rule", "rule": "sum_mod", "rule_value": 2},
    ],
)
def test_tree_vector_rewards_match_reference(kwargs: dict) -> None:
    envs = TokenTreeVectorEnv(num_envs=64, autoreset_mode="same_step", **kwargs)
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    for _ in range(3 * envs.task.horizon):
        _, rewards, terminated, _, infos = envs.step(rng.integers(0, envs.task.vocab, size=64))
        for i in np.flatnonzero(terminated):
            final = infos["final_obs"][i]
            assert final[-1] == envs.task.horizon
            assert rewards[i] == pytest.approx(reference_tree_reward(envs.task, tuple(final[:-1].tolist())))
        assert np.all(rewards[~terminated] == 0)


def test_tree_playing_a_target_pays_one() -> None:
    task = TreeTask(vocab=50, horizon=5, m_targets=3, partial_credit=0.5, seed=11)
    envs = TokenTreeVectorEnv(num_envs=3, task=task)
    envs.reset()
    for t in range(task.horizon):
        _, rewards, terminated, _, _ = envs.step(task.targets[:, t])
    assert terminated.all() and np.all(rewards == 1.0)


# ---------------------------------------------------------------------------------------------- vector == sync


@settings(max_examples=25)
@given(
    st.sampled_from(MODES),
    st.integers(1, 5),
    st.integers(0, 2**31),
    st.sampled_from(
        [
            (BANDIT, {"n_arms": 7, "m_optimal": 2}),
            (BANDIT, {"n_arms": 40, "m_optimal": 3, "pattern": "uniform"}),
            (TREE, {"vocab": 2, "horizon": 2, "m_targets": 2, "partial_credit": 0.5}),
            (TREE, {"vocab": 3, "horizon": 3, "m_targets": 6, "partial_credit": 0.3}),
            (TREE, {"vocab": 3, "horizon": 1, "structure": "rule", "rule_value": 1}),
        ]
    ),
)
def test_native_vector_env_equals_sync_vector_env(mode, num_envs, seed, config) -> None:
    env_id, kwargs = config
    n_terminated = compare_rollout(env_id, kwargs, num_envs, mode, seed, n_steps=14)
    assert n_terminated >= num_envs  # several episodes per copy went by, so autoreset was exercised


@pytest.mark.parametrize("mode", MODES)
def test_native_equals_sync_many_envs_with_rewards(mode: AutoresetMode) -> None:
    kwargs = {"vocab": 2, "horizon": 3, "structure": "rule", "rule": "ends_with", "rule_value": 1}
    assert compare_rollout(TREE, kwargs, 32, mode, seed=5, n_steps=20) > 100
    assert compare_rollout(BANDIT, {"n_arms": 3, "m_optimal": 1}, 32, mode, seed=6, n_steps=10) > 100


def test_next_step_autoreset_semantics_by_hand() -> None:
    envs = TokenTreeVectorEnv(num_envs=2, vocab=2, horizon=1, structure="rule", rule_value=1)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert TokenTreeVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    envs.reset()
    obs, rewards, terminated, _, _ = envs.step(np.array([1, 0]))
    assert obs.tolist() == [[1, 1], [0, 1]] and rewards.tolist() == [1.0, 0.0] and terminated.all()
    obs, rewards, terminated, _, _ = envs.step(np.array([99, -5]))  # reset step: actions ignored
    assert obs.tolist() == [[2, 0], [2, 0]] and rewards.tolist() == [0.0, 0.0] and not terminated.any()


# ---------------------------------------------------------------------------------------------- seeding


def test_same_seeds_same_trajectories_and_task_seed_changes_task() -> None:
    def rollout(env_cls, seed: int, **kwargs) -> list:
        envs = env_cls(num_envs=16, **kwargs)
        envs.reset(seed=seed)
        assert envs.np_random_seed == seed
        rng = np.random.default_rng(seed)
        return [envs.step(rng.integers(0, envs.single_action_space.n, 16))[:4] for _ in range(10)]

    for env_cls, kwargs in [
        (SparseBanditVectorEnv, {"n_arms": 1000, "m_optimal": 50, "pattern": "uniform"}),
        (TokenTreeVectorEnv, {"vocab": 2, "horizon": 3, "m_targets": 3, "partial_credit": 0.5}),
    ]:
        first, again = rollout(env_cls, 7, **kwargs), rollout(env_cls, 7, **kwargs)
        assert_same(first, again, env_cls.__name__)
    a = SparseBanditEnv(n_arms=10_000, m_optimal=5, task_seed=0)
    b = SparseBanditEnv(n_arms=10_000, m_optimal=5, task_seed=1)
    assert not np.array_equal(a.task.optimal, b.task.optimal)
    assert np.array_equal(
        a.task.optimal, SparseBanditEnv(n_arms=10_000, m_optimal=5, task_seed=0).task.optimal
    )
    assert not np.array_equal(TokenTreeEnv(task_seed=0).task.targets, TokenTreeEnv(task_seed=1).task.targets)


def test_reset_seed_seeds_np_random() -> None:
    for env in (SparseBanditEnv(n_arms=5, m_optimal=1), TokenTreeEnv()):
        env.reset(seed=123)
        first = env.np_random.random()
        env.reset(seed=123)
        assert env.np_random_seed == 123 and env.np_random.random() == first
    envs = TokenTreeVectorEnv(num_envs=3)
    envs.reset(seed=[4, 5, 6])
    assert envs.np_random_seed == 4
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, 2])


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (SparseBanditEnv, {"n_arms": 0}, "n_arms"),
        (SparseBanditEnv, {"n_arms": 5, "m_optimal": 6}, "m_optimal"),
        (SparseBanditEnv, {"pattern": "normal"}, "pattern"),
        (SparseBanditEnv, {"gap": -0.1}, "gap"),
        (SparseBanditEnv, {"n_arms": 10, "m_optimal": 5, "pattern": "distractors"}, "n_distractors"),
        (SparseBanditEnv, {"task_seed": -1}, "task_seed"),
        (SparseBanditEnv, {"task_seed": 1.5}, "task_seed"),
        (SparseBanditEnv, {"task": TreeTask()}, "task"),
        (SparseBanditEnv, {"render_mode": "rgb_array"}, "render_mode"),
        (SparseBanditVectorEnv, {"num_envs": 0}, "num_envs"),
        (SparseBanditVectorEnv, {"num_envs": True}, "num_envs"),
        (SparseBanditVectorEnv, {"autoreset_mode": "sometimes"}, "autoreset_mode"),
        (SparseBanditVectorEnv, {"render_mode": "rgb_array"}, "render_mode"),
        (TokenTreeEnv, {"vocab": 1}, "vocab"),
        (TokenTreeEnv, {"horizon": 0}, "horizon"),
        (TokenTreeEnv, {"structure": "graph"}, "structure"),
        (TokenTreeEnv, {"vocab": 2, "horizon": 2, "m_targets": 5}, "m_targets"),
        (TokenTreeEnv, {"partial_credit": 1.0}, "partial_credit"),
        (TokenTreeEnv, {"structure": "rule", "rule": "palindrome"}, "rule"),
        (TokenTreeEnv, {"structure": "rule", "vocab": 3, "rule_value": 3}, "rule_value"),
        (TokenTreeEnv, {"task_seed": "0"}, "task_seed"),
        (TokenTreeEnv, {"task": BanditTask()}, "task"),
        (TokenTreeVectorEnv, {"num_envs": 2.0}, "num_envs"),
        (TokenTreeVectorEnv, {"autoreset_mode": 3}, "autoreset_mode"),
        (TokenTreeVectorEnv, {"vocab": 0}, "vocab"),
    ],
)
def test_invalid_arguments_name_the_argument(cls, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must"):
        cls(**kwargs)


def test_invalid_arguments_through_gym_make() -> None:
    with pytest.raises(ValueError, match="m_optimal"):
        gym.make(BANDIT, n_arms=3, m_optimal=4)
    with pytest.raises(ValueError, match="horizon"):
        gym.make_vec(TREE, num_envs=2, vectorization_mode="vector_entry_point", horizon=-1)


def test_autoreset_mode_accepts_enum_value_and_name() -> None:
    for spelling in (AutoresetMode.SAME_STEP, "SameStep", "same_step", "SAME_STEP"):
        assert (
            TokenTreeVectorEnv(autoreset_mode=spelling).metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        )


@pytest.mark.parametrize("bad", [-1, 5, 1.0, "2", np.array([1, 2]), None])
def test_single_env_action_validation(bad) -> None:
    for env in (SparseBanditEnv(n_arms=5, m_optimal=1), TokenTreeEnv(vocab=5, horizon=2)):
        env.reset()
        with pytest.raises(ValueError, match="action must be an integer in"):
            env.step(bad)
        env.step(np.int64(4))  # the failed call changed nothing: a valid action still works


def test_single_env_step_needs_reset() -> None:
    for env in (SparseBanditEnv(n_arms=5, m_optimal=1), TokenTreeEnv(vocab=5, horizon=1)):
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)
        env.reset()
        assert env.step(0)[2] is True
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)


@pytest.mark.parametrize(
    "bad",
    [np.array([0, 1]), np.array([0, 1, 2, 3]), np.array([0.0, 1.0, 2.0]), np.array([0, 7, 1]), [0, -1, 0], 1],
)
def test_vector_env_action_validation_leaves_state_unchanged(bad) -> None:
    for envs in (SparseBanditVectorEnv(3, n_arms=7, m_optimal=1), TokenTreeVectorEnv(3, vocab=7, horizon=2)):
        obs, _ = envs.reset()
        with pytest.raises(ValueError, match="^actions must"):
            envs.step(bad)
        fresh = type(envs)(3, task=envs.task)
        fresh.reset()
        assert_same(envs.step(np.array([1, 2, 3])), fresh.step(np.array([1, 2, 3])), "after a rejected step")


@pytest.mark.parametrize("env_id", [BANDIT, TREE])
@pytest.mark.parametrize("mode", MODES)
def test_vector_env_step_before_reset_raises_like_sync(env_id, mode) -> None:
    """Stepping before reset raises gymnasium's ResetNeeded, as SyncVectorEnv over the single env does."""
    native, sync = make_pair(env_id, 3, mode)
    actions = np.zeros(3, dtype=np.int64)
    for envs in (sync, native):
        with pytest.raises(gym.error.ResetNeeded, match="before"):
            envs.step(actions)
    native.reset(seed=0, options={"reset_mask": np.array([True, False, True])})
    with pytest.raises(gym.error.ResetNeeded, match=r"copies \[1\]"):  # a copy never reset still cannot step
        native.step(actions)
    native.reset(seed=0)
    sync.reset(seed=0)
    assert_same(native.step(actions), sync.step(actions), "first step after reset")


def test_disabled_autoreset_requires_explicit_reset() -> None:
    envs = TokenTreeVectorEnv(num_envs=2, vocab=3, horizon=1, autoreset_mode="disabled")
    envs.reset()
    envs.step(np.array([0, 1]))
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(np.array([0, 1]))
    envs.reset(options={"reset_mask": np.array([True, True])})
    assert envs.step(np.array([2, 2]))[2].all()


@pytest.mark.parametrize(
    "mask", [np.array([True]), np.array([0, 1]), np.array([False, False]), [True, False]]
)
def test_invalid_reset_mask(mask) -> None:
    envs = SparseBanditVectorEnv(num_envs=2, n_arms=4, m_optimal=1)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": mask})


# ---------------------------------------------------------------------------------------------- render


def test_render_modes(capsys) -> None:
    env = SparseBanditEnv(n_arms=4, m_optimal=4, render_mode="ansi")
    env.reset()
    assert env.render().endswith("no arm pulled yet")
    env.step(2)
    assert (
        env.render()
        == "SparseBandit(n_arms=4, m_optimal=4, pattern='zero'): pulled arm 2 -> reward 1.0000 (optimal)"
    )
    human = TokenTreeEnv(vocab=3, horizon=2, render_mode="human")
    human.reset()
    human.step(1)
    assert human.render() is None
    assert (
        capsys.readouterr().out.splitlines()[-2:]
        == ["TokenTree(vocab=3, horizon=2, targets): [1 _] t=1/2"] * 2
    )
    assert TokenTreeEnv().render() is None  # render_mode None
    envs = TokenTreeVectorEnv(num_envs=2, vocab=3, horizon=2, render_mode="human")
    envs.reset()
    assert envs.render() is None and len(capsys.readouterr().out.splitlines()) == 4


# ---------------------------------------------------------------------------------------------- benchmark


def test_benchmark_script_quick_mode(tmp_path: Path) -> None:
    script = REPO / "benchmarks" / "toy_envs_bench.py"
    cmd = [sys.executable, str(script), "--quick", "--num-envs", "4", "--steps", "3", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, cwd=REPO, timeout=120, capture_output=True)
    report = json.loads((tmp_path / "toy_envs.json").read_text())
    assert [r["env"] for r in report["results"]] == [BANDIT, TREE]
    for r in report["results"]:
        assert r["num_envs"] == 4 and r["steps"] == 3 and r["same_results"] is True
        assert r["native_steps_per_s"] > 0 and r["sync_steps_per_s"] > 0
        assert r["speedup"] == pytest.approx(r["native_steps_per_s"] / r["sync_steps_per_s"])
    assert report["target_speedup"] == 50 and isinstance(report["meets_target"], bool)
    assert "| env |" in (tmp_path / "toy_envs.md").read_text()

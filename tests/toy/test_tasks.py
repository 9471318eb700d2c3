"""Tests of toy.tasks against the definitions, re-implemented independently in plain Python."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toy import tasks
from toy.tasks import BanditTask, TreeTask, all_sequences

# ---------------------------------------------------------------------------------------------- bandit


@st.composite
def bandit_tasks(draw) -> BanditTask:
    n_arms = draw(st.integers(1, 400))
    m = draw(st.integers(1, n_arms))
    pattern = draw(st.sampled_from(tasks.BANDIT_PATTERNS))
    n_distractors = draw(st.integers(0, n_arms - m))
    gap = draw(st.floats(0.01, 1.0))
    return BanditTask(n_arms, m, pattern, gap, n_distractors, draw(st.integers(0, 2**31)))


@given(bandit_tasks())
def test_bandit_exactly_m_optimal_and_pattern(task: BanditTask) -> None:
    r = task.rewards
    assert r.shape == (task.n_arms,) and r.dtype == np.float64
    assert np.all((r >= 0) & (r <= 1))
    assert np.array_equal(task.optimal, np.flatnonzero(r == 1.0))
    assert len(task.optimal) == task.m_optimal
    others = np.delete(r, task.optimal)
    if task.pattern == "zero":
        assert np.all(others == 0)
    elif task.pattern == "uniform":
        # Uniform on [0, 1 - gap); with gap = 1 that interval is empty and every other arm pays 0.
        assert np.all((others >= 0) & ((others < 1 - task.gap) | (others == 0)))
    else:
        assert np.sum(others == 1 - task.gap) == task.n_distractors or task.gap == 1.0
        assert np.all((others == 0) | (others == 1 - task.gap))
    assert task.reward(task.optimal[0]) == 1.0
    assert np.array_equal(task.reward(np.arange(task.n_arms)), r)


@given(bandit_tasks())
def test_bandit_seed_determinism(task: BanditTask) -> None:
    first = task.rewards.copy(), task.optimal.copy()
    tasks._bandit_arrays.cache_clear()  # recompute from scratch, not from the cache
    again = BanditTask(task.n_arms, task.m_optimal, task.pattern, task.gap, task.n_distractors, task.seed)
    assert np.array_equal(first[0], again.rewards) and np.array_equal(first[1], again.optimal)


def test_bandit_default_is_figure1_setting_and_seeds_differ() -> None:
    a, b = BanditTask(seed=0), BanditTask(seed=1)
    assert a.n_arms == 100_000 and a.m_optimal == 10 and a.rewards.sum() == 10
    assert not np.array_equal(a.optimal, b.optimal)


def test_bandit_arrays_are_read_only() -> None:
    task = BanditTask(n_arms=10, m_optimal=2)
    with pytest.raises(ValueError):
        task.rewards[0] = 1.0
    with pytest.raises(ValueError):
        task.optimal[0] = 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_arms": 0}, "n_arms"),
        ({"n_arms": 5, "m_optimal": 6}, "m_optimal"),
        ({"m_optimal": 0}, "m_optimal"),
        ({"pattern": "gauss"}, "pattern"),
        ({"gap": 0.0}, "gap"),
        ({"gap": 1.5}, "gap"),
        ({"pattern": "distractors", "n_arms": 10, "m_optimal": 5, "n_distractors": 6}, "n_distractors"),
        ({"seed": -1}, "seed"),
        ({"n_arms": 2.5}, "n_arms"),
    ],
)
def test_bandit_invalid_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        BanditTask(**kwargs)


# ---------------------------------------------------------------------------------------------- tree


def reference_reward(task: TreeTask, seq: tuple[int, ...], targets: set[tuple[int, ...]]) -> float:
    """R(y) straight from the TreeTask docstring, one sequence at a time."""
    if task.structure == "rule":
        hit = (
            sum(seq) % task.vocab == task.rule_value if task.rule == "sum_mod" else seq[-1] == task.rule_value
        )
        return float(hit)
    if seq in targets:
        return 1.0
    best = 0
    for target in targets:
        shared = next((i for i, (a, b) in enumerate(zip(seq, target)) if a != b), len(seq))
        best = max(best, shared)
    return task.partial_credit * best / task.horizon


@st.composite
def tree_tasks(draw) -> TreeTask:
    vocab = draw(st.integers(2, 6))
    horizon = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31))
    if draw(st.booleans()):
        m = draw(st.integers(1, min(vocab**horizon, 20)))
        credit = draw(st.sampled_from([0.0, 0.5, 0.9]))
        return TreeTask(vocab, horizon, "targets", m_targets=m, partial_credit=credit, seed=seed)
    rule = draw(st.sampled_from(tasks.TREE_RULES))
    return TreeTask(vocab, horizon, "rule", rule=rule, rule_value=draw(st.integers(0, vocab - 1)), seed=seed)


@given(tree_tasks())
def test_tree_table_matches_reference_and_optimal_set(task: TreeTask) -> None:
    table = task.reward_table()
    assert table.shape == (task.vocab,) * task.horizon
    targets = task.optimal_set if task.structure == "targets" else set()
    expected = {
        y: reference_reward(task, y, targets)
        for y in itertools.product(range(task.vocab), repeat=task.horizon)
    }
    for y, value in expected.items():
        assert table[y] == pytest.approx(value, abs=1e-12)
    assert task.reward(next(iter(expected))) == table[next(iter(expected))]
    assert np.all((table >= 0) & (table <= 1))
    optimal = {y for y, value in expected.items() if value == 1.0}
    assert optimal == set(task.optimal_set)
    assert len(optimal) == task.n_optimal == int((table == 1.0).sum())


@given(tree_tasks())
def test_tree_seed_determinism(task: TreeTask) -> None:
    first = task.reward_table().copy()
    tasks._tree_targets.cache_clear()
    tasks._tree_table.cache_clear()
    assert np.array_equal(
        first, TreeTask(**{f: getattr(task, f) for f in task.__dataclass_fields__}).reward_table()
    )


@given(st.integers(2, 6), st.integers(1, 3), st.integers(1, 30), st.integers(0, 1000))
def test_tree_targets_distinct_sorted_in_range(vocab: int, horizon: int, m: int, seed: int) -> None:
    m = min(m, vocab**horizon)
    targets = TreeTask(vocab, horizon, m_targets=m, seed=seed).targets
    assert targets.shape == (m, horizon) and targets.dtype == np.int64
    assert targets.min() >= 0 and targets.max() < vocab
    rows = [tuple(row) for row in targets.tolist()]
    assert rows == sorted(set(rows))


def test_tree_huge_tree_uses_rejection_sampling() -> None:
    task = TreeTask(vocab=100_000, horizon=4, m_targets=5, seed=3)
    assert task.n_sequences > 2**62
    assert len(task.optimal_set) == 5
    assert np.all(task.rewards(task.targets) == 1.0)
    neighbour = task.targets[0].copy()
    neighbour[-1] = (neighbour[-1] + 1) % task.vocab
    assert task.reward(neighbour) == float(tuple(neighbour.tolist()) in task.optimal_set)


def test_tree_hand_computed_partial_credit() -> None:
    task = TreeTask(vocab=3, horizon=3, m_targets=1, partial_credit=0.6, seed=0)
    target = tuple(int(t) for t in task.targets[0])
    other = (target[0], target[1], (target[2] + 1) % 3)  # shares a prefix of length 2
    assert task.reward(target) == 1.0
    assert task.reward(other) == pytest.approx(0.6 * 2 / 3)
    first_wrong = ((target[0] + 1) % 3, target[1], target[2])
    assert task.reward(first_wrong) == 0.0


def test_rule_counts_closed_form() -> None:
    for rule in tasks.TREE_RULES:
        task = TreeTask(vocab=5, horizon=3, structure="rule", rule=rule, rule_value=2)
        assert task.n_optimal == 25 == len(task.optimal_set) == int(task.reward_table().sum())


def test_all_sequences_is_product_order() -> None:
    assert np.array_equal(all_sequences(3, 4), np.array(list(itertools.product(range(3), repeat=4))))
    assert all_sequences(5, 0).shape == (1, 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"vocab": 1}, "vocab"),
        ({"horizon": 0}, "horizon"),
        ({"structure": "tree"}, "structure"),
        ({"vocab": 2, "horizon": 2, "m_targets": 5}, "m_targets"),
        ({"m_targets": 0}, "m_targets"),
        ({"partial_credit": 1.0}, "partial_credit"),
        ({"structure": "rule", "rule": "prefix"}, "rule"),
        ({"structure": "rule", "rule_value": 4, "vocab": 4}, "rule_value"),
        ({"structure": "rule", "partial_credit": 0.5}, "partial_credit"),
        ({"seed": -2}, "seed"),
    ],
)
def test_tree_invalid_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TreeTask(**kwargs)


def test_tree_rewards_input_checks() -> None:
    task = TreeTask(vocab=4, horizon=3)
    with pytest.raises(ValueError, match="seqs"):
        task.rewards(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="seqs"):
        task.rewards(np.full((1, 3), 4))
    with pytest.raises(ValueError, match="reward_table"):
        TreeTask(vocab=1000, horizon=3).reward_table()
    with pytest.raises(ValueError, match="targets"):
        _ = TreeTask(structure="rule").targets


@given(st.integers(2, 4), st.integers(2, 7), st.integers(1, 200), st.floats(0.0, 0.99), st.integers(0, 2**31))
def test_tree_partial_credit_many_targets_matches_reference(vocab, horizon, m, credit, seed) -> None:
    """Many targets, random and near-target queries: the sorted-neighbour prefix search equals brute force."""
    task = TreeTask(vocab, horizon, m_targets=min(m, vocab**horizon), partial_credit=credit, seed=seed)
    targets = set(task.optimal_set)
    rng = np.random.default_rng(seed)
    near = task.targets[rng.integers(0, len(task.targets), 40)].copy()
    near[np.arange(40), rng.integers(0, horizon, 40)] = rng.integers(0, vocab, 40)
    seqs = np.concatenate([rng.integers(0, vocab, (40, horizon)), near])
    expected = [reference_reward(task, tuple(row), targets) for row in seqs.tolist()]
    assert np.allclose(task.rewards(seqs), expected, rtol=0, atol=1e-12)


def test_tree_huge_tree_partial_credit_matches_reference() -> None:
    """Trees beyond an int64 index use the all-pairs fallback; check it on targets and their neighbours."""
    task = TreeTask(vocab=10**6, horizon=4, m_targets=7, partial_credit=0.8, seed=5)
    rng = np.random.default_rng(0)
    near = np.repeat(task.targets, 4, axis=0)
    near[np.arange(len(near)), np.tile(np.arange(4), 7)] += 1
    seqs = np.concatenate([task.targets, near % task.vocab, rng.integers(0, task.vocab, (10, 4))])
    expected = [reference_reward(task, tuple(row), set(task.optimal_set)) for row in seqs.tolist()]
    assert np.allclose(task.rewards(seqs), expected, rtol=0, atol=1e-12)
    # hand-computed: changing token k of a target leaves a shared prefix of length k (other targets are far)
    assert np.allclose(
        task.rewards(near % task.vocab), 0.8 * np.tile(np.arange(4), 7) / 4, rtol=0, atol=1e-12
    )

"""zero_adv_frac against a direct count: a group has all-zero GRPO advantages iff its rewards are all equal."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aent import group_advantages, zero_adv_frac


def _equal_groups(rewards: list[float], g: int) -> float:
    """Reference: the share of consecutive groups of g rewards with a single distinct value (plain Python)."""
    groups = [rewards[i : i + g] for i in range(0, len(rewards), g)]
    return sum(len(set(grp)) == 1 for grp in groups) / len(groups)


@pytest.mark.parametrize("g", [1, 2, 3, 4])
@pytest.mark.parametrize("scale", ["std", "none"])
def test_every_binary_pattern(g, scale):
    """All 2^(2g) patterns of two groups of 0/1 rewards: zero advantages exactly for the all-equal groups."""
    for bits in itertools.product([0.0, 1.0], repeat=2 * g):
        rewards = list(bits)
        adv = group_advantages(torch.tensor(rewards), g, scale=scale)
        expected = 1.0 if g == 1 and scale == "std" else _equal_groups(rewards, g)
        assert zero_adv_frac(adv, g) == expected, (bits, scale)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.integers(1, 8), st.sampled_from(["std", "none"]), st.data())
def test_matches_count_of_equal_groups(g, n_groups, scale, data):
    """Non-binary rewards (0.1 repeated is not summed exactly) still count as zero-advantage groups."""
    values = st.sampled_from([0.0, 0.1, 1.0, 3.0])
    rewards = []
    for _ in range(n_groups):  # a mix of all-equal groups and free groups
        if data.draw(st.booleans()):
            rewards += [data.draw(values)] * g
        else:
            rewards += data.draw(st.lists(values, min_size=g, max_size=g))
    adv = group_advantages(torch.tensor(rewards, dtype=torch.float32), g, scale=scale)
    assert zero_adv_frac(adv, g) == _equal_groups(rewards, g)


def test_hand_computed():
    adv = torch.tensor([0.0, 0.0, 0.7, -0.7, 0.0, 0.0, 0.0, 0.0])
    assert zero_adv_frac(adv, 2) == 0.75
    assert zero_adv_frac(adv, 4) == 0.5
    assert zero_adv_frac(adv, 8) == 0.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(2, 3), 3), "1-D"),
        (([0.0, 1.0], 2), "1-D"),
        ((torch.zeros(6), 0), "group_size"),
        ((torch.zeros(6), True), "group_size"),
        ((torch.zeros(5), 2), "multiple"),
        ((torch.zeros(0), 2), "multiple"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        zero_adv_frac(*args)
    with pytest.raises(ValueError, match="atol"):
        zero_adv_frac(torch.zeros(4), 2, atol=-1.0)

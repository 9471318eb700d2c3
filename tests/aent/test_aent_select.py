"""aent._select (the exact selection behind clamped_entropy) alone, against torch.kthvalue and a stable sort.

References: ``torch.kthvalue`` for the k-th value t; numpy's stable argsort for the removed set (the first k of a
stable ascending sort: equal values, lower column first), which fixes the cut column.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aent import _select


def removed_by_sort(y: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(y, axis=-1, kind="stable")
    out = np.zeros(y.shape, dtype=bool)
    np.put_along_axis(out, order[:, :k], True, axis=-1)
    return out


def removed_by_cut(y: torch.Tensor, t: torch.Tensor, cut: torch.Tensor) -> np.ndarray:
    cols = torch.arange(y.shape[1])
    return ((y < t[:, None]) | ((y == t[:, None]) & (cols <= cut[:, None]))).numpy()


@st.composite
def rows_and_k(draw, max_vocab: int = 400):
    n = draw(st.integers(1, 4))
    vocab = draw(st.integers(1, max_vocab))
    kind = draw(st.sampled_from(["floats", "ties", "few"]))
    elems = {"floats": st.floats(-50, 50, width=32),
             "ties": st.integers(-3, 3).map(float),
             "few": st.sampled_from([-math.inf, -1.0, 0.0, 2.5])}[kind]
    y = draw(hnp.arrays(np.float32, (n, vocab), elements=elems))
    k = draw(st.integers(1, vocab))
    return y, k


def check(y: np.ndarray, k: int) -> None:
    z = torch.from_numpy(y)
    t, cut = _select.kth_smallest(z, k)
    assert torch.equal(t, z.kthvalue(k, -1).values)
    assert cut.dtype == torch.long and bool((cut >= 0).all())
    np.testing.assert_array_equal(removed_by_cut(z, t, cut), removed_by_sort(y, k))


@settings(max_examples=150)
@given(rows_and_k(max_vocab=40))
def test_direct_path_matches_kthvalue_and_stable_sort(case):
    check(*case)


@settings(max_examples=150)
@given(rows_and_k())
def test_bracket_path_matches_kthvalue_and_stable_sort(case):
    with mock.patch.object(_select, "SAMPLE", 8):  # V > 32 takes the sampled-bracket path (and its fallback)
        check(*case)


def test_bracket_misses_fall_back_exactly():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(3, 3000, generator=g)
    with mock.patch.object(_select, "SAMPLE", 50):
        y[0, :: 3000 // 50] += 100.0  # the strided sample sees only huge values: the bracket misses
        y[1, :: 3000 // 50] -= 100.0
        for k in (1, 700, 2999, 3000):
            check(y.numpy(), k)


def test_real_vocab_size_with_bf16_ties():
    g = torch.Generator().manual_seed(0)
    y = (torch.randn(4, 151_936, generator=g) * 2).bfloat16().float()  # every value repeats hundreds of times
    check(y.numpy(), math.floor(0.33 * 151_936))


@given(rows_and_k(max_vocab=60))
def test_remove_smallest_sets_exactly_the_removed_set(case):
    y, k = case
    z = torch.from_numpy(y)
    t, cut = _select.kth_smallest(z, k)
    out = _select.remove_smallest_(z.clone(), t, cut, fill=-7e30)
    removed = removed_by_sort(y, k)
    assert bool((out.numpy()[removed] == -7e30).all())
    np.testing.assert_array_equal(out.numpy()[~removed], y[~removed])  # kept values untouched, bit for bit


def test_bad_k_is_refused():
    with pytest.raises(ValueError, match="k must be in"):
        _select.kth_smallest(torch.zeros(2, 5), 6)

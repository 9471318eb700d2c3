"""Tests for aent.plotting.plot_metrics: files written, mean ± std against numpy, lazy matplotlib import."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aent.plotting import _mean_std, plot_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(n: int, scale: float) -> list[dict]:
    return [{"step": i, "accuracy": scale * i / n, "entropy": 1.0 - i / n} for i in range(n)]


def test_single_runs_and_seed_lists_write_png(tmp_path):
    runs = {"none": _run(10, 1.0), "aent": [_run(10, 0.5), _run(10, 0.7), _run(10, 0.9)]}
    out = plot_metrics(runs, ["accuracy", "entropy", "clamped_entropy"], tmp_path / "sub" / "m.png",
                       title="t", band={"entropy": (0.2, 0.4)})
    assert out.exists()
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_uniform_band_and_missing_key(tmp_path):
    out = plot_metrics({"a": _run(5, 1.0)}, ["ent_coef"], tmp_path / "m.png", band=(0.0, 1.0))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_log_keys_set_the_axis_scale(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to read its axes back
    plot_metrics({"a": _run(5, 1.0)}, ["accuracy", "entropy"], tmp_path / "m.png", log_keys=["entropy"])
    acc, ent = figures[0].axes[:2]
    assert (acc.get_yscale(), ent.get_yscale()) == ("linear", "log")
    assert ent.get_title() == "entropy (log scale)" and len(ent.get_lines()) == 1
    with pytest.raises(ValueError, match="log_keys"):
        plot_metrics({"a": _run(5, 1.0)}, ["accuracy"], tmp_path / "m.png", log_keys=["entropy"])


@pytest.mark.parametrize(
    ("runs", "keys", "band", "field"),
    [({}, ["accuracy"], None, "runs"), ({"a": _run(3, 1.0)}, [], None, "keys"),
     ({"a": _run(3, 1.0)}, ["accuracy"], (1.0, 0.0), "band")],
)
def test_errors_name_the_argument(tmp_path, runs, keys, band, field):
    with pytest.raises(ValueError, match=field):
        plot_metrics(runs, keys, tmp_path / "x.png", band=band)


@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=4), min_size=1, max_size=5))
def test_mean_std_matches_numpy(values):
    seed_runs = [[{"step": s, "accuracy": v} for s, v in enumerate(row)] for row in values]
    xs, mu, sd = _mean_std(seed_runs, "accuracy")
    arr = np.asarray(values)
    assert xs == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(mu, arr.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sd, arr.std(0), rtol=1e-7, atol=1e-7)


def test_mean_std_uses_only_common_steps():
    a = [{"step": 0, "x": 1.0}, {"step": 1, "x": 3.0}]
    b = [{"step": 1, "x": 5.0}, {"step": 2, "x": float("nan")}]
    xs, mu, sd = _mean_std([a, b], "x")
    assert xs == [1.0] and mu == [4.0] and sd == [1.0]

# That `import aent` / `import aent.plotting` leave matplotlib unimported is checked, in one subprocess with the
# other heavy dependencies, by tests/aent/test_aent_imports.py.

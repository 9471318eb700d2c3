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


@pytest.fixture
def figures(monkeypatch):
    """The Figure objects plot_metrics draws (plt.close is intercepted, so their content can be read back)."""
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    return kept


def _filled(ax):
    """PolyCollections of a panel (fill_between and axhspan patches are not lines)."""
    from matplotlib.collections import PolyCollection

    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_panels_lines_labels_and_seed_bands(tmp_path, figures):
    seeds = [_run(10, 0.5), _run(10, 0.7), _run(10, 0.9)]
    runs = {"none": _run(10, 1.0), "aent": seeds}
    out = plot_metrics(runs, ["accuracy", "entropy", "clamped_entropy"], tmp_path / "sub" / "m.png",
                       title="t", band={"entropy": (0.2, 0.4)})
    assert out.read_bytes()[:8] == PNG_MAGIC
    (fig,) = figures
    acc, ent, clamped = fig.axes[:3]
    assert fig._suptitle.get_text() == "t"
    assert [ax.get_title() for ax in (acc, ent, clamped)] == ["accuracy", "entropy", "clamped_entropy"]
    assert all(ax.get_xlabel() == "step" for ax in (acc, ent, clamped))
    # one line per run on the panels that have data, with the run name and the seed count as labels
    assert [ln.get_label() for ln in acc.get_lines()] == ["none", "aent (n=3)"]
    assert clamped.get_lines() == []  # no run logged clamped_entropy: the panel is empty, not invented
    none_line, aent_line = acc.get_lines()
    np.testing.assert_allclose(none_line.get_xdata(), np.arange(10))
    np.testing.assert_allclose(none_line.get_ydata(), np.arange(10) / 10)
    np.testing.assert_allclose(aent_line.get_ydata(), 0.7 * np.arange(10) / 10)  # mean of 0.5, 0.7, 0.9
    # the seed band is mean +- population std, drawn in the line's colour
    (band,) = _filled(acc)
    ys = band.get_paths()[0].vertices[:, 1]
    sd = np.std([0.5, 0.7, 0.9]) * 9 / 10
    assert ys.max() == pytest.approx(0.7 * 9 / 10 + sd) and ys.min() == pytest.approx(0.0)
    assert np.allclose(band.get_facecolor()[0][:3], _rgb(aent_line.get_color()))
    # the entropy band is shaded on its own panel only, between its bounds
    spans = [p for p in ent.patches if p.get_label() == "band"]
    assert len(spans) == 1 and not [p for p in acc.patches if p.get_label() == "band"]
    assert _span_limits(spans[0]) == pytest.approx((0.2, 0.4))
    assert [t.get_text() for t in acc.get_legend().get_texts()] == ["none", "aent (n=3)"]


def _rgb(color):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def _span_limits(patch) -> tuple[float, float]:
    """(low, high) data y limits of an axhspan patch."""
    from matplotlib.patches import Rectangle

    if isinstance(patch, Rectangle):  # matplotlib >= 3.9
        return patch.get_y(), patch.get_y() + patch.get_height()
    ys = np.asarray(patch.get_xy())[:, 1]
    return float(ys.min()), float(ys.max())


def test_uniform_band_and_missing_key(tmp_path, figures):
    plot_metrics({"a": _run(5, 1.0)}, ["ent_coef", "accuracy"], tmp_path / "m.png", band=(0.0, 1.0))
    coef, acc = figures[0].axes[:2]
    assert coef.get_lines() == [] and len(acc.get_lines()) == 1  # a missing key draws nothing
    for ax in (coef, acc):  # one band per panel
        (span,) = [p for p in ax.patches if p.get_label() == "band"]
        assert _span_limits(span) == pytest.approx((0.0, 1.0))


def test_non_finite_values_are_skipped(tmp_path, figures):
    run = [{"step": 0, "entropy": 1.0}, {"step": 1, "entropy": float("nan")}, {"step": 2, "entropy": 0.5}]
    plot_metrics({"a": run}, ["entropy"], tmp_path / "m.png")
    (line,) = figures[0].axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 2] and list(line.get_ydata()) == [1.0, 0.5]


def test_log_keys_set_the_axis_scale(tmp_path, figures):
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

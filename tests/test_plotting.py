"""Tests for hkjax.plotting: every figure renders to a valid PNG, inputs are validated."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from hkjax import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

rng = np.random.default_rng(0)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _rows():
    rows = []
    for s in range(0, 100, 10):
        r = {"step": s, "loss": 2.0 * np.exp(-s / 30) + 0.01, "accuracy": 1 - 0.9 * np.exp(-s / 40)}
        if s % 30 == 0:
            r["test_accuracy"] = 0.5 + s / 300
        rows.append(r)
    rows.append({"step": 100, "lr": 1e-3})  # a row with none of the keys
    return rows


# name -> (function, positional args, keyword args); all take `path` right after the args.
CASES = {
    "learning_curves": (plotting.learning_curves, lambda: (_rows(),), {}),
    "energy_trace_1d": (
        plotting.energy_trace,
        lambda: (np.linspace(0, 1, 20), -np.linspace(0, 3, 20)),
        {},
    ),
    "energy_trace_2d": (
        plotting.energy_trace,
        lambda: (np.linspace(0, 1, 20), -np.cumsum(rng.random((5, 20)), axis=1)),
        {},
    ),
    "confusion_matrix": (
        plotting.confusion_matrix,
        lambda: (rng.integers(0, 4, 50), rng.integers(0, 4, 50), 4),
        {"class_names": ["a", "b", "c", "d"]},
    ),
    "order_parameter": (
        plotting.order_parameter,
        lambda: (np.linspace(0, 1, 10), _unit(rng.standard_normal((10, 6, 3)))),
        {},
    ),
    "gram_heatmap": (plotting.gram_heatmap, lambda: (_unit(rng.standard_normal((8, 3))),), {}),
    "weights_heatmap": (plotting.weights_heatmap, lambda: (rng.standard_normal((6, 9)),), {"title": "W"}),
    "singular_values": (
        plotting.singular_values,
        lambda: ({"A": rng.standard_normal((6, 6)), "low rank": np.ones((6, 4))},),
        {},
    ),
    "images_grid": (
        plotting.images_grid,
        lambda: (np.sign(rng.standard_normal((5, 12))), (3, 4)),
        {"titles": list("abcde"), "ncols": 3},
    ),
}


def _check_png(path: pathlib.Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert 100 <= h <= 4000 and 100 <= w <= 4000, img.shape
    assert np.ptp(img[..., :3]) > 0  # not a blank canvas


@pytest.mark.parametrize("name", sorted(CASES))
def test_writes_png(tmp_path, name):
    fn, args, kwargs = CASES[name]
    out = tmp_path / "sub" / f"{name}.png"  # missing parent directory is created
    result = fn(*args(), out, **kwargs)
    assert isinstance(result, pathlib.Path)
    assert result == out
    _check_png(out)
    # atomic write: nothing else left in the directory (no temp files)
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_returns_figure_without_path(tmp_path, name):
    fn, args, kwargs = CASES[name]
    fig = fn(*args(), **kwargs)
    assert isinstance(fig, Figure)
    assert fig.axes
    fig.canvas.draw()  # renders headlessly
    assert list(tmp_path.iterdir()) == []


def test_accepts_jax_arrays(tmp_path):
    import jax.numpy as jnp

    ts = jnp.linspace(0.0, 1.0, 10)
    e = -jnp.arange(10.0)
    _check_png(plotting.energy_trace(ts, e, tmp_path / "e.png"))
    s = jnp.asarray(_unit(rng.standard_normal((10, 4, 2))))
    np.testing.assert_allclose(
        plotting.order_parameter_values(s), plotting.order_parameter_values(np.asarray(s)), atol=1e-6
    )
    _check_png(plotting.gram_heatmap(s[0], tmp_path / "g.png"))
    _check_png(plotting.weights_heatmap(jnp.eye(3, dtype=jnp.bfloat16), tmp_path / "w.png"))


def test_overwrite_and_other_formats(tmp_path):
    out = tmp_path / "w.png"
    out.write_bytes(b"old")
    plotting.weights_heatmap(np.eye(3), out)
    _check_png(out)
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml")):
        p = plotting.weights_heatmap(np.eye(3), tmp_path / f"w{suffix}")
        assert p.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pdf", "w.png", "w.svg"]


def test_failed_save_leaves_no_temp_file(tmp_path, monkeypatch):
    fig = plotting.weights_heatmap(np.eye(3))

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    out = tmp_path / "w.png"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk full"):
        plotting._finish(fig, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.png"]
    assert out.read_bytes() == b"previous"  # the old file is untouched


def test_bad_suffix():
    with pytest.raises(ValueError, match="path"):
        plotting.weights_heatmap(np.eye(3), "w.jpeg")


def test_no_pyplot_import():
    # A fresh interpreter with no backend configured: rendering must not need pyplot or a
    # display.
    code = (
        "import sys, numpy as np; import hkjax.plotting as m;"
        "m.weights_heatmap(np.eye(3)).canvas.draw();"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ---------------------------------------------------------------------------
# order parameter
# ---------------------------------------------------------------------------


def test_order_parameter_all_aligned():
    v = _unit(rng.standard_normal(5))
    s = np.broadcast_to(v, (4, 7, 5))
    np.testing.assert_allclose(plotting.order_parameter_values(s), np.ones(4), atol=1e-12)


def test_order_parameter_antipodal_pairs():
    v = _unit(rng.standard_normal((3, 4, 3)))  # T=3, 4 oscillators
    s = np.concatenate([v, -v], axis=1)  # each has its antipode
    np.testing.assert_allclose(plotting.order_parameter_values(s), np.zeros(3), atol=1e-12)


def test_order_parameter_hand_computation():
    h = np.sqrt(0.5)
    a = np.deg2rad([0.0, 120.0, 240.0])
    s = np.stack(
        [
            # e1, e2, (e1+e2)/sqrt2: mean = (1+h, 1+h)/3, |mean| = sqrt2 (1+h)/3
            np.array([[1.0, 0.0], [0.0, 1.0], [h, h]]),
            # three vectors at 120 degrees: mean 0
            np.stack([np.cos(a), np.sin(a)], axis=1),
            # e1, e1, -e1: mean = e1/3
            np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]),
        ]
    )
    expected = [np.sqrt(2) * (1 + h) / 3, 0.0, 1 / 3]
    np.testing.assert_allclose(plotting.order_parameter_values(s), expected, atol=1e-12)


def test_order_parameter_non_finite_times_are_nan():
    s = _unit(rng.standard_normal((4, 3, 2)))
    s[2:] = np.inf  # past a steady-state event
    r = plotting.order_parameter_values(s)
    assert np.all(np.isfinite(r[:2])) and np.all(np.isnan(r[2:]))
    assert np.all((r[:2] >= 0) & (r[:2] <= 1))
    ts = np.array([0.0, 0.5, np.inf, np.inf])
    assert isinstance(plotting.order_parameter(ts, s), Figure)


# ---------------------------------------------------------------------------
# non-finite energies
# ---------------------------------------------------------------------------


def test_energy_trace_non_finite(tmp_path):
    ts = np.linspace(0, 1, 10)
    e = -np.arange(10.0)
    e[6:] = np.inf
    _check_png(plotting.energy_trace(ts, e, tmp_path / "e1.png"))

    B, T = 4, 10
    e2 = -np.cumsum(rng.random((B, T)), axis=1)
    ts2 = np.broadcast_to(ts, (B, T)).copy()
    e2[1, 5:] = np.inf
    ts2[1, 5:] = np.inf
    e2[2, 3] = np.nan
    fig = plotting.energy_trace(ts2, e2)
    ax = fig.axes[0]
    for line in ax.get_lines():
        assert np.all(np.isfinite(line.get_xydata()))
    mean = ax.get_lines()[-1]
    # the stopped sample is held at its last finite value when averaging
    held = e2.copy()
    held[1, 5:] = e2[1, 4]
    expected = np.nanmean(np.where(np.isfinite(held), held, np.nan), axis=0)
    np.testing.assert_allclose(mean.get_ydata(), expected)
    _check_png(plotting.energy_trace(ts2, e2, tmp_path / "e2.png"))


def test_energy_trace_all_non_finite_raises():
    with pytest.raises(ValueError, match="energies"):
        plotting.energy_trace(np.arange(3.0), np.full(3, np.inf))


# ---------------------------------------------------------------------------
# other content checks
# ---------------------------------------------------------------------------


def test_learning_curves_only_present_keys():
    fig = plotting.learning_curves([{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5, "accuracy": None}])
    assert len(fig.axes) == 1
    assert fig.axes[0].get_title().startswith("loss")
    fig = plotting.learning_curves(_rows())
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["loss", "accuracy", "test_accuracy"]
    # test_accuracy is drawn only at the rows that have it
    assert len(fig.axes[2].get_lines()[0].get_xdata()) == 4


def test_learning_curves_groups_share_a_panel():
    rows = [{"step": s, "loss": 1.0 / (s + 1), "accuracy": 0.1 * s} for s in range(1, 8)]
    rows += [{"step": 4, "val_loss": 0.5, "val_accuracy": 0.3}, {"step": 7, "val_loss": 0.4, "val_accuracy": 0.5}]
    fig = plotting.learning_curves(rows, keys=(("loss", "val_loss", "test_loss"), ("accuracy", "val_accuracy")))
    assert len(fig.axes) == 2
    lines = fig.axes[0].get_lines()
    assert [ln.get_label().split()[0] for ln in lines] == ["loss", "val_loss"]  # test_loss absent: left out
    assert list(lines[1].get_xdata()) == [4, 7] and list(lines[1].get_ydata()) == [0.5, 0.4]
    assert [ln.get_color() for ln in lines] == ["C0", "C1"]  # a metric's colour is its place in the group
    only_test = plotting.learning_curves([{"step": 1, "loss": 1.0, "test_loss": 2.0}], keys=(("loss", "val_loss", "test_loss"),))
    assert [ln.get_color() for ln in only_test.axes[0].get_lines()] == ["C0", "C2"]
    assert [t.get_text().split()[0] for t in fig.axes[1].get_legend().get_texts()] == ["accuracy", "val_accuracy"]
    # a panel whose metrics are all absent is dropped
    fig = plotting.learning_curves(rows, keys=(("test_loss",), "loss"))
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith("loss")
    with pytest.raises(ValueError, match="tuples of names"):
        plotting.learning_curves(rows, keys=(("loss", 3),))


def test_confusion_matrix_counts_and_accuracy():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    fig = plotting.confusion_matrix(y_true, y_pred, 3)
    ax = fig.axes[0]
    assert "66.67%" in ax.get_title()
    counts = ax.get_images()[0].get_array()
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(str(c) for c in np.asarray(counts).ravel())
    titled = plotting.confusion_matrix(y_true, y_pred, 3, title="cue 1 (edited labels)")
    assert titled.axes[0].get_title() == "cue 1 (edited labels) — accuracy 66.67% (4/6)"


def test_gram_heatmap_color_range():
    fig = plotting.gram_heatmap(_unit(rng.standard_normal((5, 2))) * 0.5)
    assert fig.axes[0].get_images()[0].get_clim() == (-1.0, 1.0)


def test_weights_heatmap_symmetric_scale():
    fig = plotting.weights_heatmap(np.array([[0.0, 3.0], [-1.0, 2.0]]))
    assert fig.axes[0].get_images()[0].get_clim() == (-3.0, 3.0)


def test_singular_values_rank_in_legend():
    u = rng.standard_normal((8, 2))
    fig = plotting.singular_values({"rank2": u @ u.T, "full": np.eye(8)})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "rank 2" in labels[0] and "rank 8" in labels[1]
    assert fig.axes[0].get_yscale() == "log"


def test_singular_values_rank_uses_the_matrix_precision():
    # a rank-3 product computed in float32 has rounding-level singular values ~1e-7·s_max,
    # far above float64's eps: they must not count as rank
    u = rng.standard_normal((48, 3)).astype(np.float32)
    m = (u @ u.T - np.eye(48, dtype=np.float32)) + np.eye(48, dtype=np.float32)
    assert m.dtype == np.float32 and np.linalg.matrix_rank(m.astype(np.float64), tol=1e-12) > 3
    fig = plotting.singular_values({"lowrank": m})
    assert "rank 3" in fig.axes[0].get_legend().get_texts()[0].get_text()


# ---------------------------------------------------------------------------
# validation: ValueError naming the argument
# ---------------------------------------------------------------------------

S3 = _unit(rng.standard_normal((4, 3, 2)))

BAD = [
    # learning_curves
    (plotting.learning_curves, ([],), {}, "rows"),
    (plotting.learning_curves, ([{"loss": 1.0}],), {}, "rows"),
    (plotting.learning_curves, ([{"step": 0, "foo": 1.0}],), {}, "rows"),
    (plotting.learning_curves, ([{"step": 0, "loss": 1.0}],), {"keys": ()}, "keys"),
    (plotting.learning_curves, ([1, 2],), {}, "rows"),
    # energy_trace
    (plotting.energy_trace, (np.arange(3.0), np.zeros((2, 2, 3))), {}, "energies"),
    (plotting.energy_trace, (np.arange(3.0), np.zeros(4)), {}, "ts"),
    (plotting.energy_trace, (np.zeros((3, 3)), np.zeros((2, 3))), {}, "ts"),
    (plotting.energy_trace, (np.zeros(0), np.zeros(0)), {}, "energies"),
    (plotting.energy_trace, (np.zeros((1, 1, 3)), np.zeros(3)), {}, "ts"),
    # confusion_matrix
    (plotting.confusion_matrix, ([0, 1], [0], 2), {}, "y_true"),
    (plotting.confusion_matrix, ([0, 1], [0, 2], 2), {}, "y_pred"),
    (plotting.confusion_matrix, ([0, -1], [0, 1], 2), {}, "y_true"),
    (plotting.confusion_matrix, ([[0, 1]], [0, 1], 2), {}, "y_true"),
    (plotting.confusion_matrix, ([], [], 2), {}, "y_true"),
    (plotting.confusion_matrix, ([0.5], [0], 2), {}, "y_true"),
    (plotting.confusion_matrix, ([0], [0], 0), {}, "n_classes"),
    (plotting.confusion_matrix, ([0], [0], 2), {"class_names": ["a"]}, "class_names"),
    # order parameter
    (plotting.order_parameter_values, (np.zeros((3, 2)),), {}, "sigmas"),
    (plotting.order_parameter_values, (np.zeros((0, 2, 2)),), {}, "sigmas"),
    (plotting.order_parameter, (np.arange(3.0), S3), {}, "ts"),
    (plotting.order_parameter, (np.zeros((4, 1)), S3), {}, "ts"),
    (plotting.order_parameter, (np.arange(4.0), S3[0]), {}, "sigmas"),
    # heatmaps
    (plotting.gram_heatmap, (np.zeros(3),), {}, "sigma"),
    (plotting.gram_heatmap, (np.zeros((0, 3)),), {}, "sigma"),
    (plotting.weights_heatmap, (np.zeros((2, 2, 2)),), {}, "w"),
    (plotting.weights_heatmap, (np.zeros((3, 0)),), {}, "w"),
    (plotting.weights_heatmap, (np.array(["a", "b"]),), {}, "w"),
    # singular values
    (plotting.singular_values, ({},), {}, "matrices"),
    (plotting.singular_values, ([np.eye(2)],), {}, "matrices"),
    (plotting.singular_values, ({"x": np.zeros(3)},), {}, r"matrices\['x'\]"),
    (plotting.singular_values, ({"x": np.full((2, 2), np.nan)},), {}, r"matrices\['x'\]"),
    # images grid
    (plotting.images_grid, (np.zeros((2, 12)), (3, 5)), {}, "shape"),
    (plotting.images_grid, (np.zeros((2, 12)), (12,)), {}, "shape"),
    (plotting.images_grid, (np.zeros((2, 3, 4)), (3, 4)), {}, "images"),
    (plotting.images_grid, (np.zeros((0, 12)), (3, 4)), {}, "images"),
    (plotting.images_grid, (np.zeros((2, 12)), (3, 4)), {"titles": ["a"]}, "titles"),
    (plotting.images_grid, (np.zeros((2, 12)), (3, 4)), {"ncols": 0}, "ncols"),
]


@pytest.mark.parametrize("fn,args,kwargs,name", BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_rejects_bad_inputs(tmp_path, fn, args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fn(*args, **kwargs)
    assert list(tmp_path.iterdir()) == []

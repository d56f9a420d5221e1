"""Figures for training runs and relaxations: learning curves, energies, order parameters.

Every helper takes plain arrays (NumPy or JAX; anything :func:`numpy.asarray` accepts) and

* with ``path=None`` returns the :class:`matplotlib.figure.Figure` without saving it;
* with a ``path`` writes the figure atomically (a temporary file in the same directory,
  flushed, fsynced, then moved into place with :func:`os.replace`, so a reader never sees
  a partial image and a crash leaves no half-written file) and returns the
  :class:`pathlib.Path` it wrote. The format follows the suffix: ``.png`` (the usual
  choice), ``.pdf`` or ``.svg``. Missing parent directories are created.

Figures are built with the object-oriented API (:class:`~matplotlib.figure.Figure` plus
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`): nothing here imports
:mod:`matplotlib.pyplot`, touches the global figure registry or needs a display, so the
module is safe in headless jobs and threads and never leaks figures.

Inputs are validated up front; a bad input raises :class:`ValueError` whose message names
the offending argument (wrong number of dimensions, mismatched lengths, empty input, ...).

Public API: :func:`learning_curves`, :func:`energy_trace`, :func:`confusion_matrix`,
:func:`order_parameter`, :func:`order_parameter_values`, :func:`gram_heatmap`,
:func:`weights_heatmap`, :func:`singular_values`, :func:`images_grid`.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._io import atomic_open

__all__ = [
    "learning_curves",
    "energy_trace",
    "confusion_matrix",
    "order_parameter",
    "order_parameter_values",
    "gram_heatmap",
    "weights_heatmap",
    "singular_values",
    "images_grid",
    "sweep_heatmap",
]

PathLike = str | os.PathLike

#: Resolution (dots per inch) of saved raster figures.
DPI = 120

#: Suffix -> matplotlib format for saved figures.
_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}

_DIVERGING = "RdBu_r"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A fresh figure with an Agg canvas attached (no pyplot, no display)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _check_path(path: PathLike) -> pathlib.Path:
    try:
        p = pathlib.Path(os.fspath(path))
    except TypeError:
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if p.suffix.lower() not in _FORMATS:
        raise ValueError(
            f"path={str(p)!r} must end in one of {sorted(_FORMATS)} (the suffix picks the format)"
        )
    if p.name in ("", ".", ".."):
        raise ValueError(f"path={str(p)!r} does not name a file")
    return p


def _finish(fig: Figure, path: PathLike | None) -> Figure | pathlib.Path:
    """Return ``fig`` when ``path`` is None, else save it atomically and return the path."""
    if path is None:
        return fig
    p = _check_path(path)
    with atomic_open(p, "wb") as f:
        fig.savefig(f, format=_FORMATS[p.suffix.lower()], dpi=DPI)
    return p


def _as_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 NumPy array; ValueError naming ``name`` if it is not numeric."""
    try:
        a = np.asarray(x)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} could not be converted to an array: {e}") from None
    if a.dtype.kind in "OSUMmcV" and not _is_ml_float(a.dtype):
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}") from None


def _is_ml_float(dtype: np.dtype) -> bool:
    """True for ml_dtypes floats (bfloat16, float8_*), which JAX arrays may carry."""
    return dtype.kind == "V" and "float" in dtype.name


def _check_ndim(a: np.ndarray, name: str, ndims: Sequence[int], what: str) -> None:
    if a.ndim not in ndims:
        raise ValueError(f"{name} must be {what}, got an array of shape {a.shape}")


def _check_nonempty(a: np.ndarray, name: str) -> None:
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")


def _as_int_labels(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    _check_ndim(a, name, (1,), "1-D (one integer label per sample)")
    _check_nonempty(a, name)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind == "f" or _is_ml_float(a.dtype):
        f = a.astype(np.float64)
        if not np.all(np.isfinite(f)) or not np.all(f == np.round(f)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        return f.astype(np.int64)
    raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")


def _positive_int(value: Any, name: str) -> int:
    """``value`` as a positive int (Python, NumPy or 0-d JAX integer); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a positive integer")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} must be a positive integer") from None
    if v < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(v)


def _symmetric_limit(a: np.ndarray) -> float:
    finite = a[np.isfinite(a)]
    v = float(np.max(np.abs(finite))) if finite.size else 0.0
    return v if v > 0 else 1.0


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------


def _scalar(value: Any) -> float | None:
    """A finite float from a metrics value, or None for missing / non-finite / non-numeric."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        v = float(value)
    else:
        try:
            arr = np.asarray(value)
        except Exception:  # pragma: no cover
            return None
        if arr.shape != () or arr.dtype.kind not in "iuf":
            return None
        v = float(arr)
    return v if math.isfinite(v) else None


def learning_curves(
    rows: Iterable[Mapping[str, Any]],
    path: PathLike | None = None,
    *,
    keys: Sequence[str | Sequence[str]] = ("loss", "accuracy", "test_accuracy"),
) -> Figure | pathlib.Path:
    """Plot training metrics against the step, one subplot per metric or group of metrics.

    Meant for the rows of a ``metrics.jsonl`` log (``[json.loads(l) for l in f]``). Rows
    need not carry every key (e.g. test accuracy is logged only every few steps); a metric
    is drawn from the rows that have it. Missing, ``None`` and non-finite values are
    skipped. Points are sorted by step. Panels whose metric names contain ``"acc"`` and whose
    values lie in ``[0, 1]`` get a ``[0, 1]`` y-axis; positive values spanning more than two
    decades (typically the loss) get a log y-axis.

    Args:
        rows: mappings, each with a numeric ``"step"`` and some of ``keys``.
        path: where to write the figure (``.png``/``.pdf``/``.svg``), or None to return it.
        keys: the metrics to look for, in subplot order. An entry is a metric name (its own
            subplot) or a tuple of names drawn together in one subplot with a legend (e.g.
            ``("loss", "val_loss", "test_loss")``). Metrics absent from every row are left
            out, and so are subplots left with none.

    Returns:
        The written :class:`pathlib.Path`, or the :class:`~matplotlib.figure.Figure` when
        ``path`` is None.

    Raises:
        ValueError: ``rows`` is empty or holds a non-mapping; a row lacks a numeric finite
            ``"step"``; ``keys`` is empty or not a sequence of strings; none of ``keys``
            has a finite numeric value in any row; ``path`` has an unsupported suffix.
    """
    if isinstance(rows, Mapping) or isinstance(rows, (str, bytes)):
        raise ValueError("rows must be a list of dicts (one per logged step), not a single mapping/string")
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: nothing to plot")

    def names(entry):
        if isinstance(entry, str):
            return (entry,)
        if isinstance(entry, (tuple, list)) and entry and all(isinstance(k, str) for k in entry):
            return tuple(entry)
        raise ValueError(f"keys must be a sequence of metric names (strings) or tuples of names, got {keys!r}")

    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise ValueError(f"keys must be a sequence of metric names (strings) or tuples of names, got {keys!r}")
    panels = list(dict.fromkeys(names(k) for k in keys))
    if not panels:
        raise ValueError("keys is empty: name at least one metric to plot")
    keys = list(dict.fromkeys(k for panel in panels for k in panel))

    series: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in keys}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"rows[{i}] must be a mapping (dict), got {type(row).__name__}")
        if "step" not in row:
            raise ValueError(f"rows[{i}] has no 'step' key (keys: {sorted(map(str, row))})")
        step = _scalar(row["step"])
        if step is None:
            raise ValueError(f"rows[{i}]['step']={row['step']!r} must be a finite number")
        for k in keys:
            if k in row:
                v = _scalar(row[k])
                if v is not None:
                    series[k][0].append(step)
                    series[k][1].append(v)

    # each metric keeps the colour of its place in its group (train, validation and test
    # curves look the same in every run, whichever of them it logged)
    present = [[(c, k) for c, k in enumerate(panel) if series[k][0]] for panel in panels]
    present = [panel for panel in present if panel]
    if not present:
        raise ValueError(f"rows: none of keys={keys!r} has a finite numeric value in any row")

    n = len(present)
    fig = _new_figure(4.2 * n, 3.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, panel in zip(axes, present):
        values = []
        for c, k in panel:
            s = np.asarray(series[k][0])
            v = np.asarray(series[k][1])
            order = np.argsort(s, kind="stable")
            s, v = s[order], v[order]
            values.append(v)
            ax.plot(s, v, marker="o" if s.size <= 30 else None, ms=3, lw=1.5, color=f"C{c}",
                    label=f"{k} (last {v[-1]:.4g})")
        v = np.concatenate(values)
        metrics = [k for _, k in panel]
        if len(metrics) == 1:
            ax.set_title(f"{metrics[0]} (last {values[0][-1]:.4g})")
            ax.set_ylabel(metrics[0])
        else:
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if all("acc" in k.lower() for k in metrics) and v.min() >= 0.0 and v.max() <= 1.0:
            ax.set_ylim(-0.02, 1.02)
        elif v.min() > 0 and v.max() / v.min() > 100:
            ax.set_yscale("log")
    fig.suptitle("learning curves")
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# energy along a relaxation
# ---------------------------------------------------------------------------


def _hold_after_last_finite(e: np.ndarray) -> np.ndarray:
    """Per row, replace the trailing non-finite run by the row's last finite value."""
    out = e.copy()
    for row in out:
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size:
            row[finite[-1] + 1:] = row[finite[-1]]
    return out


def _shared_grid(t2: np.ndarray) -> np.ndarray | None:
    """The common time grid of ``(B, T)`` times (non-finite entries ignored), or None.

    Column ``j`` takes the value its finite entries agree on (``nan`` if it has none);
    None if some column's finite entries disagree.
    """
    finite = np.isfinite(t2)
    grid = np.full(t2.shape[1], np.nan)
    for j in range(t2.shape[1]):
        col = t2[finite[:, j], j]
        if col.size:
            if not np.allclose(col, col[0], rtol=1e-6, atol=1e-12):
                return None
            grid[j] = col[0]
    return grid


def energy_trace(ts: Any, energies: Any, path: PathLike | None = None) -> Figure | pathlib.Path:
    """Plot the energy along a relaxation (e.g. :attr:`hkjax.Solution.energy` vs ``.ts``).

    Non-finite entries are ignored: after a steady-state event Diffrax reports ``inf``
    times and energies, and those points are simply not drawn. With several samples each
    is drawn as a thin line and their mean as a thick one; for the mean, a sample that
    stopped early (trailing non-finite values) is held at its last finite energy, which is
    what a steady state means, and other non-finite values are left out of the average.
    The mean is drawn only when all samples share the time grid.

    Args:
        ts: ``(T,)`` times, or ``(B, T)`` per-sample times (as from a vmapped relax).
        energies: ``(T,)`` one trajectory or ``(B, T)`` several.
        path: where to write the figure, or None to return it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``energies`` is not 1-D/2-D or is empty; ``ts`` is not 1-D/2-D, or its
            length/shape does not match ``energies``; no (time, energy) pair is finite.
    """
    e = _as_float(energies, "energies")
    _check_ndim(e, "energies", (1, 2), "(T,) or (B, T)")
    _check_nonempty(e, "energies")
    t = _as_float(ts, "ts")
    _check_ndim(t, "ts", (1, 2), "(T,) or (B, T)")
    batched = e.ndim == 2
    e2 = e if batched else e[None]
    if t.ndim == 1:
        if t.shape[0] != e2.shape[1]:
            raise ValueError(f"ts has length {t.shape[0]} but energies has {e2.shape[1]} time points")
        t2 = np.broadcast_to(t, e2.shape)
    else:
        if t.shape != e2.shape:
            raise ValueError(f"ts has shape {t.shape} but energies has shape {e.shape}; they must match")
        t2 = t
    ok = np.isfinite(t2) & np.isfinite(e2)
    if not ok.any():
        raise ValueError("energies: no finite (time, energy) pair to plot")

    fig = _new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    B = e2.shape[0]
    if not batched:
        m = ok[0]
        ax.plot(t2[0][m], e2[0][m], color="C0", lw=1.8, marker="o" if m.sum() <= 40 else None, ms=3)
    else:
        alpha = float(np.clip(3.0 / np.sqrt(B), 0.08, 0.6))
        for b in range(B):
            m = ok[b]
            ax.plot(t2[b][m], e2[b][m], color="C0", lw=0.7, alpha=alpha,
                    label="samples" if b == 0 else None)
        grid = _shared_grid(t2)
        if grid is not None:
            held = _hold_after_last_finite(e2)
            finite = np.isfinite(held)
            cnt = finite.sum(axis=0)
            total = np.where(finite, held, 0.0).sum(axis=0)
            mean = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
            m = np.isfinite(grid) & np.isfinite(mean)
            ax.plot(grid[m], mean[m], color="C3", lw=2.2, label=f"mean of {B}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("time t")
    ax.set_ylabel("energy E")
    ax.set_title("energy along the relaxation" + (f" ({B} samples)" if batched else ""))
    ax.grid(True, alpha=0.3)
    ax.ticklabel_format(axis="y", useOffset=False)
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# confusion matrix
# ---------------------------------------------------------------------------


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    n_classes: int,
    path: PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "confusion matrix",
) -> Figure | pathlib.Path:
    """Heatmap of the confusion counts, numbers written in the cells, accuracy in the title.

    Rows are true classes, columns predicted classes; cell ``(i, j)`` counts the samples of
    class ``i`` predicted as ``j``.

    Args:
        y_true: ``(N,)`` integer labels in ``[0, n_classes)``.
        y_pred: ``(N,)`` integer predictions in ``[0, n_classes)``.
        n_classes: number of classes (a positive integer).
        path: where to write the figure, or None to return it.
        class_names: optional ``n_classes`` tick labels (default ``0 … n_classes-1``).
        title: what the matrix shows; the title adds the accuracy to it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``y_true``/``y_pred`` not 1-D, empty, non-integer, of different lengths
            or out of range; ``n_classes`` not a positive integer; ``class_names`` of the
            wrong length.
    """
    n_classes = _positive_int(n_classes, "n_classes")
    yt = _as_int_labels(y_true, "y_true")
    yp = _as_int_labels(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.shape[0]} labels but y_pred has {yp.shape[0]}; they must match")
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"{name} has labels in [{y.min()}, {y.max()}], outside [0, n_classes={n_classes})"
            )
    if class_names is None:
        names = [str(i) for i in range(n_classes)]
    else:
        if isinstance(class_names, str):
            raise ValueError("class_names must be a sequence of names, not a single string")
        names = [str(c) for c in class_names]
        if len(names) != n_classes:
            raise ValueError(f"class_names has {len(names)} names but n_classes={n_classes}")

    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (yt, yp), 1)
    n = yt.size
    acc = float(np.trace(counts)) / n

    side = float(np.clip(0.55 * n_classes + 2.2, 3.8, 12.0))
    fig = _new_figure(side + 0.8, side)
    ax = fig.add_subplot()
    im = ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1), interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label("count")
    fontsize = float(np.clip(110.0 / max(n_classes, 1), 5.0, 11.0))
    if n_classes <= 40:
        thresh = counts.max() / 2.0
        for i in range(n_classes):
            for j in range(n_classes):
                c = counts[i, j]
                ax.text(j, i, str(c), ha="center", va="center", fontsize=fontsize,
                        color="white" if c > thresh else "black")
    ticks = np.arange(n_classes)
    if n_classes <= 40:
        ax.set_xticks(ticks, names, rotation=45 if max(map(len, names)) > 3 else 0,
                      ha="right" if max(map(len, names)) > 3 else "center")
        ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} — accuracy {100 * acc:.2f}% ({int(np.trace(counts))}/{n})")
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# Kuramoto order parameter
# ---------------------------------------------------------------------------


def order_parameter_values(sigmas: Any) -> np.ndarray:
    """Global order parameter ``R(t) = |(1/n) Σ_i σ_i(t)|`` of oscillators on a sphere.

    ``R = 1`` when all oscillators are aligned and ``R = 0`` when their mean vanishes (e.g.
    antipodal pairs). For unit vectors ``R`` lies in ``[0, 1]``; the result is clipped to
    that interval to absorb rounding. Times with any non-finite entry (e.g. past a
    steady-state event, where Diffrax reports ``inf``) give ``nan``.

    Args:
        sigmas: ``(T, n, D)`` oscillator states over time, unit vectors along the last axis.

    Returns:
        ``(T,)`` float64 array of ``R(t)``.

    Raises:
        ValueError: ``sigmas`` is not 3-D or has an empty axis.
    """
    s = _as_float(sigmas, "sigmas")
    _check_ndim(s, "sigmas", (3,), "(T, n, D): time, oscillator, sphere coordinate")
    if 0 in s.shape:
        raise ValueError(f"sigmas has an empty axis (shape {s.shape}); need T, n, D >= 1")
    finite = np.all(np.isfinite(s), axis=(1, 2))
    safe = np.where(np.isfinite(s), s, 0.0)
    r = np.linalg.norm(safe.mean(axis=1), axis=-1)
    r = np.clip(r, 0.0, 1.0)
    return np.where(finite, r, np.nan)


def order_parameter(ts: Any, sigmas: Any, path: PathLike | None = None) -> Figure | pathlib.Path:
    """Plot the global order parameter ``R(t)`` (see :func:`order_parameter_values`).

    Times where ``ts`` or ``R`` is non-finite (past a steady-state event) are not drawn.

    Args:
        ts: ``(T,)`` times.
        sigmas: ``(T, n, D)`` oscillator states (unit vectors) at ``ts``.
        path: where to write the figure, or None to return it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``ts`` not 1-D or empty; ``sigmas`` not 3-D / empty; their lengths
            differ; no finite point to plot.
    """
    t = _as_float(ts, "ts")
    _check_ndim(t, "ts", (1,), "1-D (T,)")
    _check_nonempty(t, "ts")
    r = order_parameter_values(sigmas)
    if r.shape[0] != t.shape[0]:
        raise ValueError(f"ts has length {t.shape[0]} but sigmas has {r.shape[0]} time points")
    ok = np.isfinite(t) & np.isfinite(r)
    if not ok.any():
        raise ValueError("sigmas: no finite (time, R) pair to plot")
    s = np.asarray(sigmas)
    fig = _new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    ax.plot(t[ok], r[ok], color="C2", lw=1.8, marker="o" if ok.sum() <= 40 else None, ms=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time t")
    ax.set_ylabel("order parameter R(t)")
    ax.set_title(
        rf"$R(t) = |\langle \sigma_i(t) \rangle_i|$  (n={s.shape[1]} oscillators on $S^{{{s.shape[2] - 1}}}$)"
    )
    ax.grid(True, alpha=0.3)
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# heatmaps
# ---------------------------------------------------------------------------


def _heatmap(ax, fig, a: np.ndarray, vmax: float, label: str):
    im = ax.imshow(np.ma.masked_invalid(a), cmap=_DIVERGING, vmin=-vmax, vmax=vmax,
                   interpolation="nearest", aspect="equal" if a.shape[0] == a.shape[1] else "auto")
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label(label)
    return im


def gram_heatmap(sigma: Any, path: PathLike | None = None) -> Figure | pathlib.Path:
    """Heatmap of the Gram matrix ``σ σᵀ`` (pairwise overlaps ``σ_i · σ_j``) of oscillators.

    The diverging colormap is fixed to ``[-1, 1]`` (the range of overlaps of unit vectors),
    so figures are comparable: red = aligned, blue = antipodal, white = orthogonal.

    Args:
        sigma: ``(n, D)`` oscillator states (unit vectors).
        path: where to write the figure, or None to return it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``sigma`` is not 2-D or has an empty axis.
    """
    s = _as_float(sigma, "sigma")
    _check_ndim(s, "sigma", (2,), "2-D (n, D): one unit vector per oscillator")
    if 0 in s.shape:
        raise ValueError(f"sigma has an empty axis (shape {s.shape})")
    gram = s @ s.T
    n = s.shape[0]
    fig = _new_figure(5.2, 4.4)
    ax = fig.add_subplot()
    _heatmap(ax, fig, gram, 1.0, r"$\sigma_i \cdot \sigma_j$")
    ax.set_xlabel("oscillator j")
    ax.set_ylabel("oscillator i")
    ax.set_title(rf"Gram matrix $\sigma\sigma^\top$ (n={n}, D={s.shape[1]})")
    return _finish(fig, path)


def weights_heatmap(w: Any, path: PathLike | None = None, *, title: str = "weights") -> Figure | pathlib.Path:
    """Heatmap of any matrix with a symmetric diverging colour scale ``[-max|w|, max|w|]``.

    Non-finite entries are left blank.

    Args:
        w: ``(rows, cols)`` matrix.
        path: where to write the figure, or None to return it.
        title: figure title.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``w`` is not 2-D or has an empty axis.
    """
    a = _as_float(w, "w")
    _check_ndim(a, "w", (2,), "a 2-D matrix (reshape higher-rank couplings first)")
    if 0 in a.shape:
        raise ValueError(f"w has an empty axis (shape {a.shape})")
    rows, cols = a.shape
    aspect = rows / cols
    width = 5.6
    height = float(np.clip(4.6 * aspect, 2.4, 8.0))
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    vmax = _symmetric_limit(a)
    _heatmap(ax, fig, a, vmax, "value")
    ax.set_xlabel(f"column ({cols})")
    ax.set_ylabel(f"row ({rows})")
    ax.set_title(f"{title}  (max|w| = {vmax:.3g})")
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# singular-value spectra
# ---------------------------------------------------------------------------


def singular_values(matrices: Mapping[str, Any], path: PathLike | None = None) -> Figure | pathlib.Path:
    """Singular-value spectra of several matrices on one log-scale axis.

    Singular values are sorted in decreasing order and plotted against their index
    (1-based). Each legend entry gives the numerical rank (values above
    ``s_max · max(shape) · eps``, NumPy's ``matrix_rank`` tolerance, with the ``eps`` of the
    matrix's own floating dtype: float32 for a float32 JAX array); exact zeros cannot be
    shown on a log axis and are counted in the legend instead. Comparing e.g. a Hopfield
    coupling with the Hopfield–Kuramoto one shows the latter to be a rank-``D`` correction.

    Args:
        matrices: ``{name: (rows, cols) matrix}``, at least one entry.
        path: where to write the figure, or None to return it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``matrices`` empty or not a mapping; an entry not 2-D, empty or with
            non-finite values (``matrices[name]`` is named).
    """
    if not isinstance(matrices, Mapping):
        raise ValueError(f"matrices must be a mapping {{name: matrix}}, got {type(matrices).__name__}")
    if not matrices:
        raise ValueError("matrices is empty: pass at least one {name: matrix}")
    spectra = {}
    for name, m in matrices.items():
        label = f"matrices[{name!r}]"
        a = _as_float(m, label)
        _check_ndim(a, label, (2,), "a 2-D matrix")
        if 0 in a.shape:
            raise ValueError(f"{label} has an empty axis (shape {a.shape})")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{label} has non-finite entries")
        s = np.linalg.svd(a, compute_uv=False)
        # the tolerance follows the precision the matrix was computed in (a float32 JAX
        # array carries rounding errors ~1e-7·s_max that are no rank)
        dtype = np.asarray(m).dtype
        eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else np.finfo(np.float64).eps
        tol = s.max(initial=0.0) * max(a.shape) * max(eps, np.finfo(np.float64).eps)
        spectra[str(name)] = (s, int(np.sum(s > tol)), a.shape)

    fig = _new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    any_positive = False
    for k, (name, (s, rank, shape)) in enumerate(spectra.items()):
        idx = np.arange(1, s.size + 1)
        pos = s > 0
        any_positive |= bool(pos.any())
        zeros = int((~pos).sum())
        extra = f", {zeros} zero" if zeros else ""
        ax.plot(idx[pos], s[pos], marker="o" if s.size <= 64 else ".", ms=3.5 if s.size <= 64 else 2,
                lw=1.2, color=f"C{k % 10}",
                label=f"{name} {shape[0]}×{shape[1]} (rank {rank}{extra})")
    if any_positive:
        ax.set_yscale("log")
    ax.set_xlabel("index k")
    ax.set_ylabel(r"singular value $s_k$")
    ax.set_title("singular-value spectra")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# image grid
# ---------------------------------------------------------------------------


def images_grid(
    images: Any,
    shape: Sequence[int],
    path: PathLike | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
) -> Figure | pathlib.Path:
    """Show flat images (e.g. stored patterns and their recalls) in a grid.

    All images share one grey scale (the global finite min/max), so patterns in ``{-1, 1}``
    or ``[0, 1]`` are shown comparably; non-finite pixels are left blank.

    Args:
        images: ``(N, H*W)`` flat images (or ``(N, H*W*C)`` with ``C`` in 3/4 channels for
            ``shape=(H, W, C)``); a single ``(H*W,)`` image is accepted too.
        shape: ``(H, W)`` or ``(H, W, C)``, the shape of one image.
        path: where to write the figure, or None to return it.
        titles: optional ``N`` titles, one per image.
        ncols: images per row (positive integer).

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``images`` not 1-D/2-D or empty; ``shape`` not 2 or 3 positive integers,
            or its product differs from the image length; ``titles`` of the wrong length;
            ``ncols`` not a positive integer.
    """
    x = _as_float(images, "images")
    _check_ndim(x, "images", (1, 2), "(N, H*W) flat images")
    if x.ndim == 1:
        x = x[None]
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"images is empty (shape {x.shape})")
    try:
        shp = tuple(int(d) for d in shape)
        ok_ints = all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape)
    except TypeError:
        raise ValueError(f"shape must be (H, W) or (H, W, C), got {shape!r}") from None
    if not ok_ints or len(shp) not in (2, 3) or min(shp) < 1 or (len(shp) == 3 and shp[2] not in (3, 4)):
        raise ValueError(f"shape must be (H, W) or (H, W, C) with C in (3, 4), got {shape!r}")
    if math.prod(shp) != x.shape[1]:
        raise ValueError(
            f"shape={shp} holds {math.prod(shp)} pixels but images has {x.shape[1]} per image"
        )
    ncols = _positive_int(ncols, "ncols")
    n = x.shape[0]
    if titles is not None:
        if isinstance(titles, str):
            raise ValueError("titles must be a sequence of strings, not a single string")
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"titles has {len(titles)} entries but images has {n}")

    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    h, w = shp[0], shp[1]
    cell = 1.4
    fig = _new_figure(cols * cell * max(w / h, 0.5), rows * cell * max(h / w, 0.5) + (0.25 * rows if titles else 0))
    finite = x[np.isfinite(x)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k >= n:
            continue
        img = x[k].reshape(shp)
        if len(shp) == 3:
            rgb = (img - vmin) / (vmax - vmin)
            ax.imshow(np.clip(np.nan_to_num(rgb, nan=1.0), 0, 1), interpolation="nearest")
        else:
            ax.imshow(np.ma.masked_invalid(img), cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    return _finish(fig, path)


# ---------------------------------------------------------------------------
# sweeps
# ---------------------------------------------------------------------------


def sweep_heatmap(
    table: Mapping[str, Any], x: str, y: str, value: str, path: PathLike | None = None
) -> Figure | pathlib.Path:
    """Heatmap of a sweep table (:func:`hkjax.sweep.run`): ``value`` averaged over every row
    with the same ``(x, y)`` (e.g. over seeds), on the grid of distinct ``x`` and ``y``.

    Args:
        table: dict of equal-length columns.
        x, y: names of the two parameter columns spanning the grid.
        value: name of the output column to show.
        path: where to write the figure, or None to return it.

    Returns:
        The written :class:`pathlib.Path`, or the Figure when ``path`` is None.

    Raises:
        ValueError: a column is missing, or the columns differ in length.
    """
    for name, col in (("x", x), ("y", y), ("value", value)):
        if col not in table:
            raise ValueError(f"{name}={col!r} is not a column of the table; columns: {sorted(table)}")
    xs, ys = np.asarray(table[x]), np.asarray(table[y])
    vs = _as_float(table[value], "value")
    if not (xs.shape == ys.shape == vs.shape) or xs.ndim != 1:
        raise ValueError("table columns must be 1-d and of equal length")
    if xs.size == 0:
        raise ValueError("table is empty")
    ux, uy = np.unique(xs), np.unique(ys)
    grid = np.full((uy.size, ux.size), np.nan)
    for a, xv in enumerate(ux):
        for b, yv in enumerate(uy):
            sel = (xs == xv) & (ys == yv) & np.isfinite(vs)
            if sel.any():
                grid[b, a] = vs[sel].mean()
    fig = _new_figure(5.8, 4.4)
    ax = fig.add_subplot()
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(ux.size), [f"{v:.3g}" for v in ux], rotation=45 if ux.size > 6 else 0)
    ax.set_yticks(range(uy.size), [f"{v:.3g}" for v in uy])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(f"{value} over {x} × {y}")
    return _finish(fig, path)

"""Batched sweeps: one vmapped computation over a grid of hyperparameters, sharded over
devices.

A sweep evaluates a pure function of one configuration, ``fn(**params) -> dict`` of
scalars, over many configurations at once:

* **continuous** parameters (coupling strength, ``κ_H``, ``κ_K``, ``Ω`` scale, noise
  level, seeds, ...) become the leading axis of one ``jax.vmap``-ed, jit-compiled
  computation. That axis is sharded over ``jax.devices()`` with a one-axis
  :class:`jax.sharding.Mesh` (``"batch"``), so the same code runs on one CPU, several
  GPUs, or (after ``jax.distributed.initialize()`` on every host) several hosts: the
  computation follows the sharding of its inputs;
* **static** parameters that change shapes (``dim``, ``n``, graph degree ``k``) loop in
  Python over compiled variants, one compilation each.

``run`` returns a :class:`Table` (a dict of equal-length NumPy columns: the parameters
and every output), written with :func:`to_csv` / :func:`to_json`; plot one with
:func:`hkjax.plotting.sweep_heatmap`.

Example::

    def evaluate(coupling, seed, *, dim):
        net = ...  # build from the traced scalars (e.g. eqx.tree_at on a template)
        return {"energy": hk.relax(net, state0).energy[-1]}

    table = hk.sweep.run(evaluate, hk.sweep.grid(coupling=np.linspace(0, 1, 8), seed=range(8)),
                         static={"dim": [3, 5]})

The command ``hkjax sweep`` wraps this for the networks of :mod:`hkjax.tasks` (see
``hkjax sweep --help``).

**Sweeps on several GPUs/hosts.** On one machine nothing changes: the mesh covers every
device in ``jax.devices()`` and each holds ``rows / devices`` configurations (a chunk is
padded to a multiple of the device count). On several hosts, start the same program on
every host (one process per host, or per GPU) and call ``jax.distributed.initialize()``
before any other JAX call (its arguments are detected under SLURM, Open MPI and Cloud TPU;
elsewhere pass ``coordinator_address="host0:1234", num_processes=N, process_id=i``), then
make the same ``run`` call: ``jax.devices()`` then lists the devices of every host, so the
mesh spans them all. Every process must pass the same ``params``, ``static`` and ``args``;
each feeds only the rows of its own devices (:func:`jax.make_array_from_callback`) and
receives the whole table (gathered across hosts), so let one process write it
(``if jax.process_index() == 0``). ``hkjax sweep --distributed`` does exactly this. The
results equal those of one process with as many devices (checked with 2 processes × 2 CPU
devices, ``jax_cpu_collectives_implementation="gloo"``).
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._io import atomic_open

__all__ = ["grid", "run", "Table", "to_csv", "to_json", "batch_mesh"]

Table = dict[str, np.ndarray]


def grid(**axes: Sequence) -> dict[str, np.ndarray]:
    """The Cartesian product of the given axes, flattened into equal-length columns.

    Example: ``grid(a=[1, 2], b=[0.1, 0.2, 0.3])`` has 6 rows (``a`` varies slowest).

    Raises:
        ValueError: no axes, or an empty axis.
    """
    if not axes:
        raise ValueError("grid needs at least one axis, e.g. grid(coupling=[0.0, 0.1])")
    values = {}
    for name, v in axes.items():
        a = np.asarray(list(v) if not isinstance(v, np.ndarray) else v)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"grid: axis {name!r} must be a non-empty 1-d sequence, got shape {a.shape}")
        values[name] = a
    mesh = np.meshgrid(*values.values(), indexing="ij")
    return {name: m.reshape(-1) for name, m in zip(values, mesh)}


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"batch"`` over ``devices`` (default: all of them)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("batch",))


def _columns(params: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    if not params:
        raise ValueError("params is empty; build it with hk.sweep.grid(name=[...], ...)")
    cols = {k: np.asarray(v) for k, v in params.items()}
    lengths = {k: (c.shape[0] if c.ndim else None) for k, c in cols.items()}
    bad = [k for k, n in lengths.items() if n is None]
    if bad:
        raise ValueError(f"params {bad} are scalars; every parameter needs one value per configuration")
    if len(set(lengths.values())) != 1:
        raise ValueError(f"params have different lengths {lengths}; use hk.sweep.grid for a product")
    return cols


@functools.lru_cache(maxsize=32)
def _batched(fn: Callable, fixed: tuple, with_args: bool):
    """The jit-compiled, vmapped ``fn`` for one static combination. Cached, so that calling
    :func:`run` again with the same ``fn`` reuses the compiled program instead of tracing and
    compiling it anew (jit caches per function object)."""
    fixed = dict(fixed)

    def one(p, shared):
        out = fn(shared, **p, **fixed) if with_args else fn(**p, **fixed)
        if not isinstance(out, Mapping):
            raise ValueError(f"fn must return a dict of scalars, got {type(out).__name__}")
        out = {k: jnp.asarray(v) for k, v in out.items()}
        shapes = {k: v.shape for k, v in out.items() if v.shape != ()}
        if shapes:
            raise ValueError(f"fn must return scalars; got shapes {shapes}")
        return out

    return eqx.filter_jit(jax.vmap(one, in_axes=(0, None)))


def run(
    fn: Callable[..., Mapping[str, jax.Array]],
    params: Mapping[str, Sequence],
    *,
    static: Mapping[str, Sequence] | None = None,
    args=None,
    devices: Sequence[jax.Device] | None = None,
    shard: bool = True,
    chunk_size: int | None = None,
    progress: bool = False,
) -> Table:
    """Evaluate ``fn`` over every configuration, vmapped and sharded.

    Arguments:
        fn: ``fn(**continuous, **static) -> {name: scalar}`` (``fn(args, **continuous,
            **static)`` when ``args`` is given); pure JAX in the continuous parameters (they
            arrive as traced scalars), Python values for the static ones.
        params: continuous parameters, equal-length 1-d columns (see :func:`grid`).
        static: shape-changing parameters; every combination (Cartesian product) is
            compiled once and run over all of ``params``.
        args: a pytree shared by every configuration (e.g. a template network), passed to
            ``fn`` as a jit argument, replicated and not batched. Pass large arrays this way
            rather than closing over them: closed-over arrays are baked into the compiled
            program as constants, which is slow to compile and to run.
        devices: devices to shard over (default ``jax.devices()``).
        shard: ``False`` runs on the default device only (for comparison).
        chunk_size: evaluate at most this many configurations at once (memory bound). Every
            chunk is padded to the same size, a multiple of the device count, so one
            compiled program serves them all.
        progress: show a progress bar over chunks.

    Returns:
        A :class:`Table`: one row per (static combination × configuration), with the
        parameter columns, the static columns and every output of ``fn``.

    Raises:
        ValueError: malformed ``params`` / ``static``, or ``fn`` returning non-scalars.
    """
    cols = _columns(params)
    num = next(iter(cols.values())).shape[0]
    static = dict(static or {})
    for k, v in static.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
            raise ValueError(f"static[{k!r}] must be a non-empty list of values, e.g. [3, 5]")
        if k in cols:
            raise ValueError(f"{k!r} is both a continuous and a static parameter")
    mesh = batch_mesh(devices) if shard else None
    ndev = mesh.devices.size if mesh is not None else 1
    chunk = num if chunk_size is None else max(1, int(chunk_size))
    chunk = ndev * math.ceil(chunk / ndev)
    combos = list(itertools.product(*static.values())) if static else [()]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(combos) * math.ceil(num / chunk), desc="sweep", unit="chunk")
    rows: list[Table] = []
    for combo in combos:
        fixed = dict(zip(static, combo))
        key = (fn, tuple(fixed.items()), args is not None)
        try:
            hash(key)
        except TypeError:  # unhashable static values: compile for this call only
            batched = _batched.__wrapped__(*key)
        else:
            batched = _batched(*key)
        sharding = NamedSharding(mesh, PartitionSpec("batch")) if mesh is not None else None
        outs: dict[str, list[np.ndarray]] = {}
        for start in range(0, num, chunk):
            sl = {k: c[start : start + chunk] for k, c in cols.items()}
            size = next(iter(sl.values())).shape[0]
            pad = min(chunk, ndev * math.ceil(num / ndev)) - size
            if pad:  # repeat the last configuration; the padded rows are dropped below
                sl = {k: np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) for k, c in sl.items()}
            if sharding is not None:
                sl = {k: _put(c, sharding) for k, c in sl.items()}
            res = batched(sl, args)
            for k, v in res.items():
                outs.setdefault(k, []).append(_fetch(v)[:size])
            if bar is not None:
                bar.update(1)
        block = {k: c.copy() for k, c in cols.items()}
        for k, v in fixed.items():
            block[k] = np.full(num, v)
        block.update({k: np.concatenate(v) for k, v in outs.items()})
        rows.append(block)
    if bar is not None:
        bar.close()
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def _put(column: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """``column`` laid out by ``sharding``; every process (host) holds the whole column and
    hands over the rows of its own devices (no cross-host transfer or equality check)."""
    return jax.make_array_from_callback(column.shape, sharding, lambda index: column[index])


def _fetch(x: jax.Array) -> np.ndarray:
    """All rows of an output on this process: across hosts, gathered from the others."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _atomic_write(path: Path, text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def to_csv(table: Table, path) -> Path:
    """Write a sweep table as CSV (atomically); returns the path."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    keys = list(table)
    w.writerow(keys)
    for row in zip(*(np.asarray(table[k]).tolist() for k in keys)):
        w.writerow(row)
    return _atomic_write(Path(path), buf.getvalue())


def to_json(table: Table, path) -> Path:
    """Write a sweep table as JSON records (atomically); returns the path."""
    keys = list(table)
    records = [dict(zip(keys, row)) for row in zip(*(np.asarray(table[k]).tolist() for k in keys))]
    return _atomic_write(Path(path), json.dumps(records, indent=1))

"""``fit``: train a network on a task with Optax, through :func:`hkjax.relax`.

One training step (``eqx.filter_jit``): draw the step's batch and per-example keys from
``(key, step)`` with :func:`jax.random.fold_in`, relax every example (``vmap``), average the
task's loss, differentiate it with ``eqx.filter_value_and_grad`` (Diffrax's recursive
checkpoint adjoint), and apply the Optax update to the *trainable* leaves only.

Because nothing depends on a stateful iterator, a run that is interrupted and resumed from
a checkpoint ends bit-identical (on the same machine / backend) to one that was not.

The training data are an *argument* of the compiled sampler (never a constant baked into
the program); whatever a task must precompute from them (e.g. the cue pools of memory
editing) is done once by ``task.prepare`` before compiling.

**Parameter averaging** (``ema > 0``): an exponential moving average of the trainable
parameters, ``ē_s = d_s ē_{s−1} + (1 − d_s) θ_s`` after update ``s`` (``ē_0 = θ_0``) with
the warm-up ``d_s = min(ema, (1 + s) / (10 + s))``, is what evaluations use and what
:func:`fit` returns as ``model`` (Polyak / EMA averaging; the optimiser keeps updating ``θ``).

**Data parallel** over several devices (``devices``, default ``jax.devices()``): a one-axis
:class:`jax.sharding.Mesh` named ``"batch"`` over the devices; the parameters, optimiser
state, key and training data are replicated on every device, each step's batch is split
over them along its first axis, and XLA partitions the compiled step and reduces the
gradients (and, for a batch relaxed as one system, the solver's error norm) across devices.
The arithmetic is that of one device up to float round-off. After
``jax.distributed.initialize()`` on every host, ``jax.devices()`` lists the devices of all
hosts and the same call trains on all of them; process 0 alone writes the metrics and the
checkpoints.

Checkpoints (``checkpoint_dir/ckpt_<step>.hkjax``, via :func:`hkjax.checkpoint.save_step`,
never pickle) hold ``{"model", "opt_state", "step", "key"}`` (``model``: the optimiser's
iterate ``θ``) plus ``"ema"`` (the averaged model) when ``ema > 0``; the config (a JSON-able
dict) goes into the metadata.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import checkpoint as _ckpt
from ._io import atomic_open

__all__ = ["FitResult", "fit", "evaluate", "batch_mesh", "make_optimizer", "trainable_filter", "ema_decay", "constant_steps", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "adamw", "lion", "sgd")


def make_optimizer(
    name: str = "adam",
    *,
    learning_rate: float = 3e-3,
    steps: int = 1000,
    decay: float = 0.1,
    weight_decay: float = 0.0,
    clip: float | None = 1.0,
) -> optax.GradientTransformation:
    """An Optax optimiser with an exponential learning-rate decay from ``learning_rate`` to
    ``decay · learning_rate`` over ``steps`` (``decay=1``: constant), as in the paper
    (which uses Lion). ``clip``: global gradient-norm clipping (``None``: off).

    Arguments:
        name: one of ``OPTIMIZERS``: ``"adam"``, ``"adamw"``, ``"lion"``, ``"sgd"`` (momentum 0.9).
        learning_rate: the initial learning rate.
        steps: the number of updates over which the rate decays.
        decay: the final rate as a fraction of ``learning_rate``, in ``(0, 1]``.
        weight_decay: decoupled weight decay (``"adamw"`` and ``"lion"`` only).
        clip: the global gradient-norm bound, or ``None``.

    Returns:
        An ``optax.GradientTransformation``.

    Raises:
        ValueError: unknown ``name``, a non-positive ``learning_rate`` or a ``decay``
            outside ``(0, 1]``.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is unknown; choose one of {OPTIMIZERS}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate} must be positive")
    if not 0 < decay <= 1:
        raise ValueError(f"lr decay={decay} must be in (0, 1]")
    schedule = optax.exponential_decay(learning_rate, transition_steps=max(1, steps), decay_rate=decay)
    if name == "adam":
        opt = optax.adam(schedule)
    elif name == "adamw":
        opt = optax.adamw(schedule, weight_decay=weight_decay)
    elif name == "lion":
        opt = optax.lion(schedule, weight_decay=weight_decay)
    else:
        opt = optax.sgd(schedule, momentum=0.9)
    if clip is not None:
        opt = optax.chain(optax.clip_by_global_norm(clip), opt)
    return opt


def trainable_filter(model, trainable=None):
    """The boolean pytree of leaves to train: floating-point arrays of ``model``, restricted by
    ``trainable`` (``None``: all of them; a pytree of bools with ``model``'s structure, a
    prefix of it, or a callable ``leaf -> bool``).

    Raises:
        ValueError: a ``trainable`` tree that does not match ``model``'s structure.
    """
    base = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    if trainable is None:
        return base
    if callable(trainable) and not isinstance(trainable, eqx.Module):
        user = jax.tree_util.tree_map(trainable, model)
    else:
        user = trainable
    try:
        # broadcast a prefix tree of bools to the full structure
        user = jax.tree_util.tree_map(
            lambda u, sub: jax.tree_util.tree_map(lambda _: bool(u), sub), user, model,
            is_leaf=lambda x: isinstance(x, bool),
        )
    except ValueError as e:
        raise ValueError(f"trainable does not match the model's structure: {e}") from None
    return jax.tree_util.tree_map(lambda a, b: bool(a) and bool(b), base, user)


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model: the parameter average when ``ema > 0`` (what the
            evaluations used), else the optimiser's iterate.
        opt_state: the final optimiser state.
        step: the number of steps done.
        history: the metric rows (one dict per logged step / evaluation), as in the JSONL log.
        wall_time: seconds spent in this call.
        raw_model: the optimiser's iterate (the same as ``model`` when ``ema == 0``).
        evaluations: the evaluations of ``model`` at the last step, ``{split name:
            evaluate(...) output}`` with the predictions and targets, so that a caller need
            not solve the split again; empty when there was no ``eval_data`` or training
            stopped before ``steps`` (``stop_after``, ``time_limit``).
    """

    model: Any
    opt_state: Any
    step: int
    history: list
    wall_time: float
    raw_model: Any = None
    evaluations: dict = dataclasses.field(default_factory=dict)


def _batched(task, network, batch, keys, microbatch=None, shared_steps=False):
    if shared_steps:  # one solve of the whole batch (hkjax.relax_batch)
        return task.batch_loss(network, batch, keys)
    if microbatch:  # a few examples at a time: the batched intermediates stay micro-batch-sized
        return jax.lax.map(lambda a: task.example_loss(network, *a), (batch, keys), batch_size=microbatch)
    return jax.vmap(task.example_loss, in_axes=(None, 0, 0))(network, batch, keys)


@eqx.filter_jit
def _eval_chunk(model, task, batch, keys):
    loss, (pred, tgt) = jax.vmap(task.eval_loss, in_axes=(None, 0, 0))(model, batch, keys)
    return loss, pred, tgt


@eqx.filter_jit
def _train_step(params, frozen, opt_state, batch, k, task, optimizer, microbatch=None, shared_steps=False):
    # Module level (compiled once per task / optimizer / shapes); the frozen arrays travel as
    # an argument, not as closed-over constants.
    keys = jax.random.split(k, jax.tree_util.tree_leaves(batch)[0].shape[0])

    def loss_fn(p):
        loss, (pred, tgt) = _batched(task, eqx.combine(p, frozen), batch, keys, microbatch, shared_steps)
        return jnp.mean(loss), jnp.mean(pred == tgt)

    (loss, acc), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss, acc


def constant_steps(task) -> bool:
    """Whether ``task`` relaxes every example with a fixed number of constant steps
    (``task.relax_config.steps > 0``): then a batch solved as one system
    (:func:`hkjax.relax_batch`) takes exactly the steps each of its examples would take alone,
    and :func:`fit` uses it by default."""
    steps = getattr(getattr(task, "relax_config", None), "steps", 0)
    return isinstance(steps, int) and steps > 0


def ema_decay(step, ema: float):
    """The decay ``d_s = min(ema, (1 + s) / (10 + s))`` of the parameter average after update
    ``s = step`` (1-based): the warm-up keeps the initial parameters from dominating early on.
    ``ema`` is the asymptotic decay (``Config.ema``)."""
    return jnp.minimum(ema, (1.0 + step) / (10.0 + step))


@eqx.filter_jit
def _ema_step(avg, params, step, ema):
    d = ema_decay(step, ema)  # step: a traced float32 scalar (one compile for the run)
    return jax.tree_util.tree_map(lambda a, p: (d * a + (1 - d) * p).astype(a.dtype), avg, params)


@eqx.filter_jit
def _sample(task, arrays, key, batch_size):
    # The data are traced arguments (not constants of the compiled program); batch_size and
    # the task's static configuration are static.
    return task.sample(arrays, key, batch_size)


def batch_mesh(devices: Sequence[jax.Device] | None = None, batch_size: int | None = None) -> Mesh | None:
    """The one-axis mesh (``"batch"``) that :func:`fit` splits batches over: ``devices``
    (default ``jax.devices()``, every device of every host), or ``None`` for a single device
    (nothing is sharded).

    Arguments:
        devices: the devices to split each batch over.
        batch_size: checked to be a multiple of the number of devices.

    Raises:
        ValueError: no devices, or a ``batch_size`` the devices do not divide.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices=[] names no device; pass None (all of jax.devices()) or a list of devices")
    if len(devices) == 1:
        return None
    if batch_size is not None and batch_size % len(devices):
        n = len(devices)
        raise ValueError(f"batch_size={batch_size} must be a multiple of the {n} devices each batch is split "
                         f"over; use batch_size={-(-batch_size // n) * n}, or pass devices=... (e.g. "
                         f"jax.devices()[:1] for one device)")
    return Mesh(np.asarray(devices), ("batch",))


def _put(tree, sharding: NamedSharding):
    """``tree``'s arrays laid out by ``sharding``. Within one process, :func:`jax.device_put`;
    across hosts, each process holds the whole value and hands over the parts on its own
    devices (no cross-host transfer)."""
    def put(x):
        if not eqx.is_array(x):
            return x
        if isinstance(x, jax.Array) and not x.is_fully_addressable:  # already spans the hosts
            return _reshard(x, sharding)
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


@functools.partial(jax.jit, static_argnums=1)
def _reshard(tree, sharding: NamedSharding):
    """``tree`` (e.g. a batch replicated on every device) laid out by ``sharding``, on the
    devices (compiled: it also reshards arrays that span several hosts)."""
    return jax.lax.with_sharding_constraint(tree, sharding)


def _host(x) -> np.ndarray:
    """``x`` as a NumPy array on every process (gathered from all hosts when it is split over them)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _eval_examples(task, arrays: dict, key):
    """``(batch, keys)``: the examples :func:`evaluate` solves for the split ``arrays`` with
    ``key`` (``task.eval_batch``) and the PRNG key of each."""
    batch = task.eval_batch(task.prepare(arrays), jax.random.fold_in(key, 0))
    n = int(jax.tree_util.tree_leaves(batch)[0].shape[0])
    return batch, jax.random.split(jax.random.fold_in(key, 1), n)


#: ``evaluate``'s default chunk per device, by platform (others: 512). On a CPU a ``vmap`` of a
#: few dozen solves runs faster per example than one of hundreds (``benchmarks/eval_chunk.py``);
#: an accelerator wants many examples at once.
EVAL_CHUNK = {"cpu": 32}


def evaluate(model, task, arrays: dict, *, key, chunk: int | None = None,
             devices: Sequence[jax.Device] | None = None, progress: bool = False,
             desc: str = "evaluate") -> dict:
    """Loss and accuracy of ``model`` on the task's full evaluation set of ``arrays``, per
    example with ``task.eval_loss`` (``example_loss`` unless the task does test-time
    augmentation).

    Arguments:
        model: the network to evaluate.
        task: a task (:class:`~hkjax.Classification`, ...) whose ``eval_batch`` builds the set.
        arrays: the split, ``{"images", "labels"}`` as from :mod:`hkjax.data`.
        key: PRNG key (oscillator initialisation and rotations, cue images); the same key
            gives the same result.
        chunk: examples per compiled batch (bounds the memory of the batched solve);
            ``None``: :data:`EVAL_CHUNK` per device (32 on a CPU, 512 on an accelerator).
            Every chunk is compiled at one size, the last padded with copies of its last
            example.
        devices: split each chunk over these devices (see :func:`batch_mesh`); ``None``:
            the devices ``model`` is replicated on (those :func:`fit` trained it on), else
            the default device. The result does not depend on it beyond float round-off.
        progress, desc: show a tqdm progress bar of the examples evaluated, labelled
            ``desc`` (the first chunk's count includes its compilation).

    Returns:
        ``{"loss", "accuracy", "predictions", "targets"}`` (the last two as NumPy arrays).
    """
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk={chunk} must be a positive number of examples (None: the platform's default)")
    batch, keys = _eval_examples(task, arrays, key)
    n = int(keys.shape[0])
    if n == 0:
        raise ValueError("arrays: the split has no examples; pass at least one image and label")

    if devices is None:  # where the model lives: e.g. replicated by a data-parallel fit
        leaf = next((x for x in jax.tree_util.tree_leaves(model) if isinstance(x, jax.Array)), None)
        sharding = getattr(leaf, "sharding", None)
        devices = list(sharding.mesh.devices.flat) if isinstance(sharding, NamedSharding) else None
    mesh = None if devices is None else batch_mesh(devices)
    if mesh is not None:
        model = _put(model, NamedSharding(mesh, PartitionSpec()))
    if chunk is None:
        devs = list(mesh.devices.flat) if mesh is not None else jax.devices()[:1]
        chunk = len(devs) * EVAL_CHUNK.get(devs[0].platform, 512)
    from tqdm.auto import tqdm

    size = min(chunk, n)  # one compiled size: at most the split, a multiple of the devices
    if mesh is not None:
        size += -size % mesh.devices.size
    losses, preds, tgts = [], [], []
    with tqdm(total=n, desc=desc, unit="ex", dynamic_ncols=True, leave=False, disable=not progress) as bar:
        for s in range(0, n, size):
            sl, ks = jax.tree_util.tree_map(lambda a: a[s : s + size], (batch, keys))
            m = int(ks.shape[0])
            if m < size:  # the last chunk, padded with copies of its last example
                sl, ks = jax.tree_util.tree_map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], size - m, axis=0)]), (sl, ks))
            if mesh is not None:
                sl, ks = _put((sl, ks), NamedSharding(mesh, PartitionSpec("batch")))
            loss, pred, tgt = _eval_chunk(model, task, sl, ks)
            losses.append(_host(loss)[:m]), preds.append(_host(pred)[:m]), tgts.append(_host(tgt)[:m])
            bar.update(m)
    loss, pred, tgt = np.concatenate(losses), np.concatenate(preds), np.concatenate(tgts)
    return {
        "loss": float(np.mean(loss)),
        "accuracy": float(np.mean(pred == tgt)),
        "predictions": pred,
        "targets": tgt,
    }


def _eval_splits(eval_data) -> dict:
    """``fit``'s ``eval_data`` as ``{split name: arrays}``: one split's arrays (a mapping of
    array-likes) become ``{"eval": arrays}``; a mapping of mappings is taken as named splits."""
    if eval_data is None:
        return {}
    if not isinstance(eval_data, Mapping) or not eval_data:
        raise ValueError("eval_data must be a split's arrays ({'images', 'labels'}) or a mapping of split names "
                         f"to such arrays, got {type(eval_data).__name__}")
    named = [isinstance(v, Mapping) for v in eval_data.values()]
    if all(named):
        if "train" in eval_data:
            raise ValueError("eval_data: 'train' names the training rows of the metrics log; call the split "
                             "something else (e.g. 'val')")
        return dict(eval_data)
    if any(named):
        raise ValueError("eval_data mixes arrays and named splits; pass one split's arrays or "
                         "{name: arrays} for every split")
    return {"eval": eval_data}


def _restore_metrics(path: pathlib.Path, step: int, rewrite: bool = True) -> list:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= step:
                rows.append(row)
        if not rewrite:
            return rows
        with atomic_open(path, "w") as f:  # a crash here must not lose the log
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _strong_types(model, spec):
    """``model`` with its trainable arrays made strongly typed. A weakly typed leaf (e.g.
    ``jnp.asarray(1.0)``) comes back from the optimizer's update strongly typed, and the
    compiled step would compile again for the changed type on the second step."""
    def strong(leaf, train):
        if train and eqx.is_array(leaf) and getattr(leaf, "weak_type", False):
            return jnp.asarray(leaf, leaf.dtype)
        return leaf

    return jax.tree_util.tree_map(strong, model, spec)


def fit(
    model,
    task,
    data: dict,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    batch_size: int = 32,
    microbatch: int | None = None,
    shared_steps: bool | None = None,
    trainable=None,
    key,
    devices: Sequence[jax.Device] | None = None,
    ema: float = 0.0,
    eval_data: dict | None = None,
    eval_every: int = 0,
    eval_key=None,
    log_every: int = 10,
    checkpoint_dir=None,
    checkpoint_every: int = 0,
    resume: bool = False,
    metrics_path=None,
    config: dict | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    time_limit: float | None = None,
    callback: Callable[[dict], None] | None = None,
    eval_task=None,
) -> FitResult:
    """Train ``model`` on ``task`` with ``optimizer`` for ``steps`` steps.

    Arguments:
        model: an Equinox model (an :class:`hkjax.Network`).
        task: a task from :mod:`hkjax.tasks` (``sample``, ``eval_batch``, ``example_loss``).
        data: the training arrays, ``{"images": (N, P), "labels": (N,)}``.
        optimizer: any Optax ``GradientTransformation`` (see :func:`make_optimizer`).
        steps: total number of steps (also when resuming: training continues up to it).
        batch_size: examples per step.
        microbatch: differentiate the batch this many examples at a time
            (``jax.lax.map`` with ``batch_size``) instead of all at once (``vmap``): the
            same mean loss and gradient (up to float round-off), with the batched
            intermediates of the backward pass — the per-example ``n × n`` arrays of dense
            Kuramoto terms — micro-batch-sized. Lowers peak memory; on a CPU it can cost
            time (``benchmarks/train_step.py``). ``None``: the whole batch at once.
        shared_steps: relax each batch as one ODE system with shared adaptive steps
            (:func:`hkjax.relax_batch`: every example within the tolerances, the batch as
            slow as its slowest example) instead of one solve per example: the backward
            pass then sums the parameter cotangents over the batch at every step instead of
            carrying one per example: faster, less memory and a faster compile (see
            :func:`hkjax.relax_batch` for measurements). Results differ from per-example
            solves at the level of the solver tolerance (with constant steps, see
            :func:`constant_steps`, they are the same computation up to float round-off).
            Not with ``microbatch``. ``None`` (default): shared unless ``microbatch`` is
            given — the fast path (``benchmarks/train_step.py``, ``benchmarks/digits_step.py``).
            ``False``: one solve per example (``vmap``), each with its own adaptive steps:
            the per-example semantics, at the cost of a per-example copy of every parameter
            cotangent in the backward pass.
        trainable: which leaves to train (see :func:`trainable_filter`); the others stay
            bit-identical. Used to freeze the Hopfield classifier in memory editing.
        key: PRNG key (keyword only); step ``s`` uses ``fold_in(key, s)``.
        devices: train data-parallel on these devices (see the module docstring and
            :func:`batch_mesh`): each batch is split over them, everything else is
            replicated. ``None`` (default): all of ``jax.devices()``, i.e. every GPU of the
            machine and, after ``jax.distributed.initialize()``, of every host; on one device
            nothing is sharded. ``batch_size`` must be a multiple of their number.
        ema: decay of the exponential moving average of the trainable parameters used for
            evaluation and returned as ``model`` (0: off; e.g. 0.99). See the module docstring.
        eval_data, eval_every: evaluate on ``eval_data`` every ``eval_every`` steps and at the
            end (0: only at the end; no ``eval_data``: never). ``eval_data`` is one split's
            arrays (its rows are logged with ``"split": "eval"``) or a mapping of split names
            to arrays, e.g. ``{"eval": test, "val": validation}`` (one row per split, in
            that order, with its name as ``"split"``).
        eval_task: the task the evaluations use (``None``: ``task``), e.g. ``task`` relaxed
            with finer steps than training's.
        eval_key: PRNG key of the evaluations (oscillator initialisation, cue images), the
            same at every evaluation so that they compare; pass the key a later
            :func:`evaluate` of the returned model uses, and ``evaluations`` holds its
            result. ``None``: derived from ``key``.
        log_every: write a metrics row every ``log_every`` steps.
        checkpoint_dir, checkpoint_every: save a checkpoint every ``checkpoint_every`` steps
            and at the end (0: only at the end); ``None``: no checkpoints.
        resume: continue from the newest checkpoint in ``checkpoint_dir`` (if any). Without
            it, a ``checkpoint_dir`` that already holds checkpoints is refused (a fresh run
            would overwrite them, and a shorter one would leave a stale newest checkpoint).
        metrics_path: JSONL file of metric rows (``None``: no file). Rows:
            ``{"step", "split": "train", "loss", "accuracy", "seconds"}`` (means over the last
            ``log_every`` steps) and ``{"step", "split": "eval" (or the split's name), "loss",
            "accuracy"}``. On
            resume, rows past the checkpoint's step are dropped.
        config: a JSON-serialisable dict stored in every checkpoint's metadata.
        progress: show a tqdm progress bar with loss and accuracy.
        stop_after: stop (as if interrupted) once this step is reached; for tests and
            time-boxed runs. A ``KeyboardInterrupt`` also saves a checkpoint before it
            propagates.
        time_limit: stop (as with ``stop_after``: a checkpoint is saved, ``resume=True``
            continues up to ``steps``) after the first step that ends this many seconds after
            training started; for runs that must fit a job's or a lease's wall time. The
            returned :attr:`FitResult.step` says how far it got. ``None``: no limit.
        callback: called with every metrics row.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: non-positive ``steps`` / ``batch_size``, a ``trainable`` that does not
            match the model, ``checkpoint_dir`` holding checkpoints without ``resume``, or
            a ``batch_size`` that is not a multiple of the number of ``devices``.
        hkjax.checkpoint.CheckpointError: a checkpoint that does not match this model.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    if microbatch is not None and (not isinstance(microbatch, int) or microbatch < 1):
        raise ValueError(f"microbatch={microbatch!r} must be a positive integer or None (the whole batch)")
    if shared_steps and microbatch is not None:
        raise ValueError("shared_steps=True solves the whole batch at once; it does not combine with microbatch")
    if shared_steps is None:
        shared_steps = microbatch is None
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))
                                   or not time_limit > 0):
        raise ValueError(f"time_limit={time_limit!r} must be a positive number of seconds (None: no limit)")
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
        raise ValueError(f"ema={ema!r} must be a number in [0, 1) (0: no parameter averaging)")
    splits = _eval_splits(eval_data)
    mesh = batch_mesh(devices, batch_size)
    lead = jax.process_index() == 0  # the process that writes files (all of them compute)
    t_start = time.time()
    spec = trainable_filter(model, trainable)
    model = _strong_types(model, spec)
    params, static = eqx.partition(model, spec)
    opt_state = optimizer.init(params)
    avg = params if ema > 0 else None
    step = 0
    ckdir = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir)
    if ckdir is not None and not resume and _ckpt.latest(ckdir) is not None:
        raise ValueError(
            f"checkpoint_dir={str(ckdir)!r} already holds checkpoints of another run; pass resume=True "
            "to continue it, or choose an empty directory (nothing was changed)"
        )
    mpath = None if metrics_path is None else pathlib.Path(metrics_path)
    history: list = []

    if resume and ckdir is not None:
        last = _ckpt.latest(ckdir)
        if last is not None:
            like = {"model": model, "opt_state": opt_state, "step": jnp.asarray(0), "key": key}
            if ema > 0:
                like["ema"] = model
            tree, _ = _ckpt.load(last, like)
            model, opt_state, step = tree["model"], tree["opt_state"], int(tree["step"])
            key = tree["key"]
            params, static = eqx.partition(model, spec)
            if ema > 0:
                avg, _ = eqx.partition(tree["ema"], spec)
            if mpath is not None:
                history = _restore_metrics(mpath, step, rewrite=lead)
    elif mpath is not None and mpath.exists() and lead:
        mpath.unlink()
    if mpath is not None:
        mpath.parent.mkdir(parents=True, exist_ok=True)

    # Precompute (NumPy, once) what sampling needs, then hand the data to the compiled
    # sampler as an argument.
    train_data = jax.tree_util.tree_map(jnp.asarray, task.prepare({k: np.asarray(v) for k, v in data.items()}))
    split = None
    eval_task = task if eval_task is None else eval_task
    if mesh is not None:  # data parallel: everything replicated but each step's batch
        replicated, split = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("batch"))
        params, static, opt_state, avg, key, train_data, task, eval_task = _put(
            (params, static, opt_state, avg, key, train_data, task, eval_task), replicated)  # a task may hold arrays

    def eval_model():
        return eqx.combine(avg if ema > 0 else params, static)

    def write(row):
        history.append(row)
        if mpath is not None and lead:
            with open(mpath, "a") as f:
                f.write(json.dumps(row) + "\n")
        if callback is not None:
            callback(row)

    def save():
        if ckdir is None or not lead:
            return
        tree = {"model": eqx.combine(params, static), "opt_state": opt_state, "step": jnp.asarray(step), "key": key}
        if ema > 0:
            tree["ema"] = eval_model()
        _ckpt.save_step(ckdir, step, tree, metadata={"config": config or {}})

    def run_eval():
        model_now, evs = eval_model(), {}
        k = jax.random.fold_in(key, -1 % 2**31) if eval_key is None else eval_key
        for name, arrays in splits.items():
            evs[name] = ev = evaluate(model_now, eval_task, arrays, key=k,
                                      progress=bool(progress and lead),
                                      desc="evaluate" if name == "eval" else f"evaluate {name}")  # on the mesh
            write({"step": step, "split": name, "loss": ev["loss"], "accuracy": ev["accuracy"]})
        return evs

    bar = None
    if progress and lead:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=step, desc="train", dynamic_ncols=True, leave=False)
    last = stop_after if stop_after is not None else steps
    last = min(last, steps)
    run_loss = run_acc = 0.0
    run_n = 0
    t_log = time.time()

    def log_train():  # the metrics row of the steps since the last one
        nonlocal run_loss, run_acc, run_n, t_log
        now = time.time()
        write({"step": step, "split": "train", "loss": run_loss / run_n, "accuracy": run_acc / run_n,
               "seconds": now - t_log})
        run_loss = run_acc = 0.0
        run_n = 0
        t_log = now

    try:
        while step < last:
            k = jax.random.fold_in(key, step)
            batch = _sample(task, train_data, jax.random.fold_in(k, 0), batch_size)
            if split is not None:
                batch = _reshard(batch, split)
            params, opt_state, loss, acc, step = (
                *_train_step(params, static, opt_state, batch, jax.random.fold_in(k, 1), task, optimizer,
                             microbatch, bool(shared_steps)),
                step + 1,
            )
            if ema > 0:
                avg = _ema_step(avg, params, np.asarray(step, np.float32), float(ema))
            loss, acc = float(loss), float(acc)
            run_loss, run_acc, run_n = run_loss + loss, run_acc + acc, run_n + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
            if log_every and (step % log_every == 0 or step == last):
                log_train()
            if eval_every and step % eval_every == 0 and step < steps:
                run_eval()
            if checkpoint_every and step % checkpoint_every == 0 and step < last:
                save()
            if time_limit is not None and time.time() - t_start >= time_limit and step < last:
                if log_every and run_n:
                    log_train()
                break
    except KeyboardInterrupt:
        save()  # resume with resume=True
        raise
    finally:
        if bar is not None:
            bar.close()
    evaluations = run_eval() if step == steps else {}
    save()
    return FitResult(
        model=eval_model(), opt_state=opt_state, step=step, history=history,
        wall_time=time.time() - t_start, raw_model=eqx.combine(params, static), evaluations=evaluations,
    )

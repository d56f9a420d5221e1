"""``fit``: train a network on a task with Optax, through :func:`hkjax.relax`.

One training step (``eqx.filter_jit``): draw the step's batch and per-example keys from
``(key, step)`` with :func:`jax.random.fold_in`, relax every example (``vmap``), average the
task's loss, differentiate it with ``eqx.filter_value_and_grad`` (Diffrax's recursive
checkpoint adjoint), and apply the Optax update to the *trainable* leaves only.

Because nothing depends on a stateful iterator, a run that is interrupted and resumed from
a checkpoint ends bit-identical (on the same machine / backend) to one that was not.

Checkpoints (``checkpoint_dir/ckpt_<step>.hkjax``, via :func:`hkjax.checkpoint.save_step`,
never pickle) hold ``{"model", "opt_state", "step", "key"}``; the config (a JSON-able dict)
goes into the metadata.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import checkpoint as _ckpt
from ._io import atomic_open

__all__ = ["FitResult", "fit", "evaluate", "make_optimizer", "trainable_filter", "OPTIMIZERS"]

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

    Raises:
        ValueError: unknown ``name`` or a non-positive rate / step count.
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
    prefix of it, or a callable ``leaf -> bool``)."""
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
        model: the trained model.
        opt_state: the final optimiser state.
        step: the number of steps done.
        history: the metric rows (one dict per logged step / evaluation), as in the JSONL log.
        wall_time: seconds spent in this call.
    """

    model: Any
    opt_state: Any
    step: int
    history: list
    wall_time: float


def _batched(task, network, batch, keys):
    return jax.vmap(task.example_loss, in_axes=(None, 0, 0))(network, batch, keys)


@eqx.filter_jit
def _eval_chunk(model, task, batch, keys):
    loss, (pred, tgt) = _batched(task, model, batch, keys)
    return loss, pred, tgt


@eqx.filter_jit
def _train_step(params, frozen, opt_state, batch, k, task, optimizer):
    # Module level (compiled once per task / optimizer / shapes); the frozen arrays travel as
    # an argument, not as closed-over constants.
    keys = jax.random.split(k, jax.tree_util.tree_leaves(batch)[0].shape[0])

    def loss_fn(p):
        loss, (pred, tgt) = _batched(task, eqx.combine(p, frozen), batch, keys)
        return jnp.mean(loss), jnp.mean(pred == tgt)

    (loss, acc), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss, acc


def evaluate(model, task, arrays: dict, *, key, chunk: int = 512) -> dict:
    """Loss and accuracy of ``model`` on the task's full evaluation set of ``arrays``.

    Returns ``{"loss", "accuracy", "predictions", "targets"}`` (the last two as NumPy arrays).
    """
    batch = task.eval_batch(arrays, jax.random.fold_in(key, 0))
    n = int(jax.tree_util.tree_leaves(batch)[0].shape[0])
    keys = jax.random.split(jax.random.fold_in(key, 1), n)

    losses, preds, tgts = [], [], []
    for s in range(0, n, chunk):
        sl = jax.tree_util.tree_map(lambda a: a[s : s + chunk], batch)
        loss, pred, tgt = _eval_chunk(model, task, sl, keys[s : s + chunk])
        losses.append(np.asarray(loss)), preds.append(np.asarray(pred)), tgts.append(np.asarray(tgt))
    loss, pred, tgt = np.concatenate(losses), np.concatenate(preds), np.concatenate(tgts)
    return {
        "loss": float(np.mean(loss)),
        "accuracy": float(np.mean(pred == tgt)),
        "predictions": pred,
        "targets": tgt,
    }


def _restore_metrics(path: pathlib.Path, step: int) -> list:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= step:
                rows.append(row)
        with atomic_open(path, "w") as f:  # a crash here must not lose the log
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def fit(
    model,
    task,
    data: dict,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    batch_size: int = 32,
    trainable=None,
    key,
    eval_data: dict | None = None,
    eval_every: int = 0,
    log_every: int = 10,
    checkpoint_dir=None,
    checkpoint_every: int = 0,
    resume: bool = False,
    metrics_path=None,
    config: dict | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    callback: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``task`` with ``optimizer`` for ``steps`` steps.

    Arguments:
        model: an Equinox model (an :class:`hkjax.Network`).
        task: a task from :mod:`hkjax.tasks` (``sample``, ``eval_batch``, ``example_loss``).
        data: the training arrays, ``{"images": (N, P), "labels": (N,)}``.
        optimizer: any Optax ``GradientTransformation`` (see :func:`make_optimizer`).
        steps: total number of steps (also when resuming: training continues up to it).
        batch_size: examples per step.
        trainable: which leaves to train (see :func:`trainable_filter`); the others stay
            bit-identical. Used to freeze the Hopfield classifier in memory editing.
        key: PRNG key (keyword only); step ``s`` uses ``fold_in(key, s)``.
        eval_data, eval_every: evaluate on ``eval_data`` every ``eval_every`` steps and at the
            end (0: only at the end; no ``eval_data``: never).
        log_every: write a metrics row every ``log_every`` steps.
        checkpoint_dir, checkpoint_every: save a checkpoint every ``checkpoint_every`` steps
            and at the end (0: only at the end); ``None``: no checkpoints.
        resume: continue from the newest checkpoint in ``checkpoint_dir`` (if any).
        metrics_path: JSONL file of metric rows (``None``: no file). Rows:
            ``{"step", "split": "train", "loss", "accuracy", "seconds"}`` (means over the last
            ``log_every`` steps) and ``{"step", "split": "eval", "loss", "accuracy"}``. On
            resume, rows past the checkpoint's step are dropped.
        config: a JSON-serialisable dict stored in every checkpoint's metadata.
        progress: show a tqdm progress bar with loss and accuracy.
        stop_after: stop (as if interrupted) once this step is reached; for tests and
            time-boxed runs. A ``KeyboardInterrupt`` also saves a checkpoint before it
            propagates.
        callback: called with every metrics row.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: non-positive ``steps`` / ``batch_size``, or a ``trainable`` that does not
            match the model.
        hkjax.checkpoint.CheckpointError: a checkpoint that does not match this model.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    t_start = time.time()
    spec = trainable_filter(model, trainable)
    params, static = eqx.partition(model, spec)
    opt_state = optimizer.init(params)
    step = 0
    ckdir = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir)
    mpath = None if metrics_path is None else pathlib.Path(metrics_path)
    history: list = []

    if resume and ckdir is not None:
        last = _ckpt.latest(ckdir)
        if last is not None:
            like = {"model": model, "opt_state": opt_state, "step": jnp.asarray(0), "key": key}
            tree, _ = _ckpt.load(last, like)
            model, opt_state, step = tree["model"], tree["opt_state"], int(tree["step"])
            key = tree["key"]
            params, static = eqx.partition(model, spec)
            if mpath is not None:
                history = _restore_metrics(mpath, step)
    elif mpath is not None and mpath.exists():
        mpath.unlink()
    if mpath is not None:
        mpath.parent.mkdir(parents=True, exist_ok=True)

    np_data = {k: np.asarray(v) for k, v in data.items()}
    sample = jax.jit(lambda k: task.sample(np_data, k, batch_size))

    def write(row):
        history.append(row)
        if mpath is not None:
            with open(mpath, "a") as f:
                f.write(json.dumps(row) + "\n")
        if callback is not None:
            callback(row)

    def save():
        if ckdir is None:
            return
        tree = {"model": eqx.combine(params, static), "opt_state": opt_state, "step": jnp.asarray(step), "key": key}
        _ckpt.save_step(ckdir, step, tree, metadata={"config": config or {}})

    def run_eval():
        if eval_data is None:
            return
        ev = evaluate(eqx.combine(params, static), task, eval_data, key=jax.random.fold_in(key, -1 % 2**31))
        write({"step": step, "split": "eval", "loss": ev["loss"], "accuracy": ev["accuracy"]})

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=step, desc="train", dynamic_ncols=True, leave=False)
    last = stop_after if stop_after is not None else steps
    last = min(last, steps)
    run_loss = run_acc = 0.0
    run_n = 0
    t_log = time.time()
    try:
        while step < last:
            k = jax.random.fold_in(key, step)
            batch = sample(jax.random.fold_in(k, 0))
            params, opt_state, loss, acc, step = (
                *_train_step(params, static, opt_state, batch, jax.random.fold_in(k, 1), task, optimizer),
                step + 1,
            )
            loss, acc = float(loss), float(acc)
            run_loss, run_acc, run_n = run_loss + loss, run_acc + acc, run_n + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
            if log_every and (step % log_every == 0 or step == last):
                now = time.time()
                write({
                    "step": step, "split": "train", "loss": run_loss / run_n,
                    "accuracy": run_acc / run_n, "seconds": now - t_log,
                })
                run_loss = run_acc = 0.0
                run_n = 0
                t_log = now
            if eval_every and step % eval_every == 0 and step < steps:
                run_eval()
            if checkpoint_every and step % checkpoint_every == 0 and step < last:
                save()
    except KeyboardInterrupt:
        save()  # resume with resume=True
        raise
    finally:
        if bar is not None:
            bar.close()
    if step == steps:
        run_eval()
    save()
    return FitResult(
        model=eqx.combine(params, static), opt_state=opt_state, step=step, history=history,
        wall_time=time.time() - t_start,
    )

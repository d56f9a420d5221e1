"""Tests for hkjax.train: loss goes down, exact resumption, frozen leaves, optimisers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hkjax import checkpoint, data, tasks, train

# Training runs in JAX's default float32 (as the CLI does).
JAX_ENABLE_X64 = False

N_TRAIN = 200


@pytest.fixture(scope="module")
def arrays():
    tr, te = data.load_digits("train"), data.load_digits("test")
    return (
        {"images": tr.images[:N_TRAIN], "labels": tr.labels[:N_TRAIN]},
        {"images": te.images[:64], "labels": te.labels[:64]},
    )


def _task(model="hopfield", n_hidden=8, **kw):
    return tasks.Classification(
        model=model, n_pixels=64, n_hidden=n_hidden, n_classes=10, dim=3,
        relax_config=tasks.RelaxConfig(max_steps=16), **kw,
    )


def _leaves_equal(a, b) -> bool:
    la = [x for x in jax.tree_util.tree_leaves(a) if eqx.is_array(x)]
    lb = [x for x in jax.tree_util.tree_leaves(b) if eqx.is_array(x)]
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if x.dtype != y.dtype or not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


def test_fit_reduces_the_loss(arrays, tmp_path):
    tr, te = arrays
    task = _task()
    net = task.build(jax.random.key(0))
    before = train.evaluate(net, task, te, key=jax.random.key(9))
    res = train.fit(
        net, task, tr, optimizer=train.make_optimizer("adam", learning_rate=1e-2, steps=40), steps=40,
        batch_size=16, key=jax.random.key(1), eval_data=te, eval_every=20, log_every=10,
        metrics_path=tmp_path / "metrics.jsonl", progress=False,
    )
    after = train.evaluate(res.model, task, te, key=jax.random.key(9))
    assert res.step == 40
    assert after["loss"] < 0.8 * before["loss"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [10, 20, 30, 40]
    assert [r["step"] for r in rows if r["split"] == "eval"] == [20, 40]
    assert rows == res.history
    assert all(np.isfinite(r["loss"]) and 0 <= r["accuracy"] <= 1 for r in rows)


def test_fit_evaluates_named_splits(arrays, monkeypatch):
    """``eval_data={"eval": ..., "val": ...}``: one row per split at every evaluation, each
    equal to ``evaluate`` of the trained model on that split, the last ones returned whole
    (``evaluations``); ``eval_key`` is the key they use, and a fit stopped early returns none."""
    tr, te = arrays
    task = _task()
    net = task.build(jax.random.key(0))
    val = {k: v[-64:] for k, v in tr.items()}  # as many rows as `te`: one compiled evaluation serves both
    res = train.fit(net, task, tr, optimizer=optax.adam(1e-2), steps=4, batch_size=8, key=jax.random.key(1),
                    eval_data={"eval": te, "val": val}, eval_every=2, log_every=0, progress=False)
    assert [(r["step"], r["split"]) for r in res.history] == [(2, "eval"), (2, "val"), (4, "eval"), (4, "val")]
    key = jax.random.fold_in(jax.random.key(1), -1 % 2**31)
    for name, split in (("eval", te), ("val", val)):
        ev = train.evaluate(res.model, task, split, key=key)
        assert [r for r in res.history if r["split"] == name][-1]["loss"] == pytest.approx(ev["loss"])
        np.testing.assert_array_equal(res.evaluations[name]["predictions"], ev["predictions"])
        assert res.evaluations[name]["loss"] == pytest.approx(ev["loss"])
    assert res.history[-1]["loss"] != pytest.approx(res.history[-2]["loss"])  # two different splits
    kw = dict(optimizer=optax.adam(1e-2), steps=4, batch_size=8, key=jax.random.key(1), eval_data={"val": val},
              log_every=0, progress=False)
    keys, evaluate = [], train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, key, **kw: keys.append(key) or evaluate(*a, key=key, **kw))
    keyed = train.fit(net, task, tr, eval_key=jax.random.key(3), **kw)
    assert len(keys) == 1 and jax.random.key_data(keys[0]).tolist() == jax.random.key_data(jax.random.key(3)).tolist()
    assert keyed.evaluations["val"]["loss"] == keyed.history[-1]["loss"]
    assert train.fit(net, task, tr, stop_after=2, **kw).evaluations == {}
    # eval_task: the evaluations relax as it says (here one Euler step), not as training does
    coarse = dataclasses.replace(task, relax_config=tasks.RelaxConfig(solver="euler", steps=1))
    other = train.fit(net, task, tr, eval_task=coarse, eval_key=jax.random.key(3), **kw)
    assert other.evaluations["val"]["loss"] == pytest.approx(
        evaluate(other.model, coarse, val, key=jax.random.key(3))["loss"])
    assert other.evaluations["val"]["loss"] != pytest.approx(keyed.evaluations["val"]["loss"])
    bad = [(({"eval": te, "train": val}), "'train' names"), ({"eval": te, "labels": te["labels"]}, "mixes"), ([], "mapping")]
    for eval_data, match in bad:
        with pytest.raises(ValueError, match=match):
            train.fit(net, task, tr, optimizer=optax.adam(1e-2), steps=1, key=jax.random.key(1), eval_data=eval_data,
                      progress=False)


def test_evaluate_shows_its_progress_and_returns_the_same(arrays, capsys):
    """``progress=True`` draws a bar labelled ``desc`` on stderr; the evaluation is the same."""
    _, te = arrays
    task = _task()
    net = task.build(jax.random.key(0))
    quiet = train.evaluate(net, task, te, key=jax.random.key(2))
    shown = train.evaluate(net, task, te, key=jax.random.key(2), progress=True, desc="evaluate val")
    assert "evaluate val" in capsys.readouterr().err
    np.testing.assert_array_equal(shown["predictions"], quiet["predictions"])
    assert shown["loss"] == quiet["loss"]


def test_evaluate_compiles_one_chunk_size_and_its_result_does_not_depend_on_it(arrays, monkeypatch):
    """Every chunk is solved at one size (the platform's default, 32 on a CPU; the last chunk
    padded with copies of its last example, which are dropped), and the predictions and loss
    are those of any other chunk size; a chunk below one example is refused, and so is an empty split."""
    _, te = arrays
    te = {k: v[:45] for k, v in te.items()}  # one full chunk of 32 and a padded one of 13
    task = _task()
    net = task.build(jax.random.key(0))
    sizes, chunk_fn = [], train._eval_chunk
    monkeypatch.setattr(train, "_eval_chunk", lambda m, t, b, k: sizes.append(int(k.shape[0])) or chunk_fn(m, t, b, k))
    default = train.evaluate(net, task, te, key=jax.random.key(2))
    assert train.EVAL_CHUNK["cpu"] == 32 and sizes == [32, 32]
    assert len(default["predictions"]) == len(default["targets"]) == 45
    sizes.clear()
    whole = train.evaluate(net, task, te, key=jax.random.key(2), chunk=1000)  # at most the split
    assert sizes == [45]
    np.testing.assert_array_equal(whole["predictions"], default["predictions"])
    np.testing.assert_array_equal(whole["targets"], default["targets"])
    assert whole["loss"] == pytest.approx(default["loss"], rel=1e-5)
    with pytest.raises(ValueError, match="chunk=0"):
        train.evaluate(net, task, te, key=jax.random.key(2), chunk=0)
    with pytest.raises(ValueError, match="arrays: the split has no examples"):
        train.evaluate(net, task, {k: v[:0] for k, v in te.items()}, key=jax.random.key(2))


#: One optimizer object for both cases below: the compiled training step (the optimizer is
#: one of its static arguments) serves both.
LION = train.make_optimizer("lion", learning_rate=1e-3, steps=6)


def test_a_time_limit_stops_with_a_checkpoint_and_a_resumed_run_is_bit_identical(arrays, tmp_path):
    """A run past its time limit stops after the step in progress, logs the steps since the
    last metrics row and saves a checkpoint; resuming it without the limit gives the bits
    of the run that was never stopped."""
    tr, _ = arrays
    task = _task("kuramoto", n_hidden=4)
    net = task.build(jax.random.key(0), k=4)
    kw = dict(optimizer=LION, steps=6, batch_size=4, key=jax.random.key(5), progress=False, log_every=4)
    full = train.fit(net, task, tr, checkpoint_dir=tmp_path / "a", **kw)
    part = train.fit(net, task, tr, checkpoint_dir=tmp_path / "b", time_limit=1e-9, metrics_path=tmp_path / "b.jsonl",
                     **kw)
    assert part.step == 1  # the first step always ends past a nanosecond
    assert checkpoint.latest(tmp_path / "b").name == "ckpt_00000001.hkjax"
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows] == [(1, "train")]
    resumed = train.fit(net, task, tr, checkpoint_dir=tmp_path / "b", resume=True, metrics_path=tmp_path / "b.jsonl", **kw)
    assert resumed.step == 6
    assert _leaves_equal(resumed.raw_model, full.raw_model)
    for bad in (0, -1.0, True, "10"):
        with pytest.raises(ValueError, match="time_limit"):
            train.fit(net, task, tr, time_limit=bad, **kw)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_interrupted_and_resumed_run_is_bit_identical(arrays, tmp_path, ema):
    """Stop after 3 of 6 steps, resume from the checkpoint: the same bits as 6 straight steps
    (the oscillator model, so random rotations and initial oscillators are exercised), also
    for the parameter average (``ema``), which the checkpoints carry."""
    tr, _ = arrays
    task = _task("kuramoto", n_hidden=4)
    net = task.build(jax.random.key(0), k=4)
    kw = dict(
        optimizer=LION, steps=6, batch_size=4,
        key=jax.random.key(5), checkpoint_every=1, progress=False, config={"seed": 5}, ema=ema,
    )
    full = train.fit(net, task, tr, checkpoint_dir=tmp_path / "a", **kw)
    part = train.fit(net, task, tr, checkpoint_dir=tmp_path / "b", stop_after=3, metrics_path=tmp_path / "b.jsonl", **kw)
    assert part.step == 3
    assert checkpoint.latest(tmp_path / "b").name == "ckpt_00000003.hkjax"
    # a fresh run (no resume) into a directory holding checkpoints is refused, untouched
    metrics = (tmp_path / "b.jsonl").read_bytes()
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train.fit(net, task, tr, checkpoint_dir=tmp_path / "b", metrics_path=tmp_path / "b.jsonl", **kw)
    assert (tmp_path / "b.jsonl").read_bytes() == metrics
    assert [q.name for q in sorted((tmp_path / "b").iterdir())][-1] == "ckpt_00000003.hkjax"
    resumed = train.fit(net, task, tr, checkpoint_dir=tmp_path / "b", resume=True, metrics_path=tmp_path / "b.jsonl", **kw)
    assert resumed.step == 6
    assert not _leaves_equal(part.model, full.model)
    assert _leaves_equal(resumed.model, full.model)
    assert _leaves_equal(resumed.raw_model, full.raw_model)
    assert _leaves_equal(resumed.opt_state, full.opt_state)
    assert _leaves_equal(full.model, full.raw_model) == (ema == 0)
    # the checkpoints hold model, optimizer state, step, key and config (and the average)
    like = {"model": net, "opt_state": full.opt_state, "step": jnp.asarray(0), "key": jax.random.key(0)}
    if ema:
        like["ema"] = net
    tree, meta = checkpoint.load(checkpoint.latest(tmp_path / "b"), like)
    assert int(tree["step"]) == 6 and meta["config"] == {"seed": 5}
    assert _leaves_equal(tree["model"], full.raw_model)
    if ema:
        assert _leaves_equal(tree["ema"], full.model)
    assert np.array_equal(jax.random.key_data(tree["key"]), jax.random.key_data(jax.random.key(5)))
    steps = [json.loads(line)["step"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 6


def test_ema_is_the_exponential_average_of_the_iterates(arrays):
    """``model`` of an ``ema`` run equals ``ē_s = d_s ē_{s−1} + (1 − d_s) θ_s`` with
    ``d_s = min(ema, (1 + s)/(10 + s))`` and ``ē_0 = θ_0``, recomputed here from the iterates
    ``θ_s`` (read off runs stopped after ``s`` steps), and evaluations use it."""
    tr, te = arrays
    task = _task(n_hidden=4)
    net = task.build(jax.random.key(0))
    ema, n = 0.3, 4
    kw = dict(optimizer=optax.adam(1e-2), steps=n, batch_size=8, key=jax.random.key(3), progress=False, ema=ema)
    thetas = [net] + [train.fit(net, task, tr, stop_after=s, **kw).raw_model for s in range(1, n + 1)]
    res = train.fit(net, task, tr, eval_data=te, **kw)
    assert _leaves_equal(res.raw_model, thetas[-1])
    decays = [min(ema, (1 + s) / (10 + s)) for s in range(1, n + 1)]
    assert decays[-1] == ema and decays[0] < ema  # the warm-up and the plateau are both exercised
    expect = [np.asarray(w, np.float64) for w in tasks.hopfield_parameters(thetas[0])]
    for s, d in enumerate(decays, start=1):
        expect = [d * e + (1 - d) * np.asarray(t) for e, t in zip(expect, tasks.hopfield_parameters(thetas[s]))]
    for got, want in zip(tasks.hopfield_parameters(res.model), expect):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(tasks.hopfield_parameters(res.model)[0], tasks.hopfield_parameters(res.raw_model)[0])
    # the final evaluation row is the averaged model's
    ev = train.evaluate(res.model, task, te, key=jax.random.fold_in(jax.random.key(3), -1 % 2**31))
    assert res.history[-1]["split"] == "eval" and res.history[-1]["loss"] == pytest.approx(ev["loss"])
    np.testing.assert_allclose(float(train.ema_decay(jnp.asarray(1.0), 0.99)), 2 / 11, rtol=1e-6)
    with pytest.raises(ValueError, match="ema"):
        train.fit(net, task, tr, optimizer=optax.adam(1e-3), steps=1, key=jax.random.key(0), ema=1.0)


def test_the_sampler_takes_the_data_as_an_argument(arrays, monkeypatch):
    """Two fits on different data of the same shape share one trace of the sampler (the data
    are an argument, not a constant compiled into it), and each samples its own data."""
    tr, _ = arrays
    traces = []
    original = tasks.Classification.sample

    def counting(self, arrs, key, batch_size):
        traces.append(1)
        return original(self, arrs, key, batch_size)

    monkeypatch.setattr(tasks.Classification, "sample", counting)
    task = _task(n_hidden=4, shift=1)
    net = task.build(jax.random.key(0))
    kw = dict(optimizer=optax.adam(1e-2), steps=2, batch_size=4, key=jax.random.key(1), progress=False)
    a = train.fit(net, task, tr, **kw)
    flipped = {"images": -np.asarray(tr["images"]), "labels": np.asarray(tr["labels"])}
    b = train.fit(net, task, flipped, **kw)
    assert len(traces) == 1  # a closed-over dataset would be traced (and compiled) once per fit
    assert not _leaves_equal(a.model, b.model)  # the second fit did see the flipped images
    batch = train._sample(task, flipped, jax.random.key(7), 4)
    ref = train._sample(task, tr, jax.random.key(7), 4)
    np.testing.assert_array_equal(np.asarray(batch["images"]), -np.asarray(ref["images"]))


def test_the_training_step_compiles_once(arrays, monkeypatch):
    """Steps after the first reuse the compiled step: the per-example loss (called inside
    the jitted step) is traced once for the whole run, also across a second fit."""
    tr, _ = arrays
    task = _task(n_hidden=4)
    counted = eqx.debug.assert_max_traces(tasks.Classification.example_loss, max_traces=1)
    monkeypatch.setattr(tasks.Classification, "example_loss", lambda self, *a: counted(self, *a))
    net = task.build(jax.random.key(0))
    kw = dict(optimizer=optax.adam(1e-2), batch_size=4, key=jax.random.key(1), progress=False)
    res = train.fit(net, task, tr, steps=6, **kw)
    train.fit(res.model, task, tr, steps=3, **kw)  # new parameter values, same compiled step
    assert res.step == 6


def test_a_weakly_typed_parameter_does_not_recompile_the_step(arrays, caplog):
    """A trainable leaf made from a Python number (``jnp.asarray(0.5)``: weakly typed) comes
    back from the optimizer strongly typed; the training step still compiles once, and the
    leaf trains."""
    tr, _ = arrays
    task = _task(model="hopfield_kuramoto", n_hidden=3)
    net = task.build(jax.random.key(0), k=2, coupling="multiplicative")
    assert [leaf.dtype for leaf in jax.tree_util.tree_leaves(net) if eqx.is_array(leaf) and leaf.ndim == 0] \
        == [jnp.float32]  # the network's own scalar (the coupling's strength) is strongly typed
    net = jax.tree_util.tree_map(lambda a: jnp.asarray(0.5) if eqx.is_array(a) and a.ndim == 0 else a, net)
    with jax.log_compiles(), caplog.at_level("WARNING"):
        res = train.fit(net, task, tr, optimizer=optax.adam(1e-2), steps=3, batch_size=2,
                        key=jax.random.key(1), progress=False)
    compiled = [r for r in caplog.records if "compilation of jit(_train_step)" in r.getMessage()]
    assert len(compiled) == 1
    trained = [leaf for leaf in jax.tree_util.tree_leaves(res.model) if eqx.is_array(leaf) and leaf.ndim == 0]
    assert float(trained[0]) != 0.5


def test_microbatches_give_the_same_gradient(arrays):
    """Differentiating the batch 3 examples at a time (8 = 3 + 3 + 2) gives the same mean
    loss and gradient as all at once (to float32 round-off, relative to the gradient's size),
    and ``fit`` accepts the option."""
    tr, _ = arrays
    task = _task(n_hidden=4)
    net = task.build(jax.random.key(0))
    batch = train._sample(task, tr, jax.random.key(3), 8)
    keys = jax.random.split(jax.random.key(4), 8)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def grad(micro):
        def loss(p):
            return jnp.mean(train._batched(task, eqx.combine(p, static), batch, keys, micro)[0])

        return eqx.filter_jit(jax.value_and_grad(loss))(params)

    (l_all, g_all), (l_mb, g_mb) = grad(None), grad(3)
    np.testing.assert_allclose(float(l_mb), float(l_all), rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_all), jax.tree_util.tree_leaves(g_mb)):
        scale = float(np.max(np.abs(np.asarray(a))))
        assert scale > 0
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-4 * scale)
    kw = dict(optimizer=optax.sgd(0.1), steps=2, batch_size=8, key=jax.random.key(1), progress=False)
    assert train.fit(net, task, tr, microbatch=3, **kw).step == 2
    with pytest.raises(ValueError, match="microbatch"):
        train.fit(net, task, tr, microbatch=0, **kw)


def test_shared_steps_give_the_per_example_loss_and_gradient(arrays):
    """``shared_steps`` (one solve of the whole batch, ``hk.relax_batch``) gives the loss and
    gradient of per-example solves: to float32 round-off with constant steps (the same
    steps either way), and with adaptive steps at tight tolerances to 1 % (0.2 % measured at
    rtol = 1e-6; the two take different steps; at the default rtol = 1e-3 their gradients
    differ by ~4 %, as two step sequences' discretise-then-optimise gradients do); ``fit``
    refuses it together with ``microbatch`` (``tests/test_cli.py`` trains with it)."""
    tr, _ = arrays
    batch = None
    tight = tasks.RelaxConfig(max_steps=64, rtol=1e-6, atol=1e-8)
    for relax_config, tol in ((tasks.RelaxConfig(steps=4), 1e-5), (tight, 1e-2)):
        task = tasks.Classification(model="hopfield_kuramoto", n_pixels=64, n_hidden=4, n_classes=10, dim=3,
                                    relax_config=relax_config)
        net = task.build(jax.random.key(0), k=4, init_scale=0.1)
        batch = train._sample(task, tr, jax.random.key(3), 6)
        keys = jax.random.split(jax.random.key(4), 6)
        params, static = eqx.partition(net, eqx.is_inexact_array)

        def grad(shared, task=task, static=static, batch=batch, keys=keys):
            def loss(p):
                return jnp.mean(train._batched(task, eqx.combine(p, static), batch, keys, None, shared)[0])

            return eqx.filter_jit(jax.value_and_grad(loss))(params)

        (l_one, g_one), (l_all, g_all) = grad(False), grad(True)
        np.testing.assert_allclose(float(l_all), float(l_one), rtol=tol)
        a, b = (np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)]) for g in (g_one, g_all))
        assert np.linalg.norm(b - a) <= tol * np.linalg.norm(a)
    kw = dict(optimizer=optax.sgd(0.1), steps=2, batch_size=6, key=jax.random.key(1), progress=False)
    with pytest.raises(ValueError, match="microbatch"):
        train.fit(net, task, tr, shared_steps=True, microbatch=2, **kw)


def test_shared_steps_are_the_default_without_microbatch(arrays, monkeypatch):
    """``fit(shared_steps=None)`` (the default) solves each batch as one system, with constant
    or adaptive steps, unless a ``microbatch`` is asked for; an explicit ``True`` / ``False``
    is obeyed. The choice is read off the first call of the training step, stopped there
    before anything is compiled (fits above run both kinds of step)."""
    tr, _ = arrays
    seen = []

    class Chosen(Exception):
        pass

    def spy(*args):
        seen.append(args[8])
        raise Chosen

    monkeypatch.setattr(train, "_train_step", spy)
    kw = dict(optimizer=optax.sgd(0.1), steps=1, batch_size=4, key=jax.random.key(1), progress=False)
    cases = [
        (tasks.RelaxConfig(steps=2), {}, True),
        (tasks.RelaxConfig(steps=2), {"microbatch": 2}, False),
        (tasks.RelaxConfig(max_steps=8), {}, True),
        (tasks.RelaxConfig(max_steps=8), {"shared_steps": False}, False),
    ]
    for relax_config, extra, shared in cases:
        task = tasks.Classification(model="hopfield", n_pixels=64, n_hidden=2, n_classes=10, dim=2,
                                    relax_config=relax_config)
        assert train.constant_steps(task) is (relax_config.steps > 0)
        seen.clear()
        with pytest.raises(Chosen):
            train.fit(task.build(jax.random.key(0)), task, tr, **kw, **extra)
        assert seen == [shared], (relax_config, extra)


def test_frozen_leaves_stay_bit_identical(arrays):
    tr, _ = arrays
    clf = tasks.build_network("hopfield", n=64 + 4 + 10, key=jax.random.key(0))
    w, b = tasks.hopfield_parameters(clf)
    mapping = tuple(int(m) for m in tasks.edit_map("swap", [0, 1]))
    task = tasks.MemoryEditing(
        model="hopfield_kuramoto", n_pixels=64, n_hidden=4, n_classes=10, dim=3,
        relax_config=tasks.RelaxConfig(max_steps=16), mapping=mapping, associative=True,
    )
    for coupling in ("multiplicative",):  # the Hopfield synapse wrapped inside the coupling
        net = task.build(jax.random.key(1), k=4, coupling=coupling, hopfield_weights=w, hopfield_bias=b, kuramoto_graph=False)
        # One Adam step already moves the trained leaves (by about the learning rate), so one
        # step tells them from the frozen ones.
        res = train.fit(
            net, task, tr, optimizer=optax.adam(1e-2), steps=1, batch_size=4,
            trainable=tasks.freeze_hopfield(net), key=jax.random.key(2), progress=False,
        )
        w2, b2 = tasks.hopfield_parameters(res.model)
        assert np.array_equal(np.asarray(w), np.asarray(w2)) and np.array_equal(np.asarray(b), np.asarray(b2))
        changed = [
            not np.array_equal(np.asarray(x), np.asarray(y))
            for x, y in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(res.model))
            if eqx.is_inexact_array(x)
        ]
        assert any(changed), coupling


def test_trainable_filter_accepts_bools_and_callables():
    net = tasks.build_network("hopfield", n=6, key=jax.random.key(0))
    spec = train.trainable_filter(net)
    assert sum(jax.tree_util.tree_leaves(spec)) == 2  # weights and bias
    none = train.trainable_filter(net, lambda leaf: False)
    assert sum(jax.tree_util.tree_leaves(none)) == 0


@pytest.mark.parametrize("name", train.OPTIMIZERS)
def test_make_optimizer(name):
    opt = train.make_optimizer(name, learning_rate=1e-2, steps=10, weight_decay=1e-4)
    params = {"w": jnp.ones(3)}
    updates, _ = opt.update({"w": jnp.ones(3)}, opt.init(params), params)
    assert np.all(np.asarray(updates["w"]) < 0)


def test_bad_arguments_raise(arrays):
    tr, _ = arrays
    task = _task()
    net = task.build(jax.random.key(0))
    with pytest.raises(ValueError, match="steps"):
        train.fit(net, task, tr, optimizer=optax.adam(1e-3), steps=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(net, task, tr, optimizer=optax.adam(1e-3), steps=1, batch_size=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown"):
        train.make_optimizer("rmsprop")


def test_batch_mesh_checks_the_batch_size():
    assert train.batch_mesh(jax.devices()[:1], 7) is None  # one device: nothing is sharded
    with pytest.raises(ValueError, match="devices=\\[\\]"):
        train.batch_mesh([], 8)
    with pytest.raises(ValueError, match="batch_size=6 must be a multiple of the 4 devices.*batch_size=8"):
        train.batch_mesh(jax.devices()[:1] * 4, 6)


DATA_PARALLEL = textwrap.dedent(
    """
    import json, sys
    import equinox as eqx, jax, jax.numpy as jnp, numpy as np, optax
    sys.path.insert(0, {tests!r})
    from hkjax import checkpoint, data, tasks, train

    assert len(jax.devices()) == 4
    split, reshard = [], train._reshard

    def recording(tree, sharding):  # records the training batches split over the devices
        split.append(str(sharding.spec))
        return reshard(tree, sharding)

    train._reshard = recording
    put = train._put

    def recording_put(tree, sharding):  # records the evaluation chunks split over the devices
        if sharding.spec == jax.sharding.PartitionSpec("batch"):
            split.append("eval")
        return put(tree, sharding)

    train._put = recording_put
    tr = data.load_digits("train")
    tr = {{"images": tr.images[:64], "labels": tr.labels[:64]}}

    def fit(task, devices, **kw):
        net = task.build(jax.random.key(0), k=4)
        kw = dict(optimizer=optax.sgd(0.05), steps=4, batch_size=8, key=jax.random.key(3), progress=False,
                  log_every=1, **kw)
        return train.fit(net, task, tr, devices=devices, **kw)

    def rel(a, b):
        pairs = zip(jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array)),
                    jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array)))
        return max(float(jnp.linalg.norm(x - y) / jnp.linalg.norm(x)) for x, y in pairs)

    def losses(r):
        return [h["loss"] for h in r.history]

    out = {{}}
    # constant solver steps: no step-size decision can differ, so the sharded run is the
    # single-device arithmetic up to the order of the sums
    task = tasks.Classification(model="hopfield", n_pixels=64, n_hidden=8, n_classes=10, dim=3,
                                relax_config=tasks.RelaxConfig(steps=6))
    one, four = fit(task, jax.devices()[:1], eval_data={{"val": tr}}), fit(task, None, eval_data={{"val": tr}})
    out["split"] = [p for p in split if p != "eval"]
    out["val"] = [one.history[-1]["accuracy"], four.history[-1]["accuracy"]]
    n = len(split)  # evaluating the replicated model splits its chunks over the devices too
    again = train.evaluate(four.model, task, {{k: v[:7] for k, v in tr.items()}}, key=jax.random.key(0))
    out["evaluate_split"] = len(split) > n
    out["evaluate_same"] = bool(np.array_equal(again["predictions"], train.evaluate(
        one.model, task, {{k: v[:7] for k, v in tr.items()}}, key=jax.random.key(0))["predictions"]))
    out["replicated"] = [l.sharding.is_fully_replicated for l in jax.tree_util.tree_leaves(eqx.filter(four.model, eqx.is_array))]
    out["n_devices"] = [len(l.sharding.device_set) for l in jax.tree_util.tree_leaves(eqx.filter(four.model, eqx.is_array))]
    out["constant_params"] = rel(one.model, four.model)
    out["constant_losses"] = float(np.max(np.abs(np.subtract(losses(one), losses(four)))))
    out["rows"] = [h["split"] for h in four.history]
    # the default adaptive path, hidden and class oscillators included: the first step's gradient
    task = tasks.Classification(model="hopfield_kuramoto", n_pixels=64, n_hidden=8, n_classes=10, dim=3,
                                relax_config=tasks.RelaxConfig(max_steps=32))
    one, four = fit(task, jax.devices()[:1], stop_after=1), fit(task, None, stop_after=1)
    out["adaptive_params"] = rel(one.model, four.model)
    # a sharded run stopped and resumed ends bit-identical to one that was not
    full = fit(task, None, checkpoint_dir={tmp!r} + "/a")
    fit(task, None, checkpoint_dir={tmp!r} + "/b", stop_after=2)
    resumed = fit(task, None, checkpoint_dir={tmp!r} + "/b", resume=True)
    out["resumed_same"] = all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(
        jax.tree_util.tree_leaves(eqx.filter(full.model, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(resumed.model, eqx.is_array))))
    out["resumed_step"] = resumed.step
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_data_parallel_fit_on_four_devices_equals_one_device(tmp_path):
    """``fit`` over 4 forced host devices: the batch is split over them, the parameters are
    replicated, and losses and parameters equal those of one device to float32 round-off;
    a sharded run that is stopped and resumed ends bit-identical to one that was not."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    code = DATA_PARALLEL.format(tests=os.path.dirname(__file__), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(res["n_devices"]) == {4} and all(res["replicated"])
    assert res["rows"].count("train") == 4 and res["rows"][-1] == "val", res
    assert res["split"] == [str(jax.sharding.PartitionSpec("batch"))] * 4, res  # every training batch
    assert res["val"][0] == res["val"][1], res  # the evaluation, split over the devices
    assert res["evaluate_split"] and res["evaluate_same"], res  # 7 examples: padded to 8
    assert res["constant_losses"] < 1e-5, res
    assert res["constant_params"] < 1e-5, res
    assert res["adaptive_params"] < 1e-5, res
    assert res["resumed_same"] and res["resumed_step"] == 4

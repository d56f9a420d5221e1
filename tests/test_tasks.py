"""Tests for hkjax.tasks: readouts, losses, layouts, edit maps, freezing filters, retrieval."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hkjax as hk
from hkjax import data, tasks

P, H, C, D = 64, 6, 10, 4


def _task(cls=tasks.Classification, model="hopfield_kuramoto", **kw):
    return cls(model=model, n_pixels=P, n_hidden=H, n_classes=C, dim=D, relax_config=tasks.RelaxConfig(max_steps=32), **kw)


def _example(i=0, split="train"):
    ds = data.load_digits(split)
    return {"images": jnp.asarray(ds.images[i]), "labels": jnp.asarray(ds.labels[i])}


# -- loss and readouts ------------------------------------------------------------------


@pytest.mark.parametrize("label", [0, 3, 9])
def test_squared_loss_zero_at_perfect_prediction(label):
    y = data.one_hot_targets(label, C)
    assert float(tasks.squared_loss(y, jnp.asarray(label), C)) == 0.0
    assert float(tasks.squared_loss(jnp.zeros(C), jnp.asarray(label), C)) == pytest.approx(C)
    wrong = data.one_hot_targets((label + 1) % C, C)
    assert float(tasks.squared_loss(wrong, jnp.asarray(label), C)) == pytest.approx(8.0)


def test_threshold_readout_takes_the_class_units():
    x = jnp.arange(P + H + C, dtype=jnp.float32)
    readout = _task(model="hopfield").readout
    assert readout == tasks.Readout("x", units=(-C, None))
    np.testing.assert_array_equal(readout({"x": x}), x[-C:])
    np.testing.assert_array_equal(tasks.Readout("x", units=(P, P + 2))({"x": x.reshape(2, -1)}), x[P:P + 2])
    assert _task(model="hierarchical").readout == tasks.Readout("classes")


def test_oscillator_readout_is_alignment_with_reference():
    n = P + H + C
    e1 = jnp.zeros(D).at[0].set(1.0)
    e2 = jnp.zeros(D).at[1].set(1.0)
    sigma = jnp.tile(e2, (n, 1)).at[P].set(e1)
    sigma = sigma.at[n - C + 3].set(e1).at[n - C + 5].set(-e1)
    readout = _task(model="kuramoto").readout
    assert readout == tasks.Readout("sigma", units=(-C, None), reference=P)
    y = readout({"sigma": sigma})
    expected = np.zeros(C)
    expected[3], expected[5] = 1.0, -1.0
    np.testing.assert_allclose(y, expected)
    # the readout (and hence the loss) is invariant under a global rotation
    rot = data.random_rotation(jax.random.key(3), D)
    y2 = readout({"sigma": data.rotate(sigma, rot)})
    np.testing.assert_allclose(y2, expected, atol=1e-6)


# -- the relaxation's method ------------------------------------------------------------


def test_relax_config_refuses_an_unknown_method_and_euler_without_steps():
    with pytest.raises(ValueError, match="rk45.*tsit5"):
        tasks.RelaxConfig(solver="rk45")
    with pytest.raises(ValueError, match="constant steps"):
        tasks.RelaxConfig(solver="euler")


@eqx.filter_jit
def _solve(rc, net, state0):
    return rc(net, state0).state


def test_euler_steps_leave_the_sphere_by_dt2_f2_unless_projected_and_converge_at_first_order():
    """One Euler step moves each unit oscillator along its tangent velocity f, so its squared
    norm grows by exactly dt²|f|²; projected (the default with Euler) the oscillators stay
    unit vectors, and the error against a tight Tsit5 solve halves as the steps double."""
    task = _task()
    net = task.build(jax.random.key(0), init_scale=0.1)  # the oscillators move (sigma by ~0.5)
    s0 = task.init_state(_example(), jax.random.key(1))
    f = net.vector_field(0.0, s0)["sigma"]
    one = _solve(tasks.RelaxConfig(solver="euler", steps=1, t1=0.1, project=False), net, s0)["sigma"]
    np.testing.assert_allclose(jnp.sum(one**2, -1), jnp.sum(s0["sigma"] ** 2, -1) + 0.01 * jnp.sum(f**2, -1), rtol=1e-5)
    assert float(jnp.max(jnp.sum(f**2, -1))) > 1e-2  # the drift the test checks is not nothing
    ref = _solve(tasks.RelaxConfig(max_steps=512, rtol=1e-8, atol=1e-9), net, s0)
    errors = []
    for steps in (16, 32, 64):
        st = _solve(tasks.RelaxConfig(solver="euler", steps=steps), net, s0)
        np.testing.assert_allclose(jnp.linalg.norm(st["sigma"], axis=-1), 1.0, atol=1e-5)
        errors.append(max(float(jnp.max(jnp.abs(st[k] - ref[k]))) for k in ref))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(1.6 < r < 2.5 for r in ratios), (errors, ratios)


# -- layouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", tasks.MODELS)
def test_classification_initial_state_layout(model):
    task = _task(model=model)
    ex = _example()
    s = task.init_state(ex, jax.random.key(0))
    n = P + H + C
    if model == "hierarchical":
        assert {k: v.shape for k, v in s.items()} == {"pixels": (P,), "hidden": (H,), "classes": (C,)}
        np.testing.assert_array_equal(s["pixels"], ex["images"])
        np.testing.assert_array_equal(s["hidden"], 0.0)
        np.testing.assert_array_equal(task.scores(None, {**s, "classes": jnp.arange(C, dtype=float)}), jnp.arange(C))
    elif model == "kuramoto":
        assert "x" not in s
    else:
        assert s["x"].shape == (n,)
        np.testing.assert_array_equal(s["x"][:P], ex["images"])
        np.testing.assert_array_equal(s["x"][P:], 0.0)
    if model in ("hopfield", "hierarchical", "hopfield_lora"):
        assert "sigma" not in s
    else:
        assert s["sigma"].shape == (n, D)
        np.testing.assert_allclose(jnp.linalg.norm(s["sigma"], axis=-1), 1.0, atol=1e-5)
        # pixel encoding seen relative to the (rotated) reference: σ_pix·σ_ref = 2p − 1
        np.testing.assert_allclose(s["sigma"][:P] @ s["sigma"][P], 2 * ex["images"] - 1, atol=1e-5)
    net = task.build(jax.random.key(1), k=4)
    assert set(s) == set(net.layers)
    assert float(net.energy(net.init_state(s))) == pytest.approx(float(net.energy(s)))


def test_addition_target_and_state():
    task = _task(tasks.Addition)
    a, b = _example(0), _example(5)
    ex = {"images": a["images"], "labels": jnp.asarray(7), "images_b": b["images"], "labels_b": jnp.asarray(8)}
    assert int(task.target(ex)) == 5
    s = task.init_state(ex, jax.random.key(0))
    np.testing.assert_array_equal(s["x"][:P], a["images"])
    np.testing.assert_allclose(s["sigma"][:P] @ s["sigma"][P], 2 * b["images"] - 1, atol=1e-5)
    with pytest.raises(ValueError, match="hopfield_kuramoto"):
        _task(tasks.Addition, model="hopfield")


def test_edit_map_swap_and_conflate():
    np.testing.assert_array_equal(tasks.edit_map("swap", [0, 1]), [1, 0, 2, 3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(tasks.edit_map("swap", [2, 5, 7])[[2, 5, 7]], [5, 7, 2])
    np.testing.assert_array_equal(tasks.edit_map("conflate", [0, 1]), [0, 0, 2, 3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(tasks.edit_map("conflate", [3, 4, 5])[[3, 4, 5]], [3, 3, 3])
    for bad in ([1], [1, 1], [0, 10]):
        with pytest.raises(ValueError):
            tasks.edit_map("swap", bad)
    with pytest.raises(ValueError, match="unknown"):
        tasks.edit_map("merge", [0, 1])


def test_memory_editing_targets_follow_the_cue():
    m = tuple(int(v) for v in tasks.edit_map("swap", [0, 1]))
    task = _task(tasks.MemoryEditing, mapping=m, associative=True)
    labels = jnp.asarray([0, 1, 2, 0, 1, 2])
    cues = jnp.asarray([0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(task.target({"labels": labels, "cues": cues}), [0, 1, 2, 1, 0, 2])
    non = _task(tasks.MemoryEditing, mapping=m, associative=False)
    np.testing.assert_array_equal(non.target({"labels": labels, "cues": cues}), [1, 0, 2, 1, 0, 2])
    ds = data.load_digits("test")
    arrays = {"images": ds.images[:60], "labels": ds.labels[:60]}
    batch = task.eval_batch(arrays, jax.random.key(0))
    assert batch["images"].shape == (120, P)
    # cue images are real images of class 0 (first half) and 1 (second half)
    cue_labels = [int(ds.labels[np.flatnonzero((ds.images[:60] == np.asarray(c)).all(1))[0]]) for c in batch["cue_images"]]
    assert set(cue_labels[:60]) == {0} and set(cue_labels[60:]) == {1}


def test_sampling_is_a_function_of_the_key():
    task = _task(shift=1)
    ds = data.load_digits("train")
    arrays = {"images": ds.images, "labels": ds.labels}
    a = task.sample(arrays, jax.random.key(4), 8)
    b = task.sample(arrays, jax.random.key(4), 8)
    c = task.sample(arrays, jax.random.key(5), 8)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert not np.array_equal(a["labels"], c["labels"]) or not np.array_equal(a["images"], c["images"])


def test_memory_editing_samples_under_jit_with_prepared_data():
    """``prepare`` computes the cue pools once (NumPy); ``sample`` then traces with the data as
    an argument, and its cue images are real images of the cue's class."""
    m = tuple(int(v) for v in tasks.edit_map("conflate", [0, 1]))
    task = _task(tasks.MemoryEditing, mapping=m, associative=True)
    ds = data.load_digits("train")
    arrays = {"images": ds.images[:200], "labels": ds.labels[:200]}
    prepared = task.prepare(arrays)
    assert task.prepare(prepared) is prepared  # idempotent
    for c, pool in zip((0, 1), prepared["cue_pools"]):
        np.testing.assert_array_equal(pool, np.flatnonzero(ds.labels[:200] == c))
    jitted = jax.jit(task.sample, static_argnums=2)
    b = jitted(jax.tree_util.tree_map(jnp.asarray, prepared), jax.random.key(3), 16)
    eager = task.sample(arrays, jax.random.key(3), 16)  # unprepared data work outside jit
    for k in ("images", "labels", "cue_images", "cues"):
        np.testing.assert_array_equal(np.asarray(b[k]), np.asarray(eager[k]))
    imgs = np.asarray(ds.images[:200])
    for cue, img in zip(np.asarray(b["cues"]), np.asarray(b["cue_images"])):
        idx = np.flatnonzero((imgs == img).all(1))
        assert any(int(ds.labels[i]) == cue for i in idx)
    with pytest.raises(ValueError, match="prepare"):
        jitted(jax.tree_util.tree_map(jnp.asarray, arrays), jax.random.key(3), 16)
    with pytest.raises(ValueError, match="cue class"):
        task.prepare({"images": ds.images[:5], "labels": np.full(5, 7)})


def test_memory_editing_draws_its_edited_share_of_each_batch():
    """``edited_fraction`` fills the first rows of a batch with images whose label the edit
    changes (the same under jit); 0 draws exactly the uniform batches of the paper."""
    m = tuple(int(v) for v in tasks.edit_map("conflate", [3, 4]))  # 4 -> 3: only class 4 changes
    ds = data.load_digits("train")
    arrays = {"images": ds.images[:300], "labels": ds.labels[:300]}
    # fraction 0: every row drawn uniformly with the first of the key's four subkeys, as the paper draws
    zero = _task(tasks.MemoryEditing, mapping=m, edited_fraction=0.0).sample(arrays, jax.random.key(2), 32)
    uniform = jax.random.randint(jax.random.split(jax.random.key(2), 4)[0], (32,), 0, 300)
    np.testing.assert_array_equal(np.asarray(zero["labels"]), ds.labels[:300][np.asarray(uniform)])
    np.testing.assert_array_equal(np.asarray(zero["images"]), ds.images[:300][np.asarray(uniform)])
    task = _task(tasks.MemoryEditing, mapping=m, edited_fraction=0.25)
    prepared = task.prepare(arrays)
    np.testing.assert_array_equal(prepared["edited_pool"], np.flatnonzero(ds.labels[:300] == 4))
    b = jax.jit(task.sample, static_argnums=2)(jax.tree_util.tree_map(jnp.asarray, prepared), jax.random.key(2), 32)
    labels = np.asarray(b["labels"])
    assert (labels[:8] == 4).all()  # round(0.25 * 32) rows of the edited class ...
    assert (labels[8:] != 4).any()  # ... the others drawn from every class
    imgs = np.asarray(ds.images[:300])
    for lab, img in zip(labels, np.asarray(b["images"])):  # each row is a real image with its own label
        assert lab in ds.labels[:300][np.flatnonzero((imgs == img).all(1))]
    with pytest.raises(ValueError, match="edited_fraction"):
        _task(tasks.MemoryEditing, mapping=m, edited_fraction=1.0)
    with pytest.raises(ValueError, match="edited_fraction=0.25: the data have no image"):
        task.prepare({"images": ds.images[:5], "labels": np.asarray([0, 1, 0, 1, 0])})


def test_memory_editing_can_put_its_edited_share_under_cue_1():
    """With ``edited_under_cue1`` every row drawn from the edited images carries cue 1, so that
    each is an example whose label changes; the rest of the batch is the batch drawn without it."""
    m = tuple(int(v) for v in tasks.edit_map("swap", [3, 4]))
    ds = data.load_digits("train")
    arrays = {"images": ds.images[:300], "labels": ds.labels[:300]}
    plain = _task(tasks.MemoryEditing, mapping=m, edited_fraction=0.25).sample(arrays, jax.random.key(5), 32)
    task = _task(tasks.MemoryEditing, mapping=m, edited_fraction=0.25, edited_under_cue1=True)
    b = jax.jit(task.sample, static_argnums=2)(jax.tree_util.tree_map(jnp.asarray, task.prepare(arrays)), jax.random.key(5), 32)
    cues, labels, targets = np.asarray(b["cues"]), np.asarray(b["labels"]), np.asarray(jax.vmap(task.target)(b))
    assert (cues[:8] == 1).all() and (targets[:8] != labels[:8]).all()  # 8 rows, each changes label
    np.testing.assert_array_equal(cues[8:], np.asarray(plain["cues"])[8:])  # the others as drawn without it
    for k in ("images", "labels"):
        np.testing.assert_array_equal(np.asarray(b[k]), np.asarray(plain[k]))
    assert set(np.asarray(plain["cues"])[:8]) == {0, 1}  # without it: random cues on the edited rows too
    for bad in (dict(edited_fraction=0.0), dict(edited_fraction=0.25, associative=False)):
        with pytest.raises(ValueError, match="edited_under_cue1=True needs an associative edit"):
            _task(tasks.MemoryEditing, mapping=m, edited_under_cue1=True, **bad)


def test_memory_editing_with_a_teacher_learns_the_classifiers_scores_where_labels_stay():
    """With the frozen classifier as ``teacher``, a sampled batch carries its class scores
    (what the classifier's threshold units reach, hence what the editing network reaches with
    its coupling switched off), and the loss of each example whose label the edit keeps is the
    squared distance to them; an example whose label changes, and evaluation, keep the ±1 code."""
    m = tuple(int(v) for v in tasks.edit_map("swap", [0, 1]))
    clf = tasks.build_network("hopfield", n=P + H + C, k=8, init_scale=0.3, key=jax.random.key(0))
    w, bias = tasks.hopfield_parameters(clf)
    net = tasks.uncouple(tasks.build_network("hopfield_kuramoto", n=P + H + C, dim=D, k=8, coupling="additive",
                                             hopfield_weights=w, hopfield_bias=bias, key=jax.random.key(2)))
    task, plain = (_task(tasks.MemoryEditing, mapping=m, edited_fraction=0.25, edited_under_cue1=True, teacher=t)
                   for t in (clf, None))  # three rows of the twelve change label
    ds = data.load_digits("train")
    arrays = jax.tree_util.tree_map(jnp.asarray, task.prepare({"images": ds.images[:200], "labels": ds.labels[:200]}))

    @eqx.filter_jit  # the teacher's arrays are arguments
    def sample_and_relax(task, arrays):
        b = task.sample(arrays, jax.random.key(1), 12)
        if "teacher_scores" not in b:
            return b, None
        keys = jax.random.split(jax.random.key(3), 12)
        return b, jax.vmap(lambda ex, k: task.scores(net, task.relax_config(net, task.init_state(ex, k)).state))(b, keys)

    b, reached = sample_and_relax(task, arrays)
    without, _ = sample_and_relax(plain, arrays)
    assert set(b) - set(without) == {"teacher_scores"} and "teacher_scores" not in task.eval_batch(arrays, jax.random.key(1))
    for k in without:  # the same batch, plus the scores
        np.testing.assert_array_equal(np.asarray(b[k]), np.asarray(without[k]))
    np.testing.assert_allclose(b["teacher_scores"], reached, atol=2e-3)
    assert float(jnp.abs(b["teacher_scores"]).max()) > 0.1  # not trivially zero
    # the loss, written out: teacher scores where the target is the label, else the ±1 code of the target
    y = jax.random.normal(jax.random.key(4), (12, C))
    loss, (pred, tgt) = jax.vmap(task._loss)(y, b)
    np.testing.assert_array_equal(tgt, jax.vmap(task.target)(b))
    np.testing.assert_array_equal(pred, jnp.argmax(y, axis=1))
    kept = np.asarray(tgt) == np.asarray(b["labels"])
    goal = np.where(kept[:, None], np.asarray(b["teacher_scores"]), 2 * np.eye(C)[np.asarray(tgt)] - 1)
    np.testing.assert_allclose(loss, np.sum((np.asarray(y) - goal) ** 2, axis=1), rtol=1e-6)
    assert kept.any() and not kept.all()  # both kinds of example in the batch
    with pytest.raises(ValueError, match="teacher must be the frozen Hopfield classifier"):
        _task(tasks.MemoryEditing, mapping=m, teacher=jnp.zeros(3))


def test_memory_editing_weighs_the_examples_it_keeps():
    """With ``kept_weight`` a training batch carries each row's weight (``kept_weight`` where
    the target is the original label, 1 where the edit changes it), and each loss is the
    squared loss scaled by it; evaluation batches are unweighted and the default adds nothing."""
    m = tuple(int(v) for v in tasks.edit_map("swap", [0, 1]))
    task, plain = (_task(tasks.MemoryEditing, mapping=m, edited_fraction=0.5, kept_weight=w) for w in (3.0, 1.0))
    ds = data.load_digits("train")
    arrays = task.prepare({"images": jnp.asarray(ds.images[:200]), "labels": jnp.asarray(ds.labels[:200])})
    b, without = (t.sample(arrays, jax.random.key(1), 16) for t in (task, plain))
    assert set(b) - set(without) == {"weights"} and "weights" not in task.eval_batch(arrays, jax.random.key(1))
    tgt = np.asarray(jax.vmap(task.target)(b))
    kept = tgt == np.asarray(b["labels"])
    assert kept.any() and not kept.all()
    np.testing.assert_array_equal(b["weights"], np.where(kept, 3.0, 1.0))
    y = jax.random.normal(jax.random.key(4), (16, C))
    loss, _ = jax.vmap(task._loss)(y, b)
    plain_loss, _ = jax.vmap(plain._loss)(y, without)
    written = np.sum((np.asarray(y) - (2 * np.eye(C)[tgt] - 1)) ** 2, axis=1)
    np.testing.assert_allclose(plain_loss, written, rtol=1e-6)
    np.testing.assert_allclose(loss, np.where(kept, 3.0, 1.0) * written, rtol=1e-6)
    with pytest.raises(ValueError, match="kept_weight=0.0 must be positive"):
        _task(tasks.MemoryEditing, mapping=m, kept_weight=0.0)


def test_all_shifts_and_test_time_augmentation():
    """``all_shifts`` lists every translation once (the middle row unshifted); with ``tta`` the
    evaluation loss is the squared loss of the class scores averaged over those shifts."""
    img = jnp.zeros((8, 8)).at[3, 4].set(1.0).reshape(64)
    rows = tasks.all_shifts(img, shape=(8, 8), max_shift=1)
    assert rows.shape == (9, 64)
    np.testing.assert_array_equal(rows[4], img)
    pos = [tuple(np.argwhere(np.asarray(r).reshape(8, 8) == 1.0)[0]) for r in rows]
    assert pos == [(3 + dy, 4 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    edge = tasks.all_shifts(jnp.zeros((8, 8)).at[0, 0].set(1.0).reshape(64), shape=(8, 8), max_shift=1)
    assert float(edge.sum()) == 4.0  # shifted out of the frame: zero fill, no wrap-around

    plain = _task(model="hopfield")
    aug = _task(model="hopfield", tta=1)
    net = plain.build(jax.random.key(0))
    net = eqx.tree_at(lambda n: tasks.hopfield_parameters(n)[0], net, 0.3 * jax.random.normal(jax.random.key(2), (P + H + C,) * 2))
    ex = _example()
    key = jax.random.key(1)
    a, b = plain.eval_loss(net, ex, key), plain.example_loss(net, ex, key)
    np.testing.assert_array_equal(a[0], b[0])
    imgs = tasks.all_shifts(ex["images"], shape=(8, 8), max_shift=1)
    ys = [plain.scores(net, plain.relax_config(net, plain.init_state({**ex, "images": i}, key)).state) for i in imgs]
    y = np.mean(np.stack(ys), axis=0)
    loss, (pred, tgt) = aug.eval_loss(net, ex, key)
    np.testing.assert_allclose(float(loss), float(tasks.squared_loss(jnp.asarray(y), ex["labels"], C)), rtol=1e-5)
    assert int(pred) == int(np.argmax(y)) and int(tgt) == int(ex["labels"])
    assert not np.allclose(y, np.asarray(ys[4]))  # the average differs from the plain scores


def test_random_shift():
    img = jnp.zeros((1, 8, 8)).at[0, 3, 4].set(1.0).reshape(1, 64)
    assert tasks.random_shift(img, jax.random.key(0), shape=(8, 8), max_shift=0) is img
    out = tasks.random_shift(jnp.tile(img, (20, 1)), jax.random.key(0), shape=(8, 8), max_shift=1)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)  # an interior pixel stays inside
    pos = np.argwhere(np.asarray(out).reshape(20, 8, 8) == 1.0)[:, 1:]
    assert np.all(np.abs(pos - [3, 4]) <= 1) and len({tuple(p) for p in pos}) > 1


@pytest.mark.parametrize("coupling", ["additive", "multiplicative", "full"])
def test_freeze_hopfield_excludes_exactly_the_hopfield_parameters(coupling):
    net = tasks.build_network("hopfield_kuramoto", n=20, dim=3, k=4, coupling=coupling, key=jax.random.key(0))
    spec = tasks.freeze_hopfield(net)
    w, b = tasks.hopfield_parameters(net)
    flat = zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(spec))
    trainable = [leaf for leaf, t in flat if t]
    assert trainable, "something must stay trainable"
    assert all(eqx.is_inexact_array(leaf) for leaf in trainable)
    assert not any(leaf is w or leaf is b for leaf in trainable)


@pytest.mark.parametrize("coupling", ["additive", "multiplicative", "full"])
def test_uncoupled_network_relaxes_its_threshold_units_as_the_hopfield_network(coupling):
    """``uncouple`` zeroes exactly the coupling: the threshold units of the uncoupled
    Hopfield–Kuramoto network follow the Hopfield network with the same weights, whatever the
    oscillators do, while the coupled network (coupling made large enough to matter) does not."""
    n = 20
    clf = tasks.build_network("hopfield", n=n, init_scale=0.3, key=jax.random.key(0))
    w, b = tasks.hopfield_parameters(clf)
    net = tasks.build_network("hopfield_kuramoto", n=n, dim=3, k=4, coupling=coupling, init_scale=0.1,
                              hopfield_weights=w, hopfield_bias=b, key=jax.random.key(1))
    off = tasks.uncouple(net)
    changed = [not np.array_equal(a, c) for a, c in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(off))]
    assert sum(changed) == 1  # the coupling weights (or alpha), nothing else
    x0 = jax.random.uniform(jax.random.key(2), (n,))
    sigma0 = jnp.tile(data.random_rotation(jax.random.key(3), 3)[:, 0], (n, 1))
    sigma0 = sigma0.at[::2].set(-sigma0[::2])  # two antipodal groups: the coupling acts
    ref = hk.relax(clf, clf.init_state({"x": x0}), t1=2.0, rtol=1e-10, atol=1e-12, max_steps=4096).state["x"]
    got = hk.relax(off, off.init_state({"x": x0, "sigma": sigma0}), t1=2.0, rtol=1e-10, atol=1e-12, max_steps=4096).state["x"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    coupled = hk.relax(net, net.init_state({"x": x0, "sigma": sigma0}), t1=2.0, max_steps=4096, throw=False).state["x"]
    assert not np.allclose(coupled, ref, rtol=1e-3, atol=1e-3)  # nan (a runaway) counts as different too


def test_hopfield_parameters_round_trip_into_the_editing_network():
    clf = tasks.build_network("hopfield", n=20, key=jax.random.key(0))
    w, b = tasks.hopfield_parameters(clf)
    net = tasks.build_network("hopfield_kuramoto", n=20, dim=3, k=4, coupling="multiplicative",
                              hopfield_weights=w, hopfield_bias=b, key=jax.random.key(1))
    w2, b2 = tasks.hopfield_parameters(net)
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(b, b2)


def test_lora_baseline_is_the_hopfield_network_with_a_low_rank_weight_correction():
    """``"hopfield_lora"``: the classifier's Hopfield weights plus ``U Vᵀ + V Uᵀ`` of rank
    ``dim`` (the field equals a Hopfield network given those weights, written out); editing
    trains the factors alone, and its network has no oscillators, so the cue is not seen."""
    n = 20
    clf = tasks.build_network("hopfield", n=n, init_scale=0.3, key=jax.random.key(0))
    w, b = tasks.hopfield_parameters(clf)
    net = tasks.build_network("hopfield_lora", n=n, dim=3, init_scale=0.3, hopfield_weights=w, hopfield_bias=b,
                              key=jax.random.key(1))
    (lora,) = [s for s in net.synapses if isinstance(s, hk.synapses.LowRank)]
    u, v = lora.factors, lora.post_factors
    assert u.shape == v.shape == (n, 3) and not np.allclose(u, v)
    written = hk.hopfield(n, lagrangian=hk.lagrangians.ReLU(), weights=w + u @ v.T + v @ u.T, bias=b, kappa=0.1,
                          key=jax.random.key(2))
    state = net.init_state({"x": jax.random.uniform(jax.random.key(3), (n,))})
    np.testing.assert_allclose(net.vector_field(0.0, state)["x"], written.vector_field(0.0, state)["x"], atol=1e-6)
    assert float(net.energy(state)) == pytest.approx(float(written.energy(state)), abs=1e-6)
    flat = zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(tasks.freeze_hopfield(net)))
    assert [leaf.shape for leaf, t in flat if t] == [(n, 3), (n, 3)]  # U and V, not W or b
    task = tasks.MemoryEditing(model="hopfield_lora", n_pixels=P, n_hidden=H, n_classes=C, dim=D,
                               relax_config=tasks.RelaxConfig(max_steps=16), mapping=(1, 0, *range(2, C)))
    ex = {**_example(), "cue_images": jnp.zeros(P), "cues": jnp.asarray(1)}
    assert set(task.init_state(ex, jax.random.key(0))) == {"x"}
    with pytest.raises(ValueError, match="hopfield_lora"):
        tasks.MemoryEditing(model="hopfield", n_pixels=P, n_hidden=H, n_classes=C, dim=D,
                            relax_config=tasks.RelaxConfig(), mapping=tuple(range(C)))


def test_example_loss_runs_for_every_model():
    ex = _example()
    for model in tasks.MODELS:
        task = _task(model=model)
        net = task.build(jax.random.key(0), k=4)
        loss, (pred, tgt) = task.example_loss(net, ex, jax.random.key(1))
        assert np.isfinite(float(loss)) and 0 <= int(pred) < C and int(tgt) == int(ex["labels"])


def test_hierarchical_network_binds_pixels_hidden_and_softmax_classes():
    """The hierarchical model: dense synapses pixels → hidden → classes, a softmax over the
    class layer alone, and the flow of each layer from its neighbours only."""
    task = _task(model="hierarchical")
    net = task.build(jax.random.key(0), init_scale=0.1)  # the oscillators move (sigma by ~0.5)
    assert [s.layers for s in net.synapses] == [("pixels", "hidden"), ("hidden", "classes"), ("hidden",), ("classes",)]
    assert isinstance(net.layers["classes"].lagrangian, hk.lagrangians.Softmax)
    s = task.init_state(_example(), jax.random.key(1))
    s = {**s, "classes": jax.random.normal(jax.random.key(2), (C,))}
    g = net.values(s)
    np.testing.assert_allclose(jnp.sum(g["classes"]), 1.0, rtol=1e-6)
    w1, w2 = net.synapses[0].weights, net.synapses[1].weights
    f = net.vector_field(0.0, s)
    np.testing.assert_allclose(f["pixels"], w1 @ g["hidden"] - s["pixels"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f["hidden"], w1.T @ g["pixels"] + w2 @ g["classes"] - s["hidden"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f["classes"], w2.T @ g["hidden"] - s["classes"], rtol=1e-5, atol=1e-6)


def test_retrieval_low_load_recovers_patterns():
    for model in ("hopfield", "hopfield_kuramoto"):
        r = tasks.retrieval(model, n=60, n_patterns=2, corruption=0.1, trials=4, dim=3, key=jax.random.key(0))
        assert r["overlap"] > 0.95 and r["retrieval_rate"] == 1.0 and r["load"] == pytest.approx(2 / 60)


def test_bad_model_names_raise():
    with pytest.raises(ValueError, match="unknown"):
        tasks.build_network("ising", n=10, key=jax.random.key(0))
    with pytest.raises(ValueError, match="n_hidden"):
        tasks.Classification(model="hopfield", n_pixels=4, n_hidden=0, n_classes=2, dim=2, relax_config=tasks.RelaxConfig())


def test_warp_image_against_exact_formulas():
    """Quarter turns of a square image are ``rot90`` exactly; no turn and no zoom is the image;
    bilinear interpolation reproduces a linear ramp exactly, so inside the frame a warped ramp
    equals the ramp at ``centre + R(−θ)(p − centre)/zoom`` (an independent formula), and a
    pixel whose source lies more than a pixel outside the frame is 0 (zero fill)."""
    img = jnp.asarray(np.random.default_rng(0).random((8, 8)), jnp.float32)
    for deg, k in ((90, 1), (180, 2), (-90, -1), (270, -1)):
        out = tasks.warp_image(img.reshape(64), shape=(8, 8), degrees=deg).reshape(8, 8)
        np.testing.assert_allclose(out, np.rot90(np.asarray(img), k), atol=1e-5)
    np.testing.assert_array_equal(tasks.warp_image(img.reshape(64), shape=(8, 8), degrees=0.0, zoom=1.0), img.reshape(64))

    h, w = 7, 9  # not square: rows and columns must not be confused
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ramp = (0.3 * rr - 0.2 * cc + 1.0).astype(np.float32)
    for deg, zoom in ((17.0, 1.0), (-33.0, 1.2), (5.0, 0.8), (120.0, 1.0)):
        t = np.deg2rad(deg)
        dr, dc = rr - (h - 1) / 2, cc - (w - 1) / 2
        sr = (np.cos(t) * dr + np.sin(t) * dc) / zoom + (h - 1) / 2
        sc = (-np.sin(t) * dr + np.cos(t) * dc) / zoom + (w - 1) / 2
        out = np.asarray(tasks.warp_image(jnp.asarray(ramp.reshape(-1)), shape=(h, w), degrees=deg, zoom=zoom)).reshape(h, w)
        inside = (sr >= 0) & (sr <= h - 1) & (sc >= 0) & (sc <= w - 1)
        far = (sr < -1) | (sr > h) | (sc < -1) | (sc > w)
        assert inside.sum() > 10
        np.testing.assert_allclose(out[inside], (0.3 * sr - 0.2 * sc + 1.0)[inside], atol=1e-5)
        np.testing.assert_array_equal(out[far], 0.0)


def test_random_warp_and_the_tasks_augmentation():
    """``random_warp`` is the identity (the same array) with nothing to do, draws angles and
    zooms within bounds (one per image), and a task with ``tilt``/``zoom`` warps its training
    batches after the shift, from a fold of the shift's key: with both 0 the batches are the
    plain shifted ones, bit for bit."""
    imgs = jnp.tile(jnp.asarray(data.load_digits("train").images[:1]), (6, 1))
    assert tasks.random_warp(imgs, jax.random.key(0), shape=(8, 8)) is imgs
    out = np.asarray(tasks.random_warp(imgs, jax.random.key(0), shape=(8, 8), max_degrees=90.0))
    assert len({o.tobytes() for o in out}) == 6  # a different angle per image
    # the angles and zooms drawn, read back exactly from warped coordinate ramps (bilinear
    # interpolation is exact on them): s = centre + R(−θ)(p − centre)/zoom
    rr, cc = np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij")
    ramps = jnp.asarray(np.stack([rr.ravel() + 1, cc.ravel() + 1])[:, None], jnp.float32)  # (2, 1, 64)
    keys = jax.random.split(jax.random.key(2), 40)
    # a batch of one per call, so that both ramps of a key get the same angle and zoom
    warped = jax.vmap(jax.vmap(lambda r, k: tasks.random_warp(r, k, shape=(8, 8), max_degrees=20.0, max_zoom=0.1),
                               (0, None)), (None, 0))(ramps, keys)[:, :, 0]  # (40, 2, 64)
    angles, zooms = [], []
    for sr, sc in np.asarray(warped):
        sr, sc = sr.reshape(8, 8) - 1 - 3.5, sc.reshape(8, 8) - 1 - 3.5
        mid = slice(3, 5)  # central pixels: their sources are inside the frame
        m = np.linalg.lstsq(np.stack([(rr - 3.5)[mid, mid].ravel(), (cc - 3.5)[mid, mid].ravel()], 1),
                            np.stack([sr[mid, mid].ravel(), sc[mid, mid].ravel()], 1), rcond=None)[0].T
        zooms.append(1 / np.sqrt(abs(np.linalg.det(m))))
        angles.append(np.rad2deg(np.arctan2(m[0, 1], m[0, 0])))
    assert max(np.abs(angles)) <= 20.0 + 1e-3 and max(np.abs(angles)) > 10.0
    assert 0.9 - 1e-4 <= min(zooms) and max(zooms) <= 1.1 + 1e-4 and np.ptp(zooms) > 0.1

    ds = data.load_digits("train")
    arrays = {"images": ds.images, "labels": ds.labels}
    key = jax.random.key(7)
    plain = _task(shift=1).sample(arrays, key, 8)
    warped = _task(shift=1, tilt=15.0, zoom=0.1).sample(arrays, key, 8)
    np.testing.assert_array_equal(plain["labels"], warped["labels"])
    _, ks = jax.random.split(key)
    expect = tasks.random_warp(plain["images"], jax.random.fold_in(ks, 1), shape=(8, 8), max_degrees=15.0, max_zoom=0.1)
    np.testing.assert_array_equal(warped["images"], expect)
    np.testing.assert_array_equal(_task(shift=1, tilt=0.0, zoom=0.0).sample(arrays, key, 8)["images"], plain["images"])
    for bad in (dict(tilt=-1.0), dict(tilt=181.0), dict(zoom=1.0), dict(zoom=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _task(**bad)

from __future__ import annotations

import ast
import hashlib
import json
import pathlib
import struct
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors import safe_open

from hkjax import checkpoint
from hkjax.checkpoint import CheckpointError

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _fill(abstract, seed: int):
    """Concrete arrays for every ShapeDtypeStruct leaf, from NumPy (no JAX compiles)."""
    rng = np.random.default_rng(seed)

    def f(x):
        if not isinstance(x, jax.ShapeDtypeStruct):
            return x
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.asarray(rng.standard_normal(x.shape).astype(x.dtype))
        return jnp.asarray(np.full(x.shape, seed, dtype=x.dtype))

    return jax.tree_util.tree_map(f, abstract)


def _model(width: int = 8, depth: int = 2, seed: int = 0, **kwargs) -> eqx.nn.MLP:
    # eqx.nn.MLP's own initialiser compiles JAX random ops for every layer shape
    # (seconds on CPU); tracing it abstractly and filling from NumPy is instant
    # and gives an identical pytree structure.
    abstract = eqx.filter_eval_shape(
        eqx.nn.MLP, 3, 2, width, depth, key=jax.random.key(0), **kwargs
    )
    return _fill(abstract, seed)


def _typed_key(seed: int, impl: str = "threefry2x32", shape=()):
    words = {"threefry2x32": 2, "rbg": 4}[impl]
    data = np.random.default_rng(seed).integers(0, 2**32, (*shape, words), dtype=np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(data), impl=impl)


def _state(width: int = 8, depth: int = 2, seed: int = 0) -> dict:
    """A training state: MLP, Adam state, step, PRNG keys and assorted leaves."""
    model = _model(width, depth, seed)
    opt = optax.adam(1e-3)
    opt_state = _fill(
        eqx.filter_eval_shape(lambda m: opt.init(eqx.filter(m, eqx.is_array)), model),
        seed + 1,
    )
    return {
        "model": model,
        "opt_state": opt_state,
        "step": jnp.asarray(seed, dtype=jnp.int32),
        "legacy_key": jax.random.PRNGKey(seed),
        "typed_key": _typed_key(seed),
        "rbg_keys": _typed_key(seed, "rbg", (3,)),
        "mask": jnp.zeros((4,), dtype=bool),
        "np64": np.zeros((2, 3), dtype=np.float64),
        "np_scalar": np.float64(0.0),
        "bf16": jnp.zeros((3,), dtype=jnp.bfloat16),
    }


def _x64():
    """Context manager enabling 64-bit JAX types (API differs across JAX versions)."""
    if callable(getattr(jax, "enable_x64", None)):
        return jax.enable_x64(True)
    return jax.experimental.enable_x64()  # pragma: no cover - older JAX


def _trained_state() -> dict:
    """A state whose every array leaf differs from a fresh `_state()`."""
    s = _state(seed=2)
    s.update(
        legacy_key=jnp.asarray(np.array([123456789, 987654321], dtype=np.uint32)),
        mask=jnp.array([True, False, True, True]),
        np64=np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0 + 1e-300,
        np_scalar=np.float64(np.pi),
        bf16=jnp.array([1.5, -2.0, 3.25], dtype=jnp.bfloat16),
    )
    return s


def _assert_bitwise_equal(a, b) -> None:
    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb
    assert len(la) == len(lb)
    for (pa, xa), (_, xb) in zip(la, lb):
        where = jax.tree_util.keystr(pa)
        if eqx.is_array(xa):
            assert type(xa) is type(xb) or (
                isinstance(xa, jax.Array) and isinstance(xb, jax.Array)
            ), where
            assert xa.dtype == xb.dtype, where
            assert xa.shape == xb.shape, where
            if jax.dtypes.issubdtype(xa.dtype, jax.dtypes.prng_key):
                assert jax.random.key_impl(xa) == jax.random.key_impl(xb), where
                xa, xb = jax.random.key_data(xa), jax.random.key_data(xb)
            na, nb = np.asarray(xa), np.asarray(xb)
            assert na.dtype == nb.dtype, where
            assert na.tobytes() == nb.tobytes(), where
        else:
            assert xa is xb or xa == xb, where


def _split_file(path: pathlib.Path) -> tuple[dict, dict, dict]:
    """hkjax's header, the safetensors ``__metadata__`` and the tensors, read with safetensors."""
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    return json.loads(meta["hkjax"]), meta, safetensors.numpy.load_file(path)


def _rewrite(path: pathlib.Path, header, tensors: dict, *, text: str | None = None) -> None:
    """Write ``tensors`` with ``header`` (or the raw ``text``) as hkjax's header, checksummed."""
    text = json.dumps(header) if text is None else text
    meta = {"hkjax": text, "hkjax_sha256": hashlib.sha256(text.encode()).hexdigest()}
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


@pytest.fixture()
def saved(tmp_path):
    path = tmp_path / "model.hkjax"
    tree = _trained_state()
    checkpoint.save(path, tree, metadata={"config": {"width": 8}})
    return path, tree


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


def test_round_trip_bitwise(saved):
    path, tree = saved
    loaded, metadata = checkpoint.load(path, _state())
    _assert_bitwise_equal(tree, loaded)
    assert metadata == {"config": {"width": 8}}
    # Types follow the template: JAX stays JAX, NumPy stays NumPy (float64 kept).
    assert isinstance(loaded["model"].layers[0].weight, jax.Array)
    assert isinstance(loaded["np64"], np.ndarray) and loaded["np64"].dtype == np.float64
    assert isinstance(loaded["np_scalar"], np.float64)
    assert loaded["legacy_key"].dtype == jnp.uint32
    assert jax.dtypes.issubdtype(loaded["typed_key"].dtype, jax.dtypes.prng_key)
    assert jax.random.key_impl(loaded["rbg_keys"]) == "rbg"
    # Loaded keys are usable and reproduce the original random streams.
    np.testing.assert_array_equal(
        jax.random.normal(loaded["typed_key"], (5,)),
        jax.random.normal(tree["typed_key"], (5,)),
    )
    # Loaded model and optimiser state work.
    y = loaded["model"](jnp.ones((3,)))
    np.testing.assert_array_equal(y, tree["model"](jnp.ones((3,))))
    assert int(loaded["opt_state"][0].count) == 3


def test_round_trip_float64_jax_leaves(tmp_path):
    path = tmp_path / "x64.hkjax"
    with _x64():
        tree = {
            "w": jnp.linspace(0.0, 1.0, 7, dtype=jnp.float64) / 3.0,
            "i": jnp.arange(3, dtype=jnp.int64) * (2**40),
            "c": jnp.array([1 + 2j], dtype=jnp.complex128),
        }
        checkpoint.save(path, tree)
        like = jax.tree_util.tree_map(jnp.zeros_like, tree)
        loaded, _ = checkpoint.load(path, like)
        _assert_bitwise_equal(tree, loaded)
        assert loaded["w"].dtype == jnp.float64


def test_float64_without_x64_is_rejected_not_truncated(tmp_path):
    path = tmp_path / "x64.hkjax"
    with _x64():
        checkpoint.save(path, {"w": jnp.ones((2,), dtype=jnp.float64) / 3})
    with pytest.raises(CheckpointError, match="64"):
        checkpoint.load(path, {"w": jnp.ones((2,))})  # float32 template


def test_shape_dtype_struct_template(saved):
    path, tree = saved
    like = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x,
        _state(),
    )
    loaded, _ = checkpoint.load(path, like)
    _assert_bitwise_equal(tree, loaded)


def test_plain_containers_int32_bool_and_empty(tmp_path):
    tree = (
        [np.arange(5, dtype=np.int32), np.array([True, False])],
        {"a": jnp.array(-3, dtype=jnp.int32), "b": None, "s": "static", "f": 0.5},
        (),
    )
    path = checkpoint.save(tmp_path / "c.hkjax", tree)
    like = (
        [np.zeros(5, dtype=np.int32), np.zeros(2, dtype=bool)],
        {"a": jnp.array(0, dtype=jnp.int32), "b": None, "s": "static", "f": 0.5},
        (),
    )
    loaded, metadata = checkpoint.load(path, like)
    _assert_bitwise_equal(tree, loaded)
    assert metadata == {}
    empty = checkpoint.save(tmp_path / "empty.hkjax", {})
    assert checkpoint.load(empty, {}) == ({}, {})


@settings(max_examples=25, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from(
            [np.float32, np.float64, np.int32, np.int8, np.uint16, np.bool_, np.complex64]
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
def test_property_numpy_round_trip(tmp_path_factory, arr):
    path = tmp_path_factory.mktemp("prop") / "a.hkjax"
    checkpoint.save(path, {"a": arr})
    loaded, _ = checkpoint.load(path, {"a": np.zeros_like(arr)})
    assert loaded["a"].dtype == arr.dtype and loaded["a"].shape == arr.shape
    assert loaded["a"].tobytes() == arr.tobytes()


def test_non_native_byte_order_numpy_leaf(tmp_path):
    arr = np.arange(4, dtype=">f4")
    path = checkpoint.save(tmp_path / "be.hkjax", [arr])
    (loaded,), _ = checkpoint.load(path, [np.zeros(4, dtype=np.float32)])
    np.testing.assert_array_equal(loaded, arr)


# ---------------------------------------------------------------------------
# metadata and format
# ---------------------------------------------------------------------------


def test_metadata_round_trip_and_read_metadata(tmp_path):
    md = {
        "config": {"n": 16, "lr": 1e-3, "name": "hopfield", "layers": [1, 2], "ok": True},
        "note": "ünïcode ✓",
        "nothing": None,
        "np_float": np.float64(0.25),  # a float subclass: plain JSON number
    }
    path = checkpoint.save(tmp_path / "m.hkjax", {"w": jnp.ones(2)}, metadata=md)
    _, loaded_md = checkpoint.load(path, {"w": jnp.zeros(2)})
    assert loaded_md == md
    header_md = checkpoint.read_metadata(path)
    assert header_md["format_version"] == checkpoint.FORMAT_VERSION
    assert isinstance(header_md["hkjax_version"], str) and header_md["hkjax_version"]
    assert {k: v for k, v in header_md.items() if k in md} == md


def test_read_metadata_does_not_read_the_arrays(tmp_path):
    path = checkpoint.save(tmp_path / "m.hkjax", {"w": jnp.ones(100)}, metadata={"a": 1})
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # an array damaged, header intact
    path.write_bytes(bytes(raw))
    assert checkpoint.read_metadata(path)["a"] == 1
    with pytest.raises(CheckpointError, match="corrupted"):
        checkpoint.load(path, {"w": jnp.zeros(100)})


def test_leaves_lists_paths_kinds_shapes_and_dtypes_from_the_header(tmp_path):
    """`leaves` reports what a checkpoint holds from its header alone (a damaged array
    does not matter); a file that is no checkpoint is refused."""
    tree = {"w": jnp.ones((3, 2)), "i": np.arange(4, dtype=np.int32), "key": jax.random.key(0), "name": "x"}
    path = checkpoint.save(tmp_path / "m.hkjax", tree)
    raw = bytearray(path.read_bytes())
    raw[-4] ^= 0xFF
    path.write_bytes(bytes(raw))
    rows = {r["path"]: r for r in checkpoint.leaves(path)}
    assert rows["['w']"] == {"path": "['w']", "kind": "array", "shape": (3, 2), "dtype": "float32"}
    assert rows["['i']"]["shape"] == (4,) and rows["['i']"]["dtype"] == "int32"
    assert rows["['key']"]["kind"] == "prng_key" and rows["['name']"] == {"path": "['name']", "kind": "static"}
    bad = tmp_path / "not.hkjax"
    bad.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not an hkjax checkpoint"):
        checkpoint.leaves(bad)


def test_file_format_layout(saved):
    path, tree = saved
    header, meta, tensors = _split_file(path)
    assert set(meta) == {"hkjax", "hkjax_sha256"}
    assert meta["hkjax_sha256"] == hashlib.sha256(meta["hkjax"].encode()).hexdigest()
    assert header["format_version"] == checkpoint.FORMAT_VERSION == 3
    assert header["metadata"] == {"config": {"width": 8}}
    leaves = jax.tree_util.tree_leaves(tree)
    assert len(header["leaves"]) == len(leaves)
    by_path = {e["path"]: e for e in header["leaves"]}
    assert set(tensors) == {p for p, e in by_path.items() if e["kind"] != "static"}
    w = by_path["['model'].layers[0].weight"]
    assert w["kind"] == "array" and w["dtype"] == "float32" and w["shape"] == [8, 3]
    key = by_path["['typed_key']"]
    assert key["kind"] == "prng_key" and key["impl"] == "threefry2x32"
    assert key["dtype"] == "uint32" and key["shape"] == [] and key["data_shape"] == [2]
    assert by_path["['legacy_key']"]["kind"] == "array"
    assert by_path["['legacy_key']"]["dtype"] == "uint32"
    assert by_path["['model'].activation"] == {
        "kind": "static",
        "name": "relu",
        "path": "['model'].activation",
    }
    for name, tensor in tensors.items():
        assert by_path[name]["sha256"] == hashlib.sha256(tensor.astype(tensor.dtype.newbyteorder("<")).tobytes()).hexdigest()
    # bfloat16, which not every safetensors reader knows, is stored as its bits.
    assert by_path["['bf16']"]["dtype"] == "bfloat16" and tensors["['bf16']"].dtype == np.uint16
    np.testing.assert_array_equal(tensors["['bf16']"], np.asarray(tree["bf16"]).view(np.uint16))


def test_safetensors_alone_reads_the_arrays_by_key_path(saved):
    """Any safetensors reader gets every array leaf under its key path, typed keys as their key
    data, and hkjax's header in the file's metadata."""
    path, tree = saved
    arrays = safetensors.numpy.load_file(path)
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    expected = {jax.tree_util.keystr(p): x for p, x in flat if eqx.is_array(x)}
    assert set(arrays) == set(expected)
    for name, x in expected.items():
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        x = np.asarray(x)
        if x.dtype == jnp.bfloat16:
            x = x.view(np.uint16)
        assert arrays[name].dtype == x.dtype and arrays[name].shape == x.shape, name
        assert arrays[name].tobytes() == x.tobytes(), name
    with safe_open(path, framework="numpy") as f:
        header = json.loads(f.metadata()["hkjax"])
    assert header["metadata"] == {"config": {"width": 8}}
    assert header["format_version"] == checkpoint.FORMAT_VERSION
    assert isinstance(header["hkjax_version"], str)


def test_complex_leaves_are_stored_as_float_pairs(tmp_path):
    z = np.array([[1 + 2j, -3.5j]], dtype=np.complex64)
    path = checkpoint.save(tmp_path / "c.hkjax", {"z": z})
    np.testing.assert_array_equal(safetensors.numpy.load_file(path)["['z']"], np.stack([z.real, z.imag], -1))
    loaded, _ = checkpoint.load(path, {"z": np.zeros_like(z)})
    assert loaded["z"].dtype == z.dtype and loaded["z"].tobytes() == z.tobytes()


def test_module_never_uses_pickle():
    source = pathlib.Path(checkpoint.__file__).read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"pickle", "cloudpickle", "dill", "marshal", "shelve"}
    assert "allow_pickle=True" not in source


def test_non_json_metadata_is_type_error_naming_key(tmp_path):
    path = tmp_path / "m.hkjax"
    with pytest.raises(TypeError, match="'bad'"):
        checkpoint.save(path, {"w": jnp.ones(2)}, metadata={"good": 1, "bad": object()})
    with pytest.raises(TypeError, match="'cfg'"):
        checkpoint.save(path, {"w": jnp.ones(2)}, metadata={"cfg": {"arr": jnp.ones(2)}})
    with pytest.raises(TypeError, match="'cfg'"):
        checkpoint.save(path, {"w": jnp.ones(2)}, metadata={"cfg": {1: "int key"}})
    with pytest.raises(TypeError):
        checkpoint.save(path, {"w": jnp.ones(2)}, metadata={3: "x"})
    with pytest.raises(ValueError, match="reserved"):
        checkpoint.save(path, {"w": jnp.ones(2)}, metadata={"hkjax_version": "1"})
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_object_dtype_leaf_rejected_at_save(tmp_path):
    path = tmp_path / "o.hkjax"
    with pytest.raises(TypeError, match=r"object dtype.*pickle"):
        checkpoint.save(path, {"w": jnp.ones(2), "o": np.array([object(), 1], dtype=object)})
    with pytest.raises(TypeError, match="unsupported dtype"):
        checkpoint.save(path, {"s": np.array(["a", "b"])})
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        checkpoint.save(path, {"x": jax.ShapeDtypeStruct((2,), jnp.float32)})
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_parent_directory_created(tmp_path):
    path = tmp_path / "a" / "b" / "c.hkjax"
    assert checkpoint.save(str(path), [jnp.ones(1)]) == path
    assert path.is_file()


# ---------------------------------------------------------------------------
# validation on load
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.hkjax"
    with pytest.raises(FileNotFoundError, match="nope.hkjax"):
        checkpoint.load(path, {})
    with pytest.raises(FileNotFoundError, match="nope.hkjax"):
        checkpoint.read_metadata(path)


@pytest.mark.parametrize("content", [b"", b"HKJ", b"hello world, not a checkpoint", b"\x80\x04K."])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.hkjax"
    path.write_bytes(content)
    for read in (lambda: checkpoint.load(path, {}), lambda: checkpoint.read_metadata(path)):
        with pytest.raises(CheckpointError, match="is not an hkjax checkpoint"):
            read()


def test_safetensors_file_of_another_program_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, path, metadata={"format": "np"})
    with pytest.raises(CheckpointError, match="is not an hkjax checkpoint.*without hkjax's header"):
        checkpoint.leaves(path)


def test_file_in_hkjax_own_format_is_refused_with_the_version_that_reads_it(tmp_path):
    path = tmp_path / "old.hkjax"
    header = json.dumps({"format_version": 1, "leaves": []}).encode()
    path.write_bytes(b"HKJAXCKPT\n" + struct.pack("<IQ32s", 1, len(header), hashlib.sha256(header).digest()) + header)
    expected = (
        f"{path} is a checkpoint in hkjax's own format (format version 1), written by hkjax 0.1.0; "
        "this hkjax reads safetensors checkpoints: load it with hkjax 0.1.0 "
        "(pip install 'hkjax==0.1.0') or re-run the training"
    )
    for read in (lambda: checkpoint.load(path, {}), lambda: checkpoint.read_metadata(path), lambda: checkpoint.leaves(path)):
        with pytest.raises(CheckpointError) as exc:
            read()
        assert str(exc.value) == expected


def test_truncated_file(saved):
    path, _ = saved
    raw = path.read_bytes()
    data_start = 8 + struct.unpack_from("<Q", raw)[0]
    for cut in (4, 9, 20, data_start - 1, data_start, data_start + 7, len(raw) - 1):
        path.write_bytes(raw[:cut])
        for read in (lambda: checkpoint.load(path, _state()), lambda: checkpoint.read_metadata(path)):
            with pytest.raises(CheckpointError, match="corrupted|not an hkjax checkpoint") as exc:
                read()
            assert str(path) in str(exc.value)
            if cut > 8:
                assert "corrupted" in str(exc.value)


def test_trailing_garbage(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="corrupted"):
        checkpoint.load(path, _state())


def test_flipped_array_byte(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"is corrupted \(checksum mismatch in leaf \d+ \("):
        checkpoint.load(path, _state())


def test_changed_header_byte(saved):
    """A change inside hkjax's header that leaves valid JSON is caught by its checksum; one
    that breaks the safetensors header is reported by safetensors, wrapped."""
    path, _ = saved
    raw = path.read_bytes()
    digit = raw.index(b"8", raw.index(b"width"))
    path.write_bytes(raw[:digit] + b"9" + raw[digit + 1 :])
    with pytest.raises(CheckpointError, match="checksum mismatch in hkjax's header"):
        checkpoint.read_metadata(path)
    path.write_bytes(raw[:9] + b"~" + raw[10:])
    with pytest.raises(CheckpointError, match=f"{path} is corrupted .*safetensors"):
        checkpoint.load(path, _state())


def test_future_format_version(saved):
    path, _ = saved
    header, _, tensors = _split_file(path)
    header["format_version"] = 99
    _rewrite(path, header, tensors)
    for read in (lambda: checkpoint.load(path, _state()), lambda: checkpoint.read_metadata(path), lambda: checkpoint.leaves(path)):
        with pytest.raises(CheckpointError, match=r"version 99.*upgrade hkjax"):
            read()


def test_earlier_format_version_names_the_hkjax_that_reads_it(saved):
    path, _ = saved
    header, _, tensors = _split_file(path)
    header["format_version"] = 2
    _rewrite(path, header, tensors)
    with pytest.raises(CheckpointError, match=r"older hkjax \(checkpoint format 2\).*hkjax 0\.2\.0"):
        checkpoint.load(path, _state())


def _kuramoto_net(formulation: str, seed: int = 0):
    import hkjax as hk

    n = 40
    edges = hk.graphs.small_world(n, 8, 0.1, key=jax.random.key(seed))
    return hk.kuramoto(n, 3, edges=edges, interaction=hk.interactions.ReLU(), formulation=formulation,
                       key=jax.random.key(1))


def test_graph_layouts_are_not_saved_and_load_into_any_layout(tmp_path):
    """A network's graph is saved as its edges only; it loads into the same network laid
    out otherwise (the layout's index arrays come from the template), with the same energy."""
    import hkjax as hk

    path = tmp_path / "net.hkjax"
    tiled = _kuramoto_net("tiles")
    assert isinstance(tiled.synapses[0].pairs.layout, hk.synapses.Tiles)
    checkpoint.save(path, {"model": tiled})
    paths = [e["path"] for e in checkpoint.leaves(path)]
    names = {p.rsplit(".", 1)[-1] for p in paths}
    assert {"i", "j"} <= names and not any(f".{f}" in p for p in paths for f in hk.synapses.Pairs.derived_fields)
    state = tiled.init_state(key=jax.random.key(2))
    for formulation in ("tiles", "neighbours", "dense"):
        loaded, _ = checkpoint.load(path, {"model": _kuramoto_net(formulation)})
        net = loaded["model"]
        assert net.synapses[0].pairs.formulation == formulation
        np.testing.assert_allclose(net.energy(state), tiled.energy(state), rtol=1e-5)


def test_a_different_graph_is_refused(tmp_path):
    path = tmp_path / "net.hkjax"
    checkpoint.save(path, {"model": _kuramoto_net("dense")})
    with pytest.raises(CheckpointError, match=r"pairs.*Pairs.*another graph"):
        checkpoint.load(path, {"model": _kuramoto_net("dense", seed=5)})


def test_header_not_json(saved):
    path, _ = saved
    _, _, tensors = _split_file(path)
    _rewrite(path, None, tensors, text="{not json")
    with pytest.raises(CheckpointError, match="corrupted.*JSON"):
        checkpoint.load(path, _state())


def test_tensors_that_disagree_with_the_header(saved):
    path, _ = saved
    header, _, tensors = _split_file(path)
    _rewrite(path, header, {**tensors, "['step']": tensors["['step']"].astype(np.int64)})
    with pytest.raises(CheckpointError, match=r"corrupted.*\['step'\]\) is stored with dtype int64"):
        checkpoint.load(path, _state())
    del tensors["['step']"]
    _rewrite(path, header, tensors)
    with pytest.raises(CheckpointError, match="corrupted.*tensors are not the ones"):
        checkpoint.read_metadata(path)


def test_different_shape_names_the_leaf(saved):
    path, _ = saved
    with pytest.raises(CheckpointError) as exc:
        checkpoint.load(path, _state(width=16))
    msg = str(exc.value)
    assert "['model'].layers[0].weight" in msg
    assert "(8, 3)" in msg and "(16, 3)" in msg
    assert "different configuration" in msg


def test_wrong_number_of_leaves(saved):
    path, _ = saved
    with pytest.raises(CheckpointError, match=r"has \d+ leaves but `like` has \d+"):
        checkpoint.load(path, _state(depth=3))
    like = _state()
    del like["mask"]
    with pytest.raises(CheckpointError, match=r"leaves.*first difference.*\['mask'\]"):
        checkpoint.load(path, like)


def test_different_dtype_and_key_kind(saved):
    path, _ = saved
    like = _state()
    like["step"] = jnp.asarray(0, dtype=jnp.float32)
    with pytest.raises(CheckpointError, match=r"\['step'\].*int32.*float32"):
        checkpoint.load(path, like)
    like = _state()
    like["typed_key"] = jax.random.PRNGKey(0)  # legacy key template for a typed key
    with pytest.raises(CheckpointError, match=r"\['typed_key'\].*PRNG key"):
        checkpoint.load(path, like)
    like = _state()
    like["typed_key"] = jax.random.key(0, impl="rbg")
    with pytest.raises(CheckpointError, match=r"\['typed_key'\]"):
        checkpoint.load(path, like)


def test_static_leaf_mismatch(tmp_path):
    model = _model()
    path = checkpoint.save(tmp_path / "m.hkjax", model)
    other = _model(activation=jax.nn.tanh)
    with pytest.raises(CheckpointError, match=r"\.activation.*relu.*tanh"):
        checkpoint.load(path, other)
    path2 = checkpoint.save(tmp_path / "s.hkjax", {"beta": 2.0, "w": jnp.ones(1)})
    with pytest.raises(CheckpointError, match=r"\['beta'\].*2\.0.*1\.0"):
        checkpoint.load(path2, {"beta": 1.0, "w": jnp.ones(1)})
    loaded, _ = checkpoint.load(path2, {"beta": 2.0, "w": jnp.zeros(1)})
    assert loaded["beta"] == 2.0


# ---------------------------------------------------------------------------
# atomicity
# ---------------------------------------------------------------------------


def _assert_only(directory: pathlib.Path, names: set[str]) -> None:
    assert {p.name for p in directory.iterdir()} == names


def test_crash_in_replace_keeps_previous_checkpoint(saved, monkeypatch):
    path, tree = saved
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(checkpoint.os, "replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save(path, _state(), metadata={"config": {"width": 999}})
    monkeypatch.undo()
    assert path.read_bytes() == before
    _assert_only(path.parent, {path.name})  # temp file cleaned up
    loaded, md = checkpoint.load(path, _state())
    _assert_bitwise_equal(tree, loaded)
    assert md == {"config": {"width": 8}}


def test_crash_mid_write_keeps_previous_checkpoint(saved, monkeypatch):
    path, tree = saved
    before = path.read_bytes()

    def half_write(f, data):
        f.write(data[: len(data) // 2])
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(checkpoint, "_write_all", half_write)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, _state())
    monkeypatch.undo()
    assert path.read_bytes() == before
    _assert_only(path.parent, {path.name})
    _assert_bitwise_equal(tree, checkpoint.load(path, _state())[0])


def test_hard_kill_mid_write_leaves_old_file_and_is_skipped_by_latest(tmp_path):
    ckpt_dir = tmp_path / "ckpts"
    good = checkpoint.save_step(ckpt_dir, 5, {"w": jnp.arange(3.0)})
    before = good.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(pathlib.Path(checkpoint.__file__).parents[1])!r})
        import jax.numpy as jnp
        from hkjax import checkpoint

        def die(f, data):
            f.write(data[: len(data) // 2])
            f.flush()
            os._exit(17)  # process killed: no cleanup handlers run

        checkpoint._write_all = die
        checkpoint.save({str(good)!r}, {{"w": jnp.zeros(3)}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 17, proc.stderr.decode()
    leftovers = [p for p in ckpt_dir.iterdir() if p.name != good.name]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    assert good.read_bytes() == before
    loaded, md = checkpoint.load(good, {"w": jnp.zeros(3)})
    np.testing.assert_array_equal(loaded["w"], jnp.arange(3.0))
    assert md == {"step": 5}
    assert checkpoint.latest(ckpt_dir) == good
    # Rotation never touches the leftover temp file.
    checkpoint.save_step(ckpt_dir, 6, {"w": jnp.zeros(3)}, keep=1)
    assert leftovers[0].exists() and not good.exists()


# ---------------------------------------------------------------------------
# save_step / latest
# ---------------------------------------------------------------------------


def test_save_step_rotation_and_latest(tmp_path):
    d = tmp_path / "run"
    assert checkpoint.latest(d) is None
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    (d / "ckpt_final.hkjax").write_text("not a step checkpoint")
    tree = {"w": jnp.zeros(2), "step": jnp.asarray(0)}
    for step in (1, 2, 10, 3, 100):
        p = checkpoint.save_step(d, step, {**tree, "step": jnp.asarray(step)}, keep=3)
        assert p == d / f"ckpt_{step:08d}.hkjax"
        assert p.is_file()
    names = {p.name for p in d.iterdir()}
    assert names == {
        "notes.txt",
        "ckpt_final.hkjax",
        "ckpt_00000010.hkjax",
        "ckpt_00000003.hkjax",
        "ckpt_00000100.hkjax",
    }
    assert checkpoint.latest(d) == d / "ckpt_00000100.hkjax"
    loaded, md = checkpoint.load(checkpoint.latest(d), tree)
    assert int(loaded["step"]) == 100 and md == {"step": 100}
    assert checkpoint.read_metadata(d / "ckpt_00000010.hkjax")["step"] == 10


def test_save_step_never_deletes_the_one_just_written(tmp_path):
    d = tmp_path / "run"
    for step in (200, 300):
        checkpoint.save_step(d, step, [jnp.ones(1)], keep=2)
    p = checkpoint.save_step(d, 150, [jnp.ones(1)], keep=2, metadata={"resumed": True})
    assert p.exists()
    assert sorted(x.name for x in d.iterdir()) == [
        "ckpt_00000150.hkjax",
        "ckpt_00000200.hkjax",
        "ckpt_00000300.hkjax",
    ]
    assert checkpoint.read_metadata(p)["resumed"] is True
    checkpoint.save_step(d, 400, [jnp.ones(1)], keep=1)
    assert [x.name for x in d.iterdir()] == ["ckpt_00000400.hkjax"]


def test_save_step_keep_none_and_bad_args(tmp_path):
    d = tmp_path / "run"
    for step in range(5):
        checkpoint.save_step(d, step, [jnp.ones(1)], keep=None)
    assert len(list(d.iterdir())) == 5
    assert checkpoint.latest(d).name == "ckpt_00000004.hkjax"
    with pytest.raises(ValueError, match="keep"):
        checkpoint.save_step(d, 9, [jnp.ones(1)], keep=0)
    with pytest.raises(ValueError, match="non-negative"):
        checkpoint.save_step(d, -1, [jnp.ones(1)])
    with pytest.raises(ValueError, match="disagrees"):
        checkpoint.save_step(d, 7, [jnp.ones(1)], metadata={"step": 8})
    with pytest.raises(TypeError):
        checkpoint.save_step(d, 1.5, [jnp.ones(1)])
    assert len(list(d.iterdir())) == 5
    big = checkpoint.save_step(d, 123456789, [jnp.ones(1)], keep=None)
    assert big.name == "ckpt_123456789.hkjax"
    assert checkpoint.latest(d) == big


def test_public_names_documented():
    for name in checkpoint.__all__:
        obj = getattr(checkpoint, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__) > 40, name
    assert issubclass(CheckpointError, ValueError)

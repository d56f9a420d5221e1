"""Tests for hkjax.data: embedded digits, IDX reading/writing, encoders."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkjax import data

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
HYP = settings(max_examples=20, deadline=None)


# --------------------------------------------------------------------------
# Embedded digits
# --------------------------------------------------------------------------


@pytest.mark.parametrize("split,n", [("train", 1500), ("test", 297), ("all", 1797)])
def test_digits_shapes_dtypes_range(split, n):
    ds = data.load_digits(split)
    assert isinstance(ds, data.Dataset)
    assert ds.images.shape == (n, 64) and ds.images.dtype == np.float32
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int32
    assert len(ds) == n
    assert ds.shape == (8, 8) and ds.n_classes == 10 and ds.name == "digits"
    assert ds.images.min() >= 0.0 and ds.images.max() <= 1.0
    assert ds.images.max() == 1.0
    # values are multiples of 1/16
    np.testing.assert_array_equal(ds.images * 16, np.round(ds.images * 16))
    assert ds.labels.min() >= 0 and ds.labels.max() <= 9


def test_digits_default_split_is_train():
    np.testing.assert_array_equal(data.load_digits().labels, data.load_digits("train").labels)


def test_digits_train_plus_test_is_all_and_classes_present():
    tr, te, al = (data.load_digits(s) for s in ("train", "test", "all"))
    np.testing.assert_array_equal(np.concatenate([tr.images, te.images]), al.images)
    np.testing.assert_array_equal(np.concatenate([tr.labels, te.labels]), al.labels)
    assert set(tr.labels.tolist()) == set(range(10))
    assert set(te.labels.tolist()) == set(range(10))


def test_digits_returns_fresh_copies():
    a = data.load_digits("test")
    a.images[:] = -1.0
    b = data.load_digits("test")
    assert b.images.min() >= 0.0


def test_digits_bad_split():
    with pytest.raises(ValueError, match="split") as exc:
        data.load_digits("validation")
    for valid in ("train", "test", "all"):
        assert valid in str(exc.value)


def test_embedded_digits_equal_sklearn():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    ds = data.load_digits("all")
    np.testing.assert_array_equal(ds.images * 16, ref.data.astype(np.float32))
    np.testing.assert_array_equal(ds.labels, ref.target)


def test_embedded_file_format():
    import importlib.resources

    res = importlib.resources.files("hkjax").joinpath("_data", "digits.npz")
    with res.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["images", "labels"]
        assert npz["images"].dtype == np.uint8 and npz["images"].shape == (1797, 64)
        assert npz["labels"].dtype == np.uint8 and npz["labels"].shape == (1797,)
        assert npz["images"].max() == 16


# --------------------------------------------------------------------------
# IDX round trips
# --------------------------------------------------------------------------

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@HYP
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    gz=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_idx_round_trip(tmp_path_factory, dtype, shape, gz, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        arr = rng.standard_normal(shape).astype(dt)
    else:
        info = np.iinfo(dt)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    data.write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz
    back = data.read_idx(path)
    assert back.dtype == dt and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, arr)


def test_idx_big_endian_layout(tmp_path):
    path = tmp_path / "x.idx"
    data.write_idx(path, np.array([[1, 258]], dtype=np.int32))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2])
    assert raw[4:12] == struct.pack(">II", 1, 2)
    assert raw[12:] == struct.pack(">ii", 1, 258)
    # str paths work too, and no temp files are left behind
    np.testing.assert_array_equal(data.read_idx(str(path)), [[1, 258]])
    assert os.listdir(tmp_path) == ["x.idx"]


def test_write_idx_rejects_unrepresentable(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        data.write_idx(tmp_path / "b", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dtype"):
        data.write_idx(tmp_path / "b", np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="dimensions"):
        data.write_idx(tmp_path / "b", np.zeros((1,) * 5, dtype=np.uint8))
    with pytest.raises(ValueError, match="size"):
        data.write_idx(tmp_path / "b", np.zeros((0, 3), dtype=np.uint8))
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# Broken IDX files
# --------------------------------------------------------------------------


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _expect_error(path, *fragments):
    with pytest.raises(data.IDXFormatError) as exc:
        data.read_idx(path)
    msg = str(exc.value)
    assert path.name in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    assert isinstance(exc.value, ValueError)
    return msg


def test_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-magic-idx1-ubyte"
    p.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    _expect_error(p, "magic")


def test_idx_unknown_dtype(tmp_path):
    p = tmp_path / "bad-dtype-idx1-ubyte"
    p.write_bytes(_header(0x0A, (2,)) + b"\x00\x01")
    _expect_error(p, "0x0A")


@pytest.mark.parametrize("ndim", [0, 5])
def test_idx_bad_ndim(tmp_path, ndim):
    p = tmp_path / f"ndim{ndim}-idx"
    p.write_bytes(bytes([0, 0, 0x08, ndim]) + struct.pack(f">{ndim}I", *([1] * ndim)) + b"\x00")
    _expect_error(p, "dimensions")


def test_idx_zero_dimension(tmp_path):
    p = tmp_path / "zero-dim-idx2-ubyte"
    p.write_bytes(_header(0x08, (3, 0)))
    _expect_error(p, "zero dimension")


def test_idx_absurd_size_rejected_before_reading(tmp_path):
    p = tmp_path / "huge-idx3-ubyte"
    p.write_bytes(_header(0x0E, (2**16, 2**16, 2)) + b"\x00" * 16)
    _expect_error(p, "elements")
    q = tmp_path / "huge-idx3-ubyte.gz"
    q.write_bytes(gzip.compress(_header(0x0E, (2**16, 2**16, 2)) + b"\x00" * 16))
    _expect_error(q, "elements")


def test_idx_truncated_data(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(_header(0x08, (10, 28, 28)) + b"\x00" * 1000)
    msg = _expect_error(p, "truncated", "7840", "1000")
    assert "re-download" in msg


def test_idx_truncated_multibyte(tmp_path):
    p = tmp_path / "floats-idx1"
    p.write_bytes(_header(0x0D, (4,)) + b"\x00" * 15)
    _expect_error(p, "truncated", "16", "15")


def test_idx_trailing_bytes(tmp_path):
    p = tmp_path / "trailing-idx1-ubyte"
    p.write_bytes(_header(0x08, (4,)) + b"\x00" * 5)
    _expect_error(p, "trailing")
    q = tmp_path / "trailing-idx1-ubyte.gz"
    q.write_bytes(gzip.compress(_header(0x08, (4,)) + b"\x00" * 5))
    _expect_error(q, "trailing")


def test_idx_header_shorter_than_ndim(tmp_path):
    p = tmp_path / "short-header-idx3-ubyte"
    p.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 5) + b"\x00\x00")
    _expect_error(p, "header")


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_idx_too_short_for_magic(tmp_path, content):
    p = tmp_path / "empty-idx"
    p.write_bytes(content)
    _expect_error(p, "too short")


def test_idx_gz_truncated_payload(tmp_path):
    # valid gzip stream whose decompressed content is too short
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_header(0x08, (2, 28, 28)) + b"\x07" * 100))
    _expect_error(p, "truncated", "1568", "100")


def test_idx_gz_truncated_stream(tmp_path):
    # a gzip file cut short in the middle of the compressed stream
    good = gzip.compress(_header(0x08, (50, 28, 28)) + os.urandom(50 * 28 * 28))
    p = tmp_path / "cut-idx3-ubyte.gz"
    p.write_bytes(good[: len(good) // 2])
    _expect_error(p, "gzip")


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nope")


# --------------------------------------------------------------------------
# load_idx / load_dataset
# --------------------------------------------------------------------------


def _write_mnist_like(directory, prefix, n, *, gz, labels=None, n_labels=None, h=28, w=28):
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    if labels is None:
        labels = (np.arange(n if n_labels is None else n_labels) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    data.write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", images)
    data.write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_tiny_directory(tmp_path, gz):
    d = tmp_path / "tiny-mnist"
    d.mkdir()
    tr_img, tr_lbl = _write_mnist_like(d, "train", 20, gz=gz)
    te_img, te_lbl = _write_mnist_like(d, "t10k", 7, gz=not gz)
    ds = data.load_idx(d, "train")
    assert ds.images.shape == (20, 784) and ds.images.dtype == np.float32
    assert ds.labels.dtype == np.int32
    assert ds.shape == (28, 28) and ds.n_classes == 10 and ds.name == "tiny-mnist"
    np.testing.assert_allclose(ds.images, tr_img.reshape(20, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, tr_lbl)
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    te = data.load_idx(str(d), "test")
    assert len(te) == 7
    np.testing.assert_array_equal(te.labels, te_lbl)
    al = data.load_dataset(f"idx:{d}", "all")
    assert len(al) == 27
    np.testing.assert_array_equal(al.images, np.concatenate([ds.images, te.images]))
    via_spec = data.load_dataset(f"idx:{d}/", "train")
    np.testing.assert_array_equal(via_spec.images, ds.images)
    assert via_spec.name == "tiny-mnist"


def test_load_idx_count_mismatch(tmp_path):
    _write_mnist_like(tmp_path, "train", 20, gz=False, n_labels=19)
    with pytest.raises(data.IDXFormatError) as exc:
        data.load_idx(tmp_path, "train")
    msg = str(exc.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert "20" in msg and "19" in msg


def test_load_idx_labels_out_of_range(tmp_path):
    _write_mnist_like(tmp_path, "train", 5, gz=False, labels=np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(data.IDXFormatError, match="0..9") as exc:
        data.load_idx(tmp_path, "train")
    assert "train-labels-idx1-ubyte" in str(exc.value)


def test_load_idx_wrong_image_dtype(tmp_path):
    data.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.float32))
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(data.IDXFormatError, match="uint8"):
        data.load_idx(tmp_path)


def test_load_idx_missing_file_names_expected(tmp_path):
    data.write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(FileNotFoundError) as exc:
        data.load_idx(tmp_path, "train")
    assert "train-labels-idx1-ubyte" in str(exc.value)
    with pytest.raises(FileNotFoundError) as exc:
        data.load_idx(tmp_path, "test")
    assert "t10k-images-idx3-ubyte" in str(exc.value)


def test_load_idx_missing_directory(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(FileNotFoundError) as exc:
        data.load_idx(missing)
    assert "no-such-dir" in str(exc.value)
    assert "train-images-idx3-ubyte" in str(exc.value)


def test_load_idx_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        data.load_idx(tmp_path, "validation")


def test_load_dataset_digits_and_bad_spec():
    ds = data.load_dataset("digits", "test")
    assert len(ds) == 297 and ds.name == "digits"
    for bad in ("mnist", "idx:", "mnist:", "", "digits:x", "fashion_mnist"):
        with pytest.raises(ValueError) as exc:
            data.load_dataset(bad, "train")
        for form in ("digits", "fashion-mnist", "mnist:DIR", "idx:"):
            assert form in str(exc.value)
    # the error and --dataset's help describe the same forms, from one table
    import typing

    from hkjax.config import DataConfig

    (arg,) = typing.get_type_hints(DataConfig, include_extras=True)["dataset"].__metadata__
    help_ = arg.help
    assert help_ == data.describe_dataset_specs()
    for form, what in data.DATASET_SPECS.items():
        assert f"'{form}' ({what})" in help_


def test_datasets_by_name_read_the_named_directory(tmp_path, monkeypatch):
    d = tmp_path / "some-copy"
    d.mkdir()
    tr_img, tr_lbl = _write_mnist_like(d, "train", 12, gz=True)
    _write_mnist_like(d, "t10k", 5, gz=True)
    mnist = data.load_dataset(f"mnist:{d}", "train")
    assert mnist.name == "mnist" and len(mnist) == 12
    np.testing.assert_allclose(mnist.images, tr_img.reshape(12, -1) / 255.0, rtol=1e-6)
    monkeypatch.setenv("HKJAX_FASHION_MNIST", str(d))
    fashion = data.load_dataset("fashion-mnist", "test")
    assert fashion.name == "fashion-mnist" and len(fashion) == 5
    with pytest.raises(FileNotFoundError, match="no such directory"):
        data.load_dataset(f"mnist:{tmp_path / 'absent'}", "train")


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HKJAX_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError) as exc:
        data.load_dataset("fashion-mnist", "train")
    msg = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "absent" in msg and "idx:DIR" in msg


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_system_copy(monkeypatch):
    monkeypatch.delenv("HKJAX_FASHION_MNIST", raising=False)
    assert data.load_dataset("fashion-mnist", "test").name == "fashion-mnist"
    tr = data.load_dataset(f"idx:{FASHION_DIR}", "train")
    te = data.load_idx(FASHION_DIR, "test")
    assert len(tr) == 60000 and len(te) == 10000
    assert tr.shape == te.shape == (28, 28)
    assert tr.images.shape == (60000, 784) and tr.images.dtype == np.float32
    assert tr.images.min() == 0.0 and tr.images.max() == 1.0
    assert tr.name == "fashion-mnist"
    assert np.bincount(tr.labels).tolist() == [6000] * 10
    assert np.bincount(te.labels).tolist() == [1000] * 10


def test_dataset_validates_shapes():
    with pytest.raises(ValueError):
        data.Dataset(np.zeros((3, 4), np.float32), np.zeros(2, np.int32), (2, 2), 10, "x")
    with pytest.raises(ValueError):
        data.Dataset(np.zeros((3, 4), np.float32), np.zeros(3, np.int32), (3, 3), 10, "x")


# --------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------
# Every new array shape costs a JAX compilation (~0.5 s), so the property
# tests draw values freely but shapes only from a few fixed configurations.

_pixel_osc = jax.jit(data.pixel_oscillators, static_argnames=("dim",))
_osc_state = jax.jit(data.oscillator_state, static_argnames=("dim", "n_hidden", "n_classes"))


def _pixels(n: int):
    return st.lists(st.floats(0.0, 1.0, width=32), min_size=n, max_size=n).map(
        lambda xs: np.asarray(xs, dtype=np.float32)
    )


def test_threshold_state():
    pix = jnp.asarray([0.0, 0.25, 1.0])
    x = data.threshold_state(pix, n_hidden=4, n_classes=2)
    assert x.shape == (9,)
    np.testing.assert_array_equal(x[:3], pix)
    np.testing.assert_array_equal(x[3:], 0.0)
    batched = jax.jit(
        jax.vmap(lambda p: data.threshold_state(p, n_hidden=4, n_classes=2))
    )(jnp.stack([pix, 1 - pix]))
    assert batched.shape == (2, 9)
    with pytest.raises(ValueError):
        data.threshold_state(pix, n_hidden=-1, n_classes=2)
    with pytest.raises(ValueError):
        data.threshold_state(jnp.zeros((2, 3)), n_hidden=1, n_classes=1)


@HYP
@given(drawer=st.data(), config=st.sampled_from([(1, 2), (5, 3), (64, 5)]))
def test_pixel_oscillators_unit_norm_and_first_component(drawer, config):
    n_pix, dim = config
    pixels = drawer.draw(_pixels(n_pix))
    s = np.asarray(_pixel_osc(pixels, dim), np.float64)
    assert s.shape == (n_pix, dim)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(s[:, 0], 2 * pixels.astype(np.float64) - 1, atol=1e-6)
    assert np.all(s[:, 1] >= 0)
    np.testing.assert_array_equal(s[:, 2:], 0.0)


def test_pixel_oscillators_special_values_and_grad():
    s = _pixel_osc(jnp.asarray([0.0, 0.5, 1.0, 0.5, 0.0]), 3)
    np.testing.assert_allclose(s[:3], [[-1, 0, 0], [0, 1, 0], [1, 0, 0]], atol=1e-7)
    grad = jax.jit(jax.grad(lambda p: data.pixel_oscillators(p, 3).sum()))
    g = grad(jnp.asarray([0.0, 0.3, 1.0, 0.5, 0.7]))
    assert np.all(np.isfinite(g))
    for bad in (1, 0):
        with pytest.raises(ValueError, match="dim"):
            data.pixel_oscillators(jnp.zeros(3), bad)


@HYP
@given(
    drawer=st.data(),
    config=st.sampled_from([(1, 2, 0, 0), (5, 3, 6, 3), (64, 4, 2, 10)]),
    seed=st.integers(0, 2**31 - 1),
)
def test_oscillator_state(drawer, config, seed):
    n_pix, dim, n_hidden, n_classes = config
    pixels = drawer.draw(_pixels(n_pix))
    key = jax.random.PRNGKey(seed)
    s = np.asarray(_osc_state(pixels, dim, n_hidden=n_hidden, n_classes=n_classes, key=key))
    assert s.shape == (n_pix + 1 + n_hidden + n_classes, dim)
    np.testing.assert_allclose(np.linalg.norm(s.astype(np.float64), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(s[:n_pix, 0], 2 * pixels - 1, atol=1e-6)
    np.testing.assert_array_equal(s[:n_pix, 2:], 0.0)
    assert data.reference_index(n_pix) == n_pix
    np.testing.assert_array_equal(s[n_pix], np.eye(dim)[0])
    # same key -> same state
    s2 = _osc_state(pixels, dim, n_hidden=n_hidden, n_classes=n_classes, key=key)
    np.testing.assert_array_equal(s, s2)


def test_oscillator_state_matches_pixel_encoder_and_jits():
    pix = jnp.linspace(0, 1, 64)
    f = jax.jit(lambda p, k: data.oscillator_state(p, 3, n_hidden=10, n_classes=10, key=k))
    a = f(pix, jax.random.PRNGKey(0))
    b = f(pix, jax.random.PRNGKey(1))
    assert a.shape == (85, 3)
    np.testing.assert_allclose(a[:64], _pixel_osc(pix, 3), atol=1e-7)
    assert not np.allclose(a[65:], b[65:])
    np.testing.assert_array_equal(a[:65], b[:65])
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    batch = jax.vmap(f)(jnp.stack([pix] * 4), keys)
    assert batch.shape == (4, 85, 3)
    np.testing.assert_allclose(batch[1], f(pix, keys[1]), atol=1e-6)
    with pytest.raises(ValueError):
        data.oscillator_state(pix, 3, n_hidden=-1, n_classes=2, key=jax.random.PRNGKey(0))


@functools.partial(jax.jit, static_argnames=("dim",))
def _rotation_case(seed, dim):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    rot = data.random_rotation(k1, dim)
    sigma = jax.random.normal(k2, (6, dim))
    return rot, sigma, data.rotate(sigma, rot)


@HYP
@given(dim=st.sampled_from([1, 3, 6]), seed=st.integers(0, 2**31 - 1))
def test_random_rotation_orthogonal_and_preserves_dots(dim, seed):
    rot, sigma, rotated = (np.asarray(a, np.float64) for a in _rotation_case(seed, dim))
    assert rot.shape == (dim, dim) and rotated.shape == sigma.shape
    np.testing.assert_allclose(rot @ rot.T, np.eye(dim), atol=1e-5)
    np.testing.assert_allclose(abs(np.linalg.det(rot)), 1.0, atol=1e-5)
    np.testing.assert_allclose(rotated @ rotated.T, sigma @ sigma.T, atol=1e-4)
    np.testing.assert_allclose(rotated, sigma @ rot.T, atol=1e-5)


def test_random_rotation_is_haar_like():
    # Both determinant signs occur, and the mean matrix is ~0 (Haar: E[Q] = 0).
    rots = np.stack([np.asarray(_rotation_case(seed, 3)[0]) for seed in range(400)])
    dets = np.linalg.det(rots)
    assert np.any(dets > 0) and np.any(dets < 0)
    assert np.abs(rots.mean(axis=0)).max() < 0.15
    with pytest.raises(ValueError):
        data.random_rotation(jax.random.PRNGKey(0), 0)
    with pytest.raises(ValueError):
        data.rotate(jnp.zeros((3, 2)), jnp.eye(3))


def test_one_hot_targets():
    t = data.one_hot_targets(jnp.asarray([0, 2, 1]), 3)
    np.testing.assert_array_equal(t, [[1, -1, -1], [-1, -1, 1], [-1, 1, -1]])
    single = data.one_hot_targets(4, 10)
    assert single.shape == (10,)
    assert float(single.sum()) == -8.0 and float(single[4]) == 1.0
    ds = data.load_digits("test")
    tt = data.one_hot_targets(ds.labels, ds.n_classes)
    assert tt.shape == (297, 10)
    np.testing.assert_array_equal(np.argmax(tt, axis=1), ds.labels)
    assert set(np.unique(np.asarray(tt)).tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError):
        data.one_hot_targets(jnp.asarray([0]), 0)

"""Datasets and state encoders for Hopfield/Kuramoto associative memories.

Two halves:

* **Loading (NumPy, host side).** :func:`load_digits` returns the 8x8
  handwritten digits embedded in the package (``hkjax/_data/digits.npz``, a
  copy of scikit-learn's data; scikit-learn is *not* needed at runtime).
  :func:`read_idx` / :func:`write_idx` handle the IDX format used by MNIST and
  Fashion-MNIST, :func:`load_idx` loads such a directory and
  :func:`load_dataset` dispatches on a short spec string (``"digits"`` or
  ``"idx:/some/dir"``). Every loader returns a :class:`Dataset` whose images
  are ``float32`` rows in ``[0, 1]``.

* **Encoders (JAX, one sample; jit/vmap friendly).** Following Fanaskov &
  Oseledets, "Binding threshold units with artificial oscillatory neurons"
  (arXiv:2505.03648):

  - :func:`threshold_state`: the initial state of the threshold (Hopfield)
    network, ``concat(pixels, zeros(n_hidden), zeros(n_classes))``.
  - :func:`pixel_oscillators`: a pixel ``p`` in ``[0, 1]`` becomes the unit
    vector ``(q, sqrt(1 - q**2), 0, ..., 0)`` with ``q = 2 p - 1``.
  - :func:`oscillator_state`: the initial state of the oscillatory (Kuramoto)
    network. Row layout, for ``n_pix`` pixels::

        rows [0, n_pix)                         pixel oscillators
        row  n_pix  (= reference_index(n_pix))  reference oscillator e_1
        rows [n_pix + 1, n_pix + 1 + n_hidden)  hidden oscillators (random)
        rows [n_pix + 1 + n_hidden, end)        class oscillators (random)

  - :func:`random_rotation` / :func:`rotate`: Haar-random orthogonal matrices
    and their action on every oscillator (the dynamics are rotation
    equivariant, so this is a symmetry test and a data augmentation).
  - :func:`one_hot_targets`: the paper's ``+-1`` class targets.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import operator
import os
import zlib
from typing import IO

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ._io import atomic_open

__all__ = [
    "Dataset",
    "IDXFormatError",
    "DIGITS_SPLITS",
    "IDX_SPLITS",
    "load_digits",
    "read_idx",
    "write_idx",
    "load_idx",
    "load_dataset",
    "DATASET_SPECS",
    "describe_dataset_specs",
    "FASHION_MNIST_DIR",
    "threshold_state",
    "pixel_oscillators",
    "oscillator_state",
    "reference_index",
    "random_rotation",
    "rotate",
    "one_hot_targets",
]


# --------------------------------------------------------------------------
# Dataset container
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """An in-memory labelled image data set.

    Attributes:
        images: ``float32`` array of shape ``(N, H * W)``, values in ``[0, 1]``,
            one flattened (row-major) image per row.
        labels: ``int32`` array of shape ``(N,)`` with class indices in
            ``0 .. n_classes - 1``.
        shape: image shape ``(H, W)``; ``images[i].reshape(shape)`` is image i.
        n_classes: number of classes.
        name: short human-readable name (``"digits"``, or the directory name
            for IDX data).

    ``len(dataset)`` is the number of samples ``N``.

    Raises:
        ValueError: on construction, if the arrays' shapes are inconsistent.
    """

    images: np.ndarray
    labels: np.ndarray
    shape: tuple[int, int]
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        labels = np.asarray(self.labels)
        if images.ndim != 2:
            raise ValueError(
                f"Dataset {self.name!r}: images must have shape (N, n_pixels), got {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"Dataset {self.name!r}: labels must have shape ({images.shape[0]},) to match "
                f"the images, got {labels.shape}"
            )
        if int(np.prod(self.shape)) != images.shape[1]:
            raise ValueError(
                f"Dataset {self.name!r}: image shape {self.shape} does not match "
                f"{images.shape[1]} pixels per row"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------
# Embedded 8x8 digits
# --------------------------------------------------------------------------

DIGITS_SPLITS: dict[str, slice] = {
    "train": slice(0, 1500),
    "test": slice(1500, 1797),
    "all": slice(0, 1797),
}
"""Fixed split of the 1797 embedded digits: first 1500 / last 297 / all."""

_DIGITS_N = 1797


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """Read the embedded ``digits.npz`` once; returns read-only uint8 arrays."""
    resource = importlib.resources.files("hkjax").joinpath("_data", "digits.npz")
    with resource.open("rb") as fh:
        with np.load(fh, allow_pickle=False) as npz:
            images = np.array(npz["images"], dtype=np.uint8)
            labels = np.array(npz["labels"], dtype=np.uint8)
    if images.shape != (_DIGITS_N, 64) or labels.shape != (_DIGITS_N,):
        raise RuntimeError(
            f"hkjax/_data/digits.npz is corrupted (images {images.shape}, labels "
            f"{labels.shape}); reinstall hkjax"
        )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(split: str = "train") -> Dataset:
    """Load the embedded 8x8 handwritten digits (scikit-learn's copy of UCI).

    The data are stored in the package, so nothing is downloaded and
    scikit-learn is not imported. The split is fixed and deterministic:
    ``"train"`` is the first 1500 images, ``"test"`` the last 297 and
    ``"all"`` all 1797 (every class appears in both train and test).

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        A :class:`Dataset` with ``images`` ``float32`` ``(N, 64)`` in ``[0, 1]``
        (raw counts 0..16 divided by 16), ``labels`` ``int32`` ``(N,)`` in
        0..9, ``shape=(8, 8)``, ``n_classes=10`` and ``name="digits"``. The
        arrays are fresh copies that the caller may modify.

    Raises:
        ValueError: if ``split`` is not one of the valid values.
    """
    if split not in DIGITS_SPLITS:
        raise ValueError(
            f"split={split!r} is not a valid digits split; valid values are "
            f"{sorted(DIGITS_SPLITS)}"
        )
    raw_images, raw_labels = _raw_digits()
    sl = DIGITS_SPLITS[split]
    images = raw_images[sl].astype(np.float32) / np.float32(16.0)
    labels = raw_labels[sl].astype(np.int32)
    return Dataset(images=images, labels=labels, shape=(8, 8), n_classes=10, name="digits")


# --------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------


class IDXFormatError(ValueError):
    """An IDX file (or an IDX data directory) is malformed or inconsistent.

    The message names the offending file, what is wrong and how to fix it.
    """


# IDX type code -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_MAX_NDIM = 4
_IDX_MAX_ELEMENTS = 2**31
_READ_CHUNK = 1 << 24  # 16 MiB
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bounded(fh: IO[bytes], limit: int) -> bytearray:
    """Read at most ``limit`` bytes in chunks (memory grows only with real data)."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = fh.read(min(_READ_CHUNK, limit - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_idx_stream(
    fh: IO[bytes], name: str, *, compressed: bool, file_size: int | None
) -> np.ndarray:
    """Parse an IDX stream positioned at its start (see :func:`read_idx`)."""
    what = "the decompressed file" if compressed else "the file"
    head = _read_bounded(fh, 4)
    if len(head) < 4:
        raise IDXFormatError(
            f"{name}: too short for an IDX header: {what} holds {len(head)} bytes, need at "
            f"least 4 (magic); the file is empty or truncated, re-download or check the copy"
        )
    if head[0] != 0 or head[1] != 0:
        raise IDXFormatError(
            f"{name}: bad magic number {bytes(head).hex()}: an IDX file starts with two zero "
            f"bytes; this is not an IDX file (or it is compressed in a format other than gzip)"
        )
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({_IDX_DTYPES[c].name})" for c in _IDX_DTYPES)
        raise IDXFormatError(
            f"{name}: unknown IDX data type code 0x{code:02X}; valid codes are {known}; "
            f"the file is corrupted or not an IDX file"
        )
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise IDXFormatError(
            f"{name}: unsupported number of dimensions {ndim}; hkjax reads IDX arrays with "
            f"1..{_IDX_MAX_NDIM} dimensions; the file is corrupted or not an image/label file"
        )
    dims_raw = _read_bounded(fh, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXFormatError(
            f"{name}: truncated header: {ndim} dimensions need {4 * ndim} bytes of sizes but "
            f"{what} holds only {len(dims_raw)} after the magic; re-download or check the copy"
        )
    dims = tuple(int(d) for d in np.frombuffer(bytes(dims_raw), dtype=">u4"))
    if any(d == 0 for d in dims):
        raise IDXFormatError(
            f"{name}: header has a zero dimension {dims}; an empty IDX array is not a usable "
            f"data set; re-download or check the copy"
        )
    n_elements = 1
    for d in dims:
        n_elements *= d
    if n_elements > _IDX_MAX_ELEMENTS:
        raise IDXFormatError(
            f"{name}: header dimensions {dims} give {n_elements} elements, more than the "
            f"limit of {_IDX_MAX_ELEMENTS}; the header is corrupted or this is not an IDX file"
        )
    dtype = _IDX_DTYPES[code]
    expected = n_elements * dtype.itemsize
    header_len = 4 + 4 * ndim
    if file_size is not None:
        # Plain file: compare sizes before reading (no allocation for a bad file).
        actual = file_size - header_len
        if actual != expected:
            _raise_length(name, what, dims, dtype, expected, actual)
    data = _read_bounded(fh, expected + 1)  # gzip errors are translated by read_idx
    if len(data) != expected:
        _raise_length(name, what, dims, dtype, expected, len(data), at_least=len(data) > expected)
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    else:
        arr = arr.view(dtype.newbyteorder("="))
    return arr


def _raise_length(
    name: str, what: str, dims: tuple[int, ...], dtype: np.dtype, expected: int, actual: int,
    *, at_least: bool = False,
) -> None:
    if actual < expected:
        raise IDXFormatError(
            f"{name}: truncated: header promises {expected} bytes of data (shape {dims}, "
            f"{dtype.name}) but {what} holds {actual}; re-download or check the copy"
        )
    holds = f"at least {actual}" if at_least else str(actual)
    raise IDXFormatError(
        f"{name}: trailing data: header promises {expected} bytes of data (shape {dims}, "
        f"{dtype.name}) but {what} holds {holds}; the file is corrupted or two files were "
        f"concatenated, re-download or check the copy"
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST array format).

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of
    dimensions, that many big-endian uint32 sizes, then the data, big-endian,
    row-major. Gzip-compressed files (detected from their content, usually
    named ``*.gz``) are read transparently.

    The header is validated before the data array is allocated: magic bytes,
    type code, ``1 <= ndim <= 4``, every size ``> 0``, at most 2**31 elements,
    and the data length must equal exactly ``prod(dims) * itemsize`` (a
    compressed stream is read with a bound of that many bytes plus one, so a
    corrupted header cannot make it decompress an arbitrarily large stream).

    Args:
        path: path of the file, plain or gzip-compressed.

    Returns:
        The array, in native byte order, with the header's shape and dtype.

    Raises:
        FileNotFoundError: if the file does not exist.
        IDXFormatError: if the file is not a valid IDX file; the message names
            the file, the problem and the fix.
    """
    name = os.fspath(path)
    with open(name, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                    return _read_idx_stream(gz, name, compressed=True, file_size=None)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise IDXFormatError(
                    f"{name}: corrupted or truncated gzip stream ({exc}); re-download or "
                    f"check the copy"
                ) from exc
        size = os.fstat(raw.fileno()).st_size
        return _read_idx_stream(raw, name, compressed=False, file_size=size)


def write_idx(path: str | os.PathLike[str], array: ArrayLike) -> None:
    """Write an array as an IDX file (gzip-compressed if the name ends in ``.gz``).

    The file is written to a temporary file in the same directory and then
    moved into place with :func:`os.replace`, so readers never see a partial
    file. :func:`read_idx` reads it back exactly.

    Args:
        path: destination path; a ``.gz`` suffix selects gzip compression.
        array: array-like with a dtype among uint8, int8, int16, int32,
            float32, float64, with 1..4 dimensions, all of size > 0.

    Raises:
        ValueError: if the dtype, number of dimensions or a size is not
            representable in (or readable back from) IDX.
    """
    arr = np.asarray(array)
    code = next(
        (c for c, dt in _IDX_DTYPES.items() if arr.dtype in (dt, dt.newbyteorder("="))), None
    )
    if code is None:
        valid = ", ".join(dt.newbyteorder("=").name for dt in _IDX_DTYPES.values())
        raise ValueError(f"array dtype {arr.dtype} cannot be stored in IDX; valid dtypes: {valid}")
    if not 1 <= arr.ndim <= _IDX_MAX_NDIM:
        raise ValueError(f"array has {arr.ndim} dimensions; IDX files here hold 1..{_IDX_MAX_NDIM}")
    if any(d == 0 for d in arr.shape) or arr.size > _IDX_MAX_ELEMENTS:
        raise ValueError(
            f"array shape {arr.shape} cannot be written: every size must be > 0 and the "
            f"total at most {_IDX_MAX_ELEMENTS} elements"
        )
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes()

    dest = os.fspath(path)
    with atomic_open(dest, "wb") as fh:
        if dest.endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            fh.write(header)
            fh.write(payload)


IDX_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "test": ("t10k",),
    "all": ("train", "t10k"),
}
"""Valid ``split`` values of :func:`load_idx` and the file prefixes they read."""


def _find_idx_file(directory: str, prefix: str, kind: str) -> str:
    """Locate ``{prefix}-{kind}`` (with/without ``.gz``; also the ``.idxN`` variant)."""
    base = f"{prefix}-{kind}"  # e.g. train-images-idx3-ubyte
    stem, _, suffix = base.rpartition("-idx")
    dotted = f"{stem}.idx{suffix}"  # e.g. train-images.idx3-ubyte (Kaggle mirrors)
    candidates = [base, base + ".gz", dotted, dotted + ".gz"]
    for cand in candidates:
        full = os.path.join(directory, cand)
        if os.path.isfile(full):
            return full
    raise FileNotFoundError(
        f"{directory}: no {base} or {base}.gz (also tried {dotted}[.gz]); put the "
        f"MNIST-format files there, e.g. from http://yann.lecun.com/exdb/mnist/ or "
        f"https://github.com/zalandoresearch/fashion-mnist"
    )


def _load_idx_pair(directory: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    img_path = _find_idx_file(directory, prefix, "images-idx3-ubyte")
    lbl_path = _find_idx_file(directory, prefix, "labels-idx1-ubyte")
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXFormatError(
            f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} "
            f"{images.shape}; this is not an MNIST-format image file"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IDXFormatError(
            f"{lbl_path}: expected integer labels of shape (N,), got {labels.dtype} "
            f"{labels.shape}; this is not an MNIST-format label file"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
            f"{labels.shape[0]} labels; the files belong to different data sets or one is "
            f"damaged, re-download them together"
        )
    if labels.min() < 0 or labels.max() > 9:
        raise IDXFormatError(
            f"{lbl_path}: labels must lie in 0..9, found values in "
            f"{int(labels.min())}..{int(labels.max())}; this is not an MNIST-format label file"
        )
    return images, labels


def load_idx(directory: str | os.PathLike[str], split: str = "train") -> Dataset:
    """Load an MNIST-format (IDX) data set directory, e.g. MNIST or Fashion-MNIST.

    Files looked for (each plain or with ``.gz``; the ``train-images.idx3-ubyte``
    spelling of some mirrors is accepted too):

    * ``"train"``: ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``;
    * ``"test"``: ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``;
    * ``"all"``: train followed by test.

    Debian's ``dataset-fashion-mnist`` package installs the four ``.gz`` files in
    ``/usr/share/datasets/fashion-mnist/``.

    Args:
        directory: the directory holding the files.
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        A :class:`Dataset` with ``images`` ``float32`` ``(N, H*W)`` (uint8 / 255),
        ``labels`` ``int32`` ``(N,)``, ``shape=(H, W)``, ``n_classes=10`` and
        ``name`` the directory's base name.

    Raises:
        ValueError: if ``split`` is not valid.
        FileNotFoundError: if the directory or a needed file is missing (the
            message names the files looked for).
        IDXFormatError: if a file is malformed, images are not uint8
            ``(N, H, W)``, image and label counts differ, labels are outside
            0..9, or train and test image shapes differ.
    """
    if split not in IDX_SPLITS:
        raise ValueError(
            f"split={split!r} is not a valid IDX split; valid values are {sorted(IDX_SPLITS)}"
        )
    dirname = os.fspath(directory)
    if not os.path.isdir(dirname):
        raise FileNotFoundError(
            f"{dirname}: no such directory; expected a directory holding "
            f"train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
            f"t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"
        )
    parts = [_load_idx_pair(dirname, prefix) for prefix in IDX_SPLITS[split]]
    shapes = {p[0].shape[1:] for p in parts}
    if len(shapes) != 1:
        raise IDXFormatError(
            f"{dirname}: train and test images have different shapes {sorted(shapes)}; the "
            f"files belong to different data sets, re-download them together"
        )
    height, width = parts[0][0].shape[1:]
    images = np.concatenate([p[0].reshape(p[0].shape[0], -1) for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int32)
    images = images.astype(np.float32)
    images /= np.float32(255.0)  # in place: no second float copy of the whole set at its peak
    name = os.path.basename(os.path.normpath(os.path.abspath(dirname)))
    return Dataset(
        images=images, labels=labels, shape=(int(height), int(width)), n_classes=10, name=name
    )


#: Where Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST; ``HKJAX_FASHION_MNIST=DIR``
#: points ``--dataset fashion-mnist`` at another copy of the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

DATASET_SPECS = {
    "digits": "embedded 8x8 digits",
    "fashion-mnist": "Debian's dataset-fashion-mnist",
    "mnist:DIR": "MNIST's IDX files in DIR",
    "idx:DIR": "any MNIST-format directory",
}
"""The forms of a dataset spec (:func:`load_dataset`, ``--dataset``) and what each names."""


def describe_dataset_specs() -> str:
    """The forms of :data:`DATASET_SPECS` in one phrase (error messages, ``--dataset``'s help)."""
    forms = [f"'{form}' ({what})" for form, what in DATASET_SPECS.items()]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def load_dataset(spec: str, split: str) -> Dataset:
    """Load a data set by name (as used on the command line, ``--dataset``).

    Args:
        spec: one of

            * ``"digits"``: the embedded 8x8 digits (:func:`load_digits`);
            * ``"fashion-mnist"``: the 60 000 / 10 000 28x28 Fashion-MNIST images from
              Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``,
              or the directory in the environment variable ``HKJAX_FASHION_MNIST``);
            * ``"mnist:DIR"``: MNIST's four IDX files in ``DIR`` (MNIST cannot be shipped:
              download it and name the directory);
            * ``"idx:DIR"``: any MNIST-format directory (:func:`load_idx`).
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        The :class:`Dataset`; ``name`` is ``"digits"``, ``"fashion-mnist"``, ``"mnist"`` or the
        directory's base name.

    Raises:
        ValueError: if ``spec`` has none of these forms or ``split`` is invalid.
        FileNotFoundError: Fashion-MNIST is not installed (the message says how to install
            it), or a directory or file is missing.
        IDXFormatError: as raised by :func:`load_idx`.
    """
    if spec == "digits":
        return load_digits(split)
    if spec == "fashion-mnist":
        directory = os.environ.get("HKJAX_FASHION_MNIST") or FASHION_MNIST_DIR
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"--dataset fashion-mnist: {directory} does not exist; install Debian's package "
                f"(apt-get install dataset-fashion-mnist), or set HKJAX_FASHION_MNIST=DIR, or pass "
                f"idx:DIR for a directory holding the four IDX files"
            )
        return dataclasses.replace(load_idx(directory, split), name="fashion-mnist")
    for prefix in ("mnist:", "idx:"):
        if isinstance(spec, str) and spec.startswith(prefix) and len(spec) > len(prefix):
            ds = load_idx(spec[len(prefix):], split)
            return dataclasses.replace(ds, name="mnist") if prefix == "mnist:" else ds
    raise ValueError(f"unknown dataset spec {spec!r}; valid forms are {describe_dataset_specs()}")


# --------------------------------------------------------------------------
# Encoders (JAX)
# --------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    """Validate a static integer argument (Python or NumPy int, not bool)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        ivalue = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if ivalue < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {ivalue}")
    return ivalue


def _as_pixels(pixels: ArrayLike) -> Array:
    arr = jnp.asarray(pixels)
    if arr.ndim != 1:
        raise ValueError(
            f"pixels must be a 1-D array (one flattened image), got shape {arr.shape}; "
            f"use jax.vmap for batches"
        )
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def threshold_state(
    pixels: Float[ArrayLike, " n_pix"], *, n_hidden: int, n_classes: int
) -> Float[Array, " n_state"]:
    """Initial state of the threshold (Hopfield) network for one image.

    ``x0 = concat(pixels, zeros(n_hidden), zeros(n_classes))``: visible units
    carry the pixels (used as given, expected in ``[0, 1]``), hidden and class
    units start at zero.

    Args:
        pixels: flattened image, shape ``(n_pix,)``.
        n_hidden: number of hidden units (``>= 0``, static).
        n_classes: number of class units (``>= 0``, static).

    Returns:
        Array of shape ``(n_pix + n_hidden + n_classes,)`` with the pixels'
        floating dtype (integer pixels are promoted to the default float).

    Raises:
        ValueError: if ``pixels`` is not 1-D or a count is negative.
        TypeError: if a count is not an integer.
    """
    n_hidden = _check_int("n_hidden", n_hidden, 0)
    n_classes = _check_int("n_classes", n_classes, 0)
    x = _as_pixels(pixels)
    return jnp.concatenate([x, jnp.zeros((n_hidden + n_classes,), dtype=x.dtype)])


def pixel_oscillators(pixels: Float[ArrayLike, " n_pix"], dim: int) -> Float[Array, "n_pix dim"]:
    """Encode pixels as unit vectors (oscillators) on the sphere ``S^{dim-1}``.

    A pixel ``p`` in ``[0, 1]`` becomes ``q = 2 p - 1`` in ``[-1, 1]`` and the unit
    vector ``(q, sqrt(1 - q**2), 0, ..., 0)``: black (0) maps to ``-e_1``, white
    (1) to ``+e_1``, grey 0.5 to ``e_2``. ``q`` is clipped to ``[-1, 1]`` so that
    rounding (or out-of-range input) still gives unit vectors; the square root
    is written so that its gradient is finite at ``q = +-1``.

    Args:
        pixels: flattened image, shape ``(n_pix,)``, values in ``[0, 1]``.
        dim: oscillator dimension, a static integer ``>= 2``.

    Returns:
        Array of shape ``(n_pix, dim)`` of unit vectors.

    Raises:
        ValueError: if ``dim < 2`` or ``pixels`` is not 1-D.
        TypeError: if ``dim`` is not an integer.
    """
    dim = _check_int("dim", dim, 2)
    x = _as_pixels(pixels)
    q = jnp.clip(2.0 * x - 1.0, -1.0, 1.0)
    r = 1.0 - q * q
    positive = r > 0
    s = jnp.where(positive, jnp.sqrt(jnp.where(positive, r, 1.0)), 0.0)
    rest = jnp.zeros((x.shape[0], dim - 2), dtype=x.dtype)
    return jnp.concatenate([q[:, None], s[:, None], rest], axis=1)


def reference_index(n_pix: int) -> int:
    """Row index of the reference oscillator ``e_1`` in :func:`oscillator_state`.

    Args:
        n_pix: number of pixels (pixel oscillators come first).

    Returns:
        ``n_pix``.

    Raises:
        ValueError: if ``n_pix`` is negative.
        TypeError: if ``n_pix`` is not an integer.
    """
    return _check_int("n_pix", n_pix, 0)


def oscillator_state(
    pixels: Float[ArrayLike, " n_pix"],
    dim: int,
    *,
    n_hidden: int,
    n_classes: int,
    key: PRNGKeyArray,
) -> Float[Array, "n_osc dim"]:
    """Initial state of the oscillatory (Kuramoto) network for one image.

    Row layout (``n = n_pix``)::

        [0, n)                              pixel oscillators (pixel_oscillators)
        n = reference_index(n)              reference oscillator e_1 = (1, 0, ..., 0)
        [n + 1, n + 1 + n_hidden)           hidden oscillators
        [n + 1 + n_hidden, end)             class oscillators

    Hidden and class oscillators are independent, uniformly distributed unit
    vectors: Gaussian draws from ``key`` normalised to unit length.

    Args:
        pixels: flattened image, shape ``(n_pix,)``, values in ``[0, 1]``.
        dim: oscillator dimension, a static integer ``>= 2``.
        n_hidden: number of hidden oscillators (``>= 0``, static).
        n_classes: number of class oscillators (``>= 0``, static).
        key: JAX PRNG key for the random hidden/class initialisation.

    Returns:
        Array of shape ``(n_pix + 1 + n_hidden + n_classes, dim)``; every row
        has unit norm.

    Raises:
        ValueError: if ``dim < 2``, a count is negative or ``pixels`` is not 1-D.
        TypeError: if ``dim`` or a count is not an integer.
    """
    dim = _check_int("dim", dim, 2)
    n_hidden = _check_int("n_hidden", n_hidden, 0)
    n_classes = _check_int("n_classes", n_classes, 0)
    pix = pixel_oscillators(pixels, dim)
    ref = jnp.zeros((1, dim), dtype=pix.dtype).at[0, 0].set(1.0)
    g = jax.random.normal(key, (n_hidden + n_classes, dim), dtype=pix.dtype)
    norm = jnp.linalg.norm(g, axis=1, keepdims=True)
    rand = g / jnp.maximum(norm, jnp.finfo(pix.dtype).tiny)
    return jnp.concatenate([pix, ref, rand], axis=0)


def random_rotation(key: PRNGKeyArray, dim: int) -> Float[Array, "dim dim"]:
    """Draw a Haar-distributed (uniformly random) orthogonal matrix.

    QR decomposition of a standard Gaussian matrix, with the sign fix
    ``Q * sign(diag(R))`` that makes the distribution exactly Haar. The
    determinant is ``+1`` or ``-1`` (reflections included).

    Args:
        key: JAX PRNG key.
        dim: matrix size, a static integer ``>= 1``.

    Returns:
        Orthogonal matrix of shape ``(dim, dim)`` (default float dtype).

    Raises:
        ValueError: if ``dim < 1``.
        TypeError: if ``dim`` is not an integer.
    """
    dim = _check_int("dim", dim, 1)
    a = jax.random.normal(key, (dim, dim))
    q, r = jnp.linalg.qr(a)
    signs = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(q.dtype)
    return q * signs[None, :]


def rotate(
    sigma: Float[ArrayLike, "*n dim"], rotation: Float[ArrayLike, "dim dim"]
) -> Float[Array, "*n dim"]:
    """Apply one rotation to every oscillator: ``sigma @ rotation.T``.

    Row ``i`` of the result is ``rotation @ sigma[i]``, so all pairwise dot
    products ``sigma_i . sigma_j`` (and norms) are preserved when ``rotation``
    is orthogonal.

    Args:
        sigma: oscillators, shape ``(..., dim)`` (e.g. ``(n, dim)``).
        rotation: matrix of shape ``(dim, dim)``, e.g. from :func:`random_rotation`.

    Returns:
        Array of the same shape as ``sigma``.

    Raises:
        ValueError: if the shapes do not fit.
    """
    s = jnp.asarray(sigma)
    rot = jnp.asarray(rotation)
    if rot.ndim != 2 or rot.shape[0] != rot.shape[1] or s.ndim < 1 or s.shape[-1] != rot.shape[0]:
        raise ValueError(
            f"rotate needs sigma of shape (..., dim) and rotation (dim, dim); got "
            f"{s.shape} and {rot.shape}"
        )
    return s @ rot.T


def one_hot_targets(labels: Int[ArrayLike, "*batch"], n_classes: int) -> Float[Array, "*batch n_classes"]:
    """The paper's ``+-1`` class targets: ``2 * one_hot(labels) - 1``.

    Args:
        labels: integer class index or array of indices in ``0 .. n_classes - 1``.
        n_classes: number of classes, a static integer ``>= 1``.

    Returns:
        Float array of shape ``labels.shape + (n_classes,)``: ``+1`` at the label,
        ``-1`` elsewhere (an out-of-range label gives all ``-1``, as
        :func:`jax.nn.one_hot` gives all zeros).

    Raises:
        ValueError: if ``n_classes < 1``.
        TypeError: if ``n_classes`` is not an integer.
    """
    n_classes = _check_int("n_classes", n_classes, 1)
    return 2.0 * jax.nn.one_hot(jnp.asarray(labels), n_classes) - 1.0

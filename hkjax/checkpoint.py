"""Versioned, atomic, validated checkpoints of JAX/Equinox/Optax pytrees.

A checkpoint is a single binary file holding the array leaves of a pytree (an
Equinox model, an Optax optimiser state, step counters, PRNG keys, ...) plus a
JSON header with user metadata. Nothing is ever pickled: arrays are stored as
raw little-endian bytes and the header is plain UTF-8 JSON, so loading a
checkpoint can never execute code.

File layout (all integers little-endian)::

    offset  size  field
    0       10    magic  b"HKJAXCKPT\\n"
    10      4     format version (uint32)
    14      8     header length H in bytes (uint64)
    22      32    sha256 digest of the header bytes
    54      H     header: UTF-8 JSON object
    54+H    ...   payload: the raw bytes of every array leaf, concatenated

The header JSON object has the keys

* ``"format_version"`` -- same value as the binary field;
* ``"hkjax_version"`` -- version of hkjax that wrote the file (or ``"unknown"``);
* ``"metadata"`` -- the user's JSON metadata;
* ``"leaves"`` -- one entry per leaf of the flattened tree, in
  :func:`jax.tree_util.tree_flatten` order, each with ``"path"`` (the
  :func:`jax.tree_util.keystr` of the leaf) and ``"kind"``:

  - ``"array"``: ``"shape"``, ``"dtype"`` (numpy dtype name, e.g. ``"float32"``),
    ``"offset"`` and ``"nbytes"`` into the payload;
  - ``"prng_key"``: a typed PRNG key array (``jax.random.key``), stored as its
    :func:`jax.random.key_data` (``"dtype"``/``"data_shape"``/``"offset"``/
    ``"nbytes"``) together with ``"impl"`` (the PRNG implementation name) and
    ``"shape"`` (the shape of the key array itself);
  - ``"static"``: a non-array leaf (Python scalar, activation function, ...).
    It is not stored; at load time the leaf of ``like`` is used, after checking
    that it matches what was saved (``"type"``, and ``"repr"`` for Python
    scalars or ``"name"`` for callables).

* ``"payload_nbytes"`` and ``"payload_sha256"`` -- length and sha256 of the payload.

Public API: :func:`save`, :func:`load`, :func:`read_metadata`,
:func:`save_step`, :func:`latest` and :class:`CheckpointError`.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import math
import operator
import os
import pathlib
import re
import struct
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._io import atomic_open

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "CheckpointError",
    "latest",
    "leaves",
    "load",
    "read_metadata",
    "save",
    "save_step",
]

PathLike = str | os.PathLike[str]
PyTree = Any

#: Magic bytes that start every hkjax checkpoint file.
MAGIC: bytes = b"HKJAXCKPT\n"
#: Newest checkpoint format version this module can read (and the one it writes).
FORMAT_VERSION: int = 1

# magic | uint32 format version | uint64 header length | sha256(header)
_PREFIX = struct.Struct("<IQ32s")
_PREFIX_LEN = len(MAGIC) + _PREFIX.size
_RESERVED_METADATA_KEYS = frozenset({"hkjax_version", "format_version"})
_STEP_FILE_RE = re.compile(r"ckpt_(\d+)\.hkjax")
_SCALAR_TYPES = (bool, int, float, complex, str, bytes)
_DIFFERENT_CONFIG_HINT = (
    "the checkpoint was written by a model with a different configuration; "
    "build `like` with the same configuration (sizes, depth, optimiser, graph "
    "layout) that was used when the checkpoint was saved (a network saved with "
    "formulation='auto' under an earlier rule is built inside "
    "hk.synapses.auto_rule(rule), rules in hk.synapses.AUTO_RULES; "
    "hk.checkpoint.leaves lists what the checkpoint holds)"
)


class CheckpointError(ValueError):
    """Raised when a checkpoint file is invalid or does not match the template.

    This covers files that are not hkjax checkpoints, files written by a newer
    (unsupported) checkpoint format, truncated or corrupted files (bad
    checksum), and checkpoints whose tree structure, leaf shapes or dtypes
    differ from the ``like`` template passed to :func:`load`.
    """


# ----------------------------------------------------------------------------
# helpers: versions, metadata, dtypes
# ----------------------------------------------------------------------------


def _hkjax_version() -> str:
    try:
        return importlib.metadata.version("hkjax")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _find_non_json(value: Any, where: str) -> str | None:
    """Return a description of the first non-JSON-serialisable part, or None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has a non-string key {k!r} (type {type(k).__name__})"
            found = _find_non_json(v, f"{where}[{k!r}]")
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _find_non_json(v, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    return f"{where} (type {type(value).__name__})"


def _validate_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata must be a dict with string keys, got {type(metadata).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(
                f"metadata key {key!r} is not a string; checkpoint metadata must be "
                "JSON serialisable (a dict with string keys)"
            )
        if key in _RESERVED_METADATA_KEYS:
            raise ValueError(
                f"metadata key {key!r} is reserved (it is filled in by hkjax); "
                "use a different key"
            )
        problem = _find_non_json(value, f"metadata[{key!r}]")
        if problem is not None:
            raise TypeError(
                f"metadata key {key!r} is not JSON serialisable: {problem}. "
                "Convert it to a JSON type (dict/list/str/int/float/bool/None), "
                "e.g. float(x) for numpy/JAX scalars or x.tolist() for arrays"
            )
        out[key] = value
    # Final check with the real encoder (also catches e.g. circular references).
    try:
        json.dumps(out)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata is not JSON serialisable: {e}") from e
    return out


def _dtype_from_name(name: str) -> np.dtype:
    # jnp.dtype knows the ml_dtypes extended types (bfloat16, float8_*, int4, ...).
    return np.dtype(jnp.dtype(name))


def _check_storable_dtype(dt: np.dtype, where: str) -> str:
    """Return the dtype name to store, or raise TypeError for unsupported dtypes."""
    if dt.hasobject:
        raise TypeError(
            f"leaf {where} has object dtype, which cannot be stored without pickle "
            "(hkjax checkpoints never use pickle); convert it to a numeric array "
            "or make it a static (non-array) field"
        )
    if dt.fields is not None or dt.subdtype is not None:
        raise TypeError(
            f"leaf {where} has structured dtype {dt}, which hkjax checkpoints do "
            "not support; store each field as a separate array"
        )
    is_extended = dt.kind == "V" and getattr(dt.type, "__module__", "") == "ml_dtypes"
    if dt.kind not in "biufc" and not is_extended:
        raise TypeError(
            f"leaf {where} has unsupported dtype {dt} (kind {dt.kind!r}); only "
            "boolean, integer, floating and complex arrays can be checkpointed"
        )
    name = dt.name
    try:
        roundtrip = _dtype_from_name(name)
    except TypeError as e:  # pragma: no cover - defensive
        raise TypeError(f"leaf {where} has dtype {dt} that cannot be named") from e
    if roundtrip.newbyteorder("=") != dt.newbyteorder("="):  # pragma: no cover
        raise TypeError(f"leaf {where} has dtype {dt} that does not round-trip")
    return name


def _to_le_bytes_view(arr: np.ndarray) -> np.ndarray:
    """C-contiguous, native-order, little-endian uint8 view of ``arr``'s data."""
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    arr = np.ascontiguousarray(arr)
    if sys.byteorder == "big" and arr.dtype.itemsize > 1:  # pragma: no cover
        arr = arr.byteswap()
    return arr.reshape(-1).view(np.uint8)


def _is_prng_key_dtype(dtype: Any) -> bool:
    try:
        return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))
    except TypeError:  # pragma: no cover - exotic dtype objects
        return False


def _is_template_array(x: Any) -> bool:
    return eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


def _callable_name(x: Any) -> str | None:
    name = getattr(x, "__qualname__", None) or getattr(x, "__name__", None)
    return name if isinstance(name, str) else None


def _static_entry(x: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "static", "type": type(x).__qualname__}
    if isinstance(x, _SCALAR_TYPES):
        entry["repr"] = repr(x)
    elif callable(x):
        # Functions (activations etc.): compare by name only, not by type, since
        # e.g. jax.nn.relu's wrapper type is an implementation detail of JAX.
        del entry["type"]
        entry["name"] = _callable_name(x)
    return entry


def _describe_static(entry: Mapping[str, Any]) -> str:
    if "repr" in entry:
        return f"{entry.get('type')} {entry['repr']}"
    if "name" in entry:
        return f"callable {entry['name']!r}"
    return f"object of type {entry.get('type')}"


# ----------------------------------------------------------------------------
# save
# ----------------------------------------------------------------------------


def _encode(tree: PyTree) -> tuple[list[dict[str, Any]], list[np.ndarray], int, str]:
    """Flatten ``tree`` into header leaf entries and payload chunks."""
    leaves_with_path, _ = jax.tree_util.tree_flatten_with_path(tree)
    entries: list[dict[str, Any]] = []
    chunks: list[np.ndarray] = []
    sha = hashlib.sha256()
    offset = 0
    for index, (key_path, leaf) in enumerate(leaves_with_path):
        path = jax.tree_util.keystr(key_path)
        where = f"{index} ({path or '<root>'})"
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(
                f"leaf {where} is an abstract jax.ShapeDtypeStruct with no data; "
                "save concrete arrays (ShapeDtypeStructs are only allowed in the "
                "`like` template of load)"
            )
        if not eqx.is_array(leaf):
            entry = _static_entry(leaf)
            entry["path"] = path
            entries.append(entry)
            continue
        entry = {"path": path}
        if _is_prng_key_dtype(leaf.dtype):
            impl = jax.random.key_impl(leaf)
            if not isinstance(impl, str):
                raise TypeError(
                    f"leaf {where} is a PRNG key with an unregistered implementation "
                    f"{impl!r}; only registered PRNG implementations (e.g. "
                    "'threefry2x32', 'rbg', 'unsafe_rbg') can be checkpointed"
                )
            data = np.asarray(jax.random.key_data(leaf))
            entry.update(
                kind="prng_key",
                impl=impl,
                shape=list(leaf.shape),
                data_shape=list(data.shape),
            )
        else:
            data = np.asarray(leaf)
            entry.update(kind="array", shape=list(data.shape))
        entry["dtype"] = _check_storable_dtype(data.dtype, where)
        raw = _to_le_bytes_view(data)
        entry["offset"] = offset
        entry["nbytes"] = int(raw.size)
        offset += int(raw.size)
        sha.update(memoryview(raw))
        chunks.append(raw)
        entries.append(entry)
    return entries, chunks, offset, sha.hexdigest()


def _write_all(f: Any, chunks: Iterable[bytes | np.ndarray]) -> None:
    """Write ``chunks`` to the open binary file ``f`` (a hook for crash tests)."""
    for chunk in chunks:
        f.write(memoryview(chunk))


def _atomic_write(path: pathlib.Path, chunks: Iterable[bytes | np.ndarray]) -> None:
    """Write ``chunks`` to ``path`` atomically (temp file + fsync + os.replace)."""
    with atomic_open(path, "wb") as f:
        _write_all(f, chunks)


def save(
    path: PathLike,
    tree: PyTree,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Save a pytree and JSON metadata to a single checkpoint file, atomically.

    The array leaves of ``tree`` (everything for which :func:`equinox.is_array`
    is true: JAX arrays, NumPy arrays and NumPy scalars, including legacy
    ``uint32`` PRNG keys and typed keys from :func:`jax.random.key`) are stored
    as raw little-endian bytes; non-array leaves (Python scalars, activation
    functions, ...) are recorded in the header and must match the ``like``
    template at load time. No pickle is used.

    The file is first written to a temporary file in the same directory,
    flushed and fsynced, then moved onto ``path`` with :func:`os.replace`, so
    a crash mid-save leaves any previous checkpoint at ``path`` intact.

    Args:
        path: Destination file. Its parent directory is created if missing. No
            suffix is added.
        tree: The pytree to save (model, optimiser state, step, PRNG key, ...,
            or a tuple/dict of those). Counters that must be restored should be
            arrays (e.g. ``jnp.asarray(step)``): Python scalars are treated as
            static and are checked, not restored.
        metadata: Optional JSON-serialisable dict with string keys (e.g. the
            model config and step). Tuples are stored as JSON lists and come
            back as lists. The keys ``"hkjax_version"`` and
            ``"format_version"`` are reserved.

    Returns:
        The path of the written checkpoint, as a :class:`pathlib.Path`.

    Raises:
        TypeError: If ``metadata`` is not JSON serialisable (the message names
            the offending key), or a leaf has a dtype that cannot be stored
            without pickle (object, string, structured dtypes) or is a PRNG key
            with an unregistered implementation.
        ValueError: If ``metadata`` uses a reserved key.
        OSError: If the file cannot be written; an existing file at ``path``
            is then left untouched.
    """
    path = pathlib.Path(path)
    user_metadata = _validate_metadata(metadata)
    entries, chunks, payload_nbytes, payload_sha = _encode(tree)
    header = {
        "format_version": FORMAT_VERSION,
        "hkjax_version": _hkjax_version(),
        "metadata": user_metadata,
        "leaves": entries,
        "payload_nbytes": payload_nbytes,
        "payload_sha256": payload_sha,
    }
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )
    prefix = MAGIC + _PREFIX.pack(
        FORMAT_VERSION, len(header_bytes), hashlib.sha256(header_bytes).digest()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, [prefix, header_bytes, *chunks])
    return path


# ----------------------------------------------------------------------------
# load
# ----------------------------------------------------------------------------


def _open_checkpoint(path: pathlib.Path) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "hkjax checkpoint file not found", str(path)
        ) from None


def _corrupted(path: pathlib.Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is corrupted ({why}); the file was damaged or only partially "
        "written, restore it from another checkpoint"
    )


def _require(cond: bool, path: pathlib.Path, why: str) -> None:
    if not cond:
        raise _corrupted(path, f"malformed header: {why}")


def _read_header(f: Any, path: pathlib.Path) -> dict[str, Any]:
    """Read and validate magic, format version and header; leave ``f`` at payload."""
    prefix = f.read(_PREFIX_LEN)
    if prefix[: len(MAGIC)] != MAGIC:
        raise CheckpointError(
            f"{path} is not an hkjax checkpoint (bad magic bytes); expected a file "
            "written by hkjax.checkpoint.save"
        )
    if len(prefix) < len(MAGIC) + 4:
        raise _corrupted(path, "file is truncated inside the fixed-size prefix")
    (version,) = struct.unpack_from("<I", prefix, len(MAGIC))
    _check_version(version, path)
    if len(prefix) < _PREFIX_LEN:
        raise _corrupted(path, "file is truncated inside the fixed-size prefix")
    _, header_len, header_sha = _PREFIX.unpack_from(prefix, len(MAGIC))
    remaining = os.fstat(f.fileno()).st_size - _PREFIX_LEN
    if header_len > remaining:
        raise _corrupted(
            path,
            f"truncated: header should be {header_len} bytes but only {remaining} "
            "bytes follow the prefix",
        )
    header_bytes = f.read(header_len)
    if len(header_bytes) != header_len:  # pragma: no cover - raced truncation
        raise _corrupted(path, "truncated header")
    if hashlib.sha256(header_bytes).digest() != header_sha:
        raise _corrupted(path, "checksum mismatch in header")
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _corrupted(path, f"header is not valid UTF-8 JSON: {e}") from e
    _require(isinstance(header, dict), path, "header is not a JSON object")
    header_version = header.get("format_version")
    _require(
        isinstance(header_version, int) and not isinstance(header_version, bool),
        path,
        "missing format_version",
    )
    _check_version(header_version, path)
    _require(
        header_version == version,
        path,
        f"header format_version {header_version} differs from file version {version}",
    )
    _require(isinstance(header.get("metadata"), dict), path, "missing metadata")
    _require(isinstance(header.get("hkjax_version"), str), path, "missing hkjax_version")
    _require(isinstance(header.get("leaves"), list), path, "missing leaves")
    _require(
        isinstance(header.get("payload_nbytes"), int)
        and header["payload_nbytes"] >= 0,
        path,
        "missing payload_nbytes",
    )
    _require(isinstance(header.get("payload_sha256"), str), path, "missing payload_sha256")
    return header


def _check_version(version: int, path: pathlib.Path) -> None:
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format version {version}, but this hkjax "
            f"({_hkjax_version()}) only supports versions up to {FORMAT_VERSION}; "
            "upgrade hkjax to load it"
        )
    if version < 1:
        raise _corrupted(path, f"invalid format version {version}")


def _is_int_list(x: Any) -> bool:
    return isinstance(x, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in x
    )


def _validate_entry(
    entry: Any, index: int, path: pathlib.Path, payload_nbytes: int
) -> dict[str, Any]:
    what = f"leaf entry {index}"
    _require(isinstance(entry, dict), path, f"{what} is not an object")
    _require(isinstance(entry.get("path"), str), path, f"{what} has no path")
    kind = entry.get("kind")
    _require(kind in ("array", "prng_key", "static"), path, f"{what} has bad kind")
    if kind == "static":
        return entry
    _require(_is_int_list(entry.get("shape")), path, f"{what} has a bad shape")
    if kind == "prng_key":
        _require(isinstance(entry.get("impl"), str), path, f"{what} has no impl")
        _require(_is_int_list(entry.get("data_shape")), path, f"{what} bad data_shape")
        data_shape = entry["data_shape"]
    else:
        data_shape = entry["shape"]
    _require(isinstance(entry.get("dtype"), str), path, f"{what} has no dtype")
    try:
        dt = _dtype_from_name(entry["dtype"])
    except TypeError:
        raise _corrupted(path, f"{what} has unknown dtype {entry['dtype']!r}") from None
    offset, nbytes = entry.get("offset"), entry.get("nbytes")
    _require(
        isinstance(offset, int) and isinstance(nbytes, int) and offset >= 0,
        path,
        f"{what} has bad offset/nbytes",
    )
    _require(
        nbytes == math.prod(data_shape) * dt.itemsize,
        path,
        f"{what} nbytes does not match its shape and dtype",
    )
    _require(offset + nbytes <= payload_nbytes, path, f"{what} lies outside the payload")
    return entry


def _leaf_name(index: int, key_path: str) -> str:
    return f"leaf {index} ({key_path or '<root>'})"


def _template_description(leaf: Any) -> str:
    if _is_template_array(leaf):
        if _is_prng_key_dtype(leaf.dtype):
            return f"a PRNG key array of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"
        return f"an array of shape {tuple(leaf.shape)} and dtype {np.dtype(leaf.dtype)}"
    return _describe_static(_static_entry(leaf))


def _saved_description(entry: Mapping[str, Any]) -> str:
    if entry["kind"] == "array":
        return f"an array of shape {tuple(entry['shape'])} and dtype {entry['dtype']}"
    if entry["kind"] == "prng_key":
        return (
            f"a PRNG key array of shape {tuple(entry['shape'])} "
            f"(impl {entry['impl']!r})"
        )
    return _describe_static(entry)


def _check_entry_against_template(
    entry: Mapping[str, Any],
    like_leaf: Any,
    index: int,
    key_path: str,
    path: pathlib.Path,
) -> None:
    name = _leaf_name(index, key_path)
    if entry["path"] != key_path:
        raise CheckpointError(
            f"{path}: {name} is stored under the path {entry['path'] or '<root>'!r} "
            f"in the checkpoint but {key_path or '<root>'!r} in `like`; "
            f"{_DIFFERENT_CONFIG_HINT}"
        )
    saved_kind = entry["kind"]
    if _is_template_array(like_leaf):
        like_kind = "prng_key" if _is_prng_key_dtype(like_leaf.dtype) else "array"
    else:
        like_kind = "static"
    if saved_kind != like_kind:
        raise CheckpointError(
            f"{path}: {name} is {_saved_description(entry)} in the checkpoint but "
            f"{_template_description(like_leaf)} in `like`; {_DIFFERENT_CONFIG_HINT}"
        )
    if saved_kind == "static":
        expected = _static_entry(like_leaf)
        if any(entry.get(k) != expected.get(k) for k in ("type", "repr", "name")):
            raise CheckpointError(
                f"{path}: non-array {name} was {_describe_static(entry)} when saved "
                f"but is {_describe_static(expected)} in `like`. Non-array leaves "
                "are not restored from the checkpoint, so `like` must match them; "
                f"{_DIFFERENT_CONFIG_HINT} (store values that change during "
                "training, such as step counters, as arrays)"
            )
        return
    saved_shape = tuple(entry["shape"])
    like_shape = tuple(like_leaf.shape)
    if saved_shape != like_shape:
        raise CheckpointError(
            f"{path}: {name} has shape {saved_shape} in the checkpoint but shape "
            f"{like_shape} in `like`; {_DIFFERENT_CONFIG_HINT}"
        )
    if saved_kind == "array":
        like_dtype = np.dtype(like_leaf.dtype)
        saved_dtype = _dtype_from_name(entry["dtype"])
        if saved_dtype != like_dtype:
            hint = _DIFFERENT_CONFIG_HINT
            if {saved_dtype.itemsize, like_dtype.itemsize} == {4, 8}:
                hint = (
                    "if the checkpoint was saved with 64-bit types enabled, enable "
                    "them (jax.config.update('jax_enable_x64', True)) before building "
                    "`like`, or cast the template; otherwise " + hint
                )
            raise CheckpointError(
                f"{path}: {name} has dtype {saved_dtype} in the checkpoint but dtype "
                f"{like_dtype} in `like`; {hint}"
            )


def _to_jax(value: np.ndarray, like_leaf: Any) -> jax.Array:
    sharding = getattr(like_leaf, "sharding", None)
    if sharding is not None and len(sharding.device_set) > 1:
        return jax.device_put(value, sharding)
    return jnp.asarray(value)


def _decode_leaf(
    entry: Mapping[str, Any],
    like_leaf: Any,
    payload: bytes,
    index: int,
    path: pathlib.Path,
) -> Any:
    if entry["kind"] == "static":
        return like_leaf
    dt = _dtype_from_name(entry["dtype"])
    data_shape = entry["data_shape"] if entry["kind"] == "prng_key" else entry["shape"]
    count = math.prod(data_shape)
    arr = np.frombuffer(payload, dtype=dt, count=count, offset=entry["offset"])
    if sys.byteorder == "big" and dt.itemsize > 1:  # pragma: no cover
        arr = arr.byteswap()
    arr = arr.reshape(data_shape).copy()
    name = _leaf_name(index, entry["path"])

    if entry["kind"] == "prng_key":
        try:
            key = jax.random.wrap_key_data(jnp.asarray(arr), impl=entry["impl"])
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(
                f"{path}: {name} is a PRNG key with implementation "
                f"{entry['impl']!r}, which this JAX cannot rebuild: {e}"
            ) from e
        if key.dtype != like_leaf.dtype or key.shape != tuple(like_leaf.shape):
            raise CheckpointError(
                f"{path}: {name} is a PRNG key of dtype {key.dtype} (impl "
                f"{entry['impl']!r}) and shape {key.shape} in the checkpoint but "
                f"dtype {like_leaf.dtype} and shape {tuple(like_leaf.shape)} in "
                f"`like`; {_DIFFERENT_CONFIG_HINT}"
            )
        sharding = getattr(like_leaf, "sharding", None)
        if sharding is not None and len(sharding.device_set) > 1:
            return jax.device_put(key, sharding)
        return key

    if isinstance(like_leaf, np.generic):
        return arr[()]
    if isinstance(like_leaf, np.ndarray):
        return arr
    out = _to_jax(arr, like_leaf)
    if out.dtype != arr.dtype:
        raise CheckpointError(
            f"{path}: {name} has dtype {arr.dtype} but JAX converted it to "
            f"{out.dtype}; enable 64-bit types with "
            "jax.config.update('jax_enable_x64', True) before loading, or use a "
            "NumPy array in `like`"
        )
    return out


def leaves(path: PathLike) -> list[dict[str, Any]]:
    """What a checkpoint holds, without reading its arrays: for every leaf its tree path,
    kind (``"array"``, ``"prng_key"``, ``"static"``) and, for arrays, shape and dtype.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint or its header is damaged.
    """
    path = pathlib.Path(path)
    with _open_checkpoint(path) as f:
        header = _read_header(f, path)
    out = []
    for i, entry in enumerate(header["leaves"]):
        entry = _validate_entry(entry, i, path, header["payload_nbytes"])
        row = {"path": entry["path"], "kind": entry["kind"]}
        if entry["kind"] != "static":
            row.update(shape=tuple(entry["shape"]), dtype=entry["dtype"])
        out.append(row)
    return out


def load(path: PathLike, like: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`, validating it against ``like``.

    Everything is checked before anything is returned: the magic bytes, the
    format version, the header (JSON and its checksum), the payload length and
    sha256, the number of leaves, each leaf's tree path, kind, shape and dtype,
    and that non-array leaves of ``like`` equal the ones that were saved.

    Args:
        path: The checkpoint file.
        like: A pytree with the same structure as the saved one, e.g. a freshly
            initialised model / optimiser state built with the same
            configuration. Array leaves may be JAX arrays, NumPy arrays/scalars
            or :class:`jax.ShapeDtypeStruct` placeholders; only their shape and
            dtype are used. Non-array leaves are reused as they are.

    Returns:
        ``(tree, metadata)``: ``tree`` has the structure of ``like`` with every
        array leaf replaced by the saved values, bit for bit and with the same
        dtype. Leaves that are JAX arrays or ``ShapeDtypeStruct`` in ``like``
        come back as JAX arrays (typed PRNG keys as typed keys); NumPy leaves in
        ``like`` come back as NumPy arrays/scalars. ``metadata`` is the user
        metadata dict that was passed to :func:`save`.

    Raises:
        FileNotFoundError: If ``path`` does not exist (the message names it).
        CheckpointError: If the file is not an hkjax checkpoint, was written by
            a newer, unsupported format version (upgrade hkjax), is truncated or
            corrupted (checksum mismatch), or does not match ``like`` (number
            of leaves, a leaf's path, shape, dtype or static value; the
            message names the leaf).
    """
    path = pathlib.Path(path)
    with _open_checkpoint(path) as f:
        header = _read_header(f, path)
        payload = f.read()
    expected_nbytes = header["payload_nbytes"]
    if len(payload) != expected_nbytes:
        state = "truncated" if len(payload) < expected_nbytes else "has trailing data"
        raise _corrupted(
            path,
            f"payload is {len(payload)} bytes but the header says "
            f"{expected_nbytes}; the file {state}",
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise _corrupted(path, "checksum mismatch in payload")

    entries = [
        _validate_entry(e, i, path, expected_nbytes)
        for i, e in enumerate(header["leaves"])
    ]
    like_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    key_paths = [jax.tree_util.keystr(kp) for kp, _ in like_leaves]
    if len(entries) != len(like_leaves):
        saved_paths = [e["path"] for e in entries]
        first = next(
            (i for i, (a, b) in enumerate(zip(saved_paths, key_paths)) if a != b),
            min(len(saved_paths), len(key_paths)),
        )
        saved_at = saved_paths[first] if first < len(saved_paths) else "<end>"
        like_at = key_paths[first] if first < len(key_paths) else "<end>"
        raise CheckpointError(
            f"{path}: the checkpoint has {len(entries)} leaves but `like` has "
            f"{len(like_leaves)} (first difference at leaf {first}: {saved_at!r} in "
            f"the checkpoint, {like_at!r} in `like`); {_DIFFERENT_CONFIG_HINT}"
        )
    for index, (entry, key_path, (_, like_leaf)) in enumerate(
        zip(entries, key_paths, like_leaves)
    ):
        _check_entry_against_template(entry, like_leaf, index, key_path, path)
    new_leaves = [
        _decode_leaf(entry, like_leaf, payload, index, path)
        for index, (entry, (_, like_leaf)) in enumerate(zip(entries, like_leaves))
    ]
    tree = jax.tree_util.tree_unflatten(treedef, new_leaves)
    return tree, dict(header["metadata"])


def read_metadata(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint's metadata without loading (or verifying) its payload.

    The magic bytes, format version and header checksum are validated; the
    array payload is not read, so this is cheap even for large checkpoints.

    Args:
        path: The checkpoint file.

    Returns:
        A new dict with the user metadata passed to :func:`save`, plus
        ``"hkjax_version"`` (the hkjax version that wrote the file, or
        ``"unknown"``) and ``"format_version"`` (an int).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint, uses a newer
            format version, or its header is truncated or corrupted.
    """
    path = pathlib.Path(path)
    with _open_checkpoint(path) as f:
        header = _read_header(f, path)
    out = dict(header["metadata"])
    out["hkjax_version"] = header["hkjax_version"]
    out["format_version"] = header["format_version"]
    return out


# ----------------------------------------------------------------------------
# step checkpoints in a directory
# ----------------------------------------------------------------------------


def _step_checkpoints(directory: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(step, path)`` of files named ``ckpt_<digits>.hkjax``, sorted by step."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        m = _STEP_FILE_RE.fullmatch(name)
        if m is None:
            continue
        p = directory / name
        if p.is_file():
            found.append((int(m.group(1)), p))
    found.sort(key=lambda sp: (sp[0], sp[1].name))
    return found


def save_step(
    directory: PathLike,
    step: int,
    tree: PyTree,
    *,
    metadata: Mapping[str, Any] | None = None,
    keep: int | None = 3,
) -> pathlib.Path:
    """Save ``tree`` as ``directory/ckpt_{step:08d}.hkjax`` and rotate old ones.

    After the new checkpoint is written (atomically, see :func:`save`), all
    but the ``keep`` checkpoints with the highest step numbers are deleted.
    The checkpoint just written is never deleted (even if newer steps exist,
    e.g. after restarting from an earlier step), and only files matching
    ``ckpt_<digits>.hkjax`` are touched.

    Args:
        directory: Checkpoint directory (created if missing).
        step: Non-negative training step; also stored as ``metadata["step"]``
            unless ``metadata`` already has that key with the same value.
        tree: The pytree to save (see :func:`save`).
        metadata: Optional JSON-serialisable metadata (see :func:`save`).
        keep: How many checkpoints to keep (>= 1), or ``None`` to keep all.

    Returns:
        The path of the written checkpoint.

    Raises:
        ValueError: If ``step`` is negative, ``keep`` is < 1, or
            ``metadata["step"]`` disagrees with ``step``.
        TypeError: If ``step`` is not an integer, or as for :func:`save`.
        OSError: If writing fails.
    """
    if isinstance(step, bool):
        raise TypeError("step must be an integer, not a bool")
    step = operator.index(step)
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if keep is not None:
        if isinstance(keep, bool):
            raise TypeError("keep must be an integer or None")
        keep = operator.index(keep)
        if keep < 1:
            raise ValueError(
                f"keep must be >= 1 (or None to keep every checkpoint), got {keep}"
            )
    md = dict(metadata) if metadata is not None else {}
    if "step" in md and md["step"] != step:
        raise ValueError(
            f"metadata['step'] = {md['step']!r} disagrees with step = {step}"
        )
    md["step"] = step
    directory = pathlib.Path(directory)
    written = save(directory / f"ckpt_{step:08d}.hkjax", tree, metadata=md)
    if keep is not None:
        existing = _step_checkpoints(directory)
        survivors = {p.name for _, p in existing[-keep:]} | {written.name}
        for _, p in existing:
            if p.name not in survivors:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
    return written


def latest(directory: PathLike) -> pathlib.Path | None:
    """Return the checkpoint with the highest step number in ``directory``.

    Only files named ``ckpt_<digits>.hkjax`` (as written by :func:`save_step`)
    are considered; leftover temporary files from interrupted saves are
    skipped.

    Args:
        directory: The checkpoint directory.

    Returns:
        The path of the newest checkpoint, or ``None`` if there is none (or the
        directory does not exist).

    Raises:
        OSError: If the directory exists but cannot be listed.
    """
    found = _step_checkpoints(pathlib.Path(directory))
    return found[-1][1] if found else None

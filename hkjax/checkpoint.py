"""Versioned, atomic, validated checkpoints of JAX/Equinox/Optax pytrees, stored as safetensors.

A checkpoint is one `safetensors <https://huggingface.co/docs/safetensors>`_ file: any
safetensors reader opens it, and nothing in it is ever unpickled. Every array leaf of the
pytree (model, optimiser state, step, PRNG keys, ...) is a tensor named by its key path,
:func:`jax.tree_util.keystr` (e.g. ``"['model'].layers[0].weight"``), so
``safetensors.numpy.load_file(path)`` gives the arrays by name without hkjax. Typed PRNG keys
are stored as their :func:`jax.random.key_data`; dtypes outside the ones every safetensors
version reads for NumPy (bool, (u)int8-64, float16/32/64) are stored as their raw bits: complex
numbers as ``(..., 2)`` float pairs (real, imaginary), ``bfloat16`` and other ``ml_dtypes`` as
unsigned integers of the same width.

The safetensors ``__metadata__`` holds two strings: ``"hkjax"``, a JSON object, and
``"hkjax_sha256"``, the sha256 of that JSON's UTF-8 bytes. The JSON object has the keys

* ``"format_version"`` (:data:`FORMAT_VERSION`) and ``"hkjax_version"`` (the writer's version);
* ``"metadata"``: the user's JSON metadata;
* ``"leaves"``: one entry per leaf of the tree, in :func:`jax.tree_util.tree_flatten` order,
  each with ``"path"`` (its key path, the tensor's name) and ``"kind"``:

  - ``"array"``: ``"shape"``, ``"dtype"`` (NumPy name, e.g. ``"float32"``) and ``"sha256"``
    of the stored tensor's little-endian bytes;
  - ``"prng_key"``: a typed key array (:func:`jax.random.key`): ``"impl"`` (the PRNG
    implementation's name), ``"shape"`` (of the key array), ``"dtype"`` and
    ``"data_shape"`` of its key data, and ``"sha256"``;
  - ``"static"``: a non-array leaf (Python scalar, activation function, ...), not stored; at
    load the leaf of ``like`` is used after checking that it matches what was saved
    (``"type"``, plus ``"repr"`` for Python scalars, or ``"name"`` for callables).

**Derived arrays are not stored.** A module whose class names fields in a tuple
``derived_fields`` (e.g. :class:`hkjax.synapses.Pairs`: the index arrays of a graph's layout,
computed from its edges) is saved without them; :func:`load` takes them from ``like`` after
checking that the module's stored arrays (the edges) equal ``like``'s. A change in how a
layout is computed therefore never breaks a checkpoint.

Public API: :func:`save`, :func:`load`, :func:`read_metadata`, :func:`leaves`,
:func:`save_step`, :func:`latest` and :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import json
import operator
import os
import pathlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy

from ._io import atomic_open

__all__ = [
    "FORMAT_VERSION",
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

#: The checkpoint format version this module reads and writes.
FORMAT_VERSION: int = 3
#: Earlier format versions, and the last hkjax release that reads each.
_OLD_FORMATS = {2: "0.2.0"}

_HEADER_KEY, _HEADER_SHA_KEY = "hkjax", "hkjax_sha256"
#: The start of files in hkjax's own binary format, and the last hkjax release that reads it.
_OWN_FORMAT_MAGIC, _OWN_FORMAT_READER = b"HKJAXCKPT\n", "0.1.0"
_RESERVED_METADATA_KEYS = frozenset({"hkjax_version", "format_version"})
_STEP_FILE_RE = re.compile(r"ckpt_(\d+)\.hkjax")
_SCALAR_TYPES = (bool, int, float, complex, str, bytes)
#: Dtypes stored as themselves; others are stored as their bits (see the module docstring).
_PLAIN_DTYPES = frozenset(map(np.dtype, "bool int8 uint8 int16 uint16 int32 uint32 int64 uint64 "
                                        "float16 float32 float64".split()))
_DIFFERENT_CONFIG_HINT = (
    "the checkpoint was written by a model with a different configuration; "
    "build `like` with the same configuration (sizes, depth, optimiser, graphs) "
    "that was used when the checkpoint was saved (hk.checkpoint.leaves lists what "
    "the checkpoint holds)"
)


class CheckpointError(ValueError):
    """Raised when a checkpoint file is invalid or does not match the template.

    This covers files that are not hkjax checkpoints (or are in another format or a newer
    format version), truncated or corrupted files (checksum mismatch), and checkpoints whose
    tree structure, leaf shapes, dtypes or static leaves differ from the ``like`` template
    passed to :func:`load`.
    """


# ----------------------------------------------------------------------------
# metadata, dtypes and leaf descriptions
# ----------------------------------------------------------------------------


def _hkjax_version() -> str:
    try:
        return importlib.metadata.version("hkjax")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _find_non_json(value: Any, where: str) -> str | None:
    """A description of the first part of ``value`` that is not JSON, or None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has a non-string key {k!r} (type {type(k).__name__})"
            if (found := _find_non_json(v, f"{where}[{k!r}]")) is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        found = (_find_non_json(v, f"{where}[{i}]") for i, v in enumerate(value))
        return next((f for f in found if f is not None), None)
    return f"{where} (type {type(value).__name__})"


def _validate_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict with string keys, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata key {key!r} is not a string; checkpoint metadata must be "
                            "JSON serialisable (a dict with string keys)")
        if key in _RESERVED_METADATA_KEYS:
            raise ValueError(f"metadata key {key!r} is reserved (it is filled in by hkjax); "
                             "use a different key")
        if (problem := _find_non_json(value, f"metadata[{key!r}]")) is not None:
            raise TypeError(
                f"metadata key {key!r} is not JSON serialisable: {problem}. Convert it to a "
                "JSON type (dict/list/str/int/float/bool/None), e.g. float(x) for numpy/JAX "
                "scalars or x.tolist() for arrays")
    try:  # the real encoder also catches e.g. circular references
        json.dumps(dict(metadata))
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata is not JSON serialisable: {e}") from e
    return dict(metadata)


def _dtype(name: str) -> np.dtype:
    # jnp.dtype knows the ml_dtypes extended types (bfloat16, float8_*, int4, ...).
    return np.dtype(jnp.dtype(name))


def _storage(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[np.dtype, tuple[int, ...]]:
    """Dtype and shape of the tensor that stores an array of ``dtype`` and ``shape``."""
    if dtype in _PLAIN_DTYPES:
        return dtype, shape
    if dtype.kind == "c":
        return np.dtype(f"float{dtype.itemsize * 4}"), (*shape, 2)
    return np.dtype(f"uint{dtype.itemsize * 8}"), shape


def _check_storable(dt: np.dtype, where: str) -> None:
    if dt.hasobject:
        raise TypeError(f"leaf {where} has object dtype, which cannot be stored without pickle "
                        "(hkjax checkpoints never use pickle); convert it to a numeric array or "
                        "make it a static (non-array) field")
    dt = dt.newbyteorder("=")
    ml_dtype = getattr(dt.type, "__module__", "") == "ml_dtypes"  # bfloat16, float8_*, int4, ...
    if not (dt in _PLAIN_DTYPES or (dt.kind == "c" and dt.itemsize <= 16) or (ml_dtype and dt.itemsize <= 8)):
        raise TypeError(f"leaf {where} has unsupported dtype {dt} (kind {dt.kind!r}); arrays of "
                        "booleans, integers, floats up to 64 bits (and ml_dtypes such as bfloat16) "
                        "and complex numbers up to 128 bits can be checkpointed")


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")).hexdigest()


def _is_prng_key_dtype(dtype: Any) -> bool:
    try:
        return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))
    except TypeError:  # pragma: no cover - exotic dtype objects
        return False


def _is_template_array(x: Any) -> bool:
    return eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


def _static_entry(x: Any) -> dict[str, Any]:
    if isinstance(x, _SCALAR_TYPES):
        return {"kind": "static", "type": type(x).__qualname__, "repr": repr(x)}
    if callable(x):
        # Functions (activations etc.) compare by name only: e.g. jax.nn.relu's wrapper type
        # is an implementation detail of JAX.
        name = getattr(x, "__qualname__", None) or getattr(x, "__name__", None)
        return {"kind": "static", "name": name if isinstance(name, str) else None}
    return {"kind": "static", "type": type(x).__qualname__}


def _describe_static(entry: Mapping[str, Any]) -> str:
    if "repr" in entry:
        return f"{entry.get('type')} {entry['repr']}"
    if "name" in entry:
        return f"callable {entry['name']!r}"
    return f"object of type {entry.get('type')}"


def _leaf_name(index: int, key_path: str) -> str:
    return f"leaf {index} ({key_path or '<root>'})"


def _template_description(leaf: Any) -> str:
    if not _is_template_array(leaf):
        return _describe_static(_static_entry(leaf))
    if _is_prng_key_dtype(leaf.dtype):
        return f"a PRNG key array of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"
    return f"an array of shape {tuple(leaf.shape)} and dtype {np.dtype(leaf.dtype)}"


def _saved_description(entry: Mapping[str, Any]) -> str:
    if entry["kind"] == "array":
        return f"an array of shape {tuple(entry['shape'])} and dtype {entry['dtype']}"
    if entry["kind"] == "prng_key":
        return f"a PRNG key array of shape {tuple(entry['shape'])} (impl {entry['impl']!r})"
    return _describe_static(entry)


# ----------------------------------------------------------------------------
# save
# ----------------------------------------------------------------------------


def _encode(tree: PyTree) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The leaf table of ``tree`` and its stored tensors, by key path."""
    entries: list[dict[str, Any]] = []
    tensors: dict[str, np.ndarray] = {}
    for index, (key_path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
        path = jax.tree_util.keystr(key_path)
        where = f"{index} ({path or '<root>'})"
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(f"leaf {where} is an abstract jax.ShapeDtypeStruct with no data; save "
                            "concrete arrays (ShapeDtypeStructs are only allowed in the `like` "
                            "template of load)")
        if not eqx.is_array(leaf):
            entries.append({"path": path, **_static_entry(leaf)})
            continue
        if path in tensors:
            raise ValueError(f"leaf {where} has the same key path as another leaf; give the "
                             "tree's nodes distinct keys")
        entry: dict[str, Any] = {"path": path}
        if _is_prng_key_dtype(leaf.dtype):
            impl = jax.random.key_impl(leaf)
            if not isinstance(impl, str):
                raise TypeError(f"leaf {where} is a PRNG key with an unregistered implementation "
                                f"{impl!r}; only registered PRNG implementations (e.g. "
                                "'threefry2x32', 'rbg', 'unsafe_rbg') can be checkpointed")
            data = np.asarray(jax.random.key_data(leaf))
            entry.update(kind="prng_key", impl=impl, shape=list(leaf.shape),
                         data_shape=list(data.shape))
        else:
            data = np.asarray(leaf)
            entry.update(kind="array", shape=list(data.shape))
        _check_storable(data.dtype, where)
        dtype = data.dtype.newbyteorder("=")
        stored_dtype, stored_shape = _storage(dtype, data.shape)
        stored = np.asarray(data, dtype=dtype, order="C").reshape(-1).view(stored_dtype)
        tensors[path] = stored.reshape(stored_shape)
        entry.update(dtype=dtype.name, sha256=_sha256(stored))
        entries.append(entry)
    return entries, tensors


def _has_derived(x: Any) -> bool:
    return isinstance(x, eqx.Module) and isinstance(getattr(type(x), "derived_fields", None), tuple)


def _strip(module: Any) -> Any:
    """``module`` with its ``derived_fields`` set to ``None``."""
    names = [f for f in type(module).derived_fields if getattr(module, f) is not None]
    if not names:
        return module
    return eqx.tree_at(lambda m: [getattr(m, f) for f in names], module, [None] * len(names),
                       is_leaf=lambda x: x is None)


def _without_derived(tree: PyTree) -> PyTree:
    """``tree`` with the derived fields of its modules removed (see the module docstring)."""
    return jax.tree_util.tree_map(lambda x: _strip(x) if _has_derived(x) else x, tree, is_leaf=_has_derived)


def _with_derived(loaded: PyTree, like: PyTree, path: pathlib.Path) -> PyTree:
    """``loaded`` (stripped) with the derived fields of ``like``, after checking that every
    module holding derived fields stored the same arrays as ``like``'s."""
    ours = jax.tree_util.tree_flatten_with_path(loaded, is_leaf=_has_derived)[0]
    theirs = jax.tree_util.tree_leaves(like, is_leaf=_has_derived)
    for (key_path, a), b in zip(ours, theirs):
        if not _has_derived(a):
            continue
        same = all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(
            jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(_strip(b))))
        if not same:
            raise CheckpointError(
                f"{path}: {jax.tree_util.keystr(key_path)} ({type(a).__name__}) was saved with other "
                f"arrays (e.g. another graph) than `like` holds; {_DIFFERENT_CONFIG_HINT}")
    return jax.tree_util.tree_map(lambda a, b: b if a is None else a, loaded, like, is_leaf=lambda x: x is None)


def _write_all(f: Any, data: bytes) -> None:
    """Write ``data`` to the open binary file ``f`` (a hook for crash tests)."""
    f.write(data)


def save(
    path: PathLike,
    tree: PyTree,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Save a pytree and JSON metadata to one safetensors file, atomically.

    The array leaves of ``tree`` (everything :func:`equinox.is_array` accepts, typed PRNG keys
    included) become tensors named by their key paths; non-array leaves are recorded in the
    header and must match the ``like`` template at load time (the layout is in the module
    docstring). The file is written beside ``path``, fsynced and renamed onto it, so a crash
    mid-save leaves any previous checkpoint at ``path`` intact.

    Args:
        path: Destination file. Its parent directory is created if missing. No suffix is added.
        tree: The pytree to save (model, optimiser state, step, PRNG key, ..., or a tuple/dict
            of those). Counters that must be restored should be arrays (e.g.
            ``jnp.asarray(step)``): Python scalars are static, checked and not restored.
        metadata: Optional JSON-serialisable dict with string keys (e.g. the model config and
            step). Tuples come back as lists. ``"hkjax_version"`` and ``"format_version"`` are
            reserved.

    Returns:
        The path of the written checkpoint, as a :class:`pathlib.Path`.

    Raises:
        TypeError: If ``metadata`` is not JSON serialisable (the message names the offending
            key), or a leaf has a dtype that cannot be stored without pickle (object, string,
            structured dtypes) or is a PRNG key with an unregistered implementation.
        ValueError: If ``metadata`` uses a reserved key, or two leaves share a key path.
        OSError: If the file cannot be written; an existing file at ``path`` is then left
            untouched.
    """
    path = pathlib.Path(path)
    user_metadata = _validate_metadata(metadata)
    entries, tensors = _encode(_without_derived(tree))
    header = json.dumps({"format_version": FORMAT_VERSION, "hkjax_version": _hkjax_version(),
                         "metadata": user_metadata, "leaves": entries},
                        ensure_ascii=False, separators=(",", ":"))
    data = safetensors.numpy.save(tensors, metadata={
        _HEADER_KEY: header, _HEADER_SHA_KEY: hashlib.sha256(header.encode()).hexdigest()})
    with atomic_open(path, "wb") as f:
        _write_all(f, data)
    return path


# ----------------------------------------------------------------------------
# load
# ----------------------------------------------------------------------------


def _corrupted(path: pathlib.Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is corrupted ({why}); the file was damaged or only partially "
                           "written, restore it from another checkpoint")


def _not_a_checkpoint(path: pathlib.Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is not an hkjax checkpoint ({why}); expected a file written "
                           "by hkjax.checkpoint.save")


@contextlib.contextmanager
def _opened(path: pathlib.Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Open ``path`` with safetensors; yield the open file and hkjax's validated header."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_OWN_FORMAT_MAGIC) + 4)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "hkjax checkpoint file not found", str(path)) from None
    if head.startswith(_OWN_FORMAT_MAGIC):
        version = int.from_bytes(head[len(_OWN_FORMAT_MAGIC):], "little")
        raise CheckpointError(
            f"{path} is a checkpoint in hkjax's own format (format version {version}), written "
            f"by hkjax {_OWN_FORMAT_READER}; this hkjax reads safetensors checkpoints: load it "
            f"with hkjax {_OWN_FORMAT_READER} (pip install 'hkjax=={_OWN_FORMAT_READER}') or "
            "re-run the training")
    try:
        with safetensors.safe_open(path, framework="numpy") as st:
            meta = st.metadata() or {}
            yield st, _header(path, meta, set(st.keys()))
    except safetensors.SafetensorError as e:
        if head[8:9] != b"{":  # a safetensors file starts with its header's length, then "{"
            raise _not_a_checkpoint(path, "not a safetensors file") from e
        raise _corrupted(path, f"safetensors cannot read it: {e}") from e


def _header(path: pathlib.Path, meta: Mapping[str, str], names: set[str]) -> dict[str, Any]:
    """hkjax's header from the safetensors metadata ``meta`` of a file holding tensors ``names``."""
    if _HEADER_KEY not in meta:
        raise _not_a_checkpoint(path, "a safetensors file without hkjax's header")
    text = meta[_HEADER_KEY]
    try:
        header = json.loads(text)
        version = header["format_version"]
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise _corrupted(path, f"hkjax's header is not valid JSON with a format version: {e}") from e
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format version {version}, but this hkjax ({_hkjax_version()}) "
            f"reads version {FORMAT_VERSION}; upgrade hkjax to load it")
    if version in _OLD_FORMATS:
        reader = _OLD_FORMATS[version]
        raise CheckpointError(
            f"{path} was written by an older hkjax (checkpoint format {version}); this hkjax "
            f"({_hkjax_version()}) reads format {FORMAT_VERSION}: load it with hkjax {reader} "
            f"(pip install 'hkjax=={reader}') or re-run the training")
    if version != FORMAT_VERSION:
        raise _corrupted(path, f"unknown format version {version!r}")
    if hashlib.sha256(text.encode()).hexdigest() != meta.get(_HEADER_SHA_KEY):
        raise _corrupted(path, "checksum mismatch in hkjax's header")
    # The checksum vouches for the rest: the header is the one save wrote.
    if sorted(e["path"] for e in header["leaves"] if e["kind"] != "static") != sorted(names):
        raise _corrupted(path, "its tensors are not the ones hkjax's header lists")
    return header


def _check_against_template(entry: Mapping[str, Any], like_leaf: Any, index: int,
                            key_path: str, path: pathlib.Path) -> None:
    name = _leaf_name(index, key_path)
    if entry["path"] != key_path:
        raise CheckpointError(
            f"{path}: {name} is stored under the path {entry['path'] or '<root>'!r} in the "
            f"checkpoint but {key_path or '<root>'!r} in `like`; {_DIFFERENT_CONFIG_HINT}")
    if _is_template_array(like_leaf):
        like_kind = "prng_key" if _is_prng_key_dtype(like_leaf.dtype) else "array"
    else:
        like_kind = "static"
    if entry["kind"] != like_kind:
        raise CheckpointError(
            f"{path}: {name} is {_saved_description(entry)} in the checkpoint but "
            f"{_template_description(like_leaf)} in `like`; {_DIFFERENT_CONFIG_HINT}")
    if like_kind == "static":
        expected = _static_entry(like_leaf)
        if any(entry.get(k) != expected.get(k) for k in ("type", "repr", "name")):
            raise CheckpointError(
                f"{path}: non-array {name} was {_describe_static(entry)} when saved but is "
                f"{_describe_static(expected)} in `like`. Non-array leaves are not restored from "
                f"the checkpoint, so `like` must match them; {_DIFFERENT_CONFIG_HINT} (store "
                "values that change during training, such as step counters, as arrays)")
        return
    if tuple(entry["shape"]) != tuple(like_leaf.shape):
        raise CheckpointError(
            f"{path}: {name} has shape {tuple(entry['shape'])} in the checkpoint but shape "
            f"{tuple(like_leaf.shape)} in `like`; {_DIFFERENT_CONFIG_HINT}")
    if like_kind == "array" and _dtype(entry["dtype"]) != np.dtype(like_leaf.dtype):
        saved, like_dtype = _dtype(entry["dtype"]), np.dtype(like_leaf.dtype)
        hint = _DIFFERENT_CONFIG_HINT
        if {saved.itemsize, like_dtype.itemsize} == {4, 8}:
            hint = ("if the checkpoint was saved with 64-bit types enabled, enable them "
                    "(jax.config.update('jax_enable_x64', True)) before building `like`, or "
                    "cast the template; otherwise " + hint)
        raise CheckpointError(f"{path}: {name} has dtype {saved} in the checkpoint but dtype "
                              f"{like_dtype} in `like`; {hint}")


def _read_array(st: Any, entry: Mapping[str, Any], index: int, path: pathlib.Path) -> np.ndarray:
    """The array of a stored leaf, with its dtype and shape, after checking its sha256."""
    dtype = _dtype(entry["dtype"])
    shape = tuple(entry["data_shape"] if entry["kind"] == "prng_key" else entry["shape"])
    stored = st.get_tensor(entry["path"])
    name = _leaf_name(index, entry["path"])
    if (stored.dtype, stored.shape) != _storage(dtype, shape):
        raise _corrupted(path, f"{name} is stored with dtype {stored.dtype} and shape "
                               f"{stored.shape}, which its header entry does not describe")
    if _sha256(stored) != entry["sha256"]:
        raise _corrupted(path, f"checksum mismatch in {name}")
    return np.array(stored, order="C").reshape(-1).view(dtype).reshape(shape)


def _restore(arr: np.ndarray, entry: Mapping[str, Any], like_leaf: Any, index: int,
             path: pathlib.Path) -> Any:
    """The leaf of ``like``'s kind (JAX array, typed key, NumPy array or scalar) holding ``arr``."""
    name = _leaf_name(index, entry["path"])
    sharding = getattr(like_leaf, "sharding", None)
    spread = sharding is not None and len(sharding.device_set) > 1
    if entry["kind"] == "prng_key":
        try:
            key = jax.random.wrap_key_data(jnp.asarray(arr), impl=entry["impl"])
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: {name} is a PRNG key with implementation "
                                  f"{entry['impl']!r}, which this JAX cannot rebuild: {e}") from e
        if key.dtype != like_leaf.dtype or key.shape != tuple(like_leaf.shape):
            raise CheckpointError(
                f"{path}: {name} is a PRNG key of dtype {key.dtype} (impl {entry['impl']!r}) and "
                f"shape {key.shape} in the checkpoint but dtype {like_leaf.dtype} and shape "
                f"{tuple(like_leaf.shape)} in `like`; {_DIFFERENT_CONFIG_HINT}")
        return jax.device_put(key, sharding) if spread else key
    if isinstance(like_leaf, np.generic):
        return arr[()]
    if isinstance(like_leaf, np.ndarray):
        return arr
    out = jax.device_put(arr, sharding) if spread else jnp.asarray(arr)
    if out.dtype != arr.dtype:
        raise CheckpointError(
            f"{path}: {name} has dtype {arr.dtype} but JAX converted it to {out.dtype}; enable "
            "64-bit types with jax.config.update('jax_enable_x64', True) before loading, or use "
            "a NumPy array in `like`")
    return out


def leaves(path: PathLike) -> list[dict[str, Any]]:
    """What a checkpoint holds, without reading its arrays: for every leaf its tree path,
    kind (``"array"``, ``"prng_key"``, ``"static"``) and, for arrays and keys, shape and dtype.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint or its header is damaged.
    """
    path = pathlib.Path(path)
    with _opened(path) as (_, header):
        pass
    rows = []
    for entry in header["leaves"]:
        row = {"path": entry["path"], "kind": entry["kind"]}
        if entry["kind"] != "static":
            row.update(shape=tuple(entry["shape"]), dtype=entry["dtype"])
        rows.append(row)
    return rows


def load(path: PathLike, like: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`, validating it against ``like``.

    Everything is checked before anything is returned: the file (safetensors' own checks),
    the format version, the sha256 of hkjax's header and of every array, and, against ``like``,
    the number of leaves, each leaf's path, kind, shape and dtype, and the non-array leaves.

    Args:
        path: The checkpoint file.
        like: A pytree with the same structure as the saved one, e.g. a freshly initialised
            model / optimiser state built with the same configuration. Array leaves may be JAX
            arrays, NumPy arrays/scalars or :class:`jax.ShapeDtypeStruct` placeholders; only
            their shape and dtype are used. Non-array leaves are reused as they are.

    Returns:
        ``(tree, metadata)``: ``tree`` has the structure of ``like`` with every array leaf
        replaced by the saved values, bit for bit and with the same dtype. Leaves that are JAX
        arrays or ``ShapeDtypeStruct`` in ``like`` come back as JAX arrays (typed PRNG keys as
        typed keys); NumPy leaves in ``like`` come back as NumPy arrays/scalars. ``metadata`` is
        the user metadata dict that was passed to :func:`save`.

    Raises:
        FileNotFoundError: If ``path`` does not exist (the message names it).
        CheckpointError: If the file is not an hkjax checkpoint, is in hkjax's own earlier
            format or a newer format version (upgrade hkjax), is truncated or corrupted
            (checksum mismatch), or does not match ``like`` (number of leaves, a leaf's path,
            shape, dtype or static value; the message names the leaf).
    """
    path = pathlib.Path(path)
    full_like, like = like, _without_derived(like)
    like_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    key_paths = [jax.tree_util.keystr(kp) for kp, _ in like_leaves]
    with _opened(path) as (st, header):
        entries = header["leaves"]
        if len(entries) != len(like_leaves):
            saved_paths = [e["path"] for e in entries]
            first = next((i for i, (a, b) in enumerate(zip(saved_paths, key_paths)) if a != b),
                         min(len(saved_paths), len(key_paths)))
            saved_at = saved_paths[first] if first < len(saved_paths) else "<end>"
            like_at = key_paths[first] if first < len(key_paths) else "<end>"
            raise CheckpointError(
                f"{path}: the checkpoint has {len(entries)} leaves but `like` has "
                f"{len(like_leaves)} (first difference at leaf {first}: {saved_at!r} in the "
                f"checkpoint, {like_at!r} in `like`); {_DIFFERENT_CONFIG_HINT}")
        for index, (entry, key_path, (_, like_leaf)) in enumerate(
                zip(entries, key_paths, like_leaves)):
            _check_against_template(entry, like_leaf, index, key_path, path)
        arrays = [None if e["kind"] == "static" else _read_array(st, e, i, path)
                  for i, e in enumerate(entries)]
    new_leaves = [like_leaf if arr is None else _restore(arr, entry, like_leaf, index, path)
                  for index, (arr, entry, (_, like_leaf)) in enumerate(
                      zip(arrays, entries, like_leaves))]
    tree = jax.tree_util.tree_unflatten(treedef, new_leaves)
    return _with_derived(tree, full_like, path), dict(header["metadata"])


def read_metadata(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint's metadata without reading (or verifying) its arrays.

    Args:
        path: The checkpoint file.

    Returns:
        A new dict with the user metadata passed to :func:`save`, plus ``"hkjax_version"``
        (the hkjax version that wrote the file, or ``"unknown"``) and ``"format_version"``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint, is in another format or a
            newer format version, or is truncated or corrupted.
    """
    path = pathlib.Path(path)
    with _opened(path) as (_, header):
        pass
    return {**header["metadata"], "hkjax_version": header["hkjax_version"],
            "format_version": header["format_version"]}


# ----------------------------------------------------------------------------
# step checkpoints in a directory
# ----------------------------------------------------------------------------


def _step_checkpoints(directory: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(step, path)`` of files named ``ckpt_<digits>.hkjax``, sorted by step."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), directory / name) for name in names
             if (m := _STEP_FILE_RE.fullmatch(name)) is not None]
    return sorted(((s, p) for s, p in found if p.is_file()), key=lambda sp: (sp[0], sp[1].name))


def save_step(
    directory: PathLike,
    step: int,
    tree: PyTree,
    *,
    metadata: Mapping[str, Any] | None = None,
    keep: int | None = 3,
) -> pathlib.Path:
    """Save ``tree`` as ``directory/ckpt_{step:08d}.hkjax`` (a safetensors file, see
    :func:`save`) and delete all but the ``keep`` checkpoints with the highest steps.

    The checkpoint just written is never deleted (even if newer steps exist, e.g. after
    restarting from an earlier step), and only files matching ``ckpt_<digits>.hkjax`` are
    touched.

    Args:
        directory: Checkpoint directory (created if missing).
        step: Non-negative training step; also stored as ``metadata["step"]`` unless
            ``metadata`` already has that key with the same value.
        tree: The pytree to save (see :func:`save`).
        metadata: Optional JSON-serialisable metadata (see :func:`save`).
        keep: How many checkpoints to keep (>= 1), or ``None`` to keep all.

    Returns:
        The path of the written checkpoint.

    Raises:
        ValueError: If ``step`` is negative, ``keep`` is < 1, or ``metadata["step"]``
            disagrees with ``step``.
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
            raise ValueError(f"keep must be >= 1 (or None to keep every checkpoint), got {keep}")
    md = dict(metadata) if metadata is not None else {}
    if "step" in md and md["step"] != step:
        raise ValueError(f"metadata['step'] = {md['step']!r} disagrees with step = {step}")
    md["step"] = step
    directory = pathlib.Path(directory)
    written = save(directory / f"ckpt_{step:08d}.hkjax", tree, metadata=md)
    if keep is not None:
        existing = _step_checkpoints(directory)
        survivors = {p.name for _, p in existing[-keep:]} | {written.name}
        for _, p in existing:
            if p.name not in survivors:
                p.unlink(missing_ok=True)
    return written


def latest(directory: PathLike) -> pathlib.Path | None:
    """The checkpoint with the highest step number in ``directory``, or ``None`` if there is
    none (or no such directory). Only files named ``ckpt_<digits>.hkjax`` (as written by
    :func:`save_step`) count; temporary files left by interrupted saves are skipped.

    Raises:
        OSError: If the directory exists but cannot be listed.
    """
    found = _step_checkpoints(pathlib.Path(directory))
    return found[-1][1] if found else None

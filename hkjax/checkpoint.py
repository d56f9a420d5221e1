"""Versioned, atomic, validated checkpoints of JAX/Equinox/Optax pytrees, stored as safetensors.

A checkpoint is one `safetensors <https://huggingface.co/docs/safetensors>`_ file, never unpickled:
each array leaf is a tensor named by its key path (:func:`jax.tree_util.keystr`, e.g.
``"['model'].layers[0].weight"``), so ``safetensors.numpy.load_file(path)`` reads the arrays
without hkjax. Typed PRNG keys are stored as their :func:`jax.random.key_data`; dtypes other than
bool, (u)int8-64 and float16/32/64 as their bits: complex numbers as ``(..., 2)`` float pairs
(real, imaginary), ``bfloat16`` and other ``ml_dtypes`` as unsigned integers of their width.

The safetensors ``__metadata__`` holds ``"hkjax"``, a JSON object, and ``"hkjax_sha256"``, the
sha256 of its UTF-8 bytes. The object holds ``"format_version"`` (:data:`FORMAT_VERSION`),
``"hkjax_version"`` (the writer's), ``"metadata"`` (the user's) and ``"leaves"``: per leaf, in
:func:`jax.tree_util.tree_flatten` order, ``"path"`` (the key path), ``"kind"`` and

* for ``"array"``: ``"shape"``, ``"dtype"`` (NumPy name), ``"sha256"`` of the stored little-endian bytes;
* for ``"prng_key"``: ``"impl"`` (the PRNG implementation), ``"shape"`` of the key array, ``"dtype"``
  and ``"data_shape"`` of its key data, ``"sha256"``;
* for ``"static"`` (a non-array leaf, not stored but checked against ``like`` at load): ``"type"``
  and ``"repr"`` for Python scalars, ``"name"`` for callables, else ``"type"``.

Fields that a module's class names in a tuple ``derived_fields`` (e.g. the layout of
:class:`hkjax.synapses.Pairs`, computed from its edges) are not saved: :func:`load` takes them
from ``like`` after checking that the module's stored arrays equal ``like``'s.
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
import safetensors.numpy

from ._io import atomic_open

__all__ = ["FORMAT_VERSION", "CheckpointError", "latest", "leaves", "load", "read_metadata", "save", "save_step"]

PathLike = str | os.PathLike[str]
PyTree = Any

#: The checkpoint format version this module reads and writes.
FORMAT_VERSION: int = 3
#: Earlier format versions, and the last hkjax release that reads each.
_OLD_FORMATS = {2: "0.2.0"}
#: The start of files in hkjax's own binary format, and the last hkjax release that reads it.
_OWN_FORMAT_MAGIC, _OWN_FORMAT_READER = b"HKJAXCKPT\n", "0.1.0"
_STEP_FILE_RE = re.compile(r"ckpt_(\d+)\.hkjax")
#: Dtypes stored as themselves; others are stored as their bits.
_PLAIN_DTYPES = frozenset(map(np.dtype, "bool int8 uint8 int16 uint16 int32 uint32 int64 uint64 "
                                        "float16 float32 float64".split()))
_HINT = ("the checkpoint was written by a model with a different configuration; build `like` with the same "
         "configuration (sizes, depth, optimiser, graphs) that was used when the checkpoint was saved "
         "(hk.checkpoint.leaves lists what the checkpoint holds)")


class CheckpointError(ValueError):
    """Raised when a file is not a readable hkjax checkpoint (another format, a newer format
    version, truncated or corrupted) or does not match the ``like`` template of :func:`load`."""


def _hkjax_version() -> str:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("hkjax")
    return "unknown"


def _non_json(value: Any, where: str) -> str | None:
    """The first part of ``value`` that JSON does not store as it is, described, or None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, Mapping):
        if bad := [k for k in value if not isinstance(k, str)]:
            return f"{where} has a non-string key {bad[0]!r} (type {type(bad[0]).__name__})"
        children = [(f"{where}[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        children = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return f"{where} (type {type(value).__name__})"
    return next(filter(None, (_non_json(v, w) for w, v in children)), None)


def _storage(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[np.dtype, tuple[int, ...]] | None:
    """Dtype and shape of the tensor that stores an array of ``dtype`` and ``shape`` (None: none can)."""
    if dtype in _PLAIN_DTYPES:
        return dtype, shape
    if dtype.kind == "c" and dtype.itemsize <= 16:
        return np.dtype(f"float{dtype.itemsize * 4}"), (*shape, 2)
    if getattr(dtype.type, "__module__", "") == "ml_dtypes" and dtype.itemsize <= 8:  # bfloat16, int4, ...
        return np.dtype(f"uint{dtype.itemsize * 8}"), shape
    return None


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")).hexdigest()


def _kind(leaf: Any) -> str:
    """How a leaf of a tree or template is stored: ``"array"``, ``"prng_key"`` or ``"static"``."""
    if not (eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)):
        return "static"
    return "prng_key" if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else "array"


def _static_entry(x: Any) -> dict[str, Any]:
    if isinstance(x, (bool, int, float, complex, str, bytes)):
        return {"kind": "static", "type": type(x).__qualname__, "repr": repr(x)}
    if callable(x):  # by name: e.g. the wrapper type of jax.nn.relu is JAX's detail
        name = getattr(x, "__qualname__", None) or getattr(x, "__name__", None)
        return {"kind": "static", "name": name if isinstance(name, str) else None}
    return {"kind": "static", "type": type(x).__qualname__}


def _describe(entry: Mapping[str, Any]) -> str:
    """A leaf's entry (saved, or made from a leaf of ``like``) in words."""
    if entry["kind"] != "static":
        what = "a PRNG key array" if entry["kind"] == "prng_key" else "an array"
        of = f"(impl {entry['impl']!r})" if "impl" in entry else f"and dtype {entry['dtype']}"
        return f"{what} of shape {tuple(entry['shape'])} {of}"
    if "repr" in entry:
        return f"{entry.get('type')} {entry['repr']}"
    return f"callable {entry['name']!r}" if "name" in entry else f"object of type {entry.get('type')}"


def _has_derived(x: Any) -> bool:
    return isinstance(x, eqx.Module) and isinstance(getattr(type(x), "derived_fields", None), tuple)


def _without_derived(tree: PyTree) -> PyTree:
    """``tree`` with the ``derived_fields`` of its modules set to ``None``."""
    def strip(module: Any) -> Any:
        names = [f for f in type(module).derived_fields if getattr(module, f) is not None]
        return eqx.tree_at(lambda m: [getattr(m, f) for f in names], module, [None] * len(names),
                           is_leaf=lambda x: x is None) if names else module
    return jax.tree_util.tree_map(lambda x: strip(x) if _has_derived(x) else x, tree, is_leaf=_has_derived)


def _encode(tree: PyTree) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The leaf table of ``tree`` and its stored tensors, by key path."""
    entries: list[dict[str, Any]] = []
    tensors: dict[str, np.ndarray] = {}
    for index, (key_path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
        path, kind = jax.tree_util.keystr(key_path), _kind(leaf)
        where = f"leaf {index} ({path or '<root>'})"
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(f"{where} is an abstract jax.ShapeDtypeStruct with no data; save concrete arrays "
                            "(ShapeDtypeStructs are only allowed in the `like` template of load)")
        if kind == "static":
            entries.append({"path": path, **_static_entry(leaf)})
            continue
        if path in tensors:
            raise ValueError(f"{where} has the same key path as another leaf; give the tree's nodes "
                             "distinct keys")
        entry: dict[str, Any] = {"path": path, "kind": kind}
        if kind == "prng_key":
            if not isinstance(impl := jax.random.key_impl(leaf), str):
                raise TypeError(f"{where} is a PRNG key with an unregistered implementation {impl!r}; only "
                                "registered ones (e.g. 'threefry2x32', 'rbg', 'unsafe_rbg') can be checkpointed")
            data = np.asarray(jax.random.key_data(leaf))
            entry.update(impl=impl, shape=list(leaf.shape), data_shape=list(data.shape))
        else:
            data = np.asarray(leaf)
            entry["shape"] = list(data.shape)
        dtype = data.dtype.newbyteorder("=")
        if (storage := _storage(dtype, data.shape)) is None:
            why = ("object dtype, which cannot be stored without pickle (hkjax checkpoints never use pickle)"
                   if dtype.hasobject else f"unsupported dtype {dtype}")
            raise TypeError(f"{where} has {why}; booleans, integers, floats up to 64 bits, ml_dtypes such as "
                            "bfloat16 and complex numbers up to 128 bits can be stored: convert it to one, or "
                            "make it a static (non-array) field")
        stored = np.asarray(data, dtype=dtype, order="C").reshape(-1).view(storage[0])
        tensors[path] = stored.reshape(storage[1])
        entries.append({**entry, "dtype": dtype.name, "sha256": _sha256(stored)})
    return entries, tensors


def _write_all(f: Any, data: bytes) -> None:
    """Write ``data`` to the open binary file ``f`` (a hook for crash tests)."""
    f.write(data)


def save(path: PathLike, tree: PyTree, *, metadata: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Save a pytree and JSON metadata to one safetensors file, atomically (written beside
    ``path``, fsynced and renamed onto it: a crash mid-save leaves a previous file intact).

    Args:
        path: Destination file (no suffix added); its parent directory is created if missing.
        tree: The pytree. Array leaves (:func:`equinox.is_array`, typed PRNG keys included) are
            stored; other leaves are checked at load, not restored: store counters as arrays.
        metadata: Optional JSON-serialisable dict with string keys (tuples come back as lists);
            ``"hkjax_version"`` and ``"format_version"`` are reserved.

    Returns:
        ``path``, as a :class:`pathlib.Path`.

    Raises:
        TypeError: If ``metadata`` is not JSON serialisable (the message says where), or a leaf
            has a dtype that needs pickle or is a PRNG key of an unregistered implementation.
        ValueError: If ``metadata`` uses a reserved key, or two leaves share a key path.
        OSError: If the file cannot be written (a file at ``path`` is then left untouched).
    """
    path, metadata = pathlib.Path(path), {} if metadata is None else metadata
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict with string keys, got {type(metadata).__name__}")
    if reserved := {"hkjax_version", "format_version"} & set(metadata):
        raise ValueError(f"metadata key {reserved.pop()!r} is reserved (it is filled in by hkjax); "
                         "use a different key")
    if problem := _non_json(dict(metadata), "metadata"):
        raise TypeError(f"metadata is not JSON serialisable: {problem}; convert it to a JSON type (dict/list/"
                        "str/int/float/bool/None), e.g. float(x) for NumPy/JAX scalars or x.tolist() for arrays")
    entries, tensors = _encode(_without_derived(tree))
    header = json.dumps({"format_version": FORMAT_VERSION, "hkjax_version": _hkjax_version(),
                         "metadata": dict(metadata), "leaves": entries}, ensure_ascii=False, separators=(",", ":"))
    data = safetensors.numpy.save(tensors, metadata={
        "hkjax": header, "hkjax_sha256": hashlib.sha256(header.encode()).hexdigest()})
    with atomic_open(path, "wb") as f:
        _write_all(f, data)
    return path


def _corrupted(path: pathlib.Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is corrupted ({why}); the file was damaged or only partially written, "
                           "restore it from another checkpoint")


def _not_a_checkpoint(path: pathlib.Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is not an hkjax checkpoint ({why}); expected a file written by "
                           "hkjax.checkpoint.save")


def _old_format(path: pathlib.Path, what: str, reader: str) -> CheckpointError:
    return CheckpointError(f"{path} {what}: load it with hkjax {reader} (pip install 'hkjax=={reader}') or "
                           "re-run the training")


@contextlib.contextmanager
def _opened(path: pathlib.Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Open ``path`` with safetensors; yield the open file and hkjax's header, checked."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_OWN_FORMAT_MAGIC) + 4)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "hkjax checkpoint file not found", str(path)) from None
    if head.startswith(_OWN_FORMAT_MAGIC):
        version = int.from_bytes(head[len(_OWN_FORMAT_MAGIC):], "little")
        raise _old_format(path, f"is a checkpoint in hkjax's own format (format version {version}), written by "
                          f"hkjax {_OWN_FORMAT_READER}; this hkjax reads safetensors checkpoints",
                          _OWN_FORMAT_READER)
    try:  # safetensors checks the whole layout (header, offsets, file size) when it opens a file
        st = safetensors.safe_open(path, framework="numpy")
    except safetensors.SafetensorError as e:
        if head[8:9] != b"{":  # a safetensors file starts with its header's length, then "{"
            raise _not_a_checkpoint(path, "not a safetensors file") from e
        raise _corrupted(path, f"safetensors cannot read it: {e}") from e
    with st:
        if "hkjax" not in (meta := st.metadata() or {}):
            raise _not_a_checkpoint(path, "a safetensors file without hkjax's header")
        try:
            header = json.loads(meta["hkjax"])
            version = header["format_version"]
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise _corrupted(path, f"hkjax's header is not valid JSON with a format version: {e}") from e
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(f"{path} uses checkpoint format version {version}, but this hkjax "
                                  f"({_hkjax_version()}) reads version {FORMAT_VERSION}; upgrade hkjax to load it")
        if version in _OLD_FORMATS:
            raise _old_format(path, f"was written by an older hkjax (checkpoint format {version}); this hkjax "
                              f"({_hkjax_version()}) reads format {FORMAT_VERSION}", _OLD_FORMATS[version])
        if version != FORMAT_VERSION:
            raise _corrupted(path, f"unknown format version {version!r}")
        if hashlib.sha256(meta["hkjax"].encode()).hexdigest() != meta.get("hkjax_sha256"):
            raise _corrupted(path, "checksum mismatch in hkjax's header")
        # The checksum vouches for the rest: the header is the one save wrote.
        if sorted(e["path"] for e in header["leaves"] if e["kind"] != "static") != sorted(st.keys()):
            raise _corrupted(path, "its tensors are not the ones hkjax's header lists")
        yield st, header


def _check_leaf(path: pathlib.Path, name: str, entry: Mapping[str, Any], key_path: str, like: Any) -> None:
    """Raise unless the saved leaf ``entry`` fits the leaf ``like`` at ``key_path`` of the template."""
    kind, hint = _kind(like), _HINT
    expected = _static_entry(like) if kind == "static" else {"kind": kind, "shape": like.shape, "dtype": like.dtype}
    if entry["path"] != key_path:
        problem = (f"is stored under the path {entry['path'] or '<root>'!r} in the checkpoint but "
                   f"{key_path or '<root>'!r}")
    elif entry["kind"] != kind:
        problem = f"is {_describe(entry)} in the checkpoint but {_describe(expected)}"
    elif kind == "static":
        if all(entry.get(k) == expected.get(k) for k in ("type", "repr", "name")):
            return
        problem = f"was {_describe(entry)} when saved but is {_describe(expected)}"
        hint = (f"non-array leaves are not restored, so `like` must match them; {_HINT} (store what changes "
                "in training, such as step counters, as arrays)")
    elif tuple(entry["shape"]) != tuple(like.shape):
        problem = f"has shape {tuple(entry['shape'])} in the checkpoint but shape {tuple(like.shape)}"
    elif kind == "array" and (saved := np.dtype(jnp.dtype(entry["dtype"]))) != (ours := np.dtype(like.dtype)):
        problem = f"has dtype {saved} in the checkpoint but dtype {ours}"
        if {saved.itemsize, ours.itemsize} == {4, 8}:
            hint = ("if the checkpoint was saved with 64-bit types enabled, enable them (jax.config.update("
                    f"'jax_enable_x64', True)) before building `like`, or cast the template; otherwise {_HINT}")
    else:
        return
    raise CheckpointError(f"{path}: {name} {problem} in `like`; {hint}")


def _read_leaf(st: Any, entry: Mapping[str, Any], name: str, like: Any, path: pathlib.Path) -> Any:
    """The stored leaf, its checksum checked, as a leaf of ``like``'s type and sharding."""
    dtype = np.dtype(jnp.dtype(entry["dtype"]))  # jnp.dtype knows the ml_dtypes (bfloat16, ...)
    shape = tuple(entry["data_shape"] if entry["kind"] == "prng_key" else entry["shape"])
    stored = st.get_tensor(entry["path"])
    if (stored.dtype, stored.shape) != _storage(dtype, shape):
        raise _corrupted(path, f"{name} is stored with dtype {stored.dtype} and shape {stored.shape}, which "
                               "its header entry does not describe")
    if _sha256(stored) != entry["sha256"]:
        raise _corrupted(path, f"checksum mismatch in {name}")
    arr = np.array(stored, order="C").reshape(-1).view(dtype).reshape(shape)
    sharding = getattr(like, "sharding", None)
    spread = sharding is not None and len(sharding.device_set) > 1
    if entry["kind"] == "prng_key":
        try:
            key = jax.random.wrap_key_data(jnp.asarray(arr), impl=entry["impl"])
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: {name} is a PRNG key with implementation {entry['impl']!r}, which "
                                  f"this JAX cannot rebuild: {e}") from e
        if key.dtype != like.dtype:
            raise CheckpointError(f"{path}: {name} is a PRNG key of dtype {key.dtype} (impl {entry['impl']!r}) "
                                  f"in the checkpoint but dtype {like.dtype} in `like`; {_HINT}")
        return jax.device_put(key, sharding) if spread else key
    if isinstance(like, (np.ndarray, np.generic)):
        return arr if isinstance(like, np.ndarray) else arr[()]
    out = jax.device_put(arr, sharding) if spread else jnp.asarray(arr)
    if out.dtype != arr.dtype:
        raise CheckpointError(f"{path}: {name} has dtype {arr.dtype} but JAX converted it to {out.dtype}; enable "
                              "64-bit types with jax.config.update('jax_enable_x64', True) before loading, or "
                              "use a NumPy array in `like`")
    return out


def _with_derived(loaded: PyTree, like: PyTree, path: pathlib.Path) -> PyTree:
    """``loaded`` (stripped) with the derived fields of ``like``, after checking that every
    module holding derived fields stored the same arrays as ``like``'s."""
    ours = jax.tree_util.tree_flatten_with_path(loaded, is_leaf=_has_derived)[0]
    for (key_path, a), b in zip(ours, jax.tree_util.tree_leaves(like, is_leaf=_has_derived)):
        if _has_derived(a) and not all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(
                jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(_without_derived(b)))):
            raise CheckpointError(f"{path}: {jax.tree_util.keystr(key_path)} ({type(a).__name__}) was saved "
                                  f"with other arrays (e.g. another graph) than `like` holds; {_HINT}")
    return jax.tree_util.tree_map(lambda a, b: b if a is None else a, loaded, like, is_leaf=lambda x: x is None)


def load(path: PathLike, like: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`, after checking the file (format version, sha256
    of the header and of every array) and that it matches ``like``.

    Args:
        path: The checkpoint file.
        like: A pytree of the saved structure, e.g. a fresh model / optimiser state of the same
            configuration. Array leaves may be JAX or NumPy arrays or scalars or
            :class:`jax.ShapeDtypeStruct`; other leaves are reused.

    Returns:
        ``(tree, metadata)``: ``like`` with its array leaves replaced by the saved values, bit for
        bit (NumPy where ``like`` has NumPy, else JAX, typed keys as typed keys), and the user
        metadata passed to :func:`save`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint, is in an older or newer format,
            is truncated or corrupted, or does not match ``like`` (the message names the leaf).
    """
    path = pathlib.Path(path)
    flat, treedef = jax.tree_util.tree_flatten_with_path(_without_derived(like))
    key_paths = [jax.tree_util.keystr(kp) for kp, _ in flat]
    with _opened(path) as (st, header):
        entries = header["leaves"]
        if len(entries) != len(flat):
            saved, ours = [*(e["path"] for e in entries), "<end>"], [*key_paths, "<end>"]
            first = next(i for i, (a, b) in enumerate(zip(saved, ours)) if a != b)
            raise CheckpointError(f"{path}: the checkpoint has {len(entries)} leaves but `like` has {len(flat)} "
                                  f"(first difference at leaf {first}: {saved[first]!r} in the checkpoint, "
                                  f"{ours[first]!r} in `like`); {_HINT}")
        names = [f"leaf {i} ({p or '<root>'})" for i, p in enumerate(key_paths)]
        for name, entry, key_path, (_, leaf) in zip(names, entries, key_paths, flat):
            _check_leaf(path, name, entry, key_path, leaf)
        new = [leaf if e["kind"] == "static" else _read_leaf(st, e, name, leaf, path)
               for name, e, (_, leaf) in zip(names, entries, flat)]
    return _with_derived(jax.tree_util.tree_unflatten(treedef, new), like, path), dict(header["metadata"])


def read_metadata(path: PathLike) -> dict[str, Any]:
    """A new dict of the user metadata of the checkpoint at ``path``, ``"hkjax_version"`` (the
    writer's, or ``"unknown"``) and ``"format_version"``, without reading (or verifying) its arrays.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not an hkjax checkpoint, is in an older or newer format,
            or its header is damaged.
    """
    with _opened(pathlib.Path(path)) as (_, header):
        return {**header["metadata"], "hkjax_version": header["hkjax_version"],
                "format_version": header["format_version"]}


def leaves(path: PathLike) -> list[dict[str, Any]]:
    """What the checkpoint at ``path`` holds, from its header alone: one dict per leaf, in tree
    order, with ``"path"`` (its key path), ``"kind"`` (``"array"``, ``"prng_key"`` or ``"static"``)
    and, for arrays and keys, ``"shape"`` and ``"dtype"``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: As for :func:`read_metadata`.
    """
    with _opened(pathlib.Path(path)) as (_, header):
        return [{"path": e["path"], "kind": e["kind"]} if e["kind"] == "static" else
                {"path": e["path"], "kind": e["kind"], "shape": tuple(e["shape"]), "dtype": e["dtype"]}
                for e in header["leaves"]]


def _step_checkpoints(directory: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(step, path)`` of the files named ``ckpt_<digits>.hkjax``, sorted by step."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), directory / name) for name in names if (m := _STEP_FILE_RE.fullmatch(name))]
    return sorted(((s, p) for s, p in found if p.is_file()), key=lambda sp: (sp[0], sp[1].name))


def save_step(directory: PathLike, step: int, tree: PyTree, *, metadata: Mapping[str, Any] | None = None,
              keep: int | None = 3) -> pathlib.Path:
    """Save ``tree`` as ``directory/ckpt_{step:08d}.hkjax`` with :func:`save`, then delete all but
    the ``keep`` checkpoints of the highest steps, never the one just written (e.g. after a restart
    from an earlier step) nor files not named ``ckpt_<digits>.hkjax``.

    Args:
        directory: Checkpoint directory (created if missing).
        step: Non-negative training step, also stored as ``metadata["step"]``.
        tree: The pytree to save.
        metadata: Optional JSON-serialisable metadata; a ``"step"`` key must equal ``step``.
        keep: How many checkpoints to keep (>= 1), or ``None`` to keep all.

    Returns:
        The path of the written checkpoint.

    Raises:
        TypeError: If ``step`` or ``keep`` is not an integer, or as for :func:`save`.
        ValueError: If ``step`` < 0, ``keep`` < 1 or ``metadata["step"]`` is not ``step``, or as
            for :func:`save`.
        OSError: If writing fails.
    """
    if isinstance(step, bool) or isinstance(keep, bool):
        raise TypeError("step and keep must be integers (keep may be None), not bools")
    step, keep = operator.index(step), None if keep is None else operator.index(keep)
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be >= 1 (or None to keep every checkpoint), got {keep}")
    md = dict(metadata or {})
    if md.get("step", step) != step:
        raise ValueError(f"metadata['step'] = {md['step']!r} disagrees with step = {step}")
    written = save(pathlib.Path(directory) / f"ckpt_{step:08d}.hkjax", tree, metadata={**md, "step": step})
    if keep is not None:
        for _, old in _step_checkpoints(written.parent)[:-keep]:
            if old != written:
                old.unlink(missing_ok=True)
    return written


def latest(directory: PathLike) -> pathlib.Path | None:
    """The checkpoint of the highest step in ``directory``, or ``None`` if there is none (or no
    such directory). Only files named ``ckpt_<digits>.hkjax``, as :func:`save_step` writes,
    count; temporary files of interrupted saves do not.

    Raises:
        OSError: If the directory exists but cannot be listed.
    """
    found = _step_checkpoints(pathlib.Path(directory))
    return found[-1][1] if found else None

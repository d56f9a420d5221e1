"""A work-around for an XLA:CPU performance bug, applied when hkjax is imported.

jaxlib 0.10 lowers reductions over a leading axis through YNNPACK fusions that run much
slower than XLA's own loops on large arrays (``x.sum(0)`` of a ``(10, 896, 896)`` float32
array). Exactly these reductions appear whenever a gradient is summed over a ``vmap``-ped
batch (one ``(n, n)`` cotangent per example and parameter matrix), so they slow down a
training step of the paper's network (``benchmarks/train_step.py``).

:func:`apply` adds ``--xla_cpu_experimental_ynn_fusion_type=-reduce`` (keep YNNPACK for
everything but reductions) to ``XLA_FLAGS`` — only

* for the jaxlib versions where the flag is known to exist (an unknown flag makes XLA abort),
* when neither the user's ``XLA_FLAGS`` already mention it nor ``HKJAX_XLA_FLAGS=0`` is set,
* and before JAX has started a backend (flags are read once, at start-up); importing hkjax
  after running JAX code leaves the process as it is.
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_experimental_ynn_fusion_type"
VALUE = "-reduce"
#: jaxlib (major, minor) versions that have the flag (checked by tests/test_xla.py).
KNOWN = {(0, 10)}


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (-1, -1)


def apply() -> bool:
    """Add the flag to ``XLA_FLAGS`` if it is safe and useful; return whether it did."""
    if os.environ.get("HKJAX_XLA_FLAGS", "1") == "0":
        return False
    current = os.environ.get("XLA_FLAGS", "")
    if FLAG in current:
        return False
    try:
        import jaxlib
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - jax always installs both
        return False
    if _version(jaxlib.__version__) not in KNOWN or xla_bridge.backends_are_initialized():
        return False
    os.environ["XLA_FLAGS"] = f"{current} {FLAG}={VALUE}".strip()
    return True


#: Environment variable naming the directory of the persistent compilation cache that the
#: ``hkjax`` command uses (``0``: none).
CACHE_ENV = "HKJAX_COMPILE_CACHE"


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/hkjax/xla`` (``~/.cache/hkjax/xla`` when it is not set)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hkjax", "xla")


def enable_compile_cache(path: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs on disk (JAX's persistent compilation cache), so that a second
    process running the same computation skips XLA's compilation (the paper's training step:
    ~3–6 s of its first call on a 2-core CPU; ``benchmarks/README.md``).

    What it changes is process-wide JAX configuration (``jax_compilation_cache_dir``), so
    the library never calls it by itself; the ``hkjax`` command does, at start-up. JAX keys
    every entry by the program, the JAX/jaxlib versions, the device and the XLA flags, and
    stores only programs that took at least a second to compile, so a stale entry is never
    used and the directory stays small (a few MB); deleting it at any time is safe.

    Arguments:
        path: the cache directory; ``None``: the ``HKJAX_COMPILE_CACHE`` environment variable,
            else :func:`default_cache_dir`. ``HKJAX_COMPILE_CACHE=0`` (or ``""``) turns the
            cache off, and a cache the user configured for JAX itself
            (``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir``) is left as it is.

    Returns:
        The directory in use, or ``None`` when the cache is off, JAX's own setting wins, or the
        directory cannot be created (the cache is an optimisation: nothing fails without it).
    """
    import jax

    if path is None:
        if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
            return None
        path = os.environ.get(CACHE_ENV, default_cache_dir())
        if path in ("0", ""):
            return None
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    return path

"""A work-around for an XLA:CPU performance bug, applied when hkjax is imported.

jaxlib 0.10 lowers reductions over a leading axis through YNNPACK fusions that run 30–90×
slower than XLA's own loops on large arrays: ``x.sum(0)`` of a ``(10, 896, 896)`` float32
array takes ~50 ms instead of ~1 ms on a 2-core x86 CPU. Exactly these reductions appear
whenever a gradient is summed over a ``vmap``-ped batch (one ``(n, n)`` cotangent per
example and parameter matrix), so they cost a training step of the paper's network
~0.3 s (``benchmarks/train_step.py``; see ``benchmarks/README.md``).

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

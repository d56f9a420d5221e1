"""Shared configuration of the hkjax test suite.

* JAX's persistent compilation cache is off (``HKJAX_COMPILE_CACHE=0``), so that no test
  depends on what an earlier one compiled.
* Numerics run in float64 (``jax_enable_x64``) and rank promotion raises, as STYLE.md asks;
  both are switched on at import time, before any test module builds an array.
* One list of each kind of building block (Lagrangians, interactions, couplings,
  formulations), so every test parametrises over the same set.
* One hypothesis profile (no deadline, few examples: every new shape costs a JIT compile).
* Small helpers shared by several files (random orthogonal matrices, the paper's network
  written as a set of plain arrays, relative-error assertions).
"""

from __future__ import annotations

import os

import jax

# The hkjax command turns JAX's persistent compilation cache on (hkjax.enable_compile_cache);
# the suite calls it in-process, where the cache would then serve whatever the worker
# compiles next, depending on test order. Off for the suite; tests/test_xla.py tests it in
# subprocesses of its own.
os.environ["HKJAX_COMPILE_CACHE"] = "0"

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import hkjax as hk  # noqa: E402
from hkjax import interactions as I  # noqa: E402
from hkjax import lagrangians as L  # noqa: E402

# ---------------------------------------------------------------------------------------
# hypothesis
# ---------------------------------------------------------------------------------------

#: Settings for property tests: no deadline (the first example pays for compilation), few
#: examples, no example database (keeps runs reproducible and the worktree clean).
PROPERTY = settings(
    max_examples=10,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Fewer examples, for properties whose every example runs an ODE solve.
PROPERTY_FEW = settings(PROPERTY, max_examples=4)

#: The few sizes hypothesis may draw (each new size is a new compilation).
SIZES = (3, 8)

# ---------------------------------------------------------------------------------------
# Building blocks, one shared list each
# ---------------------------------------------------------------------------------------

LAGRANGIANS = [
    pytest.param(L.Identity(), id="Identity"),
    pytest.param(L.Tanh(), id="Tanh"),
    pytest.param(L.Sigmoid(), id="Sigmoid"),
    pytest.param(L.ReLU(), id="ReLU"),
    pytest.param(L.Softmax(beta=2.0), id="Softmax2"),
    pytest.param(L.LayerNorm(), id="LayerNorm"),
]

INTERACTIONS = [
    pytest.param(I.Linear(), id="Linear"),
    pytest.param(I.ReLU(), id="ReLU"),
    pytest.param(I.Tanh(), id="Tanh"),
    pytest.param(I.Sigmoid(), id="Sigmoid"),
    pytest.param(I.MLP(width=8, depth=2, key=jax.random.key(1234)), id="MLP"),
]

COUPLINGS = list(hk.COUPLINGS)
assert set(COUPLINGS) == {"full", "additive", "multiplicative"}, COUPLINGS

#: Formulations valid on any graph (everything but "auto" and "all"), taken from the
#: library so a new formulation is tested as soon as it exists.
SPARSE_FORMULATIONS = [f for f in hk.synapses.FORMULATIONS if f not in ("auto", "all")]
#: Formulations valid on a complete graph.
COMPLETE_FORMULATIONS = SPARSE_FORMULATIONS + ["all"]
assert {"edges", "dense"} <= set(SPARSE_FORMULATIONS), SPARSE_FORMULATIONS

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def random_orthogonal(key, dim: int, *, proper: bool = False) -> jnp.ndarray:
    """A Haar-random orthogonal ``(dim, dim)`` matrix (a rotation if ``proper``)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (dim, dim)))
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    if proper and jnp.linalg.det(q) < 0:
        q = q.at[:, 0].multiply(-1.0)
    return q


def random_antisymmetric(key, shape) -> jnp.ndarray:
    """A random antisymmetric matrix (or stack of them) of shape ``(..., d, d)``."""
    a = jax.random.normal(key, shape)
    return 0.5 * (a - jnp.swapaxes(a, -1, -2))


def unit_rows(key, n: int, dim: int) -> jnp.ndarray:
    """``n`` random unit vectors in ``R^dim``."""
    s = jax.random.normal(key, (n, dim))
    return s / jnp.linalg.norm(s, axis=-1, keepdims=True)


def rel_err(a, b) -> float:
    """``|a − b| / max(|b|, tiny)`` over whole pytrees of arrays (max norm)."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb), (a, b)
    num = max((float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y)), initial=0.0)) for x, y in zip(la, lb)), default=0.0)
    den = max((float(jnp.max(jnp.abs(jnp.asarray(y)), initial=0.0)) for y in lb), default=0.0)
    return num / max(den, 1e-300)


def assert_rel_close(a, b, rtol: float, what: str = "") -> None:
    """Max-norm relative closeness of two pytrees (``b`` is the reference)."""
    err = rel_err(a, b)
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:.1e}"


#: Test modules written for JAX's default 32-bit configuration (they check how things
#: behave when x64 is *off*, e.g. the checkpoint format refusing to truncate float64).
#: A module can also opt out itself with a module-level ``JAX_ENABLE_X64 = False``.
_FLOAT32_MODULES = frozenset({"test_checkpoint"})


@pytest.fixture(autouse=True)
def _x64_off_where_asked(request):
    module = request.module
    name = module.__name__.rpartition(".")[2]
    if name in _FLOAT32_MODULES or getattr(module, "JAX_ENABLE_X64", True) is False:
        with jax.enable_x64(False):
            yield
    else:
        yield

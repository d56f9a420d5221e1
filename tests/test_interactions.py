"""Tests for hkjax.interactions: F' = autodiff, per-edge parameters, from_array checks."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import INTERACTIONS, PROPERTY
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hkjax import interactions as I

E = 7  # one fixed edge count: every new shape is a new compilation

alignments = hnp.arrays(
    np.float64, (E,), elements=st.floats(-1.0, 1.0, allow_nan=False, width=64)
)


@eqx.filter_jit
def _derivative_and_autodiff(inter, s):
    auto = jax.grad(lambda t: jnp.sum(inter(t)))(s)
    # Elementwise: the derivative of edge e depends on s_e only.
    elementwise = jax.vmap(lambda k, t: jax.grad(lambda u: inter(s.at[k].set(u))[k])(t))(jnp.arange(s.shape[0]), s)
    return inter.derivative(s), auto, elementwise


def _per_edge(inter, seed):
    return inter.per_edge(E, key=jax.random.key(seed), scale=0.7)


@pytest.mark.parametrize("inter", INTERACTIONS)
@PROPERTY
@given(s=alignments, seed=st.integers(0, 2**31 - 1), shared=st.booleans())
def test_derivative_equals_autodiff(inter, s, seed, shared):
    inter = inter if shared else _per_edge(inter, seed)
    d, auto, elementwise = _derivative_and_autodiff(inter, jnp.asarray(s))
    assert d.shape == (E,)
    np.testing.assert_allclose(d, auto, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d, elementwise, rtol=1e-12, atol=1e-12)


def test_closed_forms():
    """The documented potentials, written out by hand, up to an additive constant per edge
    (a constant changes no flow; the library may shift potentials so that ``F(0) = 0``)."""
    s = jnp.linspace(-1.0, 1.0, E)
    sn = np.asarray(s)
    a, b = 0.3, -1.7

    def check(inter, expected):
        got = np.asarray(inter(s)) - np.asarray(inter(jnp.zeros(E)))
        want = expected(sn) - expected(np.zeros(E))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)

    check(I.Linear(w=a), lambda t: a * t)
    check(I.ReLU(a=a, b=b), lambda t: a * t + 0.5 * b * np.maximum(t, 0) ** 2)
    check(I.Tanh(a=a, b=b), lambda t: a * t + b * np.log(np.cosh(t)))
    check(I.Sigmoid(a=a, b=b), lambda t: a * t + b * np.log1p(np.exp(t)))
    mlp = I.MLP(width=4, depth=1, w=2.0, key=jax.random.key(0))
    np.testing.assert_allclose(mlp(s), 2.0 * jax.vmap(mlp.mlp)(s), rtol=1e-13)


@pytest.mark.parametrize("inter", INTERACTIONS)
def test_per_edge_gives_one_parameter_per_edge(inter):
    assert inter.num_edges() is None
    a = inter.per_edge(E, key=jax.random.key(0), scale=0.1)
    b = inter.per_edge(E, key=jax.random.key(1), scale=0.1)
    assert a.num_edges() == E
    assert inter.param_names, type(inter).__name__
    for name in inter.param_names:
        p = getattr(a, name)
        assert p.shape == (E,), (name, p.shape)
        assert jnp.issubdtype(p.dtype, jnp.floating)
        assert not np.allclose(p, getattr(b, name)), "different keys should give different parameters"
        assert 0.0 < float(jnp.max(jnp.abs(p))) < 1.0  # N(0, 0.1²): small, not zero
    # The per-edge potential is evaluated edge by edge.
    s = jnp.linspace(-0.9, 0.9, E)
    assert a(s).shape == (E,)
    for e in (0, E - 1):
        single = eqx.tree_at(lambda m: [getattr(m, q) for q in a.param_names], a, [getattr(a, q)[e] for q in a.param_names])
        np.testing.assert_allclose(a(s)[e], single(s[e : e + 1])[0], rtol=1e-13)


def test_mlp_per_edge_keeps_the_shared_network():
    inter = I.MLP(width=4, depth=2, key=jax.random.key(3))
    pe = inter.per_edge(E, key=jax.random.key(4))
    same = jax.tree_util.tree_leaves(eqx.filter(inter.mlp, eqx.is_array))
    after = jax.tree_util.tree_leaves(eqx.filter(pe.mlp, eqx.is_array))
    for x, y in zip(same, after, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("inter", INTERACTIONS)
def test_from_array_assigns_columns_in_param_order(inter):
    p = len(inter.param_names)
    w = jnp.arange(E * p, dtype=jnp.float64).reshape(E, p) / 10.0
    out = inter.from_array(w, E, name="kuramoto_weights")
    for c, name in enumerate(inter.param_names):
        np.testing.assert_array_equal(getattr(out, name), w[:, c])
    if p == 1:
        out1 = inter.from_array(w[:, 0], E)
        np.testing.assert_array_equal(getattr(out1, inter.param_names[0]), w[:, 0])


@pytest.mark.parametrize("inter", INTERACTIONS)
@pytest.mark.parametrize("shape", [(E + 1,), (E, 3), (E, 1, 1), (E - 2, 2)])
def test_from_array_shape_errors_name_the_argument(inter, shape):
    if len(inter.param_names) == 1 and shape == (E - 2, 2):
        shape = (E - 2,)
    with pytest.raises(ValueError, match="kuramoto_weights") as info:
        inter.from_array(np.zeros(shape), E, name="kuramoto_weights")
    assert str(E) in str(info.value)  # says what shape it needs


@pytest.mark.parametrize("inter", INTERACTIONS)
def test_from_array_rejects_integer_weights(inter):
    p = len(inter.param_names)
    with pytest.raises(TypeError, match="coupling_weights"):
        inter.from_array(np.zeros((E, p), dtype=np.int32), E, name="coupling_weights")


def test_two_parameter_interaction_rejects_a_vector():
    with pytest.raises(ValueError, match="weights"):
        I.ReLU().from_array(np.zeros(E), E)


def test_disagreeing_parameter_shapes_are_reported():
    bad = I.ReLU(a=jnp.zeros(E), b=jnp.zeros(E + 1))
    with pytest.raises(ValueError, match="disagree"):
        bad.num_edges()

"""Tests for hkjax.lagrangians: activation = ∇L, convexity, parameter checks."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import LAGRANGIANS, PROPERTY, SIZES
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hkjax import lagrangians as L


@st.composite
def points(draw, low: float = -6.0, high: float = 6.0):
    """A float64 vector of one of the fixed SIZES with entries in [low, high]."""
    n = draw(st.sampled_from(SIZES))
    return draw(
        hnp.arrays(
            np.float64,
            (n,),
            elements=st.floats(low, high, allow_nan=False, allow_infinity=False, width=64),
        )
    )


@eqx.filter_jit
def _grad_and_activation(lag, x):
    return jax.grad(lag)(x), lag.activation(x)


@eqx.filter_jit
def _hessian(lag, x):
    return jax.hessian(lag)(x)


@eqx.filter_jit
def _central_difference(lag, x, direction, h):
    return (lag(x + h * direction) - lag(x - h * direction)) / (2 * h), jnp.dot(lag.activation(x), direction)


@eqx.filter_jit
def _chord(lag, x, y, t):
    return lag(t * x + (1 - t) * y), t * lag(x) + (1 - t) * lag(y)


@pytest.mark.parametrize("lag", LAGRANGIANS)
@PROPERTY
@given(x=points())
def test_activation_is_gradient_of_lagrangian(lag, x):
    grad, act = _grad_and_activation(lag, jnp.asarray(x))
    assert act.shape == x.shape and act.dtype == jnp.float64
    np.testing.assert_allclose(act, grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lag", LAGRANGIANS)
@PROPERTY
@given(x=points(), v=st.integers(0, 2**31 - 1))
def test_activation_matches_finite_differences(lag, x, v):
    """Independent of autodiff: ``L(x + h v) − L(x − h v) ≈ 2h g·v`` (catches an
    ``activation`` and a ``__call__`` that agree with each other through one shared bug in
    a custom derivative rule)."""
    x = jnp.asarray(x)
    direction = jax.random.normal(jax.random.key(v), x.shape)
    h = 1e-5
    fd, exact = _central_difference(lag, x, direction, h)
    # O(h²) for smooth L; O(h |v|²) at a kink of the second derivative (ReLU at 0).
    d2 = float(jnp.sum(direction**2))
    assert abs(float(fd - exact)) <= h * d2 + 1e-7 * (1.0 + d2)


@pytest.mark.parametrize("lag", LAGRANGIANS)
@PROPERTY
@given(x=points(low=-3.0, high=3.0))
def test_hessian_is_positive_semidefinite(lag, x):
    """Convexity of ``L`` is what makes the energy a Lyapunov function."""
    h = _hessian(lag, jnp.asarray(x))
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    eig = np.linalg.eigvalsh(np.asarray(h))
    scale = max(1.0, float(np.max(np.abs(eig))))
    assert eig.min() >= -1e-10 * scale, eig


@pytest.mark.parametrize("lag", LAGRANGIANS)
@PROPERTY
@given(x=points(low=-3.0, high=3.0), y=points(low=-3.0, high=3.0), t=st.floats(0.0, 1.0))
def test_lagrangian_is_convex_along_chords(lag, x, y, t):
    """Convexity without derivatives: ``L(t x + (1−t) y) ≤ t L(x) + (1−t) L(y)``."""
    if x.shape != y.shape:
        y = np.resize(y, x.shape)
    x, y = jnp.asarray(x), jnp.asarray(y)
    lhs, rhs = _chord(lag, x, y, jnp.asarray(t))
    assert float(lhs) <= float(rhs) + 1e-10 * (1.0 + abs(float(rhs)))


def test_closed_forms_at_known_points():
    """A few values written out by hand (so that a consistent but wrong pair L, ∇L fails)."""
    x = jnp.array([-2.0, -0.5, 0.0, 0.7, 3.0])
    np.testing.assert_allclose(L.Identity()(x), 0.5 * np.sum(np.asarray(x) ** 2))
    np.testing.assert_allclose(L.Tanh()(x), np.sum(np.log(np.cosh(np.asarray(x)))), rtol=1e-12)
    np.testing.assert_allclose(L.Tanh().activation(x), np.tanh(np.asarray(x)), rtol=1e-12)
    np.testing.assert_allclose(L.Sigmoid()(x), np.sum(np.log1p(np.exp(np.asarray(x)))), rtol=1e-12)
    np.testing.assert_allclose(L.Sigmoid().activation(x), 1 / (1 + np.exp(-np.asarray(x))), rtol=1e-12)
    np.testing.assert_allclose(L.ReLU().activation(x), np.maximum(np.asarray(x), 0.0))
    np.testing.assert_allclose(L.ReLU()(x), 0.5 * (0.7**2 + 3.0**2), rtol=1e-12)
    beta = 2.0
    e = np.exp(beta * np.asarray(x))
    np.testing.assert_allclose(L.Softmax(beta=beta)(x), np.log(e.sum()) / beta, rtol=1e-12)
    np.testing.assert_allclose(L.Softmax(beta=beta).activation(x), e / e.sum(), rtol=1e-12)
    xn = np.asarray(x)
    var = np.mean((xn - xn.mean()) ** 2)
    ln = L.LayerNorm(gamma=1.5, delta=0.3, eps=1e-3)
    np.testing.assert_allclose(ln(x), 5 * 1.5 * np.sqrt(var + 1e-3) + 0.3 * xn.sum(), rtol=1e-12)
    np.testing.assert_allclose(ln.activation(x), 1.5 * (xn - xn.mean()) / np.sqrt(var + 1e-3) + 0.3, rtol=1e-12)


def test_tanh_lagrangian_is_stable_for_large_inputs():
    x = jnp.array([-800.0, 800.0])
    value = L.Tanh()(x)
    assert jnp.isfinite(value)
    np.testing.assert_allclose(value, 2 * (800.0 - np.log(2.0)), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")])
def test_softmax_rejects_non_positive_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        L.Softmax(beta=beta)


@pytest.mark.parametrize("gamma", [0.0, -0.5, float("nan")])
def test_layernorm_rejects_non_positive_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        L.LayerNorm(gamma=gamma)


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_layernorm_rejects_non_positive_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        L.LayerNorm(eps=eps)


def test_good_parameters_are_accepted():
    assert L.Softmax(beta=0.1).beta == 0.1
    assert L.LayerNorm(gamma=2.0, delta=-1.0, eps=1e-3).gamma == 2.0

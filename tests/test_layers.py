"""Tests for hkjax.layers: threshold layers and oscillator layers, of any shape."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import LAGRANGIANS, PROPERTY, random_antisymmetric
from hypothesis import given
from hypothesis import strategies as st

from hkjax import lagrangians as L
from hkjax.layers import OscillatorLayer, ThresholdLayer

N, D = 6, 3
#: A layer shape that is not flat: 2 × 3 neurons.
GRID = (2, 3)
seeds = st.integers(0, 2**31 - 1)


# ---------------------------------------------------------------------------------------
# OscillatorLayer: construction
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 0, -2])
def test_oscillators_reject_dim_below_two(dim):
    with pytest.raises(ValueError, match=f"dim={dim}"):
        OscillatorLayer((N,), dim)
    with pytest.raises(ValueError, match=f"dim={dim}"):
        OscillatorLayer(GRID, dim)


def test_oscillators_reject_non_integer_dim():
    with pytest.raises(ValueError, match="dim"):
        OscillatorLayer((N,), 2.5)


@pytest.mark.parametrize("shape", [(D + 1, D + 1), (D,), (N + 1, D, D), (N, D, D + 1), (1, D, D)])
def test_oscillators_reject_wrong_omega_shape(shape):
    with pytest.raises(ValueError, match="omega"):
        OscillatorLayer((N,), D, omega=np.zeros(shape))


def test_oscillators_of_a_grid_want_one_omega_per_oscillator_of_the_grid():
    """A (2, 3) layer takes a global (D, D) Ω or one per oscillator, (2, 3, D, D); the
    flattened (6, D, D) is another shape and is refused, naming the shape it wants."""
    OscillatorLayer(GRID, D, omega=random_antisymmetric(jax.random.key(0), (D, D)))
    OscillatorLayer(GRID, D, omega=random_antisymmetric(jax.random.key(0), GRID + (D, D)))
    with pytest.raises(ValueError, match=r"omega has shape \(6, 3, 3\).*\(2, 3, 3, 3\)"):
        OscillatorLayer(GRID, D, omega=random_antisymmetric(jax.random.key(0), (N, D, D)))


@pytest.mark.parametrize("per_oscillator", [False, True])
def test_oscillators_reject_non_antisymmetric_omega(per_oscillator):
    shape = (N, D, D) if per_oscillator else (D, D)
    a = np.asarray(random_antisymmetric(jax.random.key(0), shape))
    bad = a.copy()
    bad[..., 0, 1] += 0.5  # breaks Ωᵀ = −Ω
    with pytest.raises(ValueError, match="antisymmetric"):
        OscillatorLayer((N,), D, omega=bad)
    sym = np.eye(D) if not per_oscillator else np.broadcast_to(np.eye(D), shape)
    with pytest.raises(ValueError, match="antisymmetric"):
        OscillatorLayer((N,), D, omega=sym)
    OscillatorLayer((N,), D, omega=a)  # the antisymmetric one is fine


def test_oscillators_reject_non_positive_tau():
    with pytest.raises(ValueError, match="tau"):
        OscillatorLayer((N,), D, tau=0.0)


@pytest.mark.parametrize("shape", [(N,), GRID], ids=["flat", "grid"])
def test_per_oscillator_omega_flag(shape):
    key = jax.random.key(0)
    plain = OscillatorLayer(shape, D)
    glob = OscillatorLayer(shape, D, omega=random_antisymmetric(key, (D, D)))
    per = OscillatorLayer(shape, D, omega=random_antisymmetric(key, shape + (D, D)))
    assert not plain.per_oscillator_omega and plain.is_lyapunov
    assert not glob.per_oscillator_omega and glob.is_lyapunov
    assert per.per_oscillator_omega and not per.is_lyapunov


# ---------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------


def _threshold(shape):
    return ThresholdLayer(shape, L.Tanh())


def _oscillators(shape):
    return OscillatorLayer(shape, D)


LAYER_KINDS = [pytest.param(_threshold, "ThresholdLayer", id="threshold"),
               pytest.param(_oscillators, "OscillatorLayer", id="oscillator")]


@pytest.mark.parametrize("make,cls", LAYER_KINDS)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (2, -1), 0, -3], ids=repr)
def test_layers_reject_non_positive_shapes(make, cls, shape):
    with pytest.raises(ValueError, match=f"{cls}: shape="):
        make(shape)


@pytest.mark.parametrize("make,cls", LAYER_KINDS)
@pytest.mark.parametrize("shape", [None, (3, None), 3.5], ids=repr)
def test_layers_reject_shapes_that_are_not_integer_tuples(make, cls, shape):
    with pytest.raises(TypeError, match=f"{cls}: shape="):
        make(shape)


def test_layer_shapes_sizes_and_state_shapes():
    th = ThresholdLayer(GRID, L.ReLU())
    assert th.shape == GRID and th.state_shape == GRID and th.size == 6
    assert ThresholdLayer(N, L.ReLU()).shape == (N,)  # an integer is a flat layer
    osc = OscillatorLayer(GRID, D)
    assert osc.shape == GRID and osc.state_shape == GRID + (D,) and osc.size == 6 and osc.dim == D
    assert OscillatorLayer(N, 2).state_shape == (N, 2)


# ---------------------------------------------------------------------------------------
# OscillatorLayer: geometry
# ---------------------------------------------------------------------------------------


def _tangent_matrix(s):
    """``I − σσᵀ/|σ|²`` for one oscillator (NumPy)."""
    s = np.asarray(s)
    return np.eye(s.size) - np.outer(s, s) / (s @ s)


@PROPERTY
@given(seed=seeds, dim=st.sampled_from([2, 3]))
def test_tangent_is_the_tangent_projection(seed, dim):
    k1, k2 = jax.random.split(jax.random.key(seed))
    sigma = 2.0 * jax.random.normal(k1, (N, dim))  # not normalised: P uses σσᵀ/|σ|²
    v = jax.random.normal(k2, (N, dim))
    pv = OscillatorLayer.tangent(sigma, v)
    assert pv.shape == (N, dim)
    # orthogonal to σ, idempotent, kills σ, and differs from v only along σ
    np.testing.assert_allclose(jnp.sum(pv * sigma, axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(OscillatorLayer.tangent(sigma, pv), pv, atol=1e-12)
    np.testing.assert_allclose(OscillatorLayer.tangent(sigma, 3.0 * sigma), 0.0, atol=1e-12)
    cross = (v - pv)[:, :, None] * sigma[:, None, :] - sigma[:, :, None] * (v - pv)[:, None, :]
    np.testing.assert_allclose(cross, 0.0, atol=1e-12)
    # against the matrix (I − σσᵀ/|σ|²) v, row by row
    for i in range(N):
        np.testing.assert_allclose(pv[i], _tangent_matrix(sigma[i]) @ np.asarray(v[i]), atol=1e-12)


def test_tangent_of_a_grid_acts_oscillator_by_oscillator():
    k1, k2 = jax.random.split(jax.random.key(3))
    sigma = 2.0 * jax.random.normal(k1, GRID + (D,))
    v = jax.random.normal(k2, GRID + (D,))
    pv = OscillatorLayer.tangent(sigma, v)
    assert pv.shape == GRID + (D,)
    for idx in np.ndindex(GRID):
        np.testing.assert_allclose(pv[idx], _tangent_matrix(sigma[idx]) @ np.asarray(v[idx]), atol=1e-12)


@PROPERTY
@given(seed=seeds)
def test_global_rotation_is_tangent_and_keeps_norms(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    omega = random_antisymmetric(k1, (D, D))
    osc = OscillatorLayer((N,), D, omega=omega)
    sigma = jax.random.normal(k2, (N, D))
    r = osc.rotation(sigma)
    np.testing.assert_allclose(r, np.asarray(sigma) @ np.asarray(omega).T, atol=1e-12)  # Ω σᵢ
    np.testing.assert_allclose(jnp.sum(sigma * r, axis=-1), 0.0, atol=1e-12)  # σ·Ωσ = 0
    # the flow σ̇ = Ωσ is exp(tΩ)σ, which keeps every norm
    t = 0.7
    rot = jax.scipy.linalg.expm(t * omega)
    np.testing.assert_allclose(rot.T @ rot, np.eye(D), atol=1e-12)
    moved = sigma @ rot.T
    np.testing.assert_allclose(jnp.linalg.norm(moved, axis=-1), jnp.linalg.norm(sigma, axis=-1), rtol=1e-12)


@PROPERTY
@given(seed=seeds)
def test_per_oscillator_rotation(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    omega = random_antisymmetric(k1, (N, D, D))
    osc = OscillatorLayer((N,), D, omega=omega)
    sigma = jax.random.normal(k2, (N, D))
    r = osc.rotation(sigma)
    for i in range(N):
        np.testing.assert_allclose(r[i], np.asarray(omega[i]) @ np.asarray(sigma[i]), atol=1e-12)
    np.testing.assert_allclose(jnp.sum(sigma * r, axis=-1), 0.0, atol=1e-12)


def test_no_omega_no_rotation():
    sigma = jax.random.normal(jax.random.key(0), (N, D))
    np.testing.assert_array_equal(OscillatorLayer((N,), D).rotation(sigma), 0.0)


def test_rotation_uses_the_antisymmetric_part_of_a_learned_omega():
    """A learned Ω that drifts off antisymmetry (as after a gradient step) still rotates."""
    omega = random_antisymmetric(jax.random.key(0), (D, D))
    osc = OscillatorLayer((N,), D, omega=omega)
    drifted = eqx.tree_at(lambda o: o.omega, osc, omega + 0.3 * jnp.eye(D))
    sigma = jax.random.normal(jax.random.key(1), (N, D))
    np.testing.assert_allclose(drifted.rotation(sigma), osc.rotation(sigma), atol=1e-12)


@pytest.mark.parametrize("shape", [(N,), GRID], ids=["flat", "grid"])
def test_project_maps_onto_the_sphere(shape):
    sigma = 5.0 * jax.random.normal(jax.random.key(0), shape + (D,))
    out = OscillatorLayer(shape, D).project(sigma)
    np.testing.assert_allclose(jnp.linalg.norm(out, axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(out * jnp.linalg.norm(sigma, axis=-1, keepdims=True), sigma, rtol=1e-13)


@pytest.mark.parametrize("omega", ["none", "global", "per_oscillator"])
def test_grid_oscillator_flow(omega):
    """A (2, 3) layer of oscillators on S²: ``σ̇ = −P_σ ∂E/∂σ / τ + Ω σ`` oscillator by
    oscillator, tangent to the sphere at every oscillator (so norms are kept)."""
    tau = 0.7
    k1, k2, k3 = jax.random.split(jax.random.key(4), 3)
    om = {"none": None, "global": random_antisymmetric(k3, (D, D)),
          "per_oscillator": random_antisymmetric(k3, GRID + (D, D))}[omega]
    osc = OscillatorLayer(GRID, D, tau=tau, omega=om)
    assert osc.is_lyapunov == (omega != "per_oscillator")
    sigma = osc.project(jax.random.normal(k1, GRID + (D,)))
    grad = jax.random.normal(k2, GRID + (D,))
    flow = osc.flow(sigma, osc.value(sigma), grad)
    assert flow.shape == GRID + (D,)
    np.testing.assert_allclose(jnp.sum(flow * sigma, axis=-1), 0.0, atol=1e-12)
    for idx in np.ndindex(GRID):
        s = np.asarray(sigma[idx])
        want = -_tangent_matrix(s) @ np.asarray(grad[idx]) / tau
        if om is not None:
            want = want + np.asarray(om if om.ndim == 2 else om[idx]) @ s
        np.testing.assert_allclose(flow[idx], want, rtol=1e-12, atol=1e-13)
    # no synapse on the layer: only the rotation
    np.testing.assert_allclose(osc.flow(sigma, sigma, None), osc.rotation(sigma), atol=0.0)
    assert float(osc.energy(sigma)) == 0.0


def test_oscillator_init_draws_normalises_and_checks():
    osc = OscillatorLayer(GRID, D)
    drawn = osc.init(None, jax.random.key(0), "osc")
    assert drawn.shape == GRID + (D,)
    np.testing.assert_allclose(jnp.linalg.norm(drawn, axis=-1), 1.0, rtol=1e-14)
    given_ = 3.0 * jax.random.normal(jax.random.key(1), GRID + (D,))
    np.testing.assert_allclose(osc.init(given_, None, "osc"), osc.project(given_), rtol=1e-14)
    with pytest.raises(ValueError, match="key"):
        osc.init(None, None, "osc")
    with pytest.raises(ValueError, match=r"osc has shape \(6, 3\).*\(2, 3\).*\(2, 3, 3\)"):
        osc.init(jnp.ones((N, D)), None, "osc")
    with pytest.raises(TypeError, match="osc.*dtype"):
        osc.init(jnp.ones(GRID + (D,), dtype=jnp.int32), None, "osc")


# ---------------------------------------------------------------------------------------
# ThresholdLayer
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lag", LAGRANGIANS)
def test_threshold_energy_is_the_legendre_term(lag):
    x = jax.random.normal(jax.random.key(0), (N,))
    th = ThresholdLayer((N,), lag, kappa=0.3)
    g = lag.activation(x)
    np.testing.assert_allclose(th.value(x), g)
    np.testing.assert_allclose(th.energy(x), 0.3 * (jnp.dot(x, g) - lag(x)), rtol=1e-13)
    np.testing.assert_allclose(th.energy(x, g), th.energy(x), rtol=1e-13)


def test_threshold_defaults_and_checks():
    th = ThresholdLayer((N,), L.Tanh(), kappa=0.1)
    assert th.tau == 0.1  # the paper's choice: τ = κ_H
    assert ThresholdLayer((N,), L.Tanh(), kappa=0.1, tau=2.0).tau == 2.0
    with pytest.raises(ValueError, match="kappa"):
        ThresholdLayer((N,), L.Tanh(), kappa=-1.0)
    with pytest.raises(ValueError, match="tau"):
        ThresholdLayer((N,), L.Tanh(), tau=0.0)
    with pytest.raises(TypeError, match="lagrangian"):
        ThresholdLayer((N,), jnp.tanh)


def _np_softmax(x, beta):
    e = np.exp(beta * (x - np.max(x)))
    return e / e.sum()


def test_grid_softmax_layer_normalises_over_the_whole_layer():
    """A (2, 3) Softmax layer: one distribution over all six units (not one per row), the
    Legendre energy with ``L = log Σ exp(βx) / β`` over the whole layer, and the flow
    ``ẋ = −(κ x + ∂E_syn/∂g)/τ``."""
    beta, kappa, tau = 2.0, 0.4, 1.5
    th = ThresholdLayer(GRID, L.Softmax(beta=beta), kappa=kappa, tau=tau)
    x = jax.random.normal(jax.random.key(0), GRID)
    xn = np.asarray(x)
    g = th.value(x)
    assert g.shape == GRID
    want = _np_softmax(xn.reshape(-1), beta).reshape(GRID)
    np.testing.assert_allclose(g, want, rtol=1e-13)
    np.testing.assert_allclose(float(jnp.sum(g)), 1.0, rtol=1e-14)
    # discriminating: the rows are not each normalised
    assert np.max(np.abs(np.asarray(jnp.sum(g, axis=1)) - 1.0)) > 1e-2
    lag = np.log(np.sum(np.exp(beta * xn))) / beta
    np.testing.assert_allclose(th.energy(x), kappa * (np.sum(xn * want) - lag), rtol=1e-13)
    grad = jax.random.normal(jax.random.key(1), GRID)
    np.testing.assert_allclose(th.flow(x, g, grad), -(kappa * xn + np.asarray(grad)) / tau, rtol=1e-14)
    np.testing.assert_allclose(th.flow(x, g, None), -kappa * xn / tau, rtol=1e-14)


def test_grid_elementwise_layer_acts_unit_by_unit():
    th = ThresholdLayer(GRID, L.Tanh(), kappa=0.5)
    x = jax.random.normal(jax.random.key(2), GRID)
    xn = np.asarray(x)
    np.testing.assert_allclose(th.value(x), np.tanh(xn), rtol=1e-14)
    np.testing.assert_allclose(th.energy(x), 0.5 * np.sum(xn * np.tanh(xn) - np.log(np.cosh(xn))), rtol=1e-12)


def test_threshold_init_defaults_and_checks():
    th = ThresholdLayer(GRID, L.ReLU())
    np.testing.assert_array_equal(th.init(None, None, "hidden"), jnp.zeros(GRID))
    x = jax.random.normal(jax.random.key(0), GRID)
    np.testing.assert_array_equal(th.init(x, None, "hidden"), x)
    with pytest.raises(ValueError, match=r"hidden has shape \(6,\); layer 'hidden' has shape \(2, 3\)"):
        th.init(jnp.zeros(N), None, "hidden")
    with pytest.raises(TypeError, match="hidden.*dtype"):
        th.init(jnp.zeros(GRID, dtype=jnp.int32), None, "hidden")


@pytest.mark.parametrize("shape", [(2.5, 3), ("a", 3)], ids=repr)
def test_layers_reject_non_integer_shape_entries(shape):
    with pytest.raises((TypeError, ValueError), match="ThresholdLayer: shape="):
        ThresholdLayer(shape, L.Tanh())

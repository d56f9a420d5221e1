"""Tests for hkjax.units: threshold and oscillatory units."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import LAGRANGIANS, PROPERTY, random_antisymmetric
from hypothesis import given
from hypothesis import strategies as st

import hkjax as hk
from hkjax import lagrangians as L
from hkjax.units import OscillatorUnits, State, ThresholdUnits

N, D = 6, 3
seeds = st.integers(0, 2**31 - 1)


# ---------------------------------------------------------------------------------------
# OscillatorUnits: construction
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 0, -2])
def test_oscillators_reject_dim_below_two(dim):
    with pytest.raises(ValueError, match="dim"):
        OscillatorUnits(N, dim)


def test_oscillators_reject_non_integer_dim():
    with pytest.raises(ValueError, match="dim"):
        OscillatorUnits(N, 2.5)


@pytest.mark.parametrize("shape", [(D + 1, D + 1), (D,), (N + 1, D, D), (N, D, D + 1), (1, D, D)])
def test_oscillators_reject_wrong_omega_shape(shape):
    with pytest.raises(ValueError, match="omega"):
        OscillatorUnits(N, D, omega=np.zeros(shape))


@pytest.mark.parametrize("per_neuron", [False, True])
def test_oscillators_reject_non_antisymmetric_omega(per_neuron):
    shape = (N, D, D) if per_neuron else (D, D)
    a = np.asarray(random_antisymmetric(jax.random.key(0), shape))
    bad = a.copy()
    bad[..., 0, 1] += 0.5  # breaks Ωᵀ = −Ω
    with pytest.raises(ValueError, match="antisymmetric"):
        OscillatorUnits(N, D, omega=bad)
    sym = np.eye(D) if not per_neuron else np.broadcast_to(np.eye(D), shape)
    with pytest.raises(ValueError, match="antisymmetric"):
        OscillatorUnits(N, D, omega=sym)
    OscillatorUnits(N, D, omega=a)  # the antisymmetric one is fine


def test_oscillators_reject_non_positive_tau():
    with pytest.raises(ValueError, match="tau"):
        OscillatorUnits(N, D, tau=0.0)


def test_per_neuron_omega_flag():
    assert not OscillatorUnits(N, D).per_neuron_omega
    assert not OscillatorUnits(N, D, omega=random_antisymmetric(jax.random.key(0), (D, D))).per_neuron_omega
    assert OscillatorUnits(N, D, omega=random_antisymmetric(jax.random.key(0), (N, D, D))).per_neuron_omega


# ---------------------------------------------------------------------------------------
# OscillatorUnits: geometry
# ---------------------------------------------------------------------------------------


@PROPERTY
@given(seed=seeds, dim=st.sampled_from([2, 3]))
def test_project_is_the_tangent_projection(seed, dim):
    k1, k2 = jax.random.split(jax.random.key(seed))
    sigma = 2.0 * jax.random.normal(k1, (N, dim))  # not normalised: P uses σσᵀ/|σ|²
    v = jax.random.normal(k2, (N, dim))
    pv = OscillatorUnits.project(sigma, v)
    assert pv.shape == (N, dim)
    # orthogonal to σ, idempotent, kills σ, and differs from v only along σ
    np.testing.assert_allclose(jnp.sum(pv * sigma, axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(OscillatorUnits.project(sigma, pv), pv, atol=1e-12)
    np.testing.assert_allclose(OscillatorUnits.project(sigma, 3.0 * sigma), 0.0, atol=1e-12)
    cross = (v - pv)[:, :, None] * sigma[:, None, :] - sigma[:, :, None] * (v - pv)[:, None, :]
    np.testing.assert_allclose(cross, 0.0, atol=1e-12)
    # against the matrix (I − σσᵀ/|σ|²) v, row by row
    for i in range(N):
        s = np.asarray(sigma[i])
        p = np.eye(dim) - np.outer(s, s) / (s @ s)
        np.testing.assert_allclose(pv[i], p @ np.asarray(v[i]), atol=1e-12)


@PROPERTY
@given(seed=seeds)
def test_global_rotation_is_tangent_and_keeps_norms(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    omega = random_antisymmetric(k1, (D, D))
    osc = OscillatorUnits(N, D, omega=omega)
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
def test_per_neuron_rotation(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    omega = random_antisymmetric(k1, (N, D, D))
    osc = OscillatorUnits(N, D, omega=omega)
    sigma = jax.random.normal(k2, (N, D))
    r = osc.rotation(sigma)
    for i in range(N):
        np.testing.assert_allclose(r[i], np.asarray(omega[i]) @ np.asarray(sigma[i]), atol=1e-12)
    np.testing.assert_allclose(jnp.sum(sigma * r, axis=-1), 0.0, atol=1e-12)


def test_no_omega_no_rotation():
    sigma = jax.random.normal(jax.random.key(0), (N, D))
    np.testing.assert_array_equal(OscillatorUnits(N, D).rotation(sigma), 0.0)


def test_rotation_uses_the_antisymmetric_part_of_a_learned_omega():
    """A learned Ω that drifts off antisymmetry (as after a gradient step) still rotates."""
    omega = random_antisymmetric(jax.random.key(0), (D, D))
    osc = OscillatorUnits(N, D, omega=omega)
    drifted = eqx.tree_at(lambda o: o.omega, osc, omega + 0.3 * jnp.eye(D))
    sigma = jax.random.normal(jax.random.key(1), (N, D))
    np.testing.assert_allclose(drifted.rotation(sigma), osc.rotation(sigma), atol=1e-12)


def test_normalise_maps_onto_the_sphere():
    sigma = 5.0 * jax.random.normal(jax.random.key(0), (N, D))
    out = OscillatorUnits.normalise(sigma)
    np.testing.assert_allclose(jnp.linalg.norm(out, axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(out * jnp.linalg.norm(sigma, axis=-1, keepdims=True), sigma, rtol=1e-13)


# ---------------------------------------------------------------------------------------
# ThresholdUnits
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lag", LAGRANGIANS)
def test_threshold_energy_is_the_legendre_term(lag):
    x = jax.random.normal(jax.random.key(0), (N,))
    th = ThresholdUnits(N, lagrangian=lag, kappa=0.3)
    g = lag.activation(x)
    np.testing.assert_allclose(th.activation(x), g)
    np.testing.assert_allclose(th.energy(x), 0.3 * (jnp.dot(x, g) - lag(x)), rtol=1e-13)
    np.testing.assert_allclose(th.energy(x, g), th.energy(x), rtol=1e-13)


def test_threshold_defaults_and_checks():
    th = ThresholdUnits(N, lagrangian=L.Tanh(), kappa=0.1)
    assert th.tau == 0.1  # the paper's choice: τ = κ_H
    assert ThresholdUnits(N, lagrangian=L.Tanh(), kappa=0.1, tau=2.0).tau == 2.0
    with pytest.raises(ValueError, match="kappa"):
        ThresholdUnits(N, lagrangian=L.Tanh(), kappa=-1.0)
    with pytest.raises(ValueError, match="tau"):
        ThresholdUnits(N, lagrangian=L.Tanh(), tau=0.0)
    with pytest.raises(ValueError, match="n"):
        ThresholdUnits(0, lagrangian=L.Tanh())
    with pytest.raises(TypeError, match="lagrangian"):
        ThresholdUnits(N, lagrangian=jnp.tanh)


def test_state_is_a_pytree_that_batches():
    s = State(x=jnp.zeros(N), sigma=jnp.ones((N, D)))
    batched = jax.vmap(lambda k: State(x=jax.random.normal(k, (N,)), sigma=s.sigma))(jax.random.split(jax.random.key(0), 4))
    assert batched.x.shape == (4, N) and batched.sigma.shape == (4, N, D)
    assert hk.State is State

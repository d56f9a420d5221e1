"""Tests for hkjax.network.

The derived flow and the energy are checked against the paper's formulas (arXiv 2505.03648)
written out here a second time, independently, with NumPy and Python loops: no hkjax
internals, only the parameters we hand to the presets (or to the synapses of networks of
several named layers, whose formulas are in :class:`LayeredModel` and :class:`BoundModel`).

    E(x, σ) = κ_H [ (x − b)·g − L(x) − ½ gᵀ W_s g ] + κ_K Σ_(i,j)∈G_K F_ij(σ_i·σ_j)
              − Σ_(i,j)∈G_HK C_ij g_i g_j (σ_i·σ_j) − Σ_i c_i·σ_i
    dx/dt   = W_s g + b − x + κ_H⁻¹ Σ_j C_ij (σ_i·σ_j) g_j
    dσ_i/dt = −κ_K⁻¹ P_σi ∂E/∂σ_i + Ω_i σ_i,
    ∂E/∂σ_i = κ_K Σ_{j∈N_K(i)} F'_ij(σ_i·σ_j) σ_j − Σ_{j∈N_HK(i)} C_ij g_i g_j σ_j − c_i
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    COUPLINGS,
    INTERACTIONS,
    LAGRANGIANS,
    PROPERTY_FEW,
    random_antisymmetric,
    random_orthogonal,
    unit_rows,
)
from hypothesis import given
from hypothesis import strategies as st

import hkjax as hk
from hkjax import graphs
from hkjax import interactions as I
from hkjax import lagrangians as L

N, D = 6, 3
KAPPA_H, KAPPA_K = 0.3, 1.7
#: Kuramoto graph and coupling graph: different, sparse, canonical (so per-edge arrays we
#: build line up with the library's edge order), with unequal degrees.
EDGES_K = graphs.validate_edges(np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [0, 5], [0, 3]]), N)
EDGES_HK = graphs.validate_edges(np.array([[0, 2], [1, 3], [2, 4], [1, 5], [0, 4], [2, 5]]), N)
EDGES_ALL = graphs.all_to_all(N)


# ---------------------------------------------------------------------------------------
# The paper's model, written out with NumPy
# ---------------------------------------------------------------------------------------


def np_lagrangian(lag):
    """``(L, g)`` of a Lagrangian as NumPy functions (from the documented formulas)."""
    if isinstance(lag, L.Identity):
        return (lambda x: 0.5 * np.sum(x**2)), (lambda x: x)
    if isinstance(lag, L.Tanh):
        return (lambda x: np.sum(np.log(np.cosh(x)))), np.tanh
    if isinstance(lag, L.Sigmoid):
        return (lambda x: np.sum(np.log1p(np.exp(x)))), (lambda x: 1.0 / (1.0 + np.exp(-x)))
    if isinstance(lag, L.ReLU):
        return (lambda x: 0.5 * np.sum(np.maximum(x, 0.0) ** 2)), (lambda x: np.maximum(x, 0.0))
    if isinstance(lag, L.Softmax):
        b = lag.beta

        def soft(x):
            e = np.exp(b * x - np.max(b * x))
            return e / e.sum()

        return (lambda x: np.log(np.sum(np.exp(b * x))) / b), soft
    if isinstance(lag, L.LayerNorm):
        gm, dl, ep = lag.gamma, lag.delta, lag.eps

        def value(x):
            return x.size * gm * np.sqrt(np.mean((x - x.mean()) ** 2) + ep) + dl * np.sum(x)

        def act(x):
            xc = x - x.mean()
            return gm * xc / np.sqrt(np.mean(xc**2) + ep) + dl

        return value, act
    raise NotImplementedError(type(lag))


def np_mlp(mlp):
    """``(f, f')`` of a scalar tanh MLP, by a hand-written forward pass (forward-mode for f')."""
    layers = [(np.asarray(layer.weight), np.asarray(layer.bias)) for layer in mlp.layers]

    def both(s):
        h, dh = np.array([s]), np.array([1.0])
        for w, b in layers[:-1]:
            z = w @ h + b
            h, dh = np.tanh(z), (1.0 - np.tanh(z) ** 2) * (w @ dh)
        w, b = layers[-1]
        return float((w @ h + b)[0]), float((w @ dh)[0])

    return (lambda s: both(s)[0]), (lambda s: both(s)[1])


def np_interaction(template, params):
    """``(F_e, F'_e)`` for edge ``e``, given the ``(E, P)`` parameter array we chose."""
    if isinstance(template, I.Linear):
        return (lambda e, s: params[e, 0] * s), (lambda e, s: params[e, 0])
    if isinstance(template, I.MLP):
        f, fp = np_mlp(template.mlp)
        return (lambda e, s: params[e, 0] * f(s)), (lambda e, s: params[e, 0] * fp(s))
    phi, dphi = {
        I.ReLU: (lambda s: 0.5 * max(s, 0.0) ** 2, lambda s: max(s, 0.0)),
        I.Tanh: (lambda s: np.log(np.cosh(s)), np.tanh),
        I.Sigmoid: (lambda s: np.log1p(np.exp(s)), lambda s: 1.0 / (1.0 + np.exp(-s))),
    }[type(template)]
    return (
        (lambda e, s: params[e, 0] * s + params[e, 1] * phi(s)),
        (lambda e, s: params[e, 0] + params[e, 1] * dphi(s)),
    )


class PaperModel:
    """The Hopfield–Kuramoto model with explicit parameters, in NumPy."""

    def __init__(self, *, lag, interaction, coupling, edges_k, edges_hk, seed, omega=None, stimulus=None, n=N):
        rng = np.random.default_rng(seed)
        self.n = n
        self.lag_value, self.lag_act = np_lagrangian(lag)
        self.w = 0.5 * rng.standard_normal((n, n))
        self.ws = 0.5 * (self.w + self.w.T)
        self.b = 0.3 * rng.standard_normal(n)
        self.edges_k = None if edges_k is None else np.asarray(edges_k)
        self.edges_hk = np.asarray(edges_hk)
        p = len(interaction.param_names)
        self.kw = None if edges_k is None else 0.6 * rng.standard_normal((len(self.edges_k), p))
        self.F, self.dF = (None, None) if edges_k is None else np_interaction(interaction, self.kw)
        self.coupling = coupling
        if coupling == "full":
            self.cw = 0.5 * rng.standard_normal(len(self.edges_hk))
            self.C = self.cw.copy()
        elif coupling == "additive":
            self.cw = 0.4
            self.C = np.full(len(self.edges_hk), 0.4)
        else:
            self.cw = 0.7  # α
            self.C = np.array([0.7 * self.ws[i, j] for i, j in self.edges_hk])
        self.omega = None if omega is None else np.asarray(omega)
        self.stimulus = None if stimulus is None else np.asarray(stimulus)

    def network(self, interaction, lag, **kw):
        return hk.hopfield_kuramoto(
            self.n,
            D,
            edges_k=self.edges_k,
            edges_hk=self.edges_hk,
            coupling=self.coupling,
            lagrangian=lag,
            interaction=interaction,
            kappa_h=KAPPA_H,
            kappa_k=KAPPA_K,
            hopfield_weights=jnp.asarray(self.w),
            hopfield_bias=jnp.asarray(self.b),
            kuramoto_weights=None if self.kw is None else jnp.asarray(self.kw),
            coupling_weights=jnp.asarray(self.cw),
            omega=None if self.omega is None else jnp.asarray(self.omega),
            stimulus=None if self.stimulus is None else jnp.asarray(self.stimulus),
            key=jax.random.key(0),
            **kw,
        )

    def energy(self, x, sigma):
        g = self.lag_act(x)
        e = KAPPA_H * ((x - self.b) @ g - self.lag_value(x) - 0.5 * g @ self.ws @ g)
        if self.edges_k is not None:
            e += KAPPA_K * sum(self.F(k, sigma[i] @ sigma[j]) for k, (i, j) in enumerate(self.edges_k))
        e -= sum(self.C[k] * g[i] * g[j] * (sigma[i] @ sigma[j]) for k, (i, j) in enumerate(self.edges_hk))
        if self.stimulus is not None:
            e -= np.sum(self.stimulus * sigma)
        return e

    def flow(self, x, sigma):
        n = self.n
        g = self.lag_act(x)
        dx = self.ws @ g + self.b - x
        for k, (i, j) in enumerate(self.edges_hk):  # both directions
            dx[i] += self.C[k] * (sigma[i] @ sigma[j]) * g[j] / KAPPA_H
            dx[j] += self.C[k] * (sigma[j] @ sigma[i]) * g[i] / KAPPA_H
        de = np.zeros_like(sigma)  # ∂E/∂σ_i
        if self.edges_k is not None:
            for k, (i, j) in enumerate(self.edges_k):
                fp = self.dF(k, sigma[i] @ sigma[j])
                de[i] += KAPPA_K * fp * sigma[j]
                de[j] += KAPPA_K * fp * sigma[i]
        for k, (i, j) in enumerate(self.edges_hk):
            de[i] -= self.C[k] * g[i] * g[j] * sigma[j]
            de[j] -= self.C[k] * g[j] * g[i] * sigma[i]
        if self.stimulus is not None:
            de -= self.stimulus
        ds = np.zeros_like(sigma)
        for i in range(n):
            s = sigma[i]
            p = np.eye(D) - np.outer(s, s) / (s @ s)
            ds[i] = -p @ de[i] / KAPPA_K
            if self.omega is not None:
                om = self.omega if self.omega.ndim == 2 else self.omega[i]
                ds[i] += om @ s
        return dx, ds


def _state(seed, n=N):
    kx, ks = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (n,)), unit_rows(ks, n, D)


def _compare(model, net, seed, rtol=1e-10):
    x, sigma = _state(seed, model.n)
    state = net.init_state({"x": x, "sigma": sigma})
    f = net.vector_field(0.0, state)
    dx, ds = model.flow(np.asarray(x), np.asarray(sigma))
    np.testing.assert_allclose(f["x"], dx, rtol=rtol, atol=1e-12, err_msg="dx/dt")
    np.testing.assert_allclose(f["sigma"], ds, rtol=rtol, atol=1e-12, err_msg="dσ/dt")
    # Energy: compared through differences between two states, so that a constant per edge
    # in F (a shifted potential, which changes no flow) does not matter.
    x2, sigma2 = _state(seed + 1000, model.n)
    state2 = net.init_state({"x": x2, "sigma": sigma2})
    want = model.energy(np.asarray(x), np.asarray(sigma)) - model.energy(np.asarray(x2), np.asarray(sigma2))
    got = net.energy(state) - net.energy(state2)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-11, err_msg="energy difference")
    return state


# ---------------------------------------------------------------------------------------
# Flow and energy against the paper
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("interaction", INTERACTIONS)
@pytest.mark.parametrize("lag", LAGRANGIANS)
def test_hopfield_kuramoto_flow_and_energy_match_the_paper(lag, interaction, coupling):
    """Sparse graphs, a global Ω and a stimulus: every term of the flow is on."""
    omega = np.asarray(random_antisymmetric(jax.random.key(5), (D, D)))
    stim = 0.3 * np.asarray(jax.random.normal(jax.random.key(6), (N, D)))
    model = PaperModel(
        lag=lag, interaction=interaction, coupling=coupling, edges_k=EDGES_K, edges_hk=EDGES_HK, seed=1, omega=omega, stimulus=stim
    )
    _compare(model, model.network(interaction, lag), seed=3)


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_all_to_all_coupling_flow_and_energy_match_the_paper(coupling):
    """A complete coupling graph G_HK (its "all" fast path), no Ω."""
    model = PaperModel(lag=L.Tanh(), interaction=I.ReLU(), coupling=coupling, edges_k=EDGES_K, edges_hk=EDGES_ALL, seed=2)
    _compare(model, model.network(I.ReLU(), L.Tanh()), seed=4)


@pytest.mark.parametrize("interaction", INTERACTIONS)
def test_all_to_all_kuramoto_flow_and_energy_match_the_paper(interaction):
    """A complete Kuramoto graph G_K (its "all" fast path) with per-edge potentials."""
    model = PaperModel(lag=L.Tanh(), interaction=interaction, coupling="full", edges_k=EDGES_ALL, edges_hk=EDGES_HK, seed=2)
    _compare(model, model.network(interaction, L.Tanh()), seed=4)


@pytest.mark.parametrize("formulation", [f for f in hk.synapses.FORMULATIONS if f not in ("auto", "all")])
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_every_formulation_gives_the_papers_flow(coupling, formulation):
    model = PaperModel(lag=L.Sigmoid(), interaction=I.ReLU(), coupling=coupling, edges_k=EDGES_K, edges_hk=EDGES_HK, seed=7)
    _compare(model, model.network(I.ReLU(), L.Sigmoid(), formulation=formulation), seed=8)


def test_per_neuron_omega_and_no_kuramoto_term():
    omega = np.asarray(random_antisymmetric(jax.random.key(9), (N, D, D)))
    model = PaperModel(lag=L.ReLU(), interaction=I.ReLU(), coupling="full", edges_k=None, edges_hk=EDGES_HK, seed=3, omega=omega)
    _compare(model, model.network(I.ReLU(), L.ReLU()), seed=5)


@pytest.mark.parametrize("lag", LAGRANGIANS)
def test_plain_hopfield_flow_and_energy(lag):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((N, N)), rng.standard_normal(N)
    ws = 0.5 * (w + w.T)
    lval, lact = np_lagrangian(lag)
    kappa = 0.7
    net = hk.hopfield(N, lagrangian=lag, weights=jnp.asarray(w), bias=jnp.asarray(b), kappa=kappa, key=jax.random.key(0))
    assert list(net.layers) == ["x"] and net.oscillator_layers == {} and net.is_lyapunov
    x = np.asarray(jax.random.normal(jax.random.key(1), (N,)))
    state = net.init_state({"x": x})
    g = lact(x)
    f = net.vector_field(0.0, state)
    assert list(f) == ["x"]
    np.testing.assert_allclose(f["x"], ws @ g + b - x, rtol=1e-10, atol=1e-12)
    want = kappa * ((x - b) @ g - lval(x) - 0.5 * g @ ws @ g)
    np.testing.assert_allclose(net.energy(state), want, rtol=1e-10)


def test_kuramoto_preset_flow():
    rng = np.random.default_rng(1)
    kw = rng.standard_normal((len(EDGES_K), 2))
    omega = np.asarray(random_antisymmetric(jax.random.key(2), (D, D)))
    stim = rng.standard_normal((N, D))
    kappa = 0.8
    net = hk.kuramoto(
        N, D, edges=EDGES_K, interaction=I.Tanh(), weights=kw, omega=omega, stimulus=stim, kappa=kappa, key=jax.random.key(0)
    )
    sigma = np.asarray(unit_rows(jax.random.key(3), N, D))
    assert list(net.layers) == ["sigma"] and net.threshold_layers == {}
    state = net.init_state({"sigma": sigma})
    de = -stim.copy()
    energy = -np.sum(stim * sigma)
    for k, (i, j) in enumerate(EDGES_K):
        s = sigma[i] @ sigma[j]
        energy += kappa * (kw[k, 0] * s + kw[k, 1] * np.log(np.cosh(s)))
        fp = kw[k, 0] + kw[k, 1] * np.tanh(s)
        de[i] += kappa * fp * sigma[j]
        de[j] += kappa * fp * sigma[i]
    want = np.stack([-(np.eye(D) - np.outer(s, s)) @ d / kappa + omega @ s for s, d in zip(sigma, de)])
    f = net.vector_field(0.0, state)
    assert list(f) == ["sigma"]
    np.testing.assert_allclose(f["sigma"], want, rtol=1e-10, atol=1e-12)
    sigma2 = np.asarray(unit_rows(jax.random.key(4), N, D))
    e2 = -np.sum(stim * sigma2) + sum(
        kappa * (kw[k, 0] * (sigma2[i] @ sigma2[j]) + kw[k, 1] * np.log(np.cosh(sigma2[i] @ sigma2[j])))
        for k, (i, j) in enumerate(EDGES_K)
    )
    got = net.energy(state) - net.energy(net.init_state({"sigma": sigma2}))
    np.testing.assert_allclose(got, energy - e2, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Lyapunov property, pointwise: dE/dt = ∇E · f ≤ 0
# ---------------------------------------------------------------------------------------


@eqx.filter_jit
def _effective_weights(net, state):
    return net.effective_weights(state)


@eqx.filter_jit
def _energy_rate(net, state):
    f = net.vector_field(0.0, state)
    return jax.jvp(net.energy, (state,), (f,))[1], sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(f))


@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("lag", LAGRANGIANS)
@PROPERTY_FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_energy_rate_is_non_positive(lag, coupling, seed):
    """``dE/dt ≤ 0`` at random states (global Ω, no stimulus: still Lyapunov)."""
    omega = random_antisymmetric(jax.random.key(seed % 7), (D, D))
    net = hk.hopfield_kuramoto(
        N, D, edges_k=EDGES_K, edges_hk=EDGES_HK, coupling=coupling, lagrangian=lag, interaction=I.Tanh(),
        kappa_h=KAPPA_H, kappa_k=KAPPA_K, init_scale=0.5, omega=omega, key=jax.random.key(seed),
    )  # fmt: skip
    assert net.is_lyapunov
    x, sigma = _state(seed)
    state = net.init_state({"x": x, "sigma": sigma})
    rate, speed = _energy_rate(net, state)
    # dE/dt = −τ ẋᵀ∇²L ẋ − |P ∂E/∂σ|²/τ: negative and of the order of |f|², not round-off
    assert float(rate) <= 1e-10 * (1.0 + float(speed)), (float(rate), float(speed))


def test_energy_rate_can_be_positive_with_per_neuron_omega():
    """The documented caveat: per-neuron frequencies can make the energy rise."""
    rates = []
    for seed in range(8):
        omega = 5.0 * random_antisymmetric(jax.random.key(100 + seed), (N, D, D))
        net = hk.kuramoto(N, D, edges=EDGES_K, interaction=I.Linear(), omega=omega, init_scale=1.0, key=jax.random.key(seed))
        assert not net.is_lyapunov
        state = net.init_state(key=jax.random.key(200 + seed))
        rates.append(float(_energy_rate(net, state)[0]))
    assert max(rates) > 0.0, rates


# ---------------------------------------------------------------------------------------
# Rank-D structure of the additive all-to-all coupling
# ---------------------------------------------------------------------------------------


def test_additive_all_to_all_coupling_is_a_rank_d_update():
    n, c = 8, 0.45
    assert D < n
    w = np.asarray(jax.random.normal(jax.random.key(0), (n, n)))
    ws = 0.5 * (w + w.T)
    net = hk.hopfield_kuramoto(
        n, D, edges_k=graphs.ring(n, 2), edges_hk="all", coupling="additive", lagrangian=L.Tanh(),
        interaction=I.ReLU(), kappa_h=KAPPA_H, kappa_k=KAPPA_K, hopfield_weights=w, coupling_weights=c,
        key=jax.random.key(1),
    )  # fmt: skip
    x, sigma = _state(2, n)
    state = net.init_state({"x": x, "sigma": sigma})
    delta = np.asarray(_effective_weights(net, state)) - ws
    corrected = delta + (c / KAPPA_H) * np.eye(n)
    sv = np.linalg.svd(corrected, compute_uv=False)
    assert np.all(sv[D:] <= 1e-10 * sv[0]), sv
    # ... and it is exactly (c/κ_H) σσᵀ
    np.testing.assert_allclose(corrected, (c / KAPPA_H) * np.asarray(sigma) @ np.asarray(sigma).T, rtol=1e-10, atol=1e-12)
    # Discriminating: without the identity correction the rank is full.
    sv_raw = np.linalg.svd(delta, compute_uv=False)
    assert sv_raw[D] > 1e-3 * sv_raw[0], sv_raw


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_effective_weights_match_the_paper(coupling):
    model = PaperModel(lag=L.Tanh(), interaction=I.ReLU(), coupling=coupling, edges_k=EDGES_K, edges_hk=EDGES_HK, seed=11)
    net = model.network(I.ReLU(), L.Tanh())
    x, sigma = _state(12)
    s = np.asarray(sigma)
    want = model.ws.copy()
    for k, (i, j) in enumerate(model.edges_hk):
        want[i, j] += model.C[k] * (s[i] @ s[j]) / KAPPA_H
        want[j, i] += model.C[k] * (s[i] @ s[j]) / KAPPA_H
    np.testing.assert_allclose(_effective_weights(net, net.init_state({"x": x, "sigma": sigma})), want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Global rotations
# ---------------------------------------------------------------------------------------


def _hk_net(coupling, *, omega=None, stimulus=None, interaction=None, seed=0):
    return hk.hopfield_kuramoto(
        N, D, edges_k=EDGES_K, edges_hk=EDGES_HK, coupling=coupling, lagrangian=L.Tanh(),
        interaction=I.ReLU() if interaction is None else interaction, kappa_h=KAPPA_H, kappa_k=KAPPA_K,
        init_scale=0.5, omega=omega, stimulus=stimulus, key=jax.random.key(seed),
    )  # fmt: skip


@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("interaction", INTERACTIONS)
def test_energy_and_flow_are_rotation_equivariant(interaction, coupling):
    net = _hk_net(coupling, interaction=interaction, seed=1)
    x, sigma = _state(3)
    r = random_orthogonal(jax.random.key(4), D)
    a = net.init_state({"x": x, "sigma": sigma})
    b = net.init_state({"x": x, "sigma": sigma @ r.T})
    np.testing.assert_allclose(net.energy(b), net.energy(a), rtol=1e-12)
    fa, fb = net.vector_field(0.0, a), net.vector_field(0.0, b)
    np.testing.assert_allclose(fb["x"], fa["x"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fb["sigma"], fa["sigma"] @ r.T, rtol=1e-10, atol=1e-13)


def test_global_omega_commuting_with_the_rotation_keeps_equivariance():
    omega = random_antisymmetric(jax.random.key(0), (D, D))
    r = jax.scipy.linalg.expm(0.9 * omega)  # commutes with Ω
    np.testing.assert_allclose(r @ omega, omega @ r, atol=1e-12)
    net = _hk_net("full", omega=omega)
    assert net.is_lyapunov
    x, sigma = _state(5)
    a, b = net.init_state({"x": x, "sigma": sigma}), net.init_state({"x": x, "sigma": sigma @ r.T})
    np.testing.assert_allclose(net.energy(b), net.energy(a), rtol=1e-12)
    fa, fb = net.vector_field(0.0, a), net.vector_field(0.0, b)
    np.testing.assert_allclose(fb["x"], fa["x"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fb["sigma"], fa["sigma"] @ r.T, rtol=1e-10, atol=1e-13)


def test_stimulus_breaks_rotation_invariance():
    stim = jax.random.normal(jax.random.key(0), (N, D))
    net = _hk_net("additive", stimulus=stim)
    x, sigma = _state(6)
    r = random_orthogonal(jax.random.key(7), D)
    a, b = net.init_state({"x": x, "sigma": sigma}), net.init_state({"x": x, "sigma": sigma @ r.T})
    assert abs(float(net.energy(b) - net.energy(a))) > 1e-3
    fa, fb = net.vector_field(0.0, a), net.vector_field(0.0, b)
    assert float(jnp.max(jnp.abs(fb["sigma"] - fa["sigma"] @ r.T))) > 1e-3


def test_is_lyapunov():
    omega = random_antisymmetric(jax.random.key(0), (D, D))
    per = random_antisymmetric(jax.random.key(1), (N, D, D))
    stim = jnp.ones((N, D))
    assert _hk_net("full").is_lyapunov
    assert _hk_net("full", stimulus=stim).is_lyapunov  # no Ω: a stimulus is fine
    assert _hk_net("full", omega=omega).is_lyapunov
    assert not _hk_net("full", omega=omega, stimulus=stim).is_lyapunov
    assert not _hk_net("full", omega=per).is_lyapunov
    assert not _hk_net("multiplicative", omega=per, stimulus=stim).is_lyapunov
    assert hk.hopfield(N, lagrangian=L.ReLU(), key=jax.random.key(0)).is_lyapunov


# ---------------------------------------------------------------------------------------
# Networks of several named layers
# ---------------------------------------------------------------------------------------

#: Sizes of the layered networks' "pixels", "hidden" and "classes" layers.
P, H, C = 6, 4, 3
#: (κ, τ) of the layered network's layers: τ ≠ κ on the hidden layer.
LAYER_CONSTANTS = {"pixels": (1.0, 1.0), "hidden": (0.5, 2.0), "classes": (0.8, 0.8)}
#: Class layer: a Softmax over the three classes.
CLASS_BETA = 1.5
#: Relaxations of the layered networks: time grid and tolerances.
LAYERED_T1 = 3.0
LAYERED_TS = jnp.linspace(0.0, LAYERED_T1, 31)
LAYERED_RTOL, LAYERED_ATOL = 1e-7, 1e-9


def _sym(w):
    return 0.5 * (w + w.T)


def _np_legendre(lag, kappa, x):
    """``κ (x·g − L(x))`` and ``g``, from the documented formulas (:func:`np_lagrangian`)."""
    value, act = np_lagrangian(lag)
    g = act(x)
    return kappa * (x @ g - value(x)), g


class LayeredModel:
    """Pixels (Identity) → hidden (``hidden_lag``) → classes (Softmax), bound by dense
    weights ``W1`` (pixels × hidden), ``W2`` (hidden × classes), a dense synapse ``Wh``
    within the hidden layer and biases ``b1``, ``b2``, written out with NumPy:

        E = Σ_l κ_l (x_l·g_l − L_l(x_l)) − g_pᵀ W1 g_h − g_hᵀ W2 g_c − ½ g_hᵀ Wh_s g_h
            − b1·g_h − b2·g_c
        τ_p ẋ_p = −κ_p x_p + W1 g_h
        τ_h ẋ_h = −κ_h x_h + W1ᵀ g_p + W2 g_c + Wh_s g_h + b1
        τ_c ẋ_c = −κ_c x_c + W2ᵀ g_h + b2
    """

    def __init__(self, hidden_lag, seed):
        rng = np.random.default_rng(seed)
        self.lags = {"pixels": L.Identity(), "hidden": hidden_lag, "classes": L.Softmax(beta=CLASS_BETA)}
        self.w1 = 0.6 * rng.standard_normal((P, H))
        self.w2 = 0.6 * rng.standard_normal((H, C))
        self.wh = 0.4 * rng.standard_normal((H, H))
        self.b1 = 0.3 * rng.standard_normal(H)
        self.b2 = 0.3 * rng.standard_normal(C)

    def network(self):
        S = hk.synapses
        layers = {
            name: hk.ThresholdLayer((size,), self.lags[name], kappa=LAYER_CONSTANTS[name][0], tau=LAYER_CONSTANTS[name][1])
            for name, size in (("pixels", P), ("hidden", H), ("classes", C))
        }
        synapses = [
            S.Dense("pixels", "hidden", jnp.asarray(self.w1)),
            S.Dense("hidden", "classes", jnp.asarray(self.w2)),
            S.Dense("hidden", "hidden", jnp.asarray(self.wh)),
            S.Bias("hidden", jnp.asarray(self.b1)),
            S.Bias("classes", jnp.asarray(self.b2)),
        ]
        return hk.Network(layers, synapses)

    def energy(self, x):
        e, g = 0.0, {}
        for name, xl in x.items():
            el, g[name] = _np_legendre(self.lags[name], LAYER_CONSTANTS[name][0], xl)
            e += el
        gp, gh, gc = g["pixels"], g["hidden"], g["classes"]
        return e - gp @ self.w1 @ gh - gh @ self.w2 @ gc - 0.5 * gh @ _sym(self.wh) @ gh - self.b1 @ gh - self.b2 @ gc

    def flow(self, x):
        g = {name: np_lagrangian(self.lags[name])[1](xl) for name, xl in x.items()}
        gp, gh, gc = g["pixels"], g["hidden"], g["classes"]
        drive = {
            "pixels": self.w1 @ gh,
            "hidden": self.w1.T @ gp + self.w2 @ gc + _sym(self.wh) @ gh + self.b1,
            "classes": self.w2.T @ gh + self.b2,
        }
        return {n: (-LAYER_CONSTANTS[n][0] * x[n] + drive[n]) / LAYER_CONSTANTS[n][1] for n in x}


def _layered_state(seed, sizes):
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    return {name: np.asarray(jax.random.normal(k, (size,))) for k, (name, size) in zip(keys, sizes.items())}


@eqx.filter_jit
def _layered_trajectory(net, state0):
    return hk.relax(net, state0, t1=LAYERED_T1, rtol=LAYERED_RTOL, atol=LAYERED_ATOL, saveat=LAYERED_TS,
                    max_steps=4096)


def _assert_energy_descends(sol):
    """Energy non-increasing at every saved time (up to the dense-output error of the
    solve) and going down by far more than that."""
    assert int(sol.stats["result"]) == 0
    e = np.asarray(sol.energy)
    assert e.shape == LAYERED_TS.shape and np.all(np.isfinite(e))
    tol = 1e-6 * (1.0 + np.max(np.abs(e)))
    assert np.diff(e).max() <= tol, f"energy rose by {np.diff(e).max():.3e} (tolerance {tol:.1e}): {e}"
    assert e[0] - e[-1] > 1e3 * tol, e


@pytest.mark.parametrize("hidden_lag", [L.ReLU(), L.Tanh()], ids=["ReLU", "Tanh"])
def test_layered_network_flow_energy_and_descent(hidden_lag):
    model = LayeredModel(hidden_lag, seed=0)
    net = model.network()
    assert list(net.layers) == sorted(["pixels", "hidden", "classes"])  # a pytree dict's order
    assert set(net.threshold_layers) == set(net.layers) and net.oscillator_layers == {}
    assert net.is_lyapunov and not net.rotating
    sizes = {"pixels": P, "hidden": H, "classes": C}
    x = _layered_state(1, sizes)
    state = net.init_state(x)
    f = net.vector_field(0.0, state)
    want = model.flow(x)
    assert set(f) == set(sizes)
    for name in sizes:
        np.testing.assert_allclose(f[name], want[name], rtol=1e-12, atol=1e-13, err_msg=f"d{name}/dt")
    np.testing.assert_allclose(net.energy(state), model.energy(x), rtol=1e-12)
    # The softmax layer sees its own classes only: its value sums to one.
    np.testing.assert_allclose(float(jnp.sum(net.values(state)["classes"])), 1.0, rtol=1e-14)
    sol = _layered_trajectory(net, state)
    _assert_energy_descends(sol)
    assert {n: v.shape for n, v in sol.states.items()} == {n: (len(LAYERED_TS), s) for n, s in sizes.items()}
    # The saved energies are the energies of the saved states.
    for k in (0, len(LAYERED_TS) // 2, len(LAYERED_TS) - 1):
        xk = {n: np.asarray(v[k]) for n, v in sol.states.items()}
        np.testing.assert_allclose(sol.energy[k], model.energy(xk), rtol=1e-10)


def test_hierarchical_hopfield_builds_the_stack_and_its_flow():
    lags = [L.Identity(), L.Tanh(), L.Softmax(beta=CLASS_BETA)]
    names = ["input", "hidden_1", "output"]
    net = hk.hierarchical_hopfield([5, 4, 3], lags, key=jax.random.key(0))
    assert list(net.layers) == sorted(names)  # a pytree dict's order
    assert [net.layers[n].shape for n in names] == [(5,), (4,), (3,)]
    assert [net.layers[n].lagrangian for n in names] == lags
    S = hk.synapses
    assert [(type(s), s.layers) for s in net.synapses] == [
        (S.Dense, ("input", "hidden_1")), (S.Dense, ("hidden_1", "output")),
        (S.Bias, ("hidden_1",)), (S.Bias, ("output",)),
    ]
    w1, w2 = (np.asarray(s.weights) for s in net.synapses[:2])
    assert w1.shape == (5, 4) and w2.shape == (4, 3)
    for s in net.synapses[2:]:
        np.testing.assert_array_equal(s.bias, 0.0)  # biases start at zero
    # Non-zero biases, so that every term of the flow is on.
    rng = np.random.default_rng(3)
    bh, bo = 0.3 * rng.standard_normal(4), 0.3 * rng.standard_normal(3)
    net = eqx.tree_at(lambda m: (m.synapses[2].bias, m.synapses[3].bias), net, (jnp.asarray(bh), jnp.asarray(bo)))
    x = _layered_state(4, {"input": 5, "hidden_1": 4, "output": 3})
    gi, gh, go = (np_lagrangian(lag)[1](x[n]) for lag, n in zip(lags, names))
    want = {
        "input": -x["input"] + w1 @ gh,
        "hidden_1": -x["hidden_1"] + w1.T @ gi + w2 @ go + bh,
        "output": -x["output"] + w2.T @ gh + bo,
    }
    state = net.init_state(x)
    f = net.vector_field(0.0, state)
    for name in want:
        np.testing.assert_allclose(f[name], want[name], rtol=1e-12, atol=1e-13, err_msg=f"d{name}/dt")
    energy = sum(_np_legendre(lag, 1.0, x[n])[0] for lag, n in zip(lags, names))
    energy -= gi @ w1 @ gh + gh @ w2 @ go + bh @ gh + bo @ go
    np.testing.assert_allclose(net.energy(state), energy, rtol=1e-12)


def test_hierarchical_hopfield_arguments():
    net = hk.hierarchical_hopfield([3, 2], L.Tanh(), names=["a", "b"], init_scale=0.0, key=jax.random.key(0))
    assert list(net.layers) == ["a", "b"]
    assert all(isinstance(net.layers[n].lagrangian, L.Tanh) for n in net.layers)
    np.testing.assert_array_equal(net.synapses[0].weights, 0.0)
    with pytest.raises(ValueError, match="sizes"):
        hk.hierarchical_hopfield([5], L.Tanh(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="lagrangians has 2 entries for 3 layers"):
        hk.hierarchical_hopfield([5, 4, 3], [L.Tanh(), L.Tanh()], key=jax.random.key(0))
    with pytest.raises(ValueError, match="names"):
        hk.hierarchical_hopfield([5, 4, 3], L.Tanh(), names=["a", "b", "a"], key=jax.random.key(0))


#: The Hopfield–Kuramoto network on named layers: oscillators bound to the hidden layer only.
HK_EDGES_K = graphs.validate_edges(np.array([[0, 1], [1, 2], [2, 3], [0, 3]]), H)
HK_EDGES_C = graphs.validate_edges(np.array([[0, 1], [0, 2], [1, 3]]), H)
HK_KAPPA_H, HK_KAPPA_K, HK_TAU_OSC = 0.5, 1.2, 0.8


class BoundModel:
    """Pixels (Identity, ``P``) → hidden (Tanh, ``H``) ↔ oscillators (``H`` on S²):

        E = Σ_{p,h} κ_l (x_l·g_l − L_l(x_l)) − g_pᵀ W g_h − κ_H (b·g_h + ½ g_hᵀ W_s g_h)
            + κ_K Σ_(i,j)∈G_K F_ij(σ_i·σ_j) − Σ_(i,j)∈G_C C_ij g_i g_j (σ_i·σ_j)

    (``g_i`` the hidden activations), with ``F_ij(s) = a_ij s + b_ij log cosh s``.
    """

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.w = 0.6 * rng.standard_normal((P, H))
        self.wh = 0.5 * rng.standard_normal((H, H))
        self.bh = 0.3 * rng.standard_normal(H)
        self.ka = 0.8 * rng.standard_normal(len(HK_EDGES_K))
        self.kb = 0.8 * rng.standard_normal(len(HK_EDGES_K))
        self.cw = 0.7 * rng.standard_normal(len(HK_EDGES_C))

    def network(self):
        S = hk.synapses
        layers = {
            "pixels": hk.ThresholdLayer((P,), L.Identity()),
            "hidden": hk.ThresholdLayer((H,), L.Tanh(), kappa=HK_KAPPA_H),
            "osc": hk.OscillatorLayer((H,), D, tau=HK_TAU_OSC),
        }
        synapses = [
            S.Dense("pixels", "hidden", jnp.asarray(self.w)),
            S.Hopfield("hidden", jnp.asarray(self.wh), jnp.asarray(self.bh), kappa=HK_KAPPA_H),
            S.Kuramoto("osc", S.Pairs(HK_EDGES_K, H), I.Tanh(jnp.asarray(self.ka), jnp.asarray(self.kb)), kappa=HK_KAPPA_K),
            S.Coupling("hidden", "osc", S.Pairs(HK_EDGES_C, H), jnp.asarray(self.cw)),
        ]
        return hk.Network(layers, synapses)

    def energy(self, x, sigma):
        gp, gh = x["pixels"], np.tanh(x["hidden"])
        e = _np_legendre(L.Identity(), 1.0, x["pixels"])[0] + _np_legendre(L.Tanh(), HK_KAPPA_H, x["hidden"])[0]
        e -= gp @ self.w @ gh + HK_KAPPA_H * (self.bh @ gh + 0.5 * gh @ _sym(self.wh) @ gh)
        for k, (i, j) in enumerate(HK_EDGES_K):
            s = sigma[i] @ sigma[j]
            e += HK_KAPPA_K * (self.ka[k] * s + self.kb[k] * np.log(np.cosh(s)))
        for k, (i, j) in enumerate(HK_EDGES_C):
            e -= self.cw[k] * gh[i] * gh[j] * (sigma[i] @ sigma[j])
        return e

    def flow(self, x, sigma):
        gp, gh = x["pixels"], np.tanh(x["hidden"])
        dp = -x["pixels"] + self.w @ gh
        dh = -HK_KAPPA_H * x["hidden"] + self.w.T @ gp + HK_KAPPA_H * (_sym(self.wh) @ gh + self.bh)
        de = np.zeros_like(sigma)  # ∂E/∂σ_i
        for k, (i, j) in enumerate(HK_EDGES_K):
            fp = HK_KAPPA_K * (self.ka[k] + self.kb[k] * np.tanh(sigma[i] @ sigma[j]))
            de[i] += fp * sigma[j]
            de[j] += fp * sigma[i]
        for k, (i, j) in enumerate(HK_EDGES_C):
            s = sigma[i] @ sigma[j]
            dh[i] += self.cw[k] * s * gh[j]
            dh[j] += self.cw[k] * s * gh[i]
            de[i] -= self.cw[k] * gh[i] * gh[j] * sigma[j]
            de[j] -= self.cw[k] * gh[i] * gh[j] * sigma[i]
        ds = np.stack([-(np.eye(D) - np.outer(s, s) / (s @ s)) @ d / HK_TAU_OSC for s, d in zip(sigma, de)])
        return {"pixels": dp, "hidden": dh / HK_KAPPA_H, "osc": ds}


def _bound_state(net, seed):
    kx, kh, ks = jax.random.split(jax.random.key(seed), 3)
    return net.init_state({
        "pixels": jax.random.normal(kx, (P,)), "hidden": jax.random.normal(kh, (H,)), "osc": unit_rows(ks, H, D)})


def test_oscillators_bound_to_a_hidden_layer_flow_and_energy():
    model = BoundModel(seed=0)
    net = model.network()
    assert set(net.threshold_layers) == {"pixels", "hidden"} and set(net.oscillator_layers) == {"osc"}
    assert net.is_lyapunov and not net.rotating
    state = _bound_state(net, 1)
    x = {n: np.asarray(state[n]) for n in ("pixels", "hidden")}
    sigma = np.asarray(state["osc"])
    f = net.vector_field(0.0, state)
    want = model.flow(x, sigma)
    for name in ("pixels", "hidden", "osc"):
        np.testing.assert_allclose(f[name], want[name], rtol=1e-12, atol=1e-13, err_msg=f"d{name}/dt")
    # The pixels feel the oscillators only through the hidden layer: no synapse binds both.
    assert net.synapse_gradient(state)["pixels"].shape == (P,)
    np.testing.assert_allclose(net.energy(state), model.energy(x, sigma), rtol=1e-12)


def test_oscillators_bound_to_a_hidden_layer_relax_on_the_sphere_with_descending_energy():
    net = BoundModel(seed=0).network()
    sol = _layered_trajectory(net, _bound_state(net, 2))
    _assert_energy_descends(sol)
    norms = np.linalg.norm(np.asarray(sol.states["osc"]), axis=-1)
    assert norms.shape == (len(LAYERED_TS), H)
    # no projection (project=False): the norms drift only by about the solver tolerance
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # ... and the oscillators do move
    assert float(jnp.max(jnp.abs(sol.states["osc"][-1] - sol.states["osc"][0]))) > 1e-2


#: A fixed readout of the final state, so that the loss depends on every layer.
_READOUT = np.random.default_rng(9).standard_normal((H, D))


def _bound_loss(net, state0):
    sol = hk.relax(net, state0, t1=2.0, rtol=1e-10, atol=1e-12, max_steps=256)
    return jnp.sum(sol.state["hidden"] ** 2) + jnp.sum(sol.state["osc"] * _READOUT) + jnp.sum(sol.state["pixels"] ** 2)


# One compilation serves the gradient and the finite differences (values of the same
# compiled function at the shifted weights).
_bound_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_bound_loss))


def test_oscillators_bound_to_a_hidden_layer_dense_weight_gradient_matches_finite_differences():
    net = BoundModel(seed=0).network()
    state0 = _bound_state(net, 3)
    grad = _bound_value_and_grad(net, state0)[1].synapses[0].weights
    assert grad.shape == (P, H) and float(jnp.max(jnp.abs(grad))) > 1e-3
    eps = 1e-5
    for k in range(2):
        v = jax.random.normal(jax.random.key(50 + k), (P, H))
        plus = eqx.tree_at(lambda m: m.synapses[0].weights, net, net.synapses[0].weights + eps * v)
        minus = eqx.tree_at(lambda m: m.synapses[0].weights, net, net.synapses[0].weights - eps * v)
        fd = (_bound_value_and_grad(plus, state0)[0] - _bound_value_and_grad(minus, state0)[0]) / (2 * eps)
        exact = jnp.vdot(grad, v)
        assert abs(float(exact)) > 1e-3, "degenerate direction"
        np.testing.assert_allclose(float(exact), float(fd), rtol=1e-6)


def test_oscillators_bound_to_some_units_of_a_layer_relax_with_descending_energy():
    """Fewer oscillators than threshold units: 5 oscillators bound (``units``) to 5 of a
    12-unit Hopfield layer, multiplicatively, with a Kuramoto term among them. The flow of an
    unbound unit is the Hopfield flow alone; along ``relax`` the energy descends and the
    oscillators stay on the sphere and move."""
    n, m = 12, 5
    units = np.array([7, 8, 9, 10, 11])
    k = jax.random.split(jax.random.key(21), 4)
    S = hk.synapses
    hop = S.Hopfield("x", 0.5 * jax.random.normal(k[0], (n, n)), jnp.zeros(n), kappa=0.5)
    pairs = S.Pairs(hk.graphs.ring(m, 2), m)
    net = hk.Network(
        layers={"x": hk.ThresholdLayer((n,), L.Tanh()), "osc": hk.OscillatorLayer((m,), D)},
        synapses=[S.MultiplicativeCoupling("osc", hop, pairs, 2.0, units=units),
                  S.Kuramoto("osc", pairs, I.Linear(), kappa=0.5)])
    assert net.is_lyapunov
    state = net.init_state({"x": jax.random.normal(k[1], (n,)), "osc": unit_rows(k[2], m, D)})
    f = net.vector_field(0.0, state)
    g = np.tanh(np.asarray(state["x"]))
    hop_flow = -np.asarray(state["x"]) + 0.5 * _sym(np.asarray(hop.weights)) @ g  # ẋ = −x + κ_H W_s g
    np.testing.assert_allclose(f["x"][:7], hop_flow[:7], rtol=1e-12, atol=1e-13)
    assert np.max(np.abs(np.asarray(f["x"][7:]) - hop_flow[7:])) > 1e-3  # the bound units feel σ
    sol = _layered_trajectory(net, state)
    _assert_energy_descends(sol)
    norms = np.linalg.norm(np.asarray(sol.states["osc"]), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert float(jnp.max(jnp.abs(sol.states["osc"][-1] - sol.states["osc"][0]))) > 1e-2


def test_kuramoto_between_two_oscillator_layers_is_lyapunov_only_when_they_rotate_together():
    """Two oscillator layers bound by one Kuramoto synapse: with one natural frequency the
    network is Lyapunov and the energy descends along ``relax`` (oscillators on the sphere);
    with different frequencies it is flagged as not Lyapunov."""
    S = hk.synapses
    ka, kb, kw = jax.random.split(jax.random.key(22), 3)
    omega = 0.8 * (jnp.eye(D, k=1) - jnp.eye(D, k=-1))
    inter = I.Linear().per_edge(15, key=kw, scale=1.0)

    def net(omega_b):
        return hk.Network(
            layers={"a": hk.OscillatorLayer((3,), D, omega=omega), "b": hk.OscillatorLayer((3,), D, omega=omega_b)},
            synapses=[S.Kuramoto("a", S.Pairs("all", 6), inter, post="b")])

    assert not net(None).is_lyapunov and not net(2.0 * omega).is_lyapunov
    together = net(omega)
    assert together.is_lyapunov
    state = together.init_state({"a": unit_rows(ka, 3, D), "b": unit_rows(kb, 3, D)})
    sol = _layered_trajectory(together, state)
    _assert_energy_descends(sol)
    for name in ("a", "b"):
        np.testing.assert_allclose(np.linalg.norm(np.asarray(sol.states[name]), axis=-1), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------------------
# init_state and argument errors
# ---------------------------------------------------------------------------------------


def test_init_state_normalises_sigma():
    net = _hk_net("full")
    sigma = 3.0 * jax.random.normal(jax.random.key(0), (N, D))
    state = net.init_state({"x": jnp.ones(N), "sigma": sigma})
    np.testing.assert_allclose(jnp.linalg.norm(state["sigma"], axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(state["sigma"] * jnp.linalg.norm(sigma, axis=-1, keepdims=True), sigma, rtol=1e-13)
    np.testing.assert_array_equal(state["x"], jnp.ones(N))
    drawn = net.init_state(key=jax.random.key(1))
    np.testing.assert_array_equal(drawn["x"], jnp.zeros(N))
    np.testing.assert_allclose(jnp.linalg.norm(drawn["sigma"], axis=-1), 1.0, rtol=1e-14)


def test_init_state_shape_and_structure_errors():
    net = _hk_net("full")
    with pytest.raises(ValueError, match=r"\bx\b"):
        net.init_state({"x": jnp.zeros(N + 1)}, key=jax.random.key(0))
    with pytest.raises(ValueError, match="sigma"):
        net.init_state({"sigma": jnp.ones((N, D + 1))})
    with pytest.raises(ValueError, match="sigma"):
        net.init_state({"sigma": jnp.ones(N * D)})
    with pytest.raises(ValueError, match="key"):
        net.init_state()
    with pytest.raises(TypeError, match=r"\bx\b"):
        net.init_state({"x": jnp.zeros(N, dtype=jnp.int32)}, key=jax.random.key(0))
    with pytest.raises(TypeError, match="dict"):
        net.init_state(jnp.zeros(N))
    hop = hk.hopfield(N, lagrangian=L.ReLU(), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"'sigma' is not a layer.*\['x'\]"):
        hop.init_state({"sigma": jnp.ones((N, D))})
    kur = hk.kuramoto(N, D, edges=EDGES_K, interaction=I.Linear(), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"'x' is not a layer.*\['sigma'\]"):
        kur.init_state({"x": jnp.zeros(N)}, key=jax.random.key(0))


RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_init_state_runtime_errors(jit):
    net = _hk_net("full")
    init = eqx.filter_jit(net.init_state) if jit else net.init_state
    good_sigma = jnp.ones((N, D))
    with pytest.raises(RUNTIME_ERRORS, match="x contains NaN"):
        jax.block_until_ready(init({"x": jnp.full(N, jnp.nan), "sigma": good_sigma}))
    with pytest.raises(RUNTIME_ERRORS, match="x contains NaN"):
        jax.block_until_ready(init({"x": jnp.zeros(N).at[2].set(jnp.inf), "sigma": good_sigma}))
    with pytest.raises(RUNTIME_ERRORS, match="sigma"):
        jax.block_until_ready(init({"x": jnp.zeros(N), "sigma": good_sigma.at[3].set(0.0)}))
    with pytest.raises(RUNTIME_ERRORS, match="sigma"):
        jax.block_until_ready(init({"x": jnp.zeros(N), "sigma": good_sigma.at[1, 1].set(jnp.nan)}))
    jax.block_until_ready(init({"x": jnp.zeros(N), "sigma": good_sigma}))  # and a good one passes


def _preset(**kw):
    args = dict(
        edges_k=EDGES_K, edges_hk=EDGES_HK, coupling="full", lagrangian=L.ReLU(), interaction=I.ReLU(), key=jax.random.key(0)
    )
    args.update(kw)
    n = args.pop("n", N)
    dim = args.pop("dim", D)
    return hk.hopfield_kuramoto(n, dim, **args)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(coupling="hebbian"), "coupling"),
        (dict(edges_k=np.array([[0, N]])), "edges_k"),
        (dict(edges_hk=np.array([[0, 1], [-1, 2]])), "edges_hk"),
        (dict(edges_hk=np.array([[0, 1], [1, 0]])), "edges_hk"),
        (dict(dim=1), "dim"),
        (dict(hopfield_weights=np.zeros((N, N + 1))), "hopfield_weights"),
        (dict(hopfield_bias=np.zeros(N + 1)), "hopfield_bias"),
        (dict(kuramoto_weights=np.zeros((len(EDGES_K) + 1, 2))), "kuramoto_weights"),
        (dict(coupling_weights=np.zeros(len(EDGES_HK) + 1)), "coupling_weights"),
        (dict(coupling="additive", coupling_weights=np.zeros(3)), "coupling_weights"),
        (dict(omega=np.zeros((D + 1, D + 1))), "omega"),
        (dict(stimulus=np.zeros(N)), "stimulus"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_preset_errors_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _preset(**kwargs)


def _three_layers():
    return {
        "pixels": hk.ThresholdLayer((P,), L.Identity()),
        "hidden": hk.ThresholdLayer((H,), L.Tanh()),
        "osc": hk.OscillatorLayer((H,), D),
    }


def test_network_binding_errors_name_the_synapse_and_the_layers():
    S = hk.synapses
    layers = _three_layers()
    pairs = S.Pairs(HK_EDGES_K, H)
    ok = S.Dense("pixels", "hidden", jnp.zeros((P, H)))
    # a layer the network does not have: the synapse and the network's layers are named
    with pytest.raises(ValueError, match=r"synapses\[1\] \(Dense\) binds layer 'hiden'.*\['hidden', 'osc', 'pixels'\]"):
        hk.Network(layers, [ok, S.Dense("hiden", "hidden", jnp.zeros((H, H)))])
    # an oscillator synapse on a threshold layer, and the reverse
    with pytest.raises(TypeError, match=r"synapses\[0\] \(Kuramoto\) binds layer 'hidden' as oscillator.*ThresholdLayer"):
        hk.Network(layers, [S.Kuramoto("hidden", pairs, I.Linear())])
    with pytest.raises(TypeError, match=r"synapses\[0\] \(Stimulus\) binds layer 'pixels'.*ThresholdLayer"):
        hk.Network(layers, [S.Stimulus("pixels", jnp.zeros((P, D)))])
    with pytest.raises(TypeError, match=r"\(Coupling\) binds layer 'osc' as threshold neurons.*OscillatorLayer"):
        hk.Network(layers, [S.Coupling("osc", "hidden", S.Pairs(HK_EDGES_C, H), 0.5)])
    with pytest.raises(TypeError, match=r"\(Dense\) binds layer 'osc' as threshold neurons.*OscillatorLayer"):
        hk.Network(layers, [S.Dense("hidden", "osc", jnp.zeros((H, H)))])
    # dense weights of the wrong shape: the expected and the actual sizes are named
    with pytest.raises(ValueError, match=r"synapses\[0\] \(Dense\) is sized for 5 neurons in layer 'pixels', which has 6"):
        hk.Network(layers, [S.Dense("pixels", "hidden", jnp.zeros((P - 1, H)))])
    with pytest.raises(ValueError, match=r"sized for 5 neurons in layer 'hidden', which has 4 \(shape \(4,\)\)"):
        hk.Network(layers, [S.Dense("pixels", "hidden", jnp.zeros((P, H + 1)))])
    with pytest.raises(ValueError, match=r"sized for 3 neurons in layer 'hidden', which has 4"):
        hk.Network(layers, [S.Dense("hidden", "hidden", jnp.zeros((H - 1, H - 1)))])
    with pytest.raises(ValueError, match=r"\(Bias\) is sized for 5 neurons in layer 'hidden'"):
        hk.Network(layers, [S.Bias("hidden", jnp.zeros(H + 1))])
    with pytest.raises(ValueError, match=r"\(Hopfield\) is sized for 7 neurons in layer 'hidden'"):
        hk.Network(layers, [S.Hopfield("hidden", jnp.zeros((7, 7)), jnp.zeros(7))])
    with pytest.raises(ValueError, match=r"\(Kuramoto\) is sized for 6 neurons in layer 'osc'"):
        hk.Network(layers, [S.Kuramoto("osc", S.Pairs(EDGES_K, N), I.Linear())])
    with pytest.raises(ValueError, match=r"stimulus has shape \(4, 2\).*dimension 3"):
        hk.Network(layers, [S.Stimulus("osc", jnp.zeros((H, 2)))])
    # not layers, not synapses
    with pytest.raises(ValueError, match="layers"):
        hk.Network({}, [])
    with pytest.raises(TypeError, match=r"layers\['hidden'\]"):
        hk.Network({"hidden": L.Tanh()}, [])
    with pytest.raises(TypeError, match=r"synapses\[1\]"):
        hk.Network(layers, [ok, jnp.zeros(3)])
    hk.Network(layers, [ok])  # and a good one builds


def test_energy_and_field_reject_mismatched_states():
    net = _hk_net("full")
    with pytest.raises(TypeError, match="dict"):
        net.energy((jnp.zeros(N), jnp.ones((N, D))))
    with pytest.raises(ValueError, match=r"missing \['sigma'\]"):
        net.vector_field(0.0, {"x": jnp.zeros(N)})
    with pytest.raises(ValueError, match=r"state\['sigma'\] has shape \(7, 3\).*expects \(6, 3\)"):
        net.energy({"x": jnp.zeros(N), "sigma": jnp.ones((N + 1, D))})


def test_layered_network_rejects_mismatched_states():
    net = hk.Network(_three_layers(), [])
    good = net.init_state(key=jax.random.key(0))
    assert {n: v.shape for n, v in good.items()} == {"pixels": (P,), "hidden": (H,), "osc": (H, D)}
    with pytest.raises(TypeError, match="dict"):
        net.energy(list(good.values()))
    with pytest.raises(ValueError, match=r"missing \['hidden'\]"):
        net.energy({n: v for n, v in good.items() if n != "hidden"})
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        net.vector_field(0.0, dict(good, extra=jnp.zeros(2)))
    with pytest.raises(ValueError, match=r"state\['hidden'\] has shape \(5,\).*expects \(4,\)"):
        net.vector_field(0.0, dict(good, hidden=jnp.zeros(H + 1)))
    with pytest.raises(ValueError, match=r"state\['osc'\] has shape \(4, 2\).*expects \(4, 3\)"):
        net.energy(dict(good, osc=jnp.ones((H, 2))))
    with pytest.raises(ValueError, match=r"init_state: 'hiden' is not a layer.*\['hidden', 'osc', 'pixels'\]"):
        net.init_state({"hiden": jnp.zeros(H)}, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"hidden has shape \(5,\); layer 'hidden' has shape \(4,\)"):
        net.init_state({"hidden": jnp.zeros(H + 1)}, key=jax.random.key(0))


def test_energy_rejects_a_batched_state():
    """The single-sample energy refuses a state with a batch axis (vmap it instead)."""
    net = hk.kuramoto(N, D, edges=EDGES_K, interaction=I.Linear(), formulation="edges", init_scale=1.0,
                      key=jax.random.key(0))
    batch = jax.vmap(lambda k: net.init_state(key=k))(jax.random.split(jax.random.key(1), 2))
    with pytest.raises(ValueError, match=r"state\['sigma'\] has shape \(2, 6, 3\)"):
        net.energy(batch)

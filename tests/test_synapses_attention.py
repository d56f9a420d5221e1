"""Tests for :class:`hkjax.synapses.Attention`, the energy attention of the Energy
Transformer, ``E = −(1/β) Σ_h Σ_C log Σ_{B≠C} exp(β K_{hB}·Q_{hC})``:

* the energy equals the formula written out with loops, adds over heads, and has its closed
  form for two tokens;
* the network's derived flow equals ``−(κ x + ∂E/∂g)/τ`` with ``∂E/∂g`` by central finite
  differences of the energy;
* the energy decreases along ``hk.relax`` (LayerNorm and Identity Lagrangians);
* binding a layer of the wrong shape raises an error naming the shapes.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_rel_close

import hkjax as hk
from hkjax import lagrangians as L
from hkjax.synapses import Attention


def _weights(key, heads=2, features=3, head_dim=2, scale=1.0):
    kq, kk = jax.random.split(key)
    return (scale * jax.random.normal(kq, (heads, features, head_dim)),
            scale * jax.random.normal(kk, (heads, features, head_dim)))


def energy_by_loops(g, wq, wk, beta):
    g, wq, wk = np.asarray(g), np.asarray(wq), np.asarray(wk)
    n = g.shape[0]
    e = 0.0
    for h in range(wq.shape[0]):
        for c in range(n):
            q = g[c] @ wq[h]
            total = sum(np.exp(beta * (g[b] @ wk[h]) @ q) for b in range(n) if b != c)
            e -= np.log(total) / beta
    return e


def test_energy_is_the_formula():
    wq, wk = _weights(jax.random.key(0))
    g = jax.random.normal(jax.random.key(1), (4, 3))
    syn = Attention("t", wq, wk, beta=0.7)
    assert float(syn.energy(g)) == pytest.approx(energy_by_loops(g, wq, wk, 0.7), rel=1e-12)
    # heads add
    parts = sum(Attention("t", wq[h:h + 1], wk[h:h + 1], beta=0.7).energy(g) for h in range(2))
    assert_rel_close(syn.energy(g), parts, 1e-12, "sum over heads")
    # two tokens: each query sees only the other key, E = −Σ_h (K_1·Q_0 + K_0·Q_1)
    g2 = g[:2]
    q, k = jnp.einsum("nf,hfd->hnd", g2, wq), jnp.einsum("nf,hfd->hnd", g2, wk)
    closed = -jnp.sum(k[:, 1] * q[:, 0]) - jnp.sum(k[:, 0] * q[:, 1])
    assert_rel_close(syn.energy(g2), closed, 1e-12, "two tokens")


@pytest.mark.parametrize("lagrangian", [L.LayerNorm(), L.Identity()], ids=["LayerNorm", "Identity"])
def test_flow_is_minus_the_finite_difference_gradient(lagrangian):
    wq, wk = _weights(jax.random.key(2))
    syn = Attention("t", wq, wk, beta=0.5)
    kappa, tau = 0.5, 2.0
    layer = hk.ThresholdLayer((4, 3), lagrangian, kappa=kappa, tau=tau)
    net = hk.Network({"t": layer}, [syn])
    x = jax.random.normal(jax.random.key(3), (4, 3))
    g = layer.value(x)
    energy, h = jax.jit(lambda a: syn.energy(a)), 1e-5
    fd = np.zeros(g.shape)
    for idx in np.ndindex(g.shape):
        e = jnp.zeros(g.shape).at[idx].set(h)
        fd[idx] = (energy(g + e) - energy(g - e)) / (2 * h)
    expected = -(kappa * x + fd) / tau
    assert_rel_close(net.vector_field(0.0, {"t": x})["t"], expected, 1e-8, "vector field")


@pytest.mark.parametrize("lagrangian", [L.LayerNorm(), L.Identity()], ids=["LayerNorm", "Identity"])
def test_energy_decreases_along_relax(lagrangian):
    wq, wk = _weights(jax.random.key(4), heads=2, features=4, head_dim=3, scale=0.5)
    net = hk.Network({"t": hk.ThresholdLayer((5, 4), lagrangian)}, [Attention("t", wq, wk, beta=1.0)])
    state0 = net.init_state({"t": jax.random.normal(jax.random.key(5), (5, 4))})
    sol = hk.relax(net, state0, t1=3.0, saveat=jnp.linspace(0.0, 3.0, 31), rtol=1e-8, atol=1e-10)
    e = np.asarray(sol.energy)
    assert np.all(np.diff(e) <= 1e-9 * np.max(np.abs(e))), np.diff(e).max()
    assert e[-1] < e[0] - 0.1


def test_binding_errors_name_the_shapes():
    wq, wk = _weights(jax.random.key(6))  # (2, 3, 2)

    def net(shape, syn=None):
        return hk.Network({"t": hk.ThresholdLayer(shape, L.Tanh())}, [syn or Attention("t", wq, wk, beta=1.0)])

    with pytest.raises(ValueError, match=r"synapses\[0\] \(Attention\).*" + re.escape("(4, 5)") + r".*\(tokens, 3\)"):
        net((4, 5))
    with pytest.raises(ValueError, match=re.escape("(12,)") + r".*\(tokens, 3\)"):
        net((12,))
    with pytest.raises(ValueError, match=re.escape("(1, 3)") + ".*one token"):
        net((1, 3))
    with pytest.raises(TypeError, match="OscillatorLayer.*ThresholdLayer"):
        hk.Network({"t": hk.OscillatorLayer((4, 3), 2)}, [Attention("t", wq, wk, beta=1.0)])
    with pytest.raises(ValueError, match=re.escape("(2, 3, 4)") + ".*" + re.escape("(2, 3, 2)")):
        Attention("t", wq, jnp.ones((2, 3, 4)), beta=1.0)
    with pytest.raises(ValueError, match=re.escape("(3, 2)") + ".*3-d"):
        Attention("t", jnp.ones((3, 2)), jnp.ones((3, 2)), beta=1.0)
    with pytest.raises(ValueError, match="beta=0.0 must be positive"):
        Attention("t", wq, wk, beta=0.0)

"""Tests for the convolutional synapses :class:`hkjax.synapses.Conv` and
:class:`hkjax.synapses.ConvKuramoto`.

* ``Conv`` equals a ``Dense`` synapse holding the convolution's Toeplitz matrix, built here
  position by position, in energy and in the network's vector field (strides 1 and 2,
  ``"SAME"``, ``"VALID"`` and explicit padding, even and odd kernels, within one layer);
* ``ConvKuramoto`` equals a graph ``Kuramoto`` synapse with a ``Linear`` interaction on the
  edge list the kernel couples, built here offset by offset, up to the constant of the
  centre taps' self-coupling; its closed-form gradient equals ``jax.grad``; the energy
  decreases along ``hk.relax`` and the oscillators stay on the sphere;
* the gradient of a loss through ``hk.relax`` with respect to a ``Conv`` kernel equals
  central finite differences;
* binding layers of the wrong shapes raises errors naming the shapes.
"""

from __future__ import annotations

import re

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_rel_close

import hkjax as hk
from hkjax import interactions as I
from hkjax import lagrangians as L
from hkjax.synapses import Bias, Conv, ConvKuramoto, Dense, Kuramoto, Pairs, Stimulus


def _pads(n: int, k: int, s: int, padding) -> tuple[int, int]:
    """Padding (before, after) of one spatial axis: "SAME" gives ⌈n/s⌉ outputs, the extra
    row (if the total is odd) after."""
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    return padding


def toeplitz(kernel, in_shape, strides, padding):
    """The ``(H·W·C_in, H_out·W_out·C_out)`` matrix ``T`` with ``T[(y', x', i), (y, x, o)] =
    K[o, i, p, q]`` where ``(y', x') = (s_h y + p − t, s_w x + q − l)``, and the output shape."""
    k = np.asarray(kernel)
    c_out, c_in, kh, kw = k.shape
    h, w, _ = in_shape
    explicit = padding if not isinstance(padding, str) else (padding, padding)
    (t, b), (left, r) = (_pads(h, kh, strides[0], explicit[0]), _pads(w, kw, strides[1], explicit[1]))
    ho, wo = (h + t + b - kh) // strides[0] + 1, (w + left + r - kw) // strides[1] + 1
    m = np.zeros((h * w * c_in, ho * wo * c_out))
    for y in range(ho):
        for x in range(wo):
            for o in range(c_out):
                col = np.ravel_multi_index((y, x, o), (ho, wo, c_out))
                for i in range(c_in):
                    for p in range(kh):
                        for q in range(kw):
                            yy, xx = strides[0] * y + p - t, strides[1] * x + q - left
                            if 0 <= yy < h and 0 <= xx < w:
                                m[np.ravel_multi_index((yy, xx, i), (h, w, c_in)), col] += k[o, i, p, q]
    return m, (ho, wo, c_out)


CONV_CASES = [
    pytest.param((5, 5, 2), (3, 2, 3, 3), (1, 1), "SAME", id="3x3-same"),
    pytest.param((5, 5, 2), (3, 2, 3, 3), (2, 2), "SAME", id="3x3-stride2-same"),
    pytest.param((5, 5, 2), (3, 2, 3, 3), (1, 1), "VALID", id="3x3-valid"),
    pytest.param((5, 6, 3), (2, 3, 2, 3), (2, 2), "VALID", id="2x3-stride2-valid"),
    pytest.param((4, 5, 2), (2, 2, 2, 2), (1, 1), "SAME", id="2x2-same"),
    pytest.param((5, 4, 2), (2, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), id="3x2-explicit"),
]


@pytest.mark.parametrize("in_shape, kshape, strides, padding", CONV_CASES)
def test_conv_equals_dense_toeplitz(in_shape, kshape, strides, padding):
    kk, kx, kb = jax.random.split(jax.random.key(0), 3)
    kernel = jax.random.normal(kk, kshape)
    t, out_shape = toeplitz(kernel, in_shape, strides, padding)
    conv = Conv("a", "b", kernel, strides=strides, padding=padding)
    assert conv.output_shape(in_shape) == out_shape
    bias = Bias("b", 0.1 * jax.random.normal(kb, out_shape))
    layers = {"a": hk.ThresholdLayer(in_shape, L.Tanh()), "b": hk.ThresholdLayer(out_shape, L.Sigmoid(), kappa=0.5)}
    net_conv = hk.Network(layers, [conv, bias])
    net_dense = hk.Network(layers, [Dense("a", "b", jnp.asarray(t)), bias])
    xa, xb = jax.random.normal(kx, in_shape), jax.random.normal(jax.random.fold_in(kx, 1), out_shape)
    state = net_conv.init_state({"a": xa, "b": xb})
    assert_rel_close(net_conv.energy(state), net_dense.energy(state), 1e-12, "energy")
    assert_rel_close(net_conv.vector_field(0.0, state), net_dense.vector_field(0.0, state), 1e-12, "vector field")
    ga, gb = net_conv.values(state)["a"], net_conv.values(state)["b"]
    assert_rel_close(conv.forward(ga), (ga.reshape(-1) @ t).reshape(out_shape), 1e-12, "forward")
    assert_rel_close(conv.energy(ga, gb), -ga.reshape(-1) @ t @ gb.reshape(-1), 1e-12, "energy formula")


def test_conv_within_one_layer_equals_dense_toeplitz():
    shape, kernel = (4, 5, 2), jax.random.normal(jax.random.key(1), (2, 2, 3, 3))
    t, _ = toeplitz(kernel, shape, (1, 1), "SAME")
    layers = {"a": hk.ThresholdLayer(shape, L.Tanh())}
    net_conv = hk.Network(layers, [Conv("a", "a", kernel)])
    net_dense = hk.Network(layers, [Dense("a", "a", jnp.asarray(t))])
    state = {"a": jax.random.normal(jax.random.key(2), shape)}
    assert Conv("a", "a", kernel).layers == ("a",)
    assert_rel_close(net_conv.energy(state), net_dense.energy(state), 1e-12, "energy")
    assert_rel_close(net_conv.vector_field(0.0, state), net_dense.vector_field(0.0, state), 1e-12, "vector field")


def test_conv_binding_errors_name_the_shapes():
    kernel = jnp.ones((3, 2, 3, 3))

    def net(a, b, syn, kind=hk.ThresholdLayer):
        layers = {"a": hk.ThresholdLayer(a, L.Tanh())}
        if b is not None:
            layers["b"] = hk.ThresholdLayer(b, L.Tanh()) if kind is hk.ThresholdLayer else hk.OscillatorLayer(b, 2)
        return hk.Network(layers, [syn])

    with pytest.raises(ValueError, match=re.escape("(5, 5, 3)") + ".*" + re.escape("(3, 3, 3)")):
        net((5, 5, 2), (5, 5, 3), Conv("a", "b", kernel, strides=(2, 2)))
    with pytest.raises(ValueError, match=r"synapses\[0\] \(Conv\).*'b'.*" + re.escape("(4, 4, 3)") + ".*" + re.escape("(3, 3, 3)")):
        net((5, 5, 2), (4, 4, 3), Conv("a", "b", kernel, padding="VALID"))
    with pytest.raises(ValueError, match=re.escape("(5, 5, 4)") + ".*" + re.escape("(3, 2, 3, 3)") + ".*C_in = 2"):
        net((5, 5, 4), (5, 5, 3), Conv("a", "b", kernel))
    with pytest.raises(ValueError, match=re.escape("(50,)") + r".*\(H, W, C\)"):
        net((50,), (5, 5, 3), Conv("a", "b", kernel))
    with pytest.raises(ValueError, match="larger than layer 'a'"):
        net((2, 2, 2), (1, 1, 3), Conv("a", "b", kernel, padding="VALID"))
    with pytest.raises(ValueError, match=r"keep the shape \(5, 5, 2\).*\(3, 3, 2\)"):
        net((5, 5, 2), None, Conv("a", "a", jnp.ones((2, 2, 3, 3)), strides=(2, 2)))
    with pytest.raises(TypeError, match="OscillatorLayer.*ThresholdLayer"):
        net((5, 5, 2), (5, 5, 3), Conv("a", "b", kernel), kind=hk.OscillatorLayer)
    with pytest.raises(ValueError, match=r"kernel has shape \(3, 3, 3\)"):
        Conv("a", "b", jnp.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="strides"):
        Conv("a", "b", kernel, strides=(0, 1))
    with pytest.raises(ValueError, match="padding"):
        Conv("a", "b", kernel, padding="FULL")
    with pytest.raises(TypeError, match="dtype"):
        Conv("a", "b", jnp.ones((3, 2, 3, 3), jnp.int32))


# ---------------------------------------------------------------------------------------
# ConvKuramoto
# ---------------------------------------------------------------------------------------


def conv_graph(kernel, shape, padding):
    """The kernel's coupling as a graph: per ordered tap ``(a ← b)`` the energy gains
    ``−½ J[o, i, p, q] σ_a·σ_b``; returns the sorted edges ``a < b``, their summed
    coefficients ``w_ab`` and the self-coupling constant ``Σ_a w_aa`` (``|σ_a| = 1``)."""
    k = np.asarray(kernel)
    h, w, c = shape
    kh, kw = k.shape[2:]
    coef: dict[tuple[int, int], float] = {}
    for y in range(h):
        for x in range(w):
            for o in range(c):
                a = np.ravel_multi_index((y, x, o), shape)
                for i in range(c):
                    for p in range(kh):
                        for q in range(kw):
                            yy, xx = y + p - kh // 2, x + q - kw // 2
                            if padding == "CIRCULAR":
                                yy, xx = yy % h, xx % w
                            elif not (0 <= yy < h and 0 <= xx < w):
                                continue
                            b = np.ravel_multi_index((yy, xx, i), shape)
                            key = (min(a, b), max(a, b))
                            coef[key] = coef.get(key, 0.0) - 0.5 * k[o, i, p, q]
    edges = sorted(e for e in coef if e[0] < e[1])
    const = sum(v for e, v in coef.items() if e[0] == e[1])
    return np.array(edges, np.int32), np.array([coef[e] for e in edges]), const


def _unit(key, shape):
    s = jax.random.normal(key, shape)
    return s / jnp.linalg.norm(s, axis=-1, keepdims=True)


KURAMOTO_CASES = [
    pytest.param((4, 5, 2), 3, (3, 3), "SAME", id="3x3-same"),
    pytest.param((4, 5, 2), 3, (3, 3), "CIRCULAR", id="3x3-circular"),
    pytest.param((3, 2, 2), 2, (1, 5), "CIRCULAR", id="1x5-circular-wraps-onto-itself"),
]


@pytest.mark.parametrize("shape, dim, ksize, padding", KURAMOTO_CASES)
def test_conv_kuramoto_equals_graph_kuramoto(shape, dim, ksize, padding):
    c = shape[2]
    kernel = jax.random.normal(jax.random.key(3), (c, c) + ksize)
    edges, weights, const = conv_graph(kernel, shape, padding)
    n = int(np.prod(shape))
    syn = ConvKuramoto("s", kernel, padding=padding)
    graph = Kuramoto("s", Pairs(edges, n, formulation="edges"), I.Linear(w=jnp.asarray(weights)))
    layer = hk.OscillatorLayer(shape, dim)
    net_conv, net_graph = hk.Network({"s": layer}, [syn]), hk.Network({"s": layer}, [graph])
    state = {"s": _unit(jax.random.key(4), shape + (dim,))}
    assert_rel_close(net_conv.energy(state), net_graph.energy(state) + const, 1e-12, "energy")
    assert_rel_close(net_conv.vector_field(0.0, state), net_graph.vector_field(0.0, state), 1e-12, "vector field")
    if padding == "SAME":  # the constant: the centre taps' self-coupling
        centre = np.asarray(kernel)[:, :, ksize[0] // 2, ksize[1] // 2]
        assert const == pytest.approx(-0.5 * shape[0] * shape[1] * np.trace(centre), rel=1e-12)
    # the closed-form gradient is jax.grad of the energy, also off the sphere
    sigma = jax.random.normal(jax.random.key(5), shape + (dim,))
    assert_rel_close(syn.gradient(sigma), jax.grad(syn.energy)(sigma), 1e-12, "gradient")


def test_conv_kuramoto_sees_only_the_symmetric_kernel():
    kernel = jax.random.normal(jax.random.key(6), (2, 2, 3, 5))
    mirror = jnp.flip(jnp.swapaxes(kernel, 0, 1), axis=(2, 3))  # J(c_in, c_out, −dy, −dx)
    a, b, s = ConvKuramoto("s", kernel), ConvKuramoto("s", mirror), ConvKuramoto("s", 0.5 * (kernel + mirror))
    sigma = _unit(jax.random.key(7), (4, 5, 2, 3))
    assert_rel_close(a.symmetric_kernel(), s.kernel, 1e-15, "J_s")
    assert_rel_close(s.symmetric_kernel(), s.kernel, 1e-15, "J_s of a symmetric kernel")
    for other in (b, s):
        assert_rel_close(other.energy(sigma), a.energy(sigma), 1e-12, "energy")
        assert_rel_close(other.gradient(sigma), a.gradient(sigma), 1e-12, "gradient")


def test_conv_kuramoto_energy_decreases_along_relax():
    shape, dim = (4, 4, 2), 3
    kernel = 0.5 * jax.random.normal(jax.random.key(8), (2, 2, 3, 3))
    stimulus = 0.3 * jax.random.normal(jax.random.key(9), shape + (dim,))
    net = hk.Network({"s": hk.OscillatorLayer(shape, dim)}, [ConvKuramoto("s", kernel), Stimulus("s", stimulus)])
    assert net.is_lyapunov
    state0 = net.init_state(key=jax.random.key(10))
    sol = hk.relax(net, state0, t1=4.0, saveat=jnp.linspace(0.0, 4.0, 41), rtol=1e-8, atol=1e-10, project=True)
    e = np.asarray(sol.energy)
    assert np.all(np.diff(e) <= 1e-9 * np.max(np.abs(e))), np.diff(e).max()
    assert e[-1] < e[0] - 0.1
    norms = jnp.linalg.norm(sol.states["s"], axis=-1)
    assert float(jnp.max(jnp.abs(norms - 1.0))) < 1e-12


def test_conv_kuramoto_binding_errors_name_the_shapes():
    kernel = jnp.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"synapses\[0\] \(ConvKuramoto\).*" + re.escape("(4, 4, 3)") + ".*" + re.escape("(4, 4, 2)")):
        hk.Network({"s": hk.OscillatorLayer((4, 4, 3), 2)}, [ConvKuramoto("s", kernel)])
    with pytest.raises(ValueError, match=re.escape("(16,)") + r".*\(H, W, C\)"):
        hk.Network({"s": hk.OscillatorLayer((16,), 2)}, [ConvKuramoto("s", kernel)])
    with pytest.raises(TypeError, match="ThresholdLayer.*OscillatorLayer"):
        hk.Network({"s": hk.ThresholdLayer((4, 4, 2), L.Tanh())}, [ConvKuramoto("s", kernel)])
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 3\).*odd"):
        ConvKuramoto("s", jnp.ones((2, 2, 2, 3)))
    with pytest.raises(ValueError, match=r"\(3, 2, 3, 3\).*same number of channels"):
        ConvKuramoto("s", jnp.ones((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="padding"):
        ConvKuramoto("s", kernel, padding="VALID")


# ---------------------------------------------------------------------------------------
# Differentiating through relax
# ---------------------------------------------------------------------------------------


def test_gradient_through_relax_wrt_the_kernel_matches_finite_differences():
    kk, kx, kb, kv = jax.random.split(jax.random.key(11), 4)
    kernel = 0.5 * jax.random.normal(kk, (3, 2, 3, 3))
    layers = {"a": hk.ThresholdLayer((4, 4, 2), L.Tanh()), "b": hk.ThresholdLayer((4, 4, 3), L.Tanh())}
    net = hk.Network(layers, [Conv("a", "b", kernel), Bias("a", jax.random.normal(kb, (4, 4, 2)))])
    state0 = net.init_state({"a": jax.random.normal(kx, (4, 4, 2))})

    def loss(k):
        m = eqx.tree_at(lambda n: n.synapses[0].kernel, net, k)
        sol = hk.relax(m, state0, t1=1.0, dt0=0.05, stepsize_controller=diffrax.ConstantStepSize())
        return jnp.sum(sol.state["b"] ** 2) + jnp.sum(jnp.sin(sol.state["a"]))

    grad = jax.jit(jax.grad(loss))(kernel)
    f, h = jax.jit(loss), 1e-5
    for j in range(2):
        v = jax.random.normal(jax.random.fold_in(kv, j), kernel.shape)
        fd = (f(kernel + h * v) - f(kernel - h * v)) / (2 * h)
        assert_rel_close(jnp.vdot(grad, v), fd, 1e-7, f"direction {j}")

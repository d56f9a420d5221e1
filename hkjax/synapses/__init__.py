"""Synapses: energies over the activations ``g`` of threshold units and the oscillators ``σ``.

A synapse is an energy function plus its parameters. The flow is derived from the energy in
:mod:`hkjax.network`; a synapse may override :meth:`AbstractSynapse.gradient` with a
closed-form (faster) gradient, and the test suite checks every override against
``jax.grad`` of :meth:`AbstractSynapse.energy`.

Synapses on a graph (:class:`Kuramoto`, :class:`Coupling`, :class:`MultiplicativeCoupling`)
hold it as :class:`Pairs`, whose layout (:mod:`hkjax.synapses.layouts`) evaluates the sums
over its edges; the synapse itself only says which sum it needs.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..interactions import AbstractInteraction
from . import layouts as _layouts
from .layouts import *  # noqa: F403 - the graph layouts are part of this package's API (layouts.__all__)
from .layouts import Pairs  # the graph the synapses below hold

__all__ = [
    "AbstractSynapse",
    "Dense",
    "Bias",
    "Hopfield",
    "Kuramoto",
    "Stimulus",
    "Coupling",
    "MultiplicativeCoupling",
    "LowRank",
    "Conv",
    "ConvKuramoto",
    "Attention",
    *_layouts.__all__,
]


class AbstractSynapse(eqx.Module):
    """An energy term over named layers of a :class:`~hkjax.Network`.

    A synapse names the layers it binds (:attr:`layers`); the network passes it their
    values in that order: the activations ``g = ∇L(x)`` of threshold layers and the unit
    vectors ``σ`` of oscillator layers, each of its layer's shape. A new synapse implements
    :attr:`layers` and :meth:`energy`; the flow follows from the energy. It may override
    :meth:`gradient` with a closed form (the tests check every override against
    ``jax.grad``), :meth:`prepare` to lay out its parameters once per solve, and
    :meth:`check` to validate the layers it is given.
    """

    #: Whether ``E`` is unchanged by a global rotation ``σᵢ → Rσᵢ`` of every oscillator.
    rotation_invariant: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def layers(self) -> tuple[str, ...]:
        """The names of the layers this synapse binds, in the order :meth:`energy` takes
        their values."""

    @abc.abstractmethod
    def energy(self, *values: Array) -> Float[Array, ""]:
        """The energy this synapse contributes (its formula is in the class docstring).

        Arguments:
            values: the values of :attr:`layers`, in order: activations ``g`` of threshold
                layers, unit vectors ``σ`` of oscillator layers (single sample).

        Returns:
            The scalar energy.
        """

    def gradient(self, *values: Array) -> tuple[Array, ...]:
        """``∂E/∂value`` for each bound layer; autodiff of :meth:`energy` unless a subclass
        gives a closed form (tested against autodiff).

        Arguments:
            values: as for :meth:`energy`.

        Returns:
            One array per bound layer, of its value's shape (for oscillators the full
            Euclidean gradient; the network projects it onto the sphere).
        """
        return jax.grad(self.energy, argnums=tuple(range(len(values))))(*values)

    def batch_gradient(self, *values: Array) -> tuple[Array, ...]:
        """:meth:`gradient` of a batch: every value with a leading batch axis, as
        :func:`hkjax.relax_batch` evaluates it (default: ``jax.vmap`` of :meth:`gradient`;
        a synapse whose batch has a faster form overrides it, tested against the default).

        Arguments:
            values: as for :meth:`energy`, each with a leading batch axis.

        Returns:
            One array per bound layer, with the leading batch axis.
        """
        return jax.vmap(self.gradient)(*values)

    def prepare(self) -> tuple["AbstractSynapse", ...]:
        """Synapses with the same total energy, laid out for repeated evaluation.

        :func:`hkjax.relax` calls this once per solve (differentiably), so that work that
        depends only on the parameters (scattering per-edge weights into dense matrices,
        symmetrising weights) is not repeated at every vector-field evaluation.
        """
        return (self,)

    def requirements(self) -> tuple[tuple[str | None, int | None], ...]:
        """For each bound layer, the kind it must be (``"threshold"``, ``"oscillator"`` or
        ``None`` for either) and the number of neurons it must hold (``None``: any). The
        default :meth:`check` tests these."""
        return tuple((None, None) for _ in self.layers)

    def check(self, layers: tuple, where: str) -> None:
        """Raise if this synapse cannot bind ``layers`` (the layer objects of
        :attr:`layers`, in order).

        Arguments:
            layers: the bound layers.
            where: how to name this synapse in an error (e.g. ``"synapses[2] (Kuramoto)"``).

        Raises:
            TypeError: a layer of the wrong kind (an oscillator synapse on a threshold layer).
            ValueError: a layer of the wrong size.
        """
        for name, layer, (kind, size) in zip(self.layers, layers, self.requirements()):
            if kind is not None and layer.kind != kind:
                want = "an OscillatorLayer" if kind == "oscillator" else "a ThresholdLayer"
                raise TypeError(
                    f"{where} binds layer {name!r} as {kind} neurons, but {name!r} is "
                    f"{'an' if type(layer).__name__[0] in 'AEIOU' else 'a'} {type(layer).__name__}; bind {want}")
            if size is not None and layer.size != size:
                raise ValueError(
                    f"{where} is sized for {size} neurons in layer {name!r}, which has {layer.size} "
                    f"(shape {layer.shape}); build the synapse for the layer's size")


def _layer_name(name, what: str = "layer") -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what}={name!r}: name the layer this synapse binds (a non-empty string)")
    return name


def _float_array(value, shape: tuple, name: str) -> Array:
    a = jnp.asarray(value)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise TypeError(f"{name} has dtype {a.dtype}; pass a floating-point array")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}; expected {shape}")
    # NumPy, not jnp: under a jit trace even a concrete array's jnp result is a tracer.
    if not isinstance(a, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(a))):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return a


def _flat(sigma):
    """Oscillators of any layer shape as ``(m, dim)`` rows."""
    return sigma if sigma.ndim == 2 else sigma.reshape(-1, sigma.shape[-1])


class Hopfield(AbstractSynapse):
    """Dense Hopfield synapse within one threshold layer,
    ``E = −κ (b·g + ½ gᵀ W_s g)``, ``W_s = (W + Wᵀ)/2`` (the paper's Hopfield block).

    Arguments:
        layer: the threshold layer (``n`` units of any shape; ``g`` is flattened).
        weights: ``(n, n)`` weights ``W`` (symmetrised whenever used).
        bias: ``(n,)`` bias ``b``.
        kappa: energy scale ``κ`` (the paper's ``κ_H``).
        symmetric: whether ``weights`` is already symmetric, so that ``W_s = W`` is used as
            is (set by :meth:`prepare`; leave ``False`` for arbitrary weights).

    Raises:
        ValueError: non-square ``weights``, a ``bias`` of the wrong length, or NaN/inf.
        TypeError: non-floating-point arrays.
    """

    layer: str = eqx.field(static=True)
    weights: Float[Array, "n n"]
    bias: Float[Array, " n"]
    kappa: float = 1.0
    #: Set by :meth:`prepare`: ``weights`` already holds ``W_s``.
    symmetric: bool = eqx.field(static=True, default=False)

    def __init__(self, layer: str, weights, bias, *, kappa: float = 1.0, symmetric: bool = False):
        self.layer = _layer_name(layer)
        w = jnp.asarray(weights)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights has shape {w.shape}; pass a square (n, n) matrix")
        self.weights = _float_array(w, w.shape, "weights")
        self.bias = _float_array(bias, (w.shape[0],), "bias")
        self.kappa = kappa
        self.symmetric = symmetric

    @property
    def layers(self):
        return (self.layer,)

    def symmetric_weights(self):
        """``W_s = (W + Wᵀ)/2``, the ``(n, n)`` weights the energy uses (``W`` itself when
        ``symmetric``)."""
        if self.symmetric:
            return self.weights
        return 0.5 * (self.weights + self.weights.T)

    def prepare(self):
        """This synapse with ``W_s`` computed once (``symmetric=True``)."""
        ws = self.symmetric_weights()
        return (Hopfield(self.layer, ws, self.bias, kappa=self.kappa, symmetric=True),)

    def energy(self, g):
        """``−κ (b·g + ½ gᵀ W_s g)`` for the activations ``g`` of the layer."""
        g = g.reshape(-1)
        return -self.kappa * (jnp.dot(self.bias, g) + 0.5 * jnp.dot(g, self.symmetric_weights() @ g))

    def gradient(self, g):
        """``(−κ (b + W_s g),)`` in the shape of ``g``."""
        return ((-self.kappa * (self.bias + self.symmetric_weights() @ g.reshape(-1))).reshape(g.shape),)

    def requirements(self):
        return (("threshold", self.weights.shape[0]),)


class Dense(AbstractSynapse):
    """A dense synapse between two threshold layers, ``E = −g_preᵀ W g_post``; within one
    layer (``pre == post``) ``E = −½ gᵀ W_s g`` with ``W_s = (W + Wᵀ)/2``. Activations are
    flattened: ``W`` is ``(size of pre, size of post)``.

    Arguments:
        pre, post: the threshold layers (the same name for a synapse within one layer).
        weights: ``W``.

    Raises:
        ValueError: ``weights`` not 2-d, not square within one layer, or non-finite.
    """

    pre: str = eqx.field(static=True)
    post: str = eqx.field(static=True)
    weights: Float[Array, "n m"]

    def __init__(self, pre: str, post: str, weights):
        self.pre, self.post = _layer_name(pre, "pre"), _layer_name(post, "post")
        w = jnp.asarray(weights)
        if w.ndim != 2 or (pre == post and w.shape[0] != w.shape[1]):
            raise ValueError(
                f"Dense({pre!r}, {post!r}): weights has shape {w.shape}; pass a 2-d (size of {pre!r}, "
                f"size of {post!r}) matrix" + (" (square within one layer)" if pre == post else ""))
        self.weights = _float_array(w, w.shape, "weights")

    @property
    def layers(self):
        return (self.pre,) if self.pre == self.post else (self.pre, self.post)

    def energy(self, *g):
        """The energy of the activations ``g`` of the bound layers (one array, or ``g_pre, g_post``)."""
        if len(g) == 1:
            a = g[0].reshape(-1)
            return -0.5 * jnp.dot(a, self.weights @ a)
        return -jnp.dot(g[0].reshape(-1), self.weights @ g[1].reshape(-1))

    def gradient(self, *g):
        """``∂E/∂g`` for each bound layer, in closed form (``g`` as for :meth:`energy`)."""
        w = self.weights
        if len(g) == 1:
            a = g[0].reshape(-1)
            return ((-0.5 * (w @ a + w.T @ a)).reshape(g[0].shape),)
        a, b = g[0].reshape(-1), g[1].reshape(-1)
        return (-(w @ b)).reshape(g[0].shape), (-(w.T @ a)).reshape(g[1].shape)

    def requirements(self):
        if self.pre == self.post:
            return (("threshold", self.weights.shape[0]),)
        return (("threshold", self.weights.shape[0]), ("threshold", self.weights.shape[1]))


class Bias(AbstractSynapse):
    """A bias on a threshold layer, ``E = −b·g``.

    Arguments:
        layer: the threshold layer.
        bias: ``b``, of the layer's shape (or its flattened size).
    """

    layer: str = eqx.field(static=True)
    bias: Float[Array, "..."]

    def __init__(self, layer: str, bias):
        self.layer = _layer_name(layer)
        b = jnp.asarray(bias)
        self.bias = _float_array(b, b.shape, "bias")

    @property
    def layers(self):
        return (self.layer,)

    def energy(self, g):
        """``−b·g`` for the activations ``g`` of the layer."""
        return -jnp.dot(self.bias.reshape(-1), g.reshape(-1))

    def gradient(self, g):
        """``(−b,)`` in the shape of ``g``."""
        return (-self.bias.reshape(g.shape).astype(g.dtype),)

    def requirements(self):
        return (("threshold", int(self.bias.size)),)

    def check(self, layers, where):
        super().check(layers, where)
        if self.bias.shape not in (layers[0].shape, (layers[0].size,)):
            raise ValueError(
                f"{where}: bias has shape {self.bias.shape}; layer {self.layer!r} has shape "
                f"{layers[0].shape}, pass that shape or ({layers[0].size},)")


class LowRank(AbstractSynapse):
    """Static low-rank synapse: within one threshold layer ``E = −½ κ gᵀ U Uᵀ g`` (the
    paper's LoRA baseline); between two, ``E = −κ g_preᵀ U Vᵀ g_post`` (a :class:`Dense`
    synapse of weights ``κ U Vᵀ``). Activations are flattened.

    Arguments:
        layer: the threshold layer (``pre``, ``n`` units).
        factors: ``(n, r)`` factor ``U``.
        kappa: energy scale.
        post: the second threshold layer (``m`` units) of a synapse between two layers.
        post_factors: its ``(m, r)`` factor ``V`` (with ``post``).

    Raises:
        ValueError: factors not 2-d, of different ranks, or non-finite; ``post`` without
            ``post_factors`` or the other way round.
    """

    layer: str = eqx.field(static=True)
    factors: Float[Array, "n r"]
    kappa: float = 1.0
    post: str | None = eqx.field(static=True, default=None)
    post_factors: Float[Array, "m r"] | None = None

    def __init__(self, layer: str, factors, *, kappa: float = 1.0, post: str | None = None, post_factors=None):
        self.layer = _layer_name(layer)
        if (post is None) != (post_factors is None):
            raise ValueError("LowRank: pass post and post_factors together (a synapse between two layers), or neither")
        self.factors = self._factor(factors, "factors")
        self.post = None if post is None else _layer_name(post, "post")
        self.post_factors = None if post is None else self._factor(post_factors, "post_factors")
        if self.post_factors is not None and self.post_factors.shape[1] != self.factors.shape[1]:
            raise ValueError(
                f"LowRank: factors has rank {self.factors.shape[1]} but post_factors {self.post_factors.shape[1]}; "
                "pass factors of one rank r")
        self.kappa = kappa

    @staticmethod
    def _factor(value, name):
        u = jnp.asarray(value)
        if u.ndim != 2:
            raise ValueError(f"{name} has shape {u.shape}; pass an (n, r) matrix")
        return _float_array(u, u.shape, name)

    @property
    def layers(self):
        return (self.layer,) if self.post is None else (self.layer, self.post)

    def energy(self, *g):
        """``−½ κ |Uᵀ g|²`` for the activations ``g`` of the layer; ``−κ (Uᵀ g_pre)·(Vᵀ
        g_post)`` between two."""
        h = self.factors.T @ g[0].reshape(-1)
        if self.post is None:
            return -0.5 * self.kappa * jnp.dot(h, h)
        return -self.kappa * jnp.dot(h, self.post_factors.T @ g[1].reshape(-1))

    def gradient(self, *g):
        """``(−κ U Uᵀ g,)``; between two layers ``(−κ U Vᵀ g_post, −κ V Uᵀ g_pre)``; in the
        shapes of ``g``."""
        u, h = self.factors, self.factors.T @ g[0].reshape(-1)
        if self.post is None:
            return ((-self.kappa * (u @ h)).reshape(g[0].shape),)
        v = self.post_factors
        return ((-self.kappa * (u @ (v.T @ g[1].reshape(-1)))).reshape(g[0].shape),
                (-self.kappa * (v @ h)).reshape(g[1].shape))

    def requirements(self):
        req = (("threshold", self.factors.shape[0]),)
        return req if self.post is None else req + (("threshold", self.post_factors.shape[0]),)


class Kuramoto(AbstractSynapse):
    """Generalised Kuramoto synapse on a graph over one oscillator layer, or two:
    ``E = κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ)``. The nodes are the layer's oscillators, flattened; with
    ``post``, the oscillators of ``layer`` followed by those of ``post`` (edges between the
    two layers bind them; edges within either are allowed too).

    Arguments:
        layer: the oscillator layer.
        pairs: the graph (:class:`Pairs`) on its ``m`` oscillators (``m + m_post`` with
            ``post``).
        interaction: the pair potential ``F`` (scalar or per-edge parameters).
        kappa: energy scale (the paper's ``κ_K``).
        post: a second oscillator layer, of the same dimension ``dim``.
    """

    layer: str = eqx.field(static=True)
    pairs: Pairs
    interaction: AbstractInteraction
    kappa: float = 1.0
    post: str | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        _layer_name(self.layer)
        if self.post is not None:
            _layer_name(self.post, "post")
        e = self.interaction.num_edges()
        if e is not None and e != self.pairs.num_edges:
            raise ValueError(
                f"interaction has parameters for {e} edges but the graph has {self.pairs.num_edges}"
            )

    @property
    def layers(self):
        return (self.layer,) if self.post is None else (self.layer, self.post)

    def energy(self, *sigma):
        """``κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ)`` for the oscillators ``sigma`` of the bound layers."""
        p = self.pairs
        return self.kappa * p.layout.kuramoto_energy(p, self.interaction, _rows(sigma))

    def gradient(self, *sigma):
        """``κ Σⱼ F'_ij σⱼ`` for every oscillator of ``sigma``, in the graph's layout, one
        array per bound layer."""
        p = self.pairs
        force = self.kappa * p.layout.kuramoto_force(p, self.interaction, _rows(sigma))
        return _unrows(force, sigma)

    def batch_gradient(self, *sigma):
        """:meth:`gradient` of a batch of oscillators ``sigma`` (a leading batch axis on
        each bound layer's), the force evaluated by the layout for the whole batch at once
        (:meth:`~hkjax.synapses.AbstractLayout.kuramoto_force_batch`)."""
        p = self.pairs
        rows = jax.vmap(lambda *s: _rows(s))(*sigma)
        force = self.kappa * p.layout.kuramoto_force_batch(p, self.interaction, rows)
        return jax.vmap(lambda f, *s: _unrows(f, s))(force, *sigma)

    def requirements(self):
        if self.post is None:
            return (("oscillator", self.pairs.n),)
        return (("oscillator", None), ("oscillator", None))

    def check(self, layers, where):
        super().check(layers, where)
        if self.post is None:
            return
        if sum(layer.size for layer in layers) != self.pairs.n:
            raise ValueError(
                f"{where}: the graph has {self.pairs.n} nodes but layers {self.layer!r} and {self.post!r} hold "
                f"{layers[0].size} + {layers[1].size} oscillators; build the graph on both")
        if layers[0].dim != layers[1].dim:
            raise ValueError(f"{where}: layers {self.layer!r} and {self.post!r} hold oscillators of dimensions "
                             f"{layers[0].dim} and {layers[1].dim}; bind layers of one dimension")

    def prepare(self):
        """Synapses with the same energy whose per-edge parameters are laid out for the
        graph's layout once (:meth:`~hkjax.synapses.AbstractLayout.kuramoto_parts`:
        ``(n, n)`` matrices, neighbour tables, or the kept tiles plus an edge list for the
        rest)."""
        p = self.pairs
        return tuple(Kuramoto(self.layer, q, inter, self.kappa, self.post)
                     for q, inter in p.layout.kuramoto_parts(p, self.interaction))


def _rows(sigmas):
    """The oscillators of one or more layers as ``(m, dim)`` rows, concatenated in order."""
    return _flat(sigmas[0]) if len(sigmas) == 1 else jnp.concatenate([_flat(s) for s in sigmas])


def _unrows(rows, sigmas):
    """``rows`` (as from :func:`_rows`) split back into arrays of the shapes of ``sigmas``."""
    out, start = [], 0
    for s in sigmas:
        size = s.size // s.shape[-1]
        out.append(rows[start:start + size].reshape(s.shape))
        start += size
    return tuple(out)


class Stimulus(AbstractSynapse):
    """Conditional stimulus on an oscillator layer (AKOrN): ``E = −Σᵢ cᵢ·σᵢ``.

    Breaks rotation invariance: with a natural frequency ``Ω`` the energy is then no longer
    a Lyapunov function.

    Arguments:
        layer: the oscillator layer.
        stimulus: ``c``, of the layer's state shape (``shape + (dim,)``); ``(m, dim)`` rows
            are accepted for a layer of ``m`` oscillators of any shape.
    """

    layer: str = eqx.field(static=True)
    stimulus: Float[Array, "*shape dim"]
    rotation_invariant: ClassVar[bool] = False

    def __init__(self, layer: str, stimulus):
        self.layer = _layer_name(layer)
        c = jnp.asarray(stimulus)
        if c.ndim < 2:
            raise ValueError(f"stimulus has shape {c.shape}; pass an array of the layer's state shape (..., dim)")
        self.stimulus = _float_array(c, c.shape, "stimulus")

    @property
    def layers(self):
        return (self.layer,)

    def energy(self, sigma):
        """``−Σᵢ cᵢ·σᵢ`` for the oscillators ``sigma`` of the layer."""
        return -jnp.sum(self.stimulus.reshape(sigma.shape) * sigma)

    def gradient(self, sigma):
        """``(−c,)`` in the shape of ``sigma``."""
        return (-self.stimulus.reshape(sigma.shape).astype(sigma.dtype),)

    def requirements(self):
        return (("oscillator", int(np.prod(self.stimulus.shape[:-1]))),)

    def check(self, layers, where):
        super().check(layers, where)
        if self.stimulus.shape[-1] != layers[0].dim:
            raise ValueError(
                f"{where}: stimulus has shape {self.stimulus.shape}; layer {self.layer!r} holds "
                f"oscillators in dimension {layers[0].dim}, pass shape {layers[0].state_shape}")


def _units(units, m: int):
    """Validated ``units``: distinct non-negative threshold-unit indices, one per oscillator
    (``None``: oscillator ``i`` binds threshold unit ``i``)."""
    if units is None or isinstance(units, jax.core.Tracer):  # a traced copy was validated when built
        return units
    u = np.asarray(units)
    if u.shape != (m,) or not np.issubdtype(u.dtype, np.integer):
        raise ValueError(f"units has shape {u.shape} and dtype {u.dtype}; pass ({m},) integer indices, "
                         "one threshold unit per oscillator")
    if m and (u.min() < 0 or np.unique(u).size != m):
        raise ValueError("units must be distinct non-negative indices of threshold units")
    return jnp.asarray(u, jnp.int32)


class _AbstractCoupling(AbstractSynapse):
    """``E = −Σ_(i,j)∈G C_ij gᵢ gⱼ (σᵢ·σⱼ)`` between a threshold layer and an oscillator
    layer: node ``i`` of the graph is oscillator ``i`` and threshold unit ``units[i]``
    (unit ``i`` without ``units``), both flattened; subclasses say what ``C`` is."""

    pairs: eqx.AbstractVar[Pairs]
    threshold: eqx.AbstractVar[str]
    oscillators: eqx.AbstractVar[str]
    units: eqx.AbstractVar[Int[Array, " m"] | None]

    @property
    def layers(self):
        return (self.threshold, self.oscillators)

    @abc.abstractmethod
    def coefficients(self):
        """``C``: a scalar (one value on every edge), per-edge ``(E,)``, or laid out by the
        graph's layout (:meth:`~hkjax.synapses.AbstractLayout.lay_out`)."""

    def _bound(self, g):
        """The activations of the threshold units bound to the oscillators, ``(m,)``."""
        g = g.reshape(-1)
        return g if self.units is None else g[self.units]

    def energy(self, g, sigma):
        """``−Σ_(i,j)∈G C_ij gᵢ gⱼ (σᵢ·σⱼ)`` for activations ``g`` and oscillators ``sigma``."""
        p = self.pairs
        return p.layout.coupling_energy(p, self.coefficients(), self._bound(g), _flat(sigma))

    def gradient(self, g, sigma):
        """``(∂E/∂g, ∂E/∂σ)`` in closed form, in the shapes of ``g`` and ``sigma``."""
        p = self.pairs
        dg, ds = p.layout.coupling_gradient(p, self.coefficients(), self._bound(g), _flat(sigma))
        if self.units is not None:  # zero on the threshold units bound to no oscillator
            dg = jnp.zeros(g.size, dg.dtype).at[self.units].set(dg)
        return dg.reshape(g.shape), ds.reshape(sigma.shape)

    def requirements(self):
        return (("threshold", self.pairs.n if self.units is None else None), ("oscillator", self.pairs.n))

    def check(self, layers, where):
        super().check(layers, where)
        if self.units is None or isinstance(self.units, jax.core.Tracer) or not self.units.size:
            return
        top = int(np.max(np.asarray(self.units)))
        if top >= layers[0].size:
            raise ValueError(
                f"{where}: units index threshold unit {top} but layer {self.threshold!r} has "
                f"{layers[0].size}; pass indices below {layers[0].size}")


class Coupling(_AbstractCoupling):
    """Hopfield–Kuramoto coupling ``E = −Σ_(i,j)∈G C_ij gᵢ gⱼ (σᵢ·σⱼ)`` with free ``C``,
    between a threshold layer and an oscillator layer of as many units.

    ``weights`` of shape ``(E,)`` is the paper's **full** coupling (one weight per edge); a
    scalar is the **additive** coupling (``C_ij = c``). Seen from the threshold units it
    replaces ``W_s`` by ``W_s + κ_H⁻¹ C ⊙ Gram(σ)`` on the edges of ``G``: for a complete
    graph and scalar ``c`` that is ``c κ_H⁻¹ (σσᵀ − I)``, a rank-``D`` update minus a
    constant diagonal (arXiv 2505.03648, Sec. 3).

    Arguments:
        threshold: the threshold layer.
        oscillators: the oscillator layer (the graph's nodes).
        pairs: the coupling graph ``G_HK`` (:class:`Pairs`) on the oscillators.
        weights: scalar or ``(E,)``.
        units: the threshold unit each oscillator binds, ``(m,)`` distinct indices into the
            flattened threshold layer (fewer oscillators than threshold units: e.g. only
            the hidden units); default: oscillator ``i`` binds unit ``i`` (layers of equal
            size).
    """

    threshold: str = eqx.field(static=True)
    oscillators: str = eqx.field(static=True)
    pairs: Pairs
    weights: Float[Array, "*e"]
    units: Int[Array, " m"] | None

    def __init__(self, threshold: str, oscillators: str, pairs: Pairs, weights, *, units=None):
        self.threshold = _layer_name(threshold, "threshold")
        self.oscillators = _layer_name(oscillators, "oscillators")
        w = jnp.asarray(weights)
        shape = () if w.ndim == 0 else (pairs.num_edges,)
        self.pairs, self.weights = pairs, _float_array(w, shape, "coupling_weights")
        self.units = _units(units, pairs.n)

    def coefficients(self):
        """``C``: per-edge weights laid out by the graph's layout; a scalar as it is (each
        layout applies one value on every edge without laying it out)."""
        w, p = self.weights, self.pairs
        return p.layout.lay_out(p, w) if w.ndim == 1 else w

    def prepare(self):
        """This synapse with per-edge ``C`` laid out for the graph's layout once (an ``(n,
        n)`` matrix or a neighbour table; unchanged when the layout uses them as they are)."""
        c = self.coefficients()
        if c is self.weights:
            return (self,)
        return (eqx.tree_at(lambda m: m.weights, self, c),)


class MultiplicativeCoupling(_AbstractCoupling):
    """The Hopfield synapse with oscillator-modulated weights (the paper's
    **multiplicative** coupling, ``C_ij = α W_s,ij``):

    ``E = −κ (b·g + ½ gᵀ W_s g) − α Σ_(i,j)∈G W_s,ij gᵢ gⱼ (σᵢ·σⱼ)``.

    It holds the :class:`Hopfield` synapse itself, so the Hopfield weights are one array,
    shared (tied) by both terms and trained as one; the threshold layer is the Hopfield
    synapse's.

    Arguments:
        oscillators: the oscillator layer (the graph's nodes).
        hopfield: the Hopfield synapse whose weights the coupling reuses.
        pairs: the coupling graph on the oscillators.
        strength: ``α`` (scalar).
        units: the threshold unit each oscillator binds (as for :class:`Coupling`; then
            ``C_ij = α W_s[units_i, units_j]``); default: oscillator ``i`` binds unit ``i``.
    """

    oscillators: str = eqx.field(static=True)
    hopfield: Hopfield
    pairs: Pairs
    strength: Float[Array, ""]
    units: Int[Array, " m"] | None

    def __init__(self, oscillators: str, hopfield: Hopfield, pairs: Pairs, strength=1.0, *, units=None):
        self.oscillators = _layer_name(oscillators, "oscillators")
        if not isinstance(hopfield, Hopfield):
            raise TypeError(f"hopfield must be an hk.synapses.Hopfield synapse, got {type(hopfield).__name__}")
        if units is None and hopfield.weights.shape[0] != pairs.n:
            raise ValueError(
                f"the coupling graph has {pairs.n} nodes but the Hopfield weights are "
                f"{hopfield.weights.shape}; pass units to bind the oscillators to some of the units"
            )
        self.hopfield, self.pairs = hopfield, pairs
        self.strength = _float_array(strength, (), "coupling_weights")
        self.units = _units(units, pairs.n)

    @property
    def threshold(self) -> str:
        """The threshold layer: the Hopfield synapse's."""
        return self.hopfield.layer

    def coefficients(self):
        """``C = α W_s`` on the edges, laid out by the graph's layout."""
        p, ws = self.pairs, self.hopfield.symmetric_weights()
        if self.units is not None:
            ws = ws[self.units[:, None], self.units[None, :]]
        return self.strength * p.layout.coefficients_of(p, ws)

    def requirements(self):
        return (("threshold", self.hopfield.weights.shape[0]), ("oscillator", self.pairs.n))

    def energy(self, g, sigma):
        """The Hopfield energy of ``g`` plus the coupling of ``g`` and ``sigma`` with ``C = α W_s``."""
        return self.hopfield.energy(g) + super().energy(g, sigma)

    def gradient(self, g, sigma):
        """``(∂E/∂g, ∂E/∂σ)`` in closed form, in the shapes of ``g`` and ``sigma``."""
        dg, ds = super().gradient(g, sigma)
        return dg + self.hopfield.gradient(g)[0], ds

    def prepare(self):
        """Two synapses with the same energy: the prepared Hopfield synapse and a
        :class:`Coupling` holding ``C = α W_s`` (the tie is undone for the solve only;
        gradients still reach the one weight array)."""
        c = self.coefficients()
        coupling = Coupling(self.threshold, self.oscillators, self.pairs, jnp.zeros(()), units=self.units)
        coupling = eqx.tree_at(lambda m: m.weights, coupling, c)
        return self.hopfield.prepare() + (coupling,)


from .conv import Conv, ConvKuramoto  # noqa: E402
from .attention import Attention  # noqa: E402

"""Networks: named layers bound by synapses into one energy, and its Lyapunov flow.

``E(state) = Σ_layers E_layer + Σ_synapses E_s(values of the layers it binds)``, where a
threshold layer's value is its activation ``g = ∇L(x)`` and an oscillator layer's its unit
vectors ``σ``. The flow is derived from ``E``, once, for every layer:

* threshold layers: ``τ ẋ = −∂E/∂g`` (the Legendre term contributes ``κ x``),
* oscillator layers: ``τ σ̇ = −P_σ ∂E/∂σ + τ Ω σ``,

with ``∂E/∂g`` and ``∂E/∂σ`` summed over the synapses (``jax.grad`` of their energies, or a
closed form a synapse provides and the tests check against ``jax.grad``). States are dicts
``{layer name: array}``.

The presets :func:`hopfield`, :func:`kuramoto` and :func:`hopfield_kuramoto` build the
three models of Fanaskov & Oseledets (arXiv 2505.03648) with the paper's parametrisation,
on a threshold layer named ``"x"`` and an oscillator layer named ``"sigma"``;
:func:`hierarchical_hopfield` stacks threshold layers bound by dense synapses.
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import interactions as _interactions
from .lagrangians import AbstractLagrangian
from .layers import AbstractLayer, OscillatorLayer, ThresholdLayer
from .synapses import (
    Bias,
    Dense,
    AbstractSynapse,
    Coupling,
    Hopfield,
    Kuramoto,
    MultiplicativeCoupling,
    Pairs,
    Stimulus,
)

__all__ = ["Network", "hopfield", "kuramoto", "hopfield_kuramoto", "hierarchical_hopfield", "COUPLINGS", "THRESHOLD", "OSCILLATORS"]

COUPLINGS = ("full", "additive", "multiplicative")
#: The presets' layer names: threshold units ``x`` and oscillators ``σ``.
THRESHOLD, OSCILLATORS = "x", "sigma"


@eqx.filter_jit  # compiled: a Hessian traced op by op is slow (seconds at n = 64)
def _effective_weights(network, state, layer):
    values = network.values(state)

    def e_syn(g):
        v = dict(values, **{layer: g})
        return sum(s.energy(*(v[n] for n in s.layers)) for s in network.synapses if layer in s.layers)

    g = values[layer].reshape(-1)
    shape = values[layer].shape
    return -jax.hessian(lambda flat: e_syn(flat.reshape(shape)))(g) / network.layers[layer].kappa


class Network(eqx.Module):
    """Named layers bound by synapses into one energy.

    Arguments:
        layers: a mapping ``{name: layer}`` of :class:`~hkjax.ThresholdLayer` and
            :class:`~hkjax.OscillatorLayer`.
        synapses: a sequence of :class:`~hkjax.synapses.AbstractSynapse`, each naming the
            layers it binds.

    Raises:
        TypeError: a layer or synapse that is not one, an oscillator synapse on a threshold
            layer (or the reverse).
        ValueError: no layers, a synapse naming a layer the network lacks, or one sized for
            a layer of another size.
    """

    layers: dict[str, AbstractLayer]
    synapses: tuple[AbstractSynapse, ...]

    def __init__(self, layers: Mapping[str, AbstractLayer], synapses=()):
        if not isinstance(layers, Mapping) or not layers:
            raise ValueError(
                "Network needs layers={name: layer, ...}, e.g. "
                "{'x': hk.ThresholdLayer((16,), hk.lagrangians.Tanh())}")
        for name, layer in layers.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"layer names must be non-empty strings, got {name!r}")
            if not isinstance(layer, AbstractLayer):
                raise TypeError(
                    f"layers[{name!r}] is a {type(layer).__name__}; pass an hk.ThresholdLayer or hk.OscillatorLayer")
        self.layers = dict(sorted(layers.items()))  # the order pytrees flatten a dict in
        self.synapses = tuple(synapses)
        for k, s in enumerate(self.synapses):
            if not isinstance(s, AbstractSynapse):
                raise TypeError(f"synapses[{k}] is a {type(s).__name__}, not an hkjax synapse")
            where = f"synapses[{k}] ({type(s).__name__})"
            missing = [n for n in s.layers if n not in self.layers]
            if missing:
                raise ValueError(
                    f"{where} binds layer {missing[0]!r}, which the network does not have; "
                    f"its layers are {sorted(self.layers)}")
            s.check(tuple(self.layers[n] for n in s.layers), where)

    # -- properties --------------------------------------------------------------------
    def _of_kind(self, kind: str) -> dict[str, AbstractLayer]:
        return {n: layer for n, layer in self.layers.items() if layer.kind == kind}

    @property
    def threshold_layers(self) -> dict[str, ThresholdLayer]:
        """The threshold layers, by name."""
        return self._of_kind("threshold")

    @property
    def oscillator_layers(self) -> dict[str, OscillatorLayer]:
        """The oscillator layers, by name."""
        return self._of_kind("oscillator")

    @property
    def rotating(self) -> bool:
        """Whether some oscillator layer has a natural frequency ``Ω``."""
        return any(layer.omega is not None for layer in self.oscillator_layers.values())

    @property
    def is_lyapunov(self) -> bool:
        """Whether the energy provably never increases along the flow: no natural frequency,
        or one global ``Ω`` per layer with a rotation-invariant energy (no stimulus) whose
        synapses bind only oscillator layers of one ``Ω``."""
        if not self.rotating:
            return True
        if not all(layer.is_lyapunov for layer in self.layers.values()):
            return False
        return all(s.rotation_invariant and self._rotate_together(s) for s in self.synapses)

    def _rotate_together(self, synapse) -> bool:
        """Whether the oscillator layers ``synapse`` binds share one natural frequency (a
        rotation-invariant energy between layers rotating differently changes along the flow)."""
        omegas = [self.layers[n].omega for n in synapse.layers if self.layers[n].kind == "oscillator"]

        def same(a, b):
            if a is None or b is None:
                return a is b
            return np.array_equal(np.asarray(a), np.asarray(b))

        return all(same(omegas[0], o) for o in omegas[1:])

    def prepare(self) -> "Network":
        """An equivalent network laid out for repeated evaluation (see
        :meth:`hkjax.synapses.AbstractSynapse.prepare`); :func:`hkjax.relax` solves with it."""
        synapses = tuple(p for s in self.synapses for p in s.prepare())
        return eqx.tree_at(lambda net: net.synapses, self, synapses)

    # -- energy and flow ---------------------------------------------------------------
    def values(self, state: dict) -> dict[str, Array]:
        """What synapses see of every layer at ``state``: activations ``g`` of threshold
        layers, ``σ`` of oscillator layers (a dict by layer name)."""
        return {n: layer.value(state[n]) for n, layer in self.layers.items()}

    def energy(self, state: dict) -> Float[Array, ""]:
        """The scalar energy ``Σ_layers E_layer + Σ_synapses E_s``.

        Arguments:
            state: ``{layer name: array}`` for every layer (single sample; ``vmap`` for
                batches), e.g. from :meth:`init_state`.

        Returns:
            The scalar energy (the layers' own terms plus every synapse's energy).

        Raises:
            TypeError: ``state`` is not a dict.
            ValueError: ``state`` lacks a layer, has one the network lacks, or a wrong shape.
        """
        self._check_structure(state)
        v = self.values(state)
        e = sum(layer.energy(state[n], v[n]) for n, layer in self.layers.items())
        for s in self.synapses:
            e = e + s.energy(*(v[n] for n in s.layers))
        return jnp.asarray(e)

    def synapse_gradient(self, state: dict) -> dict[str, Array | None]:
        """``∂E_syn/∂value`` for every layer at ``state`` (``None`` where no synapse binds it)."""
        return self._synapse_gradient(self.values(state))

    def _synapse_gradient(self, v: dict, batched: bool = False) -> dict[str, Array | None]:
        grads: dict[str, Array | None] = {n: None for n in self.layers}
        for s in self.synapses:
            gradient = s.batch_gradient if batched else s.gradient
            for n, d in zip(s.layers, gradient(*(v[n] for n in s.layers))):
                if d is not None:
                    grads[n] = d if grads[n] is None else grads[n] + d
        return grads

    def vector_field(self, t, state: dict, args=None) -> dict:
        """The Lyapunov flow of :meth:`energy`: a dict of time derivatives by layer name.

        ``ẋ = −(κ x + ∂E_syn/∂g)/τ`` for threshold layers, ``σ̇ = −P_σ ∂E_syn/∂σ / τ + Ω σ``
        for oscillator layers. Signature ``(t, y, args)`` as Diffrax expects.

        Arguments:
            t: time (unused: the flow is autonomous).
            state: the state ``y`` (a dict by layer name) at which to evaluate the flow.
            args: unused (Diffrax's ``args``).

        Returns:
            A dict of time derivatives, with the structure of ``state``.

        Raises:
            ValueError: a ``state`` that does not fit the network (see :meth:`energy`).
        """
        self._check_structure(state)
        v = self.values(state)
        grads = self._synapse_gradient(v)
        return {n: layer.flow(state[n], v[n], grads[n]) for n, layer in self.layers.items()}

    def _batch_vector_field(self, t, states: dict) -> dict:
        """:meth:`vector_field` of a batch of states (a leading batch axis on every layer),
        every synapse evaluated on the whole batch at once
        (:meth:`~hkjax.synapses.AbstractSynapse.batch_gradient`): what
        :func:`hkjax.relax_batch` integrates. The caller checks the states' structure."""
        v = {n: jax.vmap(layer.value)(states[n]) for n, layer in self.layers.items()}
        grads = self._synapse_gradient(v, batched=True)
        return {n: jax.vmap(layer.flow)(states[n], v[n], grads[n]) for n, layer in self.layers.items()}

    def project(self, state: dict) -> dict:
        """``state`` with every oscillator mapped back onto its sphere (any leading axes)."""
        return {n: self.layers[n].project(v) if n in self.layers else v for n, v in state.items()}

    def effective_weights(self, state: dict, layer: str | None = None) -> Float[Array, "n n"]:
        """The weights threshold layer ``layer`` feels at ``state``: ``−∂²E_syn/∂g²`` divided
        by its energy scale ``κ`` (``W_s + κ_H⁻¹ C ⊙ Gram(σ)`` for the Hopfield–Kuramoto model).

        Arguments:
            state: the state at which the oscillators' ``Gram(σ)`` is taken.
            layer: the threshold layer (default: the only one).

        Returns:
            The ``(n, n)`` effective weight matrix over the layer's flattened units (by
            autodiff: a Hessian, so ``O(n²)``).

        Raises:
            ValueError: the network has no threshold layer, several and ``layer`` is not
                given, or ``layer`` is not a threshold layer.
        """
        th = self.threshold_layers
        if layer is None:
            if len(th) != 1:
                raise ValueError(
                    f"effective_weights: the network has threshold layers {sorted(th)}; pass layer=<one of them>")
            layer = next(iter(th))
        if layer not in th:
            raise ValueError(f"effective_weights: {layer!r} is not a threshold layer; choose one of {sorted(th)}")
        return _effective_weights(self, state, layer)

    # -- states ------------------------------------------------------------------------
    def init_state(self, values: Mapping[str, Array] | None = None, *, key: PRNGKeyArray | None = None) -> dict:
        """A validated initial state, ``{layer name: array}``.

        Arguments:
            values: initial states of some or all layers (a mapping by layer name). Threshold
                layers not given start at zero; oscillators are normalised onto the sphere
                here, and those not given are drawn uniformly with ``key``.
            key: needed only when an oscillator layer is not given (one key for one such
                layer, else ``jax.random.split(key, count)`` over them in sorted order of
                their names).

        Raises:
            ValueError: a name that is not a layer, wrong shapes, a zero oscillator,
                non-finite values, or a missing oscillator layer without ``key``.
            TypeError: ``values`` is not a mapping, or has non-floating-point arrays.
        """
        values = {} if values is None else values
        if not isinstance(values, Mapping):
            raise TypeError(
                f"init_state takes a dict {{layer name: array}}, got {type(values).__name__}; "
                f"this network's layers are {sorted(self.layers)}")
        unknown = [n for n in values if n not in self.layers]
        if unknown:
            raise ValueError(f"init_state: {unknown[0]!r} is not a layer of this network; its layers are {sorted(self.layers)}")
        drawn = [n for n, layer in self.layers.items() if layer.kind == "oscillator" and n not in values]
        keys = {}
        if drawn and key is not None:
            keys = {drawn[0]: key} if len(drawn) == 1 else dict(zip(drawn, jax.random.split(key, len(drawn))))
        return {n: layer.init(values.get(n), keys.get(n), n) for n, layer in self.layers.items()}

    def _check_structure(self, state):
        if not isinstance(state, Mapping):
            raise TypeError(
                f"state must be a dict {{layer name: array}} (see Network.init_state), got {type(state).__name__}")
        if set(state) != set(self.layers):
            missing = sorted(set(self.layers) - set(state))
            extra = sorted(set(state) - set(self.layers))
            raise ValueError(
                f"state does not match the network's layers {sorted(self.layers)}"
                + (f": missing {missing}" if missing else "") + (f", unknown {extra}" if extra else "")
                + "; build it with network.init_state")
        for n, layer in self.layers.items():
            layer._check(state[n], n)


# ---------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------


def _param(value, shape, name, key, scale):
    if value is None:
        return scale * jax.random.normal(key, shape)
    a = jnp.asarray(value)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}; expected {shape}")
    return a


def _interaction(interaction, num_edges, weights, key, scale, name):
    if not isinstance(interaction, _interactions.AbstractInteraction):
        raise TypeError(
            f"interaction must be an hkjax.interactions potential (e.g. hk.interactions.ReLU()), "
            f"got {type(interaction).__name__}"
        )
    if weights is not None:
        return interaction.from_array(weights, num_edges, name=name)
    if interaction.num_edges() is not None:
        return interaction
    return interaction.per_edge(num_edges, key=key, scale=scale)


def hopfield(
    n: int,
    *,
    lagrangian: AbstractLagrangian,
    weights=None,
    bias=None,
    kappa: float = 1.0,
    init_scale: float | None = None,
    key: PRNGKeyArray,
) -> Network:
    """A dense Hopfield network ``E = κ [ x·g − L(x) − b·g − ½ gᵀ W_s g ]``.

    Arguments:
        n: number of units.
        lagrangian: convex Lagrangian of the units.
        weights, bias: explicit ``(n, n)`` / ``(n,)`` parameters (e.g. trained elsewhere);
            drawn from ``N(0, init_scale²)`` when omitted (``init_scale`` defaults to
            ``1/√n``; the bias starts at zero).
        kappa: the energy scale and time constant ``κ_H``.
        key: PRNG key for the initialisation (keyword only).
    """
    scale = 1.0 / np.sqrt(n) if init_scale is None else init_scale
    w = _param(weights, (n, n), "weights", key, scale)
    b = jnp.zeros(n) if bias is None else _param(bias, (n,), "bias", key, scale)
    th = ThresholdLayer((n,), lagrangian, kappa=kappa)
    return Network({THRESHOLD: th}, [Hopfield(THRESHOLD, w, b, kappa=kappa)])


def kuramoto(
    n: int,
    dim: int,
    *,
    edges,
    interaction: _interactions.AbstractInteraction,
    weights=None,
    omega=None,
    stimulus=None,
    kappa: float = 1.0,
    init_scale: float = 1e-2,
    formulation: str = "auto",
    key: PRNGKeyArray,
) -> Network:
    """A generalised Kuramoto network on ``(S^{dim−1})^n``:
    ``E = κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ) − Σᵢ cᵢ·σᵢ``, flow ``κ σ̇ = −P_σ ∂E/∂σ + κ Ω σ``.

    Arguments:
        n, dim: number of oscillators and their ambient dimension (``dim ≥ 2``).
        edges: ``(E, 2)`` integer array of the graph (see :mod:`hkjax.graphs`) or ``"all"``.
        interaction: pair potential template; per-edge parameters are drawn from
            ``N(0, init_scale²)`` unless it already has them or ``weights`` is given.
        weights: explicit per-edge parameters, ``(E,)`` or ``(E, P)`` (columns in the order
            of ``interaction.param_names``).
        omega: natural frequency (see :class:`~hkjax.OscillatorLayer`).
        stimulus: ``(n, dim)`` conditional stimulus ``c`` (optional).
        kappa: energy scale and time constant ``κ_K``.
        formulation: how edge sums are evaluated (see :mod:`hkjax.synapses`).
        key: PRNG key (keyword only).
    """
    osc = OscillatorLayer((n,), dim, tau=kappa, omega=omega)
    pairs = Pairs(edges, n, formulation=formulation, name="edges")
    inter = _interaction(interaction, pairs.num_edges, weights, key, init_scale, "weights")
    syn: list[AbstractSynapse] = [Kuramoto(OSCILLATORS, pairs, inter, kappa=kappa)]
    if stimulus is not None:
        syn.append(Stimulus(OSCILLATORS, stimulus))
    return Network({OSCILLATORS: osc}, syn)


def hopfield_kuramoto(
    n: int,
    dim: int,
    *,
    edges_k,
    edges_hk,
    coupling: str = "full",
    lagrangian: AbstractLagrangian,
    interaction: _interactions.AbstractInteraction,
    kappa_h: float = 0.1,
    kappa_k: float = 1.0,
    hopfield_weights=None,
    hopfield_bias=None,
    kuramoto_weights=None,
    coupling_weights=None,
    omega=None,
    stimulus=None,
    init_scale: float = 1e-2,
    formulation: str = "auto",
    key: PRNGKeyArray,
) -> Network:
    """The Hopfield–Kuramoto model of arXiv 2505.03648 (one oscillator per threshold unit):

    ``E = κ_H [x·g − L(x) − b·g − ½ gᵀ W_s g] + κ_K Σ_(i,j)∈G_K F_ij(σᵢ·σⱼ)
    − Σ_(i,j)∈G_HK C_ij gᵢ gⱼ (σᵢ·σⱼ)``,
    flow ``ẋ = W_s g + b − x + κ_H⁻¹ Σⱼ C_ij (σᵢ·σⱼ) gⱼ``,
    ``σ̇ = −κ_K⁻¹ P_σ ∂E/∂σ + Ω σ``.

    Arguments:
        n, dim: units (threshold and oscillators alike) and oscillator dimension.
        edges_k: Kuramoto graph ``G_K`` (``(E, 2)`` array or ``"all"``), or ``None`` for no
            Kuramoto term.
        edges_hk: coupling graph ``G_HK``.
        coupling: ``"full"`` (a free weight per edge), ``"additive"`` (one scalar ``c``) or
            ``"multiplicative"`` (``C_ij = α W_s,ij``, weights tied to the Hopfield synapse).
        lagrangian, interaction: see :func:`hopfield`, :func:`kuramoto`.
        kappa_h, kappa_k: energy scales / time constants (paper: 0.1 and 1).
        hopfield_weights, hopfield_bias, kuramoto_weights: explicit parameters (optional).
        coupling_weights: ``(E_HK,)`` for full, a scalar for additive / multiplicative.
        omega, stimulus: see :func:`kuramoto`.
        init_scale: std of random initial parameters (paper: 1e-2; larger couplings can
            make the ReLU energy unbounded below and trajectories blow up).
        formulation: how edge sums are evaluated (see :mod:`hkjax.synapses`).
        key: PRNG key (keyword only).

    Raises:
        ValueError: unknown ``coupling``, shapes that do not match ``n`` / the graphs.
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling={coupling!r} is unknown; choose one of {COUPLINGS}")
    kw, kb, kk, kc = jax.random.split(key, 4)
    w = _param(hopfield_weights, (n, n), "hopfield_weights", kw, init_scale)
    b = jnp.zeros(n) if hopfield_bias is None else _param(hopfield_bias, (n,), "hopfield_bias", kb, init_scale)
    hop = Hopfield(THRESHOLD, w, b, kappa=kappa_h)
    th = ThresholdLayer((n,), lagrangian, kappa=kappa_h)
    osc = OscillatorLayer((n,), dim, tau=kappa_k, omega=omega)
    syn: list[AbstractSynapse] = []
    if edges_k is not None:
        pk = Pairs(edges_k, n, formulation=formulation, name="edges_k")
        inter = _interaction(interaction, pk.num_edges, kuramoto_weights, kk, init_scale, "kuramoto_weights")
        syn.append(Kuramoto(OSCILLATORS, pk, inter, kappa=kappa_k))
    phk = Pairs(edges_hk, n, formulation=formulation, name="edges_hk")
    if coupling == "multiplicative":
        alpha = jnp.ones(()) if coupling_weights is None else coupling_weights
        syn.append(MultiplicativeCoupling(OSCILLATORS, hop, phk, alpha))
    else:
        shape = (phk.num_edges,) if coupling == "full" else ()
        cw = _param(coupling_weights, shape, "coupling_weights", kc, init_scale)
        syn = [hop] + syn + [Coupling(THRESHOLD, OSCILLATORS, phk, cw)]
    if stimulus is not None:
        syn.append(Stimulus(OSCILLATORS, stimulus))
    return Network({THRESHOLD: th, OSCILLATORS: osc}, syn)


def hierarchical_hopfield(
    sizes,
    lagrangians,
    *,
    names=None,
    init_scale: float | None = None,
    key: PRNGKeyArray,
) -> Network:
    """A stack of threshold layers, each bound to the next by a :class:`~hkjax.synapses.Dense`
    synapse, with a :class:`~hkjax.synapses.Bias` on every layer after the first:

    ``E = Σ_l (x_l·g_l − L_l(x_l)) − Σ_l g_lᵀ W_l g_{l+1} − Σ_{l≥1} b_l·g_l``.

    Each layer has its own Lagrangian (a :class:`~hkjax.lagrangians.Softmax` class layer
    normalises over the classes only), e.g. the paper's stack ``[784, 100, 100, 100, 10]``.

    Arguments:
        sizes: units per layer (at least two), or layer shapes.
        lagrangians: one Lagrangian for every layer, or one for all.
        names: layer names (default ``"input"``, ``"hidden_1"``, ..., ``"output"``).
        init_scale: std of the initial weights (default ``1/√fan_in`` per synapse); biases
            start at zero.
        key: PRNG key (keyword only).

    Raises:
        ValueError: fewer than two layers, or ``lagrangians`` / ``names`` of another length.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r}: a hierarchy needs at least two layers, e.g. [64, 100, 10]")
    if isinstance(lagrangians, AbstractLagrangian):
        lagrangians = [lagrangians] * len(sizes)
    lagrangians = list(lagrangians)
    if len(lagrangians) != len(sizes):
        raise ValueError(f"lagrangians has {len(lagrangians)} entries for {len(sizes)} layers; pass one per layer or one for all")
    if names is None:
        names = ["input"] + [f"hidden_{k}" for k in range(1, len(sizes) - 1)] + ["output"]
    names = list(names)
    if len(names) != len(sizes) or len(set(names)) != len(names):
        raise ValueError(f"names={names!r}: pass {len(sizes)} distinct layer names")
    layers = {name: ThresholdLayer(size, lag) for name, size, lag in zip(names, sizes, lagrangians)}
    synapses: list[AbstractSynapse] = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, (a, b) in enumerate(zip(names[:-1], names[1:])):
        n_in, n_out = layers[a].size, layers[b].size
        scale = 1.0 / np.sqrt(n_in) if init_scale is None else init_scale
        synapses.append(Dense(a, b, scale * jax.random.normal(keys[k], (n_in, n_out))))
    synapses += [Bias(name, jnp.zeros(layers[name].shape)) for name in names[1:]]
    return Network(layers, synapses)

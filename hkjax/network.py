"""Networks: units and synapses composed into one energy, and its Lyapunov flow.

``E(x, σ) = E_units(x) + Σ_s E_s(g(x), σ)``. The flow is derived from ``E``:

* threshold units: ``τ ẋ = −∂E/∂g`` (the Legendre term contributes ``κ x``),
* oscillators: ``τ σ̇ = −P_σ ∂E/∂σ + τ Ω σ``,

with ``∂E/∂g`` and ``∂E/∂σ`` taken from the synapses (``jax.grad`` of their energies, or a
closed form a synapse provides and the tests check against ``jax.grad``).

The presets :func:`hopfield`, :func:`kuramoto` and :func:`hopfield_kuramoto` build the
three models of Fanaskov & Oseledets (arXiv 2505.03648) with the paper's parametrisation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import interactions as _interactions
from .lagrangians import AbstractLagrangian
from .synapses import (
    AbstractSynapse,
    CouplingSynapse,
    HopfieldSynapse,
    KuramotoSynapse,
    MultiplicativeCouplingSynapse,
    Pairs,
    StimulusSynapse,
)
from .units import OscillatorUnits, State, ThresholdUnits

__all__ = ["Network", "hopfield", "kuramoto", "hopfield_kuramoto", "COUPLINGS"]

COUPLINGS = ("full", "additive", "multiplicative")


@eqx.filter_jit  # compiled: a Hessian traced op by op is slow (seconds at n = 64)
def _effective_weights(network, state):
    g = network._activation(state)

    def e_syn(g):
        return sum(s.energy(g, state.sigma) for s in network.synapses)

    return -jax.hessian(e_syn)(g) / network.threshold.kappa


class Network(eqx.Module):
    """Threshold units and/or oscillators bound by synapses into one energy.

    Arguments:
        threshold: :class:`~hkjax.ThresholdUnits` or ``None``.
        oscillators: :class:`~hkjax.OscillatorUnits` or ``None``.
        synapses: a sequence of :class:`~hkjax.synapses.AbstractSynapse`.

    Raises:
        ValueError: a synapse sized for a different number of units, or one that needs
            units the network does not have.
    """

    threshold: ThresholdUnits | None
    oscillators: OscillatorUnits | None
    synapses: tuple[AbstractSynapse, ...]

    def __init__(self, threshold=None, oscillators=None, synapses=()):
        if threshold is None and oscillators is None:
            raise ValueError("Network needs threshold units, oscillators, or both")
        self.threshold, self.oscillators = threshold, oscillators
        self.synapses = tuple(synapses)
        for k, s in enumerate(self.synapses):
            if not isinstance(s, AbstractSynapse):
                raise TypeError(f"synapses[{k}] is a {type(s).__name__}, not an hkjax synapse")
            for size, units, what in (
                (s.threshold_size(), threshold, "threshold units"),
                (s.oscillator_size(), oscillators, "oscillators"),
            ):
                if size is None:
                    continue
                if units is None:
                    raise ValueError(f"synapses[{k}] ({type(s).__name__}) needs {what}; the network has none")
                if size != units.n:
                    raise ValueError(
                        f"synapses[{k}] ({type(s).__name__}) is sized for {size} {what}, "
                        f"the network has {units.n}"
                    )

    # -- properties --------------------------------------------------------------------
    @property
    def is_lyapunov(self) -> bool:
        """Whether the energy provably never increases along the flow: no natural frequency,
        or one global ``Ω`` with a rotation-invariant energy (no stimulus)."""
        osc = self.oscillators
        if osc is None or osc.omega is None:
            return True
        if osc.per_neuron_omega:
            return False
        return all(s.rotation_invariant for s in self.synapses)

    def prepare(self) -> "Network":
        """An equivalent network laid out for repeated evaluation (see
        :meth:`hkjax.synapses.AbstractSynapse.prepare`); :func:`hkjax.relax` solves with it."""
        synapses = tuple(p for s in self.synapses for p in s.prepare())
        return eqx.tree_at(lambda net: net.synapses, self, synapses)

    # -- energy and flow ---------------------------------------------------------------
    def _activation(self, state: State):
        return None if self.threshold is None else self.threshold.activation(state.x)

    def energy(self, state: State) -> Float[Array, ""]:
        """The scalar energy ``E(state) = κ_H (x·g − L(x)) + Σ_synapses E_s(g, σ)``.

        Arguments:
            state: a :class:`~hkjax.State` with ``x`` ``(n,)`` and/or ``sigma`` ``(m, dim)``
                for the units this network has (single sample; ``vmap`` for batches).

        Returns:
            The scalar energy (the units' Legendre term plus every synapse's energy).

        Raises:
            TypeError: ``state`` is not a :class:`~hkjax.State`.
            ValueError: ``state`` lacks a field the network needs, has one it lacks, or has
                the wrong shapes.
        """
        self._check_structure(state)
        g = self._activation(state)
        e = 0.0 if self.threshold is None else self.threshold.energy(state.x, g)
        for s in self.synapses:
            e = e + s.energy(g, state.sigma)
        return jnp.asarray(e)

    def synapse_gradient(self, state: State):
        """``(∂E_syn/∂g, ∂E_syn/∂σ)``: the synapses' energy gradients at ``state``."""
        g = self._activation(state)
        dg = None if g is None else jnp.zeros_like(g)
        ds = None if state.sigma is None else jnp.zeros_like(state.sigma)
        for s in self.synapses:
            a, b = s.gradient(g, state.sigma)
            if a is not None:
                dg = dg + a
            if b is not None:
                ds = ds + b
        return dg, ds

    def vector_field(self, t, state: State, args=None) -> State:
        """The Lyapunov flow of :meth:`energy` (a ``State`` of time derivatives).

        ``ẋ = −(κ x + ∂E_syn/∂g)/τ``, ``σ̇ = −P_σ ∂E_syn/∂σ / τ_σ + Ω σ``.
        Signature ``(t, y, args)`` as Diffrax expects.

        Arguments:
            t: time (unused: the flow is autonomous).
            state: the :class:`~hkjax.State` ``y`` at which to evaluate the flow.
            args: unused (Diffrax's ``args``).

        Returns:
            A :class:`~hkjax.State` of time derivatives, with the structure of ``state``.

        Raises:
            ValueError: a ``state`` that does not fit the network (see :meth:`energy`).
        """
        self._check_structure(state)
        dg, ds = self.synapse_gradient(state)
        dx = dsigma = None
        if self.threshold is not None:
            th = self.threshold
            dx = -(th.kappa * state.x + dg) / th.tau
        if self.oscillators is not None:
            osc = self.oscillators
            dsigma = -osc.project(state.sigma, ds) / osc.tau + osc.rotation(state.sigma)
        return State(x=dx, sigma=dsigma)

    def effective_weights(self, state: State) -> Float[Array, "n n"]:
        """The weights the threshold units feel at ``state``: ``−∂²E_syn/∂g²`` divided by the
        Hopfield scale ``κ_H`` (``W_s + κ_H⁻¹ C ⊙ Gram(σ)`` for the Hopfield–Kuramoto model).

        Arguments:
            state: the :class:`~hkjax.State` at which the oscillators' ``Gram(σ)`` is taken.

        Returns:
            The ``(n, n)`` effective weight matrix (by autodiff: a Hessian, so ``O(n²)``).

        Raises:
            ValueError: the network has no threshold units.
        """
        if self.threshold is None:
            raise ValueError("effective_weights needs threshold units")
        return _effective_weights(self, state)

    # -- states ------------------------------------------------------------------------
    def init_state(self, x=None, sigma=None, *, key: PRNGKeyArray | None = None) -> State:
        """A validated initial state.

        Arguments:
            x: ``(n,)`` threshold state (default zeros).
            sigma: ``(m, dim)`` oscillators, normalised onto the sphere here (default:
                uniformly random unit vectors drawn with ``key``).
            key: needed only when ``sigma`` is omitted.

        Raises:
            ValueError: wrong shapes, a zero oscillator, non-finite values, or ``x`` /
                ``sigma`` given for units the network does not have.
        """
        th, osc = self.threshold, self.oscillators
        if th is None and x is not None:
            raise ValueError("x was given but the network has no threshold units; drop x")
        if osc is None and sigma is not None:
            raise ValueError("sigma was given but the network has no oscillators; drop sigma")
        if th is not None:
            x = jnp.zeros(th.n) if x is None else jnp.asarray(x)
            if x.shape != (th.n,):
                raise ValueError(f"x has shape {x.shape}; this network has {th.n} threshold units, pass shape ({th.n},)")
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise TypeError(f"x has dtype {x.dtype}; pass a floating-point array")
            x = eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), "x contains NaN or inf; pass finite values")
        if osc is not None:
            if sigma is None:
                if key is None:
                    raise ValueError("pass sigma, or key=... to draw random oscillators")
                sigma = jax.random.normal(key, (osc.n, osc.dim))
            sigma = jnp.asarray(sigma)
            if sigma.shape != (osc.n, osc.dim):
                raise ValueError(
                    f"sigma has shape {sigma.shape}; this network has {osc.n} oscillators in "
                    f"dimension {osc.dim}, pass shape ({osc.n}, {osc.dim})"
                )
            if not jnp.issubdtype(sigma.dtype, jnp.floating):
                raise TypeError(f"sigma has dtype {sigma.dtype}; pass a floating-point array")
            norm = jnp.linalg.norm(sigma, axis=-1, keepdims=True)
            sigma = eqx.error_if(
                sigma,
                ~jnp.all(jnp.isfinite(sigma)) | jnp.any(norm == 0),
                "sigma contains NaN/inf or a zero vector; every oscillator needs a finite, non-zero direction",
            )
            sigma = sigma / norm
        return State(x=x, sigma=sigma)

    def _check_structure(self, state):
        if not isinstance(state, State):
            raise TypeError(f"state must be an hkjax.State (see Network.init_state), got {type(state).__name__}")
        if (self.threshold is None) != (state.x is None) or (self.oscillators is None) != (state.sigma is None):
            raise ValueError(
                "state does not match the network's units (x given iff threshold units, sigma iff "
                "oscillators); build it with network.init_state"
            )
        if self.threshold is not None and state.x.shape[-1:] != (self.threshold.n,):
            raise ValueError(f"state.x has shape {state.x.shape}; expected ({self.threshold.n},)")
        if self.oscillators is not None and state.sigma.shape[-2:] != (self.oscillators.n, self.oscillators.dim):
            raise ValueError(
                f"state.sigma has shape {state.sigma.shape}; expected ({self.oscillators.n}, {self.oscillators.dim})"
            )


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
    th = ThresholdUnits(n, lagrangian=lagrangian, kappa=kappa)
    return Network(threshold=th, synapses=[HopfieldSynapse(w, b, kappa=kappa)])


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
        omega: natural frequency (see :class:`~hkjax.OscillatorUnits`).
        stimulus: ``(n, dim)`` conditional stimulus ``c`` (optional).
        kappa: energy scale and time constant ``κ_K``.
        formulation: how edge sums are evaluated (see :mod:`hkjax.synapses`).
        key: PRNG key (keyword only).
    """
    osc = OscillatorUnits(n, dim, tau=kappa, omega=omega)
    pairs = Pairs(edges, n, formulation=formulation, name="edges")
    inter = _interaction(interaction, pairs.num_edges, weights, key, init_scale, "weights")
    syn: list[AbstractSynapse] = [KuramotoSynapse(pairs, inter, kappa=kappa)]
    if stimulus is not None:
        syn.append(StimulusSynapse(stimulus))
    return Network(oscillators=osc, synapses=syn)


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
    hop = HopfieldSynapse(w, b, kappa=kappa_h)
    th = ThresholdUnits(n, lagrangian=lagrangian, kappa=kappa_h)
    osc = OscillatorUnits(n, dim, tau=kappa_k, omega=omega)
    syn: list[AbstractSynapse] = []
    if edges_k is not None:
        pk = Pairs(edges_k, n, formulation=formulation, name="edges_k")
        inter = _interaction(interaction, pk.num_edges, kuramoto_weights, kk, init_scale, "kuramoto_weights")
        syn.append(KuramotoSynapse(pk, inter, kappa=kappa_k))
    phk = Pairs(edges_hk, n, formulation=formulation, name="edges_hk")
    if coupling == "multiplicative":
        alpha = jnp.asarray(1.0) if coupling_weights is None else coupling_weights
        syn.append(MultiplicativeCouplingSynapse(hop, phk, alpha))
    else:
        shape = (phk.num_edges,) if coupling == "full" else ()
        cw = _param(coupling_weights, shape, "coupling_weights", kc, init_scale)
        syn = [hop] + syn + [CouplingSynapse(phk, cw)]
    if stimulus is not None:
        syn.append(StimulusSynapse(stimulus))
    return Network(threshold=th, oscillators=osc, synapses=syn)

"""Layers: named populations of threshold units (on ``R^shape``) or oscillators (on spheres).

A layer owns its state's shape, the value synapses see (the activation ``g = ∇L(x)`` of
threshold units, the unit vectors ``σ`` of oscillators), its own energy, its time constant,
and the flow term it adds to ``−∂E/∂(value)``. Layers know nothing of synapses;
:class:`hkjax.Network` binds them by synapses into one energy and derives the flow.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .lagrangians import AbstractLagrangian

__all__ = ["AbstractLayer", "ThresholdLayer", "OscillatorLayer"]


def _shape(shape, cls: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{cls}: shape={shape!r} must be a tuple of positive integers, e.g. (784,) or (8, 8, 1)") from None
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"{cls}: shape={shape!r} must be a tuple of positive integers, e.g. (784,) or (8, 8, 1)")
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{cls}: shape={shape!r} must be a non-empty tuple of positive integers, e.g. (784,)")
    return shape


def _positive(value, what: str, cls: str):
    if isinstance(value, (int, float, np.floating, np.integer)) and not value > 0:
        raise ValueError(f"{cls}: {what}={value} must be positive")


class AbstractLayer(eqx.Module):
    """A population of neurons: one state array of :attr:`state_shape`.

    A subclass says what synapses see (:meth:`value`), its own energy (:meth:`energy`), the
    time derivative given ``∂E/∂value`` (:meth:`flow`), how to validate and default an initial
    state (:meth:`init`) and how to map a state back onto its manifold (:meth:`project`).
    """

    #: ``"threshold"`` or ``"oscillator"``: what kind of value synapses receive.
    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """The shape of this layer's state array."""

    @property
    def size(self) -> int:
        """The number of neurons (threshold units or oscillators)."""
        return int(np.prod(self.shape))

    @abc.abstractmethod
    def value(self, state: Array) -> Array:
        """What synapses see of this layer at ``state``."""

    @abc.abstractmethod
    def energy(self, state: Array, value: Array) -> Float[Array, ""]:
        """The layer's own energy at ``state`` (``value = self.value(state)``)."""

    @abc.abstractmethod
    def flow(self, state: Array, value: Array, grad: Array | None) -> Array:
        """The time derivative of ``state`` given ``grad = ∂E_syn/∂value`` (``None``: no
        synapse touches this layer)."""

    @abc.abstractmethod
    def init(self, state, key: PRNGKeyArray | None, name: str) -> Array:
        """A validated initial state from ``state`` (``None``: this layer's default, drawn
        with ``key`` where it is random); errors call the state ``name``."""

    def project(self, state: Array) -> Array:
        """``state`` mapped back onto the layer's manifold (identity for ``R^shape``)."""
        return state

    @property
    def is_lyapunov(self) -> bool:
        """Whether this layer's own flow term keeps the energy non-increasing."""
        return True

    def _check(self, state, name: str):
        shape = jnp.shape(state)
        if shape != self.state_shape:
            raise ValueError(
                f"state[{name!r}] has shape {shape}; layer {name!r} ({type(self).__name__}) "
                f"expects {self.state_shape}")


class ThresholdLayer(AbstractLayer):
    """Threshold (Hopfield) neurons ``x`` of any ``shape``, activation ``g = ∇L(x)``.

    The Lagrangian is taken over the whole layer (a :class:`~hkjax.lagrangians.Softmax`
    normalises within it). Own energy (the Legendre term): ``κ (Σ x·g − L(x))``. Flow:
    ``τ ẋ = −∂E/∂g``, where this term contributes ``κ x``: for a plain Hopfield layer with
    ``κ = τ`` that is ``ẋ = W g + b − x``.

    Arguments:
        shape: the state's shape, e.g. ``(784,)``, ``(8, 8, 1)``, ``(tokens, features)``.
        lagrangian: the convex Lagrangian ``L`` (see :mod:`hkjax.lagrangians`).
        kappa: energy scale ``κ`` of the Legendre term (the paper's ``κ_H``).
        tau: time constant ``τ`` (defaults to ``kappa``, the paper's choice).

    Raises:
        ValueError: a shape that is not a tuple of positive integers, a non-positive
            ``kappa`` or ``tau``.
        TypeError: ``lagrangian`` is not an hkjax Lagrangian.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    lagrangian: AbstractLagrangian
    kappa: float
    tau: float
    kind: ClassVar[str] = "threshold"

    def __init__(self, shape, lagrangian: AbstractLagrangian, *, kappa: float = 1.0, tau: float | None = None):
        self.shape = _shape(shape, "ThresholdLayer")
        if not isinstance(lagrangian, AbstractLagrangian):
            raise TypeError(
                f"ThresholdLayer: lagrangian must be an hkjax.lagrangians Lagrangian "
                f"(e.g. hk.lagrangians.ReLU()), got {type(lagrangian).__name__}")
        _positive(kappa, "kappa", "ThresholdLayer")
        self.lagrangian = lagrangian
        self.kappa = kappa
        self.tau = kappa if tau is None else tau
        _positive(self.tau, "tau", "ThresholdLayer")

    @property
    def state_shape(self) -> tuple[int, ...]:
        """``shape``."""
        return self.shape

    def value(self, state):
        """``g = ∇L(x)``, the firing of the units (``L`` over the whole layer).

        Arguments:
            state: the layer's states ``x``, of ``shape``.

        Returns:
            Activations of ``shape``.
        """
        if len(self.shape) == 1:
            return self.lagrangian.activation(state)
        return self.lagrangian.activation(state.reshape(-1)).reshape(self.shape)

    def energy(self, state, value=None):
        """The Legendre term ``κ (Σ x·g − L(x))``.

        Arguments:
            state: the layer's states ``x``.
            value: its activations ``g``, if already computed.

        Returns:
            The scalar energy of the units themselves.
        """
        g = self.value(state) if value is None else value
        x = state.reshape(-1)
        return self.kappa * (jnp.dot(x, g.reshape(-1)) - self.lagrangian(x))

    def flow(self, state, value, grad):
        """``ẋ = −(κ x + ∂E_syn/∂g)/τ`` at ``state`` ``x`` (``value`` its activation ``g``,
        ``grad`` the synapses' ``∂E/∂g`` or ``None``)."""
        if grad is None:
            return -(self.kappa * state) / self.tau
        return -(self.kappa * state + grad) / self.tau

    def init(self, state, key, name):
        """``state`` validated (``None``: zeros; ``key`` is not used); errors call it ``name``."""
        x = jnp.zeros(self.shape) if state is None else jnp.asarray(state)
        if x.shape != self.shape:
            raise ValueError(f"{name} has shape {x.shape}; layer {name!r} has shape {self.shape}, pass that")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name} has dtype {x.dtype}; pass a floating-point array")
        return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{name} contains NaN or inf; pass finite values")


class OscillatorLayer(AbstractLayer):
    """Oscillators ``σ`` of any ``shape``, each a unit vector of ``S^{dim−1}`` (generalised
    Kuramoto / AKOrN neurons); the state has shape ``shape + (dim,)``.

    No energy of their own. Flow: ``τ σ̇ᵢ = −P_{σᵢ} ∂E/∂σᵢ + τ Ωᵢ σᵢ`` with
    ``P_σ = I − σσᵀ/|σ|²``, which keeps ``|σᵢ|`` constant.

    Arguments:
        shape: the oscillators' arrangement, e.g. ``(100,)`` or ``(H, W, C)``.
        dim: dimension ``D ≥ 2`` of the ambient space (oscillators live on ``S^{D−1}``;
            ``D = 2`` is the classical phase oscillator).
        tau: time constant (the paper's ``κ_K``).
        omega: natural frequency: ``None`` (no rotation), an antisymmetric ``(dim, dim)``
            matrix shared by all oscillators (keeps the energy a Lyapunov function when the
            energy is rotation invariant), or ``shape + (dim, dim)``, one per oscillator.
            **The per-oscillator form is not Lyapunov**: ``dE/dt`` gains the unsigned term
            ``Σ F'ᵢⱼ σᵢᵀ(Ωⱼ − Ωᵢ)σⱼ`` and the energy can rise. The matrix is antisymmetrised,
            ``(Ω − Ωᵀ)/2``, whenever it is used, so a learned ``Ω`` stays a rotation generator.

    Raises:
        ValueError: ``dim < 2``, a bad ``shape``, an ``omega`` of the wrong shape or not
            antisymmetric.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    tau: float
    omega: Float[Array, "*shape dim dim"] | None
    kind: ClassVar[str] = "oscillator"

    def __init__(self, shape, dim: int, *, tau: float = 1.0, omega=None):
        self.shape = _shape(shape, "OscillatorLayer")
        if not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ValueError(
                f"OscillatorLayer: dim={dim!r} must be an integer ≥ 2 (oscillators live on the "
                f"sphere S^(dim−1); dim=2 is the classical phase oscillator)")
        _positive(tau, "tau", "OscillatorLayer")
        self.dim, self.tau = int(dim), tau
        if omega is not None:
            omega = jnp.asarray(omega)
            if omega.shape not in ((dim, dim), self.shape + (dim, dim)):
                raise ValueError(
                    f"omega has shape {omega.shape}; pass a ({dim}, {dim}) antisymmetric matrix "
                    f"(global) or {self.shape + (dim, dim)} (one per oscillator)")
            if not isinstance(omega, jax.core.Tracer):
                om = np.asarray(omega)
                asym = om + np.swapaxes(om, -1, -2)
                if np.max(np.abs(asym), initial=0.0) > 1e-6 * max(1.0, float(np.max(np.abs(om), initial=0.0))):
                    raise ValueError("omega must be antisymmetric (Ωᵀ = −Ω) to generate rotations; pass (A − A.T) / 2")
        self.omega = omega

    @property
    def state_shape(self) -> tuple[int, ...]:
        """``shape + (dim,)``."""
        return self.shape + (self.dim,)

    @property
    def per_oscillator_omega(self) -> bool:
        """Whether each oscillator has its own ``Ωᵢ`` (then the flow is not Lyapunov)."""
        return self.omega is not None and self.omega.ndim > 2

    @property
    def is_lyapunov(self) -> bool:
        """``False`` with one ``Ωᵢ`` per oscillator."""
        return not self.per_oscillator_omega

    def value(self, state):
        """``σ`` itself: the ``state``."""
        return state

    def energy(self, state, value=None):
        """Zero at any ``state`` (and ``value``): oscillators contribute no energy of their own."""
        return jnp.zeros((), state.dtype)

    def rotation(self, sigma):
        """``Ωᵢ σᵢ`` for every oscillator (zero without ``omega``).

        Arguments:
            sigma: oscillators of ``shape + (dim,)``.

        Returns:
            Rotation velocities of the same shape, with ``Ω`` antisymmetrised first.
        """
        if self.omega is None:
            return jnp.zeros_like(sigma)
        om = 0.5 * (self.omega - jnp.swapaxes(self.omega, -1, -2))
        if om.ndim == 2:
            return sigma @ om.T
        return jnp.einsum("...ab,...b->...a", om, sigma)

    def flow(self, state, value, grad):
        """``σ̇ = −P_σ ∂E/∂σ / τ + Ω σ`` at ``state`` ``σ`` (``value`` is ``σ``, ``grad`` the
        synapses' ``∂E/∂σ`` or ``None``)."""
        if grad is None:
            return self.rotation(state)
        return -self.tangent(state, grad) / self.tau + self.rotation(state)

    @staticmethod
    def tangent(sigma, v):
        """The tangent projection ``P_σ v = v − (σ·v) σ / |σ|²`` of every oscillator.

        Arguments:
            sigma: points ``(..., dim)`` (non-zero; need not be unit vectors).
            v: vectors of the same shape.

        Returns:
            ``v`` with each vector made orthogonal to the matching ``σ``.
        """
        coef = jnp.sum(sigma * v, axis=-1, keepdims=True) / jnp.sum(sigma * sigma, axis=-1, keepdims=True)
        return v - coef * sigma

    def project(self, state):
        """Every oscillator of ``state`` mapped back onto the unit sphere, ``σᵢ / |σᵢ|``."""
        return state / jnp.linalg.norm(state, axis=-1, keepdims=True)

    def init(self, state, key, name):
        """``state`` validated and normalised onto the sphere (``None``: uniformly random unit
        vectors drawn with ``key``); errors call it ``name``."""
        if state is None:
            if key is None:
                raise ValueError(f"pass an initial state for {name!r}, or key=... to draw random oscillators")
            state = jax.random.normal(key, self.state_shape)
        sigma = jnp.asarray(state)
        if sigma.shape != self.state_shape:
            raise ValueError(
                f"{name} has shape {sigma.shape}; layer {name!r} holds oscillators of shape {self.shape} "
                f"in dimension {self.dim}, pass shape {self.state_shape}")
        if not jnp.issubdtype(sigma.dtype, jnp.floating):
            raise TypeError(f"{name} has dtype {sigma.dtype}; pass a floating-point array")
        norm = jnp.linalg.norm(sigma, axis=-1, keepdims=True)
        sigma = eqx.error_if(
            sigma, ~jnp.all(jnp.isfinite(sigma)) | jnp.any(norm == 0),
            f"{name} contains NaN/inf or a zero vector; every oscillator needs a finite, non-zero direction")
        return sigma / norm

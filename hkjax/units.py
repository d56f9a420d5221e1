"""Neurons: threshold units on ``R^N`` and oscillatory units on ``(S^{D−1})^M``.

Units own their state's shape, their activation, their own energy, their time constant,
and (oscillators) the natural frequency ``Ω`` and the map back onto the sphere. They know
nothing of synapses; :class:`hkjax.Network` combines both into one energy and derives the
flow.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .lagrangians import AbstractLagrangian

__all__ = ["State", "ThresholdUnits", "OscillatorUnits"]


class State(eqx.Module):
    """The state of a network: threshold states ``x`` ``(n,)`` and oscillators ``sigma``
    ``(m, dim)`` (unit vectors). Either may be ``None`` when the network has no such units.
    Batch states by stacking with :func:`jax.vmap` (leading axes).

    Arguments:
        x: ``(n,)`` threshold states, or ``None``.
        sigma: ``(m, dim)`` oscillators, or ``None``.
    """

    x: Float[Array, " n"] | None = None
    sigma: Float[Array, "m dim"] | None = None


def _positive(value, what: str, cls: str):
    if isinstance(value, (int, float, np.floating, np.integer)) and not value > 0:
        raise ValueError(f"{cls}: {what}={value} must be positive")


class ThresholdUnits(eqx.Module):
    """``n`` threshold (Hopfield) neurons with activation ``g = ∇L(x)``.

    Own energy (the Legendre term): ``κ (x·g − L(x))``. Flow: ``τ ẋ = −∂E/∂g``, where this
    term contributes ``κ x``; for a plain Hopfield network with ``κ = τ`` this is
    ``ẋ = W g + b − x``.

    Arguments:
        n: number of units.
        lagrangian: the convex Lagrangian ``L`` (see :mod:`hkjax.lagrangians`).
        kappa: energy scale ``κ`` of the Hopfield block (the paper's ``κ_H``).
        tau: time constant ``τ`` (defaults to ``kappa``, the paper's choice).
    """

    n: int = eqx.field(static=True)
    lagrangian: AbstractLagrangian
    kappa: float
    tau: float

    def __init__(self, n: int, *, lagrangian: AbstractLagrangian, kappa: float = 1.0, tau: float | None = None):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"ThresholdUnits: n={n!r} must be a positive integer")
        if not isinstance(lagrangian, AbstractLagrangian):
            raise TypeError(
                f"ThresholdUnits: lagrangian must be an hkjax.lagrangians Lagrangian "
                f"(e.g. hk.lagrangians.ReLU()), got {type(lagrangian).__name__}"
            )
        _positive(kappa, "kappa", "ThresholdUnits")
        self.n = int(n)
        self.lagrangian = lagrangian
        self.kappa = kappa
        self.tau = kappa if tau is None else tau
        _positive(self.tau, "tau", "ThresholdUnits")

    def activation(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        """``g = ∇L(x)``, the firing of the units.

        Arguments:
            x: ``(n,)`` states.

        Returns:
            ``(n,)`` activations.
        """
        return self.lagrangian.activation(x)

    def energy(self, x: Float[Array, " n"], g: Float[Array, " n"] | None = None) -> Float[Array, ""]:
        """The Legendre term ``κ (x·g − L(x))``.

        Arguments:
            x: ``(n,)`` states.
            g: ``(n,)`` activations, if already computed (default: :meth:`activation` of ``x``).

        Returns:
            The scalar energy of the units themselves.
        """
        g = self.activation(x) if g is None else g
        return self.kappa * (jnp.dot(x, g) - self.lagrangian(x))


class OscillatorUnits(eqx.Module):
    """``n`` oscillators ``σᵢ ∈ S^{dim−1}`` (generalised Kuramoto / AKOrN neurons).

    They contribute no energy of their own. Flow:
    ``τ σ̇ᵢ = −P_{σᵢ} ∂E/∂σᵢ + τ Ωᵢ σᵢ`` with ``P_σ = I − σσᵀ/|σ|²``, which keeps ``|σᵢ|``
    constant.

    Arguments:
        n: number of oscillators.
        dim: dimension ``D ≥ 2`` of the ambient space (oscillators live on ``S^{D−1}``).
        tau: time constant (the paper's ``κ_K``).
        omega: natural frequency, ``None`` (no rotation), an antisymmetric ``(dim, dim)``
            matrix shared by all oscillators (keeps the energy a Lyapunov function when the
            energy is rotation invariant), or ``(n, dim, dim)``, one antisymmetric matrix
            per oscillator. **The per-neuron form is not Lyapunov**: ``dE/dt`` gains the
            unsigned term ``Σ F'ᵢⱼ σᵢᵀ(Ωⱼ − Ωᵢ)σⱼ`` and the energy can rise.
            The matrix is antisymmetrised, ``(Ω − Ωᵀ)/2``, whenever it is used, so that a
            learned ``Ω`` stays a rotation generator.

    Raises:
        ValueError: ``dim < 2``, an ``omega`` of the wrong shape, or one that is not
            antisymmetric.
    """

    n: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    tau: float
    omega: Float[Array, "*n dim dim"] | None

    def __init__(self, n: int, dim: int, *, tau: float = 1.0, omega=None):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"OscillatorUnits: n={n!r} must be a positive integer")
        if not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ValueError(
                f"OscillatorUnits: dim={dim!r} must be an integer ≥ 2 (oscillators live on the "
                f"sphere S^(dim−1); dim=2 is the classical phase oscillator)"
            )
        _positive(tau, "tau", "OscillatorUnits")
        self.n, self.dim, self.tau = int(n), int(dim), tau
        if omega is not None:
            omega = jnp.asarray(omega)
            if omega.shape not in ((dim, dim), (n, dim, dim)):
                raise ValueError(
                    f"omega has shape {omega.shape}; pass a ({dim}, {dim}) antisymmetric matrix "
                    f"(global) or ({n}, {dim}, {dim}) (one per oscillator)"
                )
            if not isinstance(omega, jnp.ndarray) or not _is_tracer(omega):
                asym = np.asarray(omega + jnp.swapaxes(omega, -1, -2))
                if np.max(np.abs(asym), initial=0.0) > 1e-6 * max(1.0, float(np.max(np.abs(np.asarray(omega)), initial=0.0))):
                    raise ValueError(
                        "omega must be antisymmetric (Ωᵀ = −Ω) to generate rotations; "
                        "pass (A − A.T) / 2"
                    )
        self.omega = omega

    @property
    def per_neuron_omega(self) -> bool:
        """Whether each oscillator has its own ``Ωᵢ`` (then the flow is not Lyapunov)."""
        return self.omega is not None and self.omega.ndim == 3

    def rotation(self, sigma: Float[Array, "n dim"]) -> Float[Array, "n dim"]:
        """``Ωᵢ σᵢ`` for every oscillator (zero without ``omega``).

        Arguments:
            sigma: ``(n, dim)`` oscillators.

        Returns:
            ``(n, dim)`` rotation velocities, with ``Ω`` antisymmetrised first.
        """
        if self.omega is None:
            return jnp.zeros_like(sigma)
        om = 0.5 * (self.omega - jnp.swapaxes(self.omega, -1, -2))
        if om.ndim == 2:
            return sigma @ om.T
        return jnp.einsum("nab,nb->na", om, sigma)

    @staticmethod
    def project(sigma: Float[Array, "n dim"], v: Float[Array, "n dim"]) -> Float[Array, "n dim"]:
        """The tangent projection ``P_σ v = v − (σ·v) σ / |σ|²`` of each row.

        Arguments:
            sigma: ``(n, dim)`` points (need not be unit vectors; non-zero).
            v: ``(n, dim)`` vectors to project onto the tangent spaces at ``sigma``.

        Returns:
            ``(n, dim)``, each row orthogonal to the matching row of ``sigma``.
        """
        coef = jnp.sum(sigma * v, axis=-1, keepdims=True) / jnp.sum(sigma * sigma, axis=-1, keepdims=True)
        return v - coef * sigma

    @staticmethod
    def normalise(sigma: Float[Array, "n dim"]) -> Float[Array, "n dim"]:
        """Map each row back onto the unit sphere, ``σᵢ / |σᵢ|``.

        Arguments:
            sigma: ``(n, dim)`` non-zero vectors.

        Returns:
            ``(n, dim)`` unit vectors.
        """
        return sigma / jnp.linalg.norm(sigma, axis=-1, keepdims=True)


def _is_tracer(a) -> bool:
    import jax

    return isinstance(a, jax.core.Tracer)

"""Convex Lagrangians of threshold units.

A threshold unit with state ``x ∈ R^N`` fires ``g = ∇L(x)`` for a convex Lagrangian
``L``; its own energy is the Legendre term ``x·g − L(x)``. Convexity of ``L`` (a positive
semidefinite Hessian) is what makes the Hopfield energy a Lyapunov function of the flow
``τ ẋ = −∂E/∂g`` (``dE/dt = −τ ẋᵀ ∇²L(x) ẋ ≤ 0``).

Every Lagrangian implements ``__call__(x) -> L(x)`` (a scalar) and ``activation(x)``, its
closed-form gradient; ``tests/test_lagrangians.py`` checks the latter against
``jax.grad`` of the former.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = [
    "AbstractLagrangian",
    "Identity",
    "Tanh",
    "Sigmoid",
    "ReLU",
    "Softmax",
    "LayerNorm",
]


class AbstractLagrangian(eqx.Module):
    """A convex function ``L: R^N → R`` whose gradient is the activation of the units.

    A subclass implements :meth:`__call__` (``L``) and :meth:`activation` (``∇L`` in closed
    form); :class:`~hkjax.ThresholdLayer` uses them for the Legendre energy ``x·g − L(x)``.
    """

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        """The Lagrangian ``L(x)``.

        Arguments:
            x: ``(n,)`` threshold states.

        Returns:
            The scalar ``L(x)``.
        """

    @abc.abstractmethod
    def activation(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        """The activation ``g = ∇L(x)``.

        Arguments:
            x: ``(n,)`` threshold states.

        Returns:
            ``(n,)`` activations ``g``, the gradient of :meth:`__call__` at ``x``.
        """


class Identity(AbstractLagrangian):
    """``L(x) = ½|x|²``, activation ``g = x`` (the linear neuron)."""

    def __call__(self, x):
        return 0.5 * jnp.sum(x**2)

    def activation(self, x):
        """``g = x``. See :meth:`AbstractLagrangian.activation`."""
        return x


class Tanh(AbstractLagrangian):
    """``L(x) = Σ log cosh x``, activation ``g = tanh x``."""

    def __call__(self, x):
        ax = jnp.abs(x)
        # log cosh x = |x| + log(1 + e^{−2|x|}) − log 2, stable for large |x|.
        return jnp.sum(ax + jnp.log1p(jnp.exp(-2.0 * ax)) - jnp.log(2.0))

    def activation(self, x):
        """``g = tanh x`` (elementwise), in ``(−1, 1)``. See :meth:`AbstractLagrangian.activation`."""
        return jnp.tanh(x)


class Sigmoid(AbstractLagrangian):
    """``L(x) = Σ softplus x = Σ log(1 + eˣ)``, activation ``g = sigmoid x``."""

    def __call__(self, x):
        return jnp.sum(jax.nn.softplus(x))

    def activation(self, x):
        """``g = sigmoid x = 1/(1 + e^{−x})`` (elementwise), in ``(0, 1)``. See :meth:`AbstractLagrangian.activation`."""
        return jax.nn.sigmoid(x)


class ReLU(AbstractLagrangian):
    """``L(x) = ½ Σ relu(x)²``, activation ``g = relu x`` (the paper's choice)."""

    def __call__(self, x):
        return 0.5 * jnp.sum(jax.nn.relu(x) ** 2)

    def activation(self, x):
        """``g = relu x = max(x, 0)`` (elementwise). See :meth:`AbstractLagrangian.activation`."""
        return jax.nn.relu(x)


class Softmax(AbstractLagrangian):
    """``L(x) = β⁻¹ log Σ exp(β xᵢ)``, activation ``g = softmax(β x)``.

    Arguments:
        beta: inverse temperature ``β > 0``.
    """

    beta: float = 1.0

    def __check_init__(self):
        if not self.beta > 0:
            raise ValueError(f"Softmax: beta={self.beta} must be positive; pass beta > 0")

    def __call__(self, x):
        return jax.nn.logsumexp(self.beta * x) / self.beta

    def activation(self, x):
        """``g = softmax(β x)``: non-negative, summing to 1. See :meth:`AbstractLagrangian.activation`."""
        return jax.nn.softmax(self.beta * x)


class LayerNorm(AbstractLagrangian):
    """``L(x) = N γ √(Var(x) + ε) + δ·x``, activation ``g = γ (x − x̄)/√(Var(x) + ε) + δ``.

    ``Var(x) = N⁻¹ Σ (xᵢ − x̄)²``. Convex for ``γ > 0`` (as in HAMUX / Hoover et al.).

    Arguments:
        gamma: scale ``γ > 0``.
        delta: shift ``δ`` (a scalar).
        eps: regulariser ``ε > 0``.
    """

    gamma: float = 1.0
    delta: float = 0.0
    eps: float = 1e-5

    def __check_init__(self):
        if not self.gamma > 0:
            raise ValueError(f"LayerNorm: gamma={self.gamma} must be positive (convexity)")
        if not self.eps > 0:
            raise ValueError(f"LayerNorm: eps={self.eps} must be positive")

    def __call__(self, x):
        n = x.shape[-1]
        var = jnp.mean((x - jnp.mean(x)) ** 2)
        return n * self.gamma * jnp.sqrt(var + self.eps) + self.delta * jnp.sum(x)

    def activation(self, x):
        """``g = γ (x − x̄)/√(Var(x) + ε) + δ``. See :meth:`AbstractLagrangian.activation`."""
        xc = x - jnp.mean(x)
        return self.gamma * xc / jnp.sqrt(jnp.mean(xc**2) + self.eps) + self.delta

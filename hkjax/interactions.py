"""Pair potentials ``F(s)`` of oscillator alignment ``s = σᵢ·σⱼ ∈ [−1, 1]``.

A Kuramoto synapse on a graph contributes ``κ Σ_(i,j) F_ij(σᵢ·σⱼ)`` to the energy (a plus
sum, as in the paper's code: the learned signs of the parameters decide whether an edge
aligns or anti-aligns its oscillators; a positive linear coefficient anti-aligns).

Parameters are either scalars (one potential shared by every edge) or arrays of shape
``(E,)`` (one potential per edge). :meth:`AbstractInteraction.per_edge` turns a template
with scalar parameters into a per-edge interaction with small random parameters, which is
how the presets initialise networks.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["AbstractInteraction", "AbstractAffineInteraction", "Linear", "ReLU", "Tanh", "Sigmoid", "MLP"]


def _log_cosh(s):
    a = jnp.abs(s)
    return a + jnp.log1p(jnp.exp(-2.0 * a)) - jnp.log(2.0)


class AbstractInteraction(eqx.Module):
    """A pair potential ``F(s)``, evaluated elementwise on the alignments of the edges.

    A :class:`~hkjax.synapses.Kuramoto` on graph ``G`` contributes
    ``κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ)``. A subclass declares its per-edge parameters in
    ``param_names`` and implements :meth:`__call__` (and, for speed, :meth:`derivative`).
    """

    #: Names of the per-edge parameters, in the order ``from_array`` stacks them.
    param_names: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def __call__(self, s: Float[Array, " e"]) -> Float[Array, " e"]:
        """The potential ``F(s)`` of each edge.

        Arguments:
            s: alignments ``σᵢ·σⱼ ∈ [−1, 1]``, one per edge (any shape that broadcasts with
                the parameters: ``(E,)`` for edge lists, ``(n, n)`` for dense layouts).

        Returns:
            ``F(s)``, elementwise, with the shape of ``s``.
        """

    def derivative(self, s: Float[Array, " e"]) -> Float[Array, " e"]:
        """``F'(s)`` of each edge (by autodiff unless a subclass gives a closed form).

        Arguments:
            s: alignments, as for :meth:`__call__`.

        Returns:
            ``dF/ds`` elementwise, with the shape of ``s``.
        """
        return jax.grad(lambda t: jnp.sum(self(t)))(s)

    def num_edges(self) -> int | None:
        """The number of edges the parameters describe, or ``None`` if they are shared.

        Raises:
            ValueError: per-edge parameters of different lengths.
        """
        sizes = {jnp.shape(getattr(self, p)) for p in self.param_names if jnp.ndim(getattr(self, p)) == 1}
        if not sizes:
            return None
        if len(sizes) > 1:
            raise ValueError(f"{type(self).__name__}: parameter shapes {sizes} disagree")
        (shape,) = sizes
        return shape[0]

    def per_edge(self, num_edges: int, *, key: PRNGKeyArray, scale: float = 1e-2):
        """A copy with parameters of shape ``(num_edges,)`` drawn from ``N(0, scale²)``.

        Arguments:
            num_edges: the number of edges ``E``.
            key: PRNG key for the draw (keyword only).
            scale: standard deviation of the parameters (the paper's ``1e-2``).

        Returns:
            The per-edge interaction (``self`` unchanged if it has no per-edge parameters,
            e.g. the shared MLP part of :class:`MLP` stays shared).
        """
        if not self.param_names:
            return self
        keys = jax.random.split(key, len(self.param_names))
        new = {
            p: scale * jax.random.normal(k, (num_edges,)) for p, k in zip(self.param_names, keys)
        }
        return eqx.tree_at(lambda m: [getattr(m, p) for p in self.param_names], self, list(new.values()))

    def from_array(self, weights, num_edges: int, *, name: str = "weights"):
        """A copy with per-edge parameters given as an array ``(E,)`` or ``(E, P)``.

        Arguments:
            weights: ``(E, P)`` array, column ``p`` holding parameter ``param_names[p]`` of
                every edge (``(E,)`` when there is one parameter).
            num_edges: the expected number of edges ``E``.
            name: the argument's name in error messages.

        Raises:
            ValueError: ``weights`` of the wrong shape.
            TypeError: ``weights`` not floating point.
        """
        w = jnp.asarray(weights)
        p = len(self.param_names)
        if w.ndim == 1 and p == 1:
            w = w[:, None]
        if w.ndim != 2 or w.shape != (num_edges, p):
            want = f"({num_edges},)" if p == 1 else f"({num_edges}, {p})"
            raise ValueError(
                f"{name} has shape {w.shape}; {type(self).__name__} needs {want} "
                f"(one row per edge; columns {', '.join(self.param_names)})"
            )
        if not jnp.issubdtype(w.dtype, jnp.floating):
            raise TypeError(f"{name} has dtype {w.dtype}; pass a floating-point array")
        cols = [w[:, c] for c in range(p)]
        return eqx.tree_at(lambda m: [getattr(m, q) for q in self.param_names], self, cols)


class AbstractAffineInteraction(AbstractInteraction):
    """``F(s) = A s + B φ(s)`` with ``φ(0) = 0``: the potential vanishes wherever its
    parameters do, and the linear part is a plain matrix product (fast paths use both).

    Arguments:
        a: ``A``, a scalar (shared) or ``(E,)`` (per edge).
        b: ``B``, a scalar (shared) or ``(E,)`` (per edge).
    """

    a: eqx.AbstractVar[Float[Array, "*e"] | float]
    b: eqx.AbstractVar[Float[Array, "*e"] | float]

    @abc.abstractmethod
    def phi(self, s):
        """The nonlinear part ``φ(s)`` (with ``φ(0) = 0``), elementwise in ``s``."""

    @abc.abstractmethod
    def phi_prime(self, s):
        """``φ'(s)``, elementwise in ``s``."""

    def __call__(self, s):
        return self.a * s + self.b * self.phi(s)

    def derivative(self, s):
        return self.a + self.b * self.phi_prime(s)


class Linear(AbstractInteraction):
    """``F(s) = w s`` (classical Kuramoto on the sphere; ``w < 0`` aligns, ``w > 0``
    anti-aligns, since the energy is a plus sum).

    Arguments:
        w: scalar or ``(E,)`` coefficient.
    """

    w: Float[Array, "*e"] | float = 1.0
    param_names: ClassVar[tuple[str, ...]] = ("w",)

    def __call__(self, s):
        return self.w * s

    def derivative(self, s):
        return jnp.broadcast_to(jnp.asarray(self.w, dtype=s.dtype), s.shape)


class ReLU(AbstractAffineInteraction):
    """``F(s) = A s + B relu(s)²/2`` (the paper's interaction).

    Arguments:
        a: ``A``, scalar or ``(E,)``.
        b: ``B``, scalar or ``(E,)``.
    """

    a: Float[Array, "*e"] | float = 1.0
    b: Float[Array, "*e"] | float = 1.0
    param_names: ClassVar[tuple[str, ...]] = ("a", "b")

    def phi(self, s):
        """``φ(s) = relu(s)²/2``."""
        return 0.5 * jax.nn.relu(s) ** 2

    def phi_prime(self, s):
        """``φ'(s) = relu s``."""
        return jax.nn.relu(s)


class Tanh(AbstractAffineInteraction):
    """``F(s) = A s + B log cosh s``.

    Arguments:
        a: ``A``, scalar or ``(E,)``.
        b: ``B``, scalar or ``(E,)``.
    """

    a: Float[Array, "*e"] | float = 1.0
    b: Float[Array, "*e"] | float = 1.0
    param_names: ClassVar[tuple[str, ...]] = ("a", "b")

    def phi(self, s):
        """``φ(s) = log cosh s``."""
        return _log_cosh(s)

    def phi_prime(self, s):
        """``φ'(s) = tanh s``."""
        return jnp.tanh(s)


class Sigmoid(AbstractAffineInteraction):
    """``F(s) = A s + B (softplus(s) − log 2)`` (shifted so that ``F(0) = 0``; the shift
    is a constant per edge and changes no flow).

    Arguments:
        a: ``A``, scalar or ``(E,)``.
        b: ``B``, scalar or ``(E,)``.
    """

    a: Float[Array, "*e"] | float = 1.0
    b: Float[Array, "*e"] | float = 1.0
    param_names: ClassVar[tuple[str, ...]] = ("a", "b")

    def phi(self, s):
        """``φ(s) = softplus(s) − log 2``."""
        return jax.nn.softplus(s) - jnp.log(2.0).astype(jnp.result_type(s))

    def phi_prime(self, s):
        """``φ'(s) = sigmoid s``."""
        return jax.nn.sigmoid(s)


class MLP(AbstractInteraction):
    """``F(s) = w · f_θ(s)``: a learned scalar potential ``f_θ`` (an MLP ``R → R`` shared by
    every edge) times a per-edge weight ``w``.

    Arguments:
        width, depth: size of the MLP (``tanh`` hidden activations).
        w: scalar or ``(E,)`` per-edge weight.
        key: initialisation key (keyword only).
    """

    mlp: eqx.nn.MLP
    w: Float[Array, "*e"] | float = 1.0
    param_names: ClassVar[tuple[str, ...]] = ("w",)

    def __init__(self, *, width: int = 16, depth: int = 2, w=1.0, key: PRNGKeyArray):
        self.mlp = eqx.nn.MLP("scalar", "scalar", width, depth, activation=jnp.tanh, key=key)
        self.w = w

    def __call__(self, s):
        f = jax.vmap(self.mlp)(s.reshape(-1)).reshape(s.shape)
        return self.w * f

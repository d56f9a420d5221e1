"""Energy attention over a ``(tokens, features)`` threshold layer (the Energy Transformer)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import AbstractSynapse, _float_array, _layer_name

__all__ = ["Attention"]


class Attention(AbstractSynapse):
    """The energy attention of the Energy Transformer (Hoover et al., NeurIPS 2023) over a
    threshold layer of shape ``(N, F)`` (``N`` tokens of ``F`` features):

    ``E = −(1/β) Σ_h Σ_C log Σ_{B≠C} exp(β K_{hB} · Q_{hC})``,
    ``K_{hB} = g_B W^K_h``, ``Q_{hC} = g_C W^Q_h``,

    summed over the heads ``h`` and the query tokens ``C``; the keys ``B`` run over the
    other tokens. With the attention weights ``p^h_{CB} = exp(β K_{hB}·Q_{hC}) /
    Σ_{B'≠C} exp(β K_{hB'}·Q_{hC})`` (zero for ``B = C``), its gradient
    ``−∂E/∂g_A = Σ_h (W^Q_h Σ_B p^h_{AB} K_{hB} + W^K_h Σ_C p^h_{CA} Q_{hC})`` is the
    attention update of token ``A`` as a query and as a key. The layer's Lagrangian spans the whole layer (a
    :class:`~hkjax.lagrangians.LayerNorm` normalises over all tokens and features together).

    Arguments:
        layer: the threshold layer, of shape ``(N, F)`` with ``N ≥ 2``.
        wq: the queries' weights ``W^Q``, ``(heads, F, head_dim)``.
        wk: the keys' weights ``W^K``, of the same shape.
        beta: inverse temperature ``β > 0`` (the Energy Transformer takes ``1/√head_dim``).

    Raises:
        ValueError: ``wq`` not 3-d, ``wk`` of another shape, a non-positive ``beta``,
            non-finite values; when bound (:meth:`check`): a layer that is not
            ``(N, F)`` with ``N ≥ 2`` and the weights' ``F``.
        TypeError: non-floating-point weights; an oscillator layer bound.
    """

    layer: str = eqx.field(static=True)
    wq: Float[Array, "heads features head_dim"]
    wk: Float[Array, "heads features head_dim"]
    beta: Float[Array, ""]

    def __init__(self, layer: str, wq, wk, *, beta):
        self.layer = _layer_name(layer)
        q = jnp.asarray(wq)
        if q.ndim != 3:
            raise ValueError(f"Attention({layer!r}): wq has shape {q.shape}; pass a 3-d (heads, features, head_dim) array")
        self.wq = _float_array(q, q.shape, "wq")
        k = jnp.asarray(wk)
        if k.shape != q.shape:
            raise ValueError(f"Attention({layer!r}): wk has shape {k.shape}; it must have the shape of wq, {q.shape}")
        self.wk = _float_array(k, k.shape, "wk")
        b = jnp.asarray(beta)
        if b.ndim != 0:
            raise ValueError(f"Attention({layer!r}): beta has shape {b.shape}; pass a scalar")
        if not isinstance(b, jax.core.Tracer) and not np.asarray(b) > 0:
            raise ValueError(f"Attention({layer!r}): beta={float(b)} must be positive")
        self.beta = b

    @property
    def layers(self):
        return (self.layer,)

    def scores(self, g: Float[Array, "n f"]) -> Float[Array, "heads n n"]:
        """``β K_{hB} · Q_{hC}`` as ``(heads, C, B)``, with ``−∞`` where ``B = C``.

        Arguments:
            g: the ``(N, F)`` activations.

        Returns:
            The masked scores, one ``(N, N)`` matrix per head (rows: queries).
        """
        q = jnp.einsum("nf,hfd->hnd", g, self.wq.astype(g.dtype))
        k = jnp.einsum("nf,hfd->hnd", g, self.wk.astype(g.dtype))
        s = self.beta.astype(g.dtype) * jnp.einsum("hcd,hbd->hcb", q, k)
        diagonal = jnp.eye(g.shape[0], dtype=bool)[None]
        return jnp.where(diagonal, -jnp.inf, s)

    def energy(self, g):
        return -jnp.sum(jax.nn.logsumexp(self.scores(g), axis=-1)) / self.beta.astype(g.dtype)

    def requirements(self):
        return (("threshold", None),)

    def check(self, layers, where):
        """Raise unless the layer is a threshold layer of shape ``(N, F)`` with ``N ≥ 2`` and
        ``F`` the weights' features.

        Arguments:
            layers: the bound layer, a one-element tuple.
            where: how to name this synapse in an error.

        Raises:
            TypeError: an oscillator layer.
            ValueError: a layer that is not 2-d, has one token, or another number of features.
        """
        super().check(layers, where)
        shape = layers[0].shape
        f = self.wq.shape[1]
        if len(shape) != 2 or shape[1] != f:
            raise ValueError(
                f"{where}: layer {self.layer!r} has shape {shape}; the weights of shape {self.wq.shape} "
                f"(heads, features, head_dim) attend over a (tokens, {f}) layer")
        if shape[0] < 2:
            raise ValueError(
                f"{where}: layer {self.layer!r} has shape {shape}: one token has no other token to attend "
                f"to; pass a layer of shape (tokens ≥ 2, {f})")

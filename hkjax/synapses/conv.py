"""Convolutional synapses: between image-shaped threshold layers, and within an image-shaped
oscillator layer.

Images are channels last, ``(H, W, C)``; kernels are ``(C_out, C_in, kh, kw)``. The
convolution is :func:`jax.lax.conv_general_dilated` (a cross-correlation, no kernel flip)
with dimension numbers ``("NHWC", "OIHW", "NHWC")``:

``conv(a, K)[y, x, o] = Σ_{i, p, q} K[o, i, p, q] · a[s_h y + p − t, s_w x + q − l, i]``,

where ``(s_h, s_w)`` are the strides, ``t`` and ``l`` the padding above and to the left,
and ``a`` is zero outside the image.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import AbstractSynapse, _float_array, _layer_name

__all__ = ["Conv", "ConvKuramoto", "conv_output_shape"]

_DIMENSIONS = ("NHWC", "OIHW", "NHWC")


def _kernel(kernel, what: str) -> Array:
    k = jnp.asarray(kernel)
    if k.ndim != 4:
        raise ValueError(f"{what}: kernel has shape {k.shape}; pass a 4-d (C_out, C_in, kh, kw) array")
    return _float_array(k, k.shape, "kernel")


def _strides(strides) -> tuple[int, int]:
    values = (strides, strides) if isinstance(strides, (int, np.integer)) else strides
    try:
        values = tuple(values)
        s = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        values = s = ()
    if len(s) != 2 or any(v < 1 for v in s) or s != values:
        raise ValueError(f"strides={strides!r}: pass two positive integers (vertical, horizontal), e.g. (1, 1), or one for both")
    return s


def _padding(padding, allowed: tuple[str, ...], explicit: bool):
    if isinstance(padding, str):
        if padding.upper() not in allowed:
            raise ValueError(f"padding={padding!r}: choose one of {allowed}"
                             + (" or ((top, bottom), (left, right))" if explicit else ""))
        return padding.upper()
    if explicit:
        try:
            pads = tuple((int(lo), int(hi)) for lo, hi in padding)
        except (TypeError, ValueError):
            pads = ()
        if len(pads) == 2 and all(v >= 0 for pair in pads for v in pair):
            return pads
    raise ValueError(f"padding={padding!r}: choose one of {allowed}"
                     + (" or ((top, bottom), (left, right)) with non-negative integers" if explicit else ""))


def conv_output_shape(input_shape, kernel_shape, strides=(1, 1), padding="SAME") -> tuple[int, int, int]:
    """The shape of ``conv(a, K)`` for an image ``a`` of ``input_shape``.

    Per spatial axis, with the padding ``(t, b)`` that ``padding`` stands for (``"VALID"``:
    none; ``"SAME"``: ``t + b = max((⌈n/s⌉ − 1) s + k − n, 0)``, ``t = ⌊(t + b)/2⌋``, as
    :func:`jax.lax.padtype_to_pads`), the output has ``⌊(n + t + b − k)/s⌋ + 1`` positions along it.

    Arguments:
        input_shape: ``(H, W, C_in)``.
        kernel_shape: ``(C_out, C_in, kh, kw)``.
        strides: ``(s_h, s_w)``.
        padding: ``"SAME"``, ``"VALID"`` or ``((t, b), (l, r))``.

    Returns:
        ``(H_out, W_out, C_out)``; a spatial size below 1 (a kernel larger than the padded
        image) is returned as it comes out of the formula, for the caller to reject.
    """
    h, w = int(input_shape[0]), int(input_shape[1])
    kh, kw = int(kernel_shape[2]), int(kernel_shape[3])
    pads = (jax.lax.padtype_to_pads((h, w), (kh, kw), tuple(strides), padding)
            if isinstance(padding, str) else padding)
    out = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip((h, w), pads, (kh, kw), strides)]
    return (out[0], out[1], int(kernel_shape[0]))


def _image_layer(where: str, name: str, layer, what: str) -> None:
    if len(layer.shape) != 3:
        raise ValueError(
            f"{where} binds layer {name!r} of shape {layer.shape}; {what} needs an image layer of "
            f"shape (H, W, C) (channels last)")


class Conv(AbstractSynapse):
    """A convolutional synapse between two image-shaped threshold layers, channels last:

    ``E = −⟨g_post, conv(g_pre, K)⟩ = −Σ_{y, x, o} g_post[y, x, o] · conv(g_pre, K)[y, x, o]``

    (``conv`` as in :mod:`hkjax.synapses.conv`). ``−∂E/∂g_post = conv(g_pre, K)`` is the
    convolution of a feed-forward layer and ``−∂E/∂g_pre`` its transpose, so this equals a
    :class:`~hkjax.synapses.Dense` synapse whose ``(size of pre, size of post)`` weight
    matrix is the convolution's Toeplitz matrix,
    ``T[(y', x', i), (y, x, o)] = K[o, i, y' − s_h y + t, x' − s_w x + l]`` (zero where the
    offset falls outside the kernel). It is HAMUX's ``ConvSynapse`` energy
    (``−Σ xhat2 · conv_general_dilated(xhat1, W, strides, padding, ("NHWC", "OIHW",
    "NHWC"))`` with ``W`` of shape ``(C_out, C_in, kh, kw)``), the same numbers for the same
    ``K``, strides and padding.

    Within one layer (``pre == post``; the convolution must then keep the shape: strides 1,
    ``C_out = C_in``) the energy is ``E = −½ ⟨g, conv(g, K)⟩``, as for ``Dense``.

    Arguments:
        pre: the input layer ``(H, W, C_in)``.
        post: the output layer, of the convolution's output shape
            (:func:`conv_output_shape`).
        kernel: ``K``, ``(C_out, C_in, kh, kw)``.
        strides: ``(s_h, s_w)``, positive integers (one integer: the same for both axes).
        padding: ``"SAME"`` (output ``⌈H/s_h⌉ × ⌈W/s_w⌉``, padding split as
            :func:`jax.lax.padtype_to_pads`), ``"VALID"`` (no padding) or explicit
            ``((t, b), (l, r))``.

    Raises:
        ValueError: a kernel that is not 4-d, bad strides or padding, non-finite values;
            when bound (:meth:`check`): layers that are not 3-d, channels that do not match
            the kernel, or a ``post`` layer whose shape is not the convolution's output shape.
        TypeError: a non-floating-point kernel; an oscillator layer bound.
    """

    pre: str = eqx.field(static=True)
    post: str = eqx.field(static=True)
    kernel: Float[Array, "c_out c_in kh kw"]
    strides: tuple[int, int] = eqx.field(static=True)
    padding: str | tuple[tuple[int, int], tuple[int, int]] = eqx.field(static=True)

    def __init__(self, pre: str, post: str, kernel, *, strides=(1, 1), padding="SAME"):
        self.pre, self.post = _layer_name(pre, "pre"), _layer_name(post, "post")
        self.kernel = _kernel(kernel, f"Conv({pre!r}, {post!r})")
        self.strides = _strides(strides)
        self.padding = _padding(padding, ("SAME", "VALID"), explicit=True)

    @property
    def layers(self):
        return (self.pre,) if self.pre == self.post else (self.pre, self.post)

    def forward(self, g_pre: Float[Array, "h w c_in"]) -> Float[Array, "h2 w2 c_out"]:
        """``conv(g_pre, K)``, the input this synapse gives the ``post`` layer
        (``−∂E/∂g_post``).

        Arguments:
            g_pre: ``(H, W, C_in)`` activations of ``pre``.

        Returns:
            The ``(H_out, W_out, C_out)`` convolution.
        """
        out = jax.lax.conv_general_dilated(
            g_pre[None], self.kernel.astype(g_pre.dtype), window_strides=self.strides,
            padding=self.padding, dimension_numbers=_DIMENSIONS)
        return out[0]

    def energy(self, *g):
        if len(g) == 1:
            return -0.5 * jnp.sum(g[0] * self.forward(g[0]))
        return -jnp.sum(g[1] * self.forward(g[0]))

    def output_shape(self, input_shape) -> tuple[int, int, int]:
        """The shape of ``conv(g_pre, K)`` for a ``pre`` layer of ``input_shape``
        (:func:`conv_output_shape`)."""
        return conv_output_shape(input_shape, self.kernel.shape, self.strides, self.padding)

    def requirements(self):
        return tuple(("threshold", None) for _ in self.layers)

    def check(self, layers, where):
        """Raise unless ``pre`` and ``post`` are threshold layers of shapes ``(H, W, C_in)``
        and ``conv_output_shape((H, W, C_in), K.shape, strides, padding)``.

        Arguments:
            layers: the bound layers, in the order of :attr:`layers`.
            where: how to name this synapse in an error.

        Raises:
            TypeError: an oscillator layer.
            ValueError: a layer that is not 3-d, ``C_in`` not the kernel's, or a ``post``
                shape other than the convolution's output shape (the error names both).
        """
        super().check(layers, where)
        pre = layers[0]
        post = layers[-1]
        for name, layer in zip(self.layers, layers):
            _image_layer(where, name, layer, "Conv")
        c_out, c_in = self.kernel.shape[:2]
        if pre.shape[2] != c_in:
            raise ValueError(
                f"{where}: layer {self.pre!r} has shape {pre.shape} ({pre.shape[2]} channels); the kernel of "
                f"shape {self.kernel.shape} (C_out, C_in, kh, kw) expects C_in = {c_in}, i.e. shape "
                f"{pre.shape[:2] + (c_in,)}")
        expected = self.output_shape(pre.shape)
        if min(expected[:2]) < 1:
            raise ValueError(
                f"{where}: the kernel of shape {self.kernel.shape} is larger than layer {self.pre!r} of shape "
                f"{pre.shape} with padding {self.padding!r}; the convolution would be empty")
        if post.shape != expected:
            if self.pre == self.post:
                raise ValueError(
                    f"{where}: within layer {self.pre!r} the convolution must keep the shape {pre.shape}, but "
                    f"the kernel of shape {self.kernel.shape} with strides {self.strides} and padding "
                    f"{self.padding!r} gives {expected}")
            raise ValueError(
                f"{where}: layer {self.post!r} has shape {post.shape}; the convolution of layer {self.pre!r} "
                f"(shape {pre.shape}) with the kernel of shape {self.kernel.shape}, strides {self.strides} and "
                f"padding {self.padding!r} has shape {expected}, so {self.post!r} must have shape {expected}")


def _oscillator_conv(sigma, kernel, padding: str):
    """``(J ⋆ σ)``: the convolution of every component of the oscillators ``(H, W, C, D)``
    with ``J`` (``(C, C, kh, kw)``, odd ``kh, kw``), zero (``"SAME"``) or periodic
    (``"CIRCULAR"``) beyond the border."""
    x = jnp.moveaxis(sigma, -1, 0)  # the D components as the batch of images
    kh, kw = kernel.shape[2:]
    if padding == "CIRCULAR":
        x = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="wrap")
        pads = "VALID"
    else:
        pads = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    y = jax.lax.conv_general_dilated(x, kernel.astype(sigma.dtype), (1, 1), pads, dimension_numbers=_DIMENSIONS)
    return jnp.moveaxis(y, 0, -1)


class ConvKuramoto(AbstractSynapse):
    """Convolutional Kuramoto coupling within an oscillator layer of shape ``(H, W, C)``
    (state ``(H, W, C, D)``), the convolutional connectivity of AKOrN (Miyato et al., ICLR
    2025):

    ``E = −½ Σ_a σ_a · (J_s ⋆ σ)_a``,
    ``(J ⋆ σ)[y, x, o] = Σ_{i, p, q} J[o, i, p, q] · σ[y + p − r_h, x + q − r_w, i]``,

    a sum over the oscillators ``a = (y, x, o)`` of their dot products with the kernel's
    neighbourhood, ``r_h = (kh − 1)/2``, ``r_w = (kw − 1)/2``. ``J`` couples channel ``i``
    at offset ``(p − r_h, q − r_w)`` to channel ``o`` with one scalar per channel pair and
    offset (the coupling of two oscillators is ``J · I_D``). It is symmetrised wherever it is
    used, ``J_s[o, i, p, q] = ½ (J[o, i, p, q] + J[i, o, kh−1−p, kw−1−q])``, so that the
    coupling ``A_ab`` of oscillator ``b`` into ``a`` is symmetric (``A = Aᵀ``), ``J_s ⋆`` is
    a self-adjoint operator, ``∂E/∂σ = −J_s ⋆ σ`` and the energy is a Lyapunov function of
    the flow ``τ σ̇ = −P_σ ∂E/∂σ = P_σ (J_s ⋆ σ)``. (The energy itself is the same for
    ``J`` and ``J_s``: a quadratic form sees only its symmetric part.)

    As a graph Kuramoto synapse (:class:`~hkjax.synapses.Kuramoto` with a
    :class:`~hkjax.interactions.Linear` interaction) on the pairs ``a < b`` coupled by the
    kernel, ``E = Σ_{a<b} (−A_ab) σ_a·σ_b − ½ Σ_a A_aa``: the self-coupling of the kernel's
    centre taps adds the constant ``−½ H W Σ_c J[c, c, r_h, r_w]`` (with ``"SAME"``
    padding; periodic images smaller than the kernel add the taps that wrap onto the
    oscillator itself), and leaves the flow unchanged (its gradient is radial).

    What matches AKOrN's ``KLayer`` with ``J="conv"``: its state ``[B, C·D, H, W]`` (channel
    ``c·D + d`` is component ``d`` of oscillator channel ``c``) is this layer's state
    ``(H, W, C, D)`` per sample; its ``nn.Conv2d(C·D, C·D, k, padding=k//2)`` (a
    cross-correlation with zero padding, as here with ``"SAME"``) is ``J ⋆`` when its
    weight is ``J[o, i] ⊗ I_D`` and its bias is zero; its update
    ``x ← normalise(x + γ (Ω x + P_x(J x + c)))`` is a projected Euler step of this flow
    with ``γ = 1/τ``, with its (normalised) conditioning ``c`` as a
    :class:`~hkjax.synapses.Stimulus` and ``Ω`` as the layer's natural frequency. The
    energy AKOrN reports, ``−Σ x·(J x + c)``, counts every pair twice: for a symmetric
    ``J`` it is ``2 E − Σ c·x``.
    AKOrN's kernel is general (a ``D × D`` block per channel pair and offset, not
    symmetrised, with a bias), so its updates need not decrease an energy; this synapse keeps
    the scalar, symmetrised coupling that does.

    Arguments:
        layer: the oscillator layer, of shape ``(H, W, C)``.
        kernel: ``J``, ``(C, C, kh, kw)`` with odd ``kh`` and ``kw``.
        padding: ``"SAME"`` (no coupling across the border: zeros beyond it) or
            ``"CIRCULAR"`` (periodic: the image is a torus).

    Raises:
        ValueError: a kernel that is not ``(C, C, kh, kw)`` with odd ``kh, kw``, an unknown
            padding, non-finite values; when bound (:meth:`check`): a layer that is not
            ``(H, W, C)`` with the kernel's ``C``.
        TypeError: a non-floating-point kernel; a threshold layer bound.
    """

    layer: str = eqx.field(static=True)
    kernel: Float[Array, "c c kh kw"]
    padding: str = eqx.field(static=True)

    def __init__(self, layer: str, kernel, *, padding="SAME"):
        self.layer = _layer_name(layer)
        k = _kernel(kernel, f"ConvKuramoto({layer!r})")
        if k.shape[0] != k.shape[1] or k.shape[2] % 2 == 0 or k.shape[3] % 2 == 0:
            raise ValueError(
                f"ConvKuramoto({layer!r}): kernel has shape {k.shape}; pass (C, C, kh, kw) with the same "
                f"number of channels in and out and odd kh, kw (a centred neighbourhood)")
        self.kernel = k
        self.padding = _padding(padding, ("SAME", "CIRCULAR"), explicit=False)

    @property
    def layers(self):
        return (self.layer,)

    def symmetric_kernel(self) -> Float[Array, "c c kh kw"]:
        """``J_s[o, i, p, q] = ½ (J[o, i, p, q] + J[i, o, kh−1−p, kw−1−q])``."""
        k = self.kernel
        return 0.5 * (k + jnp.flip(jnp.swapaxes(k, 0, 1), axis=(2, 3)))

    def field(self, sigma: Float[Array, "h w c d"]) -> Float[Array, "h w c d"]:
        """``J_s ⋆ σ``, the local field every oscillator feels (``−∂E/∂σ``).

        Arguments:
            sigma: the oscillators, ``(H, W, C, D)``.

        Returns:
            An array of the same shape.
        """
        return _oscillator_conv(sigma, self.symmetric_kernel(), self.padding)

    def energy(self, sigma):
        """``E = −½ Σ_a σ_a · (J_s ⋆ σ)_a``.

        Arguments:
            sigma: the oscillators, ``(H, W, C, D)``.

        Returns:
            The scalar energy.
        """
        return -0.5 * jnp.sum(sigma * self.field(sigma))

    def gradient(self, sigma):
        """``∂E/∂σ = −J_s ⋆ σ`` in closed form (one convolution; ``J_s ⋆`` is self-adjoint).

        Arguments:
            sigma: the oscillators, ``(H, W, C, D)``.

        Returns:
            A one-element tuple: the Euclidean gradient, of the shape of ``sigma``.
        """
        return (-self.field(sigma),)

    def requirements(self):
        return (("oscillator", None),)

    def check(self, layers, where):
        """Raise unless the layer is an oscillator layer of shape ``(H, W, C)`` with the
        kernel's ``C``.

        Arguments:
            layers: the bound layer, a one-element tuple.
            where: how to name this synapse in an error.

        Raises:
            TypeError: a threshold layer.
            ValueError: a layer that is not 3-d or has another number of channels.
        """
        super().check(layers, where)
        layer = layers[0]
        _image_layer(where, self.layer, layer, "ConvKuramoto")
        c = self.kernel.shape[0]
        if layer.shape[2] != c:
            raise ValueError(
                f"{where}: layer {self.layer!r} has shape {layer.shape} ({layer.shape[2]} channels); the "
                f"kernel of shape {self.kernel.shape} (C, C, kh, kw) couples C = {c} channels, i.e. shape "
                f"{layer.shape[:2] + (c,)}")

"""Tasks of arXiv 2505.03648: models, readouts and losses for classification, addition,
memory editing and pattern retrieval.

A *task* is a small Equinox module holding only static configuration. It knows how to turn
one example (a dict of arrays) into an initial state (a dict by layer name), how to read a
prediction off the relaxed state, and the loss. :func:`hkjax.train.fit` needs these methods:

* ``sample(arrays, key, batch_size) -> batch``: a random training batch (dict of arrays
  with a leading batch axis), drawn only from ``key`` (so a run can be resumed exactly),
* ``eval_batch(arrays, key) -> batch``: the full, deterministic evaluation set,
* ``example_loss(network, example, key) -> (loss, (prediction, target))``: one example,
* ``eval_loss(network, example, key)``: the same for evaluation (``example_loss``, or a
  test-time-augmented version of it),
* ``n_classes``,

and ``prepare(arrays) -> arrays`` (identity except for :class:`MemoryEditing`, whose cue
pools are computed there once, so that ``sample`` traces with the data as an argument).

**Unit layout** (the same for every model, so trained weights transfer between them): with
``P`` pixels, ``H ≥ 1`` hidden and ``C`` class units the network has ``n = P + H + C``
units. Threshold units start at ``data.threshold_state`` (pixels ⊕ zeros); oscillators start
at ``data.oscillator_state`` with ``H − 1`` hidden oscillators, so that row ``P`` is the
reference oscillator ``e₁`` (paired with the first hidden threshold unit) and the last ``C``
rows are the class oscillators.

**Readouts** (paper, Sec. 4; :class:`Readout`, ``task.readout``): threshold models predict
with the final class units ``y = x[-C:]`` (the hierarchical model: its layer
``"classes"``); the Kuramoto model with ``y_c = σ_class,c · σ_ref``. Loss
``Σ_c (y_c − (2·onehot − 1)_c)²``, prediction ``argmax y``.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from . import data as _data
from . import graphs as _graphs
from . import interactions as _interactions
from . import lagrangians as _lagrangians
from .network import OSCILLATORS, THRESHOLD, Network, hierarchical_hopfield, hopfield, hopfield_kuramoto, kuramoto
from .relax import relax, relax_batch
from .synapses import Coupling, Hopfield, LowRank, MultiplicativeCoupling

__all__ = [
    "MODELS",
    "EDIT_MODELS",
    "EDITS",
    "SOLVERS",
    "RelaxConfig",
    "build_network",
    "Readout",
    "squared_loss",
    "random_shift",
    "all_shifts",
    "random_warp",
    "warp_image",
    "edit_map",
    "Classification",
    "Addition",
    "MemoryEditing",
    "freeze_hopfield",
    "uncouple",
    "hopfield_parameters",
    "hebbian_weights",
    "retrieval",
    "PIXELS",
    "HIDDEN",
    "CLASSES",
]

MODELS = ("hopfield", "kuramoto", "hopfield_kuramoto", "hierarchical", "hopfield_lora")
#: The layers of the ``"hierarchical"`` model: pixels → hidden → classes.
PIXELS, HIDDEN, CLASSES = "pixels", "hidden", "classes"
EDITS = ("swap", "conflate")
#: The models that learn a memory edit around a frozen Hopfield classifier: oscillators (the
#: paper) and, as the baseline, a static low-rank synapse.
EDIT_MODELS = ("hopfield_kuramoto", "hopfield_lora")
#: The models with threshold units only.
_NO_OSCILLATORS = ("hopfield", "hopfield_lora")
#: The Runge–Kutta methods :class:`RelaxConfig` relaxes with, by name (``--solver-method``).
SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "bosh3": diffrax.Bosh3, "heun": diffrax.Heun,
           "euler": diffrax.Euler}


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------


def _graph(n: int, k: int, p: float, key) -> np.ndarray | str:
    """Small-world graph of degree ``k`` (``"all"`` when ``k >= n - 1``)."""
    if k >= n - 1:
        return "all"
    k = max(2, k - (k % 2))
    return _graphs.small_world(n, k, p, key=key)


def build_network(
    model: str,
    *,
    n: int,
    dim: int = 5,
    k: int = 16,
    rewire: float = 0.1,
    coupling: str = "full",
    kappa_h: float = 0.1,
    kappa_k: float = 1.0,
    init_scale: float = 1e-2,
    hopfield_weights=None,
    hopfield_bias=None,
    kuramoto_graph: bool = True,
    formulation: str = "auto",
    sizes: tuple[int, int, int] | None = None,
    key: PRNGKeyArray,
) -> Network:
    """A network of ``n`` units for the tasks, with the paper's ingredients.

    ReLU Lagrangian, ReLU interaction ``F(s) = a s + b relu(s)²/2`` with per-edge parameters,
    small-world graphs (Watts–Strogatz, degree ``k``, rewiring probability ``rewire``; a
    complete graph when ``k ≥ n − 1``), parameters drawn from ``N(0, init_scale²)``.

    Arguments:
        model: ``"hopfield"`` (dense weights, ``κ = kappa_h``), ``"kuramoto"`` (oscillators
            in dimension ``dim`` on a small-world graph) or ``"hopfield_kuramoto"`` (both,
            coupled with ``coupling`` on a second small-world graph), or ``"hierarchical"``:
            layers ``"pixels"`` → ``"hidden"`` → ``"classes"`` of ``sizes`` (ReLU, ReLU and a
            softmax over the classes), dense synapses between consecutive layers
            (:func:`hkjax.hierarchical_hopfield`; weights ``N(0, init_scale²)``), or
            ``"hopfield_lora"``: the Hopfield network plus a static low-rank synapse of rank
            ``dim`` on its units, ``E_LoRA = −κ_H gᵀ U Vᵀ g`` (:class:`~hkjax.synapses.LowRank`;
            the weights become ``W + U Vᵀ + V Uᵀ``; ``U``, ``V`` drawn from
            ``N(0, init_scale²)``): the baseline of memory editing that learns the edit with
            a static correction of the same rank instead of oscillators.
        hopfield_weights, hopfield_bias: explicit Hopfield parameters (memory editing).
        n: number of units (threshold units and/or oscillators).
        dim, k, rewire, coupling, kappa_h, kappa_k, init_scale: oscillator dimension, graph
            degree and rewiring, Hopfield–Kuramoto coupling form (see ``COUPLINGS``),
            energy scales ``κ_H`` and ``κ_K``, and the spread of the initial parameters.
        kuramoto_graph: whether the Hopfield–Kuramoto model has a Kuramoto term at all.
        formulation: how the graph terms are evaluated (:data:`hkjax.synapses.FORMULATIONS`).
        sizes: ``(pixels, hidden, classes)`` of the ``"hierarchical"`` model (``n`` their sum).
        key: PRNG key (keyword only).

    Raises:
        ValueError: an unknown ``model``, sizes the graphs cannot hold, or a hierarchical
            model without ``sizes`` summing to ``n``.
    """
    if model not in MODELS:
        raise ValueError(f"model={model!r} is unknown; choose one of {MODELS}")
    kg1, kg2, kp = jax.random.split(key, 3)
    relu_l = _lagrangians.ReLU()
    if model == "hierarchical":
        if sizes is None or sum(sizes) != n:
            raise ValueError(f"model='hierarchical' needs sizes=(pixels, hidden, classes) summing to n={n}, got {sizes!r}")
        return hierarchical_hopfield(sizes, [relu_l, relu_l, _lagrangians.Softmax()], names=(PIXELS, HIDDEN, CLASSES),
                                     init_scale=init_scale, key=kp)
    if model == "hopfield":
        return hopfield(
            n, lagrangian=relu_l, weights=hopfield_weights, bias=hopfield_bias,
            kappa=kappa_h, init_scale=init_scale, key=kp,
        )
    if model == "hopfield_lora":
        net = hopfield(n, lagrangian=relu_l, weights=hopfield_weights, bias=hopfield_bias,
                       kappa=kappa_h, init_scale=init_scale, key=kp)
        u, v = init_scale * jax.random.normal(kg1, (2, n, dim))
        return Network(net.layers, [*net.synapses, LowRank(THRESHOLD, u, kappa=kappa_h, post=THRESHOLD, post_factors=v)])
    if model == "kuramoto":
        return kuramoto(
            n, dim, edges=_graph(n, k, rewire, kg1), interaction=_interactions.ReLU(),
            kappa=kappa_k, init_scale=init_scale, formulation=formulation, key=kp,
        )
    return hopfield_kuramoto(
        n, dim,
        edges_k=_graph(n, k, rewire, kg1) if kuramoto_graph else None,
        edges_hk=_graph(n, k, rewire, kg2),
        coupling=coupling, lagrangian=relu_l, interaction=_interactions.ReLU(),
        kappa_h=kappa_h, kappa_k=kappa_k, hopfield_weights=hopfield_weights,
        hopfield_bias=hopfield_bias, init_scale=init_scale, formulation=formulation, key=kp,
    )


def hopfield_parameters(network: Network) -> tuple[Array, Array]:
    """``(W, b)`` of the (first) Hopfield synapse of ``network``, wherever it sits (also
    inside a multiplicative coupling).

    Raises:
        ValueError: the network has no Hopfield synapse.
    """
    found = [
        s for s in jax.tree_util.tree_leaves(network, is_leaf=lambda x: isinstance(x, Hopfield))
        if isinstance(s, Hopfield)
    ]
    if not found:
        raise ValueError("the network has no Hopfield synapse")
    return found[0].weights, found[0].bias


def freeze_hopfield(network: Network):
    """A ``trainable`` filter for :func:`hkjax.train.fit`: every floating-point array of
    ``network`` except the Hopfield synapse's weights and bias (also when it is wrapped in a
    :class:`~hkjax.synapses.MultiplicativeCoupling`)."""

    def spec(x):
        if isinstance(x, Hopfield):
            return jax.tree_util.tree_map(lambda _: False, x)
        return eqx.is_inexact_array(x)

    return jax.tree_util.tree_map(spec, network, is_leaf=lambda x: isinstance(x, Hopfield))


def uncouple(network: Network) -> Network:
    """``network`` with its Hopfield–Kuramoto coupling switched off: the weights of every
    :class:`~hkjax.synapses.Coupling` (full or additive) and the strength ``α`` of a
    :class:`~hkjax.synapses.MultiplicativeCoupling` set to zero, everything else as
    it is. The threshold units then relax as in the Hopfield network alone, whatever the
    oscillators do, so the accuracy of the uncoupled network next to the coupled one shows
    what the oscillators contribute to a trained Hopfield–Kuramoto classifier."""

    def off(x):
        if isinstance(x, Coupling):
            return eqx.tree_at(lambda m: m.weights, x, jnp.zeros_like(x.weights))
        if isinstance(x, MultiplicativeCoupling):
            return eqx.tree_at(lambda m: m.strength, x, jnp.zeros_like(x.strength))
        return x

    coupling = (Coupling, MultiplicativeCoupling)
    return jax.tree_util.tree_map(off, network, is_leaf=lambda x: isinstance(x, coupling))


# ---------------------------------------------------------------------------------------
# Readouts and loss
# ---------------------------------------------------------------------------------------


def _state(x, sigma) -> dict:
    """A preset network's state: threshold units ``x`` and oscillators ``sigma`` (``None``
    where the model has none)."""
    return {name: v for name, v in ((THRESHOLD, x), (OSCILLATORS, sigma)) if v is not None}


class Readout(eqx.Module):
    """The class scores of a relaxed state, read from a named layer.

    The scores are the units ``[start, stop)`` of layer ``layer`` (flattened; ``units=None``:
    the whole layer), or, for an oscillator layer with a ``reference`` row, the alignment
    ``σ_k·σ_ref`` of each of those oscillators with the oscillator in row ``reference``.

    Arguments:
        layer: the layer to read (e.g. ``"classes"``).
        units: ``(start, stop)`` of the flattened layer, Python slice bounds (``(-10, None)``:
            its last ten units), or ``None`` for all of it.
        reference: an oscillator readout's reference row (``None``: read the values).
    """

    layer: str = eqx.field(static=True)
    units: tuple[int | None, int | None] | None = eqx.field(static=True, default=None)
    reference: int | None = eqx.field(static=True, default=None)

    def __call__(self, state: dict) -> Float[Array, " c"]:
        """The scores of ``state`` (a single sample's ``{layer: array}``)."""
        v = state[self.layer]
        if self.reference is None:
            v = v.reshape(-1)
            return v if self.units is None else v[slice(*self.units)]
        rows = v.reshape(-1, v.shape[-1])
        picked = rows if self.units is None else rows[slice(*self.units)]
        return picked @ rows[self.reference]


def squared_loss(scores: Float[Array, " c"], label: Int[Array, ""], n_classes: int) -> Float[Array, ""]:
    """``Σ_c (y_c − (2·onehot(label) − 1)_c)²`` for the readout ``y = scores`` of
    ``n_classes`` classes; zero exactly at the ±1 target."""
    return jnp.sum((scores - _data.one_hot_targets(label, n_classes)) ** 2)


def edit_map(kind: str, classes, n_classes: int = 10) -> np.ndarray:
    """The label map of a memory edit, as an ``(n_classes,)`` integer array.

    * ``"swap"``: classes ``[c₀, …, c_{m−1}]`` are permuted cyclically, ``cᵢ → cᵢ₊₁``
      (for two classes a swap, ``0 ↔ 1``),
    * ``"conflate"``: every listed class maps to the first one (``[0, 1]``: ``1 → 0``).

    Raises:
        ValueError: unknown ``kind``, fewer than two classes, repeated or out-of-range ones.
    """
    if kind not in EDITS:
        raise ValueError(f"edit={kind!r} is unknown; choose one of {EDITS}")
    cl = [int(c) for c in classes]
    if len(cl) < 2 or len(set(cl)) != len(cl):
        raise ValueError(f"classes={cl}: an edit needs at least two distinct classes, e.g. 0,1")
    if any(not 0 <= c < n_classes for c in cl):
        raise ValueError(f"classes={cl}: every class must be in 0..{n_classes - 1}")
    m = np.arange(n_classes)
    for i, c in enumerate(cl):
        m[c] = cl[(i + 1) % len(cl)] if kind == "swap" else cl[0]
    return m


# ---------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------


class RelaxConfig(eqx.Module):
    """How every example is relaxed: up to ``t1`` with the Runge–Kutta method ``solver``;
    adaptive PID steps (``rtol``/``atol``, at most ``max_steps``) when ``steps == 0``, else
    ``steps`` constant steps. Gradients use Diffrax's recursive checkpoint adjoint.

    ``solver`` names the method (:data:`SOLVERS`): ``"tsit5"`` (the paper's, the default),
    ``"dopri5"``, ``"bosh3"``, ``"heun"`` or ``"euler"``. With constant steps a solve costs
    its steps times the method's stages (Tsit5 six, Bosh3 three, Heun two, Euler one). Where
    the flow is stiff, stability bounds every explicit method's step alike (``dt`` below
    about 2 to 3.5 over the fastest rate of the flow), whatever the tolerances: there Euler
    solves it for the fewest evaluations of the vector field (``benchmarks/edit_step.py``
    measures it on a trained memory edit). Euler has no error estimate, so it needs
    ``steps > 0``.

    ``project``: project the oscillators back onto their spheres after every step
    (``project=True`` of :func:`hkjax.relax`). ``None`` (default): only with Euler, whose
    every step moves each oscillator off its sphere by ``dt² |σ̇|²`` in squared norm, with
    no error control to keep that small.

    Raises:
        ValueError: an unknown ``solver``, or ``"euler"`` without ``steps``.
    """

    t1: float = eqx.field(static=True, default=1.0)
    max_steps: int = eqx.field(static=True, default=64)
    steps: int = eqx.field(static=True, default=0)
    rtol: float = eqx.field(static=True, default=1e-3)
    atol: float = eqx.field(static=True, default=1e-6)
    solver: str = eqx.field(static=True, default="tsit5")
    project: bool | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} is unknown; choose one of {', '.join(SOLVERS)}")
        if self.solver == "euler" and not self.steps > 0:
            raise ValueError("solver='euler' has no error estimate to choose adaptive steps by; give it "
                             "constant steps (steps=32; --solver-steps 32) or choose an adaptive solver (tsit5)")

    def __call__(self, network: Network, state0: dict, *, saveat=None):
        """Relax ``state0`` under ``network`` with this configuration.

        Arguments:
            network: the network.
            state0: the initial state of one example.
            saveat: as for :func:`hkjax.relax` (default: the final state only).

        Returns:
            A :class:`~hkjax.Solution`, solved with ``throw=False``: a failed solve (divergence,
            too many steps) returns non-finite values and ``succeeded = False`` instead of
            raising, so that one bad example does not abort a batch.
        """
        return relax(network, state0, saveat=saveat, **self._options())

    def batch(self, network: Network, states0: dict, *, saveat=None):
        """Relax a batch of states as one system with shared steps
        (:func:`hkjax.relax_batch`), with this configuration.

        Arguments:
            network: the network.
            states0: the initial states, every leaf with a leading batch axis.
            saveat: as for :func:`hkjax.relax` (default: the final state only).

        Returns:
            A :class:`~hkjax.Solution` with a leading batch axis, solved with ``throw=False``
            (a failure fails the whole batch).
        """
        return relax_batch(network, states0, saveat=saveat, **self._options())

    def _options(self) -> dict:
        project = self.solver == "euler" if self.project is None else self.project
        method = dict(solver=SOLVERS[self.solver](), project=project)
        if self.steps > 0:
            return dict(t1=self.t1, dt0=self.t1 / self.steps, stepsize_controller=diffrax.ConstantStepSize(),
                        max_steps=self.steps, throw=False, **method)
        return dict(t1=self.t1, rtol=self.rtol, atol=self.atol, max_steps=self.max_steps, throw=False, **method)


def _finite(y):
    # A solve that failed (diverged / ran out of steps) returns non-finite values; keep the
    # loss finite (and the gradient zero there) instead of poisoning the whole batch.
    return jnp.where(jnp.isfinite(y), y, 0.0)


def _pick(arrays: dict, idx) -> dict:
    return {"images": jnp.asarray(arrays["images"])[idx], "labels": jnp.asarray(arrays["labels"])[idx]}


def random_shift(images: Float[Array, "b p"], key: PRNGKeyArray, *, shape: tuple[int, int], max_shift: int):
    """Translate each (flattened) image by a random integer offset in
    ``[−max_shift, max_shift]²`` with zero fill (training augmentation).

    Arguments:
        images: ``(B, h·w)`` flattened images.
        key: PRNG key (one offset per image).
        shape: ``(h, w)``, the image shape.
        max_shift: the largest shift in pixels (``≤ 0``: ``images`` returned unchanged).
    """
    if max_shift <= 0:
        return images
    h, w = shape
    b = images.shape[0]
    padded = jnp.pad(images.reshape(b, h, w), ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    off = jax.random.randint(key, (b, 2), 0, 2 * max_shift + 1)

    def one(img, o):
        return jax.lax.dynamic_slice(img, (o[0], o[1]), (h, w)).reshape(h * w)

    return jax.vmap(one)(padded, off)


def warp_image(image: Float[Array, " p"], *, shape: tuple[int, int], degrees, zoom=1.0) -> Float[Array, " p"]:
    """Rotate a (flattened) image about its centre by ``degrees`` (counter-clockwise as the
    image is displayed, row 0 at the top) and scale it by ``zoom``, with bilinear
    interpolation and zero fill: output pixel ``p`` is the input at
    ``centre + R(−θ)(p − centre)/zoom``, so a quarter turn of a square image is exactly
    ``numpy.rot90`` and ``degrees = 0, zoom = 1`` the image itself.

    Arguments:
        image: the flattened ``(h·w,)`` image.
        shape: ``(h, w)``.
        degrees: the rotation angle in degrees (a scalar, may be traced).
        zoom: the scale factor (``> 1`` enlarges).
    """
    h, w = shape
    dt = image.dtype
    rr, cc = jnp.meshgrid(jnp.arange(h, dtype=dt), jnp.arange(w, dtype=dt), indexing="ij")
    dr, dc = rr - (h - 1) / 2, cc - (w - 1) / 2
    t = jnp.deg2rad(jnp.asarray(degrees, dt))
    cos, sin = jnp.cos(t) / zoom, jnp.sin(t) / zoom
    src = [cos * dr + sin * dc + (h - 1) / 2, -sin * dr + cos * dc + (w - 1) / 2]
    return jax.scipy.ndimage.map_coordinates(image.reshape(h, w), src, order=1, mode="constant", cval=0.0).reshape(h * w)


def check_warp(tilt: float, zoom: float) -> None:
    """Raise ``ValueError`` unless ``0 ≤ tilt ≤ 180`` (degrees) and ``0 ≤ zoom < 1``: the
    bounds of the rotation/zoom augmentation (:func:`random_warp`), checked by the tasks and
    by :class:`hkjax.Config`.

    Arguments:
        tilt: the largest rotation in degrees.
        zoom: the largest relative change of scale.
    """
    if not 0 <= tilt <= 180:
        raise ValueError(f"tilt={tilt} must lie in [0, 180] degrees")
    if not 0 <= zoom < 1:
        raise ValueError(f"zoom={zoom} must lie in [0, 1)")


def random_warp(
    images: Float[Array, "b p"], key: PRNGKeyArray, *, shape: tuple[int, int], max_degrees: float = 0.0,
    max_zoom: float = 0.0,
):
    """Rotate each (flattened) image by a random angle in ``[−max_degrees, max_degrees]`` and
    scale it by a random factor in ``[1 − max_zoom, 1 + max_zoom]`` (:func:`warp_image`;
    training augmentation).

    Arguments:
        images: ``(B, h·w)`` flattened images.
        key: PRNG key (one angle and one factor per image).
        shape: ``(h, w)``, the image shape.
        max_degrees: the largest rotation in degrees (``0``: none).
        max_zoom: the largest relative change of scale (``0``: none; below 1).

    Returns:
        ``(B, h·w)`` warped images (``images`` itself when both are 0).
    """
    if max_degrees <= 0 and max_zoom <= 0:
        return images
    b = images.shape[0]
    ka, kz = jax.random.split(key)
    deg = jax.random.uniform(ka, (b,), images.dtype, minval=-max_degrees, maxval=max_degrees)
    zoom = jax.random.uniform(kz, (b,), images.dtype, minval=1.0 - max_zoom, maxval=1.0 + max_zoom)
    return jax.vmap(lambda img, d, z: warp_image(img, shape=shape, degrees=d, zoom=z))(images, deg, zoom)


def all_shifts(image: Float[Array, " p"], *, shape: tuple[int, int], max_shift: int) -> Float[Array, "m p"]:
    """Every translation of a (flattened) image by an integer offset in
    ``[−max_shift, max_shift]²`` with zero fill, ``m = (2·max_shift + 1)²`` rows in row-major
    order of the offset (the unshifted image is the middle row); for test-time augmentation.

    Arguments:
        image: the flattened ``(h·w,)`` image.
        shape: ``(h, w)``.
        max_shift: the largest offset in pixels.

    Returns:
        ``((2·max_shift + 1)², h·w)`` translated images.
    """
    h, w = shape
    s = int(max_shift)
    padded = jnp.pad(image.reshape(h, w), ((s, s), (s, s)))
    return jnp.stack([
        padded[s - dy : s - dy + h, s - dx : s - dx + w].reshape(h * w)
        for dy in range(-s, s + 1) for dx in range(-s, s + 1)
    ])


class _Base(eqx.Module):
    model: str = eqx.field(static=True)
    n_pixels: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True)
    n_classes: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    relax_config: RelaxConfig
    #: training augmentation: random translations by up to ``shift`` pixels (0: off)
    shift: int = eqx.field(static=True, default=0, kw_only=True)
    #: training augmentation: random rotations by up to ``tilt`` degrees and scalings by a
    #: factor in ``[1 − zoom, 1 + zoom]`` (:func:`random_warp`; 0: off), after ``shift``
    tilt: float = eqx.field(static=True, default=0.0, kw_only=True)
    zoom: float = eqx.field(static=True, default=0.0, kw_only=True)
    #: test-time augmentation (:meth:`eval_loss`): average the class scores over all
    #: translations by up to ``tta`` pixels (0: off)
    tta: int = eqx.field(static=True, default=0, kw_only=True)
    #: image shape for ``shift`` / ``tta`` (default: square)
    image_shape: tuple | None = eqx.field(static=True, default=None, kw_only=True)
    #: initial hidden and class oscillators: ``"random"`` unit vectors (the paper) or all at
    #: the ``"reference"`` ``e₁`` (then ``σ_hidden·σ_pixel`` starts at the pixel value).
    osc_init: str = eqx.field(static=True, default="random", kw_only=True)

    def __check_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is unknown; choose one of {MODELS}")
        if self.osc_init not in ("random", "reference"):
            raise ValueError(f"osc_init={self.osc_init!r}; choose 'random' or 'reference'")
        if self.n_hidden < 1:
            raise ValueError(f"n_hidden={self.n_hidden} must be ≥ 1 (one hidden unit pairs with the reference oscillator)")
        check_warp(self.tilt, self.zoom)

    @property
    def n(self) -> int:
        """Number of units ``P + H + C``."""
        return self.n_pixels + self.n_hidden + self.n_classes

    @property
    def ref_index(self) -> int:
        """Row ``P = n_pixels`` of ``sigma``: the reference oscillator ``e₁`` of the readout
        ``σ_class·σ_ref``."""
        return self.n_pixels

    def _image_shape(self) -> tuple[int, int]:
        shape = self.image_shape
        if shape is None:
            side = int(round(np.sqrt(self.n_pixels)))
            if side * side != self.n_pixels:
                raise ValueError(f"shift augmentation needs image_shape for {self.n_pixels} pixels")
            shape = (side, side)
        return tuple(shape)

    def augment(self, images: Float[Array, "b p"], key: PRNGKeyArray) -> Float[Array, "b p"]:
        """The training augmentation of a batch of flattened images: random translations by
        up to ``shift`` pixels (:func:`random_shift`), then random rotations and scalings
        (``tilt``, ``zoom``; :func:`random_warp`, drawn from a fold of ``key``, so that runs
        without them draw exactly the shifts they always did). ``images`` itself when all
        three are 0.

        Arguments:
            images: ``(B, P)`` flattened images.
            key: PRNG key of the batch.
        """
        if self.shift > 0:
            images = random_shift(images, key, shape=self._image_shape(), max_shift=self.shift)
        if self.tilt > 0 or self.zoom > 0:
            images = random_warp(images, jax.random.fold_in(key, 1), shape=self._image_shape(),
                                 max_degrees=self.tilt, max_zoom=self.zoom)
        return images

    def example_loss(self, network: Network, example: dict, key: PRNGKeyArray):
        """Relax one example from :meth:`init_state` and score its readout.

        Arguments:
            network: the network being trained or evaluated.
            example: one example (no batch axis).
            key: PRNG key for :meth:`init_state`.

        Returns:
            ``(loss, (prediction, target))``: the :func:`squared_loss` of :meth:`scores`, its
            ``argmax`` and :meth:`target`.
        """
        sol = self.relax_config(network, self.init_state(example, key))
        return self._loss(self.scores(network, sol.state), example)

    def _loss(self, y, example: dict):
        # the loss of the class scores y of one example, and (prediction, target)
        t = self.target(example)
        return squared_loss(y, t, self.n_classes), (jnp.argmax(y), t)

    def batch_loss(self, network: Network, batch: dict, keys: PRNGKeyArray):
        """:meth:`example_loss` of every example of ``batch`` (leading axis), the whole batch
        relaxed as one system with shared steps (:meth:`RelaxConfig.batch`,
        :func:`hkjax.relax_batch`); what :func:`hkjax.train.fit` uses with
        ``shared_steps=True``.

        Arguments:
            network: the network being trained.
            batch: the examples, every array with a leading batch axis.
            keys: one PRNG key per example (for :meth:`init_state`).

        Returns:
            ``(losses, (predictions, targets))``, each with a leading batch axis.
        """
        sol = self.relax_config.batch(network, jax.vmap(self.init_state)(batch, keys))
        return jax.vmap(self._loss)(jax.vmap(self.scores, in_axes=(None, 0))(network, sol.state), batch)

    def eval_loss(self, network: Network, example: dict, key: PRNGKeyArray):
        """What :func:`hkjax.train.evaluate` computes per example: ``example_loss``, or with
        ``tta > 0`` (test-time augmentation) the loss and prediction of the class scores
        averaged over the ``(2·tta + 1)²`` translations of ``example["images"]`` (the image
        on the threshold units; :func:`all_shifts`), each relaxed on its own.

        Arguments:
            network: the network to evaluate.
            example: one example, as from :meth:`eval_batch`.
            key: PRNG key of the example (oscillator initialisation, rotations).

        Returns:
            ``(loss, (prediction, target))``.
        """
        if self.tta <= 0:
            return self.example_loss(network, example, key)
        imgs = all_shifts(example["images"], shape=self._image_shape(), max_shift=self.tta)

        def one(img, k):
            sol = self.relax_config(network, self.init_state({**example, "images": img}, k))
            return self.scores(network, sol.state)

        return self._loss(jnp.mean(jax.vmap(one)(imgs, jax.random.split(key, imgs.shape[0])), axis=0), example)

    def _x0(self, pixels):
        return _data.threshold_state(pixels, n_hidden=self.n_hidden, n_classes=self.n_classes)

    def _sigma0(self, pixels, key, rotate: bool):
        ks, kr = jax.random.split(key)
        s = _data.oscillator_state(pixels, self.dim, n_hidden=self.n_hidden - 1, n_classes=self.n_classes, key=ks)
        if self.osc_init == "reference":
            s = s.at[self.n_pixels + 1 :].set(s[self.n_pixels])
        if rotate:
            s = _data.rotate(s, _data.random_rotation(kr, self.dim))
        return s

    @property
    def readout(self) -> Readout:
        """Where the class scores are read: layer ``"classes"`` of the hierarchical model;
        the last ``C`` units of the paper's threshold layer ``"x"``; for the Kuramoto model
        ``σ_class·σ_ref``, its last ``C`` oscillators against the reference row ``P``."""
        if self.model == "hierarchical":
            return Readout(CLASSES)
        if self.model == "kuramoto":
            return Readout(OSCILLATORS, units=(-self.n_classes, None), reference=self.ref_index)
        return Readout(THRESHOLD, units=(-self.n_classes, None))

    def scores(self, network: Network, state: dict) -> Float[Array, " c"]:
        """The :attr:`readout` of a relaxed ``state``; non-finite values (a failed solve)
        become 0. ``network`` is not used by these readouts."""
        return _finite(self.readout(state))

    def prepare(self, arrays: dict) -> dict:
        """Precompute, once and outside any traced function, what :meth:`sample` needs from
        ``arrays`` besides the arrays themselves (nothing here; see
        :meth:`MemoryEditing.prepare`). :func:`hkjax.train.fit` calls it before it compiles the
        sampler with the data as an argument."""
        return arrays

    def build(self, key: PRNGKeyArray, **kwargs) -> Network:
        """:func:`build_network` sized for this task (``n = P + H + C`` units, this task's
        ``model`` and ``dim``), drawn from ``key``; ``kwargs`` are the other arguments of
        :func:`build_network` (``k``, ``coupling``, ``kappa_h``, ...)."""
        sizes = (self.n_pixels, self.n_hidden, self.n_classes)
        return build_network(self.model, n=self.n, dim=self.dim, sizes=sizes, key=key, **kwargs)


class Classification(_Base):
    """Image classification (paper, Sec. 4.1).

    Threshold units start at pixels ⊕ 0; oscillators at the pixel encoding ⊕ ``e₁`` ⊕ random
    unit vectors, turned by one random global rotation per sample (``rotate``; the energy is
    rotation invariant, so this is a pure augmentation). An example is
    ``{"images": (P,), "labels": ()}``.

    Arguments:
        model: ``"hopfield"``, ``"kuramoto"``, ``"hopfield_kuramoto"``, ``"hierarchical"`` or
            ``"hopfield_lora"`` (see ``MODELS`` and :func:`build_network`).
        n_pixels: ``P``, pixels per image.
        n_hidden: ``H ≥ 1`` hidden units (``N_augment``; one pairs with the reference).
        n_classes: ``C`` class units.
        dim: oscillator dimension ``D``.
        relax_config: the :class:`RelaxConfig` every example is relaxed with.
        rotate: one random global rotation of the oscillators per example.
        shift: training augmentation, random translations by up to ``shift`` pixels (0: off).
        tilt, zoom: training augmentation after the shift, random rotations by up to ``tilt``
            degrees and scalings by a factor in ``[1 − zoom, 1 + zoom]`` (:func:`random_warp`;
            0: off).
        tta: test-time augmentation in :meth:`eval_loss`: average the class scores over the
            translations by up to ``tta`` pixels (0: off).
        image_shape: ``(h, w)`` of the images for ``shift`` (default: square).
        osc_init: the initial hidden and class oscillators, ``"random"`` unit vectors (the
            paper) or all at the ``"reference"`` ``e₁``.

    Raises:
        ValueError: an unknown ``model`` or ``osc_init``, ``n_hidden < 1``, or ``tilt`` /
            ``zoom`` out of range.
    """

    rotate: bool = eqx.field(static=True, default=True)

    def init_state(self, example: dict, key: PRNGKeyArray) -> dict:
        """The initial state of one example: threshold units ``"x"`` at pixels ⊕ 0 (none for
        the Kuramoto model); oscillators ``"sigma"`` at the pixel encoding ⊕ ``e₁`` ⊕ hidden and
        class oscillators (``osc_init``), rotated when ``rotate`` (none for the Hopfield
        model).

        Arguments:
            example: ``{"images": (P,), ...}``.
            key: PRNG key for the random oscillators and the rotation.
        """
        img = example["images"]
        if self.model == "hierarchical":
            return {PIXELS: img, HIDDEN: jnp.zeros(self.n_hidden, img.dtype), CLASSES: jnp.zeros(self.n_classes, img.dtype)}
        x = None if self.model == "kuramoto" else self._x0(img)
        s = None if self.model in _NO_OSCILLATORS else self._sigma0(img, key, self.rotate)
        return _state(x, s)

    def target(self, example: dict):
        """The class to predict: ``example["labels"]``."""
        return example["labels"]

    def sample(self, arrays: dict, key: PRNGKeyArray, batch_size: int) -> dict:
        """A random training batch, a function of ``key`` only: ``batch_size`` examples drawn
        with replacement from ``arrays`` (``{"images": (N, P), "labels": (N,)}``), shifted
        when ``shift > 0`` and warped when ``tilt`` or ``zoom`` is. Returns ``{"images": (B, P), "labels": (B,)}``."""
        ki, ks = jax.random.split(key)
        ex = _pick(arrays, jax.random.randint(ki, (batch_size,), 0, len(arrays["labels"])))
        return {**ex, "images": self.augment(ex["images"], ks)}

    def eval_batch(self, arrays: dict, key: PRNGKeyArray) -> dict:
        """The whole split ``arrays``, in order and unaugmented (``key`` is not used)."""
        return _pick(arrays, jnp.arange(len(arrays["labels"])))


class Addition(_Base):
    """Addition modulo ``C`` (paper, Sec. 4.2): image ``a`` enters the threshold units,
    image ``b`` the oscillators; target ``(label_a + label_b) mod C``; Hopfield–Kuramoto
    model, threshold class-unit readout. An example is
    ``{"images": (P,), "labels": (), "images_b": (P,), "labels_b": ()}``.

    ``model``, ``n_pixels``, ``n_hidden``, ``n_classes``, ``dim``, ``relax_config``,
    ``rotate``, ``shift``, ``tilt``, ``zoom``, ``tta``, ``image_shape`` and ``osc_init`` are as for :class:`Classification`.

    Raises:
        ValueError: a ``model`` other than ``"hopfield_kuramoto"``.
    """

    rotate: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if self.model != "hopfield_kuramoto":
            raise ValueError(
                f"the addition task needs both kinds of units; pass model='hopfield_kuramoto' (got {self.model!r})"
            )

    def init_state(self, example: dict, key: PRNGKeyArray) -> dict:
        """Threshold units from ``example["images"]`` (pixels ⊕ 0), oscillators from
        ``example["images_b"]`` (encoding ⊕ ``e₁`` ⊕ hidden/class oscillators, rotated when
        ``rotate``; the random parts drawn with ``key``)."""
        return _state(self._x0(example["images"]), self._sigma0(example["images_b"], key, self.rotate))

    def target(self, example: dict):
        """``(labels + labels_b) mod C`` of ``example``."""
        return (example["labels"] + example["labels_b"]) % self.n_classes

    def _pairs(self, arrays, ia, ib):
        a, b = _pick(arrays, ia), _pick(arrays, ib)
        return {"images": a["images"], "labels": a["labels"], "images_b": b["images"], "labels_b": b["labels"]}

    def sample(self, arrays: dict, key: PRNGKeyArray, batch_size: int) -> dict:
        """``batch_size`` pairs ``(a, b)`` of images drawn independently, with replacement,
        from ``arrays``, both shifted when ``shift > 0``; a function of ``key`` only."""
        n = len(arrays["labels"])
        ka, kb, ks, kt = jax.random.split(key, 4)
        ex = self._pairs(arrays, jax.random.randint(ka, (batch_size,), 0, n), jax.random.randint(kb, (batch_size,), 0, n))
        return {**ex, "images": self.augment(ex["images"], ks), "images_b": self.augment(ex["images_b"], kt)}

    def eval_batch(self, arrays: dict, key: PRNGKeyArray) -> dict:
        """Every image of ``arrays`` as ``a``, paired with the images in an order permuted
        with ``key`` as ``b`` (the same ``key`` gives the same pairs)."""
        n = len(arrays["labels"])
        return self._pairs(arrays, jnp.arange(n), jax.random.permutation(key, n))


class MemoryEditing(_Base):
    """Memory editing (paper, Sec. 4.3) of a frozen Hopfield classifier.

    The threshold units receive the image as in :class:`Classification`. **Associative**:
    the oscillators receive a *cue image* of class ``cue_classes[0]`` (cue 0) or
    ``cue_classes[1]`` (cue 1); the target is the original label under cue 0 and
    ``mapping[label]`` under cue 1. **Non-associative**: the oscillators start at random unit
    vectors (reference ``e₁`` kept) and the target is always ``mapping[label]``.

    With ``model="hopfield_lora"`` (the baseline) the edit is learnt by a static low-rank
    synapse on the threshold units instead of oscillators: the network has no oscillators,
    so it never sees the cue image, and the targets are as above.

    An example is ``{"images", "labels", "cue_images": (P,), "cues": ()}``; ``sample`` and
    ``eval_batch`` draw cue images from the split they are given (train cues for training,
    test cues for evaluation), and ``eval_batch`` pairs every image with both cues.

    Arguments:
        mapping: ``(C,)`` label map from :func:`edit_map` (a tuple).
        associative: see above.
        cue_classes: the classes whose images serve as cue 0 and cue 1.
        edited_fraction: the share of each training batch (:meth:`sample`) drawn from the
            images whose label ``mapping`` changes, the rest drawn from all images. ``0`` (the
            default, as in the paper) draws uniformly, so that an edit of two classes of ten
            sees their images in a fifth of each batch, and under cue 1 in a tenth.
        edited_under_cue1: associative only: the rows drawn for ``edited_fraction`` all carry
            cue 1, so that each is an example whose label changes, and the rows under cue 0
            are drawn uniformly, as the classifier saw them. ``False`` (the default): those
            rows get a random cue like the others, so that half of them change label and the
            edited classes are oversampled under both cues.
        teacher: the frozen Hopfield classifier the edit starts from, or ``None`` (the
            default, as in the paper). Given, :meth:`sample` adds its class scores
            (``"teacher_scores"``, relaxed as :meth:`Classification.example_loss` relaxes an
            image, with this task's :attr:`relax_config`: the classifier under the edit's own
            method and steps) and the loss of every training example whose target is its
            original label (cue 0, and the classes the edit leaves alone) is the squared
            distance to those scores rather than to the ``±1`` code of the label: the edit is
            taught to keep the classifier's behaviour, not to refit its training labels. The
            examples whose label the edit changes keep the ``±1`` code of the new label, and
            evaluation (:meth:`eval_batch`) scores every example against its label as before.
        kept_weight: the weight of the loss of each training example whose target is its
            original label (cue 0, and the classes the edit leaves alone) against ``1`` for an
            example whose label changes; ``1`` (the default, as in the paper) weighs all alike.
            Above ``1`` the edit is held harder to what the classifier does where it should
            change nothing. :meth:`sample` gives each row its weight (``"weights"``);
            evaluation is unweighted.

    ``model``, ``n_pixels``, ``n_hidden``, ``n_classes``, ``dim``, ``relax_config``,
    ``rotate``, ``shift``, ``tilt``, ``zoom``, ``tta``, ``image_shape`` and ``osc_init`` are as for :class:`Classification`.

    Raises:
        ValueError: a ``model`` other than ``"hopfield_kuramoto"`` or ``"hopfield_lora"``,
            a ``mapping`` that does not have ``n_classes`` entries, or a ``kept_weight`` that
            is not positive.
    """

    mapping: tuple = eqx.field(static=True, default=tuple(range(10)))
    associative: bool = eqx.field(static=True, default=True)
    cue_classes: tuple = eqx.field(static=True, default=(0, 1))
    edited_fraction: float = eqx.field(static=True, default=0.0)
    edited_under_cue1: bool = eqx.field(static=True, default=False)
    rotate: bool = eqx.field(static=True, default=True)
    teacher: Network | None = None
    kept_weight: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if not self.kept_weight > 0:
            raise ValueError(f"kept_weight={self.kept_weight} must be positive (1: every example weighs alike)")
        if not 0 <= self.edited_fraction < 1:
            raise ValueError(f"edited_fraction={self.edited_fraction} must lie in [0, 1) (0: uniform batches)")
        if self.edited_under_cue1 and not (self.associative and self.edited_fraction > 0):
            raise ValueError("edited_under_cue1=True needs an associative edit (associative=True) with "
                             f"edited_fraction > 0, got associative={self.associative}, "
                             f"edited_fraction={self.edited_fraction}")
        if self.model not in EDIT_MODELS:
            raise ValueError(f"memory editing needs model='hopfield_kuramoto' (oscillators learn the edit) or "
                             f"'hopfield_lora' (a static low-rank synapse learns it), got {self.model!r}")
        if len(self.mapping) != self.n_classes:
            raise ValueError(f"mapping has {len(self.mapping)} entries; expected n_classes={self.n_classes}")
        if self.teacher is not None and (not isinstance(self.teacher, Network) or THRESHOLD not in self.teacher.layers):
            raise ValueError(f"teacher must be the frozen Hopfield classifier (an hk.Network with threshold units "
                             f"{THRESHOLD!r}), got {type(self.teacher).__name__}")

    def init_state(self, example: dict, key: PRNGKeyArray) -> dict:
        """Threshold units from ``example["images"]``; oscillators encoding
        ``example["cue_images"]`` (associative), or random unit vectors for the pixel
        oscillators (non-associative); hidden and class oscillators as in
        :class:`Classification`; the random parts drawn with ``key``. The ``"hopfield_lora"``
        baseline has threshold units only."""
        if self.model == "hopfield_lora":
            return _state(self._x0(example["images"]), None)
        if self.associative:
            s = self._sigma0(example["cue_images"], key, self.rotate)
        else:
            s = self._sigma0(jnp.full((self.n_pixels,), 0.5), key, self.rotate)
            kr = jax.random.fold_in(key, 1)
            rnd = jax.random.normal(kr, (self.n_pixels, self.dim), s.dtype)
            rnd = rnd / jnp.linalg.norm(rnd, axis=-1, keepdims=True)
            s = s.at[: self.n_pixels].set(rnd)
        return _state(self._x0(example["images"]), s)

    def target(self, example: dict):
        """``mapping[label]`` under cue 1 (``example["cues"] == 1``) and the original label
        under cue 0; always ``mapping[label]`` when not associative."""
        edited = jnp.asarray(self.mapping)[example["labels"]]
        if not self.associative:
            return edited
        return jnp.where(example["cues"] == 1, edited, example["labels"])

    def _loss(self, y, example: dict):
        # the ±1 code of the target; with teacher scores, the classifier's scores where the
        # label stays; with weights (training batches only) each loss scaled by its row's weight
        t = self.target(example)
        goal = _data.one_hot_targets(t, self.n_classes)
        if "teacher_scores" in example:
            goal = jnp.where(t == example["labels"], example["teacher_scores"], goal)
        return example.get("weights", 1) * jnp.sum((y - goal) ** 2), (jnp.argmax(y), t)

    def teacher_scores(self, images: Float[Array, "b p"]) -> Float[Array, "b c"]:
        """The class scores of the frozen classifier :attr:`teacher` for a batch of flattened
        ``images``, each relaxed on its own from its threshold state (no gradient flows
        through them)."""
        def one(img):  # an edit's readout is the class units, which the classifier has too
            return self.scores(self.teacher, self.relax_config(self.teacher, _state(self._x0(img), None)).state)

        return jax.lax.stop_gradient(jax.vmap(one)(images))

    def prepare(self, arrays: dict) -> dict:
        """``arrays`` plus ``"cue_pools"``, the indices of the images of each cue class (two
        integer arrays), and ``"edited_pool"``, the indices of the images whose label
        ``mapping`` changes; computed once with NumPy, outside any traced function, so that
        :meth:`sample` can be compiled with the data as an argument. Idempotent.

        Raises:
            ValueError: the data have no image of a cue class, or (with ``edited_fraction > 0``)
                none of an edited class.
        """
        if "cue_pools" in arrays:
            return arrays
        try:
            labels = np.asarray(arrays["labels"])
        except jax.errors.TracerArrayConversionError:
            raise ValueError(
                "MemoryEditing.sample was traced with unprepared data; call task.prepare(arrays) "
                "first, outside jit (hkjax.train.fit does)"
            ) from None
        pools = tuple(np.flatnonzero(labels == c).astype(np.int32) for c in self.cue_classes)
        if any(len(p) == 0 for p in pools):
            raise ValueError(f"the data have no image of a cue class {self.cue_classes}")
        edited = np.flatnonzero(np.asarray(self.mapping)[labels] != labels).astype(np.int32)
        if self.edited_fraction > 0 and len(edited) == 0:
            raise ValueError(f"edited_fraction={self.edited_fraction}: the data have no image whose label the edit "
                             "changes; pass edited_fraction=0")
        return {**arrays, "cue_pools": pools, "edited_pool": edited}

    def _cues(self, arrays, cues, key):
        pools = self.prepare(arrays)["cue_pools"]
        k0, k1 = jax.random.split(key)
        i0 = jnp.asarray(pools[0])[jax.random.randint(k0, cues.shape, 0, len(pools[0]))]
        i1 = jnp.asarray(pools[1])[jax.random.randint(k1, cues.shape, 0, len(pools[1]))]
        return jnp.asarray(arrays["images"])[jnp.where(cues == 1, i1, i0)]

    def sample(self, arrays: dict, key: PRNGKeyArray, batch_size: int) -> dict:
        """As :meth:`Classification.sample`, plus a random cue (0 or 1) per example and a cue
        image of that cue's class drawn from ``arrays``: ``{"images", "labels",
        "cue_images", "cues"}`` with ``batch_size`` rows; a function of ``key`` only. The
        first ``round(edited_fraction · batch_size)`` rows are images of the edited classes
        (under cue 1 with ``edited_under_cue1``). With a :attr:`teacher`, also its
        ``"teacher_scores"`` of the images; with ``kept_weight != 1``, also ``"weights"``,
        each row's loss weight.

        Raises:
            ValueError: ``arrays`` has no image of a cue class (see :meth:`prepare`).
        """
        arrays = self.prepare(arrays)  # once: the pools of the edited images and of the cues
        ki, kc, kq, ks = jax.random.split(key, 4)
        idx = jax.random.randint(ki, (batch_size,), 0, len(arrays["labels"]))
        n_edited = round(self.edited_fraction * batch_size)
        if n_edited:
            pool = jnp.asarray(arrays["edited_pool"])
            idx = idx.at[:n_edited].set(pool[jax.random.randint(jax.random.fold_in(ki, 1), (n_edited,), 0, len(pool))])
        ex = _pick(arrays, idx)
        cues = jax.random.randint(kc, (batch_size,), 0, 2)
        if self.edited_under_cue1:
            cues = cues.at[:n_edited].set(1)
        ex = {**ex, "images": self.augment(ex["images"], ks)}
        if self.teacher is not None:
            ex["teacher_scores"] = self.teacher_scores(ex["images"])
        ex = {**ex, "cue_images": self._cues(arrays, cues, kq), "cues": cues}
        if self.kept_weight != 1:
            kept = jax.vmap(self.target)(ex) == ex["labels"]
            ex["weights"] = jnp.where(kept, jnp.float32(self.kept_weight), jnp.float32(1))
        return ex

    def eval_batch(self, arrays: dict, key: PRNGKeyArray) -> dict:
        """Every image of ``arrays`` twice, under cue 0 and under cue 1 (``2N`` examples),
        with cue images of the cue classes drawn from ``arrays`` with ``key``."""
        n = len(arrays["labels"])
        ex = _pick(arrays, jnp.concatenate([jnp.arange(n), jnp.arange(n)]))
        cues = jnp.concatenate([jnp.zeros(n, jnp.int32), jnp.ones(n, jnp.int32)])
        return {**ex, "cue_images": self._cues(arrays, cues, key), "cues": cues}


# ---------------------------------------------------------------------------------------
# Pattern retrieval
# ---------------------------------------------------------------------------------------


def hebbian_weights(patterns: Float[Array, "p n"], *, gain: float = 4.0) -> Float[Array, "n n"]:
    """Hebbian weights ``W = gain · N⁻¹ Σ_μ ξ^μ ξ^μᵀ`` with a zero diagonal, for the
    ``(P, N)`` array ``patterns`` of ``P`` patterns ``ξ^μ``."""
    p = jnp.asarray(patterns)
    w = gain * (p.T @ p) / p.shape[1]
    return w - jnp.diag(jnp.diag(w))


def retrieval(
    model: str,
    *,
    n: int,
    n_patterns: int,
    corruption: float = 0.2,
    trials: int = 32,
    dim: int = 5,
    coupling: float = 0.5,
    gain: float = 4.0,
    t1: float = 10.0,
    threshold: float = 0.95,
    key: PRNGKeyArray,
) -> dict:
    """Retrieve Hebbian-stored random ``±1`` patterns from corrupted cues.

    ``n_patterns`` patterns ``ξ ∈ {±1}ⁿ`` are stored with :func:`hebbian_weights` in threshold
    units with a ``tanh`` Lagrangian (``κ = 1``). Each trial takes a stored pattern, flips a
    fraction ``corruption`` of its signs, starts at ``x₀ = gain·ξ̃ / 2`` and relaxes to ``t1``.
    For ``"hopfield_kuramoto"`` one oscillator per unit (dimension ``dim``) starts at
    ``σᵢ = ξ̃ᵢ e₁`` plus a little noise, coupled additively on the complete graph with
    strength ``C = coupling · gain / n`` (no Kuramoto term; ``coupling`` is relative to one
    stored pattern's Hebbian weight): seen from the threshold units the oscillators add the
    rank-``D`` Hebbian term ``C · Gram(σ)`` of the current state, a short-term memory of the cue.

    ``model`` is ``"hopfield"`` or ``"hopfield_kuramoto"``; ``trials`` cues are drawn,
    all from ``key`` (keyword only), and relaxed as one batch.

    Returns:
        ``{"overlap": mean |ξ·sign(x)|/n, "retrieval_rate": fraction with overlap ≥
        threshold, "load": n_patterns / n}``.

    Raises:
        ValueError: another ``model``.
    """
    if model not in ("hopfield", "hopfield_kuramoto"):
        raise ValueError(f"retrieval supports model='hopfield' or 'hopfield_kuramoto', got {model!r}")
    kp, kt, kf, ks = jax.random.split(key, 4)
    patterns = jnp.where(jax.random.bernoulli(kp, 0.5, (n_patterns, n)), 1.0, -1.0)
    w = hebbian_weights(patterns, gain=gain)
    lag = _lagrangians.Tanh()
    if model == "hopfield":
        net = hopfield(n, lagrangian=lag, weights=w, bias=jnp.zeros(n), kappa=1.0, key=kp)
    else:
        net = hopfield_kuramoto(
            n, dim, edges_k=None, edges_hk="all", coupling="additive", lagrangian=lag,
            interaction=_interactions.Linear(), kappa_h=1.0, kappa_k=1.0, hopfield_weights=w,
            hopfield_bias=jnp.zeros(n), coupling_weights=jnp.asarray(coupling * gain / n), key=kp,
        )
    which = jax.random.randint(kt, (trials,), 0, n_patterns)
    flips = jax.random.bernoulli(kf, corruption, (trials, n))
    xi = patterns[which]
    cue = jnp.where(flips, -xi, xi)

    def one(net, c, k):
        sigma = None
        if model == "hopfield_kuramoto":
            e1 = jnp.zeros(dim).at[0].set(1.0)
            sigma = c[:, None] * e1[None, :] + 0.05 * jax.random.normal(k, (n, dim))
            sigma = sigma / jnp.linalg.norm(sigma, axis=-1, keepdims=True)
        sol = relax(net, _state(0.5 * gain * c, sigma), t1=t1, max_steps=4096, throw=False)
        return jnp.sign(sol.state[THRESHOLD])

    # the network is an argument (not a closed-over constant) of the jitted function
    out = eqx.filter_jit(jax.vmap(one, in_axes=(None, 0, 0)))(net, cue, jax.random.split(ks, trials))
    ov = jnp.abs(jnp.sum(out * xi, axis=-1)) / n
    return {
        "overlap": float(jnp.mean(ov)),
        "retrieval_rate": float(jnp.mean(ov >= threshold)),
        "load": n_patterns / n,
    }

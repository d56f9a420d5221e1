"""Synapses: energies over the activations ``g`` of threshold units and the oscillators ``σ``.

A synapse is an energy function plus its parameters. The flow is derived from the energy in
:mod:`hkjax.network`; a synapse may override :meth:`AbstractSynapse.gradient` with a
closed-form (faster) gradient, and the test suite checks every override against
``jax.grad`` of :meth:`AbstractSynapse.energy`.

Sums over the edges of a graph (Kuramoto and Hopfield–Kuramoto terms) come in five
formulations, all equal up to round-off:

* ``"neighbours"``: a padded neighbour table ``(n, max degree)``; every node gathers its
  neighbours and sums, with no scatter (each edge is visited from both ends); memory
  ``O(n · max degree)``, for graphs too large for a dense ``(n, n)`` layout.
* ``"edges"``: per-edge gathers and ``segment_sum`` (memory ``O(E)``; the way research
  code usually writes it, kept as the reference and for very sparse graphs),
* ``"bcoo"``: per-edge values (gathers on the edges) assembled into a symmetric sparse
  matrix (``jax.experimental.sparse.BCOO``, both orientations of every edge) and applied
  with one sparse–dense product per term (memory ``O(E)``),
* ``"dense"``: a dense symmetric ``(n, n)`` mask and matrix products (best for dense-ish
  graphs at moderate ``n``; batches fold into matrix–matrix products under ``vmap``),
* ``"tiles"``: the ``(n, n)`` matrix cut into square tiles of :data:`TILE_BLOCK` rows; the
  tiles holding at least :data:`TILE_MIN_FILL` of their entries as edges are evaluated as
  dense blocks (one ``lax.map`` over the tiles, a whole batch per tile), the edges left in
  the other tiles as an edge list. The Kuramoto term of a graph whose edges cluster near the
  diagonal (a small-world graph: a ring lattice, a few edges rewired) then costs a fraction
  of the dense layout's, with no per-element gather for most edges; the Hopfield–Kuramoto
  coupling, whose batch folds into one product with a shared ``(n, n)`` matrix, is
  evaluated as with ``"dense"``,
* ``"all"``: all-to-all graphs without any mask (the Hopfield–Kuramoto coupling then costs
  ``O(n D)`` via ``|Σ gᵢσᵢ|²``, the rank-D structure of the paper).

``formulation="auto"`` (default, :func:`auto_formulation`) picks ``"all"`` for complete
graphs, ``"tiles"`` for graphs of 256 to 4096 nodes and density ≥ 2.5 % whose edges cluster
(small-world graphs: the paper's network, the digits classifiers with 400 hidden units),
``"dense"`` for other graphs of density ≥ 8 % up to 4096 nodes, and ``"neighbours"``
otherwise. XLA:CPU gathers and scatters cost far more per element than streaming matrix
products, so the dense layouts win wherever the work they waste is moderate; on sparse
graphs the dense layout does ``1/density`` times the necessary work and loses by up to 8×
(gradients at n = 2048, degree 16). ``benchmarks/formulations.py`` measures every
formulation over sizes and degrees. A layout's index arrays are rebuilt from the edges and
never saved (:attr:`Pairs.derived_fields`), so checkpoints do not depend on the layout.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Bool, Float, Int

from .. import graphs as _graphs
from ..interactions import AbstractAffineInteraction, AbstractInteraction

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
    "Pairs",
    "Conv",
    "ConvKuramoto",
    "Attention",
    "FORMULATIONS",
    "auto_formulation",
    "tile_layout",
    "tile_block",
]

FORMULATIONS = ("auto", "neighbours", "edges", "bcoo", "dense", "tiles", "all")

#: Formulations that keep per-edge parameters as ``(E,)`` arrays and evaluate pair terms
#: on the edge list.
_EDGE_WISE = ("edges", "bcoo")
#: Formulations whose graph is also held as a dense ``(n, n)`` mask (the Hopfield–Kuramoto
#: coupling uses dense ``(n, n)`` coefficients with both).
_DENSE = ("dense", "tiles")


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


#: ``formulation="auto"``: dense layouts for graphs at least this dense ...
AUTO_DENSE_DENSITY = 0.08
#: ... with at most this many nodes; neighbour tables otherwise.
AUTO_DENSE_MAX_N = 4096
#: ``"tiles"`` for graphs of at least this many nodes (and at most :data:`AUTO_DENSE_MAX_N`),
#: of density at least :data:`AUTO_TILES_DENSITY`, whose kept tiles (:func:`tile_layout`)
#: hold at least :data:`AUTO_TILES_EDGES` of the edges and cover at most
#: :data:`AUTO_TILES_AREA` of the (padded) ``(n, n)`` matrix: edges that cluster near the
#: diagonal, as in small-world graphs. (A tiled graph's Hopfield–Kuramoto coupling is
#: evaluated densely, hence the density floor.)
AUTO_TILES_MIN_N = 256
AUTO_TILES_DENSITY = 0.025
AUTO_TILES_EDGES = 0.5
AUTO_TILES_AREA = 0.5


def _clustered(edges, n: int) -> bool:
    """Whether the ``"tiles"`` layout of the graph keeps most of its edges in a small part of
    the matrix (:data:`AUTO_TILES_EDGES`, :data:`AUTO_TILES_AREA`)."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    kept, bi, bj = _kept_tiles(e, n, tile_block(n), None)
    inside = int(np.count_nonzero(kept[bi, bj]))
    return e.shape[0] > 0 and inside >= AUTO_TILES_EDGES * e.shape[0] and kept.sum() <= AUTO_TILES_AREA * kept.size


def auto_formulation(n: int, num_edges: int, edges=None) -> str:
    """The formulation ``"auto"`` picks for a graph of ``n`` nodes and ``num_edges`` edges.

    ``"all"`` for a complete graph; ``"tiles"`` for a graph of :data:`AUTO_TILES_MIN_N` to
    :data:`AUTO_DENSE_MAX_N` nodes and density at least :data:`AUTO_TILES_DENSITY` whose
    edges cluster (most of them in a few dense tiles of the matrix, e.g. a small-world graph;
    needs ``edges``, the graph's ``(E, 2)`` array);
    ``"dense"`` for other graphs of density at least :data:`AUTO_DENSE_DENSITY` on at most
    :data:`AUTO_DENSE_MAX_N` nodes; ``"neighbours"`` otherwise. A layout's index arrays are
    not saved in checkpoints, so a network saved under one layout loads under another.

    The thresholds come from ``benchmarks/formulations.py``, which times every layout on
    small-world graphs over sizes and degrees (relax, value + gradient through per-example
    solves, and through one shared-step solve of the batch; its table goes into
    ``benchmarks/README.md``). On clustered graphs of moderate density ``"tiles"`` is the
    fastest layout or close to it, and faster than both the dense layout and neighbour
    tables. Its coupling is evaluated densely, which makes per-example gradients slower than
    with neighbour tables on sparser graphs; hence the density floor. Without clustering,
    neighbour tables stay close to the best layout on sparse graphs and beat the dense
    layout in the gradient, while the dense layout wins on dense graphs. The thresholds are
    set from CPU measurements; run ``benchmarks/formulations.py`` on a GPU before relying on
    them there.
    """
    if num_edges == n * (n - 1) // 2:
        return "all"
    density = 2 * num_edges / (n * (n - 1)) if n > 1 else 1.0
    if (edges is not None and AUTO_TILES_MIN_N <= n <= AUTO_DENSE_MAX_N
            and density >= AUTO_TILES_DENSITY and _clustered(edges, n)):
        return "tiles"
    return "dense" if density >= AUTO_DENSE_DENSITY and n <= AUTO_DENSE_MAX_N else "neighbours"


#: ``formulation="tiles"``: rows (and columns) per tile, at most (:func:`tile_block`) ...
#: (64: on the paper's graph a training step 10-15 % and a batch-100 relax ~13 % faster than
#: with 128, ``benchmarks/README.md``)
TILE_BLOCK = 64
#: ... and the fraction of a tile's entries that must be edges for it to be evaluated as a
#: dense block (its edges go to the edge list otherwise). An edge on the list costs about as
#: much as 25 entries of a dense tile (2-core CPU, paper's network, batch 10).
TILE_MIN_FILL = 0.05


def tile_block(n: int) -> int:
    """The tile size of the ``"tiles"`` layout of ``n`` nodes: the largest power of two that
    is at most :data:`TILE_BLOCK` and leaves at least 4 tiles per side (at least 8)."""
    b = 8
    while 2 * b <= TILE_BLOCK and 4 * 2 * b <= n:
        b *= 2
    return b


def _kept_tiles(e: np.ndarray, n: int, block: int, min_fill: float | None):
    """Which ``block × block`` tiles hold at least ``min_fill`` (default
    :data:`TILE_MIN_FILL`) of their entries as edges (``(nb, nb)``, symmetric), and every
    edge's tile row and column."""
    min_fill = TILE_MIN_FILL if min_fill is None else min_fill
    nb = -(-n // block)
    bi, bj = e[:, 0] // block, e[:, 1] // block
    counts = np.zeros((nb, nb), np.int64)
    np.add.at(counts, (bi, bj), 1)
    np.add.at(counts, (bj, bi), 1)
    return counts >= min_fill * block * block, bi, bj


def tile_layout(edges, n: int, *, block: int | None = None, min_fill: float | None = None):
    """The ``"tiles"`` layout of a graph: which ``block × block`` tiles of its symmetric
    ``(n, n)`` adjacency matrix are dense blocks, and which edges are left over.

    The matrix is padded to ``nb·block`` rows, ``nb = ⌈n / block⌉``. A tile ``(I, J)`` is
    kept when at least ``min_fill`` of its ``block²`` entries are edges; the kept set is
    symmetric (``(J, I)`` with ``(I, J)``), so every edge of a kept tile appears in both
    orientations among the kept tiles.

    Arguments:
        edges: ``(E, 2)`` integer edges, ``i < j`` (validated by the caller).
        n: number of nodes.
        block: rows and columns per tile (default :func:`tile_block`).
        min_fill: the fraction of edges a tile needs to be kept (default
            :data:`TILE_MIN_FILL`).

    Returns:
        ``(rows, cols, edge, valid, rest)`` (NumPy): the kept tiles' block indices ``(T,)``
        and ``(T,)``; for every entry of every kept tile the index of its edge
        ``(T, block, block)`` (0 where ``valid`` is false) and whether it is one; and the
        indices ``(R,)`` of the edges outside the kept tiles.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    block = tile_block(n) if block is None else block
    kept, bi, bj = _kept_tiles(e, n, block, min_fill)
    nb = kept.shape[0]
    rows, cols = np.nonzero(kept)
    slot = -np.ones((nb, nb), np.int64)
    slot[rows, cols] = np.arange(rows.size)
    edge = np.zeros((rows.size, block, block), np.int64)
    valid = np.zeros((rows.size, block, block), bool)
    inside = kept[bi, bj]
    ids = np.nonzero(inside)[0]
    for a, b in ((e[ids, 0], e[ids, 1]), (e[ids, 1], e[ids, 0])):
        t = slot[a // block, b // block]
        edge[t, a % block, b % block] = ids
        valid[t, a % block, b % block] = True
    return rows, cols, edge, valid, np.nonzero(~inside)[0]


class Pairs(eqx.Module):
    """The edges ``(i, j)``, ``i < j``, of a graph on ``n`` nodes, and how sums over them
    are evaluated (``formulation``: one of :data:`FORMULATIONS`).

    Arguments:
        edges: ``(E, 2)`` integer array of the graph (see :mod:`hkjax.graphs`) or ``"all"``.
        n: number of nodes.
        formulation: one of :data:`FORMULATIONS` (``"auto"``: :func:`auto_formulation`).
        name: how errors name ``edges``.

    Only the edges are state: the index arrays of the layout (masks, neighbour tables,
    tiles) are rebuilt from them and are not saved in checkpoints (:attr:`derived_fields`),
    so a checkpoint loads whatever layout the graph gets when it is rebuilt.
    """

    #: The fields computed from the edges (not saved by :mod:`hkjax.checkpoint`).
    derived_fields: ClassVar[tuple[str, ...]] = (
        "mask", "nbr", "slot_edge", "valid", "both", "tile_rows", "tile_cols", "tile_edge", "tile_valid",
        "rest", "rest_edge")

    i: Int[Array, " e"]
    j: Int[Array, " e"]
    mask: Bool[Array, "n n"] | None
    nbr: Int[Array, "n m"] | None
    slot_edge: Int[Array, "n m"] | None
    valid: Bool[Array, "n m"] | None
    both: Int[Array, "2e 2"] | None
    # "tiles": the kept tiles' block rows and columns, per-entry edge indices and validity,
    # and the edges left over (an "edges" Pairs, and their indices into this edge list)
    tile_rows: Int[Array, " t"] | None
    tile_cols: Int[Array, " t"] | None
    tile_edge: Int[Array, "t b b"] | None
    tile_valid: Bool[Array, "t b b"] | None
    rest: "Pairs | None"
    rest_edge: Int[Array, " r"] | None
    n: int = eqx.field(static=True)
    formulation: str = eqx.field(static=True)

    def __init__(self, edges, n: int, *, formulation: str = "auto", name: str = "edges"):
        if isinstance(edges, str):
            if edges != "all":
                raise ValueError(f"{name}={edges!r}: pass an (E, 2) integer array or 'all'")
            edges = _graphs.all_to_all(n)
        e = _graphs.validate_edges(edges, n, name=name)
        if formulation not in FORMULATIONS:
            raise ValueError(f"formulation={formulation!r}; choose one of {FORMULATIONS}")
        num = e.shape[0]
        complete = num == n * (n - 1) // 2
        if formulation == "auto":
            formulation = auto_formulation(n, num, e)
        if formulation == "all" and not complete:
            raise ValueError(f"formulation='all' needs a complete graph; {name} has {num} of {n * (n - 1) // 2} edges")
        self.n, self.formulation = n, formulation
        self.i = jnp.asarray(e[:, 0], dtype=jnp.int32)
        self.j = jnp.asarray(e[:, 1], dtype=jnp.int32)
        self.mask = jnp.asarray(_graphs.to_dense(e, n), dtype=bool) if formulation in _DENSE else None
        self.tile_rows = self.tile_cols = self.tile_edge = self.tile_valid = self.rest = self.rest_edge = None
        if formulation == "tiles":
            rows, cols, edge, valid, rest = tile_layout(e, n)
            self.tile_rows, self.tile_cols = jnp.asarray(rows, jnp.int32), jnp.asarray(cols, jnp.int32)
            self.tile_edge, self.tile_valid = jnp.asarray(edge, jnp.int32), jnp.asarray(valid, bool)
            if rest.size:
                self.rest = Pairs(e[rest], n, formulation="edges", name=name)
                self.rest_edge = jnp.asarray(rest, jnp.int32)
        self.nbr = self.slot_edge = self.valid = None
        # Both orientations of every edge, (i, j) then (j, i): the indices of a symmetric BCOO.
        self.both = jnp.asarray(np.concatenate([e, e[:, ::-1]]), jnp.int32) if formulation == "bcoo" else None
        if formulation == "neighbours":
            nbr, slot_edge, valid = _graphs.neighbour_lists(e, n)
            self.nbr = jnp.asarray(nbr, jnp.int32)
            self.slot_edge = jnp.asarray(slot_edge, jnp.int32)
            self.valid = jnp.asarray(valid, bool)

    @property
    def num_edges(self) -> int:
        """The number of edges ``E``."""
        return self.i.shape[0]

    def dots(self, sigma):
        """``s_e = σ_i·σ_j`` for every edge, of oscillators ``sigma`` ``(n, dim)``."""
        return jnp.sum(sigma[self.i] * sigma[self.j], axis=-1)

    def table(self, values):
        """Per-edge ``values`` (scalar or ``(E,)``) laid out as the ``(n, m)`` neighbour
        table, zero on padding slots."""
        values = jnp.asarray(values)
        v = values if values.ndim == 0 else values[self.slot_edge]
        return jnp.where(self.valid, v, jnp.zeros((), values.dtype))

    def table_dots(self, sigma):
        """``σ_v·σ_nbr(v, slot)`` as an ``(n, m)`` table, and the gathered ``σ_nbr``, of
        oscillators ``sigma`` ``(n, dim)``."""
        sn = sigma[self.nbr]
        return jnp.einsum("nd,nmd->nm", sigma, sn), sn

    def dense(self, values):
        """A symmetric ``(n, n)`` matrix with ``values`` (scalar or per-edge) on the edges."""
        values = jnp.asarray(values)
        if values.ndim == 0:
            return values * self._mask(values.dtype)
        m = jnp.zeros((self.n, self.n), values.dtype)
        return m.at[self.i, self.j].set(values).at[self.j, self.i].set(values)

    def sparse(self, values):
        """The symmetric ``(n, n)`` BCOO matrix with ``values`` (scalar or per-edge) on the
        edges (``formulation="bcoo"``)."""
        values = jnp.broadcast_to(jnp.asarray(values), (self.num_edges,))
        return jsparse.BCOO((jnp.concatenate([values, values]), self.both), shape=(self.n, self.n),
                            unique_indices=True)

    def tiles(self, values):
        """Per-edge ``values`` (``(E,)``) laid out on the kept tiles (``"tiles"``), a
        ``(T, block, block)`` array, zero on entries that are no edge."""
        values = jnp.asarray(values)
        return jnp.where(self.tile_valid, values[self.tile_edge], jnp.zeros((), values.dtype))

    def _mask(self, dtype):
        if self.mask is not None:
            return self.mask.astype(dtype)
        return 1.0 - jnp.eye(self.n, dtype=dtype)

    def scatter(self, per_edge_i, per_edge_j):
        """``Σ_{e: i_e = k} a_e + Σ_{e: j_e = k} b_e`` for every node ``k``, with ``a =
        per_edge_i`` and ``b = per_edge_j``."""
        return jax.ops.segment_sum(per_edge_i, self.i, self.n) + jax.ops.segment_sum(per_edge_j, self.j, self.n)


def _vanishes_off_graph(inter: AbstractInteraction, ndim: int = 2) -> bool:
    """Whether a laid-out interaction (its per-edge parameters ``ndim``-dimensional: ``(n,
    n)`` matrices, or ``(T, block, block)`` tiles) is already zero off the graph (an affine
    potential whose parameters are all per-edge): then no mask pass is needed."""
    return isinstance(inter, AbstractAffineInteraction) and all(
        jnp.ndim(getattr(inter, q)) == ndim for q in inter.param_names
    )


def _laid_out(interaction: AbstractInteraction, pairs: Pairs, layout=None):
    """The interaction with its per-edge parameters laid out for ``pairs.formulation``:
    symmetric ``(n, n)`` matrices (``"dense"``, ``"all"``) or ``(n, m)`` neighbour tables
    (``"neighbours"``), or by ``layout`` (a map of one ``(E,)`` array) when it is given.
    Parameters already laid out (not 1-d) are left alone."""
    names = [p for p in interaction.param_names if jnp.ndim(getattr(interaction, p)) == 1]
    if layout is None:
        if pairs.formulation in _EDGE_WISE:
            return interaction
        layout = pairs.table if pairs.formulation == "neighbours" else pairs.dense
    if not names:
        return interaction
    return eqx.tree_at(
        lambda m: [getattr(m, p) for p in names],
        interaction,
        [layout(getattr(interaction, p)) for p in names],
    )


#: The dense Kuramoto force is evaluated in blocks of about this many rows ...
FORCE_BLOCK_ROWS = 224
#: ... on graphs of at least this many nodes (``(n, n)`` arrays per example that leave the
#: cache); below, in one piece.
FORCE_BLOCK_MIN_N = 512


def _row_blocks(n: int) -> int:
    """How many row blocks the dense force of ``n`` oscillators uses (1: no blocking); the
    block count divides ``n`` and blocks keep at least 32 rows."""
    if n < FORCE_BLOCK_MIN_N:
        return 1
    nb = max(1, round(n / FORCE_BLOCK_ROWS))
    while n % nb:
        nb += 1
    return nb if n // nb >= 32 else 1


def _dense_force(interaction: AbstractInteraction, mask, sigma):
    """``Σⱼ Kᵢⱼ σⱼ`` with ``K = mask ⊙ F'(σσᵀ)`` (``mask=None``: ``F'`` already vanishes off
    the graph): the dense Kuramoto force, for symmetric ``(n, n)`` (or shared) parameters.

    Its value is computed in row blocks on large graphs (:data:`FORCE_BLOCK_ROWS`): the
    per-example ``(n, n)`` intermediates then stay in cache, which makes a batched forward
    solve faster. Its derivative is a custom JVP,

        ``dF = K dσ + (F''(S) ⊙ (dσσᵀ + σdσᵀ)) σ + (∂F'/∂θ · dθ)(S) σ``,  ``S = σσᵀ``,

    written so that reverse mode (the transpose JAX derives from it) needs only products
    with ``K`` and ``F''(S)`` in their plain orientation: both are symmetric, so ``Kᵀ ct``
    is computed as ``K ct`` and ``(F'' ⊙ σ ctᵀ)`` directly instead of a transposed
    ``(n, n)`` operand (XLA:CPU runs products with a transposed per-example ``(n, n)``
    operand 2–3× slower). Forward mode (``jax.jvp``, ``jax.jacfwd``, implicit solvers) and
    higher derivatives work as for plain code; ``tests/test_synapses.py`` checks both modes,
    blocked and not, against the edge list's autodiff.

    On the paper's network this makes ``relax`` and the training step faster than plain
    autodiff of the dense force (``benchmarks/vector_field.py``, ``benchmarks/train_step.py``).
    """
    dyn, static = eqx.partition(interaction, eqx.is_array)
    n = sigma.shape[0]
    # the per-edge parameters laid out as (n, n) matrices (split into row blocks); the
    # others (shared scalars, an MLP's weights) are used whole by every block
    laid_out = [q for q in interaction.param_names if jnp.ndim(getattr(interaction, q)) == 2]

    def fprime(d, s):
        fp = eqx.combine(d, static).derivative(s)
        return fp if mask is None else mask * fp

    @jax.custom_jvp
    def force(d, sig):
        nb = _row_blocks(n)
        if nb == 1:
            return fprime(d, sig @ sig.T) @ sig
        bs = n // nb
        inter = eqx.combine(d, static)

        def one(args):
            rows, mrows, srows = args  # this block's rows of the laid-out parameters, mask, σ
            blk = eqx.tree_at(lambda m: [getattr(m, q) for q in laid_out], inter, rows) if laid_out else inter
            fp = blk.derivative(srows @ sig.T)
            return (fp if mrows is None else mrows * fp) @ sig

        rows = [getattr(inter, q).reshape(nb, bs, n) for q in laid_out]
        m = None if mask is None else mask.reshape(nb, bs, n)
        return jax.lax.map(one, (rows, m, sig.reshape(nb, bs, -1))).reshape(sig.shape)

    def force_jvp(primals, tangents):
        d, sig = primals
        dd, dsig = tangents
        zero = jax.custom_derivatives.SymbolicZero
        s = sig @ sig.T
        fp, fpp = jax.jvp(lambda t: fprime(d, t), (s,), (jnp.ones_like(s),))  # F', F'' (elementwise)
        out = fp @ sig
        tan = jnp.zeros_like(out)
        if any(not isinstance(t, zero) for t in jax.tree_util.tree_leaves(dd, is_leaf=lambda t: isinstance(t, zero))):
            dd = jax.tree_util.tree_map(lambda t, x: jnp.zeros_like(x) if isinstance(t, zero) else t, dd, d,
                                        is_leaf=lambda t: isinstance(t, zero))
            _, dfp = jax.jvp(lambda q: fprime(q, s), (d,), (dd,))
            tan = tan + dfp @ sig  # transposes to (ct σᵀ) against each parameter
        if not isinstance(dsig, zero):
            y = fpp * (dsig @ sig.T)
            # K dσ as Kᵀ dσ, and (F'' ⊙ σdσᵀ)σ as (F'' ⊙ dσσᵀ)ᵀσ: equal by symmetry, and their
            # transposes are K ct and (F'' ⊙ σ ctᵀ)σ, products in the plain orientation.
            tan = tan + jnp.einsum("ji,jd->id", fp, dsig) + y @ sig + jnp.einsum("ji,jd->id", y, sig)
        return out, tan

    force.defjvp(force_jvp, symbolic_zeros=True)
    return force(dyn, sigma)


def _over_tiles(interactions, pairs: Pairs, sigmas, body):
    """``lax.map`` of ``body(inters, valid, rows, cols)`` over the kept tiles of ``pairs``
    (``"tiles"``). ``interactions`` are interactions of one structure (an interaction, and in
    a JVP its tangent); ``inters`` holds them with the tile's block in place of any laid-out
    ``(T, block, block)`` parameters. ``sigmas`` are ``(n, d)`` arrays (σ, and its tangent);
    ``rows`` and ``cols`` hold their blocks of the tile's rows and columns. ``valid`` is the
    tile's edge mask (``None`` when the laid-out parameters vanish off the graph). Under
    ``vmap`` the batch sits inside every tile's products, so that each tile's ``(batch,
    block, block)`` intermediates stay small."""
    first = interactions[0]
    n = sigmas[0].shape[0]
    block = pairs.tile_edge.shape[1]
    nb = -(-n // block)
    padded = [jnp.pad(x, ((0, nb * block - n), (0, 0))).reshape(nb, block, -1) for x in sigmas]
    laid_out = [q for q in first.param_names if jnp.ndim(getattr(first, q)) == 3]
    valid = None if _vanishes_off_graph(first, 3) else pairs.tile_valid
    tiles = [[getattr(m, q) for q in laid_out] for m in interactions]

    def one(args):
        r, c, blocks, v = args
        # the tile's blocks in place of the (T, block, block) arrays, which the body never sees
        inters = [eqx.tree_at(lambda m: [getattr(m, q) for q in laid_out], m, bl) if laid_out else m
                  for m, bl in zip(interactions, blocks)]
        return body(inters, v, [x[r] for x in padded], [x[c] for x in padded])

    # Rematerialised: the backward pass recomputes a tile's (batch, block, block) products
    # instead of stacking them for every tile (training step 6-7 % faster, formulation_ab.py)
    one = jax.checkpoint(one)
    return jax.lax.map(one, (pairs.tile_rows, pairs.tile_cols, tiles, valid)), nb, block


def _tile_force(interaction: AbstractInteraction, pairs: Pairs, sigma):
    """``Σⱼ F'ᵢⱼ(σᵢ·σⱼ) σⱼ`` over the edges inside the kept tiles of ``pairs`` (``"tiles"``):
    per tile ``(I, J)``, ``K σ_J`` summed into the rows of block ``I``, ``K = valid ⊙
    F'(σ_I σ_Jᵀ)``. The laid-out parameters must be symmetric (tile ``(J, I)`` holds the
    transpose of tile ``(I, J)``), as :meth:`Pairs.tiles` makes them.

    Its derivative is a custom JVP written, like :func:`_dense_force`'s, so that reverse mode
    needs only products in the plain orientation: the force's tangent is summed over tiles,
    and tile ``(I, J)`` contributes (``Y = F'' ⊙ dσ_I σ_Jᵀ``, ``H = ∂F'/∂θ · dθ``)

        ``(Y + H/2) σ_J`` to the rows of ``I`` and ``Kᵀ dσ_I + (Y + H/2)ᵀ σ_I`` to those of ``J``,

    which adds up to the force's tangent because every ordered pair of an edge lies in
    exactly one kept tile. Its transpose is ``K ct_J + (F'' ⊙ Ȳ) σ_J`` into the rows of
    ``I``, with ``Ȳ = ct_I σ_Jᵀ + σ_I ct_Jᵀ`` (also the parameters' cotangent), so a tile's
    backward pass computes no transposed ``(block, block)`` product and forms its outer
    products once. Against autodiff of a tile's ``K σ_J`` (paper's network, batch 10, 2-core
    CPU; ``benchmarks/README.md``) the force's VJP in σ and its parameters is faster and its
    forward-mode JVP slower (forward mode serves ``jax.jacfwd`` and implicit solvers).
    ``tests/test_synapses.py`` checks both modes against the edge list's autodiff."""
    dyn, static = eqx.partition(interaction, eqx.is_array)
    n = sigma.shape[0]

    def fprime(inter, v, s):
        fp = inter.derivative(s)
        return fp if v is None else jnp.where(v, fp, 0.0)

    def into(out, idx, nb):  # tile outputs (T, block, d) summed into the rows of blocks idx
        return jax.ops.segment_sum(out, idx, nb).reshape(-1, out.shape[-1])[:n]

    # the graph is an argument, not a closure: under jit its index arrays are tracers, which a
    # custom JVP must not close over
    @jax.custom_jvp
    def force(d, sig, pairs):
        def body(inters, v, rows, cols):
            return fprime(inters[0], v, rows[0] @ cols[0].T) @ cols[0]

        out, nb, _ = _over_tiles((eqx.combine(d, static),), pairs, (sig,), body)
        return into(out, pairs.tile_rows, nb)

    def force_jvp(primals, tangents):
        d, sig, pairs = primals
        dd, dsig, _ = tangents
        zero = jax.custom_derivatives.SymbolicZero
        is_zero = lambda t: isinstance(t, zero)  # noqa: E731
        with_params = any(not is_zero(t) for t in jax.tree_util.tree_leaves(dd, is_leaf=is_zero))
        with_sigma = not is_zero(dsig)
        dd = jax.tree_util.tree_map(lambda t, x: jnp.zeros_like(x) if is_zero(t) else t, dd, d, is_leaf=is_zero)
        dsig = jnp.zeros_like(sig) if not with_sigma else dsig

        def body(inters, v, rows, cols):
            (inter, dinter), (si, dsi), (sj, _) = inters, rows, cols
            s = si @ sj.T
            fp, fpp = jax.jvp(lambda t: fprime(inter, v, t), (s,), (jnp.ones_like(s),))  # F', F''
            y, tan_c = jnp.zeros_like(s), jnp.zeros_like(sj)
            if with_params:
                q, st = eqx.partition(inter, eqx.is_array)
                _, dfp = jax.jvp(lambda q: fprime(eqx.combine(q, st), v, s), (q,), (eqx.filter(dinter, eqx.is_array),))
                y = y + 0.5 * dfp  # the other half comes from the transposed tile (J, I)
            if with_sigma:
                y = y + fpp * (dsi @ sj.T)
                tan_c = jnp.einsum("ij,id->jd", fp, dsi)
            return fp @ sj, y @ sj, tan_c + jnp.einsum("ij,id->jd", y, si)

        (out, tan_r, tan_c), nb, _ = _over_tiles(
            (eqx.combine(d, static), eqx.combine(dd, static)), pairs, (sig, dsig), body)
        return into(out, pairs.tile_rows, nb), into(tan_r, pairs.tile_rows, nb) + into(tan_c, pairs.tile_cols, nb)

    force.defjvp(force_jvp, symbolic_zeros=True)
    return force(dyn, sigma, pairs)


def _tile_energy(interaction: AbstractInteraction, pairs: Pairs, sigma):
    """``Σ_(i,j) F_ij(σᵢ·σⱼ)`` over the edges inside the kept tiles (each edge once)."""

    def body(inters, v, rows, cols):
        f = inters[0](rows[0] @ cols[0].T)
        return jnp.sum(f if v is None else jnp.where(v, f, 0.0))

    out, _, _ = _over_tiles((interaction,), pairs, (sigma,), body)
    return 0.5 * jnp.sum(out)  # every edge sits in two orientations among the kept tiles


def _flat(sigma):
    """Oscillators of any layer shape as ``(m, dim)`` rows."""
    return sigma if sigma.ndim == 2 else sigma.reshape(-1, sigma.shape[-1])


class _TiledKuramoto(AbstractSynapse):
    """The part of a :class:`Kuramoto` synapse on a ``"tiles"`` graph that lies inside the
    kept tiles, its per-edge parameters laid out as ``(T, block, block)`` blocks (what
    :meth:`Kuramoto.prepare` makes; the edges outside the tiles go to a :class:`Kuramoto`
    synapse on the edge list).

    Arguments:
        layer: the oscillator layer.
        pairs: the graph (``formulation="tiles"``).
        interaction: the pair potential, per-edge parameters laid out by :meth:`Pairs.tiles`.
        kappa: energy scale.
    """

    layer: str = eqx.field(static=True)
    pairs: Pairs
    interaction: AbstractInteraction
    kappa: float = 1.0

    @property
    def layers(self):
        return (self.layer,)

    def energy(self, sigma):
        return self.kappa * _tile_energy(self.interaction, self.pairs, _flat(sigma))

    def gradient(self, sigma):
        return (self.kappa * _tile_force(self.interaction, self.pairs, _flat(sigma)).reshape(sigma.shape),)

    def requirements(self):
        return (("oscillator", self.pairs.n),)


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
    """Static symmetric low-rank synapse within one threshold layer,
    ``E = −½ κ gᵀ U Uᵀ g`` (the paper's LoRA baseline).

    Arguments:
        layer: the threshold layer (``n`` units).
        factors: ``(n, r)`` factor ``U``.
        kappa: energy scale.
    """

    layer: str = eqx.field(static=True)
    factors: Float[Array, "n r"]
    kappa: float = 1.0

    def __init__(self, layer: str, factors, *, kappa: float = 1.0):
        self.layer = _layer_name(layer)
        u = jnp.asarray(factors)
        if u.ndim != 2:
            raise ValueError(f"factors has shape {u.shape}; pass an (n, r) matrix")
        self.factors = _float_array(u, u.shape, "factors")
        self.kappa = kappa

    @property
    def layers(self):
        return (self.layer,)

    def energy(self, g):
        """``−½ κ |Uᵀ g|²`` for the activations ``g`` of the layer."""
        h = self.factors.T @ g.reshape(-1)
        return -0.5 * self.kappa * jnp.dot(h, h)

    def gradient(self, g):
        """``(−κ U Uᵀ g,)`` in the shape of ``g``."""
        return ((-self.kappa * (self.factors @ (self.factors.T @ g.reshape(-1)))).reshape(g.shape),)

    def requirements(self):
        return (("threshold", self.factors.shape[0]),)


class Kuramoto(AbstractSynapse):
    """Generalised Kuramoto synapse on a graph over one oscillator layer:
    ``E = κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ)`` (nodes index the layer's oscillators, flattened).

    Arguments:
        layer: the oscillator layer.
        pairs: the graph (:class:`Pairs`).
        interaction: the pair potential ``F`` (scalar or per-edge parameters).
        kappa: energy scale (the paper's ``κ_K``).
    """

    layer: str = eqx.field(static=True)
    pairs: Pairs
    interaction: AbstractInteraction
    kappa: float = 1.0

    def __check_init__(self):
        _layer_name(self.layer)
        e = self.interaction.num_edges()
        if e is not None and e != self.pairs.num_edges:
            raise ValueError(
                f"interaction has parameters for {e} edges but the graph has {self.pairs.num_edges}"
            )

    @property
    def layers(self):
        return (self.layer,)

    def energy(self, sigma):
        """``κ Σ_(i,j)∈G F_ij(σᵢ·σⱼ)`` for the oscillators ``sigma`` of the layer."""
        p = self.pairs
        sigma = _flat(sigma)
        if p.formulation == "tiles":
            return sum(part.energy(sigma) for part in self.prepare())
        if p.formulation in _EDGE_WISE:
            return self.kappa * jnp.sum(self.interaction(p.dots(sigma)))
        if p.formulation == "neighbours":
            s, _ = p.table_dots(sigma)
            f = _laid_out(self.interaction, p)(s)
            return 0.5 * self.kappa * jnp.sum(jnp.where(p.valid, f, 0.0))
        s = sigma @ sigma.T
        f = _laid_out(self.interaction, p)(s)
        return 0.5 * self.kappa * jnp.sum(p._mask(s.dtype) * f)

    def gradient(self, sigma):
        """``(κ Σⱼ F'_ij σⱼ,)`` for every oscillator of ``sigma``, in the graph's layout."""
        return (self._force(_flat(sigma)).reshape(sigma.shape),)

    def _force(self, sigma):
        p = self.pairs
        if p.formulation == "tiles":
            return sum(part.gradient(sigma)[0] for part in self.prepare())
        if p.formulation == "edges":
            fp = self.interaction.derivative(p.dots(sigma))[:, None]
            return self.kappa * p.scatter(fp * sigma[p.j], fp * sigma[p.i])
        if p.formulation == "bcoo":
            return self.kappa * (p.sparse(self.interaction.derivative(p.dots(sigma))) @ sigma)
        if p.formulation == "neighbours":
            s, sn = p.table_dots(sigma)
            fp = jnp.where(p.valid, _laid_out(self.interaction, p).derivative(s), 0.0)
            return self.kappa * jnp.einsum("nm,nmd->nd", fp, sn)
        inter = _laid_out(self.interaction, p)
        mask = None if _vanishes_off_graph(inter) else p._mask(sigma.dtype)
        return self.kappa * _dense_force(inter, mask, sigma)

    def requirements(self):
        return (("oscillator", self.pairs.n),)

    def prepare(self):
        """This synapse with the interaction's per-edge parameters laid out for the graph's
        formulation (``(n, n)`` matrices or neighbour tables; unchanged for ``"edges"``);
        for ``"tiles"`` two synapses: the kept tiles (parameters as ``(T, block, block)``
        blocks) and the edges left over (an edge-list :class:`Kuramoto` synapse)."""
        p = self.pairs
        if p.formulation == "tiles":
            parts = (_TiledKuramoto(self.layer, p, _laid_out(self.interaction, p, p.tiles), self.kappa),)
            if p.rest is not None:
                rest = _laid_out(self.interaction, p, lambda v: v[p.rest_edge])
                parts += (Kuramoto(self.layer, p.rest, rest, self.kappa),)
            return parts
        if self.pairs.formulation in _EDGE_WISE:
            return (self,)
        return (eqx.tree_at(lambda m: m.interaction, self, _laid_out(self.interaction, self.pairs)),)


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


class _AbstractCoupling(AbstractSynapse):
    """``E = −Σ_(i,j)∈G C_ij gᵢ gⱼ (σᵢ·σⱼ)`` between a threshold layer and an oscillator
    layer of as many units (node ``i`` is threshold unit ``i`` and oscillator ``i``, both
    flattened); subclasses say what ``C`` is."""

    pairs: eqx.AbstractVar[Pairs]
    threshold: eqx.AbstractVar[str]
    oscillators: eqx.AbstractVar[str]

    @property
    def layers(self):
        return (self.threshold, self.oscillators)

    @abc.abstractmethod
    def coefficients(self):
        """``C`` as the graph's formulation uses it: a scalar (one value on every edge), a
        per-edge ``(E,)`` array (``"edges"``), a dense ``(n, n)`` matrix, or an ``(n, m)``
        neighbour table (``"neighbours"``)."""

    def _field(self, g, sigma):
        # Y_i = Σ_j C_ij g_j σ_j  (so that E = −½ Σ_i g_i σ_i·Y_i).
        p = self.pairs
        c = self.coefficients()
        gs = g[:, None] * sigma
        if p.formulation == "neighbours":
            return jnp.einsum("nm,nmd->nd", c, gs[p.nbr])
        if p.formulation == "bcoo":
            return p.sparse(c) @ gs
        if jnp.ndim(c) == 2:
            return c @ gs
        if p.formulation in _DENSE:
            # One scalar on a masked graph: keep it out of the matrix, so that the mask is
            # shared by a whole batch (a sweep over c) and the batch folds into one product.
            return c * (p._mask(gs.dtype) @ gs)
        # One scalar on a complete graph: Σ_{j≠i} c g_j σ_j costs O(n D).
        return c * (jnp.sum(gs, axis=0, keepdims=True) - gs)

    def energy(self, g, sigma):
        """``−Σ_(i,j)∈G C_ij gᵢ gⱼ (σᵢ·σⱼ)`` for activations ``g`` and oscillators ``sigma``."""
        p = self.pairs
        g, sigma = g.reshape(-1), _flat(sigma)
        if p.formulation == "edges":
            return -jnp.sum(self.coefficients() * g[p.i] * g[p.j] * p.dots(sigma))
        return -0.5 * jnp.sum(g[:, None] * sigma * self._field(g, sigma))

    def gradient(self, g, sigma):
        """``(∂E/∂g, ∂E/∂σ)`` in closed form, in the shapes of ``g`` and ``sigma``."""
        dg, ds = self._gradient(g.reshape(-1), _flat(sigma))
        return dg.reshape(g.shape), ds.reshape(sigma.shape)

    def _gradient(self, g, sigma):
        p = self.pairs
        if p.formulation == "edges":
            c = self.coefficients()
            s = p.dots(sigma)
            gi, gj = g[p.i], g[p.j]
            dg = -p.scatter(c * s * gj, c * s * gi)
            w = (c * gi * gj)[:, None]
            return dg, -p.scatter(w * sigma[p.j], w * sigma[p.i])
        y = self._field(g, sigma)
        return -jnp.sum(sigma * y, axis=-1), -g[:, None] * y

    def requirements(self):
        return (("threshold", self.pairs.n), ("oscillator", self.pairs.n))


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
        oscillators: the oscillator layer (one oscillator per threshold unit).
        pairs: the coupling graph ``G_HK`` (:class:`Pairs`).
        weights: scalar or ``(E,)``.
    """

    threshold: str = eqx.field(static=True)
    oscillators: str = eqx.field(static=True)
    pairs: Pairs
    weights: Float[Array, "*e"]

    def __init__(self, threshold: str, oscillators: str, pairs: Pairs, weights):
        self.threshold = _layer_name(threshold, "threshold")
        self.oscillators = _layer_name(oscillators, "oscillators")
        w = jnp.asarray(weights)
        shape = () if w.ndim == 0 else (pairs.num_edges,)
        self.pairs, self.weights = pairs, _float_array(w, shape, "coupling_weights")

    def _laid_out(self) -> bool:
        w, f = self.weights, self.pairs.formulation
        return f in _EDGE_WISE or w.ndim == 2 or (w.ndim == 0 and f in ("all", *_DENSE))

    def coefficients(self):
        if self._laid_out():
            return self.weights
        p = self.pairs
        return p.table(self.weights) if p.formulation == "neighbours" else p.dense(self.weights)

    def prepare(self):
        """This synapse with ``C`` laid out for the graph's formulation (an ``(n, n)`` matrix
        or a neighbour table); unchanged when already laid out, for ``"edges"``, and for a
        scalar ``c`` on a dense or complete graph (kept scalar, see :meth:`coefficients`)."""
        if self._laid_out():
            return (self,)
        return (eqx.tree_at(lambda m: m.weights, self, self.coefficients()),)


class MultiplicativeCoupling(_AbstractCoupling):
    """The Hopfield synapse with oscillator-modulated weights (the paper's
    **multiplicative** coupling, ``C_ij = α W_s,ij``):

    ``E = −κ (b·g + ½ gᵀ W_s g) − α Σ_(i,j)∈G W_s,ij gᵢ gⱼ (σᵢ·σⱼ)``.

    It holds the :class:`Hopfield` synapse itself, so the Hopfield weights are one array,
    shared (tied) by both terms and trained as one; the threshold layer is the Hopfield
    synapse's.

    Arguments:
        oscillators: the oscillator layer (one oscillator per threshold unit).
        hopfield: the Hopfield synapse whose weights the coupling reuses.
        pairs: the coupling graph.
        strength: ``α`` (scalar).
    """

    oscillators: str = eqx.field(static=True)
    hopfield: Hopfield
    pairs: Pairs
    strength: Float[Array, ""]

    def __init__(self, oscillators: str, hopfield: Hopfield, pairs: Pairs, strength=1.0):
        self.oscillators = _layer_name(oscillators, "oscillators")
        if not isinstance(hopfield, Hopfield):
            raise TypeError(f"hopfield must be an hk.synapses.Hopfield synapse, got {type(hopfield).__name__}")
        if hopfield.weights.shape[0] != pairs.n:
            raise ValueError(
                f"the coupling graph has {pairs.n} nodes but the Hopfield weights are "
                f"{hopfield.weights.shape}"
            )
        self.hopfield, self.pairs = hopfield, pairs
        self.strength = _float_array(strength, (), "coupling_weights")

    @property
    def threshold(self) -> str:
        """The threshold layer: the Hopfield synapse's."""
        return self.hopfield.layer

    def coefficients(self):
        ws = self.hopfield.symmetric_weights()
        p = self.pairs
        if p.formulation in _EDGE_WISE:
            return self.strength * ws[p.i, p.j]
        if p.formulation == "neighbours":
            rows = jnp.arange(p.n)[:, None]
            return self.strength * jnp.where(p.valid, ws[rows, p.nbr], 0.0)
        return self.strength * ws * p._mask(ws.dtype)

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
        coupling = eqx.tree_at(lambda m: m.weights, Coupling(self.threshold, self.oscillators, self.pairs, jnp.zeros(())), c)
        return self.hopfield.prepare() + (coupling,)


from .conv import Conv, ConvKuramoto  # noqa: E402
from .attention import Attention  # noqa: E402

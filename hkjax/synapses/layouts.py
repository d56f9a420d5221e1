"""Graphs and their layouts: how the sums over a graph's edges are evaluated.

A graph (:class:`Pairs`) is its edges ``(i, j)``, ``i < j``, on ``n`` nodes, plus a
**layout**, one of a small family of classes that evaluate the edge sums of the Kuramoto
term (``Σ F_ij(σᵢ·σⱼ)`` and its force ``Σⱼ F'_ij σⱼ``) and of the Hopfield–Kuramoto
coupling (``Yᵢ = Σⱼ C_ij gⱼ σⱼ``). All layouts give the same numbers up to round-off; they
differ in speed and memory:

* :class:`NeighbourTable` (``"neighbours"``): a padded neighbour table ``(n, max degree)``;
  every node gathers its neighbours and sums, with no scatter (each edge is visited from
  both ends); memory ``O(n · max degree)``, for graphs too large for a dense layout.
* :class:`EdgeList` (``"edges"``): per-edge gathers and ``segment_sum`` (memory ``O(E)``;
  the way research code usually writes it, kept as the reference and for very sparse
  graphs).
* :class:`SparseMatrix` (``"bcoo"``): per-edge values assembled into a symmetric sparse
  matrix (``jax.experimental.sparse.BCOO``, both orientations of every edge) and applied
  with one sparse–dense product per term (memory ``O(E)``).
* :class:`DenseMask` (``"dense"``): a dense symmetric ``(n, n)`` mask and matrix products
  (best for dense-ish graphs at moderate ``n``; batches fold into matrix–matrix products
  under ``vmap``).
* :class:`Tiles` (``"tiles"``): the ``(n, n)`` matrix cut into square tiles of
  :data:`TILE_BLOCK` rows; the tiles holding at least :data:`TILE_MIN_FILL` of their
  entries as edges are evaluated as dense blocks (one ``lax.map`` over the tiles, a whole
  batch per tile), the edges left in the other tiles as an edge list. The Kuramoto term of
  a graph whose edges cluster near the diagonal (a small-world graph: a ring lattice, a few
  edges rewired) then costs a fraction of the dense layout's, with no per-element gather
  for most edges; the coupling, whose batch folds into one product with a shared ``(n, n)``
  matrix, is evaluated as with :class:`DenseMask`.
* :class:`Complete` (``"all"``): all-to-all graphs without any mask (the coupling then
  costs ``O(n D)`` via ``|Σ gᵢσᵢ|²``, the rank-D structure of the paper).

One rule picks the layout of a graph (``formulation="auto"``, :func:`auto_formulation`):
:class:`Complete` for complete graphs, :class:`Tiles` for graphs of 256 to 4096 nodes and
density ≥ 2.5 % whose edges cluster (small-world graphs: the paper's network, the digits
classifiers with 400 hidden units), :class:`DenseMask` for other graphs of density ≥ 8 %
up to 4096 nodes, and :class:`NeighbourTable` otherwise. XLA:CPU gathers and scatters cost
far more per element than streaming matrix products, so the dense layouts win wherever
the work they waste is moderate; on sparse graphs the dense layout does ``1/density``
times the necessary work and loses by up to 8× (gradients at n = 2048, degree 16).
``benchmarks/formulations.py`` measures every layout over sizes and degrees.

A layout's index arrays are computed from the edges and never saved
(:attr:`Pairs.derived_fields`), so a checkpoint holds a graph's edges only and loads
whatever layout the graph gets when it is rebuilt.

A new layout subclasses :class:`AbstractLayout`: a :meth:`~AbstractLayout.build` from the
edges, the two Kuramoto sums and the coupling field; the other methods have defaults.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Bool, Int

from .. import graphs as _graphs
from ..interactions import AbstractAffineInteraction, AbstractInteraction

__all__ = [
    "Pairs",
    "AbstractLayout",
    "EdgeList",
    "SparseMatrix",
    "NeighbourTable",
    "DenseMask",
    "Tiles",
    "Complete",
    "LAYOUTS",
    "FORMULATIONS",
    "auto_formulation",
    "tile_layout",
    "tile_block",
]


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


def _vanishes_off_graph(inter: AbstractInteraction, ndim: int = 2) -> bool:
    """Whether a laid-out interaction (its per-edge parameters ``ndim``-dimensional: ``(n,
    n)`` matrices, or ``(T, block, block)`` tiles) is already zero off the graph (an affine
    potential whose parameters are all per-edge): then no mask pass is needed."""
    return isinstance(inter, AbstractAffineInteraction) and all(
        jnp.ndim(getattr(inter, q)) == ndim for q in inter.param_names
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


#: The batched edge-list force (:func:`_edge_force_batch`) walks the edges in chunks whose
#: gathered oscillators (a whole batch) take about this many bytes, so that they stay in cache.
EDGE_CHUNK_BYTES = 2**21


def _edge_force_batch(interaction: AbstractInteraction, pairs: Pairs, sigma):
    """``Σⱼ F'ᵢⱼ(σᵢ·σⱼ) σⱼ`` over the edges of ``pairs`` for a batch of oscillators
    ``sigma`` ``(B, n, d)``: the edge list's force of every example at once.

    ``jax.vmap`` of the per-example force gathers and scatters rows of ``d`` numbers per
    example and builds ``(B, E, d)`` intermediates that leave the cache. Here the batch is
    moved to the last axis, so that every edge gathers and scatters one contiguous row of
    ``d·B`` numbers, and the edges are walked in chunks (:data:`EDGE_CHUNK_BYTES`) whose
    intermediates stay in cache. The leftover edges of the paper's tiled small-world graph
    (its rewired edges) use it, in every vector-field evaluation of a batched training step
    (``benchmarks/default_path.py``; ``benchmarks/revision_ab.py`` against a base revision).

    Its derivative is a custom JVP computed in the same chunked walk (``dF'`` of an edge is
    ``F'' (dσᵢ·σⱼ + σᵢ·dσⱼ) + ∂F'/∂θ · dθ``), its body rematerialised so that reverse mode
    (the transpose JAX derives) recomputes a chunk's gathers instead of storing them.
    Per-edge parameters are the interaction's ``(E,)`` arrays; others are shared by every
    edge. ``tests/test_synapses.py`` checks value, both modes and chunking against the
    per-example force."""
    b, n, d = sigma.shape
    e = pairs.num_edges
    if e == 0:
        return jnp.zeros_like(sigma)
    dyn, static = eqx.partition(interaction, eqx.is_array)
    per_edge = [q for q in interaction.param_names if jnp.ndim(getattr(interaction, q)) == 1]
    size = max(1, min(e, EDGE_CHUNK_BYTES // (d * b * jnp.dtype(sigma.dtype).itemsize)))
    count = -(-e // size)

    def chunks(v):  # (E,) -> (count, size), padded
        return jnp.pad(v, (0, count * size - e)).reshape(count, size)

    def columns(inter):  # the per-edge parameters, in chunks
        return [chunks(getattr(inter, q)) for q in per_edge]

    def at(inter, cols):  # the interaction with one chunk's per-edge parameters, (size, 1)
        return eqx.tree_at(lambda m: [getattr(m, q) for q in per_edge], inter, [c[:, None] for c in cols]) \
            if per_edge else inter

    def fprime(inter, ok, s):  # F' of a chunk's edges (size, B), zero on the padding
        return jnp.where(ok[:, None], inter.derivative(s), 0.0)

    def batch_last(x):
        return jnp.moveaxis(x, 0, -1)

    # the graph is an argument, not a closure: under jit its index arrays are tracers, which a
    # custom JVP must not close over
    @jax.custom_jvp
    def force(p, sig, ii, jj, ok):
        inter, st = eqx.combine(p, static), batch_last(sig)

        def body(acc, x):
            i, j, o, cols = x
            si, sj = st[i], st[j]
            fp = fprime(at(inter, cols), o, jnp.sum(si * sj, axis=1))[:, None, :]
            return acc.at[i].add(fp * sj).at[j].add(fp * si), None

        out, _ = jax.lax.scan(body, jnp.zeros_like(st), (ii, jj, ok, columns(inter)))
        return jnp.moveaxis(out, -1, 0)

    def force_jvp(primals, tangents):
        p, sig, ii, jj, ok = primals
        dp, dsig = tangents[:2]
        zero = jax.custom_derivatives.SymbolicZero
        is_zero = lambda t: isinstance(t, zero)  # noqa: E731
        with_params = any(not is_zero(t) for t in jax.tree_util.tree_leaves(dp, is_leaf=is_zero))
        with_sigma = not is_zero(dsig)
        dp = jax.tree_util.tree_map(lambda t, x: jnp.zeros_like(x) if is_zero(t) else t, dp, p, is_leaf=is_zero)
        inter, dinter = eqx.combine(p, static), eqx.combine(dp, static)
        st = batch_last(sig)
        dst = batch_last(dsig) if with_sigma else None

        def body(acc, x):
            i, j, o, cols, dcols = x
            si, sj = st[i], st[j]
            s = jnp.sum(si * sj, axis=1)
            q = at(inter, cols)
            fp, fpp = jax.jvp(lambda t: fprime(q, o, t), (s,), (jnp.ones_like(s),))  # F', F''
            dfp = jnp.zeros_like(s)
            if with_params:
                qd, qs = eqx.partition(q, eqx.is_array)
                _, h = jax.jvp(lambda r: fprime(eqx.combine(r, qs), o, s), (qd,),
                               (eqx.filter(at(dinter, dcols), eqx.is_array),))
                dfp = dfp + h
            if with_sigma:
                dsi, dsj = dst[i], dst[j]
                dfp = dfp + fpp * jnp.sum(dsi * sj + si * dsj, axis=1)
            fp, dfp = fp[:, None, :], dfp[:, None, :]
            tan_i, tan_j = dfp * sj, dfp * si
            if with_sigma:
                tan_i, tan_j = tan_i + fp * dsj, tan_j + fp * dsi
            out, tan = acc
            return (out.at[i].add(fp * sj).at[j].add(fp * si), tan.at[i].add(tan_i).at[j].add(tan_j)), None

        (out, tan), _ = jax.lax.scan(jax.checkpoint(body), (jnp.zeros_like(st), jnp.zeros_like(st)),
                                     (ii, jj, ok, columns(inter), columns(dinter)))
        return jnp.moveaxis(out, -1, 0), jnp.moveaxis(tan, -1, 0)

    force.defjvp(force_jvp, symbolic_zeros=True)
    return force(dyn, sigma, chunks(pairs.i), chunks(pairs.j), chunks(jnp.ones(e, bool)))


def _over_tiles(interactions, tiles: Tiles, sigmas, body):
    """``lax.map`` of ``body(inters, valid, rows, cols)`` over the kept tiles of ``tiles``. ``interactions`` are interactions of one structure (an interaction, and in
    a JVP its tangent); ``inters`` holds them with the tile's block in place of any laid-out
    ``(T, block, block)`` parameters. ``sigmas`` are ``(n, d)`` arrays (σ, and its tangent);
    ``rows`` and ``cols`` hold their blocks of the tile's rows and columns. ``valid`` is the
    tile's edge mask (``None`` when the laid-out parameters vanish off the graph). Under
    ``vmap`` the batch sits inside every tile's products, so that each tile's ``(batch,
    block, block)`` intermediates stay small."""
    first = interactions[0]
    n = sigmas[0].shape[0]
    block = tiles.edge.shape[1]
    nb = -(-n // block)
    padded = [jnp.pad(x, ((0, nb * block - n), (0, 0))).reshape(nb, block, -1) for x in sigmas]
    laid_out = [q for q in first.param_names if jnp.ndim(getattr(first, q)) == 3]
    valid = None if _vanishes_off_graph(first, 3) else tiles.valid
    blocks = [[getattr(m, q) for q in laid_out] for m in interactions]

    def one(args):
        r, c, blocks, v = args
        # the tile's blocks in place of the (T, block, block) arrays, which the body never sees
        inters = [eqx.tree_at(lambda m: [getattr(m, q) for q in laid_out], m, bl) if laid_out else m
                  for m, bl in zip(interactions, blocks)]
        return body(inters, v, [x[r] for x in padded], [x[c] for x in padded])

    # Rematerialised: the backward pass recomputes a tile's (batch, block, block) products
    # instead of stacking them for every tile (training step 6-7 % faster, formulation_ab.py)
    one = jax.checkpoint(one)
    return jax.lax.map(one, (tiles.rows, tiles.cols, blocks, valid)), nb, block


def _tile_force(interaction: AbstractInteraction, tiles: Tiles, sigma):
    """``Σⱼ F'ᵢⱼ(σᵢ·σⱼ) σⱼ`` over the edges inside the kept tiles of ``tiles``:
    per tile ``(I, J)``, ``K σ_J`` summed into the rows of block ``I``, ``K = valid ⊙
    F'(σ_I σ_Jᵀ)``. The laid-out parameters must be symmetric (tile ``(J, I)`` holds the
    transpose of tile ``(I, J)``), as :meth:`Tiles.tiles` makes them.

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
    def force(d, sig, tiles):
        def body(inters, v, rows, cols):
            return fprime(inters[0], v, rows[0] @ cols[0].T) @ cols[0]

        out, nb, _ = _over_tiles((eqx.combine(d, static),), tiles, (sig,), body)
        return into(out, tiles.rows, nb)

    def force_jvp(primals, tangents):
        d, sig, tiles = primals
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
            (eqx.combine(d, static), eqx.combine(dd, static)), tiles, (sig, dsig), body)
        return into(out, tiles.rows, nb), into(tan_r, tiles.rows, nb) + into(tan_c, tiles.cols, nb)

    force.defjvp(force_jvp, symbolic_zeros=True)
    return force(dyn, sigma, tiles)


def _tile_energy(interaction: AbstractInteraction, tiles: Tiles, sigma):
    """``Σ_(i,j) F_ij(σᵢ·σⱼ)`` over the edges inside the kept tiles (each edge once)."""

    def body(inters, v, rows, cols):
        f = inters[0](rows[0] @ cols[0].T)
        return jnp.sum(f if v is None else jnp.where(v, f, 0.0))

    out, _, _ = _over_tiles((interaction,), tiles, (sigma,), body)
    return 0.5 * jnp.sum(out)  # every edge sits in two orientations among the kept tiles


def _laid_out(interaction: AbstractInteraction, lay_out):
    """The interaction with its per-edge (1-d, ``(E,)``) parameters mapped through
    ``lay_out``; parameters already laid out (not 1-d) and shared ones are left alone."""
    names = [p for p in interaction.param_names if jnp.ndim(getattr(interaction, p)) == 1]
    if not names:
        return interaction
    return eqx.tree_at(
        lambda m: [getattr(m, p) for p in names],
        interaction,
        [lay_out(getattr(interaction, p)) for p in names],
    )


class Pairs(eqx.Module):
    """The edges ``(i, j)``, ``i < j``, of a graph on ``n`` nodes, and its layout: how
    sums over them are evaluated (an :class:`AbstractLayout`).

    Arguments:
        edges: ``(E, 2)`` integer array of the graph (see :mod:`hkjax.graphs`) or ``"all"``.
        n: number of nodes.
        formulation: the layout, by name (one of :data:`FORMULATIONS`; ``"auto"``:
            :func:`auto_formulation`) or as a subclass of :class:`AbstractLayout`.
        name: how errors name ``edges``.

    Only the edges are state: the layout's index arrays (masks, neighbour tables, tiles)
    are computed from them and are not saved in checkpoints (:attr:`derived_fields`), so a
    checkpoint loads whatever layout the graph gets when it is rebuilt.
    """

    #: The fields computed from the edges (not saved by :mod:`hkjax.checkpoint`).
    derived_fields: ClassVar[tuple[str, ...]] = ("layout",)

    i: Int[Array, " e"]
    j: Int[Array, " e"]
    layout: AbstractLayout | None
    n: int = eqx.field(static=True)

    def __init__(self, edges, n: int, *, formulation="auto", name: str = "edges"):
        if isinstance(edges, str):
            if edges != "all":
                raise ValueError(f"{name}={edges!r}: pass an (E, 2) integer array or 'all'")
            edges = _graphs.all_to_all(n)
        e = _graphs.validate_edges(edges, n, name=name)
        if isinstance(formulation, type) and issubclass(formulation, AbstractLayout):
            cls = formulation
        elif formulation == "auto":
            cls = LAYOUTS[auto_formulation(n, e.shape[0], e)]
        elif isinstance(formulation, str) and formulation in LAYOUTS:
            cls = LAYOUTS[formulation]
        else:
            raise ValueError(f"formulation={formulation!r}; choose one of {FORMULATIONS} or pass a layout class")
        self.n = n
        self.i = jnp.asarray(e[:, 0], dtype=jnp.int32)
        self.j = jnp.asarray(e[:, 1], dtype=jnp.int32)
        self.layout = cls.build(e, n, name=name)

    @property
    def formulation(self) -> str:
        """The name of the layout (:attr:`AbstractLayout.name`)."""
        return self.layout.name

    @property
    def num_edges(self) -> int:
        """The number of edges ``E``."""
        return self.i.shape[0]

    def dots(self, sigma):
        """``s_e = σ_i·σ_j`` for every edge, of oscillators ``sigma`` ``(n, dim)``."""
        return jnp.sum(sigma[self.i] * sigma[self.j], axis=-1)

    def dense(self, values):
        """A symmetric ``(n, n)`` matrix with per-edge ``values`` ``(E,)`` on the edges, zero
        elsewhere."""
        values = jnp.asarray(values)
        m = jnp.zeros((self.n, self.n), values.dtype)
        return m.at[self.i, self.j].set(values).at[self.j, self.i].set(values)

    def scatter(self, per_edge_i, per_edge_j):
        """``Σ_{e: i_e = k} a_e + Σ_{e: j_e = k} b_e`` for every node ``k``, with ``a =
        per_edge_i`` and ``b = per_edge_j``."""
        return jax.ops.segment_sum(per_edge_i, self.i, self.n) + jax.ops.segment_sum(per_edge_j, self.j, self.n)


class AbstractLayout(eqx.Module):
    """How the sums over the edges of a graph (:class:`Pairs`) are evaluated.

    Every method takes the graph itself (``pairs``, whose :attr:`Pairs.layout` this is)
    and oscillators ``sigma`` as ``(n, dim)`` rows. Per-edge parameters arrive either as
    ``(E,)`` arrays or already laid out by :meth:`lay_out` (any array that is not 1-d);
    shared parameters as scalars.

    A subclass gives :attr:`name`, :meth:`build`, :meth:`kuramoto_energy`,
    :meth:`kuramoto_force` and :meth:`coupling_field`; the rest have defaults.
    """

    #: The layout's name (``formulation=`` of :class:`Pairs`).
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def build(cls, edges: np.ndarray, n: int, *, name: str = "edges") -> "AbstractLayout":
        """The layout of the validated ``(E, 2)`` ``edges`` on ``n`` nodes (``name``: how
        errors name them)."""

    def lay_out(self, pairs: Pairs, values):
        """Per-edge ``values`` ``(E,)`` of the graph ``pairs`` as this layout uses them
        (unchanged by default)."""
        return values

    @abc.abstractmethod
    def kuramoto_energy(self, pairs: Pairs, interaction: AbstractInteraction, sigma):
        """``Σ_(i,j) F_ij(σᵢ·σⱼ)``, every edge once.

        Arguments:
            pairs: the graph.
            interaction: the pair potential ``F``, per-edge parameters ``(E,)`` or laid out.
            sigma: oscillators ``(n, dim)``.
        """

    @abc.abstractmethod
    def kuramoto_force(self, pairs: Pairs, interaction: AbstractInteraction, sigma):
        """``Σⱼ F'_ij(σᵢ·σⱼ) σⱼ`` for every node ``i``, ``(n, dim)``: the gradient of
        :meth:`kuramoto_energy` in ``σᵢ`` (``pairs``, ``interaction`` and ``sigma`` as
        there)."""

    def kuramoto_force_batch(self, pairs: Pairs, interaction: AbstractInteraction, sigma):
        """:meth:`kuramoto_force` of a whole batch, what :func:`hkjax.relax_batch` evaluates
        (default: ``jax.vmap`` of it; a layout whose batch has a faster form overrides it).

        Arguments:
            pairs: the graph.
            interaction: the pair potential ``F``, as for :meth:`kuramoto_force`.
            sigma: oscillators ``(B, n, dim)``, a leading batch axis.

        Returns:
            ``(B, n, dim)``: the force of every example.
        """
        return jax.vmap(lambda s: self.kuramoto_force(pairs, interaction, s))(sigma)

    def kuramoto_parts(self, pairs: Pairs, interaction: AbstractInteraction):
        """``((graph, interaction), ...)`` whose Kuramoto terms add up to that of
        ``interaction`` on the graph ``pairs``, with the parameters laid out once for
        repeated evaluation (what :meth:`hkjax.synapses.Kuramoto.prepare` makes)."""
        return ((pairs, self._laid(pairs, interaction)),)

    def _laid(self, pairs: Pairs, interaction: AbstractInteraction):
        # the interaction with its per-edge parameters laid out by lay_out
        return _laid_out(interaction, lambda v: self.lay_out(pairs, v))

    @abc.abstractmethod
    def coupling_field(self, pairs: Pairs, c, gs):
        """``Yᵢ = Σⱼ C_ij (gs)ⱼ`` over the edges of the graph ``pairs``.

        Arguments:
            pairs: the graph.
            c: the coefficients ``C``: a scalar (the same on every edge), per-edge ``(E,)``,
                or laid out by :meth:`lay_out`.
            gs: ``g σ``, ``(n, dim)``.
        """

    def coefficients_of(self, pairs: Pairs, matrix):
        """``C_ij = M_ij`` on the edges of the graph ``pairs``, from a dense symmetric ``(n,
        n)`` ``matrix`` ``M``, laid out as :meth:`coupling_field` takes it (default:
        gathered per edge)."""
        return matrix[pairs.i, pairs.j]

    def coupling_energy(self, pairs: Pairs, c, g, sigma):
        """``−Σ_(i,j) C_ij gᵢ gⱼ (σᵢ·σⱼ)`` over the edges of the graph ``pairs`` (``c`` as
        for :meth:`coupling_field`; activations ``g`` ``(n,)``, oscillators ``sigma`` ``(n,
        dim)``)."""
        return -0.5 * jnp.sum(g[:, None] * sigma * self.coupling_field(pairs, c, g[:, None] * sigma))

    def coupling_gradient(self, pairs: Pairs, c, g, sigma):
        """``(∂E/∂g, ∂E/∂σ)`` of :meth:`coupling_energy` (``pairs``, ``c``, ``g``,
        ``sigma`` as there)."""
        y = self.coupling_field(pairs, c, g[:, None] * sigma)
        return -jnp.sum(sigma * y, axis=-1), -g[:, None] * y


class EdgeList(AbstractLayout):
    """Per-edge gathers and ``segment_sum`` (memory ``O(E)``); the reference layout."""

    name: ClassVar[str] = "edges"

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        return cls()

    def kuramoto_energy(self, pairs, interaction, sigma):
        return jnp.sum(interaction(pairs.dots(sigma)))

    def kuramoto_force(self, pairs, interaction, sigma):
        fp = interaction.derivative(pairs.dots(sigma))[:, None]
        return pairs.scatter(fp * sigma[pairs.j], fp * sigma[pairs.i])

    def kuramoto_force_batch(self, pairs, interaction, sigma):
        """The force of a whole batch (``pairs``, ``interaction`` and ``sigma`` ``(B, n,
        dim)`` as for :meth:`AbstractLayout.kuramoto_force_batch`), in chunks of edges with
        the batch as the last axis (:func:`_edge_force_batch`)."""
        return _edge_force_batch(interaction, pairs, sigma)

    def coupling_field(self, pairs, c, gs):
        return pairs.scatter(jnp.asarray(c)[..., None] * gs[pairs.j], jnp.asarray(c)[..., None] * gs[pairs.i])

    def coupling_energy(self, pairs, c, g, sigma):
        return -jnp.sum(c * g[pairs.i] * g[pairs.j] * pairs.dots(sigma))

    def coupling_gradient(self, pairs, c, g, sigma):
        s = pairs.dots(sigma)
        gi, gj = g[pairs.i], g[pairs.j]
        dg = -pairs.scatter(c * s * gj, c * s * gi)
        w = (c * gi * gj)[:, None]
        return dg, -pairs.scatter(w * sigma[pairs.j], w * sigma[pairs.i])


class SparseMatrix(AbstractLayout):
    """Per-edge values assembled into a symmetric sparse BCOO matrix (both orientations of
    every edge), applied with one sparse–dense product per term (memory ``O(E)``)."""

    name: ClassVar[str] = "bcoo"
    #: both orientations of every edge, ``(i, j)`` then ``(j, i)``: the BCOO's indices
    both: Int[Array, "2e 2"]

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        return cls(jnp.asarray(np.concatenate([edges, edges[:, ::-1]]), jnp.int32))

    def sparse(self, pairs: Pairs, values):
        """The symmetric ``(n, n)`` BCOO matrix with ``values`` (scalar or per-edge) on the
        edges of the graph ``pairs``."""
        values = jnp.broadcast_to(jnp.asarray(values), (pairs.num_edges,))
        return jsparse.BCOO((jnp.concatenate([values, values]), self.both), shape=(pairs.n, pairs.n),
                            unique_indices=True)

    def kuramoto_energy(self, pairs, interaction, sigma):
        return jnp.sum(interaction(pairs.dots(sigma)))

    def kuramoto_force(self, pairs, interaction, sigma):
        return self.sparse(pairs, interaction.derivative(pairs.dots(sigma))) @ sigma

    def coupling_field(self, pairs, c, gs):
        return self.sparse(pairs, c) @ gs


class NeighbourTable(AbstractLayout):
    """A padded neighbour table ``(n, max degree)``: every node gathers its neighbours and
    sums, with no scatter (memory ``O(n · max degree)``).

    Arguments:
        nbr: every node's neighbours, ``(n, m)``.
        slot_edge: the index of the edge in each slot.
        valid: which slots hold an edge (the others are padding).
    """

    name: ClassVar[str] = "neighbours"
    #: every node's neighbours, the index of the edge in each slot, and which slots hold one
    nbr: Int[Array, "n m"]
    slot_edge: Int[Array, "n m"]
    valid: Bool[Array, "n m"]

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        nbr, slot_edge, valid = _graphs.neighbour_lists(edges, n)
        return cls(jnp.asarray(nbr, jnp.int32), jnp.asarray(slot_edge, jnp.int32), jnp.asarray(valid, bool))

    def lay_out(self, pairs, values):
        """Per-edge ``values`` (scalar or ``(E,)``) of the graph ``pairs`` as an ``(n, m)``
        table, zero on padding slots."""
        values = jnp.asarray(values)
        v = values if values.ndim == 0 else values[self.slot_edge]
        return jnp.where(self.valid, v, jnp.zeros((), values.dtype))

    def table_dots(self, sigma):
        """``σ_v·σ_nbr(v, slot)`` as an ``(n, m)`` table, and the gathered ``σ_nbr``, of
        oscillators ``sigma`` ``(n, dim)``."""
        sn = sigma[self.nbr]
        return jnp.einsum("nd,nmd->nm", sigma, sn), sn

    def kuramoto_energy(self, pairs, interaction, sigma):
        s, _ = self.table_dots(sigma)
        f = self._laid(pairs, interaction)(s)
        return 0.5 * jnp.sum(jnp.where(self.valid, f, 0.0))

    def kuramoto_force(self, pairs, interaction, sigma):
        s, sn = self.table_dots(sigma)
        fp = jnp.where(self.valid, self._laid(pairs, interaction).derivative(s), 0.0)
        return jnp.einsum("nm,nmd->nd", fp, sn)

    def coupling_field(self, pairs, c, gs):
        c = self.lay_out(pairs, c) if jnp.ndim(c) < 2 else c
        return jnp.einsum("nm,nmd->nd", c, gs[self.nbr])

    def coefficients_of(self, pairs, matrix):
        rows = jnp.arange(pairs.n)[:, None]
        return jnp.where(self.valid, matrix[rows, self.nbr], 0.0)


class _AbstractMatrix(AbstractLayout):
    """Layouts that evaluate the coupling with dense ``(n, n)`` products and a mask."""

    @abc.abstractmethod
    def mask(self, pairs: Pairs, dtype):
        """The symmetric ``(n, n)`` adjacency matrix of the graph ``pairs`` in ``dtype``."""

    def lay_out(self, pairs, values):
        """Per-edge ``values`` (scalar or ``(E,)``) of the graph ``pairs`` as a symmetric
        ``(n, n)`` matrix."""
        values = jnp.asarray(values)
        if values.ndim == 0:
            return values * self.mask(pairs, values.dtype)
        return pairs.dense(values)

    def kuramoto_energy(self, pairs, interaction, sigma):
        s = sigma @ sigma.T
        f = self._laid(pairs, interaction)(s)
        return 0.5 * jnp.sum(self.mask(pairs, s.dtype) * f)

    def kuramoto_force(self, pairs, interaction, sigma):
        inter = self._laid(pairs, interaction)
        mask = None if _vanishes_off_graph(inter) else self.mask(pairs, sigma.dtype)
        return _dense_force(inter, mask, sigma)

    def coupling_field(self, pairs, c, gs):
        if jnp.ndim(c) == 2:
            return c @ gs
        # One scalar on a masked graph: keep it out of the matrix, so that the mask is
        # shared by a whole batch (a sweep over c) and the batch folds into one product.
        return c * (self.mask(pairs, gs.dtype) @ gs)

    def coefficients_of(self, pairs, matrix):
        return matrix * self.mask(pairs, matrix.dtype)


class DenseMask(_AbstractMatrix):
    """A dense symmetric ``(n, n)`` mask and matrix products.

    Arguments:
        adjacency: the graph's ``(n, n)`` boolean adjacency matrix.
    """

    name: ClassVar[str] = "dense"
    #: the adjacency matrix
    adjacency: Bool[Array, "n n"]

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        return cls(jnp.asarray(_graphs.to_dense(edges, n), dtype=bool))

    def mask(self, pairs, dtype):
        return self.adjacency.astype(dtype)


class Complete(_AbstractMatrix):
    """A complete graph: no mask, and the coupling of one scalar costs ``O(n D)``."""

    name: ClassVar[str] = "all"

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        if edges.shape[0] != n * (n - 1) // 2:
            raise ValueError(
                f"formulation='all' needs a complete graph; {name} has {edges.shape[0]} of {n * (n - 1) // 2} edges")
        return cls()

    def mask(self, pairs, dtype):
        return 1.0 - jnp.eye(pairs.n, dtype=dtype)

    def coupling_field(self, pairs, c, gs):
        if jnp.ndim(c) == 2:
            return c @ gs
        # One scalar on a complete graph: Σ_{j≠i} c g_j σ_j costs O(n D).
        return c * (jnp.sum(gs, axis=0, keepdims=True) - gs)


class Tiles(_AbstractMatrix):
    """The Kuramoto term on dense tiles of the ``(n, n)`` matrix where the graph's edges
    cluster, plus an edge list for the rest (:func:`tile_layout`); the coupling as with
    :class:`DenseMask`.

    Arguments:
        adjacency: the graph's ``(n, n)`` boolean adjacency matrix (for the coupling).
        rows: the kept tiles' block rows ``(T,)``.
        cols: their block columns ``(T,)``.
        edge: for every entry of every kept tile, the index of its edge ``(T, block, block)``.
        valid: whether the entry is an edge.
        rest: the edges outside the kept tiles, an edge-list graph (``None``: none).
        rest_edge: their indices among the graph's edges.
    """

    name: ClassVar[str] = "tiles"
    adjacency: Bool[Array, "n n"]
    #: the kept tiles' block rows and columns, per-entry edge indices and validity
    rows: Int[Array, " t"]
    cols: Int[Array, " t"]
    edge: Int[Array, "t b b"]
    valid: Bool[Array, "t b b"]
    #: the edges outside the kept tiles (an edge-list graph), and their indices in this graph
    rest: Pairs | None
    rest_edge: Int[Array, " r"] | None

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        rows, cols, edge, valid, rest = tile_layout(edges, n)
        leftover = Pairs(edges[rest], n, formulation="edges", name=name) if rest.size else None
        return cls(jnp.asarray(_graphs.to_dense(edges, n), dtype=bool), jnp.asarray(rows, jnp.int32),
                   jnp.asarray(cols, jnp.int32), jnp.asarray(edge, jnp.int32), jnp.asarray(valid, bool),
                   leftover, jnp.asarray(rest, jnp.int32) if rest.size else None)

    def mask(self, pairs, dtype):
        return self.adjacency.astype(dtype)

    def tiles(self, values):
        """Per-edge ``values`` ``(E,)`` laid out on the kept tiles, ``(T, block, block)``,
        zero on entries that are no edge."""
        values = jnp.asarray(values)
        return jnp.where(self.valid, values[self.edge], jnp.zeros((), values.dtype))

    def kuramoto_parts(self, pairs, interaction):
        """For ``interaction`` on the graph ``pairs``: the kept tiles (a graph with this
        layout and no leftover edges, the parameters laid out as ``(T, block, block)``
        tiles) and the leftover edges (an edge list)."""
        inside = eqx.tree_at(lambda p: p.layout, pairs, dataclasses.replace(self, rest=None, rest_edge=None))
        parts = ((inside, _laid_out(interaction, self.tiles)),)
        if self.rest is not None:
            parts += ((self.rest, self._leftover(interaction)),)
        return parts

    def _leftover(self, interaction):
        # the interaction with its per-edge parameters restricted to the leftover edges
        return _laid_out(interaction, lambda v: v[self.rest_edge])

    def kuramoto_energy(self, pairs, interaction, sigma):
        energy = _tile_energy(_laid_out(interaction, self.tiles), self, sigma)
        if self.rest is not None:
            energy = energy + self.rest.layout.kuramoto_energy(self.rest, self._leftover(interaction), sigma)
        return energy

    def kuramoto_force(self, pairs, interaction, sigma):
        force = _tile_force(_laid_out(interaction, self.tiles), self, sigma)
        if self.rest is not None:
            force = force + self.rest.layout.kuramoto_force(self.rest, self._leftover(interaction), sigma)
        return force

    def kuramoto_force_batch(self, pairs, interaction, sigma):
        inter = _laid_out(interaction, self.tiles)
        force = jax.vmap(lambda s: _tile_force(inter, self, s))(sigma)
        if self.rest is not None:
            force = force + self.rest.layout.kuramoto_force_batch(self.rest, self._leftover(interaction), sigma)
        return force


#: The layouts by name (``formulation=`` of :class:`Pairs`).
LAYOUTS: dict[str, type[AbstractLayout]] = {
    c.name: c for c in (NeighbourTable, EdgeList, SparseMatrix, DenseMask, Tiles, Complete)}
#: The names ``formulation=`` takes: ``"auto"`` and those of :data:`LAYOUTS`.
FORMULATIONS = ("auto", *LAYOUTS)

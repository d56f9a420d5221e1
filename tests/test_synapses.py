"""Tests for hkjax.synapses.

* every synapse names the layers it binds, takes one value per bound layer, and its
  closed-form ``gradient`` (one entry per bound layer) equals ``jax.grad(energy)``;
* every energy equals its formula written out edge by edge with NumPy loops;
* all formulations ("edges", "dense", "neighbours", ... and "all" on complete graphs) give
  the same energies and gradients (float64, 1e-10 relative);
* ``prepare()`` preserves the total energy and gradient;
* rotation invariance is what ``rotation_invariant`` claims;
* constructor errors name the argument.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    COMPLETE_FORMULATIONS,
    COUPLINGS,
    INTERACTIONS,
    SPARSE_FORMULATIONS,
    assert_rel_close,
    random_orthogonal,
    unit_rows,
)

import hkjax as hk
from hkjax import graphs
from hkjax import interactions as I
from hkjax.synapses import layouts
from hkjax.synapses import (
    Bias,
    Coupling,
    Dense,
    Hopfield,
    Kuramoto,
    LowRank,
    MultiplicativeCoupling,
    Pairs,
    Stimulus,
    auto_formulation,
)

D = 3
KAPPA_H, KAPPA_K = 0.3, 1.7
#: The layers the synapses bind: threshold units (values g) and oscillators (values σ).
TH, OSC = "x", "sigma"

#: A sparse graph with unequal degrees, a degree-one node (4) and an isolated node (6):
#: padding of neighbour tables, empty segments of scatters, masks all get exercised.
SPARSE_N = 7
SPARSE_EDGES = graphs.validate_edges(
    np.array([[0, 1], [0, 2], [0, 3], [0, 5], [1, 2], [2, 3], [3, 5], [1, 5], [2, 4]]), SPARSE_N
)
COMPLETE_N = 5
COMPLETE_EDGES = graphs.all_to_all(COMPLETE_N)

GRAPHS = {"sparse": (SPARSE_N, SPARSE_EDGES), "complete": (COMPLETE_N, COMPLETE_EDGES)}
#: (graph, formulation) pairs for the per-synapse checks: every formulation on the sparse
#: graph, plus "all" on the complete graph (the complete graph in every other formulation
#: is covered by the formulations-agree tests).
GRAPH_FORMULATIONS = [("sparse", f) for f in SPARSE_FORMULATIONS] + [("complete", "all")]
GF_IDS = [f"{g}-{f}" for g, f in GRAPH_FORMULATIONS]

SEEDS = (0, 1)


# ---------------------------------------------------------------------------------------
# Builders: the same parameters in every formulation
# ---------------------------------------------------------------------------------------


def _inputs(n, seed):
    kg, ks = jax.random.split(jax.random.key(100 + seed))
    g = jax.random.normal(kg, (n,))
    return g, unit_rows(ks, n, D)


def _hopfield(n, seed):
    kw, kb = jax.random.split(jax.random.key(200 + seed))
    return Hopfield(TH, jax.random.normal(kw, (n, n)), jax.random.normal(kb, (n,)), kappa=KAPPA_H)


def _kuramoto(interaction, graph, formulation, seed, *, shared=False):
    n, edges = GRAPHS[graph]
    pairs = Pairs(edges, n, formulation=formulation)
    inter = interaction if shared else interaction.per_edge(len(edges), key=jax.random.key(300 + seed), scale=0.8)
    return Kuramoto(OSC, pairs, inter, kappa=KAPPA_K)


def _coupling(coupling, graph, formulation, seed):
    n, edges = GRAPHS[graph]
    pairs = Pairs(edges, n, formulation=formulation)
    key = jax.random.key(400 + seed)
    if coupling == "full":
        return Coupling(TH, OSC, pairs, jax.random.normal(key, (len(edges),)))
    if coupling == "additive":
        return Coupling(TH, OSC, pairs, 0.7)
    return MultiplicativeCoupling(OSC, _hopfield(n, seed), pairs, jnp.asarray(0.6))


def _args(syn, g, sigma):
    """The values of the layers ``syn`` binds, in its order (``g`` for the threshold layer,
    ``σ`` for the oscillators)."""
    values = {TH: g, OSC: sigma}
    return tuple(values[name] for name in syn.layers)


@eqx.filter_jit
def _energy_and_gradients(syn, g, sigma):
    args = _args(syn, g, sigma)
    e = syn.energy(*args)
    auto = jax.grad(syn.energy, argnums=tuple(range(len(args))))(*args)
    closed = syn.gradient(*args)
    return e, auto, closed


def _check_gradient(syn, g, sigma, *, layers):
    """``syn`` binds ``layers``; its closed-form gradient has one entry per bound layer, of
    that layer's value's shape, equal to autodiff. Returns the energy."""
    assert syn.layers == layers
    e, auto, closed = _energy_and_gradients(syn, g, sigma)
    assert e.shape == () and jnp.isfinite(e)
    assert isinstance(closed, tuple) and len(closed) == len(layers)
    for name, a, c, v in zip(layers, auto, closed, _args(syn, g, sigma), strict=True):
        assert c.shape == v.shape, (name, c.shape, v.shape)
        assert_rel_close(c, a, 1e-10, f"dE/d{name}")
    return e


# ---------------------------------------------------------------------------------------
# Independent references: the energies written out edge by edge
# ---------------------------------------------------------------------------------------


def _np(a):
    return np.asarray(a, dtype=np.float64)


def _ref_kuramoto(sigma, interaction, edges, seed, shared):
    """``κ Σ_e F_e(σ_i·σ_j)``: the alignments by a NumPy loop over the edges, the potential
    evaluated edge by edge (checked against its closed form in test_interactions)."""
    inter = interaction if shared else interaction.per_edge(len(edges), key=jax.random.key(300 + seed), scale=0.8)
    s = _np(sigma)
    dots = np.array([s[i] @ s[j] for i, j in edges])
    return KAPPA_K * float(np.sum(_np(inter(jnp.asarray(dots)))))


def _coupling_coefficients(coupling, n, edges, seed):
    """``C_e`` per edge, independently of the library."""
    if coupling == "full":
        return _np(jax.random.normal(jax.random.key(400 + seed), (len(edges),)))
    if coupling == "additive":
        return np.full(len(edges), 0.7)
    w = _np(_hopfield(n, seed).weights)
    ws = 0.5 * (w + w.T)
    return np.array([0.6 * ws[i, j] for i, j in edges])


def _ref_hopfield(n, g, seed):
    h = _hopfield(n, seed)
    w, b, gn = _np(h.weights), _np(h.bias), _np(g)
    ws = 0.5 * (w + w.T)
    return -KAPPA_H * (b @ gn + 0.5 * gn @ ws @ gn)


def _ref_coupling(coupling, n, edges, g, sigma, seed):
    c = _coupling_coefficients(coupling, n, edges, seed)
    gn, s = _np(g), _np(sigma)
    e = -sum(c[k] * gn[i] * gn[j] * (s[i] @ s[j]) for k, (i, j) in enumerate(edges))
    if coupling == "multiplicative":
        e += _ref_hopfield(n, g, seed)
    return e


# ---------------------------------------------------------------------------------------
# Kuramoto synapses
# ---------------------------------------------------------------------------------------


#: Shared (scalar) parameters: the closed-form Linear derivative, one affine potential, the MLP.
_SHARED = {"Linear", "Tanh", "MLP"}
KURAMOTO_CASES = [
    pytest.param(inter.values[0], shared, id=f"{'shared' if shared else 'per_edge'}-{inter.id}")
    for shared in (False, True)
    for inter in INTERACTIONS
    if not shared or inter.id in _SHARED
]


@pytest.mark.parametrize("graph,formulation", GRAPH_FORMULATIONS, ids=GF_IDS)
@pytest.mark.parametrize("interaction,shared", KURAMOTO_CASES)
def test_kuramoto_gradient_and_energy(interaction, graph, formulation, shared):
    n, edges = GRAPHS[graph]
    for seed in SEEDS:
        syn = _kuramoto(interaction, graph, formulation, seed, shared=shared)
        g, sigma = _inputs(n, seed)
        e = _check_gradient(syn, g, sigma, layers=(OSC,))
        ref = _ref_kuramoto(sigma, interaction, edges, seed, shared)
        np.testing.assert_allclose(e, ref, rtol=1e-10, atol=1e-12)


def _assert_formulations_agree(build, graph):
    """Every formulation of ``build(formulation, seed)`` gives the edge list's energy and
    (closed-form) gradient, to 1e-10 relative, over ``SEEDS``."""
    n, _ = GRAPHS[graph]
    forms = SPARSE_FORMULATIONS if graph == "sparse" else COMPLETE_FORMULATIONS
    for seed in SEEDS:
        g, sigma = _inputs(n, seed)
        results = {}
        for f in forms:
            e, _, closed = _energy_and_gradients(build(f, seed), g, sigma)
            results[f] = (e, closed)
        ref = results["edges"]
        for f, r in results.items():
            assert_rel_close(r[0], ref[0], 1e-10, f"energy {f} vs edges")
            assert_rel_close(r[1], ref[1], 1e-10, f"gradient {f} vs edges")


@pytest.mark.parametrize("graph", ["sparse", "complete"])
@pytest.mark.parametrize("interaction", INTERACTIONS)
def test_kuramoto_formulations_agree(interaction, graph):
    _assert_formulations_agree(lambda f, seed: _kuramoto(interaction, graph, f, seed), graph)


_AFFINE = [p for p in INTERACTIONS if p.id in ("ReLU", "Tanh", "Sigmoid")]


@pytest.mark.parametrize("graph,formulation", [("sparse", "dense"), ("complete", "all")])
@pytest.mark.parametrize("shared", [False, True], ids=["per_edge", "shared"])
@pytest.mark.parametrize("interaction", _AFFINE)
def test_kuramoto_force_backward_pass(interaction, graph, formulation, shared):
    """Reverse mode through the force (the second derivatives of the energy that training
    takes): its gradients with respect to σ and every potential parameter in the dense
    layouts equal those through the edge list's gathers and scatters, to 1e-10 relative."""
    n, _ = GRAPHS[graph]
    weights = jax.random.normal(jax.random.key(7), (n, D))

    def loss(syn, sigma):
        # A generic functional of the force, so that every cotangent entry is exercised.
        return jnp.sum(jnp.sin(syn.gradient(sigma)[0] * weights))

    for seed in SEEDS:
        _, sigma = _inputs(n, seed)
        grads = {}
        for f in ("edges", formulation):
            syn = _kuramoto(interaction, graph, f, seed, shared=shared)
            params, static = eqx.partition(syn.interaction, eqx.is_inexact_array)

            def of(p, sigma, syn=syn, static=static):
                return loss(eqx.tree_at(lambda m: m.interaction, syn, eqx.combine(p, static)), sigma)

            grads[f] = jax.jit(jax.grad(of, argnums=(0, 1)))(params, sigma)
        for name in ("a", "b"):
            ref, got = getattr(grads["edges"][0], name), getattr(grads[formulation][0], name)
            if shared:
                assert ref is None and got is None  # Python floats: not parameters
            else:
                assert_rel_close(got, ref, 1e-10, f"d/d{name}")
        assert_rel_close(grads[formulation][1], grads["edges"][1], 1e-10, "d/dσ")


@pytest.mark.parametrize("interaction", _AFFINE)
def test_kuramoto_force_forward_and_reverse_mode_agree(interaction):
    """Forward-mode autodiff works through the force (``jax.jacfwd``, which Diffrax's
    implicit solvers and stability analyses use) and equals reverse mode. (The dense force
    has a custom JVP, from which reverse mode is derived; a ``custom_vjp`` alone would make
    forward mode raise.)"""
    n, _ = GRAPHS["sparse"]
    _, sigma = _inputs(n, 0)
    syn = _kuramoto(interaction, "sparse", "dense", 0)

    def force(s):
        return syn.gradient(s)[0]

    fwd, rev = jax.jacfwd(force)(sigma), jax.jacrev(force)(sigma)
    assert_rel_close(fwd, rev, 1e-10, "jacfwd vs jacrev")


def _force_probe(interaction, shared, edges, n):
    """Inputs for comparing a Kuramoto force with the edge list's on ``edges``: unit-vector
    oscillators, a tangent and a cotangent direction, the interaction (per-edge parameters
    unless ``shared``) split into parameters and the rest, and a parameter tangent."""
    inter = interaction if shared else interaction.per_edge(edges.shape[0], key=jax.random.key(2), scale=0.5)
    sigma = unit_rows(jax.random.key(3), n, D)
    v = jnp.asarray(np.random.default_rng(4).normal(size=(n, D)))
    w = jnp.asarray(np.random.default_rng(5).normal(size=(n, D)))
    params, static = eqx.partition(inter, eqx.is_inexact_array)
    dparams = jax.tree_util.tree_map(lambda x: 0.1 * jnp.ones_like(x), params)
    return sigma, v, w, params, static, dparams


@pytest.mark.parametrize("interaction,shared", [
    pytest.param(INTERACTIONS[0].values[0], False, id="Linear-per_edge"),  # per-edge rows in blocks, masked
    pytest.param(INTERACTIONS[2].values[0], False, id="Tanh-per_edge"),  # affine: vanishes off the graph, no mask
    pytest.param(INTERACTIONS[-1].values[0], True, id="MLP-shared"),  # shared weights, masked
])
def test_kuramoto_dense_force_in_row_blocks(interaction, shared):
    """On graphs large enough for the dense force to be computed in row blocks
    (``FORCE_BLOCK_MIN_N``), its value, its forward-mode derivative (in σ and in the
    parameters) and its reverse-mode gradients equal the edge list's, to 1e-10 relative,
    with per-edge and with shared parameters (then the graph's mask does the work)."""
    n = layouts.FORCE_BLOCK_MIN_N + 8
    assert layouts._row_blocks(n) > 1
    edges = graphs.small_world(n, 8, 0.2, key=jax.random.key(1))
    sigma, v, w, params, static, dparams = _force_probe(interaction, shared, edges, n)
    out = {}
    for f in ("edges", "dense"):
        pairs = Pairs(edges, n, formulation=f)

        def force(p, s, pairs=pairs):
            return Kuramoto(OSC, pairs, eqx.combine(p, static), kappa=KAPPA_K).gradient(s)[0]

        value = force(params, sigma)  # the plain evaluation (row blocks); jvp/grad use the rule
        primal, tangent = jax.jvp(force, (params, sigma), (dparams, v))
        assert_rel_close(primal, value, 1e-10, "jvp primal")
        grads = jax.grad(lambda p, s: jnp.sum(jnp.sin(force(p, s) * w)), argnums=(0, 1))(params, sigma)
        out[f] = (value, tangent, grads)
    for i, what in enumerate(("force", "jvp", "grad")):
        for ref, got in zip(jax.tree_util.tree_leaves(out["edges"][i]), jax.tree_util.tree_leaves(out["dense"][i])):
            assert_rel_close(got, ref, 1e-10, what)


def test_tile_layout_partitions_the_edges():
    """The ``"tiles"`` layout: the kept tiles are exactly those with at least ``min_fill`` of
    their entries on the graph, a symmetric set; every edge inside them sits at its two
    entries ``(i, j)`` and ``(j, i)`` with its own index, every other edge is on the rest list
    once; nodes past ``n`` (padding to whole tiles) hold no edge."""
    S = layouts
    n = 100  # tiles of 16: 7 per side, padded to 112
    edges = np.asarray(graphs.small_world(n, 8, 0.2, key=jax.random.key(1)))
    block = S.tile_block(n)
    assert block == 16
    dense = np.zeros((7 * block, 7 * block), bool)
    dense[edges[:, 0], edges[:, 1]] = dense[edges[:, 1], edges[:, 0]] = True
    fill = dense.reshape(7, block, 7, block).mean(axis=(1, 3))
    rows, cols, edge, valid, rest = S.tile_layout(edges, n)
    kept = set(zip(rows.tolist(), cols.tolist()))
    assert kept == {(r, c) for r in range(7) for c in range(7) if fill[r, c] >= S.TILE_MIN_FILL}
    assert kept == {(c, r) for r, c in kept}
    assert 0 < len(kept) < 49 and 0 < rest.size < len(edges)
    seen = np.zeros(len(edges), int)
    for t, (r, c) in enumerate(zip(rows, cols)):
        a, b = np.nonzero(valid[t])
        i, j = r * block + a, c * block + b
        assert np.all(dense[i, j]) and valid[t].sum() == dense[r * block:(r + 1) * block, c * block:(c + 1) * block].sum()
        e = edge[t, a, b]
        assert np.all(np.sort(np.stack([i, j], 1), axis=1) == edges[e])
        np.add.at(seen, e, 1)
    seen[rest] += 2
    assert np.all(seen == 2)  # two orientations in the tiles, or (counted twice) on the rest list
    assert np.all((rows[:, None, None] * block + np.arange(block)[None, :, None] < n) | ~valid)


#: Every potential, per-edge and shared, on the default tiles; the edge cases of the layout
#: (every tile kept, none kept) with per-edge affine parameters, which vanish off the graph
#: (no mask), and with shared ones (the tiles' edge mask).
_TILE_CASES = [pytest.param(p.values[0], shared, None, id=f"{p.id}-{'shared' if shared else 'per_edge'}-default")
               for p in INTERACTIONS for shared in (False, True)] + [
    pytest.param(p.values[0], shared, fill, id=f"{p.id}-{'shared' if shared else 'per_edge'}-{name}")
    for p, shared in ((INTERACTIONS[2], False), (INTERACTIONS[-1], True))
    for fill, name in ((0.0, "every_tile"), (2.0, "no_tile"))]


@pytest.mark.parametrize("interaction,shared,min_fill", _TILE_CASES)
def test_kuramoto_tiles_agree_with_the_edge_list(interaction, shared, min_fill, monkeypatch):
    """The ``"tiles"`` formulation (dense tiles plus an edge list for the rest) on a graph
    that is not a whole number of tiles: energy, force, the force's forward-mode derivative
    (in σ and the parameters together and apart: its custom JVP) and reverse-mode gradients
    through :meth:`prepare` (also compiled with the graph traced) equal the edge list's to
    1e-10 relative, with kept tiles and rest edges (default), with every tile
    kept (empty ones too) and with no tile (all edges on the rest list)."""
    if min_fill is not None:
        monkeypatch.setattr(layouts, "TILE_MIN_FILL", min_fill)
    n = 100
    edges = graphs.small_world(n, 8, 0.2, key=jax.random.key(1))
    tiled = Pairs(edges, n, formulation="tiles")
    num_tiles = tiled.layout.rows.shape[0]
    num_rest = 0 if tiled.layout.rest is None else tiled.layout.rest.num_edges
    expect = {None: (0 < num_tiles < 49 and num_rest > 0), 0.0: (num_tiles == 49 and num_rest == 0),
              2.0: (num_tiles == 0 and num_rest == len(edges))}
    assert expect[min_fill], (num_tiles, num_rest)
    sigma, v, w, params, static, dparams = _force_probe(interaction, shared, edges, n)
    out = {}
    for f, pairs in (("edges", Pairs(edges, n, formulation="edges")), ("tiles", tiled)):

        def syn(p, pairs=pairs):
            return Kuramoto(OSC, pairs, eqx.combine(p, static), kappa=KAPPA_K)

        def force(p, s, pairs=pairs):
            return sum(part.gradient(s)[0] for part in syn(p, pairs).prepare())

        def loss(p, s, pairs=pairs):
            return jnp.sum(jnp.sin(force(p, s, pairs) * w))

        energy = syn(params).energy(sigma)
        _, tangent = jax.jvp(force, (params, sigma), (dparams, v))
        _, tangent_sigma = jax.jvp(lambda s: force(params, s), (sigma,), (v,))
        _, tangent_params = jax.jvp(lambda p: force(p, sigma), (params,), (dparams,))
        grads = jax.grad(loss, argnums=(0, 1))(params, sigma)
        # the graph traced (an argument of a compiled function, as in relax and fit)
        grads_jit = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, sigma, pairs)
        out[f] = (energy, force(params, sigma), syn(params).gradient(sigma)[0], tangent, tangent_sigma,
                  tangent_params, grads, grads_jit)
    for i, what in enumerate(("energy", "force", "force unprepared", "jvp", "jvp in sigma", "jvp in parameters",
                              "grad", "grad under jit")):
        for ref, got in zip(jax.tree_util.tree_leaves(out["edges"][i]), jax.tree_util.tree_leaves(out["tiles"][i])):
            assert_rel_close(got, ref, 1e-10, what)


#: The batched force in every layout that has its own (the edge list; the tiles, whose rest
#: edges use it) and one that uses the default ``vmap``; per-edge and shared parameters.
_BATCH_CASES = [pytest.param(p.values[0], False, "edges", id=f"{p.id}-per_edge-edges") for p in INTERACTIONS] + [
    pytest.param(p.values[0], shared, f, id=f"{p.id}-{'shared' if shared else 'per_edge'}-{f}")
    for p, shared, f in ((INTERACTIONS[1], True, "edges"), (INTERACTIONS[-1], True, "edges"),
                         (INTERACTIONS[2], False, "tiles"),
                         (INTERACTIONS[2], False, "dense"))]


@pytest.mark.parametrize("interaction,shared,formulation", _BATCH_CASES)
def test_kuramoto_batch_gradient_equals_the_per_example_gradient(interaction, shared, formulation, monkeypatch):
    """``Kuramoto.batch_gradient`` (what ``relax_batch`` evaluates: the edge list's force of
    a whole batch in chunks of edges, batch last) equals ``jax.vmap`` of the per-example
    gradient to 1e-10 relative: its value, its forward-mode derivative in σ and the
    parameters together and apart, and reverse-mode gradients, also under ``jit`` with the
    graph traced. The chunk budget is cut so that the edges take several chunks, the last
    one padded."""
    monkeypatch.setattr(layouts, "EDGE_CHUNK_BYTES", 7 * 3 * D * 8)  # 7 edges per chunk at batch 3
    n, batch = 100, 3
    edges = graphs.small_world(n, 8, 0.2, key=jax.random.key(1))
    sigma1, v1, w1, params, static, dparams = _force_probe(interaction, shared, edges, n)
    rot = jnp.stack([random_orthogonal(jax.random.key(10 + b), D) for b in range(batch)])
    sigma, v, w = (jnp.einsum("bij,nj->bni", rot, x) for x in (sigma1, v1, w1))
    pairs = Pairs(edges, n, formulation=formulation)
    if formulation == "tiles":
        assert pairs.layout.rest is not None and pairs.layout.rest.num_edges > 7

    def per_example(p, s, pairs=pairs):
        syn = Kuramoto(OSC, pairs, eqx.combine(p, static), kappa=KAPPA_K)
        return jax.vmap(lambda x: sum(part.gradient(x)[0] for part in syn.prepare()))(s)

    def batched(p, s, pairs=pairs):
        syn = Kuramoto(OSC, pairs, eqx.combine(p, static), kappa=KAPPA_K)
        return sum(part.batch_gradient(s)[0] for part in syn.prepare())

    out = {}
    for name, force in (("vmap", per_example), ("batch", batched)):
        def loss(p, s, pairs=pairs, force=force):
            return jnp.sum(jnp.sin(force(p, s, pairs) * w))

        out[name] = (force(params, sigma), jax.jvp(force, (params, sigma), (dparams, v))[1],
                     jax.jvp(lambda s, force=force: force(params, s), (sigma,), (v,))[1],
                     jax.jvp(lambda p, force=force: force(p, sigma), (params,), (dparams,))[1],
                     jax.grad(loss, argnums=(0, 1))(params, sigma),
                     jax.jit(jax.grad(loss, argnums=(0, 1)))(params, sigma, pairs))
    for i, what in enumerate(("force", "jvp", "jvp in sigma", "jvp in parameters", "grad", "grad under jit")):
        for ref, got in zip(jax.tree_util.tree_leaves(out["vmap"][i]), jax.tree_util.tree_leaves(out["batch"][i]),
                            strict=True):
            assert_rel_close(got, ref, 1e-10, what)


def test_kuramoto_between_two_layers_batch_gradient():
    """The batched gradient of a Kuramoto synapse between two layers comes back split into
    the layers' shapes, equal to the per-example gradients."""
    n = SPARSE_N
    sigma = jnp.stack([_inputs(n, seed)[1] for seed in (1, 2)])
    sa, sb = sigma[:, :4].reshape(2, 2, 2, D), sigma[:, 4:]
    inter = I.Tanh().per_edge(len(SPARSE_EDGES), key=jax.random.key(300), scale=0.8)
    syn = Kuramoto("a", Pairs(SPARSE_EDGES, n, formulation="edges"), inter, kappa=KAPPA_K, post="b")
    got, ref = syn.batch_gradient(sa, sb), jax.vmap(syn.gradient)(sa, sb)
    assert [g.shape for g in got] == [(2, 2, 2, D), (2, 3, D)]
    for g, r in zip(got, ref, strict=True):
        assert_rel_close(g, r, 1e-12, "batch vs vmap")


def test_kuramoto_force_backward_pass_shared_array_parameters():
    """Shared parameters given as 0-d arrays are learnable: their gradients through the
    masked dense force (reverse mode) equal the edge list's."""
    n, _ = GRAPHS["sparse"]
    _, sigma = _inputs(n, 0)
    inter = I.ReLU(jnp.asarray(0.4), jnp.asarray(-0.9))

    def of(inter, f):
        syn = Kuramoto(OSC, Pairs(SPARSE_EDGES, n, formulation=f), inter, kappa=KAPPA_K)
        return jnp.sum(jnp.cos(syn.gradient(sigma)[0]))

    ref = jax.grad(of)(inter, "edges")
    got = jax.grad(of)(inter, "dense")
    assert_rel_close(got.a, ref.a, 1e-10, "d/da")
    assert_rel_close(got.b, ref.b, 1e-10, "d/db")


# ---------------------------------------------------------------------------------------
# Hopfield–Kuramoto couplings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("graph,formulation", GRAPH_FORMULATIONS, ids=GF_IDS)
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_coupling_gradient_and_energy(coupling, graph, formulation):
    n, edges = GRAPHS[graph]
    for seed in SEEDS:
        syn = _coupling(coupling, graph, formulation, seed)
        g, sigma = _inputs(n, seed)
        e = _check_gradient(syn, g, sigma, layers=(TH, OSC))
        np.testing.assert_allclose(e, _ref_coupling(coupling, n, edges, g, sigma, seed), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("graph", ["sparse", "complete"])
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_coupling_formulations_agree(coupling, graph):
    _assert_formulations_agree(lambda f, seed: _coupling(coupling, graph, f, seed), graph)


# ---------------------------------------------------------------------------------------
# Synapses without a graph
# ---------------------------------------------------------------------------------------


def test_hopfield_lowrank_stimulus_gradients_and_energies():
    n = SPARSE_N
    for seed in SEEDS:
        g, sigma = _inputs(n, seed)
        h = _hopfield(n, seed)
        e = _check_gradient(h, g, sigma, layers=(TH,))
        np.testing.assert_allclose(e, _ref_hopfield(n, g, seed), rtol=1e-12)

        u = jax.random.normal(jax.random.key(500 + seed), (n, 2))
        lr = LowRank(TH, u, kappa=0.4)
        e = _check_gradient(lr, g, sigma, layers=(TH,))
        np.testing.assert_allclose(e, -0.5 * 0.4 * _np(g) @ _np(u) @ _np(u).T @ _np(g), rtol=1e-12)

        c = jax.random.normal(jax.random.key(600 + seed), (n, D))
        st = Stimulus(OSC, c)
        e = _check_gradient(st, g, sigma, layers=(OSC,))
        np.testing.assert_allclose(e, -np.sum(_np(c) * _np(sigma)), rtol=1e-12)


def test_hopfield_uses_only_the_symmetric_part():
    n = SPARSE_N
    g, _ = _inputs(n, 0)
    w = jax.random.normal(jax.random.key(0), (n, n))
    skew = w - w.T
    b = jnp.zeros(n)
    a = Hopfield(TH, w, b)
    c = Hopfield(TH, w + 3.0 * skew, b)
    np.testing.assert_allclose(a.energy(g), c.energy(g), rtol=1e-12)
    np.testing.assert_allclose(a.gradient(g)[0], c.gradient(g)[0], rtol=1e-12)


def test_dense_and_bias_gradients_and_energies():
    """Dense and LowRank (``W = κ U Vᵀ``) between two layers (of different shapes:
    activations are flattened), Dense within one layer (non-symmetric ``W``: only ``W_s`` counts) and Bias (of the layer's
    shape, or flattened): closed-form gradients, one per bound layer, equal autodiff and the
    formulas ``∂E/∂g_pre = −W g_post``, ``∂E/∂g_post = −Wᵀ g_pre``, ``−W_s g``, ``−b``;
    energies equal ``−g_preᵀ W g_post``, ``−½ gᵀ W_s g``, ``−b·g``."""
    k = jax.random.split(jax.random.key(700), 5)
    ga = jax.random.normal(k[0], (2, 3))  # layer "a": 2 × 3 units
    gb = jax.random.normal(k[1], (4,))  # layer "b": 4 units
    w = jax.random.normal(k[2], (6, 4))
    wb = jax.random.normal(k[3], (4, 4))
    b = jax.random.normal(k[4], (2, 3))
    u, v = jax.random.normal(k[0], (6, 2)), jax.random.normal(k[1], (4, 2))
    a_, b_, w_, wb_, bias_ = _np(ga).reshape(-1), _np(gb), _np(w), _np(wb), _np(b).reshape(-1)
    ws = 0.5 * (wb_ + wb_.T)
    lr_ = 0.4 * _np(u) @ _np(v).T  # LowRank between two layers is Dense with W = κ U Vᵀ
    cases = [
        (LowRank("a", u, kappa=0.4, post="b", post_factors=v), ("a", "b"), (ga, gb), -a_ @ lr_ @ b_,
         (-(lr_ @ b_).reshape(2, 3), -lr_.T @ a_)),
        (Dense("a", "b", w), ("a", "b"), (ga, gb), -a_ @ w_ @ b_, (-(w_ @ b_).reshape(2, 3), -w_.T @ a_)),
        (Dense("b", "b", wb), ("b",), (gb,), -0.5 * b_ @ ws @ b_, (-ws @ b_,)),
        (Bias("a", b), ("a",), (ga,), -bias_ @ a_, (-bias_.reshape(2, 3),)),
        (Bias("a", b.reshape(-1)), ("a",), (ga,), -bias_ @ a_, (-bias_.reshape(2, 3),)),
    ]
    for syn, layers, args, energy, formula in cases:
        assert syn.layers == layers
        np.testing.assert_allclose(syn.energy(*args), energy, rtol=1e-12)
        auto = jax.grad(syn.energy, argnums=tuple(range(len(args))))(*args)
        closed = syn.gradient(*args)
        assert isinstance(closed, tuple) and len(closed) == len(layers)
        for c, a, f, v in zip(closed, auto, formula, args, strict=True):
            assert c.shape == v.shape
            assert_rel_close(c, a, 1e-12, f"{type(syn).__name__} closed form vs autodiff")
            np.testing.assert_allclose(c, f, rtol=1e-12, atol=1e-14)
    # discriminating: the within-layer weights are not symmetric, and the skew part is dropped
    assert np.max(np.abs(wb_ - wb_.T)) > 1e-1
    np.testing.assert_allclose(Dense("b", "b", wb + 2.0 * (wb - wb.T)).energy(gb), -0.5 * b_ @ ws @ b_, rtol=1e-12)


def test_synapses_bind_named_layers_of_the_right_kind_and_size():
    n = SPARSE_N
    pairs = Pairs(SPARSE_EDGES, n)
    hop = _hopfield(n, 0)
    expected = [
        (hop, (TH,), (("threshold", n),)),
        (LowRank(TH, jnp.ones((n, 2))), (TH,), (("threshold", n),)),
        (Kuramoto(OSC, pairs, I.Linear()), (OSC,), (("oscillator", n),)),
        (Stimulus(OSC, jnp.ones((n, D))), (OSC,), (("oscillator", n),)),
        (Coupling(TH, OSC, pairs, 0.5), (TH, OSC), (("threshold", n), ("oscillator", n))),
        (MultiplicativeCoupling(OSC, hop, pairs), (TH, OSC), (("threshold", n), ("oscillator", n))),
        (Dense("a", "b", jnp.ones((6, 4))), ("a", "b"), (("threshold", 6), ("threshold", 4))),
        (Dense("b", "b", jnp.ones((4, 4))), ("b",), (("threshold", 4),)),
        (Bias("a", jnp.ones((2, 3))), ("a",), (("threshold", 6),)),
    ]
    for syn, layers, requirements in expected:
        assert syn.layers == layers, type(syn).__name__
        assert syn.requirements() == requirements, type(syn).__name__


# ---------------------------------------------------------------------------------------
# prepare()
# ---------------------------------------------------------------------------------------


def _totals(parts, g, sigma):
    """Total energy and ``∂E/∂g``, ``∂E/∂σ`` of synapses each binding some of the layers."""
    e = sum(p.energy(*_args(p, g, sigma)) for p in parts)
    grads = {TH: jnp.zeros_like(g), OSC: jnp.zeros_like(sigma)}
    for p in parts:
        for name, d in zip(p.layers, p.gradient(*_args(p, g, sigma)), strict=True):
            grads[name] = grads[name] + d
    return e, grads[TH], grads[OSC]


@eqx.filter_jit
def _original_and_prepared(syn, g, sigma):
    parts = syn.prepare()
    assert isinstance(parts, tuple) and parts
    assert {name for p in parts for name in p.layers} == set(syn.layers)
    # relax calls prepare() inside the solve, differentiably: the parameter gradient of the
    # energy must survive it too.
    d_orig = eqx.filter_grad(lambda s: s.energy(*_args(s, g, sigma)))(syn)
    d_prep = eqx.filter_grad(lambda s: sum(p.energy(*_args(p, g, sigma)) for p in s.prepare()))(syn)
    return _totals((syn,), g, sigma), _totals(parts, g, sigma), d_orig, d_prep


#: prepare() only re-lays parameters out, so two potentials suffice: an affine one and the
#: MLP (a shared network plus per-edge weights).
_PREPARE_INTERACTIONS = ["Tanh", "MLP"]


#: Graph synapses run over every (graph, formulation); graph-free ones once.
_PREPARE_CASES = [
    pytest.param(kind, graph, form, id=f"{kind}-{gf}")
    for kind in _PREPARE_INTERACTIONS + COUPLINGS
    for (graph, form), gf in zip(GRAPH_FORMULATIONS, GF_IDS)
] + [pytest.param(kind, "sparse", "edges", id=kind) for kind in ("hopfield", "lowrank", "stimulus")]


@pytest.mark.parametrize("kind,graph,formulation", _PREPARE_CASES)
def test_prepare_preserves_energy_and_gradient(kind, graph, formulation):
    n, _ = GRAPHS[graph]
    inters = {p.id: p.values[0] for p in INTERACTIONS}
    seed = 0
    g, sigma = _inputs(n, seed)
    if kind in inters:
        syn = _kuramoto(inters[kind], graph, formulation, seed)
    elif kind in COUPLINGS:
        syn = _coupling(kind, graph, formulation, seed)
    elif kind == "hopfield":
        syn = _hopfield(n, seed)
    elif kind == "lowrank":
        syn = LowRank(TH, jax.random.normal(jax.random.key(1), (n, 2)))
    else:
        syn = Stimulus(OSC, jax.random.normal(jax.random.key(2), (n, D)))
    want, got, d_orig, d_prep = _original_and_prepared(syn, g, sigma)
    for a, b, what in zip(got, want, ("energy", "dE/dg", "dE/dσ")):
        assert_rel_close(a, b, 1e-12, what)
    assert jax.tree_util.tree_structure(d_orig) == jax.tree_util.tree_structure(d_prep)
    assert jax.tree_util.tree_leaves(d_orig)
    assert_rel_close(d_prep, d_orig, 1e-12, "parameter gradient")


# ---------------------------------------------------------------------------------------
# Rotation invariance
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_rotation_invariance_matches_the_flag(coupling):
    n = SPARSE_N
    g, sigma = _inputs(n, 0)
    r = random_orthogonal(jax.random.key(7), D)
    invariant = [
        _kuramoto(I.ReLU(), "sparse", "edges", 0),
        _coupling(coupling, "sparse", "edges", 0),
        _hopfield(n, 0),
    ]
    for syn in invariant:
        assert syn.rotation_invariant
        np.testing.assert_allclose(syn.energy(*_args(syn, g, sigma @ r.T)), syn.energy(*_args(syn, g, sigma)), rtol=1e-12)
    stim = Stimulus(OSC, jax.random.normal(jax.random.key(3), (n, D)))
    assert not stim.rotation_invariant
    assert abs(float(stim.energy(sigma @ r.T) - stim.energy(sigma))) > 1e-3


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_pairs_errors():
    with pytest.raises(ValueError, match="formulation"):
        Pairs(SPARSE_EDGES, SPARSE_N, formulation="sparse")
    with pytest.raises(ValueError, match="complete"):
        Pairs(SPARSE_EDGES, SPARSE_N, formulation="all")
    with pytest.raises(ValueError, match="edges_k"):
        Pairs("ring", SPARSE_N, name="edges_k")
    with pytest.raises(ValueError, match="edges_hk"):
        Pairs(np.array([[0, SPARSE_N]]), SPARSE_N, name="edges_hk")
    p = Pairs("all", COMPLETE_N)
    assert p.num_edges == COMPLETE_N * (COMPLETE_N - 1) // 2 and p.formulation == "all"


@pytest.mark.parametrize(
    "n, k, expected",
    [
        (175, 174, "all"),  # complete
        (175, 16, "dense"),  # 9 % dense (the digits-size default network): too small for tiles
        (1024, 4, "neighbours"),  # sparse: 0.4 % dense
        (275, 16, "tiles"),  # 6 % dense, edges in a band around the diagonal
        (896, 150, "tiles"),  # the paper's graph
        (2048, 300, "tiles"),  # large, 15 % dense, clustered
        (2048, 16, "neighbours"),  # clustered but 0.8 % dense: the tiles' dense coupling loses
        (5000, 600, "neighbours"),  # too large for (n, n) layouts
    ],
)
def test_auto_formulation_depends_on_the_graph_alone(n, k, expected):
    """``"auto"`` follows :func:`auto_formulation` (graph size, density and clustering only,
    never the device), and ``Pairs`` applies it."""
    edges = graphs.all_to_all(n) if k == n - 1 else graphs.ring(n, k)
    assert auto_formulation(n, len(edges), edges) == expected
    if n <= 2048:
        assert Pairs(edges, n).formulation == expected


@pytest.mark.parametrize(
    "n, k, random, expected",
    [
        (275, 16, True, "neighbours"),  # 6 %, edges spread over the whole matrix
        (300, 60, True, "dense"),  # 20 %, spread
        (275, 16, False, "neighbours"),  # without the edges, clustering cannot be seen
    ],
)
def test_auto_formulation_picks_tiles_only_where_edges_cluster(n, k, random, expected):
    if random:  # a random graph with the ring's number of edges: no band to tile
        iu = np.stack(np.triu_indices(n, 1), axis=1)
        edges = iu[np.random.default_rng(0).choice(len(iu), n * k // 2, replace=False)]
        assert auto_formulation(n, len(edges), edges) == expected
        assert Pairs(edges, n).formulation == expected
    else:
        assert auto_formulation(n, n * k // 2) == expected


def test_synapse_constructor_errors_name_the_argument():
    n = SPARSE_N
    with pytest.raises(ValueError, match="weights"):
        Hopfield(TH, jnp.zeros((n, n + 1)), jnp.zeros(n))
    with pytest.raises(ValueError, match="bias"):
        Hopfield(TH, jnp.zeros((n, n)), jnp.zeros(n + 1))
    with pytest.raises(ValueError, match="weights"):
        Hopfield(TH, jnp.full((n, n), jnp.nan), jnp.zeros(n))
    with pytest.raises(TypeError, match="weights"):
        Hopfield(TH, jnp.zeros((n, n), dtype=jnp.int32), jnp.zeros(n))
    with pytest.raises(TypeError, match="layer=3"):
        Hopfield(3, jnp.zeros((n, n)), jnp.zeros(n))
    with pytest.raises(ValueError, match="factors"):
        LowRank(TH, jnp.zeros(n))
    with pytest.raises(ValueError, match="stimulus"):
        Stimulus(OSC, jnp.zeros(n))
    with pytest.raises(ValueError, match=r"Dense\('a', 'b'\): weights has shape \(4,\)"):
        Dense("a", "b", jnp.zeros(4))
    with pytest.raises(ValueError, match=r"weights has shape \(3, 4\).*square within one layer"):
        Dense("a", "a", jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="weights contains NaN"):
        Dense("a", "b", jnp.full((3, 4), jnp.nan))
    with pytest.raises(TypeError, match="pre="):
        Dense("", "b", jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="bias contains NaN"):
        Bias("a", jnp.full(3, jnp.inf))
    with pytest.raises(TypeError, match="bias"):
        Bias("a", jnp.zeros(3, dtype=jnp.int32))
    pairs = Pairs(SPARSE_EDGES, n)
    with pytest.raises(ValueError, match="coupling_weights"):
        Coupling(TH, OSC, pairs, jnp.zeros(len(SPARSE_EDGES) + 1))
    with pytest.raises(TypeError, match="oscillators=5"):
        Coupling(TH, 5, pairs, 0.5)
    with pytest.raises(ValueError, match="edges"):
        Kuramoto(OSC, pairs, I.Linear().per_edge(len(SPARSE_EDGES) + 1, key=jax.random.key(0)))
    with pytest.raises(TypeError, match="layer=None"):
        Kuramoto(None, pairs, I.Linear())
    with pytest.raises(ValueError, match="nodes"):
        MultiplicativeCoupling(OSC, _hopfield(n + 1, 0), pairs)
    with pytest.raises(TypeError, match="hopfield"):
        MultiplicativeCoupling(OSC, Dense(TH, TH, jnp.zeros((n, n))), pairs)
    with pytest.raises(ValueError, match="post and post_factors together"):
        LowRank(TH, jnp.ones((n, 2)), post="y")
    with pytest.raises(ValueError, match="rank 2 but post_factors 3"):
        LowRank(TH, jnp.ones((n, 2)), post="y", post_factors=jnp.ones((4, 3)))
    with pytest.raises(ValueError, match=r"units has shape \(2,\)"):
        Coupling(TH, OSC, pairs, 0.5, units=np.arange(2))
    with pytest.raises(ValueError, match="distinct"):
        Coupling(TH, OSC, pairs, 0.5, units=np.zeros(n, int))


# ---------------------------------------------------------------------------------------
# Oscillators bound to some of the threshold units
# ---------------------------------------------------------------------------------------


#: Oscillator ``k`` of the sparse graph binds threshold unit ``UNITS[k]`` of a larger layer.
UNITS = np.array([9, 2, 4, 10, 0, 6, 7])
N_UNITS = 12


@pytest.mark.parametrize("formulation", SPARSE_FORMULATIONS)
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_coupling_binds_the_named_threshold_units(coupling, formulation):
    """With ``units``, the coupling of the sparse graph's oscillators to 7 of 12 threshold
    units is the written-out sum over the edges with ``g`` read at ``units`` (plus the whole
    layer's Hopfield energy, multiplicatively: ``C_ij = α W_s[units_i, units_j]``); its
    closed-form gradient equals autodiff and is zero on the 5 unbound units; ``prepare``
    keeps the energy; a network refuses units beyond its layer."""
    n = SPARSE_N
    pairs = Pairs(SPARSE_EDGES, n, formulation=formulation)
    g = jax.random.normal(jax.random.key(800), (N_UNITS,))
    _, sigma = _inputs(n, 0)
    w = jax.random.normal(jax.random.key(801), (len(SPARSE_EDGES),))
    hop = Hopfield(TH, jax.random.normal(jax.random.key(802), (N_UNITS, N_UNITS)), jnp.zeros(N_UNITS), kappa=KAPPA_H)
    ws = 0.5 * (_np(hop.weights) + _np(hop.weights).T)
    if coupling == "multiplicative":
        syn = MultiplicativeCoupling(OSC, hop, pairs, 0.6, units=UNITS)
        c = [0.6 * ws[UNITS[i], UNITS[j]] for i, j in SPARSE_EDGES]
    else:
        syn = Coupling(TH, OSC, pairs, w if coupling == "full" else 0.7, units=UNITS)
        c = _np(w) if coupling == "full" else [0.7] * len(SPARSE_EDGES)
    gn, s = _np(g), _np(sigma)
    ref = -sum(c[k] * gn[UNITS[i]] * gn[UNITS[j]] * (s[i] @ s[j]) for k, (i, j) in enumerate(SPARSE_EDGES))
    if coupling == "multiplicative":
        ref += _np(hop.energy(g))
    e = _check_gradient(syn, g, sigma, layers=(TH, OSC))
    np.testing.assert_allclose(e, ref, rtol=1e-10)
    unbound = np.setdiff1d(np.arange(N_UNITS), UNITS)
    dg = syn.gradient(g, sigma)[0]
    if coupling != "multiplicative":
        assert np.all(_np(dg)[unbound] == 0) and np.any(_np(dg)[UNITS] != 0)
    prepared = sum(p.energy(*_args(p, g, sigma)) for p in syn.prepare())
    np.testing.assert_allclose(prepared, ref, rtol=1e-10)
    layers = {TH: hk.ThresholdLayer((N_UNITS,), hk.lagrangians.ReLU()), OSC: hk.OscillatorLayer((n,), D)}
    hk.Network(layers=layers, synapses=[syn])
    with pytest.raises(ValueError, match="units index threshold unit 10 but layer 'x' has 8"):
        hk.Network(layers={**layers, TH: hk.ThresholdLayer((8,), hk.lagrangians.ReLU())},
                   synapses=[Coupling(TH, OSC, pairs, 0.7, units=UNITS)])


# ---------------------------------------------------------------------------------------
# Kuramoto between two oscillator layers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("formulation", SPARSE_FORMULATIONS)
def test_kuramoto_between_two_layers(formulation):
    """``Kuramoto(a, pairs, F, post=b)`` on the sparse graph over the 4 oscillators of a
    ``(2, 2)`` layer followed by the 3 of a ``(3,)`` layer: the energy is the written-out sum
    over the edges of the concatenated rows; the closed-form gradient (one array per layer,
    of its shape) equals autodiff; ``prepare`` keeps the energy; a network refuses layers
    whose sizes do not add up to the graph's nodes or whose dimensions differ."""
    n = SPARSE_N
    _, sigma = _inputs(n, 1)
    sa, sb = sigma[:4].reshape(2, 2, D), sigma[4:]
    inter = I.Tanh().per_edge(len(SPARSE_EDGES), key=jax.random.key(300), scale=0.8)
    syn = Kuramoto("a", Pairs(SPARSE_EDGES, n, formulation=formulation), inter, kappa=KAPPA_K, post="b")
    assert syn.layers == ("a", "b")
    e = syn.energy(sa, sb)
    np.testing.assert_allclose(e, _ref_kuramoto(sigma, I.Tanh(), SPARSE_EDGES, 0, False), rtol=1e-12)
    auto = jax.grad(syn.energy, argnums=(0, 1))(sa, sb)
    closed = syn.gradient(sa, sb)
    assert [c.shape for c in closed] == [(2, 2, D), (3, D)]
    for c, a in zip(closed, auto, strict=True):
        assert_rel_close(c, a, 1e-10, "closed form vs autodiff")
    np.testing.assert_allclose(sum(p.energy(sa, sb) for p in syn.prepare()), e, rtol=1e-12)
    layers = {"a": hk.OscillatorLayer((2, 2), D), "b": hk.OscillatorLayer((3,), D)}
    hk.Network(layers=layers, synapses=[syn])
    with pytest.raises(ValueError, match="7 nodes but layers 'a' and 'b' hold 4 \\+ 4"):
        hk.Network(layers={**layers, "b": hk.OscillatorLayer((4,), D)}, synapses=[syn])
    with pytest.raises(ValueError, match="dimensions 3 and 2"):
        hk.Network(layers={**layers, "b": hk.OscillatorLayer((3,), 2)}, synapses=[syn])


# ---------------------------------------------------------------------------------------
# Layouts are a family of classes: a new one plugs in
# ---------------------------------------------------------------------------------------


class _Transposed(layouts.AbstractLayout):
    """A layout written outside the library: a dense ``(n, n)`` adjacency matrix, with the
    sums written as plain products (only the required methods)."""

    name = "transposed"
    adjacency: jax.Array

    @classmethod
    def build(cls, edges, n, *, name="edges"):
        a = np.zeros((n, n))
        a[edges[:, 0], edges[:, 1]] = a[edges[:, 1], edges[:, 0]] = 1.0
        return cls(jnp.asarray(a))

    def _matrix(self, pairs, values):
        return pairs.dense(values) if jnp.ndim(values) == 1 else values * self.adjacency

    def kuramoto_energy(self, pairs, interaction, sigma):
        inter = layouts._laid_out(interaction, lambda v: self._matrix(pairs, v))
        return 0.5 * jnp.sum(self.adjacency * inter(sigma @ sigma.T))

    def kuramoto_force(self, pairs, interaction, sigma):
        inter = layouts._laid_out(interaction, lambda v: self._matrix(pairs, v))
        return (self.adjacency * inter.derivative(sigma @ sigma.T)) @ sigma

    def coupling_field(self, pairs, c, gs):
        return self._matrix(pairs, c) @ gs


def test_a_layout_class_written_outside_the_library_plugs_in():
    """``Pairs(..., formulation=<a subclass of AbstractLayout>)``: Kuramoto and coupling
    synapses evaluate their sums with it and give the edge list's energies and gradients,
    and ``prepare`` and the network's flow work without further code."""
    n = SPARSE_N
    g, sigma = _inputs(n, 0)
    inter = I.Tanh().per_edge(len(SPARSE_EDGES), key=jax.random.key(3))
    w = jax.random.normal(jax.random.key(4), (len(SPARSE_EDGES),))
    out = {}
    for f in ("edges", _Transposed):
        pairs = Pairs(SPARSE_EDGES, n, formulation=f)
        syns = [Kuramoto(OSC, pairs, inter, kappa=KAPPA_K), Coupling(TH, OSC, pairs, w),
                MultiplicativeCoupling(OSC, _hopfield(n, 0), pairs, 0.6)]
        out[f] = [(s.energy(*_args(s, g, sigma)), s.gradient(*_args(s, g, sigma)),
                   sum(p.energy(*_args(p, g, sigma)) for p in s.prepare())) for s in syns]
    assert Pairs(SPARSE_EDGES, n, formulation=_Transposed).formulation == "transposed"
    assert_rel_close(out[_Transposed], out["edges"], 1e-10, "custom layout vs edge list")

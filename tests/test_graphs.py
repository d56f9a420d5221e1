"""Tests for hkjax.graphs (edge-array graph connectivity)."""

from __future__ import annotations

import itertools

import jax
import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hkjax import graphs

FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def assert_canonical(edges: np.ndarray, n: int) -> None:
    """Edge array is int32 (E, 2), i < j, in range, unique, lexicographically sorted."""
    assert isinstance(edges, np.ndarray)
    assert edges.dtype == np.int32
    assert edges.ndim == 2 and edges.shape[1] == 2
    if edges.shape[0] == 0:
        return
    assert np.all(edges[:, 0] < edges[:, 1])
    assert edges.min() >= 0 and edges.max() < n
    # strictly increasing lexicographic order implies sorted + unique
    key = edges[:, 0].astype(np.int64) * n + edges[:, 1]
    assert np.all(np.diff(key) > 0)


def edge_set(edges: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edges}


@st.composite
def ring_params(draw, min_n: int = 3, max_n: int = 60):
    n = draw(st.integers(min_n, max_n))
    k = 2 * draw(st.integers(1, (n - 1) // 2))
    return n, k


@st.composite
def random_graph(draw, max_n: int = 30):
    """(n, edges) with edges a random canonical edge array."""
    n = draw(st.integers(1, max_n))
    pairs = list(itertools.combinations(range(n), 2))
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    edges = np.array(sorted(chosen), dtype=np.int32).reshape(-1, 2)
    return n, edges


# ---------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_all_to_all_is_every_pair(n):
    e = graphs.all_to_all(n)
    assert e.shape == (n * (n - 1) // 2, 2)
    assert_canonical(e, n)
    assert edge_set(e) == set(itertools.combinations(range(n), 2))


def test_ring_small_example():
    np.testing.assert_array_equal(
        graphs.ring(5, 2), np.array([[0, 1], [0, 4], [1, 2], [2, 3], [3, 4]])
    )
    # k = 4 on 6 nodes: each node links to v+-1, v+-2
    e = edge_set(graphs.ring(6, 4))
    for v in range(6):
        for d in (1, 2):
            a, b = sorted((v, (v + d) % 6))
            assert (a, b) in e
    assert len(e) == 12


@FAST
@given(ring_params())
def test_ring_counts_and_degrees(nk):
    n, k = nk
    e = graphs.ring(n, k)
    assert_canonical(e, n)
    assert e.shape[0] == n * k // 2
    np.testing.assert_array_equal(graphs.degree(e, n), np.full(n, k))
    # every edge joins nodes at ring distance <= k/2
    d = np.abs(e[:, 0] - e[:, 1])
    assert np.all(np.minimum(d, n - d) <= k // 2)


@FAST
@given(ring_params(max_n=40), st.integers(0, 2**31 - 1))
def test_small_world_p0_is_ring(nk, seed):
    n, k = nk
    sw = graphs.small_world(n, k, 0.0, key=jax.random.PRNGKey(seed))
    np.testing.assert_array_equal(sw, graphs.ring(n, k))
    assert sw.dtype == np.int32


@FAST
@given(ring_params(), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_small_world_connected_canonical_edge_count(nk, p, seed):
    n, k = nk
    e = graphs.small_world(n, k, p, key=jax.random.key(seed))
    assert_canonical(e, n)
    assert e.shape[0] == n * k // 2
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(e.tolist())
    assert nx.is_connected(g)


def test_small_world_deterministic_per_key_and_differs_across_keys():
    a = graphs.small_world(60, 4, 0.3, key=jax.random.key(0))
    b = graphs.small_world(60, 4, 0.3, key=jax.random.key(0))
    c = graphs.small_world(60, 4, 0.3, key=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # legacy raw uint32 keys are accepted and agree with typed keys
    d = graphs.small_world(60, 4, 0.3, key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a, d)
    # a split key gives yet another graph
    k1, _ = jax.random.split(jax.random.key(0))
    assert not np.array_equal(a, graphs.small_world(60, 4, 0.3, key=k1))


def test_small_world_rewires_at_p1():
    e = graphs.small_world(60, 4, 1.0, key=jax.random.key(3))
    assert edge_set(e) != edge_set(graphs.ring(60, 4))


def test_erdos_renyi_edge_count_matches_binomial():
    n, p = 200, 0.1
    n_pairs = n * (n - 1) // 2
    mean, sd = p * n_pairs, np.sqrt(n_pairs * p * (1 - p))
    for s in range(3):
        e = graphs.erdos_renyi(n, p, key=jax.random.key(s))
        assert_canonical(e, n)
        assert abs(e.shape[0] - mean) < 5 * sd


def test_erdos_renyi_pairs_uniform():
    # Every one of the 15 pairs on 6 nodes appears with frequency ~ p
    # (would fail if pair unranking were biased, e.g. never produced (4, 5)).
    n, p, trials = 6, 0.3, 400
    counts = np.zeros((n, n))
    for s in range(trials):
        e = graphs.erdos_renyi(n, p, key=jax.random.PRNGKey(s))
        counts[e[:, 0], e[:, 1]] += 1
    iu = np.triu_indices(n, 1)
    sd = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(counts[iu] - trials * p) < 5 * sd)
    assert np.all(np.tril(counts) == 0)


def test_erdos_renyi_extremes_and_determinism():
    key = jax.random.key(7)
    assert graphs.erdos_renyi(30, 0.0, key=key).shape == (0, 2)
    assert graphs.erdos_renyi(30, 0.0, key=key).dtype == np.int32
    np.testing.assert_array_equal(graphs.erdos_renyi(30, 1.0, key=key), graphs.all_to_all(30))
    assert graphs.erdos_renyi(1, 0.5, key=key).shape == (0, 2)
    a = graphs.erdos_renyi(50, 0.2, key=key)
    np.testing.assert_array_equal(a, graphs.erdos_renyi(50, 0.2, key=jax.random.key(7)))
    assert not np.array_equal(a, graphs.erdos_renyi(50, 0.2, key=jax.random.key(8)))


@FAST
@given(st.integers(1, 60), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_erdos_renyi_canonical(n, p, seed):
    e = graphs.erdos_renyi(n, p, key=jax.random.key(seed))
    assert_canonical(e, n)
    assert e.shape[0] <= n * (n - 1) // 2


@FAST
@given(st.integers(1, 60))
def test_all_to_all_canonical(n):
    assert_canonical(graphs.all_to_all(n), n)


# ---------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------


@FAST
@given(random_graph())
def test_dense_round_trip(ne):
    n, edges = ne
    mask = graphs.to_dense(edges, n)
    assert mask.dtype == np.bool_ and mask.shape == (n, n)
    np.testing.assert_array_equal(mask, mask.T)
    assert not np.any(np.diagonal(mask))
    assert mask.sum() == 2 * edges.shape[0]
    back = graphs.from_dense(mask)
    assert_canonical(back, n)
    np.testing.assert_array_equal(back, edges)
    np.testing.assert_array_equal(graphs.to_dense(back, n), mask)
    np.testing.assert_array_equal(graphs.degree(edges, n), mask.sum(axis=1))


@FAST
@given(st.integers(0, 25), st.integers(0, 2**31 - 1))
def test_from_dense_then_to_dense(n, seed):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.4, k=1)
    mask = upper | upper.T
    np.testing.assert_array_equal(graphs.to_dense(graphs.from_dense(mask), n), mask)
    # numeric masks: nonzero means edge
    np.testing.assert_array_equal(graphs.from_dense(mask.astype(np.float32)), graphs.from_dense(mask))


def test_to_dense_example():
    m = graphs.to_dense([[2, 0], [1, 2]], 4)
    expected = np.zeros((4, 4), bool)
    for a, b in [(0, 2), (1, 2)]:
        expected[a, b] = expected[b, a] = True
    np.testing.assert_array_equal(m, expected)


@FAST
@given(random_graph(), st.integers(0, 2**31 - 1))
def test_validate_edges_canonicalises_shuffled_swapped(ne, seed):
    n, edges = ne
    rng = np.random.default_rng(seed)
    messy = edges.astype(np.int64)[rng.permutation(edges.shape[0])]
    swap = rng.random(messy.shape[0]) < 0.5
    messy[swap] = messy[swap][:, ::-1]
    out = graphs.validate_edges(messy.tolist() if messy.size else messy, n)
    np.testing.assert_array_equal(out, edges)
    assert out.dtype == np.int32


@FAST
@given(random_graph(), st.integers(0, 2**31 - 1))
def test_neighbour_lists_reproduce_dense(ne, seed):
    n, edges = ne
    rng = np.random.default_rng(seed)
    # non-canonical row order/orientation: edge_id must index the rows as passed
    messy = edges[rng.permutation(edges.shape[0])]
    swap = rng.random(messy.shape[0]) < 0.5
    messy[swap] = messy[swap][:, ::-1]
    nbr, edge_id, valid = graphs.neighbour_lists(messy, n)
    deg = graphs.degree(messy, n)
    width = int(deg.max()) if n else 0
    assert nbr.shape == edge_id.shape == valid.shape == (n, width)
    assert nbr.dtype == np.int32 and edge_id.dtype == np.int32 and valid.dtype == np.bool_
    np.testing.assert_array_equal(valid.sum(axis=1), deg)

    rebuilt = np.zeros((n, n), bool)
    rows = np.repeat(np.arange(n)[:, None], width, axis=1)
    rebuilt[rows[valid], nbr[valid]] = True
    np.testing.assert_array_equal(rebuilt, graphs.to_dense(edges, n))

    # valid slots come first, neighbours sorted, no repeats; padding = own index / 0
    for v in range(n):
        d = deg[v]
        assert valid[v, :d].all() and not valid[v, d:].any()
        assert np.all(np.diff(nbr[v, :d]) > 0)
        assert np.all(nbr[v, d:] == v)
        assert np.all(edge_id[v, d:] == 0)
    # edge_id points at the row of `messy` holding {v, nbr}
    if edges.shape[0]:
        got = np.sort(messy[edge_id[valid]], axis=1)
        want = np.sort(np.stack([rows[valid], nbr[valid]], axis=1), axis=1)
        np.testing.assert_array_equal(got, want)


def test_neighbour_lists_empty_graph():
    nbr, edge_id, valid = graphs.neighbour_lists(np.zeros((0, 2), np.int32), 3)
    assert nbr.shape == edge_id.shape == valid.shape == (3, 0)


def test_empty_edge_inputs_accepted():
    for empty in ([], np.zeros((0, 2), np.int64), np.zeros((0, 2))):
        out = graphs.validate_edges(empty, 5)
        assert out.shape == (0, 2) and out.dtype == np.int32
    assert graphs.from_dense(np.zeros((4, 4), bool)).shape == (0, 2)
    np.testing.assert_array_equal(graphs.degree([], 3), np.zeros(3))


# ---------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: graphs.all_to_all(0), r"n=0"),
        (lambda: graphs.ring(10, 3), r"ring: k=3 must be even.*k=2 or k=4"),
        (lambda: graphs.ring(10, 0), r"k=0 must be >= 2"),
        (lambda: graphs.ring(10, 10), r"k=10 must be less than n=10.*k <= 8"),
        (lambda: graphs.ring(2, 2), r"n=2"),
        (
            lambda: graphs.small_world(200, 151, 0.1, key=KEY),
            r"small_world: k=151 must be even.*pass k=150 or k=152",
        ),
        (lambda: graphs.small_world(10, 12, 0.1, key=KEY), r"k=12 must be less than n=10"),
        (lambda: graphs.small_world(2, 2, 0.1, key=KEY), r"n=2"),
        (lambda: graphs.small_world(10, 4, 1.5, key=KEY), r"p=1.5"),
        (lambda: graphs.small_world(10, 4, -0.1, key=KEY), r"p=-0.1"),
        (lambda: graphs.small_world(10, 4, float("nan"), key=KEY), r"p=nan"),
        (lambda: graphs.small_world(10, 4, 0.1, key=None), r"key"),
        (lambda: graphs.small_world(10, 4, 0.1, key=jax.random.split(KEY, 3)), r"key"),
        (lambda: graphs.small_world(10, 4, 0.1, key=KEY, tries=0), r"tries=0"),
        (lambda: graphs.erdos_renyi(10, 2.0, key=KEY), r"p=2.0"),
        (lambda: graphs.erdos_renyi(0, 0.5, key=KEY), r"n=0"),
        (lambda: graphs.to_dense([[0, 5]], 5), r"edges: edge \(0, 5\) is out of range for n=5"),
        (lambda: graphs.degree([[1, 1]], 5), r"edges: edge \(1, 1\) is a self loop"),
        (lambda: graphs.neighbour_lists([[0, 1], [1, 0]], 5), r"edges: edge \(0, 1\) appears more"),
        (lambda: graphs.from_dense(np.zeros((3, 4), bool)), r"mask.*square.*\(3, 4\)"),
        (lambda: graphs.from_dense(np.zeros(4, bool)), r"mask.*square"),
        (lambda: graphs.from_dense(np.triu(np.ones((3, 3), bool), 1)), r"mask is not symmetric"),
        (lambda: graphs.from_dense(np.eye(3, dtype=bool)), r"mask.*self loop"),
    ],
)
def test_value_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "edges, match",
    [
        ([[3, 900]], r"syn: edge \(3, 900\) is out of range for n=896 nodes: .*larger n"),
        ([[0, 1], [-1, 2]], r"syn: edge \(-1, 2\) is out of range"),
        ([[0, 1], [4, 4]], r"syn: edge \(4, 4\) is a self loop.*row 1"),
        ([[0, 1], [2, 3], [1, 0]], r"syn: edge \(0, 1\) appears more than once.*rows 0 and 2"),
        ([[0, 1], [0, 1]], r"syn: edge \(0, 1\) appears more than once"),
        ([[0.0, 1.0]], r"syn has dtype float64.*pass an integer array"),
        ([[True, False]], r"syn has dtype bool.*pass an integer array"),
        ([0, 1, 2], r"syn must have shape \(E, 2\)"),
        (np.zeros((3, 3), np.int32), r"syn must have shape \(E, 2\).*\(3, 3\)"),
        (np.zeros((2, 5), np.int32), r"syn must have shape \(E, 2\).*transposed"),
        (np.zeros((1, 2, 2), np.int32), r"syn must have shape \(E, 2\)"),
        ([[0, 1], [2]], r"syn"),
    ],
)
def test_validate_edges_errors(edges, match):
    with pytest.raises(ValueError, match=match):
        graphs.validate_edges(edges, 896, name="syn")


def test_validate_edges_default_name():
    with pytest.raises(ValueError, match=r"edges: edge \(3, 900\) is out of range for n=896 nodes"):
        graphs.validate_edges([[3, 900]], 896)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: graphs.all_to_all(4.0), r"n=4.0.*pass an int"),
        (lambda: graphs.ring(10.0, 2), r"n=10.0"),
        (lambda: graphs.ring(10, 2.0), r"k=2.0"),
        (lambda: graphs.ring(True, 2), r"n=True"),
        (lambda: graphs.small_world(10, 4, "0.1", key=KEY), r"p="),
        (lambda: graphs.small_world(10, 4, 0.1, key=0), r"key=0.*jax.random.key"),
        (lambda: graphs.erdos_renyi(10, 0.1, key=3), r"key"),
        (lambda: graphs.to_dense([[0, 1]], 4.5), r"n=4.5"),
    ],
)
def test_type_errors_name_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_numpy_integer_arguments_accepted():
    np.testing.assert_array_equal(graphs.ring(np.int64(8), np.int32(4)), graphs.ring(8, 4))
    assert graphs.erdos_renyi(np.int64(10), np.float32(0.5), key=KEY).dtype == np.int32


def test_key_under_jit_is_rejected():
    @jax.jit
    def f(key):
        graphs.erdos_renyi(10, 0.5, key=key)
        return 0

    with pytest.raises(TypeError, match="outside jax.jit"):
        f(KEY)

"""Graph connectivity for oscillator / coupling synapses.

Graphs are static structure built once on the host with NumPy (not JAX).
Every generator returns an *edge array*: a NumPy ``int32`` array of shape
``(E, 2)`` whose rows ``(i, j)`` satisfy ``i < j``, with no duplicates, no
self loops, and rows sorted lexicographically (by ``i``, then ``j``). This is
the *canonical form*; :func:`validate_edges` turns any valid user-supplied
edge list into it.

Random generators take a JAX PRNG key (``key=jax.random.key(0)`` or the
legacy ``key=jax.random.PRNGKey(0)``; both give the same graph for the same
seed). The same key always gives the same graph.

Public functions:

* :func:`all_to_all`, :func:`ring`, :func:`small_world`, :func:`erdos_renyi`
  build graphs;
* :func:`to_dense`, :func:`from_dense` convert to / from an ``(n, n)``
  boolean adjacency mask;
* :func:`validate_edges` checks and canonicalises a user edge array;
* :func:`degree` and :func:`neighbour_lists` derive per-node structure
  (degrees, and a padded neighbour table for fast gathers).
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import networkx as nx
import numpy as np

__all__ = [
    "all_to_all",
    "ring",
    "small_world",
    "erdos_renyi",
    "to_dense",
    "from_dense",
    "validate_edges",
    "degree",
    "neighbour_lists",
]

# Node indices are stored as int32, so n may not exceed this.
_MAX_NODES = int(np.iinfo(np.int32).max)


# ---------------------------------------------------------------------------
# Argument checking helpers
# ---------------------------------------------------------------------------


def _check_int(value: Any, name: str, fn: str, minimum: int) -> int:
    """Return ``value`` as a Python int, or raise TypeError / ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{fn}: {name}={value!r} must be an int, not a bool; "
            f"pass an integer {name} >= {minimum}"
        )
    try:
        out = operator.index(value)
    except TypeError:
        hint = ""
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            hint = f" (e.g. {name}={int(value)})"
        raise TypeError(
            f"{fn}: {name}={value!r} has type {type(value).__name__}; "
            f"pass an int{hint}"
        ) from None
    if out < minimum:
        raise ValueError(f"{fn}: {name}={out} must be >= {minimum}; pass {name} >= {minimum}")
    if out > _MAX_NODES:
        raise ValueError(
            f"{fn}: {name}={out} is too large (node indices are stored as int32); "
            f"pass {name} <= {_MAX_NODES}"
        )
    return int(out)


def _check_prob(value: Any, name: str, fn: str) -> float:
    """Return ``value`` as a float in [0, 1], or raise TypeError / ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{fn}: {name}={value!r} must be a float in [0, 1], not a bool; "
            f"pass e.g. {name}={float(value)}"
        )
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{fn}: {name}={value!r} has type {type(value).__name__}; "
            f"pass a float with 0 <= {name} <= 1"
        ) from None
    if not (0.0 <= out <= 1.0):  # also catches NaN
        raise ValueError(
            f"{fn}: {name}={value!r} is not a probability; pass a float with 0 <= {name} <= 1"
        )
    return out


def _check_ring_k(k: Any, n: int, fn: str) -> int:
    """Validate the ring degree k: even, 2 <= k < n."""
    k = _check_int(k, "k", fn, minimum=-_MAX_NODES)
    largest = n - 1 if (n - 1) % 2 == 0 else n - 2  # largest even value < n
    if k % 2 != 0:
        options = [c for c in (k - 1, k + 1) if 2 <= c < n]
        fix = " or ".join(f"k={c}" for c in options) if options else "an even k with 2 <= k < n"
        raise ValueError(
            f"{fn}: k={k} must be even (each node links to k/2 neighbours on each "
            f"side); pass {fix}"
        )
    if k < 2:
        raise ValueError(
            f"{fn}: k={k} must be >= 2 (each node links to k/2 neighbours on each side); "
            f"pass an even k with 2 <= k < n, e.g. k=2"
        )
    if k >= n:
        raise ValueError(
            f"{fn}: k={k} must be less than n={n} (a node has only n-1 possible "
            f"neighbours); pass an even k with 2 <= k <= {largest}, or a larger n"
        )
    return k


def _seed_from_key(key: Any, fn: str) -> int:
    """Derive a deterministic non-negative Python int seed from a JAX PRNG key.

    All words of the key data are packed into one integer, so
    ``jax.random.PRNGKey(s)`` and ``jax.random.key(s)`` give the same seed.
    """
    fix = "pass key=jax.random.key(0) (or key=jax.random.PRNGKey(0))"
    if key is None:
        raise ValueError(f"{fn}: key is required for a random graph; {fix}")
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        raise TypeError(f"{fn}: key={key!r} has type {type(key).__name__}, not a JAX PRNG key; {fix}")
    try:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(
                    f"{fn}: key must be a single PRNG key, got a batch of shape "
                    f"{tuple(key.shape)}; pass one key, e.g. key=keys[0]"
                )
            data = np.asarray(jax.random.key_data(key))
        else:
            data = np.asarray(key)
            if data.dtype != np.uint32 or data.ndim != 1 or data.size == 0:
                raise ValueError(
                    f"{fn}: key must be a JAX PRNG key (a typed key, or a raw uint32 "
                    f"array of shape (2,)), got dtype {data.dtype} and shape "
                    f"{data.shape}; {fix}"
                )
    except jax.errors.TracerArrayConversionError:
        raise TypeError(
            f"{fn}: key is a traced value; graphs are static structure built on the "
            f"host, so call {fn} outside jax.jit / jax.vmap with a concrete key"
        ) from None
    seed = 0
    for word in data.ravel().astype(np.uint64):
        seed = (seed << 32) | int(word)
    return seed


def _canonical(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Build a canonical (E, 2) int32 edge array from endpoint arrays (no checks)."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    lo = np.minimum(i, j)
    hi = np.maximum(i, j)
    order = np.lexsort((hi, lo))
    return np.stack([lo[order], hi[order]], axis=1).astype(np.int32).reshape(-1, 2)


def _checked_edges(edges: Any, n: int, name: str, fn: str) -> np.ndarray:
    """Check an edge array and return it as int64 ``(E, 2)`` in the caller's row order.

    Rows are *not* swapped or sorted. Raises ValueError naming ``name``.
    """
    example = "e.g. np.array([[0, 1], [1, 2]], dtype=np.int32)"
    try:
        arr = np.asarray(edges)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{fn}: {name} could not be converted to an array ({err}); pass an "
            f"integer array of shape (E, 2), {example}"
        ) from None
    if arr.size == 0 and arr.shape in ((0,), (0, 2)):
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        hint = ""
        if arr.ndim == 2 and arr.shape[0] == 2:
            hint = f" (it looks transposed: pass {name}.T)"
        raise ValueError(
            f"{fn}: {name} must have shape (E, 2), one (i, j) row per edge, but has "
            f"shape {arr.shape}{hint}; pass an integer array of shape (E, 2), {example}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{fn}: {name} has dtype {arr.dtype}, but node indices must be integers; "
            f"pass an integer array (e.g. {name}.astype(np.int32))"
        )
    bad = np.flatnonzero(((arr < 0) | (arr >= n)).any(axis=1))
    if bad.size:
        r = int(bad[0])
        a, b = int(arr[r, 0]), int(arr[r, 1])
        raise ValueError(
            f"{fn}: {name}: edge ({a}, {b}) is out of range for n={n} nodes: every "
            f"index must satisfy 0 <= i < n (row {r} of {name}); drop the edge or pass a larger n"
        )
    arr = arr.astype(np.int64)
    loops = np.flatnonzero(arr[:, 0] == arr[:, 1])
    if loops.size:
        r = int(loops[0])
        a = int(arr[r, 0])
        raise ValueError(
            f"{fn}: {name}: edge ({a}, {a}) is a self loop (row {r} of {name}); remove rows with "
            f"i == j, e.g. {name} = {name}[{name}[:, 0] != {name}[:, 1]]"
        )
    lo = np.minimum(arr[:, 0], arr[:, 1])
    hi = np.maximum(arr[:, 0], arr[:, 1])
    order = np.lexsort((hi, lo))
    slo, shi = lo[order], hi[order]
    dup = np.flatnonzero((slo[1:] == slo[:-1]) & (shi[1:] == shi[:-1]))
    if dup.size:
        d = int(dup[0])
        r1, r2 = sorted((int(order[d]), int(order[d + 1])))
        raise ValueError(
            f"{fn}: {name}: edge ({int(slo[d])}, {int(shi[d])}) appears more than once "
            f"(rows {r1} and {r2} of {name}; (i, j) and (j, i) are the same undirected edge); "
            f"remove duplicates, e.g. {name} = np.unique(np.sort({name}, axis=1), axis=0)"
        )
    return arr


# ---------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------


def all_to_all(n: int) -> np.ndarray:
    """Complete graph: every pair of nodes i < j is joined.

    Args:
        n: number of nodes, an int >= 1.

    Returns:
        Canonical int32 edge array of shape (n(n-1)/2, 2).

    Raises:
        TypeError: if n is not an int.
        ValueError: if n < 1.
    """
    n = _check_int(n, "n", "all_to_all", minimum=1)
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1).astype(np.int32).reshape(-1, 2)


def ring(n: int, k: int) -> np.ndarray:
    """Ring lattice: each node joined to its k nearest neighbours on a ring.

    Node v is joined to v +- 1, ..., v +- k/2 (indices mod n), so every node
    has degree k and there are n k / 2 edges.

    Args:
        n: number of nodes, an int >= 3.
        k: degree, an even int with 2 <= k < n.

    Returns:
        Canonical int32 edge array of shape (n k / 2, 2).

    Raises:
        TypeError: if n or k is not an int.
        ValueError: if n < 3, k is odd, k < 2 or k >= n.
    """
    fn = "ring"
    n = _check_int(n, "n", fn, minimum=3)
    k = _check_ring_k(k, n, fn)
    nodes = np.arange(n, dtype=np.int64)
    offsets = np.arange(1, k // 2 + 1, dtype=np.int64)
    src = np.repeat(nodes, offsets.size)
    dst = (src + np.tile(offsets, n)) % n
    return _canonical(src, dst)


def small_world(n: int, k: int, p: float, *, key: Any, tries: int = 100) -> np.ndarray:
    """Connected Watts-Strogatz small-world graph.

    Starts from ``ring(n, k)`` and rewires each edge (u, v) with probability p
    to (u, w) for a uniformly random w (avoiding self loops and duplicates),
    repeating until the graph is connected (``networkx.connected_watts_strogatz_graph``).
    Rewiring keeps the edge count at n k / 2; p = 0 gives exactly ``ring(n, k)``.

    Args:
        n: number of nodes, an int >= 3.
        k: ring degree before rewiring, an even int with 2 <= k < n.
        p: rewiring probability, 0 <= p <= 1.
        key: JAX PRNG key (``jax.random.key(s)`` or ``jax.random.PRNGKey(s)``;
            both give the same graph for the same s). Same key -> same graph.
        tries: maximum number of graphs drawn while looking for a connected one.

    Returns:
        Canonical int32 edge array of shape (n k / 2, 2) of a connected graph.

    Raises:
        TypeError: if n, k or tries is not an int, p is not a number, or key is
            not a JAX PRNG key.
        ValueError: if n < 3, k is odd, k < 2, k >= n, p is outside [0, 1],
            tries < 1, or no connected graph was found in ``tries`` attempts.
    """
    fn = "small_world"
    n = _check_int(n, "n", fn, minimum=3)
    k = _check_ring_k(k, n, fn)
    p = _check_prob(p, "p", fn)
    tries = _check_int(tries, "tries", fn, minimum=1)
    seed = _seed_from_key(key, fn)
    try:
        g = nx.connected_watts_strogatz_graph(n, k, p, tries=tries, seed=seed)
    except nx.NetworkXError:
        raise ValueError(
            f"{fn}: no connected graph found in tries={tries} attempts for n={n}, "
            f"k={k}, p={p}; pass a larger k, a smaller p, or a larger tries"
        ) from None
    e = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
    return _canonical(e[:, 0], e[:, 1])


def erdos_renyi(n: int, p: float, *, key: Any) -> np.ndarray:
    """Erdos-Renyi random graph G(n, p): each pair i < j is an edge independently with probability p.

    Sampled exactly as: draw the edge count m ~ Binomial(n(n-1)/2, p), then a
    uniformly random set of m distinct pairs. Memory is O(m), not O(n^2).
    The expected number of edges is p n (n-1) / 2.

    Args:
        n: number of nodes, an int >= 1.
        p: edge probability, 0 <= p <= 1.
        key: JAX PRNG key (``jax.random.key(s)`` or ``jax.random.PRNGKey(s)``).
            Same key -> same graph.

    Returns:
        Canonical int32 edge array of shape (m, 2).

    Raises:
        TypeError: if n is not an int, p is not a number, or key is not a JAX
            PRNG key.
        ValueError: if n < 1 or p is outside [0, 1].
    """
    fn = "erdos_renyi"
    n = _check_int(n, "n", fn, minimum=1)
    p = _check_prob(p, "p", fn)
    seed = _seed_from_key(key, fn)
    rng = np.random.default_rng(seed)
    n_pairs = n * (n - 1) // 2
    m = int(rng.binomial(n_pairs, p)) if n_pairs else 0
    if m == 0:
        return np.zeros((0, 2), dtype=np.int32)
    flat = np.sort(rng.choice(n_pairs, size=m, replace=False, shuffle=False).astype(np.int64))
    # Unrank row-major upper-triangle indices: row i starts at offset
    # i (2n - i - 1) / 2 and holds pairs (i, i+1), ..., (i, n-1).
    rows = np.arange(n, dtype=np.int64)
    starts = rows * (2 * n - rows - 1) // 2
    i = np.searchsorted(starts, flat, side="right") - 1
    j = flat - starts[i] + i + 1
    return np.stack([i, j], axis=1).astype(np.int32)


# ---------------------------------------------------------------------------
# Conversions and derived structure
# ---------------------------------------------------------------------------


def validate_edges(edges: Any, n: int, *, name: str = "edges") -> np.ndarray:
    """Check a user edge array and return it in canonical form.

    Canonical form: int32, shape (E, 2), every row (i, j) with i < j, no
    duplicates, no self loops, rows sorted lexicographically. Rows given as
    (j, i) are swapped to (i, j).

    Args:
        edges: array-like of shape (E, 2) of integer node indices, or an empty
            array of shape (0, 2) (or ``[]``).
        n: number of nodes, an int >= 0; every index must satisfy 0 <= i < n.
        name: argument name used in error messages.

    Returns:
        Canonical int32 edge array of shape (E, 2).

    Raises:
        TypeError: if n is not an int.
        ValueError: (message names ``name``) if edges has the wrong shape or a
            non-integer dtype, an index is out of range, or it contains a self
            loop or a duplicate edge ((i, j) and (j, i) count as duplicates).
    """
    fn = "validate_edges"
    n = _check_int(n, "n", fn, minimum=0)
    arr = _checked_edges(edges, n, name, fn)
    return _canonical(arr[:, 0], arr[:, 1])


def to_dense(edges: Any, n: int) -> np.ndarray:
    """Symmetric boolean adjacency mask of a graph.

    Args:
        edges: edge array of shape (E, 2) (checked with :func:`validate_edges`).
        n: number of nodes, an int >= 0.

    Returns:
        Bool array A of shape (n, n) with A[i, j] = A[j, i] = True iff (i, j)
        is an edge; the diagonal is all False.

    Raises:
        TypeError: if n is not an int.
        ValueError: if edges is invalid for n nodes (see :func:`validate_edges`).
    """
    fn = "to_dense"
    n = _check_int(n, "n", fn, minimum=0)
    arr = _checked_edges(edges, n, "edges", fn)
    mask = np.zeros((n, n), dtype=bool)
    mask[arr[:, 0], arr[:, 1]] = True
    mask[arr[:, 1], arr[:, 0]] = True
    return mask


def from_dense(mask: Any) -> np.ndarray:
    """Edge array of a symmetric adjacency mask (the inverse of :func:`to_dense`).

    Nonzero entries are edges; the upper triangle (i < j) is read.

    Args:
        mask: square (n, n) array (bool or numeric), symmetric, with a zero
            diagonal.

    Returns:
        Canonical int32 edge array of shape (E, 2).

    Raises:
        ValueError: if mask is not a square 2-D array, is not symmetric, or has
            a nonzero diagonal entry (a self loop).
    """
    fn = "from_dense"
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(
            f"{fn}: mask must be a square (n, n) adjacency matrix, but has shape "
            f"{arr.shape}; pass a 2-D array with equal sides"
        )
    if not (np.issubdtype(arr.dtype, np.bool_) or np.issubdtype(arr.dtype, np.number)):
        raise ValueError(
            f"{fn}: mask has dtype {arr.dtype}; pass a boolean (or numeric) adjacency matrix"
        )
    b = arr != 0
    asym = np.argwhere(b != b.T)
    if asym.size:
        i, j = (int(v) for v in asym[0])
        raise ValueError(
            f"{fn}: mask is not symmetric (mask[{i}, {j}] != mask[{j}, {i}]); graphs are "
            f"undirected, so pass a symmetric mask, e.g. mask | mask.T"
        )
    diag = np.flatnonzero(np.diagonal(b))
    if diag.size:
        i = int(diag[0])
        raise ValueError(
            f"{fn}: mask has a nonzero diagonal entry mask[{i}, {i}] (a self loop); "
            f"pass a mask with a zero diagonal, e.g. after np.fill_diagonal(mask, False)"
        )
    i, j = np.nonzero(np.triu(b, k=1))  # row-major order = lexicographic
    return np.stack([i, j], axis=1).astype(np.int32).reshape(-1, 2)


def degree(edges: Any, n: int) -> np.ndarray:
    """Node degrees of a graph.

    Args:
        edges: edge array of shape (E, 2) (checked with :func:`validate_edges`).
        n: number of nodes, an int >= 0.

    Returns:
        int32 array d of shape (n,), d[v] = number of edges touching v;
        sum(d) = 2 E.

    Raises:
        TypeError: if n is not an int.
        ValueError: if edges is invalid for n nodes (see :func:`validate_edges`).
    """
    fn = "degree"
    n = _check_int(n, "n", fn, minimum=0)
    arr = _checked_edges(edges, n, "edges", fn)
    return np.bincount(arr.ravel(), minlength=n).astype(np.int32)


def neighbour_lists(edges: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded neighbour table of a graph, for fast fixed-shape gathers.

    With D = max_v degree(v) (D = 0 for a graph without edges), row v of each
    table lists v's neighbours in increasing order, then padding:

    * ``nbr[v, s]``: index of the s-th neighbour of v; padding slots hold v
      itself (so gathers stay in range and a padded phase difference
      theta[nbr] - theta[v] is 0).
    * ``edge_id[v, s]``: row of ``edges`` (in the order passed, before any
      canonicalisation) that holds the edge {v, nbr[v, s]}; padding holds 0.
      Use it to gather per-edge weights w of shape (E,) as w[edge_id].
    * ``valid[v, s]``: True for real neighbours, False for padding.

    For example a Kuramoto coupling sum_j K_ij sin(theta_j - theta_i) becomes
    ``sum(where(valid, w[edge_id] * sin(theta[nbr] - theta[:, None]), 0), axis=1)``.

    Args:
        edges: edge array of shape (E, 2) (checked with :func:`validate_edges`;
            rows may be in any order and orientation).
        n: number of nodes, an int >= 0.

    Returns:
        ``(nbr, edge_id, valid)``: int32, int32 and bool arrays, each of shape
        (n, D).

    Raises:
        TypeError: if n is not an int.
        ValueError: if edges is invalid for n nodes (see :func:`validate_edges`).
    """
    fn = "neighbour_lists"
    n = _check_int(n, "n", fn, minimum=0)
    arr = _checked_edges(edges, n, "edges", fn)
    n_edges = arr.shape[0]
    src = np.concatenate([arr[:, 0], arr[:, 1]])
    dst = np.concatenate([arr[:, 1], arr[:, 0]])
    eid = np.concatenate([np.arange(n_edges), np.arange(n_edges)])
    order = np.lexsort((dst, src))
    src, dst, eid = src[order], dst[order], eid[order]
    deg = np.bincount(src, minlength=n)
    width = int(deg.max()) if n > 0 else 0
    starts = np.cumsum(deg) - deg
    slot = np.arange(src.size) - starts[src]
    nbr = np.repeat(np.arange(n, dtype=np.int32)[:, None], width, axis=1)
    edge_id = np.zeros((n, width), dtype=np.int32)
    valid = np.zeros((n, width), dtype=bool)
    nbr[src, slot] = dst
    edge_id[src, slot] = eid
    valid[src, slot] = True
    return nbr, edge_id, valid


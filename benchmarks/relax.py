"""Time ``relax`` of the paper's MNIST-size Hopfield–Kuramoto network at several batch
sizes (vmap), float32, Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1.

Target (2-core CPU): batch 100 ≤ 1.5 s (the paper's research code: ~27 s).

Rows with a chunk size run the batch as ``jax.lax.map(relax, states, batch_size=chunk)``:
vmapped solves of ``chunk`` states at a time, one after the other. Every state still gets its
own adaptive solve (the same result as the plain ``vmap``), but the batched ``n × n``
intermediates stay chunk-sized, which on a CPU keeps them in cache.

    python benchmarks/relax.py [--batches 1,10,100] [--chunks 5,10] [--repeats 5]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import numpy as np

import hkjax as hk

try:
    from _common import initial_states, paper_network, report, timeit
except ImportError:
    from ._common import initial_states, paper_network, report, timeit

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "relax": {
        "title": "relax, paper MNIST size (n={n}, D={dim}, float32)",
        "columns": [
            ("batch", "batch", "d"), ("chunk", "lax.map chunk", ""), ("formulation", "formulation", ""),
            ("relax_ms", "relax (ms, median)", ".1f"),
            ("per_sample_ms", "per sample (ms)", ".2f"), ("first_call_s", "first call incl. compile (s)", ".2f"),
            ("solver_steps", "solver steps", "d"), ("max_diff_vs_vmap", "max |diff| vs vmap", ".1e"),
        ],
    },
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,10,100")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chunks", default="5,10", help="chunk sizes for the lax.map rows ('' for none)")
    ap.add_argument("--formulation", default="auto")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    net = paper_network(formulation=a.formulation)
    brelax = eqx.filter_jit(lambda n, s: jax.vmap(lambda y: hk.relax(n, y, t1=1.0))(s))
    chunks = [int(x) for x in a.chunks.split(",") if x.strip()]

    def chunked(chunk):
        return eqx.filter_jit(
            lambda n, s: jax.lax.map(lambda y: hk.relax(n, y, t1=1.0), s, batch_size=chunk)
        )

    rows = []
    for b in [int(x) for x in a.batches.split(",")]:
        states = initial_states(net, b)
        plain = None
        for chunk in [None] + [c for c in chunks if c < b]:
            fn = brelax if chunk is None else chunked(chunk)
            med, mn, first, sol = timeit(fn, net, states, repeats=a.repeats)
            if chunk is None:
                plain = sol.state
                diff = 0.0
            else:  # the same solves, only scheduled differently
                diff = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
                           for u, v in zip(jax.tree_util.tree_leaves(sol.state), jax.tree_util.tree_leaves(plain)))
            rows.append({
                "batch": b, "chunk": "-" if chunk is None else str(chunk),
                "formulation": net.synapses[1].pairs.formulation, "dtype": "float32",
                "relax_ms": 1e3 * med, "relax_min_ms": 1e3 * mn, "per_sample_ms": 1e3 * med / b,
                "first_call_s": first, "solver_steps": int(np.max(np.asarray(sol.stats["num_steps"]))),
                "max_diff_vs_vmap": diff,
            })
    report(TABLES["relax"], "relax", {"rows": rows}, a.json)
    return rows


if __name__ == "__main__":
    main()

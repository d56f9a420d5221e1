"""Time one vector-field evaluation and one batched ``relax`` of the paper's MNIST-size
Hopfield–Kuramoto network, in each formulation of the edge sums.

Configuration: n = 896 (785 + 100 + 11), small-world graphs (k = 150, p = 0.1)
for both the Kuramoto and the coupling terms, D = 5, ReLU Lagrangian and interaction,
κ_H = 0.1, κ_K = 1, full coupling, Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1, float32.

Rows: each formulation of :mod:`hkjax.synapses`, plus ``edges-autodiff``: the edge list
with gradients taken by ``jax.grad`` of the energy (gather → scatter-add), the way research
code usually writes it: the in-repo baseline. "field" times are of the prepared network
(what ``relax`` evaluates at every stage); GFLOP/s counts the dense work
``n²(5 + 6D)`` per sample and is printed next to a plain ``jnp.dot`` of the main GEMM
shape, ``(n, n) @ (n, batch·D)``, measured in the same run.

    python benchmarks/vector_field.py [--batch 10] [--repeats 20] [--formulation compare]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import numpy as np

import hkjax as hk
from hkjax.synapses import AbstractSynapse

try:
    from _common import PAPER, dot_gflops, initial_states, paper_network, report, timeit
except ImportError:  # imported as benchmarks.vector_field
    from ._common import PAPER, dot_gflops, initial_states, paper_network, report, timeit

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "vector_field": {
        "title": "vector field and relax, paper MNIST size (n={n}, D={dim}, batch {batch}, float32)",
        "columns": [
            ("formulation", "formulation", ""), ("vector_field_ms", "field, 1 sample (ms)", ".3f"),
            ("vector_field_batch_ms", "field, batch {batch} (ms)", ".3f"),
            ("field_gflops", "dense-equivalent GFLOP/s", ".1f"), ("dot_gflops", "jnp.dot GFLOP/s", ".1f"),
            ("relax_batch_ms", "relax, batch {batch} (ms, median)", ".1f"),
            ("solver_steps", "solver steps", "d"),
        ],
    },
}


def autodiff_gradients(net):
    """The same network, but every synapse's gradient by ``jax.grad`` of its energy."""
    synapses = tuple(_AutodiffSynapse(s) for s in net.synapses)
    return eqx.tree_at(lambda m: m.synapses, net, synapses)


class _AutodiffSynapse(AbstractSynapse):
    """Wraps a synapse, keeping its energy but not its closed-form gradient."""

    inner: AbstractSynapse

    @property
    def layers(self):
        return self.inner.layers

    @property
    def rotation_invariant(self):
        return self.inner.rotation_invariant

    def energy(self, *values):
        return self.inner.energy(*values)

    def prepare(self):
        return tuple(_AutodiffSynapse(s) for s in self.inner.prepare())

    def requirements(self):
        return self.inner.requirements()

    def check(self, layers, where):
        self.inner.check(layers, where)


def measure(form: str, batch: int, repeats: int) -> dict:
    base = "edges" if form == "edges-autodiff" else form
    net = paper_network(formulation=base)
    if form == "edges-autodiff":
        net = autodiff_gradients(net)
    states = initial_states(net, batch)
    one = jax.tree_util.tree_map(lambda y: y[0], states)
    prepared = eqx.filter_jit(lambda n: n.prepare())(net)
    field = eqx.filter_jit(lambda n, s: n.vector_field(0.0, s))
    t1, _, _, _ = timeit(field, prepared, one, repeats=repeats)
    bfield = eqx.filter_jit(lambda n, s: jax.vmap(lambda y: n.vector_field(0.0, y))(s))
    tb, _, _, _ = timeit(bfield, prepared, states, repeats=repeats)
    brelax = eqx.filter_jit(lambda n, s: jax.vmap(lambda y: hk.relax(n, y, t1=1.0))(s))
    tr, trmin, first, sol = timeit(brelax, net, states, repeats=max(5, repeats // 4))
    n, d = PAPER["n"], PAPER["dim"]
    flops = n * n * (5 + 6 * d) * batch
    return {
        "formulation": form, "n": n, "dim": d, "batch": batch, "dtype": str(one["x"].dtype),
        "vector_field_ms": 1e3 * t1, "vector_field_batch_ms": 1e3 * tb,
        "field_gflops": flops / tb / 1e9,
        "relax_batch_ms": 1e3 * tr, "relax_batch_min_ms": 1e3 * trmin, "relax_first_call_s": first,
        "solver_steps": int(np.max(np.asarray(sol.stats["num_steps"]))),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--formulation", default="compare",
                    help="dense, tiles, neighbours, edges, bcoo, edges-autodiff, or 'compare' (all of them)")
    ap.add_argument("--json", default=None, help="output path (default benchmarks/results/vector_field-<machine>.json)")
    a = ap.parse_args(argv)
    forms = ["dense", "tiles", "neighbours", "edges", "bcoo", "edges-autodiff"] if a.formulation == "compare" else [a.formulation]
    rows = [measure(f, a.batch, a.repeats) for f in forms]
    n, d = PAPER["n"], PAPER["dim"]
    ref = dot_gflops(n, n, a.batch * d)
    for r in rows:
        r["dot_gflops"] = ref
    report(TABLES["vector_field"], "vector_field", {"rows": rows}, a.json)
    return rows


if __name__ == "__main__":
    main()

"""What one example costs in a training batch: the paper's network's vector field and its
VJP (in the state and every parameter) as ``hk.relax_batch`` evaluates them for the whole
batch, by batch size: which batch sizes use this machine well.

A training step of the paper's Hopfield–Kuramoto network evaluates the field and its VJP
about six times per solver step (Tsit5), so the per-example cost of the VJP sets the step
time per example. On XLA:CPU that cost is not monotone in the batch size: a few batch sizes
get a slower fusion of the per-example parameter cotangents' sum (see the rows), so the
column "per example" is the one to read when choosing ``--batch-size`` on a CPU.

Configuration: n = 896, small-world graphs (k = 150, p = 0.1), D = 5, ReLU, κ_H = 0.1,
κ_K = 1, the given coupling and formulation (default: additive coupling, ``auto``), float32;
random states (uniform 'pixels', random oscillators).

    python benchmarks/training_batch.py [--batches 8,16,24,32,40,64,100] [--coupling additive] [--repeats 7]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp

try:
    from _common import initial_states, paper_network, report, timeit
except ImportError:  # imported as benchmarks.training_batch
    from ._common import initial_states, paper_network, report, timeit

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "training_batch": {
        "title": "relax_batch's vector field and its VJP by batch size (paper network, {coupling} coupling, "
                 "formulation {formulation}, n=896, k=150, D=5, float32)",
        "columns": [
            ("batch", "batch", "d"), ("field_ms", "field (ms)", ".2f"), ("vjp_ms", "VJP (ms)", ".2f"),
            ("field_per_example_ms", "field per example (ms)", ".3f"),
            ("vjp_per_example_ms", "VJP per example (ms)", ".3f"),
        ],
    },
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="8,16,24,32,40,64,100")
    ap.add_argument("--coupling", default="additive", choices=("full", "additive", "multiplicative"))
    ap.add_argument("--formulation", default="auto")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per row (median), after a warm-up")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    net = paper_network(coupling=a.coupling, formulation=a.formulation).prepare()

    @eqx.filter_jit
    def field(net, states):
        return net._batch_vector_field(0.0, states)

    @eqx.filter_jit
    def vjp(net, states):
        out, pull = eqx.filter_vjp(lambda m, s: m._batch_vector_field(0.0, s), net, states)
        return pull(jax.tree_util.tree_map(jnp.ones_like, out))

    rows = []
    for b in (int(x) for x in a.batches.split(",")):
        states = initial_states(net, b)
        f, _, _, _ = timeit(field, net, states, repeats=a.repeats)
        v, _, _, _ = timeit(vjp, net, states, repeats=a.repeats)
        rows.append({"batch": b, "field_ms": 1e3 * f, "vjp_ms": 1e3 * v,
                     "field_per_example_ms": 1e3 * f / b, "vjp_per_example_ms": 1e3 * v / b})
    payload = {"rows": rows, "coupling": a.coupling, "formulation": a.formulation, "repeats": a.repeats}
    report(TABLES["training_batch"], "training_batch", payload, a.json)
    return rows


if __name__ == "__main__":
    main()

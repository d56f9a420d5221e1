"""What a configuration costs inside a batch: the vector field of the paper's network
(additive coupling, as ``sweep.py`` sweeps it) at batch 1, 8 and 64, per configuration,
with and without the Kuramoto term, for the dense and the tiled layouts.

Each timed call is one compiled ``lax.fori_loop`` of ``--fields`` field evaluations of the
whole batch (an Euler-like update keeps them dependent), so that per-call dispatch does not
count: what is left is the arithmetic and memory traffic of one field per configuration. A
batched sweep can at best be "batch 1 / batch 64" times faster than sequential calls (the
solver's own per-step work aside); ``sweep.py`` measures the sweep itself.

    python benchmarks/batch_scaling.py [--batches 1,8,64] [--formulations tiles,dense] [--repeats 10]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax

try:
    from _common import initial_states, paper_network, report, timeit
except ImportError:
    from ._common import initial_states, paper_network, report, timeit

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "batch_scaling": {
        "title": "vector field per configuration inside a batch (paper network, additive coupling, n=896, k=150, "
                 "D=5, float32)",
        "columns": [
            ("formulation", "formulation", ""), ("kuramoto_term", "Kuramoto term", ""), ("batch", "batch", "d"),
            ("field_ms", "field of the batch (ms)", ".3f"), ("per_config_ms", "per configuration (ms)", ".3f"),
            ("per_config_min_ms", "per configuration, min (ms)", ".3f"),
            ("gain_vs_first", "× vs the first batch size", ".1f"),
        ],
    },
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--formulations", default="tiles,dense")
    ap.add_argument("--fields", type=int, default=30, help="field evaluations per timed call")
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per row (median), after a warm-up")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    @eqx.filter_jit
    def fields(net, states):
        def body(_, s):
            ds = jax.vmap(lambda st: net.vector_field(0.0, st))(s)
            return jax.tree_util.tree_map(lambda v, dv: v + 1e-3 * dv, s, ds)

        return jax.lax.fori_loop(0, a.fields, body, states)

    rows = []
    for form in a.formulations.split(","):
        for kuramoto in (True, False):
            net = paper_network(coupling="additive", formulation=form, kuramoto_term=kuramoto)
            single = None
            for b in (int(x) for x in a.batches.split(",")):
                med, mn, _, _ = timeit(fields, net, initial_states(net, b), repeats=a.repeats)
                per = 1e3 * med / a.fields / b
                single = per if single is None else single
                rows.append({"formulation": form, "kuramoto_term": kuramoto, "batch": b,
                             "field_ms": 1e3 * med / a.fields, "per_config_ms": per,
                             "per_config_min_ms": 1e3 * mn / a.fields / b, "gain_vs_first": single / per})
    payload = {"rows": rows, "fields": a.fields, "repeats": a.repeats}
    report(TABLES["batch_scaling"], "batch_scaling", payload, a.json)
    return rows


if __name__ == "__main__":
    main()

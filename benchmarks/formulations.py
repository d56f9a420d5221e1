"""Which formulation of the edge sums wins where: relax and a gradient step of a
Hopfield–Kuramoto network over graph sizes and degrees, in every formulation.

Network: ``n`` units, small-world graphs of degree ``k`` (p = 0.1) for both the Kuramoto
and the coupling terms, D = 5, ReLU Lagrangian and interaction, κ_H = 0.1, κ_K = 1, full
coupling, Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1, float32, batch 10 (``vmap``).
Columns: one ``relax`` of the batch (``vmap``), value + gradient of a squared loss on the
last 11 units through it (every parameter, recursive-checkpoint adjoint), and the same
through one shared-step solve of the whole batch (``hk.relax_batch``, what ``hk.fit`` and
``hkjax train --shared-steps`` differentiate): the work of one training step without the
optimizer update. The last column is what ``formulation="auto"`` picks for the graph terms
(Kuramoto graph / coupling graph).

    python benchmarks/formulations.py [--sizes 175:16,896:150,2048:16] [--repeats 3]
        [--no-kuramoto-term] [--no-shared]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hkjax as hk

try:
    from _common import initial_states, paper_network, report, timeit
except ImportError:  # imported as benchmarks.formulations
    from ._common import initial_states, paper_network, report, timeit

SIZES = "175:16,275:16,896:16,896:150,2048:16,2048:150"
#: Dense layouts past this many units take minutes per configuration here; skipped.
DENSE_MAX_N = 2048

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it
#: (results without a ``kuramoto_term`` entry were measured with the Kuramoto term).
TABLES = {
    "formulations": {
        "title": "formulations: relax and value+grad, batch {batch}, D={dim}, {terms}, float32",
        "columns": [
            ("n", "n", "d"), ("k", "k", "d"), ("density", "density", ".3f"), ("formulation", "formulation", ""),
            ("relax_ms", "relax (ms)", ".1f"), ("relax_ms_vs_best", "× best", ".2f"),
            ("grad_ms", "value+grad (ms)", ".1f"), ("grad_ms_vs_best", "× best", ".2f"),
            ("shared_grad_ms", "shared steps: value+grad (ms)", ".1f"), ("shared_grad_ms_vs_best", "× best", ".2f"),
            ("solver_steps", "solver steps", "d"), ("auto", "auto picks", ""),
        ],
        "defaults": {"kuramoto_term": True},
        "labels": {"terms": ("kuramoto_term", {True: "Kuramoto term + coupling", False: "coupling only"})},
    },
}


def _loss(net, states):
    def one(s):
        return jnp.sum((hk.relax(net, s, t1=1.0, max_steps=64, throw=False).state["x"][-11:] - 1.0) ** 2)

    return jnp.mean(jax.vmap(one)(states))


def _shared_loss(net, states):
    sol = hk.relax_batch(net, states, t1=1.0, max_steps=64, throw=False)
    return jnp.mean(jnp.sum((sol.state["x"][:, -11:] - 1.0) ** 2, axis=1))


def _layouts(net) -> str:
    """The formulations of the network's graph terms (e.g. what ``"auto"`` chose)."""
    pairs = [p for p in jax.tree_util.tree_leaves(net, is_leaf=lambda x: isinstance(x, hk.synapses.Pairs))
             if isinstance(p, hk.synapses.Pairs)]
    return "/".join(p.formulation for p in pairs)


def measure(n: int, k: int, form: str, batch: int, repeats: int, *, kuramoto_term: bool = True,
            shared: bool = True) -> dict:
    net = paper_network(formulation=form, n=n, k=k, kuramoto_term=kuramoto_term)
    states = initial_states(net, batch)
    relax = eqx.filter_jit(lambda m, s: jax.vmap(lambda y: hk.relax(m, y, t1=1.0))(s))
    r_med, _, r_first, sol = timeit(relax, net, states, repeats=repeats)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    # Non-trained arrays (graph indices, masks) are arguments, as in hk.fit.
    grad = eqx.filter_jit(lambda p, st, s: eqx.filter_value_and_grad(
        lambda q: _loss(eqx.combine(q, st), s))(p))
    g_med, _, g_first, _ = timeit(grad, params, static, states, repeats=repeats)
    s_med = s_first = float("nan")
    if shared:
        sgrad = eqx.filter_jit(lambda p, st, s: eqx.filter_value_and_grad(
            lambda q: _shared_loss(eqx.combine(q, st), s))(p))
        s_med, _, s_first, _ = timeit(sgrad, params, static, states, repeats=repeats)
    return {
        "n": n, "k": k, "density": 2 * net.synapses[1].pairs.num_edges / (n * (n - 1)),
        "formulation": form, "batch": batch, "dtype": "float32",
        "kuramoto_term": kuramoto_term,
        "relax_ms": 1e3 * r_med, "grad_ms": 1e3 * g_med, "shared_grad_ms": 1e3 * s_med,
        "relax_first_s": r_first, "grad_first_s": g_first, "shared_grad_first_s": s_first,
        "solver_steps": int(np.max(np.asarray(sol.stats["num_steps"]))),
        "auto": _layouts(paper_network(formulation="auto", n=n, k=k, kuramoto_term=kuramoto_term)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=SIZES, help="comma-separated n:k pairs")
    ap.add_argument("--formulations", default="dense,tiles,edges,bcoo,neighbours")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-kuramoto-term", dest="kuramoto_term", action="store_false",
                    help="coupling graph only (the hkjax command's default Hopfield–Kuramoto model)")
    ap.add_argument("--no-shared", dest="shared", action="store_false",
                    help="skip the value+grad through one shared-step solve of the batch")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    rows = []
    for size in a.sizes.split(","):
        n, k = (int(v) for v in size.split(":"))
        for form in a.formulations.split(","):
            if form == "dense" and n > DENSE_MAX_N:
                continue
            rows.append(measure(n, k, form, a.batch, a.repeats, kuramoto_term=a.kuramoto_term, shared=a.shared))
            print(f"# n={n} k={k} {form}: relax {rows[-1]['relax_ms']:.1f} ms, value+grad "
                  f"{rows[-1]['grad_ms']:.1f} ms, shared {rows[-1]['shared_grad_ms']:.1f} ms", flush=True)
    # The fastest formulation per size, for each column.
    for key in ("relax_ms", "grad_ms", "shared_grad_ms"):
        for size in {(r["n"], r["k"]) for r in rows}:
            group = [r for r in rows if (r["n"], r["k"]) == size]
            best = min(group, key=lambda r: r[key])
            for r in group:
                r[key + "_vs_best"] = r[key] / best[key]
    report(TABLES["formulations"], "formulations", {"rows": rows}, a.json)
    return rows


if __name__ == "__main__":
    main()

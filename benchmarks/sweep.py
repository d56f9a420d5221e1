"""A batched sweep versus sequential calls: relax the paper's MNIST-size Hopfield–Kuramoto
network (additive coupling) for 64 configurations (8 coupling strengths in [0, 0.01] × 8
seeds) and
report the final energy and order parameter.

``hk.sweep.run`` evaluates all 64 as one vmapped, device-sharded computation; the baseline
calls the same jit-compiled single-configuration function 64 times. Compile time is
reported separately and excluded from the medians.

Target: the batched sweep ≥ 5× faster than 64 sequential calls.

Rows: the whole grid as one vmapped computation, and the same grid in chunks
(``hk.sweep.run(..., chunk_size=c)``: one compiled call per chunk of ``c`` configurations).

    python benchmarks/sweep.py [--configs 64] [--chunks 8] [--n 896] [--k 150] [--repeats 5] [--formulation tiles]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hkjax as hk

try:
    from _common import paper_network, report
except ImportError:
    from ._common import paper_network, report

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "sweep": {
        "title": "sweep of {configs} configurations (n={n}, k={k}, D=5, float32, formulation {formulation})",
        "columns": [
            ("configs", "configurations", "d"), ("chunk", "chunk", ""), ("batched_s", "hk.sweep.run (s)", ".3f"),
            ("sequential_s", "sequential calls (s)", ".3f"), ("speedup", "speed-up", ".1f"),
            ("batched_first_call_s", "sweep first call (s)", ".2f"),
            ("max_rel_diff", "max diff / energy range", ".1e"),
        ],
    },
}


def make_evaluate(n: int, k: int = 150, formulation: str = "auto"):
    """The template network (passed as ``args``) and ``evaluate(template, coupling, seed)``."""
    template = paper_network(coupling="additive", n=n, k=min(k, n - 2 - (n % 2)), formulation=formulation)

    def evaluate(template, coupling, seed):
        net = eqx.tree_at(lambda m: m.synapses[-1].weights, template, jnp.asarray(coupling, jnp.float32))
        kx, ks = jax.random.split(jax.random.fold_in(jax.random.key(0), seed))
        state = net.init_state({"x": jax.random.uniform(kx, (n,)), "sigma": jax.random.normal(ks, (n, 5))})
        sol = hk.relax(net, state, t1=1.0, throw=False)
        return {"energy": sol.energy[-1], "order": jnp.linalg.norm(jnp.mean(sol.state["sigma"], axis=0)),
                "steps": sol.stats["num_steps"]}

    return template, evaluate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int, default=64, help="a perfect square: couplings × seeds")
    ap.add_argument("--n", type=int, default=896)
    ap.add_argument("--k", type=int, default=150, help="degree of the small-world graphs")
    ap.add_argument("--formulation", default="auto", help="of the graph terms (e.g. tiles)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per row (medians), after a warm-up")
    ap.add_argument("--chunks", default="8", help="chunk sizes for extra rows ('' for none)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    side = int(round(a.configs**0.5))
    # Additive couplings above ~0.015 make the ReLU energy unbounded below at this size: the
    # solve runs away and hits max_steps, and a vmapped batch then runs in lockstep with its
    # slowest member. The grid stays in the bounded regime.
    params = hk.sweep.grid(coupling=np.linspace(0.0, 0.01, side), seed=np.arange(side))
    template, evaluate = make_evaluate(a.n, a.k, a.formulation)

    single = eqx.filter_jit(evaluate)
    t = time.perf_counter()
    jax.block_until_ready(single(template, params["coupling"][0], params["seed"][0]))
    seq_first = time.perf_counter() - t
    sequential = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        outs = [single(template, c, s) for c, s in zip(params["coupling"], params["seed"])]
        jax.block_until_ready(outs)
        sequential.append(time.perf_counter() - t)
    ref = np.asarray([float(o["energy"]) for o in outs])

    rows = []
    chunks = [None] + [int(c) for c in a.chunks.split(",") if c.strip()]
    for chunk in chunks:
        t = time.perf_counter()
        swept = hk.sweep.run(evaluate, params, args=template, chunk_size=chunk)
        batched_first = time.perf_counter() - t
        batched = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            hk.sweep.run(evaluate, params, args=template, chunk_size=chunk)
            batched.append(time.perf_counter() - t)
        # Relative to the spread of the energies (some final energies are close to zero).
        agree = float(np.max(np.abs(ref - swept["energy"])) / (np.ptp(ref) + 1e-12))
        rows.append({
            "configs": len(params["seed"]), "n": a.n, "k": a.k, "formulation": a.formulation,
            "devices": len(jax.devices()),
            "chunk": "all" if chunk is None else str(chunk),
            "batched_s": float(np.median(batched)), "sequential_s": float(np.median(sequential)),
            "speedup": float(np.median(sequential) / np.median(batched)),
            "batched_first_call_s": batched_first, "sequential_first_call_s": seq_first,
            "max_rel_diff": agree,
        })
    report(TABLES["sweep"], "sweep", {"rows": rows}, a.json)
    return rows


if __name__ == "__main__":
    main()

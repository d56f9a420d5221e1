"""Time one vector-field evaluation and one batched ``relax`` of the paper's MNIST-size
Hopfield–Kuramoto network.

Configuration (issue #2): n = 896 (785 + 100 + 11), small-world graphs (k = 150,
p = 0.1) for both the Kuramoto and the coupling terms, D = 5, ReLU Lagrangian and
interaction, κ_H = 0.1, κ_K = 1, full coupling, Tsit5 + PID (rtol 1e-3, atol 1e-6),
t1 = 1, float32. Prints a table and writes JSON.

    python benchmarks/vector_field.py [--batch 10] [--repeats 20] [--formulation auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hkjax as hk


def paper_network(*, formulation: str = "auto", coupling: str = "full", n: int = 896, k: int = 150, dim: int = 5, seed: int = 0):
    """The paper's MNIST-size Hopfield–Kuramoto network with its initialisation scale."""
    keys = jax.random.split(jax.random.key(seed), 3)
    ek = hk.graphs.small_world(n, k, 0.1, key=keys[0])
    ehk = hk.graphs.small_world(n, k, 0.1, key=keys[1])
    return hk.hopfield_kuramoto(
        n, dim, edges_k=ek, edges_hk=ehk, coupling=coupling,
        lagrangian=hk.lagrangians.ReLU(), interaction=hk.interactions.ReLU(),
        kappa_h=0.1, kappa_k=1.0, formulation=formulation, key=keys[2],
    )


def initial_states(net, batch: int, *, seed: int = 1):
    kx, ks = jax.random.split(jax.random.key(seed))
    x = jax.random.uniform(kx, (batch, net.threshold.n))
    sig = jax.random.normal(ks, (batch, net.oscillators.n, net.oscillators.dim))
    return jax.vmap(net.init_state)(x, sig)


def _time(fn, *args, repeats: int):
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--formulation", default="compare", help="auto, neighbours, dense, edges, or 'compare' (all three)")
    ap.add_argument("--json", default=None, help="output JSON path (default benchmarks/results/vector_field-<device>.json)")
    a = ap.parse_args(argv)
    forms = ["neighbours", "dense", "edges"] if a.formulation == "compare" else [a.formulation]
    device = jax.devices()[0]
    rows = []
    for form in forms:
        net = paper_network(formulation=form)
        states = initial_states(net, a.batch)
        one = jax.tree_util.tree_map(lambda y: y[0], states)
        # relax() prepares the network once per solve (parameter layout), then evaluates the
        # prepared field at every stage: time that evaluation.
        prepared = eqx.filter_jit(lambda n: n.prepare())(net)
        field = eqx.filter_jit(lambda n, s: n.vector_field(0.0, s))
        t_field, _ = _time(field, prepared, one, repeats=a.repeats)
        bfield = eqx.filter_jit(lambda n, s: jax.vmap(lambda y: n.vector_field(0.0, y))(s))
        t_bfield, _ = _time(bfield, prepared, states, repeats=a.repeats)
        brelax = eqx.filter_jit(lambda n, s: jax.vmap(lambda y: hk.relax(n, y, t1=1.0))(s))
        t_relax, sol = _time(brelax, net, states, repeats=max(3, a.repeats // 4))
        steps = int(np.max(np.asarray(sol.stats["num_steps"])))
        rows.append({
            "formulation": form, "n": net.threshold.n, "dim": net.oscillators.dim, "batch": a.batch,
            "dtype": str(one.x.dtype), "device": device.device_kind,
            "vector_field_ms": 1e3 * t_field, "vector_field_batch_ms": 1e3 * t_bfield,
            "relax_batch_ms": 1e3 * t_relax, "solver_steps": steps,
        })
    print(f"# command: python {' '.join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])])}")
    print(f"# device: {device.platform} {device.device_kind}, jax {jax.__version__}, {platform.processor() or platform.machine()}")
    hdr = f"| formulation | field, 1 sample (ms) | field, batch {a.batch} (ms) | relax, batch {a.batch} (ms) | solver steps |"
    print(hdr)
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['formulation']} | {r['vector_field_ms']:.3f} | {r['vector_field_batch_ms']:.3f} | {r['relax_batch_ms']:.1f} | {r['solver_steps']} |")
    out = Path(a.json) if a.json else Path(__file__).parent / "results" / f"vector_field-{device.platform}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2))
    print(f"# wrote {out}")
    return rows


if __name__ == "__main__":
    main()

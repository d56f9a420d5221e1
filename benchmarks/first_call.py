"""Where the first call of a training step goes, and what JAX's persistent compilation
cache takes off it.

The training step (value and gradient of the squared class-unit loss through one
``hk.relax_batch`` solve with shared steps, ``max_steps = 16``, plus a Lion update) of the
paper's MNIST-size Hopfield–Kuramoto network, batch 10, is staged by hand with
``jax.jit(...).trace / .lower / .compile`` and timed stage by stage: Python tracing (JAX,
Equinox, Diffrax building the program), lowering to StableHLO, XLA compilation, the first
execution and a second one. Each repeat runs in a fresh process; the first process of the
cached rows finds an empty cache directory, the later ones find the entry it wrote
(``hk.enable_compile_cache``, what the ``hkjax`` command uses).

A program with a host callback is never written to the cache; the table's last column
says whether the step has one (a traced ``dt0`` would put Diffrax's run-time sign check, an
``eqx.error_if`` callback, into every solve).

Target (2-core CPU): first call of the training step ≤ 5 s.

    python benchmarks/first_call.py [--repeats 3] [--formulation tiles]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    from _common import report
except ImportError:
    from ._common import report

STAGES = ("trace_s", "lower_s", "compile_s", "first_exec_s", "second_exec_s")

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "first_call": {
        "title": "first call of the training step (paper MNIST size, batch 10, shared steps, formulation "
                 "{formulation}), medians over processes",
        "columns": [
            ("cache", "compilation cache", ""), ("processes", "processes", "d"), ("trace_s", "trace (s)", ".2f"),
            ("lower_s", "lower (s)", ".2f"), ("compile_s", "compile (s)", ".2f"),
            ("first_exec_s", "first run (s)", ".2f"), ("first_call_s", "first call (s)", ".2f"),
            ("second_exec_s", "second run (s)", ".2f"), ("host_callback", "host callback", ""),
        ],
    },
}


def child(cache: str, formulation: str = "auto") -> dict:
    import time

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    import hkjax as hk

    try:
        from _common import initial_states, paper_network
    except ImportError:
        from ._common import initial_states, paper_network

    if cache:
        hk.enable_compile_cache(cache)
    net = paper_network(formulation=formulation)
    states = initial_states(net, 10)
    targets = 2.0 * jax.nn.one_hot(jnp.arange(10) % 10, 11) - 1.0
    opt = optax.lion(optax.exponential_decay(1e-3, transition_steps=100, decay_rate=0.9))
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt_state = opt.init(params)

    def step(params, static, opt_state, states, targets):
        def loss(p):
            sol = hk.relax_batch(eqx.combine(p, static), states, t1=1.0, max_steps=16, throw=False)
            return jnp.mean(jnp.sum((sol.state["x"][:, -11:] - targets) ** 2, axis=1))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    dyn, st = eqx.partition((params, static, opt_state, states, targets), eqx.is_array)
    jitted = jax.jit(lambda d: step(*eqx.combine(d, st)))
    t = [time.perf_counter()]
    traced = jitted.trace(dyn)
    t.append(time.perf_counter())
    lowered = traced.lower()
    t.append(time.perf_counter())
    compiled = lowered.compile()
    t.append(time.perf_counter())
    for _ in range(2):
        jax.block_until_ready(compiled(dyn))
        t.append(time.perf_counter())
    callbacks = "callback" in lowered.as_text()
    return {**{s: t[i + 1] - t[i] for i, s in enumerate(STAGES)}, "host_callback": callbacks}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="processes per row")
    ap.add_argument("--formulation", default="auto", help="of the graph terms (e.g. tiles: the fast path)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child is not None:
        print(json.dumps(child(a.child, a.formulation)))
        return

    def run(cache: str) -> dict:
        env = {**os.environ, "HKJAX_COMPILE_CACHE": "0"}
        cmd = [sys.executable, __file__, "--child", cache, "--formulation", a.formulation]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    rows = []
    with tempfile.TemporaryDirectory() as cache:
        runs = {"no cache": [run("") for _ in range(a.repeats)]}
        cold = run(cache)  # writes the entry
        runs["cache, empty (writes it)"] = [cold]
        runs["cache, warm"] = [run(cache) for _ in range(a.repeats)]
    for name, rs in runs.items():
        row = {"cache": name, "processes": len(rs), "host_callback": any(r["host_callback"] for r in rs)}
        for s in STAGES:
            row[s] = float(np.median([r[s] for r in rs]))
        row["first_call_s"] = float(np.median([sum(r[s] for s in STAGES[:4]) for r in rs]))
        rows.append(row)
    payload = {"rows": rows, "repeats": a.repeats, "formulation": a.formulation}
    report(TABLES["first_call"], "first_call", payload, a.json)


if __name__ == "__main__":
    main()

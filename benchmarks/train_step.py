"""One training step of the paper's MNIST-size Hopfield–Kuramoto classifier: value and
gradient of a batch loss through ``relax`` plus an Optax (Lion, exponential decay) update.

Configuration: n = 896, small-world k = 150, D = 5, full coupling, ReLU Lagrangian and
interaction, κ_H = 0.1, κ_K = 1, Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1, batch 10,
float32; every parameter trained; loss = squared error of the final class units against
``2·onehot − 1``.

The implicit adjoint is only valid without oscillators (``relax`` refuses it otherwise), so
its rows use the Hopfield classifier of the same size (n = 896, ReLU, κ = 0.1).

Each configuration runs in a fresh subprocess so that its memory is its own: we report the
first-call time (compile + one step), the median of ``--repeats`` steps, the peak resident
memory of the whole process, and the peak during the timed steps alone (the kernel's
high-water mark reset after warm-up via ``/proc/self/clear_refs``).

Targets (2-core CPU): step ≤ 0.8 s (research code ~17 s), peak ≤ 600 MB
(research code ~1.5 GB), first call ≤ 5 s; with the implicit adjoint the peak must not grow
with the number of solver steps (two step counts shown).

    python benchmarks/train_step.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONFIGS = [
    {"name": "HK, recursive, max_steps=16", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0},
    {"name": "HK, recursive, max_steps=64", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 64, "t1": 1.0},
    # Micro-batches: the examples of the batch go through value-and-grad a few at a time
    # (jax.lax.map with batch_size), so the batched n x n intermediates of the backward pass
    # are micro-batch-sized; the gradient is the same mean.
    {"name": "HK, recursive, max_steps=16, micro-batch 2", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0, "microbatch": 2},
    {"name": "HK, recursive, max_steps=16, micro-batch 5", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0, "microbatch": 5},
    # One solve of the whole batch with shared adaptive steps (hk.relax_batch; hk.fit's
    # shared_steps=True): parameter cotangents summed over the batch inside the adjoint.
    {"name": "HK, recursive, max_steps=16, shared steps", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0, "shared": True},
    # The Kuramoto term in dense tiles plus an edge list for the rest (formulation="tiles"):
    # the small-world graph's band of tiles instead of the whole (n, n) matrix.
    {"name": "HK, recursive, max_steps=16, tiles", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0, "formulation": "tiles"},
    {"name": "HK, recursive, max_steps=16, shared steps, tiles", "model": "hopfield_kuramoto", "adjoint": "recursive", "max_steps": 16, "t1": 1.0, "shared": True, "formulation": "tiles"},
    # The implicit adjoint is refused with oscillators (non-isolated rest points), so its
    # rows use the Hopfield classifier of the same size: two horizons, two step counts.
    {"name": "Hopfield, recursive, t1=2", "model": "hopfield", "adjoint": "recursive", "max_steps": 64, "t1": 2.0},
    {"name": "Hopfield, implicit, t1=2", "model": "hopfield", "adjoint": "implicit", "max_steps": 64, "t1": 2.0},
    {"name": "Hopfield, implicit, t1=8", "model": "hopfield", "adjoint": "implicit", "max_steps": 256, "t1": 8.0},
]

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "train_step": {
        "title": "training step, paper MNIST size, batch {batch}, float32, Lion",
        "columns": [
            ("name", "gradient path", ""), ("step_s", "step (s, median)", ".3f"),
            ("first_call_s", "first call incl. compile (s)", ".2f"), ("peak_mb", "peak RSS (MB)", ".0f"),
            ("rss_after_warmup_mb", "RSS after warm-up + trim (MB)", ".0f"),
            ("steady_peak_mb", "peak RSS during steps (MB)", ".0f"), ("solver_steps", "solver steps", "d"),
        ],
    },
}


def child(cfg: dict, repeats: int, batch: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import hkjax as hk

    try:
        from _common import initial_states, paper_network, status_mb
    except ImportError:
        from ._common import initial_states, paper_network, status_mb

    net = paper_network(formulation=cfg.get("formulation", "auto"))
    states = initial_states(net, batch)
    if cfg["model"] == "hopfield":
        net = hk.hopfield(net.layers["x"].size, lagrangian=hk.lagrangians.ReLU(), kappa=0.1,
                          init_scale=1e-2, key=jax.random.key(2))
        states = {"x": states["x"]}
    labels = jnp.arange(batch) % 10
    targets = 2.0 * jax.nn.one_hot(labels, 11) - 1.0
    steady = cfg["adjoint"] == "implicit"

    def loss_fn(model, states, targets):
        def one(s, y):
            sol = hk.relax(model, s, t1=cfg["t1"], max_steps=cfg["max_steps"], adjoint=cfg["adjoint"],
                           steady_state=steady, throw=False)
            return jnp.sum((sol.state["x"][-11:] - y) ** 2), sol.stats["num_steps"]

        if cfg.get("shared"):
            sol = hk.relax_batch(model, states, t1=cfg["t1"], max_steps=cfg["max_steps"], adjoint=cfg["adjoint"],
                                 steady_state=steady, throw=False)
            return jnp.mean(jnp.sum((sol.state["x"][:, -11:] - targets) ** 2, axis=1)), sol.stats["num_steps"][0]
        if cfg.get("microbatch"):
            losses, steps = jax.lax.map(lambda a: one(*a), (states, targets), batch_size=cfg["microbatch"])
        else:
            losses, steps = jax.vmap(one)(states, targets)
        return jnp.mean(losses), jnp.max(steps)

    schedule = optax.exponential_decay(1e-3, transition_steps=100, decay_rate=0.9)
    opt = optax.lion(schedule)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt_state = opt.init(params)

    # The non-trained arrays (graph indices, masks) are arguments, as in hk.fit: closed over,
    # they would be compile-time constants that XLA constant-folds (seconds of compile time).
    @eqx.filter_jit
    def step(params, static, opt_state, states, targets):
        def f(p):
            return loss_fn(eqx.combine(p, static), states, targets)

        (loss, steps), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, steps

    def run(carry):
        p, o = carry
        p, o, loss, steps = step(p, static, o, states, targets)
        return (p, o), loss, steps

    import time

    t0 = time.perf_counter()
    carry, loss, steps = run((params, opt_state))
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0
    # Hand the compiler's freed heap back to the kernel first (glibc keeps freed memory
    # resident otherwise), so that the steady-state column measures what the steps hold.
    trimmed = False
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = True
    except (OSError, AttributeError):
        pass
    after_compile = status_mb("VmRSS")
    # This process's own high-water mark so far (import, compilation, first step). Not
    # getrusage's ru_maxrss: Linux carries that over from the parent across fork/exec.
    peak_warmup = status_mb("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        carry, loss, steps = run(carry)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - t)
    return {
        **cfg, "batch": batch, "first_call_s": first, "step_s": float(np.median(times)),
        "step_min_s": float(np.min(times)), "peak_mb": max(peak_warmup, status_mb("VmHWM")),
        "steady_peak_mb": status_mb("VmHWM") if reset else float("nan"), "rss_after_warmup_mb": after_compile,
        "malloc_trim": trimmed, "solver_steps": int(steps),
        "loss": float(loss),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--configs", default=None, help="comma-separated indices into CONFIGS (default all)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.child is not None:
        print("RESULT " + json.dumps(child(json.loads(a.child), a.repeats, a.batch)))
        return None
    try:
        from _common import report
    except ImportError:
        from ._common import report
    idx = range(len(CONFIGS)) if a.configs is None else [int(i) for i in a.configs.split(",")]
    rows = []
    here = os.path.dirname(os.path.abspath(__file__))
    for i in idx:
        cmd = [sys.executable, os.path.join(here, "train_step.py"), "--child", json.dumps(CONFIGS[i]),
               "--repeats", str(a.repeats), "--batch", str(a.batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=here)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not line:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"configuration {CONFIGS[i]['name']!r} failed")
        rows.append(json.loads(line[0][7:]))
    report(TABLES["train_step"], "train_step", {"rows": rows}, a.json)
    return rows


if __name__ == "__main__":
    main()

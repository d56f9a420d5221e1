"""The training step of the README's digits classifiers, per-example solves against one solve
of the whole batch (shared steps), in-process A/B.

``hk.fit`` differentiates a batch either as ``vmap`` of per-example solves or as one solve of
the whole batch (``hk.relax_batch``, ``shared_steps=True``). Under ``vmap`` the adjoint's
loop carries one cotangent of every parameter per example (a ``(batch, n, n)`` array for the
Hopfield weights, updated at every stage of every step) and sums them at the end; the shared
solve sums over the batch inside every stage. With constant steps (``--solver-steps``) the two
take the same steps and compute the same loss and gradient up to float round-off (the
``‖Δ grad‖ / ‖grad‖`` column), so ``hk.fit`` uses the shared solve there by default.

Both variants of a configuration are compiled first, then their steps run alternately
(round-robin), so that the machine's drift hits them alike; every step starts from the same
parameters and batch. The step is ``hkjax.train._train_step``, the function ``hk.fit``
compiles (value and gradient of the batch loss through the solves plus the optimizer update).

Configurations (the README's digits runs; 64 pixels, 10 classes):

* ``hopfield-400``: Hopfield classifier, 400 hidden, batch 64, 4 constant Tsit5 steps, Adam
  (the best classification row);
* ``hk-400``: Hopfield–Kuramoto network of the same size (D = 5, full coupling on a degree-16
  small-world graph), batch 64, 4 constant steps (the rows started ``--from`` that classifier);
* ``hk-default``: the default Hopfield–Kuramoto run, 100 hidden, batch 32, adaptive steps
  (Tsit5 + PID, rtol 1e-3): here the two variants take different steps.

    python benchmarks/digits_step.py [--rounds 20] [--configs hopfield-400,hk-400,hk-default]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

try:
    from _common import alternate, report
except ImportError:
    from ._common import alternate, report

CONFIGS = {
    "hopfield-400": dict(model="hopfield", n_hidden=400, batch_size=64, solver_steps=4),
    "hk-400": dict(model="hopfield_kuramoto", n_hidden=400, batch_size=64, solver_steps=4),
    "hk-default": dict(model="hopfield_kuramoto", n_hidden=100, batch_size=32, solver_steps=0),
}

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "digits_step": {
        "title": "training step of the digits classifiers, per-example vs shared solves, in-process A/B",
        "columns": [
            ("config", "config", ""), ("model", "model", ""), ("hidden", "hidden", "d"), ("batch", "batch", "d"),
            ("steps", "solver steps", ""), ("variant", "batch solved as", ""),
            ("step_ms", "step (ms, median)", ".1f"), ("step_min_ms", "step (ms, min)", ".1f"),
            ("first_call_s", "first call (s)", ".2f"), ("loss", "loss", ".5f"),
            ("grad_rel_diff", "‖Δ grad‖ / ‖grad‖ between the variants", ".1e"),
        ],
    },
}


def setup(name: str):
    from hkjax import runs, train
    from hkjax.config import Config

    cfg = Config(task="classify").replace(lr=0.01, **CONFIGS[name])
    ds, _ = runs.load_data(cfg)
    task = runs.build_task(cfg, ds)
    net = runs.build_network(cfg, task, jax.random.key(cfg.seed))
    arrays = {k: jnp.asarray(v) for k, v in runs.arrays(ds).items()}
    opt = runs.optimizer(cfg, 1000, cfg.optimization.lr)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt_state = opt.init(params)
    batch = train._sample(task, arrays, jax.random.key(1), cfg.training.batch_size)
    key = jax.random.key(2)

    def step(shared: bool):
        return train._train_step(params, static, opt_state, batch, key, task, opt, None, shared)

    def grad(shared: bool):
        keys = jax.random.split(key, cfg.training.batch_size)

        def loss(p):
            return jnp.mean(train._batched(task, eqx.combine(p, static), batch, keys, None, shared)[0])

        g = eqx.filter_jit(jax.grad(loss))(params)
        return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)])

    return cfg, step, grad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20, help="timed steps per variant (alternating)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names: " + ", ".join(CONFIGS))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    rows = []
    for name in (c.strip() for c in a.configs.split(",")):
        if name not in CONFIGS:
            ap.error(f"--configs: unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
        cfg, step, grad = setup(name)
        first, out, times = alternate({shared: lambda shared=shared: step(shared) for shared in (False, True)},
                                      a.rounds)
        # the gradients of the two variants (the same maths with constant steps)
        g0, g1 = grad(False), grad(True)
        rel = float(np.linalg.norm(g1 - g0) / np.linalg.norm(g0))
        for shared in (False, True):
            rows.append({
                "config": name, "model": cfg.network.model, "hidden": cfg.network.n_hidden, "batch": cfg.training.batch_size,
                "steps": f"{cfg.solver.solver_steps} constant" if cfg.solver.solver_steps else "adaptive",
                "variant": "shared steps (relax_batch)" if shared else "per-example (vmap)",
                "step_ms": 1e3 * float(np.median(times[shared])), "step_min_ms": 1e3 * float(np.min(times[shared])),
                "first_call_s": first[shared], "loss": float(out[shared][2]),
                "grad_rel_diff": rel,
            })
        print(f"# {name}: per-example {rows[-2]['step_ms']:.1f} ms, shared {rows[-1]['step_ms']:.1f} ms", flush=True)
    payload = {"rows": rows, "rounds": a.rounds}
    report(TABLES["digits_step"], "digits_step", payload, a.json)


if __name__ == "__main__":
    main()

"""Does the number of checkpoints of the recursive-checkpoint adjoint matter for a training
step of the paper's network? An in-process A/B: every variant is compiled first, then the
variants' steps run alternately (round-robin), so that the machine's drift (±30 % within an
hour on the 2-core CPU) hits them alike; we report median and minimum per variant.

Configuration: the paper's MNIST-size Hopfield–Kuramoto network (``_common.paper_network``),
batch 10, value and gradient of the squared class-unit loss through ``relax`` plus a Lion
update, ``max_steps = 16``; one solve of the batch with shared steps (``hk.relax_batch``) or
per-example solves (``jax.vmap(hk.relax)``). Every step starts from the same parameters
(unlike ``train_step.py``, whose parameters move, so its solver-step counts drift up to 7).

Diffrax's default for ``max_steps = 16`` is 5 checkpoints (``O(sqrt(max_steps))``); with
fewer checkpoints than solver steps the backward pass recomputes forward steps.

    python benchmarks/adjoint_checkpoints.py [--rounds 12] [--checkpoints default,16,2] [--per-example]
"""

from __future__ import annotations

import argparse

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import hkjax as hk

try:
    from _common import alternate, initial_states, paper_network, report
except ImportError:
    from ._common import alternate, initial_states, paper_network, report

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it
#: (results without a ``batch`` entry were measured at the default batch of 10).
TABLES = {
    "adjoint_checkpoints": {
        "title": "training step by adjoint checkpoints, paper MNIST size, batch {batch}, {kind}, in-process A/B",
        "columns": [
            ("checkpoints", "checkpoints", ""), ("step_s", "step (s, median)", ".3f"),
            ("step_min_s", "step (s, min)", ".3f"), ("first_call_s", "first call (s)", ".2f"),
            ("solver_steps", "solver steps", "d"), ("loss", "loss", ".4f"),
        ],
        "defaults": {"batch": 10},
        "labels": {"kind": ("shared", {True: "shared steps", False: "per-example solves"})},
    },
}


def make_step(adjoint, shared: bool, opt):
    @eqx.filter_jit
    def step(params, static, opt_state, states, targets):
        def loss(p):
            model = eqx.combine(p, static)
            if shared:
                sol = hk.relax_batch(model, states, t1=1.0, max_steps=16, adjoint=adjoint, throw=False)
                return jnp.mean(jnp.sum((sol.state["x"][:, -11:] - targets) ** 2, axis=1)), sol.stats["num_steps"][0]

            def one(s, y):
                sol = hk.relax(model, s, t1=1.0, max_steps=16, adjoint=adjoint, throw=False)
                return jnp.sum((sol.state["x"][-11:] - y) ** 2), sol.stats["num_steps"]

            losses, steps = jax.vmap(one)(states, targets)
            return jnp.mean(losses), jnp.max(steps)

        (value, steps), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, steps

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12, help="timed steps per variant (alternating)")
    ap.add_argument("--checkpoints", default="default,16,2",
                    help="comma-separated checkpoint counts; 'default' is Diffrax's choice")
    ap.add_argument("--per-example", action="store_true", help="vmap of per-example solves instead of shared steps")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    net = paper_network()
    states = initial_states(net, a.batch)
    targets = 2.0 * jax.nn.one_hot(jnp.arange(a.batch) % 10, 11) - 1.0
    opt = optax.lion(optax.exponential_decay(1e-3, transition_steps=100, decay_rate=0.9))
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt_state = opt.init(params)
    args = (params, static, opt_state, states, targets)

    variants = {}
    for c in a.checkpoints.split(","):
        c = c.strip()
        adjoint = diffrax.RecursiveCheckpointAdjoint(checkpoints=None if c == "default" else int(c))
        variants[c] = make_step(adjoint, not a.per_example, opt)
    first, out, times = alternate({name: lambda f=f: f(*args) for name, f in variants.items()}, a.rounds)
    rows = [
        {"checkpoints": name, "step_s": float(np.median(v)), "step_min_s": float(np.min(v)),
         "first_call_s": first[name], "solver_steps": int(out[name][3]), "loss": float(out[name][2])}
        for name, v in times.items()
    ]
    payload = {"rows": rows, "rounds": a.rounds, "shared": not a.per_example, "batch": a.batch}
    report(TABLES["adjoint_checkpoints"], "adjoint_checkpoints", payload, a.json)


if __name__ == "__main__":
    main()

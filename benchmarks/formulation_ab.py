"""Formulations of the paper's network compared in one process, alternating: ``relax`` of a
batch and a training step, for each formulation (default: ``dense`` against ``tiles``).

Every variant is compiled first; then the variants run round-robin, so that the machine's
drift (±30 % within an hour on the 2-core CPU) hits them alike; we report median and
minimum per variant, and the first call (compilation included). Configuration: the paper's
MNIST-size Hopfield–Kuramoto network (``_common.paper_network``), batch 10, Tsit5 + PID
(rtol 1e-3, atol 1e-6), t1 = 1, ``max_steps = 16``; the batch solved per example
(``jax.vmap(hk.relax)``) or as one system with shared steps (``hk.relax_batch``, ``--shared``);
the training step is value and gradient of the squared class-unit loss through the solve
plus a Lion update, every step from the same parameters.

    python benchmarks/formulation_ab.py [--rounds 10] [--formulations dense,tiles] [--shared] [--calls relax,step]

Interleaving the training step between ``relax`` calls leaves the caches cold for each call;
``--calls relax`` times the solves alone, back to back as an inference loop or a sweep runs them.
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
    from adjoint_checkpoints import make_step
except ImportError:
    from ._common import alternate, initial_states, paper_network, report
    from .adjoint_checkpoints import make_step

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it. The
#: first row's formulation is the reference of the ``max |Δx|`` column (results without a
#: ``batch`` entry record it in their command, or were measured at the default batch of 10).
TABLES = {
    "formulation_ab": {
        "title": "formulations of the paper's network, batch {batch}, {kind}, in-process A/B",
        "columns": [
            ("formulation", "formulation", ""), ("what", "call", ""), ("ms", "median (ms)", ".1f"),
            ("min_ms", "min (ms)", ".1f"), ("first_call_s", "first call (s)", ".2f"),
            ("solver_steps", "solver steps", "d"), ("max_diff", "max |Δx| vs {formulation}", ".1e"),
            ("loss", "loss", ".5f"),
        ],
        "defaults": {"batch": 10},
        "labels": {"kind": ("shared", {True: "shared steps (relax_batch)", False: "per-example solves (vmap)"})},
    },
}


def make_relax(shared: bool):
    """The batch's ``relax`` (final states and the most solver steps), compiled."""

    @eqx.filter_jit
    def relax(net, states):
        if shared:
            sol = hk.relax_batch(net, states, t1=1.0, max_steps=16, throw=False)
        else:
            sol = jax.vmap(lambda s: hk.relax(net, s, t1=1.0, max_steps=16, throw=False))(states)
        return sol.state, jnp.max(sol.stats["num_steps"])

    return relax


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10, help="timed calls per variant (alternating)")
    ap.add_argument("--formulations", default="dense,tiles")
    ap.add_argument("--shared", action="store_true", help="one solve of the whole batch (hk.relax_batch)")
    ap.add_argument("--calls", default="relax,step", help="what to time: relax, step, or both")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    targets = 2.0 * jax.nn.one_hot(jnp.arange(a.batch) % 10, 11) - 1.0
    opt = optax.lion(1e-3)
    relax = make_relax(a.shared)
    step = make_step(diffrax.RecursiveCheckpointAdjoint(), a.shared, opt)  # relax's default adjoint
    calls = {}
    for form in (f.strip() for f in a.formulations.split(",")):
        net = paper_network(formulation=form)
        states = initial_states(net, a.batch)
        params, static = eqx.partition(net, eqx.is_inexact_array)
        opt_state = opt.init(params)
        if "relax" in a.calls:
            calls[(form, "relax")] = lambda net=net, states=states: relax(net, states)
        if "step" in a.calls:
            calls[(form, "training step")] = lambda p=params, s=static, o=opt_state, x=states: step(p, s, o, x, targets)
    first, out, times = alternate(calls, a.rounds)
    ref = next(iter(calls))[0]
    rows = []
    for (form, what), v in times.items():
        row = {"formulation": form, "what": what, "ms": 1e3 * float(np.median(v)), "min_ms": 1e3 * float(np.min(v)),
               "first_call_s": first[(form, what)]}
        if what == "relax":
            state, steps = out[(form, what)]
            row["solver_steps"] = int(steps)
            row["max_diff"] = float(jnp.max(jnp.abs(state["x"] - out[(ref, what)][0]["x"])))
        else:
            row["loss"] = float(out[(form, what)][2])
        rows.append(row)
    payload = {"rows": rows, "rounds": a.rounds, "shared": a.shared, "batch": a.batch}
    name = "formulation_ab" + ("-shared" if a.shared else "") + ("" if "step" in a.calls else "-relax")
    report(TABLES["formulation_ab"], name, payload, a.json)


if __name__ == "__main__":
    main()

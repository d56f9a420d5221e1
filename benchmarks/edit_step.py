"""A memory edit's training step and evaluation by Runge–Kutta method, in-process A/B: what
``--solver-method`` costs and what it changes on a trained edit.

A memory edit couples oscillators to a frozen Hopfield classifier; as the edit learns, the
coupling grows and the flow gets stiff: Tsit5 with adaptive steps settles at ~25 steps per
solve, bounded by stability rather than by its tolerances, and constant Tsit5 steps diverge
below that. An explicit method's step is bounded alike by the fastest rate of the flow, so
the method with fewest stages per step (Euler: one, Tsit5: six) solves the same stiff flow
at the fewest function evaluations. This script measures it on a trained edit.

For every method (``name`` for adaptive steps, ``name:N`` for ``N`` constant steps; ``run``:
the run's own configuration) it times a training step of the run's batch size (the edit's
loss and gradient, as ``hkjax edit`` takes it, at the run's newest checkpoint) and an
evaluation of the first ``--examples`` test images under both cues, and counts the solver
steps of a training batch. Every call is compiled first, then they run alternately
(round-robin). The accuracy is on the run's edited labels; "agreement" is the fraction of
predictions equal to those of the first method. A model trained with one method and
evaluated with another is a different discretisation of its flow: agreement below 1 is
expected there; a collapsed accuracy means the method diverged.

    python benchmarks/edit_step.py RUN [--methods run,tsit5:16,bosh3,heun:32,euler:32,euler:64]
                                       [--examples 200] [--rounds 2]

``RUN`` is a run directory of ``hkjax edit`` (e.g. the associative swap of
``docs/hopfield-kuramoto.md`` on Fashion-MNIST) whose ``--from`` classifier run is still there
when the run distils (``--distill``).
"""

from __future__ import annotations

import argparse
import dataclasses

import equinox as eqx
import jax
import numpy as np

try:
    from _common import alternate, report
except ImportError:  # imported as benchmarks.edit_step
    from ._common import alternate, report

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "edit_step": {
        "title": "A memory edit by Runge–Kutta method: {run} ({edit}, batch {batch_size}); evaluation on "
                 "{n_eval} solves",
        "columns": [
            ("method", "method", "s"), ("steps", "steps", "s"), ("batch_steps", "solver steps (batch)", "d"),
            ("step_s", "training step (s, median)", ".2f"), ("eval_ms", "evaluation per solve (ms)", ".1f"),
            ("speedup", "training step speed-up", ".2f"), ("accuracy", "accuracy", ".4f"),
            ("agreement", "agreement", ".4f"),
        ],
    },
}


def parse_method(text: str, run_config):
    """The :class:`hkjax.tasks.RelaxConfig` of ``text``: ``run`` (``run_config``), ``name``
    (adaptive steps) or ``name:N`` (``N`` constant steps)."""
    if text == "run":
        return run_config
    name, _, steps = text.partition(":")
    return dataclasses.replace(run_config, solver=name, steps=int(steps or 0), project=None)


def main(argv=None):
    from hkjax import runs, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory of hkjax edit")
    ap.add_argument("--methods", default="run,tsit5:16,bosh3,heun:32,euler:32,euler:64",
                    help="comma-separated methods: run, NAME (adaptive) or NAME:STEPS (constant)")
    ap.add_argument("--examples", type=int, default=200, help="test images evaluated (the first ones), each under both cues")
    ap.add_argument("--rounds", type=int, default=2, help="timed calls per method (alternating)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.examples < 1 or a.rounds < 1:
        ap.error("--examples and --rounds must be positive")

    cfg, task, model = runs.load_run(a.run)
    if cfg.task != "edit":
        ap.error(f"{a.run} is a {cfg.task} run; give a run directory of hkjax edit")
    tr, te = runs.load_data(cfg)
    train_arrays, _, _ = runs.splits(cfg, tr, te)
    if cfg.editing.distill:  # the classifier's class scores are targets of the edit's loss, as in hkjax edit
        _, _, classifier = runs._classifier_from(cfg)
        task = dataclasses.replace(task, teacher=classifier)
    try:
        methods = {m: parse_method(m, task.relax_config) for m in a.methods.split(",")}
    except ValueError as e:
        ap.error(f"--methods: {e}")
    prepared = task.prepare(train_arrays)
    arrays = runs.arrays(te, a.examples)
    eval_key = runs._eval_key(cfg)
    params, static = eqx.partition(model, train.trainable_filter(model, runs.trainable(cfg, model)))
    optimizer = runs.optimizer(cfg, cfg.editing.edit_steps, cfg.editing.edit_lr)
    opt_state = optimizer.init(params)
    bs = cfg.training.batch_size
    batch = train._sample(task, prepared, jax.random.key(0), bs)  # the same batch for every method
    states = jax.vmap(task.init_state)(batch, jax.random.split(jax.random.key(1), bs))
    variants = {m: dataclasses.replace(task, relax_config=rc) for m, rc in methods.items()}

    def step(t):
        return lambda: train._train_step(params, static, opt_state, batch, jax.random.key(1), t, optimizer, None, True)[2]

    def evaluation(t):
        return lambda: train.evaluate(model, t, arrays, key=eval_key)

    calls = {**{("step", m): step(t) for m, t in variants.items()},
             **{("eval", m): evaluation(t) for m, t in variants.items()}}
    _, out, times = alternate(calls, a.rounds)
    batch_steps = {m: int(np.max(eqx.filter_jit(lambda net, s, rc=rc: rc.batch(net, s).stats["num_steps"])(model, states)))
                   for m, rc in methods.items()}
    first = next(iter(methods))
    base_step = float(np.median(times[("step", first)]))
    n_eval = len(out[("eval", first)]["predictions"])
    rows = []
    for m, rc in methods.items():
        ev = out[("eval", m)]
        rows.append({
            "method": rc.solver if m != "run" else f"run ({rc.solver})", "steps": str(rc.steps) if rc.steps else "adaptive",
            "batch_steps": batch_steps[m], "step_s": float(np.median(times[("step", m)])),
            "eval_ms": 1e3 * float(np.median(times[("eval", m)])) / n_eval,
            "speedup": base_step / float(np.median(times[("step", m)])), "accuracy": float(ev["accuracy"]),
            "agreement": float(np.mean(np.asarray(ev["predictions"]) == np.asarray(out[("eval", first)]["predictions"]))),
        })
    payload = {"rows": rows, "rounds": a.rounds, "run": a.run, "edit": f"{cfg.editing.edit} {list(cfg.editing.classes)}",
               "batch_size": bs, "n_eval": n_eval, "loss": {m: float(out[("step", m)]) for m in methods}}
    report(TABLES["edit_step"], "edit_step", payload, a.json)


if __name__ == "__main__":
    main()

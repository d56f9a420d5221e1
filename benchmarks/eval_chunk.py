"""``hk.evaluate`` of a trained run by its chunk size, in-process A/B: what sets
``hk.evaluate``'s default chunk per platform (``hkjax.train.EVAL_CHUNK``).

``hk.evaluate`` solves every example on its own with adaptive steps, ``chunk`` examples per
compiled ``vmap``. Two things depend on the chunk. A ``vmap`` of adaptive solves runs its
loop until the slowest example of the chunk is done, computing every example at every
iteration: the column "padded / own steps" is that work over the sum of the examples' own
steps (1 for a chunk of one example), computed from each example's step count. And the
per-example cost of one iteration depends on how many examples it computes at once (on a
CPU, whether their states stay in cache). The timed columns give the sum of both.

The run's model (its newest checkpoint, as ``hkjax eval`` loads it) is evaluated on the first
``--examples`` images of its test split (an edit evaluates each under both cues); every
chunk size is compiled first, then the evaluations run alternately (round-robin), with the
same key: the accuracies must agree.

    python benchmarks/eval_chunk.py RUN [--examples 512] [--chunks 512,128,32] [--rounds 2]

``RUN`` is a run directory of ``hkjax train`` or ``hkjax edit``, e.g. an associative swap on
Fashion-MNIST (``hkjax edit --preset paper --dataset fashion-mnist --associative ...``).
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import numpy as np

try:
    from _common import alternate, report
except ImportError:  # imported as benchmarks.eval_chunk
    from ._common import alternate, report

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "eval_chunk": {
        "title": "hk.evaluate by chunk size: {n_eval} solves of {run} ({task}, {model}); solver steps per "
                 "example: median {steps_median}, 90th percentile {steps_p90}, max {steps_max}",
        "columns": [
            ("chunk", "chunk", "d"), ("padded", "padded / own steps", ".2f"),
            ("eval_s", "evaluation (s, median)", ".1f"), ("eval_min_s", "evaluation (s, min)", ".1f"),
            ("per_example_ms", "per example (ms)", ".1f"), ("first_call_s", "first call (s)", ".1f"),
            ("accuracy", "accuracy", ".4f"),
        ],
    },
}


def step_counts(model, task, arrays: dict, key, chunk: int = 64) -> np.ndarray:
    """Each example's solver steps in ``hk.evaluate(model, task, arrays, key=key)``: its
    examples and keys, relaxed as ``task.example_loss`` relaxes them."""
    from hkjax import train

    batch, keys = train._eval_examples(task, arrays, key)
    n = int(keys.shape[0])

    @eqx.filter_jit
    def steps(model, ex, ks):
        return jax.vmap(lambda e, k: task.relax_config(model, task.init_state(e, k)).stats["num_steps"])(ex, ks)

    out = [np.asarray(steps(model, *jax.tree_util.tree_map(lambda a: a[s : s + chunk], (batch, keys))))
           for s in range(0, n, chunk)]
    return np.concatenate(out)


def padded(counts: np.ndarray, chunk: int) -> float:
    """The steps a ``vmap`` over chunks of ``chunk`` examples computes (each chunk: its size
    times its largest count) over the examples' own steps."""
    work = sum(len(c) * int(c.max()) for c in np.array_split(counts, range(chunk, len(counts), chunk)))
    return work / int(counts.sum())


def main(argv=None):
    from hkjax import runs, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory of hkjax train / hkjax edit")
    ap.add_argument("--examples", type=int, default=512, help="test images evaluated (the first ones)")
    ap.add_argument("--chunks", default="512,128,32", help="comma-separated chunk sizes")
    ap.add_argument("--rounds", type=int, default=2, help="timed evaluations per chunk size (alternating)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    chunks = [int(c) for c in a.chunks.split(",")]
    if a.examples < 1 or min(chunks) < 1:
        ap.error("--examples and --chunks must be positive")

    cfg, task, model = runs.load_run(a.run)
    _, te = runs.load_data(cfg)
    arrays = runs.arrays(te, a.examples)
    key = runs._eval_key(cfg)
    counts = step_counts(model, task, arrays, key)
    first, out, times = alternate(
        {c: lambda c=c: train.evaluate(model, task, arrays, key=key, chunk=c)["accuracy"] for c in chunks}, a.rounds)
    rows = [{
        "chunk": c, "padded": padded(counts, c), "eval_s": float(np.median(times[c])),
        "eval_min_s": float(np.min(times[c])), "per_example_ms": 1e3 * float(np.median(times[c])) / len(counts),
        "first_call_s": first[c], "accuracy": float(out[c]),
    } for c in chunks]
    payload = {
        "rows": rows, "rounds": a.rounds, "run": a.run, "task": cfg.task, "model": cfg.network.model,
        "n_eval": len(counts), "steps_median": int(np.median(counts)), "steps_p90": int(np.percentile(counts, 90)),
        "steps_max": int(counts.max()),
    }
    report(TABLES["eval_chunk"], "eval_chunk", payload, a.json)


if __name__ == "__main__":
    main()

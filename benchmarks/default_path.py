"""``hk.fit``'s training step at the paper's 28×28 scale: the default gradient path (each
batch relaxed as one system with shared adaptive steps) against per-example solves
(``shared_steps=False``: one ``vmap``-ed adaptive solve per example, the semantics of a
plain ``jax.vmap`` of ``hk.relax``), timed alternately in one process.

Networks: 784 pixel + 100 hidden + 10 class threshold units (+ the reference oscillator),
the classification task of ``hkjax train`` with the paper's settings: ReLU Lagrangian and
interaction, κ_H = 0.1, κ_K = 1, D = 5, small-world graphs of degree 150, full coupling,
Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1, Lion with exponential decay, float32. Rows: the
Hopfield classifier at batch 100; the Hopfield–Kuramoto classifier with the Kuramoto term at
batch 10 and 100. Random 28×28 images (timing does not depend on the pixels' meaning).

Each step is timed through ``hk.fit`` itself (its ``metrics.jsonl``-style rows carry the
seconds of every logged step); the first call (compilation) is reported apart.

    python benchmarks/default_path.py [--rounds 3] [--steps 3] [--configs 0,1,2]
"""

from __future__ import annotations

import argparse
import time

#: ``(name, model, batch, kuramoto term)``
CONFIGS = [
    ("Hopfield, batch 100", "hopfield", 100, False),
    ("Hopfield–Kuramoto, batch 10", "hopfield_kuramoto", 10, True),
    ("Hopfield–Kuramoto, batch 100", "hopfield_kuramoto", 100, True),
]

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "default_path": {
        "title": "hk.fit training step, 784 + 100 + 10 units, float32, Lion: default (shared steps) vs per-example",
        "columns": [
            ("config", "network", ""), ("path", "gradient path", ""), ("step_s", "step (s, median)", ".3f"),
            ("step_min_s", "step (s, min)", ".3f"), ("first_call_s", "first call incl. compile (s)", ".2f"),
            ("speedup", "per-example ÷ default", ".1f"),
        ],
    },
}


def _setup(model: str, batch: int, kuramoto: bool):
    import jax
    import numpy as np
    import optax

    import hkjax as hk

    task = hk.tasks.Classification(model=model, n_pixels=784, n_hidden=100, n_classes=10, dim=5,
                                   relax_config=hk.tasks.RelaxConfig(t1=1.0, max_steps=64))
    net = task.build(jax.random.key(0), k=150, coupling="full", kappa_h=0.1, kappa_k=1.0,
                     kuramoto_graph=kuramoto)
    rng = np.random.default_rng(0)
    data = {"images": rng.random((1000, 784), dtype=np.float32), "labels": rng.integers(0, 10, 1000).astype(np.int32)}
    opt = optax.lion(optax.exponential_decay(1e-4, transition_steps=1000, decay_rate=0.5))
    return task, net, data, opt


def _fit_seconds(task, net, data, opt, batch, steps, shared, seed):
    """Seconds of each of ``steps`` training steps of ``hk.fit`` (``log_every=1``: every
    train row carries the seconds since the previous one)."""
    import jax

    import hkjax as hk

    rows = []
    hk.fit(net, task, data, optimizer=opt, steps=steps, batch_size=batch, key=jax.random.key(seed),
           shared_steps=None if shared else False, log_every=1, progress=False, callback=rows.append)
    return [r["seconds"] for r in rows if r.get("split") == "train"]


def main(argv=None):
    import numpy as np

    try:
        import _common
    except ImportError:
        from . import _common
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two paths")
    ap.add_argument("--steps", type=int, default=3, help="training steps per fit call")
    ap.add_argument("--configs", default=None, help="comma-separated indices into CONFIGS (default all)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    idx = range(len(CONFIGS)) if a.configs is None else [int(i) for i in a.configs.split(",")]
    rows = []
    for i in idx:
        name, model, batch, kuramoto = CONFIGS[i]
        task, net, data, opt = _setup(model, batch, kuramoto)
        times, first = {True: [], False: []}, {}
        for r in range(a.rounds + 1):
            for shared in (True, False):
                t = time.perf_counter()
                secs = _fit_seconds(task, net, data, opt, batch, a.steps, shared, seed=r)
                if r == 0:  # compiles; its first step holds the compilation
                    first[shared] = secs[0] if secs else time.perf_counter() - t
                else:
                    times[shared].extend(secs)
        med = {s: float(np.median(times[s])) for s in times}
        for shared in (True, False):
            rows.append({"config": name, "path": "default (shared steps)" if shared else "per-example (shared_steps=False)",
                         "batch": batch, "model": model, "step_s": med[shared], "step_min_s": float(np.min(times[shared])),
                         "first_call_s": first[shared], "speedup": med[False] / med[True] if shared else 1.0})
    title, columns = _common.table(TABLES["default_path"], {"rows": rows})
    _common.print_table(title, rows, columns)
    _common.write_json("default_path", {"rows": rows, "rounds": a.rounds, "steps": a.steps}, a.json)
    return rows


if __name__ == "__main__":
    main()

"""``hk.fit``'s training step at the paper's 28×28 scale: the default gradient path (each
batch relaxed as one system with shared adaptive steps) against per-example solves
(``shared_steps=False``: one ``vmap``-ed adaptive solve per example, the semantics of a
plain ``jax.vmap`` of ``hk.relax``), timed alternately in one process.

Networks: 784 pixel + 100 hidden + 10 class threshold units (+ the reference oscillator),
the classification task of ``hkjax train`` with the paper's settings: ReLU Lagrangian and
interaction, κ_H = 0.1, κ_K = 1, D = 5, small-world graphs of degree 150, full coupling,
Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1, Lion with exponential decay, float32. Rows: the
Hopfield classifier at batch 100; the Hopfield–Kuramoto classifier with the Kuramoto term at
batch 10 and 100. Fashion-MNIST training images (the solvers' step counts depend on them).

Each step is timed through ``hk.fit`` itself (its ``metrics.jsonl``-style rows carry the
seconds of every logged step); the first call (compilation) is reported apart. The default
path's peak memory is measured in a fresh process per network (``--no-memory``: not): the
peak resident set (``VmHWM``) of a process that builds the network and runs ``hk.fit`` for
``--steps`` steps, compilation included.

With ``--reference PATH`` (a checkout of the paper's code, github.com/VLSF/HKmemory) the
paper's own training step on the same configuration (``benchmarks/_reference.py``) is timed in
the same rounds, alternating with hkjax's; its rows are the path "paper's code".

    python benchmarks/default_path.py [--rounds 3] [--steps 3] [--configs 0,1,2] [--reference PATH] [--no-memory]
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
            ("vs_default", "÷ hkjax default", ".1f"), ("peak_mb", "peak RSS, fresh process (MB)", ".0f"),
        ],
    },
}


#: The rows' names of the three paths.
DEFAULT, PER_EXAMPLE, REFERENCE = "default (shared steps)", "per-example (shared_steps=False)", "paper's code"


def _setup(model: str, batch: int, kuramoto: bool, max_steps: int = 64):
    import jax
    import optax

    import hkjax as hk

    task = hk.tasks.Classification(model=model, n_pixels=784, n_hidden=100, n_classes=10, dim=5,
                                   relax_config=hk.tasks.RelaxConfig(t1=1.0, max_steps=max_steps))
    net = task.build(jax.random.key(0), k=150, coupling="full", kappa_h=0.1, kappa_k=1.0,
                     kuramoto_graph=kuramoto)
    data = _images()
    opt = optax.lion(optax.exponential_decay(1e-4, transition_steps=1000, decay_rate=0.5))
    return task, net, data, opt


def _images(n: int = 1000):
    """The first ``n`` Fashion-MNIST training images (flattened, in [0, 1]) and labels. Real
    images: the adaptive solvers' step counts, and so the times, depend on the pixels."""
    import numpy as np

    import hkjax as hk

    try:
        ds = hk.data.load_dataset("fashion-mnist", "train")
    except (OSError, ValueError) as e:
        raise SystemExit(f"default_path.py times training on Fashion-MNIST: {e}") from None
    # copies: a view would keep the whole training set alive (and in the peak memory)
    images = np.array(ds.images[:n], np.float32).reshape(n, -1)
    return {"images": images, "labels": np.array(ds.labels[:n], np.int32)}


def _fit_seconds(task, net, data, opt, batch, steps, shared, seed):
    """Seconds of each of ``steps`` training steps of ``hk.fit`` (``log_every=1``: every
    train row carries the seconds since the previous one)."""
    import jax

    import hkjax as hk

    rows = []
    hk.fit(net, task, data, optimizer=opt, steps=steps, batch_size=batch, key=jax.random.key(seed),
           shared_steps=None if shared else False, log_every=1, progress=False, callback=rows.append)
    return [r["seconds"] for r in rows if r.get("split") == "train"]


def _peak_mb(index: int, steps: int, max_steps: int) -> float:
    """The peak resident memory (MB) of a fresh process that runs the default path of
    ``CONFIGS[index]`` for ``steps`` training steps (this script with ``--peak-of``)."""
    import json
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--peak-of", str(index), "--steps", str(steps), "--max-steps", str(max_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"default_path.py: the memory measurement failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])


def _peak_of(index: int, steps: int, max_steps: int) -> dict:
    name, model, batch, kuramoto = CONFIGS[index]
    task, net, data, opt = _setup(model, batch, kuramoto, max_steps)
    try:
        from _common import status_mb
    except ImportError:
        from ._common import status_mb

    _fit_seconds(task, net, data, opt, batch, steps, True, seed=0)
    return {"config": name, "peak_mb": status_mb("VmHWM")}


def main(argv=None):
    import json

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
    ap.add_argument("--max-steps", type=int, default=64,
                    help="hkjax's solver step limit (the hkjax command's default 64; --preset paper: 5000)")
    ap.add_argument("--reference", default=None, metavar="PATH",
                    help="a checkout of the paper's code (github.com/VLSF/HKmemory) to time in the same rounds")
    ap.add_argument("--reference-steps", type=int, default=None,
                    help="the paper's code's steps per round (default --steps)")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                    help="measure the default path's peak memory in a fresh process per network")
    ap.add_argument("--peak-of", type=int, default=None, help=argparse.SUPPRESS)  # the child of --memory
    a = ap.parse_args(argv)
    if a.peak_of is not None:
        print(json.dumps(_peak_of(a.peak_of, a.steps, a.max_steps)))
        return None
    idx = range(len(CONFIGS)) if a.configs is None else [int(i) for i in a.configs.split(",")]
    rows = []
    for i in idx:
        name, model, batch, kuramoto = CONFIGS[i]
        peak = _peak_mb(i, a.steps, a.max_steps) if a.memory else None
        task, net, data, opt = _setup(model, batch, kuramoto, a.max_steps)
        paths = [DEFAULT, PER_EXAMPLE]
        ref_step = None
        if a.reference:
            try:
                import _reference
            except ImportError:
                from . import _reference
            ref_step = _reference.training_step(a.reference, model, batch, data["images"], data["labels"])
            paths.append(REFERENCE)
        times, first = {p: [] for p in paths}, {}
        for r in range(a.rounds + 1):
            for path in paths:
                t = time.perf_counter()
                if path == REFERENCE:
                    secs = []
                    for _ in range(a.reference_steps or a.steps):
                        t = time.perf_counter()
                        ref_step().block_until_ready()
                        secs.append(time.perf_counter() - t)
                else:
                    secs = _fit_seconds(task, net, data, opt, batch, a.steps, path == DEFAULT, seed=r)
                if r == 0:  # compiles; its first step holds the compilation
                    first[path] = secs[0] if secs else time.perf_counter() - t
                else:
                    times[path].extend(secs)
        med = {p: float(np.median(times[p])) for p in paths}
        for path in paths:
            rows.append({"config": name, "path": path, "batch": batch, "model": model, "step_s": med[path],
                         "step_min_s": float(np.min(times[path])), "first_call_s": first[path],
                         "vs_default": med[path] / med[DEFAULT],
                         "max_steps": 5000 if path == REFERENCE else a.max_steps,
                         **({"peak_mb": peak} if path == DEFAULT and peak is not None else {})})
    title, columns = _common.table(TABLES["default_path"], {"rows": rows})
    _common.print_table(title, rows, columns)
    _common.write_json("default_path", {"rows": rows, "rounds": a.rounds, "steps": a.steps,
                                        "reference": "github.com/VLSF/HKmemory" if a.reference else None}, a.json)
    return rows


if __name__ == "__main__":
    main()

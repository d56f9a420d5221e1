"""The hkjax of the working tree against the hkjax of a base revision (``--base``), timed
alternately in fresh processes on the paper's MNIST-size network.

The base revision's ``hkjax`` package is extracted into a temporary directory
(``git archive REV hkjax``); then, ``--rounds`` times, one worker process per revision runs,
base revision first, each importing ``hkjax`` from its own source tree (checked through
``hkjax.__file__``), so that the machine's drift hits both alike. Each worker times:

* the vector field at one state (the prepared network, ``eqx.filter_jit``; median of
  ``--field-calls`` calls);
* ``relax`` of a batch of each ``--batches`` size, the whole batch as one system with shared
  steps, through the task's relax configuration as ``hkjax train`` uses it
  (``task.relax_config.batch``; median of ``--repeats`` calls after the compiling one);
* ``hk.fit``'s training step at batch ``--fit-batch``, from the seconds of every step it logs
  (``log_every=1``), as ``benchmarks/default_path.py`` measures it: the first step is the
  first call (compilation included, JAX's persistent compilation cache off), the median of
  the others is the step. The worker runs ``hk.fit`` first, so the first call is that of a
  fresh process.

Network and task, as ``benchmarks/default_path.py`` builds them: the classification task of
``hkjax train`` with 784 pixel + 100 hidden + 10 class threshold units (+ the reference
oscillator), the Hopfield–Kuramoto model with the Kuramoto term, small-world graphs of degree
150, D = 5, ReLU Lagrangian and interaction, κ_H = 0.1, κ_K = 1, full coupling, Tsit5 + PID
(rtol 1e-3, atol 1e-6), t1 = 1, at most 64 steps, Lion with exponential decay, float32.
Random images (timing does not depend on the pixels' meaning); the initial states come from
the task (``task.init_state``, ``vmap``-ed), identical in both revisions for a given round.

Columns: per revision, the median over rounds of each round's median, and the fastest single
timed call over all rounds (for the first call: the fastest round); working tree ÷ base of
the medians; the solver steps of each revision's solve; the largest difference between the
revisions' outputs in the first round (the field, the class scores after ``relax``, the
training losses), which says that both did the same work.

    python benchmarks/revision_ab.py [--rounds 3] [--base c2b049b] [--batches 10,100] [--fit-batch 10]
    python benchmarks/revision_ab.py --quick --rounds 1    # a smoke run on a tiny network (no file written)

``--quick``: 8×8 pixels, 8 hidden units, degree 4, fewer calls; its result is written only
with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "revision_ab": {
        "title": "working tree against base revision {base}, {network}, float32, alternating processes, rounds: {rounds}",
        "columns": [
            ("measure", "measure", ""), ("base_median", "base {base}, median", ".4g"),
            ("new_median", "working tree, median", ".4g"), ("ratio", "working tree ÷ base", ".3f"),
            ("base_min", "base {base}, min", ".4g"), ("new_min", "working tree, min", ".4g"),
            ("steps", "solver steps (base / working tree)", ""), ("max_diff", "max |Δ| of the outputs", ".1e"),
        ],
    },
}

#: The paper's sizes and the ``--quick`` ones: pixels, hidden units, class units, graph degree.
SIZES = {"paper": dict(n_pixels=784, n_hidden=100, n_classes=10, k=150),
         "quick": dict(n_pixels=64, n_hidden=8, n_classes=10, k=4)}


# -- the worker: one revision, one process --------------------------------------------------

def _import_hkjax(src: str):
    """``hkjax`` from the source tree ``src`` (put first on ``sys.path``)."""
    sys.path.insert(0, src)
    import hkjax

    where = Path(hkjax.__file__).resolve()
    if not where.is_relative_to(Path(src).resolve()):
        raise RuntimeError(f"hkjax was imported from {where}, not from {src}")
    return hkjax


def _leaves(tree):
    """The array leaves of a state-like tree, flattened and concatenated in an order that does
    not depend on how the state is structured (by size, then shape)."""
    import jax
    import numpy as np

    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(tree)]
    leaves.sort(key=lambda v: (v.size, v.shape))
    return np.concatenate([v.ravel() for v in leaves]) if leaves else np.zeros(0)


def _calls(fn, *args, n: int):
    """Wall times (s) of ``n`` calls of ``fn(*args)`` after one compiling call; and its output."""
    import jax

    out = jax.block_until_ready(fn(*args))
    times = []
    for _ in range(max(1, n)):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return times, out


def worker(a) -> dict:
    hk = _import_hkjax(a.src)
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    jax.config.update("jax_enable_x64", False)
    jax.config.update("jax_enable_compilation_cache", False)  # the first call compiles
    size = SIZES["quick" if a.quick else "paper"]
    task = hk.tasks.Classification(
        model="hopfield_kuramoto", n_pixels=size["n_pixels"], n_hidden=size["n_hidden"],
        n_classes=size["n_classes"], dim=5,
        relax_config=hk.tasks.RelaxConfig(t1=1.0, max_steps=64, rtol=1e-3, atol=1e-6))
    net = task.build(jax.random.key(0), k=size["k"], coupling="full", kappa_h=0.1, kappa_k=1.0,
                     kuramoto_graph=True)
    rng = np.random.default_rng(0)
    data = {"images": rng.random((1000, size["n_pixels"]), dtype=np.float32),
            "labels": rng.integers(0, size["n_classes"], 1000).astype(np.int32)}
    measures, arrays = {}, {}

    # hk.fit first: its first step is the first call of a fresh process.
    opt = optax.lion(optax.exponential_decay(1e-4, transition_steps=1000, decay_rate=0.5))
    rows = []
    hk.fit(net, task, data, optimizer=opt, steps=a.steps, batch_size=a.fit_batch, key=jax.random.key(a.seed),
           shared_steps=None, log_every=1, progress=False, callback=rows.append)
    train = [r for r in rows if r.get("split") == "train"]
    secs = [r["seconds"] for r in train]
    steps = secs[1:] or secs
    measures[f"fit_step_b{a.fit_batch}"] = {"median": float(np.median(steps)), "min": float(np.min(steps)), "n": len(steps)}
    measures[f"fit_first_b{a.fit_batch}"] = {"median": secs[0], "min": secs[0], "n": 1}
    arrays["fit_loss"] = np.asarray([r["loss"] for r in train])

    # Initial states from the task, the same in both revisions.
    kx, ks = jax.random.split(jax.random.key(1000 + a.seed))
    batch_max = max(a.batches)
    images = jax.random.uniform(kx, (batch_max, size["n_pixels"]))
    labels = jnp.arange(batch_max, dtype=jnp.int32) % size["n_classes"]
    keys = jax.random.split(ks, batch_max)

    def states(b):
        return jax.vmap(task.init_state)({"images": images[:b], "labels": labels[:b]}, keys[:b])

    # The vector field at one state, of the prepared network (what relax evaluates).
    prepared = eqx.filter_jit(lambda n: n.prepare())(net)
    field = eqx.filter_jit(lambda n, s: n.vector_field(0.0, s, None))
    one = task.init_state({"images": images[0], "labels": labels[0]}, keys[0])
    times, out = _calls(field, prepared, one, n=a.field_calls)
    measures["vector_field"] = {"median": 1e3 * float(np.median(times)), "min": 1e3 * float(np.min(times)),
                                "n": len(times)}
    arrays["vector_field"] = _leaves(out)

    # relax of a batch, as hkjax train relaxes it.
    @eqx.filter_jit
    def relax(n, s):
        sol = task.relax_config.batch(n, s)
        return jax.vmap(task.scores, in_axes=(None, 0))(n, sol.state), jnp.max(sol.stats["num_steps"])

    for b in a.batches:
        times, (scores, nsteps) = _calls(relax, net, states(b), n=a.repeats)
        measures[f"relax_b{b}"] = {"median": 1e3 * float(np.median(times)), "min": 1e3 * float(np.min(times)),
                                   "n": len(times), "steps": int(nsteps)}
        arrays[f"relax_b{b}"] = np.asarray(scores)

    if a.arrays:
        np.savez(a.arrays, **arrays)
    return {"src": a.src, "hkjax_file": hk.__file__, "hkjax_version": hk.__version__, "seed": a.seed,
            "measures": measures}


# -- the parent: alternate the revisions ----------------------------------------------------

def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def _extract(rev: str, into: Path) -> Path:
    """The ``hkjax`` package of revision ``rev`` extracted under ``into``."""
    archive = subprocess.run(["git", "archive", rev, "hkjax"], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {rev} hkjax: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    if not (into / "hkjax" / "__init__.py").exists():
        raise SystemExit(f"revision {rev} has no hkjax package")
    return into


def _run_worker(src: Path, a, seed: int, arrays: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--src", str(src), "--seed", str(seed),
           "--batches", ",".join(map(str, a.batches)), "--fit-batch", str(a.fit_batch), "--steps", str(a.steps),
           "--repeats", str(a.repeats), "--field-calls", str(a.field_calls), "--arrays", str(arrays)]
    if a.quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"worker for {src} failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"worker for {src} printed no result:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def _max_diff(a, b) -> float | None:
    import numpy as np

    if a.shape != b.shape:
        return None
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def parent(a):
    import numpy as np

    try:
        import _common
    except ImportError:
        from . import _common
    base = _git("rev-parse", "--short", f"{a.base}^{{commit}}").strip()
    head = _git("rev-parse", "--short", "HEAD").strip()
    dirty = bool(_git("status", "--porcelain", "--", "hkjax").strip())
    new_label = f"{head} + uncommitted changes" if dirty else head
    size = SIZES["quick" if a.quick else "paper"]
    network = f"{size['n_pixels']} + {size['n_hidden']} + {size['n_classes']} units, k = {size['k']}"
    measures = [("vector_field", "vector field, 1 state (ms)")]
    measures += [(f"relax_b{b}", f"relax, batch {b} (ms)") for b in a.batches]
    measures += [(f"fit_step_b{a.fit_batch}", f"hk.fit step, batch {a.fit_batch} (s)"),
                 (f"fit_first_b{a.fit_batch}", f"hk.fit first call, batch {a.fit_batch} (s)")]
    revisions = ("base", "new")
    results = {r: [] for r in revisions}
    diffs = {}
    with tempfile.TemporaryDirectory(prefix="hkjax-revision-ab-") as tmp:
        tmp = Path(tmp)
        (tmp / "base").mkdir()
        srcs = {"base": _extract(base, tmp / "base"), "new": ROOT}
        for rnd in range(a.rounds):
            for r in revisions:
                t = time.perf_counter()
                res = _run_worker(srcs[r], a, seed=rnd, arrays=tmp / f"{r}-{rnd}.npz")
                results[r].append(res)
                print(f"# round {rnd + 1}/{a.rounds}, {'base ' + base if r == 'base' else 'working tree'}: "
                      f"{time.perf_counter() - t:.0f} s (hkjax {res['hkjax_version']} from {res['hkjax_file']})",
                      flush=True)
        with np.load(tmp / "base-0.npz") as fb, np.load(tmp / "new-0.npz") as fn:
            for key in fb.files:
                if key in fn.files:
                    diffs[key] = _max_diff(fb[key], fn[key])
    diff_of = {"vector_field": "vector_field", f"fit_step_b{a.fit_batch}": "fit_loss",
               f"fit_first_b{a.fit_batch}": "fit_loss", **{f"relax_b{b}": f"relax_b{b}" for b in a.batches}}
    rows = []
    for key, label in measures:
        per = {r: [res["measures"][key] for res in results[r]] for r in revisions}
        med = {r: float(np.median([m["median"] for m in per[r]])) for r in revisions}
        low = {r: float(np.min([m["min"] for m in per[r]])) for r in revisions}
        row = {"measure": label, "base_median": med["base"], "new_median": med["new"],
               "ratio": med["new"] / med["base"], "base_min": low["base"], "new_min": low["new"],
               "base_rounds": [m["median"] for m in per["base"]], "new_rounds": [m["median"] for m in per["new"]]}
        if "steps" in per["base"][0]:
            row["steps"] = " / ".join(",".join(sorted({str(m["steps"]) for m in per[r]})) for r in revisions)
        if diffs.get(diff_of[key]) is not None:
            row["max_diff"] = diffs[diff_of[key]]
        rows.append(row)
    payload = {"rows": rows, "base": base, "base_rev": a.base, "new": new_label, "network": network,
               "rounds": a.rounds, "fit_batch": a.fit_batch, "fit_steps": a.steps, "repeats": a.repeats,
               "field_calls": a.field_calls, "quick": a.quick,
               "hkjax_versions": {r: results[r][0]["hkjax_version"] for r in revisions}}
    title, columns = _common.table(TABLES["revision_ab"], payload)
    _common.print_table(title, rows, columns)
    print(f"# base revision: {a.base} ({base}); working tree: {new_label}")
    for row in rows:
        if "steps" in row and len(set(row["steps"].split(" / "))) > 1:
            print(f"# note: {row['measure']}: the revisions took different solver steps ({row['steps']})")
    if a.quick and not a.json:
        print("# --quick: no result file written (pass --json PATH to keep it)")
    else:
        _common.write_json("revision_ab", payload, a.json)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two revisions (one process each)")
    ap.add_argument("--base", default="c2b049b", help="the git revision to compare the working tree against")
    ap.add_argument("--batches", default="10,100", help="comma-separated batch sizes of the relax rows")
    ap.add_argument("--fit-batch", type=int, default=10, help="batch size of the hk.fit training step")
    ap.add_argument("--steps", type=int, default=None, help="hk.fit steps per worker, the first the compiling one "
                    "(default 4; --quick 2)")
    ap.add_argument("--repeats", type=int, default=None, help="timed relax calls per worker (default 5; --quick 2)")
    ap.add_argument("--field-calls", type=int, default=None, help="timed vector-field calls per worker "
                    "(default 200; --quick 20)")
    ap.add_argument("--quick", action="store_true", help="a tiny network (64 + 8 + 10 units, k = 4): a smoke run")
    ap.add_argument("--json", default=None, help="result file (default results/revision_ab-<machine>.json)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--arrays", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.batches = [int(b) for b in str(a.batches).split(",") if b.strip()]
    a.steps = a.steps if a.steps is not None else (2 if a.quick else 4)
    a.repeats = a.repeats if a.repeats is not None else (2 if a.quick else 5)
    a.field_calls = a.field_calls if a.field_calls is not None else (20 if a.quick else 200)
    if a.steps < 2:
        ap.error("--steps must be at least 2 (the first step is the compiling one)")
    if a.worker:
        if not a.src:
            ap.error("--worker needs --src")
        print(json.dumps(worker(a)), flush=True)
        return None
    return parent(a)


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmark scripts: the paper's network, timing, tables, JSON."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import hkjax as hk

try:
    from _tables import cells, git_commit, resolve
except ImportError:  # imported as benchmarks._common
    from ._tables import cells, git_commit, resolve

RESULTS = Path(__file__).resolve().parent / "results"

#: The paper's MNIST configuration: 785 pixel + reference units, 100 hidden, 11 class units.
PAPER = dict(n=896, k=150, p=0.1, dim=5, kappa_h=0.1, kappa_k=1.0)


def paper_network(*, formulation: str = "auto", coupling: str = "full", n: int = PAPER["n"],
                  k: int = PAPER["k"], dim: int = PAPER["dim"], seed: int = 0, kuramoto_term: bool = True):
    """The paper's MNIST-size Hopfield–Kuramoto network with its initialisation scale
    (``kuramoto_term=False``: without the Kuramoto term, as the ``hkjax`` command's default)."""
    keys = jax.random.split(jax.random.key(seed), 3)
    ek = hk.graphs.small_world(n, k, PAPER["p"], key=keys[0]) if kuramoto_term else None
    ehk = hk.graphs.small_world(n, k, PAPER["p"], key=keys[1])
    return hk.hopfield_kuramoto(
        n, dim, edges_k=ek, edges_hk=ehk, coupling=coupling,
        lagrangian=hk.lagrangians.ReLU(), interaction=hk.interactions.ReLU(),
        kappa_h=PAPER["kappa_h"], kappa_k=PAPER["kappa_k"], formulation=formulation, key=keys[2],
    )


def initial_states(net, batch: int, *, seed: int = 1):
    """A batch of initial states: uniform 'pixels' in [0, 1], random oscillators."""
    kx, ks = jax.random.split(jax.random.key(seed))
    x = jax.random.uniform(kx, (batch, *net.layers["x"].shape))
    sig = jax.random.normal(ks, (batch, *net.layers["sigma"].state_shape))
    return jax.vmap(lambda a, b: net.init_state({"x": a, "sigma": b}))(x, sig)


def timeit(fn, *args, repeats: int = 5):
    """Median and min wall time (s) of ``fn(*args)`` over ``repeats`` runs after one
    warm-up call (which also compiles); returns ``(median, min, first_call, output)``."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.min(times)), first, out


def alternate(calls: dict, rounds: int):
    """In-process A/B: every call of ``calls`` (name -> zero-argument function) run once
    (compiling it), then all of them ``rounds`` times round-robin, so that the machine's
    drift hits them alike. Returns ``(first, out, times)``: per name the first call's wall
    time (s), its output, and the list of timed wall times (s)."""
    first, out = {}, {}
    for name, f in calls.items():
        t = time.perf_counter()
        out[name] = jax.block_until_ready(f())
        first[name] = time.perf_counter() - t
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, f in calls.items():
            t = time.perf_counter()
            jax.block_until_ready(f())
            times[name].append(time.perf_counter() - t)
    return first, out, times


def dot_gflops(m: int, k: int, n: int, *, repeats: int = 10, dtype=jnp.float32) -> float:
    """GFLOP/s of a plain ``jnp.dot`` of ``(m, k) @ (k, n)`` on this device, same run."""
    a = jnp.ones((m, k), dtype)
    b = jnp.ones((k, n), dtype)
    f = jax.jit(jnp.dot)
    med, *_ = timeit(f, a, b, repeats=repeats)
    return 2.0 * m * k * n / med / 1e9


def device_info() -> dict:
    d = jax.devices()[0]
    return {
        "platform": d.platform,
        "device": d.device_kind,
        "devices": len(jax.devices()),
        "jax": jax.__version__,
        "hkjax": hk.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def machine_name() -> str:
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return d.device_kind.lower().replace(" ", "-")


def status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` in MB: ``VmRSS`` (resident now), ``VmHWM``
    (this process's peak resident set; unlike ``getrusage``, not carried over from a parent
    across fork/exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str, str]]):
    """Print a markdown table; ``columns`` = [(key, header, format)]."""
    info = device_info()
    print(f"\n## {title}")
    print(f"# command: {command_line()}")
    print(f"# device: {info['platform']} {info['device']} x{info['devices']}, jax {info['jax']}, {info['cpus']} cpus")
    print("| " + " | ".join(h for _, h, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(cells(r, columns)) + " |")


def table(spec: dict, payload: dict) -> tuple[str, list[tuple[str, str, str]]]:
    """``(title, columns)`` of a script's table definition (its ``TABLES`` entry) for the
    payload it writes, as ``benchmarks/readme.py`` renders it from the JSON."""
    return resolve(spec, {"command": command_line(), **payload}, defaults=PAPER)


def report(spec: dict, name: str, payload: dict, path: str | None = None) -> Path:
    """Print a script's table (its ``TABLES`` entry ``spec`` rendered for ``payload``, whose
    ``"rows"`` are the table's rows) and write ``payload`` as JSON (:func:`write_json`)."""
    title, columns = table(spec, payload)
    print_table(title, payload["rows"], columns)
    return write_json(name, payload, path)


def write_json(name: str, payload: dict, path: str | None = None) -> Path:
    out = Path(path) if path else RESULTS / f"{name}-{machine_name()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    when = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    commit = git_commit()
    if commit:
        when["commit"] = commit
    payload = {"command": command_line(), "device": device_info(), **when, **payload}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    print(f"# wrote {out}")
    return out

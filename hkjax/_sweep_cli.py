"""``hkjax sweep``: relax one network over a grid of hyperparameters.

Every grid point relaxes the network the other flags describe (or the trained model of
``--from RUN``) from the encoded first ``--images`` test images and records, averaged over
the images: the final energy, the oscillator order parameter ``|mean σ|``, the overlap of
the final pixel units with the clean image, the class accuracy, the number of solver steps
and the worst solver result code. Continuous parameters are vmapped and sharded over
``jax.devices()`` by :func:`hkjax.sweep.run`; static (shape-changing) parameters loop over
compiled variants. The grammar of ``--param`` is in :data:`GRAMMAR`.

This module holds the logic; :mod:`hkjax.cli` only registers the subcommand.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import pathlib
import sys
import time
from typing import Annotated

import tyro

__all__ = ["CONTINUOUS", "STATIC", "METRICS", "GRAMMAR", "SweepOptions", "check_options", "epilog", "parse_param",
           "run_command"]

#: Continuous parameters: one vmapped, device-sharded computation over all of them.
CONTINUOUS = {
    "coupling": "Hopfield-Kuramoto coupling strength: the scalar c (--coupling additive), alpha "
                "(multiplicative), or every per-edge weight C_ij (full) set to this value",
    "coupling_scale": "multiply the network's (initial or trained) coupling weights by this factor",
    "kappa_h": "Hopfield energy scale and time constant kappa_H (> 0)",
    "kappa_k": "Kuramoto energy scale and time constant kappa_K (> 0)",
    "omega": "natural frequencies: Omega_i = omega * A_i added to each oscillator, A_i fixed random "
             "antisymmetric DxD matrices (N(0,1) entries above the diagonal, drawn from --seed)",
    "noise": "std of Gaussian noise added to the test images before encoding (clipped to [0, 1]; >= 0)",
    "seed": "seed of the initial state: random hidden/class oscillators, global rotation, noise "
            "(integer >= 0; default --seed). The network itself is built from --seed",
}

#: Static parameters (fields of :class:`hkjax.config.Config`): one compiled variant each.
STATIC = {
    "dim": "oscillator dimension D",
    "n_hidden": "hidden units (n = pixels + n_hidden + classes)",
    "degree": "degree k of the small-world graphs",
    "rewire": "small-world rewiring probability",
    "init_scale": "std of the random initial parameters",
    "t1": "relaxation time",
    "max_steps": "maximum adaptive solver steps",
    "solver_steps": "constant solver steps (0: adaptive)",
}

#: With ``--from RUN`` the network is the run's; only these static parameters apply.
_RELAX_STATIC = ("t1", "max_steps", "solver_steps")

_INTEGER = {"seed", "dim", "n_hidden", "degree", "max_steps", "solver_steps"}
_POSITIVE = {"kappa_h", "kappa_k"}
_NONNEGATIVE = {"noise", "seed"}

#: Outputs recorded per grid point (means over the test images).
METRICS = {
    "energy": "final energy",
    "order": "oscillator order parameter |mean_i sigma_i| at the end (models with oscillators)",
    "overlap": "cosine similarity of the final pixel units (2x-1, or sigma_i . sigma_ref) with the clean image",
    "accuracy": "fraction of the test images classified correctly",
    "prediction": "predicted class of the first test image",
    "steps": "solver steps",
    "result": "worst solver result code over the images (0: every solve succeeded)",
}

GRAMMAR = """\
--param NAME=VALUES (repeatable; one grid axis each, the table is their Cartesian product):
  a,b,c              a list, e.g. coupling=0,0.005,0.01 or dim=3,5
  start:stop:num     num evenly spaced values, both ends included, e.g. coupling=0:0.01:8
  start:stop         the integers start..stop, both included, e.g. seed=0:7 (8 seeds)
  a                  a single value, e.g. noise=0.1

continuous parameters (one vmapped computation sharded over jax.devices()):
{continuous}
static parameters (Config fields; one compiled variant per value):
{static}

The network is built from the flags above (--model, --coupling, --n-hidden, --seed, ...; the
same network `hkjax train` starts from), or, with --from RUN, it is the trained model of a run
directory, with the run's task, data set and relaxation settings (then only t1, max_steps
and solver_steps can be swept as static parameters).

Each grid point relaxes a network from the first --images test images and records (means
over the images):
{metrics}
Files in --out: sweep.csv, sweep.json (config, grid, rows) and sweep_<metric>.png: a heatmap
over the first two swept axes other than seed (the remaining axes, e.g. seeds, averaged), or
a line (mean +- std) when one axis is swept. Without --param: coupling=0:0.01:8, seed=0:7.

example: hkjax sweep --param coupling=0:0.01:8 --param seed=0:7 --param dim=3,5 --out runs/sweep
"""


def _describe(d: dict) -> str:
    import textwrap

    return "".join(textwrap.fill(v, 92, initial_indent=f"  {k:<16}", subsequent_indent=" " * 18) + "\n"
                   for k, v in d.items())


def epilog() -> str:
    """The grammar of ``--param`` and the parameters and metrics it names (``--help``)."""
    return GRAMMAR.format(continuous=_describe(CONTINUOUS), static=_describe(STATIC), metrics=_describe(METRICS))


DEFAULT_PARAMS = ("coupling=0:0.01:8", "seed=0:7")


# ---------------------------------------------------------------------------------------
# grammar
# ---------------------------------------------------------------------------------------


def _number(text: str, spec: str, what: str = "a number") -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"--param {spec}: {text.strip()!r} is not {what}") from None
    if not math.isfinite(v):
        raise ValueError(f"--param {spec}: {text.strip()!r} is not finite")
    return v


def _integer(text: str, spec: str) -> int:
    v = _number(text, spec, "an integer")
    if not v.is_integer():
        raise ValueError(f"--param {spec}: {text.strip()!r} is not an integer")
    return int(v)


def parse_param(spec: str):
    """``"NAME=VALUES"`` -> ``(name, values)`` (a 1-d NumPy array; integers for integer
    parameters). See :data:`GRAMMAR`.

    Raises:
        ValueError: an unknown name or a malformed / empty / out-of-range value list.
    """
    import numpy as np

    name, sep, rhs = spec.partition("=")
    name = name.strip().replace("-", "_")
    rhs = rhs.strip()
    if not sep or not name or not rhs:
        raise ValueError(f"--param {spec!r}: expected NAME=VALUES, e.g. coupling=0:0.01:8 or seed=0:7")
    if name not in CONTINUOUS and name not in STATIC:
        raise ValueError(f"--param {spec}: unknown parameter {name!r}; continuous: {', '.join(CONTINUOUS)}; "
                         f"static: {', '.join(STATIC)}")
    if ":" in rhs:
        parts = rhs.split(":")
        if len(parts) == 2:
            a, b = (_integer(p, spec) for p in parts)
            if b < a:
                raise ValueError(f"--param {spec}: the range start:stop needs start <= stop")
            values = np.arange(a, b + 1)
        elif len(parts) == 3:
            a, b = _number(parts[0], spec), _number(parts[1], spec)
            num = _integer(parts[2], spec)
            if num < 1:
                raise ValueError(f"--param {spec}: start:stop:num needs num >= 1")
            # 12 significant digits: 0.15, not 0.15000000000000002, in the table
            values = np.asarray([float(f"{v:.12g}") for v in np.linspace(a, b, num)])
        else:
            raise ValueError(f"--param {spec}: use start:stop:num (num values) or start:stop (integers)")
    else:
        items = rhs.split(",")
        if any(not i.strip() for i in items):
            raise ValueError(f"--param {spec}: empty item in the list")
        values = np.asarray([_number(i, spec) for i in items])
    if name in _INTEGER:
        if not np.all(np.equal(np.round(values), values)):
            raise ValueError(f"--param {spec}: {name} takes integers")
        values = np.round(values).astype(np.int64)
    if len(np.unique(values)) != len(values):
        raise ValueError(f"--param {spec}: a value is repeated")
    if name in _POSITIVE and np.any(values <= 0):
        raise ValueError(f"--param {spec}: {name} must be positive")
    if name in _NONNEGATIVE and np.any(values < 0):
        raise ValueError(f"--param {spec}: {name} must be >= 0")
    return name, values


# ---------------------------------------------------------------------------------------
# command-line options
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """The sweep's own options (besides those of :class:`~hkjax.config.Config`)."""

    param: Annotated[tuple[str, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="NAME=VALUES", help=(
        "a grid axis, repeatable; grammar and names in the description above (default: "
        + " ".join("--param " + d for d in DEFAULT_PARAMS) + ")"))] = ()
    metric: Annotated[str, tyro.conf.arg(metavar="NAME[,NAME]", help=(
        f"metric(s) to plot, one sweep_<metric>.png each: {', '.join(METRICS)}"))] = "energy"
    images: int = 4
    """test images relaxed per grid point"""
    plot: Annotated[str, tyro.conf.arg(metavar="X[,Y]")] = ""
    """axes of the figure (default: the first two swept parameters other than seed)"""
    chunk_size: int = 0
    """evaluate at most N grid points at once (memory bound; 0: all)"""
    distributed: bool = False
    """call jax.distributed.initialize() first; run the same command on every host (SLURM, Open MPI, ... are detected, or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID): the grid is sharded over the devices of all hosts and process 0 writes the files"""


def check_options(options: SweepOptions) -> dict:
    """The sweep's options checked and parsed: ``axes`` (name -> values), ``metric`` and
    ``plot`` as lists, ``images``, ``chunk_size``, ``distributed``.

    Raises:
        ValueError: a bad value, naming the option.
    """
    opts = dataclasses.asdict(options)
    for name, lo in (("images", 1), ("chunk_size", 0)):
        if opts[name] < lo:
            raise ValueError(f"--{name.replace('_', '-')} {opts[name]!r}: expected an integer >= {lo}")
    metrics = [m.strip() for m in str(opts["metric"]).split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if not metrics or bad:
        raise ValueError(f"--metric {opts['metric']!r}: choose from {', '.join(METRICS)}")
    opts["metric"] = metrics
    axes = {}
    for spec in opts["param"] or DEFAULT_PARAMS:
        name, values = parse_param(spec)
        if name in axes:
            raise ValueError(f"--param {spec}: {name} is given twice")
        axes[name] = values
    opts["axes"] = axes
    plot = [a.strip().replace("-", "_") for a in str(opts["plot"]).split(",") if a.strip()]
    if len(plot) > 2 or any(a not in axes for a in plot):
        raise ValueError(f"--plot {opts['plot']!r}: name one or two swept parameters ({', '.join(axes)})")
    opts["plot"] = plot
    return opts


# ---------------------------------------------------------------------------------------
# the computation
# ---------------------------------------------------------------------------------------


def _find(tree, cls):
    import jax

    return [s for s in jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, cls)) if isinstance(s, cls)]


def omega_pattern(n: int, dim: int, seed: int):
    """The fixed random antisymmetric ``(n, dim, dim)`` matrices ``A_i`` of the ``omega`` parameter
    (upper triangle ``N(0, 1)``), drawn from ``seed``."""
    import jax
    import jax.numpy as jnp

    g = jnp.triu(jax.random.normal(jax.random.fold_in(jax.random.key(seed), 3), (n, dim, dim)), k=1)
    return g - jnp.swapaxes(g, -1, -2)


def set_params(net, *, coupling=None, coupling_scale=None, kappa_h=None, kappa_k=None, omega=None, pattern=None):
    """``net`` with the continuous sweep parameters applied (each ``None`` leaves it as is).

    ``kappa_h`` sets the threshold units' ``κ_H`` and ``τ`` and every Hopfield synapse's
    ``κ``; ``kappa_k`` the oscillators' ``τ`` and every Kuramoto synapse's ``κ`` (as
    :func:`hkjax.hopfield_kuramoto` does); ``coupling`` sets the coupling weights (every
    edge) or the multiplicative strength ``α``; ``coupling_scale`` multiplies them;
    ``omega`` adds ``omega · pattern`` to the natural frequencies.
    """
    import equinox as eqx
    import jax.numpy as jnp

    from .network import OSCILLATORS, THRESHOLD
    from .synapses import Coupling, Hopfield, Kuramoto, MultiplicativeCoupling

    def couplings(m):
        return ([s.weights for s in _find(m, Coupling)]
                + [s.strength for s in _find(m, MultiplicativeCoupling)])

    if kappa_h is not None:
        net = eqx.tree_at(lambda m: [m.layers[THRESHOLD].kappa, m.layers[THRESHOLD].tau] + [s.kappa for s in _find(m, Hopfield)],
                          net, replace_fn=lambda _: kappa_h)
    if kappa_k is not None:
        net = eqx.tree_at(lambda m: [m.layers[OSCILLATORS].tau] + [s.kappa for s in _find(m, Kuramoto)],
                          net, replace_fn=lambda _: kappa_k)
    if coupling is not None:
        net = eqx.tree_at(couplings, net, replace_fn=lambda w: jnp.full_like(w, coupling))
    if coupling_scale is not None:
        net = eqx.tree_at(couplings, net, replace_fn=lambda w: w * coupling_scale)
    if omega is not None:
        old = net.layers[OSCILLATORS].omega
        new = omega * pattern
        if old is not None:
            new = new + (old[None] if old.ndim == 2 else old)
        net = eqx.tree_at(lambda m: m.layers[OSCILLATORS].omega, net, new, is_leaf=lambda x: x is None)
    return net


def _check_applicable(net, names) -> None:
    from .network import OSCILLATORS, THRESHOLD
    from .synapses import Coupling, MultiplicativeCoupling

    has_coupling = bool(_find(net, Coupling) or _find(net, MultiplicativeCoupling))
    needs = {"kappa_h": (THRESHOLD in net.layers, "threshold units"),
             "kappa_k": (OSCILLATORS in net.layers, "oscillators"),
             "omega": (OSCILLATORS in net.layers, "oscillators"),
             "coupling": (has_coupling, "a Hopfield-Kuramoto coupling"),
             "coupling_scale": (has_coupling, "a Hopfield-Kuramoto coupling")}
    for name in names:
        ok, what = needs.get(name, (True, ""))
        if not ok:
            raise ValueError(f"--param {name}: the network has no {what} (use --model hopfield_kuramoto)")


def make_evaluate(variants, *, has_oscillators: bool):
    """``evaluate(shared, *, variant, **continuous) -> {metric: scalar}`` for
    :func:`hkjax.sweep.run`: ``shared[variant] = (network, examples, pattern)``,
    ``variants[variant]`` the task. Image ``i`` starts from ``task.init_state(example_i,
    split(fold_in(key(seed), i))[1])``."""
    import jax
    import jax.numpy as jnp

    from .network import OSCILLATORS, THRESHOLD
    from .tasks import PIXELS

    def evaluate(shared, *, variant, seed, noise=None, **params):
        task = variants[variant]
        net, examples, pattern = shared[variant]
        net = set_params(net, pattern=pattern, **params)
        p = task.n_pixels

        def one(example, i):
            kn, ks = jax.random.split(jax.random.fold_in(jax.random.key(seed), i))
            clean = example["images"]
            if noise is not None:
                noisy = jnp.clip(clean + noise * jax.random.normal(kn, clean.shape, clean.dtype), 0.0, 1.0)
                example = {**example, "images": noisy}
            sol = task.relax_config(net, task.init_state(example, ks))
            st = sol.state
            y = task.scores(net, st)
            out = {"energy": sol.energy[-1], "accuracy": (jnp.argmax(y) == task.target(example)).astype(jnp.float32),
                   "prediction": jnp.argmax(y), "steps": sol.stats["num_steps"], "result": sol.stats["result"]}
            if PIXELS in st:
                q = 2.0 * st[PIXELS] - 1.0
            elif THRESHOLD in st:
                q = 2.0 * st[THRESHOLD][:p] - 1.0
            else:
                q = st[OSCILLATORS][:p] @ st[OSCILLATORS][task.ref_index]
            q0 = 2.0 * clean - 1.0
            out["overlap"] = jnp.dot(q, q0) / (jnp.linalg.norm(q) * jnp.linalg.norm(q0) + 1e-12)
            if has_oscillators:
                out["order"] = jnp.linalg.norm(jnp.mean(st[OSCILLATORS], axis=0))
            return out

        n = examples["images"].shape[0]
        res = jax.vmap(one)(examples, jnp.arange(n))
        return {
            "energy": jnp.mean(res["energy"]),
            **({"order": jnp.mean(res["order"])} if has_oscillators else {}),
            "overlap": jnp.mean(res["overlap"]),
            "accuracy": jnp.mean(res["accuracy"]),
            "prediction": res["prediction"][0],
            "steps": jnp.mean(res["steps"].astype(jnp.float32)),
            "result": jnp.max(res["result"]),
        }

    return evaluate


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _prepare_out(out: pathlib.Path) -> pathlib.Path:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hkjax-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"--out {str(out)!r} is not a writable directory ({e.strerror or type(e).__name__})") from None
    return out


def _build_variants(cfg, axes: dict, images: int):
    """The effective config and, per static combination, ``(combo, task, network, examples)``: the
    evaluation examples of the first ``images`` test images."""
    import dataclasses

    import jax

    from . import runs
    from .config import from_dict

    static = {k: v for k, v in axes.items() if k in STATIC}
    if cfg.task == "retrieve":
        raise ValueError("hkjax sweep: --task retrieve is not swept here; use classify, addition or edit")
    run = None
    if cfg.training.from_run:
        bad = [k for k in static if k not in _RELAX_STATIC]
        if bad:
            raise ValueError(f"--param {bad[0]}: with --from the network is the trained run's; "
                             f"only {', '.join(_RELAX_STATIC)} can be swept as static parameters")
        rcfg, rtask, rnet = runs.load_run(pathlib.Path(cfg.training.from_run))
        cfg = rcfg.replace(out=cfg.out, progress=cfg.progress, from_run=cfg.training.from_run)
        run = (rtask, rnet)
    combos = [dict(zip(static, (v.item() for v in c))) for c in itertools.product(*static.values())] or [{}]
    tr, te = runs.load_data(cfg)
    variants = []
    for combo in combos:
        c = from_dict(combo, cfg)  # validates (e.g. dim >= 2)
        if run is not None:
            task = dataclasses.replace(run[0], relax_config=runs.relax_config(c))
            net = run[1]
        else:
            if c.task == "edit":
                c = c.replace(model="hopfield_kuramoto")
                task = runs.build_task(c, tr, kind="edit", model="hopfield_kuramoto")
            else:
                task = runs.build_task(c, tr)
            net = runs.build_network(c, task, jax.random.key(c.seed))
        ex = task.eval_batch(runs.arrays(te, images), runs._eval_key(c))
        variants.append((combo, task, net, ex))
    return cfg, variants


def run_command(cfg, opts: dict) -> dict:
    """``hkjax sweep``: build, run, write the table and the figures; returns the summary."""
    import jax
    import numpy as np

    from . import runs, sweep
    from .config import from_dict
    from .network import OSCILLATORS

    t0 = time.time()
    if opts.get("distributed"):
        runs.initialize_distributed()
    lead = jax.process_index() == 0  # the one process that writes (all of them compute)
    axes = opts["axes"]
    for k, values in axes.items():  # fail fast on a bad static value (e.g. dim=1)
        if k in STATIC:
            for v in values:
                from_dict({k: v.item()}, cfg)
    m = opts["images"]
    cfg, variants = _build_variants(cfg, axes, m)
    cont = {k: v for k, v in axes.items() if k in CONTINUOUS}
    static_names = [k for k in axes if k in STATIC]
    has_osc = all(OSCILLATORS in v[2].layers for v in variants)
    for _, _, net, _ in variants:
        _check_applicable(net, cont)
    if "order" in opts["metric"] and not has_osc:
        raise ValueError("--metric order: the network has no oscillators")
    out = _prepare_out(pathlib.Path(cfg.out)) if lead else pathlib.Path(cfg.out)
    if "seed" not in cont:
        cont_run = {**cont, "seed": np.asarray([cfg.seed])}
    else:
        cont_run = cont
    params = sweep.grid(**cont_run)
    shared = tuple(
        (net, ex, omega_pattern(task.n, task.dim, cfg.seed) if "omega" in cont else None)
        for _, task, net, ex in variants
    )
    evaluate = make_evaluate([v[1] for v in variants], has_oscillators=has_osc)
    n_rows = len(next(iter(params.values()))) * len(variants)
    hosts = f" of {jax.process_count()} processes" if jax.process_count() > 1 else ""
    if lead:
        _log(f"hkjax: sweep of {n_rows} grid points ({len(variants)} compiled variant(s)) x {m} test image(s) "
             f"on {len(jax.devices())} device(s){hosts}")
    table = sweep.run(evaluate, params, static={"variant": list(range(len(variants)))}, args=shared,
                      chunk_size=opts["chunk_size"] or None, progress=cfg.progress and lead)
    idx = table.pop("variant")
    rows = {}
    for k in axes:
        rows[k] = table[k] if k in cont else np.asarray([variants[i][0][k] for i in idx])
    metrics = [k for k in METRICS if k in table]
    rows.update({k: table[k] for k in metrics})
    if not lead:
        return {"rows": rows}
    sweep.to_csv(rows, out / "sweep.csv")
    keys = list(rows)
    records = [dict(zip(keys, r)) for r in zip(*(np.asarray(rows[k]).tolist() for k in keys))]
    figures = _figures(rows, axes, opts, out)
    summary = {
        "config": cfg.to_dict(), "grid": {k: np.asarray(v).tolist() for k, v in axes.items()},
        "continuous": list(cont), "static": static_names, "images": m, "metrics": METRICS,
        "devices": [str(d) for d in jax.devices()], "processes": jax.process_count(), "figures": figures,
        "wall_seconds": round(time.time() - t0, 2), "rows": records,
    }
    from ._io import atomic_open

    with atomic_open(out / "sweep.json", "w") as f:
        f.write(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    _log(f"hkjax: sweep of {len(records)} grid points in {summary['wall_seconds']:.1f} s -> {out}/sweep.csv, "
         f"sweep.json, {', '.join(pathlib.Path(p).name for p in figures)}")
    return summary


# ---------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------


def _line(table, x: str, value: str, path, others=()):
    """``value`` against ``x``: the mean (± std) over the rows with the same ``x``."""
    import numpy as np

    from . import plotting

    xs, vs = np.asarray(table[x], float), np.asarray(table[value], float)
    ux = np.unique(xs)
    mean = np.array([np.nanmean(np.where(np.isfinite(vs[xs == u]), vs[xs == u], np.nan)) for u in ux])
    std = np.array([np.nanstd(np.where(np.isfinite(vs[xs == u]), vs[xs == u], np.nan)) for u in ux])
    fig = plotting._new_figure(5.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(ux, mean, "o-", label="mean" + (f" over {', '.join(others)}" if others else ""))
    if np.any(std > 0):
        ax.fill_between(ux, mean - std, mean + std, alpha=0.25, label="± std")
    if others:
        ax.legend(fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(value)
    ax.set_title(f"{value} over {x}")
    return plotting._finish(fig, path)


def _figures(rows, axes, opts, out) -> list[str]:
    import warnings

    try:
        from . import plotting
    except Exception as e:  # noqa: BLE001 - plotting (matplotlib) is optional
        _log(f"hkjax: figures skipped (hkjax.plotting unavailable: {type(e).__name__})")
        return []
    swept = [k for k, v in axes.items() if len(v) > 1]
    plot = opts["plot"] or [k for k in swept if k != "seed"][:2] or swept[:1] or list(axes)[:1]
    written = []
    for metric in opts["metric"]:
        if metric not in rows:
            continue
        path = out / f"sweep_{metric}.png"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells
            if len(plot) == 2:
                written.append(str(plotting.sweep_heatmap(rows, plot[0], plot[1], metric, path)))
            else:
                others = [k for k in swept if k != plot[0]]
                written.append(str(_line(rows, plot[0], metric, path, others)))
    return written

"""The ``hkjax`` command: ``train``, ``edit``, ``eval``, ``retrieve``, ``plot``, ``sweep``.

Each subcommand takes the options of :class:`hkjax.config.Config` that it uses
(:func:`hkjax.config.command_options`), from a TOML file (``--config file.toml``) and/or
flags (flags win); ``--resume`` starts from the run's own ``config.toml``. A run writes into one directory
(``--out``): ``config.toml``, ``metrics.jsonl``, ``checkpoints/``, ``summary.json`` and PNG
figures. ``hkjax`` (or ``python -m hkjax``) with no arguments runs a short demo.

Errors in the arguments, missing files and unreadable checkpoints print one line on stderr
and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shlex
import sys
import time

from ._io import atomic_open
from . import runs
from .config import COMMAND_DEFAULTS, PRESETS, Config, command_options, from_dict, read_table, to_toml

__all__ = ["main", "build_parser"]

COMMANDS = {
    "train": "train a classifier (--task classify) or the addition task (--task addition)",
    "edit": "edit the memories of a frozen Hopfield classifier with oscillators",
    "eval": "evaluate a trained run (--run DIR) on the test split",
    "retrieve": "pattern retrieval of Hebbian memories vs load P/N (Hopfield, Hopfield-Kuramoto)",
    "plot": "redraw the figures of a run (--run DIR)",
    "sweep": "relax a network over a grid of hyperparameters (vmapped, sharded over devices): CSV/JSON + heatmap",
}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UsageError(f"{self.prog}: {message} (see --help)")


def _add_config_flags(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="TOML file with any of the options below (flags override it)")
    if command in ("train", "edit", "sweep"):
        p.add_argument("--preset", choices=tuple(PRESETS), default=argparse.SUPPRESS,
                       help="start from a named configuration instead of the defaults ('paper': the paper's MNIST "
                            "configuration: " + ", ".join(f"{k} {v}" for k, v in PRESETS["paper"].items())
                            + "); --config and flags override it; config.toml records the values")
    if command in ("train", "edit"):
        p.add_argument("--distributed", action="store_true", default=argparse.SUPPRESS,
                       help="call jax.distributed.initialize() first and train data-parallel over the devices of "
                            "every host: run the same command on every host (SLURM, Open MPI, ... are detected, or "
                            "set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID); process 0 writes "
                            "the files (default: off; the devices of this host are used either way)")
    options = command_options(command)
    for f in dataclasses.fields(Config):
        if f.name not in options:
            continue
        flag = "--" + f.name.replace("_", "-")
        names = [flag] + (["--from"] if f.name == "from_run" else [])
        default = f.default
        default = COMMAND_DEFAULTS.get(command, {}).get(f.name, default)
        help_ = f"{f.metadata['help']} (default: {default!r})"
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=help_)
        if isinstance(default, bool):
            p.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
        elif f.metadata.get("choices"):
            p.add_argument(*names, choices=f.metadata["choices"], metavar="{" + ",".join(f.metadata["choices"]) + "}", **kw)
        else:
            p.add_argument(*names, metavar=f.name.upper(), **kw)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: each subcommand takes the options of :class:`Config` that it uses
    (:func:`hkjax.config.command_options`)."""
    parser = _Parser(
        prog="hkjax",
        description=(
            "Associative memories binding Hopfield threshold units with Kuramoto oscillators "
            "(arXiv 2505.03648). With no arguments: a short demo on the embedded digits."
        ),
        epilog=(
            "Compiled programs are kept in JAX's persistent compilation cache (default "
            "~/.cache/hkjax/xla; HKJAX_COMPILE_CACHE=DIR moves it, HKJAX_COMPILE_CACHE=0 turns it "
            "off), so a second run of the same configuration skips most of its compilation."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        _add_config_flags(p, name)
        if name == "sweep":
            from . import _sweep_cli

            _sweep_cli.add_arguments(p)
    _add_report_parser(sub)
    return parser


REPORT_HELP = "collect runs' summary.json files into a results table (Markdown + JSON)"


def _add_report_parser(sub) -> None:
    p = sub.add_parser("report", help=REPORT_HELP, description=(
        f"{REPORT_HELP}. Runs whose commands differ only by --seed and --out become one row. "
        "Nothing in the table is typed by hand: every figure is a field of a run's summary.json."))
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories (or their summary.json), or a report .json written by an earlier "
                        "`hkjax report` (its runs are re-read as saved)")
    p.add_argument("--out", metavar="FILE.md", default=None,
                   help="write the table here and everything it was made from beside it (FILE.json)")
    p.add_argument("--title", default=None, help="a heading for the --out file")
    p.add_argument("--readme", metavar="FILE", action="append", default=[],
                   help="also replace the generated block of this Markdown file (between hkjax report's "
                        "begin/end markers) by the table; may be given more than once")


def _report(ns: argparse.Namespace) -> None:
    from . import report

    summaries = report.collect(ns.runs)
    table = report.markdown(report.rows(summaries))
    if ns.out:
        md, js = report.write(summaries, ns.out, title=ns.title)
        _log(f"hkjax: report: {len(summaries)} runs -> {md}, {js}")
    for path in ns.readme:
        changed = report.update_block(path, table)
        _log(f"hkjax: report: {path} {'updated' if changed else 'unchanged'}")
    if not ns.out and not ns.readme:
        print(table, end="")


#: The validation split of a dataset other than the digits when ``--val`` is not given: the
#: last this many of the training images (5 000 of Fashion-MNIST's and MNIST's 60 000) ...
VAL_DEFAULT = 5000
#: ... or, with ``--max-train N``, the last ``N // VAL_FRACTION`` of the N.
VAL_FRACTION = 12


def _config_from_args(ns: argparse.Namespace) -> Config:
    d = {k: v for k, v in vars(ns).items() if k not in ("command", "config", "preset", "distributed")}
    preset = PRESETS.get(getattr(ns, "preset", None), {})
    base = Config(**{**COMMAND_DEFAULTS.get(ns.command, {}), **preset})
    given = set(d) | set(preset)
    if getattr(ns, "config", None):
        table = read_table(ns.config)
        given |= set(table)
        base = from_dict(table, base)
    elif d.get("resume"):
        # a resumed run starts from its own settings: only what the flags change is compared
        table = _read_toml(pathlib.Path(d.get("out", base.out)) / "config.toml")
        if table:
            given |= set(table)
            base = from_dict(table, base)
    cfg = from_dict(d, base)
    if "val" not in given and cfg.dataset != "digits":
        # the large datasets hold out a validation split unless told otherwise
        cfg = cfg.replace(val=cfg.max_train // VAL_FRACTION if cfg.max_train else VAL_DEFAULT)
    return cfg


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _lead() -> bool:
    """Whether this process writes the run's files: always, but in a run over several hosts
    (``--distributed``) only process 0 does (all of them compute)."""
    import jax

    return jax.process_index() == 0


def _write_text(path: pathlib.Path, text: str) -> None:
    if not _lead():
        return
    with atomic_open(path, "w") as f:
        f.write(text)


def _write_json(path: pathlib.Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


#: Options a resumed run may change: what is shown, logged, saved or evaluated, and the total
#: number of steps (training continues up to the new total, as :func:`hkjax.train.fit` does;
#: the learning-rate schedule is then the new total's). ``out`` names the run itself;
#: ``from_run`` is compared as a path.
RESUME_MAY_CHANGE = frozenset({"resume", "overwrite", "progress", "log_every", "eval_every", "checkpoint_every",
                               "tta", "max_test", "run", "out", "from_run", "steps", "edit_steps"})


def _holds_run(out: pathlib.Path) -> bool:
    """Whether ``out`` holds (part of) a run: a config.toml or a checkpoint."""
    from . import checkpoint

    return (out / "config.toml").is_file() or checkpoint.latest(out / "checkpoints") is not None


def _claim_out(cfg: Config) -> dict | None:
    """Check, before anything is written, that ``cfg`` may write into its ``--out``.

    A directory that already holds a run is only written into with ``--resume`` (then the
    run's saved config.toml table is returned, for :func:`_check_resumable`) or
    ``--overwrite`` (the old run is deleted only when the new one writes its config, by
    :func:`_write_config`: a command that fails before that, on a bad ``--from`` or missing
    data, leaves it as it was). Returns ``None`` when there is no run to resume.

    Raises:
        ValueError: ``--out`` is a file, holds a run and neither flag is given, or both are.
    """
    out = pathlib.Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    if cfg.resume and cfg.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
    if not _holds_run(out):
        return None
    if cfg.resume:
        table = _read_toml(out / "config.toml")
        return {} if table is None else table
    if not cfg.overwrite:
        raise ValueError(f"--out {str(out)!r} already holds a run; pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --out (nothing was changed)")
    return None


def _check_resumable(cfg: Config, saved: dict | None) -> None:
    """Refuse a ``--resume`` whose settings differ from the run's own (``saved``, its
    config.toml table) in anything but :data:`RESUME_MAY_CHANGE`: the checkpoint could not be
    continued exactly, or not loaded at all. Nothing has been written when this raises."""
    if not saved:
        return
    try:
        old = from_dict(saved)
    except ValueError as e:
        raise ValueError(f"--resume: {str(pathlib.Path(cfg.out) / 'config.toml')!r} is unreadable ({e})") from None
    diff = [f.name for f in dataclasses.fields(Config)
            if f.name in saved and f.name not in RESUME_MAY_CHANGE and getattr(old, f.name) != getattr(cfg, f.name)]
    if old.from_run != cfg.from_run and pathlib.Path(old.from_run).resolve() != pathlib.Path(cfg.from_run).resolve():
        diff.append("from_run")
    if diff:
        was = ", ".join(f"{k}={getattr(old, k)!r}" for k in diff)
        now = ", ".join(f"{k}={getattr(cfg, k)!r}" for k in diff)
        raise ValueError(f"--resume: the run in {cfg.out!r} has {was}, this command asks for {now}; resume it with "
                         f"its own settings (--config {str(pathlib.Path(cfg.out) / 'config.toml')!r} --resume) "
                         "or choose another --out (nothing was changed)")


def _write_config(cfg: Config) -> pathlib.Path:
    """Create ``--out`` and write ``cfg`` into its config.toml (after :func:`_claim_out` and
    every check of the command's arguments). With ``--overwrite`` the run already there is
    deleted first (its config, checkpoints, metrics and summary), so that no stale checkpoint
    of it survives to be taken for the newest."""
    import shutil

    import jax

    out = pathlib.Path(cfg.out)
    if jax.process_count() > 1:  # every process has checked --out before process 0 writes into it
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("hkjax: --out checked")
    if not _lead():
        return out
    if cfg.overwrite and _holds_run(out):
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        for name in ("config.toml", "metrics.jsonl", "summary.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "config.toml", to_toml(cfg))
    return out


def _check_batch_size(cfg: Config) -> None:
    """Refuse, before anything is written, a ``--batch-size`` that the devices the run is split
    over (data parallel, every device JAX sees) do not divide."""
    import jax

    n = jax.device_count()
    if n > 1 and cfg.batch_size % n:
        raise ValueError(f"--batch-size {cfg.batch_size}: each batch is split over the {n} devices JAX sees, so it "
                         f"must be a multiple of {n}; use --batch-size {-(-cfg.batch_size // n) * n}, or show JAX "
                         "fewer devices (e.g. CUDA_VISIBLE_DEVICES=0) (nothing was changed)")


def _shared_steps(cfg: Config) -> bool:
    """Whether a run's training batches are solved as one system with shared steps: by default
    (``shared_steps = true``), and always with constant solver steps (the same computation as
    per-example solves there); never with ``--microbatch``, which splits the batch into
    per-example solves."""
    return not cfg.microbatch and (cfg.shared_steps or cfg.solver_steps > 0)


def _fit(cfg, task, net, train_arrays, test_arrays, out, *, steps, lr, val_arrays=None, resume=None, seed_offset=0):
    import jax

    from . import train

    trainable = runs.trainable(cfg, net)
    if jax.device_count() > 1:
        dev = jax.devices()[0]
        _log(f"hkjax: training data-parallel on {jax.device_count()} devices ({dev.platform}: {dev.device_kind}, "
             f"{jax.process_count()} process{'es' if jax.process_count() > 1 else ''}), "
             f"{cfg.batch_size // jax.device_count()} examples per device")
    # with a validation split, evaluations during training use it alone: the test split is
    # evaluated once, at the end (by the caller)
    eval_data = test_arrays if val_arrays is None else {"val": val_arrays}
    return train.fit(
        net, task, train_arrays, optimizer=runs.optimizer(cfg, steps, lr), steps=steps,
        batch_size=cfg.batch_size, microbatch=cfg.microbatch or None, shared_steps=_shared_steps(cfg), trainable=trainable, key=jax.random.key(cfg.seed + 1 + seed_offset), ema=cfg.ema,
        eval_data=eval_data, eval_every=cfg.eval_every, log_every=cfg.log_every,
        checkpoint_dir=out / "checkpoints", checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume if resume is None else resume, metrics_path=out / "metrics.jsonl",
        config=cfg.to_dict(), progress=cfg.progress,
    )


def _figures(out: pathlib.Path, cfg: Config, net, task, test_arrays, ev) -> list[str]:
    """PNG figures of a run; skipped (with a note) if :mod:`hkjax.plotting` is unavailable."""
    if not _lead():
        return []
    try:
        from . import plotting
    except Exception as e:  # noqa: BLE001 - plotting is optional
        _log(f"hkjax: figures skipped (hkjax.plotting unavailable: {type(e).__name__})")
        return []
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .network import OSCILLATORS

    written = []

    def attempt(name, fn, *args):
        try:
            written.append(str(fn(*args)))
        except Exception as e:  # noqa: BLE001 - a figure must not sink a finished run
            _log(f"hkjax: figure {name} skipped ({type(e).__name__}: {e})")

    rows = []
    mpath = out / "metrics.jsonl"
    if mpath.exists():
        rows = [json.loads(line) for line in mpath.read_text().splitlines() if line.strip()]
    if rows:
        # train rows -> loss / accuracy; test rows -> test_loss / ...; validation -> val_loss / ...
        prefix = {"train": "", "eval": "test_", "val": "val_"}
        rows = [
            {"step": r["step"], f"{p}loss": r["loss"], f"{p}accuracy": r["accuracy"]}
            for r in rows
            if "loss" in r and "accuracy" in r and (p := prefix.get(r.get("split", "train"))) is not None
        ]
        attempt("learning_curves", lambda r, p: plotting.learning_curves(
            r, p, keys=(("loss", "val_loss", "test_loss"), ("accuracy", "val_accuracy", "test_accuracy"))),
            rows, out / "learning_curves.png")
    preview = _augmentation_preview(task, test_arrays, cfg.seed)
    if preview is not None:
        images, titles = preview
        attempt("augmentation", lambda a, p: plotting.images_grid(a, task._image_shape(), p, titles=titles, ncols=8),
                images, out / "augmentation.png")
    if ev is not None:
        attempt("confusion_matrix", plotting.confusion_matrix, np.asarray(ev["targets"]),
                np.asarray(ev["predictions"]), int(task.n_classes), out / "confusion_matrix.png")
    # one test example relaxed with a dense time grid
    example = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[0], task.eval_batch(test_arrays, jax.random.key(0)))
    try:
        state0 = task.init_state(example, jax.random.key(cfg.seed))
        ts = jnp.linspace(0.0, cfg.t1, 41)
        sol = task.relax_config(net, state0, saveat=ts)
        attempt("energy", plotting.energy_trace, np.asarray(sol.ts), np.asarray(sol.energy), out / "energy.png")
        if OSCILLATORS in sol.states:
            attempt("order_parameter", plotting.order_parameter, np.asarray(sol.ts), np.asarray(sol.states[OSCILLATORS]),
                    out / "order_parameter.png")
            attempt("gram", plotting.gram_heatmap, np.asarray(sol.state[OSCILLATORS]), out / "gram.png")
    except Exception as e:  # noqa: BLE001
        _log(f"hkjax: relaxation figures skipped ({type(e).__name__}: {e})")
    return written


def _augmentation_preview(task, arrays: dict, seed: int, n: int = 8, rounds: int = 3):
    """``(images, titles)`` of the ``augmentation.png`` figure of a run: the first ``n``
    images of ``arrays`` and ``rounds`` draws of the task's training augmentation of them
    (keys folded from ``seed``), stacked ``((rounds + 1)·n, P)``, one row of ``n`` per draw
    and a title on each row's first image; ``None`` when the task does not augment
    (``task.augment`` hands the images back unchanged)."""
    import jax
    import jax.numpy as jnp

    imgs = jnp.asarray(arrays["images"][:n])
    key = jax.random.key(seed)
    draws = [task.augment(imgs, jax.random.fold_in(key, r)) for r in range(rounds)]
    if draws[0] is imgs:
        return None
    titles = [("original" if r == 0 else f"draw {r}") if c == 0 else "" for r in range(rounds + 1) for c in range(len(imgs))]
    return jnp.concatenate([imgs, *draws]), titles


def _summary_common(cfg, res):
    return {
        "task": cfg.task, "model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed,
        "steps": res.step, "train_seconds": round(res.wall_time, 2),
    }


def _provenance(command: str | None) -> dict:
    """What reproduces a run and where it ran: the command line, hkjax's and JAX's versions, the
    device and the host's core count (read by ``hkjax report``)."""
    import jax

    from . import __version__

    dev = jax.devices()[0]
    out = {"command": command} if command else {}
    try:  # how busy the host was: a wall time measured while other work ran is an upper bound
        out["load_average"], out["cores"] = round(os.getloadavg()[1], 2), os.cpu_count()  # over 5 minutes
    except OSError:
        pass
    try:
        import resource  # Unix

        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    except ImportError:
        pass
    return {**out, "hkjax_version": __version__, "jax_version": jax.__version__,
            "device": f"{dev.platform}: {dev.device_kind} x{jax.device_count()}, {os.cpu_count()} cores"}


def _last_train_accuracy(history):
    rows = [r for r in history if r.get("split") == "train"]
    return rows[-1]["accuracy"] if rows else None


# ---------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------


def _train(cfg: Config, *, figures: bool = True, command: str | None = None) -> dict:
    import jax

    from . import tasks, train

    if cfg.task not in ("classify", "addition"):
        raise ValueError(f"hkjax train: --task {cfg.task} is not trained here; use `hkjax edit` / `hkjax retrieve`")
    t0 = time.time()
    if cfg.from_run and cfg.model in ("kuramoto", "hierarchical"):
        raise ValueError(f"--from starts the threshold units from a Hopfield classifier; the {cfg.model} model cannot "
                         "take its weights (use --model hopfield or hopfield_kuramoto)")
    if cfg.freeze_hopfield and cfg.model not in tasks.EDIT_MODELS:
        raise ValueError(f"--freeze-hopfield keeps the Hopfield weights and trains the coupling (or low-rank synapse) "
                         f"around them; the {cfg.model} model has neither (use --model hopfield_kuramoto or "
                         "hopfield_lora)")
    saved = _claim_out(cfg)
    start = {}
    if cfg.from_run:
        # a warm start: the Hopfield weights and bias of a trained classifier, trained further
        cfg, _, classifier = _classifier_from(cfg)
        w, b = tasks.hopfield_parameters(classifier)
        start = {"hopfield_weights": w, "hopfield_bias": b}
    tr, te = runs.load_data(cfg)
    train_arrays, val_arrays, test_arrays = runs.splits(cfg, tr, te)
    task = runs.build_task(cfg, tr)
    if start and start["hopfield_bias"].shape[0] != task.n:
        raise ValueError(f"--from {cfg.from_run}: its classifier has {start['hopfield_bias'].shape[0]} units, this "
                         f"task needs {task.n} (a classifier of the same dataset is needed)")
    _check_resumable(cfg, saved)
    _check_batch_size(cfg)
    out = _write_config(cfg)
    net = runs.build_network(cfg, task, jax.random.key(cfg.seed), **start)
    res = _fit(cfg, task, net, train_arrays, test_arrays, out, steps=cfg.steps, lr=cfg.lr, val_arrays=val_arrays)
    ev = train.evaluate(res.model, task, test_arrays, key=jax.random.key(10_000 + cfg.seed))
    summary = {
        **_summary_common(cfg, res), "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
        "train_accuracy_last": _last_train_accuracy(res.history), "n_test": int(len(ev["targets"])),
        **_validation(res.model, task, val_arrays, cfg.seed),
    }
    note = f", validation {summary['val_accuracy']:.4f}" if val_arrays is not None else ""
    if cfg.tta > 0:
        ev_tta = _evaluate_tta(cfg, res.model, task, test_arrays)
        summary["test_accuracy_tta"], summary["tta"] = ev_tta["accuracy"], cfg.tta
        note += f", with test-time augmentation (shifts <= {cfg.tta} px) {ev_tta['accuracy']:.4f}"
    if cfg.model == "hopfield_kuramoto":
        # what the oscillators contribute: the same network with its coupling switched off
        off = train.evaluate(tasks.uncouple(res.model), task, test_arrays, key=jax.random.key(10_000 + cfg.seed))
        summary["test_accuracy_uncoupled"] = off["accuracy"]
        note += f"; with the coupling switched off {off['accuracy']:.4f}"
    if figures:
        summary["figures"] = _figures(out, cfg, res.model, task, test_arrays, ev)
    summary.update(_provenance(command), wall_seconds=round(time.time() - t0, 2))
    _write_json(out / "summary.json", summary)
    _log(f"hkjax: {cfg.task} {cfg.model}: test accuracy {ev['accuracy']:.4f}{note} "
         f"({summary['wall_seconds']:.0f} s) -> {out}")
    return summary


def _validation(model, task, val_arrays, seed: int, *, cues: bool = False) -> dict:
    """``val_accuracy``, ``val_loss`` and ``n_val`` of the final model on the validation split
    (``{}`` without one), evaluated as the test split is; with ``cues`` (memory editing) also
    ``val_accuracy_cue0`` / ``val_accuracy_cue1``."""
    import jax

    from . import train

    if val_arrays is None:
        return {}
    ev = train.evaluate(model, task, val_arrays, key=jax.random.key(10_000 + seed))
    out = {"val_accuracy": ev["accuracy"], "val_loss": ev["loss"], "n_val": int(len(val_arrays["labels"]))}
    if cues:
        out["val_accuracy_cue0"], out["val_accuracy_cue1"] = _cue_accuracies(ev)
    return out


def _cue_accuracies(ev: dict) -> tuple[float, float]:
    """Accuracies under cue 0 and cue 1 of a memory-editing evaluation (``eval_batch`` puts
    every test image under cue 0 first, then under cue 1)."""
    import numpy as np

    ok = ev["predictions"] == ev["targets"]
    n = len(ok) // 2
    return float(np.mean(ok[:n])), float(np.mean(ok[n:]))


def _evaluate_tta(cfg: Config, model, task, test_arrays) -> dict:
    """Test-time augmentation: the accuracy of the class scores averaged over all shifts by up
    to ``cfg.tta`` pixels (reported next to the plain accuracy, never instead of it)."""
    import dataclasses as _dc

    import jax

    from . import train

    return train.evaluate(model, _dc.replace(task, tta=cfg.tta), test_arrays, key=jax.random.key(10_000 + cfg.seed))


def _read_toml(path: pathlib.Path) -> dict | None:
    """The table of a run's config.toml, or ``None`` if there is none to read."""
    try:
        return read_table(path)
    except (OSError, ValueError):
        return None


def _classifier_from(cfg: Config):
    """``(cfg, task, classifier)``: the Hopfield classifier of the run ``cfg.from_run``, and
    ``cfg`` with that classifier's size and relaxation (``n_hidden``, ``t1``, ``max_steps``,
    ``solver_steps``; a log line says which were changed).

    Raises:
        ValueError: the run is not a Hopfield classifier (task classify, model hopfield).
        FileNotFoundError: no such run directory, config or checkpoint.
    """
    ccfg, ctask, classifier = runs.load_run(pathlib.Path(cfg.from_run))
    if ccfg.task != "classify" or ccfg.model != "hopfield":
        raise ValueError(f"--from {cfg.from_run}: expected a Hopfield classifier run (task classify, model hopfield), "
                         f"found task {ccfg.task}, model {ccfg.model}")
    inherit = {k: getattr(ccfg, k) for k in ("n_hidden", "t1", "max_steps", "solver_steps")
               if getattr(ccfg, k) != getattr(cfg, k)}
    if inherit:
        _log(f"hkjax: using {', '.join(f'{k}={v}' for k, v in inherit.items())} of the classifier in {cfg.from_run}")
        cfg = cfg.replace(**inherit)
    return cfg, ctask, classifier


def _edit(cfg: Config, *, command: str | None = None) -> dict:
    import jax
    import numpy as np

    from . import tasks, train

    t0 = time.time()
    # oscillators learn the edit; with --model hopfield_lora a static low-rank synapse (the baseline)
    cfg = cfg.replace(task="edit", model=runs.edit_model(cfg))
    saved = _claim_out(cfg)
    tr, te = runs.load_data(cfg)
    train_arrays, val_arrays, test_arrays = runs.splits(cfg, tr, te)
    tasks.edit_map(cfg.edit, cfg.class_list(), int(tr.n_classes))  # fail fast on bad classes
    if cfg.from_run:
        cfg, ctask, classifier = _classifier_from(cfg)
    task = runs.build_task(cfg, tr, kind="edit", model=cfg.model)
    if val_arrays is not None:
        try:  # the validation split needs cue images too: fail now, not after training
            task.prepare(val_arrays)
        except ValueError as e:
            raise ValueError(f"--val {cfg.val}: {e} in the validation split; hold out more examples") from None
    _check_resumable(cfg, saved)
    _check_batch_size(cfg)
    out = _write_config(cfg)
    # 1. the Hopfield classifier (trained first, into OUT/classifier, when --from is not given)
    if not cfg.from_run:
        ccfg = cfg.replace(task="classify", model="hopfield", freeze_hopfield=False, out=str(out / "classifier"))
        _log("hkjax: edit: training the Hopfield classifier first (--from not given)")
        _train(ccfg, figures=False)
        _, ctask, classifier = runs.load_run(out / "classifier")
    before = train.evaluate(classifier, ctask, test_arrays, key=jax.random.key(10_000 + cfg.seed))
    w, b = tasks.hopfield_parameters(classifier)
    # 2. the Hopfield-Kuramoto network around the frozen classifier
    net = runs.build_network(cfg, task, jax.random.key(cfg.seed + 7), hopfield_weights=w,
                   hopfield_bias=b)
    res = _fit(cfg, task, net, train_arrays, test_arrays, out, steps=cfg.edit_steps, lr=cfg.edit_lr,
               val_arrays=val_arrays, seed_offset=100)
    w2, b2 = tasks.hopfield_parameters(res.model)
    frozen = bool(np.array_equal(np.asarray(w), np.asarray(w2)) and np.array_equal(np.asarray(b), np.asarray(b2)))
    ev = train.evaluate(res.model, task, test_arrays, key=jax.random.key(10_000 + cfg.seed))
    cue0, cue1 = _cue_accuracies(ev)
    summary = {
        **_summary_common(cfg, res), "edit": cfg.edit, "classes": cfg.class_list(), "associative": cfg.associative,
        "coupling": cfg.coupling, "accuracy_before_edit": before["accuracy"],
        "test_accuracy": ev["accuracy"], "test_accuracy_cue0": cue0,
        "test_accuracy_cue1": cue1, "hopfield_frozen": frozen,
        **_validation(res.model, task, val_arrays, cfg.seed, cues=True),
        "note": ("cue0: original labels under cue images of class 0; cue1: edited labels under cue images of class 1"
                 if cfg.associative else "non-associative: every test accuracy is on the edited labels"),
    }
    tta_note = ""
    if cfg.tta > 0:
        ev_tta = _evaluate_tta(cfg, res.model, task, test_arrays)
        cue0_tta, cue1_tta = _cue_accuracies(ev_tta)
        summary.update(tta=cfg.tta, test_accuracy_tta=ev_tta["accuracy"], test_accuracy_cue0_tta=cue0_tta,
                       test_accuracy_cue1_tta=cue1_tta)
        tta_note = (f" (test-time augmentation, shifts <= {cfg.tta} px: cue0 {summary['test_accuracy_cue0_tta']:.4f}, "
                    f"cue1 {summary['test_accuracy_cue1_tta']:.4f})")
    summary["figures"] = _figures(out, cfg, res.model, task, test_arrays, ev)
    summary.update(_provenance(command), wall_seconds=round(time.time() - t0, 2))
    _write_json(out / "summary.json", summary)
    _log(f"hkjax: edit {cfg.edit} {cfg.class_list()}: before {before['accuracy']:.4f}, cue0 "
         f"{summary['test_accuracy_cue0']:.4f}, cue1 {summary['test_accuracy_cue1']:.4f}{tta_note} -> {out}")
    return summary


def _eval(cfg: Config) -> dict:
    import jax

    from . import train

    run_dir = pathlib.Path(cfg.run or cfg.out)
    rcfg, task, model = runs.load_run(run_dir)
    _, te = runs.load_data(rcfg)
    ev = train.evaluate(model, task, runs.arrays(te, cfg.max_test), key=jax.random.key(10_000 + rcfg.seed))
    result = {"run": str(run_dir), "test_accuracy": ev["accuracy"], "test_loss": ev["loss"], "n_test": len(ev["targets"])}
    if rcfg.tta > 0:
        result["test_accuracy_tta"] = _evaluate_tta(rcfg, model, task, runs.arrays(te, cfg.max_test))["accuracy"]
    _write_json(run_dir / "eval.json", result)
    print(json.dumps(result))
    return result


def _plot(cfg: Config) -> dict:
    import jax

    from . import train

    run_dir = pathlib.Path(cfg.run or cfg.out)
    rcfg, task, model = runs.load_run(run_dir)
    _, te = runs.load_data(rcfg)
    test_arrays = runs.arrays(te, cfg.max_test or rcfg.max_test)
    ev = train.evaluate(model, task, test_arrays, key=jax.random.key(10_000 + rcfg.seed))
    files = _figures(run_dir, rcfg, model, task, test_arrays, ev)
    print(json.dumps({"figures": files}))
    return {"figures": files}


def _retrieve(cfg: Config, *, command: str | None = None) -> dict:
    import jax

    from . import tasks

    t0 = time.time()
    cfg = cfg.replace(task="retrieve")
    _claim_out(cfg.replace(resume=False))  # nothing to resume: an existing run needs --overwrite
    out = _write_config(cfg)
    rows = []
    for model in ("hopfield", "hopfield_kuramoto"):
        for i, load in enumerate(cfg.load_list()):
            p = max(1, round(load * cfg.n_units))
            r = tasks.retrieval(model, n=cfg.n_units, n_patterns=p, corruption=cfg.corruption, trials=cfg.trials,
                                dim=cfg.dim, key=jax.random.fold_in(jax.random.key(cfg.seed), i))
            rows.append({"model": model, "patterns": p, **r})
            _log(f"hkjax: retrieve {model} P/N={r['load']:.3f}: overlap {r['overlap']:.3f}, rate {r['retrieval_rate']:.2f}")
    _write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for model in ("hopfield", "hopfield_kuramoto"):
            rr = [r for r in rows if r["model"] == model]
            ax.plot([r["load"] for r in rr], [r["overlap"] for r in rr], "o-", label=f"{model} overlap")
            ax.plot([r["load"] for r in rr], [r["retrieval_rate"] for r in rr], "s--", label=f"{model} retrieved")
        ax.set_xlabel("load P/N")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "retrieval.png", dpi=120)
        plt.close(fig)
    except Exception as e:  # noqa: BLE001
        _log(f"hkjax: retrieval figure skipped ({type(e).__name__})")
    summary = {"task": "retrieve", "rows": rows, "n_units": cfg.n_units, "corruption": cfg.corruption,
               "seed": cfg.seed, **_provenance(command), "wall_seconds": round(time.time() - t0, 2)}
    _write_json(out / "summary.json", summary)
    return summary


def _demo() -> int:
    """``hkjax`` with no arguments: train a small Hopfield classifier on the digits."""
    # The demo's own directory: a re-run replaces the previous demo run.
    cfg = Config(task="classify", model="hopfield", out="runs/demo", steps=400, lr=1e-2, progress=True, overwrite=True)
    print("hkjax demo: training a Hopfield classifier (64 pixels + 100 hidden + 10 class units) on the "
          "embedded 8x8 digits for 400 steps (under a minute on 2 CPU cores)...", flush=True)
    s = _train(cfg, command="python -m hkjax")
    print(f"test accuracy {s['test_accuracy']:.3f} on {s['n_test']} held-out digits "
          f"({s['wall_seconds']:.0f} s); run files in {cfg.out}/. See `hkjax --help`.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hkjax`` command; returns the exit status."""
    from .checkpoint import CheckpointError
    from .data import IDXFormatError

    argv = sys.argv[1:] if argv is None else list(argv)
    from . import _xla

    _xla.enable_compile_cache()  # a second run of the same programs skips XLA's compilation
    try:
        if not argv:
            return _demo()
        parser = build_parser()
        try:
            ns = parser.parse_args(argv)
        except SystemExit as e:  # --help
            return int(e.code or 0)
        if ns.command is None:
            raise _UsageError("hkjax: choose a command: " + ", ".join([*COMMANDS, "report"]) + " (see --help)")
        if ns.command == "report":
            _report(ns)
            return 0
        sweep_opts = None
        if ns.command == "sweep":
            from . import _sweep_cli

            sweep_opts = _sweep_cli.pop_options(ns)
        if getattr(ns, "distributed", False):
            runs.initialize_distributed()
        cfg = _config_from_args(ns)
        command = shlex.join(["hkjax", *argv])
        if ns.command == "sweep":
            _sweep_cli.run_command(cfg, sweep_opts)
        elif ns.command == "train":
            _train(cfg, command=command)
        elif ns.command == "edit":
            _edit(cfg, command=command)
        elif ns.command == "eval":
            _eval(cfg)
        elif ns.command == "retrieve":
            _retrieve(cfg, command=command)
        else:
            _plot(cfg)
        return 0
    except _UsageError as e:
        _log(str(e))
        return 2
    except (CheckpointError, IDXFormatError, ValueError, TypeError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, PermissionError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        _log(f"hkjax: error: {msg}")
        return 2
    except KeyboardInterrupt:
        _log("hkjax: interrupted (resume with --resume)")
        return 130

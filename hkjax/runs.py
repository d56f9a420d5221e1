"""Running hkjax's experiments from a configuration: what the ``hkjax`` command and its
sweep call. The experiments themselves, from a :class:`hkjax.config.Config`: :func:`train`,
:func:`edit` and :func:`retrieve` (``hkjax train`` / ``edit`` / ``retrieve``), and for a
finished run directory :func:`evaluate_run`, :func:`plot_run` and :func:`load_run`
(``(config, task, model)``); and their parts: load the dataset and its splits, build the
task, the network and the optimizer.

    cfg = hk.config.load_toml("runs/hk/config.toml")            # a run's configuration
    summary = runs.train(cfg.replace(out="runs/hk-again"))      # the same run, again
    train_ds, test_ds = runs.load_data(cfg)
    task = runs.build_task(cfg, train_ds)
    net = runs.build_network(cfg, task, jax.random.key(cfg.seed))
    cfg, task, model = runs.load_run("runs/hk")                 # the trained model of a run

Progress and results are reported on stderr, one line each (``hkjax: ...``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import sys
import time
from typing import Any

from ._io import atomic_open
from .config import GROUPS, Config, RetrievalConfig, SolverConfig, from_dict, load_toml, read_table, to_toml

__all__ = ["arrays", "splits", "load_data", "relax_config", "evaluation_task", "build_task", "build_network", "optimizer",
           "trainable", "opt_state_like", "load_run", "edit_model", "initialize_distributed", "train", "edit",
           "retrieve", "evaluate_run", "plot_run", "figures", "saved_config", "RESUME_MAY_CHANGE"]


def initialize_distributed() -> None:
    """``jax.distributed.initialize()`` for a run over several hosts (``--distributed``): the
    coordinator, process count and id from the environment variables
    ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` when they are
    set, else detected by JAX (SLURM, Open MPI, Cloud TPU). Call it before any other JAX call.

    Raises:
        ValueError: an incomplete environment, or an initialisation that failed.
    """
    import jax

    kw = {}
    if os.environ.get("JAX_NUM_PROCESSES") or os.environ.get("JAX_PROCESS_ID"):
        try:
            kw = {"coordinator_address": os.environ["JAX_COORDINATOR_ADDRESS"],
                  "num_processes": int(os.environ["JAX_NUM_PROCESSES"]),
                  "process_id": int(os.environ["JAX_PROCESS_ID"])}
        except (KeyError, ValueError):
            raise ValueError("--distributed: set JAX_COORDINATOR_ADDRESS (host:port), JAX_NUM_PROCESSES and "
                             "JAX_PROCESS_ID together (the last two integers)") from None
    try:
        jax.distributed.initialize(**kw)
    except (RuntimeError, ValueError) as e:
        msg = " ".join(str(e).split())
        raise ValueError(f"--distributed: jax.distributed.initialize() failed: {msg}") from None


def arrays(ds, limit: int = 0) -> dict:
    """``{"images", "labels"}`` of the first ``limit`` examples of the dataset ``ds`` (0: all)."""
    n = len(ds) if not limit else min(limit, len(ds))
    return {"images": ds.images[:n], "labels": ds.labels[:n]}


def splits(cfg: Config, tr, te) -> tuple[dict, dict | None, dict]:
    """``(train, validation or None, test)`` arrays of a run: the first ``cfg.data.max_train``
    examples of the training dataset ``tr``, the last ``cfg.data.validation_size`` of them held out for
    validation (never trained on), and the first ``cfg.evaluation.max_test`` of the test dataset ``te``.

    Raises:
        ValueError: a validation split that would leave nothing to train on.
    """
    train = arrays(tr, cfg.data.max_train)
    n = len(train["labels"])
    held = cfg.data.validation_size
    if held and held >= n:
        raise ValueError(f"--val {held} holds out all {n} training examples; keep some to train on "
                         f"(--val below {n})")
    val = {k: v[n - held:] for k, v in train.items()} if held else None
    train = {k: v[: n - held] for k, v in train.items()}
    return train, val, arrays(te, cfg.evaluation.max_test)


def load_data(cfg: Config):
    """``(train, test)`` :class:`hkjax.data.Dataset` of ``cfg.data.dataset`` (``digits``,
    ``fashion-mnist``, ``mnist:PATH``, ``idx:PATH``)."""
    from . import data

    train = data.load_dataset(cfg.data.dataset, "train")
    test = data.load_dataset(cfg.data.dataset, "test")
    return train, test


def relax_config(cfg: Config):
    """The :class:`hkjax.tasks.RelaxConfig` of the run configured by ``cfg`` (``t1``,
    ``max_steps``, ``solver_steps``, ``solver_method``)."""
    from . import tasks

    return tasks.RelaxConfig(t1=cfg.solver.t1, max_steps=cfg.solver.max_steps, steps=cfg.solver.solver_steps,
                             solver=cfg.solver.solver_method)


def evaluation_task(cfg: Config, task):
    """``task`` as the run configured by ``cfg`` evaluates with it: relaxed with
    ``cfg.evaluation.eval_solver_steps`` constant steps when that is set, else ``task``
    itself."""
    steps = cfg.evaluation.eval_solver_steps
    if not steps:
        return task
    return dataclasses.replace(task, relax_config=dataclasses.replace(task.relax_config, steps=steps))


def build_task(cfg: Config, ds, *, kind: str | None = None, model: str | None = None):
    """The run's task for the dataset ``ds`` (its image size and classes): ``cfg.task`` or
    ``kind`` (``classify``, ``addition``, ``edit``), on ``cfg.network.model`` or ``model``.

    Raises:
        ValueError: a task the training commands do not train (``retrieve``).
    """
    from . import tasks

    kind = kind or cfg.task
    common = dict(
        model=model or cfg.network.model, n_pixels=int(ds.images.shape[1]), n_hidden=cfg.network.n_hidden,
        n_classes=int(ds.n_classes), dim=cfg.network.dim, relax_config=relax_config(cfg), rotate=cfg.data.rotate,
        shift=cfg.data.shift, tilt=cfg.data.tilt, zoom=cfg.data.zoom, image_shape=tuple(ds.shape), osc_init=cfg.network.osc_init,
    )
    if kind == "classify":
        return tasks.Classification(**common)
    if kind == "addition":
        return tasks.Addition(**common)
    if kind == "edit":
        mapping = tasks.edit_map(cfg.editing.edit, list(cfg.editing.classes), int(ds.n_classes))
        return tasks.MemoryEditing(
            **common, mapping=tuple(int(m) for m in mapping), associative=cfg.editing.associative, cue_classes=(0, 1),
            edited_fraction=cfg.editing.edited_fraction, edited_under_cue1=cfg.editing.edited_under_cue1,
            kept_weight=cfg.editing.kept_weight,
        )
    raise ValueError(f"task={kind!r} cannot be trained with this command")


def build_network(cfg: Config, task, key, **kw):
    """The network of the run configured by ``cfg`` (graphs, couplings, scales) for its
    ``task``, drawn from ``key``; ``kw`` are further arguments of
    :func:`hkjax.tasks.build_network`."""
    return task.build(
        key, k=cfg.network.degree, rewire=cfg.network.rewire, coupling=cfg.network.coupling, kappa_h=cfg.network.kappa_h,
        kappa_k=cfg.network.kappa_k, init_scale=cfg.network.init_scale, kuramoto_graph=cfg.network.kuramoto_term,
        formulation=cfg.network.formulation, **kw,
    )


def optimizer(cfg: Config, steps: int, lr: float):
    """The Optax optimizer of the run configured by ``cfg``
    (:func:`hkjax.train.make_optimizer`) for ``steps`` steps from the learning rate ``lr``."""
    from . import train

    return train.make_optimizer(
        cfg.optimization.optimizer, learning_rate=lr, steps=steps, decay=cfg.optimization.lr_decay,
        weight_decay=cfg.optimization.weight_decay, clip=cfg.optimization.clip if cfg.optimization.clip > 0 else None,
    )


def trainable(cfg: Config, model):
    """The ``trainable`` filter of ``model`` in the run configured by ``cfg``: memory editing
    and ``--freeze-hopfield`` keep the Hopfield weights and bias (None: everything trained)."""
    from . import tasks

    return tasks.freeze_hopfield(model) if cfg.task == "edit" or cfg.training.freeze_hopfield else None


def load_run(run_dir: str | os.PathLike[str]) -> tuple[Config, Any, Any]:
    """``(config, task, model)`` of the run directory ``run_dir``: its ``config.toml`` and the
    model of its newest checkpoint (the parameter average when the run kept one, as it
    evaluated).

    Raises:
        FileNotFoundError: no such directory, no ``config.toml`` or no checkpoint in it.
        hkjax.checkpoint.CheckpointError: a checkpoint that does not match the configuration.
    """
    import jax

    from . import checkpoint

    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist")
    cfg_path = run_dir / "config.toml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{str(cfg_path)!r} does not exist; is {str(run_dir)!r} an hkjax run directory?")
    cfg = load_toml(cfg_path)
    last = checkpoint.latest(run_dir / "checkpoints")
    if last is None:
        raise FileNotFoundError(f"no checkpoint in {str(run_dir / 'checkpoints')!r}")
    tr, _ = load_data(cfg)
    if cfg.task == "edit":
        cfg = cfg.replace(model=edit_model(cfg))
        task = build_task(cfg, tr)
        like = build_network(cfg, task, jax.random.key(cfg.seed + 7))
    else:
        task = build_task(cfg, tr)
        like = build_network(cfg, task, jax.random.key(cfg.seed))
    template = {"model": like, "opt_state": opt_state_like(cfg, like), "step": jax.numpy.asarray(0),
                "key": jax.random.key(0)}
    if cfg.optimization.ema > 0:
        template["ema"] = like  # the parameter average: what the run evaluated
    tree, _ = checkpoint.load(last, template)
    return cfg, task, tree["ema" if cfg.optimization.ema > 0 else "model"]


def edit_model(cfg: Config) -> str:
    """The model of a memory edit configured by ``cfg``: ``"hopfield_lora"`` (a static
    low-rank synapse learns the edit, the baseline) when ``cfg.network.model`` says so, else
    ``"hopfield_kuramoto"`` (oscillators learn it): ``cfg.network.model`` when it is one of
    :data:`hkjax.tasks.EDIT_MODELS`."""
    from . import tasks

    return cfg.network.model if cfg.network.model in tasks.EDIT_MODELS else "hopfield_kuramoto"


def opt_state_like(cfg: Config, model):
    """An optimizer state for ``model`` in the run configured by ``cfg`` (the template a
    checkpoint's optimizer state is loaded into)."""
    import equinox as eqx

    from . import train

    steps, lr = (cfg.editing.edit_steps, cfg.editing.edit_lr) if cfg.task == "edit" else (cfg.training.steps, cfg.optimization.lr)
    params, _ = eqx.partition(model, train.trainable_filter(model, trainable(cfg, model)))
    return optimizer(cfg, steps, lr).init(params)


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
                               "tta", "max_test", "out", "from_run", "steps", "edit_steps",
                               "time_limit"})


def _holds_run(out: pathlib.Path) -> bool:
    """Whether ``out`` holds (part of) a run: a config.toml or a checkpoint."""
    from . import checkpoint

    return (out / "config.toml").is_file() or checkpoint.latest(out / "checkpoints") is not None


def _claim_out(out: str, *, resume: bool, overwrite: bool) -> dict | None:
    """Check, before anything is written, that a run may write into ``out`` (its ``--out``).

    A directory that already holds a run is only written into with ``--resume`` (then the
    run's saved config.toml table is returned, for :func:`_check_resumable`) or
    ``--overwrite`` (the old run is deleted only when the new one writes its config, by
    :func:`_write_config`: a command that fails before that, on a bad ``--from`` or missing
    data, leaves it as it was). Returns ``None`` when there is no run to resume.

    Raises:
        ValueError: ``--out`` is a file, holds a run and neither flag is given, or both are.
    """
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
    if not _holds_run(out):
        return None
    if resume:
        table = saved_config(out)
        return {} if table is None else table
    if not overwrite:
        raise ValueError(f"--out {str(out)!r} already holds a run; pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --out (nothing was changed)")
    return None


def _check_resumable(cfg: Config, saved: dict | None) -> None:
    """Refuse a ``--resume`` whose settings differ from the run's own (``saved``, its config.toml
    table) in anything but :data:`RESUME_MAY_CHANGE`: the checkpoint could not be continued
    exactly, or not loaded at all. Nothing has been written when this raises."""
    if not saved:
        return
    try:
        old = from_dict(saved)
    except ValueError as e:
        raise ValueError(f"--resume: {str(pathlib.Path(cfg.out) / 'config.toml')!r} is unreadable ({e})") from None
    named = {k for k, v in saved.items() if k not in GROUPS} | {k for g in GROUPS for k in saved.get(g, {})}
    was, now = old.options(), cfg.options()
    diff = [k for k in was if k in named and k not in RESUME_MAY_CHANGE and was[k] != now[k]]
    if was["from_run"] != now["from_run"] and pathlib.Path(was["from_run"]).resolve() != pathlib.Path(now["from_run"]).resolve():
        diff.append("from_run")
    if diff:
        was = ", ".join(f"{k}={was[k]!r}" for k in diff)
        now = ", ".join(f"{k}={now[k]!r}" for k in diff)
        raise ValueError(f"--resume: the run in {cfg.out!r} has {was}, this command asks for {now}; resume it with "
                         f"its own settings (--config {str(pathlib.Path(cfg.out) / 'config.toml')!r} --resume) "
                         "or choose another --out (nothing was changed)")


def _write_config(cfg: Config) -> pathlib.Path:
    """Create ``--out`` and write ``cfg`` into its config.toml (after :func:`_claim_out` and every
    check of the command's arguments). With ``--overwrite`` the run already there is deleted
    first (its config, checkpoints, metrics and summary), so that no stale checkpoint of it
    survives to be taken for the newest."""
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
    if n > 1 and cfg.training.batch_size % n:
        raise ValueError(f"--batch-size {cfg.training.batch_size}: each batch is split over the {n} devices JAX sees, so it "
                         f"must be a multiple of {n}; use --batch-size {-(-cfg.training.batch_size // n) * n}, or show JAX "
                         "fewer devices (e.g. CUDA_VISIBLE_DEVICES=0) (nothing was changed)")


def _fit(cfg, task, net, train_arrays, test_arrays, out, *, steps, lr, val_arrays=None, resume=None, seed_offset=0):
    import jax

    from . import train as training

    train_only = trainable(cfg, net)
    if jax.device_count() > 1:
        dev = jax.devices()[0]
        _log(f"hkjax: training data-parallel on {jax.device_count()} devices ({dev.platform}: {dev.device_kind}, "
             f"{jax.process_count()} process{'es' if jax.process_count() > 1 else ''}), "
             f"{cfg.training.batch_size // jax.device_count()} examples per device")
    # with a validation split, evaluations during training use it alone: the test split is
    # evaluated once, at the end (by the caller); with the key of the summary's evaluations, so
    # that the last one is the summary's (res.evaluations) and is not solved again
    eval_data = test_arrays if val_arrays is None else {"val": val_arrays}
    return training.fit(
        net, task, train_arrays, eval_task=evaluation_task(cfg, task), optimizer=optimizer(cfg, steps, lr), steps=steps,
        batch_size=cfg.training.batch_size, microbatch=cfg.solver.microbatch or None, shared_steps=cfg.solver.shares_steps, trainable=train_only, key=jax.random.key(cfg.seed + 1 + seed_offset), ema=cfg.optimization.ema,
        eval_data=eval_data, eval_every=cfg.training.eval_every, eval_key=_eval_key(cfg), log_every=cfg.training.log_every,
        checkpoint_dir=out / "checkpoints", checkpoint_every=cfg.training.checkpoint_every,
        resume=cfg.resume if resume is None else resume, metrics_path=out / "metrics.jsonl",
        config=cfg.to_dict(), progress=cfg.progress,
        time_limit=None if cfg.training.time_limit is None else 60.0 * cfg.training.time_limit,
    )


def _eval_key(cfg: Config):
    """The PRNG key of a run's evaluations (oscillator initialisation, cue images): the same for
    the evaluations during training, the summary's, and ``hkjax eval``."""
    import jax

    return jax.random.key(10_000 + cfg.seed)


def _evaluate(cfg: Config, model, task, arrays: dict, what: str) -> dict:
    """:func:`hkjax.train.evaluate` of ``model`` on ``arrays`` with the run's key, with a
    progress bar labelled ``what`` when the run shows progress (on the first process)."""
    import jax

    from . import train as training

    return training.evaluate(model, task, arrays, key=_eval_key(cfg), desc=what,
                             progress=bool(cfg.progress and jax.process_index() == 0))


def figures(out: pathlib.Path, cfg: Config, net, task, test_arrays, ev) -> list[str]:
    """Draw the PNG figures of a run into ``out`` and return their paths: learning curves
    (from ``out/metrics.jsonl``), draws of the ``task``'s augmentation, the confusion matrix of
    the evaluation ``ev`` (``None``: none), and the energy, order parameter and Gram matrix of
    the first of ``test_arrays`` relaxed by ``net`` from the initial state of seed
    ``cfg.seed``. A figure that fails is skipped with a note on stderr, as all of them are
    when :mod:`hkjax.plotting` is unavailable."""
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
        targets, predictions = np.asarray(ev["targets"]), np.asarray(ev["predictions"])
        if getattr(task, "associative", False):  # every test image under cue 0, then under cue 1: one matrix each
            n = len(targets) // 2
            for cue, part, labels in ((0, slice(None, n), "original"), (1, slice(n, None), "edited")):
                attempt(f"confusion_matrix_cue{cue}", functools.partial(
                    plotting.confusion_matrix, title=f"cue {cue} ({labels} labels)"), targets[part], predictions[part],
                    int(task.n_classes), out / f"confusion_matrix_cue{cue}.png")
        else:
            attempt("confusion_matrix", plotting.confusion_matrix, targets, predictions, int(task.n_classes),
                    out / "confusion_matrix.png")
    # one test example relaxed with a dense time grid
    example = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[0], task.eval_batch(test_arrays, jax.random.key(0)))
    try:
        state0 = task.init_state(example, jax.random.key(cfg.seed))
        ts = jnp.linspace(0.0, cfg.solver.t1, 41)
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
    """``(images, titles)`` of the ``augmentation.png`` figure of a run: the first ``n`` images of
    ``arrays`` and ``rounds`` draws of the task's training augmentation of them (keys folded
    from ``seed``), stacked ``((rounds + 1)·n, P)``, one row of ``n`` per draw and a title on
    each row's first image; ``None`` when the task does not augment (``task.augment`` hands the
    images back unchanged)."""
    import jax
    import jax.numpy as jnp

    imgs = jnp.asarray(arrays["images"][:n])
    key = jax.random.key(seed)
    draws = [task.augment(imgs, jax.random.fold_in(key, r)) for r in range(rounds)]
    if draws[0] is imgs:
        return None
    titles = [("original" if r == 0 else f"draw {r}") if c == 0 else "" for r in range(rounds + 1) for c in range(len(imgs))]
    return jnp.concatenate([imgs, *draws]), titles


def _summary_common(cfg, res, planned: int, test_arrays: dict, te):
    """The summary's fields common to every training command: among them ``test_images``, the
    number of test images evaluated, and ``test_images_split`` when that is fewer than the
    test split holds (``--max-test``); a run that its time limit stopped early also records
    the steps it was planned for (``steps_planned``)."""
    out = {
        "task": cfg.task, "model": cfg.network.model, "dataset": cfg.data.dataset, "seed": cfg.seed,
        "steps": res.step, "train_seconds": round(res.wall_time, 2),
        "test_images": len(test_arrays["labels"]),
    }
    if out["test_images"] < len(te):
        out["test_images_split"] = len(te)
    if res.step < planned:
        out["steps_planned"] = planned
    return out


def _stopped_note(summary: dict) -> str:
    """The log line's note on a run that its time limit stopped early (else empty)."""
    if "steps_planned" not in summary:
        return ""
    return (f"; stopped by --time-limit after {summary['steps']} of {summary['steps_planned']} steps "
            "(--resume --out RUN continues)")


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


class _LoadWatch:
    """The host's highest 5-minute load average while a run runs: a daemon thread reads it
    every ``every`` seconds, the first time once the run has lasted ``first`` seconds (5 minutes,
    so that the average covers the run alone). The summary records it as ``load_average_max``,
    so that ``hkjax report`` sees other work that shared the cores and ended before the run did.
    The thread ends with :meth:`stop`, or once the watch is garbage (a run that raised).
    """

    def __init__(self, *, first: float = 300.0, every: float = 60.0):
        import threading
        import weakref

        self.peak: float | None = None
        self._stop = threading.Event()
        threading.Thread(target=_LoadWatch._watch, args=(weakref.ref(self), self._stop, first, every),
                         daemon=True, name="hkjax-load").start()

    @staticmethod
    def _watch(ref, stop, first: float, every: float) -> None:
        wait = first
        while not stop.wait(wait):
            if (watch := ref()) is None:  # nobody will read it
                return
            try:
                load = os.getloadavg()[1]
            except OSError:  # no load average on this OS
                return
            watch.peak = load if watch.peak is None else max(watch.peak, load)
            del watch
            wait = every

    def stop(self) -> float | None:
        """Stop watching; the highest load average read (``None``: the run was too short, or
        the OS has none)."""
        self._stop.set()
        return self.peak


def _write_summary(out: pathlib.Path, summary: dict, command: str | None, t0: float, *,
                   resumed: bool = False, load: _LoadWatch | None = None) -> dict:
    """``summary`` with the run's provenance and wall time (since ``t0``), written to
    ``out/summary.json`` (what ``hkjax report`` reads) and returned; with ``load`` (started with
    the run) also the highest load average during the run, ``load_average_max``. A ``resumed``
    run that already has a summary from an earlier invocation also gets the wall time of all of
    them, ``wall_seconds_total``, and their number, ``invocations``."""
    summary.update(_provenance(command), wall_seconds=round(time.time() - t0, 2))
    if load is not None and (peak := load.stop()) is not None:
        summary["load_average_max"] = round(peak, 2)
    path = out / "summary.json"
    if resumed and path.is_file():
        try:
            earlier = json.loads(path.read_text())
            total = float(earlier.get("wall_seconds_total", earlier["wall_seconds"]))
            count = int(earlier.get("invocations", 1))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable earlier summary: this invocation's time alone
        else:
            summary.update(wall_seconds_total=round(total + summary["wall_seconds"], 2), invocations=count + 1)
    _write_json(path, summary)
    return summary


def _last_train_accuracy(history):
    rows = [r for r in history if r.get("split") == "train"]
    return rows[-1]["accuracy"] if rows else None


# ---------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------


def train(cfg: Config, *, draw: bool = True, command: str | None = None) -> dict:
    """Run ``hkjax train`` as configured by ``cfg``: train a classifier (``task = "classify"``)
    or the addition task into the run directory ``cfg.out`` (``config.toml``,
    ``metrics.jsonl``, checkpoints, figures, ``summary.json``), evaluate it on the test split
    and return its summary. ``train(load_toml("RUN/config.toml").replace(out="RUN2"))``
    repeats a run in Python.

    Arguments:
        cfg: the configuration (``resume`` / ``overwrite`` as for the command: a directory that
            holds a run is never written into without one of them).
        draw: draw the figures.
        command: the command line recorded in the summary (``hkjax report`` shows it).

    Returns:
        the summary also written to ``summary.json``.

    Raises:
        ValueError: a configuration that cannot run (nothing is written then).
        FileNotFoundError: missing data or ``--from`` run.
    """
    import jax

    from . import tasks

    if cfg.task not in ("classify", "addition"):
        raise ValueError(f"hkjax train: --task {cfg.task} is not trained here; use `hkjax edit` / `hkjax retrieve`")
    t0, watch = time.time(), _LoadWatch()
    if cfg.training.from_run and cfg.network.model in ("kuramoto", "hierarchical"):
        raise ValueError(f"--from starts the threshold units from a Hopfield classifier; the {cfg.network.model} model cannot "
                         "take its weights (use --model hopfield or hopfield_kuramoto)")
    if cfg.training.freeze_hopfield and cfg.network.model not in tasks.EDIT_MODELS:
        raise ValueError(f"--freeze-hopfield keeps the Hopfield weights and trains the coupling (or low-rank synapse) "
                         f"around them; the {cfg.network.model} model has neither (use --model hopfield_kuramoto or "
                         "hopfield_lora)")
    saved = _claim_out(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)
    start = {}
    if cfg.training.from_run:
        # a warm start: the Hopfield weights and bias of a trained classifier, trained further
        cfg, _, classifier = _classifier_from(cfg)
        w, b = tasks.hopfield_parameters(classifier)
        start = {"hopfield_weights": w, "hopfield_bias": b}
    tr, te = load_data(cfg)
    train_arrays, val_arrays, test_arrays = splits(cfg, tr, te)
    task = build_task(cfg, tr)
    if start and start["hopfield_bias"].shape[0] != task.n:
        raise ValueError(f"--from {cfg.training.from_run}: its classifier has {start['hopfield_bias'].shape[0]} units, this "
                         f"task needs {task.n} (a classifier of the same dataset is needed)")
    _check_resumable(cfg, saved)
    _check_batch_size(cfg)
    out = _write_config(cfg)
    net = build_network(cfg, task, jax.random.key(cfg.seed), **start)
    res = _fit(cfg, task, net, train_arrays, test_arrays, out, steps=cfg.training.steps, lr=cfg.optimization.lr, val_arrays=val_arrays)
    task = evaluation_task(cfg, task)  # from here on, the model is evaluated
    ev = res.evaluations.get("eval") or _evaluate(cfg, res.model, task, test_arrays, "evaluate test")
    summary = {
        **_summary_common(cfg, res, cfg.training.steps, test_arrays, te), "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
        "train_accuracy_last": _last_train_accuracy(res.history), "n_test": int(len(ev["targets"])),
        **_validation(cfg, res, task, val_arrays),
    }
    note = f", validation {summary['val_accuracy']:.4f}" if val_arrays is not None else ""
    if cfg.evaluation.tta > 0:
        ev_tta = _evaluate_tta(cfg, res.model, task, test_arrays)
        summary["test_accuracy_tta"], summary["tta"] = ev_tta["accuracy"], cfg.evaluation.tta
        note += f", with test-time augmentation (shifts <= {cfg.evaluation.tta} px) {ev_tta['accuracy']:.4f}"
    if cfg.network.model == "hopfield_kuramoto":
        # what the oscillators contribute: the same network with its coupling switched off
        off = _evaluate(cfg, tasks.uncouple(res.model), task, test_arrays, "evaluate test, coupling off")
        summary["test_accuracy_uncoupled"] = off["accuracy"]
        note += f"; with the coupling switched off {off['accuracy']:.4f}"
    if draw:
        summary["figures"] = figures(out, cfg, res.model, task, test_arrays, ev)
    _write_summary(out, summary, command, t0, resumed=cfg.resume, load=watch)
    note += _stopped_note(summary)
    _log(f"hkjax: {cfg.task} {cfg.network.model}: test accuracy {ev['accuracy']:.4f}{note} "
         f"({summary['wall_seconds']:.0f} s) -> {out}")
    return summary


def _validation(cfg: Config, res, task, val_arrays, *, cues: bool = False) -> dict:
    """``val_accuracy``, ``val_loss`` and ``n_val`` of the final model ``res.model`` of a fit on
    the validation split (``{}`` without one), evaluated as the test split is (the fit's last
    evaluation of it when it made one, else solved here); with ``cues`` (memory editing) also
    ``val_accuracy_cue0`` / ``val_accuracy_cue1`` and ``val_accuracy_edited`` (on the examples
    whose label the edit changes), so that settings are chosen without the test split."""
    if val_arrays is None:
        return {}
    ev = res.evaluations.get("val") or _evaluate(cfg, res.model, task, val_arrays, "evaluate val")
    out = {"val_accuracy": ev["accuracy"], "val_loss": ev["loss"], "n_val": int(len(val_arrays["labels"]))}
    if cues:
        out["val_accuracy_cue0"], out["val_accuracy_cue1"] = _cue_accuracies(ev)
        out["val_accuracy_edited"] = _edited_accuracy(ev, val_arrays["labels"])
    return out


def _cue_accuracies(ev: dict) -> tuple[float, float]:
    """Accuracies under cue 0 and cue 1 of a memory-editing evaluation (``eval_batch`` puts every
    test image under cue 0 first, then under cue 1)."""
    import numpy as np

    ok = ev["predictions"] == ev["targets"]
    n = len(ok) // 2
    return float(np.mean(ok[:n])), float(np.mean(ok[n:]))


def _edited_accuracy(ev: dict, labels) -> float:
    """Accuracy of a memory-editing evaluation on the examples whose target the edit changes
    (target other than the image's own label ``labels``): under cue 1 only when associative."""
    import numpy as np

    labels = np.asarray(labels)
    changed = ev["targets"] != np.concatenate([labels] * (len(ev["targets"]) // len(labels)))
    return float(np.mean(ev["predictions"][changed] == ev["targets"][changed]))


def _evaluate_tta(cfg: Config, model, task, test_arrays) -> dict:
    """Test-time augmentation: the accuracy of the class scores averaged over all shifts by up to
    ``cfg.evaluation.tta`` pixels (reported next to the plain accuracy, never instead of it)."""
    return _evaluate(cfg, model, dataclasses.replace(task, tta=cfg.evaluation.tta), test_arrays, "evaluate test, shifted")


def saved_config(run_dir: str | os.PathLike[str]) -> dict | None:
    """The table of the ``config.toml`` in the run directory ``run_dir`` as written (see
    :func:`hkjax.config.read_table`), or ``None`` when there is none or it is not valid TOML."""
    try:
        return read_table(pathlib.Path(run_dir) / "config.toml")
    except (OSError, ValueError):
        return None


def _classifier_from(cfg: Config):
    """``(cfg, task, classifier)``: the Hopfield classifier of the run ``cfg.training.from_run``, and
    ``cfg`` with that classifier's size (``n_hidden``) and, for each option of its relaxation
    (``t1``, ``max_steps``, ``solver_steps``, ``solver_method``) that ``cfg`` leaves at its
    default, the classifier's value: a relaxation given explicitly (e.g. ``--solver-method
    euler --solver-steps 32``) is kept. A log line says which options were taken from the
    classifier and which differ from it.

    Raises:
        ValueError: the run is not a Hopfield classifier (task classify, model hopfield).
        FileNotFoundError: no such run directory, config or checkpoint.
    """
    ccfg, ctask, classifier = load_run(pathlib.Path(cfg.training.from_run))
    if ccfg.task != "classify" or ccfg.network.model != "hopfield":
        raise ValueError(f"--from {cfg.training.from_run}: expected a Hopfield classifier run (task classify, model hopfield), "
                         f"found task {ccfg.task}, model {ccfg.network.model}")
    theirs, ours, default = ccfg.options(), cfg.options(), dataclasses.asdict(SolverConfig())
    relaxation = ("t1", "max_steps", "solver_steps", "solver_method")
    inherit = {k: theirs[k] for k in ("n_hidden", *relaxation)
               if theirs[k] != ours[k] and (k not in relaxation or ours[k] == default[k])}
    if inherit:
        _log(f"hkjax: using {', '.join(f'{k}={v}' for k, v in inherit.items())} of the classifier in {cfg.training.from_run}")
        cfg = cfg.replace(**inherit)
    kept = {k: theirs[k] for k in relaxation if theirs[k] != cfg.options()[k]}
    if kept:
        _log(f"hkjax: the edit relaxes with {', '.join(f'{k}={ours[k]}' for k in kept)}; the classifier in "
             f"{cfg.training.from_run} was trained with {', '.join(f'{k}={v}' for k, v in kept.items())}")
    return cfg, ctask, classifier


def edit(cfg: Config, *, command: str | None = None) -> dict:
    """Run ``hkjax edit`` as configured by ``cfg``: edit the memories of the frozen Hopfield
    classifier of the run ``cfg.training.from_run`` (trained first into ``OUT/classifier`` when
    it is empty) with oscillators, or with a static low-rank synapse for ``model =
    "hopfield_lora"``, as ``cfg.editing`` says, and return the summary (accuracies before the
    edit and under cue 0 / cue 1).

    Arguments:
        cfg: the configuration (its task is set to ``"edit"``).
        command: the command line recorded in the summary.

    Raises:
        ValueError: a configuration that cannot run (nothing is written then).
        FileNotFoundError: missing data or ``--from`` run.
    """
    import jax
    import numpy as np

    from . import tasks

    t0, watch = time.time(), _LoadWatch()
    # oscillators learn the edit; with --model hopfield_lora a static low-rank synapse (the baseline)
    cfg = cfg.replace(task="edit", model=edit_model(cfg))
    saved = _claim_out(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)
    tr, te = load_data(cfg)
    train_arrays, val_arrays, test_arrays = splits(cfg, tr, te)
    tasks.edit_map(cfg.editing.edit, list(cfg.editing.classes), int(tr.n_classes))  # fail fast on bad classes
    if cfg.training.from_run:
        cfg, ctask, classifier = _classifier_from(cfg)
    task = build_task(cfg, tr, kind="edit", model=cfg.network.model)
    if val_arrays is not None:
        try:  # the validation split needs cue images too: fail now, not after training
            task.prepare(val_arrays)
        except ValueError as e:
            raise ValueError(f"--val {cfg.data.val}: {e} in the validation split; hold out more examples") from None
    _check_resumable(cfg, saved)
    _check_batch_size(cfg)
    out = _write_config(cfg)
    # 1. the Hopfield classifier (trained first, into OUT/classifier, when --from is not given)
    if not cfg.training.from_run:
        ccfg = cfg.replace(task="classify", model="hopfield", freeze_hopfield=False, out=str(out / "classifier"))
        _log("hkjax: edit: training the Hopfield classifier first (--from not given)")
        train(ccfg, draw=False)
        _, ctask, classifier = load_run(out / "classifier")
    before = _evaluate(cfg, classifier, ctask, test_arrays, "evaluate the classifier")
    w, b = tasks.hopfield_parameters(classifier)
    if cfg.editing.distill:  # the classifier's own class scores are the targets of what the edit keeps
        task = dataclasses.replace(task, teacher=classifier)
    # 2. the Hopfield-Kuramoto network around the frozen classifier
    net = build_network(cfg, task, jax.random.key(cfg.seed + 7), hopfield_weights=w,
                   hopfield_bias=b)
    res = _fit(cfg, task, net, train_arrays, test_arrays, out, steps=cfg.editing.edit_steps, lr=cfg.editing.edit_lr,
               val_arrays=val_arrays, seed_offset=100)
    task = evaluation_task(cfg, task)  # from here on, the edit is evaluated
    w2, b2 = tasks.hopfield_parameters(res.model)
    frozen = bool(np.array_equal(np.asarray(w), np.asarray(w2)) and np.array_equal(np.asarray(b), np.asarray(b2)))
    ev = res.evaluations.get("eval") or _evaluate(cfg, res.model, task, test_arrays, "evaluate test")
    cue0, cue1 = _cue_accuracies(ev)
    summary = {
        **_summary_common(cfg, res, cfg.editing.edit_steps, test_arrays, te), "edit": cfg.editing.edit, "classes": list(cfg.editing.classes), "associative": cfg.editing.associative,
        "coupling": cfg.network.coupling, "accuracy_before_edit": before["accuracy"],
        "test_accuracy": ev["accuracy"], "test_accuracy_cue0": cue0,
        "test_accuracy_cue1": cue1, "test_accuracy_edited": _edited_accuracy(ev, test_arrays["labels"]),
        "hopfield_frozen": frozen,
        **_validation(cfg, res, task, val_arrays, cues=True),
        "note": ("cue0: original labels under cue images of class 0; cue1: edited labels under cue images of class 1"
                 if cfg.editing.associative else "non-associative: every test accuracy is on the edited labels"),
    }
    tta_note = ""
    if cfg.evaluation.tta > 0:
        ev_tta = _evaluate_tta(cfg, res.model, task, test_arrays)
        cue0_tta, cue1_tta = _cue_accuracies(ev_tta)
        summary.update(tta=cfg.evaluation.tta, test_accuracy_tta=ev_tta["accuracy"], test_accuracy_cue0_tta=cue0_tta,
                       test_accuracy_cue1_tta=cue1_tta)
        tta_note = (f" (test-time augmentation, shifts <= {cfg.evaluation.tta} px: cue0 {summary['test_accuracy_cue0_tta']:.4f}, "
                    f"cue1 {summary['test_accuracy_cue1_tta']:.4f})")
    summary["figures"] = figures(out, cfg, res.model, task, test_arrays, ev)
    _write_summary(out, summary, command, t0, resumed=cfg.resume, load=watch)
    _log(f"hkjax: edit {cfg.editing.edit} {list(cfg.editing.classes)}: before {before['accuracy']:.4f}, cue0 "
         f"{summary['test_accuracy_cue0']:.4f}, cue1 {summary['test_accuracy_cue1']:.4f} (changed labels "
         f"{summary['test_accuracy_edited']:.4f}){tta_note}{_stopped_note(summary)} "
         f"-> {out}")
    return summary


def evaluate_run(run_dir: str | os.PathLike[str], *, max_test: int = 0) -> dict:
    """Evaluate the trained model of the run directory ``run_dir`` on the test split of its
    dataset (its first ``max_test`` examples; 0: all), as the run evaluated it, and write
    ``eval.json`` into it: ``hkjax eval RUN``.

    Returns:
        ``{"run", "test_accuracy", "test_loss", "n_test"}``, and ``"test_accuracy_tta"`` for a
        run with test-time augmentation.

    Raises:
        FileNotFoundError: no such run directory, config or checkpoint.
    """
    run_dir = pathlib.Path(run_dir)
    rcfg, task, model = load_run(run_dir)
    task = evaluation_task(rcfg, task)
    _, te = load_data(rcfg)
    ev = _evaluate(rcfg, model, task, arrays(te, max_test), "evaluate test")
    result = {"run": str(run_dir), "test_accuracy": ev["accuracy"], "test_loss": ev["loss"], "n_test": len(ev["targets"])}
    if rcfg.evaluation.tta > 0:
        result["test_accuracy_tta"] = _evaluate_tta(rcfg, model, task, arrays(te, max_test))["accuracy"]
    _write_json(run_dir / "eval.json", result)
    return result


def plot_run(run_dir: str | os.PathLike[str], *, max_test: int = 0) -> list[str]:
    """Redraw the figures of the run directory ``run_dir`` (``hkjax plot RUN``), evaluating
    its model on the first ``max_test`` test examples (0: as many as the run evaluated).

    Returns:
        the paths of the figures written.

    Raises:
        FileNotFoundError: no such run directory, config or checkpoint.
    """
    run_dir = pathlib.Path(run_dir)
    rcfg, task, model = load_run(run_dir)
    task = evaluation_task(rcfg, task)
    _, te = load_data(rcfg)
    test_arrays = arrays(te, max_test or rcfg.evaluation.max_test)
    ev = _evaluate(rcfg, model, task, test_arrays, "evaluate test")
    files = figures(run_dir, rcfg, model, task, test_arrays, ev)
    return files


def retrieve(cfg: RetrievalConfig, *, command: str | None = None) -> dict:
    """Run ``hkjax retrieve``: the overlap and retrieval rate of Hebbian memories recalled
    from corrupted cues by Hopfield and Hopfield-Kuramoto networks at each load P/N of
    ``cfg.loads``, written to ``cfg.out`` (``metrics.jsonl``, ``retrieval.png``,
    ``summary.json``); returns the summary, with the ``command`` line that ran it."""
    import jax

    from . import tasks

    t0, watch = time.time(), _LoadWatch()
    _claim_out(cfg.out, resume=False, overwrite=cfg.overwrite)  # nothing to resume: an existing run needs --overwrite
    out = _write_config(cfg)
    rows = []
    for model in ("hopfield", "hopfield_kuramoto"):
        for i, load in enumerate(cfg.loads):
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
    return _write_summary(out, {"task": "retrieve", "rows": rows, "n_units": cfg.n_units, "corruption": cfg.corruption,
                                "seed": cfg.seed}, command, t0, load=watch)

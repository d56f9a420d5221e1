"""Running hkjax's experiments from a configuration: what the ``hkjax`` command and its
sweep share. From a :class:`hkjax.config.Config` (the keys of a run's ``config.toml``): load
the dataset and its splits, build the task, the network and the optimizer, and load a
finished run directory back as ``(config, task, model)``.

    cfg = hk.config.load_toml("runs/hk/config.toml")
    train, test = runs.load_data(cfg)
    task = runs.build_task(cfg, train)
    net = runs.build_network(cfg, task, jax.random.key(cfg.seed))
    cfg, task, model = runs.load_run("runs/hk")   # the trained model of a run
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from .config import Config, load_toml

__all__ = ["arrays", "splits", "load_data", "relax_config", "build_task", "build_network", "optimizer",
           "trainable", "opt_state_like", "load_run", "edit_model", "initialize_distributed"]


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
    ``max_steps``, ``solver_steps``)."""
    from . import tasks

    return tasks.RelaxConfig(t1=cfg.solver.t1, max_steps=cfg.solver.max_steps, steps=cfg.solver.solver_steps)


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
            **common, mapping=tuple(int(m) for m in mapping), associative=cfg.editing.associative, cue_classes=(0, 1)
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

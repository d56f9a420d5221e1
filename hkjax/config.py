"""One configuration object for every ``hkjax`` subcommand (train, edit, eval, retrieve, plot).

:class:`Config` is a frozen dataclass; each field carries its help text and default in its
metadata, from which :mod:`hkjax.cli` builds the command-line flags (``--n-hidden``), so the
flags, the TOML file (``n_hidden = 100``) and the Python API cannot drift apart. A run writes
its config to ``config.toml`` (:func:`to_toml`) and ``hkjax eval`` / ``hkjax edit --from``
read it back (:func:`load_toml`).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import tomllib
from typing import Any

from .data import describe_dataset_specs
from .synapses import FORMULATIONS
from .tasks import check_warp

__all__ = ["Config", "TASKS", "COMMAND_DEFAULTS", "PRESETS", "command_options", "load_toml", "read_table", "to_toml", "from_dict", "SMALL_STEPS"]

TASKS = ("classify", "addition", "edit", "retrieve")

#: Defaults that differ by subcommand (documented in ``--help``). Memory editing starts the
#: hidden and class oscillators at the reference, which lets the cue image act on the class
#: units through ``Gram(σ)``.
COMMAND_DEFAULTS = {"edit": {"osc_init": "reference"}, "sweep": {"out": "runs/sweep"}}

#: Named configurations (``hkjax train --preset NAME``; in Python ``Config(**PRESETS[NAME])``):
#: values that replace the defaults, under any ``--config`` file and flags. ``"paper"``: the
#: configuration of the paper's MNIST scripts (arXiv 2505.03648): 784 pixel + 100 hidden +
#: 10 class units, small-world graphs of degree 150, D = 5, ReLU, κ_H = 0.1, κ_K = 1 with
#: the Kuramoto term, initial parameters N(0, 0.01²), Tsit5 + PID (rtol 1e-3, atol 1e-6,
#: t1 = 1) with at most 5000 steps, Lion at learning rate 1e-4 decaying to 0.002 of it
#: (≈ halved every 1000 of the 9000 updates), no gradient clipping, batch 100.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "n_hidden": 100, "dim": 5, "degree": 150, "kuramoto_term": True, "kappa_h": 0.1, "kappa_k": 1.0,
        "init_scale": 0.01, "max_steps": 5000, "optimizer": "lion", "lr": 1e-4, "lr_decay": 0.002, "clip": 0.0,
        "batch_size": 100, "steps": 9000,
    },
}

_RETRIEVE = ("n_units", "loads", "corruption", "trials")
_EDIT = ("edit", "classes", "associative", "edit_steps", "edit_lr")


def command_options(command: str) -> tuple[str, ...]:
    """The :class:`Config` fields that ``hkjax COMMAND`` takes as flags (and shows in its
    ``--help``): ``eval`` and ``plot`` read a finished run (``run``, ``out``, ``max_test``);
    ``retrieve`` its own experiment; ``train`` all but editing and retrieval; ``edit`` all
    but retrieval; ``sweep`` every field (any of them can be swept). A ``--config`` file may
    hold any field.

    Arguments:
        command: the subcommand's name (``train``, ``edit``, ``eval``, ``plot``,
            ``retrieve``, ``sweep``).
    """
    names = tuple(f.name for f in dataclasses.fields(Config))
    if command in ("eval", "plot"):
        return ("run", "out", "max_test")
    if command == "retrieve":
        return ("out", "overwrite", "seed", "dim", *_RETRIEVE)
    drop = {"train": {*_RETRIEVE, *_EDIT, "run"}, "edit": {*_RETRIEVE, "run"}}.get(command, set())
    return tuple(n for n in names if n not in drop)


#: ``--steps small``: a quick smoke-test run.
SMALL_STEPS = 60


def _f(default, help: str, choices=None, flag: bool = True):
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


@dataclasses.dataclass(frozen=True)
class Config:
    """Every option of a run. Defaults reproduce the README's results on the digits data.

    Each field is one option, with the same name in Python (``Config(n_hidden=50)``), in TOML
    (``n_hidden = 50``) and on the command line (``--n-hidden 50``); its help text (in the
    field's metadata, printed by ``hkjax train --help``) documents it. Frozen: change fields
    with :meth:`replace`.

    Raises:
        ValueError: a value of the wrong type, out of range, or not among a field's choices.
    """

    # what
    task: str = _f("classify", "task to run", TASKS)
    model: str = _f("hopfield_kuramoto", "network model (hierarchical: pixel, hidden and softmax class layers bound by dense synapses; hopfield_lora: the Hopfield network plus a static low-rank synapse of rank --dim, which edit trains instead of oscillators as the baseline)",
                    ("hopfield", "kuramoto", "hopfield_kuramoto", "hierarchical", "hopfield_lora"))
    dataset: str = _f("digits", describe_dataset_specs())
    out: str = _f("runs/hkjax", "output directory (config.toml, metrics.jsonl, checkpoints, summary.json, figures)")
    seed: int = _f(0, "random seed (model init, batches, augmentation)")
    # network
    n_hidden: int = _f(100, "hidden units N_augment (>= 1)")
    dim: int = _f(5, "oscillator dimension D")
    degree: int = _f(16, "degree k of the small-world graphs (>= n-1: all-to-all)")
    rewire: float = _f(0.1, "small-world rewiring probability")
    kuramoto_term: bool = _f(False, "Hopfield-Kuramoto: add the paper's Kuramoto energy among the oscillators (off by default: it makes a training step several times slower)")
    coupling: str = _f("full", "Hopfield-Kuramoto coupling", ("full", "additive", "multiplicative"))
    formulation: str = _f("auto", "how the graph terms are evaluated: dense matrices, dense tiles where the graph's edges cluster plus an edge list for the rest ('tiles': small-world graphs of a few hundred units or more, whose edges lie in a band around the diagonal, e.g. the paper's n = 896 network), edge lists (segment sums), sparse BCOO matrices, or neighbour tables; 'auto' picks by graph size, density and clustering (benchmarks/formulations.py): tiles for clustered graphs of 256-4096 units and density >= 0.025, else dense for density >= 0.08 up to 4096 units, else neighbour tables; 'all' only for complete graphs", FORMULATIONS)
    kappa_h: float = _f(0.1, "Hopfield energy scale kappa_H")
    kappa_k: float = _f(1.0, "Kuramoto energy scale kappa_K")
    init_scale: float = _f(0.01, "std of the random initial parameters")
    osc_init: str = _f("random", "initial hidden/class oscillators: random unit vectors, or all at the reference e1", ("random", "reference"))
    shift: int = _f(0, "training augmentation: random image translations by up to this many pixels")
    tilt: float = _f(0.0, "training augmentation: random image rotations by up to this many degrees (bilinear interpolation, zero fill; after --shift)")
    zoom: float = _f(0.0, "training augmentation: random image scalings by a factor in [1 - zoom, 1 + zoom] (with --tilt)")
    tta: int = _f(0, "test-time augmentation: average the class scores over all translations (by up to this many pixels) of the image on the threshold units; the summary reports it next to the plain test accuracy (0: off)")
    rotate: bool = _f(True, "random global rotation of the oscillators per sample (augmentation)")
    # relaxation
    t1: float = _f(1.0, "relaxation time")
    max_steps: int = _f(64, "maximum adaptive solver steps (Tsit5 + PID, rtol 1e-3, atol 1e-6)")
    solver_steps: int = _f(0, "constant solver steps instead of adaptive ones (0: adaptive)")
    # training
    steps: int = _f(1000, "training steps (an integer, or 'small' for a quick run)")
    batch_size: int = _f(32, "batch size")
    microbatch: int = _f(0, "differentiate the batch this many examples at a time (less memory, same gradient; 0: all at once)")
    shared_steps: bool = _f(True, "relax each training batch as one ODE system with shared adaptive steps (every example within the tolerances; the batch takes the steps of its slowest example) instead of one solve per example: the gradient sums parameter cotangents over the batch at every step instead of carrying one per example, several times faster with less memory (benchmarks/train_step.py). --no-shared-steps: one adaptive solve per example (results differ at the level of the solver tolerance). With --solver-steps (constant steps) batches are always solved as one system, the same computation as per-example solves; --microbatch implies per-example solves")
    optimizer: str = _f("adam", "optimizer", ("adam", "adamw", "lion", "sgd"))
    lr: float = _f(3e-3, "initial learning rate")
    lr_decay: float = _f(0.1, "exponential decay: final lr = lr * lr_decay (1: constant)")
    weight_decay: float = _f(0.0, "weight decay (adamw, lion)")
    clip: float = _f(1.0, "global gradient-norm clipping (0: off)")
    ema: float = _f(0.0, "decay of an exponential moving average of the trained parameters, used for evaluation and saved in the checkpoints (0: off; e.g. 0.99)")
    eval_every: int = _f(0, "evaluate on the test split every this many steps (0: at the end)")
    log_every: int = _f(10, "write a metrics row every this many steps")
    checkpoint_every: int = _f(0, "checkpoint every this many steps (0: at the end)")
    resume: bool = _f(False, "resume from the newest checkpoint in OUT/checkpoints (with the run's own settings: a resume that changes what is trained is refused)")
    overwrite: bool = _f(False, "replace the run already in OUT (its config, checkpoints, metrics and summary are deleted first); without it or --resume, a run directory is never written into")
    max_train: int = _f(0, "use only the first this many training examples (0: all)")
    val: int = _f(0, "hold out the last this many training examples (after --max-train) as a validation split: never trained on, evaluated during training instead of the test split, which is then evaluated once at the end (metrics.jsonl rows with split 'val', learning_curves.png, val_accuracy in summary.json), so that settings are chosen without looking at the test split (0: none; when not given, datasets other than digits hold out 5000, or a twelfth of --max-train)")
    max_test: int = _f(0, "evaluate on only the first this many test examples (0: all)")
    progress: bool = _f(True, "show a progress bar")
    # memory editing
    from_run: str = _f("", "run directory of a trained Hopfield classifier: edit edits it (empty: train one first); train starts the threshold units of a hopfield or hopfield_kuramoto network from its weights and bias and trains on (its n_hidden and relaxation settings are used)")
    freeze_hopfield: bool = _f(False, "train: keep the Hopfield weights and bias as they start (with --from: the classifier's) and train only the rest, i.e. the Hopfield-Kuramoto coupling (and Kuramoto weights); hopfield_kuramoto only")
    edit: str = _f("swap", "edit: kind of edit", ("swap", "conflate"))
    classes: str = _f("0,1", "edit: classes, comma separated (swap: cyclic c0->c1->...; conflate: all -> c0)")
    associative: bool = _f(False, "edit: only under cue 1 (cue images of class 0 / 1 on the oscillators)")
    edit_steps: int = _f(600, "edit: training steps of the edit (the classifier uses --steps)")
    edit_lr: float = _f(1e-2, "edit: initial learning rate of the edit")
    # retrieval
    n_units: int = _f(100, "retrieve: number of threshold units N")
    loads: str = _f("0.02,0.05,0.1,0.14,0.2", "retrieve: pattern loads P/N, comma separated")
    corruption: float = _f(0.2, "retrieve: fraction of flipped signs in the cue")
    trials: int = _f(32, "retrieve: trials per load")
    # plot / eval
    run: str = _f("", "eval/plot: run directory to read (default: --out)")

    def __post_init__(self):
        checks = {
            "n_hidden": 1, "dim": 2, "shift": 0, "tta": 0, "degree": 2, "max_steps": 1, "solver_steps": 0, "steps": 1,
            "batch_size": 1, "microbatch": 0, "eval_every": 0, "log_every": 0, "checkpoint_every": 0,
            "max_train": 0, "val": 0, "max_test": 0, "edit_steps": 1, "n_units": 2, "trials": 1,
        }
        for name, lo in checks.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
        for name in ("rewire", "tilt", "zoom", "kappa_h", "kappa_k", "init_scale", "t1", "lr", "lr_decay", "weight_decay", "clip", "ema", "edit_lr", "corruption"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}={v!r} must be a finite number")
        for name in ("kappa_h", "kappa_k", "t1", "lr", "edit_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if not 0 <= self.rewire <= 1 or not 0 <= self.corruption <= 1:
            raise ValueError("rewire and corruption must lie in [0, 1]")
        check_warp(self.tilt, self.zoom)
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema={self.ema} must lie in [0, 1) (0: no parameter averaging)")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay={self.lr_decay} must lie in (0, 1]")
        for f in dataclasses.fields(self):
            ch = f.metadata.get("choices")
            if ch and getattr(self, f.name) not in ch:
                raise ValueError(f"{f.name}={getattr(self, f.name)!r} is unknown; choose one of {', '.join(ch)}")
        self.class_list()
        self.load_list()

    def class_list(self) -> list[int]:
        """``classes`` (``"0,1"``) parsed into a list of integers.

        Raises:
            ValueError: an entry that is not an integer.
        """
        try:
            return [int(c) for c in str(self.classes).split(",") if c.strip()]
        except ValueError:
            raise ValueError(f"classes={self.classes!r}: pass comma-separated integers, e.g. 0,1") from None

    def load_list(self) -> list[float]:
        """``loads`` (``"0.05,0.1"``) parsed into a list of floats.

        Raises:
            ValueError: an entry that is not a number, no entry, or a load outside ``(0, 10)``.
        """
        try:
            out = [float(c) for c in str(self.loads).split(",") if c.strip()]
        except ValueError:
            raise ValueError(f"loads={self.loads!r}: pass comma-separated numbers, e.g. 0.05,0.1") from None
        if not out or any(not 0 < x < 10 for x in out):
            raise ValueError(f"loads={self.loads!r}: pass positive loads P/N, e.g. 0.05,0.1")
        return out

    def replace(self, **kw) -> "Config":
        """A copy with the fields in ``kw`` changed (``config.replace(lr=0.01)``); the copy is
        validated like a new :class:`Config`. Values are taken as given (no string parsing:
        use :func:`from_dict` for text values).

        Raises:
            TypeError: an unknown field name in ``kw``.
            ValueError: a value out of range or of the wrong type.
        """
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain ``{name: value}`` dict (what :func:`to_toml` writes and
        :func:`from_dict` reads back)."""
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _coerce(name: str, value):
    f = _FIELDS[name]
    typ = type(f.default)
    if name == "steps" and value == "small":
        return SMALL_STEPS
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ValueError(f"{name}={value!r}: expected true or false")
    if typ is int:
        if isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: expected an integer")
        try:
            return int(value) if not isinstance(value, float) or value.is_integer() else _bad(name, value, "an integer")
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r}: expected an integer") from None
    if typ is float:
        if isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r}: expected a number") from None
    if name in ("classes", "loads") and isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _bad(name, value, what):
    raise ValueError(f"{name}={value!r}: expected {what}")


def from_dict(d: dict[str, Any], base: Config | None = None) -> Config:
    """A :class:`Config` from a dict (e.g. a TOML table); unknown keys are an error.

    Arguments:
        d: ``{field name: value}``; values may be strings (``"0.01"``, ``"true"``), which are
            parsed to the field's type (``steps = "small"`` means the smoke-test step count).
        base: the config whose other fields are kept (default: ``Config()``).

    Raises:
        ValueError: an unknown key or a value of the wrong type / range.
    """
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(_FIELDS)}")
    base = Config() if base is None else base
    return dataclasses.replace(base, **{k: _coerce(k, v) for k, v in d.items()})


def load_toml(path, base: Config | None = None) -> Config:
    """Read a TOML config file (keys as in :class:`Config`, optionally under ``[hkjax]``).

    Arguments:
        path: the ``.toml`` file.
        base: the config whose fields the file does not set are kept (default: ``Config()``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid TOML, or bad keys / values.
    """
    return from_dict(read_table(path), base)


def read_table(path) -> dict[str, Any]:
    """The raw table of a TOML config file (its ``[hkjax]`` table if it has one), unchecked:
    which keys a file sets, before :func:`from_dict` fills in the defaults.

    Arguments:
        path: the ``.toml`` file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid TOML.
    """
    p = pathlib.Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {str(p)!r} does not exist")
    try:
        d = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a valid TOML file ({e})") from None
    if "hkjax" in d and isinstance(d["hkjax"], dict):
        d = d["hkjax"]
    return d


def to_toml(config: Config) -> str:
    """The config as TOML text (written by tomli-w; readable back with :func:`load_toml`)."""
    import tomli_w

    return tomli_w.dumps(config.to_dict())

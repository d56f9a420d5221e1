"""Typed configuration of every ``hkjax`` command, grouped as the run uses it.

A run of ``hkjax train`` / ``edit`` / ``sweep`` is one :class:`Config`: the task, seed and
output directory, and seven frozen groups, one per part of the run: :class:`NetworkConfig`
(the model), :class:`DataConfig`, :class:`SolverConfig` (the relaxation and its gradient),
:class:`OptimizationConfig`, :class:`TrainingConfig`, :class:`EvaluationConfig` and
:class:`EditingConfig`. ``hkjax retrieve`` takes a :class:`RetrievalConfig`.

The same objects serve three surfaces that therefore cannot drift apart:

* **Python**: ``Config(network=NetworkConfig(n_hidden=50))``, or by option name
  ``Config().replace(n_hidden=50, lr=1e-3)``;
* **the command line**: :mod:`hkjax.cli` generates each subcommand's parser and ``--help``
  from the groups it takes (with `tyro <https://brentyi.github.io/tyro/>`_); an option's
  flag is its name (``--n-hidden 50``), its help text the field's docstring;
* **TOML**: a run writes ``config.toml`` with one table per group (:func:`to_toml`, by
  tomli-w) and :func:`load_toml` reads it back, so a run is reproducible from its directory
  in Python (``hkjax.runs.load_run``) as well as from the command line. Files with every
  option at the top level (``n_hidden = 50``, the layout hkjax wrote before the groups)
  read the same: option names are unique across the groups.
"""

import dataclasses
import math
import pathlib
import shlex
import tomllib
import types
import typing
from typing import Annotated, Any, Literal

import tyro

from .data import describe_dataset_specs
from .synapses import FORMULATIONS
from .tasks import check_warp

__all__ = [
    "Config", "NetworkConfig", "DataConfig", "SolverConfig", "OptimizationConfig", "TrainingConfig",
    "EvaluationConfig", "EditingConfig", "RetrievalConfig", "GROUPS", "COMMAND_GROUPS", "COMMAND_DEFAULTS",
    "PRESETS", "EDIT_PRESETS", "TASKS", "INVOCATION_OPTIONS", "SMALL_STEPS", "preset", "command_line", "from_dict",
    "load_toml", "read_table", "to_toml",
]

TASKS = ("classify", "addition", "edit", "retrieve")

#: ``--steps small``: a quick smoke-test run.
SMALL_STEPS = 60


def _steps_from_text(args: list[str]) -> int:
    text = args[0]
    if text == "small":
        return SMALL_STEPS
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r}: expected an integer or 'small'") from None


#: A step count: an integer, or ``small`` on the command line (:data:`SMALL_STEPS`).
Steps = Annotated[int, tyro.constructors.PrimitiveConstructorSpec(
    nargs=1, metavar="INT|small", instance_from_str=_steps_from_text, is_instance=lambda x: isinstance(x, int),
    str_from_instance=lambda x: [str(x)])]


def _check_ints(obj, bounds: dict[str, int]) -> None:
    for name, lo in bounds.items():
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}={v!r} must be an integer >= {lo}")


def _check_numbers(obj, names, *, positive=()) -> None:
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r} must be a finite number")
        if name in positive and not v > 0:
            raise ValueError(f"{name}={v} must be positive")


def _check_choices(obj) -> None:
    for name, hint in typing.get_type_hints(type(obj)).items():
        if typing.get_origin(hint) is Literal and getattr(obj, name) not in typing.get_args(hint):
            raise ValueError(f"{name}={getattr(obj, name)!r} is unknown; choose one of "
                             f"{', '.join(map(str, typing.get_args(hint)))}")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The network: its model, size, graphs, energy scales and initial state."""

    model: Literal["hopfield", "kuramoto", "hopfield_kuramoto", "hierarchical", "hopfield_lora"] = "hopfield_kuramoto"
    """network model (hierarchical: pixel, hidden and softmax class layers bound by dense synapses; hopfield_lora: the Hopfield network plus a static low-rank synapse of rank --dim, which edit trains instead of oscillators as the baseline)"""
    n_hidden: int = 100
    """hidden units N_augment (>= 1)"""
    dim: int = 5
    """oscillator dimension D"""
    degree: int = 16
    """degree k of the small-world graphs (>= n-1: all-to-all)"""
    rewire: float = 0.1
    """small-world rewiring probability"""
    kuramoto_term: bool = False
    """Hopfield-Kuramoto: add the paper's Kuramoto energy among the oscillators (off by default: it makes a training step several times slower)"""
    coupling: Literal["full", "additive", "multiplicative"] = "full"
    """Hopfield-Kuramoto coupling"""
    formulation: Literal[FORMULATIONS] = "auto"
    """how the graph terms are evaluated: dense matrices, dense tiles where the graph's edges cluster plus an edge list for the rest ('tiles': small-world graphs of a few hundred units or more, whose edges lie in a band around the diagonal, e.g. the paper's n = 896 network), edge lists (segment sums), sparse BCOO matrices, or neighbour tables; 'auto' picks by graph size, density and clustering (benchmarks/formulations.py): tiles for clustered graphs of 256-4096 units and density >= 0.025, else dense for density >= 0.08 up to 4096 units, else neighbour tables; 'all' only for complete graphs"""
    kappa_h: float = 0.1
    """Hopfield energy scale kappa_H"""
    kappa_k: float = 1.0
    """Kuramoto energy scale kappa_K"""
    init_scale: float = 0.01
    """std of the random initial parameters"""
    osc_init: Literal["random", "reference"] = "random"
    """initial hidden/class oscillators: random unit vectors, or all at the reference e1"""

    def __post_init__(self):
        _check_ints(self, {"n_hidden": 1, "dim": 2, "degree": 2})
        _check_numbers(self, ("rewire", "kappa_h", "kappa_k", "init_scale"), positive=("kappa_h", "kappa_k"))
        if not 0 <= self.rewire <= 1:
            raise ValueError(f"rewire={self.rewire} must lie in [0, 1]")
        _check_choices(self)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The data: the dataset, its splits and the training augmentation."""

    dataset: Annotated[str, tyro.conf.arg(help=describe_dataset_specs())] = "digits"
    max_train: int = 0
    """use only the first this many training examples (0: all)"""
    val: int | None = None
    """hold out the last this many training examples (after --max-train) as a validation split: never trained on, evaluated during training instead of the test split, which is then evaluated once at the end (metrics.jsonl rows with split 'val', learning_curves.png, val_accuracy in summary.json), so that settings are chosen without looking at the test split (0: none; None: the digits hold out none, other datasets 5000, or a twelfth of --max-train)"""
    shift: int = 0
    """training augmentation: random image translations by up to this many pixels"""
    tilt: float = 0.0
    """training augmentation: random image rotations by up to this many degrees (bilinear interpolation, zero fill; after --shift)"""
    zoom: float = 0.0
    """training augmentation: random image scalings by a factor in [1 - zoom, 1 + zoom] (with --tilt)"""
    rotate: bool = True
    """random global rotation of the oscillators per sample (augmentation)"""

    #: The validation split of a dataset other than the digits when ``val`` is ``None``: the
    #: last this many of the training images (5 000 of Fashion-MNIST's and MNIST's 60 000) ...
    VAL_DEFAULT: typing.ClassVar[int] = 5000
    #: ... or, with ``max_train = N``, the last ``N // VAL_FRACTION`` of the N.
    VAL_FRACTION: typing.ClassVar[int] = 12

    def __post_init__(self):
        _check_ints(self, {"max_train": 0, "shift": 0, **({"val": 0} if self.val is not None else {})})
        _check_numbers(self, ("tilt", "zoom"))
        check_warp(self.tilt, self.zoom)

    @property
    def validation_size(self) -> int:
        """How many training examples are held out for validation: ``val``, or when it is
        ``None`` none of the digits and :data:`VAL_DEFAULT` (or a :data:`VAL_FRACTION`-th of
        ``max_train``) of the other datasets."""
        if self.val is not None:
            return self.val
        if self.dataset == "digits":
            return 0
        return self.max_train // self.VAL_FRACTION if self.max_train else self.VAL_DEFAULT


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """The relaxation (Tsit5 + PID, rtol 1e-3, atol 1e-6, or another method) and how its gradient is taken."""

    t1: float = 1.0
    """relaxation time"""
    max_steps: int = 64
    """maximum adaptive solver steps"""
    solver_steps: int = 0
    """constant solver steps instead of adaptive ones (0: adaptive)"""
    solver_method: Literal["tsit5", "dopri5", "bosh3", "heun", "euler"] = "tsit5"
    """the Runge-Kutta method (tsit5: the paper's). euler needs --solver-steps and projects the oscillators back onto their spheres after every step; each of its steps evaluates the vector field once (tsit5: six times), and where the flow is stiff, as in a trained memory edit, the step every explicit method can take is bounded alike, so a few dozen euler steps cost a fraction of tsit5's adaptive ones (benchmarks/edit_step.py)"""
    shared_steps: bool = True
    """relax each training batch as one ODE system with shared adaptive steps (every example within the tolerances; the batch takes the steps of its slowest example) instead of one solve per example: the gradient sums parameter cotangents over the batch at every step instead of carrying one per example, several times faster with less memory (benchmarks/train_step.py). --no-shared-steps: one adaptive solve per example (results differ at the level of the solver tolerance). With --solver-steps (constant steps) batches are always solved as one system, the same computation as per-example solves; --microbatch implies per-example solves"""
    microbatch: int = 0
    """differentiate the batch this many examples at a time (less memory, same gradient; 0: all at once)"""

    def __post_init__(self):
        _check_ints(self, {"max_steps": 1, "solver_steps": 0, "microbatch": 0})
        _check_numbers(self, ("t1",), positive=("t1",))
        if self.solver_method == "euler" and self.solver_steps == 0:
            raise ValueError("--solver-method euler has no error estimate to choose adaptive steps by; "
                             "give it constant steps (--solver-steps 32) or choose an adaptive solver (tsit5)")

    @property
    def shares_steps(self) -> bool:
        """Whether training batches are solved as one system with shared steps: with
        ``shared_steps`` (the default) and always with constant solver steps (the same
        computation as per-example solves there); never with ``microbatch``, which splits the
        batch into per-example solves."""
        return not self.microbatch and (self.shared_steps or self.solver_steps > 0)


@dataclasses.dataclass(frozen=True)
class OptimizationConfig:
    """The optimiser, its learning-rate schedule and parameter averaging."""

    optimizer: Literal["adam", "adamw", "lion", "sgd"] = "adam"
    """optimizer"""
    lr: float = 3e-3
    """initial learning rate"""
    lr_decay: float = 0.1
    """exponential decay: final lr = lr * lr_decay (1: constant)"""
    weight_decay: float = 0.0
    """weight decay (adamw, lion)"""
    clip: float = 1.0
    """global gradient-norm clipping (0: off)"""
    ema: float = 0.0
    """decay of an exponential moving average of the trained parameters, used for evaluation and saved in the checkpoints (0: off; e.g. 0.99)"""

    def __post_init__(self):
        _check_numbers(self, ("lr", "lr_decay", "weight_decay", "clip", "ema"), positive=("lr",))
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema={self.ema} must lie in [0, 1) (0: no parameter averaging)")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay={self.lr_decay} must lie in (0, 1]")
        _check_choices(self)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The training loop: its length, batches, logging, checkpoints and starting point."""

    steps: Steps = 1000
    """training steps (an integer, or 'small' for a quick run)"""
    batch_size: int = 32
    """batch size"""
    eval_every: int = 0
    """evaluate on the test split every this many steps (0: at the end)"""
    log_every: int = 10
    """write a metrics row every this many steps"""
    checkpoint_every: int = 0
    """checkpoint every this many steps (0: at the end)"""
    from_run: Annotated[str, tyro.conf.arg(aliases=("--from",))] = ""
    """run directory of a trained Hopfield classifier: edit edits it (empty: train one first); train starts the threshold units of a hopfield or hopfield_kuramoto network from its weights and bias and trains on (its n_hidden and relaxation settings are used)"""
    freeze_hopfield: bool = False
    """train: keep the Hopfield weights and bias as they start (with --from: the classifier's) and train only the rest, i.e. the Hopfield-Kuramoto coupling (and Kuramoto weights); hopfield_kuramoto only"""
    time_limit: float | None = None
    """stop training after this many minutes, then save a checkpoint, evaluate and write the summary as usual (it records the steps done; --resume continues to --steps): for a job's or a lease's wall time (default: no limit)"""

    def __post_init__(self):
        _check_ints(self, {"steps": 1, "batch_size": 1, "eval_every": 0, "log_every": 0, "checkpoint_every": 0})
        t = self.time_limit
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            raise ValueError(f"--time-limit {t!r}: give a positive number of minutes (or leave it out for no limit)")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The evaluation on the test split."""

    max_test: int = 0
    """evaluate on only the first this many test examples (0: all)"""
    tta: int = 0
    """test-time augmentation: average the class scores over all translations (by up to this many pixels) of the image on the threshold units; the summary reports it next to the plain test accuracy (0: off)"""
    eval_solver_steps: int = 0
    """relax every evaluation (validation, test, hkjax eval and plot) with this many constant steps of --solver-method instead of the training's steps, e.g. train with cheap --solver-steps 24 and evaluate the learnt flow more accurately with 48 (0: as in training)"""

    def __post_init__(self):
        _check_ints(self, {"max_test": 0, "tta": 0, "eval_solver_steps": 0})


def _tuple_of(kind, value, name: str, example: str) -> tuple:
    """``value`` (a tuple, a list, or comma-separated text such as ``"0,1"``) as a tuple of
    ``kind``; what the command line, TOML files and the Python API give for a tuple option.

    Raises:
        ValueError: an entry that is not a ``kind``, naming the option and an example.
    """
    items = value.split(",") if isinstance(value, str) else value
    try:
        return tuple(kind(x) for x in items if str(x).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: pass {example}") from None


def _comma_separated(kind, name: str, metavar: str, example: str):
    """A tuple option given on the command line as one comma-separated word (``--classes 0,1``)."""
    return tyro.constructors.PrimitiveConstructorSpec(
        nargs=1, metavar=metavar, instance_from_str=lambda args: _tuple_of(kind, args[0], name, example),
        is_instance=lambda x: isinstance(x, tuple), str_from_instance=lambda x: [",".join(map(str, x))])


@dataclasses.dataclass(frozen=True)
class EditingConfig:
    """Memory editing of a frozen Hopfield classifier (hkjax edit)."""

    edit: Literal["swap", "conflate"] = "swap"
    """kind of edit"""
    classes: Annotated[tuple[int, ...], _comma_separated(int, "classes", "C0,C1,...", "integers, e.g. 0,1")] = (0, 1)
    """the classes edited (swap: cyclic c0->c1->...; conflate: all -> c0)"""
    associative: bool = False
    """only under cue 1 (cue images of class 0 / 1 on the oscillators)"""
    edit_steps: int = 600
    """training steps of the edit (the classifier uses --steps)"""
    edit_lr: float = 1e-2
    """initial learning rate of the edit"""
    edited_fraction: float = 0.0
    """share of each training batch drawn from the images whose label the edit changes, the rest from all images (0: uniform, as in the paper)"""
    edited_under_cue1: bool = False
    """associative: the rows drawn for --edited-fraction all carry cue 1, so that each is an example whose label changes and cue 0 sees uniform batches (default: random cues, so that half of them change label)"""
    kept_weight: float = 1.0
    """weight of the loss of each training example whose label the edit keeps (cue 0, and the classes it leaves alone), against 1 for an example whose label changes (1: all alike, as in the paper)"""
    distill: bool = False
    """train every example whose label the edit keeps (cue 0, and the classes it leaves alone) toward the frozen classifier's class scores rather than the +-1 code of its label, so that the edit learns to keep what the classifier does (default: labels, as in the paper)"""

    def __post_init__(self):
        if isinstance(self.classes, (str, list)):
            object.__setattr__(self, "classes", _tuple_of(int, self.classes, "classes", "integers, e.g. 0,1"))
        if not self.classes or not all(isinstance(c, int) and not isinstance(c, bool) for c in self.classes):
            raise ValueError(f"classes={self.classes!r}: pass integers, e.g. 0 1")
        _check_ints(self, {"edit_steps": 1})
        _check_numbers(self, ("edit_lr", "edited_fraction", "kept_weight"), positive=("edit_lr", "kept_weight"))
        if not 0 <= self.edited_fraction < 1:
            raise ValueError(f"edited_fraction={self.edited_fraction} must lie in [0, 1) (0: uniform batches)")
        if self.edited_under_cue1 and not (self.associative and self.edited_fraction > 0):
            raise ValueError("edited_under_cue1: --edited-under-cue1 needs --associative and --edited-fraction above 0")
        _check_choices(self)


#: The groups of a :class:`Config`, in the order of ``--help`` and of ``config.toml``.
GROUPS = ("network", "data", "solver", "optimization", "training", "evaluation", "editing")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run of ``hkjax train``, ``edit`` or ``sweep`` is. Defaults reproduce the
    README's results on the digits data.

    Each option has one name in Python, in TOML and on the command line: ``n_hidden`` is
    ``config.network.n_hidden``, ``n_hidden = 50`` under ``[network]`` in ``config.toml``, and
    ``--n-hidden 50``. Frozen: change options with :meth:`replace`.

    Raises:
        ValueError: a value of the wrong type, out of range, or not among an option's choices
            (raised by the group that holds it).
    """

    task: Literal[TASKS] = "classify"
    """task to run"""
    seed: int = 0
    """random seed (model init, batches, augmentation)"""
    out: str = "runs/hkjax"
    """output directory (config.toml, metrics.jsonl, checkpoints, summary.json, figures)"""
    resume: bool = False
    """resume from the newest checkpoint in OUT/checkpoints (with the run's own settings: a resume that changes what is trained is refused)"""
    overwrite: bool = False
    """replace the run already in OUT (its config, checkpoints, metrics and summary are deleted first); without it or --resume, a run directory is never written into"""
    progress: bool = True
    """show a progress bar"""
    network: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    solver: SolverConfig = SolverConfig()
    optimization: OptimizationConfig = OptimizationConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    editing: EditingConfig = EditingConfig()

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed={self.seed!r} must be an integer")
        _check_choices(self)
        for g in GROUPS:
            if not isinstance(getattr(self, g), _GROUP_TYPES[g]):
                raise TypeError(f"{g} must be a {_GROUP_TYPES[g].__name__}, not {type(getattr(self, g)).__name__}")

    def replace(self, **options) -> "Config":
        """A copy with ``options`` changed, by option name (``config.replace(lr=0.01,
        n_hidden=50)``) or by group (``config.replace(network=NetworkConfig(...))``); the
        copy is validated like a new :class:`Config`.

        Raises:
            TypeError: an unknown option name.
            ValueError: a value out of range or of the wrong type.
        """
        top, grouped = {}, {}
        for name, value in options.items():
            if name in _TOP or name in GROUPS:
                top[name] = value
            elif name in _GROUP_OF:
                grouped.setdefault(_GROUP_OF[name], {})[name] = value
            else:
                raise TypeError(f"unknown option {name!r}; options: {', '.join(OPTIONS)}")
        for g, values in grouped.items():
            top[g] = dataclasses.replace(top.get(g, getattr(self, g)), **values)
        return dataclasses.replace(self, **top)

    def options(self) -> dict[str, Any]:
        """Every option by name, ``{"task": ..., "n_hidden": ..., "lr": ...}`` (the groups
        flattened; names are unique across the groups)."""
        out = {n: getattr(self, n) for n in _TOP}
        for g in GROUPS:
            out.update(dataclasses.asdict(getattr(self, g)))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain data, one table per group, options left at ``None``
        omitted (TOML has no null): what :func:`to_toml` writes and :func:`from_dict` reads."""
        def plain(d):
            return {k: (plain(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
                    for k, v in d.items() if v is not None}

        return plain(dataclasses.asdict(self))


_GROUP_TYPES = {g: typing.get_type_hints(Config)[g] for g in GROUPS}
_TOP = tuple(f.name for f in dataclasses.fields(Config) if f.name not in GROUPS)
_GROUP_OF = {f.name: g for g in GROUPS for f in dataclasses.fields(_GROUP_TYPES[g])}
#: Every option name of a :class:`Config`, top level first, then group by group.
OPTIONS = (*_TOP, *_GROUP_OF)
_HINTS = {**typing.get_type_hints(Config, include_extras=True),
          **{n: h for g in GROUPS for n, h in typing.get_type_hints(_GROUP_TYPES[g], include_extras=True).items()}}


@dataclasses.dataclass(frozen=True)
class RetrievalConfig:
    """``hkjax retrieve``: retrieval of Hebbian memories from corrupted cues against the load P/N,
    by Hopfield and Hopfield-Kuramoto networks."""

    out: str = "runs/hkjax"
    """output directory (config.toml, metrics.jsonl, summary.json, retrieval.png)"""
    overwrite: bool = False
    """replace the run already in OUT"""
    seed: int = 0
    """random seed (patterns, cues)"""
    dim: int = 5
    """oscillator dimension D"""
    n_units: int = 100
    """number of threshold units N"""
    loads: Annotated[tuple[float, ...], _comma_separated(float, "loads", "LOAD,...", "numbers, e.g. 0.05,0.1")] = (0.02, 0.05, 0.1, 0.14, 0.2)
    """pattern loads P/N"""
    corruption: float = 0.2
    """fraction of flipped signs in the cue"""
    trials: int = 32
    """trials per load"""

    def __post_init__(self):
        if isinstance(self.loads, (str, list)):
            object.__setattr__(self, "loads", _tuple_of(float, self.loads, "loads", "numbers, e.g. 0.05,0.1"))
        _check_ints(self, {"dim": 2, "n_units": 2, "trials": 1})
        _check_numbers(self, ("corruption",))
        if not 0 <= self.corruption <= 1:
            raise ValueError(f"corruption={self.corruption} must lie in [0, 1]")
        if not self.loads or any(isinstance(x, bool) or not 0 < x < 10 for x in self.loads):
            raise ValueError(f"loads={self.loads!r}: pass positive loads P/N below 10, e.g. 0.05 0.1")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (what :func:`to_toml` writes)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


#: The groups of :class:`Config` each subcommand takes as flags (and shows in its ``--help``);
#: the top-level options (task, seed, out, resume, overwrite, progress) come with them.
COMMAND_GROUPS = {
    "train": ("network", "data", "solver", "optimization", "training", "evaluation"),
    "edit": GROUPS,
    "sweep": GROUPS,
}

#: Defaults that differ by subcommand (documented in ``--help``). Memory editing starts the
#: hidden and class oscillators at the reference, which lets the cue image act on the class
#: units through ``Gram(σ)``.
COMMAND_DEFAULTS = {"edit": {"osc_init": "reference"}, "sweep": {"out": "runs/sweep"}}

#: Named configurations (``hkjax train --preset NAME``; in Python
#: ``Config().replace(**PRESETS[NAME])``): values that replace the defaults, under any
#: ``--config`` file and flags. ``"paper"``: the configuration of the paper's MNIST scripts
#: (arXiv 2505.03648): 784 pixel + 100 hidden + 10 class units, small-world graphs of degree
#: 150, D = 5, ReLU, κ_H = 0.1, κ_K = 1 with the Kuramoto term, initial parameters
#: N(0, 0.01²), Tsit5 + PID (rtol 1e-3, atol 1e-6, t1 = 1) with at most 5000 steps, Lion at
#: learning rate 1e-4 decaying to 0.002 of it (≈ halved every 1000 of the 9000 updates), no
#: gradient clipping, batch 100.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "n_hidden": 100, "dim": 5, "degree": 150, "kuramoto_term": True, "kappa_h": 0.1, "kappa_k": 1.0,
        "init_scale": 0.01, "max_steps": 5000, "optimizer": "lion", "lr": 1e-4, "lr_decay": 0.002, "clip": 0.0,
        "batch_size": 100, "steps": 9000,
    },
}


#: What ``--preset NAME`` sets in ``hkjax edit`` besides :data:`PRESETS`. ``"paper"``: the
#: paper's memory edits (``scripts/memory_swap.py``, ``associative_memory_swap.py`` and the
#: conflations of its code) train 9000 updates (15 epochs of 600) with the classifier's
#: optimiser and schedule (Lion at 1e-4, halved every 1000 updates) and κ_H = κ_K = 1.
EDIT_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"edit_steps": 9000, "edit_lr": 1e-4, "kappa_h": 1.0, "kappa_k": 1.0},
}


def preset(name: str, command: str = "train") -> dict[str, Any]:
    """The options the preset ``name`` sets for the subcommand ``command`` (:data:`PRESETS`,
    and for ``"edit"`` :data:`EDIT_PRESETS` over them):
    ``Config().replace(**preset("paper", "edit"))``.

    Raises:
        ValueError: an unknown preset.
    """
    if name not in PRESETS:
        raise ValueError(f"--preset {name!r} is unknown; choose one of {', '.join(PRESETS)}")
    return {**PRESETS[name], **(EDIT_PRESETS.get(name, {}) if command == "edit" else {})}


#: Options that say how one invocation of a command runs, not what the run computes; left
#: out of :func:`command_line`.
INVOCATION_OPTIONS = ("resume", "overwrite", "progress", "time_limit")


def command_line(cfg: Config, command: str = "train") -> str:
    """The ``hkjax COMMAND`` line that runs ``cfg``: one flag for each option that differs from
    the command's defaults, after ``--preset NAME`` where that preset makes the line shorter,
    and ``--out`` last. :data:`INVOCATION_OPTIONS` are left out. Parsing the line gives
    ``cfg`` back, up to those: ``hkjax report`` shows it for a run whose own command line was
    a ``--resume``.

    Raises:
        ValueError: a command that takes no :class:`Config` (``train``, ``edit``, ``sweep`` do).
    """
    if command not in COMMAND_GROUPS:
        raise ValueError(f"command={command!r}: choose one of {', '.join(COMMAND_GROUPS)}")
    opts = cfg.options()
    names = [n for n in (*_TOP, *(n for g in COMMAND_GROUPS[command] for n, gn in _GROUP_OF.items() if gn == g))
             if n not in INVOCATION_OPTIONS and n != "out" and not (n == "task" and command == "edit")] + ["out"]

    def flags(base: dict) -> list[str]:
        words = []
        for n in names:
            v = opts[n]
            if v == base[n]:
                continue
            dashed = n.replace("_", "-")
            flag = "--from" if n == "from_run" else "--" + dashed
            if isinstance(v, bool):
                words.append(flag if v else "--no-" + dashed)
            else:
                words += [flag, ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
        return words

    defaults = {**Config().options(), **COMMAND_DEFAULTS.get(command, {})}
    best = flags(defaults)
    for name in PRESETS:
        with_preset = ["--preset", name, *flags({**defaults, **preset(name, command)})]
        if len(with_preset) < len(best):
            best = with_preset
    return shlex.join(["hkjax", command, *best])


def _typed(name: str, value, hint):
    """``value`` of a TOML file as the option's type: TOML's integers where a float is expected,
    arrays as tuples, ``steps = "small"``; anything else is checked by the group."""
    hint = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    if name in ("steps", "edit_steps") and value == "small":
        return SMALL_STEPS
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str) and typing.get_origin(hint) is tuple:
        return value  # comma-separated, as files written before lists were arrays: parsed by the group
    if value is not None and not _fits(value, hint):
        raise ValueError(f"{name}={value!r}: expected {_describe(hint)}")
    return value


def _fits(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint) if h is not type(None))
    if origin is tuple:
        return isinstance(value, tuple)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, "a string" if typing.get_origin(hint) is Literal else str(hint))


#: Options of other commands (``hkjax eval``'s run directory, ``hkjax retrieve``'s
#: experiment) that config files with every option at the top level list too: they do not
#: configure a run of train, edit or sweep, and are skipped when such a file is read.
_OTHER_COMMANDS = ("run", "n_units", "loads", "corruption", "trials")


def from_dict(d: dict[str, Any], base: Config | None = None) -> Config:
    """A :class:`Config` from plain data, e.g. a TOML table: one table per group
    (``{"network": {"n_hidden": 50}}``, as :meth:`Config.to_dict` gives) and/or options by name
    at the top level (``{"n_hidden": 50}``); unknown names are an error.

    Arguments:
        d: the data; ``steps = "small"`` means the smoke-test step count.
        base: the config whose other options are kept (default: ``Config()``).

    Raises:
        ValueError: an unknown name or a value of the wrong type / range.
    """
    flat = {}
    d = {k: v for k, v in d.items() if k not in _OTHER_COMMANDS}
    for k, v in d.items():
        if k in GROUPS and isinstance(v, dict):
            bad = sorted(set(v) - {f.name for f in dataclasses.fields(_GROUP_TYPES[k])})
            if bad:
                raise ValueError(f"unknown option(s) {', '.join(bad)} in [{k}]; its options: "
                                 f"{', '.join(f.name for f in dataclasses.fields(_GROUP_TYPES[k]))}")
            flat.update(v)
        else:
            flat[k] = v
    unknown = sorted(set(flat) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(OPTIONS)}")
    base = Config() if base is None else base
    return base.replace(**{k: _typed(k, v, _HINTS[k]) for k, v in flat.items()})


def load_toml(path, base: Config | None = None) -> Config:
    """Read a TOML config file: a run's ``config.toml``, or a file of options for
    ``--config`` (tables per group, or options at the top level; optionally all under
    ``[hkjax]``).

    Arguments:
        path: the ``.toml`` file.
        base: the config whose options the file does not set are kept (default: ``Config()``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid TOML, or bad names / values.
    """
    return from_dict(read_table(path), base)


def read_table(path) -> dict[str, Any]:
    """The raw table of a TOML config file (its ``[hkjax]`` table if it has one), unchecked:
    which options a file sets, before :func:`from_dict` fills in the defaults.

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


def to_toml(config: "Config | RetrievalConfig") -> str:
    """The config as TOML text (written by tomli-w; readable back with :func:`load_toml`)."""
    import tomli_w

    return tomli_w.dumps(config.to_dict())

"""Tests for the ``hkjax`` command (hkjax.cli, hkjax.config)."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
import shlex
import subprocess
import sys
import typing

import jax
import numpy as np
import pytest

import hkjax as hk
from hkjax import cli, config, data, runs

JAX_ENABLE_X64 = False

FAST = ["--no-progress", "--n-hidden", "8", "--max-steps", "16", "--degree", "4"]


@pytest.fixture(autouse=True)
def _no_figures(request, monkeypatch):
    """Runs of these tests skip their PNG figures (a third of a small run's time, ~8 s each)
    unless the test is marked ``figures``; the module-scoped ``trained_run`` (set up before
    this fixture) draws them, and test_plotting tests every figure."""
    if request.node.get_closest_marker("figures") is None:
        monkeypatch.setattr(runs, "figures", lambda *args, **kwargs: [])


def _flags(command: str, capsys) -> set[str]:
    """The flags ``hkjax COMMAND --help`` shows."""
    capsys.readouterr()
    assert cli.main([command, "--help"]) == 0
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", capsys.readouterr().out))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err, "expected an error message on stderr"
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- config --------------------------------------------------------------------------


def test_config_toml_round_trip(tmp_path):
    cfg = config.Config(task="addition").replace(n_hidden=12, associative=True, classes=(1, 0), lr=0.5)
    assert (cfg.network.n_hidden, cfg.editing.associative, cfg.editing.classes, cfg.optimization.lr) == (12, True, (1, 0), 0.5)
    p = tmp_path / "c.toml"
    p.write_text(config.to_toml(cfg))
    assert config.load_toml(p) == cfg
    text = p.read_text()
    for group in config.GROUPS:  # one table per group
        assert f"\n[{group}]\n" in text
    # paths with quotes, backslashes and line breaks, and tiny floats, come back as written
    odd = cfg.replace(out='runs/a "b"\\c\nd\te', from_run="C:\\runs\\x", lr=1e-7, init_scale=0.0, val=3)
    p.write_text(config.to_toml(odd))
    assert config.load_toml(p) == odd


def test_a_config_file_with_every_option_at_the_top_level_reads_the_same(tmp_path):
    """A config.toml with one flat table (options by name, lists as comma-separated text,
    and eval's and retrieve's options beside them) loads into the same groups."""
    flat = tmp_path / "flat.toml"
    flat.write_text('task = "edit"\nmodel = "hopfield"\nn_hidden = 7\nlr = 0.5\nclasses = "2,3"\nval = 0\n'
                    'steps = 40\nshared_steps = false\ntta = 1\nrun = ""\nn_units = 100\nloads = "0.02,0.05"\n'
                    'corruption = 0.2\ntrials = 32\n')
    cfg = config.load_toml(flat)
    assert cfg == config.Config(task="edit").replace(model="hopfield", n_hidden=7, lr=0.5, classes=(2, 3), val=0,
                                                     steps=40, shared_steps=False, tta=1)
    assert (cfg.network.model, cfg.data.val, cfg.training.steps, cfg.solver.shared_steps) == ("hopfield", 0, 40, False)


def test_options_by_name_and_by_group():
    """`replace` takes options by name (unique across the groups) or whole groups; `options`
    flattens them back; an unknown name is a TypeError naming it."""
    cfg = config.Config()
    assert cfg.replace(lr=0.5).optimization == config.OptimizationConfig(lr=0.5)
    net = config.NetworkConfig(model="hopfield", dim=3)
    assert cfg.replace(network=net, n_hidden=4).network == config.NetworkConfig(model="hopfield", dim=3, n_hidden=4)
    opts = cfg.options()
    assert set(opts) == set(config.OPTIONS) and opts["lr"] == cfg.optimization.lr and opts["task"] == "classify"
    assert config.from_dict(opts) == cfg
    with pytest.raises(TypeError, match="n_hiden"):
        cfg.replace(n_hiden=3)
    with pytest.raises(TypeError, match="network"):
        config.Config().replace(network=config.DataConfig())


def test_read_table_returns_only_what_the_file_sets(tmp_path):
    """`read_table` gives the keys a file sets (under `[hkjax]` or at the top), unfilled by
    defaults: how a run's config.toml tells whether it recorded a field."""
    top, nested = tmp_path / "top.toml", tmp_path / "nested.toml"
    top.write_text('model = "hopfield"\nn_hidden = 7\n')
    nested.write_text('[hkjax]\nformulation = "bcoo"\n')
    assert config.read_table(top) == {"model": "hopfield", "n_hidden": 7}
    assert config.read_table(nested) == {"formulation": "bcoo"}
    assert config.load_toml(top).network.formulation == "auto"  # the default, filled in by load_toml
    with pytest.raises(FileNotFoundError):
        config.read_table(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("x = [")
    with pytest.raises(ValueError, match="TOML"):
        config.read_table(tmp_path / "bad.toml")


def test_preset_replaces_the_defaults_under_the_config_file_and_flags(tmp_path, capsys):
    """`--preset paper` starts from the paper's configuration; a `--config` file and flags
    override it; an unknown preset is one line and exit code 2."""
    parse = lambda *a: cli.parse("train", list(a))[0].options()  # noqa: E731
    paper = parse("--preset", "paper")
    assert {k: paper[k] for k in config.PRESETS["paper"]} == config.PRESETS["paper"]
    assert paper["model"] == config.Config().network.model  # what the preset does not name stays at the default
    toml = tmp_path / "c.toml"
    toml.write_text("degree = 40\nlr = 0.5\n")
    mixed = parse("--preset", "paper", "--config", str(toml), "--lr", "0.25")
    assert (mixed["degree"], mixed["lr"], mixed["optimizer"]) == (40, 0.25, "lion")
    # the edit's preset adds the paper's edit schedule and time constants to the classifier's
    edit = cli.parse("edit", ["--preset", "paper"])[0].options()
    assert {k: edit[k] for k in config.PRESETS["paper"] if k not in config.EDIT_PRESETS["paper"]} == \
        {k: v for k, v in config.PRESETS["paper"].items() if k not in config.EDIT_PRESETS["paper"]}
    assert (edit["edit_steps"], edit["edit_lr"], edit["kappa_h"], edit["kappa_k"]) == (9000, 1e-4, 1.0, 1.0)
    assert paper["edit_steps"] == config.EditingConfig().edit_steps  # train's preset leaves editing alone
    assert cli.main(["train", "--preset", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--preset" in err[0] and "paper" in err[0]


def test_datasets_other_than_the_digits_hold_out_a_validation_split_by_default(tmp_path):
    """Without `--val`, `--dataset` other than the digits holds out 5000 training images (a
    twelfth of `--max-train`); the digits hold out none; `--val`, a preset or a config file
    that sets it wins."""
    held = lambda *a: cli.parse("train", list(a))[0].data.validation_size  # noqa: E731
    assert held() == 0 and cli.parse("train", [])[0].data.val is None
    assert held("--dataset", "fashion-mnist") == config.DataConfig.VAL_DEFAULT == 5000
    assert held("--dataset", "idx:/some/dir", "--max-train", "1200") == 100
    assert held("--dataset", "fashion-mnist", "--val", "0") == 0
    toml = tmp_path / "c.toml"
    toml.write_text("val = 7\n")
    assert held("--dataset", "fashion-mnist", "--config", str(toml)) == 7


def test_config_validation():
    with pytest.raises(ValueError, match="n_hidden"):
        config.NetworkConfig(n_hidden=0)
    with pytest.raises(ValueError, match="unknown"):
        config.Config().replace(model="ising")
    with pytest.raises(ValueError, match="unknown config key"):
        config.from_dict({"n_hiden": 3})
    with pytest.raises(ValueError, match="integer"):
        config.from_dict({"steps": "many"})
    assert config.from_dict({"steps": "small"}).training.steps == config.SMALL_STEPS
    assert config.EditingConfig(classes="2, 5,7").classes == (2, 5, 7)
    with pytest.raises(ValueError, match="classes"):
        config.EditingConfig(classes=())
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="ema"):
            config.OptimizationConfig(ema=bad)
    with pytest.raises(ValueError, match="ema"):
        config.from_dict({"ema": "0.99"})  # TOML values keep their types: a string is not a number
    assert config.from_dict({"optimization": {"ema": 0.99}}).optimization.ema == 0.99
    with pytest.raises(ValueError, match=r"\[network\]"):
        config.from_dict({"network": {"lr": 0.1}})
    for bad in (dict(tilt=-1.0), dict(tilt=200.0), dict(zoom=1.0), dict(zoom=float("inf"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            config.DataConfig(**bad)
    # --eval-solver-steps: the evaluations relax with as many constant steps of the same method
    cfg = config.Config().replace(solver_method="euler", solver_steps=24, eval_solver_steps=48)
    task = runs.build_task(cfg, data.load_digits("test"))
    assert (task.relax_config.steps, runs.evaluation_task(cfg, task).relax_config.steps) == (24, 48)
    assert runs.evaluation_task(cfg, task).relax_config.solver == "euler"
    assert runs.evaluation_task(cfg.replace(eval_solver_steps=0), task) is task
    # the methods --solver-method names are those the relaxation knows
    assert typing.get_args(typing.get_type_hints(config.SolverConfig)["solver_method"]) == tuple(hk.tasks.SOLVERS)
    assert config.Config().replace(solver_method="euler", solver_steps=32).solver.solver_method == "euler"


# -- help and errors --------------------------------------------------------------------


def test_help_exits_zero_and_documents_defaults(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    import dataclasses

    train_groups = [g for g in config.GROUPS if g in config.COMMAND_GROUPS["train"]]
    for group in train_groups:
        for f in dataclasses.fields(getattr(config.Config(), group)):
            assert "--" + f.name.replace("_", "-") in out, f.name
    assert "--edit-lr" not in out and "--associative" not in out  # editing is edit's
    assert "(default: digits)" in out and "(default: 100)" in " ".join(out.split())


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--model", "ising"], "invalid choice"),
        (["train", "--n-hiden", "3"], "did you mean --n-hidden?"),
        (["edit", "--classes", "0,x"], "--classes"),
        (["train", "--edit-lr", "0.1"], "Unrecognized options: --edit-lr"),
        (["train", "--steps", "many"], "steps"),
        (["train", "--n-hidden", "0"], "n_hidden"),
        (["train", "--tilt", "-5"], "tilt"),
        (["train", "--dataset", "idx:/nonexistent/dir"], "nonexistent"),
        (["train", "--dataset", "mnist"], "dataset"),
        (["train", "--config", "/nonexistent.toml"], "nonexistent.toml"),
        (["train", "--task", "retrieve"], "retrieve"),
        (["eval", "--run", "/nonexistent/run"], "does not exist"),
        (["edit", "--from", "/nonexistent/run"], "does not exist"),
        (["edit", "--classes", "3"], "two distinct classes"),
        (["edit", "--edited-fraction", "1"], "edited_fraction=1.0 must lie in [0, 1)"),
        (["edit", "--edited-under-cue1", "--edited-fraction", "0.3"], "needs --associative"),
        (["frobnicate"], "unknown command"),
        (["--steps", "3"], "choose one of"),
        (["retrieve", "--loads", "a,b"], "loads"),
        (["train", "--formulation", "sparse"], "invalid choice"),
        (["train", "--steps", "1", "--formulation", "all"], "complete graph"),
        (["edit", "--solver-method", "euler"], "--solver-steps"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv + ["--out", str(tmp_path / "out")] if argv[0] in cli.COMMANDS else argv) == 2
    err = _one_error_line(capsys)
    assert match in err


def test_bad_toml_and_unreadable_checkpoint_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [unclosed")
    assert cli.main(["train", "--config", str(bad)]) == 2
    assert "TOML" in _one_error_line(capsys)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("stepz = 3\n")
    assert cli.main(["train", "--config", str(unknown)]) == 2
    assert "stepz" in _one_error_line(capsys)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(config.to_toml(config.Config().replace(model="hopfield", n_hidden=8)))
    (run / "checkpoints" / "ckpt_00000001.hkjax").write_bytes(b"not a checkpoint at all")
    assert cli.main(["eval", "--run", str(run)]) == 2
    assert "checkpoint" in _one_error_line(capsys)


def test_python_dash_m_help():
    r = subprocess.run([sys.executable, "-m", "hkjax", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "retrieve" in r.stdout


def test_help_into_a_closed_pipe_ends_without_a_traceback():
    """`hkjax train --help | head -1`: the reader is gone before the help is written."""
    p = subprocess.Popen([sys.executable, "-m", "hkjax", "train", "--help"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # before the command has imported anything, let alone printed
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and "Traceback" not in err, err


# -- end to end -----------------------------------------------------------------------


def test_ema_run_evaluates_and_reloads_the_average(tmp_path, capsys):
    """--ema: the summary's accuracy is the averaged model's, and `hkjax eval` reloads that
    average (not the optimiser's iterate) from the checkpoint."""
    from hkjax import checkpoint, tasks

    out = tmp_path / "run"
    argv = ["train", "--task", "classify", "--model", "hopfield", "--steps", "6", "--lr", "0.05", "--ema", "0.5", "--tta", "1",
            "--shift", "1", "--tilt", "5", "--zoom", "0.05", "--max-train", "100", "--max-test", "40", "--out", str(out)] + FAST
    with jax.enable_x64(False):
        assert cli.main(argv) == 0
        summary = json.loads((out / "summary.json").read_text())
        _, task, model = runs.load_run(out)
        ck = checkpoint.latest(out / "checkpoints")
        raw = checkpoint.load(ck, {"model": model, "opt_state": runs.opt_state_like(config.load_toml(out / "config.toml"), model),
                                   "step": jax.numpy.asarray(0), "key": jax.random.key(0), "ema": model})[0]
    assert config.load_toml(out / "config.toml").options()["ema"] == 0.5
    assert (task.shift, task.tilt, task.zoom) == (1, 5.0, 0.05)  # the augmentation flags reach the task
    w_avg, w_ema, w_raw = (tasks.hopfield_parameters(m)[0] for m in (model, raw["ema"], raw["model"]))
    assert (w_avg == w_ema).all() and not (w_avg == w_raw).all()
    capsys.readouterr()
    assert cli.main(["eval", "--run", str(out), "--max-test", "40"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["test_accuracy"] == summary["test_accuracy"]
    # --tta: reported next to (never instead of) the plain accuracy
    assert summary["tta"] == 1 and 0 <= summary["test_accuracy_tta"] <= 1
    assert ev["test_accuracy_tta"] == summary["test_accuracy_tta"]


def test_a_run_is_repeated_in_python_from_its_config_toml(tmp_path):
    """`hk.runs.train(load_toml(RUN/config.toml))` repeats a run of `hkjax train`: the same
    configuration, the same trained parameters and the same test accuracy."""
    from hkjax import tasks

    out, again = tmp_path / "cli", tmp_path / "python"
    argv = ["train", "--model", "hopfield", "--steps", "3", "--lr", "0.05", "--max-train", "64", "--max-test", "32",
            "--batch-size", "8", "--out", str(out)] + FAST
    with jax.enable_x64(False):
        assert cli.main(argv) == 0
        cfg = config.load_toml(out / "config.toml")
        summary = runs.train(cfg.replace(out=str(again)))
        (w0, _), (w1, _) = (tasks.hopfield_parameters(runs.load_run(d)[2]) for d in (out, again))
    assert config.load_toml(again / "config.toml") == cfg.replace(out=str(again))
    np.testing.assert_array_equal(w0, w1)
    assert summary["test_accuracy"] == json.loads((out / "summary.json").read_text())["test_accuracy"]


def test_val_holds_out_the_last_training_examples(tmp_path, capsys, monkeypatch):
    """--val N: the last N of the (--max-train) training examples are never trained on, are
    evaluated at every evaluation instead of the test split (evaluated once, at the end), and
    give summary.json's val_accuracy: the last evaluation during training, not solved again."""
    from hkjax import train

    solved = []  # the sizes of the splits evaluated
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda model, task, arrays, **kw: solved.append(len(arrays["labels"]))
                        or evaluate(model, task, arrays, **kw))

    cfg = config.Config().replace(max_train=60, val=20, max_test=30)
    tr, te = runs.load_data(cfg)
    train_arrays, val_arrays, test_arrays = runs.splits(cfg, tr, te)
    assert (train_arrays["images"] == tr.images[:40]).all() and (val_arrays["images"] == tr.images[40:60]).all()
    assert len(test_arrays["labels"]) == 30 and runs.splits(cfg.replace(val=0), tr, te)[1] is None

    out = tmp_path / "run"
    base = ["train", "--model", "hopfield", "--steps", "2", "--eval-every", "1", "--max-train", "60", "--val", "20",
            "--max-test", "30", "--tta", "1"] + FAST
    argv = base + ["--out", str(out)]
    with jax.enable_x64(False):
        assert cli.main(argv) == 0
        _, task, model = runs.load_run(out)
        ev = train.evaluate(model, task, val_arrays, key=jax.random.key(10_000))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_val"] == 20 and summary["val_accuracy"] == ev["accuracy"]
    assert summary["val_loss"] == pytest.approx(ev["loss"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # evaluations during training use the validation split alone; the test split is evaluated once, at the end
    assert [(r["step"], r["split"]) for r in rows if r["split"] != "train"] == [(1, "val"), (2, "val")]
    assert rows[-1]["accuracy"] == summary["val_accuracy"] and solved.count(20) == 2 + 1  # + the check above
    assert summary["n_test"] == 30 and 0 <= summary["test_accuracy"] <= 1
    log = capsys.readouterr().err
    assert f"validation {summary['val_accuracy']:.4f}, with test-time augmentation" in log  # both on the log line
    # holding out everything, or changing --val on --resume, is refused with nothing changed
    before = (out / "metrics.jsonl").read_text()
    assert cli.main(base + ["--val", "60", "--out", str(tmp_path / "other")]) == 2
    assert "--val 60 holds out all 60" in capsys.readouterr().err and not (tmp_path / "other").exists()
    assert cli.main(argv + ["--val", "10", "--resume", "--steps", "3"]) == 2
    assert "val=20" in capsys.readouterr().err and (out / "metrics.jsonl").read_text() == before


def test_train_and_evaluate_a_hierarchical_classifier(tmp_path):
    """`hkjax train --model hierarchical`: pixel, hidden and softmax class layers bound by
    dense synapses, trained, saved and evaluated from its run directory."""
    out = tmp_path / "hier"
    with jax.enable_x64(False):
        assert cli.main(["train", "--model", "hierarchical", "--steps", "3", "--n-hidden", "6", "--no-progress",
                         "--max-train", "40", "--max-test", "20", "--out", str(out)]) == 0
        before = json.loads((out / "summary.json").read_text())["test_accuracy"]
        assert cli.main(["eval", "--run", str(out), "--max-test", "20"]) == 0
    assert json.loads((out / "eval.json").read_text())["test_accuracy"] == before
    assert config.load_toml(out / "config.toml").options()["model"] == "hierarchical"


#: The runs of `edit_run` (20 test images, as many as validation images: one compiled
#: evaluation serves both splits).
EDIT_SMALL = ["--no-progress", "--max-train", "60", "--max-test", "20", "--degree", "4"]


@pytest.fixture(scope="module")
def edit_run(tmp_path_factory):
    """``(classifier, edit, stderr)``: a small Hopfield classifier trained with a size and a
    relaxation of its own (n_hidden 5, 3 constant solver steps, t1 0.5), and `hkjax edit
    --from` it (additive coupling, test-time augmentation, a validation split), with its
    figures. One edit run for the tests of the edit command."""
    root = tmp_path_factory.mktemp("edit")
    clf, out = root / "clf", root / "edit"
    err = io.StringIO()
    with jax.enable_x64(False), contextlib.redirect_stderr(err):  # module-scoped: before the per-test x64 switch
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(runs, "figures", lambda *args, **kwargs: [])  # the classifier's are not needed
            assert cli.main(["train", "--model", "hopfield", "--steps", "2", "--n-hidden", "5", "--solver-steps", "3",
                             "--t1", "0.5", "--out", str(clf)] + EDIT_SMALL) == 0
        assert cli.main(["edit", "--from", str(clf), "--edit", "swap", "--classes", "0,1", "--associative",
                         "--edit-steps", "2", "--n-hidden", "9", "--coupling", "additive", "--tta", "1", "--val", "20",
                         "--out", str(out)] + EDIT_SMALL) == 0
    return clf, out, err.getvalue()


@pytest.mark.slow
def test_edit_keeps_the_classifiers_size_and_relaxation(edit_run, tmp_path, capsys):
    """`hkjax edit --from RUN` relaxes the frozen classifier as it was trained (n_hidden, t1,
    max_steps, solver_steps of RUN), and --tta adds test-time-augmented cue accuracies."""
    clf, out, err = edit_run
    # a validation split without an image of a cue class is refused before anything is trained
    refused = tmp_path / "edit"
    assert cli.main(["edit", "--from", str(clf), "--associative", "--val", "1", "--out", str(refused)] + EDIT_SMALL) == 2
    assert "--val 1:" in capsys.readouterr().err and not refused.exists()
    cfg = config.load_toml(out / "config.toml")
    assert (cfg.network.n_hidden, cfg.solver.solver_steps, cfg.solver.t1, cfg.solver.max_steps) == (5, 3, 0.5, config.SolverConfig().max_steps)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tta"] == 1
    assert all(0 <= summary[k] <= 1 for k in ("test_accuracy_cue0_tta", "test_accuracy_cue1_tta", "test_accuracy_tta"))
    assert summary["n_val"] == 20
    assert summary["val_accuracy"] == pytest.approx((summary["val_accuracy_cue0"] + summary["val_accuracy_cue1"]) / 2)
    assert "n_hidden=5" in err
    # a relaxation given explicitly is the edit's own (and a line says so); the size is the classifier's
    capsys.readouterr()
    own, _, _ = runs._classifier_from(config.Config().replace(from_run=str(clf), n_hidden=9, solver_method="euler",
                                                                solver_steps=7))
    assert (own.network.n_hidden, own.solver.solver_method, own.solver.solver_steps, own.solver.t1) == (5, "euler", 7, 0.5)
    assert "solver_steps=7, solver_method=euler" in capsys.readouterr().err


@pytest.mark.slow
def test_edit_with_the_lora_baseline(edit_run, tmp_path):
    """`hkjax edit --model hopfield_lora` learns the edit with a static low-rank synapse
    around the same frozen classifier (no oscillators): the Hopfield weights stay as they
    were, and the run evaluates back from its directory. With `--distill` the classifier's
    class scores are the targets of the examples that keep their label, and `--kept-weight`
    reaches the task."""
    clf, _, _ = edit_run
    out = tmp_path / "lora"
    assert cli.main(["edit", "--from", str(clf), "--model", "hopfield_lora", "--associative", "--edit-steps", "2",
                     "--distill", "--kept-weight", "2", "--val", "0", "--out", str(out)] + EDIT_SMALL) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "hopfield_lora" and summary["hopfield_frozen"]
    assert "--distill" in summary["command"]
    opts = config.load_toml(out / "config.toml").options()
    assert opts["model"] == "hopfield_lora" and opts["distill"] is True and opts["kept_weight"] == 2
    assert runs.build_task(config.load_toml(out / "config.toml"), data.load_digits("test"), kind="edit").kept_weight == 2
    assert cli.main(["eval", "--run", str(out), "--max-test", "20"]) == 0
    from hkjax import report
    assert report.rows([{**summary, "run": "lora"}])[0]["task"] == "edit: swap 0↔1, associative"


def test_formulation_flag_reaches_the_network_and_trains_alike(tmp_path):
    """`--formulation` picks how the graph terms are evaluated; the same run in two
    formulations follows the same losses (float32 round-off) and records its choice. Its
    checkpoints hold the graphs' edges but none of a layout's index arrays, so the run
    trained with one layout evaluates with another (its config.toml edited from dense to
    tiles, whose evaluation the tiles run has compiled; resuming loads the same way)."""
    from hkjax import checkpoint

    small = ["--no-progress", "--n-hidden", "6", "--degree", "4", "--max-train", "40", "--max-test", "20",
             "--steps", "3", "--batch-size", "4", "--log-every", "1", "--eval-every", "3", "--solver-steps", "2"]
    losses = {}
    for form in ("dense", "tiles"):
        out = tmp_path / form
        with jax.enable_x64(False):
            assert cli.main(["train", "--model", "hopfield_kuramoto", "--kuramoto-term", "--formulation", form,
                             "--out", str(out)] + small) == 0
        assert config.load_toml(out / "config.toml").options()["formulation"] == form
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[form] = [r["loss"] for r in rows if r.get("split") == "train"]
    assert len(losses["dense"]) == 3
    assert losses["dense"] == pytest.approx(losses["tiles"], rel=1e-4)

    run = tmp_path / "dense"
    paths = [r["path"] for r in checkpoint.leaves(checkpoint.latest(run / "checkpoints"))]
    assert any(p.endswith(".pairs.i") for p in paths)
    assert not [p for p in paths if p.rsplit(".", 1)[-1] in hk.synapses.Pairs.derived_fields]
    toml = run / "config.toml"
    toml.write_text(toml.read_text().replace('formulation = "dense"', 'formulation = "tiles"'))
    assert config.load_toml(toml).options()["formulation"] == "tiles"
    before = json.loads((run / "summary.json").read_text())["test_accuracy"]
    with jax.enable_x64(False):
        assert cli.main(["eval", "--run", str(run), "--max-test", "20"]) == 0
    assert json.loads((run / "eval.json").read_text())["test_accuracy"] == before


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small Hopfield classifier trained through the CLI (shared by the end-to-end tests)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--task", "classify", "--model", "hopfield", "--steps", "small", "--lr", "0.01",
            "--max-test", "150", "--out", str(out)] + FAST
    with jax.enable_x64(False):  # module-scoped: runs before the per-test x64 switch
        assert cli.main(argv) == 0
    return out


def test_eval_solver_steps_relax_every_evaluation_of_the_run(tmp_path, capsys):
    """`--eval-solver-steps N`: the summary of a run trained with `--solver-steps 2`, and
    `hkjax eval` of it, relax with N constant steps instead."""
    out = tmp_path / "run"
    assert cli.main(["train", "--task", "classify", "--model", "hopfield", "--steps", "2", "--solver-steps", "2",
                     "--eval-solver-steps", "5", "--max-test", "40", "--out", str(out)] + FAST) == 0
    summary = json.loads((out / "summary.json").read_text())
    cfg, task, model = runs.load_run(out)
    test, key = runs.arrays(runs.load_data(cfg)[1], 40), runs._eval_key(cfg)
    fine = hk.train.evaluate(model, runs.evaluation_task(cfg, task), test, key=key)["loss"]
    assert summary["test_loss"] == pytest.approx(fine)
    assert summary["test_loss"] != pytest.approx(hk.train.evaluate(model, task, test, key=key)["loss"])
    capsys.readouterr()
    assert cli.main(["eval", "--run", str(out), "--max-test", "40"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_loss"] == pytest.approx(fine)


@pytest.mark.slow
def test_train_eval_plot_end_to_end(trained_run, capsys):
    out = trained_run
    for name in ("config.toml", "metrics.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    assert list((out / "checkpoints").glob("ckpt_*.hkjax"))
    summary = json.loads((out / "summary.json").read_text())
    assert {"test_accuracy", "test_loss", "steps", "wall_seconds", "seed"} <= set(summary)
    assert summary["steps"] == config.SMALL_STEPS
    assert summary["test_accuracy"] > 0.3  # chance is 0.1
    assert config.load_toml(out / "config.toml").options()["model"] == "hopfield"
    try:
        import hkjax.plotting  # noqa: F401

        assert (out / "learning_curves.png").is_file() and (out / "confusion_matrix.png").is_file()
    except ImportError:
        pass
    capsys.readouterr()
    assert cli.main(["eval", "--run", str(out), "--max-test", "150"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["test_accuracy"] == pytest.approx(summary["test_accuracy"])


@pytest.mark.figures
@pytest.mark.slow
def test_edit_end_to_end(edit_run):
    """`hkjax edit --edit swap --classes 0,1 --associative` around a frozen classifier: the
    summary, the figures and the recorded config of the run."""
    _, out, _ = edit_run
    summary = json.loads((out / "summary.json").read_text())
    assert {"accuracy_before_edit", "test_accuracy_cue0", "test_accuracy_cue1", "test_accuracy"} <= set(summary)
    assert summary["hopfield_frozen"] is True
    assert 0 <= summary["test_accuracy_cue0"] <= 1 and 0 <= summary["test_accuracy_cue1"] <= 1
    assert 0 <= summary["test_accuracy_edited"] <= 1
    # --max-test 20: the summary says the accuracies are of the first 20 test images of the split
    assert summary["test_images"] == 20 and summary["test_images_split"] == len(hk.data.load_digits("test"))
    try:
        import hkjax.plotting  # noqa: F401

        assert summary["figures"] and all(pathlib.Path(f).is_file() for f in summary["figures"])
        # an associative edit: one confusion matrix under each cue, none of the two mixed
        names = {pathlib.Path(f).name for f in summary["figures"]}
        assert {"confusion_matrix_cue0.png", "confusion_matrix_cue1.png"} <= names and "confusion_matrix.png" not in names
    except ImportError:
        pass
    cfg = config.load_toml(out / "config.toml")
    assert cfg.task == "edit" and cfg.network.osc_init == "reference" and cfg.network.kuramoto_term is False


def test_the_accuracy_on_changed_labels_counts_only_the_examples_an_edit_changes():
    """An edit's evaluation holds every test image under cue 0, then under cue 1; the accuracy
    on changed labels is over the examples whose target is not the image's own label."""
    labels = np.asarray([0, 1, 2])
    ev = {"targets": np.asarray([0, 1, 2, 1, 0, 2]), "predictions": np.asarray([0, 0, 2, 1, 1, 0])}
    assert runs._edited_accuracy(ev, labels) == 0.5  # under cue 1: image 0 -> 1 right, image 1 -> 0 wrong
    non = {"targets": np.asarray([1, 0, 2, 1, 0, 2]), "predictions": np.asarray([1, 0, 0, 1, 2, 0])}
    assert runs._edited_accuracy(non, labels) == 0.75  # non-associative: both halves change


def test_the_validation_split_reports_the_changed_labels_as_the_test_split_does():
    """Settings are chosen on the validation split, so it reports the per-cue accuracies and
    the accuracy on changed labels of the same evaluation as the test split (here the fit's
    last evaluation of it, which is not solved again)."""
    from hkjax import train as training

    ev = {"targets": np.asarray([0, 1, 2, 1, 0, 2]), "predictions": np.asarray([0, 0, 2, 1, 1, 0]),
          "accuracy": 0.5, "loss": 1.0}
    res = training.FitResult(model=None, opt_state=None, step=1, history=[], wall_time=0.0, evaluations={"val": ev})
    val = runs._validation(config.Config(), res, None, {"labels": np.asarray([0, 1, 2])}, cues=True)
    assert (val["val_accuracy_cue0"], val["val_accuracy_cue1"], val["val_accuracy_edited"]) == (2 / 3, 1 / 3, 0.5)
    assert "val_accuracy_edited" not in runs._validation(config.Config(), res, None, {"labels": np.asarray([0, 1, 2])})


def test_the_summary_records_the_highest_load_average_during_the_run(tmp_path, monkeypatch):
    """Other work that shared the cores and ended before the run did leaves no trace in the load
    average at the end: the summary also records the highest one read during the run."""
    import threading
    import time

    loads = iter([4.2, 2.5, 2.1])
    read = threading.Event()

    def getloadavg():
        value = next(loads, 1.9)
        if value == 1.9:
            read.set()
        return (0.0, value, 0.0)

    monkeypatch.setattr(runs.os, "getloadavg", getloadavg)
    watch = runs._LoadWatch(first=0.01, every=0.01)
    assert read.wait(10)
    summary = runs._write_summary(tmp_path, {"task": "classify"}, None, time.time(), load=watch)
    assert summary["load_average_max"] == 4.2 and summary["load_average"] == 1.9
    assert json.loads((tmp_path / "summary.json").read_text())["load_average_max"] == 4.2
    short = runs._LoadWatch()  # a run shorter than the 5-minute average: only the load at the end
    assert "load_average_max" not in runs._write_summary(tmp_path, {"task": "classify"}, None, time.time(), load=short)
    # a run that raised leaves its watch as garbage: the thread ends instead of reading on
    before = set(threading.enumerate())
    runs._LoadWatch(first=0.01, every=0.01)
    (thread,) = set(threading.enumerate()) - before
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.figures
@pytest.mark.slow
def test_no_arguments_runs_the_demo(tmp_path, monkeypatch, capsys):
    """The README's first command, `python -m hkjax`, trains a small classifier on the
    embedded digits and prints a test accuracy far above chance (0.1)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    acc = float(out.split("test accuracy ")[1].split()[0])
    assert acc > 0.7, out
    summary = json.loads((tmp_path / "runs" / "demo" / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(acc, abs=1e-3)


# -- hkjax sweep ----------------------------------------------------------------------

SWEEP_FAST = ["--no-progress", "--n-hidden", "8", "--max-steps", "16", "--degree", "4", "--coupling", "additive"]


def test_sweep_param_grammar():
    from hkjax import _sweep_cli as sc

    name, v = sc.parse_param("coupling=0:0.01:5")
    assert name == "coupling" and v.tolist() == [0.0, 0.0025, 0.005, 0.0075, 0.01]
    assert sc.parse_param("seed=0:7")[1].tolist() == list(range(8))
    assert sc.parse_param("dim=3,5")[1].tolist() == [3, 5]
    assert sc.parse_param("kappa-h=0.5")[0] == "kappa_h"
    assert sc.parse_param("seed=0:3:4")[1].dtype.kind == "i"  # integer parameter from a linspace


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--param", "bogus=1,2"], "unknown parameter 'bogus'"),
        (["--param", "coupling"], "NAME=VALUES"),
        (["--param", "coupling=0:1:x"], "not an integer"),
        (["--param", "coupling=0:1:2:3"], "start:stop:num"),
        (["--param", "coupling=0,,1"], "empty item"),
        (["--param", "coupling=a,b"], "not a number"),
        (["--param", "seed=5:2"], "start <= stop"),
        (["--param", "seed=0.5,1"], "integers"),
        (["--param", "kappa_h=0,1"], "positive"),
        (["--param", "noise=-1"], ">= 0"),
        (["--param", "seed=1", "--param", "seed=2"], "twice"),
        (["--param", "dim=1"], "dim=1"),
        (["--metric", "nope"], "--metric"),
        (["--images", "0"], "--images"),
        (["--plot", "dim"], "--plot"),
        (["--task", "retrieve"], "retrieve"),
        (["--from", "/nonexistent/run"], "does not exist"),
        (["--model", "hopfield", "--param", "coupling=0,1"], "coupling"),
        (["--param", "coupling=0,1", "--param", "dim=3", "--from", "/x"], "with --from"),
    ],
)
def test_sweep_bad_input_exits_2_with_one_line(argv, match, capsys, tmp_path):
    assert cli.main(["sweep", *argv, "--out", str(tmp_path / "out")] + SWEEP_FAST) == 2
    assert match in _one_error_line(capsys)


def test_sweep_unwritable_out_exits_2(capsys, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    for out, match in ((f, "not a directory"), (f / "sub", "not a writable directory")):
        assert cli.main(["sweep", "--param", "seed=0", "--out", str(out)] + SWEEP_FAST) == 2
        assert match in _one_error_line(capsys)


def test_sweep_help_documents_options_and_grammar(capsys):
    assert cli.main(["sweep", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for opt in ("--param", "--metric", "--images", "--plot", "--chunk-size", "--coupling", "--from"):
        assert opt in out
    assert "(default: energy)" in out and "(default: 4)" in out and "(default: runs/sweep)" in out
    assert "start:stop:num" in out and "kappa_h" in out and "seed=0:7" in out


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """``hkjax sweep`` at tiny size: 2 κ_H × 2 couplings × 2 seeds, one static dim, 2 images."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    argv = ["sweep", "--param", "kappa_h=0.05,0.2", "--param", "coupling=0:0.02:2", "--param", "seed=0:1",
            "--param", "dim=3", "--images", "2", "--metric", "energy,order", "--out", str(out)] + SWEEP_FAST
    with jax.enable_x64(False):
        assert cli.main(argv) == 0
    return out


def test_sweep_end_to_end_files(sweep_run):
    import csv

    import numpy as np
    from matplotlib.image import imread

    rows = list(csv.DictReader((sweep_run / "sweep.csv").open()))
    assert len(rows) == 8
    assert list(rows[0]) == ["kappa_h", "coupling", "seed", "dim", "energy", "order", "overlap", "accuracy",
                             "prediction", "steps", "result"]
    assert np.all(np.isfinite([[float(v) for v in r.values()] for r in rows]))
    assert all(r["result"] == "0" and r["dim"] == "3" for r in rows)
    assert len({r["energy"] for r in rows}) > 2  # the parameters reach the computation
    s = json.loads((sweep_run / "sweep.json").read_text())
    assert s["grid"] == {"kappa_h": [0.05, 0.2], "coupling": [0.0, 0.02], "seed": [0, 1], "dim": [3]}
    assert s["config"]["network"]["n_hidden"] == 8 and s["continuous"] == ["kappa_h", "coupling", "seed"] and len(s["rows"]) == 8
    for metric in ("energy", "order"):  # a heatmap over kappa_h × coupling (seeds averaged)
        png = sweep_run / f"sweep_{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(png).ndim == 3


def test_sweep_row_equals_a_direct_relax(sweep_run):
    """One grid point (κ_H = 0.2, c = 0.02, seed 1) against hk.relax on the network built
    directly with those values: the sweep's parameter substitution and batching are exact."""
    import csv

    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    import hkjax as hk

    row = [r for r in csv.DictReader((sweep_run / "sweep.csv").open())
           if (r["kappa_h"], r["coupling"], r["seed"]) == ("0.2", "0.02", "1")]
    assert len(row) == 1
    row = row[0]
    with jax.enable_x64(False):
        net = hk.tasks.build_network("hopfield_kuramoto", n=64 + 8 + 10, dim=3, k=4, rewire=0.1, coupling="additive",
                                     kappa_h=0.2, kappa_k=1.0, init_scale=0.01, kuramoto_graph=False,
                                     key=jax.random.key(0))
        net = eqx.tree_at(lambda m: m.synapses[-1].weights, net, jnp.asarray(0.02))
        task = hk.Classification(model="hopfield_kuramoto", n_pixels=64, n_hidden=8, n_classes=10, dim=3,
                                 relax_config=hk.tasks.RelaxConfig())
        test = hk.data.load_digits("test")

        @eqx.filter_jit
        def direct(net, example, key):
            sol = hk.relax(net, task.init_state(example, key), t1=1.0, max_steps=16, throw=False)
            return sol.energy[-1], jnp.linalg.norm(jnp.mean(sol.state["sigma"], axis=0)), sol.stats["num_steps"]

        energy, order, steps = [], [], []
        for i in range(2):
            example = {"images": jnp.asarray(test.images[i]), "labels": jnp.asarray(test.labels[i])}
            _, ks = jax.random.split(jax.random.fold_in(jax.random.key(1), i))
            e, o, n = direct(net, example, ks)
            energy.append(float(e))
            order.append(float(o))
            steps.append(int(n))
    np.testing.assert_allclose(float(row["energy"]), np.mean(energy), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(row["order"]), np.mean(order), rtol=1e-4, atol=1e-6)
    assert float(row["steps"]) == np.mean(steps)


def test_sweep_line_plot_for_one_axis(tmp_path):
    import numpy as np

    from hkjax import _sweep_cli as sc

    table = {"coupling": np.repeat([0.0, 0.1, 0.2], 2), "seed": np.tile([0, 1], 3), "energy": np.arange(6.0)}
    files = sc._figures(table, {"coupling": np.asarray([0.0, 0.1, 0.2]), "seed": np.asarray([0, 1])},
                        {"metric": ["energy"], "plot": []}, tmp_path)
    assert files == [str(tmp_path / "sweep_energy.png")]
    assert (tmp_path / "sweep_energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_distributed_needs_the_whole_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    assert cli.main(["sweep", "--distributed", "--out", str(tmp_path / "out")] + SWEEP_FAST) == 2
    assert "JAX_PROCESS_ID" in _one_error_line(capsys)


def test_train_distributed_needs_the_whole_environment(capsys, tmp_path, monkeypatch):
    """`train --distributed` initialises JAX's distributed runtime before anything else; an
    incomplete environment is one line and exit 2, with nothing written."""
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
    assert cli.main(["train", "--distributed", "--out", str(tmp_path / "out")] + FAST) == 2
    assert "JAX_NUM_PROCESSES" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()
    assert "--distributed" not in _flags("eval", capsys)


def test_a_batch_the_devices_do_not_divide_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "device_count", lambda: 4)  # as on a machine with 4 GPUs
    for command in ("train", "edit"):
        out = tmp_path / command
        assert cli.main([command, "--batch-size", "6", "--out", str(out)] + FAST) == 2
        assert "--batch-size 6" in (line := _one_error_line(capsys)) and "--batch-size 8" in line
        assert not out.exists()


@pytest.mark.slow
def test_sweep_distributed_over_two_processes_equals_one(sweep_run, tmp_path):
    """`hkjax sweep --distributed` in 2 processes × 2 CPU devices (a 2-host run on one
    machine): process 0 writes the whole table, equal to the 1-process sweep."""
    import csv
    import os
    import socket

    import numpy as np

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    out = tmp_path / "dist"
    argv = [sys.executable, "-m", "hkjax", "sweep", "--distributed", "--param", "kappa_h=0.05,0.2",
            "--param", "coupling=0:0.02:2", "--param", "seed=0:1", "--param", "dim=3", "--images", "2",
            "--metric", "energy,order", "--out", str(out)] + SWEEP_FAST
    procs = []
    for i in range(2):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(i), JAX_NUM_CPU_DEVICES="2", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                   JAX_PLATFORMS="cpu")
        env.pop("XLA_FLAGS", None)
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["processes"] == 2 and len(summary["devices"]) == 4
    one = list(csv.DictReader((sweep_run / "sweep.csv").open()))
    two = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["kappa_h"] for r in two] == [r["kappa_h"] for r in one]
    for key in ("energy", "order", "overlap"):
        np.testing.assert_allclose([float(r[key]) for r in two], [float(r[key]) for r in one], rtol=1e-4, atol=1e-6)


def test_a_run_directory_is_never_overwritten_by_accident(tmp_path, capsys):
    """A second `hkjax train` into a directory that holds a run exits 2 and changes nothing;
    so does a `--resume` that changes what is trained; `--overwrite` replaces the run (no
    stale checkpoint of the old run survives to be picked up as the newest)."""
    from hkjax import checkpoint

    out = tmp_path / "run"
    small = ["train", "--model", "hopfield", "--no-progress", "--n-hidden", "8", "--max-train", "40",
             "--max-test", "20", "--batch-size", "4", "--out", str(out)]
    with jax.enable_x64(False):
        assert cli.main(small + ["--steps", "3"]) == 0

    def snapshot():
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    saved = snapshot()
    assert checkpoint.latest(out / "checkpoints").name == "ckpt_00000003.hkjax"
    capsys.readouterr()
    for extra, match in ((["--steps", "2"], "already holds a run"),
                         (["--resume", "--lr", "0.5"], "lr=0.003"),
                         (["--resume", "--overwrite"], "one of them")):
        assert cli.main(small + extra) == 2
        assert match in _one_error_line(capsys)
        assert snapshot() == saved, extra
    # `--resume --out RUN` continues the run with its own settings (not the defaults: here
    # another model and size); only the flags given are compared with them
    with jax.enable_x64(False):
        assert cli.main(["train", "--no-progress", "--resume", "--out", str(out), "--steps", "4"]) == 0
    assert checkpoint.latest(out / "checkpoints").name == "ckpt_00000004.hkjax"
    assert (config.load_toml(out / "config.toml").options()["model"], config.load_toml(out / "config.toml").options()["n_hidden"]) == ("hopfield", 8)
    saved = snapshot()
    capsys.readouterr()
    # --overwrite deletes the old run only once the new one starts: a bad --from loses nothing
    assert cli.main(small + ["--overwrite", "--from", str(tmp_path / "missing")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert snapshot() == saved
    with jax.enable_x64(False):
        assert cli.main(small + ["--steps", "2", "--overwrite"]) == 0
    assert [p.name for p in (out / "checkpoints").glob("ckpt_*")] == ["ckpt_00000002.hkjax"]
    assert config.load_toml(out / "config.toml").options()["steps"] == 2


def test_retrieve_refuses_an_existing_run_without_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.toml").write_text('task = "retrieve"\n')
    assert cli.main(["retrieve", "--out", str(out)]) == 2
    assert "--overwrite" in _one_error_line(capsys)
    assert (out / "config.toml").read_text() == 'task = "retrieve"\n'


def test_a_run_stopped_by_its_time_limit_is_summarised_and_resumed(tmp_path, capsys):
    """--time-limit stops training, and the run is evaluated and summarised with the steps it
    made and the steps it was planned for; --resume with the limit lifted finishes it."""
    out = tmp_path / "run"
    argv = ["train", "--model", "hopfield", "--no-progress", "--n-hidden", "8", "--max-train", "40", "--max-test", "20",
            "--batch-size", "4", "--steps", "3", "--out", str(out)]
    with jax.enable_x64(False):
        assert cli.main(argv + ["--time-limit", "1e-9"]) == 0
        assert "stopped by --time-limit after 1 of 3 steps" in capsys.readouterr().err
        summary = json.loads((out / "summary.json").read_text())
        assert (summary["steps"], summary["steps_planned"], summary["n_test"]) == (1, 3, 20)
        assert config.load_toml(out / "config.toml").training.time_limit == 1e-9
        assert cli.main(["train", "--resume", "--out", str(out), "--time-limit", "None", "--no-progress"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["steps"] == 3 and "steps_planned" not in resumed
    # the resumed summary adds up the wall time of both invocations
    assert resumed["invocations"] == 2
    assert resumed["wall_seconds_total"] == pytest.approx(summary["wall_seconds"] + resumed["wall_seconds"], abs=0.02)
    assert "invocations" not in summary
    with pytest.raises(ValueError, match="--time-limit"):
        config.TrainingConfig(time_limit=0)


def test_shared_steps_flag_trains(tmp_path, capsys, monkeypatch):
    """Shared steps (one solve per batch; its maths is tested in test_train / test_relax) are
    the default and recorded; `--no-shared-steps` gives per-example solves for adaptive steps,
    not for constant ones (the same computation there); `--microbatch` implies per-example
    solves. The first run trains; the others stop at the call of `fit` that shows the choice
    (test_train runs both kinds of step)."""
    from hkjax import train

    seen = []
    real_fit = train.fit

    class Chosen(Exception):
        pass

    def fit(*args, **kwargs):
        seen.append(kwargs["shared_steps"])
        if len(seen) > 1:
            raise Chosen
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", fit)
    out = tmp_path / "run"
    argv = ["train", "--model", "hopfield", "--no-progress", "--n-hidden", "8", "--max-train", "40",
            "--max-test", "20", "--batch-size", "4", "--steps", "2", "--shared-steps", "--out", str(out)]
    with jax.enable_x64(False):
        assert cli.main(argv) == 0
    assert seen == [True]
    assert config.load_toml(out / "config.toml").options()["shared_steps"] is True
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(r["loss"]) for r in rows)
    assert config.SolverConfig().shared_steps is True  # the default
    per_example = [a for a in argv if a != "--shared-steps"] + ["--no-shared-steps", "--overwrite"]
    for args in (per_example, per_example + ["--solver-steps", "2"], argv + ["--overwrite", "--microbatch", "2"]):
        with pytest.raises(Chosen):
            cli.main(args)
    assert seen == [True, False, True, False]
    assert config.load_toml(out / "config.toml").options()["microbatch"] == 2
    assert not (tmp_path / "other").exists()


def test_train_from_a_hopfield_classifier_starts_from_its_weights(trained_run, frozen_run, tmp_path, capsys,
                                                                monkeypatch):
    """`hkjax train --from RUN` starts the threshold units of a Hopfield–Kuramoto network from
    a trained Hopfield classifier's weights and bias (a warm start; all parameters trained on)
    and takes the classifier's size; a run that is no Hopfield classifier, or a model without
    threshold units, is refused with one line. The network is read off the call of `fit`,
    which stops there (`frozen_run` trains such a network through to its checkpoint)."""
    from hkjax import tasks, train

    started = []

    class Started(Exception):
        pass

    def fit(net, task, data, **kwargs):
        started.append((net, kwargs["trainable"]))
        raise Started

    monkeypatch.setattr(train, "fit", fit)
    out = tmp_path / "hk"
    argv = ["train", "--model", "hopfield_kuramoto", "--from", str(trained_run), "--steps", "1", "--lr", "1e-12",
            "--n-hidden", "20", "--max-train", "40", "--max-test", "20", "--batch-size", "4", "--degree", "4",
            "--no-progress", "--out", str(out)]
    capsys.readouterr()
    with pytest.raises(Started):
        cli.main(argv)
    assert "n_hidden=8" in capsys.readouterr().err  # the classifier's size, not --n-hidden 20
    ccfg, _, clf = runs.load_run(trained_run)
    cfg = config.load_toml(out / "config.toml")
    assert (cfg.network.model, cfg.network.n_hidden, cfg.training.from_run) == ("hopfield_kuramoto", ccfg.network.n_hidden, str(trained_run))
    ((net, trainable),) = started
    assert trainable is None  # every parameter trained, the Hopfield weights included
    (w0, b0), (w1, b1) = tasks.hopfield_parameters(clf), tasks.hopfield_parameters(net)
    assert float(np.abs(w0).max()) > 1e-3  # a trained classifier, not zeros
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_array_equal(b1, b0)
    frozen, _, _ = frozen_run  # a finished Hopfield–Kuramoto run: no classifier to start from
    for bad, match in (([str(frozen)], "expected a Hopfield classifier run"), ([str(trained_run), "--model", "kuramoto"], "kuramoto")):
        assert cli.main(argv[:4] + bad + argv[5:-1] + [str(tmp_path / "bad")]) == 2
        assert match in _one_error_line(capsys)
        assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def frozen_run(trained_run, tmp_path_factory):
    """``(out, argv, stderr)``: a Hopfield–Kuramoto network trained from ``trained_run`` with
    frozen Hopfield weights (``--freeze-hopfield --init-scale 0``)."""
    out = tmp_path_factory.mktemp("frozen") / "run"
    argv = ["train", "--model", "hopfield_kuramoto", "--from", str(trained_run), "--freeze-hopfield",
            "--init-scale", "0", "--osc-init", "reference", "--steps", "3", "--lr", "0.01", "--max-test", "150",
            "--batch-size", "8", "--degree", "4", "--no-progress", "--out", str(out)]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(runs, "figures", lambda *args, **kwargs: [])  # as _no_figures does for a test
        with jax.enable_x64(False):  # module-scoped: runs before the per-test x64 switch
            assert cli.main(argv) == 0
    return out, argv, err.getvalue()


def test_train_with_frozen_hopfield_weights_trains_only_the_coupling(trained_run, frozen_run, tmp_path, capsys):
    """`hkjax train --from RUN --freeze-hopfield --init-scale 0`: the Hopfield–Kuramoto
    network keeps the classifier's weights and bias exactly and trains only the coupling,
    which starts at zero; the summary's `test_accuracy_uncoupled` (the network with its
    coupling switched off) is then the classifier's own test accuracy. Other models are
    refused with one line."""
    from hkjax import tasks

    out, argv, err = frozen_run
    assert "with the coupling switched off" in err
    _, _, clf = runs.load_run(trained_run)
    _, _, net = runs.load_run(out)
    (w0, b0), (w1, b1) = tasks.hopfield_parameters(clf), tasks.hopfield_parameters(net)
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_array_equal(b1, b0)
    coupling = net.synapses[-1].weights
    assert float(np.abs(coupling).max()) > 0  # trained away from its zero start
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy_uncoupled"] == json.loads((trained_run / "summary.json").read_text())["test_accuracy"]
    assert cli.main(argv[:1] + ["--model", "hopfield"] + argv[3:-1] + [str(tmp_path / "bad")]) == 2
    assert "--freeze-hopfield" in _one_error_line(capsys)
    assert not (tmp_path / "bad").exists()


@pytest.mark.figures
def test_augmentation_preview_figure(tmp_path):
    """A run that augments its training images draws ``augmentation.png``: the first test
    images and draws of the task's own augmentation of them (keys folded from the seed); a run
    without augmentation has no such figure."""
    from hkjax import data

    ds = data.load_digits("test")
    arrays = {"images": ds.images[:20], "labels": ds.labels[:20]}
    cfg = config.Config().replace(model="hopfield", n_hidden=3, shift=1, tilt=10.0, zoom=0.1, seed=3)
    task = runs.build_task(cfg, ds)
    preview, titles = runs._augmentation_preview(task, arrays, cfg.seed)
    preview = np.asarray(preview)
    assert preview.shape == (32, 64) and len(titles) == 32
    assert [titles[i] for i in (0, 8, 16, 24)] == ["original", "draw 1", "draw 2", "draw 3"]
    np.testing.assert_array_equal(preview[:8], ds.images[:8])
    for r in range(3):
        expect = task.augment(jax.numpy.asarray(ds.images[:8]), jax.random.fold_in(jax.random.key(3), r))
        np.testing.assert_array_equal(preview[8 * (r + 1): 8 * (r + 2)], np.asarray(expect))
    assert not np.array_equal(preview[8:16], preview[16:24])  # the draws differ
    net = task.build(jax.random.key(0))
    written = runs.figures(tmp_path, cfg, net, task, arrays, None)
    assert str(tmp_path / "augmentation.png") in written and (tmp_path / "augmentation.png").stat().st_size > 0
    plain = runs.build_task(cfg.replace(shift=0, tilt=0.0, zoom=0.0), ds)
    assert runs._augmentation_preview(plain, arrays, 0) is None
    (tmp_path / "plain").mkdir()
    others = runs.figures(tmp_path / "plain", cfg, net, plain, arrays, None)
    assert others and "augmentation.png" not in " ".join(others)  # the other figures are written


def test_the_sweep_runs_experiments_through_the_public_runs_module():
    """`hkjax sweep` builds its runs with :mod:`hkjax.runs`, as `hkjax train` does: the sweep's
    module imports nothing of the command's (no import cycle, no private cross-calls)."""
    import ast

    tree = ast.parse((pathlib.Path(hk.__file__).parent / "_sweep_cli.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "cli" not in imported and "runs" in imported


def test_each_command_shows_only_its_own_options(capsys):
    """`hkjax eval --help` lists the options of evaluating a run, not of training one; an
    option of another command is refused in one line."""
    flags = {name: _flags(name, capsys) for name in (*cli.COMMANDS, "report")}
    for command in ("eval", "plot"):
        assert {"--run", "--out", "--max-test"} <= flags[command]
        assert not {"--lr", "--optimizer", "--ema", "--preset", "--n-units", "--config"} & flags[command]
    assert "--lr" in flags["train"] and "--edit-lr" not in flags["train"] and "--n-units" not in flags["train"]
    assert {"--lr", "--edit-lr", "--preset"} <= flags["edit"] and "--n-units" not in flags["edit"]
    assert "--task" not in flags["edit"]  # edit's task is the edit
    assert "--n-units" in flags["retrieve"] and "--lr" not in flags["retrieve"]
    assert flags["sweep"] >= (flags["train"] | flags["edit"]) - {"--distributed", "--no-distributed"}
    assert flags["report"] >= {"--out", "--title", "--readme"} and "--lr" not in flags["report"]
    assert cli.main(["eval", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--max-test" in shown and "--lr" not in shown
    assert cli.main(["eval", "--run", "x", "--lr", "0.1"]) == 2
    assert "Unrecognized options: --lr" in _one_error_line(capsys)


def test_saved_config_reads_a_run_directory_or_gives_none(tmp_path):
    """`runs.saved_config(RUN)`: the table of RUN/config.toml as written (groups as tables),
    or None without a file or for one that is not TOML."""
    assert runs.saved_config(tmp_path) is None
    cfg = config.Config().replace(n_hidden=7, lr=0.5)
    (tmp_path / "config.toml").write_text(config.to_toml(cfg))
    table = runs.saved_config(tmp_path)
    assert table["network"]["n_hidden"] == 7 and config.from_dict(table) == cfg
    (tmp_path / "config.toml").write_text("x = [")
    assert runs.saved_config(tmp_path) is None


@pytest.mark.parametrize("command, options", [
    ("train", {}),
    ("train", dict(task="addition", model="hopfield_kuramoto", n_hidden=50, rotate=False, val=300, lr=2e-3, seed=3,
                   out="runs/x", time_limit=5.0, progress=False, solver_method="euler", solver_steps=32,
                   eval_solver_steps=64)),
    ("edit", {**config.preset("paper", "edit"), "edit": "conflate", "classes": (2, 7), "associative": True,
              "coupling": "multiplicative", "lr_decay": 0.1, "from_run": "runs/clf", "out": "runs/e", "resume": True}),
])
def test_command_line_parses_back_to_its_config(command, options):
    cfg = config.Config().replace(**options)
    line = config.command_line(cfg, command)
    assert line.startswith(f"hkjax {command}") and "--resume" not in line and "--time-limit" not in line
    back, _ = cli.parse(command, shlex.split(line)[2:])
    skip = {*config.INVOCATION_OPTIONS, "task"} if command == "edit" else set(config.INVOCATION_OPTIONS)
    assert {k: v for k, v in back.options().items() if k not in skip} == \
           {k: v for k, v in cfg.options().items() if k not in skip}
    if command == "edit":
        assert line.startswith("hkjax edit --preset paper ")  # shorter with the preset than without
    with pytest.raises(ValueError, match="command"):
        config.command_line(cfg, "retrieve")

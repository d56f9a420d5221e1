"""Tests for the ``hkjax`` command (hkjax.cli, hkjax.config)."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import pytest

from hkjax import cli, config

JAX_ENABLE_X64 = False

FAST = ["--no-progress", "--n-hidden", "8", "--max-steps", "16", "--degree", "4"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err, "expected an error message on stderr"
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- config --------------------------------------------------------------------------


def test_config_toml_round_trip(tmp_path):
    cfg = config.Config(task="addition", n_hidden=12, associative=True, classes="1,0", lr=0.5)
    p = tmp_path / "c.toml"
    p.write_text(config.to_toml(cfg))
    assert config.load_toml(p) == cfg


def test_config_validation():
    with pytest.raises(ValueError, match="n_hidden"):
        config.Config(n_hidden=0)
    with pytest.raises(ValueError, match="unknown"):
        config.Config(model="ising")
    with pytest.raises(ValueError, match="unknown config key"):
        config.from_dict({"n_hiden": 3})
    with pytest.raises(ValueError, match="integer"):
        config.from_dict({"steps": "many"})
    assert config.from_dict({"steps": "small"}).steps == config.SMALL_STEPS
    assert config.Config(classes="2, 5,7").class_list() == [2, 5, 7]


# -- help and errors --------------------------------------------------------------------


def test_help_exits_zero_and_documents_defaults(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    import dataclasses

    for f in dataclasses.fields(config.Config):
        assert "--" + f.name.replace("_", "-") in out, f.name
    assert "(default: 'digits')" in out and "(default: 100)" in " ".join(out.split())


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--model", "ising"], "invalid choice"),
        (["train", "--steps", "many"], "steps"),
        (["train", "--n-hidden", "0"], "n_hidden"),
        (["train", "--dataset", "idx:/nonexistent/dir"], "nonexistent"),
        (["train", "--dataset", "mnist"], "dataset"),
        (["train", "--config", "/nonexistent.toml"], "nonexistent.toml"),
        (["train", "--task", "retrieve"], "retrieve"),
        (["eval", "--run", "/nonexistent/run"], "does not exist"),
        (["edit", "--from", "/nonexistent/run"], "does not exist"),
        (["edit", "--classes", "3"], "two distinct classes"),
        (["frobnicate"], "invalid choice"),
        (["--steps", "3"], "choose from"),
        (["retrieve", "--loads", "a,b"], "loads"),
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
    (run / "config.toml").write_text(config.to_toml(config.Config(model="hopfield", n_hidden=8)))
    (run / "checkpoints" / "ckpt_00000001.hkjax").write_bytes(b"not a checkpoint at all")
    assert cli.main(["eval", "--run", str(run)]) == 2
    assert "checkpoint" in _one_error_line(capsys)


def test_python_dash_m_help():
    r = subprocess.run([sys.executable, "-m", "hkjax", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "retrieve" in r.stdout


# -- end to end -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small Hopfield classifier trained through the CLI (shared by the end-to-end tests)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--task", "classify", "--model", "hopfield", "--steps", "small", "--lr", "0.01",
            "--max-test", "150", "--out", str(out)] + FAST
    with jax.enable_x64(False):  # module-scoped: runs before the per-test x64 switch
        assert cli.main(argv) == 0
    return out


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
    assert config.load_toml(out / "config.toml").model == "hopfield"
    try:
        import hkjax.plotting  # noqa: F401

        assert (out / "learning_curves.png").is_file() and (out / "confusion_matrix.png").is_file()
    except ImportError:
        pass
    capsys.readouterr()
    assert cli.main(["eval", "--run", str(out), "--max-test", "150"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["test_accuracy"] == pytest.approx(summary["test_accuracy"])


@pytest.mark.slow
def test_edit_end_to_end(trained_run, tmp_path):
    out = tmp_path / "edit"
    argv = ["edit", "--from", str(trained_run), "--edit", "swap", "--classes", "0,1", "--associative",
            "--edit-steps", "4", "--coupling", "additive", "--max-test", "40", "--max-train", "300",
            "--out", str(out)] + FAST
    assert cli.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"accuracy_before_edit", "test_accuracy_cue0", "test_accuracy_cue1", "test_accuracy"} <= set(summary)
    assert summary["hopfield_frozen"] is True
    assert 0 <= summary["test_accuracy_cue0"] <= 1 and 0 <= summary["test_accuracy_cue1"] <= 1
    cfg = config.load_toml(out / "config.toml")
    assert cfg.task == "edit" and cfg.osc_init == "reference" and cfg.kuramoto_term is False


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

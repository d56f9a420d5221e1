"""hkjax.report: results tables generated from the runs' summary.json files."""

from __future__ import annotations

import json
import pathlib

import pytest

from hkjax import cli, report

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(tmp_path, name, **fields):
    d = tmp_path / name
    d.mkdir()
    summary = {"task": "classify", "model": "hopfield", "dataset": "digits", "seed": 0, "test_accuracy": 0.9,
               "wall_seconds": 12.0, "hkjax_version": "0.1.0", "device": "cpu: cpu x1, 2 cores",
               "command": f"hkjax train --task classify --model hopfield --out runs/{name}",
               "figures": ["runs/x/a.png"], **fields}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def test_runs_differing_only_by_seed_and_out_share_a_row(tmp_path):
    a = _run(tmp_path, "a", test_accuracy=0.953, wall_seconds=524.4)
    b = _run(tmp_path, "b", seed=1, test_accuracy=0.949, wall_seconds=432.0,
             command="hkjax train --task classify --model hopfield --seed 1 --overwrite --out runs/b")
    c = _run(tmp_path, "c", command="hkjax train --task classify --model hopfield --lr 0.1 --out runs/c",
             test_accuracy=0.5)
    rows = report.rows(report.collect([a, b, c]))
    assert [r["seeds"] for r in rows] == [[0, 1], [0]]
    assert rows[0]["test_accuracy"] == [0.953, 0.949] and rows[0]["runs"] == ["a", "b"]
    table = report.markdown(rows)
    line = next(ln for ln in table.splitlines() if "| 0, 1 |" in ln)
    # the figures are the summaries' own, per seed; the command is the first seed's
    assert "**95.3 / 94.9 %**" in line and "524 / 432 s" in line
    assert "`hkjax train --task classify --model hopfield --out runs/a`" in line
    assert "--lr 0.1" in table and "**50.0 %**" in table
    assert "figures" not in report.collect([a])[0]


def test_edit_rows_show_both_cues_and_the_classifier(tmp_path):
    e = _run(tmp_path, "swap", task="edit", model="hopfield_kuramoto", edit="swap", classes=[0, 1],
             associative=True, coupling="full", accuracy_before_edit=0.953, test_accuracy_cue0=0.943,
             test_accuracy_cue1=0.936, command="hkjax edit --from runs/h --edit swap --out runs/swap")
    table = report.markdown(report.rows(report.collect([e])))
    assert "edit: swap 0↔1, associative, full coupling" in table
    assert "cue 0 (original labels): **94.3 %**" in table and "cue 1 (edited labels): **93.6 %**" in table
    assert "before the edit 95.3 %" in table
    assert "whose label the edit changes" not in table and "validation" not in table  # not recorded by this run
    f = _run(tmp_path, "swap2", task="edit", model="hopfield_kuramoto", edit="swap", classes=[0, 1],
             associative=True, test_accuracy_cue0=0.943, test_accuracy_cue1=0.936, test_accuracy_edited=0.712,
             val_accuracy_cue0=0.901, val_accuracy_cue1=0.88, accuracy_before_edit=0.953,
             command="hkjax edit --from runs/h --edit swap --out runs/swap2")
    table = report.markdown(report.rows(report.collect([f])))
    assert ("cue 1 (edited labels): **93.6 %** (71.2 % on the images whose label the edit changes); "
            "validation: cue 0 90.1 %, cue 1 88.0 %; classifier before the edit 95.3 %") in table
    g = _run(tmp_path, "plain", task="edit", model="hopfield_kuramoto", edit="conflate", classes=[0, 1],
             associative=False, test_accuracy=0.87, test_accuracy_cue0=0.87, test_accuracy_cue1=0.87,
             val_accuracy=0.875, val_accuracy_cue0=0.875, val_accuracy_cue1=0.875,
             command="hkjax edit --from runs/h --edit conflate --no-associative --out runs/plain")
    table = report.markdown(report.rows(report.collect([g])))
    assert "edited labels: **87.0 %**; validation 87.5 %" in table and "cue 0" not in table


def test_the_rows_of_one_experiment_sit_together(tmp_path):
    """The low-rank baseline of an edit, given last, is shown right after the oscillators'
    row of the same edit, and a second recipe of a classifier right after the first; the
    experiments keep the order of their first runs."""
    edit = dict(task="edit", edit="swap", classes=[0, 1], associative=True, test_accuracy_cue0=0.9,
                test_accuracy_cue1=0.8)
    runs = [_run(tmp_path, "clf"),
            _run(tmp_path, "hk", model="hopfield_kuramoto", command="hkjax edit --edit swap --out runs/hk", **edit),
            _run(tmp_path, "other", command="hkjax train --lr 0.1 --out runs/other"),
            _run(tmp_path, "lora", model="hopfield_lora", command="hkjax edit --model hopfield_lora --out runs/lora",
                 **edit),
            _run(tmp_path, "conflate", model="hopfield_lora", command="hkjax edit --model hopfield_lora --edit "
                 "conflate --out runs/conflate", **{**edit, "edit": "conflate"})]
    assert [r["runs"] for r in report.rows(report.collect(runs))] == [["clf"], ["other"], ["hk"], ["lora"],
                                                                       ["conflate"]]
    other_model = _run(tmp_path, "kuramoto", model="kuramoto", command="hkjax train --model kuramoto --out runs/k")
    other_data = _run(tmp_path, "fmnist", dataset="fashion-mnist", command="hkjax train --lr 0.2 --out runs/f")
    assert [r["runs"] for r in report.rows(report.collect([runs[0], other_model, other_data, runs[2]]))] == [
        ["clf"], ["other"], ["kuramoto"], ["fmnist"]]


def test_a_report_rereads_its_own_json(tmp_path):
    a = _run(tmp_path, "a", test_accuracy_tta=0.96, test_accuracy_uncoupled=0.95, model="hopfield_kuramoto")
    md, js = report.write(report.collect([a]), tmp_path / "out" / "results.md", title="Digits")
    assert md.read_text().startswith("# Digits\n\n")
    again = report.collect([js])
    assert report.markdown(report.rows(again)) == md.read_text().split("\n\n", 1)[1]
    assert "with test-time shifts 96.0 %" in md.read_text() and "coupling switched off 95.0 %" in md.read_text()
    # a run resumed since the report was written takes its own place in the table, not a new row
    b = _run(tmp_path, "b", test_accuracy=0.5, command="hkjax train --task classify --model hopfield --lr 0.1 --out runs/b")
    _, js = report.write(report.collect([a, b]), tmp_path / "out" / "two.md")
    (a / "summary.json").write_text(json.dumps({**json.loads((a / "summary.json").read_text()), "test_accuracy": 0.97}))
    updated = report.collect([js, a])
    assert [r["run"] for r in updated] == ["a", "b"] and updated[0]["test_accuracy"] == 0.97


def test_update_block_replaces_only_the_marked_text(tmp_path):
    f = tmp_path / "README.md"
    f.write_text(f"# Title\n\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    assert report.update_block(f, "| new |\n")
    assert f.read_text() == f"# Title\n\nbefore\n{report.BEGIN}\n| new |\n{report.END}\nafter\n"
    assert report.block(f) == "| new |\n"
    assert not report.update_block(f, "| new |")
    g = tmp_path / "plain.md"
    g.write_text("no markers\n")
    with pytest.raises(report.ReportError, match="no block to fill"):
        report.update_block(g, "x")
    assert g.read_text() == "no markers\n"


@pytest.mark.parametrize("make, match", [
    (lambda d: d.mkdir(), "no summary.json"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text("{not json")), "not valid JSON"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text('{"task": "classify"}')), "records no command line"),
])
def test_unreadable_runs_are_named(tmp_path, make, match):
    d = tmp_path / "bad"
    make(d)
    with pytest.raises(report.ReportError, match=match) as e:
        report.collect([d])
    assert "bad" in str(e.value)


def test_the_command_reports_and_refuses_bad_input(tmp_path, capsys):
    a = _run(tmp_path, "a")
    assert cli.main(["report", str(a)]) == 0
    assert "**90.0 %**" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "missing: no summary.json" in capsys.readouterr().err
    assert cli.main(["report", str(a), "--out", str(tmp_path / "t.txt")]) == 2
    assert not (tmp_path / "t.txt").exists()



def test_the_generated_tables_are_what_their_report_renders():
    """The README's results table is `hkjax report`'s rendering of the committed report, not
    typed: editing a figure by hand, or the report without re-rendering, fails here."""
    saved = ROOT / "docs" / "results" / "digits.json"
    assert saved.exists(), "docs/results/digits.json (written by `hkjax report --out docs/results/digits.md`) is missing"
    table = report.markdown(report.rows(report.collect([saved])))
    assert (ROOT / "docs" / "results" / "digits.md").read_text().endswith(table)
    readme = ROOT / "README.md"
    assert report.block(readme) == table, "README.md's results block differs: run `hkjax report docs/results/digits.json --readme README.md`"
    for name in ("fashion-mnist",):  # the other datasets' pages, generated the same way
        saved = ROOT / "docs" / "results" / f"{name}.json"
        table = report.markdown(report.rows(report.collect([saved])))
        assert (ROOT / "docs" / "results" / f"{name}.md").read_text().endswith(table), name


def test_runs_on_a_busy_host_are_marked(tmp_path):
    quiet = _run(tmp_path, "q", load_average=1.2, cores=2)
    busy = _run(tmp_path, "b", load_average=5.0, cores=2, command="hkjax train --model kuramoto --out runs/b")
    table = report.markdown(report.rows(report.collect([quiet, busy])))
    assert "| 12 s |" in table and "| 12 s* |" in table and "upper bound" in table
    assert "upper bound" not in report.markdown(report.rows(report.collect([quiet])))
    # quiet at the end, busy during the run: marked too
    shared = _run(tmp_path, "s", load_average=1.2, load_average_max=3.1, cores=2)
    assert "| 12 s* |" in report.markdown(report.rows(report.collect([shared])))


def test_runs_stopped_by_their_time_limit_say_how_far_they_got(tmp_path):
    a = _run(tmp_path, "a", steps=412, steps_planned=600, wall_seconds=300.0)
    b = _run(tmp_path, "b", seed=1, steps=600, wall_seconds=280.0,
             command="hkjax train --task classify --model hopfield --seed 1 --out runs/b")
    c = _run(tmp_path, "c", steps=600, command="hkjax train --task classify --model hopfield --lr 0.1 --out runs/c")
    table = report.markdown(report.rows(report.collect([a, b, c])))
    assert "300 / 280 s; 412 / 600 of 600 steps, seed 0 stopped by its time limit |" in table
    d = _run(tmp_path, "d", seed=1, steps=500, steps_planned=600, wall_seconds=290.0,
             command="hkjax train --task classify --model hopfield --seed 1 --out runs/d")
    both = report.markdown(report.rows(report.collect([a, d])))
    assert "300 / 290 s; stopped by its time limit after 412 / 500 of 600 steps |" in both
    e = _run(tmp_path, "e", seed=2, steps=600, wall_seconds=270.0,
             command="hkjax train --task classify --model hopfield --seed 2 --out runs/e")
    some = report.markdown(report.rows(report.collect([a, d, e])))
    assert "412 / 500 / 600 of 600 steps, seeds 0, 1 stopped by its time limit |" in some
    assert table.count("time limit") == 1  # the finished run's row says nothing


def test_runs_evaluated_on_part_of_the_test_split_say_so(tmp_path):
    a = _run(tmp_path, "a", test_images=1000, test_images_split=10000, test_accuracy=0.91)
    b = _run(tmp_path, "b", seed=1, test_images=1000, test_images_split=10000,
             command="hkjax train --task classify --model hopfield --seed 1 --out runs/b")
    whole = _run(tmp_path, "c", test_images=10000, command="hkjax train --task classify --model kuramoto --out runs/c")
    table = report.markdown(report.rows(report.collect([a, b, whole])))
    line = next(ln for ln in table.splitlines() if "| 0, 1 |" in ln)
    assert "**91.0 / 90.0 %**; on the first 1000 of 10000 test images |" in line
    assert table.count("test images") == 1  # the run on the whole split says nothing
    # a summary written before runs recorded test_images: the mark comes from its --max-test
    old = _run(tmp_path, "d", command="hkjax train --task classify --model kuramoto --max-test 500 --out runs/d")
    assert "; on the first 500 test images |" in report.markdown(report.rows(report.collect([old])))
    every = _run(tmp_path, "e", command="hkjax train --task classify --model kuramoto --max-test 0 --out runs/e")
    assert "test images" not in report.markdown(report.rows(report.collect([every])))  # 0: the whole split


def test_a_resumed_run_shows_the_command_of_its_configuration(tmp_path):
    """A run whose summary was written by `--resume --out RUN` is shown with the command that
    runs its config.toml (the line that ran is kept), and the table marks it."""
    from hkjax import config

    cfg = config.Config().replace(task="edit", edit="conflate", associative=True, coupling="additive", edit_lr=0.003,
                                  from_run="runs/clf", out="runs/r", resume=True, time_limit=0.01, progress=False)
    d = _run(tmp_path, "r", task="edit", model="hopfield_kuramoto", edit="conflate", classes=[0, 1], associative=True,
             coupling="additive", test_accuracy_cue0=0.9, test_accuracy_cue1=0.8,
             command="hkjax edit --resume --out runs/r --time-limit 0.01")
    (d / "config.toml").write_text(config.to_toml(cfg))
    s = report.collect([d])[0]
    assert s["resumed_with"] == "hkjax edit --resume --out runs/r --time-limit 0.01"
    assert s["command"] == config.command_line(cfg, "edit")
    assert "--resume" not in s["command"] and "--edit conflate" in s["command"] and "--from runs/clf" in s["command"]
    table = report.markdown(report.rows([s]))
    assert "12 s†" in table and "† Stopped and resumed" in table
    # with the wall time of every invocation recorded (hkjax edit --resume writes it), the row adds them up
    totalled = {**s, "wall_seconds_total": 40.5, "invocations": 2}
    assert "40 s over 2 invocations†" in report.markdown(report.rows([totalled]))


def test_non_associative_edits_show_the_edited_labels_and_devices_are_named_when_several(tmp_path):
    e = _run(tmp_path, "e", task="edit", model="hopfield_kuramoto", edit="swap", classes=[0, 1], associative=False,
             coupling="additive", test_accuracy=0.794, test_accuracy_cue0=0.794, test_accuracy_cue1=0.793,
             accuracy_before_edit=0.881, device="gpu: NVIDIA H200 x1, 16 cores",
             command="hkjax edit --edit swap --out runs/e")
    c = _run(tmp_path, "c")
    table = report.markdown(report.rows(report.collect([c, e])))
    assert "edited labels: **79.4 %**; classifier before the edit 88.1 %" in table and "cue 0" not in table
    assert "12 s on CPU, 2 cores |" in table and "12 s on NVIDIA H200 |" in table
    assert " on CPU" not in report.markdown(report.rows(report.collect([c])))  # one device: said once, below

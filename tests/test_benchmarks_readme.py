"""The benchmark tables of ``benchmarks/README.md`` and the headline table of ``README.md`` are
what ``benchmarks/readme.py`` renders from the committed ``benchmarks/results/*.json``, every
result file is rendered, and the scripts' table definitions reproduce what they printed.

Nothing here runs a benchmark or imports JAX: ``readme.py`` reads the scripts' ``TABLES``
literals from their source."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# readme.py imports its sibling as ``_tables`` (the way the scripts import it).
tables = sys.modules.get("_tables") or _load("_tables", "_tables")
readme = _load("readme", "_benchmarks_readme")

HINT = "run `python benchmarks/readme.py`"


def test_benchmarks_readme_block_is_generated():
    block = readme.block((BENCH / "README.md").read_text(), readme.BEGIN, readme.END)
    assert block is not None, f"benchmarks/README.md lost its lines {readme.BEGIN!r} ... {readme.END!r}"
    assert block == readme.render_tables(), f"benchmarks/README.md's tables differ from benchmarks/results: {HINT}"


def test_readme_headline_block_is_generated():
    text = (ROOT / "README.md").read_text()
    block = readme.block(text, readme.HEADLINE_BEGIN, readme.HEADLINE_END)
    if block is None:
        pytest.skip("README.md has no benchmark headline block")
    assert block == readme.render_headline(), f"README.md's benchmark headline differs: {HINT}"


def test_every_result_file_is_rendered():
    files = sorted(p.name for p in (BENCH / "results").iterdir())
    assert files, "benchmarks/results/ is empty"
    covered = readme.coverage()  # raises for a file it cannot render
    assert sorted(covered) == files
    text = readme.render_tables()
    for name, how in covered.items():
        assert f"`results/{name}`" in text, f"{name} ({how}) is not named in the generated tables"


def test_the_headline_has_its_rows():
    """The headline holds hkjax's default training step next to the paper's code, measured in
    one run, for the three configurations of the paper's 28×28 network."""
    found = readme.headline_rows()
    assert found, "no default_path result timed the paper's code"
    for machine in found.values():
        configs = [r["config"] for r in machine["rows"]]
        assert any(c.startswith("Hopfield, ") for c in configs)
        assert sum(c.startswith("Hopfield–Kuramoto, ") for c in configs) == 2
        for row in machine["rows"]:
            assert all(row.get(path) for path, _ in readme.HEADLINE_PATHS), row


def test_every_script_that_prints_a_table_defines_it():
    """A script's table must be a ``TABLES`` literal (``readme.py`` reads it without importing)."""
    specs = readme.table_specs()
    for path in sorted(BENCH.glob("*.py")):
        source = path.read_text()
        calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", None) == "print_table"]
        if calls and path.name != "_common.py":
            name = path.stem
            assert name in specs, f"{path.name} prints a table but defines no TABLES[{name!r}]"
            assert f'TABLES["{name}"]' in source, f"{path.name} does not print its table from TABLES"


def test_the_tables_reproduce_what_run_all_printed():
    """``run_all.py`` writes its printed output next to the JSON: rendering the JSON with the
    scripts' definitions gives the same text, so the columns are those the scripts print."""
    specs, defaults = readme.table_specs(), readme.paper()
    checked = 0
    for result in readme.load():
        md = result.path.with_suffix(".md")
        if not result.run_all or not md.exists():
            continue
        p = result.payload
        d = p["device"]
        lines = [f"# Benchmarks on {result.machine}"]
        for suite, rows in p["suites"].items():
            title, columns = tables.resolve(specs[readme.script_of(suite, specs)],
                                            {"command": p["command"], "rows": rows}, defaults=defaults)
            lines += ["", f"## {title}", f"# command: {p['command']}",
                      f"# device: {d['platform']} {d['device']} x{d['devices']}, jax {d['jax']}, {d['cpus']} cpus",
                      "| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(tables.cells(r, columns)) + " |" for r in rows]
        assert "\n".join(lines) + "\n" == md.read_text(), f"{md.name} differs from its JSON rendered"
        checked += 1
    assert checked, "no run_all.py result with its printed output"


def test_titles_fill_from_the_recorded_command_and_defaults():
    spec = {"title": "t, batch {batch}, {kind}", "columns": [("ms", "vs {formulation}", ".1f")],
            "defaults": {"batch": 10}, "labels": {"kind": ("shared", {True: "shared", False: "vmap"})}}
    rows = [{"formulation": "dense", "ms": 1.25}]
    assert tables.resolve(spec, {"rows": rows, "shared": False}) == ("t, batch 10, vmap", [("ms", "vs dense", ".1f")])
    title, _ = tables.resolve(spec, {"rows": rows, "shared": True, "command": "python x.py --batch 100"})
    assert title == "t, batch 100, shared"
    title, _ = tables.resolve(spec, {"rows": rows, "shared": True, "batch": 7, "command": "python x.py --batch 100"})
    assert title == "t, batch 7, shared"
    with pytest.raises(KeyError, match="records no"):
        tables.resolve({"title": "{missing}", "columns": []}, {"rows": rows})


def test_fill_and_check(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("cpu-2core.json", "first_call-cpu-2core.json"):
        (results / name).write_text((BENCH / "results" / name).read_text())
    text = f"# x\n\n{readme.BEGIN}\nstale\n{readme.END}\ntail\n"
    filled = readme.fill(text, readme.BEGIN, readme.END, readme.render_tables(results))
    assert readme.block(filled, readme.BEGIN, readme.END) == readme.render_tables(results)
    assert filled.endswith(f"{readme.END}\ntail\n")
    assert readme.fill(text, readme.BEGIN, readme.END, "") == f"# x\n\n{readme.BEGIN}\n{readme.END}\ntail\n"
    (results / "stray.txt").write_text("?")
    with pytest.raises(ValueError, match="stray.txt"):
        readme.coverage(results)
    (results / "stray.txt").unlink()
    (results / "unknown-cpu-2core.json").write_text(json.dumps(
        {"command": "python x.py", "device": {"platform": "cpu", "cpus": 2}, "rows": []}))
    with pytest.raises(ValueError, match="unknown"):
        readme.render_tables(results)


def test_git_commit_says_when_the_measured_code_is_not_the_commits(tmp_path):
    """A result records the commit it was measured on, marked ``+uncommitted`` when the
    library or the scripts differ from it (a new result file alone does not count)."""
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for path in ("hkjax/a.py", "benchmarks/b.py", "benchmarks/results/r.json"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = tables.git_commit(tmp_path / "benchmarks")
    assert clean and "+" not in clean
    (tmp_path / "benchmarks/results/r.json").write_text("x = 2\n")
    assert tables.git_commit(tmp_path / "benchmarks") == clean
    (tmp_path / "hkjax/a.py").write_text("x = 2\n")
    assert tables.git_commit(tmp_path / "benchmarks") == clean + "+uncommitted"

"""Regenerate the benchmark tables of ``benchmarks/README.md`` and the headline table of the
repository's ``README.md`` from the result files in ``benchmarks/results/``.

    python benchmarks/readme.py            # rewrite both generated blocks
    python benchmarks/readme.py --check    # exit 1 if a block differs from the results

``benchmarks/README.md``: everything between ``<!-- benchmarks: begin -->`` and
``<!-- benchmarks: end -->`` is :func:`render_tables`: every result file's table, rendered with
the columns its script prints (the script's module-level ``TABLES`` literal, read here without
importing the script, so without JAX), with the command, device and versions it was measured
with. ``README.md``: between ``<!-- benchmark headline: begin -->`` and
``<!-- benchmark headline: end -->``, if it has those lines, :func:`render_headline`.

A result file is ``<name>-<machine>.json`` as ``_common.write_json`` names it (``<name>`` starts
with the name of the script whose table it holds, e.g. ``formulation_ab-shared``), or
``<machine>.json`` (and its printed output ``<machine>.md``) from ``run_all.py``, whose
``suites`` are rendered one table each. A script's own file whose rows are those of a
``run_all.py`` suite of the same run (``run_all.py`` writes both) is rendered once, in the
suite's place. Any other file in ``results/`` is an error (:func:`coverage`).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from _tables import cells, resolve
except ImportError:  # imported as benchmarks.readme
    from ._tables import cells, resolve

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
ROOT_README = HERE.parent / "README.md"

BEGIN = "<!-- benchmarks: begin -->"
END = "<!-- benchmarks: end -->"
HEADLINE_BEGIN = "<!-- benchmark headline: begin -->"
HEADLINE_END = "<!-- benchmark headline: end -->"

#: The order of the scripts' sections (others follow by name).
SCRIPT_ORDER = ("vector_field", "relax", "train_step", "sweep", "formulations", "formulation_ab",
                "adjoint_checkpoints", "first_call", "batch_scaling", "training_batch", "digits_step", "eval_chunk",
                "edit_step")
#: Result names that are not a script's: ``run_all.py``'s digits-size sweep (``sweep.py``).
ALIASES = {"sweep_digits_size": "sweep"}


# -- the scripts' table definitions ---------------------------------------------------------

def _module_constant(path: Path, name: str):
    """The literal value of the module-level assignment ``name = ...`` in ``path`` (a
    ``dict(key=literal, ...)`` call counts as a literal), or ``None``."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
                return {kw.arg: ast.literal_eval(kw.value) for kw in value.keywords}
            return ast.literal_eval(value)
    return None


def table_specs(bench_dir: str | Path = HERE) -> dict[str, dict]:
    """Every script's table definitions (its ``TABLES``), by table name."""
    specs = {}
    for path in sorted(Path(bench_dir).glob("*.py")):
        tables = _module_constant(path, "TABLES")
        for name, spec in (tables or {}).items():
            if name in specs:
                raise ValueError(f"table {name!r} is defined twice ({path.name})")
            specs[name] = {**spec, "script": path.name}
    return specs


def paper(bench_dir: str | Path = HERE) -> dict:
    """``_common.PAPER``, the paper network's configuration (the tables' default values)."""
    return _module_constant(Path(bench_dir) / "_common.py", "PAPER") or {}


# -- result files ---------------------------------------------------------------------------

@dataclass
class Result:
    path: Path
    machine: str
    name: str  # "" for run_all.py's file
    payload: dict

    @property
    def run_all(self) -> bool:
        return self.name == ""


def machine_of(device: dict) -> str:
    """The machine name ``_common.machine_name`` gave the device a result records."""
    if device.get("platform") == "cpu":
        return f"cpu-{device.get('cpus')}core"
    return str(device.get("device", "")).lower().replace(" ", "-")


def script_of(name: str, specs: dict) -> str:
    """The table (script) of a result named ``name`` (``formulation_ab-shared``: ``formulation_ab``)."""
    base = name.split("-")[0]
    base = ALIASES.get(base, base)
    if base not in specs:
        raise ValueError(f"no benchmark script defines a table for results named {name!r}")
    return base


def load(results_dir: str | Path = RESULTS) -> list[Result]:
    out = []
    for path in sorted(Path(results_dir).glob("*.json")):
        payload = json.loads(path.read_text())
        machine = machine_of(payload.get("device", {}))
        if path.stem == machine:
            name = ""
        elif path.stem.endswith("-" + machine):
            name = path.stem[: -len(machine) - 1]
        else:
            raise ValueError(f"{path.name}: the name does not end with its device's machine name {machine!r}")
        out.append(Result(path, machine, name, payload))
    return out


def _covering(r: Result, results: list[Result]) -> Result | None:
    """The run_all.py result that holds ``r``'s rows as one of its suites, if any."""
    if r.run_all:
        return None
    for a in results:
        if (a.run_all and a.machine == r.machine and a.payload.get("device") == r.payload.get("device")
                and a.payload.get("suites", {}).get(r.name) == r.payload.get("rows")):
            return a
    return None


def coverage(results_dir: str | Path = RESULTS, bench_dir: str | Path = HERE) -> dict[str, str]:
    """How every file of ``results_dir`` appears in :func:`render_tables` (file name ->
    ``"rendered"``, ``"rows of <file>"`` or ``"printed output of <file>"``); raises for a file
    it cannot render."""
    specs = table_specs(bench_dir)
    results = load(results_dir)
    out = {}
    for r in results:
        if r.run_all:
            for suite in r.payload.get("suites", {}):
                script_of(suite, specs)
            out[r.path.name] = "rendered"
        else:
            script_of(r.name, specs)
            cover = _covering(r, results)
            out[r.path.name] = f"rows of {cover.path.name}" if cover else "rendered"
    printed = {r.path.with_suffix(".md").name: r.path.name for r in results if r.run_all}
    for path in sorted(Path(results_dir).iterdir()):
        if path.name in out:
            continue
        if path.name not in printed:
            raise ValueError(f"{path.name}: not a result file that benchmarks/readme.py renders")
        out[path.name] = f"printed output of {printed[path.name]}"
    return out


# -- rendering ------------------------------------------------------------------------------

def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    """A table's lines as ``_common.print_table`` prints them, pipes in the text escaped."""
    lines = ["| " + " | ".join(_escape(h) for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_escape(c) for c in cells(r, columns)) + " |" for r in rows]
    return lines


def _device(d: dict) -> str:
    kind = d.get("platform", "?") if d.get("device") in (None, d.get("platform")) else f"{d['platform']} {d['device']}"
    return f"{kind} ×{d.get('devices', 1)}, {d.get('cpus', '?')} CPUs, {d.get('machine', '?')}"


def _provenance(r: Result) -> str:
    p, d = r.payload, r.payload.get("device", {})
    parts = [f"`{p.get('command', '?')}`", f"jax {d.get('jax', '?')}", f"hkjax {d.get('hkjax', '?')}"]
    if p.get("date"):
        parts.append(str(p["date"]))
    if p.get("commit"):
        parts.append(f"commit {p['commit']}")
    return " · ".join(parts)


def _section(title: str, r: Result, rows: list[dict], columns, extra: str = "") -> list[str]:
    lines = [f"#### {title}", "", f"{_provenance(r)} · `results/{r.path.name}`{extra}", ""]
    if r.payload.get("note"):
        lines += [f"Note: {r.payload['note']}", ""]
    return lines + markdown_table(rows, columns) + [""]


def _sort_key(r: Result, specs: dict):
    if r.run_all:
        return (r.machine, 0, 0, "")
    script = script_of(r.name, specs)
    order = SCRIPT_ORDER.index(script) if script in SCRIPT_ORDER else len(SCRIPT_ORDER)
    return (r.machine, 1, order, r.name)


def render_tables(results_dir: str | Path = RESULTS, bench_dir: str | Path = HERE) -> str:
    """The generated part of ``benchmarks/README.md``: per machine, every result's table."""
    specs, defaults = table_specs(bench_dir), paper(bench_dir)
    results = load(results_dir)
    shown = sorted((r for r in results if _covering(r, results) is None), key=lambda r: _sort_key(r, specs))
    lines, machine = [], None
    for r in shown:
        if r.machine != machine:
            machine = r.machine
            lines += [f"### {machine} ({_device(r.payload.get('device', {}))})", ""]
        if r.run_all:
            copies = [c.path.name for c in results if _covering(c, results) is r]
            md = r.path.with_suffix(".md")
            extra = f" (printed output: `results/{md.name}`)" if md.exists() else ""
            for suite, rows in r.payload.get("suites", {}).items():
                spec = specs[script_of(suite, specs)]
                title, columns = resolve(spec, {"command": r.payload.get("command", ""), "rows": rows},
                                         defaults=defaults)
                same = f"; the same rows: `results/{suite}-{r.machine}.json`" if \
                    f"{suite}-{r.machine}.json" in copies else ""
                lines += _section(title, r, rows, columns, extra + same)
        else:
            spec = specs[script_of(r.name, specs)]
            title, columns = resolve(spec, r.payload, defaults=defaults)
            lines += _section(title, r, r.payload.get("rows", []), columns)
    return "\n".join(lines).rstrip() + "\n" if lines else ""


# -- the headline ---------------------------------------------------------------------------

def _rows(results: list[Result], machine: str, suite: str, specs: dict) -> list[tuple[Result, dict]]:
    """Every row of the results of ``suite`` (a script's table) on ``machine``, newest result
    first (results without a date last), run_all.py's before a script's own file."""
    found = []
    for r in results:
        if r.machine != machine:
            continue
        if r.run_all:
            found += [(r, row) for row in r.payload.get("suites", {}).get(suite, [])]
        elif r.name.split("-")[0] == suite and _covering(r, results) is None:
            found += [(r, row) for row in r.payload.get("rows", [])]
    order = {id(r): i for i, r in enumerate(results)}
    found.sort(key=lambda rr: (str(rr[0].payload.get("date", "")), int(rr[0].run_all), -order[id(rr[0])]),
               reverse=True)
    return found


#: The headline's paths (``default_path.py``'s rows) and their column headers.
HEADLINE_PATHS = (("default (shared steps)", "hkjax"),
                  ("per-example (shared_steps=False)", "hkjax, per-example solves"),
                  ("paper's code", "paper's code"))


def headline_rows(results_dir: str | Path = RESULTS, bench_dir: str | Path = HERE) -> dict[str, dict]:
    """Per machine, the headline: ``{"source": Result, "rows": [{"config", <path>: step_s, ...}]}``
    from the newest ``default_path.py`` result of that machine that timed the paper's code in
    the same run (hkjax's training step next to the paper's, alternating)."""
    specs = table_specs(bench_dir)
    results = load(results_dir)
    out = {}
    for machine in sorted({r.machine for r in results}):
        found = [(r, row) for r, row in _rows(results, machine, "default_path", specs)
                 if r.payload.get("reference")]
        if not found:
            continue
        source = found[0][0]
        rows: dict[str, dict] = {}
        for row in source.payload["rows"]:
            rows.setdefault(row["config"], {"config": row["config"]})[row["path"]] = row["step_s"]
            if row["path"] == HEADLINE_PATHS[0][0] and row.get("peak_mb") is not None:
                rows[row["config"]]["peak_mb"] = row["peak_mb"]
        out[machine] = {"source": source, "rows": list(rows.values())}
    return out


def render_headline(results_dir: str | Path = RESULTS, bench_dir: str | Path = HERE) -> str:
    """The headline table of ``README.md``: ``hk.fit``'s training step at the paper's 28×28
    scale next to the paper's own code, measured in one run, per machine."""
    lines = []
    ref = HEADLINE_PATHS[-1][0]
    for machine, found in headline_rows(results_dir, bench_dir).items():
        src = found["source"]
        lines += [f"On {machine} ({_device(src.payload.get('device', {}))}), median seconds per training "
                  f"step, from `benchmarks/results/{src.path.name}` (`{src.payload.get('command', '?')}`):", ""]
        memory = any("peak_mb" in row for row in found["rows"])
        lines += ["| paper's 28×28 network | " + " | ".join(h for _, h in HEADLINE_PATHS)
                  + " | paper's code ÷ hkjax |" + (" hkjax's peak memory (MB) |" if memory else ""),
                  "|---" * (len(HEADLINE_PATHS) + 2 + memory) + "|"]
        for row in found["rows"]:
            cells_ = ["–" if row.get(p) is None else f"{row[p]:.3g}" for p, _ in HEADLINE_PATHS]
            a, b = row.get(HEADLINE_PATHS[0][0]), row.get(ref)
            ratio = f"{b / a:.1f}×" if a and b else ""
            peak = (" –" if row.get("peak_mb") is None else f" {row['peak_mb']:.0f}") + " |" if memory else ""
            lines.append(f"| {row['config']} | " + " | ".join(cells_) + f" | {ratio} |" + peak)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n" if lines else ""


# -- the Markdown files ---------------------------------------------------------------------

def block(text: str, begin: str, end: str) -> str | None:
    """What lies between the lines ``begin`` and ``end`` of ``text`` (``None`` without them)."""
    if begin not in text or end not in text or text.index(begin) > text.index(end):
        return None
    inner = text.split(begin, 1)[1].split(end, 1)[0]
    return inner.strip("\n") + "\n" if inner.strip("\n") else ""


def fill(text: str, begin: str, end: str, content: str) -> str:
    """``text`` with ``content`` between the lines ``begin`` and ``end``."""
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    body = f"\n{content.rstrip()}\n" if content.strip() else "\n"
    return f"{head}{begin}{body}{end}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a generated block differs")
    ap.add_argument("--results", default=str(RESULTS), help="the results directory (default benchmarks/results)")
    a = ap.parse_args(argv)
    targets = [(README, BEGIN, END, render_tables(a.results), True),
               (ROOT_README, HEADLINE_BEGIN, HEADLINE_END, render_headline(a.results), False)]
    stale = []
    for path, begin, end, content, required in targets:
        text = path.read_text() if path.exists() else ""
        if block(text, begin, end) is None:
            if required:
                print(f"{path}: no generated block; put the lines\n{begin}\n{end}\nwhere the tables belong",
                      file=sys.stderr)
                return 2
            continue
        new = fill(text, begin, end, content)
        if new != text:
            stale.append(path)
            if not a.check:
                path.write_text(new)
                print(f"# wrote {path}")
    if a.check and stale:
        print("out of date (run python benchmarks/readme.py): " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

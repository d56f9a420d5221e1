"""The benchmark tables' definitions turned into titles, headers and cells (no JAX).

Each benchmark script defines its table at module level as a literal::

    TABLES = {"relax": {
        "title": "relax, paper MNIST size (n={n}, D={dim}, float32)",
        "columns": [("batch", "batch", "d"), ("relax_ms", "relax (ms, median)", ".1f"), ...],
        "defaults": {...},                        # optional
        "labels": {"kind": ("shared", {True: "shared steps", False: "per-example solves"})},  # optional
    }}

``columns`` is ``[(key of a row, header, format spec)]``. The title and the headers are
format strings filled from what a result file records (:func:`params`), so that the script
printing its table and ``benchmarks/readme.py`` rendering it from the JSON alone produce the
same text. The literal is read by ``readme.py`` without importing the script.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

#: Keys of a result payload that are not parameters of the run.
_NOT_PARAMS = {"rows", "suites", "command", "device", "date", "commit"}


def command_options(command: str) -> dict:
    """``--name value`` options of a recorded command line (``--flag`` alone: ``True``)."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return {}
    out = {}
    for i, w in enumerate(words):
        if w.startswith("--") and len(w) > 2:
            name, eq, value = w[2:].partition("=")
            if eq:
                out[name.replace("-", "_")] = value
            elif i + 1 < len(words) and not words[i + 1].startswith("--"):
                out[name.replace("-", "_")] = words[i + 1]
            else:
                out[name.replace("-", "_")] = True
    return out


def params(spec: dict, payload: dict, rows: list[dict] | None = None, defaults: dict | None = None) -> dict:
    """What fills a table's title and headers, later sources winning: ``defaults`` (the
    paper's configuration), the spec's own ``defaults`` (values of runs that did not record
    them), the options of the recorded command, the payload's scalar entries, the first row;
    then the spec's ``labels`` (a name computed from another: ``(key, {value: text})``)."""
    rows = payload.get("rows", []) if rows is None else rows
    p = {**(defaults or {}), **spec.get("defaults", {}), **command_options(payload.get("command", ""))}
    p.update({k: v for k, v in payload.items() if k not in _NOT_PARAMS and not isinstance(v, (dict, list))})
    if rows:
        p.update(rows[0])
    for name, (key, mapping) in spec.get("labels", {}).items():
        p[name] = mapping[p[key]]
    return p


def resolve(spec: dict, payload: dict, rows: list[dict] | None = None,
            defaults: dict | None = None) -> tuple[str, list[tuple[str, str, str]]]:
    """``(title, columns)`` of the table ``spec`` for a result ``payload``."""
    p = params(spec, payload, rows, defaults)
    try:
        title = spec["title"].format_map(p)
        columns = [(key, header.format_map(p), fmt) for key, header, fmt in spec["columns"]]
    except KeyError as e:
        raise KeyError(f"table {spec['title']!r}: the result records no {e.args[0]!r}") from None
    return title, columns


def cells(row: dict, columns: list[tuple[str, str, str]]) -> list[str]:
    """One row's cells: numbers through their column's format, anything else as text."""
    out = []
    for key, _, fmt in columns:
        v = row.get(key, "")
        out.append(format(v, fmt) if isinstance(v, (int, float)) and fmt else str(v))
    return out


def git_commit(here: Path | None = None) -> str | None:
    """The checked-out commit of the repository (``git rev-parse --short HEAD``), if any, with
    ``+uncommitted`` when ``hkjax/`` or ``benchmarks/`` (other than ``benchmarks/results/``)
    have changes that it does not hold: the code measured is then not that commit's.
    ``here``: the benchmarks directory (default: this file's)."""
    here = Path(__file__).resolve().parent if here is None else Path(here)
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "../hkjax", "."],
                               cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    changed = dirty.returncode == 0 and any(
        not line[3:].startswith("benchmarks/results/") for line in dirty.stdout.splitlines() if line.strip())
    return out.stdout.strip() + ("+uncommitted" if changed else "")

"""Pages of the documentation generated at build time (run by mkdocs-gen-files).

* ``cli.md``: a short introduction to the ``hkjax`` command and its run directories, then
  the ``--help`` text of the command and of every subcommand, taken from
  :data:`hkjax.cli.COMMANDS` and :func:`hkjax.cli.help_text` (a new subcommand appears without editing anything here);
* ``results.md`` and ``results-fashion-mnist.md``: ``docs/results/digits.md`` and
  ``docs/results/fashion-mnist.md``, the results tables that ``hkjax report`` writes from
  run directories (a note saying how to make one when there is none yet);
* ``benchmarks.md``: ``benchmarks/README.md``;
* ``changelog.md``: ``CHANGELOG.md``;
* ``notebooks/*.ipynb``: the notebooks of ``notebooks/``, rendered by mkdocs-jupyter (with
  their committed outputs; they are not executed).

Relative links in the included files are rewritten to resolve on the site: to the page that
holds the linked file when the site has one, to ``project.urls`` of ``pyproject.toml`` when
it names the repository, else the link is dropped and its text kept.
"""

from __future__ import annotations

import os
import posixpath
import re
import tomllib
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent

#: Files of the repository that the site shows as pages (repository path -> page).
PAGES = {
    "CHANGELOG.md": "changelog.md",
    "benchmarks/README.md": "benchmarks.md",
    "docs/results/digits.md": "results.md",
    "docs/results/fashion-mnist.md": "results-fashion-mnist.md",
}

_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^)\s]+)((?:\s+\"[^\"]*\")?)\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")


def _repository_url() -> str | None:
    """The repository's web address from ``[project.urls]`` of pyproject.toml, if any."""
    try:
        urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None
    for key in ("Repository", "repository", "Source", "source", "Code", "GitHub", "Homepage", "homepage"):
        url = urls.get(key)
        if isinstance(url, str) and url.startswith("https://github.com/"):
            return url.rstrip("/")
    return None


def _site_target(repo_path: str) -> str | None:
    """The docs-relative path that shows the repository file ``repo_path``, if any."""
    if repo_path in PAGES:
        return PAGES[repo_path]
    if repo_path.startswith("notebooks/") and repo_path.endswith(".ipynb"):
        return repo_path
    if repo_path.startswith("docs/") and (ROOT / repo_path).exists() and not repo_path.endswith(".py"):
        return repo_path[len("docs/"):]
    return None


def rewrite_links(text: str, source: str, page: str) -> str:
    """``text`` (Markdown of the repository file ``source``) with its relative links made to
    resolve from the site page ``page``; code blocks and code spans are left alone."""
    repo = _repository_url()
    page_dir = posixpath.dirname(page)

    def fix(match):
        bang, label, target, title = match.groups()
        if _SCHEME.match(target) or target.startswith(("#", "/")):
            return match.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if repo_path.startswith("../"):
            return label
        site = _site_target(repo_path)
        if site is not None:
            rel = posixpath.relpath(site, page_dir or ".")
            return f"{bang}[{label}]({rel}{'#' + anchor if anchor else ''}{title})"
        if repo is not None and (ROOT / repo_path).exists():
            kind = "tree" if (ROOT / repo_path).is_dir() else "blob"
            return f"{bang}[{label}]({repo}/{kind}/main/{repo_path}{'#' + anchor if anchor else ''}{title})"
        return label if not bang else f"*{label}*"

    out, fence = [], None
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)[0] * len(m.group(2))
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            parts = re.split(r"(`+[^`]*?`+)", line)  # keep code spans as they are
            line = "".join(p if p.startswith("`") else _LINK.sub(fix, p) for p in parts)
        out.append(line)
    return "".join(out)


def _include(source: str, page: str, title: str, missing: str) -> None:
    """Write the repository file ``source`` as the page ``page`` (``missing`` when there is no
    such file), under the heading ``title`` unless the file starts with a heading of its own."""
    path = ROOT / source
    if path.is_file():
        text = rewrite_links(path.read_text(encoding="utf-8"), source, page)
        first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("<!--")), "")
        if not first.startswith("# "):
            text = f"# {title}\n\n{text}"
    else:
        text = f"# {title}\n\n{missing}"
    with mkdocs_gen_files.open(page, "w") as f:
        f.write(text)
    mkdocs_gen_files.set_edit_path(page, source)


# ---------------------------------------------------------------------------------------
# the hkjax command
# ---------------------------------------------------------------------------------------

CLI_INTRO = """\
# The `hkjax` command

`hkjax` (or `python -m hkjax`) runs the paper's experiments from the command line. With no
arguments it runs a short demo: it trains a small Hopfield classifier on the embedded digits
(into `runs/demo`) and prints its test accuracy.

Every subcommand takes the same options, the fields of [`hk.Config`][hkjax.config.Config]:
as flags (`--n-hidden 50`), from a TOML file (`--config run.toml` holding `n_hidden = 50`,
optionally under a `[hkjax]` table; flags override it), or in Python
(`hk.Config(n_hidden=50)`). Each subcommand uses the options it needs; every option has a
default, printed in the help texts below.

```bash
hkjax train --task classify --model hopfield --lr 0.01 --out runs/hopfield
hkjax train --task classify --model hopfield_kuramoto --from runs/hopfield --out runs/hk
hkjax edit --from runs/hopfield --edit swap --classes 0,1 --associative --out runs/swap
hkjax eval --run runs/hk
hkjax sweep --param coupling=0:0.01:8 --param seed=0:7 --out runs/sweep
hkjax report runs/hopfield runs/hk runs/swap --out results.md
```

## The run directory

A run writes everything into its `--out` directory:

| file | what it holds |
|---|---|
| `config.toml` | every option of the run (what `--config` reads back; `hkjax eval`, `--resume` and `--from` read it) |
| `metrics.jsonl` | one JSON row per logged step (`"split": "train"`: mean loss and accuracy over the last `--log-every` steps, seconds) and per evaluation (`"split": "eval"` for the test split, `"val"` for the `--val` split) |
| `checkpoints/ckpt_<step>.hkjax` | model, optimiser state, step and PRNG key (a safetensors file, see [`hkjax.checkpoint`](api/checkpoint.md)); the parameter average too with `--ema` |
| `summary.json` | the final figures (test accuracy and loss, validation accuracy, per-cue accuracies of an edit, the accuracy with the coupling switched off for `hopfield_kuramoto`), the command line, hkjax's and JAX's versions, the device and the wall time |
| `*.png` | figures: learning curves, confusion matrix, the energy along one relaxation, the oscillators' order parameter and Gram matrix, the training augmentation (`hkjax plot` redraws them) |
| `eval.json` | written by `hkjax eval` |

`hkjax edit` without `--from` first trains the classifier it edits, into `OUT/classifier`.
`hkjax sweep` writes `sweep.csv`, `sweep.json` and `sweep_<metric>.png` instead (see
[Sweeps](sweeps.md)). `hkjax report` reads the `summary.json` of finished runs and writes a
results table (Markdown, with the JSON it was made from beside it); runs whose commands differ
only by `--seed` and `--out` share a row. The [results](results.md) page is such a table.

A directory that already holds a run is never written into by accident: `--resume`
continues it from its newest checkpoint (exactly: the same result as an uninterrupted run on
the same machine) with the settings of its own `config.toml` (`hkjax train --resume --out
RUN` is enough; `--steps N` trains on to a new total) and refuses options that would change
what is trained; `--overwrite`
replaces it once every argument has been checked. Bad arguments, missing files and unreadable
checkpoints print one line and exit with status 2.

Compiled programs are kept in JAX's persistent compilation cache (`~/.cache/hkjax/xla`;
`HKJAX_COMPILE_CACHE=DIR` moves it, `HKJAX_COMPILE_CACHE=0` turns it off; from Python,
`hk.enable_compile_cache()`), so a second run of the same configuration skips most of its
compilation.

## Reference

The sections below are the command's own `--help` texts.
"""


def cli_page() -> str:
    os.environ["COLUMNS"] = "100"  # the help is wrapped to the terminal's width
    from hkjax import cli

    parts = [CLI_INTRO, "### `hkjax`\n\n```text\n" + cli.help_text().rstrip() + "\n```\n"]
    for name in cli.COMMANDS:
        parts.append(f"### `hkjax {name}`\n\n```text\n" + cli.help_text(name).rstrip() + "\n```\n")
    return "\n".join(parts)


with mkdocs_gen_files.open("cli.md", "w") as f:
    f.write(cli_page())
mkdocs_gen_files.set_edit_path("cli.md", "hkjax/cli.py")

_include("docs/results/digits.md", "results.md", "Results on the digits", missing=(
    "This page shows the results table that `hkjax report` writes from the run directories of "
    "`hkjax train` and `hkjax edit` into `docs/results/digits.md`; that file has not been "
    "generated yet.\n"
))
_include("docs/results/fashion-mnist.md", "results-fashion-mnist.md", "Results on Fashion-MNIST", missing=(
    "This page shows the results table that `hkjax report` writes from the runs on Fashion-MNIST "
    "into `docs/results/fashion-mnist.md`; that file has not been generated yet.\n"
))
_include("benchmarks/README.md", "benchmarks.md", "Benchmarks", missing="No benchmark results yet.\n")
_include("CHANGELOG.md", "changelog.md", "Changelog", missing="No changes recorded yet.\n")

for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    with mkdocs_gen_files.open(f"notebooks/{notebook.name}", "wb") as f:
        f.write(notebook.read_bytes())

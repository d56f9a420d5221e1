"""The documentation site builds with ``mkdocs build --strict``: every page in the nav exists,
every link and cross-reference resolves, every docstring renders without a warning, and the
generated pages (the command's help, results, benchmarks, changelog, notebooks) are there.

MkDocs and its plugins are in the ``docs`` extra, which the ``dev`` extra includes.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        print(proc.stdout)
        print(proc.stderr)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-6000:]}"
    return out


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_site_builds_strict(site):
    for page in _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]):
        stem = page.rsplit(".", 1)[0]
        html = site / (stem[: -len("index")] if stem.endswith("index") else stem + "/") / "index.html"
        assert html.is_file(), f"{page} is in the nav but {html.relative_to(site)} was not built"


def test_cli_page_has_every_subcommand(site):
    from hkjax.cli import COMMANDS

    html = (site / "cli" / "index.html").read_text()
    for name in COMMANDS:
        assert f"usage: hkjax {name}" in html, f"the help of `hkjax {name}` is missing from cli.md"


def test_every_public_module_has_an_api_page():
    modules = {p.stem for p in (ROOT / "hkjax").glob("*.py")} | {
        p.parent.name for p in (ROOT / "hkjax").glob("*/__init__.py")}
    public = {m for m in modules if not m.startswith("_")} - {"cli"}  # cli: the command's page
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.md")} - {"index"}
    assert public == pages, f"modules without an API page: {sorted(public - pages)}; pages without a module: " \
                            f"{sorted(pages - public)}"
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    for name in pages:
        assert f"::: hkjax.{name}" in (ROOT / "docs" / "api" / f"{name}.md").read_text()
        assert f"api/{name}.md" in nav, f"api/{name}.md is not in the nav of mkdocs.yml"

"""The Python examples of the documentation pages run against the library.

Every fenced ```python block of a page in ``PAGES`` is executed, the blocks of one page in
order and in one namespace (as a reader would paste them into one Python session). A block whose
first line is ``# not run`` (a signature, a fragment, a command-line sketch) is skipped; any
other Python block must run. Pages also link to other pages only by the file names the site
has, so that a strict MkDocs build does not fail on a broken link.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: The pages whose Python blocks are executed.
PAGES = ("concepts.md", "hopfield-kuramoto.md", "networks.md", "custom-synapse.md", "training-notes.md")

#: The pages of the site (what a relative link may point to).
SITE = {
    "index.md", "getting-started.md", "concepts.md", "hopfield-kuramoto.md", "networks.md",
    "custom-synapse.md", "relax.md", "training.md", "training-notes.md", "sweeps.md", "cli.md",
    "results.md", "results-fashion-mnist.md", "benchmarks.md",
}

SKIP = "# not run"

_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_LINK = re.compile(r"\]\(([^)#\s]+\.md)(#[^)]*)?\)")


def blocks(page: str) -> list[str]:
    """The runnable Python blocks of ``page``, in order."""
    text = (DOCS / page).read_text()
    return [b for b in _BLOCK.findall(text) if not b.lstrip().startswith(SKIP)]


def test_custom_synapse_page_has_examples():
    assert len(blocks("custom-synapse.md")) >= 3, "docs/custom-synapse.md lost its worked example"


@pytest.mark.parametrize("page", [p for p in PAGES if (DOCS / p).exists() and blocks(p)])
def test_page_examples_run(page):
    # A real module, so that classes defined in a block (Equinox modules are dataclasses)
    # find their module; compiled without this file's `from __future__` flags, as a reader
    # would run them in a Python session.
    name = "docs_" + re.sub(r"\W", "_", page)
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        for k, block in enumerate(blocks(page)):
            code = compile(block, f"docs/{page}[python block {k}]", "exec", dont_inherit=True)
            exec(code, module.__dict__)
    finally:
        del sys.modules[name]


@pytest.mark.parametrize("page", [p for p in PAGES if (DOCS / p).exists()])
def test_page_links_point_to_site_pages(page):
    text = (DOCS / page).read_text()
    targets = {m.group(1) for m in _LINK.finditer(text) if "://" not in m.group(1)}
    assert targets <= SITE, f"docs/{page} links to pages the site does not have: {sorted(targets - SITE)}"

"""Every Python code block in README.md runs, and the two setup commands lead it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_code():
    assert BLOCKS, "README.md lost its Python code tour"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    exec(compile(BLOCKS[index], f"README.md[block {index}]", "exec"), {"__name__": "__readme__"})


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first is not None and text.index(first.group(0)) < text.index("## ")
    lines = [ln for ln in first.group(1).splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 2
    assert "python -m hkjax" in lines[0]
    assert "pytest" in lines[1]
    # CI runs exactly the README's test command.
    assert lines[1] in (README.parent / ".ci" / "run").read_text()


def test_readme_links_resolve():
    """Every relative link of README.md names a file of the repository."""
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "README.md has no relative links to check"
    missing = [t for t in local if not (README.parent / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"

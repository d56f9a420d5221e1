"""The product speaks of the software only: no file of the repository (code, comments,
docstrings, tests, benchmark scripts, notebooks, documentation) refers to development
sessions, to the order in which work was done, or to issue-tracker numbers. That history
belongs in git and ``CHANGELOG.md``, the only file exempt.

The files checked are those git tracks plus untracked ones it does not ignore (so that a new
file is checked before it is committed); without git, the tree is walked instead, skipping
build outputs, runs and virtual environments."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Files allowed to hold development history (paths relative to the repository root).
EXEMPT = {"CHANGELOG.md", "tests/test_history.py"}
#: Never text, never read.
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".npz", ".npy", ".hkjax", ".pkl", ".gz", ".zip"}
#: Directories the fallback walk skips.
SKIP_DIRS = {".git", ".venv", "venv", "build", "dist", "runs", "site", "__pycache__", ".pytest_cache",
             ".hypothesis", ".ipynb_checkpoints"}
#: A notebook's embedded images (one base64 string per line) are not prose.
_NOTEBOOK_DATA_LINE = re.compile(r'^\s*"image/[\w+.-]+": "')

_ORDINALS = (r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
             r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
             r"\d+(?:st|nd|rd|th)")

#: ``(what it catches, pattern)``.
PATTERNS = [
    ("a numbered session", re.compile(rf"\b(?:{_ORDINALS})[- ]sessions?\b", re.IGNORECASE)),
    ("a session named by its place", re.compile(r"\b(?:this|that|earlier|previous|last|next|later)"
                                                r"[- ]sessions?\b", re.IGNORECASE)),
    # Any other "session" too, except an interpreter's (what a reader types code into), named
    # by one of the words let through before it.
    ("a session", re.compile(r"(?<!Python )(?<!IPython )(?<!interactive )(?<!Jupyter )(?<!REPL )"
                             r"(?<!interpreter )(?<!shell )(?<!terminal )(?<!one )"
                             r"\bsessions?\b", re.IGNORECASE)),
    ("an issue number", re.compile(r"\b(?:issues?|tickets?|bugs?|pull requests?|PRs?)\s*#?\d+\b", re.IGNORECASE)),
    # "#4" in prose; not an HTML entity (&#8212;), a URL fragment (page#3, /#3), nor a
    # colour (#123, #123456, #12345678: hex of 3, 6 or 8 digits).
    ("a #number", re.compile(r"(?<![\w&/#])#(?!(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})\b)\d{1,5}\b")),
    ("a numbered stop", re.compile(r"\bstop \d+\b", re.IGNORECASE)),
]


def _candidate_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=30,
        ).stdout.decode("utf-8", "surrogateescape")
        files = [f for f in out.split("\0") if f]
        if files:
            return files
    except (OSError, subprocess.SubprocessError):
        pass
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        rel = pathlib.Path(dirpath).relative_to(ROOT)
        files += [(rel / name).as_posix() for name in filenames]
    return files


def _read_text(path: pathlib.Path) -> str | None:
    if path.suffix.lower() in BINARY_SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def history_hits(files=None) -> list[str]:
    """``path:line: [what] text`` of every line that matches one of :data:`PATTERNS`."""
    hits = []
    for rel in sorted(set(files if files is not None else _candidate_files())):
        if rel in EXEMPT:
            continue
        text = _read_text(ROOT / rel)
        if text is None:
            continue
        notebook = rel.endswith(".ipynb")
        for lineno, line in enumerate(text.splitlines(), 1):
            if notebook and _NOTEBOOK_DATA_LINE.match(line):
                continue
            for what, pattern in PATTERNS:
                if pattern.search(line):
                    hits.append(f"{rel}:{lineno}: [{what}] {line.strip()[:200]}")
                    break
    return hits


def test_no_development_history_outside_the_changelog():
    hits = history_hits()
    assert not hits, (
        "development history (sessions, issue numbers, the order of work) belongs in git and "
        "CHANGELOG.md; describe what the software does instead:\n" + "\n".join(hits)
    )


def test_the_patterns_catch_history_and_spare_the_rest():
    def caught(line):
        return any(p.search(line) for _, p in PATTERNS)

    for line in [
        "measured in the twelfth session, 2-core CPU",
        "tiles of 128 rows before the tenth session",
        "as in the 3rd session",
        "this session's benchmark",
        "fixed in a later session",
        "see the session note",
        "Target (issue #4, 2-core CPU)",
        "see issue 12",
        "| relax ≤ 1.5 s | #4 | met |",
        "stop 3 of the plan",
    ]:
        assert caught(line), line
    for line in [
        "in an interactive Python session",
        "as a reader would paste them into one session",
        'colour="#1f77b4", edge="#333", face="#a0a0a0ff"',
        "# A heading",
        "see https://example.org/page#3 and &#8212;",
        "a stop 'condition' and issues of numerical stability",
        "x = y  # the first step",
    ]:
        assert not caught(line), line

"""The notebooks in ``notebooks/`` run top to bottom and are committed with their outputs.

Each notebook is executed at reduced size (``HKJAX_NOTEBOOK_SMALL=1``, read in its first code
cell) in a temporary copy, so the committed files are never touched, in a fresh kernel of the
interpreter running the tests, two kernels at a time (``notebooks/execute.py`` provides the
kernelspec; no ``ipykernel install`` needed). Any cell error fails the test. The committed notebooks must
carry outputs, at least one figure each, from a full-size run (``python notebooks/execute.py``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_hopfield_energy",
    "02_kuramoto_synchrony",
    "03_low_rank_binding",
    "04_memory_editing",
    "05_training_and_sweeps",
    "06_custom_synapse",
    "07_conv_oscillators",
]
CELL_TIMEOUT = 300  # seconds per cell (a hang fails instead of stalling CI)


def _execute_module():
    spec = importlib.util.spec_from_file_location("hkjax_notebooks_execute", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(cell):
    return cell.get("outputs", []) if cell.cell_type == "code" else []


def test_every_notebook_is_there():
    missing = sorted(set(EXPECTED) - {p.stem for p in NOTEBOOKS})
    assert not missing, f"notebooks missing from notebooks/: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and nb.cells[0].cell_type == "markdown", "a notebook opens with markdown, then code"
    assert "HKJAX_NOTEBOOK_SMALL" in code[0].source, "the first code cell must read the size knob"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    not_run = [i for i, c in enumerate(code) if not c.get("execution_count")]
    assert not not_run, f"{path.name}: code cells {not_run} have no outputs; run python notebooks/execute.py"
    errors = [o for c in code for o in _outputs(c) if o.output_type == "error"]
    assert not errors, f"{path.name} was committed with an error output: {errors[0].get('ename')}"
    images = sum("image/png" in o.get("data", {}) for c in code for o in _outputs(c))
    assert images >= 1, f"{path.name} has no figure output; commit it executed (python notebooks/execute.py)"
    assert nb.metadata.get("hkjax", {}).get("small") is False, (
        f"{path.name} was not executed at full size by notebooks/execute.py"
    )


PROBE = "import os, sys\nprint(sys.executable)\nprint(os.environ['HKJAX_NOTEBOOK_SMALL'], SMALL)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook executed at reduced size in a temporary copy, two kernels at a time (much of
    a notebook's time is JAX compiling on one core). ``{stem: (notebook, seconds, error)}``."""
    execute = _execute_module()
    tmp = tmp_path_factory.mktemp("notebooks")
    originals = {p: p.read_bytes() for p in NOTEBOOKS}
    books = []
    for path in NOTEBOOKS:
        nb = nbformat.reads(originals[path].decode(), as_version=4)
        for cell in nb.cells:  # start from a clean copy: nothing below may pass on stale outputs
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
        nbformat.write(nb, tmp / path.name)
        books.append(nb)
    results = execute.execute_all(books, cwd=tmp, small=True, timeout=CELL_TIMEOUT, jobs=2)
    for path in NOTEBOOKS:
        assert path.read_bytes() == originals[path], f"executing a copy changed the committed {path.name}"
    return {p.stem: (nb, seconds, error) for p, nb, (seconds, error) in zip(NOTEBOOKS, books, results)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_at_reduced_size(path, executed):
    nb, seconds, error = executed[path.stem]
    if error is not None:  # nbclient's CellExecutionError shows the failing cell and its traceback
        pytest.fail(f"{path.name} failed at reduced size after {seconds:.0f} s:\n{error}", pytrace=False)
    errors = [o for c in nb.cells for o in _outputs(c) if o.output_type == "error"]
    assert not errors
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in _outputs(c)), "no figure was drawn"
    printed = "".join(o.get("text", "") for o in _outputs(nb.cells[-1]) if o.output_type == "stream").split()
    assert printed[0] == sys.executable or os.path.samefile(printed[0], sys.executable), (
        f"the kernel ran {printed[0]}, not the test's interpreter {sys.executable}"
    )
    assert printed[1:] == ["1", "True"], "the notebook did not pick up HKJAX_NOTEBOOK_SMALL=1"

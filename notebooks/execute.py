"""Re-execute the notebooks and save them with their outputs.

    .venv/bin/python notebooks/execute.py                 # every notebook, full size, in place
    .venv/bin/python notebooks/execute.py 04_memory_editing.ipynb
    .venv/bin/python notebooks/execute.py --small --out /tmp/nb   # reduced size, copies elsewhere

Each notebook runs top to bottom in a fresh kernel of *this* Python (the interpreter running
this script, i.e. the project's virtual environment), with the notebook's folder as working
directory. A notebook is written back only if every cell ran without error. ``--small`` sets
``HKJAX_NOTEBOOK_SMALL=1``, the size knob each notebook reads in its first code cell (what
``tests/test_notebooks.py`` runs); commit notebooks executed at full size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
SMALL_ENV = "HKJAX_NOTEBOOK_SMALL"
KERNEL_NAME = "python3"


@contextlib.contextmanager
def _environ(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def this_python_kernel():
    """Make the kernel ``python3`` run ``sys.executable``, whatever else is installed.

    A kernelspec ``python3`` is written to a temporary directory that is put first on
    ``JUPYTER_PATH`` (searched before the user's and the system's kernel directories), so
    neither ``python -m ipykernel install`` nor an activated environment is needed, and a
    stray user-level ``python3`` kernel pointing at another interpreter cannot be picked up.
    """
    with tempfile.TemporaryDirectory(prefix="hkjax-kernel-") as d:
        spec = pathlib.Path(d, "kernels", KERNEL_NAME)
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }))
        path = os.environ.get("JUPYTER_PATH")
        with _environ(JUPYTER_PATH=d + (os.pathsep + path if path else "")):
            yield


def _client(nb: nbformat.NotebookNode, cwd: pathlib.Path, timeout: int) -> NotebookClient:
    return NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )


def execute(nb: nbformat.NotebookNode, *, cwd: pathlib.Path, small: bool, timeout: int = 600) -> float:
    """Execute ``nb`` in place (outputs are stored in it) and return the wall time in seconds.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message shows the cell).
        nbclient.exceptions.CellTimeoutError: a cell ran longer than ``timeout`` seconds.
    """
    ((seconds, error),) = execute_all([nb], cwd=cwd, small=small, timeout=timeout)
    if error is not None:
        raise error
    return seconds


def execute_all(notebooks, *, cwd: pathlib.Path, small: bool, timeout: int = 600, jobs: int = 1):
    """Execute several notebooks in place, ``jobs`` kernels at a time.

    Running two at once pays on two cores: much of a notebook's time is JAX compiling, which
    uses one core. Returns ``[(seconds, exception or None), ...]`` in the order given.
    """
    clients = [_client(nb, cwd, timeout) for nb in notebooks]

    async def run_all():
        gate = asyncio.Semaphore(max(1, jobs))

        async def one(client):
            async with gate:
                start = time.perf_counter()
                try:
                    await client.async_execute()
                except Exception as e:  # noqa: BLE001 - reported to the caller
                    return time.perf_counter() - start, e
                return time.perf_counter() - start, None

        return await asyncio.gather(*(one(c) for c in clients))

    with this_python_kernel(), _environ(**{SMALL_ENV: "1" if small else "0"}):
        results = asyncio.run(run_all())
    for nb, (_, error) in zip(notebooks, results):
        if error is None:  # recorded so that the tests can check the committed notebooks ran at full size
            nb.metadata["hkjax"] = {"small": bool(small)}
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="notebook files (default: every notebooks/*.ipynb)")
    ap.add_argument("--small", action="store_true", help=f"reduced size ({SMALL_ENV}=1), as the tests run them")
    ap.add_argument("--out", default=None, help="write the executed notebooks here instead of in place")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    a = ap.parse_args(argv)
    paths = [pathlib.Path(p) for p in a.notebooks] or sorted(HERE.glob("*.ipynb"))
    paths = [p if p.exists() else HERE / p for p in paths]
    out = None if a.out is None else pathlib.Path(a.out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in paths:  # one at a time, so that the printed times are those of a notebook alone
        nb = nbformat.read(path, as_version=4)
        ((seconds, error),) = execute_all([nb], cwd=path.resolve().parent, small=a.small, timeout=a.timeout)
        if error is not None:
            failed += 1
            print(f"{path.name}: FAILED after {seconds:.1f} s (not written)\n{error}", file=sys.stderr, flush=True)
            continue
        target = path if out is None else out / path.name
        nbformat.write(nb, target)
        print(f"{path.name}: {seconds:.1f} s -> {target}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

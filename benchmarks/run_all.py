"""Run every benchmark and collect the tables into ``benchmarks/results/<machine>.json``
and ``benchmarks/results/<machine>.md``.

    python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys

try:
    import _common, relax, sweep, train_step, vector_field
except ImportError:  # pragma: no cover
    from . import _common, relax, sweep, train_step, vector_field


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, not for reporting)")
    a = ap.parse_args(argv)
    r = ["--repeats", "2"] if a.quick else []
    suites = {
        "vector_field": lambda: vector_field.main(r if a.quick else ["--repeats", "20"]),
        "relax": lambda: relax.main(r),
        "train_step": lambda: train_step.main(r),
        "sweep": lambda: sweep.main(r),
        # The digits-size network of `hkjax train` (64 + 100 + 11 units, degree 16): where a
        # single solve is cheap, batching amortises the per-call and per-step overheads.
        "sweep_digits_size": lambda: sweep.main(
            r + ["--n", "175", "--k", "16", "--json",
                 str(_common.RESULTS / f"sweep_digits_size-{_common.machine_name()}.json")]
        ),
    }
    results, md = {}, io.StringIO()
    for name, fn in suites.items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            results[name] = fn()
        text = buf.getvalue()
        sys.stdout.write(text)
        md.write("\n".join(ln for ln in text.splitlines() if not ln.startswith("# wrote")) + "\n")
    machine = _common.machine_name()
    out = _common.write_json(machine, {"suites": results}, str(_common.RESULTS / f"{machine}.json"))
    (out.parent / f"{machine}.md").write_text(f"# Benchmarks on {machine}\n" + md.getvalue())
    print(f"# wrote {out.parent / (machine + '.md')}")


if __name__ == "__main__":
    main()

"""Throughput of the convolutional synapses' energy gradients next to a plain
``jax.lax.conv_general_dilated`` of the same size, measured in the same run.

Rows, each one compiled call on a batch (``jax.vmap`` over the samples), timed round-robin
(``_common.alternate``) so that the machine's drift hits them alike:

* ``jax.lax.conv``: ``conv(g_pre, K)`` alone, ``(batch, H, W, C_in) → (batch, H, W, C_out)``,
  ``k × k`` kernel, ``"SAME"`` padding: the reference;
* ``Conv gradient (autodiff)``: ``Conv.gradient``, i.e. ``jax.grad`` of
  ``E = −⟨g_post, conv(g_pre, K)⟩`` with respect to both layers (what ``Network`` evaluates);
* ``Conv gradient (closed form)``: ``(−conv_transpose(g_post, K), −conv(g_pre, K))`` written
  out by hand: the closed form a synapse could provide instead;
* ``ConvKuramoto gradient (closed form)``: ``ConvKuramoto.gradient``, ``−J_s ⋆ σ`` (one
  convolution of the ``D`` components, ``C_in → C_in`` channels);
* ``ConvKuramoto gradient (autodiff)``: ``jax.grad`` of ``ConvKuramoto.energy``.

GFLOP/s counts ``2 · H_out · W_out · C_out · C_in · k²`` per convolution and sample, times
the convolutions the gradient needs (``Conv``: two, one per layer; ``ConvKuramoto``: one
per component, ``D``); a form doing more work than that shows as fewer GFLOP/s.

    python benchmarks/conv.py [--size 28] [--channels 16,16] [--kernel 3] [--batch 16] [--dim 4] [--repeats 30]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import hkjax as hk

try:
    from _common import alternate, report
except ImportError:  # imported as benchmarks.conv
    from ._common import alternate, report

#: The table this script prints; ``benchmarks/readme.py`` renders its results with it.
TABLES = {
    "conv": {
        "title": "convolutional synapses: {height}×{width}×{c_in} → {height}×{width}×{c_out}, {kh}×{kw} kernel, "
                 "SAME padding; ConvKuramoto on {height}×{width}×{c_in} oscillators, D={osc_dim}; batch {batch}, "
                 "{dtype}",
        "columns": [
            ("what", "what", ""), ("convs", "convolutions per sample", "d"),
            ("ms", "batch {batch} (ms, median)", ".3f"), ("min_ms", "min (ms)", ".3f"),
            ("gflops", "GFLOP/s", ".1f"), ("conv_gflops", "jax.lax.conv GFLOP/s", ".1f"),
            ("vs_conv", "time per FLOP vs jax.lax.conv", ".2f"),
        ],
    },
}

_DIMENSIONS = ("NHWC", "OIHW", "NHWC")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=28, help="image height and width")
    ap.add_argument("--channels", default="16,16", help="C_in,C_out")
    ap.add_argument("--kernel", type=int, default=3, help="odd kernel size k (k × k)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dim", type=int, default=4, help="oscillator dimension D of the ConvKuramoto rows")
    ap.add_argument("--repeats", type=int, default=30, help="timed rounds (median)")
    ap.add_argument("--json", default=None, help="output path (default benchmarks/results/conv-<machine>.json)")
    a = ap.parse_args(argv)
    c_in, c_out = (int(c) for c in a.channels.split(","))
    h = w = a.size
    k, b, d = a.kernel, a.batch, a.dim

    keys = jax.random.split(jax.random.key(0), 5)
    kernel = jax.random.normal(keys[0], (c_out, c_in, k, k)) / np.sqrt(c_in * k * k)
    g_pre = jax.random.normal(keys[1], (b, h, w, c_in))
    g_post = jax.random.normal(keys[2], (b, h, w, c_out))
    j = jax.random.normal(keys[3], (c_in, c_in, k, k)) / np.sqrt(c_in * k * k)
    sigma = jax.random.normal(keys[4], (b, h, w, c_in, d))
    sigma = sigma / jnp.linalg.norm(sigma, axis=-1, keepdims=True)

    conv = hk.synapses.Conv("pre", "post", kernel)
    osc = hk.synapses.ConvKuramoto("s", j)

    plain = jax.jit(lambda x: jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS))
    conv_autodiff = jax.jit(jax.vmap(conv.gradient))

    def closed(x, y):
        dx = jax.lax.conv_transpose(y[None], kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS,
                                    transpose_kernel=True)[0]
        return -dx, -conv.forward(x)

    conv_closed = jax.jit(jax.vmap(closed))
    osc_closed = jax.jit(jax.vmap(osc.gradient))
    osc_autodiff = jax.jit(jax.vmap(jax.grad(lambda s: osc.energy(s))))

    calls = {
        "jax.lax.conv": (lambda: plain(g_pre), 1, c_out * c_in),
        "Conv gradient (autodiff)": (lambda: conv_autodiff(g_pre, g_post), 2, c_out * c_in),
        "Conv gradient (closed form)": (lambda: conv_closed(g_pre, g_post), 2, c_out * c_in),
        "ConvKuramoto gradient (closed form)": (lambda: osc_closed(sigma), d, c_in * c_in),
        "ConvKuramoto gradient (autodiff)": (lambda: osc_autodiff(sigma), d, c_in * c_in),
    }
    first, out, times = alternate({name: f for name, (f, _, _) in calls.items()}, a.repeats)

    # the forms agree (closed form against autodiff)
    np.testing.assert_allclose(np.asarray(out["Conv gradient (closed form)"][0]),
                               np.asarray(out["Conv gradient (autodiff)"][0]), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(out["ConvKuramoto gradient (closed form)"][0]),
                               np.asarray(out["ConvKuramoto gradient (autodiff)"]), rtol=1e-3, atol=1e-4)

    per_conv = {name: 2.0 * h * w * k * k * pairs for name, (_, _, pairs) in calls.items()}
    rows = []
    for name, (_, convs, _) in calls.items():
        med = float(np.median(times[name]))
        rows.append({
            "what": name, "convs": convs, "ms": 1e3 * med, "min_ms": 1e3 * float(np.min(times[name])),
            "first_call_s": first[name], "gflops": b * convs * per_conv[name] / med / 1e9,
        })
    ref = rows[0]["gflops"]
    for r in rows:
        r["conv_gflops"] = ref
        r["vs_conv"] = ref / r["gflops"]
    payload = {"height": h, "width": w, "c_in": c_in, "c_out": c_out, "kh": k, "kw": k, "batch": b,
               "osc_dim": d, "dtype": str(g_pre.dtype), "rows": rows}
    report(TABLES["conv"], "conv", payload, a.json)
    return rows


if __name__ == "__main__":
    main()

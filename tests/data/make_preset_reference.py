"""Write the reference values of the presets: ``preset_reference.json`` and ``preset_reference.npz``.

Run by hand, from the repository root::

    .venv/bin/python tests/data/make_preset_reference.py

It builds small float64 instances of :func:`hkjax.hopfield`, :func:`hkjax.kuramoto` and
:func:`hkjax.hopfield_kuramoto` (the variants listed in :func:`cases`: Lagrangians,
interactions, natural frequencies, stimuli, the three couplings with and without a Kuramoto
term, and the graph formulations) from fixed PRNG keys, and saves for each case:

* ``preset_reference.json``: the preset, its arguments (arrays by name, Lagrangians and
  interactions as ``{"module", "class", "kwargs"}``), the key seed, how every array argument
  and input was drawn (``"made_with"``), and whether the quick test run solves it
  (``"relax_quick"``); plus the :func:`hkjax.relax` options of the solves;
* ``preset_reference.npz``, keyed ``"<case>/<what>"``: ``args/<name>`` (array arguments:
  graphs, biases, natural frequencies, stimuli), ``input/<leaf>`` (the ``x`` / ``sigma``
  given to ``init_state``), ``params/<path>`` (every floating-point leaf of the network, by
  ``jax.tree_util.keystr`` path), ``state0/<leaf>``, ``energy``, ``field/<leaf>`` (the
  vector field at ``t = 0``), ``is_lyapunov``, ``relax/ts``, ``relax/energy``,
  ``relax/states/<leaf>`` (at the saved times), ``relax/state/<leaf>`` (final),
  ``relax/num_steps``, and ``end/energy``, ``end/field/<leaf>`` (at the final state mapped
  back onto the sphere by ``init_state``).

``tests/test_preset_reference.py`` rebuilds every case from the JSON with the library as it
is and compares; this script computes the saved values with that test's own helpers, so the
two read and write the same names.

Regenerate only deliberately: when a preset is meant to change its parameters, energy or
flow (a new parametrisation or initialisation), or to add cases. A change that must keep the
presets' behaviour, such as a new internal structure of networks, keeps these files and
adapts the mapping helpers of the test instead. Review the differences the new files make
before committing them.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # the reference is float64
jax.config.update("jax_numpy_rank_promotion", "raise")  # as in the test suite

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import networkx  # noqa: E402
import numpy as np  # noqa: E402

import hkjax as hk  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent

#: The solves: cheap (a few adaptive Tsit5 steps), with a few saved times.
RELAX = {
    "kwargs": {"t1": 0.5, "dt0": 0.005, "rtol": 1e-3, "atol": 1e-6, "max_steps": 64},
    "saveat": [0.0, 0.1, 0.25, 0.5],
    "solver": "diffrax.Tsit5 with a PID controller (the default of hkjax.relax)",
}


def _test_module():
    spec = importlib.util.spec_from_file_location("test_preset_reference", HERE.parent / "test_preset_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases():
    """``(name, spec, arrays)`` of every case: ``spec`` as the JSON holds it, ``arrays`` the
    array arguments and inputs (``"args/<name>"``, ``"input/<leaf>"``)."""

    def normal(seed, shape, scale=1.0):
        a = scale * np.asarray(jax.random.normal(jax.random.key(seed), shape))
        return a, f"{scale} * jax.random.normal(jax.random.key({seed}), {shape})"

    def antisymmetric(seed, shape):
        a = np.asarray(jax.random.normal(jax.random.key(seed), shape))
        return 0.5 * (a - np.swapaxes(a, -1, -2)), (
            f"(A - A^T)/2, A = jax.random.normal(jax.random.key({seed}), {shape})")

    def small_world(n, k, p, seed):
        e = np.asarray(hk.graphs.small_world(n, k, p, key=jax.random.key(seed)))
        return e, f"hk.graphs.small_world({n}, {k}, {p}, key=jax.random.key({seed}))"

    def obj(module, cls, key=None, **kwargs):
        out = {"module": module, "class": cls, "kwargs": kwargs}
        if key is not None:
            out["key"] = key
        return out

    out = []

    def add(name, preset, key, kwargs, arrays, relax_quick=False):
        spec = {"preset": preset, "key": key, "kwargs": dict(kwargs), "made_with": {}, "relax_quick": relax_quick}
        data = {}
        for arg, (value, how) in arrays.items():
            kind, leaf = arg.split("/")
            data[arg] = value
            spec["made_with"][arg] = how
            if kind == "args":
                spec["kwargs"][leaf] = {"array": leaf}
        out.append((name, spec, data))

    # Every case has 16 units (and oscillators in D = 3): shapes shared by the cases keep the
    # test's compilations few.
    n, d = 16, 3

    # -- hopfield: four Lagrangians ------------------------------------------------------
    lagrangians = {
        "identity": obj("lagrangians", "Identity"),
        "tanh": obj("lagrangians", "Tanh"),
        "relu": obj("lagrangians", "ReLU"),
        "softmax": obj("lagrangians", "Softmax", beta=2.0),
    }
    for s, (lname, lag) in enumerate(lagrangians.items()):
        kwargs = {"n": n, "lagrangian": lag}
        arrays = {"input/x": normal(100 + s, (n,))}
        if lname == "tanh":  # an explicit bias and energy scale
            kwargs["kappa"] = 0.5
            arrays["args/bias"] = normal(110, (n,), 0.3)
        if lname == "relu":
            kwargs["init_scale"] = 0.4
        add(f"hopfield-{lname}", "hopfield", s, kwargs, arrays)

    # -- kuramoto: two interactions and a learned one, natural frequencies, stimuli ------
    graph = small_world(n, 4, 0.25, 1)
    sigma = lambda seed: normal(seed, (n, d))  # noqa: E731
    linear, relu = obj("interactions", "Linear"), obj("interactions", "ReLU")
    kuramoto = [
        # name, interaction, formulation, extra kwargs, extra arrays
        ("linear-dense", linear, "dense", {}, {}),
        ("relu-edges", relu, "edges", {"kappa": 2.0}, {}),
        ("relu-omega-dense", relu, "dense", {}, {"args/omega": antisymmetric(210, (d, d))}),
        ("linear-omega-per-neuron-edges", linear, "edges", {}, {"args/omega": antisymmetric(211, (n, d, d))}),
        ("relu-stimulus-edges", relu, "edges", {}, {"args/stimulus": normal(212, (n, d), 0.5)}),
        ("relu-stimulus-omega-dense", relu, "dense", {},
         {"args/stimulus": normal(213, (n, d), 0.5), "args/omega": antisymmetric(214, (d, d))}),
        ("mlp-all", obj("interactions", "MLP", key=215, width=8, depth=2), "all", {"edges": "all"}, {}),
    ]
    for s, (name, inter, form, extra, extra_arrays) in enumerate(kuramoto):
        kwargs = {"n": n, "dim": d, "interaction": inter, "init_scale": 0.5, "formulation": form, **extra}
        arrays = {"input/sigma": sigma(200 + s), **extra_arrays}
        if "edges" not in kwargs:
            arrays["args/edges"] = graph
        add(f"kuramoto-{name}", "kuramoto", 20 + s, kwargs, arrays, relax_quick=name == "relu-stimulus-omega-dense")

    # -- hopfield_kuramoto: the paper's ReLU Lagrangian and interaction ------------------
    # G_K of degree 2: under "tiles" two of its four 8 x 8 tiles are kept and three edges
    # are left over (both parts of the layout); G_HK of degree 4 (all four tiles kept).
    graph_k, graph_hk = small_world(n, 2, 0.2, 2), small_world(n, 4, 0.25, 3)
    paper = {"lagrangian": obj("lagrangians", "ReLU"), "interaction": obj("interactions", "ReLU")}
    seed = 300

    def hk_case(name, coupling, formulation, kuramoto_term=True, extra=None, extra_arrays=None, quick=False):
        nonlocal seed
        seed += 1
        kwargs = {"n": n, "dim": d, "coupling": coupling, "formulation": formulation, "init_scale": 0.1, **paper}
        kwargs.update(extra or {})
        arrays = {"input/x": normal(seed, (n,)), "input/sigma": normal(1000 + seed, (n, d))}
        if formulation == "all":
            kwargs["edges_k"] = "all" if kuramoto_term else None
            kwargs["edges_hk"] = "all"
        else:
            if kuramoto_term:
                arrays["args/edges_k"] = graph_k
            else:
                kwargs["edges_k"] = None
            arrays["args/edges_hk"] = graph_hk
        arrays.update(extra_arrays or {})
        add(f"hopfield_kuramoto-{name}", "hopfield_kuramoto", seed, kwargs, arrays, relax_quick=quick)

    for coupling in ("full", "additive", "multiplicative"):
        for form in ("dense", "edges"):
            for term in (True, False):
                hk_case(f"{coupling}-{form}" + ("" if term else "-no-kuramoto"), coupling, form, term,
                        quick=(coupling, form, term) == ("full", "dense", True))
        for form in ("neighbours", "bcoo", "tiles", "all"):
            hk_case(f"{coupling}-{form}", coupling, form)
    # The paper's initial scale and energy scales (defaults), and variants of the arguments.
    hk_case("full-dense-paper-scale", "full", "dense", extra={"init_scale": 0.01})
    hk_case("multiplicative-dense-tanh-linear-omega-stimulus", "multiplicative", "dense",
            extra={"lagrangian": obj("lagrangians", "Tanh"), "interaction": linear, "kappa_h": 0.5,
                   "kappa_k": 2.0, "coupling_weights": 0.5},
            extra_arrays={"args/hopfield_bias": normal(400, (n,), 0.3), "args/omega": antisymmetric(401, (d, d)),
                          "args/stimulus": normal(402, (n, d), 0.5)})
    hk_case("full-edges-identity-omega-per-neuron", "full", "edges",
            extra={"lagrangian": obj("lagrangians", "Identity"), "kappa_h": 1.0},
            extra_arrays={"args/omega": antisymmetric(403, (n, d, d))})
    return out


def main():
    t = _test_module()
    spec_all = {
        "description": (
            "Reference values of the presets hk.hopfield, hk.kuramoto and hk.hopfield_kuramoto "
            "(float64); written by tests/data/make_preset_reference.py, checked by "
            "tests/test_preset_reference.py. Arrays are in preset_reference.npz under "
            "'<case>/...'; an argument {'array': name} is '<case>/args/<name>', key k is "
            "jax.random.key(k)."),
        "x64": True,
        "versions": {m.__name__: m.__version__ for m in (hk, jax, diffrax, eqx, networkx, np)},
        "relax": RELAX,
        "cases": {},
    }
    arrays_all: dict[str, np.ndarray] = {}
    for name, spec, data in cases():
        arrays = {f"{name}/{k}": np.asarray(v) for k, v in data.items()}
        net = t.build(name, spec, arrays)
        state0 = t.initial_state(net, name, arrays)
        sol = t.relax(net, state0, RELAX)
        assert int(sol.stats["result"]) == 0, name
        end = t._init_state(net, t._leaves(sol.state))
        values = {
            "energy": net.energy(state0),
            "is_lyapunov": np.asarray(net.is_lyapunov),
            "relax/ts": sol.ts,
            "relax/energy": sol.energy,
            "relax/num_steps": sol.stats["num_steps"],
            "end/energy": net.energy(end),
        }
        for prefix, tree in (("state0", state0), ("field", net.vector_field(0.0, state0)),
                             ("relax/state", sol.state), ("relax/states", sol.states),
                             ("end/field", net.vector_field(0.0, end))):
            values.update({f"{prefix}/{leaf}": v for leaf, v in t._leaves(tree).items()})
        values.update({f"params/{path}": v for path, v in t._params(net).items()})
        for k, v in values.items():
            arrays[f"{name}/{k}"] = np.asarray(v)
        assert np.all(np.isfinite(np.asarray(sol.energy))), name
        spec_all["cases"][name] = spec
        arrays_all.update(arrays)
        print(f"{name:58s} E0 {float(values['energy']):+.6f}  E(t1) {float(sol.energy[-1]):+.6f}  "
              f"steps {int(sol.stats['num_steps'])}  lyapunov {net.is_lyapunov}")
    np.savez_compressed(HERE / "preset_reference.npz", **arrays_all)
    (HERE / "preset_reference.json").write_text(json.dumps(spec_all, indent=1) + "\n")
    for f in ("preset_reference.npz", "preset_reference.json"):
        print(f"{f}: {(HERE / f).stat().st_size} bytes")


if __name__ == "__main__":
    main()

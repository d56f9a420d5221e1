"""The presets against saved reference values.

``tests/data/preset_reference.json`` describes small instances of :func:`hkjax.hopfield`,
:func:`hkjax.kuramoto` and :func:`hkjax.hopfield_kuramoto` (preset, arguments, PRNG key
seeds); ``tests/data/preset_reference.npz`` holds, for each, the array arguments and inputs,
the parameters the preset draws from its key, the initial state, the energy and vector field
there, one solve with :func:`hkjax.relax`, and the vector field where it ends (float64;
``tests/data/make_preset_reference.py`` wrote both files and says when to rewrite them).

Every case is rebuilt here with the library as it is and compared with the saved arrays:
parameters exactly, energies and vector fields to a relative 1e-10, solves to 1e-8. The
network's and the state's structure enter only through the four helpers :func:`_leaves`,
:func:`_init_state`, :func:`_params` and :func:`_solved`, which map them onto the saved
names (state leaves ``"x"`` and ``"sigma"``; parameter paths as ``jax.tree_util.keystr``
writes them for a network of one threshold and one oscillator population): a network of
another structure that must give the same energies and flows changes those helpers and
nothing else.

A solve costs a compilation of its own (seconds on a CPU), so a run compares the saved
solves of the cases marked ``"relax_quick"`` (a Kuramoto network with a natural frequency and
a stimulus, and the paper's Hopfield–Kuramoto model) and of :data:`SOLVED` (one more per
preset family); ``HKJAX_REFERENCE_SOLVES=all`` compares every case's. Every case's vector
field is also compared for the network :func:`hkjax.relax` integrates (:func:`_solved`).
"""

from __future__ import annotations

import functools
import json
import os
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hkjax as hk

DATA = pathlib.Path(__file__).resolve().parent / "data"
REFERENCE_JSON = DATA / "preset_reference.json"
REFERENCE_NPZ = DATA / "preset_reference.npz"

#: Relative (max-norm) tolerances: energies and vector fields, and solves.
RTOL_FIELD = 1e-10
RTOL_RELAX = 1e-8


# ---------------------------------------------------------------------------------------
# The mapping from the library's structures onto the saved names (the only code that
# depends on how networks and states are laid out)
# ---------------------------------------------------------------------------------------


def _leaves(state) -> dict[str, jax.Array]:
    """A state's arrays by saved name: ``"x"`` (threshold states, ``(n,)``) and ``"sigma"``
    (oscillators, ``(n, dim)``), each only where the network has such units. Leading axes
    (a time axis of saved states) are kept."""
    return dict(state)


def _params(net) -> dict[str, np.ndarray]:
    """A network's floating-point array leaves (its parameters; index arrays derived from
    the graphs are left out) by saved name, the ``jax.tree_util.keystr`` of their path."""
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(net, eqx.is_inexact_array))
    return {_OLD_PATHS.get(k, k): np.asarray(v) for k, v in ((jax.tree_util.keystr(path), v) for path, v in flat)}


#: The saved parameter paths of the layers (a network of one threshold and one oscillator
#: population); synapse paths are unchanged.
_OLD_PATHS = {".layers['sigma'].omega": ".oscillators.omega"}


def _init_state(net, leaves: dict):
    """``net.init_state`` from arrays by saved name (as :func:`_leaves` names them)."""
    return net.init_state({name: jnp.asarray(v) for name, v in leaves.items()})


def _solved(net):
    """The network :func:`hkjax.relax` integrates (laid out for repeated evaluation)."""
    return net.prepare()


# ---------------------------------------------------------------------------------------
# Rebuilding a case from its description
# ---------------------------------------------------------------------------------------


@functools.cache
def reference() -> dict:
    """The parsed JSON description of the cases."""
    return json.loads(REFERENCE_JSON.read_text())


@functools.cache
def saved() -> dict[str, np.ndarray]:
    """The saved arrays, by key (``"<case>/energy"``, ``"<case>/field/x"``, ...)."""
    with np.load(REFERENCE_NPZ) as z:
        return {k: z[k] for k in z.files}


def _decode(value, case: str, arrays: dict):
    """A preset argument from its JSON form: ``{"array": name}`` is the saved array
    ``<case>/args/<name>``; ``{"class": C, "kwargs": {...}}`` is ``C(**kwargs)`` from
    :mod:`hkjax.lagrangians` or :mod:`hkjax.interactions` (``"module"``), with
    ``"key": seed`` passed as ``key=jax.random.key(seed)``; anything else as is."""
    if isinstance(value, dict) and "array" in value:
        return jnp.asarray(arrays[f"{case}/args/{value['array']}"])
    if isinstance(value, dict) and "class" in value:
        module = {"lagrangians": hk.lagrangians, "interactions": hk.interactions}[value["module"]]
        kwargs = dict(value.get("kwargs", {}))
        if "key" in value:
            kwargs["key"] = jax.random.key(value["key"])
        return getattr(module, value["class"])(**kwargs)
    return value


def build(case: str, spec: dict, arrays: dict):
    """The network of a case: its preset called with the decoded arguments and
    ``key=jax.random.key(spec["key"])``."""
    preset = {"hopfield": hk.hopfield, "kuramoto": hk.kuramoto, "hopfield_kuramoto": hk.hopfield_kuramoto}
    kwargs = {name: _decode(v, case, arrays) for name, v in spec["kwargs"].items()}
    return preset[spec["preset"]](**kwargs, key=jax.random.key(spec["key"]))


def initial_state(net, case: str, arrays: dict):
    """The initial state of a case, from its saved inputs ``<case>/input/<leaf>``."""
    prefix = f"{case}/input/"
    return _init_state(net, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


def relax(net, state0, config: dict):
    """The solve of a case: :func:`hkjax.relax` with ``config["kwargs"]`` and
    ``saveat=config["saveat"]``."""
    return hk.relax(net, state0, saveat=jnp.asarray(config["saveat"]), **config["kwargs"])


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

CASES = list(reference()["cases"]) if REFERENCE_JSON.exists() else []


#: Cases whose saved solve is compared beyond the ``"relax_quick"`` ones: one per preset
#: family (each solve compiles on its own, seconds on a CPU, so not every case is solved in
#: every run; ``HKJAX_REFERENCE_SOLVES=all`` compares the saved solves of all cases).
SOLVED = ("hopfield-tanh", "hopfield_kuramoto-additive-edges-no-kuramoto",
          "hopfield_kuramoto-multiplicative-dense-tanh-linear-omega-stimulus")


def _relax_cases():
    every = os.environ.get("HKJAX_REFERENCE_SOLVES") == "all"
    return [n for n in CASES if every or n in SOLVED or reference()["cases"][n].get("relax_quick", False)]


@functools.cache
def _case(name: str):
    arrays = saved()
    net = build(name, reference()["cases"][name], arrays)
    return net, initial_state(net, name, arrays)


def _rel_err(actual, ref) -> float:
    actual, ref = np.asarray(actual), np.asarray(ref)
    assert actual.shape == ref.shape, f"shape {actual.shape}, saved {ref.shape}"
    return float(np.max(np.abs(actual - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0), 1e-300))


def _check_leaves(actual: dict, name: str, prefix: str, rtol: float) -> None:
    arrays = saved()
    keys = {k[len(f"{name}/{prefix}/"):] for k in arrays if k.startswith(f"{name}/{prefix}/")}
    assert set(actual) == keys, f"{name}: {prefix} leaves {sorted(actual)}, saved {sorted(keys)}"
    for leaf, v in actual.items():
        err = _rel_err(v, arrays[f"{name}/{prefix}/{leaf}"])
        assert err <= rtol, f"{name}: {prefix}/{leaf} relative error {err:.3e} > {rtol:.0e}"


def _check_value(actual, name: str, key: str, rtol: float) -> None:
    err = _rel_err(actual, saved()[f"{name}/{key}"])
    assert err <= rtol, f"{name}: {key} relative error {err:.3e} > {rtol:.0e}"


def test_reference_files_exist():
    assert REFERENCE_JSON.is_file() and REFERENCE_NPZ.is_file(), (
        "tests/data/preset_reference.{json,npz} are missing; run tests/data/make_preset_reference.py")
    assert CASES, "tests/data/preset_reference.json describes no cases"
    assert reference()["x64"] and jax.config.jax_enable_x64, "the reference is float64; enable jax_enable_x64"


@pytest.mark.parametrize("name", CASES)
def test_parameters_are_those_saved(name):
    """The preset draws the same parameters from the same key, bit for bit."""
    net, _ = _case(name)
    params = _params(net)
    arrays = saved()
    prefix = f"{name}/params/"
    keys = {k[len(prefix):] for k in arrays if k.startswith(prefix)}
    assert set(params) == keys, f"{name}: parameters {sorted(params)}, saved {sorted(keys)}"
    for path, v in params.items():
        ref = arrays[prefix + path]
        assert v.dtype == ref.dtype and v.shape == ref.shape, (
            f"{name}: {path} is {v.dtype}{v.shape}, saved {ref.dtype}{ref.shape}")
        assert np.array_equal(v, ref), f"{name}: parameter {path} differs from the saved one"


@pytest.mark.parametrize("name", CASES)
def test_energy_and_flow_are_those_saved(name):
    """Initial state, energy, vector field (also of the network the solver integrates),
    the Lyapunov flag, and energy and field at the saved end of the solve."""
    net, state0 = _case(name)
    arrays = saved()
    _check_leaves(_leaves(state0), name, "state0", RTOL_FIELD)
    _check_value(net.energy(state0), name, "energy", RTOL_FIELD)
    _check_leaves(_leaves(net.vector_field(0.0, state0)), name, "field", RTOL_FIELD)
    _check_leaves(_leaves(_solved(net).vector_field(0.0, state0)), name, "field", RTOL_FIELD)
    assert net.is_lyapunov == bool(arrays[f"{name}/is_lyapunov"]), f"{name}: is_lyapunov changed"
    # A second point: the end of the saved solve, put back on the sphere by init_state
    # (other activations, other pair dot products).
    end = _init_state(net, {leaf: arrays[f"{name}/relax/state/{leaf}"] for leaf in _leaves(state0)})
    _check_value(net.energy(end), name, "end/energy", RTOL_FIELD)
    _check_leaves(_leaves(net.vector_field(0.0, end)), name, "end/field", RTOL_FIELD)


@pytest.mark.parametrize("name", _relax_cases())
def test_relax_is_the_saved_solve(name):
    """One solve: saved times, energies and states, and the final state."""
    net, state0 = _case(name)
    arrays = saved()
    sol = relax(net, state0, reference()["relax"])
    assert int(sol.stats["result"]) == 0, f"{name}: the solve failed"
    np.testing.assert_array_equal(np.asarray(sol.ts), arrays[f"{name}/relax/ts"])
    steps = int(arrays[f"{name}/relax/num_steps"])
    assert int(sol.stats["num_steps"]) == steps, f"{name}: {int(sol.stats['num_steps'])} solver steps, saved {steps}"
    _check_value(sol.energy, name, "relax/energy", RTOL_RELAX)
    _check_leaves(_leaves(sol.state), name, "relax/state", RTOL_RELAX)
    _check_leaves(_leaves(sol.states), name, "relax/states", RTOL_RELAX)

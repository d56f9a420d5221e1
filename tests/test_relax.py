"""Tests for hkjax.relax: the core properties of the solved flow.

* the energy sampled along a solve never increases (beyond the solver's tolerance) whenever
  ``network.is_lyapunov``, for every pair of Lagrangian, interaction and coupling, with and
  without a global natural frequency;
* oscillators stay on the unit sphere;
* a global rotation commutes with the flow;
* parameter gradients through the solve equal central finite differences;
* the recursive and implicit adjoints agree at a steady state;
* ``throw=False`` under ``vmap`` reports a failing element without raising;
* ``saveat`` shapes, and argument errors.

Every solve is compiled once per network structure (``eqx.filter_jit`` at module level), so
the same compiled solve serves several properties and several initial states.
"""

from __future__ import annotations

import importlib
import itertools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    COUPLINGS,
    INTERACTIONS,
    LAGRANGIANS,
    assert_rel_close,
    random_antisymmetric,
    random_orthogonal,
    unit_rows,
)

import hkjax as hk
from hkjax import graphs
from hkjax import interactions as I
from hkjax import lagrangians as L

relax_module = importlib.import_module("hkjax.relax")  # `hk.relax` is the function

N, D = 10, 3
EDGES_K = graphs.ring(N, 4)
EDGES_HK = graphs.validate_edges(np.concatenate([graphs.ring(N, 2), np.array([[0, 5], [2, 7], [3, 8]])]), N)
KAPPA_H, KAPPA_K = 0.5, 1.0
T1 = 3.0
TS = jnp.linspace(0.0, T1, 31)
RTOL, ATOL = 1e-7, 1e-9


def make_network(lag, interaction, coupling, *, omega=None, stimulus=None, seed=0, init_scale=0.1):
    """A bounded Hopfield–Kuramoto network: small random Hopfield / coupling parameters
    (``init_scale``), but unit-scale Kuramoto potentials so that the oscillators' share of
    the energy is not negligible (the Kuramoto energy is bounded: ``|σᵢ·σⱼ| ≤ 1``)."""
    k1, k2 = jax.random.split(jax.random.key(1000 + seed))
    kw = jax.random.normal(k1, (len(EDGES_K), len(interaction.param_names)))
    return hk.hopfield_kuramoto(
        N, D, edges_k=EDGES_K, edges_hk=EDGES_HK, coupling=coupling, lagrangian=lag, interaction=interaction,
        kappa_h=KAPPA_H, kappa_k=KAPPA_K, hopfield_bias=0.3 * jax.random.normal(k2, (N,)), kuramoto_weights=kw,
        init_scale=init_scale, omega=omega, stimulus=stimulus, key=jax.random.key(seed),
    )  # fmt: skip


def initial_state(net, seed=0):
    kx, ks = jax.random.split(jax.random.key(2000 + seed))
    return net.init_state({"x": jax.random.normal(kx, (N,)), "sigma": unit_rows(ks, N, D)})


@eqx.filter_jit
def trajectory(net, state0):
    return hk.relax(net, state0, t1=T1, rtol=RTOL, atol=ATOL, saveat=TS, max_steps=4096)


def rotate(state, r):
    return {"x": state["x"], "sigma": state["sigma"] @ r.T}


def check_lyapunov_trajectory(net, sol):
    """Energy non-increasing at every saved time, oscillators on the sphere throughout."""
    assert int(sol.stats["result"]) == 0
    np.testing.assert_allclose(sol.ts, TS)
    e = np.asarray(sol.energy)
    assert e.shape == TS.shape and np.all(np.isfinite(e))
    # Tolerance: dense-output error of a solve at rtol=1e-7 / atol=1e-9, in energy units.
    tol = 1e-6 * (1.0 + np.max(np.abs(e)))
    rises = np.diff(e)
    assert rises.max() <= tol, f"energy rose by {rises.max():.3e} (tolerance {tol:.1e}): {e}"
    # ...and the test is not vacuous: the energy does go down, by far more than the tolerance.
    assert e[0] - e[-1] > 1e3 * tol, e
    norms = np.linalg.norm(np.asarray(sol.states["sigma"]), axis=-1)
    assert norms.shape == (len(TS), N)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def check_rotation_commutes(net, state0, sol, r, atol=1e-4):
    """relax(R σ0) = R relax(σ0): the same compiled solve from the rotated state."""
    rot = trajectory(net, rotate(state0, r))
    assert int(rot.stats["result"]) == 0
    np.testing.assert_allclose(rot.state["x"], sol.state["x"], atol=atol)
    np.testing.assert_allclose(rot.state["sigma"], sol.state["sigma"] @ r.T, atol=atol)
    np.testing.assert_allclose(rot.energy, sol.energy, atol=atol)
    # discriminating: the rotation does move the oscillators
    assert float(jnp.max(jnp.abs(rot.state["sigma"] - sol.state["sigma"]))) > 1e-2


# ---------------------------------------------------------------------------------------
# Energy descent, sphere, rotations: every pair of Lagrangian, interaction and coupling
# ---------------------------------------------------------------------------------------


def _pairwise_combos():
    """Lagrangian × interaction, each with the coupling ``(i + j + 1) mod 3``: every pair of
    building blocks (Lagrangian × interaction, Lagrangian × coupling, interaction ×
    coupling) is solved together at least once. The energy is a sum of a Hopfield term (the
    Lagrangian), a Kuramoto term (the interaction) and a coupling term (the Lagrangian's
    activations with the oscillators): no term depends on all three, so the full product
    checks nothing the pairs do not. The offset puts Tanh × ReLU × full in the set (several
    tests below solve that network and reuse its compiled solve)."""
    combos = [
        (lag, inter, COUPLINGS[(i + j + 1) % len(COUPLINGS)])
        for i, lag in enumerate(LAGRANGIANS)
        for j, inter in enumerate(INTERACTIONS)
    ]
    ids = [(lag.id, inter.id, coupling) for lag, inter, coupling in combos]
    names = ([p.id for p in LAGRANGIANS], [p.id for p in INTERACTIONS], COUPLINGS)
    for a, b in itertools.combinations(range(3), 2):
        assert {(c[a], c[b]) for c in ids} == set(itertools.product(names[a], names[b])), (a, b)
    return combos


_PAIRWISE = _pairwise_combos()


def _combo_id(combo):
    lag, inter, coupling = combo
    return f"{lag.id}-{inter.id}-{coupling}"


def _covering_combos():
    """The quick (not slow) subset: every Lagrangian once, with the interactions cycling (and
    the couplings with them), so every Lagrangian, interaction and coupling is solved at least
    once in a quick run; the pairwise set runs with the slow tests."""
    lag_index = {p.id: i for i, p in enumerate(LAGRANGIANS)}
    quick = {
        (lag.id, inter.id, coupling)
        for lag, inter, coupling in _PAIRWISE
        if inter.id == INTERACTIONS[lag_index[lag.id] % len(INTERACTIONS)].id
    }
    assert {c[0] for c in quick} == {p.id for p in LAGRANGIANS}
    assert {c[1] for c in quick} == {p.id for p in INTERACTIONS} and {c[2] for c in quick} == set(COUPLINGS)
    return quick


_QUICK = _covering_combos()
COMBOS = [
    pytest.param(lag.values[0], inter.values[0], coupling, id=_combo_id((lag, inter, coupling)),
                 marks=() if (lag.id, inter.id, coupling) in _QUICK else pytest.mark.slow)
    for lag, inter, coupling in _PAIRWISE
]  # fmt: skip


@pytest.mark.parametrize("lag,interaction,coupling", COMBOS)
def test_energy_descends_on_the_sphere_and_rotations_commute(lag, interaction, coupling):
    net = make_network(lag, interaction, coupling)
    assert net.is_lyapunov
    state0 = initial_state(net)
    sol = trajectory(net, state0)
    check_lyapunov_trajectory(net, sol)
    check_rotation_commutes(net, state0, sol, random_orthogonal(jax.random.key(3), D))


@pytest.mark.parametrize(
    "coupling", [pytest.param(c, marks=() if c == "full" else pytest.mark.slow) for c in COUPLINGS]
)
def test_global_omega_keeps_the_energy_a_lyapunov_function(coupling):
    omega = 2.0 * random_antisymmetric(jax.random.key(4), (D, D))
    net = make_network(L.Tanh(), I.ReLU(), coupling, omega=omega)
    assert net.is_lyapunov
    state0 = initial_state(net, seed=1)
    sol = trajectory(net, state0)
    check_lyapunov_trajectory(net, sol)
    # Rotations that commute with Ω commute with the flow.
    r = jax.scipy.linalg.expm(0.8 * omega)
    check_rotation_commutes(net, state0, sol, r)


@pytest.mark.parametrize(
    "complete,coupling",
    [("coupling", "additive"), ("coupling", "multiplicative"), ("kuramoto", "full")],
    ids=["all_hk-additive", "all_hk-multiplicative", "all_k-full"],
)
def test_all_to_all_networks_solve_under_jit(complete, coupling):
    """The paper's all-to-all configurations (the "all" fast paths), solved inside
    ``jax.jit`` as training does."""
    edges_k = graphs.all_to_all(N) if complete == "kuramoto" else EDGES_K
    edges_hk = "all" if complete == "coupling" else EDGES_HK
    net = hk.hopfield_kuramoto(
        N, D, edges_k=edges_k, edges_hk=edges_hk, coupling=coupling, lagrangian=L.Tanh(), interaction=I.ReLU(),
        kappa_h=KAPPA_H, kappa_k=KAPPA_K, init_scale=0.1, key=jax.random.key(0),
    )  # fmt: skip
    state0 = initial_state(net)
    sol = trajectory(net, state0)
    check_lyapunov_trajectory(net, sol)


def test_per_oscillator_omega_runs_and_stays_on_the_sphere():
    """Documented as not Lyapunov: only check it solves and keeps ``|σᵢ| = 1``."""
    omega = random_antisymmetric(jax.random.key(5), (N, D, D))
    net = make_network(L.Tanh(), I.ReLU(), "full", omega=omega)
    assert not net.is_lyapunov
    sol = trajectory(net, initial_state(net, seed=2))
    assert int(sol.stats["result"]) == 0
    assert np.all(np.isfinite(np.asarray(sol.energy)))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(sol.states["sigma"]), axis=-1), 1.0, atol=1e-5)


def test_stimulus_with_global_omega_is_not_lyapunov_but_solves():
    omega = random_antisymmetric(jax.random.key(6), (D, D))
    stim = jax.random.normal(jax.random.key(7), (N, D))
    net = make_network(L.Tanh(), I.ReLU(), "full", omega=omega, stimulus=stim)
    assert not net.is_lyapunov
    sol = trajectory(net, initial_state(net, seed=3))
    assert int(sol.stats["result"]) == 0
    np.testing.assert_allclose(np.linalg.norm(np.asarray(sol.states["sigma"]), axis=-1), 1.0, atol=1e-5)


def test_plain_hopfield_energy_descends():
    net = hk.hopfield(N, lagrangian=L.ReLU(), init_scale=0.3, bias=0.3 * jnp.ones(N), key=jax.random.key(0))
    sol = trajectory(net, net.init_state({"x": jax.random.normal(jax.random.key(1), (N,))}))
    assert set(sol.states) == {"x"}
    e = np.asarray(sol.energy)
    assert np.diff(e).max() <= 1e-6 * (1 + np.abs(e).max()), e
    assert e[0] - e[-1] > 1e-2


# ---------------------------------------------------------------------------------------
# Gradients through the solve
# ---------------------------------------------------------------------------------------


def _class_loss(net, state0):
    """Sum of the squared final states of the last three ("class") threshold units."""
    sol = hk.relax(net, state0, t1=2.0, rtol=1e-10, atol=1e-12, max_steps=256)
    return jnp.sum(sol.state["x"][-3:] ** 2)


# One compilation serves the gradient and the finite differences (the values of the same
# compiled function at the shifted parameters).
_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_class_loss))


def _random_direction(params, key):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(treedef, [jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)])


def _check_gradient_against_finite_differences(net, state0):
    grads = _value_and_grad(net, state0)[1]
    params, static = eqx.partition(net, eqx.is_inexact_array)
    gparams = eqx.filter(grads, eqx.is_inexact_array)
    # Every parameter array the loss depends on gets a gradient (none is silently closed over).
    hop = [s for s in gparams.synapses if isinstance(s, hk.synapses.Hopfield)]
    kur = [s for s in gparams.synapses if isinstance(s, hk.synapses.Kuramoto)]
    if hop:
        assert float(jnp.max(jnp.abs(hop[0].weights))) > 0.0
    assert float(jnp.max(jnp.abs(jax.tree_util.tree_leaves(kur[0].interaction)[0]))) > 0.0
    eps = 1e-5
    for k in range(2):
        v = _random_direction(params, jax.random.key(50 + k))
        plus = eqx.combine(jax.tree_util.tree_map(lambda p, d: p + eps * d, params, v), static)
        minus = eqx.combine(jax.tree_util.tree_map(lambda p, d: p - eps * d, params, v), static)
        fd = (_value_and_grad(plus, state0)[0] - _value_and_grad(minus, state0)[0]) / (2 * eps)
        exact = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(gparams), jax.tree_util.tree_leaves(v), strict=True))
        assert abs(float(exact)) > 1e-3, "degenerate direction"
        np.testing.assert_allclose(float(exact), float(fd), rtol=1e-6)


@pytest.mark.parametrize(
    "coupling", [pytest.param(c, marks=() if c == "multiplicative" else pytest.mark.slow) for c in COUPLINGS]
)
def test_parameter_gradient_matches_finite_differences(coupling):
    net = make_network(L.Tanh(), I.Tanh(), coupling, init_scale=0.2)
    _check_gradient_against_finite_differences(net, initial_state(net, seed=4))


def _steady_loss(net, state0, adjoint):
    # The steady-state event uses rtol/atol; the step-size controller is tighter, otherwise
    # an explicit solver dithers at the tolerance level near a stiff rest point and the
    # residual never drops below the event threshold.
    sol = hk.relax(
        net, state0, t1=200.0, steady_state=True, adjoint=adjoint, rtol=1e-6, atol=1e-6,
        stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-9), max_steps=2048,
    )  # fmt: skip
    return jnp.sum(sol.state["x"][-3:] ** 2), sol


_steady_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_steady_loss, has_aux=True))


def _steady_value(net, state0):
    """The loss through the recursive solve, from its compiled value and gradient (no third
    compilation for the finite differences)."""
    return _steady_value_and_grad(net, state0, "recursive")[0][0]


def _check_adjoints_agree(net, state0):
    grads = {}
    for adjoint in ("recursive", "implicit"):
        (loss, sol), g = _steady_value_and_grad(net, state0, adjoint)
        assert int(sol.stats["result"]) == 0
        assert float(sol.t_final) < 200.0, "the steady-state event did not fire"
        assert float(loss) > 1e-3
        grads[adjoint] = eqx.filter(g, eqx.is_inexact_array)
    # Which one is right: the recursive (discretise-then-optimise) gradient against central
    # finite differences of the event-terminated solve, along a random direction.
    params, static = eqx.partition(net, eqx.is_inexact_array)
    v = _random_direction(params, jax.random.key(60))
    eps = 1e-5
    fd = (
        _steady_value(eqx.combine(jax.tree_util.tree_map(lambda p, d: p + eps * d, params, v), static), state0)
        - _steady_value(eqx.combine(jax.tree_util.tree_map(lambda p, d: p - eps * d, params, v), static), state0)
    ) / (2 * eps)

    def along(g):
        return float(sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(v), strict=True)))

    np.testing.assert_allclose(along(grads["recursive"]), float(fd), rtol=1e-3, err_msg="recursive vs finite differences")
    np.testing.assert_allclose(along(grads["implicit"]), float(fd), rtol=1e-3, err_msg="implicit vs finite differences")
    for a, b in zip(jax.tree_util.tree_leaves(grads["implicit"]), jax.tree_util.tree_leaves(grads["recursive"]), strict=True):
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * scale + 1e-12, err_msg="implicit vs recursive")


@pytest.mark.slow
def test_recursive_and_implicit_adjoints_agree_at_a_steady_state_hopfield():
    """A bounded (Tanh) Hopfield network: an isolated, stable fixed point."""
    net = hk.hopfield(N, lagrangian=L.Tanh(), init_scale=0.3, bias=0.3 * jnp.ones(N), key=jax.random.key(0))
    _check_adjoints_agree(net, net.init_state({"x": jax.random.normal(jax.random.key(1), (N,))}))


def test_implicit_adjoint_is_refused_with_oscillators():
    """The oscillators' rest points are not isolated (every |σᵢ| is conserved and a global
    rotation maps rest points to rest points), so the implicit-function-theorem Jacobian is
    singular: measured, the implicit gradient was 2.42 where finite differences and the
    recursive adjoint gave 11.50. relax refuses it instead of returning a wrong gradient."""
    net = make_network(L.Tanh(), I.Tanh(), "full", init_scale=0.2)
    with pytest.raises(ValueError, match="not isolated"):
        hk.relax(net, initial_state(net, seed=5), steady_state=True, adjoint="implicit", t1=50.0)


# ---------------------------------------------------------------------------------------
# Batches, failures, saveat
# ---------------------------------------------------------------------------------------


def test_throw_false_reports_the_failing_element_under_vmap():
    net = make_network(L.Tanh(), I.ReLU(), "full")
    good = [initial_state(net, seed=s) for s in range(3)]
    states = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *good)
    # One element with NaN (built by hand: init_state would refuse it).
    states = dict(states, x=states["x"].at[1, 2].set(jnp.nan))

    @eqx.filter_jit
    def batched(net, states):
        return jax.vmap(lambda s: hk.relax(net, s, t1=1.0, throw=False, max_steps=64))(states)

    sol = batched(net, states)
    result = np.asarray(sol.stats["result"])
    assert result.shape == (3,)
    assert result[1] != 0 and result[0] == 0 and result[2] == 0, result
    np.testing.assert_array_equal(np.asarray(sol.succeeded), [True, False, True])
    assert np.all(np.isfinite(np.asarray(sol.state["x"])[[0, 2]]))


def _primitives(jaxpr) -> set[str]:
    """The names of every primitive in a closed jaxpr, sub-jaxprs (loops, conds, custom
    derivatives) included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= _primitives(inner)
    return names


def test_training_solves_compile_without_host_callbacks():
    """The value and gradient of a loss through ``relax`` / ``relax_batch`` with
    ``throw=False`` (what training uses) hold no host callback: JAX's persistent
    compilation cache refuses programs with one (``hk.enable_compile_cache``). A traced
    ``dt0`` would put Diffrax's run-time sign check (an ``eqx.error_if``) into every
    solve."""
    net = make_network(L.ReLU(), I.ReLU(), "full")
    s = initial_state(net)
    batch = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), s)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss(p, solve):
        return jnp.sum(solve(eqx.combine(p, static)).state["x"] ** 2)

    solves = {
        "relax": lambda n: hk.relax(n, s, t1=1.0, max_steps=32, throw=False),
        "relax_batch": lambda n: hk.relax_batch(n, batch, t1=1.0, max_steps=32, throw=False),
    }
    for name, solve in solves.items():
        prims = _primitives(jax.make_jaxpr(jax.value_and_grad(lambda p: loss(p, solve)))(params).jaxpr)
        assert "while" in prims, name  # the solve was traced
        assert not {p for p in prims if "callback" in p}, (name, prims)
    # with throw=True Diffrax checks the result at run time: a callback (the check is real)
    prims = _primitives(jax.make_jaxpr(lambda p: loss(p, lambda n: hk.relax(n, s, t1=1.0, max_steps=32)))(params).jaxpr)
    assert any("callback" in p for p in prims)


def test_a_gradient_traces_the_vector_field_once(monkeypatch):
    """The vector field sits behind a ``jit``: a gradient through a solve traces it once
    (three times without the ``jit``) and the many traces of Diffrax's step that Equinox's
    checkpointed loop makes reuse its jaxpr (the paper network's training step traces ~0.8 s
    faster). A network of a size no other test uses, so that no earlier test has filled the
    trace cache."""
    n = 13
    net = hk.hopfield_kuramoto(
        n, 2, edges_k=graphs.ring(n, 4), edges_hk=graphs.ring(n, 2), coupling="full",
        lagrangian=L.ReLU(), interaction=I.ReLU(), key=jax.random.key(0),
    )  # fmt: skip
    s = net.init_state({"x": jnp.linspace(0.0, 1.0, n), "sigma": unit_rows(jax.random.key(1), n, 2)})
    batch = jax.tree_util.tree_map(lambda a: jnp.stack([a, a, a]), s)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    traces = []

    def counted(method):  # relax evaluates vector_field, relax_batch _batch_vector_field
        field = getattr(hk.Network, method)

        def traced(self, t, state, *args):
            traces.append(jnp.shape(state["x"]))
            return field(self, t, state, *args)

        monkeypatch.setattr(hk.Network, method, traced)

    counted("vector_field")
    counted("_batch_vector_field")
    solves = {
        "relax": lambda n_: hk.relax(n_, s, t1=1.0, max_steps=8, throw=False),
        "relax_batch": lambda n_: hk.relax_batch(n_, batch, t1=1.0, max_steps=8, throw=False),
    }
    for name, solve in solves.items():
        traces.clear()
        grad = jax.jit(jax.grad(lambda p: jnp.sum(solve(eqx.combine(p, static)).state["x"] ** 2)))(params)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grad))
        assert len(traces) == 1, (name, len(traces))  # three times without the jit


def test_recursive_adjoint_checkpoints_every_step_when_they_fit():
    """``adjoint="recursive"`` checkpoints every solver step when about two copies of the
    state per step fit in ``CHECKPOINT_BYTES``, else keeps Diffrax's schedule."""
    budget = relax_module.CHECKPOINT_BYTES
    assert relax_module.recursive_adjoint(16, budget // 32).checkpoints == 16  # exactly at the budget
    assert relax_module.recursive_adjoint(16, budget // 32 + 1).checkpoints is None
    assert relax_module.recursive_adjoint(4096, 8 * 896 * 6).checkpoints is None
    assert isinstance(relax_module.recursive_adjoint(16, 1), diffrax.RecursiveCheckpointAdjoint)
    # a whole batch (relax_batch) has its own budget; past it, BATCH_CHECKPOINTS or as many
    # as the budget holds
    batch_budget, kept = relax_module.BATCH_CHECKPOINT_BYTES, relax_module.BATCH_CHECKPOINTS
    assert relax_module.recursive_adjoint(16, batch_budget // 32, batched=True).checkpoints == 16
    assert relax_module.recursive_adjoint(5000, batch_budget // (4 * kept), batched=True).checkpoints == kept
    assert relax_module.recursive_adjoint(5000, batch_budget // (kept - 2), batched=True).checkpoints == kept // 2 - 1
    assert relax_module.recursive_adjoint(5000, batch_budget // 4, batched=True).checkpoints is None  # 2 < log2(5000)


@pytest.mark.parametrize("every_step", [True, False, "budget"], ids=["every-step", "schedule", "as-many-as-fit"])
def test_recursive_adjoint_gives_diffraxs_gradient(every_step, monkeypatch):
    """The gradient through a solve with the default adjoint (solver step behind a ``jit``,
    checkpoints chosen by size) equals the one through Diffrax's own
    ``RecursiveCheckpointAdjoint()``: ``relax_batch`` with a checkpoint for every step, or
    with as many as its budget holds (fewer than the steps: the backward pass recomputes),
    and ``relax`` with saved times (Diffrax's output buffers, written inside the loop) under
    Diffrax's schedule, over more steps than checkpoints."""
    net = make_network(L.Tanh(), I.Tanh(), "multiplicative", init_scale=0.2)
    s = initial_state(net, seed=5)
    kw = dict(t1=T1, rtol=1e-6, atol=1e-8, max_steps=64)  # Diffrax's schedule: 10 checkpoints
    if every_step:
        batch = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), s, initial_state(net, seed=6))
        batch_bytes = 2 * N * (D + 1) * 8
        if every_step == "budget":
            monkeypatch.setattr(relax_module, "BATCH_CHECKPOINT_BYTES", 8 * 2 * batch_bytes)
            assert relax_module.recursive_adjoint(64, batch_bytes, batched=True).checkpoints == 8
        else:
            assert relax_module.recursive_adjoint(64, batch_bytes, batched=True).checkpoints == 64

        def solve(n_, adj):
            return hk.relax_batch(n_, batch, adjoint=adj, **kw)
    else:
        monkeypatch.setattr(relax_module, "CHECKPOINT_BYTES", 0)

        def solve(n_, adj):
            return hk.relax(n_, s, adjoint=adj, saveat=TS[::5], **kw)

    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss(p, adj):  # the solver's step count rides along (no separate forward solve to compile)
        sol = solve(eqx.combine(p, static), adj)
        return jnp.sum(sol.states["x"] ** 2) + jnp.sum(sol.states["sigma"][..., 0]), sol.stats["num_steps"]

    ours, num_steps = jax.jit(jax.grad(lambda p: loss(p, "recursive"), has_aux=True))(params)
    plain, _ = jax.jit(jax.grad(lambda p: loss(p, diffrax.RecursiveCheckpointAdjoint()), has_aux=True))(params)
    assert int(jnp.max(num_steps)) > 10
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * float(jnp.max(jnp.abs(b))))
    assert sum(float(jnp.sum(jnp.abs(g))) for g in jax.tree_util.tree_leaves(ours)) > 0


def test_throw_true_raises_on_failure():
    net = make_network(L.Tanh(), I.ReLU(), "full")
    s = initial_state(net)
    bad = dict(s, x=s["x"].at[0].set(jnp.nan))
    with pytest.raises((eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)):
        jax.block_until_ready(hk.relax(net, bad, t1=1.0, max_steps=16).state["x"])


def test_saveat_shapes_and_contents():
    net = make_network(L.Tanh(), I.ReLU(), "full")  # shares its compiled solve with a combo above
    state0 = initial_state(net, seed=6)
    sol = trajectory(net, state0)  # saveat=TS, t1=T1
    T = len(TS)
    np.testing.assert_allclose(sol.ts, TS)
    assert sol.states["x"].shape == (T, N)
    assert sol.states["sigma"].shape == (T, N, D)
    assert sol.energy.shape == (T,)
    assert sol.state["x"].shape == (N,) and sol.state["sigma"].shape == (N, D)
    np.testing.assert_allclose(sol.states["x"][0], state0["x"], atol=1e-12)
    np.testing.assert_allclose(sol.states["sigma"][0], state0["sigma"], atol=1e-12)
    np.testing.assert_allclose(sol.states["x"][-1], sol.state["x"], atol=1e-9)
    np.testing.assert_allclose(sol.states["sigma"][-1], sol.state["sigma"], atol=1e-9)
    np.testing.assert_allclose(float(sol.t_final), T1)
    for k in (0, T // 2, T - 1):
        state_k = {"x": sol.states["x"][k], "sigma": sol.states["sigma"][k]}
        np.testing.assert_allclose(sol.energy[k], net.energy(state_k), rtol=1e-12)
    # No saveat: the final state only.
    final = hk.relax(net, state0, t1=T1, rtol=RTOL, atol=ATOL, max_steps=4096)
    assert final.energy.shape == (1,) and final.ts.shape == (1,)
    assert final.states["x"].shape == (1, N)
    np.testing.assert_allclose(final.state["x"], sol.state["x"], atol=1e-9)
    np.testing.assert_allclose(final.state["sigma"], sol.state["sigma"], atol=1e-9)


@pytest.mark.slow
def test_saveat_accepts_a_diffrax_saveat():
    net = make_network(L.Tanh(), I.ReLU(), "additive")
    state0 = initial_state(net, seed=6)
    ts = jnp.array([0.0, 0.5, 1.0, 2.0])
    a = hk.relax(net, state0, t1=2.0, saveat=ts, rtol=RTOL, atol=ATOL)
    b = hk.relax(net, state0, t1=2.0, saveat=diffrax.SaveAt(ts=ts), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(b.ts, ts)
    np.testing.assert_allclose(b.energy, a.energy, rtol=1e-12)
    np.testing.assert_allclose(b.states["x"], a.states["x"], rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Argument errors
# ---------------------------------------------------------------------------------------


def test_argument_errors():
    net = make_network(L.Tanh(), I.ReLU(), "full")
    s = initial_state(net)
    with pytest.raises(ValueError, match="t1"):
        hk.relax(net, s, t1=0.0)
    with pytest.raises(ValueError, match="t1"):
        hk.relax(net, s, t0=1.0, t1=0.5)
    hop = hk.hopfield(6, lagrangian=L.Tanh(), key=jax.random.key(0))
    hs = hop.init_state({"x": jnp.ones(6)})
    with pytest.raises(ValueError, match="steady_state"):
        hk.relax(hop, hs, adjoint="implicit")
    with pytest.raises(ValueError, match="adjoint"):
        hk.relax(net, s, adjoint="forward")
    with pytest.raises(ValueError, match="saveat"):
        hk.relax(hop, hs, adjoint="implicit", steady_state=True, saveat=TS)
    with pytest.raises(ValueError, match="steady"):
        hk.relax(net, s, adjoint="backsolve", steady_state=True)
    with pytest.raises(ValueError, match="max_steps"):
        hk.relax(net, s, max_steps=0)
    with pytest.raises(ValueError, match="saveat"):
        hk.relax(net, s, saveat=jnp.zeros((2, 2)))
    with pytest.raises(TypeError, match="dict"):
        hk.relax(net, (s["x"], s["sigma"]))
    with pytest.raises(TypeError, match="Network"):
        hk.relax(lambda t, y, a: y, s)
    spinning = make_network(L.Tanh(), I.ReLU(), "full", omega=random_antisymmetric(jax.random.key(0), (D, D)))
    with pytest.raises(ValueError, match="omega"):
        hk.relax(spinning, s, steady_state=True)


@pytest.mark.parametrize(
    "t1", [np.float32(0.0), jnp.asarray(-1.0)], ids=["np_float32_zero", "jnp_negative"]
)
def test_t1_not_after_t0_is_rejected_when_given_as_an_array(t1):
    """Concrete times given as NumPy / JAX scalars (as a config or a sweep hands them over)
    must be checked too: a backwards solve would silently *raise* the energy."""
    net = hk.hopfield(4, lagrangian=L.Tanh(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="t1"):
        hk.relax(net, net.init_state({"x": jnp.ones(4)}), t1=t1)


# ---------------------------------------------------------------------------------------
# Projection onto the sphere at loose tolerances


@eqx.filter_jit
def _loose(net, state0, project):
    return hk.relax(net, state0, t1=T1, saveat=TS, project=project)  # paper tolerances 1e-3 / 1e-6


def test_projection_keeps_the_oscillators_on_the_sphere_at_loose_tolerances():
    net = make_network(L.Tanh(), I.ReLU(), "full", init_scale=0.5)
    state0 = initial_state(net, seed=3)
    ref = trajectory(net, state0)  # rtol 1e-7: the reference solution
    free, proj = _loose(net, state0, False), _loose(net, state0, True)

    def drift(sol):
        return float(np.max(np.abs(np.linalg.norm(np.asarray(sol.states["sigma"]), axis=-1) - 1.0)))

    # Without projection a Runge-Kutta step leaves the sphere by about the tolerance (the test
    # is discriminating); with it the states are unit vectors to float round-off.
    print(f"drift {drift(free):.1e} -> {drift(proj):.1e}")
    assert drift(free) > 1e-5, drift(free)
    assert drift(proj) < 1e-6, drift(proj)
    assert float(np.max(np.linalg.norm(np.asarray(proj.state["sigma"]), axis=-1) - 1.0)) < 1e-6
    # The projection is a correction within the step's error: the solution stays as close to
    # the tight-tolerance reference as the unprojected one is (the same order of accuracy).
    err_free = float(np.max(np.abs(np.asarray(free.states["sigma"]) - np.asarray(ref.states["sigma"]))))
    err_proj = float(np.max(np.abs(np.asarray(proj.states["sigma"]) - np.asarray(ref.states["sigma"]))))
    assert err_proj <= 2.0 * err_free + 1e-6, (err_proj, err_free)
    np.testing.assert_allclose(proj.state["x"], ref.state["x"], atol=10 * err_free + 1e-5)
    # Still a Lyapunov descent (to the loose tolerance) and differentiable.
    e = np.asarray(proj.energy)
    assert np.diff(e).max() <= 1e-3 * (1.0 + np.max(np.abs(e)))

    def loss(net):
        return jnp.sum(_loose(net, state0, True).state["x"] ** 2)

    grads = eqx.filter_grad(loss)(net)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


# ---------------------------------------------------------------------------------------
# relax_batch: one solve of a whole batch with shared steps
# ---------------------------------------------------------------------------------------


def test_relax_batch_is_the_batch_of_solves():
    """``relax_batch`` lays its solution out as ``vmap(relax)`` does; with constant steps
    it is the same computation (to round-off); with adaptive steps every example meets the
    tolerances (final states agree with per-example solves to ~the tolerance, far closer
    than the states move), and the energy of each example never increases."""
    net = make_network(L.Tanh(), I.ReLU(), "full")
    states = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[initial_state(net, seed=s) for s in range(4)])
    const = dict(t1=T1, dt0=0.1, stepsize_controller=diffrax.ConstantStepSize(), max_steps=30, saveat=TS)
    one = jax.vmap(lambda s: hk.relax(net, s, **const))(states)
    together = hk.relax_batch(net, states, **const)
    assert jax.tree_util.tree_structure(one) == jax.tree_util.tree_structure(together)
    for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(together)):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10, atol=1e-12)
    adaptive = dict(t1=T1, rtol=RTOL, atol=ATOL, max_steps=4096, saveat=TS)
    one = jax.vmap(lambda s: hk.relax(net, s, **adaptive))(states)
    together = hk.relax_batch(net, states, **adaptive)
    assert np.all(np.asarray(together.succeeded))
    moved = float(jnp.max(jnp.abs(one.state["x"] - states["x"])))
    np.testing.assert_allclose(together.state["x"], one.state["x"], atol=1e-5)
    np.testing.assert_allclose(together.state["sigma"], one.state["sigma"], atol=1e-5)
    assert moved > 1e3 * 1e-5
    for b in range(4):
        check_lyapunov_trajectory(net, jax.tree_util.tree_map(lambda v: v[b], together))


def test_relax_batch_with_edge_lists_is_the_batch_of_solves():
    """With the edge-list formulation (whose Kuramoto force ``relax_batch`` evaluates for the
    whole batch at once, in chunks of edges), constant steps give the same states and the
    same parameter gradients as ``vmap`` of per-example solves, to round-off."""
    k1, k2 = jax.random.split(jax.random.key(5))
    net = hk.hopfield_kuramoto(
        N, D, edges_k=EDGES_K, edges_hk=EDGES_HK, coupling="full", lagrangian=L.Tanh(), interaction=I.ReLU(),
        kappa_h=KAPPA_H, kuramoto_weights=jax.random.normal(k1, (len(EDGES_K), 2)), init_scale=0.3,
        formulation="edges", key=k2,
    )  # fmt: skip
    states = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[initial_state(net, seed=s) for s in range(3)])
    const = dict(t1=1.0, dt0=0.1, stepsize_controller=diffrax.ConstantStepSize(), max_steps=10)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    weights = jax.random.normal(jax.random.key(6), (3, N, D))

    def loss(p, solve):
        return jnp.sum(jnp.sin(solve(eqx.combine(p, static)).state["sigma"] * weights))

    one = lambda n_: jax.vmap(lambda s: hk.relax(n_, s, **const))(states)  # noqa: E731
    together = lambda n_: hk.relax_batch(n_, states, **const)  # noqa: E731
    for a, b in zip(jax.tree_util.tree_leaves(one(net).state), jax.tree_util.tree_leaves(together(net).state)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10, atol=1e-12)
    ref = jax.grad(loss)(params, one)
    got = jax.grad(loss)(params, together)
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(got), strict=True):
        assert_rel_close(b, a, 1e-9, "parameter gradient")


def test_relax_batch_errors():
    net = make_network(L.Tanh(), I.ReLU(), "full")
    s = initial_state(net)
    with pytest.raises(ValueError, match="leading batch axis"):
        hk.relax_batch(net, {"x": jnp.stack([s["x"], s["x"]]), "sigma": s["sigma"][None]})
    with pytest.raises(TypeError, match="rtl"):
        hk.relax_batch(net, jax.tree_util.tree_map(lambda v: v[None], s), rtl=1e-3)

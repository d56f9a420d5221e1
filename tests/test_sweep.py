"""Sweeps: grid products, vmapped evaluation equal to a loop, static variants, device
sharding (4 host devices in a subprocess) identical to the unsharded run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hkjax as hk
from hkjax import plotting, sweep


def _template(dim):
    k = jax.random.key(0)
    n = 12
    net = hk.hopfield_kuramoto(
        n, dim, edges_k=hk.graphs.ring(n, 4), edges_hk="all", coupling="additive",
        lagrangian=hk.lagrangians.Tanh(), interaction=hk.interactions.Linear(), kappa_h=0.5,
        key=k, init_scale=0.1,
    )
    return net


def evaluate(coupling, seed, *, dim=3):
    """Final energy of a relaxation as a function of the additive coupling and the seed."""
    net = _template(dim)
    net = eqx.tree_at(lambda m: m.synapses[-1].weights, net, jnp.asarray(coupling, jnp.float32))
    key = jax.random.fold_in(jax.random.key(1), seed)
    kx, ks = jax.random.split(key)
    state = net.init_state({"x": jax.random.normal(kx, (12,)), "sigma": jax.random.normal(ks, (12, dim))})
    sol = hk.relax(net, state, t1=0.5)
    return {"energy": sol.energy[-1], "order": jnp.linalg.norm(jnp.mean(sol.state["sigma"], axis=0))}


def test_grid_is_a_cartesian_product():
    g = sweep.grid(a=[1, 2], b=[0.1, 0.2, 0.3])
    assert g["a"].tolist() == [1, 1, 1, 2, 2, 2]
    assert np.allclose(g["b"], [0.1, 0.2, 0.3] * 2)
    with pytest.raises(ValueError, match="axis 'b'"):
        sweep.grid(a=[1], b=[])
    with pytest.raises(ValueError, match="at least one axis"):
        sweep.grid()


@pytest.fixture(scope="module")
def six_rows():
    """``(params, table)``: ``evaluate`` swept over 3 couplings × 2 seeds, one compiled run
    shared by the tests that need such a table."""
    params = sweep.grid(coupling=[0.0, 0.05, 0.2], seed=[0, 1])
    return params, sweep.run(evaluate, params)


def test_vmapped_sweep_equals_a_loop(six_rows):
    params, table = six_rows
    assert set(table) == {"coupling", "seed", "energy", "order"}
    for r in range(6):
        ref = jax.jit(evaluate)(params["coupling"][r], params["seed"][r])
        np.testing.assert_allclose(table["energy"][r], ref["energy"], rtol=1e-5, atol=1e-6)
    # The coupling is a real input: different couplings give different energies.
    assert len(np.unique(np.round(table["energy"], 6))) > 3


def test_static_parameters_loop_over_compiled_variants():
    params = sweep.grid(coupling=[0.0, 0.1], seed=[0])
    table = sweep.run(evaluate, params, static={"dim": [2, 4]}, chunk_size=1)
    assert table["dim"].tolist() == [2, 2, 4, 4]
    ref = jax.jit(lambda c, s: evaluate(c, s, dim=4))(0.1, 0)
    np.testing.assert_allclose(table["energy"][3], ref["energy"], rtol=1e-5)


def evaluate_with_template(template, coupling, seed):
    """``evaluate`` with the network passed in as shared ``args`` instead of built inside."""
    net = eqx.tree_at(lambda m: m.synapses[-1].weights, template, jnp.asarray(coupling, jnp.float32))
    kx, ks = jax.random.split(jax.random.fold_in(jax.random.key(1), seed))
    state = net.init_state({"x": jax.random.normal(kx, (12,)), "sigma": jax.random.normal(ks, (12, 3))})
    sol = hk.relax(net, state, t1=0.5)
    return {"energy": sol.energy[-1], "order": jnp.linalg.norm(jnp.mean(sol.state["sigma"], axis=0))}


def test_shared_args_and_ragged_chunks_equal_the_closure_version(six_rows):
    params, ref = six_rows  # 6 rows, here in chunks of 4: 4 + 2
    table = sweep.run(evaluate_with_template, params, args=_template(3), chunk_size=4)
    np.testing.assert_allclose(table["energy"], ref["energy"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(table["order"], ref["order"], rtol=1e-6, atol=1e-8)


def test_repeated_runs_reuse_the_compiled_program():
    traces = []

    def fn(template, coupling, seed, *, dim):
        traces.append(dim)  # Python side effect: runs once per trace, not per call
        return evaluate_with_template(template, coupling, seed)

    params = sweep.grid(coupling=[0.0, 0.1], seed=[0, 1])
    first = sweep.run(fn, params, args=_template(3), static={"dim": [3]})
    again = sweep.run(fn, params, args=_template(3), static={"dim": [3]})
    assert traces == [3]  # one trace for both calls
    np.testing.assert_array_equal(first["energy"], again["energy"])
    # Unhashable static values still work (compiled for that call only).
    table = sweep.run(fn, params, args=_template(3), static={"dim": [3]}, chunk_size=2)
    assert table["energy"].shape == (4,)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different lengths"):
        sweep.run(evaluate, {"coupling": [0.0, 1.0], "seed": [0]})
    with pytest.raises(ValueError, match="static\\['dim'\\]"):
        sweep.run(evaluate, {"coupling": [0.0], "seed": [0]}, static={"dim": 3})
    with pytest.raises(ValueError, match="scalars"):
        sweep.run(lambda x: {"v": jnp.ones(3) * x}, {"x": [1.0]})


def test_tables_and_heatmap(tmp_path, six_rows):
    _, table = six_rows
    p = sweep.to_csv(table, tmp_path / "t.csv")
    rows = list(csv.DictReader(p.open()))
    assert len(rows) == 6 and float(rows[3]["energy"]) == pytest.approx(float(table["energy"][3]))
    j = json.loads(sweep.to_json(table, tmp_path / "t.json").read_text())
    assert j[2]["coupling"] == pytest.approx(0.05) and j[4]["coupling"] == pytest.approx(0.2)
    png = plotting.sweep_heatmap(table, "coupling", "seed", "energy", tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="value='nope'"):
        plotting.sweep_heatmap(table, "coupling", "seed", "nope")


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, jax
    sys.path.insert(0, {tests!r})
    from test_sweep import evaluate
    from hkjax import sweep
    assert len(jax.devices()) == 4, jax.devices()
    params = sweep.grid(coupling=[0.0, 0.03, 0.1], seed=[0, 1, 2])   # 9 rows: padded to 12
    sharded = sweep.run(evaluate, params)
    # Same per-device program (3 rows each), on one device: must be bit-identical.
    plain = sweep.run(evaluate, params, shard=False, chunk_size=3)
    # One 9-row program: equal up to float32 round-off (XLA blocks GEMMs by batch size).
    whole = sweep.run(evaluate, params, shard=False)
    out = {{k: np.asarray(v).tolist() for k, v in sharded.items()}}
    print(json.dumps({{"same": all(np.array_equal(sharded[k], plain[k]) for k in sharded),
                       "close": all(np.allclose(sharded[k], whole[k], rtol=1e-5, atol=1e-6) for k in sharded),
                       "n": len(sharded["energy"]), "table": out}}))
    """
)


@pytest.mark.slow
def test_sharded_over_four_devices_equals_unsharded():
    """Sharding only places rows on devices: with the same per-device batch shape the
    results are bit-identical; against one big batch they agree to float32 round-off."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    code = SCRIPT.format(tests=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 9
    assert res["same"], "sharding changed the results of identical per-device programs"
    assert res["close"]
    assert len(set(np.round(res["table"]["energy"], 5))) > 3  # the rows really differ

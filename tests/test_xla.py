"""Tests for hkjax/_xla.py: the XLA:CPU flag hkjax adds at import, and when it does not.

Each case runs in a fresh interpreter (XLA reads its flags once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hkjax import _xla

PROBE = r"""
import json, os, sys
pre = sys.argv[1]
if pre == "jax-first":
    import jax, jax.numpy as jnp
    jnp.ones(2).block_until_ready()  # starts the backend before hkjax is imported
import hkjax, jax, jax.numpy as jnp
# A leading-axis reduction and a vmapped gradient: the flag must be accepted and correct.
x = jnp.arange(24.0).reshape(2, 3, 4)
s = jax.jit(lambda a: a.sum(0))(x)
g = jax.grad(lambda w: jax.vmap(lambda v: (w * v).sum())(x).sum())(jnp.ones((3, 4)))
print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""), "sum": s.tolist(), "grad": g.tolist()}))
"""


def _probe(env_extra: dict, pre: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "HKJAX_XLA_FLAGS")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", PROBE, pre], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_results_unchanged(r: dict):
    # x.sum(0), and d/dw Σ_b (w·x_b) = Σ_b x_b: the same numbers, computed two ways.
    expected = np.arange(24.0).reshape(2, 3, 4).sum(0).tolist()
    assert r["sum"] == expected and r["grad"] == expected


def test_flag_added_on_known_jaxlib_and_results_unchanged():
    import jaxlib

    r = _probe({})
    known = _xla._version(jaxlib.__version__) in _xla.KNOWN
    assert (f"{_xla.FLAG}={_xla.VALUE}" in r["flags"]) == known
    _assert_results_unchanged(r)


def test_opt_out_and_user_flags_are_respected():
    assert _xla.FLAG not in _probe({"HKJAX_XLA_FLAGS": "0"})["flags"]
    mine = f"{_xla.FLAG}=dot"
    assert _probe({"XLA_FLAGS": mine})["flags"] == mine


def test_no_flag_once_jax_has_started():
    r = _probe({}, pre="jax-first")
    assert _xla.FLAG not in r["flags"]
    _assert_results_unchanged(r)


@pytest.mark.parametrize("text,expected", [("0.10.2", (0, 10)), ("0.4.30", (0, 4)), ("dev", (-1, -1))])
def test_version_parsing(text, expected):
    assert _xla._version(text) == expected


# -- the persistent compilation cache -------------------------------------------------------

CACHE_PROBE = r"""
import json, sys
import hkjax, jax, jax.numpy as jnp
path = hkjax.enable_compile_cache(None if sys.argv[1] == "env" else sys.argv[1])
if sys.argv[2:] == ["path-only"]:  # only where the cache is: nothing compiled
    print(json.dumps({"path": path}))
    sys.exit(0)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # cache even this small program
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
net = hkjax.hopfield(6, lagrangian=hkjax.lagrangians.ReLU(), key=jax.random.key(0))
x0 = net.init_state({"x": jnp.linspace(0.0, 1.0, 6)})
loss = jax.jit(jax.grad(lambda n: jnp.sum(hkjax.relax(n, x0, throw=False).state["x"] ** 2)))
g = loss(net)
print(json.dumps({"path": path, "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "grad": float(jnp.sum(g.synapses[0].weights))}))
"""


def _cache_probe(arg: str, env_extra: dict, *, path_only: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", _xla.CACHE_ENV)}
    env.update(env_extra)
    argv = [sys.executable, "-c", CACHE_PROBE, arg] + (["path-only"] if path_only else [])
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compile_cache_serves_a_second_process(tmp_path):
    """A gradient through ``relax`` compiled in one process is read back from the cache by the
    next (no host callback keeps it out), with the same result; the directory comes from the
    argument or from ``HKJAX_COMPILE_CACHE``."""
    cache = tmp_path / "xla"
    first = _cache_probe(str(cache), {})
    assert first["path"] == str(cache) and first["hits"] == 0
    assert any(cache.iterdir())
    second = _cache_probe("env", {_xla.CACHE_ENV: str(cache)})
    assert second["path"] == str(cache) and second["hits"] >= 1
    assert second["grad"] == first["grad"]


def test_compile_cache_respects_opt_out_and_jax_settings(tmp_path, monkeypatch):
    """``HKJAX_COMPILE_CACHE=0`` turns it off, JAX's own setting wins, the default lives under
    ``XDG_CACHE_HOME``, and a directory that cannot be made leaves the cache off (no error)."""
    off = _cache_probe("env", {_xla.CACHE_ENV: "0"})
    assert off["path"] is None and off["hits"] == 0
    assert _cache_probe("env", {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax")}, path_only=True)["path"] is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _xla.default_cache_dir() == str(tmp_path / "xdg" / "hkjax" / "xla")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _xla.enable_compile_cache(blocker / "xla") is None

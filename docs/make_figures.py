"""Make the README's overview figure, ``docs/figures/overview.png``, from a real run.

    .venv/bin/python docs/make_figures.py            # ~20 s on a 2-core CPU

One Hopfield–Kuramoto relaxation, built and solved only with the public API of hkjax
(``hk.hopfield_kuramoto``, ``hk.relax``, ``hk.tasks.hebbian_weights``,
``hk.plotting.order_parameter_values``): ``n = 64`` tanh threshold units store 3 random
``±1`` patterns with Hebbian weights; one oscillator per unit in ``R³`` (random start) is
coupled to them additively on the complete graph, ``−c Σ gᵢ gⱼ (σᵢ·σⱼ)``, with no Kuramoto
term. The threshold units start at a cue, pattern 0 with 30 % of its signs flipped.

Panels: (a) the energy, which never increases along the flow (no natural frequency); (b) the
overlap of the activations with the stored pattern, ``m = ξ·g/n``, the oscillators' order
parameter ``R = |Σ σᵢ|/n``, and the same order parameter after flipping each oscillator by the
sign of the pattern, ``R_ξ = |Σ ξᵢ σᵢ|/n``: the oscillators bind into two antipodal clusters,
one per sign of the retrieved pattern, so ``R`` stays low while ``R_ξ → 1``; (c, d) the Gram
matrix ``σσᵀ`` at the start and at the end, units sorted by the sign of the pattern: the
rank-``D`` term ``c Gram(σ)`` that the oscillators add to the Hopfield weights has become a
Hebbian copy ``c ξξᵀ`` of the retrieved memory.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import hkjax as hk  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "figures" / "overview.png"


def overview(path: pathlib.Path = OUT) -> pathlib.Path:
    n, dim, n_patterns, gain, flip, t1 = 64, 3, 3, 4.0, 0.3, 8.0
    kp, kc, ks, kn = jax.random.split(jax.random.key(0), 4)
    xi = jnp.where(jax.random.bernoulli(kp, 0.5, (n_patterns, n)), 1.0, -1.0)
    net = hk.hopfield_kuramoto(
        n, dim,
        edges_k=None, edges_hk="all", coupling="additive",
        lagrangian=hk.lagrangians.Tanh(), interaction=hk.interactions.Linear(),
        kappa_h=1.0, kappa_k=1.0,
        hopfield_weights=hk.tasks.hebbian_weights(xi, gain=gain), hopfield_bias=jnp.zeros(n),
        coupling_weights=jnp.asarray(0.5 * gain / n), key=kn,
    )
    cue = jnp.where(jax.random.bernoulli(kc, flip, (n,)), -xi[0], xi[0])
    state0 = net.init_state({"x": 0.5 * cue}, key=ks)  # random oscillators on the sphere
    ts = jnp.linspace(0.0, t1, 161)
    sol = hk.relax(net, state0, t1=t1, saveat=ts, max_steps=4096)
    assert bool(sol.succeeded) and net.is_lyapunov

    t, e = np.asarray(sol.ts), np.asarray(sol.energy)
    x, sigma, p0 = np.asarray(sol.states["x"]), np.asarray(sol.states["sigma"]), np.asarray(xi[0])
    m = np.tanh(x) @ p0 / n
    r = hk.plotting.order_parameter_values(sigma)
    r_xi = hk.plotting.order_parameter_values(p0[None, :, None] * sigma)
    order = np.argsort(-p0, kind="stable")

    fig, axes = plt.subplots(1, 4, figsize=(15.5, 3.6), gridspec_kw={"width_ratios": [1, 1, 0.8, 0.8]})
    ax = axes[0]
    ax.plot(t, e, color="k")
    ax.set(xlabel="time t", ylabel="energy E", title="(a) energy never increases")
    ax = axes[1]
    ax.plot(t, m, label=r"overlap $m = \xi\cdot g/n$")
    ax.plot(t, r_xi, label=r"$R_\xi = |\sum_i \xi_i\sigma_i|/n$")
    ax.plot(t, r, ls="--", label=r"$R = |\sum_i \sigma_i|/n$")
    ax.set(xlabel="time t", ylim=(-0.05, 1.05), title="(b) retrieval and binding")
    ax.legend(loc="center right", fontsize=8)
    for ax, k, title in ((axes[2], 0, "(c) Gram(σ) at t = 0"), (axes[3], -1, f"(d) Gram(σ) at t = {t1:g}")):
        s = sigma[k][order]
        im = ax.imshow(s @ s.T, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set(title=title, xlabel="unit j (sorted by ξ)", ylabel="unit i")
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.04)
    fig.suptitle(
        f"Hopfield–Kuramoto relaxation: {n} tanh units storing {n_patterns} patterns, cue with "
        f"{flip:.0%} flipped signs; one oscillator on $S^{{{dim - 1}}}$ per unit, additive all-to-all coupling",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"{path}: E {e[0]:.1f} -> {e[-1]:.1f}, m {m[0]:.2f} -> {m[-1]:.2f}, R_xi {r_xi[0]:.2f} -> {r_xi[-1]:.2f}, "
          f"R {r[0]:.2f} -> {r[-1]:.2f}, {int(sol.stats['num_steps'])} solver steps")
    return path


if __name__ == "__main__":
    overview()

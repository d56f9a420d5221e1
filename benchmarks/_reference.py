"""The paper's reference code (github.com/VLSF/HKmemory), run from a checkout the user names,
on the configuration of its own MNIST scripts, for the benchmarks that time hkjax next to it.

Nothing of that code is part of hkjax: it is imported from ``path`` (the checkout's root,
holding ``architectures/`` and ``learning/``) when a benchmark is given ``--reference PATH``.
Its training step is its ``learning.classification.make_step``: a ``jax.vmap`` of one
adaptive Diffrax solve per example inside ``eqx.filter_value_and_grad``, with the settings of
``scripts/Hopfield_MNIST.py`` (784 pixels + 100 hidden + 10 class units, ReLU) and of
``examples/Hopfield_Kuramoto.py`` (785 + 100 + 11 units with oscillators on S⁴, small-world
graphs of degree 150, κ_H = 0.1, κ_K = 1): Tsit5 + PID (rtol 1e-3, atol 1e-6), t1 = 1,
``max_steps`` 5000, Lion at 1e-4 with exponential decay.
"""

from __future__ import annotations

import sys
from pathlib import Path

N_AUGMENT, N_CLASSES, DEGREE, DIM, KAPPA_K, KAPPA_H = 100, 10, 150, 5, 1.0, 0.1


def _import(path: str):
    root = Path(path).expanduser().resolve()
    if not (root / "architectures" / "Hopfield_Kuramoto.py").is_file() or not (root / "learning").is_dir():
        raise SystemExit(f"--reference {path}: not a checkout of the paper's code (no architectures/"
                         "Hopfield_Kuramoto.py and learning/ under it); clone github.com/VLSF/HKmemory")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from architectures import Hopfield, Hopfield_Kuramoto, Kuramoto  # noqa: PLC0415
    from learning import classification  # noqa: PLC0415

    return Hopfield, Hopfield_Kuramoto, Kuramoto, classification


def training_step(path: str, model: str, batch: int, images, labels, *, seed: int = 33):
    """A zero-argument function that does one training step of the paper's code on the next
    ``batch`` of ``images`` (``(N, 784)`` in [0, 1]) and returns the loss; the model and the
    optimizer state advance from call to call, as in the paper's training loops."""
    import jax.numpy as jnp
    import equinox as eqx
    import optax
    from jax import random

    Hopfield, Hopfield_Kuramoto, Kuramoto, classification = _import(path)
    features = jnp.asarray(images, jnp.float32)
    targets = jnp.asarray(labels)
    keys = random.split(random.PRNGKey(seed), 6)
    solver_data = classification.get_default_solver_data()
    if model == "hopfield":
        net = Hopfield.Hopfield_dense(features.shape[1] + N_AUGMENT + N_CLASSES, Hopfield.Lagrange_relu, keys[0])
        inputs = features
        args = None

        def pre(feature, _):
            return classification.Hopfield_preprocessing(feature, N_AUGMENT, N_CLASSES)

        def post(prediction):
            return classification.Hopfield_postprocessing(prediction, N_CLASSES)
    elif model == "hopfield_kuramoto":
        features_k = classification.Kuramoto_data_init(features, DIM)
        features_h = jnp.pad(features, ((0, 0), (1, 0)))
        n = features_h.shape[1] + N_AUGMENT + N_CLASSES + 1
        ind_k = Kuramoto.get_small_world_connectivity(keys[0], n, k=DEGREE)
        ind_hk = Kuramoto.get_small_world_connectivity(keys[1], n, k=DEGREE)
        args = [ind_k, ind_hk, KAPPA_K, KAPPA_H]
        net = Hopfield_Kuramoto.Hopfield_Kuramoto_network(
            ind_k.shape[0], Kuramoto.relu_interaction, n, ind_hk.shape[0], keys[2], Hopfield.Lagrange_relu,
            1 / jnp.sqrt(DEGREE), 1 / jnp.sqrt(n), 1e-2)
        inputs = (features_h, features_k)

        def pre(feature, key):
            return classification.Hopfield_Kuramoto_preprocessing_random(feature, N_AUGMENT, N_CLASSES, key)

        def post(prediction):
            return classification.Hopfield_Kuramoto_postprocessing(prediction, N_CLASSES)
    else:
        raise ValueError(f"model={model!r}: the reference benchmark knows 'hopfield' and 'hopfield_kuramoto'")
    optim = optax.lion(learning_rate=optax.exponential_decay(1e-4, 1000, 0.5))
    state = {"net": net, "opt": optim.init(eqx.filter(net, eqx.is_array)), "key": keys[4], "i": 0}
    order = random.permutation(keys[3], features.shape[0])

    def step():
        lo = (state["i"] * batch) % (features.shape[0] - batch + 1)
        idx = order[lo:lo + batch]
        state["i"] += 1
        state["key"], k = random.split(state["key"])
        x = [inputs[0][idx], inputs[1][idx]] if isinstance(inputs, tuple) else inputs[idx]
        loss, state["net"], state["opt"] = classification.make_step(
            state["net"], x, targets[idx], args, solver_data, pre, post, k if args is not None else None,
            state["opt"], optim)
        return loss

    return step

"""``relax``: one Diffrax solve of a network's Lyapunov flow.

The default configuration is the paper's: Tsit5 with a PID step-size controller
(``rtol=1e-3``, ``atol=1e-6``), ``t1 = 1``, ``dt0 = 1e-2``.
Everything is single-sample; batch with ``jax.vmap`` / ``eqx.filter_vmap`` (every example
then gets its own adaptive steps), or with :func:`relax_batch` (one solve of the whole batch
with shared steps: cheaper to differentiate, see there).

Gradients (``adjoint``):

* ``"recursive"`` (default): :class:`diffrax.RecursiveCheckpointAdjoint`, exact
  discretise-then-optimise gradients from checkpoints of the solver's state: one for every
  step when they fit in :data:`CHECKPOINT_BYTES` (:func:`relax_batch`:
  :data:`BATCH_CHECKPOINT_BYTES`, and past it :data:`BATCH_CHECKPOINTS`), else Diffrax's
  online schedule (:func:`recursive_adjoint`).
* ``"implicit"``: :class:`diffrax.ImplicitAdjoint`, implicit-function-theorem gradients at
  a steady state (needs ``steady_state=True`` and no ``saveat``); memory independent of the
  number of steps. The gradient with respect to the initial state is zero (correct at a
  fixed point): losses that need ``d/d state0`` must use ``"recursive"``. Threshold-only
  networks only: oscillator rest points are not isolated (conserved norms, global
  rotations), so the implicit Jacobian is singular and ``relax`` refuses this adjoint.
* ``"backsolve"``: :class:`diffrax.BacksolveAdjoint` (continuous adjoint; approximate, no
  events, and no gradient for parameters closed over rather than passed in ``args``).
"""

from __future__ import annotations

import inspect
import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .network import Network

__all__ = ["relax", "relax_batch", "recursive_adjoint", "Solution", "SphereProjection", "ADJOINTS",
           "CHECKPOINT_BYTES", "BATCH_CHECKPOINT_BYTES", "BATCH_CHECKPOINTS"]

ADJOINTS = ("recursive", "implicit", "backsolve")

#: Memory (bytes) that ``adjoint="recursive"`` may give to a checkpoint of every solver step
#: of one solve: see :func:`recursive_adjoint`.
CHECKPOINT_BYTES = 8 * 2**20
#: The checkpoint budget (bytes) of :func:`relax_batch`, for its whole batch: see
#: :func:`recursive_adjoint`.
BATCH_CHECKPOINT_BYTES = 64 * 2**20
#: The checkpoints :func:`relax_batch` keeps when one for every step does not fit in
#: :data:`BATCH_CHECKPOINT_BYTES`.
BATCH_CHECKPOINTS = 32


def _jitted_body_loop(loop):
    """Diffrax's solve loop ``loop`` with its step (the body of the outer while loop) behind
    an ``eqx.filter_jit``. To differentiate the loop, Equinox's checkpointed while loop traces
    that body ~25 times (fixed points over which parts of the loop state carry tangents and
    cotangents); behind ``jit`` its Python runs once and the later traces and their
    derivatives work on its jaxpr. XLA inlines the call: the same program."""

    def jitted(*, outer_while_loop, **kwargs):
        def outer(cond_fun, body_fun, init_val, **kw):
            return outer_while_loop(cond_fun, eqx.filter_jit(body_fun), init_val, **kw)

        return loop(outer_while_loop=outer, **kwargs)

    return jitted


class _CheckpointAdjoint(diffrax.RecursiveCheckpointAdjoint):
    """:class:`diffrax.RecursiveCheckpointAdjoint` whose solver step is traced once
    (:func:`_jitted_body_loop`): a gradient's trace ~0.3 s shorter on the paper network."""

    @property
    def _loop(self):
        return _jitted_body_loop(super()._loop)


def _loop_takes_outer_while_loop() -> bool:
    # `_loop` and its `outer_while_loop` argument are Diffrax internals (0.6-0.7): with a
    # Diffrax that lays its loop out otherwise, the plain adjoint is used
    try:
        return "outer_while_loop" in inspect.signature(diffrax.RecursiveCheckpointAdjoint()._loop).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        return False


_ADJOINT_CLASS = _CheckpointAdjoint if _loop_takes_outer_while_loop() else diffrax.RecursiveCheckpointAdjoint


def recursive_adjoint(max_steps: int, state_bytes: int, *, batched: bool = False) -> diffrax.RecursiveCheckpointAdjoint:
    """The adjoint ``relax(adjoint="recursive")`` uses for a solve of at most ``max_steps``
    steps whose state takes ``state_bytes`` bytes (``batched``: :func:`relax_batch`'s whole
    batch).

    Diffrax keeps checkpoints of its loop state for the backward pass and recomputes the
    steps between them (by default ``~log2(max_steps)`` checkpoints, Stumm and Walther's
    online schedule, so a solve of more steps than that is partly solved again backwards).
    When a checkpoint of every step — about twice the state (the state and Tsit5's last
    stage) — fits in the budget, every step gets one: Equinox's special case for it needs no
    schedule, so XLA compiles a smaller program (the training step's compile time:
    ``benchmarks/first_call.py``) and the backward pass recomputes nothing. The budget is
    :data:`CHECKPOINT_BYTES` per solve; under ``jax.vmap`` the checkpoints are per example,
    so a batch multiplies them. :func:`relax_batch` sees its whole batch: its budget is
    :data:`BATCH_CHECKPOINT_BYTES`, and past it (a large ``max_steps``, e.g. the paper's
    5000) it keeps :data:`BATCH_CHECKPOINTS` (or as many as the budget holds): more than
    the solves of the paper's network take, so nothing is recomputed, without the cost of
    writing a buffer sized for ``max_steps`` (``benchmarks/default_path.py --max-steps``)."""
    per_step = 2 * state_bytes
    budget = BATCH_CHECKPOINT_BYTES if batched else CHECKPOINT_BYTES
    if max_steps * per_step <= budget:
        return _ADJOINT_CLASS(checkpoints=max_steps)
    kept = min(budget // per_step, BATCH_CHECKPOINTS)
    return _ADJOINT_CLASS(checkpoints=kept if batched and kept > math.log2(max_steps) else None)


class Solution(eqx.Module):
    """The result of :func:`relax`.

    Attributes:
        state: the final state (at ``t1``, or where the steady-state event fired).
        ts: ``(T,)`` the times of ``states`` (those asked for with ``saveat``; ``[t_final]``
            by default). Times past a steady-state event are ``inf``.
        states: the states at ``ts`` (leading time axis).
        energy: ``(T,)`` the energy at ``ts``.
        stats: ``num_steps``, ``num_accepted_steps``, ``num_rejected_steps``, ``result``
            (Diffrax's result code: 0 success, see :class:`diffrax.RESULTS`).
        t_final: the time the solve ended.
    """

    state: dict
    ts: Float[Array, " T"]
    states: dict
    energy: Float[Array, " T"]
    stats: dict
    t_final: Float[Array, ""]

    @property
    def succeeded(self) -> Bool[Array, ""]:
        """Whether the solve reached ``t1`` or a steady state."""
        return self.stats["result"] == 0


def _adjoint(adjoint, steady_state: bool, user_saveat: bool, has_oscillators: bool, max_steps: int, state_bytes: int,
             batched: bool):
    if isinstance(adjoint, diffrax.AbstractAdjoint):
        return adjoint
    if adjoint == "recursive":
        return recursive_adjoint(max_steps, state_bytes, batched=batched)
    if adjoint == "implicit":
        if has_oscillators:
            raise ValueError(
                "adjoint='implicit' is not available for networks with oscillators: their rest "
                "points are not isolated (every |σᵢ| is conserved and a global rotation of a rest "
                "point is another one), so the implicit-function-theorem Jacobian is singular and "
                "the gradient would be wrong; use adjoint='recursive' (pass a diffrax.ImplicitAdjoint "
                "instance yourself only for losses invariant along those directions)"
            )
        if not steady_state:
            raise ValueError(
                "adjoint='implicit' differentiates through a steady state; pass steady_state=True"
            )
        if user_saveat:
            raise ValueError("adjoint='implicit' can only save the final state; drop saveat")
        return diffrax.ImplicitAdjoint()
    if adjoint == "backsolve":
        if steady_state:
            raise ValueError("adjoint='backsolve' does not support the steady-state event; use 'recursive' or 'implicit'")
        return diffrax.BacksolveAdjoint()
    raise ValueError(f"adjoint={adjoint!r} is unknown; choose one of {ADJOINTS} or pass a diffrax adjoint")


# Diffrax integrates the state as a tuple of the layers' arrays, threshold layers first
# (:func:`_order`), rather than as the dict (whose leaves a pytree orders by name): on the
# paper's network a shared-step solve of a batch of 100 runs ~10 % faster with the threshold
# units' leaf ahead of the oscillators'.
def _order(network) -> tuple[str, ...]:
    """The layers in the order of the solved tuple: threshold layers first, then by name."""
    return tuple(sorted(network.layers, key=lambda n: (network.layers[n].kind != "threshold", n)))


def _as_tuple(state: dict, order) -> tuple:
    return tuple(state[n] for n in order)


def _as_dict(y: tuple, order) -> dict:
    return dict(zip(order, y))


# The vector fields Diffrax integrates, each behind a `jit`: to differentiate a solve,
# Equinox's checkpointed loop traces Diffrax's step ~25 times (fixed points over which parts
# of the loop state carry tangents and cotangents); behind `jit` the field is traced once
# (three times without) and the later traces and their derivatives work on its jaxpr. XLA
# inlines the call, so the compiled program computes the same, and the paper network's
# training step traces faster (tracing time: benchmarks/first_call.py).
def _tuple_field(t, y, network):
    order = _order(network)
    return _as_tuple(network.vector_field(t, _as_dict(y, order)), order)


_field = eqx.filter_jit(_tuple_field)


@eqx.filter_jit
def _batch_field(t, y, network):
    order = _order(network)
    return _as_tuple(network._batch_vector_field(t, _as_dict(y, order)), order)


def _worst_rms(y) -> Float[Array, ""]:
    """The largest per-example RMS norm of a batched pytree (leading batch axis): the error
    norm of :func:`relax_batch`, so that every example meets the tolerances."""
    leaves = jax.tree_util.tree_leaves(y)
    sq = sum(jnp.sum(jnp.reshape(jnp.abs(v) ** 2, (v.shape[0], -1)), axis=1) for v in leaves)
    size = sum(v[0].size for v in leaves)
    return jnp.sqrt(jnp.max(sq) / size)


def _onto_sphere(y, network):
    order = _order(network)
    if isinstance(y, tuple) and len(y) == len(order):
        return _as_tuple(network.project(_as_dict(y, order)), order)
    return y  # e.g. the augmented state of a backsolve adjoint: left alone


class SphereProjection(diffrax.AbstractWrappedSolver):
    """A Diffrax solver that projects the oscillators back onto the unit sphere after every
    step of the wrapped ``solver`` (the projection method for ODEs on manifolds; Hairer,
    Lubich & Wanner, *Geometric Numerical Integration*, IV.4).

    The exact flow keeps every ``|σᵢ| = 1`` (``σ̇ᵢ ⟂ σᵢ``), but an explicit Runge–Kutta step
    does not: at the paper's tolerances (``rtol = 1e-3``) the norms drift by up to ~1e-2. The
    projection changes each step by at most that drift (within the step's error tolerance) and
    keeps the order of the method; threshold states pass through unchanged.

    Arguments:
        solver: the Diffrax solver to wrap (e.g. :class:`diffrax.Tsit5`).
    """

    solver: diffrax.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        """The wrapped solver's order."""
        return self.solver.order(terms)

    def strong_order(self, terms):
        """The wrapped solver's strong order."""
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        """The wrapped solver's error order."""
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        """The wrapped solver's initial state."""
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        """One step of the wrapped solver, its result projected onto the sphere."""
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return _onto_sphere(y1, args), y_error, dense_info, solver_state, result

    def func(self, terms, t0, y0, args):
        """The vector field at ``(t0, y0)``."""
        return self.solver.func(terms, t0, y0, args)


def relax(
    network: Network,
    state0: dict,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    dt0: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    max_steps: int = 512,
    adjoint="recursive",
    steady_state: bool = False,
    saveat=None,
    throw: bool = True,
    project: bool = False,
) -> Solution:
    """Relax ``network`` from ``state0`` along its Lyapunov flow with Diffrax.

    Arguments:
        network: the :class:`~hkjax.Network`.
        state0: the initial state, ``{layer name: array}`` (build it with ``network.init_state``).
        t0, t1: time interval (``t1 > t0``).
        dt0: initial step (default ``min(1e-2, (t1 − t0)/100)``; the paper uses ``1e-2``).
        solver: a Diffrax solver (default :class:`diffrax.Tsit5`).
        rtol, atol: tolerances of the default PID step-size controller (and of the
            steady-state test).
        stepsize_controller: override the step-size controller (e.g.
            ``diffrax.ConstantStepSize()``).
        max_steps: maximum number of solver steps.
        adjoint: ``"recursive"``, ``"implicit"``, ``"backsolve"`` or a Diffrax adjoint (see
            the module docstring; ``"recursive"`` checkpoints every step when
            :func:`recursive_adjoint` finds room, else follows Diffrax's schedule; pass
            ``diffrax.RecursiveCheckpointAdjoint(checkpoints=k)`` to choose).
        steady_state: stop when ``|f| < atol + rtol |y|`` (Diffrax's steady-state event).
            Not available with a natural frequency ``Ω`` (rotating oscillators never rest).
        saveat: ``None`` (final state only), an array of times, or a
            :class:`diffrax.SaveAt` (its ``ts``/``steps``/``t0`` choices are honoured).
        throw: raise on solver failure; with ``False`` the failure is reported in
            ``stats["result"]`` (``Solution.succeeded``) so one bad element of a ``vmap``
            does not abort the batch.
        project: project the oscillators back onto the unit sphere after every solver step
            (:class:`SphereProjection`; also the saved states). Without it the norms drift
            by about the solver tolerance (up to ~1e-2 at ``rtol = 1e-3``); tighter
            tolerances shrink the drift too.

    Returns:
        A :class:`Solution`.

    Raises:
        ValueError: ``t1 <= t0``, incompatible options (implicit adjoint without a steady
            state, steady state with ``Ω``), an unknown adjoint name.
    """
    return _relax(
        network, state0, batched=False, t0=t0, t1=t1, dt0=dt0, solver=solver, rtol=rtol, atol=atol,
        stepsize_controller=stepsize_controller, max_steps=max_steps, adjoint=adjoint,
        steady_state=steady_state, saveat=saveat, throw=throw, project=project,
    )


def relax_batch(network: Network, states0: dict, **kwargs) -> Solution:
    """Relax a batch of initial states (a state dict whose arrays have a leading batch axis)
    as **one** ODE system: one sequence of adaptive steps for the whole batch, each step
    accepted only when every example's error meets the tolerances (the controller's norm is
    the largest per-example RMS error).

    The result has the layout of ``jax.vmap(relax)``: every field of the :class:`Solution`
    gains a leading batch axis (``ts`` and ``stats`` are the same for every example).
    Compared with ``jax.vmap(relax)``, where each example takes its own steps:

    * the same flow, solved to the same tolerances: final states agree to the solver
      tolerance (exactly, with ``diffrax.ConstantStepSize``); the batch takes about as many
      steps as its slowest example, and a failure (``max_steps``) fails the whole batch;
    * **cheaper to differentiate**: with ``vmap`` the backward pass carries one cotangent per
      example for every parameter matrix through the adjoint loop (``(batch, n, n)`` arrays
      for dense weights); here they are summed over the batch at every step: faster steps,
      less memory and a faster compile, even when the shared solve takes a step more
      (``benchmarks/train_step.py``, ``benchmarks/default_path.py``);
    * every synapse is evaluated for the whole batch at once
      (:meth:`~hkjax.synapses.AbstractSynapse.batch_gradient`): a synapse or graph layout
      with a faster batched form uses it (the edge list's Kuramoto force walks the edges with
      the batch as the last axis).

    :func:`hkjax.train.fit` uses it by default (``shared_steps=None``; ``hkjax train``
    unless ``--no-shared-steps``).

    Arguments:
        network: the :class:`~hkjax.Network` (shared by every example).
        states0: the initial states, every leaf with a leading batch axis of the same size.
        kwargs: the keyword arguments of :func:`relax` (tolerances, solver, ``max_steps``,
            ``adjoint``, ``steady_state`` — reached when every example is at rest —,
            ``saveat``, ``throw``, ``project``).

    Returns:
        A :class:`Solution` with a leading batch axis.

    Raises:
        TypeError: an argument :func:`relax` does not take.
        ValueError: as :func:`relax`; states without a common leading batch axis.
    """
    try:  # relax's own signature: one set of defaults for both
        options = inspect.signature(relax).bind(network, states0, **kwargs)
    except TypeError as e:
        raise TypeError(f"relax_batch: {e}; it takes the arguments of hkjax.relax") from None
    options.apply_defaults()
    return _relax(batched=True, **options.arguments)


def _relax(
    network: Network,
    state0: dict,
    *,
    batched: bool,
    t0, t1, dt0, solver, rtol, atol, stepsize_controller, max_steps, adjoint, steady_state, saveat, throw, project,
) -> Solution:
    if not isinstance(network, Network):
        raise TypeError(f"network must be an hkjax.Network, got {type(network).__name__}")
    if not isinstance(state0, dict):
        raise TypeError(
            f"state0 must be a dict {{layer name: array}} (network.init_state(...)), got {type(state0).__name__}")
    traced = any(isinstance(t, jax.core.Tracer) for t in (t0, t1))
    if not traced:
        if not float(t1) > float(t0):
            raise ValueError(f"t1={t1} must be larger than t0={t0} (relax integrates forward in time)")
    else:
        t1 = eqx.error_if(jnp.asarray(t1), jnp.asarray(t1) <= jnp.asarray(t0), "relax: t1 must be larger than t0")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} must be a positive integer")
    if steady_state and network.rotating:
        raise ValueError(
            "steady_state=True: oscillators with a natural frequency omega rotate forever and never "
            "reach a rest point; drop omega or solve to a fixed t1"
        )
    if batched:
        sizes = {jnp.shape(v)[0] if jnp.ndim(v) else None for v in jax.tree_util.tree_leaves(state0)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError("relax_batch: every leaf of states0 needs the same leading batch axis "
                             "(e.g. jax.vmap(network.init_state)(...))")
        network._check_structure(jax.tree_util.tree_map(lambda v: v[0], state0))
    else:
        network._check_structure(state0)
    user_saveat = saveat is not None
    sub = None
    if isinstance(saveat, diffrax.SaveAt):
        sub = saveat.subs
        if not isinstance(sub, diffrax.SubSaveAt):
            raise ValueError("saveat: pass a SaveAt with a single set of times (no nested subs)")
    elif saveat is not None:
        ts = jnp.asarray(saveat)
        if ts.ndim != 1:
            raise ValueError(f"saveat has shape {ts.shape}; pass a 1-d array of times or a diffrax.SaveAt")
        sub = diffrax.SubSaveAt(ts=ts)
    if sub is None:
        dsaveat = diffrax.SaveAt(t1=True)  # the only form ImplicitAdjoint accepts
    else:
        dsaveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(t1=True), sub])

    solver = diffrax.Tsit5() if solver is None else solver
    if project and network.oscillator_layers:
        solver = SphereProjection(solver)
    norm = {"norm": _worst_rms} if batched else {}
    if stepsize_controller is None:
        stepsize_controller = diffrax.PIDController(rtol=rtol, atol=atol, **norm)
    if dt0 is None:
        # a Python number when the times are: a traced dt0 would make Diffrax check its sign
        # at run time, a host callback that keeps the compiled program out of JAX's
        # persistent compilation cache
        dt0 = jnp.minimum(1e-2, (t1 - t0) / 100) if traced else min(1e-2, (float(t1) - float(t0)) / 100)
    event = None
    if steady_state:
        event = diffrax.Event(diffrax.steady_state_event(rtol=rtol, atol=atol, **norm))
    order = _order(network)
    # The prepared network travels as Diffrax's `args`: its parameters get gradients under
    # every adjoint (BacksolveAdjoint only differentiates what is passed in).
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_batch_field if batched else _field),
        solver,
        t0,
        t1,
        dt0,
        _as_tuple(state0, order),
        args=network.prepare(),
        saveat=dsaveat,
        stepsize_controller=stepsize_controller,
        adjoint=_adjoint(adjoint, steady_state, user_saveat, bool(network.oscillator_layers), max_steps,
                         sum(jnp.size(v) * jnp.result_type(v).itemsize for v in jax.tree_util.tree_leaves(state0)),
                         batched),
        event=event,
        max_steps=max_steps,
        throw=throw,
    )
    if sub is None:
        states, ts = _as_dict(sol.ys, order), sol.ts
        final_ys, final_ts = states, sol.ts
    else:
        (final_ys, states), (final_ts, ts) = sol.ys, sol.ts
        final_ys, states = _as_dict(final_ys, order), _as_dict(states, order)
    if project and sub is not None:  # the requested saves are interpolated between steps
        states = network.project(states)
    final = jax.tree_util.tree_map(lambda y: y[-1], final_ys)
    t_final = final_ts[-1]
    if batched:  # (time, batch, ...) -> (batch, time, ...), as jax.vmap(relax) lays it out
        states = jax.tree_util.tree_map(lambda y: jnp.moveaxis(y, 0, 1), states)
        energy = jax.vmap(jax.vmap(network.energy))(states)
    else:
        energy = jax.vmap(network.energy)(states)
    result = sol.result
    code = result._value if hasattr(result, "_value") else result
    stats = {
        "num_steps": sol.stats["num_steps"],
        "num_accepted_steps": sol.stats["num_accepted_steps"],
        "num_rejected_steps": sol.stats["num_rejected_steps"],
        "result": jnp.where(diffrax.is_event(result), 0, jnp.asarray(code, jnp.int32)),
    }
    if batched:
        b = energy.shape[0]
        ts, t_final, stats = jax.tree_util.tree_map(
            lambda v: jnp.broadcast_to(v, (b,) + jnp.shape(v)), (ts, t_final, stats))
    return Solution(state=final, ts=ts, states=states, energy=energy, stats=stats, t_final=t_final)

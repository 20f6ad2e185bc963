"""The dense engine compiled by JAX: ``DenseTarget(circuit, backend='jax')``,
``neurosim train --target dense --backend jax``.

Nothing here is circuit-specific, and almost nothing is new: the circuit is
lowered as for the numpy backend (:mod:`hardware_targets.dense`), the same
generator writes the same step code over ``jax.numpy`` instead of numpy, and
``jax.jit`` compiles it with the loop inside the program (``lax.fori_loop``):
one call of XLA per ``run``/``settle`` instead of one numpy call per operation
and step. The learning rules (:mod:`neurosim.learning`) and the optimiser
(:mod:`neurosim.optim`) are traced as they are and compiled into one program
per ``learn``. JAX is what pcx and ngclearn compile with; it runs the same
program on CPUs and NVIDIA GPUs.

What differs from the numpy backend, and why
--------------------------------------------
* The loop's schedule is the same, written for a compiled loop: the constant
  summed variables are computed once before it, and the unread ones in its
  last step, which is written out after the loop (the numpy loop tests
  ``step == 0`` and ``step == n_steps - 1`` instead).
* Results equal the numpy backend's to rounding, not bit for bit: XLA orders
  and fuses sums differently (float64: about 1e-15 relative per step; the
  equivalence tests state their tolerances).
* ``rand()``/``randn()`` in population ``init`` code draw from ``jax.random``,
  keyed by the seed, the population, the number of step loops run and the
  step: statistically equal to the numpy backend's streams, not draw by draw;
  the count is part of :meth:`extra_state`, so a resumed run draws what the
  uninterrupted one would.
* The circuit's namespace is compiled in as constants; a value changed between
  runs recompiles the programs (as Brian2 resolves the namespace at every run).
* TimedArrays are refused: Brian2 evaluates them on host arrays.

float64 circuits need JAX's 64-bit mode, which this module switches on when it
is imported (it changes no float32 computation).
"""
from __future__ import annotations

import re
import zlib
from functools import partial

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after the 64-bit switch)

from neurosim.circuit import Circuit, CircuitError  # noqa: E402
from neurosim.target import check_steps  # noqa: E402

from .dense import DenseTarget  # noqa: E402

__all__ = ["JaxDenseTarget"]

_DRAW = re.compile(r"\b_(rand|randn)_(\w+)\(\)")


@jax.jit
def _within(arrays, limit):
    return jnp.all(jnp.stack([jnp.all(jnp.abs(a) <= limit) for a in arrays]))


class JaxDenseTarget(DenseTarget):
    """:class:`DenseTarget` with its step loops, learning rules and optimiser
    compiled by ``jax.jit`` (built by ``DenseTarget(..., backend='jax')``)."""

    name = "dense"
    _trace_store = ("_traces[{i}] = _traces[{i}].at[step].set("
                    "_xp.asarray({value}, _traces[{i}].dtype))")
    _step_arguments = ", _key"
    _step_results = "S, t, _traces"

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 xp=None, **options):
        if xp is not None:
            raise CircuitError("DenseTarget: backend='jax' computes with jax.numpy; leave "
                               "xp out (or use backend='numpy' with xp=).")
        self._compiled: dict = {}
        self._learn = None
        self._trials: dict = {}
        self._loops = 0   # step loops run: the random draws' key
        super().__init__(circuit, seed, weights, xp=jnp, **options)
        self._key = jax.random.key(seed)
        self.t = jnp.asarray(self.t, jnp.float64)   # as the programs return it (no retrace)

    @classmethod
    def unsupported(cls, circuit: Circuit, **options) -> str | None:
        return super().unsupported(circuit, **dict(options, backend="jax"))

    # --- the generated loop, compiled -------------------------------------------------
    def _generate_steps(self, *args):
        # a loop first needed inside a traced trial: its constants are arrays, not tracers
        with jax.ensure_compile_time_eval():
            return super()._generate_steps(*args)

    def _loop_source(self, src, step, constant, unread) -> list[str]:
        def section(indent, include, full=True):
            start = len(src.lines)
            src.valid = set()   # nothing computed before is known to be current
            step(indent, include, full)
            return src.lines[start:]

        pre = section("    ", lambda key: key in constant, full=False)
        written, src.written = src.written, set()
        body = section("        ", lambda key: key not in constant and key not in unread)
        carried = [src.names[k] for k in sorted(src.written)] + ["t", "_traces"]
        src.written |= written
        last = section("    ", lambda key: key not in constant)
        carry = f"({', '.join(carried)})"
        draws = iter(range(1 << 30))
        lines = [*pre, "    def _body(step, _carry):", f"        {carry} = _carry", *body,
                 f"        return {carry}",
                 f"    {carry} = _lax.fori_loop(0, n_steps - 1, _body, {carry})",
                 "    step = n_steps - 1", *last]
        return [_DRAW.sub(lambda m: f"_draw(_key, step, {next(draws)}, {m.group(2)!r}, "
                                    f"{m.group(1) == 'randn'})", line) for line in lines]

    def _random_globals(self) -> dict:
        return {"_draw": self._draw, "_lax": jax.lax}

    def _draw(self, key, step, k, pop, normal):
        """A ``(B, n)`` draw of population ``pop`` in a loop's step ``step`` (its
        ``k``-th draw), from the loop's key."""
        for data in (zlib.crc32(pop.encode()) & 0x7FFFFFFF, step, k):
            key = jax.random.fold_in(key, data)
        shape = (self.B, self.circuit.populations[pop].n)
        if normal:   # drawn in float64 whatever the dtype, as on the numpy backend
            return jax.random.normal(key, shape, jnp.float64).astype(self.dtype)
        below_one = np.nextafter(np.array(1, self.dtype), np.array(0, self.dtype))
        return jnp.minimum(jax.random.uniform(key, shape, jnp.float64).astype(self.dtype),
                           below_one)   # in [0, 1) in single precision too (unit_interval)

    def _call_steps(self, steps, n_steps, factors, traces) -> None:
        compiled = self._compiled.get(steps)
        if compiled is None:
            compiled = self._compiled[steps] = jax.jit(steps, static_argnums=0)
        key = jax.random.fold_in(self._key, self._loops)
        self._loops += 1
        state, self.t, out = compiled(n_steps, self.state, self.weights, factors,
                                      jnp.asarray(self.t, jnp.float64), traces, key)
        for pop, values in state.items():
            self.state[pop].update(values)
        if traces:
            traces.update(zip(list(traces), out))

    def _sync_namespace(self):
        before = self._namespace
        super()._sync_namespace()
        if self._namespace is not before:   # compiled in as constants: compile again
            self._step_functions.clear()
            self._compiled.clear()
            self._trials.clear()
            self._learn = None

    # --- the whole trial as one program -------------------------------------------------
    def trial(self, x, y, n_steps: int, record=()):
        """Clamp on the host, then settle, the ``n_steps`` of inference and the
        learning step with its optimiser as one compiled program (one per
        number of steps, clamps and batch size). With ``record``, or without
        learning rules, the steps run as separate programs."""
        if record or not self._rules:
            return super().trial(x, y, n_steps, record)
        n_steps = check_steps(n_steps)
        self.clamp(*self.circuit.input, x)
        self.clamp(*self.circuit.output, y)
        self._sync_namespace()
        key = (n_steps, tuple(sorted(self.clamped.items())), self.B)
        program = self._trials.get(key)
        if program is None:
            program = self._trials[key] = jax.jit(partial(self._trial_traced, n_steps))
        opt = self.optimizer
        state, self.weights, moments, self.t, self._loops = program(
            self.state, self.weights, opt.moments if opt is not None else {},
            jnp.asarray(self.t, jnp.float64), jnp.asarray(self._loops, jnp.int64))
        for pop, values in state.items():
            self.state[pop].update(values)
        if opt is not None:
            opt.moments = moments
        self._given.clear()
        self._wversion += 1
        for cache in self._subcache.values():
            cache.clear()
        return {}

    def _trial_traced(self, n_steps, state, weights, moments, t, loops):
        """:meth:`Target.trial`'s settle, run and learn, as they are, on traced values
        (what they read and write is pointed at them while tracing)."""
        opt = self.optimizer
        saved = (self.state, self.weights, self.t, self._loops, self._subcache,
                 self._synfactor_cache, self._wversion, opt.moments if opt is not None else None)
        self.state = {pop: dict(values) for pop, values in state.items()}
        self.weights, self.t, self._loops = weights, t, loops
        self._subcache = {p: {} for p in self.circuit.populations}
        self._synfactor_cache = {}
        if opt is not None:
            opt.moments = dict(moments)
        try:
            self.settle()
            self.run(n_steps)
            self.learn()
            return (self.state, self.weights, dict(opt.moments) if opt is not None else {},
                    self.t, self._loops)
        finally:
            (self.state, self.weights, self.t, self._loops, self._subcache,
             self._synfactor_cache, self._wversion, moments) = saved
            if opt is not None:
                opt.moments = moments

    # --- learning ---------------------------------------------------------------------
    def learn(self):
        if not self._rules:
            return
        self._all_summed()
        if self._learn is None:
            self._learn = jax.jit(self._learn_traced)
        opt = self.optimizer
        self.weights, moments = self._learn(self.state, self.weights,
                                            opt.moments if opt is not None else {}, self.t)
        if opt is not None:
            opt.moments = moments
        self._wversion += 1
        self._tick()

    def _learn_traced(self, state, weights, moments, t):
        """The rules and the optimiser of :meth:`DenseTarget.learn`, as they are,
        on traced values: the target reads its state through ``_pop_value``, so
        that is pointed at them while tracing."""
        saved = self.state, self._subcache, self.t
        opt = self.optimizer
        self.state, self.t = state, t
        self._subcache = {p: {} for p in self.circuit.populations}
        if opt is not None:
            opt.moments = dict(moments)
        try:
            new = {name: rule.apply(weights[name], self._pop_value, self.B, jnp, self.dtype,
                                    self._synapses.get(name), opt, self.batch_mean, t)
                   for name, rule in self._rules.items()}
            new = {name: {v: a.astype(self.dtype) for v, a in params.items()}
                   for name, params in new.items()}
            return {**weights, **new}, (dict(opt.moments) if opt is not None else {})
        finally:
            self.state, self._subcache, self.t = saved

    # --- state ------------------------------------------------------------------------
    def _write(self, pop, var, value):
        """Values given on the host (``set``, ``clamp``) stay host arrays until a
        program takes them (no eager device operations per clamp)."""
        if not isinstance(value, np.ndarray):
            return super()._write(pop, var, value)
        shape = (self.B, self.circuit.populations[pop].n)
        self.state[pop][var] = np.broadcast_to(value, shape).astype(self.dtype)
        self._subcache[pop].clear()

    def check_finite(self, where: str = "", limit: float = 1e6) -> None:
        """One compiled reduction on the device; the host copy (and the message)
        only when a weight is out of bounds."""
        arrays = [a for params in self.weights.values() for a in params.values() if a.size]
        if arrays and not bool(_within(arrays, limit)):
            super().check_finite(where, limit)

    def extra_state(self) -> dict:
        out = self.optimizer.state() if self.optimizer is not None else {}
        out["random/jax_loops"] = np.array([int(self._loops)], dtype=np.uint64)
        out["random/jax_key"] = np.asarray(jax.random.key_data(self._key))
        return out

    def load_extra_state(self, state: dict) -> None:
        if self.optimizer is not None:
            self.optimizer.load(state, self.xp, self.dtype)
        if "random/jax_loops" in state:
            self._loops = int(state["random/jax_loops"][0])
            self._key = jax.random.wrap_key_data(jnp.asarray(state["random/jax_key"]))

"""Lava target: every population a Lava Process, every projection a Lava ``Dense`` or ``Sparse``.

:class:`LavaTarget` runs a :class:`~neurosim.circuit.Circuit` on Lava's
``Loihi2SimCfg`` (lava-nc 0.10, imported only through
:func:`neurosim.hardware_targets.lava_compat.import_lava`), in floating point
(``precision='floating_pt'``, target ``"lava"``) or in Loihi-style fixed point
(``precision='fixed_pt'``, target ``"lava-fixed"``).

Mapping
-------
* **Population** -> one ``AbstractProcess`` subclass built for it, with a
  ``Var`` per stored variable (differential equations and parameters), an
  ``InPort`` per summed variable or spike projection it receives, an
  ``OutPort`` per quantity that projections read from it, and ``Var`` s
  ``_mode``, ``_active`` and ``_params`` (the numeric namespace values) the
  host sets between runs, ``_overflow`` (fixed point, ``overflow='warn'``)
  and ``_spike_buf`` (the spikes of the last steps, packed 48 to a float) it
  reads (internal names start with ``_``, which Brian2 names never do). Its
  ``PyLoihiProcessModel`` executes the code Brian2 generates for the
  equations, from the plan :func:`neurosim.lowering.lower` makes once (shared
  with :mod:`neurosim.hardware_targets.dense`): the state updater's abstract
  code (``StateUpdater.update_abstract_code``, the population's ``method``),
  the threshold, reset and ``init`` code, each line split by Brian2's
  ``parse_statement`` and rendered by Brian2's ``NumpyNodeRenderer``
  (:func:`neurosim.codegen.compile_expr`). The model classes are built per
  population (Lava matches ``Var`` s and ports to model attributes by name) and
  handed to the compiler through ``exception_proc_model_map``.
* **Projection**, summed variables ``x_post = w * f(a_pre) * g(b_post)`` ->
  a Lava ``Dense`` (weights ``W``, graded messages ``f(a)``; ``g(b)`` and
  constant factors are applied by the receiving process); ``x_pre = w *
  f(a_pre) * g(b_post)`` -> a ``Dense`` holding ``W.T`` from target to source;
  ``one_to_one`` and sparse connectivity (``connect={'p': ...}``, explicit
  ``i``/``j``, ...) -> a Lava ``Sparse`` holding the synapses of
  ``Circuit.synapses(name, seed)`` (several synapses between one pair share an
  entry holding their sum; the pattern keeps its zeros, see
  :func:`_fixed_pattern_sparse_model`). ``on_pre`` statements ``x_post += w``
  (``-=``, times constants) -> a ``Dense``/``Sparse`` fed by binary spikes; with
  a synaptic delay, Lava's ``DelayDense``/``DelaySparse``: a delay of ``D``
  steps (``Circuit.delays``, rounded as Brian2's spike queue rounds,
  ``int(d/dt + 0.5)``) is ``D*K`` Lava steps, so the spike arrives in the
  ``on_pre`` phase of step ``k + D``, as in Brian2; spikes in flight stay in
  Lava's buffers across calls (Lava's delay models, with their per-delay
  weight stack built once instead of at every Lava step:
  :class:`_CachedDelayStack`). :meth:`LavaTarget.unsupported` names what has
  no mapping.
* **PairSTDP** (``Projection(..., plasticity=PairSTDP(...))``) -> Lava's
  ``STDPLoihi`` rule on a ``LearningDense`` (floating point), the post
  population's spikes wired to its ``s_in_bap``; the constants go into the
  trace impulses so that the rule strings hold only exact literals, the trace
  time constants are counted in Lava steps, and a subclass of Lava's float
  ``LearningDense`` model holds the weights in ``[wmin, wmax]`` as the Brian2
  rule does. Identical to Brian2's event-driven STDP except when a pre and a
  post spike of one synapse fall in the same step (Brian2 applies the
  depression of the pre spike before the post spike's trace jump; Lava's
  engine pairs both).
* **ThreeFactorSTDP** -> a ``Loihi3FLearningRule`` on a ``LearningDense``
  (``dw = u0*t*y2``, ``dt = x0*y1 + y0*x1 - u0*t*y3``): the eligibility is
  Lava's synaptic tag, the pre trace is Lava's ``x1``, and the post population
  sends, per plastic projection, ``y1 = apost`` (its post trace, before its
  own spike), ``y2 = dt*eta*M`` and ``y3 = dt/tau_e`` once per neurosim step
  (zeros otherwise), scaled up by Lava's one-step decay of received y traces.
  That is Brian2's Euler step of the rule, the transmission using the weight
  just updated. Brian2 gates growth at ``wmax`` (a weight may overshoot by
  one step); here the weight is clipped to ``[wmin, wmax]``: identical while
  no weight reaches a bound. The modulator must be a post-synaptic variable.
  Plasticity rules run in floating point only; ``lava-fixed`` raises
  :class:`CircuitError`.
* **learning_rule** (trial-level plasticity of rate circuits): applied by the
  target between runs -- summed variables are recomputed by one Lava step in
  which nothing else is updated, then the host reads the population state
  and the ``Dense`` weights, applies the rule with numpy and writes the new
  weights back (Lava's learning engine runs per-step spike-trace rules, not
  end-of-trial rules on arbitrary state).

Time steps
----------
Lava's ``Dense`` delivers at step ``s+1`` what it received at step ``s`` (its
buffer keeps recurrent networks free of deadlock). To keep one neurosim step
an exact forward-Euler step -- identical to the Brian2 and dense targets --
a neurosim step is ``K`` Lava steps, with ``L`` the number of summed levels
(:func:`~neurosim.lowering.summed_order`):

* phase ``p < L``: write the level ``p-1`` summed variables just received
  (``p >= 1``), send what level ``p`` reads;
* phase ``L``: write the last level (the state Brian2's monitors see; ``run``
  with ``record`` pauses Lava here to read it);
* phase ``L+1``: state update (or ``init`` when settling), threshold, spikes
  sent;
* phase ``L+2`` (only with spike projections): ``on_pre`` increments received,
  then the reset of the neurons that spiked (Brian2's order: thresholds,
  synapses, resets).

All ports send and receive at every Lava step (zeros outside their phase), as
Lava's synchronous ``LoihiProtocol`` requires.

A circuit of parts not connected to each other gets 1-element "tie" ports
from each part to the next: Lava compiles only the processes connected to the
one it runs, and would otherwise leave the other parts frozen.

Recording and parameters
------------------------
``run(n, record=[(pop, var), (pop, var, indices), (pop, 'spikes')])``:
variables are read at every step (Lava pauses at phase ``L``); spikes come
from each population's spike buffer, read every ``spike_rows`` steps, as
``[step, neuron]`` rows like the Brian2 target's. Namespace values changed
between runs (``circuit.namespace['I0'] = 2.0``) reach the process models
through their ``_params`` Var before the next run, and the host's own code
(``learning_rule``, subexpressions); a value must keep its shape.

Fixed point (``fixed_pt``)
--------------------------
A documented, Loihi-style quantisation scheme (``F = frac_bits``, default 12):

* **state and messages**: every stored variable and every graded message is a
  signed 24-bit integer with ``F`` fractional bits (value ``k * 2**-F``,
  ``|k| < 2**23``; beyond, see below); a stored value is rounded to nearest whenever
  it is written, so each write adds at most ``2**-(F+1)``;
* **weights**: an 8-bit weight mantissa with one shared exponent ``e`` per
  ``Dense`` (``w ~ m * 2**e``), the layout of Lava's own ``fixed_pt`` ``Dense``
  model (``PyDenseModelBitAcc``), which does the integer accumulation
  ``sum(m * s)`` and the shift by ``weight_exp``. Single-sign matrices use
  ``0 <= |m| <= 255`` (error ``<= 2**(e-1)``); mixed-sign ones Lava's even
  mantissas in ``[-256, 254]`` (error ``<= 2**e``); ``e`` is the smallest that
  holds ``max|w|``. Graded input arrives with ``weight_exp = e`` (exact
  integer product, then Lava's arithmetic shift, which floors: ``< 2**-F``);
  binary spikes with ``weight_exp = e + F``;
* **weights on the host**: the target keeps float64 master weights
  (``get_weights``; ``learning_rule`` updates them), and every write sends their
  quantisation to Lava, with the exponent fixed when the ``Dense`` was built:
  the smallest that holds the declared ``weight_range={'proj': (lo, hi)}`` of
  the projection, else its initial weights (a learned projection whose initial
  weights are all zero must declare its range);
* **no silent saturation**: a stored value or graded message outside
  ``±(2**23 - 1) * 2**-F`` (checked, vectorised, in the process model at every
  write; NaN included), a value given by ``set`` or as an initial value, a
  weight that does not fit its exponent, and an array of values that would
  all be stored as 0 (below the resolution ``2**-F``) raise
  :class:`FixedPointOverflow` (a :class:`CircuitError`) when they happen,
  naming the variable, the value, the range and the fix (the largest
  ``frac_bits`` that holds it, a ``weight_range``). A process model's error
  stops Lava at that step and reaches the host through ``_wait``. With
  ``overflow='warn'`` the value saturates instead, and a
  :class:`FixedPointWarning` names it (workers count saturations in their
  ``_overflow`` Var; the host reads it at the end of ``run``/``settle``/
  ``learn``);
* **no silent rounding loss**: a change smaller than ``q/2`` (``q = 2**-F``) is
  lost at the write that rounds it, so a variable that changes slowly stalls
  (in ``tests/test_lava_fixed_point.py``, Izhikevich neurons in volts at
  ``F = 12``: ``v`` stops in the slow phase before the second spike, 1 spike
  instead of 8). The process model keeps, per neuron and stored variable, a
  first-order estimate ``e`` of the rounding error the value carries, updated
  at every write as ``e <- g * e + |r|``: ``r`` is the write's rounding residual
  (the value computed minus the value stored) and ``g`` how much of the old
  error the write keeps -- ``min(1, |d x_new / d x_old|)`` for the state update
  (the diagonal of its Jacobian, from the generated update evaluated once more
  per variable, with that variable raised by ``q`` and the same random draws:
  one more evaluation per state variable and step, affordable in an emulation),
  0 where a value is replaced (a summed input, ``init``, the reset of a neuron
  that spiked), 1 for an ``on_pre`` increment. A leaky variable (``g = 1 -
  dt/tau``) keeps ``e <= q/2 * tau/dt``, its honest precision; a stalled one
  (``g ~ 1``, every residual the whole lost change) grows ``e`` without bound.
  ``g`` is capped at 1 because where the dynamics amplify (a spike's upswing,
  chaos) they amplify any perturbation, on every target alike: what is
  estimated is the rounding the dynamics have not forgotten. An estimate
  beyond ``rounding_tolerance`` (default 0.01) times the variable's scale (its
  largest magnitude so far, over the population), and beyond 4 steps ``q`` (the
  resolution itself: a variable growing from 0 is not judged on its first
  small values), raises :class:`FixedPointOverflow` when it happens or, with
  ``overflow='warn'``, is counted and warned about (:class:`FixedPointWarning`),
  naming the variable, the estimate and the fix (more ``frac_bits``, up to the
  most that holds the population's values, or smaller units). So a leaky
  variable is flagged only where its precision, at worst ``q/2 * tau/dt``, is
  worse than the tolerance. A value the host sets starts with estimate 0. Calibration,
  the largest estimate over the scale in 2000 steps of those Izhikevich
  neurons: 2.8 at ``F = 12`` (stalled), 0.039 at 13, about halving with each
  bit, 0.0046 at 16, 0.0011 at 18 (the spikes of Brian2, step for step); every
  leaky and rate model of the Lava tests also runs clean at 0.002. The estimate bounds
  state errors, not spike times: a neuron near its threshold amplifies small
  differences into later spikes (up to 12 steps at ``F = 16`` there);
* **neuron update**: the generated update is evaluated on the dequantised
  state and the result rounded to the grid above (Loihi 2 runs custom neuron
  programs in fixed-point microcode; here the rounding of every stored value
  is what is emulated, not the bit-exact microcode).

Error of one summed input ``x = sum_j w_j s_j``, with ``q = 2**-F``::

    |x_fixed - x_float| <= sum_j |dw_j| |s_j| + sum_j |w_j| q/2 + q       (*)

(weight rounding, message rounding, the shift's floor; ``|dw_j| <= 2**e`` or
``2**(e-1)``). :meth:`LavaTarget.quantisation` reports ``e`` and the weight
error per ``Dense``; ``tests/test_lava_target.py`` checks (*) at every step
and a bound propagated with it through a leaky integration.

Runtime
-------
Lava compiles the network and starts its runtime (worker processes, started
with ``fork``) at the first run; until then ``get``/``set`` use the ``Var`` s'
initial values. :meth:`LavaTarget.close` stops it -- also on any error inside
a run, when the target is garbage collected, used as a context manager, or at
interpreter exit. Runs are waited for by polling, so that a process model
that raises stops the run at once with its traceback instead of hanging in
Lava's own wait (see ``_wait``).

Random functions ``rand()``/``randn()`` draw from one seeded numpy stream per
population (seeded by the target's seed), not Brian2's stream: random circuits
agree with the other targets in distribution, not spike by spike.

Not supported (:meth:`LavaTarget.unsupported`; the constructor's
:class:`CircuitError` names the construct and the registered targets that
accept the circuit): refractoriness on ``lava-fixed`` (on ``lava`` it is
Brian2's own: its ``not_refractory`` update and gated threshold), stochastic
equations (``xi``), Brian2 functions and ``TimedArray`` s in the namespace,
``on_post`` code and synaptic differential equations other than a plasticity
rule's, summed variables that are not a product of one synaptic variable and
one-sided factors, ``on_pre`` code other than ``x_post += w * constant``,
plasticity rules other than PairSTDP and ThreeFactorSTDP, plasticity rules on
``lava-fixed``, on projections that are not all-to-all or with delays, and
fixed-point delays beyond Loihi 2's 63 Lava steps.
"""
from __future__ import annotations

import atexit
import dataclasses
import math
import threading
import time
import warnings
import weakref

import numpy as np
import scipy.sparse
from brian2.equations.equations import SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.utils.stringtools import get_identifiers

from neurosim.circuit import Circuit, CircuitError
from neurosim.codegen import array_namespace, compile_expr, statements
from neurosim.lowering import lower, product, strip_suffix
from neurosim.plasticity import PairSTDP, ThreeFactorSTDP
from neurosim.target import (Capabilities, Target, check_steps, is_spikes, parse_record,
                             weight_values)

from .lava_compat import import_lava

__all__ = ["LavaTarget", "PRECISIONS", "OVERFLOW", "ROUNDING_TOLERANCE", "FixedPointOverflow",
           "FixedPointWarning"]

PRECISIONS = ("floating_pt", "fixed_pt")
OVERFLOW = ("raise", "warn")
_ROUNDING_FLOOR = 4  # grid steps: an estimate within them is the resolution itself
ROUNDING_TOLERANCE = 0.01  # default rounding_tolerance (module doc, Fixed point)
_STATE_BITS = 24
_STATE_MAX = 2 ** (_STATE_BITS - 1) - 1  # the largest state / message integer
_MODES = {"run": 0, "settle": 1, "hold": 2}
_STOP_TIMEOUT = 10.0  # seconds
_OPS = {"+=": np.add, "-=": np.subtract, "*=": np.multiply, "/=": np.divide}
_PACK = 48  # spikes of 48 neurons per float64 item of the spike buffer (exact below 2**53)
_MAX_DELAY = 63  # Lava steps a fixed-point (Loihi 2) delay holds: 6 bits
_MANTISSA = {"mixed": (-256, 254), "single": (-255, 255)}  # mixed-sign: even values


class FixedPointOverflow(CircuitError, OverflowError):
    """A state, message or weight of ``lava-fixed`` left the range of its integers,
    or a stored variable's rounding-error estimate passed ``rounding_tolerance``
    (``overflow='raise'``, the default). The message names the variable, the value
    or the estimate, the range or the tolerance, and the fix."""


class FixedPointWarning(RuntimeWarning):
    """The same with ``overflow='warn'``: the value was saturated (or kept its
    rounding error) and the run went on."""


def _state_overflow(what: str, value: float, frac_bits: int) -> str:
    """The message for a state or message value outside the 24-bit range."""
    top = _STATE_MAX / 2.0 ** frac_bits
    if not math.isfinite(value):
        return (f"{what} became {value} on lava-fixed (24-bit values, frac_bits={frac_bits}, "
                f"range ±{top:.6g}): the computation diverged; check the equations and "
                "parameters (the floating-point 'lava' target shows the same values).")
    fit = math.floor(math.log2(_STATE_MAX / abs(value)))
    fix = (f"use frac_bits={fit} or fewer (range ±{_STATE_MAX / 2.0 ** fit:.6g}) or express "
           "the variable in larger units" if fit >= 0 else
           "express the variable in larger units (no frac_bits holds it)")
    return (f"{what} reached {value:.6g}, outside the range of lava-fixed's 24-bit values "
            f"with frac_bits={frac_bits} (±{top:.6g}). Fix: {fix}; or pass overflow='warn' "
            "to saturate with a warning.")


def _rounding_error(what: str, err: float, scale: float, tolerance: float, frac_bits: int,
                    fit: int) -> str:
    """The message for a rounding-error estimate beyond ``rounding_tolerance``
    (module doc, Fixed point): the estimate halves with each fractional bit."""
    q = 2.0 ** -frac_bits
    more = frac_bits + max(1, math.ceil(math.log2(err / max(tolerance * scale, 1e-300))))
    if more <= fit:
        fix = (f"more fractional bits, frac_bits={more} to {fit} (each bit halves the "
               f"rounding; {fit} is the most that holds the population's values so far), "
               "or express the variable in smaller units")
    else:
        fix = ("express the variable in smaller units (no frac_bits both resolves it and "
               "holds the population's values so far), or run on the floating-point 'lava' "
               "target")
    return (f"{what} carries an estimated rounding error of {err:.3g} ({err / q:.3g} steps "
            f"of the resolution 2**-{frac_bits}), beyond rounding_tolerance={tolerance:g} "
            f"times its scale {scale:.3g} (its largest magnitude so far) on lava-fixed: "
            f"changes smaller than half a step ({q / 2:.3g}) are lost at every write, so a "
            f"slowly changing variable stalls. Fix: {fix}; or pass a larger "
            "rounding_tolerance to accept it, or overflow='warn' to run on with a warning.")


def _kill_workers(runtime):
    for actor in runtime._messaging_infrastructure.actors:
        if actor.is_alive():
            actor.kill()
    try:
        runtime._messaging_infrastructure.smm.shutdown()
    except Exception:
        pass


def _wait(runtime):
    """Wait for a non-blocking Lava run to finish, and fail fast if a worker fails.

    Written here because Lava's own wait, on an error reported by a process
    model, joins every worker -- and the healthy ones, blocked on their ports,
    never exit, so the interpreter hangs. This polls the runtime services'
    replies and the workers instead; on an error it kills the workers and
    raises with the worker's traceback -- or, for a :class:`CircuitError`
    raised by a process model (a fixed-point overflow), that error itself:
    Lava's worker wrapper sends the exception object to the host."""
    from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE, enum_equal
    ports = list(runtime.service_to_runtime)
    actors = runtime._messaging_infrastructure.actors
    replies = {}
    while len(replies) < len(ports):
        for i, port in enumerate(ports):
            if i not in replies and port.probe():
                replies[i] = port.recv()
        if len(replies) < len(ports):
            failed = [a for a in actors if a.exception or not a.is_alive()]
            if failed:
                replies[-1] = MGMT_RESPONSE.ERROR
                break
            time.sleep(2e-4)
    if all(enum_equal(r, MGMT_RESPONSE.DONE) for r in replies.values()):
        runtime._is_running = False
        return
    deadline = time.monotonic() + 2.0  # the failed worker's exception is on its way
    while not any(a.exception for a in actors) and time.monotonic() < deadline:
        time.sleep(1e-3)
    errors = [a.exception for a in actors if a.exception]
    details = "\n".join(tb for _exc, tb in errors)
    _kill_workers(runtime)
    runtime._is_running = runtime._is_started = False
    for exc, _tb in errors:
        if isinstance(exc, CircuitError):
            raise exc
    raise RuntimeError(f"A Lava process model failed; the run was stopped.\n{details}")


def _stop_quietly(proc):
    try:
        proc.stop()
    except Exception:
        pass


# --- code: Brian2 statements and expressions rendered to numpy ----------------------

def _expr(source: str):
    return compile_expr(source, source)[1]


def _compile_block(code, where):
    return [(var, op, _expr(expr)) for var, op, expr in statements(code, where)]


class _Scope(dict):
    """Evaluation namespace: stored values, temporaries, and subexpressions
    computed on first use."""

    def __init__(self, values, subexprs, g):
        super().__init__(values)
        self.subexprs, self.g = subexprs, g

    def __missing__(self, key):
        if key in self.subexprs:
            value = eval(self.subexprs[key], self.g, self)
            self[key] = value
            return value
        raise KeyError(key)

    def execute(self, block, stored, n, where=None):
        """Run statements; writes to ``stored`` names are returned (masked by
        ``where``); subexpressions are recomputed after every write."""
        written = {}
        for var, op, code in block:
            value = eval(code, self.g, self)
            if op != "=":
                value = _OPS[op](self[var], value)
            value = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
            if var in stored:
                if where is not None:
                    value = np.where(where, value, self[var])
                written[var] = value
                for key in self.subexprs:
                    self.pop(key, None)
            self[var] = value
        return written


# --- the population process and its models ------------------------------------------

class _Spec:
    """Everything a population's process model needs (plain data, sent to Lava's
    workers): code strings are compiled in the worker."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _pack(spiked):
    """(n,) bool -> (ceil(n / 48),) float: 48 spikes per item. Lava's ``Var.get``
    sends a Var item by item (about 16 us each), so the spike buffer is packed."""
    bits = np.zeros(-(-len(spiked) // _PACK) * _PACK)
    bits[:len(spiked)] = spiked
    return bits.reshape(-1, _PACK) @ (2.0 ** np.arange(_PACK))


def _unpack(items, n):
    """(..., m) float -> (..., n) bool, the inverse of :func:`_pack`."""
    ints = np.asarray(items).astype(np.int64)[..., None] >> np.arange(_PACK) & 1
    return ints.reshape(*ints.shape[:-2], -1)[..., :n].astype(bool)


def _numeric_namespace(namespace, names=None):
    """``[(name, shape, values)]`` of the numeric namespace entries (SI floats), the
    ones a process model reads from its ``_params`` Var; functions are left out."""
    from brian2.core.functions import Function
    out = []
    for key, value in namespace.items():
        if names is not None and key not in names:
            continue
        if isinstance(value, Function) or callable(value) and not hasattr(value, "dim"):
            continue
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue  # not a number: code that reads it fails Brian2's check
        out.append((key, arr.shape, arr.ravel()))
    return out


class _PopulationStep:
    """One Lava step of a population (shared by the floating and fixed models)."""

    def _setup(self):
        s = self.spec = self.proc_params["spec"]
        self.g = array_namespace(s.namespace, s.dt)
        self.g["N"] = s.n
        # Brian2's numpy rand()/randn() take the vectorisation index its code
        # generator adds; here one seeded stream per population (not Brian2's
        # stream: random circuits agree in distribution, not spike by spike)
        rng = self.rng = np.random.default_rng(s.seed)
        self.g["rand"] = lambda: rng.random(s.n)
        self.g["randn"] = lambda: rng.standard_normal(s.n)
        # fixed point: the running rounding-error estimate of every stored value,
        # the largest magnitude of each variable so far, and the integers last
        # written (a value that differs was set by the host: exact)
        self.err = {v: np.zeros(s.n) for v in s.stored}
        self.scale = dict.fromkeys(s.stored, 0.0)
        self.last = {}
        self.gain = {}  # var -> factor on its error estimate for this Lava step's write
        self.subexprs = {k: _expr(v) for k, v in s.subexprs.items()}
        self.update = _compile_block(s.update, s.name)
        self.init = _compile_block(s.init, s.name)
        self.reset = _compile_block(s.reset, s.name)
        self.threshold = _expr(s.threshold) if s.threshold else None
        self.outs = [(port, level, _expr(expr)) for port, level, expr in s.outputs]
        self.ins = [(port, level, var, op, _expr(factor)) for port, level, var, op, factor
                    in s.inputs]
        self.spiked = np.zeros(s.n, dtype=bool)
        self.traces = [np.zeros(s.n) for _ in s.traces]
        self.trace_y2 = [_expr(y2) for _k, _decay, _jump, y2, _y3 in s.traces]
        self.params_seen = None

    def _load_params(self):
        """Numeric namespace values from the ``_params`` Var, which the host sets
        before a run when the circuit's namespace has changed."""
        self.params_seen = np.array(self._params, dtype=float)
        for name, start, shape in self.spec.params:
            values = self.params_seen[start:start + math.prod(shape)]
            self.g[name] = float(values[0]) if shape == () else values.reshape(shape)

    def _to_int(self, x, key):
        """Fixed point: round ``x`` to the grid of 24-bit integers; a value outside
        raises (or, with overflow='warn', saturates and is counted in ``_overflow``)."""
        x = np.asarray(x, dtype=float)
        k = np.round(x * 2.0 ** self.spec.frac_bits)
        bad = ~(np.abs(k) <= _STATE_MAX)  # NaN too
        if bad.any():
            self._saturated(key, x[bad])
            k = np.clip(np.where(np.isnan(k), 0.0, k), -_STATE_MAX, _STATE_MAX)
        return k.astype(np.int64)

    def _saturated(self, key, values):
        s = self.spec
        index, what = s.checked[key]
        odd = values[~np.isfinite(values)]
        worst = float(odd[0] if odd.size else values[np.argmax(np.abs(values))])
        if s.overflow == "raise":
            step = (self.time_step - 1) // s.K
            raise FixedPointOverflow(_state_overflow(what, worst, s.frac_bits) +
                                     f" (Lava stopped at step {step} of the target.)")
        table = self._overflow  # [saturations, worst value] per checked value
        table[2 * index] += values.size
        old = table[2 * index + 1]
        if math.isnan(worst) or not math.isnan(old) and abs(worst) > abs(old):
            table[2 * index + 1] = worst

    def _gains(self, state, written, draws):
        """``min(1, |d x_new / d x_old|)`` of each variable the update wrote: the
        update evaluated once more per variable, on ``state`` with that variable
        raised by one step ``q``, with the same random draws (``draws``: the
        generator's state before the update)."""
        s = self.spec
        q = 2.0 ** -s.frac_bits
        after = self.rng.bit_generator.state
        gains = {}
        for var, value in written.items():
            self.rng.bit_generator.state = draws
            scope = _Scope(dict(state, **{var: state[var] + q}), self.subexprs, self.g)
            scope["i"] = np.arange(s.n)
            raised = scope.execute(self.update, s.stored, s.n)[var]
            gains[var] = np.minimum(1.0, np.nan_to_num(np.abs(raised - value) / q, nan=1.0))
        self.rng.bit_generator.state = after
        return gains

    def _store(self, old, new):
        """Fixed point: store the values written in this Lava step on the grid and
        update their rounding-error estimates ``e <- gain * e + |residual|`` (module
        doc, Fixed point); an estimate beyond the tolerance raises or is counted."""
        s = self.spec
        scale = 2.0 ** s.frac_bits
        for var, x in old.items():
            self.scale[var] = max(self.scale[var], float(np.max(np.abs(x))) / scale)
        for var, value in new.items():
            k = self._to_int(value, var)
            err = self.err[var]
            if var in self.last:
                err[old[var] != self.last[var]] = 0.0
            held = np.abs(value) * scale <= _STATE_MAX  # saturation is an overflow
            err[:] = self.gain.get(var, 1.0) * err + np.where(held, np.abs(value - k / scale),
                                                              0.0)
            self.scale[var] = max(self.scale[var],
                                  float(np.max(np.where(held, np.abs(value), 0.0))))
            self.last[var] = k
            setattr(self, var, k)
            over = err > max(s.tolerance * self.scale[var], _ROUNDING_FLOOR / scale)
            if over.any():
                self._stalled(var, float(err.max()), int(over.sum()))

    def _stalled(self, var, err, count):
        s = self.spec
        fit = min([_STATE_BITS - 1] + [math.floor(math.log2(_STATE_MAX / x))
                                       for x in self.scale.values() if x > 0])
        index, what = s.checked[var]
        if s.overflow == "raise":
            step = (self.time_step - 1) // s.K
            raise FixedPointOverflow(
                _rounding_error(what, err, self.scale[var], s.tolerance, s.frac_bits, fit) +
                f" (Lava stopped at step {step} of the target.)")
        # per variable [estimates beyond, the first (what 'raise' reports: its fix
        # holds for the stall that follows too), its scale, fit, the largest since]
        row = self._rounding[5 * index:5 * index + 5]
        if not row[0]:
            row[1:4] = err, self.scale[var], fit
        row[0] += count
        row[4] = max(row[4], err)

    def _ties(self):
        """The ports that tie the circuit's disconnected parts into one Lava graph
        (see ``LavaTarget._tie``): zeros sent, received and dropped."""
        for port, kind in self.spec.ports:
            if kind == "tie_out":
                getattr(self, port).send(np.zeros(1, dtype=int))
        for port, kind in self.spec.ports:
            if kind == "tie_in":
                getattr(self, port).recv()

    def _step(self, state: dict, received: dict) -> tuple[dict, dict]:
        """New stored values and the messages to send, in floating point."""
        s = self.spec
        if s.params and not np.array_equal(self._params, self.params_seen):
            self._load_params()
        phase = (self.time_step - 1) % s.K
        mode, active = int(self._mode[0]), bool(self._active[0])
        self.g["t"] = ((self.time_step - 1) // s.K) * s.dt
        scope = _Scope(state, self.subexprs, self.g)
        scope["i"] = np.arange(s.n)
        new = {}
        trace_out = {}

        def write(values):
            new.update(values)
            scope.update(values)
            for key in self.subexprs:
                scope.pop(key, None)

        self.gain = {}  # error estimates: 1 (kept) unless a write below says otherwise

        def reset():  # a reset replaces the values (and their errors) of the spiked
            values = scope.execute(self.reset, s.stored, s.n, where=self.spiked)
            self.gain.update({v: np.where(self.spiked, 0.0, self.gain.get(v, 1.0))
                              for v in values})
            write(values)

        if 1 <= phase <= s.L:  # summed variables of level phase-1 arrive
            values = {var: received[port] * eval(factor, self.g, scope)
                      for port, level, var, op, factor in self.ins if level == phase - 1}
            self.gain.update(dict.fromkeys(values, 0.0))
            write(values)
        elif phase == s.L + 1:
            if mode == 0 and active:
                draws = self.rng.bit_generator.state
                values = scope.execute(self.update, s.stored, s.n)
                if s.tolerance is not None:
                    self.gain.update(self._gains(state, values, draws))
                write(values)
            elif mode == 1 and active and self.init:
                values = scope.execute(self.init, s.stored, s.n)
                self.gain.update(dict.fromkeys(values, 0.0))
                write(values)
            self.spiked = (np.broadcast_to(eval(self.threshold, self.g, scope), (s.n,)).astype(bool)
                           if self.threshold is not None and mode == 0 else
                           np.zeros(s.n, dtype=bool))
            if s.spike_rows and mode == 0:  # read by the host for run(record=spikes)
                self._spike_buf[((self.time_step - 1) // s.K) % s.spike_rows] = \
                    _pack(self.spiked)
            if s.refractory and self.spiked.any():
                write({"not_refractory": np.where(self.spiked, 0.0, scope["not_refractory"]),
                       "lastspike": np.where(self.spiked, self.g["t"], scope["lastspike"])})
            if not s.spike_phase and self.spiked.any():
                reset()
            if mode == 0:
                for j, (k, decay, jump, _y2, y3) in enumerate(s.traces):
                    self.traces[j] = self.traces[j] * decay  # apost now, before this spike
                    gain = math.exp(1 / LavaTarget._Y_TAU)
                    trace_out[f"_y1_{k}"] = gain * self.traces[j]
                    trace_out[f"_y3_{k}"] = np.full(s.n, gain * y3)
                    self.traces[j] = self.traces[j] + jump * self.spiked
        if phase == s.L and mode == 0:
            # dw = dt*eta*M*E one Lava step before the spikes: Brian2 transmits
            # with the weight its clock-driven update has just changed
            for j, (k, *_rest) in enumerate(s.traces):
                trace_out[f"_y2_{k}"] = math.exp(1 / LavaTarget._Y_TAU) * np.broadcast_to(
                    eval(self.trace_y2[j], self.g, scope), (s.n,)).astype(float)
        if phase == s.L + 2:  # on_pre increments, then resets (Brian2's order)
            for port, level, var, op, factor in self.ins:
                if level == -1:
                    inc = received[port] * eval(factor, self.g, scope)
                    value = scope[var] + (inc if op == "+=" else -inc)
                    if var in s.unless_refractory:  # Brian2's conditional write
                        value = np.where(scope["not_refractory"] > 0.5, value, scope[var])
                    write({var: value})
            if self.spiked.any():
                reset()
        out = {}
        for port, level, expr in self.outs:
            out[port] = (np.broadcast_to(np.asarray(eval(expr, self.g, scope), dtype=float),
                                         (s.n,)) if level == phase else np.zeros(s.n))
        if s.spike_port:
            out[s.spike_port] = (self.spiked if phase == s.L + 1
                                 else np.zeros(s.n, dtype=bool))
        for k, *_ in s.traces:
            for i in (1, 2, 3):
                out[f"_y{i}_{k}"] = trace_out.get(f"_y{i}_{k}", np.zeros(s.n))
        return new, out


def _make_models(proc_cls, spec):
    """The floating_pt and fixed_pt PyLoihiProcessModels of one population."""
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    def build(tag_name, dtype, run_spk):
        attrs = {"run_spk": run_spk,
                 "__init__": lambda self, proc_params: (
                     PyLoihiProcessModel.__init__(self, proc_params), self._setup())[0]}
        for var in spec.stored:
            attrs[var] = LavaPyType(np.ndarray, dtype, precision=_STATE_BITS)
        attrs["_mode"] = LavaPyType(np.ndarray, int)
        attrs["_active"] = LavaPyType(np.ndarray, int)
        for var in ("_params", "_overflow", "_rounding") + (("_spike_buf",) if spec.spike_rows
                                                            else ()):
            attrs[var] = LavaPyType(np.ndarray, float)
        for port, kind in spec.ports:
            if kind == "in":
                attrs[port] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=_STATE_BITS)
            elif kind == "out":
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=_STATE_BITS)
            elif kind == "trace":
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, float)
            elif kind == "tie_in":
                attrs[port] = LavaPyType(PyInPort.VEC_DENSE, int)
            elif kind == "tie_out":
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, int)
            else:
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
        cls = type(f"{spec.name}_{tag_name}", (_PopulationStep, PyLoihiProcessModel), attrs)
        return implements(proc=proc_cls, protocol=LoihiProtocol)(requires(CPU)(tag(tag_name)(cls)))

    def run_float(self):
        self._ties()
        received = {p: getattr(self, p).recv() for p, k in self.spec.ports if k == "in"}
        state = {v: getattr(self, v) for v in self.spec.stored}
        new, out = self._step(state, received)
        for var, value in new.items():
            setattr(self, var, value)
        for port, value in out.items():
            getattr(self, port).send(value)

    q = 2.0 ** spec.frac_bits

    def run_fixed(self):
        self._ties()
        received = {p: getattr(self, p).recv() / q for p, k in self.spec.ports if k == "in"}
        old = {v: getattr(self, v) for v in self.spec.stored}
        new, out = self._step({v: x / q for v, x in old.items()}, received)
        self._store(old, new)
        for port, value in out.items():
            getattr(self, port).send(value if value.dtype == bool else
                                     self._to_int(value, port))

    return {"floating_pt": build("floating_pt", float, run_float),
            "fixed_pt": build("fixed_pt", np.int64, run_fixed)}


def _clipped_learning_dense_model():
    """Lava's floating-point LearningDense model, with the weights also held in
    [wmin, wmax] after every learning epoch (PairSTDP clips there; Lava's
    engine only saturates at 0 for excitatory weights)."""
    from lava.proc.dense.models import PyLearningDenseModelFloat

    class ClippedLearningDenseModel(PyLearningDenseModelFloat):
        def _saturate_synaptic_variable(self, name, values):
            values = super()._saturate_synaptic_variable(name, values)
            if name == "weights":
                values = np.clip(values, self.proc_params["wmin"], self.proc_params["wmax"])
            return values
    return ClippedLearningDenseModel


class _CachedDelayStack:
    """Mixin for Lava's DelayDense / DelaySparse models: Lava rebuilds the stack of
    per-delay weight matrices (``get_delay_wgts_mat``) at every Lava step, which
    costs (max delay + 1) times the synapses per step; here it is built once, as
    a CSC matrix, and again after the weights are set. Binary spikes add the
    columns of the neurons that spiked (Lava's ``Dense`` does the same)."""

    _stack = None

    def calc_act(self, s_in):
        if self._stack is None:
            self._stack = scipy.sparse.csc_matrix(self.get_delay_wgts_mat(
                self.weights, self.delays, self.a_buff.shape[-1] - 1))
        if self.num_message_bits.item() > 0:
            acc = self._stack @ s_in
        else:
            acc = np.asarray(self._stack[:, np.flatnonzero(s_in)].sum(axis=1)).ravel()
        return acc.reshape(self.a_buff.shape[-1], self.weights.shape[0]).T.astype(
            self.a_buff.dtype)

    def _set_var(self):
        super()._set_var()
        self._stack = None


def _delay_dense_model(precision):
    """Lava's DelayDense model with the cached delay stack."""
    from lava.proc.dense import models
    base = (models.PyDelayDenseModelFloat if precision == "floating_pt"
            else models.PyDelayDenseModelBitAcc)
    return type("CachedDelayDenseModel", (_CachedDelayStack, base), {})


def _fixed_pattern_sparse_model(precision, delayed=False):
    """Lava's Sparse model whose weights keep the pattern they were built with,
    zeros included. Written here because Lava's own ``_set_var`` rebuilds the
    matrix from the non-zero entries of the old one (``find`` drops explicit
    zeros), so setting the weights of a Sparse holding a zero (a weight, or a
    mantissa that rounds to 0) fails. In fixed point, the mantissas arrive
    clipped and truncated already (``LavaTarget._quantise``): Lava's first-step
    clipping, which would rebuild the matrix, is skipped (and the delay bound it
    checks is checked by ``LavaTarget._lava_delays``)."""
    from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE
    from lava.proc.sparse import models

    base = getattr(models, f"Py{'Delay' if delayed else ''}SparseModel"
                           f"{'Float' if precision == 'floating_pt' else 'BitAcc'}")

    class FixedPatternSparseModel(*((_CachedDelayStack,) if delayed else ()), base):
        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.weights_set = True

        def _set_var(self):
            port = self.service_to_process
            name = self.var_id_to_var_map[int(port.recv()[0].item())]
            var = getattr(self, name)
            n = int(port.recv()[0].item())
            values = np.array([port.recv()[0] for _ in range(n)], dtype=float).ravel()
            if scipy.sparse.issparse(var):
                var = var.copy()
                var.data[:] = values.astype(var.dtype)
            else:
                var = np.array(var)
                var.flat[:n] = values
            setattr(self, name, var)
            self._stack = None
            self.process_to_service.send(MGMT_RESPONSE.SET_COMPLETE)
    return FixedPatternSparseModel


def _make_process(spec):
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var

    def __init__(self, values):
        AbstractProcess.__init__(self, name=spec.name, spec=spec)
        for var in spec.stored:
            setattr(self, var, Var(shape=(spec.n,), init=values[var]))
        self._mode = Var(shape=(1,), init=0)  # Brian2 names never start with _
        self._active = Var(shape=(1,), init=1)
        # numeric namespace values (the host sets them when they change), and
        # per checked value [saturations, worst value] with overflow='warn'
        self._params = Var(shape=(max(1, len(values["_params"])),), init=values["_params"])
        n_checked = max(1, len(spec.checked))
        self._overflow = Var(shape=(2 * n_checked,), init=np.zeros(2 * n_checked))
        # per stored variable [rounding-error estimates beyond the tolerance, the
        # first such estimate, the variable's scale and the frac_bits that held the
        # population's values then, the largest estimate]
        n_stored = max(1, len(spec.stored))
        self._rounding = Var(shape=(5 * n_stored,), init=np.zeros(5 * n_stored))
        if spec.spike_rows:  # packed spikes of the last spike_rows neurosim steps
            shape = (spec.spike_rows, -(-spec.n // _PACK))
            self._spike_buf = Var(shape=shape, init=np.zeros(shape))
        for port, kind in spec.ports:
            setattr(self, port, (InPort if kind in ("in", "tie_in") else OutPort)(
                shape=(1,) if kind.startswith("tie") else (spec.n,)))

    return type(f"Population_{spec.name}", (AbstractProcess,), {"__init__": __init__})


# --- projections: which Dense carries what ------------------------------------------

def _dense_parts(factors, expr: str, where: str) -> dict:
    """What a Lava Dense carries for a product of the plan (``neurosim.lowering``):
    ``{'syn': one synaptic variable or None, 'pre', 'post', 'scalar'}`` factor
    strings ('1' where there are none), or CircuitError."""
    if factors is None:
        raise CircuitError(
            f"{where} = {expr!r} (a Lava Dense computes W @ s, so the expression must "
            "be one synaptic variable times factors that each depend on one side, like "
            "'x_post = w * f(a_pre) * g(b_post)': split it into several summed "
            "variables)")
    syn = factors["syn"]
    if len(syn) > 1 or syn and not syn[0].isidentifier():
        raise CircuitError(
            f"{where} = {expr!r}, whose synaptic factor is {product(factors, 'syn')!r} "
            "(Lava maps one synaptic variable onto the weights of a Dense: declare the "
            "product as one weight variable)")
    return {"syn": syn[0] if syn else None,
            **{k: product(factors, k) or "1" for k in ("pre", "post", "scalar")}}


class _Link:
    """One Lava connection (Dense or Sparse): which projection variable it holds,
    in which direction, and (fixed point) its weight format."""

    def __init__(self, proj, syn, transpose, binary, rule=None):
        self.proj, self.syn, self.transpose, self.binary = proj, syn, transpose, binary
        self.rule = rule  # a PairSTDP or ThreeFactorSTDP carried by a LearningDense
        self.trace_k = None  # index of the y1/y2/y3 ports feeding a 3-factor rule
        self.dense = None
        self.pattern = None  # (columns, indptr, synapse -> entry, shape) of a Sparse
        self.delays = None  # delays in neurosim steps per synapse (spike links)
        self.exp, self.sign = 0, "single"
        self.weight_error = 0.0


def _rule_variables(proj) -> set:
    """The synaptic variables a plasticity rule declares (they run in Lava's
    learning engine, not as Brian2 code); ``on_pre``/``on_post`` are the
    projection's own code (the rule's is merged only into ``pre_code``)."""
    if proj.plasticity is None:
        return set()
    from brian2 import Equations
    return set(Equations(proj.plasticity.brian2(proj.name).model).names)


def _identifiers(circuit) -> set:
    """Every identifier the circuit's code refers to."""
    names = set()
    for pop in circuit.populations.values():
        names |= pop.equations.identifiers
        for code in (pop.threshold, pop.reset, pop.init):
            names |= get_identifiers(code or "")
    for proj in circuit.projections.values():
        names |= proj.equations.identifiers
        for code in (proj.pre_code, proj.post_code, proj.learning_rule):
            names |= get_identifiers(code or "")
    return names


def _refuse(circuit: Circuit, fixed: bool) -> None:
    """Raise :class:`CircuitError` naming the first construct the Lava target has
    no mapping for (the checks of :meth:`LavaTarget.unsupported`; nothing is built)."""
    from brian2 import Quantity
    from brian2.core.functions import Function

    plan = lower(circuit, update=False)
    summed = {}
    for s in plan.summed:
        summed.setdefault(s.projection, []).append(s)
    used = _identifiers(circuit)
    for key, value in circuit.namespace.items():
        if key in used and (isinstance(value, Function) or
                            callable(value) and not isinstance(value, Quantity)):
            raise CircuitError(
                f"the namespace entry {key!r} ({type(value).__name__}): Brian2 functions "
                "and TimedArrays have no mapping on Lava, whose process models read "
                "numbers and arrays only (give the values through a variable that is set "
                "between runs instead)")
    for pop in circuit.populations.values():
        if pop.refractory is not None and fixed:
            raise CircuitError(f"Population {pop.name!r}: refractoriness in fixed point (spike "
                               "times do not fit the 24-bit states)")
        if pop.equations.stochastic_variables:
            raise CircuitError(f"Population {pop.name!r}: stochastic equations (xi)")
    for proj in circuit.projections.values():
        rule = proj.plasticity
        if rule is not None:
            mapping = _rule_mapping(rule)
            if mapping is None or fixed or proj.kind != "all":
                raise CircuitError(
                    f"Projection {proj.name!r}: {type(rule).__name__}"
                    f"{' with connect=' + repr(proj.connect) if proj.kind != 'all' else ''}"
                    f"{' in fixed point' if fixed else ''} (PairSTDP and ThreeFactorSTDP on "
                    "all-to-all projections map onto Lava's learning engine, STDPLoihi and a "
                    "Loihi 3-factor rule, in floating point only)")
            mapping.refuse(proj, rule)
            if float(rule.wmin) != 0:
                raise CircuitError(f"Projection {proj.name!r}: STDP with wmin={rule.wmin} "
                                   "(Lava's STDP weights are excitatory: wmin = 0)")
        if proj.delay is not None and rule is not None:
            raise CircuitError(f"Projection {proj.name!r}: a synaptic delay with a plasticity "
                               "rule (Lava's LearningDense has no delays)")
        if proj.delay is not None and fixed and proj.on_pre:
            lava_steps = _lava_steps_per_step(plan) * int(np.max(
                _delay_steps(circuit, proj, 0), initial=0))
            if lava_steps > _MAX_DELAY:
                raise CircuitError(
                    f"Projection {proj.name!r}: a synaptic delay of {lava_steps} Lava steps "
                    f"in fixed point (Loihi 2's delays hold at most {_MAX_DELAY} steps; a "
                    "neurosim step is several Lava steps)")
        for what, bad in (("on_post code", proj.on_post),
                          ("synaptic differential equations",
                           sorted(set(proj.equations.diff_eq_names) - _rule_variables(proj)))):
            if bad:
                raise CircuitError(
                    f"Projection {proj.name!r}: {what} ({bad!r}; a Lava Dense holds static "
                    "weights, and learning maps onto Lava's learning engine only as a "
                    "plasticity rule)")
        subs = [n for n, eq in proj.equations.items()
                if eq.type == SUBEXPRESSION and "summed" not in eq.flags]
        if subs:
            raise CircuitError(f"Projection {proj.name!r}: synaptic subexpressions {subs} "
                               "(write them into the summed variable)")
        for s in summed.get(proj.name, ()):
            _dense_parts(s.factors, s.expr, f"Projection {proj.name!r}, summed variable "
                         f"{s.variable}")
        for stmt in plan.projections[proj.name].on_pre:
            _spike_statement(proj, stmt)


def _delay_steps(circuit, proj, seed) -> np.ndarray | None:
    """Per-synapse delays in time steps, rounded as Brian2's spike queue rounds
    them (``int(delay / dt + 0.5)``), or None without a delay."""
    delays = circuit.delays(proj.name, seed)
    if delays is None:
        return None
    return np.floor(delays / float(circuit.dt) + 0.5).astype(np.int64)


def _lava_steps_per_step(plan) -> int:
    """``K`` (module doc: Time steps) of a lowered circuit: L + 2 + spiking."""
    spiking = any(p.plasticity is not None or p.on_pre for p in plan.projections.values())
    return plan.levels + 2 + spiking


def _spike_statement(proj, stmt) -> tuple[str, dict]:
    """The target variable and the factors of an ``on_pre`` statement ``x_post +=
    w * constants`` (a :class:`neurosim.lowering.Statement`, where ``v += w`` is
    already ``v_post += w`` as in Brian2), or CircuitError."""
    where = f"Projection {proj.name!r}: the on_pre statement '{stmt.line}'"
    if not (stmt.var.endswith("_post") and stmt.op in ("+=", "-=")):
        raise CircuitError(f"{where} (Lava maps spike transmission 'x_post += w' onto a "
                           "Dense; use a plasticity rule for learning)")
    parts = _dense_parts(stmt.factors, stmt.expr, where)
    if parts["pre"] != "1" or parts["post"] != "1":
        raise CircuitError(f"{where}, whose increment reads neuron variables (a spike "
                           "delivers a weight times constants through a Dense)")
    rule = proj.plasticity
    if rule is not None and parts["syn"] != rule.weight:
        raise CircuitError(f"{where} (with {type(rule).__name__} the spike must deliver "
                           f"the learned weight {rule.weight!r})")
    return stmt.var, parts


# --- plasticity rules: a registry keyed by rule class --------------------------------

class _RuleMapping:
    """How one plasticity rule class maps onto Lava's learning engine (a
    ``LearningDense`` with one of Lava's learning-rule objects)."""

    def refuse(self, proj, rule) -> None:
        """Raise CircuitError for a parameter of ``rule`` that has no mapping."""

    def learning_rule(self, rule, dt: float, K: int):
        raise NotImplementedError

    def trace_spec(self, proj, rule, k: int, dt: float):
        """What the post population sends to the rule's LearningDense each
        neurosim step, or None when it sends nothing but its spikes."""
        return None


class _PairSTDPMapping(_RuleMapping):
    def learning_rule(self, rule, dt, K):
        """Brian2's rule: pre spike ``w += apost``, post spike ``w += apre``, with
        traces ``apre``/``apost`` decaying as exp(-t/taupre/post) and jumping by
        ``Apre``/``Apost`` at spikes. STDPLoihi: ``dw = lr*A_minus*x0*y1 +
        lr*A_plus*y0*x1`` with traces x1/y1 decaying as exp(-1/tau) per Lava step
        and jumping by their impulses. So lr = A_plus = 1, A_minus = -1 (exact
        literals: STDPLoihi rounds its constants to powers of two), impulses
        ``Apre`` and ``-Apost``, taus in Lava steps (tau/dt * K), one learning
        epoch per Lava step."""
        from lava.proc.learning_rules.stdp_learning_rule import STDPLoihi
        return STDPLoihi(learning_rate=1, A_plus=1, A_minus=-1,
                         tau_plus=float(rule.taupre) / dt * K,
                         tau_minus=float(rule.taupost) / dt * K,
                         x1_impulse=float(rule.Apre), y1_impulse=-float(rule.Apost),
                         t_epoch=1)


class _ThreeFactorMapping(_RuleMapping):
    def refuse(self, proj, rule):
        if not rule.modulator.endswith("_post"):
            raise CircuitError(
                f"Projection {proj.name!r}: a ThreeFactorSTDP with the pre-synaptic "
                f"modulator {rule.modulator!r} (Loihi's 3-factor rules read the "
                "modulator y2 from the post-synaptic neuron: move it to the target "
                "population)")

    def learning_rule(self, rule, dt, K):
        """Eligibility = Lava's tag. Once per neurosim step (phase L+1) the post
        population sends y1 = apost (before its own spike), y2 = dt*eta*M and
        y3 = dt/tau_e, zeros at other Lava steps. All appliers read the old tag:
        w += dt*eta*M*E (Brian2's Euler step), E += -E*dt/tau_e + x0*apost +
        y0*apre (the decay and Brian2's on_pre/on_post)."""
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
        learning = Loihi3FLearningRule(
            dw="u0 * t * y2", dt="x0 * y1 + y0 * x1 - u0 * t * y3",
            x1_impulse=float(rule.Apre), x1_tau=float(rule.taupre) / dt * K, t_epoch=1)
        y_tau = LavaTarget._Y_TAU
        if {learning.y1_tau, learning.y2_tau, learning.y3_tau} != {y_tau}:
            raise CircuitError(  # a Lava other than 0.10: the y-trace gain is wrong
                f"This Lava's 3-factor rules decay y traces with taus "
                f"{learning.y1_tau, learning.y2_tau, learning.y3_tau}, not {y_tau}; "
                "update LavaTarget._Y_TAU.")
        return learning

    def trace_spec(self, proj, rule, k, dt):
        """The post trace ``apost`` (decay factor, jump ``Apost``), ``dt * eta * M``
        (M read by the post population) and ``dt / tau_e``."""
        eta = rule.names(proj.name)["eta"]
        return (k, float(np.exp(-dt / float(rule.taupost))), float(rule.Apost),
                f"{dt!r} * {eta} * {strip_suffix(rule.modulator, '_post')}",
                dt / float(rule.tau_e))


#: rule class -> its mapping; a subclass maps as its nearest registered base
_RULES = {PairSTDP: _PairSTDPMapping(), ThreeFactorSTDP: _ThreeFactorMapping()}


def _rule_mapping(rule) -> _RuleMapping | None:
    return next((_RULES[c] for c in type(rule).__mro__ if c in _RULES), None)


class LavaTarget(Target):
    """Run a circuit on Lava (``Loihi2SimCfg``), floating or fixed point.

    ``precision`` is ``'floating_pt'`` or ``'fixed_pt'``; ``frac_bits`` the
    fractional bits of fixed-point states and messages (see the module doc).
    Fixed point only: ``overflow='raise'`` (default) stops a run with
    :class:`FixedPointOverflow` the moment a state, message or weight leaves the
    range of its integers; ``overflow='warn'`` saturates it and emits a
    :class:`FixedPointWarning` at the end of the call. ``weight_range={'proj':
    (lo, hi)}`` declares the range a projection's weights will take (a learning
    rule's reach), from which the weight exponent and sign mode of its Lava
    ``Dense`` are chosen instead of from the initial weights.
    ``rounding_tolerance`` (fixed point, default ``ROUNDING_TOLERANCE`` = 0.01)
    is the rounding error a stored variable may carry, as a fraction of its
    largest magnitude (module doc: no silent rounding loss; ``float('inf')``
    turns the check off); beyond it, the same ``overflow`` handling applies.
    Call :meth:`close` (or use ``with``) to stop Lava's runtime.
    """

    name = "lava"
    capabilities = Capabilities(spikes=True, plasticity=True, random=True)

    @classmethod
    def capabilities_of(cls, precision="floating_pt", **options):
        """Fixed point computes in integers and has no plasticity mapping."""
        fixed = precision == "fixed_pt"
        return dataclasses.replace(cls.capabilities, fixed_point=fixed, plasticity=not fixed)
    _open: "weakref.WeakSet[LavaTarget]" = weakref.WeakSet()
    _runtime_proc = None  # also on an object whose construction failed: close() is safe

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 precision: str = "floating_pt", frac_bits: int = 12,
                 overflow: str = "raise", weight_range: dict | None = None,
                 rounding_tolerance: float = ROUNDING_TOLERANCE, **options):
        if precision not in PRECISIONS:
            raise CircuitError(f"Unknown Lava precision {precision!r}; use one of {PRECISIONS}.")
        if overflow not in OVERFLOW:
            raise CircuitError(f"overflow={overflow!r}: use one of {OVERFLOW}.")
        super().__init__(circuit, seed, weights, precision=precision, **options)
        self.precision, self.frac_bits = precision, int(frac_bits)
        self.capabilities = type(self).capabilities_of(precision=precision)
        if not 0 <= self.frac_bits < _STATE_BITS:
            raise CircuitError(f"frac_bits={frac_bits!r}: give 0 to {_STATE_BITS - 1}.")
        self.fixed = precision == "fixed_pt"
        self.overflow = overflow
        try:
            self.rounding_tolerance = float(rounding_tolerance)
            ok = self.rounding_tolerance > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise CircuitError(f"rounding_tolerance={rounding_tolerance!r}: give a number > 0, "
                               "the rounding error a fixed-point variable may carry as a "
                               "fraction of its largest magnitude (float('inf') turns the "
                               "check off).")
        self.weight_range = {}
        for name, bounds in (weight_range or {}).items():
            circuit.projection(name)  # raises with the list of names
            try:
                lo, hi = (float(b) for b in bounds)
                ok = lo <= hi
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise CircuitError(f"weight_range[{name!r}] = {bounds!r}: give (lo, hi) "
                                   "with lo <= hi.")
            self.weight_range[name] = (lo, hi)
        self._steps = 0  # Lava time steps run so far
        self._overflow_seen = {}  # population -> saturations already warned about
        self._rounding_seen = {}  # population -> rounding estimates already warned about
        import_lava()  # the Python 3.11 fix, before any lava.* import below
        self._plan()
        self._build(weights or circuit.initial_weights(seed))
        self._start()

    @classmethod
    def unsupported(cls, circuit: Circuit, precision: str = "floating_pt",
                    **options) -> str | None:
        """The first construct Lava (``precision``) has no mapping for, or None."""
        try:
            _refuse(circuit, precision == "fixed_pt")
        except CircuitError as exc:
            return str(exc)
        return None

    #: Lava's 3-factor rules decay the y traces they receive by one step,
    #: with tau = _Y_TAU, before using them: the neuron sends them scaled up.
    _Y_TAU = float(np.iinfo(np.uint16).max)

    def _plan(self):
        """Ports of every population and the Dense of every summed variable / spike."""
        c = self.circuit
        self.plan = plan = lower(c)  # the circuit lowered once (neurosim.lowering)
        summed = {(s.projection, s.variable): s for s in plan.summed}
        self.L = plan.levels
        self.links: list[_Link] = []
        ports = {p: [] for p in c.populations}
        ins = {p: [] for p in c.populations}
        outs = {p: [] for p in c.populations}
        traces = {p: [] for p in c.populations}
        sends = {p: {} for p in c.populations}  # graded out port -> what it carries
        self._wiring = []  # (link, source pop, out port, target pop, in port)
        spiking = False
        for proj in c.projections.values():
            for var, (side, base) in proj.summed.items():
                s = summed[(proj.name, var)]
                parts = _dense_parts(s.factors, s.expr,
                                     f"Projection {proj.name!r}, summed variable {var}")
                to_post = side == "post"
                src, tgt = (proj.source, proj.target) if to_post else (proj.target, proj.source)
                send = strip_suffix(parts["pre" if to_post else "post"],
                                    "_pre" if to_post else "_post")
                recv = strip_suffix(parts["post" if to_post else "pre"],
                                    "_post" if to_post else "_pre")
                recv = sympy_to_str(str_to_sympy(f"({recv}) * ({parts['scalar']})"))
                link = _Link(proj, parts["syn"], not to_post, False)
                k = len(self.links)
                ports[src].append((f"_out{k}", "out"))
                ports[tgt].append((f"_in{k}", "in"))
                outs[src].append((f"_out{k}", s.level, send))
                sends[src][f"_out{k}"] = (f"Population {src!r}: the message {send!r} it sends "
                                          f"for {proj.name}.{var}")
                ins[tgt].append((f"_in{k}", s.level, base, "=", recv))
                self.links.append(link)
                self._wiring.append((link, src, f"_out{k}", tgt, f"_in{k}"))
            if proj.plasticity is not None:  # post spikes reach the LearningDense too
                if ("_spikes", "spike") not in ports[proj.target]:
                    ports[proj.target].append(("_spikes", "spike"))
                spiking = True
                trace = _rule_mapping(proj.plasticity).trace_spec(
                    proj, proj.plasticity, len(self.links), float(c.dt))
                if trace is not None:
                    traces[proj.target].append(trace)
                    ports[proj.target] += [(f"_y{i}_{len(self.links)}", "trace")
                                           for i in (1, 2, 3)]
            for stmt in plan.projections[proj.name].on_pre:
                tvar, op = stmt.var, stmt.op
                tvar, parts = _spike_statement(proj, stmt)
                spiking = True
                link = _Link(proj, parts["syn"], False, True, proj.plasticity)
                link.delays = _delay_steps(c, proj, self.seed)  # neurosim steps per synapse
                if link.delays is not None and not link.delays.any():
                    link.delays = None
                k = len(self.links)
                if any(t[0] == k for t in traces[proj.target]):
                    link.trace_k = k
                if ("_spikes", "spike") not in ports[proj.source]:
                    ports[proj.source].append(("_spikes", "spike"))
                ports[proj.target].append((f"_in{k}", "in"))
                ins[proj.target].append((f"_in{k}", -1, tvar[:-5], op, parts["scalar"]))
                self.links.append(link)
                self._wiring.append((link, proj.source, "_spikes", proj.target, f"_in{k}"))
        self.K = _lava_steps_per_step(plan)  # L + 2 + spiking
        self._tie_pairs = self._tie(ports)
        self._g = array_namespace(c.namespace, float(c.dt))
        self._params = _numeric_namespace(c.namespace)
        layout, start = [], 0
        for name, shape, values in self._params:
            layout.append((name, start, shape))
            start += values.size
        self.specs = {}
        for pop in c.populations.values():
            p = plan.populations[pop.name]
            stored, threshold, update = list(p.stored), p.threshold, p.update
            self.specs[pop.name] = _Spec(
                name=pop.name, n=pop.n, stored=stored, subexprs=p.subexprs, update=update,
                init=p.init, threshold=threshold, reset=p.reset, refractory=p.refractory,
                unless_refractory=set(p.unless_refractory),
                inputs=ins[pop.name], outputs=outs[pop.name], ports=ports[pop.name],
                traces=traces[pop.name],
                spike_port="_spikes" if ("_spikes", "spike") in ports[pop.name] else None,
                K=self.K, L=self.L, spike_phase=spiking, namespace=c.namespace,
                dt=float(c.dt), frac_bits=self.frac_bits, overflow=self.overflow,
                tolerance=self.rounding_tolerance if self.fixed else None,
                checked={key: (k, what) for k, (key, what) in enumerate(
                    [(v, f"Population {pop.name!r}: {v}") for v in stored] +
                    list(sends[pop.name].items()))},
                params=layout, spike_rows=(max(1, min(64, 2 ** 12 // -(-pop.n // _PACK)))
                                           if threshold else 0),
                seed=(self.seed, list(c.populations).index(pop.name)))
            # compile here too: a code error is reported now, not inside a Lava worker
            for block in (update, p.init, p.reset):
                _compile_block(block, f"Population {pop.name!r}")

    def _tie(self, ports):
        """Lava compiles and runs only the processes connected to the one it is
        run on, so a circuit of disconnected parts would leave all but one part
        silently frozen. One 1-element port from each part to the next ties them
        into one graph: ``[(source pop, target pop)]``."""
        parent = {p: p for p in self.circuit.populations}

        def root(p):
            while parent[p] != p:
                p = parent[p]
            return p
        for _link, src, _out, tgt, _in in self._wiring:
            parent[root(src)] = root(tgt)
        for proj in self.circuit.projections.values():  # post spikes to a LearningDense
            parent[root(proj.source)] = root(proj.target)
        firsts = list(dict.fromkeys(root(p) for p in self.circuit.populations))
        ties = list(zip(firsts, firsts[1:]))
        for src, tgt in ties:
            ports[src].append(("_tie_out", "tie_out"))
            ports[tgt].append(("_tie_in", "tie_in"))
        return ties

    def _build(self, weights):
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.sparse.process import DelaySparse, Sparse
        self.procs, self.models = {}, {}
        for name, spec in self.specs.items():
            pop = self.circuit.populations[name]
            cls = _make_process(spec)
            start = dict(pop.values, not_refractory=1.0, lastspike=-1e4)  # Brian2's start
            values = {v: self._encode(np.broadcast_to(
                np.asarray(start.get(v, 0.0), dtype=float), (pop.n,)).copy(), name, v)
                for v in spec.stored}
            values["_params"] = self._param_vector()
            self.procs[name] = cls(values)
            self.models[self.procs[name]] = _make_models(cls, spec)[self.precision]
        self.weights = {name: {v: np.asarray(weights[name][v], dtype=float).copy()
                               for v in proj.parameters}
                        for name, proj in self.circuit.projections.items()}
        self._params_sent = self._param_vector()
        for src, tgt in self._tie_pairs:
            self.procs[src]._tie_out.connect(self.procs[tgt]._tie_in)
        for link, src, out_port, tgt, in_port in self._wiring:
            if link.proj.kind != "all":
                link.pattern = self._pattern(link)
            matrix = self._matrix(link)
            kwargs = {"num_message_bits": 0 if link.binary else _STATE_BITS}
            if self.fixed:
                link.exp = self._weight_format(link, matrix)
                matrix = self._fixed_weights(link, matrix)
                kwargs["weight_exp"] = link.exp + (self.frac_bits if link.binary else 0)
            if link.rule is not None:
                link.dense = self._learning_dense(link, matrix, in_port)
                self.procs[tgt]._spikes.connect(link.dense.s_in_bap)
                if link.trace_k is not None:
                    for i in (1, 2, 3):
                        getattr(self.procs[tgt], f"_y{i}_{link.trace_k}").connect(
                            getattr(link.dense, f"s_in_y{i}"))
            elif link.pattern is not None:
                cls = Sparse
                if link.delays is not None:
                    cls, kwargs["delays"] = DelaySparse, self._lava_delays(link)
                link.dense = cls(weights=self._lava_weights(link, matrix),
                                 name=f"{link.proj.name}{in_port}", **kwargs)
                self.models[link.dense] = _fixed_pattern_sparse_model(
                    self.precision, link.delays is not None)
            else:
                cls = Dense
                if link.delays is not None:
                    cls, kwargs["delays"] = DelayDense, self._lava_delays(link)
                link.dense = cls(weights=matrix, name=f"{link.proj.name}{in_port}", **kwargs)
                if link.delays is not None:
                    self.models[link.dense] = _delay_dense_model(self.precision)
            getattr(self.procs[src], out_port).connect(link.dense.s_in)
            link.dense.a_out.connect(getattr(self.procs[tgt], in_port))

    def _pattern(self, link):
        """The CSR pattern of a one-to-one or sparse projection's Lava Sparse (rows:
        the receiving neurons): one entry per connected pair, zeros kept (Lava's
        ``Var.set`` of a Sparse needs a fixed pattern); several synapses between
        one pair share an entry holding their sum."""
        proj = link.proj
        i, j = self.circuit.synapses(proj.name, self.seed)
        rows, cols = (i, j) if link.transpose else (j, i)
        n_pre, n_post = (self.circuit.populations[p].n for p in (proj.source, proj.target))
        shape = (n_pre, n_post) if link.transpose else (n_post, n_pre)
        keys, inverse = np.unique(rows * shape[1] + cols, return_inverse=True)
        r, c = np.divmod(keys, shape[1])
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=shape[0]))])
        return c, indptr, inverse.ravel(), shape

    def _lava_delays(self, link):
        """A spike link's delays for Lava's DelayDense / DelaySparse, in Lava steps:
        a delay of D neurosim steps is D * K Lava steps, so a spike sent at phase
        L+1 of step k arrives at phase L+2 of step k + D, as Brian2 delivers it."""
        proj = link.proj
        steps = link.delays * self.K
        if self.fixed and steps.max() > _MAX_DELAY:
            raise CircuitError(
                f"Projection {proj.name!r}: a delay of {steps.max()} Lava steps does not fit "
                f"Loihi 2's {_MAX_DELAY} on lava-fixed; run it on 'lava' or a brian2 target.")
        if link.pattern is None:  # all-to-all: synapse (i, j) -> matrix [j, i]
            i, j = self.circuit.synapses(proj.name, self.seed)
            n_pre, n_post = (self.circuit.populations[p].n for p in (proj.source, proj.target))
            out = np.zeros((n_post, n_pre), dtype=np.int64)
            out[j, i] = steps
            return out
        cols, indptr, inverse, shape = link.pattern
        lo = np.full(len(cols), np.iinfo(np.int64).max)
        hi = np.full(len(cols), -1)
        np.minimum.at(lo, inverse, steps)
        np.maximum.at(hi, inverse, steps)
        if np.any(lo != hi):
            raise CircuitError(
                f"Projection {proj.name!r}: two synapses between the same pair of neurons "
                "have different delays, and Lava's DelaySparse holds one delay per pair; "
                "run it on a brian2 target.")
        return scipy.sparse.csr_matrix((hi, cols, indptr), shape=shape)

    @staticmethod
    def _lava_weights(link, data):
        """A Sparse's weights from the values of its pattern's entries."""
        if link.pattern is None:
            return data
        cols, indptr, _inverse, shape = link.pattern
        return scipy.sparse.csr_matrix((np.asarray(data).copy(), cols, indptr), shape=shape)

    def _learning_dense(self, link, matrix, in_port):
        """A plasticity rule -> a LearningDense (floating point) with the Lava
        learning rule of its mapping in ``_RULES`` (``_PairSTDPMapping``: STDPLoihi,
        ``_ThreeFactorMapping``: a Loihi 3-factor rule). Weights are held in
        [wmin, wmax] by the model below.
        """
        from lava.proc.dense.process import LearningDense
        rule, dt = link.rule, float(self.circuit.dt)
        if np.any(matrix < 0):
            raise CircuitError(f"Projection {link.proj.name!r}: Lava's STDP weights are "
                               "excitatory (wmin = 0, weights >= 0), but some initial "
                               "weights are negative; start them at or above 0, or run "
                               "this circuit on a brian2 target.")
        learning = _rule_mapping(rule).learning_rule(rule, dt, self.K)
        dense = LearningDense(weights=matrix, learning_rule=learning,
                              name=f"{link.proj.name}{in_port}",
                              wmin=float(rule.wmin), wmax=float(rule.wmax))
        self.models[dense] = _clipped_learning_dense_model()
        return dense

    def _shape(self, proj) -> tuple:
        """The shape of a projection's synaptic arrays (``Projection`` doc)."""
        n_pre, n_post = (self.circuit.populations[p].n for p in (proj.source, proj.target))
        return {"all": (n_post, n_pre), "one_to_one": (n_pre,)}.get(
            proj.kind, (len(self.circuit.synapses(proj.name, self.seed)[0]),))

    def _matrix(self, link, weights=None) -> np.ndarray:
        """The link's weights: a (receivers, senders) matrix for an all-to-all
        projection, the values of the pattern's entries for a Sparse."""
        proj = link.proj
        shape = self._shape(proj)
        weights = self.weights if weights is None else weights
        w = np.ones(shape) if link.syn is None else weights[proj.name][link.syn]
        if link.pattern is not None:
            _cols, _indptr, inverse, _shape = link.pattern
            return np.bincount(inverse, weights=w, minlength=len(_cols))
        return w.T.copy() if link.transpose else w.copy()

    def _weight_format(self, link, w):
        """Fixed point: the shared exponent ``e`` of a link's 8-bit mantissas (module
        doc), fixed when the Dense is built: the smallest that holds the declared
        ``weight_range`` of its projection, else the initial weights."""
        name = link.proj.name
        if name in self.weight_range:
            lo, hi = self.weight_range[name]
        elif link.syn is not None and link.proj.learning_rule and not np.any(w):
            raise CircuitError(
                f"Projection {name!r}: on lava-fixed the weight exponent of its Lava Dense "
                "is fixed when it is built, from the initial weights, and these are all "
                f"zero while a learning_rule changes them; declare the range they will "
                f"take: weight_range={{{name!r}: (lo, hi)}}.")
        else:
            lo, hi = (float(w.min()), float(w.max())) if w.size else (0.0, 0.0)
        top = max(abs(lo), abs(hi))
        limit = 254 if lo < 0 < hi else 255
        return math.ceil(math.log2(top / limit)) if top > 0 else 0

    @staticmethod
    def _quantise(w, e):
        """8-bit mantissas ``m`` with ``w ~ m * 2**e``, single-sign or mixed-sign as
        the weights are now (Lava's sign modes): (mantissas, sign mode, largest
        rounding error, mask of the weights that saturated)."""
        w = np.asarray(w, dtype=float)
        sign = "mixed" if w.size and np.nanmin(w) < 0 < np.nanmax(w) else "single"
        lo, hi = _MANTISSA[sign]
        if sign == "mixed":  # Lava drops the lowest mantissa bit of mixed-sign weights
            raw = 2 * np.round(np.asarray(w) / 2.0 ** (e + 1))
        else:
            raw = np.round(np.asarray(w) / 2.0 ** e)
        m = np.clip(np.nan_to_num(raw), lo, hi)
        bad = ~(raw == m)  # NaN too
        error = float(np.max(np.abs(m * 2.0 ** e - w), initial=0.0))
        return m.astype(np.int32), sign, error, bad

    def _fixed_weights(self, link, w):
        """Quantise a link's weights (fixed point); a weight that does not fit the
        format chosen at build raises :class:`FixedPointOverflow` (or warns)."""
        m, link.sign, error, bad = self._quantise(w, link.exp)
        if bad.any():
            values = np.asarray(w)[bad]
            odd = values[~np.isfinite(values)]
            worst = float(odd[0] if odd.size else values[np.argmax(np.abs(values))])
            name = link.proj.name
            lo, hi = (b * 2.0 ** link.exp for b in _MANTISSA[link.sign])
            origin = ("the declared weight_range" if name in self.weight_range
                      else "the initial weights")
            self._overflowed(
                f"Projection {name!r}: the weight {link.syn or '1'} = {worst:.6g} does not fit "
                f"its Lava {'Sparse' if link.pattern is not None else 'Dense'} on lava-fixed "
                f"(8-bit mantissas, {link.sign}-sign, with exponent {link.exp}: {lo:.6g} "
                f"to {hi:.6g}; the exponent was chosen when it was built, from {origin}). "
                "Fix: declare the range "
                f"the weights will take, weight_range={{{name!r}: (lo, hi)}}; or pass "
                "overflow='warn' to saturate with a warning.")
        link.weight_error = error
        return m

    def _overflowed(self, message):
        if self.overflow == "raise":
            raise FixedPointOverflow(message)
        warnings.warn(message, FixedPointWarning, stacklevel=4)

    def quantisation(self) -> dict[str, dict]:
        """Per Dense: the weight exponent ``e``, sign mode and the largest weight
        rounding error (saturated weights included, with overflow='warn')."""
        return {link.dense.name: {"exp": link.exp, "sign": link.sign,
                                  "weight_error": link.weight_error}
                for link in self.links}

    def _encode(self, x, pop=None, var=None):
        if not self.fixed:
            return x
        k = np.round(np.asarray(x, dtype=float) * 2.0 ** self.frac_bits)
        bad = ~(np.abs(k) <= _STATE_MAX)
        if bad.any():
            values = np.asarray(x, dtype=float)[bad]
            odd = values[~np.isfinite(values)]
            worst = float(odd[0] if odd.size else values[np.argmax(np.abs(values))])
            self._overflowed(_state_overflow(f"Population {pop!r}: {var}", worst,
                                             self.frac_bits))
        x = np.asarray(x, dtype=float)
        if np.any(x) and not np.any(k[x != 0]):  # every non-zero value would be 0
            small = float(np.max(np.abs(x)))
            need = math.ceil(-math.log2(small)) + 8  # 8 significant bits
            fix = (f"use frac_bits={need} or express the variable in smaller units"
                   if need < _STATE_BITS else
                   "express the variable in smaller units (no frac_bits resolves it)")
            self._overflowed(
                f"Population {pop!r}: {var} = {small:.6g} (its largest magnitude) is below "
                f"the resolution of lava-fixed with frac_bits={self.frac_bits} "
                f"({2.0 ** -self.frac_bits:.6g}) and would be stored as 0. Fix: {fix}; or "
                "pass overflow='warn' to store it as 0 with a warning.")
        return np.clip(np.nan_to_num(k), -_STATE_MAX, _STATE_MAX).astype(np.int64)

    def _decode(self, x):
        x = np.asarray(x, dtype=float)
        return x / 2.0 ** self.frac_bits if self.fixed else x

    # --- runtime ------------------------------------------------------------------
    def _start(self):
        """Prepare the run configuration; Lava compiles and starts its runtime
        (worker processes) at the first run. Until then ``get``/``set`` read and
        write the ``Var`` s' initial values."""
        from lava.magma.core.run_configs import Loihi2SimCfg
        self._cfg = Loihi2SimCfg(select_tag=self.precision, exception_proc_model_map=self.models)
        self._runtime_proc = next(iter(self.procs.values()))

    def close(self):
        """Stop Lava's runtime and its worker processes (idempotent). If
        ``stop()`` does not return within ``_STOP_TIMEOUT`` seconds, the workers
        are killed."""
        proc, self._runtime_proc = self._runtime_proc, None
        LavaTarget._open.discard(self)
        runtime = proc.runtime if proc is not None else None
        if runtime is None:
            return
        stopper = threading.Thread(target=_stop_quietly, args=(proc,), daemon=True)
        stopper.start()
        stopper.join(timeout=_STOP_TIMEOUT)
        if stopper.is_alive():
            _kill_workers(runtime)

    def __del__(self):
        self.close()

    def _lava_steps(self, n):
        from lava.magma.core.run_conditions import RunSteps
        if self._runtime_proc is None:
            raise CircuitError("This Lava target was closed; build a new one.")
        proc = self._runtime_proc
        try:
            condition = RunSteps(num_steps=n, blocking=False)
            if proc.runtime is None:
                LavaTarget._open.add(self)
                proc.run(condition=condition, run_cfg=self._cfg)
            else:
                proc.run(condition=condition)
            _wait(proc.runtime)
        except BaseException:
            self.close()
            raise
        self._steps += n

    def _set_var(self, var, value):
        if not scipy.sparse.issparse(value):
            value = np.asarray(value)
        if var.process.runtime is None:  # not compiled yet: the initial value
            var.init = value if scipy.sparse.issparse(value) else value.reshape(var.shape)
            return
        try:
            var.set(value)
        except BaseException:
            self.close()
            raise

    def _get_var(self, var):
        try:
            return np.array(var.get())
        except BaseException:
            self.close()
            raise

    # --- state --------------------------------------------------------------------
    def _stored_state(self, pop):
        proc = self.procs[pop]
        return {v: self._decode(self._get_var(getattr(proc, v))) for v in self.specs[pop].stored}

    def get(self, population, variable):
        self.circuit.check_variable(population, variable)
        spec = self.specs[population]
        if variable in spec.stored:
            return self._decode(self._get_var(getattr(self.procs[population], variable)))
        return self._evaluate(population, self._stored_state(population), variable)

    def _evaluate(self, pop, state, variable):
        spec = self.specs[pop]
        scope = _Scope(state, {k: _expr(v) for k, v in spec.subexprs.items()},
                       dict(self._g, N=spec.n, t=self._time()))
        scope["i"] = np.arange(spec.n)
        return np.broadcast_to(np.asarray(scope[variable], dtype=float), (spec.n,)).copy()

    def _time(self):
        return (self._steps // self.K) * float(self.circuit.dt)

    def set(self, population, variable, values):
        values = self.state_values(population, variable, values)  # (n,): one sample
        self._set_var(getattr(self.procs[population], variable),
                      self._encode(values, population, variable))

    def get_weights(self):
        for link in self.links:  # what Lava's learning engine changed
            if link.rule is not None and link.dense.runtime is not None:
                self.weights[link.proj.name][link.syn] = self._get_var(link.dense.weights)
                if link.trace_k is not None:  # the eligibility is Lava's tag
                    self.weights[link.proj.name]["eligibility"] = \
                        self._get_var(link.dense.tag_1)
        return {name: {v: a.copy() for v, a in params.items()}
                for name, params in self.weights.items()}

    def set_weights(self, weights):
        """Set synaptic variables (layout of ``Circuit.initial_weights``; a scalar
        sets every synapse). Nothing changes if any array is refused."""
        new = {name: dict(params) for name, params in self.weights.items()}
        for name, params in weight_values(self.circuit, weights).items():
            proj = self.circuit.projection(name)
            for var, value in params.items():
                if var not in proj.parameters:
                    raise CircuitError(f"Projection {name!r} has no synaptic variable {var!r}; "
                                       f"its variables are {proj.parameters}.")
                value = np.asarray(value, dtype=float)
                shape = self._shape(proj)
                if value.ndim == 0:
                    value = np.full(shape, float(value))
                if value.shape != shape:
                    proj.check_shape(var, value.shape, shape)  # raises, naming the layout
                new[name][var] = value.copy()
        lava = []
        for link in self.links:
            if link.proj.name in weights and link.syn in weights[link.proj.name]:
                matrix = self._matrix(link, new)
                if self.fixed:
                    matrix = self._fixed_weights(link, matrix)
                lava.append((link, matrix))
        self.weights = new
        for link, matrix in lava:
            self._set_var(link.dense.weights, self._lava_weights(link, matrix))

    # --- dynamics -----------------------------------------------------------------
    def _param_vector(self):
        """The numeric namespace values a process model reads (``_params``), now."""
        ns = self.circuit.namespace
        out = []
        for name, shape, _values in self._params:
            value = ns.get(name)
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                arr = None
            if arr is None or arr.shape != shape:
                raise CircuitError(
                    f"Circuit {self.circuit.name!r}: the namespace entry {name!r} is now "
                    f"{value!r}; the Lava target passes numbers and arrays of a fixed shape "
                    f"{shape} to its process models between runs. Give it a value of that "
                    "shape, or build a new target.")
            out.append(arr.ravel())
        return np.concatenate(out) if out else np.zeros(1)

    def _configure(self, mode):
        self.circuit.check_constants()
        params = self._param_vector()
        changed = not np.array_equal(params, self._params_sent)
        if changed:  # the namespace changed since the last run: the host code uses it too
            self._g = array_namespace(self.circuit.namespace, float(self.circuit.dt))
            self._params_sent = params
        for name, proc in self.procs.items():
            self._set_var(proc._mode, [_MODES[mode]])
            self._set_var(proc._active, [0 if name in self.clamped else 1])
            if changed and self.specs[name].params:
                self._set_var(proc._params, params)

    def _check_overflow(self):
        """overflow='warn': a warning for every value that saturated in a process
        model since the last check (the models count them in ``_overflow``)."""
        if not (self.fixed and self.overflow == "warn") or self._runtime_proc is None \
                or self._runtime_proc.runtime is None:
            return
        for name, proc in self.procs.items():
            table = self._get_var(proc._overflow).reshape(-1, 2)
            seen = self._overflow_seen.get(name, np.zeros(len(table)))
            for key, (k, what) in self.specs[name].checked.items():
                if table[k, 0] > seen[k]:
                    warnings.warn(
                        _state_overflow(what, float(table[k, 1]), self.frac_bits) +
                        f" ({int(table[k, 0] - seen[k])} values saturated in this call.)",
                        FixedPointWarning, stacklevel=3)
            self._overflow_seen[name] = table[:, 0].copy()
            table = self._get_var(proc._rounding).reshape(-1, 5)
            seen = self._rounding_seen.get(name, np.zeros(len(table)))
            for k, var in enumerate(self.specs[name].stored):
                count, err, scale, fit, largest = table[k]
                if count > seen[k]:
                    warnings.warn(
                        _rounding_error(f"Population {name!r}: {var}", err, scale,
                                        self.rounding_tolerance, self.frac_bits, int(fit)) +
                        f" ({int(count - seen[k])} estimates beyond it in this call; the "
                        f"largest so far {largest:.3g}.)", FixedPointWarning, stacklevel=3)
            self._rounding_seen[name] = table[:, 0].copy()

    def settle(self):
        self._configure("settle")
        inits = sum(1 for p in self.circuit.populations.values() if p.init)
        self._lava_steps(max(1, inits) * self.K)
        self._check_overflow()

    def run(self, n_steps, record=()):
        """Advance ``n_steps``; ``record`` entries ``(pop, var)`` or ``(pop, var,
        indices)`` (``Target.run``). Variables are read from Lava at every step
        (Lava pauses at the phase where the state is the one Brian2's monitors
        see); spikes from each population's spike buffer every ``spike_rows``
        steps, so recording only spikes costs little."""
        n_steps = check_steps(n_steps)
        record = parse_record(self.circuit, record)
        self._configure("run")
        spikes = [(pop, idx) for pop, var, idx in record if is_spikes(self.circuit, pop, var)]
        variables = [(pop, var, idx) for pop, var, idx in record
                     if not is_spikes(self.circuit, pop, var)]
        traces = {(pop, var): [] for pop, var, _ in variables}
        rows = {pop: [] for pop, _ in spikes}
        chunk = min((self.specs[pop].spike_rows for pop, _ in spikes), default=n_steps)
        first = self._steps // self.K  # the target's step count at the start of the call
        done = 0  # steps of this call whose spikes have been read
        for step in range(n_steps) if variables else ():
            self._lava_steps(self.L + 1)  # up to the state Brian2's monitors see
            states = {pop: self._stored_state(pop) for pop in {p for p, _, _ in variables}}
            for pop, var, idx in variables:
                value = (states[pop][var] if var in states[pop]
                         else self._evaluate(pop, states[pop], var))
                traces[(pop, var)].append(value if idx is None else value[idx])
            self._lava_steps(self.K - self.L - 1)
            if spikes and (step + 1 - done == chunk or step + 1 == n_steps):
                self._read_spikes(rows, first, done, step + 1)
                done = step + 1
        while done < n_steps and not variables:
            size = min(chunk, n_steps - done)
            self._lava_steps(size * self.K)
            if spikes:
                self._read_spikes(rows, first, done, done + size)
            done += size
        self._check_overflow()
        out = {(pop, var): np.array(traces[(pop, var)], dtype=float).reshape(
            n_steps, self.specs[pop].n if idx is None else len(idx))
            for pop, var, idx in variables}
        for pop, idx in spikes:
            found = (np.concatenate(rows[pop]) if rows[pop]
                     else np.zeros((0, 2), dtype=np.int64))
            out[(pop, "spikes")] = found if idx is None else found[np.isin(found[:, 1], idx)]
        return out

    def _read_spikes(self, rows, first, start, stop):
        """Spike rows ``[step, neuron]`` of this call's steps ``start..stop-1``, from
        the packed spike buffers (row ``target step % spike_rows``)."""
        steps = np.arange(start, stop)
        for pop in rows:
            spec = self.specs[pop]
            buf = self._get_var(self.procs[pop]._spike_buf).reshape(spec.spike_rows, -1)
            fired = _unpack(buf[(first + steps) % spec.spike_rows], spec.n)
            k, neuron = np.nonzero(fired)
            rows[pop].append(np.stack([steps[k], neuron], axis=1).astype(np.int64))

    def learn(self):
        rules = {n: p for n, p in self.circuit.projections.items() if p.learning_rule}
        if not rules:
            return
        self._configure("hold")
        self._lava_steps(self.K)  # summed variables from the current state
        self._check_overflow()
        states = {}
        new = {}
        for name, proj in rules.items():
            for pop in (proj.source, proj.target):
                states.setdefault(pop, self._stored_state(pop))
            new[name] = self._apply_rule(proj, states)
        self.set_weights(new)

    def _apply_rule(self, proj, states):
        """The rule's statements on (n_post, n_pre) arrays for an all-to-all
        projection, on one value per synapse otherwise, in order."""
        where = f"Projection {proj.name!r} learning_rule"
        i, j = (None, None) if proj.kind == "all" else self.circuit.synapses(proj.name,
                                                                             self.seed)
        values = {}
        for side, pop, axis, index in (("_pre", proj.source, 0, i), ("_post", proj.target, 1, j)):
            spec = self.specs[pop]
            for var in spec.stored + list(spec.subexprs):
                v = (states[pop][var] if var in states[pop]
                     else self._evaluate(pop, states[pop], var))
                values[var + side] = np.expand_dims(v, axis) if index is None else v[index]
        syn = {v: a.copy() for v, a in self.weights[proj.name].items()}
        scope = _Scope({**values, **syn}, {}, self._g)
        for stmt in self.plan.projections[proj.name].learning:
            var, op, expr = stmt.var, stmt.op, stmt.expr
            if var not in syn:
                raise CircuitError(f"{where}: {var!r} is not a synaptic variable of the "
                                   f"projection ({proj.parameters}).")
            value = eval(_expr(expr), self._g, scope)
            old = scope[var]
            value = value if op == "=" else _OPS[op](old, value)
            scope[var] = np.broadcast_to(value, old.shape).copy()
        return {v: scope[v] for v in syn}


@atexit.register
def _close_all():
    for target in list(LavaTarget._open):
        target.close()

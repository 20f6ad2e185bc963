"""Lava target: every population a Lava Process, every projection a Lava ``Dense``.

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
  ``_mode`` and ``_active`` the host sets between runs (internal names start
  with ``_``, which Brian2 names never do). Its
  ``PyLoihiProcessModel`` executes the code Brian2 generates for the
  equations: the state updater's abstract code
  (``StateUpdater.update_abstract_code``, the population's ``method``), the
  threshold, reset and ``init`` code, each line split by Brian2's
  ``parse_statement`` and rendered by Brian2's ``NumpyNodeRenderer`` -- as
  :mod:`neurosim.hardware_targets.dense` does. The model classes are built per
  population (Lava matches ``Var`` s and ports to model attributes by name) and
  handed to the compiler through ``exception_proc_model_map``.
* **Projection**, summed variables ``x_post = w * f(a_pre) * g(b_post)`` ->
  a Lava ``Dense`` (weights ``W``, graded messages ``f(a)``; ``g(b)`` and
  constant factors are applied by the receiving process); ``x_pre = w *
  f(a_pre) * g(b_post)`` -> a ``Dense`` holding ``W.T`` from target to source;
  ``one_to_one`` -> a Lava ``Sparse`` holding ``diag(w)`` (or the identity).
  ``on_pre`` statements ``x_post += w`` (``-=``, times constants) -> a ``Dense``
  fed by binary spikes. Anything else raises :class:`CircuitError` naming the
  construct and the alternatives (the ``brian2-*`` targets run every Brian2
  construct; ``dense`` every rate construct).
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
(:func:`~neurosim.circuit.summed_order`):

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

Fixed point (``fixed_pt``)
--------------------------
A documented, Loihi-style quantisation scheme (``F = frac_bits``, default 12):

* **state and messages**: every stored variable and every graded message is a
  signed 24-bit integer with ``F`` fractional bits (value ``k * 2**-F``,
  ``|k| < 2**23``, saturating); a stored value is rounded to nearest whenever
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
  quantisation to Lava, with the exponent fixed when the ``Dense`` was built
  (weights that outgrow it saturate; :meth:`LavaTarget.quantisation` reports
  the error);
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

Not supported (:class:`CircuitError` names the construct and the
alternatives): refractoriness on ``lava-fixed`` (on ``lava`` it is Brian2's own:
its ``not_refractory`` update and gated threshold), stochastic equations
(``xi``), ``on_post`` code and synaptic differential equations other than a
plasticity rule's, delays, summed variables that are not a product of one
synaptic variable and one-sided factors, ``on_pre`` code other than
``x_post += w * constant``, plasticity rules other than PairSTDP and
ThreeFactorSTDP, and plasticity rules on ``lava-fixed``.
"""
from __future__ import annotations

import atexit
import math
import threading
import time
import weakref

import numpy as np
import scipy.sparse
import sympy
from brian2 import NeuronGroup
from brian2.equations.equations import SUBEXPRESSION
from brian2.parsing.rendering import NumpyNodeRenderer
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.utils.stringtools import get_identifiers

from neurosim.circuit import Circuit, CircuitError, summed_order
from neurosim.codegen import array_namespace, statements
from neurosim.target import Target

from .lava_compat import import_lava

__all__ = ["LavaTarget", "PRECISIONS"]

PRECISIONS = ("floating_pt", "fixed_pt")
_ALTERNATIVES = ("run this circuit on a brian2-numpy/brian2-cython target "
                 "(or 'dense' for rate circuits)")
_STATE_BITS = 24
_MODES = {"run": 0, "settle": 1, "hold": 2}
_STOP_TIMEOUT = 10.0  # seconds
_OPS = {"+=": np.add, "-=": np.subtract, "*=": np.multiply, "/=": np.divide}


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
    raises with the worker's traceback."""
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
    details = "\n".join(a.exception[1] for a in actors if a.exception)
    _kill_workers(runtime)
    runtime._is_running = runtime._is_started = False
    raise RuntimeError(f"A Lava process model failed; the run was stopped.\n{details}")


def _stop_quietly(proc):
    try:
        proc.stop()
    except Exception:
        pass


# --- code: Brian2 statements and expressions rendered to numpy ----------------------

def _expr(source: str):
    return compile(NumpyNodeRenderer().render_expr(source), source, "eval")


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


class _PopulationStep:
    """One Lava step of a population (shared by the floating and fixed models)."""

    def _setup(self):
        s = self.spec = self.proc_params["spec"]
        self.g = array_namespace(s.namespace, s.dt)
        self.g["N"] = s.n
        # Brian2's numpy rand()/randn() take the vectorisation index its code
        # generator adds; here one seeded stream per population (not Brian2's
        # stream: random circuits agree in distribution, not spike by spike)
        rng = np.random.default_rng(s.seed)
        self.g["rand"] = lambda: rng.random(s.n)
        self.g["randn"] = lambda: rng.standard_normal(s.n)
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

    def _step(self, state: dict, received: dict) -> tuple[dict, dict]:
        """New stored values and the messages to send, in floating point."""
        s = self.spec
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

        if 1 <= phase <= s.L:  # summed variables of level phase-1 arrive
            write({var: received[port] * eval(factor, self.g, scope)
                   for port, level, var, op, factor in self.ins if level == phase - 1})
        elif phase == s.L + 1:
            if mode == 0 and active:
                write(scope.execute(self.update, s.stored, s.n))
            elif mode == 1 and active and self.init:
                write(scope.execute(self.init, s.stored, s.n))
            self.spiked = (np.broadcast_to(eval(self.threshold, self.g, scope), (s.n,)).astype(bool)
                           if self.threshold is not None and mode == 0 else
                           np.zeros(s.n, dtype=bool))
            if s.refractory and self.spiked.any():
                write({"not_refractory": np.where(self.spiked, 0.0, scope["not_refractory"]),
                       "lastspike": np.where(self.spiked, self.g["t"], scope["lastspike"])})
            if not s.spike_phase and self.spiked.any():
                write(scope.execute(self.reset, s.stored, s.n, where=self.spiked))
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
                    write({var: scope[var] + (inc if op == "+=" else -inc)})
            if self.spiked.any():
                write(scope.execute(self.reset, s.stored, s.n, where=self.spiked))
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
        for port, kind in spec.ports:
            if kind == "in":
                attrs[port] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=_STATE_BITS)
            elif kind == "out":
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=_STATE_BITS)
            elif kind == "trace":
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, float)
            else:
                attrs[port] = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
        cls = type(f"{spec.name}_{tag_name}", (_PopulationStep, PyLoihiProcessModel), attrs)
        return implements(proc=proc_cls, protocol=LoihiProtocol)(requires(CPU)(tag(tag_name)(cls)))

    def run_float(self):
        received = {p: getattr(self, p).recv() for p, k in self.spec.ports if k == "in"}
        state = {v: getattr(self, v) for v in self.spec.stored}
        new, out = self._step(state, received)
        for var, value in new.items():
            setattr(self, var, value)
        for port, value in out.items():
            getattr(self, port).send(value)

    q = 2.0 ** spec.frac_bits
    lim = 2 ** (_STATE_BITS - 1) - 1

    def to_int(x):
        return np.clip(np.round(np.asarray(x, dtype=float) * q), -lim, lim).astype(np.int64)

    def run_fixed(self):
        received = {p: getattr(self, p).recv() / q for p, k in self.spec.ports if k == "in"}
        state = {v: getattr(self, v) / q for v in self.spec.stored}
        new, out = self._step(state, received)
        for var, value in new.items():
            setattr(self, var, to_int(value))
        for port, value in out.items():
            getattr(self, port).send(value if value.dtype == bool else to_int(value))

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
        for port, kind in spec.ports:
            setattr(self, port, (InPort if kind == "in" else OutPort)(shape=(spec.n,)))

    return type(f"Population_{spec.name}", (AbstractProcess,), {"__init__": __init__})


# --- projections: which Dense carries what ------------------------------------------

def _split(expr: str, proj, where: str):
    """``{'syn', 'pre', 'post', 'scalar'}`` factor strings of a product, or CircuitError."""
    sym = str_to_sympy(expr)
    parts = {"syn": [], "pre": [], "post": [], "scalar": []}
    for factor in sympy.Mul.make_args(sym):
        kinds = set()
        for s in map(str, factor.free_symbols):
            kinds.add("pre" if s.endswith("_pre") else "post" if s.endswith("_post")
                      else "syn" if s in proj.parameters else "scalar")
        if len(kinds) > 1 or isinstance(sym, sympy.Add):
            raise CircuitError(
                f"{where} = {expr!r}: Lava has no mapping for it. A Lava Dense computes "
                "W @ s, so the expression must be one synaptic variable times factors that "
                "each depend on one side, like 'x_post = w * f(a_pre) * g(b_post)'. Split "
                f"it into several summed variables, or {_ALTERNATIVES}.")
        parts[kinds.pop() if kinds else "scalar"].append(factor)
    if len(parts["syn"]) > 1 or parts["syn"] and not isinstance(parts["syn"][0], sympy.Symbol):
        raise CircuitError(
            f"{where} = {expr!r}: the Lava target maps one synaptic variable onto the "
            f"weights of a Dense; here the synaptic factor is "
            f"{sympy_to_str(sympy.Mul(*parts['syn']))!r}. Declare the product as one "
            f"weight variable, or {_ALTERNATIVES}.")

    def s(factors):
        return sympy_to_str(sympy.Mul(*factors))
    return {"syn": str(parts["syn"][0]) if parts["syn"] else None,
            "pre": s(parts["pre"]), "post": s(parts["post"]), "scalar": s(parts["scalar"])}


def _strip(expr: str, suffix: str) -> str:
    from brian2.utils.stringtools import word_substitute
    return word_substitute(expr, {n: n[: -len(suffix)] for n in get_identifiers(expr)
                                  if n.endswith(suffix)})


class _Link:
    """One Dense: which projection variable it holds, transposed or diagonal."""

    def __init__(self, proj, syn, transpose, binary, rule=None):
        self.proj, self.syn, self.transpose, self.binary = proj, syn, transpose, binary
        self.rule = rule  # a PairSTDP or ThreeFactorSTDP carried by a LearningDense
        self.trace_k = None  # index of the y1/y2/y3 ports feeding a 3-factor rule
        self.dense = None
        self.exp = 0
        self.weight_error = 0.0


class LavaTarget(Target):
    """Run a circuit on Lava (``Loihi2SimCfg``), floating or fixed point.

    ``precision`` is ``'floating_pt'`` or ``'fixed_pt'``; ``frac_bits`` the
    fractional bits of fixed-point states and messages (see the module doc).
    Call :meth:`close` (or use ``with``) to stop Lava's runtime.
    """

    name = "lava"
    _open: "weakref.WeakSet[LavaTarget]" = weakref.WeakSet()

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 precision: str = "floating_pt", frac_bits: int = 12):
        if precision not in PRECISIONS:
            raise CircuitError(f"Unknown Lava precision {precision!r}; use one of {PRECISIONS}.")
        super().__init__(circuit, seed, weights)
        self.precision, self.frac_bits = precision, int(frac_bits)
        self.fixed = precision == "fixed_pt"
        self._runtime_proc = None
        self._steps = 0  # Lava time steps run so far
        self._check_supported()
        import_lava()  # the Python 3.11 fix, before any lava.* import below
        self._plan()
        self._build(weights or circuit.initial_weights(seed))
        self._start()

    # --- translation --------------------------------------------------------------
    def _check_supported(self):
        for pop in self.circuit.populations.values():
            if pop.refractory is not None and self.fixed:
                raise CircuitError(f"Population {pop.name!r}: refractoriness has no mapping on "
                                   "the fixed-point Lava target (spike times do not fit its "
                                   f"24-bit states); use the 'lava' target, or {_ALTERNATIVES}.")
            if pop.equations.stochastic_variables:
                raise CircuitError(f"Population {pop.name!r}: stochastic equations (xi) have "
                                   f"no mapping on the Lava target; {_ALTERNATIVES}.")
        for proj in self.circuit.projections.values():
            _on_pre, on_post, rule_vars = self._own_code(proj)
            for what, bad in (("on_post code", on_post), ("a delay", proj.delay),
                              ("synaptic differential equations",
                               sorted(set(proj.equations.diff_eq_names) - rule_vars))):
                if bad:
                    raise CircuitError(
                        f"Projection {proj.name!r}: {what} ({bad!r}) has no mapping on the "
                        f"Lava target (a Lava Dense holds static weights; learning rules "
                        f"map onto Lava's learning engine only as plasticity rules); "
                        f"{_ALTERNATIVES}.")
            subs = [n for n, eq in proj.equations.items()
                    if eq.type == SUBEXPRESSION and "summed" not in eq.flags]
            if subs:
                raise CircuitError(f"Projection {proj.name!r}: synaptic subexpressions {subs} "
                                   "have no mapping on the Lava target; write them into the "
                                   f"summed variable, or {_ALTERNATIVES}.")

    def _own_code(self, proj):
        """The projection's on_pre, on_post and the variables of its plasticity rule
        (a PairSTDP runs in Lava's learning engine, not as Brian2 code)."""
        from neurosim.plasticity import PairSTDP, ThreeFactorSTDP
        rule = proj.plasticity
        if rule is None:
            return proj.on_pre, proj.on_post, set()
        if type(rule) not in (PairSTDP, ThreeFactorSTDP) or self.fixed \
                or proj.connect != "all":
            raise CircuitError(
                f"Projection {proj.name!r}: {type(rule).__name__} has no mapping on the "
                f"{self.precision} Lava target"
                f"{' with connect=' + repr(proj.connect) if proj.connect != 'all' else ''}: "
                "PairSTDP and ThreeFactorSTDP on all-to-all projections map onto Lava's "
                "learning engine (STDPLoihi, a Loihi 3-factor rule) in floating point only. "
                f"Use the 'lava' target, or {_ALTERNATIVES}.")
        if type(rule) is ThreeFactorSTDP and not rule.modulator.endswith("_post"):
            raise CircuitError(
                f"Projection {proj.name!r}: the Lava target takes the neuromodulator of a "
                f"ThreeFactorSTDP from the post-synaptic neuron (Loihi's 3-factor rules read "
                f"y2 from it); modulator={rule.modulator!r} is pre-synaptic. Move the "
                f"modulator to the target population, or {_ALTERNATIVES}.")
        code = rule.brian2(proj.name)

        def strip(merged, part):
            merged = merged or ""
            return merged[: len(merged) - len(part)].rstrip("\n") if part else merged
        from brian2 import Equations
        return (strip(proj.on_pre, code.on_pre), strip(proj.on_post, code.on_post),
                set(Equations(code.model).names))

    def _trace_spec(self, proj, k):
        """What the post population sends to a ThreeFactorSTDP LearningDense each
        neurosim step (see ``_learning_dense``): its post trace ``apost`` (decay
        factor, jump ``Apost``), ``dt * eta * M`` and ``dt / tau_e``."""
        rule, dt = proj.plasticity, float(self.circuit.dt)
        eta = rule.names(proj.name)["eta"]
        return (k, float(np.exp(-dt / float(rule.taupost))), float(rule.Apost),
                f"{dt!r} * {eta} * {rule.modulator[:-5]}", dt / float(rule.tau_e))

    #: Lava's 3-factor rules decay the y traces they receive by one step,
    #: with tau = _Y_TAU, before using them: the neuron sends them scaled up.
    _Y_TAU = float(np.iinfo(np.uint16).max)

    def _abstract_code(self, pop) -> str:
        if not pop.equations.diff_eq_names:
            return ""
        kwargs = {}
        if pop.refractory is not None:  # Brian2 then writes the not_refractory update
            kwargs = dict(threshold=pop.threshold, reset=pop.reset, refractory=pop.refractory)
        group = NeuronGroup(1, pop.equations, method=pop.method, **kwargs,
                            namespace=self.circuit.namespace, name=f"lava_{pop.name}*")
        group._network = "lava target (abstract code only)"  # never run: no warning
        group.state_updater.update_abstract_code(run_namespace={})
        return group.state_updater.abstract_code

    def _plan(self):
        """Ports of every population and the Dense of every summed variable / spike."""
        c = self.circuit
        levels = {(p, v): lv for p, v, lv in summed_order(c)}
        self.L = 1 + max(levels.values(), default=-1)
        self.links: list[_Link] = []
        ports = {p: [] for p in c.populations}
        ins = {p: [] for p in c.populations}
        outs = {p: [] for p in c.populations}
        traces = {p: [] for p in c.populations}
        self._wiring = []  # (link, source pop, out port, target pop, in port)
        spiking = False
        for proj in c.projections.values():
            for var, (side, base) in proj.summed.items():
                where = f"Projection {proj.name!r}, summed variable {var}"
                parts = _split(str(proj.equations[var].expr.code), proj, where)
                to_post = side == "post"
                src, tgt = (proj.source, proj.target) if to_post else (proj.target, proj.source)
                send = _strip(parts["pre" if to_post else "post"], "_pre" if to_post else "_post")
                recv = _strip(parts["post" if to_post else "pre"], "_post" if to_post else "_pre")
                recv = sympy_to_str(str_to_sympy(f"({recv}) * ({parts['scalar']})"))
                link = _Link(proj, parts["syn"], not to_post, False)
                k = len(self.links)
                ports[src].append((f"_out{k}", "out"))
                ports[tgt].append((f"_in{k}", "in"))
                outs[src].append((f"_out{k}", levels[(proj.name, var)], send))
                ins[tgt].append((f"_in{k}", levels[(proj.name, var)], base, "=", recv))
                self.links.append(link)
                self._wiring.append((link, src, f"_out{k}", tgt, f"_in{k}"))
            on_pre, _on_post, _ = self._own_code(proj)
            if proj.plasticity is not None:  # post spikes reach the LearningDense too
                if ("_spikes", "spike") not in ports[proj.target]:
                    ports[proj.target].append(("_spikes", "spike"))
                spiking = True
                if type(proj.plasticity).__name__ == "ThreeFactorSTDP":
                    traces[proj.target].append(self._trace_spec(proj, len(self.links)))
                    ports[proj.target] += [(f"_y{i}_{len(self.links)}", "trace")
                                           for i in (1, 2, 3)]
            for tvar, op, expr in statements(on_pre, f"Projection {proj.name!r} on_pre"):
                where = f"Projection {proj.name!r} on_pre: {tvar} {op} {expr}"
                if not (tvar.endswith("_post") and op in ("+=", "-=")):
                    raise CircuitError(
                        f"{where}: Lava maps spike transmission 'x_post += w' onto a Dense; "
                        f"this statement has no mapping. Use a plasticity rule for learning, "
                        f"or {_ALTERNATIVES}.")
                parts = _split(expr, proj, where)
                if parts["pre"] != "1" or parts["post"] != "1":
                    raise CircuitError(f"{where}: a spike delivers a weight (times constants); "
                                       f"'{expr}' reads neuron variables, which a Dense cannot "
                                       f"carry; {_ALTERNATIVES}.")
                spiking = True
                if proj.plasticity is not None and parts["syn"] != proj.plasticity.weight:
                    raise CircuitError(f"{where}: with {type(proj.plasticity).__name__} the "
                                       f"spike must deliver the learned weight "
                                       f"{proj.plasticity.weight!r}; {_ALTERNATIVES}.")
                link = _Link(proj, parts["syn"], False, True, proj.plasticity)
                k = len(self.links)
                if any(t[0] == k for t in traces[proj.target]):
                    link.trace_k = k
                if ("_spikes", "spike") not in ports[proj.source]:
                    ports[proj.source].append(("_spikes", "spike"))
                ports[proj.target].append((f"_in{k}", "in"))
                ins[proj.target].append((f"_in{k}", -1, tvar[:-5], op, parts["scalar"]))
                self.links.append(link)
                self._wiring.append((link, proj.source, "_spikes", proj.target, f"_in{k}"))
        self.K = self.L + 2 + spiking
        g = array_namespace(c.namespace, float(c.dt))
        self._g = g
        self.specs = {}
        for pop in c.populations.values():
            stored = [n for n, eq in pop.equations.items() if eq.type != SUBEXPRESSION]
            threshold = pop.threshold
            if pop.refractory is not None:  # Brian2's refractoriness, as its Thresholder does
                stored += ["not_refractory", "lastspike"]
                threshold = f"({threshold}) and (not_refractory > 0.5)"  # stored as 0/1
            subexprs = {n: eq.expr.code for n, eq in pop.equations.items()
                        if eq.type == SUBEXPRESSION}
            try:
                update = self._abstract_code(pop)
            except Exception as exc:
                raise CircuitError(f"Population {pop.name!r}: Brian2 cannot build a state "
                                   f"updater with method={pop.method!r} ({exc}).") from exc
            self.specs[pop.name] = _Spec(
                name=pop.name, n=pop.n, stored=stored, subexprs=subexprs, update=update,
                init=pop.init, threshold=threshold, reset=pop.reset,
                refractory=pop.refractory is not None,
                inputs=ins[pop.name], outputs=outs[pop.name], ports=ports[pop.name],
                traces=traces[pop.name],
                spike_port="_spikes" if ("_spikes", "spike") in ports[pop.name] else None,
                K=self.K, L=self.L, spike_phase=spiking, namespace=c.namespace,
                dt=float(c.dt), frac_bits=self.frac_bits,
                seed=(self.seed, list(c.populations).index(pop.name)))
            # compile here too: a code error is reported now, not inside a Lava worker
            for block in (update, pop.init, pop.reset):
                _compile_block(block, f"Population {pop.name!r}")

    def _build(self, weights):
        from lava.proc.dense.process import Dense
        from lava.proc.sparse.process import Sparse
        self.procs, self.models = {}, {}
        for name, spec in self.specs.items():
            pop = self.circuit.populations[name]
            cls = _make_process(spec)
            start = dict(pop.values, not_refractory=1.0, lastspike=-1e4)  # Brian2's start
            values = {v: self._encode(np.broadcast_to(
                np.asarray(start.get(v, 0.0), dtype=float), (pop.n,)).copy())
                for v in spec.stored}
            self.procs[name] = cls(values)
            self.models[self.procs[name]] = _make_models(cls, spec)[self.precision]
        self.weights = {name: {v: np.asarray(weights[name][v], dtype=float).copy()
                               for v in proj.parameters}
                        for name, proj in self.circuit.projections.items()}
        for link, src, out_port, tgt, in_port in self._wiring:
            matrix = self._matrix(link)
            kwargs = {"num_message_bits": 0 if link.binary else _STATE_BITS}
            if self.fixed:
                matrix, link.exp, link.weight_error = self._quantise(matrix)
                kwargs["weight_exp"] = link.exp + (self.frac_bits if link.binary else 0)
            if link.rule is not None:
                link.dense = self._learning_dense(link, matrix, in_port)
                self.procs[tgt]._spikes.connect(link.dense.s_in_bap)
                if link.trace_k is not None:
                    for i in (1, 2, 3):
                        getattr(self.procs[tgt], f"_y{i}_{link.trace_k}").connect(
                            getattr(link.dense, f"s_in_y{i}"))
            else:
                connection = Sparse if link.proj.connect == "one_to_one" else Dense
                link.dense = connection(weights=self._lava_weights(link, matrix),
                                        name=f"{link.proj.name}{in_port}", **kwargs)
            getattr(self.procs[src], out_port).connect(link.dense.s_in)
            link.dense.a_out.connect(getattr(self.procs[tgt], in_port))

    @staticmethod
    def _lava_weights(link, matrix):
        """A one-to-one projection is a Lava Sparse holding the diagonal (kept
        explicitly, zeros included: Lava's Var.set needs a fixed pattern)."""
        if link.proj.connect != "one_to_one":
            return matrix
        n = matrix.shape[0]
        diag = scipy.sparse.csr_matrix((np.diagonal(matrix).copy(), np.arange(n),
                                        np.arange(n + 1)), shape=(n, n))
        return diag

    def _learning_dense(self, link, matrix, in_port):
        """PairSTDP -> Lava's STDPLoihi on a LearningDense (floating point).

        Brian2's rule: pre spike ``w += apost``, post spike ``w += apre``, with
        traces ``apre``/``apost`` decaying as exp(-t/taupre/post) and jumping by
        ``Apre``/``Apost`` at spikes. STDPLoihi: ``dw = lr*A_minus*x0*y1 +
        lr*A_plus*y0*x1`` with traces x1/y1 decaying as exp(-1/tau) per Lava step
        and jumping by their impulses. So lr = A_plus = 1, A_minus = -1 (exact
        literals: STDPLoihi rounds its constants to powers of two), impulses
        ``Apre`` and ``-Apost``, taus in Lava steps (tau/dt * K), one learning
        epoch per Lava step. Weights are held in [wmin, wmax] by the model below.
        """
        from lava.proc.dense.process import LearningDense
        from lava.proc.learning_rules.stdp_learning_rule import STDPLoihi
        rule, dt = link.rule, float(self.circuit.dt)
        if float(rule.wmin) != 0 or np.any(matrix < 0):
            raise CircuitError(f"Projection {link.proj.name!r}: Lava's STDP weights are "
                               "excitatory (wmin = 0, weights >= 0); "
                               f"got wmin={rule.wmin}; {_ALTERNATIVES}.")
        if type(rule).__name__ == "ThreeFactorSTDP":
            # Eligibility = Lava's tag. Once per neurosim step (phase L+1) the post
            # population sends y1 = apost (before its own spike), y2 = dt*eta*M
            # and y3 = dt/tau_e, zeros at other Lava steps. All appliers read the
            # old tag: w += dt*eta*M*E (Brian2's Euler step), E += -E*dt/tau_e
            # + x0*apost + y0*apre (the decay and Brian2's on_pre/on_post).
            from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
            learning = Loihi3FLearningRule(
                dw="u0 * t * y2", dt="x0 * y1 + y0 * x1 - u0 * t * y3",
                x1_impulse=float(rule.Apre), x1_tau=float(rule.taupre) / dt * self.K,
                t_epoch=1)
            if {learning.y1_tau, learning.y2_tau, learning.y3_tau} != {self._Y_TAU}:
                raise CircuitError(  # a Lava other than 0.10: the y-trace gain is wrong
                    f"This Lava's 3-factor rules decay y traces with taus "
                    f"{learning.y1_tau, learning.y2_tau, learning.y3_tau}, not {self._Y_TAU}; "
                    "update LavaTarget._Y_TAU.")
        else:
            learning = STDPLoihi(learning_rate=1, A_plus=1, A_minus=-1,
                                 tau_plus=float(rule.taupre) / dt * self.K,
                                 tau_minus=float(rule.taupost) / dt * self.K,
                                 x1_impulse=float(rule.Apre), y1_impulse=-float(rule.Apost),
                                 t_epoch=1)
        dense = LearningDense(weights=matrix, learning_rule=learning,
                              name=f"{link.proj.name}{in_port}",
                              wmin=float(rule.wmin), wmax=float(rule.wmax))
        self.models[dense] = _clipped_learning_dense_model()
        return dense

    def _matrix(self, link) -> np.ndarray:
        proj = link.proj
        n_post = self.circuit.populations[proj.target].n
        n_pre = self.circuit.populations[proj.source].n
        if link.syn is None:
            w = np.ones((n_post, n_pre) if proj.connect == "all" else (n_pre,))
        else:
            w = self.weights[proj.name][link.syn]
        if proj.connect == "one_to_one":
            w = np.diag(w)
        return w.T.copy() if link.transpose else w.copy()

    @staticmethod
    def _quantise(w, e=None):
        """8-bit mantissa and shared exponent (module doc): (mantissa, e, max error).
        ``e`` is chosen to hold ``max|w|`` unless given (it is fixed once Lava has
        compiled the Dense: later weights beyond its range saturate, and the
        error says so)."""
        top = float(np.max(np.abs(w))) if w.size else 0.0
        mixed = w.min() < 0 < w.max()
        limit = 254 if mixed else 255
        if e is None:
            e = math.ceil(math.log2(top / limit)) if top > 0 else 0
        if mixed:  # Lava drops the lowest mantissa bit of mixed-sign weights: even values
            m = np.clip(2 * np.round(w / 2.0 ** (e + 1)), -256, 254)
        else:
            m = np.clip(np.round(w / 2.0 ** e), -255, 255)
        return m.astype(np.int32), e, float(np.max(np.abs(m * 2.0 ** e - w), initial=0.0))

    def quantisation(self) -> dict[str, dict]:
        """Per Dense: the weight exponent ``e`` and the largest weight rounding error."""
        return {link.dense.name: {"exp": link.exp, "weight_error": link.weight_error}
                for link in self.links}

    def _encode(self, x):
        if not self.fixed:
            return x
        lim = 2 ** (_STATE_BITS - 1) - 1
        return np.clip(np.round(x * 2.0 ** self.frac_bits), -lim, lim).astype(np.int64)

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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
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
        self.circuit.check_variable(population, variable)
        if variable not in self.specs[population].stored:
            raise CircuitError(f"{population}.{variable} is a subexpression; it cannot be set "
                               "(set the variables it is computed from).")
        values = np.asarray(values, dtype=float)
        n = self.circuit.populations[population].n
        if values.ndim == 0:
            values = np.full(n, float(values))
        if values.shape != (n,):
            raise CircuitError(f"The Lava target runs one sample at a time: give "
                               f"{population}.{variable} as shape ({n},), not {values.shape}.")
        self._set_var(getattr(self.procs[population], variable), self._encode(values))

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
        for name, params in weights.items():
            proj = self.circuit.projection(name)
            for var, value in params.items():
                if var not in proj.parameters:
                    raise CircuitError(f"Projection {name!r} has no synaptic variable {var!r}; "
                                       f"its variables are {proj.parameters}.")
                old = self.weights[name][var]
                value = np.broadcast_to(np.asarray(value, dtype=float), old.shape).copy()
                self.weights[name][var] = value
        for link in self.links:
            if link.proj.name in weights and link.syn in weights[link.proj.name]:
                matrix = self._matrix(link)
                if self.fixed:
                    matrix, _, link.weight_error = self._quantise(matrix, link.exp)
                self._set_var(link.dense.weights, self._lava_weights(link, matrix))

    # --- dynamics -----------------------------------------------------------------
    def _configure(self, mode):
        for name, proc in self.procs.items():
            self._set_var(proc._mode, [_MODES[mode]])
            self._set_var(proc._active, [0 if name in self.clamped else 1])

    def settle(self):
        self._configure("settle")
        inits = sum(1 for p in self.circuit.populations.values() if p.init)
        self._lava_steps(max(1, inits) * self.K)

    def run(self, n_steps, record=()):
        record = list(record)
        for pop, var in record:
            self.circuit.check_variable(pop, var)
        self._configure("run")
        if not record:
            if n_steps:
                self._lava_steps(n_steps * self.K)
            return {}
        traces = {key: [] for key in record}
        pops = {pop for pop, _ in record}
        for _ in range(n_steps):
            self._lava_steps(self.L + 1)  # up to the state Brian2's monitors see
            states = {pop: self._stored_state(pop) for pop in pops}
            for pop, var in record:
                value = (states[pop][var] if var in states[pop]
                         else self._evaluate(pop, states[pop], var))
                traces[(pop, var)].append(value)
            self._lava_steps(self.K - self.L - 1)
        return {key: np.array(v) for key, v in traces.items()}

    def learn(self):
        rules = {n: p for n, p in self.circuit.projections.items() if p.learning_rule}
        if not rules:
            return
        self._configure("hold")
        self._lava_steps(self.K)  # summed variables from the current state
        states = {}
        new = {}
        for name, proj in rules.items():
            for pop in (proj.source, proj.target):
                states.setdefault(pop, self._stored_state(pop))
            new[name] = self._apply_rule(proj, states)
        self.set_weights(new)

    def _apply_rule(self, proj, states):
        """The rule's statements on (n_post, n_pre) arrays (n for one_to_one), in order."""
        where = f"Projection {proj.name!r} learning_rule"
        all_to_all = proj.connect == "all"
        values = {}
        for side, pop, axis in (("_pre", proj.source, 0), ("_post", proj.target, 1)):
            spec = self.specs[pop]
            for var in spec.stored + list(spec.subexprs):
                v = (states[pop][var] if var in states[pop]
                     else self._evaluate(pop, states[pop], var))
                values[var + side] = np.expand_dims(v, axis) if all_to_all else v
        syn = {v: a.copy() for v, a in self.weights[proj.name].items()}
        scope = _Scope({**values, **syn}, {}, self._g)
        for var, op, expr in statements(proj.learning_rule, where):
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

"""The population process and its models: every population one Lava
``AbstractProcess``, whose ``PyLoihiProcessModel`` (floating or fixed point) runs the
code Brian2 generates for its equations, phase by phase (package doc, Mapping and
Time steps)."""
from __future__ import annotations

import math

import numpy as np

from neurosim.codegen import Source, array_namespace, block, population_expr

from .fixed_point import (_ROUNDING_FLOOR, _STATE_BITS, _STATE_MAX, FixedPointOverflow,
                          _rounding_error, _state_overflow)
from .plasticity import _Y_TAU

_MODES = {"run": 0, "settle": 1, "hold": 2}
_PACK = 48  # spikes of 48 neurons per float64 item of the spike buffer (exact below 2**53)


# --- code: the population's plan code as Python functions ---------------------------

def _fit(value, n):
    return np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()


def _masked(value, n, old, where):
    return np.where(where, _fit(value, n), old)


class _Code:
    """A population's plan code (:class:`neurosim.lowering.PopulationPlan`) as Python
    functions of its stored values (a dict), written by :class:`neurosim.codegen.Source`
    as the dense engine writes its step loop: subexpressions are computed where read
    and again after a write. ``g``: the globals (the namespace, ``t``), read at call."""

    def __init__(self, plan, g):
        self.plan, self.g = plan, g
        self.subexprs = {k: population_expr(v, f"Population {plan.name!r}, {k}", plan, g)
                         for k, v in plan.subexpressions}
        g.update(_w=_fit, _m=_masked)

    def _source(self, masked=False):
        return Source({self.plan.name: self.plan}, {self.plan.name: self.subexprs},
                      "_m({code}, {n}, {old}, _where)" if masked else "_w({code}, {n})")

    def _function(self, src, returned):
        loads = [f"    {local} = S[{key[1]!r}]" for key, local in src.stored().items()]
        self.g.update(src.globals)
        ns = {}
        exec(compile("\n".join(["def _f(S, _where=None):", *loads, *src.lines,
                                 f"    return {returned}"]),
                     f"<Lava process model of {self.plan.name}>", "exec"), self.g, ns)
        return ns["_f"]

    def block(self, code, what, masked=False):
        """``f(S, where=None) -> {stored variable: new value}`` of a block of
        statements; ``masked``: written only where ``where`` (a reset)."""
        src = self._source(masked)
        src.block(self.plan.name, block(code, f"Population {self.plan.name!r} {what}",
                                        self.plan, self.g), "    ")
        stored = src.stored()
        return self._function(src, "{" + ", ".join(f"{k[1]!r}: {stored[k]}"
                                                   for k in sorted(src.written)) + "}")

    def value(self, source, what):
        """``f(S) -> value`` of an expression."""
        src = self._source()
        code = src.expr(population_expr(source, f"Population {self.plan.name!r} {what}",
                                        self.plan, self.g), "    ")
        return self._function(src, code)


# --- the population process and its models ------------------------------------------

class _Spec:
    """Everything a population's process model needs (plain data, sent to Lava's
    workers): its plan (``plan``, a :class:`neurosim.lowering.PopulationPlan`) is
    compiled in the worker."""

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
        s = self._spec = self.proc_params["spec"]
        self._g = array_namespace(s.namespace, s.dt)
        self._g["N"] = s.n
        # Brian2's numpy rand()/randn() take the vectorisation index its code
        # generator adds; here one seeded stream per population (not Brian2's
        # stream: random circuits agree in distribution, not spike by spike)
        rng = self._rng = np.random.default_rng(s.seed)
        self._g["rand"] = lambda: rng.random(s.n)
        self._g["randn"] = lambda: rng.standard_normal(s.n)
        # fixed point: the running rounding-error estimate of every stored value,
        # the largest magnitude of each variable so far, and the integers last
        # written (a value that differs was set by the host: exact)
        self._err = {v: np.zeros(s.n) for v in s.stored}
        self._scale = dict.fromkeys(s.stored, 0.0)
        self._last = {}
        self._gain = {}  # var -> factor on its error estimate for this Lava step's write
        code = _Code(s.plan, self._g)
        self._update = code.block(s.plan.update, "state update")
        self._init = code.block(s.plan.init, "init")
        self._reset = code.block(s.plan.reset, "reset", masked=True)
        self._threshold = code.value(s.plan.threshold, "threshold") if s.plan.threshold else None
        self._outs = [(port, level, code.value(expr, f"message {expr!r}"))
                     for port, level, expr in s.outputs]
        self._ins = [(port, level, var, op, code.value(factor, f"input factor {factor!r}"))
                    for port, level, var, op, factor in s.inputs]
        self._spiked = np.zeros(s.n, dtype=bool)
        self._traces = [np.zeros(s.n) for _ in s.traces]
        self.trace_y2 = [code.value(y2, "trace") for _k, _decay, _jump, y2, _y3 in s.traces]
        self._params_seen = None

    def _load_params(self):
        """Numeric namespace values from the ``_params`` Var, which the host sets
        before a run when the circuit's namespace has changed."""
        self._params_seen = np.array(self._params, dtype=float)
        for name, start, shape in self._spec.params:
            values = self._params_seen[start:start + math.prod(shape)]
            self._g[name] = float(values[0]) if shape == () else values.reshape(shape)

    def _to_int(self, x, key):
        """Fixed point: round ``x`` to the grid of 24-bit integers; a value outside
        raises (or, with overflow='warn', saturates and is counted in ``_overflow``)."""
        x = np.asarray(x, dtype=float)
        k = np.round(x * 2.0 ** self._spec.frac_bits)
        bad = ~(np.abs(k) <= _STATE_MAX)  # NaN too
        if bad.any():
            self._saturated(key, x[bad])
            k = np.clip(np.where(np.isnan(k), 0.0, k), -_STATE_MAX, _STATE_MAX)
        return k.astype(np.int64)

    def _saturated(self, key, values):
        s = self._spec
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
        s = self._spec
        q = 2.0 ** -s.frac_bits
        after = self._rng.bit_generator.state
        gains = {}
        for var, value in written.items():
            self._rng.bit_generator.state = draws
            raised = self._update(dict(state, **{var: state[var] + q}))[var]
            gains[var] = np.minimum(1.0, np.nan_to_num(np.abs(raised - value) / q, nan=1.0))
        self._rng.bit_generator.state = after
        return gains

    def _store(self, old, new):
        """Fixed point: store the values written in this Lava step on the grid and
        update their rounding-error estimates ``e <- gain * e + |residual|`` (package
        doc, Fixed point); an estimate beyond the tolerance raises or is counted."""
        s = self._spec
        scale = 2.0 ** s.frac_bits
        for var, x in old.items():
            self._scale[var] = max(self._scale[var], float(np.max(np.abs(x))) / scale)
        for var, value in new.items():
            k = self._to_int(value, var)
            err = self._err[var]
            if var in self._last:
                err[old[var] != self._last[var]] = 0.0
            held = np.abs(value) * scale <= _STATE_MAX  # saturation is an overflow
            err[:] = self._gain.get(var, 1.0) * err + np.where(held, np.abs(value - k / scale),
                                                              0.0)
            self._scale[var] = max(self._scale[var],
                                  float(np.max(np.where(held, np.abs(value), 0.0))))
            self._last[var] = k
            setattr(self, var, k)
            over = err > max(s.tolerance * self._scale[var], _ROUNDING_FLOOR / scale)
            if over.any():
                self._stalled(var, float(err.max()), int(over.sum()))

    def _stalled(self, var, err, count):
        s = self._spec
        fit = min([_STATE_BITS - 1] + [math.floor(math.log2(_STATE_MAX / x))
                                       for x in self._scale.values() if x > 0])
        index, what = s.checked[var]
        if s.overflow == "raise":
            step = (self.time_step - 1) // s.K
            raise FixedPointOverflow(
                _rounding_error(what, err, self._scale[var], s.tolerance, s.frac_bits, fit) +
                f" (Lava stopped at step {step} of the target.)")
        # per variable [estimates beyond, the first (what 'raise' reports: its fix
        # holds for the stall that follows too), its scale, fit, the largest since]
        row = self._rounding[5 * index:5 * index + 5]
        if not row[0]:
            row[1:4] = err, self._scale[var], fit
        row[0] += count
        row[4] = max(row[4], err)

    def _ties(self):
        """The ports that tie the circuit's disconnected parts into one Lava graph
        (see ``LavaTarget._tie``): zeros sent, received and dropped."""
        for port, kind in self._spec.ports:
            if kind == "tie_out":
                getattr(self, port).send(np.zeros(1, dtype=int))
        for port, kind in self._spec.ports:
            if kind == "tie_in":
                getattr(self, port).recv()

    def _step(self, state: dict, received: dict) -> tuple[dict, dict]:
        """New stored values and the messages to send, in floating point."""
        s = self._spec
        if s.params and not np.array_equal(self._params, self._params_seen):
            self._load_params()
        phase = (self.time_step - 1) % s.K
        mode, active = int(self._mode[0]), bool(self._active[0])
        self._g["t"] = ((self.time_step - 1) // s.K) * s.dt
        scope = dict(state)  # the stored values, with this Lava step's writes
        new = {}
        trace_out = {}

        def write(values):
            new.update(values)
            scope.update(values)

        self._gain = {}  # error estimates: 1 (kept) unless a write below says otherwise

        def reset():  # a reset replaces the values (and their errors) of the spiked
            values = self._reset(scope, self._spiked)
            self._gain.update({v: np.where(self._spiked, 0.0, self._gain.get(v, 1.0))
                              for v in values})
            write(values)

        if 1 <= phase <= s.L:  # summed variables of level phase-1 arrive
            values = {var: received[port] * factor(scope)
                      for port, level, var, op, factor in self._ins if level == phase - 1}
            self._gain.update(dict.fromkeys(values, 0.0))
            write(values)
        elif phase == s.L + 1:
            if mode == 0 and active:
                draws = self._rng.bit_generator.state
                values = self._update(scope)
                if s.tolerance is not None:
                    self._gain.update(self._gains(state, values, draws))
                write(values)
            elif mode == 1 and active and self._init:
                values = self._init(scope)
                self._gain.update(dict.fromkeys(values, 0.0))
                write(values)
            self._spiked = (np.broadcast_to(self._threshold(scope), (s.n,)).astype(bool)
                           if self._threshold is not None and mode == 0 else
                           np.zeros(s.n, dtype=bool))
            if s.spike_rows and mode == 0:  # read by the host for run(record=spikes)
                self._spike_buf[((self.time_step - 1) // s.K) % s.spike_rows] = \
                    _pack(self._spiked)
            if s.plan.refractory and self._spiked.any():
                write({"not_refractory": np.where(self._spiked, 0.0, scope["not_refractory"]),
                       "lastspike": np.where(self._spiked, self._g["t"], scope["lastspike"])})
            if not s.spike_phase and self._spiked.any():
                reset()
            if mode == 0:
                for j, (k, decay, jump, _y2, y3) in enumerate(s.traces):
                    self._traces[j] = self._traces[j] * decay  # apost now, before this spike
                    gain = math.exp(1 / _Y_TAU)
                    trace_out[f"_y1_{k}"] = gain * self._traces[j]
                    trace_out[f"_y3_{k}"] = np.full(s.n, gain * y3)
                    self._traces[j] = self._traces[j] + jump * self._spiked
        if phase == s.L and mode == 0:
            # dw = dt*eta*M*E one Lava step before the spikes: Brian2 transmits
            # with the weight its clock-driven update has just changed
            for j, (k, *_rest) in enumerate(s.traces):
                trace_out[f"_y2_{k}"] = math.exp(1 / _Y_TAU) * np.broadcast_to(
                    self.trace_y2[j](scope), (s.n,)).astype(float)
        if phase == s.L + 2:  # on_pre increments, then resets (Brian2's order)
            for port, level, var, op, factor in self._ins:
                if level == -1:
                    inc = received[port] * factor(scope)
                    value = scope[var] + (inc if op == "+=" else -inc)
                    if var in s.plan.unless_refractory:  # Brian2's conditional write
                        value = np.where(scope["not_refractory"] > 0.5, value, scope[var])
                    write({var: value})
            if self._spiked.any():
                reset()
        out = {}
        for port, level, expr in self._outs:
            out[port] = (np.broadcast_to(np.asarray(expr(scope), dtype=float),
                                         (s.n,)) if level == phase else np.zeros(s.n))
        if s.spike_port:
            out[s.spike_port] = (self._spiked if phase == s.L + 1
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
        received = {p: getattr(self, p).recv() for p, k in self._spec.ports if k == "in"}
        state = {v: getattr(self, v) for v in self._spec.stored}
        new, out = self._step(state, received)
        for var, value in new.items():
            setattr(self, var, value)
        for port, value in out.items():
            getattr(self, port).send(value)

    q = 2.0 ** spec.frac_bits

    def run_fixed(self):
        self._ties()
        received = {p: getattr(self, p).recv() / q for p, k in self._spec.ports if k == "in"}
        old = {v: getattr(self, v) for v in self._spec.stored}
        new, out = self._step({v: x / q for v, x in old.items()}, received)
        self._store(old, new)
        for port, value in out.items():
            getattr(self, port).send(value if value.dtype == bool else
                                     self._to_int(value, port))

    return {"floating_pt": build("floating_pt", float, run_float),
            "fixed_pt": build("fixed_pt", np.int64, run_fixed)}


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

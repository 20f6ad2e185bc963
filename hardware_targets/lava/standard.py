"""Lava's own processes for circuits of leaky integrate-and-fire neurons.

Loihi 2's compiler takes Lava's standard processes (``LIF``, ``Dense``,
``Sparse``, ...), not the generated Python process models the Lava target
builds for arbitrary equations. When every population of a circuit is a LIF
(recognised in its equations by :func:`neurosim.neuron_forms.lif_form`, with
at most one synaptic current time constant) or a Poisson source, and every
projection is a spike projection, static or learning by ``PairSTDP``,
``LavaTarget`` (``processes='auto'``, the default; ``'standard'`` insists,
``'generated'`` declines) builds :class:`LavaStandardTarget`: one Lava ``LIF``
per population, one ``Dense`` (``LearningDense``) per projection, one Lava
time step per neurosim step (the generated models take 2-3 Lava steps per
step).

The mapping is derived from the population's own discretisation, not from a
formula per method: one step of its Brian2 state updater (the lowered
abstract code, run on the host) applied to unit states gives the affine step
``v <- a_v v + k g + b``, ``g <- a_g g``, which is exactly the step Lava's LIF
takes (``u <- (1 - du) u + a_in``; ``v <- (1 - dv) v + u + bias``; a spike
when ``v > vth``; then ``v = 0``), with

==================  ===========================================================
Lava ``LIF``         from the declaration (per neuron unless noted)
==================  ===========================================================
``v``                ``v - v_reset`` (Lava resets to 0)
``u``                ``k g``: the current's contribution to v in one step
``dv`` (one value)   ``1 - a_v`` (Euler: ``dt/tau``; exact: ``1 - exp(-dt/tau)``)
``du`` (one value)   ``1 - a_g``
``bias_mant``        ``b - dv * v_reset`` (``b``: the step's constant term)
``vth`` (one value)  ``v_threshold - v_reset``
``Dense`` weights    ``k_post * jump`` (the jump a spike makes in the current)
==================  ===========================================================

Timing agrees too: Brian2 adds a spike's jump to the current after the step
that emitted it, and Lava's ``Dense`` delivers it at the next step, where the
current takes it before v reads it. So on ``lava`` (floating point) the spikes
are Brian2's, step for step, up to float rounding (tests/test_lava_standard.py).
Poisson sources draw their spikes inside Lava (a process of their own: Lava
0.10 has none), from the target's seed (a stream of their own: statistically,
not bitwise, Brian2's); spikes are read through a ring buffer like Lava's
``io.sink.RingBuffer`` holding 48 spikes per item (:func:`_host_io`).

A refractory period (a time, ``(unless refractory)`` on v only) maps onto
Lava's ``LIFRefractory``: Brian2 holds v for ``timestep(refractory) - 1``
steps after the step of the spike, which is its ``refractory_period``.

Delays map onto Lava's ``DelayDense``, in steps (one delay per pair of
neurons).

``PairSTDP`` on an all-to-all projection without delays maps onto Lava's
``LearningDense`` with ``STDPLoihi``, the post population's spikes wired to its
``s_in_bap``, one learning epoch per step, trace time constants in steps, the
trace jumps and ``wmax`` in the Lava weight units (``k`` times ``w``); the
model holds the weights in ``[0, wmax]``. Its weights are Brian2's but for a
pre and a post spike of one synapse in the same step (Lava's engine pairs both;
Brian2 runs the pre pathway first): ``tests/test_lava_fixed_stdp.py``. On
``lava-fixed`` it runs on Lava's fixed-point learning engine: :mod:`.stdp_fixed`.

Not (yet) standard, and so run on generated processes, with the reason from
:func:`standard_plan` (``LavaTarget.deployment()`` says it per population):
other plasticity (ThreeFactorSTDP's modulator is not a LIF), synaptic currents
of different time constants in one population, per-neuron time constants or
thresholds, input written straight into v (Lava's LIF takes input through u,
and keeps input that arrives in the step a neuron fires, where Brian2's reset
overwrites it), and ``overflow='warn'`` on
``lava-fixed`` (Lava's bit-accurate LIF wraps and clips; the checked model here
raises instead).

On ``lava-fixed`` the same plan runs on Lava's bit-accurate fixed-point models
(``PyLifModelBitAcc``, ``PyDenseModelBitAcc``), with the scaling derived from
the declaration and the errors reported: :mod:`.lif_fixed`.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from neurosim.circuit import CircuitError
from neurosim.codegen import array_namespace
from neurosim.lowering import lower
from neurosim.neuron_forms import (current_groups, is_plastic, is_spike_source, jump_matrix,
                                   lif_form, spike_input, synapse_pairs)
from neurosim.plasticity import PairSTDP
from neurosim.target import Capabilities, Target, check_steps, is_spikes, parse_record

from .connections import _clipped_learning_dense_model, _delay_dense_model, _delay_steps
from .lif_fixed import V_HEADROOM, FixedLif, check_headroom, fixed_weights
from .lif_fixed import models as fixed_models
from .process import _Code, _pack, _unpack
from .plasticity import _PairSTDPMapping, check_weights
from .runtime import LavaRuntime
from .stdp_fixed import TRACE_HEADROOM, FixedPairSTDP, check_trace_headroom, learning_model

__all__ = ["LavaStandardTarget", "standard_plan"]

#: Lava steps per Var read of the spike sinks (their buffer length)
CHUNK = 1000


class _Lif:
    """The Lava LIF parameters of one population (module doc)."""

    def __init__(self, form, currents, step, frozen=0):
        self.form, self.currents, self.frozen = form, currents, frozen
        self.du, self.dv, self.vth = step["du"], step["dv"], step["vth"]
        self.k, self.a_g, self.bias = step["k"], step["a_g"], step["bias"]
        self.fixed = None  # its integers on lava-fixed (.lif_fixed.FixedLif)


def standard_plan(circuit, precision: str = "floating_pt", v_headroom: float = V_HEADROOM,
                  overflow: str = "raise"):
    """``({population: _Lif | 'source'}, '')`` when the circuit maps onto Lava's
    standard processes, else ``(None, reason)`` naming the first construct that
    does not."""
    fixed = precision == "fixed_pt"
    v_headroom = check_headroom(v_headroom)
    if fixed and overflow != "raise":
        return None, (f"overflow={overflow!r} (Lava's bit-accurate LIF wraps and clips; "
                      "generated processes saturate and count)")
    plan = lower(circuit, update=False)  # the state updaters only once the rest fits
    out, written = {}, {}
    for proj in circuit.projections.values():
        pp = plan.projections[proj.name]
        where = f"projection {proj.name!r}"
        if pp.summed:
            return None, f"{where} couples continuously (summed variables)"
        if is_plastic(pp):
            why = _plastic(proj, pp)
            if why:
                return None, f"{where} {why}"
        if proj.delay is not None and _delay_matrix(circuit, proj, 0) is None:
            return None, (f"{where} has synapses of different delays between one pair of "
                          "neurons (Lava's DelayDense holds one per pair)")
        try:
            var, _ = spike_input(plan, proj, where)
        except CircuitError as exc:
            return None, str(exc)
        written.setdefault(proj.target, set()).add(var)
    for name, pop in circuit.populations.items():
        if is_spike_source(pop):
            if name in written:
                return None, f"the Poisson source {name!r} receives spikes"
            out[name] = "source"
            continue
        form, why = lif_form(circuit, name, refractory=True)
        if form is None:
            return None, f"population {name!r} is not a LIF: {why}"
        frozen = 0
        if form.refractory is not None:
            flags = {v: "unless refractory" in pop.equations[v].flags
                     for v in pop.equations.diff_eq_names}
            if not flags[form.v] or any(flags[c.name] for c in form.currents):
                return None, (f"population {name!r} is refractory without '(unless "
                              f"refractory)' on {form.v} alone (Lava's LIFRefractory holds v "
                              "and integrates its current)")
            # Brian2 holds v for timestep(refractory) - 1 steps after the spike's step
            # (its timestep(): int((t + 1e-3 dt) / dt)); Lava's LIFRefractory for its
            # refractory_period steps
            dt = float(circuit.dt)
            frozen = int((form.refractory + 1e-3 * dt) / dt) - 1
        if pop.init:
            return None, f"population {name!r} has init code"
        currents = [c.name for c in form.currents]
        if len(current_groups(form)) > 1:
            return None, (f"population {name!r} has synaptic currents of different time "
                          f"constants or weights ({', '.join(currents)}; Lava's LIF has one "
                          "current u)")
        if form.v in written.get(name, ()):
            return None, (f"projections write v of {name!r} directly (Lava's LIF takes input "
                          "through its current u)")
        if plan.populations[name].update is None:
            plan = lower(circuit)
        try:
            step = _step(circuit, plan, name, form)
            out[name] = _Lif(form, currents, step, frozen)
            if fixed:
                out[name].fixed = FixedLif(name, out[name], v_headroom)
        except CircuitError as exc:
            return None, str(exc)
    if all(m == "source" for m in out.values()):
        return None, "there is no LIF population"
    return out, ""


def _plastic(proj, pp) -> str:
    """Why a plastic projection does not map onto Lava's ``LearningDense`` with
    ``STDPLoihi`` (floating point) or its fixed-point engine (.stdp_fixed), or ''."""
    rule = pp.plasticity
    if not isinstance(rule, PairSTDP) or pp.learning or pp.on_post or len(pp.on_pre) > 1:
        return ("is plastic other than by a PairSTDP rule (Lava's standard LearningDense "
                "maps PairSTDP; the rest runs on generated processes)")
    if proj.kind != "all" or proj.delay is not None:
        return "is a PairSTDP projection that is not all-to-all without delays (LearningDense)"
    if float(rule.wmin) != 0:
        return f"has PairSTDP with wmin={rule.wmin} (Lava's STDP weights are excitatory: 0)"
    if pp.on_pre[0].factors["pre"] or pp.on_pre[0].factors["post"]:
        return "transmits its PairSTDP weight times neuron variables (LearningDense: w only)"
    return ""


@functools.cache
def _host_io():
    """``{'sink': (process class, model), 'poisson': (...)}``, host-side processes
    that do not deploy: a spike sink like Lava's ``io.sink.RingBuffer`` whose
    buffer holds 48 spikes per item (:func:`.process._pack`), and a Poisson
    source drawing ``rand() < rates * dt`` per neuron and step from its own seeded
    generator. Written here because Lava's ``Var.get``/``set`` sends a Var one
    message per item (25 us each): the sink RingBuffer of 160 neurons x 1000
    steps took 4 s to read, and 1000 Poisson inputs written into an
    ``io.source.RingBuffer`` 25 s per 1000 steps (0.5 s packed)."""
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class PackedSpikeSink(AbstractProcess):
        def __init__(self, shape, buffer):
            super().__init__(shape=shape, buffer=buffer)
            self.a_in = InPort(shape=shape)
            self.data = Var(shape=(len(_pack(np.zeros(shape[0]))), buffer), init=0)

    class PoissonSource(AbstractProcess):
        def __init__(self, rates, dt, seed):
            super().__init__(shape=np.shape(rates), dt=dt, seed=seed)
            self.s_out = OutPort(shape=np.shape(rates))
            self.rates = Var(shape=np.shape(rates), init=rates)

    @implements(proc=PackedSpikeSink, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt", "fixed_pt")
    class PyPackedSpikeSinkModel(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        data: np.ndarray = LavaPyType(np.ndarray, float)

        def run_spk(self):
            self.data[:, (self.time_step - 1) % self.data.shape[1]] = _pack(
                self.a_in.recv() > 0)

    @implements(proc=PoissonSource, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt", "fixed_pt")
    class PyPoissonSourceModel(PyLoihiProcessModel):
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        rates: np.ndarray = LavaPyType(np.ndarray, float)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            self._rng = np.random.default_rng(np.random.SeedSequence(proc_params["seed"]))

        def run_spk(self):
            p = self.rates * self.proc_params["dt"]
            self.s_out.send((self._rng.random(p.shape) < p).astype(float))

    return {"sink": (PackedSpikeSink, PyPackedSpikeSinkModel),
            "poisson": (PoissonSource, PyPoissonSourceModel)}


def _delay_matrix(circuit, proj, seed):
    """``(n_post, n_pre)`` delays in steps, rounded as Brian2's spike queue rounds
    them, or None when synapses between one pair differ."""
    steps = _delay_steps(circuit, proj, seed)
    i, j = synapse_pairs(circuit, proj, seed)
    shape = (circuit.population(proj.target).n, circuit.population(proj.source).n)
    out = np.zeros(shape, np.int64)
    out[j, i] = steps
    return out if np.array_equal(out[j, i], steps) else None


def _step(circuit, plan, name, form) -> dict:
    """The affine step of ``name``'s state updater, read off unit states (module doc)."""
    p = plan.populations[name]
    g = array_namespace(circuit.namespace, float(circuit.dt))
    g["t"] = 0.0
    update = _Code(p, dict(g, rand=None, randn=None)).block(p.update, "state update")
    pop, n = circuit.population(name), form.n
    state = {v: pop.initial(v) for v in p.stored}
    diff = sorted(pop.equations.diff_eq_names)
    for v in diff:
        state[v] = np.zeros(n)
    if "not_refractory" in state:  # the step of a neuron that is not refractory
        state.update(not_refractory=np.ones(n), lastspike=np.full(n, -1e4))
    currents = [c.name for c in form.currents]

    def run(**values):
        new = update(dict(state, **{k: np.full(n, x) for k, x in values.items()}))
        return {v: np.broadcast_to(new.get(v, state[v]), (n,)) for v in diff}
    base = run()
    a_v = run(**{form.v: 1.0})[form.v] - base[form.v]
    unit = dict.fromkeys(currents, 1.0)
    with_g = run(**unit)
    k = (with_g[form.v] - base[form.v]) / max(1, len(currents))
    a_g = (with_g[currents[0]] - base[currents[0]]) if currents else np.ones(n)
    where = f"population {name!r}"
    for v in diff:  # linear, and the currents decay on their own
        probe = {x: 0.37 * (i + 1) for i, x in enumerate(diff)}
        want = base[v] + sum(probe[x] * (run(**{x: 1.0})[v] - base[v]) for x in diff)
        if not np.allclose(run(**probe)[v], want, rtol=1e-9, atol=1e-15):
            raise CircuitError(f"{where}: its state update is not linear")
    dv, du = 1.0 - a_v, 1.0 - a_g
    vth = form.v_threshold - form.v_reset
    for what, x in (("time constant of v", dv), ("synaptic time constant", du),
                    ("threshold above the reset", vth)):
        if np.ptp(x) > 1e-12 * np.max(np.abs(x)):
            raise CircuitError(f"{where} has a {what} that differs between neurons (Lava's "
                               "LIF has one du, dv and vth per process)")
    return {"dv": float(dv[0]), "du": float(du[0]), "vth": float(vth[0]), "k": k,
            "a_g": float(a_g[0]), "bias": base[form.v] - dv * form.v_reset}


class LavaStandardTarget(LavaRuntime, Target):
    """A circuit of LIF populations and Poisson sources on Lava's own ``LIF`` and
    ``Dense`` processes (module doc). Built by ``LavaTarget`` where it applies."""

    name = "lava"
    capabilities = Capabilities(spikes=True, random=True)

    @classmethod
    def unsupported(cls, circuit, precision: str = "floating_pt", v_headroom=V_HEADROOM,
                    overflow="raise", **options) -> str | None:
        return standard_plan(circuit, precision, v_headroom, overflow)[1] or None

    def __init__(self, circuit, seed: int = 0, weights: dict | None = None,
                 precision: str = "floating_pt", processes: str = "auto",
                 v_headroom: float = V_HEADROOM, overflow: str = "raise",
                 trace_headroom: float = TRACE_HEADROOM,
                 frac_bits: int = 12, weight_range=None, rounding_tolerance=None, **options):
        # frac_bits, weight_range, rounding_tolerance: the generated processes'
        # fixed-point options, accepted so that the same call builds either
        Target.__init__(self, circuit, seed, weights, precision=precision,
                        processes=processes, **options)
        from .compat import import_lava
        import_lava()
        self.precision, self._steps = precision, 0
        self.fixed = precision == "fixed_pt"
        self.capabilities = dataclasses.replace(self.capabilities, fixed_point=self.fixed)
        self.v_headroom = check_headroom(v_headroom)
        self.trace_headroom = check_trace_headroom(trace_headroom)
        self.lif, reason = standard_plan(circuit, precision, self.v_headroom, overflow)
        if self.lif is None:
            raise CircuitError(f"processes='standard': {reason}.")
        self.rates = {name: circuit.population(name).initial("rates")
                      for name, kind in self.lif.items() if kind == "source"}
        self._build_standard(weights or circuit.initial_weights(seed))
        self._start()

    # --- build ---------------------------------------------------------------------
    def _build_standard(self, weights):
        from lava.proc.dense.process import DelayDense, Dense
        c = self.circuit
        self.procs, self.models, self.sinks, self.dense = {}, {}, {}, {}
        for name, m in self.lif.items():
            n = c.population(name).n
            if m == "source":  # its own stream of the target's seed (module doc)
                source, model = _host_io()["poisson"]
                self.procs[name] = source(self.rates[name].copy(), float(c.dt),
                                          [int(self.seed), 15, list(self.lif).index(name)])
                self.models[self.procs[name]] = model
            else:
                self._build_lif(name, m)
            sink_process, sink_model = _host_io()["sink"]
            self.sinks[name] = sink = sink_process(shape=(n,), buffer=CHUNK)
            self.models[sink] = sink_model
            self.procs[name].s_out.connect(sink.a_in)
        self.weights = {name: {v: np.asarray(weights[name][v], float).copy()
                               for v in proj.parameters}
                        for name, proj in c.projections.items()}
        plan = lower(c, update=False)
        self._inputs, self._exp, self.weight_errors = {}, {}, {}
        self._unit, self.stdp = {}, {}  # PairSTDP projections (_stdp)
        for name, proj in c.projections.items():
            self._inputs[name] = spike_input(plan, proj, f"projection {name!r}")[1]
            if proj.plasticity is not None:
                self._stdp(name)
            matrix = self._lava_matrix(name)  # on lava-fixed, sets the exponent
            fmt = {"weight_exp": self._exp[name], "num_weight_bits": 8} if self.fixed else {}
            if proj.plasticity is not None:
                d = self._learning_dense(name, matrix, fmt)
                self.procs[proj.target].s_out.connect(d.s_in_bap)
            elif proj.delay is None:
                d = Dense(weights=matrix, name=name, **fmt)
            else:  # delays in Lava steps = neurosim steps (Dense adds the one step
                # that Brian2's delivery in the step of the spike lacks, as without delay)
                delays = _delay_matrix(c, proj, self.seed)
                if delays is None:
                    raise CircuitError(f"Projection {name!r}: with seed {self.seed}, synapses "
                                       "of different delays join one pair of neurons (Lava's "
                                       "DelayDense holds one per pair).")
                d = DelayDense(weights=matrix, name=name, delays=delays, **fmt)
                self.models[d] = _delay_dense_model(self.precision)
            self.procs[proj.source].s_out.connect(d.s_in)
            d.a_out.connect(self.procs[proj.target].a_in)
            self.dense[name] = d
        self._tie_standard()

    def _build_lif(self, name, m):
        """The Lava LIF (LIFRefractory) process of one population (module doc)."""
        from lava.proc.lif.process import LIF, LIFRefractory
        n = self.circuit.population(name).n
        pop, form = self.circuit.population(name), m.form
        v0 = pop.initial(form.v)
        g0 = sum((pop.initial(g) for g in m.currents), np.zeros(n))
        kind, extra = (LIFRefractory, {"refractory_period": m.frozen}) if m.frozen \
            else (LIF, {})
        v, u = v0 - form.v_reset, m.k * g0 / m.a_g
        if self.fixed:
            f = m.fixed
            self.procs[name] = kind(
                shape=(n,), v=f.state(v), u=f.state(u), du=f.du, dv=f.dv,
                bias_mant=f.bias_mant, bias_exp=f.bias_exp, vth=f.vth, name=name,
                **extra)
            for key, value in (("name", name), ("scale", f.scale),
                               ("headroom", self.v_headroom)):  # for its messages
                self.procs[name].proc_params[f"neurosim_{key}"] = value
            self.models[self.procs[name]] = fixed_models()[kind]
        else:
            self.procs[name] = kind(shape=(n,), v=v, u=u, du=m.du, dv=m.dv,
                                    bias_mant=m.bias.copy(), bias_exp=0, vth=m.vth,
                                    name=name, **extra)

    def _stdp(self, name):
        """A PairSTDP projection's scaling: its unit in ``self._unit`` (what its Lava
        matrix holds per unit of ``w``) and, on lava-fixed, its integers in
        ``self.stdp`` (.stdp_fixed; they fix the weight exponent)."""
        proj = self.circuit.projection(name)
        rule = proj.plasticity
        unit = jump_matrix(self.circuit, proj, self._inputs[name],
                           {rule.weight: np.ones_like(self.weights[name][rule.weight])}, self.seed)
        unit = unit * self.lif[proj.target].k[:, None]
        if np.ptp(unit) > 1e-12 * np.max(np.abs(unit)) or not unit.flat[0] > 0:
            raise CircuitError(f"Projection {name!r}: its PairSTDP weight reaches the "
                               "neurons with different (or non-positive) gains, and Lava's "
                               "STDP traces are shared by a whole pre or post population: "
                               "give the target neurons one gain, or use "
                               "processes='generated'.")
        unit = float(unit.flat[0])
        check_weights(name, self.weights[name][rule.weight], rule)
        self._unit[name] = unit
        if self.fixed:
            f = self.lif[proj.target].fixed
            self.stdp[name] = stdp = FixedPairSTDP(name, rule, unit * f.gain * f.scale / 64,
                                                   float(self.circuit.dt), self.trace_headroom)
            self._exp[name], self._unit[name] = stdp.exp, 1 / stdp.q

    def _learning_dense(self, name, matrix, fmt):
        """A PairSTDP projection's LearningDense (module doc; .stdp_fixed)."""
        from lava.proc.dense.process import LearningDense
        from lava.utils.weightutils import SignMode
        rule, unit = self.circuit.projection(name).plasticity, self._unit[name]
        if not self.fixed:
            learning = _PairSTDPMapping().learning_rule(rule, float(self.circuit.dt), 1,
                                                        scale=unit)
            d = LearningDense(weights=matrix, learning_rule=learning, name=name,
                              wmin=0.0, wmax=float(rule.wmax) * unit)
            self.models[d] = _clipped_learning_dense_model()
            return d
        stdp = self.stdp[name]
        d = LearningDense(weights=matrix, learning_rule=stdp.learning_rule(self.seed),
                          name=name, sign_mode=SignMode.EXCITATORY, **fmt,
                          neurosim_name=name, neurosim_wmax=stdp.wmax,
                          neurosim_headroom=self.trace_headroom)
        self.models[d] = learning_model()
        return d

    def _sync_weights(self):
        """Read what Lava's learning engine changed into ``self.weights``."""
        for name, unit in self._unit.items():
            rule = self.circuit.projection(name).plasticity
            self.weights[name][rule.weight] = self._get_var(self.dense[name].weights) / unit

    def _float_matrix(self, name):
        """The projection's weights as jumps of the target's u (v's units)."""
        proj = self.circuit.projection(name)
        matrix = jump_matrix(self.circuit, proj, self._inputs[name], self.weights[name],
                             self.seed)
        return matrix * self.lif[proj.target].k[:, None]

    def _lava_matrix(self, name):
        """What the projection's Dense holds: the float matrix, or on lava-fixed its
        8-bit mantissas (their largest error kept in ``weight_errors``; the exponent,
        in ``_exp``, is the smallest that holds the first, initial weights)."""
        matrix = self._float_matrix(name)
        if not self.fixed:
            return matrix
        f = self.lif[self.circuit.projection(name).target].fixed
        m, error, self._exp[name] = fixed_weights(name, matrix * f.gain, f.scale,
                                                  self._exp.get(name))
        self.weight_errors[name] = error + float(np.max(np.abs(matrix), initial=0.0)) * abs(
            f.gain - 1)  # from the declared weights, the steady-state gain included
        return m

    def _tie_standard(self):
        """Lava runs only the processes connected to the one it is run on: every
        part of the circuit not connected to the first LIF is tied to it by a Dense
        of zero weights."""
        from lava.proc.dense.process import Dense
        parent = {p: p for p in self.lif}

        def root(p):
            while parent[p] != p:
                p = parent[p]
            return p
        for proj in self.circuit.projections.values():
            parent[root(proj.source)] = root(proj.target)
        anchor = next(p for p, m in self.lif.items() if m != "source")
        for part in dict.fromkeys(root(p) for p in self.lif):
            if part != root(anchor):
                src = next(p for p in self.lif if root(p) == part)
                d = Dense(weights=np.zeros((self.circuit.population(anchor).n,
                                            self.circuit.population(src).n)))
                self.procs[src].s_out.connect(d.s_in)
                d.a_out.connect(self.procs[anchor].a_in)
        self._runtime_proc = self.procs[anchor]

    def _start(self):
        from lava.magma.core.run_configs import Loihi2SimCfg
        self._cfg = Loihi2SimCfg(select_tag=self.precision, exception_proc_model_map=self.models)
        self._namespace = self._constants()

    def _constants(self):
        return {k: np.array(v, dtype=float) for k, v in self.circuit.namespace.items()
                if isinstance(v, (int, float, np.number, np.ndarray))
                or hasattr(v, "dim")}

    def _refresh(self):
        """The namespace changed since the last run: derive the LIF parameters and
        the weights again (they read its constants) and send them to Lava."""
        now = self._constants()
        if now.keys() == self._namespace.keys() and all(
                np.array_equal(now[k], self._namespace[k]) for k in now):
            return
        self.circuit.check_constants()
        lif, reason = standard_plan(self.circuit, self.precision, self.v_headroom)
        if lif is None:
            raise CircuitError(f"After the namespace change, {reason}: build the target "
                               "again.")
        for name, m in lif.items():
            old = self.lif[name]
            if m != "source" and (m.du, m.dv, m.vth) != (old.du, old.dv, old.vth):
                raise CircuitError(
                    f"The namespace change alters the time constants or the threshold of "
                    f"{name!r}, which Lava cannot change in a running LIF process (du, dv "
                    "and vth are scalars of its model): build the target again.")
        self.lif, self._namespace = lif, now
        for name, m in lif.items():
            if m != "source" and self.fixed:
                self._set_var(self.procs[name].bias_mant, m.fixed.bias_mant)
                self._set_var(self.procs[name].bias_exp, m.fixed.bias_exp)
            elif m != "source":
                self._set_var(self.procs[name].bias_mant, m.bias)
        self._sync_weights()
        for name, d in self.dense.items():
            self._set_var(d.weights, self._lava_matrix(name))

    def deployment(self) -> dict[str, str]:
        model = ", Lava's bit-accurate fixed-point model" if self.fixed else ""
        return {name: (f"Lava {'LIFRefractory' if m.frozen else 'LIF'} (standard "
                       f"process{model})" if m != "source" else
                       "Poisson source: a host-side Lava process drawing its spikes "
                       "(simulation only)")
                for name, m in self.lif.items()}

    # --- state -------------------------------------------------------------------------
    def _pending(self, name):
        """What the Dense processes into ``name`` deliver at the next step (v's units)."""
        n = self.circuit.population(name).n
        out = np.zeros(n)
        for p, d in self.dense.items():
            if self.circuit.projection(p).target == name:
                buff = self._get_var(d.a_buff)  # (n,), (n, delays + 1), or its initial 0
                out += buff.reshape(n, -1)[:, 0] if buff.size > 1 else buff.ravel()
        return out * 64 / self.lif[name].fixed.scale if self.fixed else out

    def _state(self, population, var):
        """v - v_reset or u of a LIF population, in v's units."""
        value = self._get_var(getattr(self.procs[population], var))
        return value / self.lif[population].fixed.scale if self.fixed else value

    def _set_state(self, population, var, value):
        self._set_var(getattr(self.procs[population], var),
                      self.lif[population].fixed.state(value) if self.fixed else value)

    def get(self, population, variable):
        self.circuit.check_variable(population, variable)
        m = self.lif[population]
        if m == "source":
            if variable != "rates":
                raise CircuitError(f"{population}.{variable}: a Poisson source on Lava's "
                                   "standard processes holds its rates only.")
            return self.rates[population].copy()
        if variable == m.form.v:
            return self._state(population, "v") + m.form.v_reset
        if variable in m.currents:
            if len(m.currents) > 1:
                raise CircuitError(f"{population}.{variable}: the currents {m.currents} are "
                                   "one current u in Lava's LIF; read their sum with "
                                   "processes='generated'.")
            # g after this step's input: decayed u plus the spikes in flight, over k
            return (m.a_g * self._state(population, "u") + self._pending(population)) / m.k
        return self.circuit.population(population).initial(variable)

    def set(self, population, variable, values):
        values = self.state_values(population, variable, values)
        m = self.lif[population]
        if m == "source" and variable == "rates":
            self._set_var(self.procs[population].rates, values)
            self.rates[population] = values.copy()
            return
        if m != "source" and variable == m.form.v:
            return self._set_state(population, "v", values - m.form.v_reset)
        if m != "source" and variable in m.currents and len(m.currents) == 1:
            return self._set_state(population, "u",
                                   (m.k * values - self._pending(population)) / m.a_g)
        raise CircuitError(f"{population}.{variable}: Lava's standard processes hold v, the "
                           "synaptic current and a source's rates; set others with "
                           "processes='generated'.")

    def quantisation(self) -> dict:
        """lava-fixed: per LIF population its scale and the errors of its constants
        (in v's units; :mod:`.lif_fixed`), per projection its weight exponent and
        largest weight error (v's units)."""
        if not self.fixed:
            raise CircuitError("quantisation(): this target runs floating point; build it "
                               "with precision='fixed_pt' (lava-fixed).")
        stdp = {name: {"impulses": [s.terms[k][0] for k in ("potentiation", "depression")],
                       "constants": [s.terms[k][1] * 2.0 ** s.terms[k][2]
                                     for k in ("potentiation", "depression")],
                       "taus": s.taus, "wmax": s.wmax, "errors": dict(s.errors)}
                for name, s in self.stdp.items()}
        return {"populations": {name: {"scale": m.fixed.scale, **m.fixed.errors}
                                for name, m in self.lif.items() if m != "source"},
                "projections": {name: {"weight_exp": self._exp[name],
                                       "weight_error": self.weight_errors[name],
                                       **({"stdp": stdp[name]} if name in stdp else {})}
                                for name in self.dense}}

    def clamp(self, population, variable, values):
        raise CircuitError("clamping on Lava's standard processes: their LIF has no "
                           "clamp; use processes='generated'.")

    def get_weights(self):
        self._sync_weights()
        return {p: {v: a.copy() for v, a in w.items()} for p, w in self.weights.items()}

    def set_weights(self, weights):
        self._sync_weights()
        for name, arrays in weights.items():
            rule = self.circuit.projection(name).plasticity
            if rule is not None and rule.weight in arrays:
                check_weights(name, arrays[rule.weight], rule)
            for var, value in arrays.items():
                self.weights[name][var] = np.asarray(value, float).copy()
            self._set_var(self.dense[name].weights, self._lava_matrix(name))

    def settle(self):
        self._lava_steps(1)

    def learn(self):
        pass  # PairSTDP learns inside Lava, at every step (standard_plan)

    # --- running -------------------------------------------------------------------------
    def run(self, n_steps, record=()):
        n_steps = check_steps(n_steps)
        record = parse_record(self.circuit, record)
        spikes = [(p, idx) for p, v, idx in record if is_spikes(self.circuit, p, v)]
        variables = [(p, v, idx) for p, v, idx in record if not is_spikes(self.circuit, p, v)]
        rows = {p: [] for p, _ in spikes}
        traces = {(p, v): [] for p, v, _ in variables}
        self._refresh()
        done = 0
        while done < n_steps:  # segments that end where the RingBuffers wrap around
            size = min(CHUNK - self._steps % CHUNK, n_steps - done)
            first = self._steps
            for _ in range(size if variables else 1):  # variables: a pause per step
                for p, v, idx in variables:  # the state at the start of the step
                    value = self.get(p, v)
                    traces[(p, v)].append(value if idx is None else value[idx])
                self._lava_steps(1 if variables else size)
            for p in rows:  # a sink is read once per segment (_host_io)
                fired = _unpack(self._get_var(self.sinks[p].data)[
                    :, (first + np.arange(size)) % CHUNK].T, self.circuit.population(p).n)
                k, neuron = np.nonzero(fired)
                rows[p].append(np.stack([k + done, neuron], axis=1).astype(np.int64))
            done += size
        out = {(p, v): np.array(traces[(p, v)], float).reshape(
            n_steps, self.circuit.population(p).n if idx is None else len(idx))
            for p, v, idx in variables}
        for p, idx in spikes:
            found = np.concatenate(rows[p]) if rows[p] else np.zeros((0, 2), np.int64)
            out[(p, "spikes")] = found if idx is None else found[np.isin(found[:, 1], idx)]
        return out

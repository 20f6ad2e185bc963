"""The Lava target class: :class:`LavaTarget` plans the Lava graph of a circuit
(ports, connections, ties), builds and runs it, and moves state, weights and
parameters between the host and Lava; :func:`_refuse` names what has no mapping
(package doc)."""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import scipy.sparse
from brian2.equations.equations import SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.utils.stringtools import get_identifiers

from neurosim.circuit import Circuit, CircuitError
from neurosim.codegen import array_namespace
from neurosim.learning import LearningRule
from neurosim.lowering import lower, strip_suffix
from neurosim.target import (Capabilities, Target, check_steps, is_spikes, parse_record,
                             weight_values)

from .compat import import_lava
from .connections import (_clipped_learning_dense_model, _delay_dense_model, _delay_steps,
                          _dense_parts, _fixed_pattern_sparse_model, _Link, _spike_statement)
from .fixed_point import (_MANTISSA, _MAX_DELAY, _STATE_BITS, _STATE_MAX, ROUNDING_TOLERANCE,
                          FixedPointOverflow, FixedPointWarning, _exponent, _quantise, _rounding_error,
                          _state_overflow)
from .plasticity import _Y_TAU, _rule_mapping, check_weights
from .process import (_MODES, _PACK, _Code, _make_models, _make_process, _numeric_namespace,
                      _Spec, _unpack)
from .runtime import LavaRuntime

__all__ = ["LavaTarget", "PRECISIONS", "OVERFLOW", "PROCESSES"]

PRECISIONS = ("floating_pt", "fixed_pt")
PROCESSES = ("auto", "standard", "generated")
OVERFLOW = ("raise", "warn")


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
                    "Loihi 3-factor rule, in floating point only; in fixed point PairSTDP "
                    "between LIF populations fed through a synaptic current, on Lava's "
                    "standard processes)")
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
                           sorted(set(proj.equations.diff_eq_names) - proj.code.rule_variables))):
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


def _lava_steps_per_step(plan) -> int:
    """``K`` (package doc: Time steps) of a lowered circuit: L + 2 + spiking."""
    spiking = any(p.plasticity is not None or p.on_pre for p in plan.projections.values())
    return plan.levels + 2 + spiking


def _standard_options(options: dict) -> dict:
    """The options of ``options`` that :func:`.standard.standard_plan` reads."""
    return {k: options[k] for k in ("v_headroom", "overflow") if k in options}


class LavaTarget(LavaRuntime, Target):
    """Run a circuit on Lava (``Loihi2SimCfg``), floating or fixed point.

    ``precision`` is ``'floating_pt'`` or ``'fixed_pt'``; ``frac_bits`` the
    fractional bits of fixed-point states and messages (see the package doc).
    Fixed point only: ``overflow='raise'`` (default) stops a run with
    :class:`FixedPointOverflow` the moment a state, message or weight leaves the
    range of its integers; ``overflow='warn'`` saturates it and emits a
    :class:`FixedPointWarning` at the end of the call. ``weight_range={'proj':
    (lo, hi)}`` declares the range a projection's weights will take (a learning
    rule's reach), from which the weight exponent and sign mode of its Lava
    ``Dense`` are chosen instead of from the initial weights.
    ``rounding_tolerance`` (fixed point, default ``ROUNDING_TOLERANCE`` = 0.01)
    is the rounding error a stored variable may carry, as a fraction of its
    largest magnitude (package doc: no silent rounding loss; ``float('inf')``
    turns the check off); beyond it, the same ``overflow`` handling applies.
    Call :meth:`close` (or use ``with``) to stop Lava's runtime.
    """

    name = "lava"
    capabilities = Capabilities(spikes=True, plasticity=True, random=True)

    @classmethod
    def capabilities_of(cls, precision="floating_pt", **options):
        """Fixed point computes in integers; its plasticity (PairSTDP) maps on Lava's
        standard processes only, so it does not claim plasticity in general."""
        fixed = precision == "fixed_pt"
        return dataclasses.replace(cls.capabilities, fixed_point=fixed, plasticity=not fixed)

    def __new__(cls, circuit=None, *args, processes: str = "auto", precision="floating_pt",
                **kwargs):
        """``processes``: ``'auto'`` builds Lava's own LIF/Dense processes where the
        circuit fits them (:mod:`.standard`), ``'standard'`` insists on them,
        ``'generated'`` builds generated process models for every population."""
        if processes not in PROCESSES:
            raise CircuitError(f"processes={processes!r}: use one of {PROCESSES}.")
        if cls is LavaTarget and processes != "generated" and isinstance(circuit, Circuit):
            from .standard import LavaStandardTarget, standard_plan
            plan, reason = standard_plan(circuit, precision, **_standard_options(kwargs))
            if plan is not None:  # not a LavaTarget: built here (Python would not)
                target = object.__new__(LavaStandardTarget)
                target.__init__(circuit, *args, processes=processes, precision=precision,
                                **kwargs)
                return target
            if processes == "standard":
                raise CircuitError(f"processes='standard': {reason}; Lava's standard "
                                   "processes take LIF populations with one synaptic time "
                                   "constant, Poisson sources and static spike projections "
                                   "(processes='auto' runs the rest on generated ones).")
        return super().__new__(cls)

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 precision: str = "floating_pt", frac_bits: int = 12,
                 overflow: str = "raise", weight_range: dict | None = None,
                 rounding_tolerance: float = ROUNDING_TOLERANCE, processes: str = "auto",
                 v_headroom: float | None = None, trace_headroom: float | None = None,
                 **options):
        # v_headroom, trace_headroom: the options of Lava's standard LIF and STDP on
        # lava-fixed (.lif_fixed, .stdp_fixed), accepted so that the same call builds
        # either
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
        """The first construct Lava (``precision``) has no mapping for, or None
        (also where only Lava's standard processes map it, e.g. refractory LIF
        neurons on lava-fixed)."""
        try:
            _refuse(circuit, precision == "fixed_pt")
        except CircuitError as exc:
            if options.get("processes", "auto") != "generated":
                from .standard import standard_plan
                if standard_plan(circuit, precision, **_standard_options(options))[0] is not None:
                    return None
            return str(exc)
        return None

    _Y_TAU = _Y_TAU  # Lava's y-trace tau (plasticity._Y_TAU)

    def deployment(self) -> dict[str, str]:
        """How each population runs: on Lava's standard processes (what Loihi's
        compiler takes) or on a generated process model (simulation only), and why."""
        from .standard import standard_plan
        plan, reason = standard_plan(self.circuit, self.precision, overflow=self.overflow)
        why = reason if plan is None else "processes='generated' was asked for"
        return {name: f"generated process model (simulation only): {why}"
                for name in self.circuit.populations}

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
            stored = list(p.stored)
            self.specs[pop.name] = _Spec(
                name=pop.name, plan=p, n=pop.n, stored=stored,
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
                                           if p.threshold else 0),
                seed=(self.seed, list(c.populations).index(pop.name)))
            # compile here too: a code error is reported now, not inside a Lava worker
            code = _Code(p, dict(self._g, rand=None, randn=None))
            for block, what in ((p.update, "state update"), (p.init, "init"), (p.reset, "reset")):
                code.block(block, what)
            if p.threshold:
                code.value(p.threshold, "threshold")
        self._host_code = {name: _Code(p, self._g) for name, p in plan.populations.items()}
        self._host_values: dict = {}  # (pop, subexpression) -> f(state), for get and learn
        self._rules = {name: LearningRule(p, plan.populations, self._g)
                       for name, p in plan.projections.items() if p.learning}

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
        check_weights(link.proj.name, self.weights[link.proj.name][link.syn], rule)
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
        """Fixed point: the shared exponent ``e`` of a link's 8-bit mantissas (package
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
        return _exponent(lo, hi)

    def _fixed_weights(self, link, w):
        """Quantise a link's weights (fixed point); a weight that does not fit the
        format chosen at build raises :class:`FixedPointOverflow` (or warns)."""
        m, link.sign, error, bad = _quantise(w, link.exp)
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
        """A subexpression of ``pop`` from its stored values ``state``, on the host."""
        key = (pop, variable)
        if key not in self._host_values:
            self._host_values[key] = self._host_code[pop].value(variable, variable)
        self._g["t"] = self._time()
        return np.broadcast_to(np.asarray(self._host_values[key](state), dtype=float),
                               (self.specs[pop].n,)).copy()

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
            self._g.update(array_namespace(self.circuit.namespace, float(self.circuit.dt)))
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
        if not self._rules:
            return
        self._configure("hold")
        self._lava_steps(self.K)  # summed variables from the current state
        self._check_overflow()
        states: dict = {}

        def value(pop, var):  # (1, n): one sample
            if pop not in states:
                states[pop] = self._stored_state(pop)
            v = states[pop][var] if var in states[pop] else self._evaluate(pop, states[pop], var)
            return v[None]
        self._g["t"] = self._time()
        self.set_weights({name: rule.apply(self.weights[name], value, synapses=(
            None if rule.proj.kind == "all" else self.circuit.synapses(name, self.seed)),
            t=self._time()) for name, rule in self._rules.items()})

"""Batched dense engine: any rate circuit, B samples at once, on an array module.

:class:`DenseTarget` runs a :class:`~neurosim.circuit.Circuit` declaration with
plain array operations (numpy by default; the module is held in ``self.xp`` so
that a numpy-compatible GPU array library can be dropped in). Every state
variable is stored as a ``(B, n)`` array: row ``b`` is sample ``b`` of a batch.
There is no circuit-specific code here: everything is derived from the
declaration, with Brian2's own machinery.

What is taken from Brian2
-------------------------
* **The plan**: the circuit is lowered once by :func:`neurosim.lowering.lower`
  (shared with the Lava target): each population's state-updater abstract code
  (from Brian2's ``StateUpdater.update_abstract_code`` with the population's
  ``method``; subexpressions already substituted by Brian2, exactly as in the
  Brian2 target), its subexpressions and ``init``; every summed variable's
  level and one-sided factors; the ``learning_rule`` statements. This module
  renders that plan.
* **Statements and expressions**: code lines are split by
  ``brian2.parsing.statements.parse_statement`` and rendered to numpy syntax by
  ``brian2.parsing.rendering.NumpyNodeRenderer`` (``and`` -> ``&``, ``not`` ->
  ``logical_not`` ...). The step loop of ``run``/``settle`` is written out as
  Python source over local ``(B, n)`` arrays for each schedule and compiled
  once (as Brian2's numpy code objects are); the globals are the circuit's
  namespace as floats in SI units, Brian2's unit names and constants, and
  ``dt``/``t`` in seconds.
* **Functions**: Brian2's numpy implementations of its default functions
  (``tanh``, ``exp``, ``sign`` ...), looked up by name in ``xp``, and of the
  ``TimedArray``\ s in the namespace (their dynamic implementation for the
  circuit's dt, so that times round to steps as in Brian2). ``int``,
  ``ceil``, ``floor`` and ``clip`` are dtype-preserving equivalents (Brian2's
  numpy ``int`` returns int32, which would turn float32 arithmetic into
  float64; the values are the same).
* **Summed variables** are split with sympy (``brian2.parsing.sympytools``), in
  the plan.

Semantics (identical to the Brian2 target)
------------------------------------------
One time step is an exact forward-Euler step: (1) every summed variable is
computed in :func:`~neurosim.lowering.summed_order` from the current state, a
later level reading earlier ones; (2) every population that is not clamped is
advanced by its state-updater code, from that same state. Subexpressions are
evaluated on demand from the stored state (cached until a variable of their
population is written). ``run`` records each variable at the start of every
step, after (1) and before (2); a record entry ``(pop, var, indices)`` keeps
the chosen neurons only (``neurosim.target.parse_record`` checks the entries).
``settle`` repeats, once per population that has ``init`` code, "compute
summed variables, then run ``init`` of every free population". ``learn``
computes the summed variables and then applies every projection's
``learning_rule`` once.

Projections
-----------
``connect='all'``: a summed variable must be a *product* of the synaptic
variables (a matrix ``W`` stored ``(n_post, n_pre)``, as in
``Circuit.initial_weights``) and factors that each depend on one side only:
``x_post = w * f(a_pre) * g(b_post)`` is computed as
``(f(a) @ W.T) * g(b)``; ``x_pre = w * f(a_pre) * g(b_post)`` as
``(g(b) @ W) * f(a)``. Anything else raises :class:`CircuitError`.
``connect='one_to_one'``: the expression is evaluated elementwise.
Sparse connectivity (``kind == 'sparse'``: ``connect={'p': 0.3}``, a
condition, ``n=``, explicit ``i``/``j``): the synapses are
``circuit.synapses(name, seed)``, drawn once per circuit and seed as on every
target; synaptic variables are stored per synapse, ``(n_syn,)`` in that order
(``get_weights``/``set_weights`` too). A summed variable is the same product,
computed with a masked ``(n_post, n_pre)`` matrix: the synaptic factor of
each synapse summed into its (post, pre) entry (``bincount``; repeated pairs
add up, absent ones are 0), rebuilt when the weights change. Learning rules
are evaluated per synapse, with each population value taken at the synapse's
presynaptic or postsynaptic neuron, so only present synapses learn. The
masked matrix was measured against ``scipy.sparse`` CSR products (one
thread, float64): at p = 0.3 it is faster (784 -> 300, B = 64: 1.0 ms
against 1.4 ms; B = 1: 27 against 59 µs), at p = 0.02 CSR is faster
(0.14 ms against 1.0 ms at B = 64), and the matrix needs n_post * n_pre
numbers.

Learning rules and batches
--------------------------
A learning rule is applied once per batch, and the update of a batch is the
**sum** of the per-sample updates (all computed from the same starting
weights): ``w += lr * g_post * m_pre`` becomes ``W += lr * G.T @ M`` with
``G`` (B, n_post) and ``M`` (B, n_pre). With B == 1 this is exactly the Brian2
target; a trainer that wants the mean divides its learning rate by B.
Consequently an increment that does not depend on the sample (``w -= d * w``)
is added B times. Assignments (``w = clip(w, 0, 1)``, ``w *= ...``) whose
right-hand side does not depend on the sample are applied once; a
sample-dependent assignment is ambiguous for B > 1 and raises. Statements of
one rule run in order (each reads the weights written by the previous one);
rules write only their own projection's synaptic variables, so all rules read
the same population state, and all new weights are stored after every rule
has been computed.

Batch size
----------
``B`` is set by the values given to ``set``/``clamp`` (the shapes of the
contract, :meth:`neurosim.target.Target.set`): a ``(B, n)`` array makes the
batch size B, a 1-d ``(n,)`` array (or a number: every neuron) is **one
sample** and makes it 1.
A sample given after a batch (a training trial after a batched test
evaluation) therefore runs once, never as B identical copies whose summed
learning rule would multiply its update by B. When B changes, variables stored
with batch 1 are broadcast to the new B and every other variable is reset to
its declared value (``values`` or 0). Values of one trial must agree: giving a
value of another batch size while a variable given since the last step
(``run``/``settle``/``learn``) holds a batch of B > 1 raises
:class:`CircuitError` instead of dropping that batch; the same value for
every sample of a batch is spelled ``np.broadcast_to(v, (B, n))``. ``get`` and
``run`` return ``(B, n)`` / ``(n_steps, B, n)`` arrays, or ``(n,)`` /
``(n_steps, n)`` when the last value set was 1-d (like the Brian2 target).

Parameters between runs
-----------------------
The circuit's namespace is read again before every step loop (``run``,
``settle``, ``learn``) and ``get``, as Brian2 resolves it at every ``run``: a
value changed in ``circuit.namespace`` takes effect from the next step, without
recompiling (the compiled loops read their globals, which are updated in
place). A value must keep the units it was declared with, and a name must not
be removed; otherwise :class:`CircuitError`.

Two optimisations of ``run``, derived from the declaration
----------------------------------------------------------
Both leave every result unchanged (trajectories and the state after ``run``
are bit-identical to computing every summed variable at every step).

* Constant summed variables (``cache_constant``): a summed variable whose
  inputs do not change during ``run`` (they come only from clamped
  populations, from parameters no equation updates, or from other constant
  summed variables; synaptic variables never change during ``run`` here) is
  computed once at the start of each ``run`` call instead of at every step.
  ``last_cached`` lists what the last ``run`` cached.
* Unread summed variables (``defer_unread``): a summed variable that nothing
  reads during ``run`` -- no state update of a free population, no other
  summed variable needed during ``run``, no recorded variable (subexpressions
  followed) -- is computed only at the last step, so that the state after
  ``run`` is still the same; e.g. the feedback into a clamped input layer or a
  quantity read only by ``init`` code. ``last_deferred`` lists them.

Summed variables that are not a product of one-sided factors (``rank_post =
int(y_pre > y_post)``) are evaluated synapse by synapse, with a ``(B,
n_post, n_pre)`` (all-to-all) or ``(B, n_syn)`` (sparse) intermediate: meant
for small projections (a reduction over an output layer), the products above
stay matrix products.

``rand()`` and ``randn()`` in a population's ``init`` code draw, for each
sample and neuron, from a seeded stream of that population's own (not
Brian2's: a random circuit agrees with Brian2 in distribution, not draw by
draw); the streams' states are part of :meth:`DenseTarget.extra_state`, so a
resumed run draws what an uninterrupted one would.

Not supported (:meth:`DenseTarget.unsupported` names the construct, and the
constructor raises :class:`CircuitError` with it and the registered targets
that accept the circuit): spiking populations (threshold/reset/refractory),
``on_pre``/``on_post`` (plasticity rules), delays, synaptic differential
equations, stochastic equations, random functions outside population
``init`` code and ``poisson()``, functions in the namespace other than
TimedArrays.
"""
from __future__ import annotations

import importlib
import zlib

import numpy as np
from brian2 import NeuronGroup, Quantity, TimedArray
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core.functions import Function
from brian2.units.fundamentalunits import get_dimensions
from brian2.utils.stringtools import get_identifiers, word_substitute

from neurosim.circuit import Circuit, CircuitError, check_constant
from neurosim.codegen import (RANDOM_FUNCTIONS, Expr, Source, array_namespace, block,
                              population_expr, projection_expr)
from neurosim.learning import LearningRule, evaluate
from neurosim.lowering import lower
from neurosim.target import Capabilities, Target, check_steps, parse_record, weight_values

__all__ = ["DenseTarget"]

_ALLOWED_FLAGS = {"constant", "summed", "shared"}
#: the array backends of ``backend=``: numpy runs the generated step loops as Python,
#: jax compiles them (``hardware_targets.dense_jax``: module dense_<backend>)
BACKENDS = ("numpy", "jax")


def unit_interval(u: np.ndarray, dtype) -> np.ndarray:
    """Uniform float64 draws in [0, 1) as ``dtype``, still in [0, 1) as Brian2's
    rand(): a draw within 2^-25 of 1 rounds to 1.0 in single precision (and
    -log(-log(rand())) would be infinite), so it is kept just below."""
    return np.minimum(u.astype(dtype), np.nextafter(np.array(1, dtype), np.array(0, dtype)))


def _draw_outside_init():
    raise CircuitError("the dense engine draws rand()/randn() in population init code only.")


def _scatter(xp, values, index, n):
    """``(B, n)``: the ``(B, n_syn)`` ``values`` summed at their synapses' neurons
    ``index`` (a summed variable of a sparse projection, synapse by synapse)."""
    B = values.shape[0]
    flat = (xp.arange(B)[:, None] * n + index[None, :]).ravel()
    static = {} if xp is np else {"length": B * n}  # a compiled backend's fixed shape
    return xp.bincount(flat, weights=values.ravel(), minlength=B * n, **static).reshape(B, n)


def _same(a, b) -> bool:
    """Two ``(SI values, dimensions)`` namespace entries are equal (Brian2's
    ``Dimension`` objects are unique, so ``is`` compares them); TimedArrays are
    the same object."""
    (va, da), (vb, db) = a, b
    if da is not db:
        return False
    if isinstance(da, str):  # 'TimedArray'
        return va is vb
    if va.ndim == vb.ndim == 0:
        return float(va) == float(vb)
    return np.array_equal(va, vb)


class DenseTarget(Target):
    """Run any rate circuit on dense arrays, for a batch of samples at once.

    ``dtype`` is the floating-point type of every state and weight array
    (float64 by default, ``np.float32`` for speed); ``xp`` the array module
    (numpy by default); ``cache_constant`` and ``defer_unread`` switch the two
    optimisations of ``run`` (see the module doc; results do not change).
    ``batch_mean`` divides a batch's summed learning-rule increments by B;
    ``optimizer`` (e.g. :class:`Adam`) transforms every increment, taken as
    the descent direction, into the applied change. ``backend='jax'`` builds
    the compiled engine (:class:`hardware_targets.dense_jax.JaxDenseTarget`:
    the same code, each trial one XLA program).
    """

    name = "dense"
    capabilities = Capabilities(batch=2 ** 31, optimizer=True, float32=True, backends=BACKENDS)

    def __new__(cls, *args, backend: str = "numpy", **options):
        if backend not in BACKENDS:
            raise CircuitError(f"DenseTarget: backend={backend!r}; choose one of "
                               f"{', '.join(BACKENDS)}.")
        if backend != "numpy" and cls is DenseTarget:
            # a compiled backend: the subclass in module dense_<backend>, found by name
            # as the registry finds targets (its array library imported only when used)
            module = importlib.import_module(f"{__package__}.dense_{backend}")
            cls = getattr(module, f"{backend.capitalize()}DenseTarget")
        return super().__new__(cls)

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 dtype=np.float64, xp=None, cache_constant: bool = True,
                 defer_unread: bool = True, batch_mean: bool = False, optimizer=None,
                 backend: str = "numpy", **options):
        super().__init__(circuit, seed, weights, **options)  # refuses unknown options
        self.backend = backend
        self.batch_mean = batch_mean
        self.optimizer = optimizer
        self.xp = np if xp is None else xp
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise CircuitError(f"DenseTarget: dtype={dtype!r} must be a floating-point type "
                               "(np.float64 or np.float32).")
        self.cache_constant = cache_constant
        self.defer_unread = defer_unread
        self.last_cached: list[tuple[str, str]] = []
        self.last_deferred: list[tuple[str, str]] = []
        self.dt = float(circuit.dt)
        self.t = 0.0
        self.B = 1
        self._squeeze = True
        self._given: set[tuple[str, str]] = set()  # variables set since the last step
        self._globals = array_namespace(circuit.namespace, self.dt, self.xp, self.dtype)
        self._namespace = self._namespace_values()  # what the globals were built from
        self._clock_owner = None
        self._globals.update({k: self._timed_array(v) for k, (v, kind) in self._namespace.items()
                              if kind == "TimedArray"})
        self._step_globals: list[dict] = []  # the globals of every generated step loop
        # rand()/randn() of init code: one seeded stream per population (keyed by its
        # name, so adding a population changes no other draws), drawn in float64
        # whatever the dtype; not Brian2's stream: statistically equal, not draw by draw
        self._rngs = {name: np.random.default_rng(
            np.random.SeedSequence([int(seed), zlib.crc32(name.encode()), 3]))
            for name in circuit.populations}
        self._globals.update(rand=_draw_outside_init, randn=_draw_outside_init)
        self._compile()
        self.state: dict[str, dict[str, object]] = {}
        for pop in circuit.populations.values():
            self.state[pop.name] = {v: self._initial(pop, v) for v in self._stored[pop.name]}
        self._subcache: dict[str, dict[str, object]] = {p: {} for p in circuit.populations}
        self.weights: dict[str, dict[str, object]] = {}
        self._wversion = 0
        self._synfactor_cache: dict = {}
        # (i, j) of every synapse of each sparse projection, drawn once per circuit
        # and seed by the circuit, as on every target
        self._synapses = {name: tuple(self.xp.asarray(a) for a in circuit.synapses(name, seed))
                          for name, proj in circuit.projections.items() if proj.kind == "sparse"}
        self.set_weights(weights or circuit.initial_weights(seed))
        self._schedule_memo: dict = {}
        self._step_functions: dict = {}

    # --- construction ---------------------------------------------------------------
    @classmethod
    def unsupported(cls, circuit: Circuit, **options) -> str | None:
        """The first construct the dense engine has no mapping for, or None.

        Cheap (nothing compiled): spiking populations, flags other than
        constant/summed/shared, stochastic equations, random functions outside
        population ``init`` code (and ``poisson()``), functions in the
        namespace other than TimedArrays, spike-driven synapse code, delays and
        synaptic differential equations."""
        used = set()
        random = set(RANDOM_FUNCTIONS)
        for pop in circuit.populations.values():
            if pop.threshold or pop.reset or pop.refractory is not None:
                return (f"Population {pop.name!r}: spikes (threshold/reset/refractory; the "
                        "dense engine runs rate circuits)")
            if pop.equations.stochastic_variables:
                return f"Population {pop.name!r}: stochastic equations (xi)"
            for eq in pop.equations.values():
                bad = set(eq.flags) - _ALLOWED_FLAGS
                if bad:
                    return f"Population {pop.name!r}: the flag(s) {sorted(bad)} of {eq.varname!r}"
                drawn = sorted(eq.identifiers & random)
                if drawn:
                    return (f"Population {pop.name!r}: the random function {drawn[0]}() in "
                            f"the equation of {eq.varname!r} (the dense engine draws random "
                            "numbers in init code only: draw them there into a stored "
                            "variable)")
            if "poisson" in get_identifiers(pop.init or ""):
                return f"Population {pop.name!r}: the random function poisson() in its init"
            used |= pop.equations.identifiers
        for proj in circuit.projections.values():
            if proj.pre_code or proj.post_code:
                return (f"Projection {proj.name!r}: spike-driven synapse code (on_pre/on_post"
                        f"{' of ' + type(proj.plasticity).__name__ if proj.plasticity else ''})")
            if proj.delay is not None:
                return f"Projection {proj.name!r}: a synaptic delay"
            if proj.equations.diff_eq_names:
                return (f"Projection {proj.name!r}: synaptic differential equations "
                        f"{sorted(proj.equations.diff_eq_names)} (write plasticity as a "
                        "learning_rule)")
            ids = proj.equations.identifiers | get_identifiers(proj.learning_rule or "")
            drawn = sorted(ids & random)
            if drawn:
                return (f"Projection {proj.name!r}: the random function {drawn[0]}() in "
                        "synaptic code (the dense engine draws random numbers in population "
                        "init code only)")
            used |= ids
        for key in sorted(used & set(circuit.namespace)):
            value = circuit.namespace[key]
            if isinstance(value, TimedArray):
                continue
            if isinstance(value, Function) or callable(value) and not isinstance(value, Quantity):
                return (f"the namespace entry {key!r} ({type(value).__name__}; the dense "
                        "engine evaluates Brian2's default functions and TimedArrays only)")
        timed = sorted(used & {k for k, v in circuit.namespace.items()
                               if isinstance(v, TimedArray)})
        if timed and options.get("backend") == "jax":
            return (f"the TimedArray {timed[0]!r} with backend='jax' (Brian2 evaluates "
                    "TimedArrays on host arrays; use backend='numpy')")
        return None

    def _initial(self, pop, var):
        return self.xp.asarray(np.broadcast_to(pop.initial(var), (self.B, pop.n)),
                               dtype=self.dtype)

    def _pop_expr(self, source, where, pop) -> Expr:
        return population_expr(source, where, self.plan.populations[pop.name], self._globals)

    def _proj_expr(self, source, where, proj) -> Expr:
        return projection_expr(source, where, self.plan.projections[proj.name],
                               self.plan.populations, self._globals)

    def _compile(self):
        c = self.circuit
        self.plan = plan = lower(c)  # the circuit lowered once (neurosim.lowering)
        self._stored = {name: list(p.stored) for name, p in plan.populations.items()}
        self._subexprs: dict[str, dict[str, Expr]] = {}
        self._updates: dict[str, list] = {}
        self._inits: dict[str, list] = {}
        for pop in c.populations.values():
            p = plan.populations[pop.name]
            self._subexprs[pop.name] = {
                var: self._pop_expr(code, f"Population {pop.name!r}, {var}", pop)
                for var, code in p.subexpressions}
            self._updates[pop.name] = block(p.update, f"Population {pop.name!r} state update",
                                            p, self._globals)
            if p.init:
                self._inits[pop.name] = block(p.init, f"Population {pop.name!r} init", p,
                                              self._globals)
        self._summed = [self._compile_summed(s) for s in plan.summed]
        self._rules = {name: LearningRule(p, plan.populations, self._globals)
                       for name, p in plan.projections.items() if p.learning}

    def _compile_summed(self, s):
        """A summed variable of the plan (``neurosim.lowering.SummedPlan``) compiled
        for the step loop: elementwise (one_to_one) or a matrix product."""
        proj = self.circuit.projections[s.projection]
        where = f"Projection {proj.name!r}, summed variable {s.variable}"
        plan = {"proj": proj.name, "var": s.variable, "side": s.side, "base": s.base,
                "sparse": proj.kind == "sparse", "pop": s.population,
                "n": self.circuit.populations[s.population].n, "reads": s.reads}
        if proj.kind == "one_to_one" or s.factors is None:
            # not a product of one-sided factors: evaluated synapse by synapse
            plan["mode"] = "elementwise" if proj.kind == "one_to_one" else "pairwise"
            plan["expr"] = self._proj_expr(s.expr, where, proj)
            return plan
        other = "pre" if s.side == "post" else "post"  # a product: checked by unsupported()
        for key, kinds in (("syn", ("syn",)), ("source", (other,)),
                           ("target", (s.side, "scalar"))):
            code = s.product(*kinds)
            plan[key] = None if code is None else self._proj_expr(code, where, proj)
        plan["mode"] = "matmul"
        return plan

    # --- dependency analysis (constant summed variables) -------------------------------
    def _free_blocks(self, blocks: dict) -> dict:
        return {p: stmts for p, stmts in blocks.items() if p not in self.clamped and stmts}

    def _schedule(self, blocks: dict, record=()):
        """(constant, unread) summed variables for repeated steps that run ``blocks``
        (population -> compiled code) after computing the summed variables."""
        key = (tuple(sorted((p, id(b)) for p, b in blocks.items())), tuple(record))
        if key in self._schedule_memo:
            return self._schedule_memo[key]
        varying = {("", "t")}
        for pop, stmts in blocks.items():
            varying |= {(pop, var) for var, stored, _ in stmts if stored}
        constant = []
        for plan in self._summed:  # in summed_order: inputs are decided first
            if plan["reads"] & varying:
                varying.add((plan["pop"], plan["base"]))
            else:
                constant.append((plan["proj"], plan["var"]))
        needed = set()
        for pop, stmts in blocks.items():
            for _var, _stored, expr in stmts:
                for name in expr.names:
                    needed |= self.plan.reads(pop, name)
        for pop, var in record:
            needed |= self.plan.reads(pop, var)
        unread = []
        for plan in reversed(self._summed):  # readers are at higher levels: seen first
            if (plan["pop"], plan["base"]) in needed:
                needed |= plan["reads"]
            else:
                unread.append((plan["proj"], plan["var"]))
        self._schedule_memo[key] = (constant, unread[::-1])
        return self._schedule_memo[key]

    def constant_summed(self) -> list[tuple[str, str]]:
        """Summed variables that cannot change during ``run`` with the current clamps."""
        return list(self._schedule(self._free_blocks(self._updates))[0])

    def unread_summed(self, record=()) -> list[tuple[str, str]]:
        """Summed variables that nothing reads during ``run`` (with these clamps and
        this ``record``): no free population's state update, no needed summed
        variable, no recorded variable."""
        return list(self._schedule(self._free_blocks(self._updates),
                                   [tuple(entry[:2]) for entry in record])[1])

    # --- evaluation -------------------------------------------------------------------
    def _pop_value(self, pop, var):
        st = self.state[pop]
        if var in st:
            return st[var]
        cache = self._subcache[pop]
        if var in cache:
            return cache[var]
        if var in self._subexprs[pop]:
            value = self._eval(self._subexprs[pop][var])
            cache[var] = value
            return value
        if var == "i":
            return self.xp.arange(self.circuit.populations[pop].n)
        if var == "N":
            return self.circuit.populations[pop].n
        if var == "t":
            return self.t
        raise KeyError(var)

    def _eval(self, expr: Expr, syn=None):
        return evaluate(expr, self._globals, self._pop_value, syn, t=self.t)

    def _write(self, pop, var, value):
        shape = (self.B, self.circuit.populations[pop].n)
        value = self.xp.asarray(value)
        if value.shape != shape:
            value = self.xp.broadcast_to(value, shape)
        self.state[pop][var] = value.astype(self.dtype, copy=False)
        self._subcache[pop].clear()

    def _syn_factor(self, plan):
        key = (plan["proj"], plan["var"])
        hit = self._synfactor_cache.get(key)
        if hit is not None and hit[0] == self._wversion:
            return hit[1]
        proj = self.circuit.projections[plan["proj"]]
        if proj.kind != "sparse":
            value = self._eval(plan["syn"], syn=self.weights[proj.name])
        else:  # the masked (n_post, n_pre) matrix: 0 where there is no synapse
            i, j = self._synapses[proj.name]
            n_pre = self.circuit.populations[proj.source].n
            n_post = self.circuit.populations[proj.target].n
            per_synapse = (self.xp.ones(len(i), dtype=self.dtype) if plan["syn"] is None else
                           self.xp.broadcast_to(self._eval(plan["syn"],
                                                           syn=self.weights[proj.name]),
                                                (len(i),)))
            # bincount sums synapses that join the same pair (connect n=2, repeated i/j)
            value = self.xp.bincount(j * n_pre + i, weights=per_synapse,
                                     minlength=n_post * n_pre).reshape(n_post, n_pre)
            value = value.astype(self.dtype, copy=False)
        self._synfactor_cache[key] = (self._wversion, value)
        return value

    def _all_summed(self):
        """Every summed variable from the current state (no step, time unchanged)."""
        self._steps(1, {}, tick=False)

    def _namespace_values(self) -> dict:
        """The circuit's namespace values (what ``array_namespace`` turns into
        globals): SI float arrays with their dimensions; TimedArrays as
        ``(the TimedArray, 'TimedArray')``; other functions left out."""
        out = {}
        for key, value in self.circuit.namespace.items():
            if isinstance(value, TimedArray):
                out[key] = (value, "TimedArray")
            elif not (isinstance(value, Function) or callable(value) and
                      not isinstance(value, Quantity)):
                out[key] = (np.array(value, dtype=float), get_dimensions(value))
        return out

    def _timed_array(self, value: TimedArray):
        """Brian2's own numpy implementation of a TimedArray: its dynamic
        implementation, created (as Brian2 does before a run) for an owner whose
        clock has the circuit's dt, so that times round to steps as in Brian2."""
        if self._clock_owner is None:
            self._clock_owner = NeuronGroup(1, "", dt=self.circuit.dt, name="dense_clock*")
            self._clock_owner._network = "dense-target (clock of TimedArrays only)"
        impl = value.implementations[NumpyCodeObject].get_code(self._clock_owner)
        xp, dtype, host = self.xp, self.dtype, self._to_host
        if xp is np:
            return lambda *args: np.asarray(impl(*args), dtype=dtype)
        return lambda *args: xp.asarray(impl(*(host(a) if hasattr(a, "shape") else a
                                              for a in args)), dtype=dtype)

    def _sync_namespace(self):
        """Namespace values changed since the last step take effect, as in Brian2,
        which resolves the namespace at every ``run``: the globals of every
        compiled step loop and of ``_eval`` are updated in place, and what was
        computed from the old values (synaptic factors, subexpressions) is
        dropped. Constant summed variables are computed at the start of every
        ``run`` anyway. A few µs per call for a handful of scalars."""
        now, seen = self._namespace_values(), self._namespace
        changed = {k: v for k, v in now.items() if k not in seen or not _same(v, seen[k])}
        gone = sorted(set(self._namespace) - set(now))
        if not changed and not gone:
            return
        if gone:
            raise CircuitError(f"The circuit's namespace lost {gone[0]!r} after the dense "
                               f"target was built, and its code may use it: put it back.")
        for key, (value, dim) in changed.items():
            check_constant(self.circuit.name, key, self.circuit.namespace[key])
            if key in seen and dim is not seen[key][1]:
                raise CircuitError(
                    f"namespace[{key!r}] changed its units from {seen[key][1]} to "
                    f"{dim}; give a value with the units it was declared with.")
        update = {k: self._timed_array(v) if dim == "TimedArray" else float(v) if v.ndim == 0
                  else self.xp.asarray(v, dtype=self.dtype) for k, (v, dim) in changed.items()}
        for g in (self._globals, *self._step_globals):
            g.update(update)
        self._namespace = now
        self._wversion += 1  # synaptic factors may read namespace values
        for cache in self._subcache.values():
            cache.clear()

    # --- state ------------------------------------------------------------------------
    def _to_host(self, value):
        return np.array(value.get() if hasattr(value, "get") and self.xp is not np else value)

    def get(self, population, variable):
        self.circuit.check_variable(population, variable)
        self._sync_namespace()
        n = self.circuit.populations[population].n
        value = self._to_host(self.xp.broadcast_to(self._pop_value(population, variable),
                                                   (self.B, n))).astype(float, copy=False)
        return value[0] if self._squeeze and self.B == 1 else value

    def set(self, population, variable, values):
        values = self.state_values(population, variable, values)  # (n,) or (B, n)
        B = values.shape[0] if values.ndim == 2 else 1  # 1-d: one sample, never B copies
        if B != self.B:
            self._rebatch(B, population, variable)
        self._squeeze = values.ndim == 1
        self._write(population, variable, values)
        self._given.add((population, variable))

    def _rebatch(self, B, population, variable):
        """Change the batch size: batch-1 variables are broadcast, others reset.
        A batch given for this trial (since the last step) is never dropped."""
        lost = sorted(k for k in self._given if k != (population, variable)) if self.B > 1 else []
        if lost:
            n = self.circuit.populations[population].n
            raise CircuitError(
                f"Setting {population}.{variable} to "
                f"{'one sample' if B == 1 else f'a batch of {B}'}: {'.'.join(lost[0])} was "
                f"given a batch of {self.B} for this trial (since the last step), and the "
                f"dense target runs one batch size at a time. Give {population}.{variable} a "
                f"({self.B}, {n}) array (np.broadcast_to(values, ({self.B}, {n})) for the "
                "same value in every sample), or give every value of the trial as one "
                "sample.")
        old, self.B = self.B, int(B)
        for pop in self.circuit.populations.values():
            for var, value in self.state[pop.name].items():
                if old == 1:
                    self._write(pop.name, var, value)
                else:
                    self.state[pop.name][var] = self._initial(pop, var)
            self._subcache[pop.name].clear()

    def get_weights(self):
        return {name: {v: self._to_host(a).astype(float) for v, a in params.items()}
                for name, params in self.weights.items()}

    def set_weights(self, weights):
        for name, params in weight_values(self.circuit, weights).items():
            proj = self.circuit.projection(name)
            src = self.circuit.populations[proj.source]
            tgt = self.circuit.populations[proj.target]
            shape = {"all": (tgt.n, src.n), "one_to_one": (src.n,),
                     "sparse": (len(self._synapses.get(name, ((),))[0]),)}[proj.kind]
            store = self.weights.setdefault(name, {v: None for v in proj.parameters})
            for var, value in params.items():
                if value.ndim == 0:
                    value = np.full(shape, float(value))
                if value.shape != shape:
                    raise CircuitError(
                        f"Projection {name!r}: {var} has shape {value.shape}, expected {shape} "
                        + ("(rows = target neurons)." if proj.kind == "all" else
                           "(one value per synapse, in the order of Circuit.synapses)."
                           if proj.kind == "sparse" else "(one per neuron pair)."))
                store[var] = self.xp.asarray(value, dtype=self.dtype)
        for name, proj in self.circuit.projections.items():  # every projection present
            if name not in self.weights:
                self.weights[name] = {}
            if any(self.weights[name].get(v) is None for v in proj.parameters):
                missing = [v for v in proj.parameters if self.weights[name].get(v) is None]
                raise CircuitError(f"Projection {name!r}: no value for {missing}.")
        self._wversion += 1

    # --- dynamics ---------------------------------------------------------------------
    def _tick(self):
        self.t += self.dt
        for cache in self._subcache.values():  # subexpressions may read t
            cache.clear()

    def settle(self):
        # like Brian2: one step per population with init code, and at least one,
        # so that derived (summed) variables reflect the clamped inputs
        self._steps(max(1, len(self._inits)), self._free_blocks(self._inits))

    def run(self, n_steps, record=()):
        # (pop, var, indices): the trace holds the chosen neurons only
        n_steps = check_steps(n_steps)
        record = [(p, v, None if k is None else tuple(int(x) for x in k))
                  for p, v, k in parse_record(self.circuit, record)]
        traces = {(p, v): self.xp.empty(
            (n_steps, self.B, self.circuit.populations[p].n if k is None else len(k)),
            dtype=self.dtype) for p, v, k in record}
        self.last_cached, self.last_deferred = self._steps(
            n_steps, self._free_blocks(self._updates), record, traces)
        out = {}
        for key, value in traces.items():
            value = self._to_host(value)
            out[key] = value[:, 0] if self._squeeze and self.B == 1 else value
        return out

    def _steps(self, n_steps, blocks, record=(), traces=None, tick=True):
        """``n_steps`` times: summed variables, record, run ``blocks``, advance t
        (unless ``tick`` is false).

        Constant summed variables are computed at the first step only and unread
        ones at the last step only (see the module doc); returns both lists."""
        self._given.clear()
        self._sync_namespace()
        constant, unread = self._schedule(blocks, [(p, v) for p, v, _k in record])
        constant = constant if self.cache_constant else []
        unread = [k for k in unread if k not in constant] if self.defer_unread else []
        key = (tuple(sorted((p, id(b)) for p, b in blocks.items())), tuple(record),
               tuple(constant), tuple(unread), tick)
        if key not in self._step_functions:
            self._step_functions[key] = self._generate_steps(blocks, record, constant, unread,
                                                             tick)
        if n_steps:
            factors = {(p["proj"], p["var"]): self._syn_factor(p) for p in self._summed
                       if p["mode"] == "matmul" and (p["syn"] is not None or p["sparse"])}
            self._call_steps(self._step_functions[key], n_steps, factors, traces)
            for cache in self._subcache.values():
                cache.clear()
        return list(constant), unread

    def _generate_steps(self, blocks, record, constant, unread, tick=True):
        """Python source for the whole step loop of one schedule, compiled once.

        The interpreter of the previous version (a namespace dict and an
        ``eval`` per expression, a cache lookup per subexpression) cost about a
        third of a 784-300-100-10 step at batch 64. This writes the same
        operations, in the same order, as straight-line code over local
        variables, as Brian2's numpy templates do for its code objects: the
        results are bit-identical."""
        c = self.circuit
        src = Source(self.plan.populations, self._subexprs, fit="_w({code}, (_B, {n}))",
                     random=True)
        emit, name = src.lines.append, src.local

        def summed(plan, indent):
            proj = c.projections[plan["proj"]]
            pname = proj.name

            def code(e):
                return src.expr(e, indent, syn=lambda var: name("#W", pname, var))
            if plan["mode"] == "elementwise":
                return src.write(plan["pop"], plan["base"], code(plan["expr"]), indent)
            if plan["mode"] == "pairwise":
                return src.write(plan["pop"], plan["base"], pairwise(plan, proj, indent), indent)
            to_post = plan["side"] == "post"
            n_src = c.populations[proj.source if to_post else proj.target].n
            src_value = None if plan["source"] is None else \
                f"_bc({code(plan['source'])}, (_B, {n_src}))"
            W = (None if plan["syn"] is None and not plan["sparse"] else
                 name("#F", pname, plan["var"]))
            if W is None:
                value = (str(n_src) if src_value is None else
                         f"{src_value}.sum(axis=-1, keepdims=True)")
            elif src_value is None:
                value = f"{W}.sum(axis={1 if to_post else 0})"
            else:
                value = f"({src_value} @ {W}.T)" if to_post else f"({src_value} @ {W})"
            if plan["target"] is not None:
                value += f" * {code(plan['target'])}"
            src.write(plan["pop"], plan["base"], value, indent)

        def pairwise(plan, proj, indent):
            """Every synapse's value, then their sum at each target neuron: ``(B,
            n_post, n_pre)`` for all-to-all (the layout of its weights), ``(B,
            n_syn)`` for sparse (pre and post values gathered at each synapse)."""
            pre, post = c.populations[proj.source].n, c.populations[proj.target].n
            sparse = proj.kind == "sparse"
            subs = {}
            for ident, kind, pop, var, axis in plan["expr"].refs:
                if kind == "syn":
                    subs[ident] = name("#W", proj.name, var)
                elif kind == "t":
                    subs[ident] = "t"
                elif var == "N":
                    subs[ident] = str(c.populations[pop].n)
                else:
                    value = (f"_xp.broadcast_to({src.value(pop, var, indent)}, "
                             f"(_B, {c.populations[pop].n}))")
                    if sparse:
                        index = f"_syn_{'ij'[axis - 1]}_{proj.name}"
                        extra[index] = self._synapses[proj.name][axis - 1]
                        subs[ident] = f"{value}[:, {index}]"
                    else:
                        subs[ident] = f"{value}[:, None, :]" if axis == 1 else f"{value}[:, :, None]"
            code = f"({word_substitute(plan['expr'].numpy, subs)})"
            to_post = plan["side"] == "post"
            if sparse:
                index = f"_syn_{'j' if to_post else 'i'}_{proj.name}"
                extra[index] = self._synapses[proj.name][1 if to_post else 0]
                n_syn = len(self._synapses[proj.name][0])
                return (f"_scatter(_xp, _xp.broadcast_to({code}, (_B, {n_syn})), {index}, "
                        f"{post if to_post else pre})")
            return f"_xp.broadcast_to({code}, (_B, {post}, {pre})).sum(axis={2 if to_post else 1})"

        extra = {}  # synapse indices that pairwise summed variables gather and scatter at
        chosen_globals = {}  # neuron indices of the recorded variables that choose some

        def step(indent, include, full=True):
            """One step's code: the summed variables ``include`` keeps (True, or a
            condition to compute it under), then (``full``) the records, the blocks
            and the tick."""
            for plan in self._summed:
                guard = include((plan["proj"], plan["var"]))
                if guard is True:
                    summed(plan, indent)
                elif guard:
                    emit(f"{indent}if {guard}:")
                    before = set(src.valid)
                    summed(plan, indent + "    ")
                    written = plan["pop"]  # afterwards: valid only if valid on both paths
                    src.valid = {k for k in before if k[0] != written}
            if not full:
                return
            for i, (pop, var, chosen) in enumerate(record):
                value = src.value(pop, var, indent)
                if chosen is not None:
                    chosen_globals[f"_chosen{i}"] = self.xp.asarray(chosen)
                    value = (f"_xp.broadcast_to({value}, (_B, {c.populations[pop].n}))"
                             f"[:, _chosen{i}]")
                emit(indent + self._trace_store.format(i=i, value=value))
            for pop, stmts in blocks.items():
                src.block(pop, stmts, indent)
            if tick:
                emit(f"{indent}t += {self.dt!r}")

        loop = self._loop_source(src, step, constant, unread)
        stored = src.stored()
        loads = [f"    {local} = S[{k[0]!r}][{k[1]!r}]" for k, local in stored.items()]
        for key, local in src.names.items():
            if key[0] == "#W":
                loads.append(f"    {local} = W[{key[1]!r}][{key[2]!r}]")
            elif key[0] == "#F":
                loads.append(f"    {local} = F[({key[1]!r}, {key[2]!r})]")
        stores = [f"    S[{k[0]!r}][{k[1]!r}] = {local}" for k, local in stored.items()]
        source = "\n".join(
            [f"def _steps(n_steps, S, W, F, t, traces{self._step_arguments}):",
             "    _B = _Bsize()",
             "    _traces = [traces[k[:2]] for k in _record]", *loads, *loop, *stores,
             f"    return {self._step_results}"])
        g = dict(self._globals, range=range, _xp=self.xp, _record=list(record), _w=self._fit,
                 _bc=self._broadcast, _Bsize=lambda: self.B, **chosen_globals, **extra,
                 _scatter=_scatter, **self._random_globals(),
                 **{k: self.xp.asarray(v) for k, v in src.globals.items()})
        self._step_globals.append(g)
        exec(compile(source, f"<dense step loop of {c.name}>", "exec"), g)
        return g["_steps"]

    #: how the generated loop stores step ``step``'s record ``i`` (numpy: in place)
    _trace_store = "_traces[{i}][step] = {value}"
    _step_arguments = ""  # extra parameters of the generated loop
    _step_results = "t"   # what it returns

    def _loop_source(self, src, step, constant, unread) -> list[str]:
        """The generated loop's lines: ``n_steps`` times the step, constant summed
        variables at the first step only and unread ones at the last only."""
        step("        ", lambda key: "step == 0" if key in constant else
             "step == n_steps - 1" if key in unread else True)
        return ["    for step in range(n_steps):", *src.lines, "        pass"]

    def _call_steps(self, steps, n_steps, factors, traces) -> None:
        """Run a generated loop on the stored state (numpy: updated in place)."""
        self.t = steps(n_steps, self.state, self.weights, factors, self.t, traces)

    def _random_globals(self) -> dict:
        """``_rand_<population>()``/``_randn_<population>()`` of the generated code:
        a ``(B, n)`` draw from the population's stream."""
        out = {}
        for pop, rng in self._rngs.items():
            n = self.circuit.populations[pop].n
            out[f"_rand_{pop}"] = lambda rng=rng, n=n: self.xp.asarray(
                unit_interval(rng.random((self.B, n)), self.dtype))
            out[f"_randn_{pop}"] = lambda rng=rng, n=n: self.xp.asarray(
                rng.standard_normal((self.B, n)), dtype=self.dtype)
        return out

    def _fit(self, value, shape):
        """What ``_write`` stores: ``value`` as a (B, n) array of the target's dtype."""
        value = self.xp.asarray(value)
        if value.shape != shape:
            value = self.xp.broadcast_to(value, shape)
        return value.astype(self.dtype, copy=False)

    def _broadcast(self, value, shape):
        return value if value.shape == shape else self.xp.broadcast_to(value, shape)

    def learn(self):
        if not self._rules:
            return
        self._all_summed()
        new = {name: rule.apply(self.weights[name], self._pop_value, self.B, self.xp,
                                self.dtype, self._synapses.get(name), self.optimizer,
                                self.batch_mean, self.t)
               for name, rule in self._rules.items()}
        for name, params in new.items():
            self.weights[name] = {v: a.astype(self.dtype, copy=False) for v, a in params.items()}
        self._wversion += 1
        self._tick()

    def extra_state(self) -> dict:
        """The optimiser's moments and the random streams' states (a resumed run
        draws what the uninterrupted one would have drawn)."""
        out = self.optimizer.state() if self.optimizer is not None else {}
        for pop, rng in self._rngs.items():
            st = rng.bit_generator.state  # PCG64: 128-bit state and increment
            words = [w for v in (st["state"]["state"], st["state"]["inc"])
                     for w in (v >> 64, v & (2 ** 64 - 1))]
            out[f"random/{pop}"] = np.array([*words, st["has_uint32"], st["uinteger"]],
                                            dtype=np.uint64)
        return out

    def load_extra_state(self, state: dict) -> None:
        if self.optimizer is not None:
            self.optimizer.load(state, self.xp, self.dtype)
        for pop, rng in self._rngs.items():
            words = state.get(f"random/{pop}")
            if words is not None:
                w = [int(x) for x in words]
                rng.bit_generator.state = {
                    "bit_generator": "PCG64", "has_uint32": w[4], "uinteger": w[5],
                    "state": {"state": w[0] << 64 | w[1], "inc": w[2] << 64 | w[3]}}

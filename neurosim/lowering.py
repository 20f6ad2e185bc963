"""A circuit lowered once into a plan that every array target reads.

Brian2 lowers equations once to abstract code and renders that per
code-generation target; :func:`lower` is that step for the targets that
evaluate the code themselves (the dense engine, Lava's process models). It
derives, from the declaration and with Brian2's own machinery, everything they
used to derive each in its own way:

* per population (:class:`PopulationPlan`): the stored variables, the
  subexpressions in dependency order, the state updater's abstract code
  (``StateUpdater.update_abstract_code`` with the population's ``method``;
  with refractoriness Brian2's own ``not_refractory`` update), ``init``, the
  threshold (gated by ``not_refractory`` when refractory, as Brian2's
  ``Thresholder`` does), ``reset`` and the ``unless refractory`` variables;
* per summed variable (:class:`SummedPlan`), in dependency order
  (:func:`summed_order`): the projection, side, base variable, level, the
  expression with the projection's own subexpressions substituted, the
  stored variables it reads (through subexpressions, with :meth:`Plan.reads`)
  and that expression split into a product of one-sided factors
  ``{'syn', 'pre', 'post', 'scalar'}`` -- or the reason it is not such a
  product (each target decides whether it needs one); its level is 1 + the
  highest level of the summed variables whose targets it reads;
* per projection (:class:`ProjectionPlan`): its connectivity kind, synaptic
  variables, ``on_pre``/``on_post`` statements (split the same way) and its
  ``learning_rule`` statements ``(var, op, expr)``; a plasticity rule's code
  is derived from the declaration by :func:`synapse_code` (the model lines
  here, the rule itself in ``ProjectionPlan.plasticity`` for targets to map).

The synapses themselves are seed-dependent: targets take them from
``Circuit.synapses(name, seed)``; the plan holds no arrays.

``lower(circuit, update=False)`` skips the one costly step (a throwaway
Brian2 ``NeuronGroup`` per population for its abstract code), for the cheap
``unsupported`` checks of the targets. A plan is cheap enough to recompute
once per target, so it is not cached (the circuit may still change through
``Circuit.add`` or its namespace).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from brian2.equations.equations import SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.utils.stringtools import get_identifiers, word_substitute

from .circuit import Circuit, CircuitError, SynapseCode, synapse_code  # noqa: F401
from .codegen import statements

__all__ = ["lower", "summed_order", "synapse_code", "SynapseCode", "Plan", "PopulationPlan",
           "SummedPlan", "ProjectionPlan", "Statement", "split_product", "strip_suffix"]

#: the kinds of factor of a product over a projection
KINDS = ("syn", "pre", "post", "scalar")


# --- products of one-sided factors -----------------------------------------------------

def split_product(expr: str, parameters) -> tuple[dict | None, str]:
    """``expr`` as a product: ``({'syn'|'pre'|'post'|'scalar': (factor, ...)}, '')``,
    each factor a Brian2 code string, or ``(None, reason)`` when it is not a
    product of factors that each depend on one side only (``_pre`` names, ``_post``
    names, the synaptic variables ``parameters``; anything else is scalar)."""
    try:
        sym = str_to_sympy(expr)
    except Exception as exc:  # Brian2 checked the code; sympy may still refuse it
        return None, f"sympy cannot read it ({exc})"
    if isinstance(sym, sympy.Add):
        return None, "it is a sum of terms"
    parts = {k: [] for k in KINDS}
    for factor in sympy.Mul.make_args(sym):
        kinds = set()
        for s in map(str, factor.free_symbols):
            if s.endswith("_pre"):
                kinds.add("pre")
            elif s.endswith("_post"):
                kinds.add("post")
            elif s in parameters:
                kinds.add("syn")
        if len(kinds) > 1:
            return None, (f"the factor {sympy_to_str(factor)!r} depends on "
                          f"{' and '.join(sorted(kinds))} variables together")
        parts[kinds.pop() if kinds else "scalar"].append(sympy_to_str(factor))
    return {k: tuple(v) for k, v in parts.items()}, ""


def product(factors: dict, *kinds: str) -> str | None:
    """The product of the factors of ``kinds`` as Brian2 code, None if there are none."""
    chosen = [str_to_sympy(f) for k in kinds for f in factors[k]]
    return sympy_to_str(sympy.Mul(*chosen)) if chosen else None


def strip_suffix(expr: str, suffix: str) -> str:
    """``expr`` with ``suffix`` (``'_pre'``/``'_post'``) removed from its names: the
    expression as the population on that side evaluates it."""
    return word_substitute(expr, {n: n[: -len(suffix)] for n in get_identifiers(expr)
                                  if n.endswith(suffix)})


def substitute_subexpressions(proj, expr: str) -> str:
    """``expr`` with the projection's own (non-summed) subexpressions substituted."""
    subs = {eq.varname: f"({eq.expr.code})" for eq in proj.equations.values()
            if eq.type == SUBEXPRESSION and "summed" not in eq.flags}
    for _ in range(len(subs) + 1):
        ids = get_identifiers(expr) & set(subs)
        if not ids:
            return expr
        expr = word_substitute(expr, {k: subs[k] for k in ids})
    raise CircuitError(f"Projection {proj.name!r}: its subexpressions refer to each "
                       "other in a loop.")


# --- the plan --------------------------------------------------------------------------

@dataclass(frozen=True)
class PopulationPlan:
    name: str
    n: int
    #: differential equations and parameters, then not_refractory/lastspike if refractory
    stored: tuple[str, ...]
    #: (name, Brian2 expression), each after the subexpressions it reads
    subexpressions: tuple[tuple[str, str], ...]
    #: Brian2's state-updater abstract code ('' without differential equations;
    #: None when lowered with update=False)
    update: str | None
    init: str | None
    threshold: str | None
    reset: str | None
    refractory: bool
    unless_refractory: frozenset
    method: str = "euler"

    @property
    def subexprs(self) -> dict[str, str]:
        return dict(self.subexpressions)


@dataclass(frozen=True)
class Statement:
    """One line of synapse code: ``var op expr``, and ``expr`` split into one-sided
    factors (``factors``; None with ``reason`` when it is not such a product)."""
    var: str
    op: str
    expr: str
    factors: dict | None = field(default=None, compare=False)
    reason: str = ""
    line: str = ""  # the statement as written (for messages)


@dataclass(frozen=True)
class SummedPlan:
    projection: str
    variable: str       # 'x_post'
    side: str           # 'post' | 'pre'
    base: str           # 'x'
    population: str     # the population whose 'base' it writes
    level: int
    expr: str           # with the projection's own subexpressions substituted
    factors: dict | None = field(compare=False)  # {'syn'|'pre'|'post'|'scalar': (str, ...)}
    reason: str         # why it is not a product ('' when it is)
    #: (population, variable) it reads, through subexpressions; ('', 't') for time
    reads: frozenset

    def product(self, *kinds: str) -> str | None:
        return product(self.factors, *kinds)


@dataclass(frozen=True)
class ProjectionPlan:
    name: str
    source: str
    target: str
    kind: str                       # 'all' | 'one_to_one' | 'sparse'
    parameters: tuple[str, ...]     # stored synaptic variables
    summed: tuple[str, ...]
    on_pre: tuple[Statement, ...]   # the projection's own code (not a rule's)
    on_post: tuple[Statement, ...]
    learning: tuple[Statement, ...]  # learning_rule, subexpressions substituted
    delay: bool
    plasticity: object = None       # the rule; targets map it by type
    learning_bound: float | None = None   # bound on each change the learning makes


@dataclass(frozen=True)
class Plan:
    circuit: str
    populations: dict
    projections: dict
    summed: tuple[SummedPlan, ...]  # in summed_order
    levels: int                     # 1 + the highest level (0 without summed variables)

    def reads(self, pop: str, var: str, _seen=frozenset()) -> set:
        """Stored variables ``(pop, var)`` a population value reads: itself if stored,
        those under a subexpression, ``('', 't')`` for the time."""
        if var == "t":
            return {("", "t")}
        plan = self.populations[pop]
        subs = plan.subexprs
        if var not in subs:  # a stored variable, or a constant/function: nothing varies
            return {(pop, var)} if var in plan.stored else set()
        if var in _seen:
            return set()
        out = set()
        for ident in get_identifiers(subs[var]):
            out |= self.reads(pop, ident, _seen | {var})
        return out


def _ordered(pop) -> tuple[tuple[str, str], ...]:
    """Subexpressions of ``pop``, each after those it reads."""
    subs = {eq.varname: str(eq.expr.code) for eq in pop.equations.values()
            if eq.type == SUBEXPRESSION}
    out, done = [], set()

    def visit(name, stack):
        if name in done:
            return
        if name in stack:
            raise CircuitError(f"Population {pop.name!r}: its subexpressions refer to each "
                               f"other in a loop ({' -> '.join(stack + (name,))}).")
        for ident in sorted(get_identifiers(subs[name]) & set(subs)):
            visit(ident, stack + (name,))
        done.add(name)
        out.append((name, subs[name]))
    for name in subs:
        visit(name, ())
    return tuple(out)


def abstract_code(circuit: Circuit, pop) -> str:
    """Brian2's state-updater abstract code of a population (with refractoriness,
    Brian2's own ``not_refractory`` handling)."""
    from brian2 import NeuronGroup
    if not pop.equations.diff_eq_names:
        return ""
    kwargs = {}
    if pop.refractory is not None:  # Brian2 then writes the not_refractory update
        kwargs = dict(threshold=pop.threshold, reset=pop.reset, refractory=pop.refractory)
    try:
        group = NeuronGroup(1, pop.equations, method=pop.method, **kwargs,
                            namespace=circuit.namespace, name=f"lowering_{pop.name}*")
        # Never run: mark it as handled so that Brian2 does not warn, when it is
        # deleted, that it was left out of a network.
        group._network = "neurosim lowering (abstract code only)"
        group.state_updater.update_abstract_code(run_namespace={})
    except Exception as exc:
        raise CircuitError(f"Population {pop.name!r}: Brian2 cannot build a state "
                           f"updater with method={pop.method!r} ({exc}).") from exc
    return group.state_updater.abstract_code


def _population(circuit, pop, update: bool) -> PopulationPlan:
    stored = tuple(pop.stored_variables)
    threshold = pop.threshold
    refractory = pop.refractory is not None
    if refractory:  # Brian2's refractoriness, as its Thresholder does
        stored += ("not_refractory", "lastspike")
        threshold = f"({threshold}) and (not_refractory > 0.5)"  # stored as 0/1
    return PopulationPlan(
        name=pop.name, n=pop.n, stored=stored, subexpressions=_ordered(pop),
        update=abstract_code(circuit, pop) if update else None, init=pop.init,
        threshold=threshold, reset=pop.reset, refractory=refractory,
        # Brian2 writes these only where not_refractory (synaptic input during
        # refractoriness is dropped; the reset overrides it)
        unless_refractory=frozenset(n for n in pop.equations.diff_eq_names
                                    if "unless refractory" in pop.equations[n].flags)
        if refractory else frozenset(),
        method=pop.method)


def _statements(circuit, proj, code, what, implicit_post=False) -> tuple[Statement, ...]:
    """Split synapse code. ``implicit_post``: as in Brian2's on_pre/on_post, a name
    that is not a synaptic variable but a variable of the target population means
    that variable (``v += w`` is ``v_post += w``)."""
    post = (set(circuit.populations[proj.target].variables) - set(proj.equations.names)
            if implicit_post else set())
    out = []
    for var, op, expr in statements(code, f"Projection {proj.name!r} {what}"):
        line = f"{var} {op} {expr}"
        if var in post:
            var += "_post"
        expr = word_substitute(expr, {n: n + "_post" for n in get_identifiers(expr)
                                      if n in post})
        expr = substitute_subexpressions(proj, expr)
        factors, reason = split_product(expr, proj.parameters)
        out.append(Statement(var, op, expr, factors, reason, line))
    return tuple(out)


def _summed(circuit: Circuit, plan: Plan) -> list[dict]:
    """The summed variables by level (declaration order within a level), each as
    the fields of its :class:`SummedPlan` but the factors. One reading another
    one's target (directly or through subexpressions, :meth:`Plan.reads`) is a
    level above it, so that all derived quantities of a time step come from the
    same state (an exact Euler step); an algebraic loop raises CircuitError."""
    entries, writer = {}, {}
    for proj in circuit.projections.values():
        equations = synapse_code(proj).equations
        for var, (side, base) in proj.summed.items():
            population = proj.target if side == "post" else proj.source
            expr = substitute_subexpressions(proj, str(equations[var].expr.code))
            reads = set()
            for ident in get_identifiers(expr):
                if ident == "t":
                    reads.add(("", "t"))
                for suffix, pop in (("_pre", proj.source), ("_post", proj.target)):
                    if ident.endswith(suffix):
                        reads |= plan.reads(pop, ident[: -len(suffix)])
            entries[(proj.name, var)] = dict(
                projection=proj.name, variable=var, side=side, base=base,
                population=population, expr=expr, reads=frozenset(reads))
            writer[(population, base)] = (proj.name, var)

    def level(key, stack=()):
        entry = entries[key]
        if key in stack:
            loop = " -> ".join(f"{p}.{v}" for p, v in stack + (key,))
            raise CircuitError(f"Circuit {circuit.name!r}: summed variables form an algebraic "
                               f"loop ({loop}); break it with a differential equation.")
        if "level" not in entry:
            deps = [writer[r] for r in entry["reads"] if r in writer]
            entry["level"] = 1 + max((level(d, stack + (key,)) for d in deps), default=-1)
        return entry["level"]

    for key in entries:
        level(key)
    return sorted(entries.values(), key=lambda e: e["level"])


def summed_order(circuit: Circuit) -> list[tuple[str, str, int]]:
    """Summed variables in dependency order: ``[(projection, 'x_post', level), ...]``,
    the order and levels of :func:`lower` (without its costly steps). Every target
    updates summed variables in this order."""
    pops = {p.name: _population(circuit, p, False) for p in circuit.populations.values()}
    return [(e["projection"], e["variable"], e["level"])
            for e in _summed(circuit, Plan(circuit.name, pops, {}, (), 0))]


def lower(circuit: Circuit, update: bool = True) -> Plan:
    """The plan of ``circuit`` (module doc); ``update=False`` leaves out the state
    updaters' abstract code (``PopulationPlan.update`` is None)."""
    pops = {p.name: _population(circuit, p, update) for p in circuit.populations.values()}
    plan = Plan(circuit.name, pops, {}, (), 0)
    summed = []
    for entry in _summed(circuit, plan):
        parameters = circuit.projections[entry["projection"]].parameters
        factors, reason = split_product(entry["expr"], parameters)
        summed.append(SummedPlan(**entry, factors=factors, reason=reason))
    projections = {}
    for proj in circuit.projections.values():
        projections[proj.name] = ProjectionPlan(
            name=proj.name, source=proj.source, target=proj.target, kind=proj.kind,
            parameters=tuple(proj.parameters), summed=tuple(proj.summed),
            on_pre=_statements(circuit, proj, proj.on_pre, "on_pre", implicit_post=True),
            on_post=_statements(circuit, proj, proj.on_post, "on_post", implicit_post=True),
            learning=_statements(circuit, proj, proj.learning_rule, "learning_rule"),
            delay=proj.delay is not None, plasticity=proj.plasticity,
            learning_bound=proj.learning_bound)
    return Plan(circuit.name, pops, projections, tuple(summed),
                1 + max((s.level for s in summed), default=-1))

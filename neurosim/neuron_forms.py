"""Leaky integrate-and-fire populations recognised in their Brian2 equations.

NIR (and Lava's standard ``LIF`` process) describe a neuron by the parameters
of one model, where a declaration writes equations. :func:`lif_form` reads a
population's equations symbolically, with Brian2's own sympy conversion
(``str_to_sympy``), never its name: a population is a LIF when

* its threshold is ``v > <constant>`` and its reset ``v = <constant>`` for a
  differential variable ``v`` (the membrane), with no refractory period;
* ``dv/dt`` is linear in ``v`` and the other differential variables
  ``g_k``, ``dv/dt = (v_leak - v)/tau + sum_k r_k g_k / tau``;
* every ``g_k`` (a synaptic current) decays on its own, ``dg_k/dt = -g_k/tau_k``;
* no noise (``xi``), time (``t``) or random numbers enter these equations.

Constants are the circuit's namespace, Brian2's units and the population's
parameters (per neuron, from ``values``; Brian2 starts an unset one at 0), so
every parameter of the form is an array over the neurons, in SI units. Why
our own: Brian2 has no notion of "this is a LIF", and NIR's and Lava's are
parameter records, not equations.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy
from brian2 import Quantity
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit
from brian2.core.namespace import DEFAULT_CONSTANTS, DEFAULT_UNITS
from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy

from .circuit import Circuit, CircuitError
from .codegen import statements
from .lowering import product

__all__ = ["Current", "LIFForm", "lif_form", "is_spike_source", "constants", "unit_name",
           "spike_input", "is_plastic", "synapse_pairs", "jump_matrix", "current_groups"]


@dataclass(frozen=True)
class Current:
    """A synaptic current ``g``: ``dg/dt = -g/tau``, entering ``tau_mem dv/dt``
    as ``r * g``."""
    name: str
    tau: np.ndarray
    r: np.ndarray


@dataclass(frozen=True)
class LIFForm:
    """``tau dv/dt = (v_leak - v) + sum_k r_k g_k``; a spike when ``v > v_threshold``,
    then ``v = v_reset``. Arrays over the population's neurons, SI units."""
    population: str
    n: int
    v: str
    tau: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    currents: tuple[Current, ...]
    unit: str  # the unit of v as Brian2 writes it ('volt', '1', ...)
    refractory: float | None = None  # seconds, when allowed (lif_form's refractory=True)


@functools.cache
def _units() -> dict[str, float]:
    """Brian2's units and constants as SI values (about 1,700; converted once)."""
    out = {k: float(v.value) for k, v in DEFAULT_CONSTANTS.items()}
    out.update({k: float(np.asarray(v)) for k, v in DEFAULT_UNITS.items()})
    return out


def constants(circuit: Circuit, pop) -> dict[str, np.ndarray]:
    """Every name a population's expressions may read as a constant, as SI values:
    Brian2's units and constants, the namespace, the population's parameters."""
    env = dict(_units())
    for key, value in circuit.namespace.items():
        if isinstance(value, (int, float, np.number, Quantity, np.ndarray)):
            env[key] = np.asarray(value, dtype=float)
    for name, eq in pop.equations.items():
        if eq.type not in (DIFFERENTIAL_EQUATION, SUBEXPRESSION):
            env[name] = pop.initial(name)
    env["N"] = np.asarray(float(pop.n))
    return env


def _expression(pop, code: str) -> sympy.Expr:
    """``code`` as sympy, with the population's subexpressions substituted."""
    expr = str_to_sympy(code)
    subs = {str_to_sympy(n): str_to_sympy(eq.expr.code) for n, eq in pop.equations.items()
            if eq.type == SUBEXPRESSION}
    for _ in range(len(subs) + 1):
        if not expr.free_symbols & set(subs):
            break
        expr = expr.xreplace(subs)
    return expr


def _per_neuron(expr, env: dict, n: int, what: str) -> np.ndarray:
    """A constant expression evaluated to an array of ``n`` values; a reason if not."""
    names = sorted(map(str, expr.free_symbols))
    unknown = [s for s in names if s not in env]
    if unknown or expr.atoms(sympy.Function):
        raise _NotLIF(f"{what} reads {', '.join(unknown) or 'a function'}, "
                      "which is not a constant")
    f = sympy.lambdify(sorted(expr.free_symbols, key=str), expr, "numpy")
    return np.broadcast_to(np.asarray(f(*(env[s] for s in names)), dtype=float), (n,)).copy()


def unit_name(dim) -> str:
    """A dimension as the name of its SI unit ('volt', 'amp', '1')."""
    return "1" if dim is DIMENSIONLESS else repr(get_unit(dim))


class _NotLIF(Exception):
    pass


def _linear(expr, state) -> dict | None:
    """``{symbol: coefficient, 1: constant term}`` of an expression linear in the
    symbols ``state`` (coefficients free of them), None when it is not linear."""
    expr = sympy.expand(expr)
    out = {}
    for term in sympy.Add.make_args(expr):
        found = [s for s in state if term.has(s)]
        if not found:
            out[1] = out.get(1, sympy.S.Zero) + term
            continue
        coefficient = term / found[0]
        if len(found) > 1 or coefficient.has(*state):
            return None
        out[found[0]] = out.get(found[0], sympy.S.Zero) + coefficient
    return out


def is_spike_source(pop) -> bool:
    """A Poisson source written as Brian2's ``PoissonGroup`` is inside: no
    differential equations, ``threshold='rand() < rates*dt'``."""
    if pop.threshold is None or pop.equations.diff_eq_names or pop.reset:
        return False
    try:
        rel = str_to_sympy(pop.threshold)
    except Exception:
        return False
    return (isinstance(rel, sympy.StrictLessThan) and str(rel.lhs.func) == "rand"
            and rel.rhs == str_to_sympy("rates * dt"))


def current_groups(form) -> list[list[Current]]:
    """The synaptic currents of a form grouped by equal time constants and
    coefficients (one group acts as one current)."""
    groups = []
    for cur in form.currents:
        for g in groups:
            if np.array_equal(g[0].tau, cur.tau) and np.array_equal(g[0].r, cur.r):
                g.append(cur)
                break
        else:
            groups.append([cur])
    return groups


def lif_form(circuit: Circuit, name: str, refractory: bool = False
             ) -> tuple[LIFForm | None, str]:
    """``(LIFForm, '')`` when population ``name`` is a LIF with current-based
    synapses, else ``(None, reason)``. ``refractory``: accept a refractory
    period too (recorded in the form; the caller says what it does with it)."""
    pop = circuit.population(name)
    try:
        return _lif(circuit, pop, refractory), ""
    except _NotLIF as exc:
        return None, str(exc)


def _lif(circuit, pop, refractory) -> LIFForm:
    if pop.threshold is None:
        raise _NotLIF("it has no threshold (not a spiking population)")
    if pop.refractory is not None and not (refractory and isinstance(pop.refractory, Quantity)):
        raise _NotLIF(f"it has a refractory period ({pop.refractory})")
    rel = str_to_sympy(pop.threshold)
    diff = sorted(pop.equations.diff_eq_names)  # a set: sorted, so forms are deterministic
    if not (isinstance(rel, sympy.StrictGreaterThan) and str(rel.lhs) in diff):
        raise _NotLIF(f"its threshold {pop.threshold!r} is not 'v > <constant>' for a "
                      "differential variable v")
    v = str(rel.lhs)
    env = constants(circuit, pop)
    n = pop.n
    v_threshold = _per_neuron(rel.rhs, env, n, "the threshold")
    reset = statements(pop.reset, f"Population {pop.name!r} reset")
    if len(reset) != 1 or reset[0][0] != v or reset[0][1] != "=":
        raise _NotLIF(f"its reset {pop.reset!r} is not '{v} = <constant>'")
    v_reset = _per_neuron(str_to_sympy(reset[0][2]), env, n, "the reset")
    rhs = {d: _expression(pop, pop.equations[d].expr.code) for d in diff}
    for d, expr in rhs.items():
        bad = {"xi", "t", "dt"} & {str(s) for s in expr.free_symbols} | \
            {str(s) for s in expr.free_symbols if str(s).startswith("xi_")}
        if bad:
            raise _NotLIF(f"d{d}/dt reads {', '.join(sorted(bad))} (noise or time)")
    state = [str_to_sympy(d) for d in diff]  # Brian2's symbols (real=True)
    currents = []
    sv = str_to_sympy(v)
    for g in state:
        if g == sv:
            continue
        terms = _linear(rhs[str(g)], state)
        if terms is None or set(terms) != {g}:
            raise _NotLIF(f"d{g}/dt = {pop.equations[str(g)].expr.code} is not an "
                          f"exponential decay -{g}/tau of a synaptic current")
        decay = _per_neuron(terms[g], env, n, f"d{g}/dt")
        if np.any(decay >= 0):
            raise _NotLIF(f"d{g}/dt does not decay")
        currents.append((g, -1.0 / decay))
    terms = _linear(rhs[v], state)
    if terms is None:
        raise _NotLIF(f"d{v}/dt = {pop.equations[v].expr.code} is not linear in "
                      f"{', '.join(diff)}")
    leak = _per_neuron(terms.get(sv, sympy.S.Zero), env, n, f"d{v}/dt")
    if np.any(leak >= 0):
        raise _NotLIF(f"d{v}/dt has no leak (the coefficient of {v} must be -1/tau < 0)")
    tau = -1.0 / leak
    v_leak = _per_neuron(terms.get(1, sympy.S.Zero), env, n, f"d{v}/dt") * tau
    out = tuple(Current(str(g), tau_g, _per_neuron(terms.get(g, sympy.S.Zero), env, n,
                                                   f"d{v}/dt") * tau)
                for g, tau_g in currents)
    return LIFForm(pop.name, n, v, tau, v_leak, v_threshold, v_reset, out,
                   unit_name(pop.equations[v].dim),
                   None if pop.refractory is None else float(pop.refractory))


# --- spike projections -----------------------------------------------------------------

def spike_input(plan, proj, where: str):
    """``(variable, statement)`` of a spike projection: the one on_pre line that adds
    a weight (synaptic variables and constants only) to a variable of the target;
    CircuitError (prefixed ``where``) for anything else."""
    pp = plan.projections[proj.name]
    lines = [st for st in pp.on_pre if st.var.endswith("_post")]
    if pp.on_post and any(st.var.endswith("_pre") for st in pp.on_post) or len(lines) != 1 \
            or lines[0].op not in ("+=", "-=") or lines[0].factors is None \
            or lines[0].factors["pre"] or lines[0].factors["post"]:
        raise CircuitError(f"{where}: a spike must add a weight to one variable of "
                           f"{proj.target!r} ('x_post += w'; got on_pre={proj.on_pre!r}, "
                           f"on_post={proj.on_post!r}).")
    return lines[0].var[:-5], lines[0]


def is_plastic(pp) -> bool:
    """A projection plan whose weights change (a rule, learning, on_post code, or
    on_pre code beyond its one transmission line)."""
    return bool(pp.plasticity is not None or pp.learning or pp.on_post or len(pp.on_pre) > 1)


def synapse_pairs(circuit, proj, seed):
    """``(pre, post)`` indices of every synapse, in the order of synaptic arrays."""
    n_pre, n_post = circuit.population(proj.source).n, circuit.population(proj.target).n
    if proj.kind == "all":
        j, i = np.meshgrid(np.arange(n_post), np.arange(n_pre), indexing="ij")
        return i.ravel(), j.ravel()
    if proj.kind == "one_to_one":
        return np.arange(n_pre), np.arange(n_pre)
    return circuit.synapses(proj.name, seed)


def jump_matrix(circuit, proj, stmt, syn: dict, seed) -> np.ndarray:
    """``(n_post, n_pre)``: the jump a spike of each source neuron makes in the
    target variable of ``stmt`` (:func:`spike_input`), several synapses between
    one pair added up; ``syn``: the projection's synaptic arrays."""
    expr = str_to_sympy(product(stmt.factors, "syn", "scalar") or "1")
    if stmt.op == "-=":
        expr = -expr
    env = constants(circuit, circuit.population(proj.target))
    for name, values in syn.items():
        env[name] = np.asarray(values, float).ravel()
    missing = [str(s) for s in expr.free_symbols if str(s) not in env]
    if missing:
        raise CircuitError(f"Projection {proj.name!r}: the weight {stmt.expr!r} reads "
                           f"{missing}, which are not constants or synaptic variables.")
    symbols = sorted(expr.free_symbols, key=str)
    value = np.asarray(sympy.lambdify(symbols, expr, "numpy")(*(env[str(s)] for s in symbols)),
                       float)
    i, j = synapse_pairs(circuit, proj, seed)
    matrix = np.zeros((circuit.population(proj.target).n, circuit.population(proj.source).n))
    np.add.at(matrix, (j, i), np.broadcast_to(value, i.shape))
    return matrix

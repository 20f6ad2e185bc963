"""Brian2 code as array code: what the targets that evaluate equations
themselves (the dense engine, Lava's process models) share.

Statements are split with Brian2's ``parse_statement`` (:func:`statements`) and
expressions rendered to numpy syntax by Brian2's ``NumpyNodeRenderer`` and
compiled (:func:`compile_expr`, :class:`Expr`); :class:`Source` writes a
population's plan code -- blocks of statements, expressions, subexpressions
computed where first read and again after a write of their population -- as
straight-line Python over local variables, as Brian2's numpy templates do for
its code objects. The dense engine writes its whole step loop with it, Lava's
process models one function per block; neither interprets code itself.
:func:`array_namespace` provides what the rendered code refers to: Brian2's
numpy implementations of its default functions, taken from the array module
``xp`` by name, Brian2's unit names and constants as SI floats, ``dt`` and the
circuit's namespace.
"""
from __future__ import annotations

import re

import numpy as np
from brian2 import Quantity
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core.functions import DEFAULT_FUNCTIONS, Function
from brian2.core.namespace import DEFAULT_UNITS
from brian2.parsing.rendering import NumpyNodeRenderer
from brian2.parsing.statements import parse_statement
from brian2.utils.stringtools import get_identifiers, word_substitute

from .errors import CircuitError

#: random functions: each target provides its own stream (Brian2's numpy
#: implementations take the vectorisation index its code generator adds)
RANDOM_FUNCTIONS = ("rand", "randn", "poisson")
_RANDOM_CALL = re.compile(r"\b(rand|randn)\(\)")


def statements(code: str | None, where: str) -> list[tuple[str, str, str]]:
    """``(variable, operator, expression)`` for every line of Brian2 code."""
    out = []
    for line in (code or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            var, op, expr, _ = parse_statement(line)
        except Exception as exc:
            raise CircuitError(f"{where}: cannot parse the statement {line!r} ({exc}).") from exc
        out.append((var, op, expr))
    return out


def compile_expr(source: str, where: str):
    """``(numpy source, code object)`` of a Brian2 expression, rendered by Brian2's
    ``NumpyNodeRenderer`` and compiled for ``eval``; CircuitError naming ``where``
    if it cannot be. :class:`Expr` holds both: :class:`Source` writes the numpy
    source into generated functions, :func:`neurosim.learning.evaluate` ``eval`` s
    the code object."""
    try:
        numpy = NumpyNodeRenderer().render_expr(source)
        return numpy, compile(numpy, f"<{where}>", "eval")
    except Exception as exc:
        raise CircuitError(f"{where}: cannot translate {source!r} to array code "
                           f"({exc}).") from exc


def array_namespace(namespace: dict, dt: float, xp=np, dtype=np.float64) -> dict:
    """Globals for evaluating rendered Brian2 code on ``xp`` arrays of ``dtype``.

    ``int``, ``ceil``, ``floor`` and ``clip`` preserve the dtype (Brian2's numpy
    ``int`` returns int32, which would turn float32 arithmetic into float64; the
    values are the same). User functions in the namespace are left out: code
    that calls one fails as an unknown identifier."""
    # no builtins (a name the code does not declare fails), but numpy's array methods
    # import their helpers lazily, at the first call, in the caller's frame
    g: dict = {"__builtins__": {"__import__": __import__}}
    for name, func in DEFAULT_FUNCTIONS.items():
        if name in RANDOM_FUNCTIONS:
            continue
        try:
            impl = func.implementations[NumpyCodeObject].get_code(None)
        except Exception:
            continue  # no numpy implementation
        if isinstance(impl, np.ufunc):
            if hasattr(xp, impl.__name__):
                g[name] = getattr(xp, impl.__name__)
        elif xp is np and callable(impl):
            g[name] = impl  # numpy-only helpers such as exprel

    def as_int(v):
        v = xp.asarray(v)
        return (v if v.dtype == bool else xp.trunc(v)).astype(dtype)
    g["int"] = as_int
    g["ceil"] = lambda v: xp.ceil(v).astype(dtype)
    g["floor"] = lambda v: xp.floor(v).astype(dtype)
    # numpy's clip ufunc without np.clip's Python wrapper (a few µs per call)
    g["clip"] = np._core.umath.clip if xp is np else (lambda v, lo, hi: xp.clip(v, lo, hi))
    g["logical_not"] = xp.logical_not
    g.update({k: float(v) for k, v in DEFAULT_UNITS.items()})
    g.update(inf=float("inf"), pi=float(np.pi), e=float(np.e), dt=float(dt))
    for key, value in namespace.items():
        if isinstance(value, Function) or callable(value) and not isinstance(value, Quantity):
            continue
        arr = np.asarray(value, dtype=float)
        g[key] = float(arr) if arr.ndim == 0 else xp.asarray(arr, dtype=dtype)
    return g


class Expr:
    """One expression rendered to numpy syntax and compiled, with the local names it
    reads: ``refs`` holds ``(name, kind, population, variable, axis)`` per name,
    ``kind`` one of ``'pop'`` (a population value; ``axis`` 1 for ``_pre``, 2 for
    ``_post``), ``'syn'`` (a synaptic variable), ``'scratch'`` (a temporary of the
    same block) or ``'t'``. Other identifiers must be in ``globals_``."""
    __slots__ = ("source", "numpy", "code", "refs")

    def __init__(self, source: str, where: str, resolve, globals_: dict):
        self.source = source
        self.numpy, self.code = compile_expr(source, where)
        refs = []
        for ident in sorted(get_identifiers(self.numpy)):
            ref = resolve(ident)
            if ref is not None:
                refs.append((ident, *ref))
            elif ident not in globals_:
                raise CircuitError(
                    f"{where}: identifier {ident!r} in {source!r} is not known here (known: "
                    "the population's variables, _pre/_post references, synaptic variables, "
                    "the circuit namespace, dt, t, i, N, units, and Brian2's functions).")
        self.refs = tuple(refs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r[0] for r in self.refs)


def population_expr(source, where, plan, globals_, temps=frozenset()) -> Expr:
    """:class:`Expr` read in one population (a :class:`~neurosim.lowering.PopulationPlan`):
    its variables, ``i``, ``N``, ``t`` and the block's temporaries ``temps``."""
    names = set(plan.stored) | set(plan.subexprs) | {"i", "N", "t"}
    return Expr(source, where, lambda n: ("scratch", None, None, 0) if n in temps else
                ("pop", plan.name, n, 0) if n in names else None, globals_)


def projection_expr(source, where, proj, populations, globals_) -> Expr:
    """:class:`Expr` read across a projection (a :class:`~neurosim.lowering.ProjectionPlan`):
    ``v_pre``, ``v_post``, its synaptic variables and ``t``."""
    sides = ((proj.source, "_pre", 1), (proj.target, "_post", 2))

    def resolve(n):
        for pop, suffix, axis in sides:
            p = populations[pop]
            if n.endswith(suffix) and n[:-len(suffix)] in (*p.stored, *p.subexprs, "i", "N"):
                return ("pop", pop, n[:-len(suffix)], axis)
        return ("t", None, None, 0) if n == "t" else \
            ("syn", None, n, 0) if n in proj.parameters else None
    return Expr(source, where, resolve, globals_)


def block(code, where, plan, globals_) -> list[tuple[str, bool, Expr]]:
    """A population's block of statements as ``(variable, stored, Expr)``: ``x op= e``
    becomes ``x = x op (e)``; a name that is neither stored nor a subexpression is a
    temporary of the block; assigning a subexpression is an error."""
    out, temps = [], set()
    for var, op, expr in statements(code, where):
        if op != "=":
            expr = f"{var} {op[:-1]} ({expr})"
        stored = var in plan.stored
        if not stored and var in plan.subexprs:
            raise CircuitError(f"{where}: cannot assign to the subexpression {var!r}.")
        out.append((var, stored, population_expr(expr, where, plan, globals_,
                                                 frozenset(temps))))
        if not stored:
            temps.add(var)
    return out


class Source:
    """Straight-line Python source of plan code over local variables.

    ``populations``: name -> :class:`~neurosim.lowering.PopulationPlan`;
    ``subexprs``: name -> {subexpression: :class:`Expr`}. Every stored value
    ``(pop, var)`` is one local name (:meth:`local`); a subexpression is written
    out where it is first read and again after its population is written
    (:meth:`value`); a write goes through ``fit``, a format of ``code``, ``n``
    (the population size) and ``old`` (the local's value before the write).
    ``lines`` is the code; ``globals`` the values it needs besides the caller's
    (neuron indices ``i``). With ``random``, a block's ``rand()``/``randn()``
    become calls of ``_rand_<population>()``/``_randn_<population>()``, which
    the caller provides (one draw per neuron of that population)."""

    def __init__(self, populations: dict, subexprs: dict, fit: str = "{code}",
                 random: bool = False):
        self.populations, self.subexprs, self.fit = populations, subexprs, fit
        self.random = random
        self.lines: list[str] = []
        self.names: dict[tuple, str] = {}
        self.globals: dict = {}
        self.valid: set = set()  # subexpressions computed since their population's last write
        self.written: set = set()

    def local(self, *key) -> str:
        """The local name of ``key``: ``(pop, var)``, or the caller's own keys."""
        if key not in self.names:
            self.names[key] = f"_{len(self.names)}_" + "_".join(k.lstrip("#") for k in key)
        return self.names[key]

    def stored(self) -> dict[tuple[str, str], str]:
        """``(pop, var) -> local`` of the stored values the code reads or writes."""
        return {k: v for k, v in self.names.items() if len(k) == 2 and k[0] in self.populations
                and k[1] in self.populations[k[0]].stored}

    def value(self, pop: str, var: str, indent: str) -> str:
        plan = self.populations[pop]
        if var in plan.stored:
            return self.local(pop, var)
        if var in self.subexprs[pop]:
            if (pop, var) not in self.valid:
                code = self.expr(self.subexprs[pop][var], indent)
                self.lines.append(f"{indent}{self.local(pop, var)} = {code}")
                self.valid.add((pop, var))
            return self.local(pop, var)
        if var == "t":
            return "t"
        if var == "N":
            return str(plan.n)
        name = f"_i_{pop}"  # var == 'i'
        self.globals[name] = np.arange(plan.n)
        return name

    def expr(self, expr: Expr, indent: str, scratch=None, syn=None) -> str:
        """``expr`` as source; ``scratch``: temporaries' local names; ``syn``: a
        function of a synaptic variable's name giving its source."""
        subs = {}
        for n, kind, pop, var, _axis in expr.refs:
            subs[n] = (self.value(pop, var, indent) if kind == "pop" else scratch[n]
                       if kind == "scratch" else syn(var) if kind == "syn" else "t")
        return f"({word_substitute(expr.numpy, subs)})"

    def write(self, pop: str, var: str, code: str, indent: str) -> None:
        local = self.local(pop, var)
        value = self.fit.format(code=code, n=self.populations[pop].n, old=local)
        self.lines.append(f"{indent}{local} = {value}")
        self.valid = {k for k in self.valid if k[0] != pop}
        self.written.add((pop, var))

    def block(self, pop: str, stmts, indent: str) -> None:
        """A :func:`block` of statements: stored values written, temporaries local."""
        scratch = {}
        for var, stored, expr in stmts:
            code = self.expr(expr, indent, scratch)
            if self.random:
                code = _RANDOM_CALL.sub(lambda m: f"_{m.group(1)}_{pop}()", code)
            if stored:
                self.write(pop, var, code, indent)
            else:
                scratch[var] = self.local("#T", pop, var)
                self.lines.append(f"{indent}{scratch[var]} = {code}")

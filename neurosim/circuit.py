"""Circuit declarations: populations and projections written as Brian2 equations.

A circuit is data. It names populations (``NeuronGroup``-like: a size and
Brian2 equations) and projections (``Synapses``-like: a connectivity, a Brian2
synapse model with summed variables and ``on_pre``/``on_post`` code), together
with unit-carrying parameters (the namespace). It says nothing about how it is
run: every target in :mod:`neurosim.hardware_targets` reads the same object.

Two additions to Brian2's vocabulary describe trial-based rate circuits:

``init`` (population)
    Code run at the start of every trial, for instance ``'mu = prior'`` to
    start value neurons at their top-down prediction. Targets repeat it until
    it has propagated through the whole circuit (once per population).
``learning_rule`` (projection)
    Code run once at the end of every training trial, for instance
    ``'w += lr * gated_post * mu_pre'`` (eq. 3 of the relaxed predictive coding
    paper). Continuous plasticity (STDP) is written in ``on_pre``/``on_post``
    or in the model's differential equations, as in Brian2.
``plasticity`` (projection)
    A reusable rule object from :mod:`neurosim.plasticity` (``PairSTDP``,
    ``ThreeFactorSTDP``) whose Brian2 code is merged into the projection's
    model and ``on_pre``/``on_post``; it stays available as
    ``projection.plasticity`` so that a target can map it by type.

Equations are parsed with Brian2's own parser (:class:`brian2.Equations`) when
declared; identifiers and units are checked by :meth:`Circuit.check`, which
lets Brian2 itself resolve and check a miniature copy of the circuit.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from brian2 import Equations, Quantity, ms
from brian2.equations.equations import SUBEXPRESSION

__all__ = [
    "CircuitError", "Population", "Projection", "Circuit",
    "normal", "abs_normal", "constant", "identity", "fan_in_uniform",
]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
CONNECTIVITIES = ("all", "one_to_one")


class CircuitError(ValueError):
    """A declaration problem. The message names the problem and the fix."""


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise CircuitError(
            f"{kind} name {name!r} is not a valid identifier: use letters, digits "
            f"and underscores, starting with a letter (for example 'value0')."
        )
    if name.endswith(("_pre", "_post")):
        raise CircuitError(f"{kind} name {name!r} ends in _pre/_post, which Brian2 "
                           "reserves for synaptic references: choose another name.")


def root_cause(exc: BaseException) -> BaseException:
    """The original error under Brian2's wrapping exceptions."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _parse(owner: str, what: str, eqs) -> Equations:
    try:
        return eqs if isinstance(eqs, Equations) else Equations(eqs)
    except Exception as exc:  # Brian2 raises several types (SyntaxError, ValueError, ...)
        detail = str(exc).rstrip(".")
        if root_cause(exc) is not exc:
            detail += f" ({root_cause(exc)})"
        raise CircuitError(
            f"{owner}: the {what} do not parse as Brian2 equations: {detail}. "
            "Fix the equation string (Brian2 syntax: 'dv/dt = -v/tau : volt', "
            "'x = 2*y : 1', 'w : 1', 'x_post = w*y_pre : 1 (summed)')."
        ) from exc


# --- initialisers: deterministic functions of a numpy Generator and a shape ----------

Initializer = Callable[[np.random.Generator, tuple], np.ndarray]


def normal(std: float, mean: float = 0.0) -> Initializer:
    """Gaussian weights (the relaxed PC paper draws from N(0, variance 0.05))."""
    def draw(rng, shape):
        return rng.normal(mean, std, size=shape)
    draw.__doc__ = f"normal(mean={mean}, std={std})"
    return draw


def abs_normal(std: float) -> Initializer:
    """Magnitudes of Gaussian draws: non-negative weights."""
    def draw(rng, shape):
        return np.abs(rng.normal(0.0, std, size=shape))
    draw.__doc__ = f"abs_normal(std={std})"
    return draw


def constant(value: float) -> Initializer:
    def draw(rng, shape):
        return np.full(shape, float(value))
    draw.__doc__ = f"constant({value})"
    return draw


def fan_in_uniform(rng, shape):
    """Uniform in ±1/√fan_in, the default of PyTorch/Equinox linear layers."""
    bound = 1.0 / np.sqrt(shape[-1])
    return rng.uniform(-bound, bound, size=shape)


def identity(rng, shape):
    """Identity matrix (for an all-to-all projection between equal populations)."""
    if len(shape) != 2 or shape[0] != shape[1]:
        raise CircuitError(f"identity() needs a square projection, got shape {shape}.")
    return np.eye(shape[0])


# --- declarations --------------------------------------------------------------------

@dataclass
class Population:
    """A group of neurons sharing Brian2 equations (like ``brian2.NeuronGroup``).

    Parameters mirror ``NeuronGroup``: ``threshold``, ``reset``, ``refractory``
    and ``method``; ``init`` is run at the start of each trial (see module doc);
    ``values`` gives initial values of state variables (numbers, arrays of
    length ``n``, or Quantities).
    """
    name: str
    n: int
    model: str | Equations
    threshold: str | None = None
    reset: str | None = None
    refractory: object = None
    method: str = "euler"
    init: str | None = None
    values: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        _check_name("Population", self.name)
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise CircuitError(f"Population {self.name!r}: size n={self.n!r} must be a "
                               "positive integer.")
        self.n = int(self.n)
        self.equations = _parse(f"Population {self.name!r}", "equations", self.model)
        names = set(self.equations.names)
        for var, value in self.values.items():
            if var not in names:
                raise CircuitError(
                    f"Population {self.name!r}: initial value given for unknown variable "
                    f"{var!r}; declared variables are {sorted(names)}.")
            if np.ndim(value) not in (0, 1) or (np.ndim(value) == 1 and len(value) != self.n):
                raise CircuitError(
                    f"Population {self.name!r}: initial value of {var!r} has shape "
                    f"{np.shape(value)}; give a scalar or an array of length {self.n}.")

    @property
    def stored_variables(self) -> list[str]:
        """Differential equations and parameters (what can be set or clamped)."""
        return [n for n, eq in self.equations.items() if eq.type != SUBEXPRESSION]

    @property
    def variables(self) -> list[str]:
        return list(self.equations.names)


@dataclass
class Projection:
    """Synapses from ``source`` to ``target`` (like ``brian2.Synapses``).

    ``connect`` is ``'all'`` (dense) or ``'one_to_one'``. ``init`` maps synaptic
    variables to initialisers or arrays; a dense array has shape
    ``(target.n, source.n)`` (the matrix ``W`` of ``post = W @ pre``), a
    one-to-one array shape ``(n,)``.
    """
    name: str
    source: str
    target: str
    model: str | Equations = ""
    connect: str = "all"
    on_pre: str | None = None
    on_post: str | None = None
    delay: object = None
    init: Mapping[str, object] = field(default_factory=dict)
    learning_rule: str | None = None
    plasticity: object = None

    def __post_init__(self):
        _check_name("Projection", self.name)
        if self.connect not in CONNECTIVITIES:
            raise CircuitError(f"Projection {self.name!r}: connect={self.connect!r} is not "
                               f"supported; use one of {CONNECTIVITIES}.")
        self.equations = _parse(f"Projection {self.name!r}", "synapse model", self.model)
        self.rule_namespace = {}
        if self.plasticity is not None:
            self._merge_plasticity()
        own = set(self.equations.names)
        for var in self.init:
            if var not in own:
                raise CircuitError(
                    f"Projection {self.name!r}: init given for unknown synaptic variable "
                    f"{var!r}; declare it in the model (e.g. '{var} : 1').")
        for eq in self.equations.values():
            if "summed" in eq.flags and not eq.varname.endswith(("_pre", "_post")):
                raise CircuitError(
                    f"Projection {self.name!r}: summed variable {eq.varname!r} must name "
                    "its target with _post or _pre (e.g. 'I_post = w*r_pre : 1 (summed)').")

    def _merge_plasticity(self):
        """Add the rule's model lines, on_pre/on_post statements (after the
        projection's own) and namespace entries (see :mod:`neurosim.plasticity`)."""
        from .plasticity import PlasticityRule
        rule = self.plasticity
        if not isinstance(rule, PlasticityRule):
            raise CircuitError(
                f"Projection {self.name!r}: plasticity={rule!r} is not a plasticity rule; "
                "give a rule object from neurosim.plasticity (e.g. PairSTDP(...)).")
        code = rule.brian2(self.name)
        rule_eqs = _parse(f"Projection {self.name!r}", f"{type(rule).__name__} model", code.model)
        for var in rule_eqs.names:
            mine = self.equations.get(var)
            if mine is not None and (mine.type != "parameter" or mine.dim != rule_eqs[var].dim):
                raise CircuitError(
                    f"Projection {self.name!r}: {type(rule).__name__} declares {var!r} "
                    f"({rule_eqs[var]}), which the projection's model already declares as "
                    f"{mine}; remove it from the model (or declare it as a plain parameter "
                    "of the same unit).")
        self.equations = Equations([eq for name, eq in self.equations.items()
                                    if name not in rule_eqs.names] + list(rule_eqs.values()))
        self.on_pre = "\n".join(c for c in (self.on_pre, code.on_pre) if c)
        self.on_post = "\n".join(c for c in (self.on_post, code.on_post) if c)
        self.rule_namespace = code.namespace

    @property
    def summed(self) -> dict[str, tuple[str, str]]:
        """``{'x_post': ('post', 'x'), ...}`` for every summed variable."""
        out = {}
        for eq in self.equations.values():
            if "summed" in eq.flags:
                base, side = eq.varname.rsplit("_", 1)
                out[eq.varname] = (side, base)
        return out

    @property
    def parameters(self) -> list[str]:
        """Synaptic variables that are stored (not summed, not subexpressions)."""
        return [n for n, eq in self.equations.items()
                if "summed" not in eq.flags and eq.type != SUBEXPRESSION]

    def initial_values(self, var: str, n_pre: int, n_post: int, rng) -> np.ndarray:
        """Initial value of ``var`` as a dense (n_post, n_pre) or (n,) array."""
        shape = (n_post, n_pre) if self.connect == "all" else (n_pre,)
        spec = self.init.get(var, 0.0)
        # Quantities become their SI values; targets set them without units.
        value = np.asarray(spec(rng, shape) if callable(spec) else spec, dtype=float)
        if value.ndim == 0:
            value = np.full(shape, float(value))
        if value.shape != shape:
            raise CircuitError(
                f"Projection {self.name!r}: {var} has shape {value.shape} but a "
                f"{self.connect!r} projection from {self.source!r} ({n_pre}) to "
                f"{self.target!r} ({n_post}) needs shape {shape} (rows = target neurons).")
        return value


class Circuit:
    """Populations, projections and unit-carrying parameters.

    >>> from brian2 import ms
    >>> c = Circuit('leaky', namespace={'tau': 10*ms})
    >>> _ = c.add(Population('r', 3, 'dv/dt = -v/tau : 1'))
    """

    def __init__(self, name: str, namespace: Mapping[str, object] | None = None,
                 dt: Quantity = 1 * ms, description: str = ""):
        _check_name("Circuit", name)
        self.name = name
        self.namespace = dict(namespace or {})
        self.dt = dt
        self.description = description
        self.populations: dict[str, Population] = {}
        self.projections: dict[str, Projection] = {}
        self.input: tuple[str, str] | None = None
        self.output: tuple[str, str] | None = None
        self._readout: tuple[str, str] | None = None
        self._checked = False
        try:
            if not (isinstance(dt, Quantity) and dt.dim == ms.dim and float(dt) > 0):
                raise TypeError
        except TypeError:
            raise CircuitError(f"Circuit {name!r}: dt={dt!r} must be a positive time "
                               "(for example 1*ms).") from None

    # declaration ---------------------------------------------------------------------
    def add(self, item: Population | Projection):
        if isinstance(item, (Population, Projection)) and (
                item.name in self.populations or item.name in self.projections):
            raise CircuitError(f"Circuit {self.name!r}: the name {item.name!r} is used "
                               "twice; give every population and projection its own name.")
        if isinstance(item, Population):
            self.populations[item.name] = item
        elif isinstance(item, Projection):
            for role in ("source", "target"):
                pop = getattr(item, role)
                if pop not in self.populations:
                    raise CircuitError(
                        f"Projection {item.name!r}: unknown {role} population {pop!r}; "
                        f"declared populations are {sorted(self.populations)} (add the "
                        "population before the projection).")
            src, tgt = self.populations[item.source], self.populations[item.target]
            if item.connect == "one_to_one" and src.n != tgt.n:
                raise CircuitError(
                    f"Projection {item.name!r}: one_to_one needs populations of equal size, "
                    f"but {src.name!r} has {src.n} and {tgt.name!r} has {tgt.n}; use "
                    "connect='all' with a weight matrix instead.")
            for var, (side, base) in item.summed.items():
                pop = tgt if side == "post" else src
                if base not in pop.variables:
                    raise CircuitError(
                        f"Projection {item.name!r}: summed variable {var!r} targets "
                        f"{pop.name}.{base}, which is not declared; add '{base} : <unit>' "
                        f"to the equations of population {pop.name!r}.")
                for other in self.projections.values():
                    if (var in other.summed and
                            (other.target if side == "post" else other.source) == pop.name):
                        raise CircuitError(
                            f"Projection {item.name!r}: {pop.name}.{base} is already the "
                            f"target of a summed variable in {other.name!r}; Brian2 allows "
                            "one summed variable per target: declare a second variable.")
            for var in item.parameters:
                item.initial_values(var, src.n, tgt.n, np.random.default_rng(0))
            for key, value in item.rule_namespace.items():
                if key in self.namespace and self.namespace[key] is not value:
                    raise CircuitError(
                        f"Projection {item.name!r}: its plasticity rule's constant {key!r} "
                        f"is already in the namespace of circuit {self.name!r}; rename the "
                        "projection or the namespace entry.")
            self.namespace.update(item.rule_namespace)
            self.projections[item.name] = item
        else:
            raise CircuitError(f"Circuit.add takes a Population or a Projection, not "
                               f"{type(item).__name__}.")
        self._checked = False
        return item

    def set_io(self, input: tuple[str, str] | None = None,
               output: tuple[str, str] | None = None,
               readout: tuple[str, str] | None = None):
        """Name the clamped input, the clamped training target (output) and the
        variable read out at test time (``readout``, default: the output).
        Input and output must be stored variables (differential equations or
        parameters); the readout may be any variable, subexpressions included."""
        for role, ref in (("input", input), ("output", output), ("readout", readout)):
            if ref is None:
                continue
            pop, var = ref
            if pop not in self.populations:
                raise CircuitError(f"Circuit {self.name!r}: {role} population {pop!r} is "
                                   f"unknown; declared populations are {sorted(self.populations)}.")
            allowed = (self.populations[pop].variables if role == "readout"
                       else self.populations[pop].stored_variables)
            if var not in allowed:
                raise CircuitError(
                    f"Circuit {self.name!r}: {role} variable {pop}.{var} cannot be used; "
                    f"{'variables' if role == 'readout' else 'stored variables'} of {pop!r} "
                    f"are {allowed}.")
            setattr(self, "_readout" if role == "readout" else role, (pop, var))

    @property
    def readout(self) -> tuple[str, str] | None:
        return self._readout or self.output

    # queries -------------------------------------------------------------------------
    def population(self, name: str) -> Population:
        try:
            return self.populations[name]
        except KeyError:
            raise CircuitError(f"Circuit {self.name!r} has no population {name!r}; "
                               f"populations are {sorted(self.populations)}.") from None

    def projection(self, name: str) -> Projection:
        try:
            return self.projections[name]
        except KeyError:
            raise CircuitError(f"Circuit {self.name!r} has no projection {name!r}; "
                               f"projections are {sorted(self.projections)}.") from None

    def check_variable(self, pop: str, var: str) -> None:
        if var not in self.population(pop).variables:
            raise CircuitError(
                f"Population {pop!r} has no variable {var!r}; its variables are "
                f"{self.population(pop).variables}.")

    def initial_weights(self, seed: int) -> dict[str, dict[str, np.ndarray]]:
        """Initial values of all synaptic parameters, drawn from one seeded generator.

        Every target starts from these arrays, so a seed means the same circuit
        everywhere. Projections are drawn in declaration order.
        """
        rng = np.random.default_rng(seed)
        out = {}
        for proj in self.projections.values():
            src, tgt = self.populations[proj.source], self.populations[proj.target]
            out[proj.name] = {v: proj.initial_values(v, src.n, tgt.n, rng)
                              for v in proj.parameters}
        return out

    def check(self) -> "Circuit":
        """Let Brian2 resolve identifiers and check units on a miniature copy.

        Raises :class:`CircuitError` naming the population or projection and
        the fix. Cached until the circuit changes.
        """
        if not self._checked:
            from .brian2_build import check_with_brian2
            check_with_brian2(self)
            self._checked = True
        return self

    def __repr__(self):
        return (f"Circuit({self.name!r}, populations={ {k: v.n for k, v in self.populations.items()} }, "
                f"projections={list(self.projections)})")


def summed_order(circuit: Circuit) -> list[tuple[str, str, int]]:
    """Summed variables in dependency order: ``[(projection, 'x_post', level), ...]``.

    A summed variable whose expression reads (directly or through
    subexpressions) another summed variable's target is computed after it.
    Every target uses this order so that all derived quantities of a time
    step come from the same state (an exact Euler step). An algebraic loop
    raises :class:`CircuitError`.
    """
    targets = {}
    for proj in circuit.projections.values():
        for var, (side, base) in proj.summed.items():
            pop = proj.target if side == "post" else proj.source
            targets[(pop, base)] = (proj.name, var)

    def pop_deps(pop: str, name: str, seen: frozenset) -> set:
        if (pop, name) in targets:
            return {targets[(pop, name)]}
        eqs = circuit.populations[pop].equations
        if name in eqs and eqs[name].type == SUBEXPRESSION and (pop, name) not in seen:
            out = set()
            for ident in eqs[name].expr.identifiers:
                out |= pop_deps(pop, ident, seen | {(pop, name)})
            return out
        return set()

    def expr_deps(proj: Projection, identifiers, seen=frozenset()) -> set:
        out = set()
        for ident in identifiers:
            if ident.endswith("_pre"):
                out |= pop_deps(proj.source, ident[:-4], frozenset())
            elif ident.endswith("_post"):
                out |= pop_deps(proj.target, ident[:-5], frozenset())
            elif ident in proj.equations and proj.equations[ident].type == SUBEXPRESSION \
                    and ident not in seen and "summed" not in proj.equations[ident].flags:
                out |= expr_deps(proj, proj.equations[ident].expr.identifiers, seen | {ident})
        return out

    deps = {}
    for proj in circuit.projections.values():
        for var in proj.summed:
            deps[(proj.name, var)] = expr_deps(proj, proj.equations[var].expr.identifiers)
    levels: dict = {}

    def level(key, stack=()):
        if key in stack:
            loop = " -> ".join(f"{p}.{v}" for p, v in stack + (key,))
            raise CircuitError(f"Circuit {circuit.name!r}: summed variables form an algebraic "
                               f"loop ({loop}); break it with a differential equation.")
        if key not in levels:
            levels[key] = 1 + max((level(d, stack + (key,)) for d in deps[key]), default=-1)
        return levels[key]

    for key in deps:
        level(key)
    return sorted(((p, v, lv) for (p, v), lv in levels.items()), key=lambda t: t[2])

"""The interface every target implements, and the trial protocol built on it.

A target is to neurosim what a ``Device`` is to Brian2 or a ``ProcessModel``
to Lava: it reads a :class:`~neurosim.circuit.Circuit` and runs it. Circuits
never contain target-specific code; targets never contain circuit-specific
code. The protocol functions here (:func:`train_trial`, :func:`predict`) use
only this interface, so every target trains the same way.

The contract every target shares, so that callers never test a target's name
or probe for a method: a lifecycle (:meth:`Target.close`, a no-op unless the
target holds processes or folders; ``with make_target(...) as t:``), and
declared :class:`Capabilities`, which the command line, the trainer and the
refusal messages read from the registry instead of naming targets; and one
shape contract for state values (:meth:`Target.set`, :meth:`Target.get`),
checked by one normaliser (:meth:`Target.state_values`), so that a value a
target takes is taken, and a value it refuses is refused with the same
message, on every target.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from abc import ABC, abstractmethod
from typing import Mapping

import numpy as np

from .brian2_build import check
from .circuit import Circuit, check_seed, finite_values
from .errors import CircuitError, DivergenceError  # noqa: F401  (DivergenceError: old path)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a target declares it can do. The defaults claim nothing, so a new
    target is never offered for what it has not declared.

    ``batch``: the largest number of samples run at once (values of shape
    ``(B, n)``); a target with ``batch > 1`` takes ``batch_mean=`` (average a
    batch's learning-rule increments). ``optimizer``: takes ``optimizer=``
    (e.g. Adam) applied to the increments. ``float32``: takes
    ``dtype=np.float32``. ``spikes``: runs thresholds and resets and records
    ``(population, 'spikes')``. ``plasticity``: runs spike-driven synapse code
    and the rules of :mod:`neurosim.plasticity`. ``fixed_point``: computes in
    integers (values are quantised). ``random``: runs ``rand()``/``randn()``.
    ``backends``: the array backends it takes as ``backend=`` (the first is
    its default).
    """
    batch: int = 1
    optimizer: bool = False
    float32: bool = False
    spikes: bool = False
    plasticity: bool = False
    fixed_point: bool = False
    random: bool = False
    backends: tuple = ()


class Target(ABC):
    """Runs one circuit. ``weights`` defaults to ``circuit.initial_weights(seed)``."""

    name = "abstract"
    #: declared, read by the registry (:func:`neurosim.hardware_targets.capabilities`)
    capabilities = Capabilities()

    @classmethod
    def capabilities_of(cls, **options) -> Capabilities:
        """The capabilities of this class built with constructor ``options`` (the
        registry's fixed ones); a class whose options change them overrides this."""
        return cls.capabilities

    @property
    def max_batch(self) -> int:
        """The largest batch this target runs (``capabilities.batch``)."""
        return self.capabilities.batch

    def close(self) -> None:
        """Release what the target holds (worker processes, build folders).
        Idempotent; safe after a failed run. Nothing to release here."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 **options):
        if not isinstance(circuit, Circuit):
            raise CircuitError(f"{type(self).__name__} runs a neurosim Circuit, not "
                               f"{type(circuit).__name__}: build one with Circuit(...).")
        self._check_options(options)
        check_seed(seed)
        self.circuit = check(circuit)
        if weights is not None:  # every target: refused before anything is built
            given = weight_values(circuit, weights)
            missing = [f"{p}.{v}" for p, proj in circuit.projections.items()
                       for v in proj.parameters if v not in given.get(p, {})]
            if missing:
                raise CircuitError(f"weights= lacks {', '.join(missing)}: give every "
                                   "projection's synaptic variables (start from "
                                   "circuit.initial_weights(seed)), or leave weights out.")
        reason = type(self).unsupported(circuit, **options)
        if reason:
            from neurosim.hardware_targets import refusal, registry_name
            raise refusal(registry_name(type(self), options), circuit, reason)
        self.seed = seed
        self.clamped: dict[str, str] = {}
        from neurosim.hardware_targets import registry_name
        #: the registry name of this target (for messages)
        self.display_name = registry_name(type(self), options)

    def _check_options(self, options: dict) -> None:
        """Options are the keywords of the constructors of the class and its
        bases (a subclass passes its own on through ``**options``): a misspelt
        one must not be swallowed by a ``**options``."""
        accepted = set()
        for cls in type(self).__mro__:
            if "__init__" in vars(cls) and issubclass(cls, Target):
                accepted |= {k for k, p in inspect.signature(cls.__init__).parameters.items()
                             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        accepted -= {"self", "circuit", "seed", "weights"}
        for key in sorted(set(options) - accepted):
            close = difflib.get_close_matches(key, accepted, n=1)
            raise CircuitError(
                f"{type(self).__name__} does not take the option {key!r}"
                f"{f' (did you mean {close[0]!r}?)' if close else ''}; its options are "
                f"{sorted(accepted) or 'none'}.")

    @classmethod
    def unsupported(cls, circuit: Circuit, **options) -> str | None:
        """Why this target cannot run ``circuit``: one sentence naming the first
        construct it has no mapping for, or ``None``. Cheap (nothing is built);
        ``options`` are the constructor's. The constructor raises with this
        sentence and the targets of the registry that do accept the circuit."""
        return None

    # state ------------------------------------------------------------------------
    @abstractmethod
    def get(self, population: str, variable: str) -> np.ndarray:
        """Current values of a population variable (subexpressions included), a new
        float64 array: ``(n,)`` on a target running one sample, ``(B, n)`` (row
        ``b``: sample ``b``) where a ``(B, n)`` batch was last set."""

    @abstractmethod
    def set(self, population: str, variable: str, values) -> None:
        """Set a stored population variable (a differential equation or a
        parameter; a subexpression is read, never set). ``values``: a number
        (every neuron: the same as ``np.full(n, value)``), an ``(n,)`` array
        (one sample), or a ``(B, n)`` batch on a target that runs batches
        (``capabilities.batch >= B``, ``batch > 1``; a target running one sample
        refuses every 2-d array, ``(1, n)`` too, as its ``get`` returns
        ``(n,)``). Every other shape is refused. Each target's ``set`` starts
        with :meth:`state_values`, which checks this."""

    @abstractmethod
    def get_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Synaptic parameters, in the layout of ``Circuit.initial_weights``."""

    @abstractmethod
    def set_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        ...

    def extra_state(self) -> dict[str, np.ndarray]:
        """Learning state beyond the weights (optimiser moments), for checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def state_values(self, population: str, variable: str, values,
                     verb: str = "Setting") -> np.ndarray:
        """The shape contract of :meth:`set` (and :meth:`clamp`), the same on every
        target: ``values`` of a stored variable, finite, as a float64 ``(n,)``
        array (a number is spread to every neuron) or ``(B, n)`` batch;
        anything else is a :class:`CircuitError` naming the shape, the
        population size and, for a batch, the targets that run one."""
        self.circuit.check_variable(population, variable)
        pop = self.circuit.population(population)
        if variable not in pop.stored_variables:
            raise CircuitError(f"{verb} {population}.{variable}: it is a subexpression (computed "
                               "from other variables); it can be read, not set: set the "
                               f"stored variables it is computed from ({pop.stored_variables}).")
        values = state_values(self.circuit, population, variable, values, verb)
        n, batch = pop.n, self.capabilities.batch
        if values.ndim == 0:
            return np.full(n, float(values))
        if values.shape == (n,) or (values.ndim == 2 and values.shape[1] == n
                                    and 1 < batch and 0 < values.shape[0] <= batch):
            return values
        what = (f"{verb} {population}.{variable}: got shape {values.shape}; population "
                f"{population!r} has {n} neurons")
        if values.ndim != 2 or values.shape[1] != n or not values.shape[0]:
            raise CircuitError(f"{what}: give a number (every neuron), shape ({n},) (one "
                               "sample)" + (f" or shape (B, {n}) with B <= {batch} (a batch)"
                                            if batch > 1 else "") + ".")
        from neurosim.hardware_targets import having
        B = values.shape[0]
        runs = having(lambda caps: caps.batch >= max(B, 2))
        runs_here = ("one sample at a time" if batch == 1
                     else f"at most {batch} samples at once")
        raise CircuitError(
            f"{what}, and the {self.display_name} target runs {runs_here}: give a number "
            f"or shape ({n},) per sample"
            + (f", or use a target that runs batches{f' of {B}' if B > 1 else ''}: "
               f"{', '.join(runs)}." if runs
               else "; no registered target runs such a batch."))

    # dynamics ---------------------------------------------------------------------
    def clamp(self, population: str, variable: str, values) -> None:
        """Hold a population at ``values`` (the shapes :meth:`set` takes): its
        equations stop updating it."""
        self.set(population, variable, self.state_values(population, variable, values,
                                                         "Clamping"))
        self.clamped[population] = variable

    def release(self, population: str) -> None:
        self.clamped.pop(population, None)

    @abstractmethod
    def settle(self) -> None:
        """Run every free population's ``init`` code until it has propagated
        (one step per population with ``init``, at least one step). A step
        computes the summed variables first, so after ``settle`` they reflect
        the state before the last ``init`` ran: with random draws in ``init``
        (``rand()``), read what depends on them after ``learn`` or ``run``,
        which compute them first. A clamped population runs no code, its
        ``init`` included: draw in a population that is not clamped."""

    @abstractmethod
    def run(self, n_steps: int, record=()) -> dict[tuple[str, str], np.ndarray]:
        """Advance ``n_steps`` time steps; return ``{(pop, var): (n_steps, ...) array}``
        holding each recorded variable at the start of every step.

        ``(pop, 'spikes')`` records the spikes of a population with a threshold
        as a ``(k, 2)`` int array of ``[step, neuron]`` rows, steps counted from
        the start of this call (unless the population declares a variable named
        ``spikes``, which is then recorded like any other). An entry
        ``(pop, var, indices)`` records the chosen neurons only (see
        :func:`parse_record`). Without ``record`` a run pays no per-step Python
        cost."""

    @abstractmethod
    def learn(self) -> None:
        """Apply every projection's ``learning_rule`` once, from the current state."""

    def trial(self, x, y, n_steps: int, record=()):
        """One training trial (:func:`train_trial`): clamp the circuit's input to
        ``x`` and its output to ``y``, settle, run ``n_steps``, learn; returns the
        recorded traces."""
        self.clamp(*self.circuit.input, x)
        self.clamp(*self.circuit.output, y)
        self.settle()
        trace = self.run(n_steps, record=record)
        self.learn()
        return trace

    def check_finite(self, where: str = "", limit: float = 1e6) -> None:
        """Stop with a clear message if any weight is NaN, infinite or beyond ``limit``
        in magnitude (a blow-up: rate-circuit weights are of order 1)."""
        for proj, params in self.get_weights().items():
            for var, value in params.items():
                if value.size and not np.all(np.abs(value) <= limit):  # False for NaN too
                    raise DivergenceError(
                        f"{self.circuit.name}: {proj}.{var} became NaN, infinite or larger "
                        f"than {limit:g}{where}. The run diverged: lower the learning rate "
                        "or the inference rate.")


def state_values(circuit: Circuit, population: str, variable: str, values,
                 verb: str = "Setting") -> np.ndarray:
    """The first check of :meth:`Target.state_values` (which every target's
    ``set`` and ``clamp`` call): the variable exists and ``values`` are finite
    numbers. Returns them as a float array (shapes are not checked here)."""
    circuit.check_variable(population, variable)
    return finite_values(f"{verb} {population}.{variable}", values)


def weight_values(circuit: Circuit, weights) -> dict[str, dict[str, np.ndarray]]:
    """What every target's ``set_weights`` (and the constructor's ``weights``)
    checks first: ``{projection: {synaptic variable: finite values}}`` naming
    declared projections and their stored variables. Returns float arrays in
    the same layout (shapes are each target's check)."""
    if not isinstance(weights, Mapping):
        raise CircuitError(f"weights must be a dict {{projection: {{variable: values}}}} (the "
                           f"layout of Circuit.initial_weights), not {type(weights).__name__}.")
    out = {}
    for name, params in weights.items():
        proj = circuit.projection(name)
        if not isinstance(params, Mapping):
            raise CircuitError(f"weights[{name!r}] must be a dict {{variable: values}} (e.g. "
                               f"{{'{(proj.parameters or ['w'])[0]}': array}}), not "
                               f"{type(params).__name__}.")
        out[name] = {}
        for var, value in params.items():
            if var not in proj.parameters:
                raise CircuitError(f"Projection {name!r} has no synaptic variable {var!r}; "
                                   f"its variables are {proj.parameters}.")
            out[name][var] = finite_values(f"Projection {name!r}, weights {var!r}", value)
    return out


def check_steps(n_steps) -> int:
    """``run``'s step count: a non-negative integer (a float would be rounded
    differently by each target, a negative or NaN one fails deep inside)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise CircuitError(f"run(n_steps={n_steps!r}): the number of time steps must be a "
                           "non-negative integer (e.g. run(100)).")
    return int(n_steps)


def parse_record(circuit: Circuit, record) -> list[tuple[str, str, np.ndarray | None]]:
    """Validate ``run``'s ``record``: entries ``(pop, var)`` or ``(pop, var, indices)``.

    ``var`` is a variable of the population, or ``'spikes'`` for a population
    with a threshold (unless it declares a variable of that name). Returns
    ``(pop, var, indices)`` with ``indices`` an int64 array of neuron indices
    (``None``: every neuron); results are keyed ``(pop, var)``, so a variable
    may be recorded once per call."""
    out, seen = [], set()
    for entry in record:
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise CircuitError(f"record entry {entry!r}: give (population, variable) or "
                               "(population, variable, neuron indices).")
        pop, var = entry[0], entry[1]
        population = circuit.population(pop)
        if var == "spikes" and "spikes" not in population.variables:
            if population.threshold is None:
                raise CircuitError(f"Population {pop!r} has no threshold, so it never "
                                   "spikes: record one of its variables instead.")
        else:
            circuit.check_variable(pop, var)
        if (pop, var) in seen:
            raise CircuitError(f"record: {pop}.{var} is named twice; record it once (with "
                               "the union of the neuron indices).")
        seen.add((pop, var))
        indices = None
        if len(entry) == 3 and entry[2] is not None:
            indices = np.asarray(entry[2])
            if indices.ndim == 0:
                indices = indices.reshape(1)
            if indices.ndim != 1 or indices.dtype.kind not in "iu" or (
                    indices.size and (indices.min() < 0 or indices.max() >= population.n)):
                raise CircuitError(
                    f"record {pop}.{var}: neuron indices must be a 1-d array of integers in "
                    f"0..{population.n - 1}, got {entry[2]!r}.")
            indices = indices.astype(np.int64)
        out.append((pop, var, indices))
    return out


def is_spikes(circuit: Circuit, pop: str, var: str) -> bool:
    """Whether a record entry asks for spike rows (not a declared variable)."""
    return var == "spikes" and "spikes" not in circuit.population(pop).variables


def train_trial(target: Target, x, y, n_steps: int, record=()):
    """One training trial: clamp input and output, settle, infer, learn (paper
    protocol); :meth:`Target.trial`, which a compiling target runs as one program."""
    return target.trial(x, y, n_steps, record)


def predict(target: Target, x, n_steps: int = 0) -> np.ndarray:
    """Test trial: clamp the input, let the output free, settle and read it out."""
    circuit = target.circuit
    target.clamp(*circuit.input, x)
    target.release(circuit.output[0])
    target.settle()
    if n_steps:
        target.run(n_steps)
    return target.get(*circuit.readout)

"""Translate a :class:`~neurosim.circuit.Circuit` into Brian2 objects.

Shared by every Brian2 device (runtime numpy/cython, cpp_standalone, brian2cuda)
and by :func:`check`, which builds a one-neuron-per-population copy so that
Brian2 itself resolves identifiers and checks units. The check lives here,
not as a method of :class:`~neurosim.circuit.Circuit`, because it builds
Brian2 objects: this module imports the declarations, and the declarations
import nothing above them, so the import graph stays acyclic.

Two scheduling choices differ from Brian2's defaults, both so that one time
step is an exact forward-Euler step of the declared equations:

* summed variables are computed in the ``before_groups`` slot, ordered by
  :func:`~neurosim.lowering.summed_order` (Brian2 updates each one just before
  its target group, so a chain value -> error -> value would read values of
  the previous step or of an already updated group);
* ``init`` and ``learning_rule`` code become ``run_regularly`` operations that
  are switched on only for the settle and learning steps.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field

import numpy as np
from brian2 import Clock, Network, NeuronGroup, Synapses, prefs, second
from brian2.units.fundamentalunits import DimensionMismatchError

from .circuit import Circuit, synapse_code
from .codegen import statements
from .errors import CircuitError, root_cause
from .lowering import summed_order


@dataclass
class Brian2Objects:
    network: Network
    clock: Clock
    groups: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    settle_ops: dict = field(default_factory=dict)   # population -> run_regularly
    learn_ops: dict = field(default_factory=dict)    # projection -> run_regularly


def build(circuit: Circuit, weights: dict, sizes: dict | None = None,
          seed: int = 0) -> Brian2Objects:
    """Brian2 objects for ``circuit`` with synaptic parameters from ``weights``.

    The synapses and per-synapse delays are the circuit's own for ``seed``
    (:meth:`Circuit.synapses`, :meth:`Circuit.delays`), connected with
    ``connect(i=..., j=...)``, so that every Brian2 device simulates the same
    synapses as the other targets. ``sizes`` overrides population sizes (used
    for the miniature check, where every projection is one synapse).
    """
    clock = Clock(dt=circuit.dt)
    objs = Brian2Objects(network=Network(), clock=clock)
    try:
        _build(circuit, weights, sizes, seed, objs)
    except BaseException as exc:
        _mark_half_built(exc)
        raise
    finally:
        # every object belongs to this network, even when a refused declaration stops
        # the build or the network never runs: Brian2 must not warn, when it is
        # deleted, that it was "never included in a network"
        mark_used(objs.network)
    return objs


def _mark_half_built(exc: BaseException) -> None:
    """The object whose constructor raised (a Synapses refusing its model, say) is
    in no network; it is the ``self`` of a frame of the traceback: mark it too."""
    from brian2.core.base import BrianObject
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            obj = tb.tb_frame.f_locals.get("self")
            if isinstance(obj, BrianObject) and getattr(obj, "_network", "") is None:
                obj._network = "neurosim (refused declaration)"
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__


def mark_used(network) -> None:
    """Tell Brian2 that the objects of ``network`` belong to it before it runs
    (or when it never runs: a check, a host copy, a failed build)."""
    for obj in network.objects:
        for o in (obj, *obj.contained_objects):
            if o._network is None:
                o._network = network.id


def _build(circuit, weights, sizes, seed, objs) -> None:
    clock = objs.clock
    for pop in circuit.populations.values():
        n = sizes[pop.name] if sizes else pop.n
        kwargs = {}
        if pop.threshold:
            kwargs.update(threshold=pop.threshold, reset=pop.reset,
                          refractory=pop.refractory if pop.refractory is not None else False)
        g = NeuronGroup(n, pop.equations, method=pop.method, clock=clock,
                        name=pop.name + "*", namespace=circuit.namespace, **kwargs)
        objs.network.add(g)
        for var, value in pop.values.items():
            value = np.asarray(value, dtype=float)
            setattr(g, var + "_", value if value.ndim == 0 or not sizes else value[:n])
        if pop.init:
            op = g.run_regularly(pop.init, when="groups", order=10, name=pop.name + "_init*")
            op.active = False
            objs.settle_ops[pop.name] = op
        objs.groups[pop.name] = g
    for proj in circuit.projections.values():
        per_synapse = proj.delay is not None and proj.homogeneous_delay is None
        code = synapse_code(proj)  # with its plasticity rule's code
        s = Synapses(objs.groups[proj.source], objs.groups[proj.target], code.equations,
                     on_pre=code.on_pre, on_post=code.on_post,
                     delay=None if per_synapse else proj.homogeneous_delay,
                     method="euler", clock=clock, name=proj.name + "*",
                     namespace=circuit.namespace)
        objs.network.add(s)
        if sizes:
            s.connect(i=0, j=0)
        else:
            i, j = circuit.synapses(proj.name, seed)
            if len(i):
                s.connect(i=i, j=j)
            else:  # Brian2's connect fails on empty index arrays
                s.connect(False)
        if per_synapse:
            s.delay = (np.zeros(1) if sizes else circuit.delays(proj.name, seed)) * second
        for var, value in weights.get(proj.name, {}).items():
            set_synaptic(s, proj, var, value)
        if proj.learning_rule:
            op = s.run_regularly(learning_code(proj), when="groups", order=20,
                                 name=proj.name + "_learn*")
            op.active = False
            objs.learn_ops[proj.name] = op
        objs.synapses[proj.name] = s
    for proj, var, level in summed_order(circuit):
        updater = objs.synapses[proj].summed_updaters[var]
        updater.when, updater.order = "before_groups", level


def set_synaptic(s: Synapses, proj, var: str, value: np.ndarray) -> None:
    """Store ``value`` (the circuit's layout, see :class:`~neurosim.circuit.Projection`)."""
    value = np.asarray(value, dtype=float)
    if value.ndim:
        all_to_all = proj.kind == "all"
        proj.check_shape(var, value.shape,
                          (len(s.target), len(s.source)) if all_to_all else (len(s),))
        if all_to_all:
            value = value.T.ravel()  # (n_post, n_pre) -> pre-major synapse order
    setattr(s, var + "_", value)


def get_synaptic(s: Synapses, proj, var: str) -> np.ndarray:
    value = np.array(getattr(s, var + "_")[:], dtype=float)
    if proj.kind == "all":
        return value.reshape(len(s.source), len(s.target)).T.copy()
    return value


def _hint(exc: Exception) -> str:
    if isinstance(exc, DimensionMismatchError):
        return ("unit mismatch: give parameters the units the equations need "
                "(e.g. tau=10*ms, not 10) and make both sides of each equation agree")
    if isinstance(exc, KeyError) or "could not be resolved" in str(exc):
        return ("unknown identifier: declare it as a variable of the population or "
                "projection, refer to another population's variable with _pre/_post, "
                "or add it to the circuit's namespace")
    return "fix the equation or code named above"


#: circuit -> the revision that passed :func:`check` (a circuit changes only by ``add``)
_CHECKED: "weakref.WeakKeyDictionary[Circuit, int]" = weakref.WeakKeyDictionary()


def check(circuit: Circuit) -> Circuit:
    """Let Brian2 resolve identifiers and check units on a miniature copy of
    ``circuit``; returns it. Raises :class:`CircuitError` naming the
    population or projection and the fix. Every target runs it when built.

    The Brian2 check is cached until the circuit changes (``Circuit.add``);
    dt and the namespace constants are checked every time (cheap, and both may
    be reassigned)."""
    circuit.check_constants()
    if _CHECKED.get(circuit) != circuit.revision:
        check_with_brian2(circuit)
        _CHECKED[circuit] = circuit.revision
    return circuit


def check_with_brian2(circuit: Circuit) -> None:
    """Build a one-neuron-per-population copy and let Brian2 check it (numpy target)."""
    old_target = prefs.codegen.target
    prefs.codegen.target = "numpy"
    try:
        sizes = {name: 1 for name in circuit.populations}
        small = {}
        for name, proj in circuit.projections.items():
            small[name] = {v: np.zeros((1, 1) if proj.kind == "all" else (1,))
                           for v in proj.parameters}
        try:
            objs = build(circuit, small, sizes)
            for op in list(objs.settle_ops.values()) + list(objs.learn_ops.values()):
                op.active = True
            objs.network.run(0 * second, namespace=circuit.namespace)  # before_run only
        except CircuitError:
            raise
        except Exception as exc:
            # Brian2 wraps the original error in BrianObjectException(s) naming the object
            where = re.search(r"object named '([^']+)'", str(exc))
            root = root_cause(exc)
            msg = str(root).strip().strip("'\"")
            where = f" in {where.group(1)}" if where else ""
            raise CircuitError(f"Circuit {circuit.name!r}{where}: {msg} -- {_hint(root)}.") from exc
    finally:
        prefs.codegen.target = old_target


def learning_code(proj) -> str:
    """The Brian2 code of a projection's ``learning_rule``, with its
    ``learning_bound`` written as a ``clip`` of each increment (Brian2 runs the
    rule once per trial, for one sample, so that bounds the whole change)."""
    if proj.learning_bound is None:
        return proj.learning_rule
    b = repr(float(proj.learning_bound))
    return "\n".join(f"{var} {op} clip({expr}, -{b}, {b})" for var, op, expr in
                      statements(proj.learning_rule, f"Projection {proj.name!r} learning_rule"))

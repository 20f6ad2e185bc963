"""Exchange with NIR (the Neuromorphic Intermediate Representation, ``nir`` 1.0).

:func:`to_nir` exports a declared spiking circuit as a ``nir.NIRGraph``;
:func:`from_nir` declares a circuit from one; :func:`write` and :func:`read`
go through NIR's own HDF5 files (``nir.write``/``nir.read``).

What maps (recognised in the equations by :func:`neurosim.neuron_forms.lif_form`,
never by a population's name):

=====================================  ===================================================
declaration                            NIR
=====================================  ===================================================
LIF population, input written to v     ``LIF(tau, r=1, v_leak, v_threshold, v_reset)``
LIF with synaptic current(s) g of one  ``CubaLIF(tau_syn, tau_mem, r, v_leak, v_threshold,
time constant, input written to g      v_reset, w_in=1)`` (equal currents merge into I)
Poisson source (``rand() < rates*dt``)  ``Input`` (its spikes come from outside the graph)
spike projection ``x_post += <w>``     ``Linear`` (dense: absent synapses are 0, several
                                       between one pair add up)
homogeneous, per-target or per-source  ``Delay`` after (per target) or before (per source)
delays                                 the ``Linear``
every spiking population               an ``Output`` of its spikes
=====================================  ===================================================

Units: NIR is unitless; every value is in SI base units (seconds, and volts
for a membrane in volts). NIR's equations are continuous (``tau dv/dt =
(v_leak - v) + R I`` with ``I`` a sum of weighted Dirac spikes), so a jump of
``w`` in ``v`` is a ``Linear`` weight ``w * tau / R``, and a jump of ``w`` in
the current a weight ``w * tau_syn / w_in``. Each node's metadata records the
declaration's names, units, integration method, time step and initial values
(keys ``neurosim_*``), and :func:`from_nir` restores them, so a round trip runs
the same network; a graph from elsewhere is declared with dimensionless
variables, exact integration and the ``dt`` given.

Refused with a :class:`CircuitError` naming the population or projection:
anything NIR cannot describe (noise, non-linear or conductance-based
equations, continuous coupling through summed variables, per-synapse delays
that are neither per target nor per source, currents of different time
constants in one population) and refractory periods (NIR has none; pass
``drop_refractory=True`` to export without them, and the export says so).
NIR has no plasticity: a plastic projection is exported with its current
weights, and the export says so (``graph.metadata['neurosim_notes']``, and a
``UserWarning``).
"""
from __future__ import annotations

import keyword
import re
import warnings
from pathlib import Path

import numpy as np
from brian2 import second

from .circuit import Circuit, CircuitError, Population, Projection
from .lowering import lower
from .neuron_forms import (current_groups, is_plastic, is_spike_source, jump_matrix, lif_form, spike_input,
                           synapse_pairs, unit_name)

__all__ = ["to_nir", "from_nir", "write", "read"]

KEY = "neurosim_"
ACCEPTS = ("LIF and current-based LIF populations (threshold 'v > ...', reset 'v = ...', "
           "a linear leak, synaptic currents that decay exponentially) and Poisson sources "
           "('rand() < rates*dt'), connected by spike projections ('x_post += w')")


def _nir():
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - nir is in the base requirements
        raise CircuitError("NIR exchange needs the 'nir' package (pip install nir).") from exc
    return nir


# --- export ----------------------------------------------------------------------------

def to_nir(circuit, seed: int = 0, weights: dict | None = None,
           drop_refractory: bool = False):
    """The circuit (or a target, with its current weights) as a ``nir.NIRGraph``.

    ``weights`` (``Target.get_weights()``'s layout) default to the circuit's
    initial weights for ``seed``; the synapses and delays are the ones
    ``seed`` draws (:meth:`Circuit.synapses`)."""
    nir = _nir()
    if not isinstance(circuit, Circuit):  # a target: its circuit, seed and weights
        target = circuit
        circuit, seed = target.circuit, target.seed
        weights = target.get_weights() if weights is None else weights
    weights = circuit.initial_weights(seed) if weights is None else weights
    plan = lower(circuit, update=False)
    notes, nodes, edges, forms, inputs = [], {}, [], {}, {}
    for name, pop in circuit.populations.items():
        if is_spike_source(pop):
            inputs[name] = pop
            nodes[name] = nir.Input(input_type={"input": np.array([pop.n])},
                                    metadata={KEY + "population": name})
            notes.append(f"population {name!r} (a Poisson source) is the graph's Input "
                         "node: its spikes come from outside the graph")
            continue
        form, why = lif_form(circuit, name, refractory=drop_refractory)
        if form is None:
            hint = (" (or export with drop_refractory=True / --drop-refractory, which "
                    "leaves it out)") if "refractory" in why else ""
            raise CircuitError(f"NIR export: population {name!r} cannot be described in "
                               f"NIR: {why}{hint}. NIR export takes {ACCEPTS}.")
        if form.refractory:
            notes.append(f"population {name!r}: its refractory period "
                         f"({form.refractory * 1e3:g} ms) is left out (NIR has none)")
        forms[name] = form
    lines = {name: _transmission(plan, proj, forms, inputs)
             for name, proj in circuit.projections.items()}
    written = {}  # population -> variables projections write
    for name, proj in circuit.projections.items():
        written.setdefault(proj.target, set()).add(lines[name][0])
    for name, form in forms.items():
        nodes[name] = _neuron_node(nir, circuit, form, written.get(name, set()))
        nodes[name + ".output"] = nir.Output(output_type={"output": np.array([form.n])})
        edges.append((name, name + ".output"))
    for name, proj in circuit.projections.items():
        _projection(nir, circuit, plan, proj, lines[name], seed, weights, forms, nodes, edges,
                    notes)
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        KEY + "circuit": circuit.name, KEY + "dt": float(circuit.dt),
        KEY + "notes": "; ".join(notes)})
    if any("plastic" in n or "refractory" in n for n in notes):
        warnings.warn("NIR export of " + circuit.name + ": " + "; ".join(
            n for n in notes if "plastic" in n or "refractory" in n), stacklevel=2)
    return graph


def _transmission(plan, proj, forms, inputs):
    """``(variable, statement)``: the one on_pre line that writes the target."""
    pp = plan.projections[proj.name]
    where = f"NIR export: projection {proj.name!r}"
    if pp.summed:
        raise CircuitError(f"{where} couples {proj.source!r} and {proj.target!r} "
                           f"continuously (summed variables {list(pp.summed)}); NIR export "
                           f"takes {ACCEPTS}.")
    if proj.source not in forms and proj.source not in inputs:
        raise CircuitError(f"{where}: its source {proj.source!r} is not a spiking population "
                           "NIR can describe.")
    if proj.target not in forms:
        raise CircuitError(f"{where}: its target {proj.target!r} is a Poisson source; "
                           "NIR's Input takes no input.")
    return spike_input(plan, proj, where)


def _neuron_node(nir, circuit, form, written):
    pop = circuit.population(form.population)
    meta = {KEY + "population": form.population, KEY + "v": form.v, KEY + "unit": form.unit,
            KEY + "method": pop.method,
            KEY + "v0": pop.initial(form.v)}
    if form.refractory:
        meta[KEY + "refractory_dropped"] = form.refractory
    common = dict(v_leak=form.v_leak, v_threshold=form.v_threshold, v_reset=form.v_reset)
    groups = current_groups(form)
    if not form.currents:
        return nir.LIF(tau=form.tau, r=np.ones(form.n), metadata=meta, **common)
    names = [c.name for c in form.currents]
    where = f"NIR export: population {form.population!r}"
    if len(groups) > 1:
        raise CircuitError(
            f"{where} has synaptic currents with different time constants or weights in "
            f"d{form.v}/dt ({', '.join(names)}); NIR's CubaLIF has one synaptic current "
            "per neuron.")
    if form.v in written:
        raise CircuitError(f"{where}: projections write both {form.v!r} and its synaptic "
                           f"current ({', '.join(names)}); NIR's CubaLIF takes input "
                           "through its current only.")
    cur = groups[0][0]
    meta[KEY + "current"] = ",".join(names)
    meta[KEY + "current_unit"] = unit_name(pop.equations[cur.name].dim)
    meta[KEY + "current0"] = sum(pop.initial(c) for c in names)
    return nir.CubaLIF(tau_syn=cur.tau, tau_mem=form.tau, r=cur.r, w_in=np.ones(form.n),
                       metadata=meta, **common)


def _projection(nir, circuit, plan, proj, transmission, seed, weights, forms, nodes, edges,
                notes):
    var, line = transmission
    pp = plan.projections[proj.name]
    n_pre = circuit.population(proj.source).n
    form = forms[proj.target]
    # a jump of w in v is w * tau / r in NIR's continuous equations (r = 1 for LIF);
    # one in the current w * tau_syn / w_in (w_in = 1)
    scale = form.tau if var == form.v else form.currents[0].tau
    matrix = jump_matrix(circuit, proj, line, weights.get(proj.name, {}), seed)
    matrix *= scale[:, None]
    i, j = synapse_pairs(circuit, proj, seed)
    plastic = is_plastic(pp)
    meta = {KEY + "projection": proj.name, KEY + "plastic": int(plastic)}
    if plastic:
        notes.append(f"projection {proj.name!r} is plastic: exported with its current "
                     "weights (NIR has no plasticity)")
    nodes[proj.name] = nir.Linear(weight=matrix, metadata=meta)
    delays = circuit.delays(proj.name, seed)
    before = after = None
    if delays is not None and np.any(delays > 0):
        by_post, by_pre = _per(delays, j, form.n), _per(delays, i, n_pre)
        if by_post is not None:
            after = by_post
        elif by_pre is not None:
            before = by_pre
        else:
            raise CircuitError(f"NIR export: projection {proj.name!r} has per-synapse delays "
                               "that differ between synapses onto one neuron and from one "
                               "neuron; NIR's Delay acts on a signal, so delays must be per "
                               "target or per source neuron.")
    source = proj.source
    if before is not None:
        nodes[proj.name + ".delay"] = nir.Delay(delay=before)
        edges.append((source, proj.name + ".delay"))
        source = proj.name + ".delay"
    edges.append((source, proj.name))
    last = proj.name
    if after is not None:
        nodes[proj.name + ".delay"] = nir.Delay(delay=after)
        edges.append((proj.name, proj.name + ".delay"))
        last = proj.name + ".delay"
    edges.append((last, proj.target))


def _per(delays, index, n):
    """Delay per neuron of ``index`` when every synapse of a neuron has the same one
    (neurons without synapses: 0), else None."""
    out = np.zeros(n)
    out[index] = delays
    return out if np.array_equal(out[index], delays) else None


# --- import ----------------------------------------------------------------------------

def _meta(node, key, default=None):
    value = node.metadata.get(KEY + key, default) if node.metadata else default
    return value.decode() if isinstance(value, bytes) else value


def _name(key: str) -> str:
    """A NIR node's key as a declaration name ('in' -> 'n_in', 'a.b' -> 'a_b')."""
    name = re.sub(r"\W", "_", str(key))
    ok = name[:1].isalpha() and not keyword.iskeyword(name) and not name.endswith(
        ("_pre", "_post"))
    return name if ok else "n_" + name + "_" * name.endswith(("_pre", "_post"))


def from_nir(graph, dt=None, name: str | None = None) -> Circuit:
    """A circuit declared from a ``nir.NIRGraph`` (or the path of a NIR file).

    ``dt`` (a time) defaults to the one a neurosim export recorded; a graph
    from elsewhere needs it. Input nodes become Poisson populations (set their
    ``rates``; ``1/dt`` makes a neuron fire on every step), LIF and CubaLIF
    nodes populations, Linear/Affine nodes (with a Delay before or after)
    projections."""
    nir = _nir()
    if isinstance(graph, (str, Path)):
        graph = read(graph)
    recorded = _meta(graph, "dt")
    if dt is None and recorded is None:
        raise CircuitError("from_nir: this graph records no time step; give dt (e.g. "
                           "dt=0.1*ms).")
    dt = dt if dt is not None else float(recorded) * second
    circuit = Circuit(_name(name or _meta(graph, "circuit", "nir")), dt=dt)
    into = {}  # node -> successors
    for a, b in graph.edges:
        into.setdefault(a, []).append(b)
    pops = {}
    for key, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            n = int(np.prod(node.input_type["input"]))
            pops[key] = Population(_name(_meta(node, "population", key)), n, "rates : Hz",
                                   threshold="rand() < rates*dt")
        elif isinstance(node, (nir.LIF, nir.CubaLIF)):
            pops[key] = _population(nir, key, node)
        elif isinstance(node, nir.Delay):
            near = [b for a, b in graph.edges if a == key] + [a for a, b in graph.edges
                                                             if b == key]
            if not any(isinstance(graph.nodes[k], (nir.Linear, nir.Affine)) for k in near):
                raise CircuitError(f"from_nir: the Delay {key!r} is not next to a Linear; "
                                   "neurosim imports delays of projections.")
        elif not isinstance(node, (nir.Output, nir.Linear, nir.Affine)):
            raise CircuitError(f"from_nir: node {key!r} is a {type(node).__name__}; neurosim "
                               "imports Input, Output, LIF, CubaLIF, Linear, Affine (bias 0) "
                               "and Delay nodes.")
    for pop in pops.values():
        circuit.add(pop)
    for key, node in graph.nodes.items():
        if isinstance(node, (nir.Linear, nir.Affine)):
            circuit.add(_import_projection(nir, graph, key, node, pops, into))
    for a, b in graph.edges:  # a spike source straight into a neuron: weight 1 each
        if a in pops and b in pops:
            node = graph.nodes[b]
            if isinstance(node, nir.Input) or pops[a].n != pops[b].n:
                raise CircuitError(f"from_nir: the edge {a!r} -> {b!r} joins nodes of "
                                   f"{pops[a].n} and {pops[b].n} neurons without a Linear.")
            circuit.add(_synapses(nir, f"{a}_to_{b}", pops[a], pops[b], node,
                                  np.eye(pops[b].n), None, None))
    return circuit


def _population(nir, key, node):
    v, unit = _meta(node, "v", "v"), _unit(_meta(node, "unit", "1"))
    cuba = isinstance(node, nir.CubaLIF)
    n = int(np.size(node.v_threshold))
    each = lambda x: np.broadcast_to(np.asarray(x, float), (n,)).copy()  # noqa: E731
    values = {"tau": (each(node.tau_mem if cuba else node.tau), "second"),
              "v_leak": (each(node.v_leak), unit), "v_th": (each(node.v_threshold), unit),
              "v_reset": (each(node.v_reset), unit), v: (each(_meta(node, "v0", 0.0)), unit)}
    model = f"""tau : second (constant)
                v_leak : {unit} (constant)
                v_th : {unit} (constant)
                v_reset : {unit} (constant)"""
    if cuba:
        cur = _meta(node, "current", "I").split(",")[0]
        cunit = _unit(_meta(node, "current_unit", "1"))
        runit = unit if cunit == "1" else "1" if unit == cunit else f"{unit}/({cunit})"
        model += f"""
                d{v}/dt = (v_leak - {v} + r * {cur}) / tau : {unit}
                d{cur}/dt = -{cur} / tau_syn : {cunit}
                r : {runit} (constant)
                tau_syn : second (constant)"""
        values.update(r=(each(node.r), runit), tau_syn=(each(node.tau_syn), "second"),
                      **{cur: (each(_meta(node, "current0", 0.0)), cunit)})
    else:  # the input r*I/tau is folded into the weights
        model += f"""
                d{v}/dt = (v_leak - {v}) / tau : {unit}"""
    return Population(_name(_meta(node, "population", key)), n, model,
                      threshold=f"{v} > v_th", reset=f"{v} = v_reset",
                      method=_meta(node, "method", "exact"),
                      values={k: _quantity(x, u) for k, (x, u) in values.items()})


def _unit(text: str) -> str:
    """A unit name read from a file: SI unit names, '*', '/', '**' and numbers only
    (it is written into equations)."""
    from brian2.core.namespace import DEFAULT_UNITS
    names = set(re.findall(r"[A-Za-z_]\w*", text))
    if not re.fullmatch(r"[\w\s*/().]+", text) or names - set(DEFAULT_UNITS):
        raise CircuitError(f"from_nir: the unit {text!r} in the graph's metadata is not "
                           "a Brian2 unit.")
    return text


def _quantity(values, unit: str):
    from brian2.core.namespace import DEFAULT_UNITS
    if unit == "1":
        return values
    return values * eval(unit, {"__builtins__": {}}, dict(DEFAULT_UNITS))  # checked: _unit


def _import_projection(nir, graph, key, node, pops, into):
    where = f"from_nir: node {key!r}"
    if isinstance(node, nir.Affine) and np.any(node.bias):
        raise CircuitError(f"{where} is an Affine with a non-zero bias; neurosim imports "
                           "spike projections only (Linear, or Affine with bias 0).")
    sources = [a for a, b in graph.edges if b == key]
    pre_delay = None
    if len(sources) == 1 and isinstance(graph.nodes[sources[0]], nir.Delay):
        pre_delay = np.asarray(graph.nodes[sources[0]].delay, float)
        sources = [a for a, b in graph.edges if b == sources[0]]
    targets = into.get(key, [])
    post_delay = None
    if len(targets) == 1 and isinstance(graph.nodes[targets[0]], nir.Delay):
        post_delay = np.asarray(graph.nodes[targets[0]].delay, float)
        targets = into.get(targets[0], [])
    if len(sources) != 1 or sources[0] not in pops or len(targets) != 1 \
            or targets[0] not in pops or isinstance(graph.nodes[targets[0]], nir.Input):
        raise CircuitError(f"{where}: neurosim imports a Linear between one spiking node and "
                           f"one LIF/CubaLIF node (got {sources} -> {targets}).")
    return _synapses(nir, _meta(node, "projection", key), pops[sources[0]], pops[targets[0]],
                     graph.nodes[targets[0]], np.asarray(node.weight, float), pre_delay,
                     post_delay)


def _synapses(nir, name, pre, post, node, weight, pre_delay, post_delay):
    """A projection whose spikes make NIR's jumps: ``w_in W / tau_syn`` in a
    CubaLIF's current, ``r W / tau`` in a LIF's v."""
    if weight.shape != (post.n, pre.n):
        raise CircuitError(f"from_nir: the weights of {name!r} have shape {weight.shape}, "
                           f"not ({post.n}, {pre.n}) for {pre.name!r} -> {post.name!r}.")
    j, i = np.nonzero(weight)
    cuba = isinstance(node, nir.CubaLIF)
    if cuba:
        var = _meta(node, "current", "I").split(",")[0]
        scale = np.broadcast_to(node.w_in / node.tau_syn, (post.n,))
    else:
        var = _meta(node, "v", "v")
        scale = np.broadcast_to(node.r / node.tau, (post.n,))
    unit = _unit(_meta(node, "current_unit" if cuba else "unit", "1"))
    delay = None
    if pre_delay is not None or post_delay is not None:
        delay = (pre_delay[i] if pre_delay is not None else post_delay[j]) * second
    return Projection(_name(name), pre.name, post.name, f"w : {unit}",
                      on_pre=f"{var}_post += w", connect={"i": i, "j": j}, delay=delay,
                      init={"w": _quantity(weight[j, i] * scale[j], unit)})


# --- files -----------------------------------------------------------------------------

def write(path, circuit, seed: int = 0, weights: dict | None = None,
          drop_refractory: bool = False):
    """Export (:func:`to_nir`) and write a NIR file; returns the graph."""
    graph = to_nir(circuit, seed, weights, drop_refractory)
    _nir().write(str(path), graph)
    return graph


def read(path):
    """A NIR file as a ``nir.NIRGraph`` (NIR's own reader)."""
    return _nir().read(str(path))


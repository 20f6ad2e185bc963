"""Run a NIR graph in Norse (norse 1.1.0, ``norse.torch.from_nir``) on given input spikes.

Runs in the separate environment ``.venv-nir`` (``setup_nir_consumer.sh``), not
in neurosim's: it imports only nir, numpy and Norse/torch, and reads neurosim's
export through the NIR file and its metadata keys alone::

    .venv-nir/bin/python benchmarks/nir_consumer/run_nir.py GRAPH.nir INPUT.npz OUT.npz [--dt 1e-4]

``INPUT.npz`` holds one bool raster (steps x neurons) per ``Input`` node, under
the node's name (a single array may have any name). ``OUT.npz`` gets one bool
raster (steps x neurons) per LIF/CubaLIF node, under the node's name, plus
``dt`` and ``versions``.

What Norse's import does, and what this script does about it:

* Time step: ``from_nir(graph, dt=...)`` takes it; NIR's time constants are in
  seconds, so ``dt`` is in seconds too (passed through; ``--dt`` defaults to the
  ``neurosim_dt`` a neurosim export records).
* Discretisation: forward Euler, once per step, for every neuron. LIF:
  ``v += dt/tau * (v_leak - v + x)``, then threshold ``v > v_threshold`` and reset.
  CubaLIF: ``i += dt/tau_syn * (v_leak - i + w_in x)`` first, then
  ``v += dt/tau_mem * (v_leak - v + r i)`` with the *new* ``i``, threshold, reset.
  So the input of step t acts in step t (Brian2 delivers a spike of step t after
  that step's update: there it acts from step t+1; a caller comparing with
  Brian2 shifts its input one step later, as tests/test_nir_consumer.py does).
* Spikes: Norse's ``x`` is a box of height x held for one step (area x*dt), and
  its neurons emit spikes of value 1; NIR's input is a sum of Dirac pulses
  (area 1 each). So every ``Linear``/``Affine`` weight is divided by ``dt``
  before the import; then a weight W gives NIR's jumps, ``w_in W / tau_syn`` in a
  CubaLIF current and ``W / tau`` in a LIF's v.
* Initial state: NIR has none and Norse starts v (and a CubaLIF's current) at
  ``v_leak``; where the graph's metadata records ``neurosim_v0`` /
  ``neurosim_current0`` they are the initial state instead.

Refused (``SystemExit`` naming the node) because Norse 1.1.0's import would
silently run something else: a LIF with ``r != 1`` (ignored, a warning only),
a CubaLIF with ``v_leak != 0`` (also given to its synaptic current, which then
decays towards v_leak), any ``v_reset != 0`` (not passed: Norse resets to 0),
an Affine with a bias, ``Delay`` and any other node type, and not exactly one
``Input`` (nirtorch's executor feeds the first input only).
"""
from __future__ import annotations

import argparse
import copy
import warnings
from importlib.metadata import version

import nir
import numpy as np
import torch


def check(graph) -> None:
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise SystemExit(f"run_nir: the graph has {len(inputs)} Input nodes; Norse's "
                         "import (nirtorch's executor) feeds exactly one.")
    for key, node in graph.nodes.items():
        why = None
        if isinstance(node, (nir.LIF, nir.CubaLIF)) and not np.allclose(node.v_reset, 0):
            why = "v_reset != 0 (Norse 1.1.0's from_nir resets to 0)"
        elif isinstance(node, nir.LIF) and not np.allclose(node.r, 1):
            why = "r != 1 (Norse 1.1.0's from_nir ignores r of a LIF)"
        elif isinstance(node, nir.CubaLIF) and not np.allclose(node.v_leak, 0):
            why = ("v_leak != 0 (Norse 1.1.0's from_nir gives it to the synaptic current "
                   "as well)")
        elif isinstance(node, nir.Affine) and np.any(node.bias):
            why = "an Affine with a bias (a constant input, not a spike projection)"
        elif not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF,
                                   nir.CubaLIF)):
            why = (f"a {type(node).__name__} (this script runs Input, Output, Linear, "
                   "Affine, LIF and CubaLIF nodes)")
        if why:
            raise SystemExit(f"run_nir: node {key!r}: {why}.")


def as_dirac(graph, dt: float):
    """A copy whose weights give NIR's Dirac jumps in Norse's box convention."""
    graph = copy.deepcopy(graph)
    for node in graph.nodes.values():
        if isinstance(node, (nir.Linear, nir.Affine)):
            node.weight = np.asarray(node.weight, np.float64) / dt
    return graph


def initial_state(graph):
    """nirtorch's executor state holding the exported initial values."""
    from nirtorch.graph_executor import GraphExecutorState
    from norse.torch.functional.leaky_integrator_box import LIBoxState
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState
    state = GraphExecutorState()
    for key, node in graph.nodes.items():
        if not isinstance(node, (nir.LIF, nir.CubaLIF)):
            continue
        meta = node.metadata or {}
        n = int(np.size(node.v_threshold))
        def each(x):
            return torch.as_tensor(np.broadcast_to(np.asarray(x, float), (n,)).copy(),
                                   dtype=torch.float32)
        v = LIFBoxFeedForwardState(v=each(meta.get("neurosim_v0", node.v_leak)))
        if isinstance(node, nir.CubaLIF):
            cur = LIBoxState(v=each(meta.get("neurosim_current0", node.v_leak)))
            state.state[key.replace(".", "_")] = ((cur, v),)
        else:
            state.state[key.replace(".", "_")] = (v,)
    return state


def run(graph, raster: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    import norse.torch
    check(graph)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch.load
        model = norse.torch.from_nir(as_dirac(graph, dt), dt=dt)
    spiking = [k for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.CubaLIF))]
    out = {k: np.zeros((len(raster), int(np.size(graph.nodes[k].v_threshold))), bool)
           for k in spiking}
    state = initial_state(graph)
    x = torch.as_tensor(np.asarray(raster, np.float32))[:, None, :]  # steps, batch 1, n
    with torch.no_grad():
        for step in range(len(raster)):
            _, state = model(x[step], state)
            for k in spiking:
                out[k][step] = state.cache[k.replace(".", "_")][0].numpy() > 0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graph", help="a NIR file (nir.write)")
    parser.add_argument("inputs", help=".npz: a bool raster (steps x n) per Input node")
    parser.add_argument("out", help=".npz to write: a bool raster per LIF/CubaLIF node")
    parser.add_argument("--dt", type=float, help="time step in seconds (default: the "
                        "graph's metadata 'neurosim_dt', which neurosim's export records)")
    args = parser.parse_args(argv)
    graph = nir.read(args.graph)
    if args.dt is None:
        if "neurosim_dt" not in (graph.metadata or {}):
            raise SystemExit("run_nir: the graph records no time step; give --dt.")
        args.dt = float(graph.metadata["neurosim_dt"])
    given = np.load(args.inputs)
    key = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    if key not in given.files and len(given.files) != 1:
        raise SystemExit(f"run_nir: {args.inputs} has no raster {key!r} (the Input node).")
    raster = given[key if key in given.files else given.files[0]].astype(bool)
    out = run(graph, raster, args.dt)
    versions = {p: version(p) for p in ("norse", "torch", "nirtorch", "nir")}
    np.savez(args.out, dt=args.dt, versions=str(versions), **out)
    print("run_nir:", ", ".join(f"{k}: {v.sum()} spikes" for k, v in out.items()),
          "|", versions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

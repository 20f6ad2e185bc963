"""NIR exchange (neurosim.nir_graph) and the LIF forms it rests on (neuron_forms).

* The forms are read from the equations: parameters per neuron in SI units,
  equal currents merged, and every construct NIR cannot say refused by name.
* Export: node types, parameters and the weight convention of NIR's continuous
  equations (a jump of w in a current is a weight w * tau_syn), plasticity and
  dropped refractory periods said in the notes and a warning.
* Round trip: a sparse LIF network with Poisson drive, a current-based and a
  voltage-jump population, inhibition through a scaled weight and per-source
  delays, exported to a NIR file and read back, gives the same spikes on
  brian2-numpy, step for step.
* The graph means what NIR says: an integration of NIR's own equations written
  here (exact exponential steps, Brian2's order within a step: update,
  threshold, delivery, reset), fed the recorded input spikes, gives Brian2's
  spikes, step for step.
"""
from __future__ import annotations

import nir
import numpy as np
import pytest
from brian2 import Hz, ms, mV

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.circuits import CIRCUITS
from neurosim.circuits.brian2_examples import EXAMPLES
from neurosim.circuits.spiking import poisson_inputs
from neurosim.cli import main
from neurosim.hardware_targets import make_target
from neurosim.neuron_forms import lif_form
from neurosim.nir_graph import from_nir, read, to_nir, write

STEPS = 3000
pytestmark = pytest.mark.filterwarnings("ignore:NIR export")


def network(seed: int = 0) -> Circuit:
    rng = np.random.default_rng(seed)
    c = Circuit("nir_net", dt=0.1 * ms, namespace={
        "taum": 20 * ms, "taus": 5 * ms, "El": -60 * mV, "Vt": -50 * mV, "Vr": -65 * mV,
        "g_inh": 3.0})
    c.add(poisson_inputs("drive", 30, 40 * Hz))
    c.add(Population("E", 40, """dv/dt = (El - v + (ge + gi) * mV) / taum : volt
                                 dge/dt = -ge / taus : 1
                                 dgi/dt = -gi / taus : 1""",
                     threshold="v > Vt", reset="v = Vr", method="exact",
                     values={"v": rng.uniform(-65, -50, 40) * mV}))
    c.add(Population("I", 10, """dv/dt = (vl - v) / tau : 1
                                 tau : second (constant)
                                 vl : 1 (constant)""",
                     threshold="v > 1", reset="v = 0", method="exact",
                     values={"tau": rng.uniform(5, 15, 10) * ms, "vl": 0.5}))
    c.add(Projection("drive_E", "drive", "E", "w : 1", on_pre="ge_post += w",
                     connect={"p": 0.3}, init={"w": lambda r, s: r.uniform(4, 12, s)}))
    i, j = rng.integers(0, 40, 120), rng.integers(0, 10, 120)
    c.add(Projection("E_I", "E", "I", "w : 1", on_pre="v_post += w",
                     connect={"i": i, "j": j}, init={"w": constant(0.25)},
                     delay=(0.5 + 0.5 * (i % 3)) * ms))        # per source neuron
    c.add(Projection("I_E", "I", "E", "w : 1", on_pre="gi_post += -g_inh * w",
                     init={"w": lambda r, s: r.uniform(0, 1, s)}))
    return c


def spikes(circuit, seed=3, rates=40.0):
    target = make_target("brian2-numpy", circuit, seed=seed)
    target.set("drive", "rates", np.full(30, rates))
    rec = target.run(STEPS, record=[(p, "spikes") for p in ("drive", "E", "I")])
    return {p: rec[(p, "spikes")] for p in ("drive", "E", "I")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    c = network()
    path = tmp_path_factory.mktemp("nir") / "net.nir"
    write(path, c, seed=3)
    return c, read(path), spikes(c)


# --- forms ----------------------------------------------------------------------------

def test_forms_are_read_from_the_equations():
    c = network()
    e, _ = lif_form(c, "E")
    assert e.v == "v" and e.unit == "volt" and [g.name for g in e.currents] == ["ge", "gi"]
    np.testing.assert_allclose(e.tau, 0.02)
    np.testing.assert_allclose(e.v_leak, -0.06)
    np.testing.assert_allclose([e.v_threshold, e.v_reset], [[-0.05] * 40, [-0.065] * 40])
    for g in e.currents:   # (ge + gi) * mV / taum: tau_syn 5 ms, r = 1 mV
        np.testing.assert_allclose([g.tau, g.r], [[0.005] * 40, [1e-3] * 40])
    i, _ = lif_form(c, "I")  # parameters per neuron
    np.testing.assert_allclose(i.tau, c.population("I").values["tau"] / ms * 1e-3)
    np.testing.assert_allclose(i.v_leak, 0.5)
    assert i.unit == "1" and not i.currents
    assert lif_form(c, "drive") == (None, "its threshold 'rand() < rates*dt' is not "
                                          "'v > <constant>' for a differential variable v")


@pytest.mark.parametrize("model, refractory, reason", [
    ("brunel_hakim", True, "dV/dt reads xi (noise or time)"),
    ("vogels", True, "is not linear in"),
    ("izhikevich", True, "is not 'v > <constant>'"),
    ("cuba", False, "refractory period (5. ms)"),
])
def test_forms_refuse_what_is_not_a_lif(model, refractory, reason):
    c = EXAMPLES[model][0](scale=0.05)
    name = next(n for n, p in c.populations.items() if p.threshold and "rand" not in p.threshold)
    form, why = lif_form(c, name, refractory=refractory)
    assert form is None and reason in why


# --- export -----------------------------------------------------------------------------

def test_export_nodes_parameters_and_weight_convention(runs):
    c, graph, _ = runs
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds == {"drive": "Input", "E": "CubaLIF", "E.output": "Output", "I": "LIF",
                     "I.output": "Output", "drive_E": "Linear", "E_I.delay": "Delay",
                     "E_I": "Linear", "I_E": "Linear"}
    assert ("E_I.delay", "E_I") in graph.edges and ("E", "E_I.delay") in graph.edges
    e = graph.nodes["E"]   # ge and gi merge into one current
    np.testing.assert_allclose([e.tau_mem, e.tau_syn, e.r], [[0.02] * 40, [0.005] * 40,
                                                             [1e-3] * 40])
    i_pre, j_post = c.synapses("drive_E", seed=3)
    w = c.initial_weights(3)["drive_E"]["w"]
    want = np.zeros((40, 30))
    np.add.at(want, (j_post, i_pre), w * 0.005)   # a jump w in the current: w * tau_syn
    np.testing.assert_allclose(graph.nodes["drive_E"].weight, want)
    tau_i = graph.nodes["I"].tau   # a jump in v: w * tau / r with r = 1
    counts = np.zeros((10, 40))
    i, j = c.synapses("E_I", seed=3)
    np.add.at(counts, (j, i), 1)
    np.testing.assert_allclose(graph.nodes["E_I"].weight, 0.25 * counts * tau_i[:, None])
    np.testing.assert_allclose(graph.nodes["I_E"].weight,
                               -3.0 * c.initial_weights(3)["I_E"]["w"] * 0.005)
    delays = graph.nodes["E_I.delay"].delay
    np.testing.assert_allclose(delays[i], (0.5 + 0.5 * (i % 3)) * 1e-3)
    assert "Poisson source" in graph.metadata["neurosim_notes"]


def test_plastic_projections_are_exported_with_their_current_weights():
    c = CIRCUITS["song-abbott-stdp"]()  # 1000 inputs: the neuron fires, STDP acts
    target = make_target("brian2-numpy", c, seed=1)
    target.run(2000)
    with pytest.warns(UserWarning, match="'synapses' is plastic: exported with its current"):
        graph = to_nir(target)
    w = target.get_weights()["synapses"]["w"]
    assert not np.allclose(w, c.initial_weights(1)["synapses"]["w"])  # it learned
    np.testing.assert_allclose(graph.nodes["synapses"].weight[0], w.ravel() * 0.005)
    assert graph.nodes["synapses"].metadata["neurosim_plastic"] == 1


def test_refractory_periods_are_refused_or_dropped_as_asked():
    c = EXAMPLES["brunel_2000"][0](scale=0.05)
    with pytest.raises(CircuitError, match=r"(?s)'neurons'.*refractory period.*drop_refractory"):
        to_nir(c)
    with pytest.warns(UserWarning, match="refractory period .2 ms. is left out"):
        graph = to_nir(c, drop_refractory=True)
    assert graph.nodes["neurons"].metadata["neurosim_refractory_dropped"] == 0.002


@pytest.mark.parametrize("change, match", [
    ("summed", r"couples 'E' and 'I' continuously \(summed variables"),
    ("mixed", r"'E' has synaptic currents with different time constants"),
    ("synapse_delays", r"per-synapse delays .* per target or per source"),
    ("pre_factor", r"a spike must add a weight to one variable"),
    ("noise", r"'E' cannot be described in NIR: dv/dt reads xi"),
])
def test_export_refuses_by_name_what_nir_cannot_say(change, match):
    c = Circuit("bad", dt=0.1 * ms, namespace={"tau": 10 * ms})
    noise = " + 0.1 * sqrt(tau) * xi" if change == "noise" else ""
    second_tau = "2 * tau" if change == "mixed" else "tau"
    c.add(Population("E", 5, f"""dv/dt = (-v + g + h{noise}) / tau : 1
                                dg/dt = -g / tau : 1
                                dh/dt = -h / ({second_tau}) : 1""",
                     threshold="v > 1", reset="v = 0"))
    c.add(Population("I", 5, "dv/dt = -v / tau : 1\nx : 1", threshold="v > 1", reset="v = 0"))
    if change == "summed":
        c.add(Projection("EI", "E", "I", "w : 1\nx_post = w * v_pre : 1 (summed)"))
    elif change == "synapse_delays":
        c.add(Projection("EI", "E", "I", "w : 1", on_pre="v_post += w",
                         delay=lambda rng, shape: rng.uniform(1, 2, shape) * ms))
    elif change == "pre_factor":
        c.add(Projection("EI", "E", "I", "w : 1", on_pre="v_post += w * v_pre"))
    else:
        c.add(Projection("EI", "E", "I", "w : 1", on_pre="v_post += w"))
    with pytest.raises(CircuitError, match=match):
        to_nir(c)


# --- the round trip and NIR's semantics ---------------------------------------------------

def test_round_trip_through_a_nir_file_gives_the_same_spikes(runs):
    _c, graph, want = runs
    back = from_nir(graph)
    assert set(back.populations) == {"drive", "E", "I"}
    got = spikes(back)
    for pop in ("drive", "E", "I"):
        np.testing.assert_array_equal(got[pop], want[pop])
    assert len(want["E"]) > 100 and len(want["I"]) > 20   # the network is active


def nir_simulation(graph, inputs: dict, n_steps: int, dt: float) -> dict:
    """NIR's equations integrated exactly from step to step, in Brian2's order
    within a step (update, threshold, delivery of spikes due now, reset); the
    initial v from the export's metadata (NIR has no initial state)."""
    neurons = {k: n for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.CubaLIF))}
    v = {k: np.array(n.metadata["neurosim_v0"], float) for k, n in neurons.items()}
    cur = {k: np.zeros_like(v[k]) for k in neurons}
    paths = []   # (source, pre delay steps, weight, post delay steps, target)
    for key, node in graph.nodes.items():
        if isinstance(node, nir.Linear):
            src = next(a for a, b in graph.edges if b == key)
            dst = next(b for a, b in graph.edges if a == key)
            pre = post = 0
            if isinstance(graph.nodes[src], nir.Delay):
                pre = np.rint(graph.nodes[src].delay / dt).astype(int)
                src = next(a for a, b in graph.edges if b == src)
            if isinstance(graph.nodes[dst], nir.Delay):
                post = np.rint(graph.nodes[dst].delay / dt).astype(int)
                dst = next(b for a, b in graph.edges if a == dst)
            paths.append((src, pre, node.weight, post, dst))
    history = {k: np.zeros((n_steps, len(s[0]) if k in inputs else len(v[k])), bool)
               for k, s in [*inputs.items(), *((k, [v[k]]) for k in neurons)]}
    for step in range(n_steps):
        for k, n in neurons.items():
            if isinstance(n, nir.CubaLIF):
                tm, ts = n.tau_mem, n.tau_syn
                v[k] = (n.v_leak + (v[k] - n.v_leak) * np.exp(-dt / tm) + n.r * cur[k] * ts
                        / (ts - tm) * (np.exp(-dt / ts) - np.exp(-dt / tm)))
                cur[k] = cur[k] * np.exp(-dt / ts)
            else:
                v[k] = n.v_leak + (v[k] - n.v_leak) * np.exp(-dt / n.tau)
            history[k][step] = v[k] > n.v_threshold
        for k, s in inputs.items():
            history[k][step] = s[step]
        for src, pre, weight, post, dst in paths:
            past = history[src][np.clip(step - np.broadcast_to(pre, history[src].shape[1:]),
                                        0, None), np.arange(history[src].shape[1])]
            past &= step - np.broadcast_to(pre, past.shape) >= 0
            drive = weight @ past
            n = neurons[dst]
            if isinstance(n, nir.CubaLIF):
                cur[dst] += n.w_in * drive / n.tau_syn
            else:
                v[dst] += n.r * drive / n.tau
        for k, n in neurons.items():
            v[k][history[k][step]] = n.v_reset[history[k][step]]
    return history


def as_raster(rec, n):
    out = np.zeros((STEPS, n), bool)
    out[rec[:, 0], rec[:, 1]] = True
    return out


def test_the_graph_means_what_nir_says(runs):
    """No post delays in this network; pre delays per source neuron."""
    _c, graph, want = runs
    got = nir_simulation(graph, {"drive": as_raster(want["drive"], 30)}, STEPS, 1e-4)
    for pop, n in (("E", 40), ("I", 10)):
        np.testing.assert_array_equal(got[pop], as_raster(want[pop], n))


# --- import from elsewhere, and the command line -------------------------------------------

def test_import_needs_dt_and_refuses_nodes_it_cannot_declare():
    lif = nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3),
                  v_threshold=np.ones(3))
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2])}),
                                "w": nir.Linear(weight=np.ones((3, 2))), "lif": lif,
                                "out": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("in", "w"), ("w", "lif"), ("lif", "out")])
    with pytest.raises(CircuitError, match="records no time step; give dt"):
        from_nir(graph)
    c = from_nir(graph, dt=0.1 * ms)
    assert c.projection("w").on_pre == "v_post += w"
    np.testing.assert_allclose(c.initial_weights(0)["w"]["w"], np.full(6, 100.0))  # r W / tau
    graph.nodes["lif"] = nir.IF(r=np.ones(3), v_threshold=np.ones(3))
    with pytest.raises(CircuitError, match="'lif' is a IF; neurosim imports Input, Output, LIF"):
        from_nir(graph, dt=0.1 * ms)
    graph.nodes["lif"] = lif
    lif.metadata = {"neurosim_unit": "__import__('os')"}
    with pytest.raises(CircuitError, match="is not a Brian2 unit"):
        from_nir(graph, dt=0.1 * ms)


def test_cli_exports_a_library_circuit_and_says_what_it_left_out(tmp_path, capsys):
    out = tmp_path / "stdp.nir"
    assert main(["export-nir", "song-abbott-stdp", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "neuron: CubaLIF" in printed and "'synapses' is plastic" in printed
    assert type(nir.read(str(out)).nodes["neuron"]).__name__ == "CubaLIF"
    assert main(["export-nir", "cuba", "--scale", "0.05", "--out", str(out)]) == 2
    assert "refractory period" in capsys.readouterr().err

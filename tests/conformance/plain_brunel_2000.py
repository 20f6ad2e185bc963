"""Brian2's examples/frompapers/Brunel_2000.py (panel C: g = 5, nu_ext = 2 nu_thr).

Changes: the synapses are connected with the (i, j) neurosim drew
(``connect(p=epsilon)`` is what drew them); the external drive is a
``PoissonGroup`` of N_E neurons at nu_ext connected with p = epsilon instead of
a ``PoissonInput`` of C_E sources per neuron (the same mean input; see
``neurosim.circuits.brian2_examples.brunel_2000``); reduced sizes keep epsilon
and J*C_E; v starts uniform in [V_r, theta + 1 mV] (neurosim's draw), and a
30 ms probe without the external drive comes first (the same addition as
neurosim's protocol)."""
from brian2 import (Hz, Network, NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, ms, mV, prefs,
                    seed as brian2_seed)
import numpy as np


def _activity(monitor, dt, n_steps, bin_steps, t0=0 * ms):
    """Population spikes per bin of ``bin_steps`` time steps from ``t0``."""
    steps = np.round((monitor.t_[:] - float(t0)) / float(dt)).astype(int)
    return np.bincount(steps // bin_steps, minlength=-(-n_steps // bin_steps))


def run(drawn, scale=1.0, seed=0, codegen="numpy", g=5.0, nu_ext_over_nu_thr=2.0):
    prefs.codegen.target = codegen
    # network parameters
    N_E = max(160, int(round(10000 * scale)))
    gamma = 0.25
    N_I = round(gamma * N_E)
    N = N_E + N_I
    epsilon = 0.1
    C_E = epsilon * N_E

    # neuron parameters
    tau = 20 * ms
    theta = 20 * mV
    V_r = 10 * mV
    tau_rp = 2 * ms

    # synapse parameters
    J = 0.1 * mV * 1000 / C_E
    D = 1.5 * ms

    # external stimulus
    nu_thr = theta / (J * C_E * tau)

    neurons = NeuronGroup(N,
                          """
                          dv/dt = -v/tau : volt (unless refractory)
                          """,
                          threshold="v > theta",
                          reset="v = V_r",
                          refractory=tau_rp,
                          method="exact", dt=0.1 * ms, name="neurons*"
                          )
    excitatory_neurons = neurons[:N_E]
    inhibitory_neurons = neurons[N_E:]
    syn = drawn["synapses"]

    exc_synapses = Synapses(excitatory_neurons, target=neurons, on_pre="v += J", delay=D,
                            name="exc_synapses*")
    exc_synapses.connect(i=syn["exc_synapses"][0], j=syn["exc_synapses"][1])

    inhib_synapses = Synapses(inhibitory_neurons, target=neurons, on_pre="v += -g*J", delay=D,
                              name="inhib_synapses*")
    inhib_synapses.connect(i=syn["inhib_synapses"][0] - N_E, j=syn["inhib_synapses"][1])

    nu_ext = nu_ext_over_nu_thr * nu_thr
    external = PoissonGroup(N_E, rates=nu_ext, dt=0.1 * ms, name="external*")
    external_synapses = Synapses(external, neurons, on_pre="v += J", name="external_synapses*")
    external_synapses.connect(i=syn["external_synapses"][0], j=syn["external_synapses"][1])

    neurons.v_ = drawn["values"]["neurons"]["v"]
    # the deterministic probe: 30 ms without the external drive
    external.rates = 0 * Hz
    probe_monitor = SpikeMonitor(neurons)
    net = Network(neurons, exc_synapses, inhib_synapses, external, external_synapses,
                  probe_monitor)
    brian2_seed(seed)
    net.run(30 * ms, namespace=locals())
    net.remove(probe_monitor)
    external.rates = nu_ext
    spike_monitor = SpikeMonitor(neurons)
    net.add(spike_monitor)
    duration = max(0.5, scale) * 200 * ms
    net.run(duration, namespace=locals())
    t0 = 30 * ms
    return {"counts": spike_monitor.count[:].copy(),
            "activity": _activity(spike_monitor, 0.1 * ms, int(round(duration / (0.1 * ms))),
                                  10, t0),
            "probe": _activity(probe_monitor, 0.1 * ms, 300, 1)}

"""Brian2's examples/frompapers/Brunel_Hakim_1999.py. Changes: the synapses are
connected with the (i, j) neurosim drew (``connect(p=sparseness)`` is what drew
them); reduced sizes keep the sparseness and J*C."""
from brian2 import (Network, NeuronGroup, SpikeMonitor, Synapses, ms, mV, prefs, second,
                    seed as brian2_seed)
import numpy as np


def _activity(monitor, dt, n_steps, bin_steps):
    """Population spikes per bin of ``bin_steps`` time steps."""
    steps = np.round(monitor.t_[:] / float(dt)).astype(int)
    return np.bincount(steps // bin_steps, minlength=-(-n_steps // bin_steps))


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    N = max(200, int(round(5000 * scale)))
    Vr = 10*mV
    theta = 20*mV
    tau = 20*ms
    delta = 2*ms
    taurefr = 2*ms
    duration = .1*second
    C = max(1, int(round(1000 * N / 5000)))
    J = .1*mV * 1000 / C
    muext = 25*mV
    sigmaext = 1*mV

    eqs = """
    dV/dt = (-V+muext + sigmaext * sqrt(tau) * xi)/tau : volt
    """
    group = NeuronGroup(N, eqs, threshold='V>theta',
                        reset='V=Vr', refractory=taurefr, method='euler', dt=0.1 * ms,
                        name="group*")
    group.V = Vr
    conn = Synapses(group, group, on_pre='V += -J', delay=delta, name="conn*")
    conn.connect(i=drawn["synapses"]["conn"][0], j=drawn["synapses"]["conn"][1])
    M = SpikeMonitor(group)
    net = Network(group, conn, M)
    brian2_seed(seed)
    net.run(duration, namespace=locals())
    return {"counts": M.count[:].copy(),
            "activity": _activity(M, 0.1 * ms, int(round(duration / (0.1 * ms))), 10)}

"""Brian2's examples/CUBA.py. Changes: the synapses are connected with the (i, j)
neurosim drew (``connect('i<3200', p=0.02)`` is what drew them), the initial v
is neurosim's draw of ``Vr + rand() * (Vt - Vr)``, sizes reduced with ``scale``
(``p`` raised to keep the in-degree)."""
from brian2 import (Network, NeuronGroup, SpikeMonitor, Synapses, ms, mV, prefs, second,
                    seed as brian2_seed)
import numpy as np


def _activity(monitor, dt, n_steps, bin_steps):
    """Population spikes per bin of ``bin_steps`` time steps."""
    steps = np.round(monitor.t_[:] / float(dt)).astype(int)
    return np.bincount(steps // bin_steps, minlength=-(-n_steps // bin_steps))


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    brian2_seed(seed)
    n = max(200, int(round(4000 * scale)))
    taum = 20*ms
    taue = 5*ms
    taui = 10*ms
    Vt = -50*mV
    Vr = -60*mV
    El = -49*mV

    eqs = '''
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    '''
    P = NeuronGroup(n, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms,
                    method='exact', dt=0.1 * ms, name="P*")
    P.v_ = drawn["values"]["P"]["v"]
    P.ge = 0*mV
    P.gi = 0*mV

    we = (60*0.27/10)*mV  # excitatory synaptic weight (voltage)
    wi = (-20*4.5/10)*mV  # inhibitory synaptic weight
    Ce = Synapses(P, P, on_pre='ge += we', name="Ce*")
    Ci = Synapses(P, P, on_pre='gi += wi', name="Ci*")
    Ce.connect(i=drawn["synapses"]["Ce"][0], j=drawn["synapses"]["Ce"][1])
    Ci.connect(i=drawn["synapses"]["Ci"][0], j=drawn["synapses"]["Ci"][1])

    s_mon = SpikeMonitor(P)
    net = Network(P, Ce, Ci, s_mon)
    duration = max(0.1, scale) * second
    net.run(duration, namespace=locals())
    return {"counts": s_mon.count[:].copy(), "v": P.v_[:].copy(),
            "activity": _activity(s_mon, 0.1 * ms, int(round(duration / (0.1 * ms))), 10)}

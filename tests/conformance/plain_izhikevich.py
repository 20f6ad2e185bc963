"""Brian2's examples/frompapers/Izhikevich_2003.py.

Changes: neuron parameters and weights are neurosim's draws (the example draws
them with numpy's global generator); the noise ``I_noise = 5*randn()`` /
``2*randn()`` drawn every 1 ms by ``run_regularly`` is written as the
equation's term ``sigma*xi/sqrt(ms)``, which at dt = 1 ms adds the same
``sigma * randn()`` per step (neurosim has no ``run_regularly``; see
``neurosim.circuits.brian2_examples.izhikevich``); reduced sizes scale the
weights by 1000 / N."""
from brian2 import (Network, NeuronGroup, SpikeMonitor, Synapses, ms, prefs, second,
                    seed as brian2_seed)
import numpy as np


def _activity(monitor, dt, n_steps, bin_steps):
    """Population spikes per bin of ``bin_steps`` time steps."""
    steps = np.round(monitor.t_[:] / float(dt)).astype(int)
    return np.bincount(steps // bin_steps, minlength=-(-n_steps // bin_steps))


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    values = drawn["values"]["N"]
    weights = drawn["weights"]["S_up"]["w"]          # W[post, pre]
    n = len(weights)
    eqs = """dv/dt = (0.04*v**2 + 5*v + 140 - u + I)/ms + sigma*xi/sqrt(ms) : 1
             du/dt = (a*(b*v - u))/ms  : 1
             I : 1
             sigma : 1
             a : 1
             b : 1
             c : 1
             d : 1
           """
    N = NeuronGroup(n, eqs, threshold="v>=30", reset="v=c; u+=d", method="euler",
                    dt=1 * ms, name="N*")
    N.v = -65
    for var in ("a", "b", "c", "d", "sigma"):
        setattr(N, var, values[var])
    N.u = "b*v"
    S = Synapses(N, N, "w : 1", on_pre={"up": "I += w", "down": "I -= w"},
                 delay={"up": 0 * ms, "down": 1 * ms}, dt=1 * ms, name="S*")
    S.connect()
    S.w[:] = weights.T.flatten()
    spikemon = SpikeMonitor(N)
    net = Network(N, S, spikemon)
    brian2_seed(seed)
    duration = max(0.2, scale) * second
    net.run(duration)
    return {"counts": spikemon.count[:].copy(),
            "activity": _activity(spikemon, 1 * ms, int(round(duration / ms)), 1)}

"""Brian2's ``examples/synapses/STDP.py`` written directly in Brian2, sharing no
code with neurosim: the reference for the neurosim ``song_abbott_stdp`` circuit
(tests/test_spiking.py) and for the overhead benchmark
(benchmarks/stdp_overhead.py).

Two changes to the example, both so that the two runs are the same model from
the same state: the initial weights are given (neurosim draws them with its own
seeded generator), and the neuron starts at ``v = vr`` (the example leaves it at
0 mV, so it fires once in the first step).
"""
import time

import numpy as np
from brian2 import (Hz, Network, NeuronGroup, PoissonGroup, Synapses, mV, ms, prefs, second,
                    seed as brian2_seed, start_scope)


def run_plain(w_init, duration, seed: int, codegen: str = "numpy", rate=15 * Hz,
              gmax: float = 0.01, dApre: float = 0.01, timings: dict | None = None):
    """Final weights after ``duration``; ``timings`` (if given) receives the
    seconds spent building and running."""
    t0 = time.perf_counter()
    start_scope()
    prefs.codegen.target = codegen
    N = len(w_init)
    taum, taupre, taupost, taue = 10 * ms, 20 * ms, 20 * ms, 5 * ms
    Ee, vt, vr, El = 0 * mV, -54 * mV, -60 * mV, -74 * mV
    F = rate
    dApost = -dApre * taupre / taupost * 1.05
    dApost *= gmax
    dApre *= gmax
    eqs_neurons = """
    dv/dt = (ge * (Ee-vr) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
    """
    poisson_input = PoissonGroup(N, rates=F)
    neurons = NeuronGroup(1, eqs_neurons, threshold="v>vt", reset="v = vr", method="exact")
    neurons.v = vr
    S = Synapses(poisson_input, neurons,
                 """w : 1
                    dApre/dt = -Apre / taupre : 1 (event-driven)
                    dApost/dt = -Apost / taupost : 1 (event-driven)""",
                 on_pre="""ge += w
                        Apre += dApre
                        w = clip(w + Apost, 0, gmax)""",
                 on_post="""Apost += dApost
                         w = clip(w + Apre, 0, gmax)""")
    S.connect()
    S.w = np.asarray(w_init, dtype=float)
    net = Network(poisson_input, neurons, S)
    brian2_seed(seed)
    t1 = time.perf_counter()
    net.run(duration)
    t2 = time.perf_counter()
    if timings is not None:
        timings.update(build=t1 - t0, run=t2 - t1)
    return np.array(S.w[:])


if __name__ == "__main__":
    w = run_plain(np.random.default_rng(0).uniform(0, 0.01, 1000), 1 * second, seed=0)
    print(np.histogram(w / 0.01, bins=10)[0])

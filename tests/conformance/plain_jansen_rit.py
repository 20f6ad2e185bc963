"""Brian2's examples/frompapers/Jansen_Rit_1995_single_column.py. Changes: the
noise of the TimedArray is neurosim's draw (the example draws
``rnd.rand(70000)`` from numpy's global generator), the run is shorter with
``scale``, and only y1 - y2 is recorded (every 1 ms)."""
from brian2 import (Network, NeuronGroup, StateMonitor, TimedArray, ms, prefs, second,
                    seed as brian2_seed)


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    brian2_seed(seed)
    te, ti = 10.*ms, 20.*ms   # taus for excitatory and inhibitory populations
    e0 = 5.                   # max firing rate
    v0 = 6.                   # (max FR)/2 input
    r0 = 0.56                 # gain rate
    A, B, C = 3.25, 22., 135  # standard parameters as in the set (7) of the original paper
    P, deltaP = 120, 320.-120
    nstim = TimedArray(drawn["timed"]["nstim"], 2*ms)
    equs = """
    dy0/dt = y3                             /second : 1
    dy3/dt = (A        * Sp -2*y3 -y0/te*second)/te : 1
    dy1/dt = y4                             /second : 1
    dy4/dt = (A*(p+ C2 * Se)-2*y4 -y1/te*second)/te : 1
    dy2/dt = y5                             /second : 1
    dy5/dt = (B   * C4 * Si -2*y5 -y2/ti*second)/ti : 1
    p  = P0+nstim(t)*dlP                   : 1
    Sp = e0/(1+exp(r0*(v0 - (y1-y2)    ))) : 1
    Se = e0/(1+exp(r0*(v0 -  C1*y0     ))) : 1
    Si = e0/(1+exp(r0*(v0 -  C3*y0     ))) : 1
    C1            : 1
    C2 = 0.8 *C1  : 1
    C3 = 0.25*C1  : 1
    C4 = 0.25*C1  : 1
    P0            : 1
    dlP           : 1
    """
    n = NeuronGroup(6, equs, method='euler', dt=.1*ms, name="columns*")
    n.C1[0] = 68
    n.C1[1] = 128
    n.C1[2] = C
    n.C1[3] = 270
    n.C1[4] = 675
    n.C1[5] = 1350
    n.P0 = P
    n.dlP = deltaP
    sm = StateMonitor(n, ['y1', 'y2'], record=True, dt=1*ms)
    net = Network(n, sm)
    net.run(max(0.1, scale) * 5 * second, namespace=locals())
    out = {"eeg": (sm.y1 - sm.y2).T.copy()}
    for var in ("y0", "y1", "y2", "y3", "y4", "y5"):
        out[var] = getattr(n, var)[:].copy()
    return out

"""Brian2's examples/IF_curve_LIF.py, as the example writes it (no changes but sizes)."""
from brian2 import Network, NeuronGroup, SpikeMonitor, ms, mV, prefs, second, seed as brian2_seed


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    brian2_seed(seed)
    n = max(20, int(round(1000 * scale)))
    duration = max(0.1, scale) * second
    tau = 10 * ms
    eqs = '''
    dv/dt = (v0 - v) / tau : volt (unless refractory)
    v0 : volt
    '''
    group = NeuronGroup(n, eqs, threshold='v > 10*mV', reset='v = 0*mV',
                        refractory=5 * ms, method='exact', dt=0.1 * ms, name="group*")
    group.v = 0 * mV
    # the example's '20*mV * i / (n-1)', as neurosim computed it (the same to rounding)
    group.v0_ = drawn["values"]["group"]["v0"]
    monitor = SpikeMonitor(group)
    net = Network(group, monitor)
    net.run(duration, namespace={"tau": tau, "n": n})
    return {"counts": monitor.count[:].copy(), "v": group.v_[:].copy()}

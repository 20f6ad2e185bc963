"""Brian2's examples/frompapers/Vogels_et_al_2011.py. Changes: the synapses are
connected with the (i, j) neurosim drew (``connect(p=epsilon)`` is what drew
them; the example's subgroups Pe, Pi are the index ranges of the conditions);
reduced sizes and durations (the in-degree kept)."""
from brian2 import (Hz, Network, NeuronGroup, SpikeMonitor, Synapses, mV, ms, nsiemens, pA,
                    pfarad, prefs, second, seed as brian2_seed)


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    brian2_seed(seed)
    NE = max(160, int(round(8000 * scale)))
    NI = NE // 4
    tau_ampa = 5.0*ms
    tau_gaba = 10.0*ms
    tau_stdp = 20*ms
    gl = 10.0*nsiemens
    el = -60*mV
    er = -80*mV
    vt = -50.*mV
    memc = 200.0*pfarad
    bgcurrent = 200*pA
    eqs_neurons = '''
    dv/dt=(-gl*(v-el)-(g_ampa*v+g_gaba*(v-er))+bgcurrent)/memc : volt (unless refractory)
    dg_ampa/dt = -g_ampa/tau_ampa : siemens
    dg_gaba/dt = -g_gaba/tau_gaba : siemens
    '''
    neurons = NeuronGroup(NE+NI, model=eqs_neurons, threshold='v > vt',
                          reset='v=el', refractory=5*ms, method='euler', dt=0.1 * ms,
                          name="neurons*")
    syn = drawn["synapses"]
    con_e = Synapses(neurons, neurons, on_pre='g_ampa += 0.3*nS', name="con_e*")
    con_e.connect(i=syn["con_e"][0], j=syn["con_e"][1])
    con_ii = Synapses(neurons, neurons, on_pre='g_gaba += 3*nS', name="con_ii*")
    con_ii.connect(i=syn["con_ii"][0], j=syn["con_ii"][1])

    eqs_stdp_inhib = '''
    w : 1
    dApre/dt=-Apre/tau_stdp : 1 (event-driven)
    dApost/dt=-Apost/tau_stdp : 1 (event-driven)
    '''
    alpha = 3*Hz*tau_stdp*2  # Target rate parameter
    gmax = 100               # Maximum inhibitory weight
    con_ie = Synapses(neurons, neurons, model=eqs_stdp_inhib,
                      on_pre='''Apre += 1.
                             w = clip(w+(Apost-alpha)*eta, 0, gmax)
                             g_gaba += w*nS''',
                      on_post='''Apost += 1.
                              w = clip(w+Apre*eta, 0, gmax)
                           ''', name="con_ie*")
    con_ie.connect(i=syn["con_ie"][0], j=syn["con_ie"][1])
    con_ie.w = 1e-10
    sm = SpikeMonitor(neurons)
    net = Network(neurons, con_e, con_ii, con_ie, sm)
    namespace = dict(locals())
    namespace["eta"] = 0          # Run without plasticity
    net.run(max(0.1, scale) * second, namespace=namespace)
    before = sm.count[:NE].copy()
    namespace["eta"] = 1e-2       # Run with plasticity
    net.run(max(0.2, scale) * 9 * second, namespace=namespace)
    return {"counts_before": before, "counts_after": sm.count[:NE] - before,
            "w": con_ie.w_[:].copy()}

"""Oja's rule on one leaky rate neuron, written directly in Brian2 (not a Brian2
example; the model of ``neurosim.circuits.brian2_examples.oja``): per trial the
inputs are set, the network runs 20 steps, and the weights are updated once
with Oja's rule."""
from brian2 import Network, NeuronGroup, Synapses, ms, prefs, seed as brian2_seed


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    brian2_seed(seed)
    samples = drawn["samples"]
    tau, lr = 5 * ms, 0.05
    inputs = NeuronGroup(samples.shape[1], "r : 1", dt=1 * ms, name="inputs*")
    out = NeuronGroup(1, """dr/dt = (-r + I) / tau : 1
                            I : 1""", method="euler", dt=1 * ms, name="out*")
    S = Synapses(inputs, out, """w : 1
                                 I_post = w * r_pre : 1 (summed)""", name="w_in*")
    S.connect()
    S.w = 0.2
    net = Network(inputs, out, S)
    trace = []
    for x in samples:
        inputs.r = x
        out.r = 0
        net.run(20 * ms, namespace={"tau": tau})
        trace.append(out.r[0])
        S.w = "w + lr * r_post * (r_pre - w * r_post)"  # Oja's rule, once per trial
    return {"w": S.w[:].copy(), "out": trace}

"""Brian2's examples/synapses/jeffress.py. Changes: the sound is neurosim's draw
(the example draws ``10 * randn(50000)`` from numpy's global generator), the run
is shorter with ``scale``, the delays are set as the same arrays neurosim
declares (the example's two string assignments compute them), and there is no
StateMonitor."""
from brian2 import (Network, NeuronGroup, SpikeMonitor, Synapses, TimedArray, cm, metre, ms,
                    prefs, second, seed as brian2_seed)
import numpy as np


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    prefs.codegen.target = codegen
    dt = .02*ms
    sound = TimedArray(drawn["timed"]["sound"], dt=dt)  # white noise
    sound_speed = 300*metre/second
    interaural_distance = 20*cm  # big head!
    max_delay = interaural_distance / sound_speed
    angular_speed = 2 * np.pi / second  # 1 turn/second
    tau_ear = 1*ms
    sigma_ear = .1
    eqs_ears = '''
    dx/dt = (sound(t-delay)-x)/tau_ear+sigma_ear*(2./tau_ear)**.5*xi : 1 (unless refractory)
    delay = distance*sin(theta) : second
    distance : second # distance to the centre of the head in time units
    dtheta/dt = angular_speed : radian
    '''
    ears = NeuronGroup(2, eqs_ears, threshold='x>1', reset='x = 0',
                       refractory=2.5*ms, name='ears*', method='euler', dt=dt)
    ears.distance = [-.5 * max_delay, .5 * max_delay]
    num_neurons = 30
    tau = 1*ms
    sigma = .1
    eqs_neurons = '''
    dv/dt = -v / tau + sigma * (2 / tau)**.5 * xi : 1
    '''
    neurons = NeuronGroup(num_neurons, eqs_neurons, threshold='v>1',
                          reset='v = 0', name='neurons*', method='euler', dt=dt)
    synapses = Synapses(ears, neurons, on_pre='v += .5', dt=dt, name="synapses*")
    synapses.connect()
    synapses.delay['i==0'] = '(1.0*j)/(num_neurons-1)*1.1*max_delay'
    synapses.delay['i==1'] = '(1.0*(num_neurons-j-1))/(num_neurons-1)*1.1*max_delay'
    ear_spikes = SpikeMonitor(ears)
    spikes = SpikeMonitor(neurons)
    net = Network(ears, neurons, synapses, ear_spikes, spikes)
    brian2_seed(seed)
    net.run(max(0.1, scale) * second, namespace=locals())
    return {"ears": ear_spikes.count[:].copy(), "counts": spikes.count[:].copy()}

"""Spiking circuits with spike-timing and three-factor (dopamine) plasticity.

``song_abbott_stdp``
    Brian2's ``examples/synapses/STDP.py`` (Song, Miller & Abbott 2000): 1000
    Poisson inputs at 15 Hz onto one leaky integrate-and-fire neuron through
    pair-STDP synapses; the final weights are bimodal (near 0 or gmax).
``dopamine_stdp``
    Izhikevich (2007), dopamine-modulated STDP, solving the distal reward
    problem: Poisson inputs onto one LIF neuron through
    :class:`~neurosim.plasticity.ThreeFactorSTDP` synapses; the environment
    (:func:`rewarded_pairing`) rewards every pre-before-post pairing of one
    chosen synapse, a trial later. That synapse grows; the others do not.
``reward_task``
    Go/no-go with two input patterns: one output neuron learns to fire for the
    rewarded pattern and stay silent for the other (:func:`reward_trials`).

The neuromodulator is a population (:func:`dopamine`): the environment sets
the reward ``r``; the population keeps its running mean ``r_mean`` and emits
``M = r - r_mean`` while a reward is being delivered. An ordinary summed
projection copies ``M`` to the post-synaptic neurons, where the plastic
synapses read it as ``M_post``. Every part is an ordinary population or
projection, so every target can run it.

Inputs are Poisson populations written as Brian2's ``PoissonGroup`` is inside
(``threshold='rand() < rates*dt'``), with a settable ``rates`` variable.
"""
from __future__ import annotations

import numpy as np
from brian2 import Hz, Quantity, mV, ms, second

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.plasticity import PairSTDP, ThreeFactorSTDP
from neurosim.target import Target

__all__ = ["poisson_inputs", "lif", "dopamine", "song_abbott_stdp", "dopamine_stdp",
           "reward_task", "rewarded_pairing", "reward_trials", "LIF_PARAMETERS"]

# Brian2's STDP example: the conductance jump ge is multiplied by (Ee - vr),
# i.e. current-based input with a conductance-like time course.
LIF_EQS = """
dv/dt = (ge * (Ee - vr) + El - v) / taum : volt
dge/dt = -ge / taue : 1
"""
LIF_PARAMETERS = dict(taum=10 * ms, taue=5 * ms, Ee=0 * mV, vt=-54 * mV, vr=-60 * mV,
                      El=-74 * mV)


def poisson_inputs(name: str, n: int, rate: Quantity) -> Population:
    """``n`` independent Poisson spike trains at ``rate`` (settable: ``rates``)."""
    return Population(name, n, "rates : Hz", threshold="rand() < rates*dt",
                      values={"rates": rate})


def lif(name: str, n: int, modulated: bool = False, refractory: Quantity | None = None
        ) -> Population:
    """Leaky integrate-and-fire neurons of Brian2's STDP example (threshold vt,
    reset to vr, no refractory period unless ``refractory`` is given: the
    neuron then cannot fire again for that time). ``modulated`` adds ``M``, the
    neuromodulator a dopamine projection writes for the plastic synapses onto
    these neurons."""
    model = LIF_EQS + ("M : 1  # neuromodulator, written by a dopamine projection\n"
                       if modulated else "")
    return Population(name, n, model, threshold="v > vt", reset="v = vr",
                      refractory=refractory, method="exact", values={"v": -60 * mV})


def dopamine(name: str = "dopamine") -> Population:
    """Dopamine as a declared population (one unit): reward prediction error
    ``M = r - r_mean`` while ``delivering`` is 1 (phasic release), 0 otherwise.
    ``r_mean`` is the running mean of the delivered rewards, with time constant
    ``tau_reward`` (a circuit constant)."""
    return Population(name, 1, """
        r : 1           # reward, set by the environment
        delivering : 1  # 1 while the reward is delivered
        dr_mean/dt = delivering * (r - r_mean) / tau_reward : 1
        M = delivering * (r - r_mean) : 1  # reward minus its running mean
        """)


def _modulate(circuit: Circuit, source: str, target: str) -> None:
    circuit.add(Projection(f"{source}_to_{target}", source, target,
                           "M_post = M_pre : 1 (summed)"))


def _check_positive(**values):
    for name, value in values.items():
        if not float(value) > 0:
            raise CircuitError(f"{name}={value!r} must be positive.")


def song_abbott_stdp(n_inputs: int = 1000, rate: Quantity = 15 * Hz, gmax: float = 0.01,
                     dApre: float = 0.01, dt: Quantity = 0.1 * ms,
                     taupre: Quantity = 20 * ms, taupost: Quantity = 20 * ms) -> Circuit:
    """Brian2's STDP example. ``dApre`` is the potentiation step as a fraction
    of ``gmax``; depression is 5% stronger (``dApost = -1.05 dApre taupre/taupost``).
    Initial weights uniform in [0, gmax]."""
    _check_positive(n_inputs=n_inputs, rate=rate, gmax=gmax, dApre=dApre)
    c = Circuit("song_abbott_stdp", namespace=dict(LIF_PARAMETERS), dt=dt,
                description=f"Song-Abbott STDP: {n_inputs} Poisson inputs -> 1 LIF")
    c.add(poisson_inputs("inputs", n_inputs, rate))
    c.add(lif("neuron", 1))
    rule = PairSTDP(taupre=taupre, taupost=taupost, Apre=dApre * gmax,
                    Apost=-dApre * gmax * float(taupre / taupost) * 1.05, wmax=gmax)
    c.add(Projection("synapses", "inputs", "neuron", "w : 1", on_pre="ge_post += w",
                     plasticity=rule, init={"w": lambda rng, shape: rng.uniform(0, gmax, shape)}))
    return c


def _three_factor(name: str, n_inputs: int, rate, w0: float, wmax: float, Apre: float,
                  depression: float, eta, tau_e, tau_reward, dt, description: str) -> Circuit:
    _check_positive(n_inputs=n_inputs, wmax=wmax, Apre=Apre)
    c = Circuit(name, namespace=dict(LIF_PARAMETERS, tau_reward=tau_reward), dt=dt,
                description=description)
    c.add(poisson_inputs("inputs", n_inputs, rate))
    c.add(lif("neuron", 1, modulated=True))
    c.add(dopamine())
    rule = ThreeFactorSTDP(tau_e=tau_e, Apre=Apre, Apost=-depression * Apre, eta=eta, wmax=wmax)
    c.add(Projection("synapses", "inputs", "neuron", "w : 1", on_pre="ge_post += w",
                     plasticity=rule, init={"w": constant(w0)}))
    _modulate(c, "dopamine", "neuron")
    return c


def dopamine_stdp(n_inputs: int = 20, rate: Quantity = 10 * Hz, w0: float = 0.003,
                  wmax: float = 0.01, Apre: float = 0.002, depression: float = 1.05,
                  eta: Quantity = 1.5 / second, tau_e: Quantity = 1 * second,
                  tau_reward: Quantity = 2 * second, n_background: int = 1000,
                  background_rate: Quantity = 10 * Hz, w_background: float = 0.0065,
                  dt: Quantity = 1 * ms) -> Circuit:
    """Izhikevich (2007) dopamine-modulated STDP: ``n_inputs`` Poisson inputs
    onto one LIF neuron, all plastic synapses equal at ``w0``, eligibility time
    constant ``tau_e`` (Izhikevich: 1 s), 1 ms steps as in the paper. As in the
    paper, each plastic synapse is weak and the neuron fires mostly from other
    input (here ``n_background`` fixed Poisson synapses, about 25 Hz), so
    pre-post pairings are chance coincidences. Run it with
    :func:`rewarded_pairing`.

    Where it differs from the paper: depression is ``depression * Apre`` with
    1.05 (Brian2's STDP example) instead of Izhikevich's 1.5, so that the
    eligibility of an unrewarded synapse averages zero (measured: about -2 Apre
    with 1.5), and a running-mean baseline ``M = r - r_mean`` replaces his
    tonic dopamine; ``eta`` is sized so that the rewarded synapse reaches
    ``wmax`` in tens of seconds rather than an hour.
    """
    _check_positive(n_background=n_background, w_background=w_background)
    c = _three_factor("dopamine_stdp", n_inputs, rate, w0, wmax, Apre, depression, eta, tau_e,
                      tau_reward, dt, f"Izhikevich 2007 dopamine STDP: {n_inputs} "
                      "Poisson inputs -> 1 LIF, three-factor synapses")
    c.add(poisson_inputs("background", n_background, background_rate))
    c.add(Projection("background_synapses", "background", "neuron", "w : 1",
                     on_pre="ge_post += w", init={"w": constant(w_background)}))
    return c


def reward_task(n_pattern: int = 20, w0: float = 0.1, wmax: float = 0.3, Apre: float = 0.1,
                depression: float = 1.05, eta: Quantity = 1 / second,
                tau_e: Quantity = 200 * ms, tau_reward: Quantity = 1 * second,
                dt: Quantity = 1 * ms) -> Circuit:
    """Two input patterns (inputs ``[0, n_pattern)`` and ``[n_pattern,
    2 n_pattern)``) onto one output neuron through three-factor synapses, all
    starting at ``w0`` (strong enough that the neuron first fires for both).
    Run it with :func:`reward_trials`."""
    return _three_factor("reward_task", 2 * n_pattern, 0 * Hz, w0, wmax, Apre, depression,
                         eta, tau_e, tau_reward, dt, f"reward task: 2 patterns x {n_pattern} "
                         "Poisson inputs -> 1 LIF, three-factor synapses")


# --- environments: protocols over the Target interface --------------------------------

def _steps(target: Target, duration: Quantity) -> int:
    return max(1, int(round(float(duration / target.circuit.dt))))


def _deliver(target: Target, reward: float | None) -> None:
    target.set("dopamine", "r", [0.0 if reward is None else reward])
    target.set("dopamine", "delivering", [0.0 if reward is None else 1.0])


def rewarded_pairing(target: Target, n_trials: int, rewarded: int = 0,
                     trial: Quantity = 100 * ms, window: Quantity = 10 * ms,
                     delay: Quantity = 200 * ms, progress=None) -> dict:
    """Izhikevich's protocol in trials of ``trial``: the reward of a trial is 1
    if input ``rewarded`` fired and the neuron fired within ``window`` after
    it, else 0; it is delivered ``delay`` later, for one trial, so the
    synapses' pairings are complete when dopamine arrives and only the
    eligibility trace bridges the gap (Izhikevich: 1-3 s; the default 200 ms
    keeps more of the eligibility, so fewer rewards are needed). Returns the weights of every
    synapse after each trial (``weights``: (n_trials + 1, n_inputs)) and the
    rewards."""
    steps, win = _steps(target, trial), _steps(target, window)
    lag_trials = max(1, int(round(float(delay / trial))))
    weights = [target.get_weights()["synapses"]["w"][0]]
    rewards = []
    for k in range(n_trials):
        _deliver(target, rewards[k - lag_trials] if k >= lag_trials else None)
        rec = target.run(steps, record=[("inputs", "spikes"), ("neuron", "spikes")])
        pre = rec[("inputs", "spikes")]
        pre = pre[pre[:, 1] == rewarded, 0]
        lag = rec[("neuron", "spikes")][:, 0][None, :] - pre[:, None]
        rewards.append(float(np.any((lag > 0) & (lag <= win))))
        weights.append(target.get_weights()["synapses"]["w"][0])
        if progress:
            progress()
    return {"weights": np.array(weights), "rewards": np.array(rewards)}


def reward_trials(target: Target, n_trials: int, rewarded: int = 0, seed: int = 0,
                  stimulus: Quantity = 100 * ms, delivery: Quantity = 100 * ms,
                  rate_on: Quantity = 40 * Hz, rate_off: Quantity = 2 * Hz,
                  progress=None) -> dict:
    """Go/no-go trials: a random pattern (0 or 1) drives its inputs at
    ``rate_on`` for ``stimulus``; the network says "go" if the neuron fires.
    The choice is correct (reward 1, else 0) when it goes for pattern
    ``rewarded`` and stays silent for the other. The reward is delivered for
    ``delivery`` afterwards. Returns per-trial ``patterns``, ``go``,
    ``correct`` and the final weights."""
    n = target.circuit.population("inputs").n
    if n % 2:
        raise CircuitError(f"reward_trials needs an even number of inputs (two patterns), "
                           f"got {n}.")
    rng = np.random.default_rng(seed)
    on, off = float(rate_on / Hz), float(rate_off / Hz)
    out = {"patterns": [], "go": [], "correct": []}
    for _ in range(n_trials):
        pattern = int(rng.integers(2))
        rates = np.full(n, off)
        rates[pattern * n // 2:(pattern + 1) * n // 2] = on
        target.set("inputs", "rates", rates)
        _deliver(target, None)
        rec = target.run(_steps(target, stimulus), record=[("neuron", "spikes")])
        go = len(rec[("neuron", "spikes")]) > 0
        correct = go == (pattern == rewarded)
        target.set("inputs", "rates", np.full(n, off))
        _deliver(target, float(correct))
        target.run(_steps(target, delivery))
        for key, value in zip(out, (pattern, go, correct)):
            out[key].append(value)
        if progress:
            progress()
    out = {k: np.array(v) for k, v in out.items()}
    out["weights"] = target.get_weights()["synapses"]["w"][0]
    return out

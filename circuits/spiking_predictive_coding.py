"""Spiking predictive coding with separate ON and OFF error populations.

The spiking counterpart of the linear rate circuit of
:mod:`~neurosim.circuits.predictive_coding` (MODELS.md sections 1 and 2, the
open problem of section 3.5 of Millidge's thesis: prediction errors are signed,
firing rates are not). Layer 0 is the bottom; ``sizes`` are given top first.

Populations, all integrate-and-fire neurons that communicate only by spikes:

``value{l}``  µ_l. The soma ``u`` integrates the error spikes it receives
    (each spike moves it by ±w/(gain·tau), so on average du/dt = (−ε_l +
    θ_lᵀ ε_{l−1})/tau, eq. 2); the neuron fires at ``gain·[u]₊`` spikes per
    second, so its rate-averaged activity is µ. ``free = 0`` holds ``u`` (a
    clamped input or target) while the neuron keeps firing.
``error_on{l}``, ``error_off{l}``  ε_l = µ_l − θ_{l+1} µ_{l+1} (eq. 1, f linear).
    Both receive the same synaptic current with opposite signs (E/I balance):
    ON is excited by µ_l and inhibited by the prediction, OFF the reverse. Each
    fires at ``gain·[±current]₊``: ON carries [ε]₊, OFF carries [−ε]₊, and
    ON − OFF = ε exactly in the mean, even where fast fluctuations of the
    current make both fire ([c]₊ − [−c]₊ = c).

Projections (``w`` carries the prediction down in ``on_pre`` and, through the
same synapse, the error up in ``on_post``, as the rate circuit's shared θ):

``weights{l+1}_on``, ``weights{l+1}_off``  value{l+1} -> error_on/off{l}: θ_{l+1}.
    Two copies of θ that start equal and get the same update (below).
``own_error_on{l}``, ``own_error_off{l}``  value{l} -> error_on/off{l},
    one-to-one: µ_l excites ON and inhibits OFF; ON spikes push µ_l down, OFF up.
``partners{l}``  error_on{l} -> error_off{l}, one-to-one: each counts the
    other's spikes, so both copies of θ see the same signed error.

Learning (eq. 3, trial level, from spike counts over the measurement window
``window``): θ += lr · ε µᵀ with ε = (ON count − OFF count)/(gain·window) and
µ = value count/(gain·window). Both copies apply the same number, so they stay
equal.

Why integrate-and-fire with a rectified drive and reset by subtraction: its
rate is exactly linear in the drive (no leak, no charge lost at reset or during
the refractory period, up to 1/refractory), so the rate code is the rate
circuit's value without a calibration curve. Why the value soma is a parameter
moved by spikes rather than a differential equation: the error spikes are its
only input, so the rate circuit's eq. 2 is the mean of these jumps, with no
extra synaptic delay in the inference loop.

Trials: :func:`spiking_trial` holds the input and target with :func:`hold`
(``Target.clamp`` would stop the held neurons' integrate-and-fire updates, so
the rate protocol ``train_trial`` does not apply), relaxes, counts spikes over
``window`` and returns the rate averages (:func:`rate_averages`).
:func:`rate_counterpart` and :func:`rate_weights` give the matching rate circuit
and its θ for comparisons. Everything uses the Target interface only.

Not covered (notebooks/04_spiking_predictive_coding.ipynb lists it): nonlinear
f (a population firing at f(θµ) would be needed, and f' gating of the
feedback); negative values (a value neuron cannot fire below zero: the task
must keep µ ≥ 0, or values need ON/OFF pairs too); Dale's law (θ's sign is the
synapse's).
"""
from __future__ import annotations

import numpy as np
from brian2 import Hz, ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection
from neurosim.target import Target

from .predictive_coding import check_layers, relaxed_predictive_coding

# rectified integrate-and-fire, reset by subtraction: fires gain*[drive]+ Hz
_FIRING = """
dv/dt = gain * clip({drive}, 0, inf) : 1
count : 1     # spikes since the protocol last set it to 0
"""

VALUE_EQS = _FIRING.format(drive="u") + """
u : 1         # µ: moved by error spikes, held where free = 0
free : 1      # 1: inferred; 0: held (clamped input or target)
"""

ERROR_EQS = _FIRING.format(drive="polarity * current") + """
dcurrent/dt = -current / tau_syn : 1  # µ_l − θ µ_{l+1}, filtered from value spikes
polarity : 1      # +1: ON population, -1: OFF population
partner : 1   # spikes of the opposite-sign partner since the last reset
"""

SPIKE = {"threshold": "v > 1", "reset": "v -= 1\ncount += 1"}


def spiking_predictive_coding(sizes=(3, 3, 2), activation: str = "linear",
                              theta: dict | None = None, weight_seed: int = 0,
                              weight_std: float = 0.5, gain=400 * Hz, tau=50 * ms,
                              tau_syn=5 * ms, refractory=1 * ms, window=200 * ms,
                              learning_rate: float = 0.1, dt=0.1 * ms) -> Circuit:
    """Linear spiking PC circuit; layer sizes top (input) first; ``activation``
    must be ``'linear'`` (the argument keeps the rate circuits' signature).

    ``theta`` maps l = 1..top to the initial θ_l, shape (n_{l−1}, n_l); by
    default non-negative draws |N(0, weight_std²)| from ``weight_seed`` (drawn
    here, since the ON and OFF copies must start equal). ``gain`` is the
    firing rate of a neuron whose value is 1, ``tau`` the inference time
    constant (as in the rate circuit), ``window`` the counting window of
    :func:`spiking_trial` that the learning rule divides by.
    """
    check_layers(sizes, activation)
    if activation != "linear":
        raise CircuitError(f"activation={activation!r}: the spiking PC circuit is linear "
                           "only (a nonlinear f needs a prediction population); use 'linear'.")
    layer_sizes = list(reversed(sizes))  # layer 0 = bottom
    top = len(sizes) - 1
    rng = np.random.default_rng(weight_seed)
    theta = dict(theta) if theta else {
        l: np.abs(rng.normal(0, weight_std, (layer_sizes[l - 1], layer_sizes[l])))
        for l in range(1, top + 1)}
    for l in range(1, top + 1):
        shape = (layer_sizes[l - 1], layer_sizes[l])
        if np.shape(theta.get(l)) != shape:
            raise CircuitError(f"theta[{l}] must have shape {shape} (rows: layer {l - 1}, "
                               f"columns: layer {l}); got {np.shape(theta.get(l))}.")
    if not float(gain * refractory) < 1:
        raise CircuitError(f"gain={gain} with refractory={refractory}: a value of 1 would "
                           "need more spikes than the refractory period allows; lower either.")
    circuit = Circuit("spiking_predictive_coding", dt=dt, namespace={
        "gain": gain, "tau": tau, "tau_syn": tau_syn, "window": window, "lr": learning_rate},
        description=f"{'-'.join(map(str, sizes))} linear spiking PC, ON/OFF errors")
    neuron = dict(SPIKE, refractory=refractory)
    for l, n in enumerate(layer_sizes):
        # the top (input) layer is always held: it has no error of its own
        circuit.add(Population(f"value{l}", n, VALUE_EQS, values={"free": float(l < top)},
                               **neuron))
        if l < top:
            for kind, polarity in (("on", 1.0), ("off", -1.0)):
                circuit.add(Population(f"error_{kind}{l}", n, ERROR_EQS,
                                       values={"polarity": polarity}, **neuron))
    # A value spike adds ±1/(gain*tau_syn) to the current (mean: ±µ); an error
    # spike moves the soma u by ±w/(gain*tau) (mean: ±w ε / tau).
    for l in range(top):
        for kind in ("on", "off"):
            e = f"error_{kind}{l}"
            # polarity_post is +1 (ON) or -1 (OFF): one text for both populations
            circuit.add(Projection(
                f"weights{l + 1}_{kind}", f"value{l + 1}", e, "w : 1",
                on_pre="current_post -= w / (gain * tau_syn)",
                on_post="u_pre += free_pre * polarity_post * w / (gain * tau)",
                init={"w": theta[l + 1]},
                learning_rule="w += lr * polarity_post * (count_post - partner_post) * count_pre"
                              " / (gain * window)**2"))  # eq. (3) from spike counts
            circuit.add(Projection(
                f"own_error_{kind}{l}", f"value{l}", e, connect="one_to_one",
                on_pre="current_post += 1 / (gain * tau_syn)",
                on_post="u_pre -= free_pre * polarity_post / (gain * tau)"))
        circuit.add(Projection(f"partners{l}", f"error_on{l}", f"error_off{l}",
                               connect="one_to_one", on_pre="partner_post += 1",
                               on_post="partner_pre += 1"))
    circuit.set_io(input=(f"value{top}", "u"), output=("value0", "u"))
    return circuit


# --- trial protocol: uses only the Target interface -------------------------------------

def hold(target: Target, population: str, values) -> None:
    """Hold a value population at ``values`` while it keeps firing (unlike
    ``Target.clamp``, which would stop its integrate-and-fire updates too)."""
    target.set(population, "u", values)
    target.set(population, "free", np.zeros(len(values)))


def free(target: Target, population: str) -> None:
    target.set(population, "free", np.ones(target.circuit.population(population).n))


def _layers(circuit: Circuit) -> int:
    return sum(name.startswith("value") for name in circuit.populations)


def reset_counts(target: Target) -> None:
    for name, pop in target.circuit.populations.items():
        target.set(name, "count", np.zeros(pop.n))
        if "partner" in pop.variables:
            target.set(name, "partner", np.zeros(pop.n))


def rate_averages(target: Target, duration) -> dict:
    """Rate-averaged values µ_l and errors ε_l (ON − OFF) from the spike counts
    accumulated over ``duration`` since :func:`reset_counts`."""
    scale = 1.0 / float(target.circuit.namespace["gain"] * duration)
    out = {}
    for l in range(_layers(target.circuit)):
        out[f"value{l}"] = target.get(f"value{l}", "count") * scale
        if f"error_on{l}" in target.circuit.populations:
            out[f"error_on{l}"] = target.get(f"error_on{l}", "count") * scale
            out[f"error_off{l}"] = target.get(f"error_off{l}", "count") * scale
            out[f"error{l}"] = out[f"error_on{l}"] - out[f"error_off{l}"]
    return out


def spiking_trial(target: Target, x, y=None, settle_steps: int = 1500, learn: bool = False,
                  record=()):
    """Hold the input (and the target ``y`` if given), let the circuit relax
    for ``settle_steps``, then count spikes over the circuit's ``window`` and
    return the rate averages (and the recorded traces); ``learn`` applies the
    learning rule from these counts."""
    circuit = target.circuit
    hold(target, circuit.input[0], x)
    if y is None:
        free(target, circuit.output[0])
    else:
        hold(target, circuit.output[0], y)
    window = circuit.namespace["window"]
    trace = target.run(settle_steps, record=record)
    reset_counts(target)
    trace2 = target.run(int(round(float(window / circuit.dt))), record=record)
    averages = rate_averages(target, window)
    if learn:
        target.learn()
    traces = {k: np.concatenate([trace[k], trace2[k]]) for k in trace}
    return averages, traces


def rate_counterpart(circuit: Circuit) -> Circuit:
    """The linear rate circuit (:func:`relaxed_predictive_coding`) with the same
    sizes, inference time constant and learning rate, with a 1 ms step; start
    it from :func:`rate_weights` of the spiking circuit's weights."""
    sizes = [circuit.population(f"value{l}").n for l in reversed(range(_layers(circuit)))]
    step = 1 * ms
    return relaxed_predictive_coding(sizes, "linear",
                                     inference_rate=float(step / circuit.namespace["tau"]),
                                     learning_rate=circuit.namespace["lr"])


def rate_weights(weights: dict) -> dict:
    """θ of a spiking circuit's weights in the rate circuit's layout ``weights{l}``."""
    return {name[:-3]: {"w": params["w"]} for name, params in weights.items()
            if name.startswith("weights") and name.endswith("_on")}

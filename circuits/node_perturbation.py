"""Learned feedback by node perturbation (Lansdell, Prakash & Kording, 2020),
declared like every other circuit.

A feedforward network whose error signals travel down through separate
feedback matrices B (``feedback{l}``), not through the forward weights. Each
trial runs the network twice on the same input, in the same populations: the
clean pass (``h``) and a perturbed pass (``hn``) in which every hidden layer
adds Gaussian noise ξ ~ N(0, c_h²) (``xin``) to its activity (drawn in the layer's
``init``; the noise of a layer reaches the layers above it through the
perturbed pass). A one-neuron ``loss`` population sums the squared error of
both passes, L = ½‖y − t‖² and L̃, and broadcasts L̃ − L to the hidden layers,
where λ = ξ (L̃ − L) / c_h² estimates ∂L/∂h (node perturbation, the REINFORCE
estimator with the clean loss as baseline). Then, from the clean pass:

* e (``err``; ``e`` is Brian2's constant), the error at each layer's pre-activation: (y − t) ⊙ f'(a) at the output,
  (B e_below) ⊙ f'(a) above it (the synthetic gradient B carries);
* W ← W − η e h_aboveᵀ (each forward weight, from the error B carried);
* B ← B − η_B (B e − λ) eᵀ (the least-squares fit of λ by B e, by SGD).

``feedback`` chooses what carries the error down, for comparisons in the same
circuit: ``'perturbation'`` (B learned as above), ``'fixed'`` (B fixed and
random: feedback alignment, Lillicrap et al. 2016) or ``'reciprocal'``
(through the forward weights: backprop). The perturbed pass and the loss
population are declared in every mode (the alignment measures read them too);
only the rule of B differs.

Layer 0 is the output and the input is clamped at the top, as in
:mod:`circuits.backprop`; zero inference steps. Defaults are the authors'
784-50-20-10 network (``NPModel4`` of their code, benlansdell/synthfeedback):
sigmoid hidden layers, a linear output, biases, weights and B drawn from
N(0, 2 / fan_in), c_h = 0.1, batch 32 (:data:`NODE_PERTURBATION_TRAINING`).
Learning rates: theirs are 1e-4 on batch sums over 100,000 batches; here the
batch mean at 0.2 for W and 0.005 for B (chosen on MNIST, 3 epochs: 0.1 and
0.001 learn more slowly, 0.5 diverges with fixed B too).
Unlike their code, λ uses each sample's own loss difference (theirs takes the
batch's total for every sample, which adds the other samples' noise to the
estimate).
"""
from __future__ import annotations

import math

from brian2 import ms
from brian2.utils.stringtools import word_substitute

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant, normal

from .predictive_coding import ACTIVATIONS, check_layers, hidden_activations

FEEDBACK = ("perturbation", "fixed", "reciprocal")
NODE_PERTURBATION = {"sizes": (784, 50, 20, 10), "activation": "sigmoid",
                     "output_activation": "linear", "learning_rate": 0.2,
                     "feedback_learning_rate": 0.005, "noise": 0.1}
NODE_PERTURBATION_TRAINING = {"steps": 0, "batch_size": 32, "batch_mean": True,
                              "label_off": 0.0, "test_steps": 0}

HIDDEN_EQS = """
h = {f} : 1                      # clean activity
hn = {fn} + xin : 1               # perturbed pass: activity plus noise
err = back * ({fprime}) : 1      # error e at the pre-activation: (B e_below) ⊙ f'
lam = xin * dL / noise**2 : 1     # node-perturbation estimate of dL/dh
a : 1                            # W h_above (clean pass)
an : 1                           # W hn_above (perturbed pass)
bias : 1
back : 1                         # B e_below
dL : 1                           # L̃ − L, from the loss population
xin : 1                           # this trial's noise, N(0, noise²)
"""
OUTPUT_EQS = """
h = {f} : 1
hn = {fn} : 1
err = (h - target) * ({fprime}) : 1   # e = ∂(½‖h − t‖²)/∂a
a : 1
an : 1
bias : 1
target : 1                       # clamped during training
"""
LOSS_EQS = """
dL = Ln - L : 1                  # perturbed minus clean loss
L : 1                            # ½‖y − t‖², clean pass
Ln : 1                           # ½‖ỹ − t‖², perturbed pass
"""


def _positive(name, value, zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise CircuitError(f"node_perturbation: {name}={value!r}: give a "
                           f"{'finite number >= 0' if zero else 'positive finite number'}.")


def node_perturbation(sizes=NODE_PERTURBATION["sizes"],
                      activation: str = NODE_PERTURBATION["activation"],
                      output_activation: str = NODE_PERTURBATION["output_activation"],
                      feedback: str = "perturbation",
                      learning_rate: float = NODE_PERTURBATION["learning_rate"],
                      feedback_learning_rate: float = NODE_PERTURBATION["feedback_learning_rate"],
                      noise: float = NODE_PERTURBATION["noise"], biases: bool = True) -> Circuit:
    """The node-perturbation network on ``sizes`` (input first), or with
    ``feedback='fixed'``/``'reciprocal'`` the same network trained by feedback
    alignment/backprop (see the module doc); ``noise`` is c_h. ``activation`` is
    that of every hidden layer, or one per hidden layer from the input side joined
    by '-' (the autoencoder of the paper's Fig. 3: ``tanh-linear-tanh``)."""
    hidden = hidden_activations(sizes, activation)
    check_layers(sizes, output_activation)
    if feedback not in FEEDBACK:
        raise CircuitError(f"node_perturbation: feedback={feedback!r}; choose one of "
                           f"{list(FEEDBACK)}.")
    _positive("learning_rate", learning_rate, zero=True)
    _positive("feedback_learning_rate", feedback_learning_rate, zero=True)
    _positive("noise", noise)
    name = {"perturbation": "node perturbation", "fixed": "feedback alignment",
            "reciprocal": "backprop"}[feedback]
    circuit = Circuit("node_perturbation", dt=1 * ms,
                      namespace={"lr": learning_rate, "lr_b": feedback_learning_rate,
                                 "noise": noise},
                      description=f"{'-'.join(map(str, sizes))} {activation} {name}")
    top = len(sizes) - 1
    for l, n in enumerate(reversed(sizes)):
        if l == top:
            circuit.add(Population(f"layer{l}", n, "h : 1  # clamped input\nhn = h : 1"))
            continue
        f, fprime = ACTIVATIONS[output_activation if l == 0 else hidden[top - 1 - l]]
        clean, perturbed = (word_substitute(f, {"x": v}) for v in ("(a + bias)", "(an + bias)"))
        eqs = (OUTPUT_EQS if l == 0 else HIDDEN_EQS).format(
            f=clean, fn=perturbed, fprime=word_substitute(fprime, {"x": "(a + bias)"}))
        circuit.add(Population(f"layer{l}", n, eqs,
                               init=None if l == 0 else "xin = noise * randn()"))
    circuit.add(Population("loss", 1, LOSS_EQS))
    for l in range(top):
        fan_in = sizes[::-1][l + 1]
        spread = normal(math.sqrt(2.0 / fan_in))
        reciprocal = feedback == "reciprocal" and l + 1 < top
        circuit.add(Projection(
            f"weights{l + 1}", f"layer{l + 1}", f"layer{l}",
            "w : 1\na_post = w * h_pre : 1 (summed)\nan_post = w * hn_pre : 1 (summed)"
            + ("\nback_pre = w * err_post : 1 (summed)" if reciprocal else ""),
            init={"w": spread}, learning_rule="w -= lr * err_post * h_pre"))
        if feedback != "reciprocal" and l + 1 < top:
            circuit.add(Projection(
                f"feedback{l + 1}", f"layer{l}", f"layer{l + 1}",
                "b : 1\nback_post = b * err_pre : 1 (summed)", init={"b": spread},
                feedback_of=f"weights{l + 1}",
                learning_rule=("b -= lr_b * (back_post - lam_post) * err_pre"
                               if feedback == "perturbation" else None)))
        if biases:
            circuit.add(Projection(f"biases{l}", f"layer{l}", f"layer{l}",
                                   "b : 1\nbias_post = b : 1 (summed)", connect="one_to_one",
                                   init={"b": constant(0.0)}, learning_rule="b -= lr * err_post"))
    circuit.add(Projection("losses", "layer0", "loss",
                           "L_post = 0.5 * (h_pre - target_pre)**2 : 1 (summed)\n"
                           "Ln_post = 0.5 * (hn_pre - target_pre)**2 : 1 (summed)"))
    for l in range(1, top):
        circuit.add(Projection(f"broadcast{l}", "loss", f"layer{l}",
                               "dL_post = dL_pre : 1 (summed)"))
    circuit.set_io(input=(f"layer{top}", "h"), output=("layer0", "target"),
                   readout=("layer0", "h"))
    return circuit

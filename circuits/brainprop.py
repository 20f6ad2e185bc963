"""BrainProp (Pozzi, Bohté & Roelfsema, 2020): trial-and-error learning with a
global reward-prediction error and attention feedback, declared like every
other circuit.

A feedforward network with relu hidden layers and linear outputs selects one
class per trial with a Max-Boltzmann controller: the most active output with
probability ``1 - epsilon`` (0.98), a Boltzmann draw over the outputs at
``temperature`` otherwise. The reward is r = 1 when the selected class is the
label, and a one-neuron neuromodulator population (``dopamine``) computes the
reward-prediction error δ = r − y_s (y_s the selected output) and broadcasts
it to every layer. Attention feedback starts at the selected unit only
(φ = 1 there, 0 elsewhere) and travels down through the reciprocal weights,
φ_i = Σ_k w_ki φ_k g_k (or, with ``learned_feedback``, through separate
feedback weights learned by the same rule); every synapse then learns
Δw_ij = η δ φ_i g_i y_j (paper eq. 15), g the derivative of the activation.

Everything is Brian2 code, so every Brian2 device runs it as it is and the
dense engine evaluates the same code:

* the Boltzmann draw is the Gumbel-max trick, exact in distribution: a
  ``controller`` population, one neuron per output, draws G = −log(−log(U))
  in its ``init`` (not the output layer's own: a population whose variable is
  clamped, the label here, runs no code) and the selected unit is the one
  with the highest ``y + explore * temperature * G``;
* "the highest" is a reduction over the output layer, written as a summed
  variable of an output -> output projection: ``rank`` counts the outputs
  that score higher (ties go to the lower index), and the selected unit is the
  one with ``rank == 0``;
* the explore/exploit coin is one draw per trial, in the neuromodulator's
  ``init``, broadcast to the outputs like δ.

Layer 0 is the output and the input is clamped at the top, as in
:mod:`circuits.backprop`, so BrainProp trains on the same data pipeline (zero
inference steps: one step computes the forward pass, the selection, δ and the
feedback, in the dependency order of the summed variables). Train it with
plain one-hot labels (``label_off=0``: the reward of a wrong choice is then 0)
and the batch mean of the increments (the paper divides the batch's gradient
by its size): :data:`BRAINPROP_TRAINING`.
"""
from __future__ import annotations

from brian2 import ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant, normal

from .predictive_coding import check_layers

#: the fully connected MNIST protocol of the authors' code (isapome/BrainProp,
#: get_architecture.py and main.py): 784-1500-1000-500-10 without biases, weights
#: N(0, 0.01²), SGD at 0.1 on the batch mean, batch 128 (their schedule halves the
#: rate every 100 epochs). The paper's text says rate 1 and N(0, 0.1²), which
#: diverges here within the first epoch (README).
BRAINPROP = {"sizes": (784, 1500, 1000, 500, 10), "learning_rate": 0.1, "weight_std": 0.01,
             "epsilon": 0.02, "temperature": 1.0, "biases": False}
BRAINPROP_TRAINING = {"steps": 0, "batch_size": 128, "batch_mean": True, "label_off": 0.0,
                      "test_steps": 0}

HIDDEN_EQS = """
h = clip(a + bias, 0, inf) : 1   # relu activity y
g = int(a + bias > 0) : 1        # its derivative
fb = phi * g : 1                 # feedback passed on, and the gate of plasticity
a : 1                            # W y_above
bias : 1                         # b, from the biases projection (0 without biases)
phi : 1                          # attention feedback from the layer below
rpe : 1                          # δ, broadcast by the neuromodulator
"""
OUTPUT_EQS = """
h = a + bias : 1                 # linear output y
score = h + explore * temperature * gumbel : 1
fb = int(rank < 0.5) : 1         # φ (g = 1): 1 at the selected unit only
a : 1
bias : 1
target : 1                       # one-hot label, clamped during training
gumbel : 1                       # G, from the controller
explore : 1                      # 1 on the trials the controller explores
rank : 1                         # outputs that score higher (ties: lower index)
rpe : 1
"""
DOPAMINE_EQS = """
delta = reward - expected : 1    # the reward-prediction error δ = r - y_s
explore : 1                      # this trial's coin: 1 with probability epsilon
reward : 1                       # r: 1 when the selected unit is the label
expected : 1                     # y_s: the selected unit's activity
"""


def brainprop(sizes=BRAINPROP["sizes"], activation: str = "relu",
              learning_rate: float = BRAINPROP["learning_rate"],
              weight_std: float = BRAINPROP["weight_std"], epsilon: float = BRAINPROP["epsilon"],
              temperature: float = BRAINPROP["temperature"], learned_feedback: bool = False,
              feedback_decay: float = 0.0, biases: bool = BRAINPROP["biases"]) -> Circuit:
    """BrainProp on a ``sizes`` network (input first): relu hidden layers, linear
    outputs, Max-Boltzmann selection (``epsilon``, ``temperature``), the RPE
    carried by the ``dopamine`` population, attention feedback through the
    reciprocal weights or, with ``learned_feedback``, through separate feedback
    weights ``feedback{l}`` drawn independently and learned by the same rule
    (transposed); ``feedback_decay`` λ then adds −η λ w to the forward and the
    feedback weights' changes, which makes them converge to each other
    (Kolen & Pollack 1994): the same rule alone keeps their difference.
    ``activation`` is the hidden layers' (the paper's is relu)."""
    if activation != "relu":
        raise CircuitError(f"brainprop: activation={activation!r}; BrainProp's hidden units "
                           "are relu (its gate g is their derivative): use 'relu'.")
    check_layers(sizes, activation)
    for name, value, low in (("epsilon", epsilon, 0.0), ("temperature", temperature, None),
                             ("feedback_decay", feedback_decay, 0.0),
                             ("learning_rate", learning_rate, None)):
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not value == value or abs(value) == float("inf")
        if bad or (low is None and value <= 0) or (low is not None and value < low) or \
                (name == "epsilon" and value > 1):
            raise CircuitError(f"brainprop: {name}={value!r}: give a "
                               + ("probability in [0, 1]" if name == "epsilon" else
                                  "finite number >= 0" if low is not None else
                                  "positive finite number") + ".")
    if feedback_decay and not learned_feedback:
        raise CircuitError("brainprop: feedback_decay applies to learned feedback weights; "
                           "give learned_feedback=True, or leave feedback_decay at 0.")
    circuit = Circuit("brainprop", dt=1 * ms,
                      namespace={"lr": learning_rate, "epsilon": epsilon,
                                 "temperature": temperature, "decay": feedback_decay},
                      description=f"{'-'.join(map(str, sizes))} BrainProp"
                                  + (" (learned feedback)" if learned_feedback else ""))
    top = len(sizes) - 1
    for l, n in enumerate(reversed(sizes)):
        if l == top:
            circuit.add(Population(f"layer{l}", n, "h : 1  # clamped input"))
        elif l == 0:
            circuit.add(Population("layer0", n, OUTPUT_EQS))
            circuit.add(Population("controller", n, "noise : 1  # G = -log(-log(U))",
                                   init="noise = -log(-log(rand()))"))
        else:
            circuit.add(Population(f"layer{l}", n, HIDDEN_EQS))
    circuit.add(Population("dopamine", 1, DOPAMINE_EQS, init="explore = int(rand() < epsilon)"))
    decay = "\n{w} -= lr * decay * {w}" if feedback_decay else ""
    for l in range(top):
        reciprocal = not learned_feedback and l + 1 < top
        circuit.add(Projection(
            f"weights{l + 1}", f"layer{l + 1}", f"layer{l}",
            "w : 1\na_post = w * h_pre : 1 (summed)"
            + ("\nphi_pre = w * fb_post : 1 (summed)" if reciprocal else ""),
            init={"w": normal(weight_std)},
            learning_rule="w += lr * rpe_post * fb_post * h_pre" + decay.format(w="w")))
        if learned_feedback and l + 1 < top:
            circuit.add(Projection(
                f"feedback{l + 1}", f"layer{l}", f"layer{l + 1}",
                "b : 1\nphi_post = b * fb_pre : 1 (summed)", init={"b": normal(weight_std)},
                feedback_of=f"weights{l + 1}",
                learning_rule="b += lr * rpe_pre * fb_pre * h_post" + decay.format(w="b")))
        if biases:
            circuit.add(Projection(f"biases{l}", f"layer{l}", f"layer{l}",
                                   "b : 1\nbias_post = b : 1 (summed)", connect="one_to_one",
                                   init={"b": constant(0.0)},
                                   learning_rule="b += lr * rpe_post * fb_post"))
    # the Max-Boltzmann controller: the highest score wins (a reduction over the outputs)
    circuit.add(Projection("draws", "controller", "layer0", "gumbel_post = noise_pre : 1 (summed)",
                           connect="one_to_one"))
    circuit.add(Projection("selection", "layer0", "layer0",
                           "rank_post = int(score_pre > score_post) + int(score_pre == "
                           "score_post) * int(i_pre < i_post) : 1 (summed)",
                           connect={"condition": "i != j"}))
    circuit.add(Projection("outcome", "layer0", "dopamine",
                           "reward_post = fb_pre * target_pre : 1 (summed)\n"
                           "expected_post = fb_pre * h_pre : 1 (summed)"))
    for l in range(top):
        circuit.add(Projection(f"broadcast{l}", "dopamine", f"layer{l}",
                               "rpe_post = delta_pre : 1 (summed)"
                               + ("\nexplore_post = explore_pre : 1 (summed)" if l == 0 else "")))
    circuit.set_io(input=(f"layer{top}", "h"), output=("layer0", "target"),
                   readout=("layer0", "h"))
    return circuit

"""Backprop and feedback-alignment baselines, declared like every other circuit.

A feedforward network trained by error backpropagation on the squared error
½‖h_0 − target‖², written as populations and projections whose summed
variables form the forward pass (``a = W h_above``) and the backward pass
(``back = Wᵀ δ_below``, or ``B δ_below`` with a fixed random B for feedback
alignment, Lillicrap et al. 2016). There are no differential equations: one
step computes the whole chain, because summed variables are evaluated in
dependency order (:func:`neurosim.lowering.summed_order`). Layer 0 is the
bottom (output) and the input is clamped at the top, as in the predictive
coding circuit, so both train on the same data pipeline with the same
protocol (with zero inference steps).

With ``lr`` per sample, the update ``w -= lr * delta_post * h_pre`` is
exactly stochastic gradient descent; at an equilibrium with small errors the
predictive coding update of the same network coincides with it.

``output_activation='softmax'`` trains a softmax output on the cross-entropy
instead (δ = h − target at the output), as classifiers trained by backprop
usually are (BrainProp's comparison, Pozzi et al. 2020). The softmax is
written as a reduction over the output layer, a summed variable of an output
-> output projection, in the form that cannot overflow to NaN:
h_i = 1 / Σ_j exp(a_j − a_i) (a term that overflows makes h_i = 0, its limit).
"""
from __future__ import annotations

from brian2 import ms
from brian2.utils.stringtools import word_substitute

from neurosim.circuit import Circuit, Population, Projection, fan_in_uniform, normal

from .predictive_coding import ACTIVATIONS, check_layers

HIDDEN_EQS = """
h = {f} : 1           # activity
delta = back * ({fprime}) : 1   # error signal δ = (Wᵀ δ_below) ⊙ f'(a)
a : 1                 # input from the layer above, W h_above
back : 1              # error from the layer below
"""
OUTPUT_EQS = """
h = {f} : 1
delta = (h - target) * ({fprime}) : 1   # ∂(½‖h − target‖²)/∂a
a : 1
target : 1            # clamped during training
"""
SOFTMAX_EQS = """
h = 1 / Z : 1         # softmax: exp(a_i) / Σ_j exp(a_j)
delta = h - target : 1   # ∂(cross-entropy)/∂a of a softmax output
a : 1
Z : 1                 # Σ_j exp(a_j − a_i), from the softmax projection
target : 1            # clamped during training
"""


def backprop_network(sizes=(784, 300, 100, 10), activation: str = "relu",
                     feedback_alignment: bool = False, learning_rate: float = 0.02,
                     weight_std: float | None = 0.05 ** 0.5,
                     output_activation: str | None = None) -> Circuit:
    """A ``sizes`` network (input first) trained by backprop, or by feedback
    alignment with ``feedback_alignment=True``; ``output_activation`` is that of
    the last layer (default: ``activation``), or ``'softmax'`` with the
    cross-entropy loss."""
    check_layers(sizes, activation)
    out_activation = activation if output_activation is None else output_activation
    softmax = out_activation == "softmax"
    if not softmax:
        check_layers(sizes, out_activation)
    kind = "feedback alignment" if feedback_alignment else "backprop"
    output = f" ({out_activation} output)" if out_activation != activation else ""
    circuit = Circuit(kind.replace(" ", "_"), dt=1 * ms, namespace={"lr": learning_rate},
                      description=f"{'-'.join(map(str, sizes))} {activation}{output} {kind}")
    top = len(sizes) - 1
    weights = fan_in_uniform if weight_std is None else normal(weight_std)
    for l, n in enumerate(reversed(sizes)):
        f, fprime = (word_substitute(e, {"x": "a"})
                     for e in ACTIVATIONS[activation if l or softmax else out_activation])
        eqs = ("h : 1  # clamped input" if l == top else SOFTMAX_EQS if l == 0 and softmax else
               (OUTPUT_EQS if l == 0 else HIDDEN_EQS).format(f=f, fprime=fprime))
        circuit.add(Population(f"layer{l}", n, eqs))
    if softmax:
        circuit.add(Projection("softmax", "layer0", "layer0",
                               "Z_post = exp(a_pre - a_post) : 1 (summed)"))
    for l in range(top):
        model = "w : 1\na_post = w * h_pre : 1 (summed)"
        if not feedback_alignment and l + 1 < top:
            model += "\nback_pre = w * delta_post : 1 (summed)"
        circuit.add(Projection(f"weights{l + 1}", f"layer{l + 1}", f"layer{l}", model,
                               init={"w": weights},
                               learning_rule="w -= lr * delta_post * h_pre"))
        if feedback_alignment and l + 1 < top:
            circuit.add(Projection(f"feedback_weights{l + 1}", f"layer{l}", f"layer{l + 1}",
                                   "b : 1\nback_post = b * delta_pre : 1 (summed)",
                                   init={"b": weights}, feedback_of=f"weights{l + 1}"))
    circuit.set_io(input=(f"layer{top}", "h"), output=("layer0", "target"),
                   readout=("layer0", "h"))
    return circuit

"""Rate predictive-coding microcircuit with the relaxations of Millidge et al.,
"Relaxing the constraints on predictive coding models" (MODELS.md section 1).

Layer 0 is the bottom; in the paper's 'reverse' discriminative protocol the
image is clamped at the top layer and the (smoothed one-hot) label at the
bottom. ``sizes`` are given top first, like the paper's "784-300-100-10".

Per layer ``l`` there are two populations:

``value{l}`` (µ_l)
    ``dmu/dt = (-eps + feedback) / tau`` -- eq. (2) with ``tau`` the inference
    time constant (Euler step = dt / tau, the paper's inference rate).
``error{l}`` (ε_l, for every layer that is predicted, i.e. all but the top)
    ``eps = value - f(pred)`` -- eq. (1), or eq. (7) when ``value`` arrives
    through learned error weights ψ.

and these projections:

``weights{l+1}``  value{l+1} -> error{l}   θ_{l+1}: the top-down prediction
                  ``pred = θ µ``; with weight transport it also carries the
                  error back up, ``feedback = θᵀ (ε ⊙ f')``; learned by eq. (3).
``feedback_weights{l+1}``  error{l} -> value{l+1}   θ̃: separate feedback,
                  learned by eq. (4), or fixed and random (feedback alignment).
``error_weights{l}``  value{l} -> error{l}   one-to-one identity, or the
                  learned ψ_l (eq. 7/8) for hidden layers.
``errors{l}``     error{l} -> value{l}   one-to-one: ε_l and the prediction
                  f(θ µ) that starts each trial (``init: mu = prior``).

Sign of the ψ rule: the paper prints dψ/dt = ε µᵀ (eq. 8), but the energy is
F = Σ ½‖ε‖² with ε = ψµ − f(θµ), so -∂F/∂ψ = −ε µᵀ. We use ψ ← ψ − η ε µᵀ
(as the authors' code does), which descends F; a test checks that it does.
"""
from __future__ import annotations

from brian2 import ms
from brian2.utils.stringtools import word_substitute

from neurosim.circuit import (Circuit, CircuitError, Population, Projection, abs_normal,
                              fan_in_uniform, normal)

# f(x) and f'(x) as Brian2 expressions of x.
ACTIVATIONS = {
    "relu": ("clip(x, 0, inf)", "int(x > 0)"),
    "tanh": ("tanh(x)", "1 - tanh(x)**2"),
    "sigmoid": ("1 / (1 + exp(-x))", "exp(-x) / (1 + exp(-x))**2"),
    "linear": ("x", "1"),
}

#: The relaxations, each a switch of :func:`relaxed_predictive_coding`, and what
#: it does (the command line's ``--learned-feedback`` ... and their help).
SWITCHES = {
    "learned_feedback": "separate feedback weights θ̃ learned by eq. 4",
    "no_fprime": "drop f' from eqs 2-4",
    "learned_errors": "learned error connections ψ (eqs 7, 8)",
    "fully_relaxed": "all three above",
    "fixed_random_feedback": "random fixed θ̃: the feedback-alignment baseline",
}
#: The variants of the paper: name -> switches. The one table that the command
#: line, the tests and the benchmarks read.
VARIANTS = {
    "standard": {},
    "learned_feedback": {"learned_feedback": True},
    "no_fprime": {"no_fprime": True},
    "learned_errors": {"learned_errors": True},
    "fully_relaxed": {"fully_relaxed": True},
    "feedback_alignment": {"fixed_random_feedback": True},
}


def check_layers(sizes, activation: str) -> None:
    """Layer sizes (input first) and activation of a layered rate circuit."""
    if activation not in ACTIVATIONS:
        raise CircuitError(f"Unknown activation {activation!r}; choose one of "
                           f"{sorted(ACTIVATIONS)}.")
    if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
        raise CircuitError(f"sizes={sizes!r}: give at least two positive layer sizes, "
                           "input first, e.g. (784, 300, 100, 10).")


VALUE_EQS = """
dmu/dt = (-eps + feedback) / tau : 1
eps : 1       # own prediction error (stays 0 in the top layer)
feedback : 1  # error from the layer below through θᵀ or θ̃ (0 in the bottom layer)
prior : 1     # top-down prediction f(θ µ_above), where a trial starts
"""

ERROR_EQS = """
eps = value - prediction : 1
prediction = {f} : 1
gated = eps * ({fprime}) : 1   # ε ⊙ f'(θ µ), what is sent up
pred : 1      # θ µ_above
value : 1     # µ (one-to-one) or ψ µ
"""


def relaxed_predictive_coding(
    sizes=(784, 300, 100, 10),
    activation: str = "relu",
    learned_feedback: bool = False,
    no_fprime: bool = False,
    learned_errors: bool = False,
    fixed_random_feedback: bool = False,
    fully_relaxed: bool = False,
    inference_rate: float = 0.1,
    learning_rate: float = 5e-4,
    weight_std: float | None = 0.05 ** 0.5,
    error_weight_std: float = 0.05,
) -> Circuit:
    """Predictive-coding circuit; every relaxation is a switch.

    ``fully_relaxed`` turns on ``learned_feedback``, ``no_fprime`` and
    ``learned_errors``. ``fixed_random_feedback`` is the feedback-alignment
    baseline (θ̃ random, never learned). ``inference_rate`` is dt/tau.
    Weights start from N(0, weight_std²) (the paper: variance 0.05), or
    uniform in ±1/√fan_in with ``weight_std=None``.
    """
    check_layers(sizes, activation)
    if learned_feedback and fixed_random_feedback:
        raise CircuitError("learned_feedback and fixed_random_feedback exclude each other: "
                           "θ̃ is either learned (eq. 4) or fixed (feedback alignment).")
    if fully_relaxed:
        learned_feedback = no_fprime = learned_errors = True
    if not 0 < inference_rate <= 1:
        raise CircuitError(f"inference_rate={inference_rate} must lie in (0, 1] (it is dt/tau).")
    f, fprime = ACTIVATIONS[activation]
    fprime = "1" if no_fprime else fprime
    dt = 1 * ms
    circuit = Circuit(
        "relaxed_predictive_coding", dt=dt,
        namespace={"tau": dt / inference_rate, "lr": learning_rate},
        description=f"{'-'.join(map(str, sizes))} {activation} PC, " + (", ".join(
            name for name, on in (("learned feedback", learned_feedback),
                                  ("no f'", no_fprime), ("learned ψ", learned_errors),
                                  ("fixed random feedback", fixed_random_feedback)) if on)
            or "standard"),
    )
    top = len(sizes) - 1
    weights = fan_in_uniform if weight_std is None else normal(weight_std)
    layer_sizes = list(reversed(sizes))  # layer 0 = bottom
    error_eqs = ERROR_EQS.format(f=word_substitute(f, {"x": "pred"}),
                                 fprime=word_substitute(fprime, {"x": "pred"}))
    for l, n in enumerate(layer_sizes):
        circuit.add(Population(f"value{l}", n, VALUE_EQS, init="mu = prior" if l < top else None))
        if l < top:
            circuit.add(Population(f"error{l}", n, error_eqs))
    separate_feedback = learned_feedback or fixed_random_feedback
    for l in range(top):
        forward = "w : 1\npred_post = w * mu_pre : 1 (summed)"
        if not separate_feedback:
            forward += "\nfeedback_pre = w * gated_post : 1 (summed)"
        circuit.add(Projection(f"weights{l + 1}", f"value{l + 1}", f"error{l}", forward,
                               init={"w": weights},
                               learning_rule="w += lr * gated_post * mu_pre"))  # eq. (3)
        if separate_feedback:
            circuit.add(Projection(
                f"feedback_weights{l + 1}", f"error{l}", f"value{l + 1}",
                "w : 1\nfeedback_post = w * gated_pre : 1 (summed)",
                init={"w": weights},
                learning_rule="w += lr * mu_post * gated_pre" if learned_feedback else None))  # (4)
        if learned_errors and l > 0:  # the output (bottom) layer's ψ stays the identity
            circuit.add(Projection(
                f"error_weights{l}", f"value{l}", f"error{l}",
                "w : 1\nvalue_post = w * mu_pre : 1 (summed)",
                init={"w": abs_normal(error_weight_std)},
                learning_rule="w -= lr * eps_post * mu_pre"))  # eq. (8), descending F
        else:
            circuit.add(Projection(f"error_weights{l}", f"value{l}", f"error{l}",
                                   "value_post = mu_pre : 1 (summed)", connect="one_to_one"))
        circuit.add(Projection(f"errors{l}", f"error{l}", f"value{l}",
                               "eps_post = eps_pre : 1 (summed)\n"
                               "prior_post = prediction_pre : 1 (summed)",
                               connect="one_to_one"))
    circuit.set_io(input=(f"value{top}", "mu"), output=("value0", "mu"))
    return circuit

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

Two formulations
----------------
The printed one above (eqs 1-4, 7, 8: the defaults), and the one the authors'
code runs (BerenMillidge/RelaxedPredictiveCoding, main.py), whose results the
paper's figures show. In their code (input first, row vectors) a layer predicts
``outs = f(µ W) + b`` (``FCLayer.forward``), the error is
``ε = µ − outs Ψ`` (``PCNet.infer_pc``), the hidden values move by
``µ ← µ − 0.01·clamp(2(ε − (ε_below ⊙ f'(µ_above W)) Wᵀ), ±1000)``, and after
the last step ``W += lr·clamp(2 inpᵀ(ε ⊙ f'), ±c)``, ``b += lr·clamp(ε, ±c)``
(``FCLayer.update_weights``), ``Ψ ← Ψ − lr·clamp(outsᵀ ε, ±50)``
(``PCNet.update_error_weights``); µ starts at the feed-forward sweep
(``learn_pc``) and the test readout is the feed-forward pass
(``no_grad_forward``). Each difference is a switch, combinable with the
relaxations (:func:`authors_predictive_coding` turns on the set, with their
protocol :data:`AUTHORS`, :data:`AUTHORS_TRAINING`):

``psi_on_prediction`` (with ``learned_errors``)
    ψ multiplies the prediction: ε_l = µ_l − ψ_l (f(θ_{l+1} µ_{l+1}) + b_l),
    ``error_weights{l}`` an error{l} -> error{l} matrix (``values{l}`` then
    carries µ one-to-one). The update is theirs, ψ ← ψ − η ε (f + b)ᵀ, which
    for this placement *ascends* F (∂F/∂ψ = −ε (f + b)ᵀ): their code kept the
    sign of the ψ-on-µ form. It matters little there: with fixed predictions
    the relaxed ε of a hidden layer tends to the back-propagated error whatever
    ψ is (ψ only moves where µ settles), which is also why learned ψ needs
    enough inference steps (the start, ε = (f + b)(I − ψ), decays as
    (1 − rate)^steps).
``fixed_predictions``
    f(θµ), f'(θµ) and the µ of the layer above in the θ/θ̃ updates are those of
    the feed-forward sweep: ``pred0`` and ``mu0`` are stored by ``init`` code
    in ``settle`` (twice as many settle steps, which the targets count from
    the populations with ``init``), instead of the live summed ``pred``.
``biases``
    ``biases{l}``: one-to-one error{l} -> error{l}, ``b`` added after f, learned
    by b += η ε (their bias has no factor 2). Their bias is one row per batch
    position (``torch.zeros([batch_size, n])``), ours one per neuron with the
    batch summed: identical for one sample per trial.
``no_fprime_inference_only`` (with ``no_fprime``)
    their ``use_backwards_nonlinearities=False`` drops f' from the value update
    only; the θ and θ̃ updates keep it (``delta``), where the printed switch
    drops every f'.

Parameters, not switches: ``output_activation`` (their last layer is linear),
``weight_gain`` (their θ, θ̃ increments carry the 2 of ∂‖ε‖², their bias and
ψ increments do not), ``update_clip`` (their clamp of the batch-summed
increment of θ, θ̃, ψ: the projections' ``learning_bound``, lr·update_clip on
the change; their bias is clamped per batch row, ours, one per neuron, on the
batch sum). Their value
update's factor 2 is the Euler step: ``inference_rate = 2 * 0.01``; its
±1000 clamp is not declared (values are of order 1).
"""
from __future__ import annotations

import inspect

from brian2 import ms
from brian2.utils.stringtools import word_substitute

from neurosim.circuit import (Circuit, CircuitError, Population, Projection, abs_normal,
                              fan_in_uniform, identity, normal)

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
    # the authors' code (module doc, "Two formulations"), combinable with the above
    "psi_on_prediction": "authors' code: ψ multiplies the prediction, ε = µ − ψ f(θµ) "
                         "(needs learned ψ: --learned-errors or --fully-relaxed)",
    "fixed_predictions": "authors' code: f(θµ), f'(θµ) and the µ of the weight updates "
                         "fixed at the feed-forward sweep of each trial",
    "biases": "authors' code: a learned bias per predicted neuron, f(θµ) + b",
    "no_fprime_inference_only": "authors' code: with --no-fprime, drop f' from the value "
                                "update (eq. 2) only, keep it in the weight updates",
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

#: The authors' protocol (BerenMillidge/RelaxedPredictiveCoding, main.py, as
#: MODELS.md section 1 states it): the keywords of
#: :func:`relaxed_predictive_coding` that :func:`authors_predictive_coding`
#: applies, and the training settings it was run with. Their value update
#: µ ← µ − 0.01·2·(ε − back) is an Euler step of 0.02; their θ updates
#: θ += 1e-3·clamp(2·Δθ, ±50) are ``weight_gain=2`` with ``update_clip=50``.
AUTHORS = {
    "sizes": (784, 300, 100, 100, 10),
    "activation": "relu",
    "output_activation": "linear",
    "fixed_predictions": True,
    "biases": True,
    "inference_rate": 2 * 0.01,
    "learning_rate": 1e-3,
    "weight_gain": 2.0,
    "update_clip": 50.0,
    "weight_std": 0.05,
    "error_weight_std": 0.05,
}
#: ... and its training: 500 inference steps per trial, SGD on the **sum** of a
#: batch's updates (not the mean: ``batch_mean=False``, a dense-target option),
#: batches of 64, 10 epochs, plain one-hot labels (``label_off=0``); the readout
#: is the feed-forward pass (``predict`` with no extra steps). The other keys
#: are those of :class:`neurosim.training.TrainSettings`.
AUTHORS_TRAINING = {"steps": 500, "batch_size": 64, "batch_mean": False, "epochs": 10,
                    "test_steps": 0, "label_off": 0.0}


def check_layers(sizes, activation: str) -> None:
    """Layer sizes (input first) and activation of a layered rate circuit."""
    if activation not in ACTIVATIONS:
        if activation == "softmax":
            raise CircuitError("activation 'softmax' (an output trained on the cross-entropy) "
                               "is taken by backprop and feedback-alignment as their "
                               f"output_activation; this circuit takes one of "
                               f"{sorted(ACTIVATIONS)}.")
        if all(part in ACTIVATIONS for part in str(activation).split("-")):
            raise CircuitError(f"activation {activation!r}: one activation per hidden layer "
                               "is taken by node-perturbation; this circuit takes one for "
                               f"all its layers, one of {sorted(ACTIVATIONS)}.")
        raise CircuitError(f"Unknown activation {activation!r}; choose one of "
                           f"{sorted(ACTIVATIONS)}.")
    if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
        raise CircuitError(f"sizes={sizes!r}: give at least two positive layer sizes, "
                           "input first, e.g. (784, 300, 100, 10).")


def hidden_activations(sizes, activation: str) -> list[str]:
    """One activation per hidden layer of ``sizes`` (input side first): ``activation``
    names one for all, or one per hidden layer joined by '-' (``tanh-linear-tanh``)."""
    parts = str(activation).split("-")
    unknown = [part for part in parts if part not in ACTIVATIONS]
    if unknown:
        raise CircuitError(f"Unknown activation {unknown[0]!r} in {activation!r}; choose one "
                           f"of {sorted(ACTIVATIONS)}, or one per hidden layer joined by '-'.")
    check_layers(sizes, parts[0])
    hidden = len(sizes) - 2
    if len(parts) not in (1, hidden):
        raise CircuitError(f"activation {activation!r} names {len(parts)} activations for "
                           f"the {hidden} hidden layer(s) of sizes {tuple(sizes)}; give one "
                           f"for all, or {hidden} joined by '-'.")
    return parts * hidden if len(parts) == 1 else parts


VALUE_EQS = """
dmu/dt = (-eps + feedback) / tau : 1
eps : 1       # own prediction error (stays 0 in the top layer)
feedback : 1  # error from the layer below through θᵀ or θ̃ (0 in the bottom layer)
prior : 1     # top-down prediction f(θ µ_above), where a trial starts
"""
#: with fixed_predictions, hidden layers keep the feed-forward µ for the weight updates
FIXED_VALUE_EQS = "mu0 : 1     # µ at the end of settle (the feed-forward sweep)\n"


def error_equations(f: str, fprime: str, fixed: bool, psi_on_prediction: bool,
                    bias: bool, learning_fprime: str | None) -> str:
    """The equations of one error population. ``f``/``fprime``: Brian2
    expressions of ``x``; ``learning_fprime``: a separate f' for what the weight
    updates read (``delta``), or None (they read ``gated``)."""
    x = "pred0" if fixed else "pred"  # θ µ_above, live or fixed at the end of settle

    def of_x(code):
        return word_substitute(code, {"x": x})
    lines = [f"eps = value - {'predicted' if psi_on_prediction else 'prediction'} : 1",
             f"prediction = {of_x(f)}{' + bias' if bias else ''} : 1",
             f"gated = eps * ({of_x(fprime)}) : 1   # ε ⊙ f'(θ µ), what is sent up",
             "pred : 1      # θ µ_above",
             "value : 1     # µ (one-to-one) or ψ µ"]
    if learning_fprime is not None:
        lines.append(f"delta = eps * ({of_x(learning_fprime)}) : 1   # what θ, θ̃ learn from")
    if fixed:
        lines.append("pred0 : 1     # θ µ_above at the end of settle: the fixed prediction")
    if bias:
        lines.append("bias : 1      # b, from the biases projection")
    if psi_on_prediction:
        lines.append("predicted : 1 # ψ (f(θ µ_above) + b)")
    return "\n".join(lines) + "\n"


def _positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value < float("inf"):
        raise CircuitError(f"{name}={value!r} must be a finite number > 0"
                           + (" (or None: no clipping)." if allow_none else "."))
    return float(value)


def relaxed_predictive_coding(
    sizes=(784, 300, 100, 10),
    activation: str = "relu",
    learned_feedback: bool = False,
    no_fprime: bool = False,
    learned_errors: bool = False,
    fixed_random_feedback: bool = False,
    fully_relaxed: bool = False,
    psi_on_prediction: bool = False,
    fixed_predictions: bool = False,
    biases: bool = False,
    no_fprime_inference_only: bool = False,
    inference_rate: float = 0.1,
    learning_rate: float = 5e-4,
    weight_std: float | None = 0.05 ** 0.5,
    error_weight_std: float = 0.05,
    output_activation: str | None = None,
    weight_gain: float = 1.0,
    update_clip: float | None = None,
    error_weight_init: str = "abs_normal",
    error_weight_decay: float = 0.0,
) -> Circuit:
    """Predictive-coding circuit; every relaxation is a switch.

    ``fully_relaxed`` turns on ``learned_feedback``, ``no_fprime`` and
    ``learned_errors``. ``fixed_random_feedback`` is the feedback-alignment
    baseline (θ̃ random, never learned). ``inference_rate`` is dt/tau.
    Weights start from N(0, weight_std²) (the paper: variance 0.05), or
    uniform in ±1/√fan_in with ``weight_std=None``.

    The authors' formulation (module doc): ``psi_on_prediction``,
    ``fixed_predictions``, ``biases``, ``no_fprime_inference_only``;
    ``output_activation`` (default: ``activation``) is the f of the prediction
    of the bottom (output) layer; the θ and θ̃ increments are
    ``lr * weight_gain * Δ``, the ψ and bias increments ``lr * Δ``, each
    change (a batch's total) bounded to ±lr·update_clip (the projections'
    ``learning_bound``; no bound with ``update_clip=None``).

    Attempts to make the printed learned ψ (eq. 7, ψ on the value) stable:
    ``error_weight_init="identity"`` starts ψ at standard PC's identity instead
    of |N(0, error_weight_std²)|, and ``error_weight_decay`` λ > 0 adds a decay
    to the identity to its rule, ψ ← ψ − lr (ε µᵀ + λ (ψ − I)), which bounds how
    far learning can move ψ's spectrum from 1 (the identity is a synaptic
    variable ``w_rest``, so the rule stays local to each synapse).
    """
    check_layers(sizes, activation)
    out_activation = activation if output_activation is None else output_activation
    if out_activation not in ACTIVATIONS:
        raise CircuitError(f"Unknown output_activation {output_activation!r}; choose one of "
                           f"{sorted(ACTIVATIONS)} (or None: the same as activation).")
    if learned_feedback and fixed_random_feedback:
        raise CircuitError("learned_feedback and fixed_random_feedback exclude each other: "
                           "θ̃ is either learned (eq. 4) or fixed (feedback alignment).")
    if fully_relaxed:
        learned_feedback = no_fprime = learned_errors = True
    if psi_on_prediction and not learned_errors:
        raise CircuitError("psi_on_prediction says where the learned ψ multiplies; without "
                           "learned_errors (or fully_relaxed) ψ is the identity and it would "
                           "change nothing: add learned_errors, or leave psi_on_prediction out.")
    if no_fprime_inference_only and not no_fprime:
        raise CircuitError("no_fprime_inference_only says which f' no_fprime drops; without "
                           "no_fprime (or fully_relaxed) it would change nothing: add "
                           "no_fprime, or leave no_fprime_inference_only out.")
    if not 0 < inference_rate <= 1:
        raise CircuitError(f"inference_rate={inference_rate} must lie in (0, 1] (it is dt/tau).")
    weight_gain = _positive("weight_gain", weight_gain)
    update_clip = _positive("update_clip", update_clip, allow_none=True)
    if error_weight_init not in ("abs_normal", "identity"):
        raise CircuitError(f"error_weight_init={error_weight_init!r}: choose 'abs_normal' "
                           "(the paper's |N(0, error_weight_std²)|) or 'identity'.")
    if isinstance(error_weight_decay, bool) or not isinstance(error_weight_decay, (int, float)) \
            or not 0 <= error_weight_decay < float("inf"):
        raise CircuitError(f"error_weight_decay={error_weight_decay!r} must be a finite "
                           "number >= 0 (0: no decay).")
    if (error_weight_init != "abs_normal" or error_weight_decay) and \
            (not learned_errors or psi_on_prediction):
        raise CircuitError("error_weight_init and error_weight_decay shape the learned ψ of "
                           "eq. 7 (ψ on the value): they need learned_errors (or "
                           "fully_relaxed) without psi_on_prediction.")
    dt = 1 * ms
    namespace = {"tau": dt / inference_rate, "lr": learning_rate}
    # theirs: lr * clamp(Δ summed over the batch, ±update_clip), a bound on the change
    bound = None if update_clip is None else learning_rate * update_clip
    circuit = Circuit(
        "relaxed_predictive_coding", dt=dt, namespace=namespace,
        description=f"{'-'.join(map(str, sizes))} {activation} PC, " + (", ".join(
            name for name, on in (("learned feedback", learned_feedback),
                                  ("no f'", no_fprime), ("learned ψ", learned_errors),
                                  ("fixed random feedback", fixed_random_feedback),
                                  ("ψ on the prediction", psi_on_prediction),
                                  ("fixed predictions", fixed_predictions),
                                  ("biases", biases),
                                  ("f' kept in the weight updates", no_fprime_inference_only))
            if on) or "standard"),
    )

    def increment(var, sign, expr, gain=1.0):
        """``var ±= lr * gain * expr`` (``lr * expr`` for a gain of 1)."""
        return f"{var} {'+=' if sign > 0 else '-='} lr * " + \
            (expr if gain == 1 else f"{gain!r} * {expr}")

    top = len(sizes) - 1
    weights = fan_in_uniform if weight_std is None else normal(weight_std)
    layer_sizes = list(reversed(sizes))  # layer 0 = bottom
    for l, n in enumerate(layer_sizes):
        init = None
        if l < top:
            init = "mu = prior\nmu0 = mu" if fixed_predictions and l > 0 else "mu = prior"
        eqs = VALUE_EQS + (FIXED_VALUE_EQS if fixed_predictions and 0 < l < top else "")
        circuit.add(Population(f"value{l}", n, eqs, init=init))
        if l < top:
            f, fprime = ACTIVATIONS[out_activation if l == 0 else activation]
            circuit.add(Population(
                f"error{l}", n,
                error_equations(f, "1" if no_fprime else fprime, fixed_predictions,
                                psi_on_prediction and l > 0, biases,
                                fprime if no_fprime_inference_only else None),
                init="pred0 = pred" if fixed_predictions else None))
    signal = "delta" if no_fprime_inference_only else "gated"  # what θ and θ̃ learn from
    separate_feedback = learned_feedback or fixed_random_feedback
    for l in range(top):
        # the µ of the layer above in the weight updates: its feed-forward value with
        # fixed predictions (the input layer is clamped, so µ is that value)
        mu_above = "mu0" if fixed_predictions and l + 1 < top else "mu"
        forward = "w : 1\npred_post = w * mu_pre : 1 (summed)"
        if not separate_feedback:
            forward += "\nfeedback_pre = w * gated_post : 1 (summed)"
        circuit.add(Projection(f"weights{l + 1}", f"value{l + 1}", f"error{l}", forward,
                               init={"w": weights}, learning_bound=bound,
                               learning_rule=increment("w", +1, f"{signal}_post * {mu_above}_pre",
                                                       weight_gain)))  # eq. (3)
        if separate_feedback:
            circuit.add(Projection(
                f"feedback_weights{l + 1}", f"error{l}", f"value{l + 1}",
                "w : 1\nfeedback_post = w * gated_pre : 1 (summed)",
                init={"w": weights}, learning_bound=bound if learned_feedback else None,
                feedback_of=f"weights{l + 1}",
                learning_rule=increment("w", +1, f"{mu_above}_post * {signal}_pre", weight_gain)
                if learned_feedback else None))  # (4)
        one_to_one = Projection(f"values{l}" if psi_on_prediction and l > 0 else
                                f"error_weights{l}", f"value{l}", f"error{l}",
                                "value_post = mu_pre : 1 (summed)", connect="one_to_one")
        if learned_errors and l > 0 and psi_on_prediction:  # the authors' ψ, on f(θµ) + b
            circuit.add(one_to_one)
            circuit.add(Projection(
                f"error_weights{l}", f"error{l}", f"error{l}",
                "w : 1\npredicted_post = w * prediction_pre : 1 (summed)",
                init={"w": abs_normal(error_weight_std)}, learning_bound=bound,
                learning_rule=increment("w", -1, "eps_post * prediction_pre")))  # their sign
        elif learned_errors and l > 0:  # the output (bottom) layer's ψ stays the identity
            psi = "w : 1\nvalue_post = w * mu_pre : 1 (summed)"
            init = {"w": identity if error_weight_init == "identity"
                    else abs_normal(error_weight_std)}
            change = "eps_post * mu_pre"                               # eq. (8), descending F
            if error_weight_decay:
                psi += "\nw_rest : 1  # the identity, where the decay pulls ψ"
                init["w_rest"] = identity
                change = f"({change} + {float(error_weight_decay)!r} * (w - w_rest))"
            circuit.add(Projection(f"error_weights{l}", f"value{l}", f"error{l}", psi,
                                   init=init, learning_bound=bound,
                                   learning_rule=increment("w", -1, change)))
        else:
            circuit.add(one_to_one)
        if biases:
            circuit.add(Projection(f"biases{l}", f"error{l}", f"error{l}",
                                   "b : 1\nbias_post = b : 1 (summed)", connect="one_to_one",
                                   learning_bound=bound,
                                   learning_rule=increment("b", +1, "eps_post")))
        circuit.add(Projection(f"errors{l}", f"error{l}", f"value{l}",
                               "eps_post = eps_pre : 1 (summed)\n"
                               "prior_post = prediction_pre : 1 (summed)",
                               connect="one_to_one"))
    circuit.set_io(input=(f"value{top}", "mu"), output=("value0", "mu"))
    return circuit


def authors_predictive_coding(sizes=AUTHORS["sizes"], activation: str = AUTHORS["activation"],
                              **switches) -> Circuit:
    """The authors' formulation and protocol (:data:`AUTHORS`) with the relaxations
    ``switches`` (:data:`SWITCHES`): learned ψ goes on the prediction and
    ``no_fprime`` drops f' from the value update only, as in their code. A
    protocol value of :data:`AUTHORS` may be overridden by name (e.g.
    ``inference_rate=0.1``). Train it with :data:`AUTHORS_TRAINING`."""
    known = set(SWITCHES) | set(AUTHORS) - {"sizes", "activation"}
    unknown = sorted(set(switches) - known)
    if unknown:
        raise CircuitError(f"authors_predictive_coding: {unknown[0]!r} is neither a switch "
                           f"({sorted(SWITCHES)}) nor a protocol value of AUTHORS "
                           f"({sorted(set(AUTHORS) - {'sizes', 'activation'})}).")
    relaxed = switches.get("fully_relaxed", False)
    kw = {k: v for k, v in AUTHORS.items() if k not in ("sizes", "activation")}
    kw["psi_on_prediction"] = relaxed or switches.get("learned_errors", False)
    kw["no_fprime_inference_only"] = relaxed or switches.get("no_fprime", False)
    kw.update(switches)
    return relaxed_predictive_coding(sizes, activation, **kw)


def _authors_signature() -> inspect.Signature:
    """The keywords authors_predictive_coding takes, as its signature (what
    ``inspect.signature`` and the command line read): the switches, then the
    protocol values of :data:`AUTHORS` with their defaults."""
    P = inspect.Parameter
    params = [P(k, P.POSITIONAL_OR_KEYWORD, default=AUTHORS[k]) for k in ("sizes", "activation")]
    params += [P(k, P.KEYWORD_ONLY, default=False) for k in SWITCHES if k not in AUTHORS]
    params += [P(k, P.KEYWORD_ONLY, default=v) for k, v in AUTHORS.items()
               if k not in ("sizes", "activation")]
    return inspect.Signature(params, return_annotation=Circuit)


authors_predictive_coding.__signature__ = _authors_signature()

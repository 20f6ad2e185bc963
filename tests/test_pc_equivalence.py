"""The Brian2 target against an independent numpy integration of eqs 1-4, 7, 8.

Tolerance: both sides compute the same Euler steps in float64; only the order
of floating-point sums differs, so trajectories and weights must agree to
1e-9 (absolute) after 20 inference steps and 3 training trials.
"""
import numpy as np
import pytest

import pc_reference as ref
from neurosim.circuits.predictive_coding import VARIANTS, relaxed_predictive_coding
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.target import predict, train_trial

SIZES = (6, 5, 4, 3)   # top (input) first
SEED = 6               # a seed whose small relu networks have no dead layer
ATOL = 1e-9
STEPS = 20
RATE, LR = 0.1, 0.05   # a large learning rate makes update errors visible

#: the circuit's variants, and one combination of two switches
SWITCHES = {**VARIANTS, "feedback+errors": {"learned_feedback": True, "learned_errors": True}}


def reference_params(weights, top):
    theta = {l: weights[f"weights{l}"]["w"].copy() for l in range(1, top + 1)}
    fb = {l: weights[f"feedback_weights{l}"]["w"].copy() for l in range(1, top + 1)
          if f"feedback_weights{l}" in weights}
    psi = {l: weights[f"error_weights{l}"]["w"].copy() for l in range(1, top)
           if weights.get(f"error_weights{l}")}
    return theta, fb, psi


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_brian2_matches_numpy_reference(switch, activation):
    kw = dict(SWITCHES[switch])
    circuit = relaxed_predictive_coding(SIZES, activation, inference_rate=RATE,
                                        learning_rate=LR, **kw)
    target = Brian2Target(circuit, seed=SEED)
    top = len(SIZES) - 1
    theta, fb, psi = reference_params(target.get_weights(), top)
    if kw.get("fully_relaxed") or kw.get("learned_errors"):
        assert psi, "learned error weights must be present"
    no_fprime = kw.get("no_fprime") or kw.get("fully_relaxed", False)
    learn_fb = kw.get("learned_feedback") or kw.get("fully_relaxed", False)
    rng = np.random.default_rng(7)
    record = [(f"value{l}", "mu") for l in range(top + 1)] + \
             [(f"error{l}", "eps") for l in range(top)]
    for trial in range(3):
        x = 2 * rng.random(SIZES[0])
        y = np.full(SIZES[-1], 0.1)
        y[trial % SIZES[-1]] = 1.0
        traj = train_trial(target, x, y, STEPS, record=record)
        ref_mu, ref_eps, _ = ref.train_trial(x, y, theta, fb, psi, activation, STEPS, RATE,
                                             LR, no_fprime=no_fprime, learn_fb=learn_fb)
        for l in range(top + 1):
            want = np.array([m[l] for m in ref_mu])
            np.testing.assert_allclose(traj[(f"value{l}", "mu")], want, atol=ATOL, rtol=0,
                                       err_msg=f"µ_{l}, trial {trial}")
        for l in range(top):
            want = np.array([e[l] for e in ref_eps])
            np.testing.assert_allclose(traj[(f"error{l}", "eps")], want, atol=ATOL, rtol=0,
                                       err_msg=f"ε_{l}, trial {trial}")
        # something actually moved: the hidden values relax away from their start
        moved = max(np.abs(traj[(f"value{l}", "mu")][-1] - traj[(f"value{l}", "mu")][0]).max()
                    for l in range(1, top))
        assert moved > 1e-4
    got = target.get_weights()
    for l in range(1, top + 1):
        np.testing.assert_allclose(got[f"weights{l}"]["w"], theta[l], atol=ATOL, rtol=0)
        if l in fb:
            np.testing.assert_allclose(got[f"feedback_weights{l}"]["w"], fb[l], atol=ATOL, rtol=0)
    for l in psi:
        np.testing.assert_allclose(got[f"error_weights{l}"]["w"], psi[l], atol=ATOL, rtol=0)
    # weights changed (the update is not a no-op), and fixed feedback did not
    initial = circuit.initial_weights(SEED)
    assert not np.allclose(got["weights1"]["w"], initial["weights1"]["w"])
    if kw.get("fixed_random_feedback"):
        np.testing.assert_array_equal(got["feedback_weights1"]["w"],
                                      initial["feedback_weights1"]["w"])
    # test phase: the free output settles on the feedforward prediction
    x = rng.random(SIZES[0])
    np.testing.assert_allclose(predict(target, x), ref.predict(x, theta, activation),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("target_name", ["dense", "brian2-numpy"])
def test_psi_at_the_identity_with_decay_matches_numpy_reference(target_name):
    """The stabilised printed ψ (error_weight_init='identity', error_weight_decay):
    ψ starts at I and its rule decays it back there, on dense and Brian2."""
    from neurosim.hardware_targets import make_target
    decay = 0.5
    circuit = relaxed_predictive_coding(SIZES, "tanh", inference_rate=RATE, learning_rate=LR,
                                        learned_errors=True, error_weight_init="identity",
                                        error_weight_decay=decay)
    target = make_target(target_name, circuit, seed=SEED)
    top = len(SIZES) - 1
    theta, fb, psi = reference_params(target.get_weights(), top)
    for l in psi:
        np.testing.assert_array_equal(psi[l], np.eye(SIZES[::-1][l]))
    rng = np.random.default_rng(7)
    for trial in range(3):
        x, y = 2 * rng.random(SIZES[0]), np.eye(SIZES[-1])[trial % SIZES[-1]]
        traj = train_trial(target, x, y, STEPS, record=[("value1", "mu")])
        ref_mu, _, _ = ref.train_trial(x, y, theta, fb, psi, "tanh", STEPS, RATE, LR,
                                       psi_decay=decay)
        np.testing.assert_allclose(traj[("value1", "mu")], [m[1] for m in ref_mu],
                                   atol=ATOL, rtol=0)
    got = target.get_weights()
    for l in psi:
        np.testing.assert_allclose(got[f"error_weights{l}"]["w"], psi[l], atol=ATOL, rtol=0)
        assert np.abs(psi[l] - np.eye(len(psi[l]))).max() > 1e-4    # ψ learned
    with pytest.raises(Exception, match="error_weight_decay=-1"):
        relaxed_predictive_coding(SIZES, learned_errors=True, error_weight_decay=-1)
    with pytest.raises(Exception, match="need learned_errors"):
        relaxed_predictive_coding(SIZES, error_weight_init="identity")
    with pytest.raises(Exception, match="error_weight_init='eye'"):
        relaxed_predictive_coding(SIZES, learned_errors=True, error_weight_init="eye")


def test_psi_rule_descends_the_energy():
    """ψ ← ψ − η ε µᵀ lowers F = ½Σ‖ε‖² at fixed µ; the printed sign (+) raises it."""
    circuit = relaxed_predictive_coding(SIZES, "tanh", learned_errors=True, learning_rate=0.01)
    target = Brian2Target(circuit, seed=SEED)
    x, y = np.linspace(0, 1, SIZES[0]), np.array([1.0, 0.1, 0.1])
    target.clamp(*circuit.input, x)
    target.clamp(*circuit.output, y)
    target.settle()
    target.run(5)
    for pop in circuit.populations:            # freeze µ so only ψ changes
        if pop.startswith("value"):
            target.clamped[pop] = "mu"

    def energy():
        target.run(1)  # refresh the summed inputs from the current state
        return sum(0.5 * np.sum(target.get(f"error{l}", "eps") ** 2) for l in range(3))

    def energy_after_psi_update(sign):
        start = target.get_weights()
        target.learn()
        w = target.get_weights()
        for name in w:                          # keep only the ψ change, with the given sign
            if not name.startswith("error_weights"):
                w[name] = start[name]
            elif w[name]:
                w[name]["w"] = start[name]["w"] + sign * (w[name]["w"] - start[name]["w"])
        target.set_weights(w)
        e = energy()
        target.set_weights(start)
        return e

    before = energy()
    assert energy_after_psi_update(+1) < before < energy_after_psi_update(-1)


@pytest.mark.parametrize("switch", ["standard", "fully_relaxed"])
def test_cython_codegen_matches_numpy_codegen(switch):
    """Same circuit, Brian2's cython code generation against its numpy one (1e-12)."""
    circuit = relaxed_predictive_coding(SIZES, "tanh", inference_rate=RATE, learning_rate=LR,
                                        **SWITCHES[switch])
    record = [("value1", "mu"), ("value2", "mu"), ("error0", "eps")]
    x, y = np.linspace(0, 1, SIZES[0]), np.array([0.1, 1.0, 0.1])
    results = []
    for codegen in ("numpy", "cython"):
        target = Brian2Target(circuit, seed=SEED, codegen=codegen)
        traj = train_trial(target, x, y, STEPS, record=record)
        results.append((traj, target.get_weights()))
    (t_np, w_np), (t_cy, w_cy) = results
    for key in record:
        np.testing.assert_allclose(t_cy[key], t_np[key], atol=1e-12, rtol=0)
    for proj in w_np:
        for var in w_np[proj]:
            np.testing.assert_allclose(w_cy[proj][var], w_np[proj][var], atol=1e-12, rtol=0)

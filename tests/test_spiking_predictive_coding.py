"""Spiking predictive coding (ON/OFF error populations) against the rate circuit.

Both run on the Brian2 target (numpy). Tolerances are counted in spikes: a
value read from spikes is count / (gain · window), so one spike in the
counting window is QUANTUM = 1 / (400 Hz · 200 ms) = 0.0125. The neurons are
deterministic integrate-and-fire neurons with reset by subtraction, so a count
differs from gain · ∫[drive]₊ dt by less than one spike; the soma u of a value
neuron moves by ±1/(gain · tau) = 0.05 per error spike and its time average
over the window (4 time constants) lies within about one more spike's worth of
its fixed point. Hence 2 spikes for a value and 3 for an error (ON − OFF: two
counts). A Poisson rate code would need ≈ 1/sqrt(rate · T) = 0.11 at µ = 1;
the measured deviations are below one spike (benchmarks/spiking_pc_vs_rate.py).
"""
import numpy as np
import pytest

from neurosim.circuit import CircuitError
from neurosim.circuits import CIRCUITS
from neurosim.circuits.spiking_predictive_coding import (rate_counterpart, rate_weights,
                                                         reset_counts, spiking_predictive_coding,
                                                         spiking_trial)
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.target import train_trial

GAIN_WINDOW = 400 * 0.2               # gain (Hz) · window (s) of the default circuit
QUANTUM = 1 / GAIN_WINDOW             # one spike in the counting window
SIZES = (3, 3, 2)                     # input (top) first


def pair(**options):
    """A spiking circuit and its rate counterpart with the same θ."""
    spiking = Brian2Target(spiking_predictive_coding(SIZES, **options))
    rate = Brian2Target(rate_counterpart(spiking.circuit),
                        weights=rate_weights(spiking.get_weights()))
    return spiking, rate


@pytest.mark.parametrize("weight_seed", [0, 3])
def test_rate_averages_reach_the_rate_fixed_point(weight_seed):
    s, r = pair(weight_seed=weight_seed)
    rng = np.random.default_rng(weight_seed)
    x, y = rng.uniform(0.3, 1.0, 3), rng.uniform(0.3, 1.0, 2)
    r.clamp(*r.circuit.input, x)
    r.clamp(*r.circuit.output, y)
    r.settle()                         # µ₁ = θ₂x, the rate circuit's start
    s.set("value1", "u", r.get("value1", "mu"))
    r.run(1000)                        # 20 time constants: the fixed point (to 1e-8)
    fixed_mu = r.get("value1", "mu")
    np.testing.assert_allclose(r.run(1, record=[("value1", "mu")])[("value1", "mu")][0],
                               fixed_mu, atol=1e-8)
    assert np.all(fixed_mu > 0.2), "the task keeps µ positive (a rate cannot be negative)"
    averages, _ = spiking_trial(s, x, y, settle_steps=3000)   # 6 time constants
    np.testing.assert_allclose(averages["value1"], fixed_mu, atol=2 * QUANTUM, rtol=0)
    for l in (0, 1):
        np.testing.assert_allclose(averages[f"error{l}"], r.get(f"error{l}", "eps"),
                                   atol=3 * QUANTUM, rtol=0)
    # the held ends fire at their values, and the held values did not move
    np.testing.assert_allclose(averages["value2"], x, atol=QUANTUM, rtol=0)
    np.testing.assert_allclose(s.get("value0", "u"), y)


def test_on_and_off_split_the_sign_of_the_error():
    """ε = y − θx = (+0.3, −0.3): ON fires only for the positive error, OFF only
    for the negative one, each at gain·|ε|. Near ε = 0 both fire (the balanced
    current fluctuates around 0), and ON − OFF still equals ε."""
    theta = {1: 0.5 * np.eye(2)}
    s = Brian2Target(spiking_predictive_coding((2, 2), theta=theta))
    x = np.ones(2)
    for eps in (0.3, 0.05):
        y = 0.5 + np.array([eps, -eps])
        a, _ = spiking_trial(s, x, y, settle_steps=200)
        np.testing.assert_allclose(a["error0"], [eps, -eps], atol=3 * QUANTUM, rtol=0)
        if eps == 0.3:
            assert a["error_on0"][1] == 0 and a["error_off0"][0] == 0
            np.testing.assert_allclose([a["error_on0"][0], a["error_off0"][1]], eps,
                                       atol=QUANTUM, rtol=0)
        else:
            assert a["error_on0"][1] > 0 and a["error_off0"][0] > 0
        # each error neuron counted its partner's spikes (what the learning rule reads)
        np.testing.assert_array_equal(s.get("error_on0", "partner"), s.get("error_off0", "count"))
        np.testing.assert_array_equal(s.get("error_off0", "partner"), s.get("error_on0", "count"))
    reset_counts(s)
    assert not s.get("error_on0", "partner").any() and not s.get("value1", "count").any()


def test_learning_lowers_the_prediction_error_like_the_rate_circuit():
    s, r = pair(learning_rate=0.1)
    rng = np.random.default_rng(1)
    teacher = np.abs(rng.normal(0, 0.5, (2, 3)))
    xs = rng.uniform(0.2, 1.0, (4, 3))
    f_spiking, f_rate = [], []
    for k in range(8):
        x, y = xs[k % 4], teacher @ xs[k % 4]
        a, _ = spiking_trial(s, x, y, learn=True)
        f_spiking.append(sum(0.5 * np.sum(a[f"error{l}"] ** 2) for l in (0, 1)))
        trace = train_trial(r, x, y, 350, record=[("error0", "eps"), ("error1", "eps")])
        f_rate.append(sum(0.5 * np.sum(trace[(f"error{l}", "eps")][-1] ** 2) for l in (0, 1)))
    # measured over these 8 trials: 0.044 -> 0.014 (spiking), 0.045 -> 0.013 (rate)
    assert np.mean(f_spiking[-4:]) < 0.5 * np.mean(f_spiking[:4])
    assert np.mean(f_rate[-4:]) < 0.5 * np.mean(f_rate[:4])
    weights = s.get_weights()
    for l in (1, 2):                   # both copies of θ got the same updates
        np.testing.assert_allclose(weights[f"weights{l}_on"]["w"],
                                   weights[f"weights{l}_off"]["w"], atol=1e-12, rtol=0)
        # and they follow the rate circuit's θ: the updates differ by the
        # count quantisation of ε and µ (≈ lr · 3 QUANTUM per trial, partly cancelling)
        np.testing.assert_allclose(weights[f"weights{l}_on"]["w"],
                                   r.get_weights()[f"weights{l}"]["w"], atol=0.01, rtol=0)
    assert not np.allclose(weights["weights1_on"]["w"],
                           s.circuit.projection("weights1_on").init["w"])


def test_declaration():
    assert CIRCUITS["spiking-pc"] is spiking_predictive_coding
    with pytest.raises(CircuitError, match="linear"):
        spiking_predictive_coding(SIZES, "relu")
    with pytest.raises(CircuitError, match="shape"):
        spiking_predictive_coding(SIZES, theta={1: np.ones((2, 2)), 2: np.ones((3, 3))})
    # every neuron is a thresholded spiking population; only spikes cross populations
    c = spiking_predictive_coding(SIZES)
    assert all(p.threshold for p in c.populations.values())
    assert not any(proj.summed for proj in c.projections.values())


@pytest.mark.slow
def test_compiled_cpp_target_gives_the_same_spikes():
    """brian2-cpp (compiled C++, about 4 minutes of compiling on 2 cores) runs the
    same declaration: the same float64 Euler steps, so the same spike counts and,
    after two learning trials, the same θ (to rounding, 1e-12). Measured: identical
    counts, θ equal to 3e-18."""
    from neurosim.hardware_targets import make_target
    x, y = np.array([0.8, 0.5, 0.9]), np.array([0.5, 0.7])
    results = []
    for name in ("brian2-numpy", "brian2-cpp"):
        target = make_target(name, spiking_predictive_coding(SIZES))
        for _ in range(2):
            averages, _ = spiking_trial(target, x, y, learn=True)
        results.append((averages, target.get_weights()))
    (a_numpy, w_numpy), (a_cpp, w_cpp) = results
    for key in a_numpy:
        np.testing.assert_array_equal(a_cpp[key], a_numpy[key], err_msg=key)
    for name in w_numpy:
        for var in w_numpy[name]:
            np.testing.assert_allclose(w_cpp[name][var], w_numpy[name][var], atol=1e-12, rtol=0)

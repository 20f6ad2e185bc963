"""The compiled backend of the dense engine (``backend='jax'``) against numpy.

``tests/test_dense.py`` runs every one of its tests on both backends (against
Brian2, with its tolerances). This file checks what only the compiled backend
has: the whole training trial compiled as one program (settle, inference,
learning rule, optimiser), on the library's rate circuits, in float64 and
float32, and its own random stream (deterministic, resumable, fresh at every
trial).

Tolerances: float64, 1e-10 absolute after 3 batched trials with Adam (XLA sums
in another order than numpy: about 1e-16 per operation; Adam rescales the
smallest increments, so weights are compared only where they moved). float32
with plain SGD, 2e-5.
"""
import numpy as np
import pytest

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.circuits import (authors_predictive_coding, backprop_network, brainprop,
                               node_perturbation, relaxed_predictive_coding)
from neurosim.hardware_targets import make_target
from neurosim.optim import Adam
from neurosim.target import predict, train_trial

SIZES = (12, 9, 7, 4)
B = 8

DETERMINISTIC = {
    "relaxed-pc relu": lambda: relaxed_predictive_coding(SIZES, "relu", learning_rate=0.05),
    "relaxed-pc tanh fully relaxed": lambda: relaxed_predictive_coding(
        SIZES, "tanh", fully_relaxed=True, learning_rate=0.05),
    "authors-pc (biases, fixed predictions)": lambda: authors_predictive_coding(SIZES, "tanh"),
    "backprop softmax (a per-synapse summed variable)": lambda: backprop_network(
        SIZES, "relu", output_activation="softmax"),
    "feedback alignment": lambda: backprop_network(SIZES, "tanh", feedback_alignment=True),
}


def data(seed=0, batch=B, n_in=SIZES[0], n_out=SIZES[-1]):
    rng = np.random.default_rng(seed)
    y = np.full((batch, n_out), 0.1)
    y[np.arange(batch), rng.integers(0, n_out, batch)] = 1.0
    return rng.random((batch, n_in)), y


def train(circuit, backend, trials=3, dtype=np.float64, optimizer=True, steps=15):
    target = make_target("dense", circuit, seed=2, backend=backend, dtype=dtype,
                         optimizer=Adam(1e-2) if optimizer else None, batch_mean=True)
    for k in range(trials):
        assert train_trial(target, *data(k), steps) == {}
    return target


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_compiled_trial_matches_numpy(name):
    circuit = DETERMINISTIC[name]()
    numpy_t, jax_t = train(circuit, "numpy"), train(circuit, "jax")
    assert jax_t._trials, "the trial ran as one compiled program"
    initial = circuit.initial_weights(2)
    moved = 0
    for proj, params in numpy_t.get_weights().items():
        for var, want in params.items():
            got = jax_t.get_weights()[proj][var]
            np.testing.assert_allclose(got, want, atol=1e-10, rtol=0, err_msg=f"{proj}.{var}")
            moved = max(moved, np.abs(want - initial[proj][var]).max())
    assert moved > 1e-3, "training must change the weights (the comparison is not trivial)"
    x, _ = data(9)
    np.testing.assert_allclose(predict(jax_t, x), predict(numpy_t, x), atol=1e-10, rtol=0)
    for pop in circuit.populations.values():   # the state after the trial program
        for var in pop.variables:
            np.testing.assert_allclose(jax_t.get(pop.name, var), numpy_t.get(pop.name, var),
                                       atol=1e-10, rtol=0, err_msg=f"{pop.name}.{var}")
    moments = numpy_t.optimizer.state()
    for key, value in jax_t.optimizer.state().items():  # Adam's moments and step count
        np.testing.assert_allclose(value, moments[key], atol=1e-10, rtol=0, err_msg=key)


def test_float32_with_sgd_matches_numpy():
    circuit = relaxed_predictive_coding(SIZES, "tanh", learning_rate=0.05)
    numpy_t, jax_t = (train(circuit, b, dtype=np.float32, optimizer=False)
                      for b in ("numpy", "jax"))
    for proj, params in numpy_t.get_weights().items():
        for var, want in params.items():
            assert jax_t.weights[proj][var].dtype == np.float32
            np.testing.assert_allclose(jax_t.get_weights()[proj][var], want, atol=2e-5, rtol=0)


def test_the_trial_program_equals_its_steps_run_one_by_one():
    """With a record, the trial runs as separate programs (settle, run, learn):
    the same numbers, and the same draws (one key per step loop either way)."""
    circuit = node_perturbation((12, 9, 4), biases=True)
    whole = train(circuit, "jax", trials=4)
    steps = make_target("dense", circuit, seed=2, backend="jax", optimizer=Adam(1e-2),
                        batch_mean=True)
    for k in range(4):
        trace = train_trial(steps, *data(k, n_out=4), 15, record=[("layer0", "h")])
        assert trace[("layer0", "h")].shape == (15, B, 4)
    assert not steps._trials
    for proj, params in whole.get_weights().items():
        for var, value in params.items():
            np.testing.assert_allclose(steps.get_weights()[proj][var], value, atol=1e-12,
                                       rtol=0, err_msg=f"{proj}.{var}")


def accumulator():
    """A circuit whose learning rule sums its init draws: w += u."""
    c = Circuit("draws")
    c.add(Population("src", 5, "u : 1", init="u = rand()"))
    c.add(Population("dst", 1, "y : 1"))
    c.add(Projection("acc", "src", "dst", "w : 1", init={"w": constant(0.0)},
                     learning_rule="w += u_pre * (1 + 0 * y_post)"))
    c.set_io(input=("dst", "y"), output=("dst", "y"), readout=("dst", "y"))
    return c


def test_draws_are_fresh_every_trial_deterministic_and_resumable():
    c = accumulator()

    def run(target, trials, start=0):
        for k in range(start, start + trials):
            target.trial(np.zeros((4, 1)), np.zeros((4, 1)), 2)
        return target.get_weights()["acc"]["w"]

    a = make_target("dense", c, seed=3, backend="jax")
    w = run(a, 200)                           # 200 trials x a batch of 4 uniform draws
    n = 800
    assert abs(w.mean() / n - 0.5) < 5 * np.sqrt(1 / 12 / n / w.size)
    assert abs((w / n).std() - np.sqrt(1 / 12 / n)) < 0.5 * np.sqrt(1 / 12 / n)
    np.testing.assert_array_equal(run(make_target("dense", c, seed=3, backend="jax"), 200), w)
    assert not np.allclose(run(make_target("dense", c, seed=4, backend="jax"), 200), w)
    first = make_target("dense", c, seed=3, backend="jax")
    run(first, 150)
    resumed = make_target("dense", c, seed=99, backend="jax",
                          weights={"acc": {"w": first.get_weights()["acc"]["w"]}})
    resumed.load_extra_state(first.extra_state())
    np.testing.assert_array_equal(run(resumed, 50), w)


def test_library_circuits_with_draws_train_deterministically():
    for circuit in (brainprop((12, 9, 4)), node_perturbation((12, 9, 7, 4))):
        runs = [train(circuit, "jax", trials=3).get_weights() for _ in range(2)]
        initial = circuit.initial_weights(2)
        for proj, params in runs[0].items():
            for var, value in params.items():
                np.testing.assert_array_equal(runs[1][proj][var], value)
        assert any(np.abs(v - initial[p][k]).max() > 1e-4 for p, ps in runs[0].items()
                   for k, v in ps.items()), circuit.name


def test_a_namespace_change_recompiles():
    circuit = relaxed_predictive_coding(SIZES, "relu", learning_rate=0.05)
    targets = [make_target("dense", circuit, seed=2, backend=b) for b in ("numpy", "jax")]
    for lr in (0.05, 0.5):
        circuit.namespace["lr"] = lr
        for t in targets:
            train_trial(t, *data(1), 10)
    np.testing.assert_allclose(targets[1].get_weights()["weights1"]["w"],
                               targets[0].get_weights()["weights1"]["w"], atol=1e-12, rtol=0)


def test_bad_options_are_named():
    circuit = relaxed_predictive_coding(SIZES)
    with pytest.raises(CircuitError, match="backend='jax' computes with jax.numpy; leave xp"):
        make_target("dense", circuit, backend="jax", xp=np)
    with pytest.raises(CircuitError, match="backend='cupy'; choose one of numpy, jax"):
        make_target("dense", circuit, backend="cupy")


def test_compiled_trial_on_a_gpu():
    """Where JAX sees an NVIDIA GPU (jax[cuda] installed), the programs run there
    and still match numpy (float64: 1e-10; float32 with SGD: 2e-5)."""
    import jax
    if jax.default_backend() != "gpu":
        pytest.skip(f"JAX runs on {jax.default_backend()} here (no NVIDIA GPU, or jaxlib "
                    "without CUDA); with one, pip install 'jax[cuda12]' and rerun")
    test_compiled_trial_matches_numpy("relaxed-pc relu")
    test_float32_with_sgd_matches_numpy()
    target = train(relaxed_predictive_coding(SIZES), "jax", trials=1)
    assert next(iter(target.weights["weights1"].values())).devices().pop().platform == "gpu"

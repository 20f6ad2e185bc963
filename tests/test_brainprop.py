"""BrainProp (circuits/brainprop.py) against an independent numpy implementation
of the paper's equations written here, on the dense engine (batches) and on
Brian2 (one sample per trial): the same selections, RPEs and weight updates to
1e-10 with the controller greedy (epsilon = 0); with exploration, the
selection frequencies against the Max-Boltzmann probabilities."""
import numpy as np
import pytest

from neurosim.circuit import CircuitError
from neurosim.circuits import brainprop
from neurosim.hardware_targets import make_target
from neurosim.target import predict, train_trial

SIZES = (12, 7, 5, 4)   # input first
LR = 0.3


def forward(W, x):
    """Activities input first (relu hidden, linear output) and pre-activations."""
    hs, pre = [x], []
    for k, w in enumerate(W):
        a = hs[-1] @ w.T
        pre.append(a)
        hs.append(a if k == len(W) - 1 else np.maximum(a, 0))
    return hs, pre


def reference_trial(W, x, y, lr=LR, feedback=None, decay=0.0):
    """One BrainProp trial on a batch (x: (B, n_in), y one-hot), greedy: the most
    active output is selected (ties: the lowest index), δ = r − y_s, φ from the
    selected unit down through Wᵀ (or ``feedback``), Δw = η mean_b δ φ g y (eq.
    15); learned feedback takes the transposed change; then the decay."""
    B = len(x)
    hs, pre = forward(W, x)
    out = hs[-1]
    s = np.argmax(out, axis=1)
    fb = np.eye(out.shape[1])[s]           # φ g at the output (linear: g = 1)
    delta = (y * fb).sum(axis=1) - out[np.arange(B), s]
    new_W, new_F = [w.copy() for w in W], None if feedback is None else [
        None if f is None else f.copy() for f in feedback]
    for k in reversed(range(len(W))):
        change = lr * (delta[:, None] * fb).T @ hs[k] / B
        new_W[k] = (W[k] + change) * (1 - lr * decay)
        if k > 0:
            back = W[k] if feedback is None else feedback[k].T
            if feedback is not None:
                new_F[k] = (feedback[k] + change.T) * (1 - lr * decay)
            fb = (fb @ back) * (pre[k - 1] > 0)
    return new_W, new_F, s, delta


def circuit_weights(target, top, name="weights", var="w"):
    """The circuit's forward (or feedback) matrices, input first."""
    w = target.get_weights()
    return [w[f"{name}{top - k}"][var] if f"{name}{top - k}" in w else None
            for k in range(top)]


def batches(seed, n, B):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.random((B, SIZES[0])), np.eye(SIZES[-1])[rng.integers(SIZES[-1], size=B)]


@pytest.mark.parametrize("target,B", [
    ("dense", 6), ("brian2-numpy", 1),
    pytest.param("brian2-cpp", 1, marks=pytest.mark.slow),     # compiles: minutes
    pytest.param("brian2-cython", 1, marks=pytest.mark.slow)])
def test_brainprop_matches_numpy(target, B):
    """Greedy BrainProp, several trials: selections, δ and every weight as in the
    numpy implementation, with weights large enough that δ, φ and the relu
    gates all vary."""
    c = brainprop(SIZES, epsilon=0.0, learning_rate=LR, weight_std=0.5)
    t = make_target(target, c, seed=3, **({"batch_mean": True} if B > 1 else {}))
    top = len(SIZES) - 1
    W = circuit_weights(t, top)
    selected = set()
    for x, y in batches(1, 4 if B > 1 else 6, B):
        W, _, s, delta = reference_trial(W, x, y)
        train_trial(t, x if B > 1 else x[0], y if B > 1 else y[0], 0)
        chosen = np.atleast_2d(t.get("layer0", "fb"))
        np.testing.assert_array_equal(chosen.argmax(axis=1), s)
        np.testing.assert_array_equal(chosen.sum(axis=1), 1)   # exactly one selected
        np.testing.assert_allclose(np.atleast_2d(t.get("dopamine", "delta"))[:, 0], delta,
                                   atol=1e-10, rtol=0)
        for got, want in zip(circuit_weights(t, top), W):
            np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
        selected |= set(s)
    assert len(selected) > 1 and not np.allclose(W[0], circuit_weights(
        make_target(target, c, seed=3), top)[0])                 # it learned something


def test_learned_feedback_matches_numpy_and_decay_aligns():
    """With separate feedback weights: the same trials as numpy, the feedback
    learning the transposed change, so W − Bᵀ stays what it was without decay and
    shrinks with it (Kolen-Pollack)."""
    top = len(SIZES) - 1
    gaps = {}
    for decay in (0.0, 0.2):
        c = brainprop(SIZES, epsilon=0.0, learning_rate=LR, weight_std=0.5,
                      learned_feedback=True, feedback_decay=decay)
        t = make_target("dense", c, seed=4, batch_mean=True)
        W, F = circuit_weights(t, top), circuit_weights(t, top, "feedback", "b")
        assert F[0] is None and all(f is not None for f in F[1:])
        start = [np.linalg.norm(W[k] - F[k].T) for k in range(1, top)]
        for x, y in batches(2, 5, 8):
            W, F, _, _ = reference_trial(W, x, y, feedback=F, decay=decay)
            train_trial(t, x, y, 0)
        for got, want in zip(circuit_weights(t, top) + circuit_weights(t, top, "feedback", "b"),
                             W + F):
            if want is not None:
                np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
        gaps[decay] = [np.linalg.norm(W[k] - F[k].T) / s for k, s in zip(range(1, top), start)]
    np.testing.assert_allclose(gaps[0.0], 1.0, rtol=1e-10)
    assert max(gaps[0.2]) < 0.9


@pytest.mark.parametrize("epsilon,temperature", [(1.0, 0.5), (0.3, 1.0)])
def test_selection_is_max_boltzmann(epsilon, temperature):
    """A one-layer network whose outputs are set by its weights: over 40,000
    trials (one dense batch) the controller explores with probability epsilon
    and selects with P(s) = (1 − ε)[s = argmax y] + ε softmax(y / T)_s, each
    frequency within 5 standard errors."""
    y = np.array([0.2, 1.0, -0.5, 0.9])
    c = brainprop((2, 4), epsilon=epsilon, temperature=temperature)
    t = make_target("dense", c, seed=7, weights={"weights1": {"w": np.stack([y, 0 * y], 1)}})
    N = 40_000
    x = np.tile([1.0, 0.0], (N, 1))
    t.clamp("layer1", "h", x)
    t.clamp("layer0", "target", np.zeros((N, 4)))
    t.settle()
    np.testing.assert_allclose(t.get("layer0", "h")[0], y)
    chosen = t.get("layer0", "fb")
    assert np.all(chosen.sum(axis=1) == 1)
    soft = np.exp(y / temperature) / np.exp(y / temperature).sum()
    p = epsilon * soft + (1 - epsilon) * (np.arange(4) == y.argmax())
    freq = chosen.mean(axis=0)
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / N)), (freq, p)
    explore = t.get("dopamine", "explore")[:, 0]
    assert abs(explore.mean() - epsilon) < 5 * np.sqrt(epsilon * (1 - epsilon) / N + 1e-12)
    t.settle()                                     # a new trial draws anew
    assert not np.array_equal(t.get("layer0", "fb"), chosen) or epsilon == 0


def test_brian2_explores_like_dense():
    """Brian2 runs the same random controller with its own stream: 150 trials of
    the exploring controller select each output about as often as softmax."""
    trials = 150
    y = np.array([0.0, 1.0, 0.5])
    c = brainprop((2, 3), epsilon=1.0)
    t = make_target("brian2-numpy", c, seed=1,
                    weights={"weights1": {"w": np.stack([y, 0 * y], 1)}})
    t.clamp("layer1", "h", [1.0, 0.0])
    t.clamp("layer0", "target", np.zeros(3))
    counts = np.zeros(3)
    for _ in range(trials):
        t.settle()
        counts += t.get("layer0", "fb")
    p = np.exp(y) / np.exp(y).sum()
    assert counts.sum() == trials
    assert np.all(np.abs(counts / trials - p) < 5 * np.sqrt(p * (1 - p) / trials)), (counts, p)


def test_predict_reads_the_linear_output():
    c = brainprop(SIZES, weight_std=0.5)
    t = make_target("dense", c, seed=0)
    x = np.random.default_rng(0).random(SIZES[0])
    W = circuit_weights(t, len(SIZES) - 1)
    np.testing.assert_allclose(predict(t, x), forward(W, x[None])[0][-1][0], atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    ({"activation": "tanh"}, "relu"),
    ({"epsilon": 1.5}, "epsilon=1.5: give a probability"),
    ({"temperature": 0.0}, "temperature=0.0: give a positive"),
    ({"feedback_decay": 0.1}, "learned_feedback=True"),
    ({"learning_rate": float("nan")}, "learning_rate=nan"),
])
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(CircuitError, match=match):
        brainprop(SIZES, **kwargs)


def test_lava_refuses_the_reduction_by_name():
    """Lava's Dense computes W @ s: the controller's comparison is refused, naming
    the projection and the targets that run BrainProp."""
    with pytest.raises(CircuitError) as err:
        make_target("lava", brainprop(SIZES))
    msg = str(err.value)
    assert "Projection 'selection'" in msg and "dense" in msg and "brian2-numpy" in msg, msg


def test_command_line_protocol_and_training(tmp_path, capsys):
    """``neurosim train --circuit brainprop`` takes the authors' protocol as its
    defaults, trains on dense (well above chance on the digits in 10 epochs),
    and refuses the options of other circuits by name."""
    from neurosim.circuits import BRAINPROP, BRAINPROP_TRAINING
    from neurosim.cli import main, parse
    from neurosim.outdir import read_json
    args = parse(["train", "--circuit", "brainprop"])
    assert args.hidden == BRAINPROP["sizes"][1:-1] and not args.batch_sum
    for key in ("learning_rate", "weight_std", "epsilon", "temperature", "steps",
                "batch_size", "label_off"):
        assert getattr(args, key) == {**BRAINPROP, **BRAINPROP_TRAINING}[key], key
    out = tmp_path / "bp"
    assert main(["train", "--circuit", "brainprop", "--dataset", "digits", "--target", "dense",
                 "--hidden", "64", "--train-size", "1200", "--test-size", "300", "--epochs",
                 "10", "--weight-std", "0.1", "--learning-rate", "0.2", "--batch-size", "16",
                 "--out", str(out), "--no-progress"]) == 0
    assert read_json(out / "metrics.json", "")["final_test_accuracy"] > 0.7
    for circuit, option, message in (
            ("brainprop", ["--fully-relaxed"], "--fully-relaxed applies to relaxed-pc, "
                                               "authors-pc, not to the brainprop circuit"),
            ("relaxed-pc", ["--epsilon", "0.1"], "--epsilon applies to brainprop, not to the "
                                                 "relaxed-pc circuit")):
        capsys.readouterr()
        assert main(["train", "--circuit", circuit, "--dataset", "digits", "--out",
                     str(tmp_path / "x"), *option]) == 2
        assert message in capsys.readouterr().err

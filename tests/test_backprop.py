"""The backprop / feedback-alignment circuit against a hand-written numpy MLP,
on the Brian2 and dense targets (float64: atol 1e-10)."""
import numpy as np
import pytest

from neurosim.circuits.backprop import backprop_network
from neurosim.hardware_targets import make_target
from neurosim.target import predict, train_trial

SIZES = (6, 5, 4, 3)
F = {"relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
     "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2)}


def mlp_step(x, y, W, B, act, lr):
    """Plain backprop (or FA when B is given) on ½‖h0 − y‖²; W[l] maps layer l to l-1."""
    f, df = F[act]
    top = len(W)
    h, a = {top: x}, {}
    for l in range(top - 1, -1, -1):
        a[l] = W[l + 1] @ h[l + 1]
        h[l] = f(a[l])
    delta = {0: (h[0] - y) * df(a[0])}
    for l in range(1, top):
        back = (B[l] if B else W[l].T) @ delta[l - 1]
        delta[l] = back * df(a[l])
    for l in range(1, top + 1):
        W[l] -= lr * np.outer(delta[l - 1], h[l])
    return h[0]


@pytest.mark.parametrize("target_name", ["brian2-numpy", "dense"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("fa", [False, True])
def test_backprop_circuit_is_sgd(target_name, act, fa):
    circuit = backprop_network(SIZES, act, feedback_alignment=fa, learning_rate=0.1,
                               weight_std=0.6)
    target = make_target(target_name, circuit, seed=2)
    w0 = target.get_weights()
    W = {l: w0[f"weights{l}"]["w"].copy() for l in (1, 2, 3)}
    B = {l: w0[f"feedback_weights{l}"]["b"].copy() for l in (1, 2)} if fa else None
    rng = np.random.default_rng(0)
    for trial in range(4):
        x, y = rng.random(SIZES[0]), np.eye(3)[trial % 3]
        train_trial(target, x, y, 0)
        mlp_step(x, y, W, B, act, 0.1)
    got = target.get_weights()
    for l in (1, 2, 3):
        assert not np.allclose(W[l], w0[f"weights{l}"]["w"])       # it learned
        np.testing.assert_allclose(got[f"weights{l}"]["w"], W[l], atol=1e-10, rtol=0)
    if fa:
        np.testing.assert_array_equal(got["feedback_weights1"]["b"], B[1])
    x = rng.random(SIZES[0])
    f = F[act][0]
    want = f(W[1] @ f(W[2] @ f(W[3] @ x)))
    np.testing.assert_allclose(predict(target, x), want, atol=1e-10, rtol=0)

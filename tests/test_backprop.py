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


def softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
@pytest.mark.parametrize("target_name,batch", [("brian2-numpy", 1), ("dense", 5)])
def test_softmax_output_is_sgd_on_the_cross_entropy(target_name, batch):
    """output_activation='softmax': δ = softmax(a) − y at the output (the gradient of
    the cross-entropy), the same chain above it, against numpy; batch means on
    dense. The softmax, a reduction over the output layer, stays finite where
    exp(a) overflows (h = 1 at the largest input, 0 elsewhere)."""
    circuit = backprop_network(SIZES, "tanh", learning_rate=0.2, weight_std=0.6,
                               output_activation="softmax")
    target = make_target(target_name, circuit, seed=2,
                         **({"batch_mean": True} if batch > 1 else {}))
    w0 = target.get_weights()
    W = {l: w0[f"weights{l}"]["w"].copy() for l in (1, 2, 3)}
    rng = np.random.default_rng(1)
    f, df = F["tanh"]
    for trial in range(3):
        x, y = rng.random((batch, SIZES[0])), np.eye(3)[rng.integers(3, size=batch)]
        train_trial(target, x if batch > 1 else x[0], y if batch > 1 else y[0], 0)
        h2 = f(x @ W[3].T)
        h1 = f(h2 @ W[2].T)
        p = softmax(h1 @ W[1].T)
        d0 = p - y
        d1 = (d0 @ W[1]) * df(h2 @ W[2].T)
        d2 = (d1 @ W[2]) * df(x @ W[3].T)
        np.testing.assert_allclose(np.atleast_2d(target.get("layer0", "h")), p, atol=1e-12)
        for l, d, h in ((1, d0, h1), (2, d1, h2), (3, d2, x)):
            W[l] = W[l] - 0.2 * d.T @ h / batch
    got = target.get_weights()
    for l in (1, 2, 3):
        assert not np.allclose(W[l], w0[f"weights{l}"]["w"])
        np.testing.assert_allclose(got[f"weights{l}"]["w"], W[l], atol=1e-10, rtol=0)
    huge = {**got, "weights1": {"w": got["weights1"]["w"] * 1e5}}
    target.set_weights(huge)
    out = np.atleast_2d(predict(target, rng.random((batch, SIZES[0])) if batch > 1
                                else rng.random(SIZES[0])))
    assert np.isfinite(out).all() and np.allclose(out.sum(-1), 1) and set(np.unique(out)) <= {0, 1}
    target.close()


def test_softmax_is_refused_where_it_is_not_an_output():
    from neurosim.circuit import CircuitError
    from neurosim.circuits import relaxed_predictive_coding
    with pytest.raises(CircuitError, match="'softmax' .* taken by backprop and "
                                           "feedback-alignment as their output_activation"):
        relaxed_predictive_coding(SIZES, "softmax")
    with pytest.raises(CircuitError, match="lava target cannot run Projection 'softmax'"):
        make_target("lava", backprop_network(SIZES, "tanh", output_activation="softmax"))

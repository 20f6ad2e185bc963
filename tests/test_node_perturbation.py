"""Node perturbation (circuits/node_perturbation.py) against an independent
numpy implementation of Lansdell et al.'s equations written here: the same
weight, bias and feedback updates to 1e-10 given the noise each target drew
(dense with a batch, Brian2 one sample at a time), for the three feedback
modes; and what the method is for: λ estimates the true gradient, and B
fitted to it with W held fixed aligns with W."""
import numpy as np
import pytest

from neurosim.circuit import CircuitError
from neurosim.circuits import node_perturbation
from neurosim.hardware_targets import make_target
from neurosim.target import train_trial

SIZES = (9, 6, 5, 3)  # input first
K = len(SIZES) - 1
LR, LR_B, NOISE = 0.2, 0.1, 0.1


def sig(x):
    return 1 / (1 + np.exp(-x))


def params(target):
    """Forward weights, biases and feedback matrices, input first (None: none)."""
    w = target.get_weights()
    W = [w[f"weights{K - j}"]["w"] for j in range(K)]
    bias = [w[f"biases{K - j - 1}"]["b"] for j in range(K)]
    B = [w[f"feedback{K - j}"]["b"] if f"feedback{K - j}" in w else None for j in range(K)]
    return W, bias, B


def reference(W, bias, B, x, y, xin, feedback, lr=LR, lr_b=LR_B, c=NOISE):
    """One trial on a batch: clean and perturbed passes (sigmoid hidden layers,
    linear output; xin[j] the noise of hidden layer j), λ = ξ (L̃ − L) / c², the
    errors carried by B (or Wᵀ), and the batch-mean updates."""
    n = len(x)
    hs, hns, pre = [x], [x], []
    for j, w in enumerate(W):
        a, an = hs[-1] @ w.T + bias[j], hns[-1] @ w.T + bias[j]
        pre.append(a)
        last = j == K - 1
        hs.append(a if last else sig(a))
        hns.append(an if last else sig(an) + xin[j + 1])
    dL = 0.5 * ((hns[-1] - y) ** 2).sum(1) - 0.5 * ((hs[-1] - y) ** 2).sum(1)
    err = {K: hs[-1] - y}
    new_B = list(B)
    for j in range(K - 1, 0, -1):          # hidden layers, top-down
        back = err[j + 1] @ (W[j] if feedback == "reciprocal" else B[j].T)
        err[j] = back * sig(pre[j - 1]) * (1 - sig(pre[j - 1]))
        if feedback == "perturbation":
            lam = xin[j] * dL[:, None] / c ** 2
            new_B[j] = B[j] - lr_b * (back - lam).T @ err[j + 1] / n
    new_W = [W[j] - lr * err[j + 1].T @ hs[j] / n for j in range(K)]
    new_bias = [bias[j] - lr * err[j + 1].mean(0) for j in range(K)]
    return new_W, new_bias, new_B


def matches_numpy(target, n, feedback):
    c = node_perturbation(SIZES, feedback=feedback, learning_rate=LR,
                          feedback_learning_rate=LR_B, noise=NOISE)
    t = make_target(target, c, seed=2, **({"batch_mean": True} if n > 1 else {}))
    try:
        start = params(t)
        rng = np.random.default_rng(3)
        for _ in range(3):
            x, y = rng.random((n, SIZES[0])), np.eye(SIZES[-1])[rng.integers(SIZES[-1], size=n)]
            W, bias, B = params(t)
            train_trial(t, x if n > 1 else x[0], y if n > 1 else y[0], 0)
            xin = {j: np.atleast_2d(t.get(f"layer{K - j}", "xin")) for j in range(1, K)}
            assert all(np.abs(v).max() > 0 for v in xin.values())      # noise was drawn
            want = reference(W, bias, B, x, y, xin, feedback)
            for got, exp in zip(params(t), want):
                for g, e in zip(got, exp):
                    if e is not None:
                        np.testing.assert_allclose(g, e, atol=1e-10, rtol=0)
        if feedback == "fixed":
            assert all(np.array_equal(a, b) for a, b in zip(params(t)[2][1:], start[2][1:]))
    finally:
        t.close()
    return {"matches": True}


@pytest.mark.parametrize("feedback", ["perturbation", "fixed", "reciprocal"])
@pytest.mark.parametrize("target,n", [
    ("dense", 7), ("brian2-numpy", 1),
    pytest.param("brian2-cpp", 1, marks=pytest.mark.slow)])    # compiles: minutes
def test_node_perturbation_matches_numpy(target, n, feedback):
    matches_numpy(target, n, feedback)


def case_lava():   # in a fresh interpreter: Lava forks its workers
    return matches_numpy("lava", 1, "perturbation")


def test_lava_matches_numpy():
    """Lava (floating point) runs the same circuit: its own noise stream, the same
    updates given the noise it drew."""
    from isolated import case_runner
    assert case_runner(__file__, 300.0)("lava") == {"matches": True}


def test_lambda_estimates_the_gradient():
    """Averaged over many noise draws on one input, λ = ξ (L̃ − L) / c² is the
    gradient of the loss with respect to each hidden layer's activity (computed
    here by backprop), to within the estimator's noise and its O(c) bias. (A
    trial with both learning rates 0: ``learn`` computes λ from the noise drawn
    last, which ``settle`` alone leaves to the next step.)"""
    c = node_perturbation(SIZES, noise=0.02, learning_rate=0.0, feedback_learning_rate=0.0)
    t = make_target("dense", c, seed=1)
    W, bias, _ = params(t)
    rng = np.random.default_rng(0)
    x, y = rng.random(SIZES[0]), np.eye(SIZES[-1])[1]
    N = 200_000
    train_trial(t, np.tile(x, (N, 1)), np.tile(y, (N, 1)), 0)
    hs, pre = [x], []
    for j, w in enumerate(W):
        pre.append(hs[-1] @ w.T + bias[j])
        hs.append(pre[-1] if j == K - 1 else sig(pre[-1]))
    dL_da = hs[-1] - y                       # linear output
    for j in range(K - 1, 0, -1):            # hidden layers, top-down
        dL_dh = dL_da @ W[j]
        lam = t.get(f"layer{K - j}", "lam").mean(axis=0)
        assert np.linalg.norm(lam - dL_dh) < 0.15 * np.linalg.norm(dL_dh), (j, lam, dL_dh)
        dL_da = dL_dh * sig(pre[j - 1]) * (1 - sig(pre[j - 1]))


def test_feedback_learned_with_fixed_forward_weights_aligns():
    """The paper's validation: with W held fixed (learning rate 0), B learned by
    node perturbation approaches W: the relative error ‖W − Bᵀ‖/‖W‖ of the
    layer next to the output falls from its random start, and sign congruence
    rises above chance."""
    c = node_perturbation(SIZES, learning_rate=0.0, feedback_learning_rate=0.05, noise=0.05)
    t = make_target("dense", c, seed=4, batch_mean=True)
    W0, _, B0 = params(t)
    rng = np.random.default_rng(1)
    for _ in range(400):
        x = rng.random((64, SIZES[0]))
        train_trial(t, x, np.eye(SIZES[-1])[rng.integers(SIZES[-1], size=64)], 0)
    W, _, B = params(t)
    assert all(np.array_equal(a, b) for a, b in zip(W, W0))
    j = K - 1
    before = np.linalg.norm(W[j] - B0[j].T) / np.linalg.norm(W[j])
    after = np.linalg.norm(W[j] - B[j].T) / np.linalg.norm(W[j])
    assert before > 1 and after < 0.5 * before, (before, after)
    assert np.mean(np.sign(W[j]) == np.sign(B[j].T)) > 0.75


@pytest.mark.parametrize("kwargs,match", [
    ({"feedback": "random"}, "feedback='random'"),
    ({"noise": 0.0}, "noise=0.0: give a positive"),
    ({"learning_rate": -1.0}, "learning_rate=-1.0"),
    ({"activation": "softplus"}, "Unknown activation"),
])
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(CircuitError, match=match):
        node_perturbation(SIZES, **kwargs)


def test_command_line_protocol_and_training(tmp_path, capsys):
    """``neurosim train --circuit node-perturbation`` takes the authors' network as
    its defaults, trains on dense (above chance on the digits in 10 epochs), and
    --feedback is refused by the circuits that do not take it."""
    from neurosim.circuits import NODE_PERTURBATION, NODE_PERTURBATION_TRAINING
    from neurosim.cli import main, parse
    from neurosim.outdir import read_json
    args = parse(["train", "--circuit", "node-perturbation"])
    protocol = {**NODE_PERTURBATION, **NODE_PERTURBATION_TRAINING}
    assert args.hidden == protocol["sizes"][1:-1] and not args.batch_sum
    for key in ("activation", "output_activation", "learning_rate", "feedback_learning_rate",
                "noise", "steps", "batch_size", "label_off"):
        assert getattr(args, key) == protocol[key], key
    out = tmp_path / "np"
    assert main(["train", "--circuit", "node-perturbation", "--dataset", "digits", "--target",
                 "dense", "--train-size", "1200", "--test-size", "300", "--epochs", "10",
                 "--learning-rate", "0.2", "--out", str(out), "--no-progress"]) == 0
    assert read_json(out / "metrics.json", "")["final_test_accuracy"] > 0.2
    capsys.readouterr()
    assert main(["train", "--circuit", "brainprop", "--dataset", "digits", "--out",
                 str(tmp_path / "x"), "--feedback", "fixed"]) == 2
    assert "--feedback applies to node-perturbation, not to the brainprop" in \
        capsys.readouterr().err


if __name__ == "__main__":
    from isolated import main
    main(globals())

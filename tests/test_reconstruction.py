"""Autoencoders: ``TrainSettings(task='reconstruction')`` (``--task reconstruction``)
trains the output towards the input and measures the test reconstruction error;
one activation per hidden layer (``--activation tanh-linear-tanh``); the trained
weights a finished run keeps (weights.npz) and ``neurosim.cli.load_run``.

The autoencoder is node perturbation's circuit with the error carried by the
forward weights (its backprop mode), whose updates do not depend on the noise
each target draws: so dense and Brian2 must agree to rounding."""
import csv
import json

import numpy as np
import pytest

from neurosim import data
from neurosim.circuit import CircuitError
from neurosim.errors import OutputError
from neurosim.circuits import backprop_network, node_perturbation
from neurosim.cli import load_run, main
from neurosim.hardware_targets import make_target
from neurosim.target import predict, train_trial
from neurosim.training import TrainSettings, evaluate, fit

DIGITS = data.load("digits").subset(48, 40, seed=0)
FEW = data.load("digits").subset(10, 6, seed=0)      # for Brian2's runtime: a run per trial
SIZES = (64, 6, 2, 6, 64)
ACTIVATION = "tanh-linear-tanh"


def autoencoder():
    return node_perturbation(SIZES, ACTIVATION, output_activation="relu", feedback="reciprocal",
                             learning_rate=0.05)


@pytest.mark.parametrize("target", ["dense", "brian2-numpy"])
def test_reconstruction_trains_the_output_towards_the_input(target):
    """fit with the reconstruction task is exactly the trials clamped to (x, x) in
    fit's order, its metric the mean squared error of the readout against the
    input, computed here; and dense and Brian2 end with the same weights."""
    settings = TrainSettings(epochs=1, steps=0, evaluations_per_epoch=2, seed=4,
                             task="reconstruction")
    ds = DIGITS if target == "dense" else FEW
    fitted = make_target(target, autoencoder(), seed=1)
    history = fit(fitted, ds, settings, progress=False)
    assert [sorted(h)[:2] for h in history][0] == ["epoch", "samples"]
    assert all("test_mse" in h and "test_accuracy" not in h for h in history)
    by_hand = make_target(target, autoencoder(), seed=1)
    for k in np.random.default_rng([4, 0]).permutation(len(ds.y_train)):
        train_trial(by_hand, ds.x_train[k], ds.x_train[k], 0)
    for proj, variables in by_hand.get_weights().items():
        for var, value in variables.items():
            np.testing.assert_array_equal(fitted.get_weights()[proj][var], value, err_msg=proj)
    out = np.array([predict(by_hand, x) for x in ds.x_test])
    mse = float(np.mean((out - ds.x_test) ** 2))
    assert history[-1]["test_mse"] == pytest.approx(mse, rel=1e-12)
    assert history[-1]["test_mse"] < history[0]["test_mse"]              # it learned
    if target == "brian2-numpy":
        dense = make_target("dense", autoencoder(), seed=1)
        fit(dense, ds, settings, progress=False)
        for proj, variables in dense.get_weights().items():
            for var, value in variables.items():
                np.testing.assert_allclose(fitted.get_weights()[proj][var], value, atol=1e-9,
                                           rtol=0, err_msg=proj)
    fitted.close()
    by_hand.close()


def test_reconstruction_needs_an_output_as_large_as_the_input():
    classifier = make_target("dense", backprop_network((64, 6, 10), "relu"))
    with pytest.raises(CircuitError, match=r"'layer0' has 10 neurons .* 64 elements; make "
                                           r"the last layer as large as the input \(64\)"):
        fit(classifier, DIGITS, TrainSettings(steps=0, task="reconstruction"), progress=False)
    with pytest.raises(CircuitError, match="task='regression'.*classification, reconstruction"):
        TrainSettings(task="regression").check()


def test_one_activation_per_hidden_layer():
    c = autoencoder()
    # layer 3 is the first hidden layer from the input side (tanh), layer 2 the bottleneck
    assert "tanh(" in c.population("layer3").model and "tanh(" in c.population("layer1").model
    assert "tanh(" not in c.population("layer2").model
    assert "clip(" in c.population("layer0").model                    # relu output
    with pytest.raises(CircuitError, match="names 2 activations for the 3 hidden layer"):
        node_perturbation(SIZES, "tanh-linear")
    with pytest.raises(CircuitError, match="Unknown activation 'cubic' in 'tanh-cubic-tanh'"):
        node_perturbation(SIZES, "tanh-cubic-tanh")
    with pytest.raises(CircuitError, match="one activation per hidden layer is taken by "
                                           "node-perturbation"):
        backprop_network(SIZES, ACTIVATION)
    with pytest.raises(SystemExit):                           # the command line's own check
        main(["train", "--activation", "tanh-cubic"])


def test_command_line_autoencoder_keeps_its_weights_and_sweeps(tmp_path, capsys):
    """``neurosim train --task reconstruction``: the metric is test_mse throughout,
    the trained weights are kept, and load_run gives back the target that scored
    the final metric; ``neurosim sweep`` tables the reconstruction error."""
    common = ["--circuit", "node-perturbation", "--task", "reconstruction", "--dataset", "digits",
              "--train-size", "48", "--test-size", "40", "--hidden", "6,2,6",
              "--activation", ACTIVATION, "--output-activation", "relu", "--epochs", "2",
              "--evaluations", "1", "--learning-rate", "0.05", "--target", "dense",
              "--no-progress"]
    out = tmp_path / "ae"
    assert main(["train", *common, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sizes"] == list(SIZES) and "final_test_accuracy" not in metrics
    assert (out / "metrics.csv").read_text().startswith("epoch,samples,test_mse,")
    assert not (out / "checkpoint.npz").exists() and (out / "weights.npz").exists()
    assert "test mse" in capsys.readouterr().out
    target, ds = load_run(out)
    assert evaluate(target, ds.x_test, ds.y_test, task="reconstruction") == \
        metrics["final_test_mse"]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_bytes((out / "config.json").read_bytes())
    with pytest.raises(OutputError, match="holds no weights.npz"):
        load_run(unfinished)
    sweep = tmp_path / "sweep"
    grid = [a for a in common if a not in ("--dataset", "digits", "--activation", ACTIVATION)]
    assert main(["sweep", *grid, "--datasets", "digits", "--activations", ACTIVATION,
                 "--variants", "node_perturbation,backprop", "--seeds", "0", "--workers", "0",
                 "--out", str(sweep)]) == 0
    rows = list(csv.DictReader(open(sweep / "table.csv")))
    assert {r["metric"] for r in rows} == {"test_mse"} and len(rows) == 2 * 3
    for r in rows:
        run = json.loads((sweep / "digits" / ACTIVATION / r["variant"] / "seed0" /
                          "metrics.json").read_text())
        assert float(r["mean_test_mse"]) == pytest.approx(
            run["history"][int(r["epoch"])]["test_mse"], abs=1e-6)
        assert r["mean_test_accuracy"] == ""

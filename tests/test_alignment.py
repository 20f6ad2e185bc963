"""Alignment of feedback matrices with the forward weights (neurosim.alignment):
the measures on matrices whose answer is known, the same on every target, the
declaration's checks of ``feedback_of``, and the training outputs (metrics
columns and alignment.png) of every feedback-learning circuit."""
import numpy as np
import pytest

from neurosim import alignment
from neurosim.circuit import Circuit, CircuitError, Population, Projection
from neurosim.circuits import (backprop_network, brainprop, node_perturbation,
                               relaxed_predictive_coding)
from neurosim.hardware_targets import make_target
from neurosim.target import train_trial

SIZES = (8, 6, 5, 3)


@pytest.mark.parametrize("target", ["dense", "brian2-numpy"])
def test_measures_of_known_matrices(target):
    """B = Wᵀ: relative error 0, angle 0°, congruence 1; B = −Wᵀ: 2, 180°, 0;
    B = Wᵀ with a flipped half: in between. Each after one training trial (the
    angle needs its errors), the same on dense and Brian2."""
    c = backprop_network(SIZES, "tanh", feedback_alignment=True)
    assert alignment.pairs(c) == [("weights1", "feedback_weights1", "delta"),
                                  ("weights2", "feedback_weights2", "delta")]
    rng = np.random.default_rng(0)
    x, y = rng.random(SIZES[0]), np.eye(3)[1]
    base = c.initial_weights(0)
    for sign, want in ((1, (0.0, 0.0, 1.0)), (-1, (2.0, 180.0, 0.0))):
        weights = {k: {v: a.copy() for v, a in p.items()} for k, p in base.items()}
        for l in (1, 2):
            weights[f"feedback_weights{l}"]["b"] = sign * weights[f"weights{l}"]["w"].T
        t = make_target(target, c, weights=weights)
        assert all(v is None for k, v in alignment.measures(t, trained=False).items()
                   if k.startswith("angle"))
        train_trial(t, x, y, 0)
        t.set_weights(weights)                  # the known matrices, the trial's errors
        got = alignment.measures(t)
        for l in (1, 2):
            np.testing.assert_allclose([got[f"{m}/weights{l}"] for m in alignment.MEASURES],
                                       want, atol=1e-6)
    half = {k: {v: a.copy() for v, a in p.items()} for k, p in base.items()}
    W = half["weights1"]["w"]
    B = W.T.copy()
    B[:, :2] *= -1                              # two of the three output units flipped
    half["feedback_weights1"]["b"] = B
    t = make_target(target, c, weights=half)
    train_trial(t, x, y, 0)
    t.set_weights(half)
    got = alignment.measures(t)
    assert 0 < got["relative_error/weights1"] < 2 and 0 < got["sign_congruence/weights1"] < 1
    E = np.atleast_2d(t.get("layer0", "delta"))
    est, true = (E @ B.T).ravel(), (E @ W).ravel()
    np.testing.assert_allclose(got["angle/weights1"], np.degrees(np.arccos(
        est @ true / np.linalg.norm(est) / np.linalg.norm(true))), atol=1e-9)


def test_feedback_of_is_checked_when_declared():
    def circuit():
        c = Circuit("fb")
        c.add(Population("a", 3, "h : 1\nback : 1"))
        c.add(Population("b", 2, "h : 1\nerr : 1"))
        c.add(Projection("w", "a", "b", "w : 1\nh_post = w * h_pre : 1 (summed)"))
        return c

    with pytest.raises(CircuitError, match="feedback_of='v' names no declared projection"):
        circuit().add(Projection("B", "b", "a", "b : 1\nback_post = b * err_pre : 1 (summed)",
                                 feedback_of="v"))
    with pytest.raises(CircuitError, match="runs the other way, from 'b' to 'a'"):
        circuit().add(Projection("B", "a", "b", "b : 1", feedback_of="w"))
    with pytest.raises(CircuitError, match="all-to-all with one synaptic variable"):
        circuit().add(Projection("B", "b", "a", "b : 1\nback_post = b * err_pre : 1 (summed)",
                                 connect={"p": 0.5}, feedback_of="w"))
    c = circuit()
    c.add(Projection("B", "b", "a", "b : 1\nback_post = b * err_pre : 1 (summed)",
                     feedback_of="w"))
    assert alignment.pairs(c) == [("w", "B", "err")]


@pytest.mark.parametrize("name,factory,kwargs", [
    ("feedback-alignment", backprop_network, {"feedback_alignment": True}),
    ("relaxed-pc learned feedback", relaxed_predictive_coding, {"learned_feedback": True}),
    ("relaxed-pc random feedback", relaxed_predictive_coding, {"fixed_random_feedback": True}),
    ("brainprop learned feedback", brainprop, {"learned_feedback": True}),
    ("node perturbation", node_perturbation, {}),
])
def test_every_feedback_learning_circuit_reports_alignment(name, factory, kwargs):
    c = factory((8, 6, 5, 3), **({"activation": "relu"} if factory is not node_perturbation
                                 and factory is not brainprop else {}), **kwargs)
    found = alignment.pairs(c)
    assert found and all(error is not None for _, _, error in found), (name, found)
    assert not alignment.pairs(backprop_network((8, 6, 3)))


def test_training_writes_alignment_columns_and_picture(tmp_path):
    """``neurosim train`` of a feedback-learning circuit: every evaluation row has
    the three measures per feedback projection (the angle from the first trained
    row on), and alignment.png is written; backprop has neither."""
    import csv
    from neurosim.cli import main
    common = ["--dataset", "digits", "--target", "dense", "--train-size", "300",
              "--test-size", "100", "--evaluations", "2", "--hidden", "16", "--steps", "0",
              "--no-progress"]
    assert main(["train", "--circuit", "feedback-alignment", *common,
                 "--out", str(tmp_path / "fa")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "fa" / "metrics.csv")))
    assert {f"{m}/weights1" for m in alignment.MEASURES} <= set(rows[0])
    assert rows[0]["angle/weights1"] == "" and all(float(r["angle/weights1"]) >= 0
                                                   for r in rows[1:])
    assert (tmp_path / "fa" / "alignment.png").stat().st_size > 10_000
    assert main(["train", "--circuit", "backprop", *common, "--out", str(tmp_path / "bp")]) == 0
    assert not (tmp_path / "bp" / "alignment.png").exists()
    assert not any("/" in k for k in next(csv.DictReader(open(tmp_path / "bp" / "metrics.csv"))))

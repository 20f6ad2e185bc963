"""Training loop: an interrupted run resumes from its checkpoint and ends with the
same weights as an uninterrupted one; divergence stops with a message."""
import json

import numpy as np
import pytest

import neurosim.training as training
from neurosim import data
from neurosim.circuits import relaxed_predictive_coding
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.optim import Adam
from neurosim.target import DivergenceError
from neurosim.training import TrainSettings, fit


def small():
    ds = data.load("digits").subset(24, 12, seed=0)
    circuit = relaxed_predictive_coding((64, 8, 10), "tanh", learning_rate=0.05)
    return ds, circuit, TrainSettings(epochs=2, steps=5, evaluations_per_epoch=2)


TARGETS = {
    "brian2, per sample, SGD": (lambda c: Brian2Target(c, seed=1), 1),
    "dense, per sample, SGD": (lambda c: DenseTarget(c, seed=1), 1),
    "dense, batch 4, Adam": (lambda c: DenseTarget(c, seed=1, optimizer=Adam(1e-2),
                                                   batch_mean=True), 4),
}


@pytest.mark.parametrize("kind", list(TARGETS))
def test_resume_gives_the_same_weights(tmp_path, monkeypatch, kind):
    ds, circuit, settings = small()
    make, settings.batch_size = TARGETS[kind]
    full = make(circuit)
    history = fit(full, ds, settings, checkpoint=tmp_path / "a.npz", progress=False)
    assert [h["samples"] for h in history] == [0, 12, 24, 36, 48]

    calls = {"n": 0}
    real = training.train_trial

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 31 // settings.batch_size:   # in epoch 2, after the checkpoint
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(make(circuit), ds, settings, checkpoint=tmp_path / "b.npz", progress=False)
    monkeypatch.setattr(training, "train_trial", real)
    resumed = make(circuit)
    history_b = fit(resumed, ds, settings, checkpoint=tmp_path / "b.npz", progress=False)
    assert [h["samples"] for h in history_b] == [0, 12, 24, 36, 48]
    for proj, params in full.get_weights().items():
        for var, value in params.items():
            np.testing.assert_allclose(resumed.get_weights()[proj][var], value, atol=1e-12)


def test_dense_per_sample_trains_like_brian2():
    """Defect 3 of issue 10: dense with batch 1 and SGD, evaluated on the test set
    as one batch between samples, must train exactly like brian2-numpy."""
    ds, circuit, settings = small()
    histories, weights = [], []
    for target in (Brian2Target(circuit, seed=1), DenseTarget(circuit, seed=1)):
        histories.append([h["test_accuracy"] for h in fit(target, ds, settings,
                                                           progress=False)])
        weights.append(target.get_weights())
    assert histories[1] == histories[0]
    for proj, params in weights[0].items():
        for var, value in params.items():
            np.testing.assert_allclose(weights[1][proj][var], value, atol=1e-9, rtol=0)


def test_divergence_stops_with_a_message():
    ds, _, settings = small()
    circuit = relaxed_predictive_coding((64, 8, 10), "relu", learning_rate=1e6)
    with pytest.raises(DivergenceError, match=r"in epoch 1, batch \d+ \(samples"):
        fit(Brian2Target(circuit, seed=0), ds, settings, progress=False)


def test_ctrl_c_saves_a_checkpoint_after_the_current_trial(tmp_path, monkeypatch):
    """A real SIGINT in the middle of a trial: the trial completes, a checkpoint is
    written at that point, and the resumed run ends with the uninterrupted weights."""
    import os
    import signal
    ds, circuit, settings = small()
    full = Brian2Target(circuit, seed=1)
    fit(full, ds, settings, progress=False)

    calls = {"n": 0}
    real = training.train_trial

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 17:                 # between evaluation checkpoints (12 and 24)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_trial", interrupted)
    with pytest.raises(KeyboardInterrupt, match="after 17 samples; checkpoint saved"):
        fit(Brian2Target(circuit, seed=1), ds, settings, checkpoint=tmp_path / "c.npz",
            progress=False)
    monkeypatch.setattr(training, "train_trial", real)
    with np.load(tmp_path / "c.npz") as saved:
        assert json.loads(bytes(saved["__state__"]).decode())["index"] == 17
    resumed = Brian2Target(circuit, seed=1)
    fit(resumed, ds, settings, checkpoint=tmp_path / "c.npz", progress=False)
    for proj, params in full.get_weights().items():
        for var, value in params.items():
            np.testing.assert_allclose(resumed.get_weights()[proj][var], value, atol=1e-12)

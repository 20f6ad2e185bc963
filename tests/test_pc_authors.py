"""The authors' formulation of relaxed predictive coding (circuits.predictive_coding,
``authors_predictive_coding``) against an independent numpy integration of the
authors' code (BerenMillidge/RelaxedPredictiveCoding, main.py: ``FCLayer``,
``PCNet.learn_pc``/``infer_pc``/``update_weights``/``update_error_weights``),
written here in their orientation (input first, row vectors, ``x @ W``) and
sharing no code with neurosim, on the dense target and on Brian2 (numpy).

Tolerance: both sides compute the same float64 operations in another order,
so trajectories and parameters must agree to 1e-9 (relative, 1e-12 absolute)
after 20 inference steps and 3 trials of one sample each. The clip bound is
small so that the clamp of the updates binds (checked), and the learning rate
large so that an update error would show.
"""
import json

import numpy as np
import pytest

from neurosim.circuit import CircuitError
from neurosim.circuits.predictive_coding import (AUTHORS, AUTHORS_TRAINING, SWITCHES,
                                                 authors_predictive_coding,
                                                 relaxed_predictive_coding)
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.target import predict, train_trial
from neurosim.training import TrainSettings

SIZES = (12, 8, 6, 4)     # input first
SEED = 3
STEPS, ETA, LR, CLAMP = 20, 0.05, 0.05, 0.05
RTOL, ATOL = 1e-9, 1e-12
KW = dict(inference_rate=2 * ETA, learning_rate=LR, update_clip=CLAMP, weight_std=0.5)

ACT = {"relu": (lambda a: np.maximum(a, 0), lambda a: (a > 0).astype(float)),
       "tanh": (np.tanh, lambda a: 1 - np.tanh(a) ** 2),
       "linear": (lambda a: a, lambda a: np.ones_like(a))}


class Authors:
    """main.py for one sample: layers i = 0 (input) .. L (label); ``W[i]`` (n_i,
    n_{i+1}), forward ``f(mu_i @ W[i]) + b[i]``; ``B[i]`` (n_{i+1}, n_i) the
    backward weights; ``Psi[i]`` (n_i, n_i) for hidden i, ``eps_i = mu_i -
    outs_i @ Psi[i]``; the last layer linear."""

    def __init__(self, W, B, Psi, b, activation, fixed=True, no_fprime=False,
                 learn_fb=False, learn_psi=False, learn_bias=True):
        self.W, self.B, self.Psi, self.b = W, B, Psi, b
        self.L = len(W)
        self.f = [ACT[activation]] * (self.L - 1) + [ACT["linear"]]
        self.fixed, self.no_fprime = fixed, no_fprime
        self.learn_fb, self.learn_psi, self.learn_bias = learn_fb, learn_psi, learn_bias
        self.clipped, self.bound = False, CLAMP

    def clamp(self, d):  # torch.clamp(d, -val, val)
        self.clipped |= bool(np.any(np.abs(d) > self.bound))
        return np.clip(d, -self.bound, self.bound)

    def forward(self, mu):  # FCLayer.forward of every layer: inputs, activations, outputs
        inp = [m.copy() for m in mu[:self.L]]
        a = [None] + [mu[i] @ self.W[i] for i in range(self.L)]
        outs = [None] + [self.f[i][0](a[i + 1]) + self.b[i] for i in range(self.L)]
        return inp, a, outs

    def errors(self, mu, outs):
        return [None] + [mu[i] - (outs[i] @ self.Psi[i] if i in self.Psi else outs[i])
                         for i in range(1, self.L + 1)]

    def learn(self, x, y):
        """learn_pc for a batch ``x`` (B, n_0), ``y`` (B, n_L): returns the µ and ε
        of every step (at its start), by layer. The bias is one row per batch
        position, as in FCLayer (``torch.zeros([batch_size, n])``)."""
        L = self.L
        mu = [np.atleast_2d(np.array(x, float))]
        for i in range(L):  # amortisation: the feed-forward sweep
            mu.append(self.f[i][0](mu[i] @ self.W[i]) + self.b[i])
        mu[L] = np.atleast_2d(np.array(y, float))
        inp, a, outs = self.forward(mu)  # infer_pc: the predictions, once
        eps = self.errors(mu, outs)
        traj = []
        for _ in range(STEPS):
            traj.append(([m.copy() for m in mu], [None] + [e.copy() for e in eps[1:]]))
            for j in range(1, L):  # layers[j].backward(eps[j+1]), then µ -= η·2·(ε − back)
                e = eps[j + 1] if self.no_fprime else eps[j + 1] * self.f[j][1](a[j + 1])
                back = e @ (self.B[j] if self.B else self.W[j].T)
                mu[j] = mu[j] - ETA * 2 * (eps[j] - back)
            if not self.fixed:
                inp, a, outs = self.forward(mu)
            eps = self.errors(mu, outs)
        for i in range(L):  # update_weights (f' kept, as in FCLayer.update_weights)
            delta = eps[i + 1] * self.f[i][1](a[i + 1])
            self.W[i] += LR * self.clamp(2 * inp[i].T @ delta)
            if self.learn_fb:
                self.B[i] += LR * self.clamp(2 * delta.T @ inp[i])
            if self.learn_bias:
                self.b[i] = self.b[i] + LR * self.clamp(eps[i + 1])  # (B, n): per row
        if self.learn_psi:  # update_error_weights: Ψ ← Ψ − lr·clamp(outsᵀ ε)
            for i in self.Psi:
                self.Psi[i] -= LR * self.clamp(outs[i].T @ eps[i])
        return traj

    def predict(self, x):  # no_grad_forward
        mu = np.atleast_2d(np.array(x, float))
        for i in range(self.L):
            mu = self.f[i][0](mu @ self.W[i]) + self.b[i]
        return mu


def authors_params(w, L):
    """The circuit's weights in the authors' layout (project layer l = L − i)."""
    W = [w[f"weights{L - i}"]["w"].T.copy() for i in range(L)]
    B = [w[f"feedback_weights{L - i}"]["w"].T.copy() for i in range(L)] \
        if "feedback_weights1" in w else []
    Psi = {i: w[f"error_weights{L - i}"]["w"].T.copy() for i in range(1, L)
           if w.get(f"error_weights{L - i}")}
    b = [w[f"biases{L - 1 - i}"]["b"].copy() if f"biases{L - 1 - i}" in w else 0.0
         for i in range(L)]
    return W, B, Psi, b


CASES = {
    "authors": {},
    "learned_errors": {"learned_errors": True},
    "fully_relaxed": {"fully_relaxed": True},
    "feedback_alignment": {"fixed_random_feedback": True},
    "live_predictions+psi": {"learned_errors": True, "fixed_predictions": False},
}


def check_against_authors(target, case, activation):
    kw = CASES[case]
    L = len(SIZES) - 1
    relaxed = kw.get("fully_relaxed", False)
    ref = Authors(*authors_params(target.get_weights(), L), activation,
                  fixed=kw.get("fixed_predictions", True), no_fprime=relaxed,
                  learn_fb=relaxed, learn_psi=relaxed or kw.get("learned_errors", False))
    if ref.learn_psi:
        assert ref.Psi and all(np.all(p >= 0) for p in ref.Psi.values())  # |N(0, std)|
    rng = np.random.default_rng(5)
    record = [(f"value{l}", "mu") for l in range(L + 1)] + [(f"error{l}", "eps") for l in range(L)]
    for trial in range(3):
        x = rng.random(SIZES[0])
        y = np.zeros(SIZES[-1])
        y[trial % SIZES[-1]] = 1.0
        traj = train_trial(target, x, y, STEPS, record=record)
        want = ref.learn(x, y)
        for l in range(L + 1):
            np.testing.assert_allclose(traj[(f"value{l}", "mu")],
                                       np.array([m[L - l][0] for m, _ in want]), RTOL, ATOL,
                                       err_msg=f"µ_{l}, trial {trial}")
        for l in range(L):
            np.testing.assert_allclose(traj[(f"error{l}", "eps")],
                                       np.array([e[L - l][0] for _, e in want]), RTOL, ATOL,
                                       err_msg=f"ε_{l}, trial {trial}")
        assert max(np.abs(traj[(f"value{l}", "mu")][-1] - traj[(f"value{l}", "mu")][0]).max()
                   for l in range(1, L)) > 1e-3  # the hidden values moved
    assert ref.clipped  # the clamp of the updates was exercised
    W, B, Psi, b = authors_params(target.get_weights(), L)
    for i in range(L):
        np.testing.assert_allclose(W[i], ref.W[i], RTOL, ATOL, err_msg=f"W[{i}]")
        np.testing.assert_allclose(b[i], ref.b[i][0], RTOL, ATOL, err_msg=f"b[{i}]")
        if B:
            np.testing.assert_allclose(B[i], ref.B[i], RTOL, ATOL, err_msg=f"B[{i}]")
        assert np.any(b[i] != 0)  # the biases learned
    for i in Psi:
        np.testing.assert_allclose(Psi[i], ref.Psi[i], RTOL, ATOL, err_msg=f"Ψ[{i}]")
    x = rng.random(SIZES[0])  # the readout is the feed-forward pass
    np.testing.assert_allclose(predict(target, x), ref.predict(x)[0], RTOL, ATOL)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("case", list(CASES))
def test_dense_matches_the_authors_code(case, activation):
    circuit = authors_predictive_coding(SIZES, activation, **KW, **CASES[case])
    check_against_authors(DenseTarget(circuit, seed=SEED), case, activation)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("case", ["authors", "fully_relaxed", "live_predictions+psi"])
def test_brian2_matches_the_authors_code(case, activation):
    circuit = authors_predictive_coding(SIZES, activation, **KW, **CASES[case])
    check_against_authors(Brian2Target(circuit, seed=SEED), case, activation)


def test_dense_batch_is_the_authors_summed_batch():
    """A batch of 3 on the dense target (``batch_mean=False``, as AUTHORS_TRAINING
    says): the same trajectories, and the updates summed over the batch and then
    clamped (``learning_bound``), as in their code, with the clamp binding. Their
    bias is one row per batch position, so this circuit has none."""
    assert AUTHORS_TRAINING["batch_mean"] is False
    circuit = authors_predictive_coding(SIZES, "tanh", fully_relaxed=True,
                                        **{**KW, "update_clip": 0.3}, biases=False)
    assert circuit.projections["weights1"].learning_bound == pytest.approx(LR * 0.3)
    target = DenseTarget(circuit, seed=SEED, batch_mean=AUTHORS_TRAINING["batch_mean"])
    L = len(SIZES) - 1
    ref = Authors(*authors_params(target.get_weights(), L), "tanh", no_fprime=True,
                  learn_fb=True, learn_psi=True, learn_bias=False)
    ref.bound = 0.3
    rng = np.random.default_rng(8)
    x, y = rng.random((3, SIZES[0])), np.eye(SIZES[-1])[[0, 2, 3]]
    traj = train_trial(target, x, y, STEPS, record=[("value1", "mu"), ("error2", "eps")])
    W0 = [w.copy() for w in ref.W]
    want = ref.learn(x, y)
    assert ref.clipped          # the clamp of the summed updates bound
    np.testing.assert_allclose(traj[("value1", "mu")], [m[L - 1] for m, _ in want], RTOL, ATOL)
    np.testing.assert_allclose(traj[("error2", "eps")], [e[L - 2] for _, e in want], RTOL, ATOL)
    W, B, Psi, _ = authors_params(target.get_weights(), L)
    for i in range(L):
        np.testing.assert_allclose(W[i], ref.W[i], RTOL, ATOL)
        np.testing.assert_allclose(B[i], ref.B[i], RTOL, ATOL)
    assert any(np.isclose(np.abs(W[i] - W0[i]).max(), LR * 0.3) for i in range(L))
    for i in Psi:
        np.testing.assert_allclose(Psi[i], ref.Psi[i], RTOL, ATOL)


def test_each_switch_changes_the_trajectory():
    """Each of the authors' switches, turned off alone, changes what is computed."""
    full = dict(learned_errors=True, psi_on_prediction=True, fixed_predictions=True,
                biases=True, no_fprime=True, no_fprime_inference_only=True)
    x, y = np.linspace(0.1, 1, SIZES[0]), np.eye(SIZES[-1])[1]

    def run(**off):
        circuit = relaxed_predictive_coding(SIZES, "tanh", **KW, **{**full, **off})
        target = DenseTarget(circuit, seed=SEED)
        out = []
        for _ in range(2):  # the second trial sees the learned biases
            out.append(train_trial(target, x, y, STEPS, record=[("value1", "mu")])
                       [("value1", "mu")])
        return np.concatenate(out)
    base = run()
    for switch in ("fixed_predictions", "biases", "no_fprime_inference_only"):
        assert np.abs(run(**{switch: False}) - base).max() > 1e-6, switch
    # ψ on the value (the printed eq. 7) is another circuit; same initial ψ draws
    assert np.abs(run(psi_on_prediction=False) - base).max() > 1e-6


def test_authors_preset_and_refusals():
    circuit = authors_predictive_coding()
    assert [circuit.populations[f"value{l}"].n for l in range(5)] == [10, 100, 100, 300, 784]
    assert circuit.namespace["lr"] == 1e-3
    assert all(p.learning_bound == pytest.approx(1e-3 * 50.0)
               for p in circuit.projections.values() if p.learning_rule)
    assert "prediction = pred0 + bias" in str(circuit.populations["error0"].model)  # linear
    assert circuit.projections["weights1"].learning_rule == \
        "w += lr * 2.0 * gated_post * mu0_pre"
    assert AUTHORS_TRAINING["steps"] == 500 and AUTHORS["inference_rate"] == 0.02
    settings = TrainSettings(**{k: v for k, v in AUTHORS_TRAINING.items() if k != "batch_mean"})
    assert settings.check().label_off == 0.0 and settings.batch_size == 64
    assert {"psi_on_prediction", "fixed_predictions", "biases",
            "no_fprime_inference_only"} <= set(SWITCHES)
    with pytest.raises(CircuitError, match="psi_on_prediction .*learned_errors"):
        relaxed_predictive_coding(SIZES, psi_on_prediction=True)
    with pytest.raises(CircuitError, match="no_fprime_inference_only .*no_fprime"):
        relaxed_predictive_coding(SIZES, no_fprime_inference_only=True)
    with pytest.raises(CircuitError, match="output_activation 'softmax'"):
        relaxed_predictive_coding(SIZES, output_activation="softmax")
    for bad in (0, -1.0, float("nan"), "50"):
        with pytest.raises(CircuitError, match="update_clip="):
            relaxed_predictive_coding(SIZES, update_clip=bad)
    with pytest.raises(CircuitError, match="weight_gain="):
        relaxed_predictive_coding(SIZES, weight_gain=0)
    with pytest.raises(CircuitError, match="'learned_error' is neither a switch"):
        authors_predictive_coding(SIZES, learned_error=True)


# --- the authors' protocol on the command line (neurosim train/sweep --circuit authors-pc)

def test_command_line_defaults_are_the_authors_protocol():
    """Every value of the protocol reaches the run: as an option's default, or
    (no option for it) as the factory's or TrainSettings' own value; an option
    the user gives overrides the protocol."""
    import dataclasses
    from neurosim.circuits import PROTOCOLS
    from neurosim.cli import parse
    args = parse(["train", "--circuit", "authors-pc"])
    protocol = PROTOCOLS["authors-pc"]
    assert args.hidden == protocol["sizes"][1:-1] and args.batch_sum
    settings = {f.name: f.default for f in dataclasses.fields(TrainSettings)}
    for key, value in protocol.items():
        if hasattr(args, key):
            assert getattr(args, key) == value, key
        elif key in settings:
            assert settings[key] == value, key
        else:
            assert key in AUTHORS or key in ("sizes", "batch_mean"), key
    given = parse(["train", "--circuit", "authors-pc", "--steps", "20", "--hidden", "7",
                   "--update-clip", "0", "--label-off", "0.1"])
    assert (given.steps, given.hidden, given.update_clip, given.label_off) == (20, (7,), 0, 0.1)
    plain = parse(["train"])
    assert (plain.steps, plain.batch_sum, plain.fixed_predictions, plain.label_off) == \
        (100, False, False, None)


def test_command_line_authors_run_is_the_api_run(tmp_path):
    """``neurosim train --circuit authors-pc`` trains exactly what
    authors_predictive_coding with AUTHORS_TRAINING trains through the API."""
    from neurosim import data
    from neurosim.cli import main
    from neurosim.training import fit
    opts = ["--dataset", "digits", "--train-size", "1000", "--test-size", "200", "--hidden",
            "32,16", "--steps", "100", "--epochs", "2", "--evaluations", "1",
            "--batch-size", "16", "--learning-rate", "0.003"]
    assert main(["train", "--circuit", "authors-pc", "--activation", "tanh", "--target",
                 "dense", "--update-clip", "0", *opts, "--no-progress",
                 "--out", str(tmp_path)]) == 0
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    ds = data.load("digits").subset(1000, 200, seed=0)
    circuit = authors_predictive_coding((64, 32, 16, 10), "tanh", update_clip=None,
                                        learning_rate=0.003)
    target = DenseTarget(circuit, seed=0, batch_mean=AUTHORS_TRAINING["batch_mean"])
    settings = TrainSettings(**{**{k: v for k, v in AUTHORS_TRAINING.items()
                                   if k != "batch_mean"},
                                "steps": 100, "epochs": 2, "batch_size": 16,
                                "evaluations_per_epoch": 1})
    want = fit(target, ds, settings, progress=False)
    assert [h["test_accuracy"] for h in history] == [h["test_accuracy"] for h in want]
    assert history[-1]["test_accuracy"] > 0.25         # it learns (chance: 0.1)


def test_authors_sweep_points_and_backprop_of_the_same_shape(tmp_path):
    from neurosim.cli import _sweep_jobs, parse
    args = parse(["sweep", "--circuit", "authors-pc", "--variants",
                  "learned_errors,backprop", "--activations", "tanh"])
    pc, bp = (job.args for job in _sweep_jobs(args, tmp_path))
    assert (pc.circuit, pc.learned_errors, pc.fixed_predictions, pc.biases, pc.steps) == \
        ("authors-pc", True, True, True, 500)
    assert (bp.circuit, bp.steps, bp.learned_errors, bp.fixed_predictions) == \
        ("backprop", 0, False, False)
    assert (bp.hidden, bp.output_activation, bp.learning_rate, bp.batch_sum) == \
        ((300, 100, 100), "linear", 1e-3, True)
    assert bp.weight_gain is None and bp.update_clip is None   # backprop has neither


def test_options_a_circuit_does_not_take_are_refused(tmp_path, capsys):
    from neurosim.cli import main
    assert main(["train", "--circuit", "authors-pc", "--learned-errors", "--target", "dense",
                 "--error-weight-init", "identity", "--out", str(tmp_path)]) == 2
    assert "--error-weight-init applies to relaxed-pc, not to the authors-pc" in \
        capsys.readouterr().err
    assert main(["train", "--circuit", "backprop", "--weight-gain", "2",
                 "--out", str(tmp_path)]) == 2
    assert "--weight-gain applies to relaxed-pc, authors-pc, not to the backprop" in \
        capsys.readouterr().err


def fully_relaxed_on(target_name):
    """The fully relaxed authors' formulation on another target, against the port."""
    from neurosim.hardware_targets import make_target
    circuit = authors_predictive_coding(SIZES, "tanh", **KW, **CASES["fully_relaxed"])
    target = make_target(target_name, circuit, seed=SEED)
    try:
        check_against_authors(target, "fully_relaxed", "tanh")
    finally:
        target.close()
    return {"matches": True}


def case_lava():   # in a fresh interpreter: Lava forks its workers
    return fully_relaxed_on("lava")


def test_lava_matches_the_authors_code():
    from isolated import case_runner
    assert case_runner(__file__, 300.0)("lava") == {"matches": True}


@pytest.mark.slow   # each compiles its code: minutes
@pytest.mark.parametrize("target_name", ["brian2-cython", "brian2-cpp"])
def test_compiled_targets_match_the_authors_code(target_name):
    fully_relaxed_on(target_name)


if __name__ == "__main__":
    from isolated import main
    main(globals())

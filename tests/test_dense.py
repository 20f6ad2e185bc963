"""The batched dense engine (``DenseTarget``) against the Brian2 target.

Tolerances: with B = 1 both targets compute the same forward-Euler steps in
float64 from the same Brian2 abstract code; only the order of floating-point
sums differs (a matrix product here, a per-synapse sum in Brian2), so value
(µ) and error (ε) trajectories and weights after 3 training trials must agree
to 1e-9 (absolute). A batch of B samples must equal B separate runs to 1e-10
(trajectories; the batch's weight update is the sum of the per-sample
updates). float32 must agree with float64 to 1e-4.
"""
from functools import partial

import numpy as np
import pytest
from brian2 import ms

from test_pc_equivalence import LR, RATE, SEED, SIZES, STEPS, SWITCHES
from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant, normal
from neurosim.circuits.predictive_coding import relaxed_predictive_coding
from neurosim.hardware_targets import TARGETS, make_target
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.hardware_targets.dense import DenseTarget, unit_interval
from neurosim.hardware_targets.dense import DenseTarget as NumpyDense
from neurosim.optim import Adam
from neurosim.target import predict, train_trial
from neurosim.training import evaluate

ATOL = 1e-9


class JaxDense(DenseTarget):
    """``DenseTarget(..., backend='jax')``, spelt as the class the tests build."""

    def __new__(cls, *args, **options):
        return NumpyDense(*args, backend="jax", **options)


@pytest.fixture(autouse=True, params=["numpy", "jax"])
def backend(request, monkeypatch):
    """Every test here runs on both backends of the dense engine, with the same
    tolerances: the compiled one (hardware_targets.dense_jax) must give what the
    numpy one gives."""
    if request.param == "jax":
        monkeypatch.setitem(globals(), "DenseTarget", JaxDense)
    return request.param
BATCH_ATOL = 1e-10
F32_ATOL = 1e-4
TOP = len(SIZES) - 1
RECORD = [(f"value{l}", "mu") for l in range(TOP + 1)] + [(f"error{l}", "eps") for l in range(TOP)]


def pc(activation="tanh", switch="standard"):
    return relaxed_predictive_coding(SIZES, activation, inference_rate=RATE, learning_rate=LR,
                                     **SWITCHES[switch])


def trial_data(rng, trial, batch=None):
    shape = (SIZES[0],) if batch is None else (batch, SIZES[0])
    x = 2 * rng.random(shape)
    y = np.full(shape[:-1] + (SIZES[-1],), 0.1)
    y[..., trial % SIZES[-1]] = 1.0
    if batch is not None:
        y[np.arange(batch), (trial + np.arange(batch)) % SIZES[-1]] = 1.0
    return x, y


def assert_weights_close(got, want, atol):
    assert got.keys() == want.keys()
    for proj in want:
        assert got[proj].keys() == want[proj].keys()
        for var in want[proj]:
            np.testing.assert_allclose(got[proj][var], want[proj][var], atol=atol, rtol=0,
                                       err_msg=f"{proj}.{var}")


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_dense_matches_brian2(switch, activation):
    circuit = pc(activation, switch)
    brian, dense = Brian2Target(circuit, seed=SEED), DenseTarget(circuit, seed=SEED)
    rng = np.random.default_rng(7)
    for trial in range(3):
        x, y = trial_data(rng, trial)
        want = train_trial(brian, x, y, STEPS, record=RECORD)
        got = train_trial(dense, x, y, STEPS, record=RECORD)
        for key in RECORD:
            assert got[key].shape == want[key].shape == (STEPS, circuit.population(key[0]).n)
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0,
                                       err_msg=f"{key}, trial {trial}")
        moved = max(np.abs(got[(f"value{l}", "mu")][-1] - got[(f"value{l}", "mu")][0]).max()
                    for l in range(1, TOP))
        assert moved > 1e-4, "the hidden values must relax (the comparison is not trivial)"
        for key in RECORD:  # the state after learning (summed variables refreshed) too
            np.testing.assert_allclose(dense.get(*key), brian.get(*key), atol=ATOL, rtol=0)
    assert_weights_close(dense.get_weights(), brian.get_weights(), ATOL)
    initial = circuit.initial_weights(SEED)
    assert not np.allclose(dense.get_weights()["weights1"]["w"], initial["weights1"]["w"])
    x = rng.random(SIZES[0])
    np.testing.assert_allclose(predict(dense, x), predict(brian, x), atol=ATOL, rtol=0)


def test_registered_as_dense(backend):
    target = make_target("dense", pc(), seed=SEED, backend=backend)
    assert "dense" in TARGETS and isinstance(target, NumpyDense) and target.name == "dense"
    assert target.display_name == "dense" and target.backend == backend
    assert (type(target).__name__ == "JaxDenseTarget") == (backend == "jax")
    with pytest.raises(CircuitError, match="backend='torch'; choose one of numpy, jax"):
        make_target("dense", pc(), backend="torch")


@pytest.mark.parametrize("activation,switch", [("relu", "standard"), ("tanh", "fully_relaxed"),
                                               ("tanh", "feedback+errors")])
def test_batch_equals_separate_runs(activation, switch):
    circuit, B = pc(activation, switch), 5
    w0 = circuit.initial_weights(SEED)
    x, y = trial_data(np.random.default_rng(3), 0, batch=B)
    batched = DenseTarget(circuit, weights=w0)
    traj = train_trial(batched, x, y, STEPS, record=RECORD)
    total = {p: {v: np.zeros_like(a) for v, a in vs.items()} for p, vs in w0.items()}
    for b in range(B):
        single = DenseTarget(circuit, weights=w0)
        one = train_trial(single, x[b], y[b], STEPS, record=RECORD)
        for key in RECORD:
            assert traj[key].shape == (STEPS, B, circuit.population(key[0]).n)
            np.testing.assert_allclose(traj[key][:, b], one[key], atol=BATCH_ATOL, rtol=0,
                                       err_msg=f"{key}, sample {b}")
        for p, vs in single.get_weights().items():
            for v, a in vs.items():
                total[p][v] += a - w0[p][v]
    got = batched.get_weights()
    changes = {p: {v: got[p][v] - w0[p][v] for v in vs} for p, vs in w0.items()}
    assert_weights_close(changes, total, BATCH_ATOL)
    assert np.abs(changes["weights1"]["w"]).max() > 1e-3
    # the samples differ, so a batch that mixed them up would fail above
    assert np.abs(traj[("value1", "mu")][-1, 0] - traj[("value1", "mu")][-1, 1]).max() > 1e-3
    # get() keeps the batch axis; predict on a batch gives one row per sample
    assert batched.get("value0", "mu").shape == (B, SIZES[-1])
    assert predict(batched, x).shape == (B, SIZES[-1])


def test_float32_agrees_with_float64():
    circuit = pc("tanh", "fully_relaxed")
    x, y = trial_data(np.random.default_rng(4), 1, batch=3)
    t64 = DenseTarget(circuit, seed=SEED)
    t32 = DenseTarget(circuit, seed=SEED, dtype=np.float32)
    r64 = train_trial(t64, x, y, STEPS, record=RECORD)
    r32 = train_trial(t32, x, y, STEPS, record=RECORD)
    worst = 0.0
    for key in RECORD:
        assert r32[key].dtype == np.float32, f"{key} was not computed in float32"
        np.testing.assert_allclose(r32[key], r64[key], atol=F32_ATOL, rtol=0, err_msg=str(key))
        worst = max(worst, np.abs(r32[key] - r64[key]).max())
    assert worst > 0, "float32 gave bit-identical float64 results: it did not run in float32"
    assert all(a.dtype == np.float32 for vs in t32.weights.values() for a in vs.values())
    assert_weights_close(t32.get_weights(), t64.get_weights(), F32_ATOL)


def test_run_optimisations_are_used_and_change_nothing(monkeypatch, backend):
    """Constant summed variables are computed once per run, unread ones only at
    the last step; trajectories and the whole state after run are bit-identical
    (on jax: the same to rounding; the stores are counted in the numpy loop)."""
    circuit = pc("relu", "standard")
    x, y = trial_data(np.random.default_rng(5), 2)
    plain = DenseTarget(circuit, seed=SEED, cache_constant=False, defer_unread=False)
    fast = DenseTarget(circuit, seed=SEED)
    calls = []  # every array the step loop stores (summed variables and state updates)
    original = DenseTarget._fit
    monkeypatch.setattr(DenseTarget, "_fit",
                        lambda self, value, shape: (calls.append(1), original(self, value, shape))[1])
    counts, traces = [], []
    for target in (plain, fast):
        target.clamp(*circuit.input, x)
        target.clamp(*circuit.output, y)
        target.settle()
        calls.clear()
        traces.append(target.run(STEPS, record=RECORD))
        counts.append(len(calls))
    # input clamped at the top, label at the bottom: the top error layer's
    # prediction θ µ_top and its f(.) sent down as a prior, and the bottom error
    # layer's copy of the label, cannot change during run
    cached = [("error_weights0", "value_post"), ("weights3", "pred_post"),
              ("errors2", "prior_post")]
    # read by nothing during run: feedback into the clamped top layer, ε and
    # prior of the clamped bottom layer, the prior (read by init only) of layer 1
    deferred = [("errors0", "eps_post"), ("errors0", "prior_post"),
                ("errors1", "prior_post"), ("weights3", "feedback_pre")]
    assert sorted(fast.last_cached) == sorted(cached)
    assert sorted(fast.last_deferred) == sorted(deferred)
    assert plain.last_cached == plain.last_deferred == []
    exact = backend == "numpy"
    if exact:   # the compiled loop stores once per trace
        assert counts[0] - counts[1] == (STEPS - 1) * (len(cached) + len(deferred))
    same = np.testing.assert_array_equal if exact else partial(
        np.testing.assert_allclose, atol=1e-13, rtol=0)
    for key in RECORD:
        same(traces[1][key], traces[0][key])
    for pop in circuit.populations.values():  # the state after run, every variable
        for var in pop.variables:
            same(fast.get(pop.name, var), plain.get(pop.name, var),
                 err_msg=f"{pop.name}.{var}")
    plain.learn()
    fast.learn()
    assert_weights_close(fast.get_weights(), plain.get_weights(), 0 if exact else 1e-13)
    # what is read or recorded is not deferred; a released output is not constant
    fast.run(3, record=[("value1", "prior")])
    assert ("errors1", "prior_post") not in fast.last_deferred
    fast.release(circuit.output[0])
    assert sorted(fast.constant_summed()) == [("errors2", "prior_post"),
                                              ("weights3", "pred_post")]
    assert ("errors0", "eps_post") not in fast.unread_summed()


def test_non_separable_summed_variable_is_computed_per_synapse():
    """A sum of terms or a factor mixing both sides is not a matrix product: the
    dense engine evaluates it synapse by synapse (no longer refused), and gets
    what the sum over the weight matrix's synapses gives."""
    def circuit(expr):
        c = Circuit("mixed")
        c.add(Population("a", 3, "a : 1\nc : 1"))
        c.add(Population("b", 2, "b : 1\nx : 1"))
        c.add(Projection("ab", "a", "b", f"w : 1\nx_post = {expr} : 1 (summed)",
                         init={"w": normal(0.1)}))
        return c

    a, cc, b = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0]), np.array([0.3, -0.7])
    for expr, want in (("w * a_pre * b_post + c_pre", lambda W: W @ a * b + cc.sum()),
                       ("w * (a_pre + b_post)", lambda W: (W * (a[None] + b[:, None])).sum(1)),
                       ("-2 * w * a_pre * tanh(b_post)", lambda W: -2 * (W @ a) * np.tanh(b))):
        t = DenseTarget(circuit(expr), seed=1)
        for pop, var, value in (("a", "a", a), ("a", "c", cc), ("b", "b", b)):
            t.set(pop, var, value)
        t.settle()
        np.testing.assert_allclose(t.get("b", "x"), want(t.get_weights()["ab"]["w"]),
                                   atol=1e-12, err_msg=expr)


def generic_circuit(rule="w += lr * s_post * r_pre\nw = clip(w, -wmax, wmax)"):
    """Not predictive coding: rk4 and euler, units, a summed variable into the
    presynaptic side, two summed levels, one-to-one, init, a clipped rule."""
    c = Circuit("generic", namespace={"tau": 10 * ms, "g": 0.5, "lr": 0.05, "wmax": 0.2})
    c.add(Population("A", 4, "dv/dt = (-v + I + fb) / tau : 1\nr = tanh(v) : 1\n"
                             "I : 1\nfb : 1", method="rk4",
                     values={"v": np.linspace(-1, 1, 4)}))
    c.add(Population("B", 3, "du/dt = (-u + g * J) / tau : 1\ns = 1 / (1 + exp(-u)) : 1\n"
                             "J : 1", init="u = 0.5 * J", values={"u": 0.2}))
    c.add(Projection("AB", "A", "B", "w : 1\nJ_post = w * r_pre * (1 + s_post) : 1 (summed)\n"
                                     "fb_pre = -w * s_post / 2 : 1 (summed)",
                     init={"w": normal(0.5)},
                     learning_rule=rule))
    c.add(Projection("AA", "A", "A", "k : 1\nI_post = k * (fb_pre + 0.1) : 1 (summed)",
                     connect="one_to_one", init={"k": constant(0.8)},
                     learning_rule="k -= lr * r_post * (k - 0.5)"))
    return c


def test_generic_circuit_matches_brian2():
    c = generic_circuit()
    brian, dense = Brian2Target(c, seed=1), DenseTarget(c, seed=1)
    record = [("A", "v"), ("A", "r"), ("A", "I"), ("A", "fb"), ("B", "u"), ("B", "s"),
              ("B", "J")]
    for target in (brian, dense):
        target.settle()
    for rnd in range(2):
        want, got = brian.run(15, record=record), dense.run(15, record=record)
        for key in record:
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0, err_msg=str(key))
        brian.learn()
        dense.learn()
        assert_weights_close(dense.get_weights(), brian.get_weights(), ATOL)
    assert np.abs(dense.get_weights()["AB"]["w"]).max() == pytest.approx(0.2)  # clipped
    assert np.abs(got[("A", "v")][-1] - got[("A", "v")][0]).max() > 1e-2


@pytest.mark.parametrize("rule", ["w += lr * s_post * r_pre",           # matrix product
                                  "w -= lr * (s_post - r_pre)**2 * w"])  # per synapse
def test_generic_batch_equals_separate_runs(rule):
    """Batch = separate samples, for the separable (post.T @ pre) and the general
    (per-synapse) increment of an all-to-all rule and a one-to-one rule."""
    c, B = generic_circuit(rule), 3
    w0 = c.initial_weights(2)
    v0 = np.random.default_rng(8).normal(size=(B, 4))
    batched = DenseTarget(c, weights=w0)
    batched.set("A", "v", v0)
    batched.settle()
    traj = batched.run(10, record=[("A", "v"), ("B", "s")])
    batched.learn()
    total = {p: {v: np.zeros_like(a) for v, a in vs.items()} for p, vs in w0.items()}
    for b in range(B):
        single = DenseTarget(c, weights=w0)
        single.set("A", "v", v0[b])
        single.settle()
        one = single.run(10, record=[("A", "v"), ("B", "s")])
        single.learn()
        for key in one:
            np.testing.assert_allclose(traj[key][:, b], one[key], atol=BATCH_ATOL, rtol=0)
        for p, vs in single.get_weights().items():
            for v, a in vs.items():
                total[p][v] += a - w0[p][v]
    got = batched.get_weights()
    assert_weights_close({p: {v: got[p][v] - w0[p][v] for v in vs} for p, vs in w0.items()},
                         total, BATCH_ATOL)
    assert np.abs(total["AB"]["w"]).max() > 1e-4 and np.abs(total["AA"]["k"]).max() > 1e-4


def test_sample_dependent_assignment_is_refused_for_a_batch():
    c = generic_circuit("w = lr * s_post * r_pre")
    t = DenseTarget(c)
    t.learn()                                 # one sample: a plain assignment
    t.set("A", "v", np.zeros((2, 4)))
    with pytest.raises(CircuitError, match="depends on the sample"):
        t.learn()


def test_batch_shapes_and_rebatching():
    c = generic_circuit()
    t = DenseTarget(c)
    assert t.get("A", "v").shape == (4,)
    t.set("A", "v", np.zeros((3, 4)))        # batch of 3: the other states broadcast
    assert t.get("B", "u").shape == (3, 3)
    np.testing.assert_array_equal(t.get("B", "u"), 0.2)
    t.set("B", "u", np.ones((3, 3)))
    assert t.run(2, record=[("B", "s")])[("B", "s")].shape == (2, 3, 3)
    t.set("A", "v", np.zeros((2, 4)))         # new batch size: others reset to declared
    np.testing.assert_array_equal(t.get("B", "u"), 0.2)
    t.run(1)
    t.set("B", "u", np.ones(3))               # 1-d: one sample, never B copies
    assert t.B == 1 and t.get("B", "u").shape == (3,) and t.get("A", "v").shape == (4,)
    np.testing.assert_array_equal(t.get("A", "v"), np.linspace(-1, 1, 4))   # reset
    with pytest.raises(CircuitError, match="subexpression"):
        t.set("A", "r", np.zeros(4))
    with pytest.raises(CircuitError, match="shape"):
        t.set("A", "v", np.zeros(5))


def test_one_sample_after_a_batch_evaluation_runs_once():
    """Defect 3 of issue 10: after a test evaluation of 100 samples as one batch, a
    training sample given as 1-d arrays ran as 100 copies, and the summed rule
    multiplied its update by 100. The update after an evaluation must equal the
    update without it (SGD and Adam), computed on a batch of 1."""
    circuit = pc("tanh", "standard")
    rng = np.random.default_rng(11)
    x_test = 2 * rng.random((100, SIZES[0]))
    x, y = trial_data(rng, 0)
    w0 = circuit.initial_weights(SEED)
    for make in (lambda: DenseTarget(circuit, weights=w0),
                 lambda: DenseTarget(circuit, weights=w0, optimizer=Adam(1e-2))):
        plain, after_eval = make(), make()
        train_trial(plain, x, y, STEPS)
        assert predict(after_eval, x_test).shape == (100, SIZES[-1])
        assert after_eval.B == 100
        train_trial(after_eval, x, y, STEPS)
        assert after_eval.B == 1 and after_eval.get(*circuit.output).shape == (SIZES[-1],)
        moved = plain.get_weights()["weights1"]["w"] - w0["weights1"]["w"]
        assert np.abs(moved).max() > 1e-4
        assert_weights_close(after_eval.get_weights(), plain.get_weights(), 1e-12)


def test_values_of_one_trial_must_share_the_batch_size():
    """A 1-d value is one sample: given while another variable of the same trial
    (set since the last step) holds a batch of B > 1, it is neither copied B
    times nor allowed to drop that batch silently."""
    c = generic_circuit()
    t = DenseTarget(c)
    t.clamp("A", "I", np.zeros((3, 4)))
    with pytest.raises(CircuitError, match=r"A\.I was given a batch of 3.*\(3, 3\)"):
        t.clamp("B", "J", np.ones(3))
    assert t.B == 3
    t.clamp("B", "J", np.ones((3, 3)))       # a batch for both: accepted
    with pytest.raises(CircuitError, match=r"B\.J was given a batch of 3"):
        t.clamp("A", "I", np.ones(4))
    t.run(1)                                 # the next trial: one sample
    t.clamp("A", "I", np.ones(4))
    assert t.B == 1 and t.get("B", "J").shape == (3,)
    np.testing.assert_array_equal(t.get("B", "J"), 0.0)   # reset to its declared value


def test_per_sample_training_with_evaluations_matches_brian2():
    """Defect 3 of issue 10, as the trainer runs it: one sample at a time (SGD), a
    batched test evaluation every few samples; dense must follow brian2-numpy
    sample by sample (weights after every trial, and the test accuracies)."""
    circuit = pc("relu", "standard")
    brian, dense = Brian2Target(circuit, seed=SEED), DenseTarget(circuit, seed=SEED)
    rng = np.random.default_rng(12)
    x_test = 2 * rng.random((12, SIZES[0]))
    y_test = rng.integers(0, SIZES[-1], size=12)
    for trial in range(8):
        if trial % 3 == 0:
            accuracy = evaluate(dense, x_test, y_test)
            assert dense.B == 12
            assert accuracy == evaluate(brian, x_test, y_test)
        x, y = trial_data(rng, trial)
        train_trial(brian, x, y, STEPS)
        train_trial(dense, x, y, STEPS)
        assert_weights_close(dense.get_weights(), brian.get_weights(), ATOL)
    initial = circuit.initial_weights(SEED)
    assert not np.allclose(dense.get_weights()["weights1"]["w"], initial["weights1"]["w"])


def test_namespace_changes_between_runs_take_effect_like_brian2():
    """Parameters changed between run() calls (circuit.namespace[...] = ...) take
    effect on the next step, as on brian2-numpy: in a state update (tau, with
    units), in a constant summed variable (gain, from a clamped population), in
    a synaptic factor (woff) and in a learning rule (lr)."""
    def circuit():
        c = Circuit("params", namespace={"tau": 10 * ms, "gain": 1.0, "woff": 0.0,
                                         "lr": 0.05})
        c.add(Population("inp", 3, "r : 1"))
        c.add(Population("out", 2, "dv/dt = (-v + I + J) / tau : 1\nI : 1\nJ : 1"))
        c.add(Projection("drive", "inp", "out",
                         "w : 1\nI_post = gain * w * r_pre : 1 (summed)",
                         init={"w": normal(0.5)}))
        c.add(Projection("loop", "out", "out",
                         "k : 1\nJ_post = (k + woff) * v_pre : 1 (summed)",
                         init={"k": normal(0.2)}, learning_rule="k -= lr * v_post * v_pre"))
        return c

    c, unchanged = circuit(), circuit()
    brian, dense, same = (Brian2Target(c, seed=3), DenseTarget(c, seed=3),
                          DenseTarget(unchanged, seed=3))
    record = [("out", "v"), ("out", "I"), ("out", "J")]
    for target in (brian, dense, same):
        target.clamp("inp", "r", [1.0, -0.5, 2.0])
    for change in [{}, {"gain": 2.5}, {"woff": -0.4, "tau": 4 * ms}, {"lr": 0.01}]:
        c.namespace.update(change)
        want, got = brian.run(12, record=record), dense.run(12, record=record)
        for key in record:
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0,
                                       err_msg=f"{key} after {change}")
        assert dense.last_cached == [("drive", "I_post")]  # cached, computed per run
        other = same.run(12, record=record)
        if change:  # each change mattered
            assert np.abs(got[("out", "v")] - other[("out", "v")]).max() > 1e-3, change
        if not change or "lr" in change:  # no learn() before the woff change: the
            for target in (brian, dense, same):  # cached synaptic factor must follow it
                target.learn()
            assert_weights_close(dense.get_weights(), brian.get_weights(), ATOL)
    assert np.abs(dense.get_weights()["loop"]["k"] - same.get_weights()["loop"]["k"]).max() > 1e-3
    c.namespace["tau"] = 4.0  # a value without the declared units is refused
    with pytest.raises(CircuitError, match="tau.*units"):
        dense.run(1)


def test_unsupported_names_the_construct_and_the_targets_that_accept_it():
    """Each construct the dense engine has no mapping for is named by the cheap
    unsupported() check, and construction raises with it and the registry's
    accepting targets (never dense itself). on_pre/on_post and delays need a
    spiking source, which is refused first."""
    from brian2 import Function

    def circuit(pop="dv/dt = -v / tau : 1", proj="w : 1\nI_post = w * v_pre : 1 (summed)",
                namespace=None, **kw):
        c = Circuit("odd", namespace={"tau": 10 * ms, **(namespace or {})})
        c.add(Population("a", 3, pop, **kw.pop("pop_kw", {})))
        c.add(Population("b", 2, "dv/dt = (-v + I) / tau : 1\nI : 1"))
        c.add(Projection("ab", "a", "b", proj, **kw))
        return c

    cases = {
        "Population 'a': spikes": circuit(pop_kw={"threshold": "v > 1", "reset": "v = 0"}),
        "Population 'a': stochastic equations": circuit("dv/dt = -v / tau + xi / sqrt(tau) : 1"),
        "Projection 'ab': the random function rand() in synaptic code": circuit(
            learning_rule="w += 0.01 * rand()"),
        "Population 'a': the random function randn() in the equation of 'v'": circuit(
            "dv/dt = (-v + randn()) / tau : 1"),
        "the namespace entry 'f' (Function": circuit(
            "dv/dt = (-v + f(v)) / tau : 1",
            namespace={"f": Function(np.tanh, arg_units=[1], return_unit=1)}),
        "Projection 'ab': synaptic differential equations": circuit(
            proj="dw/dt = -w / tau : 1 (clock-driven)\nI_post = w * v_pre : 1 (summed)"),
    }
    for sentence, c in cases.items():
        reason = DenseTarget.unsupported(c)
        assert reason is not None and reason.startswith(sentence), (sentence, reason)
        with pytest.raises(CircuitError) as err:
            DenseTarget(c)
        msg = str(err.value)
        assert sentence in msg and "brian2-numpy" in msg and "accept" in msg, msg
        assert "dense," not in msg and not msg.rstrip(".").endswith("dense"), msg
    assert DenseTarget.unsupported(circuit()) is None
    assert DenseTarget.unsupported(pc()) is None


def test_record_chosen_neurons_like_brian2():
    """(pop, var, indices) records only those neurons (stored variables and
    subexpressions, one sample and a batch); the others as before."""
    c = generic_circuit()
    brian, dense = Brian2Target(c, seed=1), DenseTarget(c, seed=1)
    record = [("A", "v", [3, 0]), ("B", "s", np.array([1])), ("B", "u")]
    for target in (brian, dense):
        target.settle()
    want, got = brian.run(8, record=record), dense.run(8, record=record)
    assert got.keys() == want.keys() == {("A", "v"), ("B", "s"), ("B", "u")}
    assert got[("A", "v")].shape == (8, 2) and got[("B", "s")].shape == (8, 1)
    assert got[("B", "u")].shape == (8, 3)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0, err_msg=str(key))
    everything = dense.run(4, record=[("A", "v")])[("A", "v")]
    dense.set("A", "v", np.random.default_rng(1).normal(size=(2, 4)))  # a batch
    batch = dense.run(4, record=[("A", "v", [2]), ("A", "r")])
    assert batch[("A", "v")].shape == (4, 2, 1)
    np.testing.assert_allclose(batch[("A", "v")][:, :, 0], np.arctanh(batch[("A", "r")][:, :, 2]),
                               atol=1e-12)
    assert everything.shape == (4, 4)
    with pytest.raises(CircuitError, match="indices"):
        dense.run(1, record=[("A", "v", [4])])


def sparse_circuit(wmax=0.6):
    """Drawn connectivity (p, condition, n=2 with repeated pairs), summed variables
    into both sides and without a synaptic variable, a separable and a
    per-synapse learning rule, a clip."""
    c = Circuit("sparse", namespace={"tau": 10 * ms, "lr": 0.05, "wmax": wmax})
    c.add(Population("inp", 5, "r : 1"))
    c.add(Population("A", 6, "dv/dt = (-v + I + fb + c) / tau : 1\nr = tanh(v) : 1\n"
                             "I : 1\nfb : 1\nc : 1", values={"v": np.linspace(-1, 1, 6)}))
    c.add(Population("B", 4, "du/dt = (-u + J) / tau : 1\ns = 1 / (1 + exp(-u)) : 1\nJ : 1"))
    c.add(Projection("inA", "inp", "A", "k : 1\nI_post = k * r_pre : 1 (summed)",
                     connect={"condition": "i != j", "p": 0.5}, init={"k": normal(0.8)},
                     learning_rule="k -= lr * (v_post - r_pre)**2 * k"))
    c.add(Projection("AB", "A", "B", "w : 1\nJ_post = w * r_pre * (1 + s_post) : 1 (summed)\n"
                                     "fb_pre = -w * s_post / 2 : 1 (summed)",
                     connect={"p": 0.3}, init={"w": normal(0.5)},
                     learning_rule="w += lr * s_post * r_pre\nw = clip(w, -wmax, wmax)"))
    c.add(Projection("BA", "B", "A", "c_post = 0.3 * s_pre : 1 (summed)",
                     connect={"p": 0.4, "n": 2}))
    c.set_io(input=("inp", "r"))
    return c


def test_sparse_connectivity_matches_brian2():
    """Sparse projections: summed variables use only the drawn synapses (repeated
    pairs counted twice), learning rules change only them, weights in the
    (n_syn,) layout of Circuit.synapses; trajectories and weights to 1e-9."""
    c, seed = sparse_circuit(), 4
    brian, dense = Brian2Target(c, seed=seed), DenseTarget(c, seed=seed)
    n_full = {"inA": 30, "AB": 24, "BA": 48}
    for name, proj in c.projections.items():
        i, j = c.synapses(name, seed)
        assert proj.kind == "sparse" and 0 < len(i) < n_full[name]
        for var, value in dense.get_weights()[name].items():
            assert value.shape == (len(i),)
    i, j = c.synapses("BA", seed)
    assert len(set(zip(i.tolist(), j.tolist()))) < len(i), "BA must repeat some pairs"
    record = [("A", "v"), ("A", "I"), ("A", "fb"), ("A", "c"), ("B", "u"), ("B", "J")]
    x = np.array([1.0, -0.5, 0.3, 2.0, 0.0])
    for target in (brian, dense):
        target.clamp("inp", "r", x)
        target.settle()
    for rnd in range(3):
        want, got = brian.run(15, record=record), dense.run(15, record=record)
        for key in record:
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0,
                                       err_msg=f"{key}, round {rnd}")
        brian.learn()
        dense.learn()
        assert_weights_close(dense.get_weights(), brian.get_weights(), ATOL)
    w0 = c.initial_weights(seed)
    for name, var in (("inA", "k"), ("AB", "w")):
        assert np.abs(dense.get_weights()[name][var] - w0[name][var]).max() > 1e-3
    assert np.abs(dense.get_weights()["AB"]["w"]).max() == pytest.approx(0.6)  # clipped
    with pytest.raises(CircuitError, match="one value per synapse"):
        dense.set_weights({"AB": {"w": np.zeros((4, 6))}})


def test_sparse_batch_equals_separate_runs():
    c, B = sparse_circuit(wmax=10), 3  # no clipping: a batch sums per-sample increments
    w0 = c.initial_weights(0)
    x = np.random.default_rng(9).normal(size=(B, 5))
    batched = DenseTarget(c, weights=w0)
    batched.clamp("inp", "r", x)
    traj = batched.run(10, record=[("A", "v"), ("B", "u")])
    batched.learn()
    total = {p: {v: np.zeros_like(a) for v, a in vs.items()} for p, vs in w0.items()}
    for b in range(B):
        single = DenseTarget(c, weights=w0)
        single.clamp("inp", "r", x[b])
        one = single.run(10, record=[("A", "v"), ("B", "u")])
        single.learn()
        for key in one:
            np.testing.assert_allclose(traj[key][:, b], one[key], atol=BATCH_ATOL, rtol=0)
        for p, vs in single.get_weights().items():
            for v, a in vs.items():
                total[p][v] += a - w0[p][v]
    got = batched.get_weights()
    assert_weights_close({p: {v: got[p][v] - w0[p][v] for v in vs} for p, vs in w0.items()},
                         total, BATCH_ATOL)
    assert np.abs(total["AB"]["w"]).max() > 1e-3 and np.abs(total["inA"]["k"]).max() > 1e-3


def test_timed_arrays_like_brian2(backend):
    """TimedArrays in the namespace (of t, and of t and i) are evaluated by Brian2's
    own numpy implementation, rounded to the circuit's dt as in Brian2; replacing
    one between runs takes effect. The jax backend refuses them, naming them."""
    from brian2 import TimedArray
    rng = np.random.default_rng(5)
    c = Circuit("timed", dt=0.1 * ms, namespace={
        "tau": 1 * ms, "drive": TimedArray(rng.uniform(size=40), dt=0.25 * ms),
        "per_neuron": TimedArray(rng.normal(size=(30, 3)), dt=0.2 * ms)})
    c.add(Population("a", 3, "dv/dt = (-v + drive(t) + per_neuron(t, i) + I) / tau : 1\nI : 1"))
    c.add(Population("b", 2, "du/dt = -u / tau : 1"))
    c.add(Projection("ba", "b", "a", "w : 1\nI_post = w * u_pre : 1 (summed)",
                     init={"w": normal(0.5)}))
    if backend == "jax":
        with pytest.raises(CircuitError, match="TimedArray 'drive' with backend='jax'.*accept"):
            DenseTarget(c, seed=0)
        return
    assert DenseTarget.unsupported(c) is None
    brian, dense = Brian2Target(c, seed=0), DenseTarget(c, seed=0)
    want, got = brian.run(37, record=[("a", "v")]), dense.run(37, record=[("a", "v")])
    np.testing.assert_allclose(got[("a", "v")], want[("a", "v")], atol=ATOL, rtol=0)
    assert np.abs(np.diff(got[("a", "v")], axis=0)).max() > 1e-2
    c.namespace["drive"] = TimedArray(-rng.uniform(size=40), dt=0.25 * ms)
    want, got = brian.run(20, record=[("a", "v")]), dense.run(20, record=[("a", "v")])
    np.testing.assert_allclose(got[("a", "v")], want[("a", "v")], atol=ATOL, rtol=0)
    assert got[("a", "v")][-1].max() < 0.5


def test_summed_variables_that_are_not_products_match_brian2():
    """A summed variable that is not a product of one-sided factors (a comparison
    across a projection, a sum of terms, i and N of either side) is evaluated
    synapse by synapse: sparse and all-to-all, into post and into pre, as Brian2
    computes it, for one sample and row by row for a batch."""
    c = Circuit("pairs")
    c.add(Population("out", 5, "y : 1\nrank : 1\nm : 1\nwin = int(rank < 0.5) : 1"))
    c.add(Population("src", 4, "x : 1\nback : 1"))
    c.add(Projection("cmp", "out", "out", "rank_post = int(y_pre > y_post) + int(y_pre == "
                     "y_post) * int(i_pre < i_post) : 1 (summed)", connect={"condition": "i != j"}))
    c.add(Projection("sp", "src", "out", "w : 1\nm_post = w * exp(x_pre - y_post) + i_pre * "
                     "N_post : 1 (summed)", connect={"p": 0.6}, init={"w": normal(1.0)}))
    c.add(Projection("dense_pairs", "out", "src", "v : 1\nback_post = v * (y_pre - x_post)**2 "
                     "+ i_post : 1 (summed)", init={"v": normal(1.0)}))
    assert DenseTarget.unsupported(c) is None
    rng = np.random.default_rng(5)
    y = np.stack([[0.3, 2.0, 2.0, -1.0, 0.5], rng.normal(size=5), rng.normal(size=5)])
    x = rng.normal(size=(3, 4))
    batch = DenseTarget(c, seed=2)
    batch.set("out", "y", y)
    batch.set("src", "x", x)
    batch.settle()
    for b in range(3):
        want = {}
        for T in (Brian2Target, DenseTarget):
            t = T(c, seed=2)
            t.set("out", "y", y[b])
            t.set("src", "x", x[b])
            t.settle()
            got = {(p, v): t.get(p, v) for p, v in
                   (("out", "rank"), ("out", "win"), ("out", "m"), ("src", "back"))}
            for key, value in want.items():
                np.testing.assert_allclose(got[key], value, atol=1e-12, err_msg=str(key))
            want = got
        for key, value in want.items():
            np.testing.assert_allclose(batch.get(*key)[b], value, atol=1e-12, err_msg=str(key))
    np.testing.assert_array_equal(batch.get("out", "rank")[0], [3, 0, 1, 4, 2])  # ties: index


def test_random_init_draws_a_seeded_stream_per_population():
    """rand()/randn() in init code: a draw per sample and neuron with the right
    distribution, the same for the same seed (float32 too: drawn in float64),
    another for another seed, another at each trial; the stream's state is in
    extra_state, so a target restored from it draws what the first one draws."""
    c = Circuit("noise")
    c.add(Population("p", 3, "u : 1\nz : 1\ng = -log(-log(u)) : 1", init="u = rand()\nz = 2 * randn()"))
    c.add(Population("q", 2, "u : 1", init="u = rand()"))

    def draw(target, B=4000):
        target.set("p", "u", np.zeros((B, 3)))
        target.settle()
        return target.get("p", "u"), target.get("p", "z")

    t = DenseTarget(c, seed=1)
    u, z = draw(t)
    n = u.size
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(z.mean()) < 5 * 2 / np.sqrt(n) and abs(z.std() - 2) < 0.05
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.06            # neurons independent
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < 0.06          # samples independent
    g = t.get("p", "g")                                    # Gumbel: mean = Euler's gamma
    assert abs(g.mean() - 0.5772) < 5 * 1.2825 / np.sqrt(n)
    np.testing.assert_array_equal(draw(DenseTarget(c, seed=1))[1], z)
    np.testing.assert_allclose(draw(DenseTarget(c, seed=1, dtype=np.float32))[1], z, atol=1e-6)
    assert not np.allclose(draw(DenseTarget(c, seed=2))[1], z)
    state = t.extra_state()
    nxt = draw(t)[1]
    assert not np.allclose(nxt, z)                                      # a new trial
    restored = DenseTarget(c, seed=5)
    restored.load_extra_state(state)
    np.testing.assert_array_equal(draw(restored)[1], nxt)
    # single precision keeps rand() in [0, 1): a float64 draw just below 1 rounds to
    # 1.0 in float32, where -log(-log(u)) is infinite (and 0 * inf a NaN)
    edge = np.array([0.0, 0.5, 1 - 2.0 ** -30])
    assert np.float32(edge[-1]) == 1.0
    kept = unit_interval(edge, np.float32)
    assert kept.dtype == np.float32 and kept.max() < 1 and np.isfinite(-np.log(-np.log(kept[1:]))).all()
    np.testing.assert_array_equal(unit_interval(edge, np.float64), edge)
    with pytest.raises(CircuitError, match="poisson"):
        c2 = Circuit("pois")
        c2.add(Population("p", 2, "k : 1", init="k = poisson(3)"))
        DenseTarget(c2)

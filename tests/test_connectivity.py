"""Connectivity and delays as Brian2 spells them, drawn once per circuit and seed,
and the declaration defects of issue 10 (a declaration that mutates itself, a
global code-generation preference, unchecked synaptic shapes, learning rules
that assign unknown names, shape checks that draw whole matrices)."""
import dataclasses

import numpy as np
import pytest
from brian2 import ms, second

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant, normal
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.plasticity import PairSTDP

LIF = "dv/dt = -v / (10*ms) : 1\nI : 1"


def pops(n_a=50, n_b=40, **ns):
    c = Circuit("conn", namespace=ns, dt=0.1 * ms)
    c.add(Population("a", n_a, LIF, threshold="v > 1", reset="v = 0"))
    c.add(Population("b", n_b, LIF, threshold="v > 1", reset="v = 0"))
    return c


def syn(c, name="s", **kw):
    kw.setdefault("model", "w : 1")
    kw.setdefault("on_pre", "v_post += w")
    return c.add(Projection(name, "a", "b", **kw))


def test_random_connectivity_is_drawn_once_per_seed():
    c = pops()
    syn(c, connect={"p": 0.1})
    i, j = c.synapses("s", seed=3)
    assert 0.05 * 2000 < len(i) < 0.15 * 2000
    assert np.all((0 <= i) & (i < 50)) and np.all((0 <= j) & (j < 40))
    again = pops()
    syn(again, connect={"p": 0.1})
    np.testing.assert_array_equal(again.synapses("s", seed=3)[0], i)  # a new circuit, same draw
    assert not np.array_equal(c.synapses("s", seed=4)[0], i)
    # another projection does not move this one's draw, nor Brian2's/numpy's global stream
    state = np.random.get_state()[1].copy()
    syn(again, "s2", connect={"p": 0.5})
    np.testing.assert_array_equal(again.synapses("s", seed=3)[1], j)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert c.initial_weights(3)["s"]["w"].shape == (len(i),)


def test_brian2_connect_spellings_mean_what_brian2_means():
    c = Circuit("rec", dt=0.1 * ms)
    c.add(Population("e", 30, LIF))
    c.add(Projection("cond", "e", "e", "w : 1", connect={"condition": "i != j"}))
    c.add(Projection("ring", "e", "e", "w : 1", on_pre="v_post += w",
                     connect={"j": "k for k in range(i - 2, i + 3)", "skip_if_invalid": True}))
    c.add(Projection("twice", "e", "e", "w : 1", connect={"i": [3, 0, 5], "j": [1, 1, 2],
                                                          }))
    c.add(Projection("multi", "e", "e", "w : 1", connect={"condition": "i == j", "n": 2}))
    c.add(Projection("diag", "e", "e", "w : 1", connect={"j": "i"}))
    i, j = c.synapses("cond")
    assert len(i) == 30 * 29 and not np.any(i == j)
    i, j = c.synapses("ring")
    assert len(i) == 30 * 5 - 6 and np.all(np.abs(i - j) <= 2)
    i, j = c.synapses("twice")
    np.testing.assert_array_equal(i, [3, 0, 5])  # explicit synapses keep their order
    np.testing.assert_array_equal(j, [1, 1, 2])
    i, j = c.synapses("multi")
    assert len(i) == 60 and np.all(i == j)
    assert c.projections["diag"].kind == "one_to_one"
    assert c.projections["diag"].connect == "one_to_one"


@pytest.mark.parametrize("connect, fragment", [
    ({"prob": 0.1}, "not keywords of brian2 Synapses.connect"),
    ({"p": 1.5}, "between 0 and 1"),
    ({"i": [0, 1]}, "both 'i' and 'j'"),
    ("sparse", "not supported"),
    (0.1, "must be 'all', 'one_to_one' or a dict"),
])
def test_bad_connectivity_is_named(connect, fragment):
    with pytest.raises(CircuitError, match=fragment):
        syn(pops(), connect=connect)


def test_bad_connect_expressions_and_indices_are_named():
    c = pops()
    syn(c, connect={"i": [0, 60], "j": [0, 1]})
    with pytest.raises(CircuitError, match="outside 0..49"):
        c.synapses("s")
    c = pops()
    syn(c, connect={"condition": "i != jj"})
    with pytest.raises(CircuitError, match="Brian2 cannot connect"):
        c.synapses("s")


def test_brian2_simulates_the_drawn_synapses_and_delays():
    c = pops()
    syn(c, connect={"p": 0.2}, init={"w": normal(0.1)},
        delay=lambda rng, shape: rng.uniform(0, 2, size=shape) * ms)
    t = Brian2Target(c, seed=5)
    s = t.objs.synapses["s"]
    i, j = c.synapses("s", 5)
    np.testing.assert_array_equal(s.i[:], i)
    np.testing.assert_array_equal(s.j[:], j)
    np.testing.assert_allclose(s.delay[:] / second, c.delays("s", 5))
    assert c.delays("s", 5).max() > 1e-3 and c.delays("s", 5).min() < 1e-3
    np.testing.assert_array_equal(t.get_weights()["s"]["w"], c.initial_weights(5)["s"]["w"])


def test_cuba_sized_sparse_projection_holds_only_its_synapses():
    c = Circuit("cuba_like", dt=0.1 * ms)
    c.add(Population("P", 4000, LIF, threshold="v > 1", reset="v = 0"))
    c.add(Projection("Ce", "P", "P", "w : 1", on_pre="v_post += w", connect={"p": 0.02},
                     init={"w": constant(0.1)}))
    n = len(c.synapses("Ce")[0])
    assert abs(n - 320_000) < 5 * np.sqrt(320_000)
    assert c.initial_weights(0)["Ce"]["w"].shape == (n,)


def test_homogeneous_delay_shifts_arrival_on_brian2():
    def arrival(delay):
        c = Circuit("d", dt=0.1 * ms)
        c.add(Population("src", 1, "v : 1", threshold="t > 0.95*ms and t < 1.05*ms"))
        c.add(Population("dst", 1, "x : 1"))
        c.add(Projection("s", "src", "dst", "w : 1", on_pre="x_post += 1", delay=delay))
        t = Brian2Target(c)
        x = t.run(60, record=[("dst", "x")])[("dst", "x")][:, 0]
        return int(np.argmax(x > 0))
    assert arrival(None) == 11
    assert arrival(2.5 * ms) == 36


@pytest.mark.parametrize("delay", [-1 * ms, 3.0, 5 * second ** 2, [1, 2] * ms * ms])
def test_bad_delays_are_named(delay):
    with pytest.raises(CircuitError, match="delay"):
        syn(pops(), delay=delay)


def test_a_declaration_never_changes_itself():
    rule = PairSTDP(wmax=1.0)
    c = pops()
    p = syn(c, plasticity=rule)
    assert p.on_pre == "v_post += w" and "apre" in p.pre_code
    copy = dataclasses.replace(p, name="s2")
    assert copy.on_pre == "v_post += w"
    assert copy.pre_code.count("apre +=") == 1
    assert copy.pre_code == p.pre_code.replace("s_", "s2_")


def test_a_declaration_is_an_immutable_value_and_its_rule_code_is_derived():
    p = syn(pops(), plasticity=PairSTDP(wmax=1.0))
    for attr, value in (("on_pre", "v_post += 2 * w"), ("pre_code", ""), ("kind", "sparse")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(p, attr, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.plasticity.wmax = 2.0  # the derived code would no longer be the rule's
    # the merged code is no field: a copy without the rule runs the projection's own
    assert {"pre_code", "post_code", "equations", "rule_namespace"}.isdisjoint(
        f.name for f in dataclasses.fields(p))
    plain = dataclasses.replace(p, plasticity=None)
    assert plain.pre_code == "v_post += w" and plain.post_code is None
    assert "apre" not in plain.equations.names and dict(plain.rule_namespace) == {}
    with pytest.raises(TypeError):
        p.rule_namespace["s_wmax"] = 3.0


def test_learning_rule_assigning_an_unknown_name_is_refused():
    with pytest.raises(CircuitError, match="'wx'.*not a stored synaptic variable"):
        syn(pops(lr=0.1), learning_rule="wx = w + lr * v_post * v_pre")


def test_brian2_set_weights_refuses_transposed_and_flat_matrices():
    c = pops(5, 3)
    syn(c)
    t = Brian2Target(c)
    good = np.arange(15.0).reshape(3, 5)
    t.set_weights({"s": {"w": good}})
    np.testing.assert_array_equal(t.get_weights()["s"]["w"], good)
    for bad in (good.T, good.ravel()):
        with pytest.raises(CircuitError, match=r"needs shape \(3, 5\)"):
            t.set_weights({"s": {"w": bad}})


def test_add_does_not_draw_initial_weights():
    calls = []

    def init(rng, shape):
        calls.append(shape)
        return np.zeros(shape)
    c = Circuit("huge")
    c.add(Population("big", 10 ** 9, "r : 1"))
    c.add(Population("small", 10, "r : 1\nI : 1"))
    c.add(Projection("p", "big", "small", "w : 1\nI_post = w * r_pre : 1 (summed)",
                     init={"w": init}))
    assert calls == []
    with pytest.raises(CircuitError, match=r"needs shape \(10, 3\)"):
        c2 = Circuit("shape")
        c2.add(Population("x", 3, "r : 1"))
        c2.add(Population("y", 10, "r : 1\nI : 1"))
        c2.add(Projection("p", "x", "y", "w : 1\nI_post = w * r_pre : 1 (summed)",
                          init={"w": np.zeros((3, 10))}))


def test_record_chosen_neurons_on_brian2():
    c = Circuit("rec", dt=0.1 * ms)
    c.add(Population("a", 6, "dv/dt = (I - v) / (10*ms) : 1\nI : 1", threshold="v > 1",
                     reset="v = 0", values={"I": np.linspace(1.5, 3.0, 6)}))
    t = Brian2Target(c)
    full = t.run(200, record=[("a", "v"), ("a", "spikes")])
    t = Brian2Target(c)
    out = t.run(200, record=[("a", "v", [4, 1]), ("a", "spikes", [1, 2])])
    np.testing.assert_array_equal(out[("a", "v")], full[("a", "v")][:, [4, 1]])
    rows = full[("a", "spikes")]
    np.testing.assert_array_equal(out[("a", "spikes")], rows[np.isin(rows[:, 1], [1, 2])])
    assert len(out[("a", "spikes")]) >= 4
    with pytest.raises(CircuitError, match="neuron indices"):
        t.run(1, record=[("a", "v", [6])])
    with pytest.raises(CircuitError, match="named twice"):
        t.run(1, record=[("a", "v"), ("a", "v", [1])])


def test_code_generation_target_does_not_leak_between_targets():
    from brian2 import prefs
    c = pops(3, 2)
    before = prefs.codegen.target
    cython = Brian2Target(c, codegen="cython")
    numpy_target = Brian2Target(c, codegen="numpy")
    cython.run(2)
    numpy_target.run(2)
    assert type(cython.objs.groups["a"].state_updater.codeobj).__name__ == "CythonCodeObject"
    assert type(numpy_target.objs.groups["a"].state_updater.codeobj).__name__ == \
        "NumpyCodeObject"
    assert prefs.codegen.target == before


def test_namespace_changed_between_runs_takes_effect_on_brian2():
    c = Circuit("drive", namespace={"I0": 1.0}, dt=0.1 * ms)
    c.add(Population("r", 2, "dx/dt = I0 / (10*ms) : 1"))
    t = Brian2Target(c)
    t.run(10)
    c.namespace["I0"] = -3.0
    t.run(10)
    np.testing.assert_allclose(t.get("r", "x"), [0.1 - 0.3] * 2)


def test_a_projection_without_synapses_runs_on_brian2():
    c = pops(4, 3)
    syn(c, connect={"p": 0.0}, delay=lambda rng, shape: rng.uniform(0, 1, shape) * ms)
    t = Brian2Target(c)
    t.run(5)
    assert t.get_weights()["s"]["w"].shape == (0,)

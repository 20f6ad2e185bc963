"""Bad declarations fail early, with a message that names the problem and the fix."""
import numpy as np
import pytest
from brian2 import ms, mV

from neurosim.brian2_build import check
from neurosim.circuit import Circuit, CircuitError, Population, Projection
from neurosim.lowering import summed_order
from neurosim.circuits.predictive_coding import relaxed_predictive_coding
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import Brian2Target

RATE = "dr/dt = (-r + I) / tau : 1\nI : 1"


def two_pops(**ns):
    c = Circuit("c", namespace={"tau": 10 * ms, **ns})
    c.add(Population("a", 3, RATE))
    c.add(Population("b", 2, RATE))
    return c


def check_message(exc_info, *fragments):
    msg = str(exc_info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in message: {msg}"


def test_unknown_population():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.add(Projection("p", "a", "nowhere", "w : 1\nI_post = w * r_pre : 1 (summed)"))
    check_message(e, "unknown target population 'nowhere'", "['a', 'b']")


def test_unknown_variable_in_equations():
    c = two_pops()
    c.add(Population("x", 2, "dv/dt = (-v + foo) / tau : 1"))
    with pytest.raises(CircuitError) as e:
        check(c)
    check_message(e, "foo", "unknown identifier", "namespace")


def test_unit_mismatch():
    c = Circuit("c", namespace={"tau": 10})       # tau without a unit
    c.add(Population("a", 2, RATE))
    with pytest.raises(CircuitError) as e:
        check(c)
    check_message(e, "unit mismatch", "tau=10*ms")


def test_unit_mismatch_in_summed_variable():
    c = Circuit("c", namespace={"tau": 10 * ms})
    c.add(Population("a", 2, "dv/dt = -v / tau : volt\nI : 1"))
    c.add(Population("b", 2, "dv/dt = (-v + I) / tau : volt\nI : volt"))
    c.add(Projection("p", "a", "b", "w : 1\nI_post = w * I_pre : 1 (summed)"))
    with pytest.raises(CircuitError) as e:
        check(c)
    check_message(e, "unit mismatch")


def test_shape_mismatch_of_weights():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)",
                         init={"w": np.zeros((3, 2))}))
    check_message(e, "shape (3, 2)", "needs shape (2, 3)", "rows = target")


def test_shape_mismatch_of_clamp():
    c = two_pops()
    target = Brian2Target(c)
    with pytest.raises(CircuitError) as e:
        target.clamp("a", "r", np.zeros(5))
    check_message(e, "has 3 neurons")


def test_missing_parameter():
    c = Circuit("c")                               # no tau in the namespace
    c.add(Population("a", 2, RATE))
    with pytest.raises(CircuitError) as e:
        check(c)
    check_message(e, "tau", "namespace")


def test_invalid_activation():
    with pytest.raises(CircuitError) as e:
        relaxed_predictive_coding((4, 3, 2), activation="softplus")
    check_message(e, "softplus", "relu", "tanh")


def test_one_to_one_size_mismatch():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.add(Projection("p", "a", "b", "I_post = r_pre : 1 (summed)", connect="one_to_one"))
    check_message(e, "equal size", "connect='all'")


def test_summed_target_not_declared():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.add(Projection("p", "a", "b", "w : 1\nJ_post = w * r_pre : 1 (summed)"))
    check_message(e, "b.J", "add 'J : <unit>'")


def test_duplicate_name():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.add(Population("a", 4, RATE))
    check_message(e, "used twice")


def test_bad_equation_syntax():
    with pytest.raises(CircuitError) as e:
        Population("a", 3, "dr/dt = (-r + : 1")
    check_message(e, "do not parse", "Brian2 syntax")


def test_unknown_unit_in_equation():
    with pytest.raises(CircuitError) as e:
        Population("a", 3, "dv/dt = -v / tau : furlong")
    check_message(e, "furlong")


def test_bad_size_and_name():
    with pytest.raises(CircuitError, match="positive integer"):
        Population("a", 0, RATE)
    with pytest.raises(CircuitError, match="valid identifier"):
        Population("1st", 3, RATE)


def test_unknown_variable_in_clamp_and_io():
    c = two_pops()
    with pytest.raises(CircuitError) as e:
        c.set_io(input=("a", "v"))
    check_message(e, "cannot be used", "stored variables", "['r', 'I']")
    target = Brian2Target(c)
    with pytest.raises(CircuitError, match="no variable 'q'"):
        target.get("a", "q")


def test_unknown_variable_in_learning_rule():
    c = two_pops(lr=0.1)
    c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)",
                     learning_rule="w += lr * err_post * r_pre"))
    with pytest.raises(CircuitError) as e:
        check(c)
    check_message(e, "err_post")


@pytest.mark.parametrize("kw,fragments", [
    ({"learning_bound": 0}, ("learning_bound=0", "positive finite number")),
    ({"learning_bound": float("inf")}, ("learning_bound=inf",)),
    ({"learning_bound": "1"}, ("learning_bound='1'",)),
    ({"learning_bound": 0.1, "learning_rule": None}, ("has none", "leave learning_bound out")),
    ({"learning_bound": 0.1, "learning_rule": "w = w + r_pre"},
     ("one increment", "assigned ('w = w + r_pre')")),
    ({"learning_bound": 0.1, "learning_rule": "w += r_pre\nw -= r_post"},
     ("incremented more than once",)),
])
def test_bad_learning_bound(kw, fragments):
    kw = {"learning_rule": "w += lr * r_pre", **kw}
    with pytest.raises(CircuitError) as e:
        Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)", **kw)
    check_message(e, "Projection 'p'", *fragments)


def test_learning_bound_is_the_same_change_on_every_target():
    """The bound clips each synapse's change (dense: the batch's, after the mean;
    Brian2: the one sample's); with a bound that binds for some synapses only."""
    import numpy as np
    from neurosim.target import train_trial
    c = Circuit("c", namespace={"tau": 10 * ms, "lr": 1.0})
    c.add(Population("a", 3, "r : 1"))
    c.add(Population("b", 2, "r : 1\nI : 1"))
    c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)",
                     init={"w": 0.0}, learning_rule="w += lr * r_post * r_pre",
                     learning_bound=0.25))
    c.set_io(input=("a", "r"), output=("b", "r"))
    x, y = np.array([0.1, 0.5, 1.0]), np.array([0.2, 1.0])
    want = np.clip(np.outer(y, x), -0.25, 0.25)        # (post, pre)
    for name in ("dense", "brian2-numpy"):
        target = make_target(name, c, seed=0)
        train_trial(target, x, y, 1)
        w = target.get_weights()["p"]["w"].reshape(2, 3)
        np.testing.assert_allclose(w, want, err_msg=name)
    dense = make_target("dense", c, seed=0, batch_mean=True)
    train_trial(dense, np.stack([x, x / 2]), np.stack([y, y]), 1)  # mean 0.75 outer(y, x)
    np.testing.assert_allclose(dense.get_weights()["p"]["w"].reshape(2, 3),
                               np.clip(0.75 * np.outer(y, x), -0.25, 0.25))


def test_init_for_undeclared_synaptic_variable():
    c = two_pops()
    with pytest.raises(CircuitError, match="unknown synaptic variable 'g'"):
        c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)",
                         init={"g": 1.0}))


def test_algebraic_loop_between_summed_variables():
    c = Circuit("c")
    c.add(Population("a", 2, "x : 1\ny = x : 1"))
    c.add(Population("b", 2, "x : 1\ny = x : 1"))
    c.add(Projection("ab", "a", "b", "x_post = y_pre : 1 (summed)", connect="one_to_one"))
    c.add(Projection("ba", "b", "a", "x_post = y_pre : 1 (summed)", connect="one_to_one"))
    with pytest.raises(CircuitError, match="algebraic loop"):
        summed_order(c)


def test_unknown_target_and_bad_dt():
    c = two_pops()
    with pytest.raises(CircuitError, match="available targets"):
        make_target("loihi9", c)
    with pytest.raises(CircuitError, match="positive time"):
        Circuit("c", dt=1 * mV)


def test_conflicting_relaxations():
    with pytest.raises(CircuitError, match="exclude each other"):
        relaxed_predictive_coding((4, 3, 2), learned_feedback=True, fixed_random_feedback=True)


def test_valid_circuit_passes_and_orders_summed_variables():
    c = relaxed_predictive_coding((5, 4, 3))
    check(c)
    order = {(p, v): lv for p, v, lv in summed_order(c)}
    # the error sent up needs the prediction first: level of feedback > level of pred
    assert order[("weights1", "feedback_pre")] > order[("weights1", "pred_post")]

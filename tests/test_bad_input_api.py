"""Bad values given through the Python API stop with a named CircuitError (issue 11).

NaN or infinite data (initial values, weights, namespace constants, dt, values
given to set/clamp/set_weights) would run, and spread, without a word on every
target; an unknown integration method used to surface as Brian2's unfilled
'{method}'; step counts, seeds and misspelt options failed deep inside numpy or
Brian2 (or not at all). Each case here names the thing and the fix. Nothing is
compiled: every refusal comes before a run, so the brian2-cpp and brian2-cython
targets are only built (their host copy runs numpy code).
"""
import gc
import logging

import numpy as np
import pytest
from brian2 import mV, ms

from neurosim.brian2_build import check
from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.hardware_targets.dense import DenseTarget

RATE = "dr/dt = (-r + I) / tau : 1\nI : 1"
SUMMED = "w : 1\nI_post = w * r_pre : 1 (summed)"
TARGETS = ["brian2-numpy", "brian2-cython", "brian2-cpp", "dense"]


def circuit(values=None, init=None, namespace=None, dt=1 * ms, method="euler"):
    c = Circuit("c", namespace={"tau": 10 * ms} if namespace is None else namespace, dt=dt)
    c.add(Population("a", 3, RATE, values=values or {}, method=method))
    c.add(Population("b", 2, RATE))
    c.add(Projection("p", "a", "b", SUMMED, init=init or {}))
    return c


def refused(fn, *fragments):
    with pytest.raises(CircuitError) as e:
        fn()
    for frag in fragments:
        assert frag in str(e.value), f"{frag!r} not in message: {e.value}"
    return str(e.value)


FINITE = "finite values are needed"


# --- declarations: refused when declared or checked ----------------------------------

@pytest.mark.parametrize("value", [np.nan, [0.0, np.inf, 0.0], -np.inf * np.ones(3)])
def test_nonfinite_initial_value_of_population(value):
    refused(lambda: Population("a", 3, RATE, values={"r": value}),
            "Population 'a'", "initial value of 'r'", FINITE)


def test_nonfinite_declared_weights():
    w = np.zeros((2, 3))
    w[1, 2] = np.nan
    refused(lambda: circuit(init={"w": w}), "Projection 'p'", "init of 'w'", "(1, 2)", FINITE)


def test_initialiser_drawing_nan_refused_when_the_target_is_built():
    c = circuit(init={"w": constant(np.nan)})
    refused(lambda: c.initial_weights(0), "Projection 'p'", "'w'", "constant(nan)", FINITE)
    refused(lambda: DenseTarget(c), "Projection 'p'", FINITE)


@pytest.mark.parametrize("tau", [np.inf * ms, np.nan * ms, np.array([1.0, np.inf])])
def test_nonfinite_namespace_constant(tau):
    refused(lambda: Circuit("c", namespace={"tau": tau}), "namespace constant 'tau'", FINITE)
    c = circuit()
    check(c)  # a passed check is cached, but the constants are checked every time
    c.namespace["tau"] = tau  # after the declaration: refused by check()
    refused(lambda: check(c), "namespace constant 'tau'", FINITE)


@pytest.mark.parametrize("dt", [np.inf * ms, np.nan * ms, 0 * ms, -1 * ms, 0.001, 1 * mV])
def test_bad_dt(dt):
    refused(lambda: Circuit("c", dt=dt), "dt=", "positive time", "1*ms")


def test_dt_reassigned_to_infinity_refused_by_check():
    c = circuit()
    c.dt = np.inf * ms
    refused(lambda: DenseTarget(c), "dt=inf", "positive time")


@pytest.mark.parametrize("method", ["exec", ["exact", "eulr"], None, 3])
def test_unknown_integration_method(method):
    msg = refused(lambda: Population("a", 3, RATE, method=method),
                  "Population 'a'", f"method={method!r}", "'euler'", "'rk4'", "'exact'")
    assert "{method}" not in msg


def test_known_methods_still_accepted():
    assert Population("a", 3, RATE, method=["exact", "euler"]).method == ["exact", "euler"]
    Brian2Target(circuit(method="rk4"))


def test_quantity_in_the_wrong_units():
    # targets store SI values without units: 5*mV for a dimensionless r would be 0.005
    refused(lambda: Population("a", 3, RATE, values={"r": 5 * mV}),
            "initial value of 'r' is 5. mV", "dimensionless")
    refused(lambda: circuit(init={"w": 5 * mV}), "init of 'w'", "dimensionless")


def test_initial_value_of_a_subexpression_or_a_string():
    refused(lambda: Population("a", 3, RATE + "\nq = 2*r : 1", values={"q": 1.0}),
            "'q'", "not a stored variable", "['I', 'r']")
    refused(lambda: Population("a", 3, RATE, values={"r": "zero"}), "'zero' is not numeric")


def test_namespace_must_be_a_mapping():
    refused(lambda: Circuit("c", namespace=[("tau", 10 * ms)]), "namespace=", "dict")


@pytest.mark.parametrize("seed", [-1, 1.5, 2 ** 40, True, "0"])
def test_bad_seed(seed):
    c = circuit()
    refused(lambda: c.initial_weights(seed), f"seed={seed!r}", "0..4294967295")
    refused(lambda: DenseTarget(c, seed=seed), f"seed={seed!r}")


def test_not_a_circuit():
    refused(lambda: Brian2Target("c"), "Brian2Target runs a neurosim Circuit, not str")


def test_misspelt_option_of_a_target_class():
    c = circuit()
    refused(lambda: DenseTarget(c, dtpye=np.float32), "'dtpye'", "did you mean 'dtype'")
    refused(lambda: Brian2Target(c, codgen="cython"), "'codgen'", "did you mean 'codegen'")


# --- every target that runs here: set, clamp, set_weights, weights=, run --------------

@pytest.fixture(scope="module")
def targets():
    made = {}

    def get(name):
        if name not in made:
            made[name] = make_target(name, circuit())
        return made[name]
    yield get
    for t in made.values():
        t.close()


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("values, fragment", [
    ([0.0, np.nan, 0.0], "got nan at index 1"),
    (np.inf, "got inf"),
    (["x", "y", "z"], "is not numeric"),
    (None, "None is not numeric"),
])
def test_set_and_clamp_refuse_bad_values(targets, name, values, fragment):
    t = targets(name)
    before = t.get("a", "r")
    refused(lambda: t.set("a", "r", values), "Setting a.r", fragment)
    refused(lambda: t.clamp("a", "r", values), "Clamping a.r", fragment)
    assert "a" not in t.clamped
    np.testing.assert_array_equal(t.get("a", "r"), before)


@pytest.mark.parametrize("name", TARGETS)
def test_set_weights_refuses_bad_weights(targets, name):
    t = targets(name)
    before = t.get_weights()["p"]["w"]
    w = np.zeros((2, 3))
    w[0, 1] = -np.inf
    refused(lambda: t.set_weights({"p": {"w": w}}), "Projection 'p', weights 'w'",
            "got -inf at index (0, 1)", FINITE)
    refused(lambda: t.set_weights({"p": {"zz": 1.0}}), "no synaptic variable 'zz'", "['w']")
    refused(lambda: t.set_weights({"p": 3.0}), "weights['p'] must be a dict")
    refused(lambda: t.set_weights([w]), "weights must be a dict")
    np.testing.assert_array_equal(t.get_weights()["p"]["w"], before)


@pytest.mark.parametrize("name", TARGETS)
def test_constructor_weights_must_be_finite(name):
    c = circuit()
    w = np.full((2, 3), np.nan)
    refused(lambda: make_target(name, c, weights={"p": {"w": w}}),
            "Projection 'p', weights 'w'", FINITE)


@pytest.mark.parametrize("name", TARGETS)
def test_constructor_weights_must_be_complete(name):
    # a projection left out used to start at 0 on the Brian2 targets, without a word
    c = circuit()
    c.add(Projection("q", "b", "a", SUMMED))
    w = c.initial_weights(0)
    del w["q"]
    refused(lambda: make_target(name, c, weights=w), "weights= lacks q.w",
            "initial_weights(seed)")


@pytest.mark.parametrize("what", ["reset", "init"])
def test_assignment_to_an_undeclared_name_is_refused(what):
    # Brian2 takes 'q = 0' as a temporary variable: a misspelt name would do nothing
    code = {"reset": "vv = 0", "init": "rr = 1"}[what]
    kwargs = {"threshold": "r > 1"} if what == "reset" else {}
    refused(lambda: Population("a", 3, RATE, **{what: code}, **kwargs),
            f"Population 'a' {what}", "'vv'" if what == "reset" else "'rr'",
            "would change nothing")
    Population("a", 3, RATE, **{what: "tmp = r\nr = tmp * 0"}, **kwargs)  # a temporary


def test_option_fixed_by_the_registry_name():
    refused(lambda: make_target("brian2-numpy", circuit(), codegen="cython"),
            "fixes codegen='numpy'", "brian2-cython")


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("n_steps", [-1, 1.5, float("nan"), "3", True])
def test_run_step_count(targets, name, n_steps):
    refused(lambda: targets(name).run(n_steps), f"n_steps={n_steps!r}", "non-negative integer")


@pytest.mark.parametrize("name", TARGETS)
def test_namespace_made_infinite_after_the_target_was_built(name):
    c = circuit()
    t = make_target(name, c)
    c.namespace["tau"] = np.inf * ms
    refused(lambda: t.run(1), "namespace constant 'tau' is inf", FINITE)
    refused(t.settle, "namespace constant 'tau' is inf")
    t.close()


@pytest.mark.parametrize("name", ["brian2-cpp", "brian2-numpy"])
def test_misspelt_option_through_the_subclass_chain(name):
    # Brian2Target passes a subclass's options on through **options: a typo must not
    # be swallowed there
    from neurosim.hardware_targets.brian2 import CppStandaloneTarget
    cls = CppStandaloneTarget if name == "brian2-cpp" else Brian2Target
    msg = refused(lambda: cls(circuit(), directry="x"), "'directry'")
    assert ("did you mean 'directory'" in msg) == (name == "brian2-cpp")


# --- Brian2's "never included in a network" warning after a refusal ------------------

@pytest.fixture
def brian2_warnings():
    """Messages Brian2 logs about objects deleted outside any network."""
    seen = []

    class Handler(logging.Handler):
        def emit(self, record):
            if "never included in a network" in record.getMessage():
                seen.append(record.getMessage().splitlines()[0])
    handler = Handler(level=logging.WARNING)
    logger = logging.getLogger("brian2")
    logger.addHandler(handler)
    gc.collect()
    seen.clear()
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def _spiking_synapses_without_threshold(c):
    c.add(Projection("q", "a", "b", "w : 1", on_pre="I_post += w"))


def _summed_unit_mismatch(c):
    c.add(Population("v", 2, "dv/dt = -v / tau : volt\nI : 1"))
    c.add(Projection("q", "a", "v", "w : 1\nI_post = w * r_pre : volt (summed)"))


def _unknown_identifier(c):
    c.add(Population("x", 2, "dv/dt = (-v + foo) / tau : 1"))


@pytest.mark.parametrize("declare", [_spiking_synapses_without_threshold,
                                     _summed_unit_mismatch, _unknown_identifier])
def test_refused_declaration_leaves_no_unused_object_warning(brian2_warnings, declare):
    c = circuit()
    declare(c)
    with pytest.raises(CircuitError):
        Brian2Target(c)
    del c
    gc.collect()
    assert brian2_warnings == []


def test_refused_or_unrun_target_leaves_no_unused_object_warning(brian2_warnings):
    c = circuit()
    with pytest.raises(CircuitError, match="shape"):
        Brian2Target(c, weights={"p": {"w": np.zeros((3, 3))}})
    t = Brian2Target(c)  # built, never run, discarded
    del t
    gc.collect()
    assert brian2_warnings == []


def test_codegen_given_to_a_standalone_target():
    from neurosim.hardware_targets.brian2 import CppStandaloneTarget
    refused(lambda: CppStandaloneTarget(circuit(), codegen="cython"),
            "CppStandaloneTarget", "codegen option applies to Brian2Target")


@pytest.mark.parametrize("make", ["normal", "abs_normal"])
@pytest.mark.parametrize("std", [-1.0, np.nan, np.inf, "0.1"])
def test_initialiser_spread_checked_when_made(make, std):
    # numpy's 'scale < 0' ValueError came only when the weights were drawn
    import neurosim.circuit as declaration
    refused(lambda: getattr(declaration, make)(std), f"{make}(std=", "finite number >= 0")


def test_circuit_factory_parameters_are_checked():
    from neurosim.circuits import relaxed_predictive_coding
    refused(lambda: relaxed_predictive_coding((4, 3, 2), "tanh", weight_std=-1.0), "normal(std=")
    refused(lambda: DenseTarget(relaxed_predictive_coding((4, 3, 2), "tanh",
                                                          learning_rate=np.nan)),
            "namespace constant 'lr' is nan")


# --- Lava: the same checks, in a fresh interpreter (Lava forks workers) ---------------

def case_lava():
    from neurosim.hardware_targets.lava import LavaTarget
    messages = {}
    c = circuit()
    probes = {
        "set": lambda t: t.set("a", "r", [0.0, np.nan, 0.0]),
        "set_weights": lambda t: t.set_weights({"p": {"w": np.full((2, 3), np.inf)}}),
        "run": lambda t: t.run(-1),
        "namespace": lambda t: (c.namespace.__setitem__("tau", np.inf * ms), t.run(1)),
    }
    for name, probe in probes.items():
        with LavaTarget(c) as t:
            try:
                probe(t)
                messages[name] = None
            except CircuitError as exc:
                messages[name] = str(exc)
        c.namespace["tau"] = 10 * ms
    try:
        LavaTarget(c, frac_bitz=3)
    except CircuitError as exc:
        messages["option"] = str(exc)
    return messages


def test_lava_refuses_the_same_bad_values():
    import importlib.util
    if importlib.util.find_spec("lava") is None:
        pytest.skip("lava-nc is not installed")
    from isolated import case_runner
    res = case_runner(__file__, 240)("lava")
    assert FINITE in res["set"] and "Setting a.r" in res["set"]
    assert FINITE in res["set_weights"] and "Projection 'p'" in res["set_weights"]
    assert "non-negative integer" in res["run"]
    assert "namespace constant 'tau' is inf" in res["namespace"]
    assert "did you mean 'frac_bits'" in res["option"]


if __name__ == "__main__":
    from isolated import main
    main(globals())

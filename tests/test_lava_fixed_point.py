"""lava-fixed never saturates silently: every state, message or weight that
leaves the range of its integers stops the run with ``FixedPointOverflow``
(default) or warns (``overflow='warn'``), naming the variable, the value, the
range and the fix; a declared ``weight_range`` sets the weight exponent.

Each case runs in a fresh interpreter (this file run as a script) in its own
session with a timeout, like ``tests/test_lava_target.py``.
"""
from __future__ import annotations


import numpy as np
import pytest
from isolated import case_runner, main, skip_without_lava

skip_without_lava()

TIMEOUT = 240.0


run_case = case_runner(__file__, TIMEOUT)


# --- the cases (run in the child interpreter) ----------------------------------------

def _attempt(make, body):
    """``body(target)`` on a new target; the overflow error's message (or None),
    the FixedPointWarning messages and the result."""
    import warnings

    from neurosim.hardware_targets.lava import FixedPointOverflow, FixedPointWarning
    result, error = None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target = None
        try:
            target = make()
            result = body(target)
        except FixedPointOverflow as exc:
            error = str(exc)
        finally:
            if target is not None:
                target.close()
    return {"error": error, "result": result,
            "warnings": [str(w.message) for w in caught if w.category is FixedPointWarning]}


def oja_circuit():
    """One rate neuron learning with Oja's rule (a trial-level learning_rule)
    from w0 = 0.2: the weights grow to ~1 and some turn negative."""
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection, constant
    c = Circuit("oja", namespace={"tau": 10 * ms, "lr": 0.05})
    c.add(Population("inp", 5, "r : 1"))
    c.add(Population("out", 1, "dr/dt = (-r + I) / tau : 1\nI : 1"))
    c.add(Projection("w_in", "inp", "out", "w : 1\nI_post = w * r_pre : 1 (summed)",
                     init={"w": constant(0.2)},
                     learning_rule="w += lr * r_post * (r_pre - r_post * w)"))
    return c


def case_oja():
    from neurosim.hardware_targets import make_target
    c = oja_circuit()
    xs = np.random.default_rng(0).standard_normal((60, 5)) * [2.0, 1.5, 1.0, 0.5, 0.5]

    def train(t):
        for x in xs:
            t.set("inp", "r", x)
            t.set("out", "r", [0.0])
            t.run(20)
            t.learn()
        return {"w": t.get_weights()["w_in"]["w"].ravel().tolist(),
                "quantisation": t.quantisation()}
    out = {}
    for key, name, kw in (("float", "lava", {}), ("fixed", "lava-fixed", {}),
                          ("warn", "lava-fixed", {"overflow": "warn"}),
                          ("range", "lava-fixed", {"weight_range": {"w_in": (-1.5, 1.5)}})):
        out[key] = _attempt(lambda: make_target(name, c, seed=0, **kw), train)
    return out


def accumulator_circuit():
    """A leaky integrator driven towards 2500 (beyond the ±2048 of 24-bit states
    with 12 fractional bits), and a projection whose graded message exp(r)
    exceeds the range while the state it feeds stays small."""
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection, constant
    c = Circuit("accumulator", namespace={"tau": 10 * ms, "drive": 2500.0})
    c.add(Population("acc", 2, "dx/dt = (drive - x) / tau : 1"))
    c.add(Population("src", 1, "r : 1", values={"r": 0.5}))
    c.add(Population("dst", 1, "I : 1"))
    c.add(Projection("loud", "src", "dst", "w : 1\nI_post = w * exp(r_pre) : 1 (summed)",
                     init={"w": constant(1e-4)}))
    return c


def case_state():
    from neurosim.hardware_targets import make_target
    c = accumulator_circuit()

    def trace(t):
        return t.run(40, record=[("acc", "x")])[("acc", "x")][:, 0].tolist()

    def loud(t):
        t.run(3)
        t.set("src", "r", [8.0])  # the message becomes exp(8) = 2981
        t.run(3)
        return t.get("dst", "I").tolist()

    def set_big(t):
        t.set("acc", "x", [5000.0, 0.0])
    out = {}
    for key, name, kw, body in (
            ("float", "lava", {}, trace),
            ("fixed", "lava-fixed", {}, trace),
            ("warn", "lava-fixed", {"overflow": "warn"}, trace),
            ("fewer_bits", "lava-fixed", {"frac_bits": 11}, trace),
            ("message", "lava-fixed", {}, loud),
            ("set", "lava-fixed", {}, set_big)):
        out[key] = _attempt(lambda: make_target(name, c, seed=0, **kw), body)
    return out


def izhikevich_circuit():
    """Izhikevich (2003) neurons in SI units with constant drives (deterministic):
    v ~ 0.03 V needs many fractional bits, u ~ -13 V/s a wide range."""
    from brian2 import mV, ms
    from neurosim.circuit import Circuit, Population
    c = Circuit("izhikevich", namespace={"a": 0.02 / ms, "b": 0.2 / ms, "c": -65 * mV,
                                         "d": 8 * mV / ms}, dt=0.5 * ms)
    c.add(Population("n", 4, """dv/dt = (0.04/ms/mV)*v**2 + (5/ms)*v + 140*mV/ms - u + I : volt
                                du/dt = a*(b*v - u) : volt/second
                                I : volt/second
                                count : 1""",
                     threshold="v >= 30*mV", reset="v = c\nu += d\ncount += 1",
                     values={"v": -65 * mV, "u": -13 * mV / ms,
                             "I": np.array([4, 5, 7, 10]) * mV / ms}))
    return c


def case_izhikevich():
    from neurosim.hardware_targets import make_target
    c = izhikevich_circuit()

    def spikes(t):
        rows = t.run(2000, record=[("n", "spikes")])[("n", "spikes")]
        return {"rows": rows.tolist(), "count": t.get("n", "count").tolist()}
    out = {}
    for key, name, kw in (("brian2", "brian2-numpy", {}), ("float", "lava", {}),
                          ("bits20", "lava-fixed", {"frac_bits": 20}),
                          ("bits20_warn", "lava-fixed", {"frac_bits": 20, "overflow": "warn"}),
                          ("bits19", "lava-fixed", {"frac_bits": 19}),
                          ("bits18", "lava-fixed", {"frac_bits": 18})):
        out[key] = _attempt(lambda: make_target(name, c, seed=0, **kw), spikes)
    return out


def case_underflow():
    """An input current in amperes (~1e-10) would be stored as 0 with 12 fractional bits."""
    from brian2 import mV, ms, nA, pF
    from neurosim.circuit import Circuit, Population
    from neurosim.hardware_targets import make_target
    c = Circuit("si", namespace={"C": 200 * pF, "EL": -70 * mV}, dt=0.1 * ms)
    c.add(Population("n", 3, "dv/dt = (EL - v) / (20*ms) + I / C : volt\nI : amp",
                     values={"v": -70 * mV, "I": 0.5 * nA}))
    return {"default": _attempt(lambda: make_target("lava-fixed", c), lambda t: None),
            "more_bits": _attempt(lambda: make_target("lava-fixed", c, frac_bits=23),
                                  lambda t: None)}


# --- the tests -----------------------------------------------------------------------

def test_oja_weights_outgrowing_their_exponent_raise_and_a_declared_range_fixes_it():
    """Oja from w0 = 0.2: the exponent chosen from the initial weights is -10
    (255 * 2**-10 = 0.249), the learned weights reach ~1. Before the fix lava-fixed
    ended silently far from floating point."""
    res = run_case("oja")
    w_float = np.array(res["float"]["result"]["w"])
    assert res["float"]["error"] is None and np.abs(w_float).max() > 0.5 and w_float.min() < 0
    fixed = res["fixed"]
    assert fixed["result"] is None, "lava-fixed saturated the weights without an error"
    msg = fixed["error"]
    for part in ("Projection 'w_in'", "the weight w =", "exponent -10", "0.249023",
                 "weight_range={'w_in': (lo, hi)}", "overflow='warn'"):
        assert part in msg, (part, msg)
    value = float(msg.split("the weight w = ")[1].split()[0])
    assert value > 0.249023  # the value named is one that does not fit
    # overflow='warn': the run goes on, saturated, and says so every time
    warn = res["warn"]
    assert warn["error"] is None and len(warn["warnings"]) > 10
    assert all("Projection 'w_in'" in m for m in warn["warnings"])
    assert np.abs(np.array(warn["result"]["w"]) - w_float).max() > 0.3  # wrong, but said so
    # weight_range: exponent -7 (1.5 <= 254 * 2**-7 = 1.98, mixed sign: even mantissas,
    # steps of 2**-6); the host keeps float64 master weights, so the only difference
    # is the quantised transmission of I = w . x: |dI| <= 2**-7 * ||x||_1 (~ 0.05 at
    # most here) per trial, entering each update through r_post; observed 4e-3.
    ranged = res["range"]
    assert ranged["error"] is None and ranged["warnings"] == []
    (info,) = ranged["result"]["quantisation"].values()
    assert info["exp"] == -7 and info["weight_error"] <= 2.0 ** -7 + 1e-12
    np.testing.assert_allclose(ranged["result"]["w"], w_float, atol=0.02, rtol=0)


def test_a_state_beyond_the_24_bit_range_raises_when_it_happens():
    """x(k) = 2500 (1 - 0.9**k) passes 2048 (= 2**23 / 2**12) at step 17."""
    res = run_case("state")
    flt = np.array(res["float"]["result"])
    first = int(np.argmax(flt > 2048))  # the first recorded value beyond the range
    assert first > 0 and flt.max() > 2300
    msg = res["fixed"]["error"]
    assert res["fixed"]["result"] is None, "lava-fixed saturated the state without an error"
    for part in ("Population 'acc': x reached", "±2048", "frac_bits=11 or fewer",
                 "overflow='warn'"):
        assert part in msg, (part, msg)
    # raised by the process model at the step that wrote the value (recorded at the
    # start of the next step), and the message crossed Lava's worker boundary intact
    assert f"step {first - 1} of the target" in msg, msg
    # overflow='warn': saturated at the top of the range, with a warning
    warn = res["warn"]
    assert warn["error"] is None and any("acc': x" in m for m in warn["warnings"])
    assert max(warn["result"]) == pytest.approx(2048 - 2.0 ** -12)
    # the suggested fix runs clean and agrees with floating point to the rounding
    # of each stored value, accumulated through the contraction 0.9: 10 * q/2
    fewer = res["fewer_bits"]
    assert fewer["error"] is None and fewer["warnings"] == []
    np.testing.assert_allclose(fewer["result"], flt, atol=10 * 2.0 ** -12, rtol=0)


def test_a_graded_message_beyond_the_range_raises():
    res = run_case("state")
    msg = res["message"]["error"]
    assert msg is not None, "the message exp(r) = 2981 was saturated silently"
    assert "Population 'src': the message 'exp(r)'" in msg and "loud.I_post" in msg, msg
    assert "reached 2980.96" in msg, msg


def test_setting_a_value_beyond_the_range_raises_on_the_host():
    msg = run_case("state")["set"]["error"]
    assert msg is not None and "Population 'acc': x reached 5000" in msg, msg


def test_izhikevich_states_that_do_not_fit_are_named():
    """SI units: v needs fractional bits, u (-13 V/s) and the spike counter range."""
    res = run_case("izhikevich")
    b2, flt = res["brian2"]["result"], res["float"]["result"]
    assert flt["rows"] == b2["rows"] and sum(b2["count"]) > 40
    # frac_bits=20 (range ±8): u = -13 V/s already at construction
    msg = res["bits20"]["error"]
    assert "Population 'n': u reached -13" in msg and "frac_bits=19 or fewer" in msg, msg
    warn = res["bits20_warn"]
    assert warn["error"] is None and any("'n': u" in m for m in warn["warnings"])
    assert sum(warn["result"]["count"]) < sum(b2["count"])  # saturated: wrong, but said so
    # frac_bits=19 (±16): the spike counter of neuron 3 reaches 16 at its 16th spike
    msg = res["bits19"]["error"]
    rows = np.array(b2["rows"])
    sixteenth = rows[rows[:, 1] == 3][15, 0]
    assert "Population 'n': count reached 16" in msg, msg
    assert f"step {sixteenth} of the target" in msg, msg
    # frac_bits=18 (±32) holds everything: the same spikes as Brian2
    ok = res["bits18"]
    assert ok["error"] is None and ok["warnings"] == []
    assert ok["result"]["rows"] == b2["rows"]


def test_a_value_below_the_resolution_is_not_silently_zero():
    res = run_case("underflow")
    msg = res["default"]["error"]
    assert msg is not None and "Population 'n': I = 5e-10" in msg and "stored as 0" in msg
    assert res["more_bits"]["error"] is not None  # 2**-23 still cannot hold 5e-10 A
    assert "smaller units" in res["more_bits"]["error"]


if __name__ == "__main__":
    main(globals())

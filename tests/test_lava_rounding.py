"""lava-fixed never loses small increments silently: a stored variable whose
rounding-error estimate passes ``rounding_tolerance`` (a fraction of its
largest magnitude) stops the run with ``FixedPointOverflow`` or warns
(``overflow='warn'``), naming the variable, the estimate and the fix; a leaky
variable, whose dynamics forget its rounding, stays clean. Also: a LavaTarget
whose construction failed is collected without any output.

Each case runs in a fresh interpreter (this file run as a script), like
``tests/test_lava_fixed_point.py``.
"""
from __future__ import annotations

import re

import numpy as np
from isolated import case_runner, main, skip_without_lava

skip_without_lava()

TIMEOUT = 240.0
STEPS = 2000

run_case = case_runner(__file__, TIMEOUT)


# --- the cases (run in the child interpreter) ----------------------------------------

def _run(name, circuit, record, steps=STEPS, **options):
    """Run ``circuit`` on ``name``: the error message (FixedPointOverflow) or None,
    the FixedPointWarning messages and the recorded arrays as lists."""
    from neurosim.hardware_targets import make_target
    from test_lava_fixed_point import _attempt
    return _attempt(lambda: make_target(name, circuit, seed=0, **options),
                    lambda t: {f"{p}.{v}": a.tolist()
                               for (p, v), a in t.run(steps, record=record).items()})


def case_izhikevich():
    from test_lava_fixed_point import izhikevich_circuit
    c = izhikevich_circuit()
    spikes = [("n", "spikes")]
    return {"brian2": _run("brian2-numpy", c, spikes),
            "default": _run("lava-fixed", c, spikes),
            "loose": _run("lava-fixed", c, spikes, rounding_tolerance=0.05),
            "warn": _run("lava-fixed", c, spikes, overflow="warn"),
            "fine": _run("lava-fixed", c, spikes, frac_bits=18)}


def leaky_circuit():
    """Leaky integrators (tau/dt = 10) driven to values off the 12-bit grid."""
    from brian2 import ms
    from neurosim.circuit import Circuit, Population
    c = Circuit("leaky", namespace={"tau": 10 * ms}, dt=1 * ms)
    c.add(Population("x", 3, "dx/dt = (drive - x) / tau : 1\ndrive : 1",
                     values={"drive": [1.0, 0.3, -0.7]}))
    return c


def ramp_circuit():
    """A perfect integrator (no leak) gaining 10.3 steps of 2**-12 per step: each
    write rounds 0.3 steps away, and nothing forgets them."""
    from brian2 import ms
    from neurosim.circuit import Circuit, Population
    c = Circuit("ramp", namespace={"rate": 10.3 * 2.0 ** -12 / ms}, dt=1 * ms)
    c.add(Population("y", 1, "dy/dt = rate : 1"))
    return c


def case_leaky():
    record = [("x", "x")]
    return {"float": _run("lava", leaky_circuit(), record),
            "fixed": _run("lava-fixed", leaky_circuit(), record),
            "ramp_float": _run("lava", ramp_circuit(), [("y", "y")], steps=200),
            "ramp": _run("lava-fixed", ramp_circuit(), [("y", "y")], steps=200)}


def case_partly_built():
    """LavaTargets whose construction failed, collected: what reaches
    ``sys.unraisablehook`` (an exception in ``__del__``)."""
    import gc
    import sys

    from neurosim.circuit import CircuitError
    from neurosim.hardware_targets.lava import LavaTarget
    from test_lava_fixed_point import izhikevich_circuit
    seen = []
    sys.unraisablehook = lambda info: seen.append(f"{info.exc_type.__name__}: "
                                                  f"{info.exc_value}")
    errors = []
    for kwargs in ({"frac_bitz": 3}, {"precision": "half"}):
        try:
            LavaTarget(izhikevich_circuit(), **kwargs)
        except CircuitError as exc:
            errors.append(type(exc).__name__)
    LavaTarget.__new__(LavaTarget)  # never initialised at all, dropped at once
    gc.collect()
    return {"errors": errors, "unraisable": seen}


# --- the tests -----------------------------------------------------------------------

def _fix_range(msg):
    """The frac_bits range a rounding message proposes."""
    found = re.search(r"frac_bits=(\d+) to (\d+)", msg)
    assert found, msg
    return int(found[1]), int(found[2])


def test_a_stalled_izhikevich_neuron_raises_naming_the_variable_and_the_fix():
    """SI units at frac_bits=12 (steps of 0.24 mV): neuron 0 (I = 4 mV/ms, near
    its threshold) spikes once instead of 8 times; before the estimate, silently."""
    res = run_case("izhikevich")
    b2 = np.array(res["brian2"]["result"]["n.spikes"])
    first0 = b2[b2[:, 1] == 0][:, 0]
    assert len(first0) == 8
    msg = res["default"]["error"]
    assert msg is not None, "lava-fixed lost neuron 0's spikes to rounding silently"
    for part in ("Population 'n': v carries an estimated rounding error of",
                 "rounding_tolerance=0.01", "2**-12", "smaller units", "overflow='warn'"):
        assert part in msg, (part, msg)
    # the fix names more fractional bits, up to what u (-13 V/s, +-16 at 19) allows
    assert _fix_range(msg) == (13, 19), msg
    # a looser tolerance, beyond what v's contraction (|J| = 0.9 at rest) keeps,
    # still catches the stall itself: after the neuron's first spike, before the
    # second spike that the fixed-point run loses
    msg = res["loose"]["error"]
    assert msg is not None and "Population 'n': v carries" in msg, msg
    step = int(re.search(r"step (\d+) of the target", msg)[1])
    assert first0[0] < step < first0[1], (step, first0)


def test_warn_mode_runs_on_and_says_so():
    res = run_case("izhikevich")
    warn = res["warn"]
    assert warn["error"] is None
    rows = np.array(warn["result"]["n.spikes"])
    assert (rows[:, 1] == 0).sum() == 1  # wrong, and said so:
    (msg,) = [m for m in warn["warnings"] if "Population 'n': v carries" in m]
    assert _fix_range(msg) == (13, 19) and "estimates beyond it in this call" in msg, msg
    largest = float(re.search(r"the largest so far ([0-9.e+-]+)\.\)", msg)[1])
    assert largest > 0.1  # the stall: volts of error in steps of 0.24 mV


def test_enough_fractional_bits_run_clean_and_match_brian2():
    res = run_case("izhikevich")
    fine = res["fine"]
    assert fine["error"] is None and fine["warnings"] == []
    assert fine["result"]["n.spikes"] == res["brian2"]["result"]["n.spikes"]


def test_a_leaky_variable_stays_clean_and_a_perfect_integrator_does_not():
    """The same per-step rounding (<= q/2): the leak (|J| = 0.9) bounds the error
    by q/2 * tau/dt = 5 q (the module doc's bound; 0.12 % of the scale 1), the
    perfect integrator keeps all of it (0.3 / 10.3 = 3 % of its value)."""
    res = run_case("leaky")
    q = 2.0 ** -12
    fixed, flt = res["fixed"], res["float"]
    assert fixed["error"] is None and fixed["warnings"] == []
    x_fixed, x_float = np.array(fixed["result"]["x.x"]), np.array(flt["result"]["x.x"])
    assert np.abs(x_fixed - x_float).max() > 0  # rounded, really
    # plus the rounding of the stored drive itself (q/2), which x approaches
    np.testing.assert_allclose(x_fixed, x_float, atol=5.5 * q, rtol=0)
    msg = res["ramp"]["error"]
    assert res["ramp_float"]["error"] is None
    assert msg is not None and "Population 'y': y carries" in msg, msg
    assert int(re.search(r"step (\d+) of the target", msg)[1]) < 50, msg


def test_a_failed_construction_leaves_no_exception_in_del():
    res = run_case("partly_built")
    assert res["errors"] == ["CircuitError", "CircuitError"]  # a misspelt option included
    assert res["unraisable"] == [], res["unraisable"]


if __name__ == "__main__":
    main(globals())

"""Synaptic delays on brian2-cpp: spikes in flight are carried across run() calls.

Regular pacemakers drive LIF neurons through a projection with one delay for
every synapse and one with a delay per synapse (several of them longer than
the shortest calls below), so at most call boundaries spikes are in the spike
queues. A run split into uneven calls, with the recording switched on and off
between them (so that the queues pass between different compiled programs),
must give exactly the spikes and, to 1e-9, the membrane potentials of one
uninterrupted call, and those of brian2-numpy. Without the queues carried,
the spikes in flight at each boundary are lost and the spike counts differ.
Then the per-synapse delays change on the host copy, and the next calls must
use them (as brian2-numpy does).

Three compiled programs in all (about 10 s each on two idle cores): the split
run's two recording configurations, and the uninterrupted run's.
"""
import gc

import numpy as np
import pytest
from brian2 import Clock, ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import (Brian2Target, CppStandaloneTarget,
                                              CudaStandaloneTarget, nvcc_available)

CALLS = (150, 7, 13, 1, 129, 200)      # 500 steps; several shorter than the delays
AFTER = (120, 3)                        # after the per-synapse delays change
PER_SYNAPSE = np.array([0.5, 1.0, 1.5, 2.2, 2.9, 3.3, 0.1, 4.4]) * ms
NEW_DELAYS = np.linspace(0.3, 5.0, len(PER_SYNAPSE)) * ms


def delayed_circuit() -> Circuit:
    c = Circuit("delayed_lif", namespace={"tau": 10 * ms}, dt=0.1 * ms)
    c.add(Population("pacers", 4, "dphase/dt = freq : 1\nfreq : Hz", threshold="phase > 1",
                     reset="phase -= 1", values={"freq": [93.0, 131.0, 211.0, 157.0]}))
    c.add(Population("lif", 2, "dv/dt = -v / tau : 1 (unless refractory)\nn_in : 1",
                     threshold="v > 1", reset="v = 0", refractory=1 * ms))
    c.add(Projection("homogeneous", "pacers", "lif", "w : 1", on_pre="v += w\nn_in += 1",
                     delay=2.3 * ms,
                     init={"w": np.array([[0.5, 0.4, 0.6, 0.3], [0.2, 0.7, 0.4, 0.6]])}))
    c.add(Projection("per_synapse", "pacers", "lif", "w : 1", on_pre="v += w\nn_in += 1",
                     delay=PER_SYNAPSE, init={"w": constant(0.2)}))
    return c


def run_calls(target, calls):
    """Spike rows of 'lif' (steps from the first of these calls), its v at the start
    of every step of the recorded calls, and the final state. Every other call
    records nothing, so the spike queues pass between two programs."""
    rows, vs, start = [], [], 0
    for k, n in enumerate(calls):
        if k % 2 == 0:
            got = target.run(n, record=[("lif", "spikes"), ("lif", "v")])
            rows.append(got[("lif", "spikes")] + [start, 0])
            vs.append(got[("lif", "v")])
        else:
            target.run(n)
            vs.append(None)
        start += n
    return {"spikes": np.concatenate(rows), "v": vs, "n_in": target.get("lif", "n_in"),
            "v_end": target.get("lif", "v")}


def recorded_windows(rows, calls):
    """The spike rows of an uninterrupted run that fall in the recorded calls."""
    edges = np.cumsum((0,) + tuple(calls))
    keep = np.zeros(len(rows), bool)
    for k in range(0, len(calls), 2):
        keep |= (rows[:, 0] >= edges[k]) & (rows[:, 0] < edges[k + 1])
    return rows[keep]


def change_delays(target):
    """New per-synapse delays on the host copy (Brian2's own attribute)."""
    target.objs.synapses["per_synapse"].delay = NEW_DELAYS


@pytest.fixture(scope="module")
def runs():
    """Each target runs CALLS, then its per-synapse delays change and it runs
    AFTER; 'whole' targets run CALLS as one call. Three compiled programs."""
    circuit = delayed_circuit()
    out = {}
    for name, cls in (("numpy", Brian2Target), ("cpp", CppStandaloneTarget)):
        # Brian2 names the first Clock alive "clock" and calls it "_clock" in C++
        # (<ctime> has clock()): hold that name while the host copy is built, so
        # that the first program's clock gets it and the inserted C++ must follow
        gc.collect()
        holder = Clock(dt=circuit.dt)
        target = cls(circuit)
        out[f"{name}_clock_held"], holder = holder.name == "clock", None
        gc.collect()
        out[name] = run_calls(target, CALLS)
        change_delays(target)
        out[f"{name}_changed"] = run_calls(target, AFTER)
        out[f"{name}_target"] = target
    unchanged = Brian2Target(circuit)
    run_calls(unchanged, CALLS)
    out["numpy_unchanged"] = run_calls(unchanged, AFTER)
    out["numpy_whole"] = run_calls(Brian2Target(circuit), (sum(CALLS),))
    cpp_whole = CppStandaloneTarget(circuit)
    out["cpp_whole"] = run_calls(cpp_whole, (sum(CALLS),))
    yield out
    out["cpp_target"].close()
    cpp_whole.close()


def test_spikes_in_flight_are_carried_across_uneven_calls(runs):
    cpp = runs["cpp_target"]
    if runs["cpp_clock_held"]:
        assert "_clock" in {p.objs.clock.name for p in cpp._programs.values()}  # renamed
    assert len(cpp._programs) == 2, "recording on and off: two programs share the queues"
    split, whole, want = runs["cpp"], runs["cpp_whole"], runs["numpy_whole"]
    assert want["n_in"].min() > 20, "the delayed inputs must arrive (a real comparison)"
    recorded = recorded_windows(want["spikes"], CALLS)
    assert len(recorded) > 5
    np.testing.assert_array_equal(runs["numpy"]["spikes"], recorded)
    np.testing.assert_array_equal(split["spikes"], recorded)
    np.testing.assert_array_equal(whole["spikes"], want["spikes"])
    for got in (runs["numpy"], split, whole):
        np.testing.assert_array_equal(got["n_in"], want["n_in"])
        np.testing.assert_allclose(got["v_end"], want["v_end"], atol=1e-9, rtol=0)
    # the membrane potentials of the recorded calls, against the uninterrupted run
    start = 0
    for n, v in zip(CALLS, split["v"]):
        if v is not None:
            np.testing.assert_allclose(v, want["v"][0][start:start + n], atol=1e-9, rtol=0)
        start += n


def test_a_changed_per_synapse_delay_is_carried(runs):
    """The per-synapse delays belong to the pathway (not the Synapses' own
    variables): a change on the host copy must reach the next program before it
    prepares its spike queues (spikes already in flight keep their arrival)."""
    want, got = runs["numpy_changed"], runs["cpp_changed"]
    assert not np.allclose(want["v"][0], runs["numpy_unchanged"]["v"][0]), \
        "the change must matter"
    np.testing.assert_array_equal(got["spikes"], want["spikes"])
    np.testing.assert_array_equal(got["n_in"], want["n_in"])
    np.testing.assert_allclose(got["v"][0], want["v"][0], atol=1e-9, rtol=0)
    np.testing.assert_allclose(got["v_end"], want["v_end"], atol=1e-9, rtol=0)
    assert len(runs["cpp_target"]._programs) == 2, "no program is compiled for the change"


NVCC, NVCC_WHY = nvcc_available()


@pytest.mark.skipif(not NVCC, reason=f"brian2-cuda refusal: {NVCC_WHY}")
def test_cuda_refuses_delays_at_construction_naming_the_targets_that_accept():
    circuit = delayed_circuit()
    reason = CudaStandaloneTarget.unsupported(circuit, compile_only=True)
    assert reason is not None and "'homogeneous'" in reason and "delay" in reason
    with pytest.raises(CircuitError, match=r"(?s)brian2-cuda.*'homogeneous'.*delay.*"
                                           r"accept.*brian2-numpy.*brian2-cpp"):
        make_target("brian2-cuda", circuit, compile_only=True)

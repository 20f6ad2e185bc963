"""The Lava target records spikes and chosen neurons, takes namespace changes
between runs, runs sparse connectivity, and refuses what it cannot run at
construction (the Lava targets against brian2-numpy).

Each case runs in a fresh interpreter (this file run as a script) in its own
session with a timeout, like ``tests/test_lava_target.py``.
"""
from __future__ import annotations


import numpy as np
from isolated import case_runner, main, skip_without_lava

skip_without_lava()

TIMEOUT = 240.0
TARGETS = ("brian2-numpy", "lava", "lava-fixed")


run_case = case_runner(__file__, TIMEOUT)


# --- the cases (run in the child interpreter) ----------------------------------------

def _each(circuit, body, names=TARGETS, seed=3, **options):
    from neurosim.hardware_targets import make_target
    out = {}
    for name in names:
        t = make_target(name, circuit, seed=seed, **(options if "lava" in name else {}))
        try:
            out[name] = body(t)
        finally:
            t.close()
    return out


def lif_circuit():
    """Constant drives (deterministic spikes) onto three LIF neurons; no variable
    named 'spikes': the targets record the spikes themselves."""
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection, normal
    c = Circuit("lif", namespace={"tau": 10 * ms, "I0": 1.0}, dt=0.5 * ms)
    c.add(Population("drive", 5, "dv/dt = (I0 * I - v) / tau : 1\nI : 1", threshold="v > 1",
                     reset="v = 0", values={"I": np.linspace(1.2, 3.0, 5)}))
    c.add(Population("out", 3, "dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0"))
    c.add(Projection("syn", "drive", "out", "w : 1", on_pre="v_post += w",
                     init={"w": normal(0.4, 0.3)}))
    return c


def case_spikes():
    """Calls of 37, 80 and 150 steps: spike rows of every neuron or of chosen
    ones, alone or beside a variable trace of chosen neurons."""
    def body(t):
        a = t.run(37, record=[("drive", "spikes"), ("out", "spikes", [0, 2])])
        b = t.run(80, record=[("drive", "spikes", [3, 1]), ("out", "v", [2, 0])])
        d = t.run(150, record=[("out", "spikes")])
        return {"a.drive": a[("drive", "spikes")].tolist(),
                "a.out": a[("out", "spikes")].tolist(),
                "b.drive": b[("drive", "spikes")].tolist(),
                "b.v": b[("out", "v")].tolist(),
                "d.out": d[("out", "spikes")].tolist(),
                "dtype": str(d[("out", "spikes")].dtype)}
    return _each(lif_circuit(), body)


def case_namespace():
    """The drive's gain I0 changed between runs: 1.0, then 2.0, then back."""
    def body(t):
        c = t.circuit
        rows = []
        for gain in (1.0, 2.0, 1.0):
            c.namespace["I0"] = gain
            rows.append(t.run(60, record=[("drive", "spikes")])[("drive", "spikes")].tolist())
        c.namespace["I0"] = 1.0
        return rows
    return _each(lif_circuit(), body)


def rate_circuit():
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection, normal
    c = Circuit("leaky", namespace={"tau": 5 * ms})
    c.add(Population("inputs", 4, "r : 1"))
    c.add(Population("rates", 3, "dr/dt = (-r + I) / tau : 1\nI : 1"))
    c.add(Projection("weights", "inputs", "rates", "w : 1\nI_post = w * r_pre : 1 (summed)",
                     init={"w": normal(0.5)}))
    return c


def case_parts():
    """Two unconnected parts (a rate pair, and the LIF network): both run."""
    from neurosim.circuit import Population, Projection, normal
    c = lif_circuit()
    c.add(Population("leak", 2, "dr/dt = (I - r) / tau : 1\nI : 1", values={"I": [1.0, 2.0]}))
    c.add(Population("reader", 1, "J : 1"))
    c.add(Projection("read", "leak", "reader", "w : 1\nJ_post = w * r_pre : 1 (summed)",
                     init={"w": normal(1.0)}))

    def body(t):
        tr = t.run(20, record=[("leak", "r"), ("reader", "J"), ("out", "spikes")])
        return {k[0]: v.tolist() for k, v in tr.items()}
    return _each(c, body, names=("brian2-numpy", "lava"))


def case_errors():
    """Refusals at construction, and set_weights with wrong shapes."""
    from brian2 import TimedArray, ms
    from neurosim.circuit import CircuitError, Population
    from neurosim.hardware_targets import make_target
    out = {}
    c = rate_circuit()
    c.namespace["stimulus"] = TimedArray(np.arange(5.0), dt=1 * ms)
    c.add(Population("driven", 2, "dr/dt = (stimulus(t) - r) / tau : 1"))
    for name in ("lava", "lava-fixed"):
        try:
            make_target(name, c).close()
            out[f"timed_array/{name}"] = None
        except CircuitError as exc:
            out[f"timed_array/{name}"] = str(exc)
    t = make_target("lava", rate_circuit(), seed=0)
    try:
        w = t.get_weights()["weights"]["w"]
        for key, value in (("transposed", w.T), ("flat", w.ravel())):
            try:
                t.set_weights({"weights": {"w": value}})
                out[key] = None
            except CircuitError as exc:
                out[key] = str(exc)
        out["unchanged"] = bool(np.array_equal(t.get_weights()["weights"]["w"], w))
        t.set_weights({"weights": {"w": 0.25}})  # a scalar sets every synapse
        t.set("inputs", "r", np.ones(4))
        t.run(2)
        out["scalar_I"] = t.get("rates", "I").tolist()
    finally:
        t.close()
    return out


# --- the tests -----------------------------------------------------------------------

def test_spikes_are_recorded_as_on_brian2():
    res = run_case("spikes")
    b2 = res["brian2-numpy"]
    assert len(b2["a.drive"]) > 5 and len(b2["d.out"]) > 5 and len(b2["a.out"]) > 0
    assert {n for _, n in b2["b.drive"]} == {1, 3}  # only the chosen neurons
    assert {n for _, n in b2["a.out"]} <= {0, 2}
    for name in ("lava", "lava-fixed"):
        got = res[name]
        for key in ("a.drive", "a.out", "b.drive", "d.out"):
            assert got[key] == b2[key], (name, key)  # identical [step, neuron] rows
        assert got["dtype"] == "int64"
        assert np.array(got["b.v"]).shape == (80, 2)
    np.testing.assert_allclose(res["lava"]["b.v"], b2["b.v"], atol=1e-12, rtol=0)


def test_namespace_changes_between_runs_take_effect():
    res = run_case("namespace")
    b2 = res["brian2-numpy"]
    assert len(b2[1]) > 1.5 * len(b2[0])  # doubling the drive: more spikes
    for name in ("lava", "lava-fixed"):
        assert res[name] == b2, name


def test_unconnected_parts_all_run():
    """Lava runs only the processes connected to the one it is started on: before
    the tie ports, every part but one stayed frozen at its initial values."""
    res = run_case("parts")
    b2, lava = res["brian2-numpy"], res["lava"]
    assert np.ptp(np.array(b2["leak"])) > 0.5 and len(b2["out"]) > 0
    for key in ("leak", "reader"):
        np.testing.assert_allclose(lava[key], b2[key], atol=1e-12, rtol=0, err_msg=key)
    assert lava["out"] == b2["out"]


def test_refusals_and_weight_shapes():
    res = run_case("errors")
    for name in ("lava", "lava-fixed"):
        msg = res[f"timed_array/{name}"]
        assert msg is not None, f"{name} accepted a TimedArray"
        assert "'stimulus'" in msg and "TimedArray" in msg and "brian2-numpy" in msg, msg
    for key in ("transposed", "flat"):
        msg = res[key]
        assert msg is not None and "Projection 'weights'" in msg, (key, msg)
        assert "(3, 4)" in msg, msg  # the shape expected
    assert "(4, 3)" in res["transposed"] and "(12,)" in res["flat"]
    assert res["unchanged"]
    np.testing.assert_allclose(res["scalar_I"], [1.0] * 3, atol=1e-12)


if __name__ == "__main__":
    main(globals())

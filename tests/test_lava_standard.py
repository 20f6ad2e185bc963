"""LIF circuits on Lava's own processes (hardware_targets/lava/standard.py).

* A circuit of LIF populations (per-neuron bias, two currents of one time
  constant merged into Lava's u, a second population with a dimensionless v)
  runs on Lava's ``LIF`` and ``Dense``, one Lava step per step, and gives
  brian2-numpy's spikes step for step, with Euler and exact integration,
  across calls of uneven length, after a namespace change, and its recorded
  v and g within float rounding.
* Poisson sources: drawn in Lava from the seed (deterministic for a seed,
  counts within a binomial bound).
* What does not fit falls back to generated processes, and says why.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from brian2 import Hz, ms, mV

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.circuits.spiking import poisson_inputs
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.lava.standard import LavaStandardTarget
from neurosim.hardware_targets.lava.target import LavaTarget

import isolated
from isolated import skip_without_lava

skip_without_lava()


fresh = isolated.fresh(__file__)


def lif_circuit(method: str, refractory=None, unless=True) -> Circuit:
    rng = np.random.default_rng(0)
    c = Circuit("lif_net", dt=0.1 * ms, namespace={
        "taum": 20 * ms, "taus": 5 * ms, "Vt": -50 * mV, "Vr": -65 * mV, "g_inh": 1.0})
    flag = " (unless refractory)" if refractory is not None and unless else ""
    c.add(Population("E", 40, f"""dv/dt = (I0 - v + (ge + gi) * mV) / taum : volt{flag}
                                 dge/dt = -ge / taus : 1
                                 dgi/dt = -gi / taus : 1
                                 I0 : volt (constant)""",
                     threshold="v > Vt", reset="v = Vr", method=method, refractory=refractory,
                     values={"v": rng.uniform(-65, -50, 40) * mV,
                             "I0": rng.uniform(-52, -40, 40) * mV}))
    c.add(Population("F", 5, """dv/dt = (-v + g) / (10*ms) : 1
                                dg/dt = -g / (3*ms) : 1""",
                     threshold="v > 0.3", reset="v = 0", method=method))
    c.add(Projection("EE", "E", "E", "w : 1", on_pre="ge_post += w", connect={"p": 0.2},
                     init={"w": lambda r, s: r.uniform(0, 3, s)}))
    c.add(Projection("EI", "E", "E", "w : 1", on_pre="gi_post -= g_inh * w",
                     connect={"p": 0.2}, init={"w": lambda r, s: r.uniform(0, 4, s)}))
    c.add(Projection("EF", "E", "F", "w : 1", on_pre="g_post += w",
                     init={"w": lambda r, s: r.uniform(0, 0.3, s)}))
    return c


def spikes(target, n):
    rec = target.run(n, record=[("E", "spikes"), ("F", "spikes")])
    return rec[("E", "spikes")], rec[("F", "spikes")]


@pytest.mark.parametrize("method", ["euler", "exact"])
@fresh
def test_lif_circuit_runs_on_lavas_own_processes_with_brian2s_spikes(method):
    c = lif_circuit(method)
    brian, lava = make_target("brian2-numpy", c, seed=0), make_target("lava", c, seed=0)
    assert type(lava) is LavaStandardTarget
    assert set(lava.deployment().values()) == {"Lava LIF (standard process)"}
    with lava:
        for n in (700, 1300):   # uneven calls: Lava's state carries over
            for want, got in zip(spikes(brian, n), spikes(lava, n)):
                assert len(want) > 20
                np.testing.assert_array_equal(got, want)
            np.testing.assert_allclose(lava.get("E", "v"), brian.get("E", "v"), atol=1e-12)
            np.testing.assert_allclose(lava.get("F", "g"), brian.get("F", "g"), atol=1e-12)
        c.namespace["g_inh"] = 0.5   # the weights read it: sent again before the next run
        for want, got in zip(spikes(brian, 500), spikes(lava, 500)):
            np.testing.assert_array_equal(got, want)
        lava.set("F", "g", np.full(5, 0.2))
        brian.set("F", "g", np.full(5, 0.2))
        want = brian.run(30, record=[("F", "v"), ("F", "g")])
        got = lava.run(30, record=[("F", "v"), ("F", "g")])
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-12)
        c.namespace["taum"] = 10 * ms
        with pytest.raises(CircuitError, match="time constants or the threshold of 'E'"):
            lava.run(1)


@pytest.mark.parametrize("refractory", [0.15, 0.25, 2, 2.05])
@fresh
def test_refractory_lif_runs_on_lavas_lif_refractory_with_brian2s_spikes(refractory):
    """Under two steps (Brian2 holds v for none) a plain LIF; otherwise
    LIFRefractory; 2.05 ms rounds down as Brian2's timestep() does."""
    c = lif_circuit("exact", refractory=refractory * ms)
    brian, lava = make_target("brian2-numpy", c, seed=0), make_target("lava", c, seed=0)
    kind = "LIF" if refractory < 0.2 else "LIFRefractory"
    assert lava.deployment()["E"] == f"Lava {kind} (standard process)"
    with lava:
        for n in (600, 900):
            for want, got in zip(spikes(brian, n), spikes(lava, n)):
                np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(lava.get("E", "v"), brian.get("E", "v"), atol=1e-12)


@fresh
def test_delays_run_on_lavas_delay_dense_with_brian2s_spikes():
    c = lif_circuit("exact")
    for name, delay in (("EE", lambda r, shape: r.uniform(0, 3, shape) * ms),
                        ("EF", 0.5 * ms)):
        proj = c.projections[name]
        c.projections[name] = Projection(proj.name, proj.source, proj.target, proj.model,
                                         proj.connect, proj.on_pre, init=proj.init,
                                         delay=delay)
    brian, lava = make_target("brian2-numpy", c, seed=0), make_target("lava", c, seed=0)
    assert type(lava) is LavaStandardTarget
    with lava:
        for n in (400, 700):
            for want, got in zip(spikes(brian, n), spikes(lava, n)):
                assert len(want) > 10
                np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(lava.get("F", "g"), brian.get("F", "g"), atol=1e-12)


def source_circuit(rate=50 * Hz) -> Circuit:
    c = Circuit("driven", dt=0.1 * ms, namespace={"tau": 10 * ms})
    c.add(poisson_inputs("inp", 100, rate))
    c.add(Population("out", 3, "dv/dt = (-v + g) / tau : 1\ndg/dt = -g / (2*ms) : 1",
                     threshold="v > 1", reset="v = 0"))
    c.add(Projection("syn", "inp", "out", "w : 1", on_pre="g_post += w",
                     init={"w": constant(0.4)}))
    return c


@fresh
def test_poisson_sources_are_drawn_on_the_host_from_the_seed():
    c = source_circuit()
    runs = []
    for seed in (1, 1, 2):
        with make_target("lava", c, seed=seed) as lava:
            rec = lava.run(2000, record=[("inp", "spikes"), ("out", "spikes")])
            runs.append(rec)
    np.testing.assert_array_equal(runs[0][("out", "spikes")], runs[1][("out", "spikes")])
    assert not np.array_equal(runs[0][("inp", "spikes")], runs[2][("inp", "spikes")])
    p, trials = 50 * 1e-4, 100 * 2000
    for rec in runs:   # within 5 standard deviations of the binomial mean
        assert abs(len(rec[("inp", "spikes")]) - p * trials) < 5 * np.sqrt(trials * p * (1 - p))
        assert len(rec[("out", "spikes")]) > 10   # the inputs drive the neurons


@pytest.mark.parametrize("change, reason", [
    ("refractory", "'E' is refractory without '.unless refractory.' on v alone"),
    ("direct", "projections write v of 'F' directly"),
    ("warn", "overflow='warn' .Lava's bit-accurate LIF wraps and clips"),
])
@fresh
def test_what_does_not_fit_runs_on_generated_processes_and_says_why(change, reason):
    c = lif_circuit("euler", refractory=2 * ms if change == "refractory" else None,
                    unless=False)
    if change == "direct":
        proj = c.projections["EF"]
        c.projections["EF"] = Projection(proj.name, proj.source, proj.target, proj.model,
                                         on_pre="v_post += w", init=proj.init)
    precision = "fixed_pt" if change == "warn" else "floating_pt"
    with pytest.raises(CircuitError, match=f"processes='standard': .*{reason}"):
        LavaTarget(c, precision=precision, processes="standard", overflow="warn")
    target = LavaTarget(c, precision=precision, overflow="warn")
    try:
        assert type(target) is LavaTarget
        assert all(re.search(reason, why) for why in target.deployment().values())
    finally:
        target.close()


def test_library_models_get_the_reason_they_do_not_fit():
    """CUBA's two currents (5 and 10 ms) cannot be Lava's one u; if_curve fits."""
    from neurosim.circuits.brian2_examples import EXAMPLES
    from neurosim.hardware_targets.lava.standard import standard_plan
    plan, reason = standard_plan(EXAMPLES["cuba"][0](scale=0.05))
    assert plan is None and "'P' has synaptic currents of different time constants" in reason
    plan, _ = standard_plan(EXAMPLES["if_curve"][0](scale=0.05))
    assert plan["group"].frozen == 49   # 5 ms at 0.1 ms: Brian2 holds v 49 steps


@fresh
def test_generated_processes_can_still_be_asked_for():
    """... and agree with the standard ones (a variable named like an attribute of the
    generated process model, F's g, once broke them)."""
    c = lif_circuit("euler")
    with LavaTarget(c, processes="generated") as target:
        assert type(target) is LavaTarget
        assert "processes='generated' was asked for" in target.deployment()["E"]
        got = spikes(target, 300)
    with LavaTarget(c) as standard:
        for g, w in zip(got, spikes(standard, 300)):
            np.testing.assert_array_equal(g, w)
    with pytest.raises(CircuitError, match="processes='gen': use one of"):
        LavaTarget(lif_circuit("euler"), processes="gen")


isolated.run_fresh(globals())

"""LIF circuits on Lava's bit-accurate fixed-point LIF (hardware_targets/lava/lif_fixed.py).

* A CUBA-like network (excitatory and inhibitory LIF neurons with one synaptic
  current, spontaneous activity, a 5 ms refractory period, sparse recurrent
  connections) on ``lava-fixed`` runs Lava's ``LIF``/``LIFRefractory`` fixed-point
  models with the scaling derived from its declaration; against brian2-numpy
  (which ``lava`` matches step for step, tests/test_lava_standard.py) its v stays
  within the bound propagated from the reported quantisation errors until the
  first spike that differs, that spike falls where the bound allows it, and over
  2,000 steps (200 ms) the firing rates agree within 10 %.
* Refractory neurons hold v in fixed point as Lava's float model does.
* Poisson sources drive it with the float target's input spikes.
* What Lava's model would wrap or clip raises instead, naming the fix.
"""
from __future__ import annotations

import numpy as np
import pytest
from brian2 import mV, ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.lava.standard import LavaStandardTarget

import isolated
from isolated import skip_without_lava

skip_without_lava()
fresh = isolated.fresh(__file__)


def cuba_like(n=200, p=0.1, we=1.62, wi=-9.0, refractory=5 * ms) -> Circuit:
    """Brian2's CUBA example with one current of 5 ms for both signs (Lava's LIF
    has one u), at 200 neurons (connection probability 0.1 for 0.02 at 4,000)."""
    rng = np.random.default_rng(3)
    c = Circuit("cuba_like", dt=0.1 * ms, namespace={
        "taum": 20 * ms, "taus": 5 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV,
        "we": we * mV, "wi": wi * mV})
    eqs = """dv/dt = (g - (v - El)) / taum : volt (unless refractory)
             dg/dt = -g / taus : volt"""
    ne = n * 4 // 5
    for name, size in (("E", ne), ("I", n - ne)):
        c.add(Population(name, size, eqs, threshold="v > Vt", reset="v = Vr",
                         refractory=refractory, method="exact",
                         values={"v": rng.uniform(-60, -50, size) * mV}))
    for src, w in (("E", "we"), ("I", "wi")):
        for tgt in ("E", "I"):
            c.add(Projection(src + tgt, src, tgt, "w : 1", on_pre=f"g_post += w * {w}",
                             connect={"p": p}, init={"w": constant(1.0)}))
    return c


def propagate(q, inputs, v_rel, u, dv, du):
    """The bound on |v_fixed - v_float| at the start of each step (.lif_fixed
    module doc) along the float run: ``v_rel`` (v - v_reset) and ``u`` (the
    current's step in v, ``k g``) at the start of each step, ``inputs``: per
    projection into the population, ``(spike counts per step, weight error,
    floor of the input shift)``; ``q`` the population's quantisation errors."""
    res = q["resolution"]
    ev = np.zeros(v_rel.shape)
    eu = np.full(v_rel.shape[1], 0.5 * res)
    ev[0] = 0.5 * res
    for t in range(len(v_rel) - 1):
        arriving = sum(counts[t - 1] * dw + floor if t else 0.0 for counts, dw, floor in inputs)
        eu = (1 - du) * eu + q["du"] * (np.abs(u[t - 1] if t else u[0]) + eu) + res + arriving
        ev[t + 1] = ((1 - dv) * ev[t] + q["dv"] * (np.abs(v_rel[t]) + ev[t]) + res + eu
                     + q["bias"])
    return ev


@fresh
def test_cuba_like_network_on_lavas_fixed_point_lif_within_the_derived_bound():
    c = cuba_like()
    brian = make_target("brian2-numpy", c, seed=0)
    fixed = make_target("lava-fixed", c, seed=0)
    assert type(fixed) is LavaStandardTarget
    assert set(fixed.deployment().values()) == {
        "Lava LIFRefractory (standard process, Lava's bit-accurate fixed-point model)"}
    n = 300
    record = [(p, x) for p in ("E", "I") for x in ("v", "g", "spikes")]
    with fixed:
        q = fixed.quantisation()
        want, got = brian.run(n, record=record), fixed.run(n, record=record)
        # the first step where any neuron fires on one target and not the other
        fired = {}
        for key in (("E", "spikes"), ("I", "spikes")):
            for rec, tag in ((want, 0), (got, 1)):
                for step, i in rec[key]:
                    fired.setdefault((key[0], int(step), int(i)), set()).add(tag)
        odd = sorted((step, pop, i) for (pop, step, i), tags in fired.items() if len(tags) == 1)
        first = odd[0][0] if odd else n
        assert first > 20   # the bound is not vacuous: several steps of identical spikes
        assert sum(len(want[(p, "spikes")]) for p in ("E", "I")) > 50
        for pop in ("E", "I"):
            lif = fixed.lif[pop]
            inputs = []
            for name, proj in c.projections.items():
                if proj.target == pop:
                    found = want[(proj.source, "spikes")]
                    exp = q["projections"][name]["weight_exp"]
                    inputs.append((np.bincount(found[:, 0], minlength=n),
                                   q["projections"][name]["weight_error"],
                                   64 * q["populations"][pop]["resolution"] if exp < 0 else 0))
            ev = propagate(q["populations"][pop], inputs, want[(pop, "v")] + 0.060,
                           lif.k * want[(pop, "g")], lif.dv, lif.du)
            diff = np.abs(got[(pop, "v")] - want[(pop, "v")])
            assert np.all(diff[:first + 1] <= ev[:first + 1]), \
                f"{pop}: v differs by {diff[:first + 1].max():.3g} V beyond the bound"
            assert ev[first].max() < 0.5e-3   # within half a millivolt until then
            for step, p2, i in odd:   # the first differing spikes: near the threshold
                if step == first and p2 == pop and step + 1 < n:
                    quiet = got if 0 in fired[(pop, step, i)] else want
                    below = -0.050 - quiet[(pop, "v")][step + 1, i]
                    assert 0 <= below <= ev[step + 1, i] + q["populations"][pop]["vth"]
        # rates over 200 ms
        more = [(p, "spikes") for p in ("E", "I")]
        w2, g2 = brian.run(2000, record=more), fixed.run(2000, record=more)
        for key in more:
            assert len(w2[key]) > 100
            assert abs(len(g2[key]) - len(w2[key])) <= 0.1 * len(w2[key])


@fresh
def test_poisson_sources_drive_the_fixed_point_lif_as_the_float_one():
    """The sources draw from the target's seed: the same input spikes on
    both, and the output counts within 5 %."""
    from test_lava_standard import source_circuit
    c, runs = source_circuit(), []
    for name in ("lava", "lava-fixed"):
        with make_target(name, c, seed=1) as target:
            runs.append(target.run(2000, record=[("inp", "spikes"), ("out", "spikes")]))
    np.testing.assert_array_equal(runs[0][("inp", "spikes")], runs[1][("inp", "spikes")])
    want, got = (len(r[("out", "spikes")]) for r in runs)
    assert want > 100 and abs(got - want) <= 0.05 * want


@fresh
def test_refractory_neurons_hold_v_in_fixed_point():
    c = cuba_like(n=50, refractory=2 * ms)
    with make_target("lava-fixed", c, seed=0) as fixed:
        rec = fixed.run(400, record=[("E", "v"), ("E", "spikes")])
    v, found = rec[("E", "v")], rec[("E", "spikes")]
    assert len(found) > 10
    for step, i in found:   # held at the reset for 19 steps (2 ms at 0.1 ms, Brian2's count)
        held = v[step + 1:step + 20, i]
        if len(held) == 19:
            np.testing.assert_allclose(held, -60e-3, atol=1e-9)


@fresh
def test_what_the_bit_accurate_model_would_wrap_or_clip_raises():
    from neurosim.hardware_targets.lava import FixedPointOverflow
    c = cuba_like(n=50, wi=-400.0)   # inhibition drives v far below the reset
    with make_target("lava-fixed", c, seed=0) as fixed:
        with pytest.raises(FixedPointOverflow, match=r"of population '[EI]' reached .* beyond "
                           r"Loihi's 24-bit . on lava-fixed .*v_headroom=4.*Fix: a larger "
                           "v_headroom"):
            fixed.run(2000)
    with make_target("lava-fixed", c, seed=0, v_headroom=256) as fixed:
        assert len(fixed.run(300, record=[("E", "spikes")])[("E", "spikes")]) > 0


def test_the_scaling_is_derived_and_what_has_none_is_refused():
    from neurosim.hardware_targets.lava.standard import standard_plan
    plan, _ = standard_plan(cuba_like(n=50), "fixed_pt")
    f = plan["E"].fixed
    # vth 10 mV above the reset, 4x headroom in 24 bits: S = 2**floor(log2(2**23/0.04))
    assert f.scale == 2.0 ** 27 and f.vth == round(0.010 * 2 ** 27 / 64)
    assert f.dv == round(4096 * (1 - np.exp(-0.1 / 20)))
    assert f.du == round(4096 * (1 - np.exp(-0.1 / 5))) - 1
    np.testing.assert_allclose(f.bias_mant * 2.0 ** f.bias_exp / f.scale,
                               plan["E"].bias * f.dv / 4096 / plan["E"].dv, rtol=1e-3)
    slow = cuba_like(n=50)
    slow.namespace["taum"] = 1000 * ms   # 10,000 steps: beyond Loihi's 12-bit decays
    plan, reason = standard_plan(slow, "fixed_pt")
    assert plan is None and "has no 12-bit Loihi decay" in reason
    weak = cuba_like(n=50)
    weak.namespace["El"] = -59.9999 * mV   # a drive of 5e-9 V per step: 0.7 units of v
    plan, reason = standard_plan(weak, "fixed_pt")
    assert plan is None and "rounding to Loihi's integers changes it by more than 1 %" in reason
    with pytest.raises(CircuitError, match="v_headroom=0.5: give a number from 1"):
        standard_plan(cuba_like(n=50), "fixed_pt", v_headroom=0.5)


isolated.run_fresh(globals())

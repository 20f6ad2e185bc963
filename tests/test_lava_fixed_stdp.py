"""PairSTDP on Lava's learning engine through Lava's standard processes
(hardware_targets/lava/standard.py, stdp_fixed.py): the library's Song-Abbott
STDP circuit (Poisson inputs onto LIF neurons) on ``lava`` (``LearningDense``,
floating point) and ``lava-fixed`` (its bit-approximate fixed-point model).

* ``lava`` learns Brian2's rule: its weights equal those of an independent
  numpy implementation of the rule (Brian2's event-driven traces) driven by the
  spikes Lava recorded, to float rounding, except for a pre and a post spike in
  the same step (Lava's engine pairs both, Brian2 runs the pre pathway first):
  each such pair moves a weight by at most |Apost| (counted and bounded here).
* ``lava-fixed`` against ``lava`` (the same input spikes): while their post
  spikes agree, every weight is within the bound of the stdp_fixed module doc
  (from the reported quantisation, the spike times and the float changes), and the
  weights really are fixed point (they differ); over the whole run the post
  spike counts agree within 15 % and how far the weights moved within 20 %.
* A trace that would saturate raises; weights outside [wmin, wmax] are refused
  (Lava's engine clips them all at every step); what has no mapping is refused.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from brian2 import Hz

import isolated
from isolated import skip_without_lava

skip_without_lava()
fresh = isolated.fresh(__file__)

STEPS = 3000  # 300 ms at dt = 0.1 ms
CHUNK = 100


def circuit(n_inputs=200, rate=15 * Hz, gmax=0.05):
    from neurosim.circuits.spiking import song_abbott_stdp
    return song_abbott_stdp(n_inputs=n_inputs, rate=rate, gmax=gmax)


def reference(w0, pre, post, rule, dt, lava_pairs: bool):
    """Brian2's PairSTDP in numpy from the spikes (``pre``, ``post``: bool arrays
    ``[step, neuron]``): traces decay by exp(-dt/tau) per step; a pre spike adds
    Apre to apre and apost to w, a post spike Apost to apost and apre to w, each
    clipped to [0, wmax]. ``lava_pairs``: at a pre and a post spike in one step
    both read the traces with both jumps and w is clipped once (Lava's engine);
    else the pre pathway runs first (Brian2). Returns (w, sum of |dw| per synapse,
    same-step pairs per synapse)."""
    w = np.array(w0, float)
    apre, apost = np.zeros(w.shape[1]), np.zeros(w.shape[0])
    a_pre, a_post = np.exp(-dt / float(rule.taupre)), np.exp(-dt / float(rule.taupost))
    moved, same = np.zeros(w.shape), np.zeros(w.shape)
    for s, q in zip(pre, post):
        apre *= a_pre
        apost *= a_post
        old = w.copy()
        if lava_pairs:
            apre[s] += rule.Apre
            apost[q] += rule.Apost
            w[:, s] += apost[:, None]
            w[q, :] += apre[None, :]
            w = np.clip(w, 0, rule.wmax)
        else:
            apre[s] += rule.Apre
            w[:, s] = np.clip(w[:, s] + apost[:, None], 0, rule.wmax)
            apost[q] += rule.Apost
            w[q, :] = np.clip(w[q, :] + apre[None, :], 0, rule.wmax)
        moved += np.abs(w - old)
        same += np.outer(q, s)
    return w, moved, same


def _spikes(rows, steps, n):
    out = np.zeros((steps, n), bool)
    out[rows[:, 0], rows[:, 1]] = True
    return out


def _run(name, c, steps, weights=None, **options):
    """Run ``steps`` in chunks: (input spikes, post spikes, weights after each chunk)."""
    from neurosim.hardware_targets import make_target
    pre, post, ws = [], [], []
    with make_target(name, c, seed=4, weights=weights, **options) as t:
        for _ in range(steps // CHUNK):
            r = t.run(CHUNK, record=[("inputs", "spikes"), ("neuron", "spikes")])
            pre.append(_spikes(r[("inputs", "spikes")], CHUNK, c.population("inputs").n))
            post.append(_spikes(r[("neuron", "spikes")], CHUNK, c.population("neuron").n))
            ws.append(t.get_weights()["synapses"]["w"])
        q = t.quantisation() if name == "lava-fixed" else None
    return np.concatenate(pre), np.concatenate(post), ws, q


@fresh
def test_lava_learns_brian2s_pair_stdp():
    c = circuit()
    rule = c.projection("synapses").plasticity
    w0 = c.initial_weights(4)["synapses"]["w"]
    pre, post, ws, _ = _run("lava", c, STEPS)
    assert post.sum() >= 10  # the neuron fires, so both halves of the rule act
    dt = float(c.dt)
    w_lava, moved, same = reference(w0, pre, post, rule, dt, lava_pairs=True)
    np.testing.assert_allclose(ws[-1], w_lava, rtol=0, atol=1e-12)
    assert moved.sum() > 0.05 * rule.wmax * w0.size  # the weights really learned
    w_b2 = reference(w0, pre, post, rule, dt, lava_pairs=False)[0]
    assert np.all(np.abs(ws[-1] - w_b2) <= same * abs(rule.Apost) + 1e-12)


@fresh
def test_fixed_point_stdp_within_the_derived_bound():
    from neurosim.hardware_targets.lava.stdp_fixed import FixedPairSTDP
    c = circuit()
    rule = c.projection("synapses").plasticity
    f_pre, f_post, f_ws, _ = _run("lava", c, STEPS)
    x_pre, x_post, x_ws, quant = _run("lava-fixed", c, STEPS)
    np.testing.assert_array_equal(x_pre, f_pre)  # the same input spikes
    differ = np.nonzero((x_post != f_post).any(axis=1))[0]
    agree = (differ[0] if differ.size else STEPS) // CHUNK  # chunks with equal post spikes
    assert agree >= 3 and f_post[:agree * CHUNK].sum() >= 2, (agree, f_post.sum())
    q = quant["projections"]["synapses"]["stdp"]
    stdp = FixedPairSTDP("synapses", rule, 2.0 ** quant["projections"]["synapses"][
        "weight_exp"] / q["errors"]["q"], float(c.dt))
    assert stdp.terms and stdp.errors == q["errors"]  # the reported mapping
    w0 = c.initial_weights(4)["synapses"]["w"]
    n = agree * CHUNK
    moved = reference(w0, f_pre[:n], f_post[:n], rule, float(c.dt), True)[1]
    diff = np.abs(x_ws[agree - 1] - f_ws[agree - 1])
    bound = stdp.bound(f_pre[:n], f_post[:n], moved)
    assert np.all(diff <= bound), (diff.max(), bound.min())
    assert diff.max() > 0  # fixed point is not float in disguise
    # and unbiased: the fixed-point changes follow the float ones (a wrong scale of the
    # pairing steps would tilt the slope)
    d_f = (f_ws[agree - 1] - w0).ravel()
    d_x = (x_ws[agree - 1] - w0).ravel()
    slope = float(d_f @ d_x / (d_f @ d_f))
    corr = float(np.corrcoef(d_f, d_x)[0, 1])
    print(f"agree {n} steps, {int(f_post[:n].sum())} post spikes: max |dw| {diff.max():.3g} "
          f"(q = {stdp.q:.3g}), bound {bound.min():.3g} to {bound.max():.3g}, slope {slope:.3f}, "
          f"correlation {corr:.3f}")
    assert 0.85 <= slope <= 1.15 and corr >= 0.9, (slope, corr)
    # the whole run: statistically the same learning (post spikes, how far weights moved)
    moved_f, moved_x = (np.mean(np.abs(ws[-1] - w0)) for ws in (f_ws, x_ws))
    print(f"{STEPS} steps: post spikes {int(f_post.sum())} / {int(x_post.sum())}, mean |w - w0| "
          f"{moved_f:.3g} / {moved_x:.3g}")
    assert abs(int(x_post.sum()) - int(f_post.sum())) <= 0.15 * f_post.sum()
    assert abs(moved_x - moved_f) <= 0.2 * moved_f


@fresh
def test_a_saturating_trace_and_weights_out_of_range_raise():
    from neurosim.circuit import CircuitError
    from neurosim.hardware_targets import make_target
    from neurosim.hardware_targets.lava.fixed_point import FixedPointOverflow
    c = circuit(n_inputs=20, rate=400 * Hz)
    with pytest.raises(FixedPointOverflow, match="'synapses'.*trace_headroom"):
        _run("lava-fixed", c, 1000, trace_headroom=1)
    # Lava clips every weight to [0, wmax] at every step, Brian2 a synapse when it
    # updates: weights outside are refused, at build and when set
    weights = c.initial_weights(0)
    weights["synapses"]["w"][0, 0] = 2 * c.projection("synapses").plasticity.wmax
    for name in ("lava", "lava-fixed"):
        with pytest.raises(CircuitError, match="'synapses'.*outside its PairSTDP range"):
            make_target(name, c, weights=weights)
        with make_target(name, c) as t, pytest.raises(CircuitError, match="outside"):
            t.set_weights({"synapses": {"w": -weights["synapses"]["w"]}})


def test_what_has_no_fixed_point_stdp_mapping_is_refused():
    from neurosim.circuit import CircuitError
    from neurosim.hardware_targets.lava.standard import standard_plan
    from neurosim.plasticity import PairSTDP, ThreeFactorSTDP
    assert standard_plan(circuit(), "fixed_pt")[0] is not None
    for rule, construct in ((PairSTDP(wmin=-0.01), "wmin"),
                            (ThreeFactorSTDP(), "other than by a PairSTDP")):
        c = circuit()
        c.projections["synapses"] = dataclasses.replace(c.projection("synapses"),
                                                        plasticity=rule)
        plan, reason = standard_plan(c, "fixed_pt")
        assert plan is None and construct in reason, reason
    from neurosim.hardware_targets.lava.stdp_fixed import FixedPairSTDP
    with pytest.raises(CircuitError, match="trace_headroom"):
        FixedPairSTDP("synapses", PairSTDP(), 1e4, 1e-4, trace_headroom=0)
    with pytest.raises(CircuitError, match="cannot express"):  # far below one step
        FixedPairSTDP("synapses", PairSTDP(Apre=1e-9), 1e4, 1e-4)


isolated.run_fresh(globals())

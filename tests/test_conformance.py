"""Conformance: published Brian2 models on every target of the registry.

Ten models (``neurosim.circuits.brian2_examples``: Brian2's IF curve, CUBA,
Brunel & Hakim 1999, Brunel 2000, Vogels et al. 2011, Izhikevich 2003, Jansen
& Rit 1995, the Jeffress model and Song-Abbott STDP, plus an Oja-rule rate
neuron), each declared once and run beside its plain Brian2 script
(``tests/conformance/plain_<model>.py``) with the same synapses, initial values
and seed. Every (model, target) cell is one of:

* **agrees** with the plain script under the rule stated for it in
  ``tests/conformance/harness.py`` (``RULES``): identical, within an absolute
  tolerance, or statistically (summary statistics within the distribution of
  the plain script over ten seeds, five for the costlier models) for targets
  with their own random streams
  or chaotic dynamics;
* **refused at construction** with a ``CircuitError`` that names the construct
  and lists the targets that accept the circuit (and that list is exactly the
  targets that did not refuse it).

Anything else -- a different answer, or an error while running -- fails.
CI runs reduced sizes (``CI_SCALE``); the full sizes run as slow tests. Lava
cells run in a fresh interpreter (Lava forks its workers).
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pytest

from conformance import harness as h

CELLS = [(m, t) for m in h.MODELS for t in h.TARGET_NAMES]
# Compiling costs: brian2-cython compiles every code object once per machine
# (20-70 s per model with a cold cache) and agrees with brian2-numpy to rounding;
# brian2-cpp compiles each program (10-60 s per model on 2 loaded cores). CI
# runs the models below on them (on cpp every construct of the suite: sparse
# connectivity, refractoriness across calls, noise, delays, plasticity, namespace
# changes, TimedArray, learning rules), the other cells as slow tests. The whole file
# took 6.5 min with every cpp cell on 2 shared cores.
CI_COMPILED = {"brian2-cython": ("if_curve", "jansen_rit", "oja"),
               "brian2-cpp": ("if_curve", "brunel_hakim", "vogels", "jansen_rit", "stdp",
                              "oja")}
CI_CELLS = [(m, t) for m, t in CELLS if m in CI_COMPILED.get(t, (m,))]
SLOW_CELLS = [c for c in CELLS if c not in CI_CELLS]


@lru_cache(maxsize=None)
def cell(model: str, target: str, scale: float) -> dict:
    return h.cell(model, target, scale, seed=0)


@lru_cache(maxsize=None)
def reference(model: str, scale: float) -> dict:
    return h.reference(model, scale, seed=0)


def check_cell(model: str, target: str, scale: float) -> None:
    result = cell(model, target, scale)
    if result["status"] == "failed":
        pytest.fail(f"{model} on {target}: failed during {result['phase']} (a target "
                    f"must refuse at construction or run): {result['message']}")
    if result["status"] == "refused":
        msg = result["message"]
        circuit = h.circuit(model, scale, 0)
        assert h.names_a_construct(msg, circuit), f"the refusal names no construct: {msg}"
        listed = h.accepted_targets(msg)
        assert listed is not None, f"the refusal lists no accepting targets: {msg}"
        assert target not in listed and "brian2-numpy" in listed, msg
        assert set(listed) <= set(h.TARGET_NAMES), msg
        return
    ok, how = h.compare(model, target, result["obs"], reference(model, scale), scale)
    assert ok, f"{model} on {target} differs from the plain Brian2 script: {how}"


def by_model(cases):
    """One model's tests on one xdist worker (``--dist loadgroup``), so that the
    refusal test reuses the cells its worker already ran (``cell`` is cached)."""
    cases = [c if isinstance(c, tuple) else (c,) for c in cases]
    return [pytest.param(*c, marks=pytest.mark.xdist_group(c[0])) for c in cases]


@pytest.mark.parametrize("model,target", by_model(CI_CELLS))
def test_cell(model, target):
    check_cell(model, target, h.CI_SCALE[model])


def _drive_up(circuit):
    circuit.namespace["muext"] = circuit.namespace["muext"] * 1.1


def _no_delay_lines(circuit):
    proj = circuit.projections["synapses"]
    circuit.projections["synapses"] = dataclasses.replace(proj, delay=None)


@pytest.mark.parametrize("model,change", [("brunel_hakim", _drive_up),
                                          ("jeffress", _no_delay_lines)])
def test_the_statistical_rule_catches_a_changed_model(model, change):
    # what a target with its own random stream is held to (the brian2-cpp rule)
    # rejects a 10 % stronger external drive, and delay lines that are ignored
    scale = h.CI_SCALE[model]
    from neurosim.hardware_targets import make_target
    circuit = h.EXAMPLES[model][0](scale, 0)
    change(circuit)
    obs = h.EXAMPLES[model][1](make_target("brian2-numpy", circuit, seed=0), scale)
    ok, how = h.compare(model, "brian2-cpp", obs, reference(model, scale), scale)
    assert not ok, how


@pytest.mark.slow
@pytest.mark.parametrize("model,target", SLOW_CELLS)
def test_cell_compiled(model, target):
    check_cell(model, target, h.CI_SCALE[model])


@pytest.mark.parametrize("model", by_model(h.MODELS))
def test_refusals_list_exactly_the_targets_that_run(model):
    # a target the list names must not refuse, and one it leaves out must refuse
    # (cells CI does not run are left out of the comparison)
    scale = h.CI_SCALE[model]
    row = {t: cell(model, t, scale) for m, t in CI_CELLS if m == model}
    running = {t for t, c in row.items() if c["status"] != "refused"}
    for t, c in row.items():
        if c["status"] == "refused":
            listed = set(h.accepted_targets(c["message"]) or ())
            assert listed & set(row) == running, (t, c["message"])


def test_brian2_numpy_is_the_plain_script_bit_for_bit():
    # the strongest cell, asserted on its own: same code, same random stream
    for model in h.MODELS:
        scale = h.CI_SCALE[model]
        result = cell(model, "brian2-numpy", scale)
        assert result["status"] == "ran", (model, result.get("message"))
        ok, how = h.compare(model, "brian2-numpy", result["obs"], reference(model, scale), scale)
        assert ok and how == "identical", (model, how)


@pytest.mark.parametrize("model", by_model(h.MODELS))
def test_the_reference_is_not_vacuous(model):
    # a cell can only agree meaningfully if something happens: neurons fire,
    # learned weights move, rates vary (at 100 inputs the STDP neuron never
    # fired, and every target "agreed" on the initial weights)
    scale = h.CI_SCALE[model]
    ref = reference(model, scale)
    initial = h.drawn(model, scale, 0)["weights"]
    for key in ("counts", "counts_before", "counts_after", "ears", "probe"):
        if key in ref:
            assert ref[key].sum() > 0, key
    if model in ("stdp", "vogels", "oja"):
        proj = {"stdp": "synapses", "vogels": "con_ie", "oja": "w_in"}[model]
        w0 = initial[proj]["w"].ravel()
        assert np.abs(ref["w"].ravel() - w0).max() > 1e-3 * np.abs(w0).max(), "no learning"
    for key in ("eeg", "out"):
        if key in ref:
            assert np.ptp(ref[key]) > 0, key


def test_a_changed_model_is_caught():
    # the comparison can fail: the CUBA network with a 1 % stronger excitation
    scale = h.CI_SCALE["cuba"]
    from neurosim.hardware_targets import make_target
    circuit = h.EXAMPLES["cuba"][0](scale, 0)
    circuit.namespace["we"] = circuit.namespace["we"] * 1.01
    obs = h.EXAMPLES["cuba"][1](make_target("brian2-numpy", circuit, seed=0), scale)
    ok, how = h.compare("cuba", "brian2-numpy", obs, reference("cuba", scale), scale)
    assert not ok, how


# Lava's learning engine takes about 1.8 ms per step for the STDP example's 1000
# inputs: its 100 s (10^6 steps) would take half an hour on either Lava target
FULL_CELLS = [c for c in CELLS if c not in (("stdp", "lava"), ("stdp", "lava-fixed"))]


@pytest.mark.slow
@pytest.mark.parametrize("model,target", FULL_CELLS)
def test_cell_full_size(model, target):
    check_cell(model, target, 1.0)

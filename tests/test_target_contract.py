"""One behaviour suite for the target contract, parametrised over the registry
(issue 12): what ``set``/``clamp`` take and refuse, what ``get`` returns, and
the lifecycle, the same on every target that runs here.

``set`` takes a number (every neuron), an ``(n,)`` array, or a ``(B, n)``
batch only on a target that runs batches (``capabilities.batch``); every other
shape, and setting a subexpression, is refused with the same message on every
target (the target's name aside). ``get`` returns a float64 ``(n,)`` array,
``(B, n)`` after a batch. The observations of each target are gathered once
(:func:`observe`); the Lava targets are observed in a fresh interpreter (Lava
forks workers and sets the multiprocessing start method), as the Lava tests
are. Nothing runs a time step, so nothing is compiled (brian2-cpp and
brian2-cython read and write their host copy).
"""
from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest
from brian2 import ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection
from neurosim.hardware_targets import capabilities, make_target

HERE = ["brian2-numpy", "brian2-cython", "brian2-cpp", "dense"]
LAVA = ["lava", "lava-fixed"]
RATE = "dr/dt = (-r + I) / tau : 1\nI : 1\ng = 2 * r : 1"
BAD = {"too long": np.zeros(4), "too short": np.zeros(2), "column": np.zeros((3, 1)),
       "3-d": np.zeros((2, 2, 3)), "empty batch": np.zeros((0, 3)),
       "batch of wrong width": np.zeros((2, 4))}


def circuit():
    c = Circuit("c", namespace={"tau": 10 * ms}, dt=1 * ms)
    c.add(Population("a", 3, RATE))
    c.add(Population("b", 2, "dr/dt = (-r + I) / tau : 1\nI : 1"))
    c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)"))
    return c


def _value(array):
    return {"shape": list(array.shape), "dtype": str(array.dtype), "values": array.tolist()}


def _refusal(fn):
    """The message of the CircuitError ``fn`` raises, or ``None`` if it runs
    (any other exception propagates: a raw traceback fails the suite)."""
    try:
        fn()
    except CircuitError as exc:
        return str(exc)
    return None


def observe(name: str) -> dict:
    """What target ``name`` does with every probe of the contract (JSON-able)."""
    obs = {}
    with make_target(name, circuit()) as t:
        t.set("a", "r", 0.25)
        obs["scalar"] = _value(t.get("a", "r"))
        t.set("a", "r", [1.0, 2.0, 3.0])
        obs["vector"] = _value(t.get("a", "r"))
        obs["subexpression"] = _value(t.get("a", "g"))
        obs["bad"] = {label: _refusal(lambda v=v: t.set("a", "r", v)) for label, v in BAD.items()}
        obs["bad clamp"] = _refusal(lambda: t.clamp("a", "r", np.zeros(4)))
        obs["after bad"] = t.get("a", "r").tolist()
        obs["set subexpression"] = _refusal(lambda: t.set("a", "g", 1.0))
        obs["clamp subexpression"] = _refusal(lambda: t.clamp("a", "g", 1.0))
        obs["clamped after refusals"] = sorted(t.clamped)
        t.clamp("a", "r", 0.5)
        obs["clamp scalar"] = _value(t.get("a", "r"))
        obs["name"] = t.display_name
    t.close()  # a second close (the with block closed it): a no-op
    obs["closed twice"] = True
    with make_target(name, circuit()) as t:  # nothing given yet: any batch size may start
        obs["batch of one"] = _refusal(lambda: t.set("b", "r", np.ones((1, 2))))
        if obs["batch of one"] is None:
            obs["batch of one get"] = _value(t.get("b", "r"))
        obs["batch"] = _refusal(lambda: t.set("b", "r", np.ones((2, 2))))
        if obs["batch"] is None:
            obs["batch get"] = _value(t.get("b", "r"))
            obs["batch get, other population"] = _value(t.get("a", "r"))
    return obs


def case_lava():  # run in a fresh interpreter (this file as a script)
    return {name: observe(name) for name in LAVA}


@functools.lru_cache(maxsize=None)
def observed(name: str) -> dict:
    if name in LAVA:
        if importlib.util.find_spec("lava") is None:
            pytest.skip("lava-nc is not installed")
        from isolated import case_runner
        return case_runner(__file__, 240)("lava")[name]
    return observe(name)


NAMES = HERE + LAVA


@pytest.mark.parametrize("name", NAMES)
def test_scalar_and_sample_set_and_get(name):
    obs = observed(name)
    assert obs["scalar"] == {"shape": [3], "dtype": "float64", "values": [0.25] * 3}
    assert obs["vector"] == {"shape": [3], "dtype": "float64", "values": [1.0, 2.0, 3.0]}
    assert obs["clamp scalar"] == {"shape": [3], "dtype": "float64", "values": [0.5] * 3}
    # a subexpression is readable, computed from the stored values
    assert obs["subexpression"] == {"shape": [3], "dtype": "float64", "values": [2.0, 4.0, 6.0]}


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_are_refused_and_change_nothing(name):
    obs = observed(name)
    for label, message in obs["bad"].items():
        assert message is not None, f"{name} took a {label} array"
        assert message.startswith(f"Setting a.r: got shape {BAD[label].shape}; population "
                                  "'a' has 3 neurons"), message
        assert "shape (3,)" in message, message
    assert obs["bad clamp"].startswith("Clamping a.r: got shape (4,)")
    assert obs["after bad"] == [1.0, 2.0, 3.0]
    assert obs["clamped after refusals"] == []


def test_bad_shape_messages_are_the_same_on_every_target():
    seen = {}
    for name in NAMES:
        try:
            obs = observed(name)
        except pytest.skip.Exception:
            continue
        batch = capabilities(name).batch > 1
        seen.setdefault(batch, {})[name] = (obs["bad"], obs["set subexpression"])
    for group in seen.values():
        assert len({repr(v) for v in group.values()}) == 1, group


@pytest.mark.parametrize("name", NAMES)
def test_subexpression_set_and_clamp_refused(name):
    obs = observed(name)
    for verb, key in (("Setting", "set subexpression"), ("Clamping", "clamp subexpression")):
        assert obs[key] is not None and obs[key].startswith(
            f"{verb} a.g: it is a subexpression"), obs[key]
        assert "['r', 'I']" in obs[key]


@pytest.mark.parametrize("name", NAMES)
def test_batch_only_on_targets_that_run_batches(name):
    obs = observed(name)
    if capabilities(name).batch > 1:
        assert obs["batch"] is None and obs["batch of one"] is None
        assert obs["batch of one get"] == {"shape": [1, 2], "dtype": "float64",
                                           "values": [[1.0] * 2]}
        assert obs["batch get"] == {"shape": [2, 2], "dtype": "float64", "values": [[1.0] * 2] * 2}
        assert obs["batch get, other population"]["shape"] == [2, 3]
        return
    batchers = [n for n in HERE + LAVA if capabilities(n).batch > 1]
    assert batchers == ["dense"]
    for key, shape in (("batch", (2, 2)), ("batch of one", (1, 2))):
        assert obs[key] == (
            f"Setting b.r: got shape {shape}; population 'b' has 2 neurons, and the {name} "
            "target runs one sample at a time: give a number or shape (2,) per sample, or "
            f"use a target that runs batches{' of 2' if shape[0] == 2 else ''}: dense."), \
            obs[key]


@pytest.mark.parametrize("name", NAMES)
def test_lifecycle(name):
    obs = observed(name)
    assert obs["name"] == name
    assert obs["closed twice"]


if __name__ == "__main__":
    from isolated import main
    main(globals())

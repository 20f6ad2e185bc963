"""Targets: each module runs any circuit declaration on one kind of hardware.

``TARGETS`` maps the names the CLI accepts to a constructor
``(circuit, seed) -> Target``.
"""
from __future__ import annotations

from functools import partial


def _brian2(codegen, circuit, seed=0, weights=None):
    from .brian2 import Brian2Target
    return Brian2Target(circuit, seed=seed, weights=weights, codegen=codegen)


def _dense(circuit, seed=0, weights=None):
    from .dense import DenseTarget
    return DenseTarget(circuit, seed=seed, weights=weights)


TARGETS = {
    "brian2-numpy": partial(_brian2, "numpy"),
    "brian2-cython": partial(_brian2, "cython"),
    "dense": _dense,
}


def make_target(name: str, circuit, seed: int = 0, weights=None):
    from neurosim.circuit import CircuitError
    if name not in TARGETS:
        raise CircuitError(f"Unknown target {name!r}; available targets are {sorted(TARGETS)}.")
    return TARGETS[name](circuit, seed=seed, weights=weights)

"""Targets: each module runs any circuit declaration on one kind of hardware.

``TARGETS`` maps the names the CLI accepts to a constructor
``(circuit, seed) -> Target``.
"""
from __future__ import annotations

from functools import partial


def _brian2(codegen, circuit, seed=0, weights=None, **options):
    from .brian2 import Brian2Target
    return Brian2Target(circuit, seed=seed, weights=weights, codegen=codegen, **options)


def _dense(circuit, seed=0, weights=None, **options):
    from .dense import DenseTarget
    return DenseTarget(circuit, seed=seed, weights=weights, **options)


TARGETS = {
    "brian2-numpy": partial(_brian2, "numpy"),
    "brian2-cython": partial(_brian2, "cython"),
    "dense": _dense,
}


def make_target(name: str, circuit, seed: int = 0, weights=None, **options):
    """Build target ``name`` for ``circuit``; ``options`` go to its constructor."""
    import inspect

    from neurosim.circuit import CircuitError
    if name not in TARGETS:
        raise CircuitError(f"Unknown target {name!r}; available targets are {sorted(TARGETS)}.")
    if options:
        from .brian2 import Brian2Target
        from .dense import DenseTarget
        cls = DenseTarget if name == "dense" else Brian2Target
        accepted = set(inspect.signature(cls.__init__).parameters)
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise CircuitError(f"The {name} target does not take option(s) {unknown}; it takes "
                               f"{sorted(accepted - {'self', 'circuit', 'seed', 'weights'})}.")
    return TARGETS[name](circuit, seed=seed, weights=weights, **options)

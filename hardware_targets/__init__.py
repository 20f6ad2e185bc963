"""Targets: each module runs any circuit declaration on one kind of hardware.

``TARGETS`` maps the names the CLI accepts to ``(module, class, fixed options)``;
:func:`make_target` imports the module only when the target is used.
"""
from __future__ import annotations

import importlib
import inspect

TARGETS = {
    "brian2-numpy": ("brian2", "Brian2Target", {"codegen": "numpy"}),
    "brian2-cython": ("brian2", "Brian2Target", {"codegen": "cython"}),
    "dense": ("dense", "DenseTarget", {}),
    "brian2-cpp": ("brian2_standalone", "CppStandaloneTarget", {}),
    "brian2-cuda": ("brian2_standalone", "CudaStandaloneTarget", {}),
    "lava": ("lava", "LavaTarget", {"precision": "floating_pt"}),
    "lava-fixed": ("lava", "LavaTarget", {"precision": "fixed_pt"}),
}


def make_target(name: str, circuit, seed: int = 0, weights=None, **options):
    """Build target ``name`` for ``circuit``; ``options`` go to its constructor."""
    from neurosim.circuit import CircuitError
    if name not in TARGETS:
        raise CircuitError(f"Unknown target {name!r}; available targets are {sorted(TARGETS)}.")
    module, cls_name, fixed = TARGETS[name]
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls_name)
    accepted = set(inspect.signature(cls.__init__).parameters) - set(fixed)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise CircuitError(f"The {name} target does not take option(s) {unknown}; it takes "
                           f"{sorted(accepted - {'self', 'circuit', 'seed', 'weights'})}.")
    return cls(circuit, seed=seed, weights=weights, **fixed, **options)

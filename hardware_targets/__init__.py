"""Targets: each module or package runs any circuit declaration on one kind of hardware.

``TARGETS`` maps the names the CLI accepts to ``(module, class, fixed options)``;
:func:`make_target` imports the module only when the target is used. What a
target can do is declared by its class (``Target.capabilities``) and read here
(:func:`capabilities`, :func:`having`), so that callers ask for a capability,
never for a target by name.
"""
from __future__ import annotations

import importlib
import inspect

from neurosim.errors import CircuitError, UnsupportedConstruct

TARGETS = {
    "brian2-numpy": ("brian2.runtime", "Brian2Target", {"codegen": "numpy"}),
    "brian2-cython": ("brian2.runtime", "Brian2Target", {"codegen": "cython"}),
    "dense": ("dense", "DenseTarget", {}),
    "brian2-cpp": ("brian2.standalone", "CppStandaloneTarget", {}),
    "brian2-cuda": ("brian2.cuda", "CudaStandaloneTarget", {}),
    "lava": ("lava.target", "LavaTarget", {"precision": "floating_pt"}),
    "lava-fixed": ("lava.target", "LavaTarget", {"precision": "fixed_pt"}),
}


def make_target(name: str, circuit, seed: int = 0, weights=None, **options):
    """Build target ``name`` for ``circuit``; ``options`` go to its constructor."""
    if name not in TARGETS:
        raise CircuitError(f"Unknown target {name!r}; available targets are {sorted(TARGETS)}.")
    cls, fixed = target_class(name)
    clash = sorted(set(options) & set(fixed))
    if clash:   # other options are checked by the constructor (Target._check_options)
        raise CircuitError(f"The {name} target fixes {', '.join(f'{k}={fixed[k]!r}' for k in clash)}; "
                           f"leave {', '.join(clash)} out, or choose another target "
                           f"(available: {sorted(TARGETS)}).")
    return cls(circuit, seed=seed, weights=weights, **fixed, **options)


def target_class(name: str):
    module, cls_name, fixed = TARGETS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls_name), fixed


def capabilities(name: str):
    """The declared :class:`~neurosim.target.Capabilities` of registered target
    ``name`` (its class is imported; nothing is built)."""
    cls, fixed = target_class(name)
    return cls.capabilities_of(**fixed)


def having(wanted) -> list[str]:
    """The registered targets whose capabilities satisfy ``wanted(capabilities)``
    (a target whose module does not import is left out)."""
    out = []
    for name in TARGETS:
        try:
            caps = capabilities(name)
        except ImportError:
            continue
        if wanted(caps):
            out.append(name)
    return out


def accepting(circuit) -> list[str]:
    """The registered targets whose ``unsupported`` check accepts ``circuit``."""
    out = []
    for name in TARGETS:
        try:
            cls, fixed = target_class(name)
        except ImportError:
            continue
        if cls.unsupported(circuit, **fixed) is None:
            out.append(name)
    return out


def registry_name(cls, options: dict) -> str:
    """The registry name of target class ``cls`` built with ``options``."""
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    for name, (_module, cls_name, fixed) in TARGETS.items():
        if cls_name == cls.__name__ and all(options.get(k, defaults.get(k)) == v
                                            for k, v in fixed.items()):
            return name
    return cls.name


def refusal(target: str, circuit, reason: str) -> UnsupportedConstruct:
    """The error of a target that refuses ``circuit`` (to raise): the message
    names the construct (``reason``) and the targets that accept this circuit
    (computed from the registry), which it also carries as attributes."""
    others = [t for t in accepting(circuit) if t != target]
    where = (f"targets that accept circuit {circuit.name!r}: {', '.join(others)}" if others
             else f"no registered target accepts circuit {circuit.name!r} as declared")
    return UnsupportedConstruct(f"The {target} target cannot run {reason.rstrip('.')}; {where}.",
                                target=target, construct=reason, alternatives=others)

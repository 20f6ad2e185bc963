"""Brian2 code as array code: what the targets that evaluate equations
themselves (the dense engine, Lava's process models) share.

Statements are split with Brian2's ``parse_statement`` (:func:`statements`) and
expressions rendered to numpy syntax by Brian2's ``NumpyNodeRenderer`` and
compiled (:func:`compile_expr`);
:func:`array_namespace` provides what the rendered code refers to: Brian2's
numpy implementations of its default functions, taken from the array module
``xp`` by name, Brian2's unit names and constants as SI floats, ``dt`` and the
circuit's namespace.
"""
from __future__ import annotations

import numpy as np
from brian2 import Quantity
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core.functions import DEFAULT_FUNCTIONS, Function
from brian2.core.namespace import DEFAULT_UNITS
from brian2.parsing.rendering import NumpyNodeRenderer
from brian2.parsing.statements import parse_statement

from .errors import CircuitError

#: random functions: each target provides its own stream (Brian2's numpy
#: implementations take the vectorisation index its code generator adds)
RANDOM_FUNCTIONS = ("rand", "randn", "poisson")


def statements(code: str | None, where: str) -> list[tuple[str, str, str]]:
    """``(variable, operator, expression)`` for every line of Brian2 code."""
    out = []
    for line in (code or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            var, op, expr, _ = parse_statement(line)
        except Exception as exc:
            raise CircuitError(f"{where}: cannot parse the statement {line!r} ({exc}).") from exc
        out.append((var, op, expr))
    return out


def compile_expr(source: str, where: str):
    """``(numpy source, code object)`` of a Brian2 expression, rendered by Brian2's
    ``NumpyNodeRenderer`` and compiled for ``eval``; CircuitError naming ``where``
    if it cannot be. What both evaluators share: the dense engine writes the
    numpy source into its generated step loop, Lava's process models ``eval``
    the code object over a :class:`dict` scope in their workers."""
    try:
        numpy = NumpyNodeRenderer().render_expr(source)
        return numpy, compile(numpy, f"<{where}>", "eval")
    except Exception as exc:
        raise CircuitError(f"{where}: cannot translate {source!r} to array code "
                           f"({exc}).") from exc


def array_namespace(namespace: dict, dt: float, xp=np, dtype=np.float64) -> dict:
    """Globals for evaluating rendered Brian2 code on ``xp`` arrays of ``dtype``.

    ``int``, ``ceil``, ``floor`` and ``clip`` preserve the dtype (Brian2's numpy
    ``int`` returns int32, which would turn float32 arithmetic into float64; the
    values are the same). User functions in the namespace are left out: code
    that calls one fails as an unknown identifier."""
    g: dict = {"__builtins__": {}}
    for name, func in DEFAULT_FUNCTIONS.items():
        if name in RANDOM_FUNCTIONS:
            continue
        try:
            impl = func.implementations[NumpyCodeObject].get_code(None)
        except Exception:
            continue  # no numpy implementation
        if isinstance(impl, np.ufunc):
            if hasattr(xp, impl.__name__):
                g[name] = getattr(xp, impl.__name__)
        elif xp is np and callable(impl):
            g[name] = impl  # numpy-only helpers such as exprel

    def as_int(v):
        v = xp.asarray(v)
        return (v if v.dtype == bool else xp.trunc(v)).astype(dtype)
    g["int"] = as_int
    g["ceil"] = lambda v: xp.ceil(v).astype(dtype)
    g["floor"] = lambda v: xp.floor(v).astype(dtype)
    # numpy's clip ufunc without np.clip's Python wrapper (a few µs per call)
    g["clip"] = np._core.umath.clip if xp is np else (lambda v, lo, hi: xp.clip(v, lo, hi))
    g["logical_not"] = xp.logical_not
    g.update({k: float(v) for k, v in DEFAULT_UNITS.items()})
    g.update(inf=float("inf"), pi=float(np.pi), e=float(np.e), dt=float(dt))
    for key, value in namespace.items():
        if isinstance(value, Function) or callable(value) and not isinstance(value, Quantity):
            continue
        arr = np.asarray(value, dtype=float)
        g[key] = float(arr) if arr.ndim == 0 else xp.asarray(arr, dtype=dtype)
    return g

"""How feedback matrices align with the forward weights they stand in for.

For every projection declared with ``feedback_of`` (a feedback matrix B that
carries the errors of a forward projection W backwards: feedback alignment,
learned feedback, node perturbation, BrainProp's learned feedback), the three
measures of Lansdell et al. (2020, Fig. 2) and of the feedback-alignment
literature, named by the forward projection:

``relative_error/<W>``
    ‖W − Bᵀ‖ / ‖W‖ (Frobenius norms).
``angle/<W>``
    the angle, in degrees, between the error signal B carries and the one Wᵀ
    would carry (backprop's), for the errors of the last training trial: E Bᵀ
    against E W, E the batch of values B multiplies (the source-side factor of
    the feedback projection's summed variable, when that is one variable;
    otherwise, and before any training trial, None). Below 90°: B's signal is
    a descent direction.
``sign_congruence/<W>``
    the fraction of synapses where W and Bᵀ have the same sign.

Computed from any target's weights and state, so every target reports them.
"""
from __future__ import annotations

import re

import numpy as np

from .circuit import Circuit
from .lowering import lower

MEASURES = ("relative_error", "angle", "sign_congruence")
_VARIABLE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)_pre$")


def pairs(circuit: Circuit) -> list[tuple[str, str, str | None]]:
    """``(forward, feedback, error variable)`` for every feedback projection, the
    error variable the name of the value B multiplies, in B's source population
    (None when that is not one variable)."""
    carried = {}
    for s in lower(circuit, update=False).summed:
        proj = circuit.projections[s.projection]
        if proj.feedback_of is None or s.side != "post" or s.factors is None:
            continue
        source = s.factors["pre"]
        match = _VARIABLE.match(source[0]) if len(source) == 1 else None
        carried.setdefault(proj.name, match.group(1) if match else None)
    return [(p.feedback_of, p.name, carried.get(p.name))
            for p in circuit.projections.values() if p.feedback_of is not None]


def measures(target, trained: bool = True, found=None) -> dict[str, float]:
    """The measures of :data:`MEASURES` for every feedback projection of
    ``target.circuit`` (``found``: its :func:`pairs`, if known), from its
    current weights (and, with ``trained``, the errors of its last training
    trial for the angle)."""
    circuit = target.circuit
    found = pairs(circuit) if found is None else found
    if not found:
        return {}
    weights = target.get_weights()
    out = {}
    for forward, feedback, error in found:
        (W,), (B,) = weights[forward].values(), weights[feedback].values()
        Bt = B.T
        norm = np.linalg.norm(W)
        out[f"relative_error/{forward}"] = float(np.linalg.norm(W - Bt) / norm) if norm else None
        angle = None
        if trained and error is not None:
            E = np.atleast_2d(target.get(circuit.projections[feedback].source, error))
            est, true = (E @ Bt).ravel(), (E @ W).ravel()
            scale = np.linalg.norm(est) * np.linalg.norm(true)
            if scale:
                angle = float(np.degrees(np.arccos(np.clip(est @ true / scale, -1, 1))))
        out[f"angle/{forward}"] = angle
        out[f"sign_congruence/{forward}"] = float(np.mean(np.sign(W) == np.sign(Bt)))
    return out

"""Reusable plasticity rules that any projection can carry.

A rule is a small dataclass of unit-carrying parameters (public attributes, so
that a target can map it by type onto its own learning engine, as Lava maps
rules onto ``STDPLoihi`` / ``RewardModulatedSTDP``) that writes the Brian2 code
it stands for: synaptic model lines, ``on_pre`` and ``on_post`` statements and
the namespace entries they read. A projection carrying a rule
(``Projection(..., plasticity=PairSTDP(...))``) keeps it as given;
:func:`neurosim.circuit.synapse_code` derives the merged code, the rule's
statements after the projection's own, so ``on_pre='ge_post += w'`` transmits
with the weight before the rule changes it, as in Brian2's STDP example. Rules
are frozen: the code derived from a declaration cannot drift from it.

Every rule declares its weight variable (``weight='w'``, in ``unit``); a
projection may declare it too (``'w : 1'``, for readability), and the rule's
declaration replaces it. Constants are namespaced by projection
(``<projection>_taupre``, ...), so two projections with different rules never
clash. Synaptic variables of a rule
(``apre``, ``apost``, ``eligibility``) live in each projection's own Synapses.

Rules:

:class:`PairSTDP`
    Pair-based STDP with pre and post traces (Song, Miller & Abbott 2000;
    Brian2's ``examples/synapses/STDP.py``)::

        dapre/dt  = -apre/taupre   (event-driven)      on_pre:  apre += Apre;  w = clip(w + apost, wmin, wmax)
        dapost/dt = -apost/taupost (event-driven)      on_post: apost += Apost; w = clip(w + apre, wmin, wmax)

:class:`ThreeFactorSTDP`
    The same STDP pairing term, written into an eligibility trace instead of
    the weight, and a weight change gated by a neuromodulator ``M`` (Izhikevich
    2007; the three-factor form of the survey)::

        tau_e dE/dt = -E  (+ the STDP pairing term at every spike)
        dw/dt       = eta * M * E           (held inside [wmin, wmax])

    ``M`` is read from a post-synaptic variable (``modulator='M_post'``) that
    an ordinary summed projection from a declared dopamine population writes
    (see :func:`neurosim.circuits.spiking.dopamine`), so the rule runs on every
    target and needs no Brian2-only synapse-on-synapse construct.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from brian2 import Quantity, ms
from brian2.units.fundamentalunits import get_dimensions

from .errors import CircuitError

__all__ = ["PlasticityRule", "PairSTDP", "ThreeFactorSTDP", "RuleCode"]

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RuleCode:
    """The Brian2 code a rule contributes to one projection."""
    model: str
    on_pre: str
    on_post: str
    namespace: dict


class PlasticityRule:
    """Base of the rules: parameter checks and namespacing shared by all."""

    #: parameters that must be times (positive)
    _times: tuple[str, ...] = ()
    #: parameters that are plain numbers or Quantities passed to the namespace
    _constants: tuple[str, ...] = ()

    def validate(self) -> None:
        kind = type(self).__name__
        for name in self._times:
            value = getattr(self, name)
            if not (isinstance(value, Quantity) and get_dimensions(value) == ms.dim
                    and float(value) > 0):
                raise CircuitError(f"{kind}: {name}={value!r} must be a positive time "
                             f"(for example 20*ms).")
        if not _IDENT.match(str(self.weight)):
            raise CircuitError(f"{kind}: weight={self.weight!r} must name the projection's weight "
                         "variable (for example 'w').")
        if not float(self.wmin) < float(self.wmax):
            raise CircuitError(f"{kind}: wmin={self.wmin!r} must be smaller than wmax={self.wmax!r}.")

    def names(self, prefix: str) -> dict[str, str]:
        """Namespace name of every parameter for projection ``prefix``."""
        return {p: f"{prefix}_{p}" for p in self._times + self._constants}

    def brian2(self, prefix: str) -> RuleCode:
        raise NotImplementedError

    def _namespace(self, prefix: str) -> dict:
        return {name: getattr(self, p) for p, name in self.names(prefix).items()}

    def _pairing(self, prefix: str, model: str, target: str) -> RuleCode:
        """The pair-STDP traces, whose pairing term at every spike is added to
        ``target`` (an expression to assign, with ``{x}`` for the trace read)."""
        n, u = self.names(prefix), self.unit
        return RuleCode(
            model=(f"dapre/dt = -apre / {n['taupre']} : {u} (event-driven)\n"
                   f"dapost/dt = -apost / {n['taupost']} : {u} (event-driven)\n" + model),
            on_pre=f"apre += {n['Apre']}\n" + target.format(x="apost"),
            on_post=f"apost += {n['Apost']}\n" + target.format(x="apre"),
            namespace=self._namespace(prefix))


@dataclass(frozen=True)
class PairSTDP(PlasticityRule):
    """Pair STDP: ``Apre``/``Apost`` are the trace increments (in weight units;
    ``Apost`` negative for depression), the weight stays in ``[wmin, wmax]``.

    Defaults are those of Brian2's STDP example (``gmax = 0.01``,
    ``dApre = 0.01 * gmax``, ``dApost = -1.05 * dApre``).
    """
    taupre: Quantity = field(default_factory=lambda: 20 * ms)
    taupost: Quantity = field(default_factory=lambda: 20 * ms)
    Apre: float = 1e-4
    Apost: float = -1.05e-4
    wmax: float = 0.01
    wmin: float = 0.0
    weight: str = "w"
    unit: str = "1"

    _times = ("taupre", "taupost")
    _constants = ("Apre", "Apost", "wmin", "wmax")

    def brian2(self, prefix: str) -> RuleCode:
        self.validate()
        n, w = self.names(prefix), self.weight
        return self._pairing(prefix, f"{w} : {self.unit}",
                             f"{w} = clip({w} + {{x}}, {n['wmin']}, {n['wmax']})")


@dataclass(frozen=True)
class ThreeFactorSTDP(PlasticityRule):
    """Dopamine-modulated STDP (Izhikevich 2007) as a three-factor rule.

    The STDP pairing (trace increments ``Apre``/``Apost``, in weight units)
    feeds an eligibility trace with time constant ``tau_e``; the weight moves
    by ``dw/dt = eta * M * eligibility`` where ``M`` is ``modulator`` (a
    post-synaptic variable written by a dopamine projection). ``eta`` is a
    rate (Izhikevich's ``1/tau_s``).
    """
    taupre: Quantity = field(default_factory=lambda: 20 * ms)
    taupost: Quantity = field(default_factory=lambda: 20 * ms)
    tau_e: Quantity = field(default_factory=lambda: 1000 * ms)
    Apre: float = 1e-4
    Apost: float = -1.05e-4
    eta: Quantity = field(default_factory=lambda: 1 / ms)
    wmax: float = 0.01
    wmin: float = 0.0
    modulator: str = "M_post"
    weight: str = "w"
    unit: str = "1"

    _times = ("taupre", "taupost", "tau_e")
    _constants = ("Apre", "Apost", "eta", "wmin", "wmax")

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.eta, Quantity) and get_dimensions(self.eta) == (1 / ms).dim):
            raise CircuitError(f"ThreeFactorSTDP: eta={self.eta!r} must be a rate (for example "
                         "1/ms): the weight changes by eta * M * eligibility per unit time.")
        if not (_IDENT.match(self.modulator) and self.modulator.endswith(("_post", "_pre"))):
            raise CircuitError(f"ThreeFactorSTDP: modulator={self.modulator!r} must name a "
                         "neuromodulator variable of the post- or pre-synaptic population, "
                         "for example 'M_post' (written by a summed projection from a "
                         "dopamine population).")

    def brian2(self, prefix: str) -> RuleCode:
        self.validate()
        n, w, u, m = self.names(prefix), self.weight, self.unit, self.modulator
        # Written as a gated ODE, not a clip in on_pre/on_post: the weight moves
        # between spikes (whenever the modulator is on), and it may only move
        # towards the inside of [wmin, wmax].
        grow = f"int({m} * eligibility > 0) * int({w} < {n['wmax']})"
        shrink = f"int({m} * eligibility < 0) * int({w} > {n['wmin']})"
        return self._pairing(
            prefix,
            f"deligibility/dt = -eligibility / {n['tau_e']} : {u} (clock-driven)\n"
            f"d{w}/dt = {n['eta']} * {m} * eligibility * ({grow} + {shrink}) : {u} (clock-driven)",
            "eligibility += {x}")

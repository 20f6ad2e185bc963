"""Plasticity rules on Lava's learning engine: a registry keyed by rule class
(``PairSTDP`` -> ``STDPLoihi``, ``ThreeFactorSTDP`` -> a Loihi 3-factor rule, each
on a ``LearningDense``; package doc, Mapping)."""
from __future__ import annotations

import numpy as np

from neurosim.circuit import CircuitError
from neurosim.lowering import strip_suffix
from neurosim.plasticity import PairSTDP, ThreeFactorSTDP

#: Lava's 3-factor rules decay the y traces they receive by one step,
#: with tau = _Y_TAU, before using them: the neuron sends them scaled up.
_Y_TAU = float(np.iinfo(np.uint16).max)


class _RuleMapping:
    """How one plasticity rule class maps onto Lava's learning engine (a
    ``LearningDense`` with one of Lava's learning-rule objects)."""

    def refuse(self, proj, rule) -> None:
        """Raise CircuitError for a parameter of ``rule`` that has no mapping."""

    def learning_rule(self, rule, dt: float, K: int):
        raise NotImplementedError

    def trace_spec(self, proj, rule, k: int, dt: float):
        """What the post population sends to the rule's LearningDense each
        neurosim step, or None when it sends nothing but its spikes."""
        return None


class _PairSTDPMapping(_RuleMapping):
    def learning_rule(self, rule, dt, K, scale=1.0):
        """Brian2's rule: pre spike ``w += apost``, post spike ``w += apre``, with
        traces ``apre``/``apost`` decaying as exp(-t/taupre/post) and jumping by
        ``Apre``/``Apost`` at spikes. STDPLoihi: ``dw = lr*A_minus*x0*y1 +
        lr*A_plus*y0*x1`` with traces x1/y1 decaying as exp(-1/tau) per Lava step
        and jumping by their impulses. So lr = A_plus = 1, A_minus = -1 (exact
        literals: STDPLoihi rounds its constants to powers of two), impulses
        ``Apre`` and ``-Apost``, taus in Lava steps (tau/dt * K), one learning
        epoch per Lava step. ``scale``: the Lava weight per unit of ``w``."""
        from lava.proc.learning_rules.stdp_learning_rule import STDPLoihi
        return STDPLoihi(learning_rate=1, A_plus=1, A_minus=-1,
                         tau_plus=float(rule.taupre) / dt * K,
                         tau_minus=float(rule.taupost) / dt * K,
                         x1_impulse=scale * float(rule.Apre),
                         y1_impulse=-scale * float(rule.Apost), t_epoch=1)


class _ThreeFactorMapping(_RuleMapping):
    def refuse(self, proj, rule):
        if not rule.modulator.endswith("_post"):
            raise CircuitError(
                f"Projection {proj.name!r}: a ThreeFactorSTDP with the pre-synaptic "
                f"modulator {rule.modulator!r} (Loihi's 3-factor rules read the "
                "modulator y2 from the post-synaptic neuron: move it to the target "
                "population)")

    def learning_rule(self, rule, dt, K):
        """Eligibility = Lava's tag. Once per neurosim step (phase L+1) the post
        population sends y1 = apost (before its own spike), y2 = dt*eta*M and
        y3 = dt/tau_e, zeros at other Lava steps. All appliers read the old tag:
        w += dt*eta*M*E (Brian2's Euler step), E += -E*dt/tau_e + x0*apost +
        y0*apre (the decay and Brian2's on_pre/on_post)."""
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
        learning = Loihi3FLearningRule(
            dw="u0 * t * y2", dt="x0 * y1 + y0 * x1 - u0 * t * y3",
            x1_impulse=float(rule.Apre), x1_tau=float(rule.taupre) / dt * K, t_epoch=1)
        y_tau = _Y_TAU
        if {learning.y1_tau, learning.y2_tau, learning.y3_tau} != {y_tau}:
            raise CircuitError(  # a Lava other than 0.10: the y-trace gain is wrong
                f"This Lava's 3-factor rules decay y traces with taus "
                f"{learning.y1_tau, learning.y2_tau, learning.y3_tau}, not {y_tau}; "
                "update _Y_TAU in neurosim.hardware_targets.lava.plasticity.")
        return learning

    def trace_spec(self, proj, rule, k, dt):
        """The post trace ``apost`` (decay factor, jump ``Apost``), ``dt * eta * M``
        (M read by the post population) and ``dt / tau_e``."""
        eta = rule.names(proj.name)["eta"]
        return (k, float(np.exp(-dt / float(rule.taupost))), float(rule.Apost),
                f"{dt!r} * {eta} * {strip_suffix(rule.modulator, '_post')}",
                dt / float(rule.tau_e))


#: rule class -> its mapping; a subclass maps as its nearest registered base
_RULES = {PairSTDP: _PairSTDPMapping(), ThreeFactorSTDP: _ThreeFactorMapping()}


def check_weights(name, w, rule) -> None:
    """Lava's learning engine holds every weight in ``[wmin, wmax]`` at every step
    (Brian2 clips a weight only when its synapse updates): weights outside are
    refused, naming the fix, rather than clipped at once."""
    w = np.asarray(w, float)
    lo, hi = float(rule.wmin), float(rule.wmax)
    if w.size and (w.min() < lo or w.max() > hi):
        raise CircuitError(
            f"Projection {name!r}: weights from {w.min():.6g} to {w.max():.6g}, outside its "
            f"{type(rule).__name__} range [{lo:g}, {hi:g}], which Lava's learning engine "
            "enforces on every weight at every step (Brian2 only when a synapse updates); "
            "start them inside the range, or run this circuit on a brian2 target.")


def _rule_mapping(rule) -> _RuleMapping | None:
    return next((_RULES[c] for c in type(rule).__mro__ if c in _RULES), None)

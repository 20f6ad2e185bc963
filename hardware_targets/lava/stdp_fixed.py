"""PairSTDP on ``lava-fixed``: Lava's fixed-point learning engine
(``PyLearningDenseModelBitApproximate``, Loihi's learning arithmetic) with its
integers derived from the rule, and that model made to refuse what it would
otherwise saturate in silence.

Lava's engine learns in integers: a 7-bit trace per pre neuron (``x1``) and
per post neuron (``y1``), each decayed per step by ``exp(-1/tau)`` and
stochastically rounded, jumping by an integer impulse at a spike; weights are
8-bit mantissas (times the projection's ``2**weight_exp``) that change by
``C * trace`` mantissa steps, stochastically rounded, with ``C = m * 2**e``
(``m`` a signed 4-bit mantissa, ``-7 <= e <= 1``). Brian2's rule (``w += apre`` at a post
spike, ``w += apost`` at a pre spike, traces jumping by ``Apre``/``Apost``)
then maps with ``q`` the weight (in units of ``w``) of one mantissa step,
fixed by ``wmax``:

=======================  ======================================================
integer                  from the rule
=======================  ======================================================
``weight_exp``           the smallest that holds ``wmax`` in 8-bit mantissas
``q``                    ``2**weight_exp`` in ``w``'s units
``x1_impulse`` ``I_x``    at most ``127 / trace_headroom`` (default 8 impulses
                         before the 7-bit trace saturates), chosen with
``C_p = m * 2**e``       ``I_x * C_p`` as close as it gets to ``Apre / q``
``y1_impulse``, ``C_d``   the same for ``-Apost / q``
``x1_tau``, ``y1_tau``    ``taupre / dt``, ``taupost / dt`` rounded to steps
``wmax``                 ``round(wmax / q)`` mantissa steps (the model clips there)
=======================  ======================================================

So the rule string is ``dw = C_p * y0 * x1 - C_d * x0 * y1``, Lava's own
STDP form. The errors (the relative error of each pairing amplitude, of the
time constants, ``wmax``'s error and ``q``) are reported by
``LavaStandardTarget.quantisation()``. With them, while the post spikes of
``lava-fixed`` and ``lava`` agree (the same input spikes), a weight's
difference from floating point is bounded (:meth:`FixedPairSTDP.bound`,
``tests/test_lava_fixed_stdp.py``) by a deterministic part::

    q/2 (the initial weight) + |wmax error| + (eps + |tau error| / e) sum |dw|

(``eps`` the amplitudes' relative error, ``sum |dw|`` the float changes; a
trace with a time constant off by ``d tau / tau`` is off by at most ``1/e``
of that) and five standard deviations of a zero-mean part: each weight change
is stochastically rounded (variance at most ``q**2 / 4``, independent from
step to step), and each trace carries the stochastic rounding of its decays,
an AR(1) error ``T`` with innovations of variance at most 1/4, so
``Var T <= 1 / (4 (1 - a**2))`` and ``Cov(T(s), T(t)) <= a**|s - t| Var T``
(``a = exp(-1/tau)``). A weight of pre neuron ``i`` and post neuron ``j``
reads ``x1_i`` at ``j``'s spikes and ``y1_j`` at ``i``'s, so::

    Var <= N q**2 / 4 + (C_p q)**2 Var T_x sum_kl a_x**|t_k - t_l| (j's spikes)
                      + (C_d q)**2 Var T_y sum_kl a_y**|t_k - t_l| (i's spikes)

with ``N`` the spikes of both (the x and y traces draw from separate
generators, the weight rounding from a third).

Never silent: a trace that would saturate at 127 raises
:class:`FixedPointOverflow` naming the projection and the fix (a larger
``trace_headroom``); a pairing step smaller than Lava can express, or larger
than its accumulator holds, is refused at construction.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from neurosim.circuit import CircuitError

from .connections import _DiagonalTraces
from .fixed_point import FixedPointOverflow, _exponent

__all__ = ["FixedPairSTDP", "TRACE_HEADROOM", "check_trace_headroom", "learning_model"]

TRACE_HEADROOM = 8.0
_TRACE_MAX = 127  # Lava's 7-bit traces (W_TRACE)
_ACCUMULATOR = 2 ** 15  # Lava's learning accumulator, in 2**-7 mantissa steps


def _amplitude(target, top):
    """``(impulse, m, e, relative error)`` with ``impulse * m * 2**e`` closest to
    ``target`` (mantissa steps per pairing), the impulse from ``top / 2`` to
    ``top`` (the trace's resolution) where one fits, else any."""
    best = {}
    for impulse in range(top, 0, -1):
        for e in range(-7, 2):  # Lava's rule strings: scaling m * 2**e, m < 8, -7 <= e <= 1
            m = round(target / (impulse * 2.0 ** e))
            if 1 <= m <= 7:
                err = abs(impulse * m * 2.0 ** e - target) / target
                fine = 2 * impulse >= top
                if fine not in best or err < best[fine][3]:
                    best[fine] = (impulse, m, e, err)
    return best.get(True) or best.get(False)


def check_trace_headroom(value) -> float:
    """``trace_headroom`` as a float, or a CircuitError saying what to give."""
    try:
        h = float(value)
        ok = 1 <= h <= _TRACE_MAX
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CircuitError(f"trace_headroom={value!r}: give a number from 1 to {_TRACE_MAX}, "
                           "the pairings' worth of spikes a 7-bit STDP trace holds on "
                           "lava-fixed (default 8).")
    return h


class FixedPairSTDP:
    """The Lava fixed-point integers of one PairSTDP projection (module doc).
    ``scale``: Lava weight units (before the mantissa) per unit of ``w``."""

    def __init__(self, name, rule, scale, dt, trace_headroom=TRACE_HEADROOM):
        where = f"Projection {name!r} (PairSTDP on lava-fixed)"
        h = check_trace_headroom(trace_headroom)
        wmax = float(rule.wmax)
        self.exp = _exponent(0.0, wmax * scale)
        self.q = 2.0 ** self.exp / scale  # one mantissa step in w's units
        self.wmax = int(round(wmax / self.q))
        top = max(1, int(_TRACE_MAX // h))
        self.errors = {"wmax": self.wmax * self.q - wmax, "q": self.q}
        self.terms = {}
        for key, amp in (("potentiation", float(rule.Apre)), ("depression", -float(rule.Apost))):
            target = amp / self.q
            if target <= 0:
                raise CircuitError(f"{where}: {'Apre' if key == 'potentiation' else 'Apost'}"
                                   f"={amp:g} (lava-fixed maps potentiation by Apre > 0 and "
                                   "depression by Apost < 0).")
            impulse, m, e, err = _amplitude(target, top) or (1, 7, 1, math.inf)
            if target > 1 and m * 2.0 ** e * _TRACE_MAX * 2 ** 7 >= _ACCUMULATOR:
                raise CircuitError(f"{where}: one pairing moves a weight by {target:.3g} "
                                   f"mantissa steps of {self.q:.3g}, beyond Lava's learning "
                                   f"accumulator; use smaller Apre/Apost or a larger wmax.")
            if err > 0.25:
                raise CircuitError(f"{where}: the {key} step {amp:g} is {target:.3g} mantissa "
                                   f"steps of {self.q:.3g} (wmax / {self.wmax}), which Lava's "
                                   f"fixed-point engine cannot express (error {err:.0%}); use "
                                   "a larger step or a smaller wmax, or the 'lava' target.")
            self.terms[key] = (impulse, m, e)
            self.errors[key] = err
        self.taus = []
        for key in ("taupre", "taupost"):
            steps = float(getattr(rule, key)) / dt
            self.taus.append(max(1, int(round(steps))))
            self.errors[key] = self.taus[-1] / steps - 1

    def learning_rule(self, seed):
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule
        (ix, mp, ep), (iy, md, ed) = self.terms["potentiation"], self.terms["depression"]
        return Loihi2FLearningRule(
            dw=f"{mp} * 2^{ep} * y0 * x1 - {md} * 2^{ed} * x0 * y1",
            x1_impulse=ix, x1_tau=self.taus[0], y1_impulse=iy, y1_tau=self.taus[1],
            t_epoch=1, rng_seed=int(seed))

    def bound(self, pre, post, moved):
        """The bound of the module doc on ``|w_fixed - w_float|``, ``(n_post, n_pre)``,
        given the spikes (bool ``[step, neuron]``) of the pre and post populations and
        the sum of each weight's float changes' magnitudes ``moved``."""
        q = self.q
        eps = (max(self.errors["potentiation"], self.errors["depression"])
               + max(abs(self.errors["taupre"]), abs(self.errors["taupost"])) / math.e)
        (_, mp, ep), (_, md, ed) = self.terms["potentiation"], self.terms["depression"]

        def gram(spikes, tau):  # per neuron: sum over its spike pairs of a**|t_k - t_l|
            a = math.exp(-1 / tau)
            out = []
            for col in np.asarray(spikes, bool).T:
                t = np.nonzero(col)[0]
                out.append(float(np.sum(a ** np.abs(t[:, None] - t[None, :]))))
            return np.array(out), 1 / (4 * (1 - a * a))
        g_post, var_x = gram(post, self.taus[0])  # x1 (tau_pre) read at post spikes
        g_pre, var_y = gram(pre, self.taus[1])   # y1 (tau_post) read at pre spikes
        n = np.sum(post, axis=0)[:, None] + np.sum(pre, axis=0)[None, :]
        var = (n * q * q / 4 + (mp * 2.0 ** ep * q) ** 2 * var_x * g_post[:, None]
               + (md * 2.0 ** ed * q) ** 2 * var_y * g_pre[None, :])
        return q / 2 + abs(self.errors["wmax"]) + eps * np.asarray(moved) + 5 * np.sqrt(var)


@functools.cache
def learning_model():
    """Lava's bit-approximate LearningDense model, clipping weights at the rule's
    ``wmax`` and raising where a trace would saturate (module doc)."""
    from lava.magma.core.model.py.connection import LearningConnectionModelBitApproximate
    from lava.proc.dense.models import PyLearningDenseModelBitApproximate

    class CheckedLearningDenseModel(_DiagonalTraces, PyLearningDenseModelBitApproximate):
        def _saturate_synaptic_variable(self, name, values):
            values = super()._saturate_synaptic_variable(name, values)
            if name == "weights":
                values = np.minimum(values, self.proc_params["neurosim_wmax"])
            return values

        def _add_impulse(self, trace_values, random, impulses_int, impulses_frac):
            if np.any(np.asarray(trace_values) + impulses_int + (impulses_frac > 0)
                      > _TRACE_MAX):
                p = self.proc_params
                raise FixedPointOverflow(
                    f"Projection {p['neurosim_name']!r}: an STDP trace reached Loihi's 7-bit "
                    f"limit ({_TRACE_MAX}) at Lava step {self.time_step} on lava-fixed: more "
                    f"than trace_headroom={p['neurosim_headroom']:g} pairings' worth of spikes "
                    "within its time constant. Fix: a larger trace_headroom (coarser traces), "
                    "or the floating-point 'lava' target.")
            return LearningConnectionModelBitApproximate._add_impulse(
                trace_values, random, impulses_int, impulses_frac)

    return CheckedLearningDenseModel

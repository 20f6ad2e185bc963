"""Lava's LIF on ``lava-fixed``: a LIF population's float step (module
:mod:`.standard`) scaled onto the integers of Lava's bit-accurate LIF model
(``PyLifModelBitAcc``, Loihi's registers), and that model made to refuse what
it would otherwise wrap or clip in silence.

Loihi's LIF computes, per step, in integers (Lava's ``AbstractPyLifModelFixed``)::

    u <- trunc(u * (4096 - du - 1) / 4096) + (a_in << 6)      (24 bits; wraps)
    v <- trunc(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp)   (clips)
    spike when v > vth << 6;  then v = 0

The scaling is derived from the population's declaration, nothing for the user
to choose but how much room v needs (``v_headroom``, default 4 times the
threshold above the reset, in either direction):

=====================  ========================================================
integer                from the float step (``dv``, ``du``, ``vth``, ``bias``, ``W``)
=====================  ========================================================
scale ``S``            ``2**floor(log2((2**23 - 1) / (v_headroom * vth)))``: integer
                       units of ``v - v_reset`` (and of ``u``) per unit of v
``v``, ``u``           ``round(S * (v - v_reset))``, ``round(S * u)``
``dv``                 ``dv_q = round(4096 * dv)`` (at most 4095)
``du``                 ``du_q = round(4096 * du) - 1`` (Lava adds its ``ds_offset`` 1)
``vth``                ``round(S * vth / 64)`` (Loihi shifts it left by 6; 17 bits)
``bias_mant/_exp``     ``S * g_v * bias`` as a 13-bit mantissa times
                       ``2**bias_exp``, ``bias_exp`` 0 to 7, per neuron
``Dense`` weights      ``S * g_v * g_u * W / 64`` as 8-bit mantissas times
                       ``2**weight_exp``, one exponent per projection (the
                       smallest that holds the initial weights; Loihi shifts
                       the input left by 6)
=====================  ========================================================

``g_v = dv_q / (4096 dv)`` and ``g_u = (du_q + 1) / (4096 du)`` undo the
rounding of the decays in the steady state: v under a constant drive or a
constant rate of input settles where the declaration says (``v* = (a/du +
bias)/dv``), while the time constants are off by the decays' rounding (at
most 1/8192 per step).

:meth:`LavaStandardTarget.quantisation` reports, per population, ``S`` and the
error of each constant in the units of v (``dv``, ``du``: of the decay factor;
``vth``, ``bias``; ``weights``: the largest weight error per projection), from
which the bound on v is propagated step by step along the floating-point run
(same input spikes; the decays' truncations cost at most ``1/S`` each, an
input through a negative weight exponent ``64/S`` for the shift's floor)::

    Eu' = (1 - du) Eu + d_du (|u| + Eu) + 1/S + sum_p (n_p d_w_p + f_p)
    Ev' = (1 - dv) Ev + d_dv (|v| + Ev) + 1/S + Eu' + d_bias

and a spike of one target and not the other needs ``|v - vth| <= Ev + d_vth``
(``tests/test_lava_fixed_lif.py`` checks both on a CUBA-like network).

Never silent: an input of more than Loihi's 16-bit activation, a current that
would wrap, a v that would clip, each raises :class:`FixedPointOverflow` at that
step naming the population, the value in the declared units and the fix (a
larger ``v_headroom``), where Lava's model would wrap or clip. Lava has no
fixed-point ``LIFRefractory`` model: :func:`models` writes one, the float
model's refractory logic (v held, u integrating) on the bit-accurate model.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from neurosim.circuit import CircuitError

from .fixed_point import FixedPointOverflow, _exponent, _quantise

__all__ = ["FixedLif", "V_HEADROOM", "check_headroom", "fixed_weights", "models"]

V_HEADROOM = 4.0
_UNITY = 4096  # Loihi's decays: 12 bits
_SHIFT = 6  # the left shift of vth and of the input activation
_UV_MAX = 2 ** 23 - 1  # 24-bit u and v
_BIAS_MANT, _BIAS_EXP = 4095, 7
_ACT_MAX = 2 ** 15 - 1  # the 16-bit input activation


class FixedLif:
    """The integers of one LIF population on ``lava-fixed`` and their errors
    (module doc); ``lif`` is its float step (:class:`.standard._Lif`)."""

    def __init__(self, name, lif, v_headroom=V_HEADROOM):
        where = f"population {name!r} on lava-fixed"
        if not lif.vth > 0:
            raise CircuitError(f"{where}: the threshold is not above the reset (Loihi's LIF "
                               "spikes above a positive vth with v reset to 0).")
        self.scale = s = 2.0 ** math.floor(math.log2(_UV_MAX / (v_headroom * lif.vth)))
        self.vth = int(round(s * lif.vth / 2 ** _SHIFT))
        self.dv = min(int(round(_UNITY * lif.dv)), _UNITY - 1)
        self.du = max(int(round(_UNITY * lif.du)) - 1, 0)
        for what, want, got in (("leak dv", lif.dv, self.dv / _UNITY),
                                ("current decay du", lif.du, (self.du + 1) / _UNITY)):
            if want > 0 and got == 0 or want == 0 and lif.currents and got > 0:
                raise CircuitError(
                    f"{where}: its {what} = {want:.3g} per step has no 12-bit Loihi decay "
                    f"(1/{_UNITY} to 1): the time constant is beyond {_UNITY} steps; use a "
                    "larger dt, or the floating-point 'lava' target.")
        # the decays round to 12 bits (2 % off at dt/tau = 1/200); the drive is scaled
        # by the same factors, so that v's steady state under a constant drive or a
        # constant rate of input stays the declared one (v* = (a/du + bias)/dv)
        gain_v = self.dv / _UNITY / lif.dv if lif.dv > 0 else 1.0
        gain_u = (self.du + 1) / _UNITY / lif.du if lif.du > 0 and lif.currents else 1.0
        self.gain = gain_v * gain_u  # of the weights
        bias = s * gain_v * np.asarray(lif.bias, float)
        exp = np.zeros(bias.shape, np.int64)
        big = np.abs(bias) > _BIAS_MANT
        exp[big] = np.ceil(np.log2(np.abs(bias[big]) / _BIAS_MANT))
        mant = np.round(bias / 2.0 ** exp)
        exp += np.abs(mant) > _BIAS_MANT  # rounded up past the mantissa
        mant = np.round(bias / 2.0 ** exp)
        if exp.max(initial=0) > _BIAS_EXP:
            worst = float(np.max(np.abs(lif.bias)))
            raise CircuitError(
                f"{where}: its constant drive {worst:.6g} per step (in v's units) exceeds "
                f"Loihi's bias ({_BIAS_MANT} * 2**{_BIAS_EXP} units = "
                f"{_BIAS_MANT * 2 ** _BIAS_EXP / s:.6g} at v_headroom={v_headroom:g}); give "
                "a larger v_headroom (coarser units).")
        lost = (np.abs(lif.bias) > 1e-9 * lif.vth) & (  # above float noise
            np.abs(mant * 2.0 ** exp - bias) > 0.01 * np.abs(bias))
        if lost.any():
            worst = float(np.min(np.abs(lif.bias[lost])))
            raise CircuitError(
                f"{where}: its constant drive {worst:.3g} per step (in v's units) is below "
                f"50 units of v ({50 / s:.3g}), where rounding to Loihi's integers changes it "
                f"by more than 1 %; give a smaller v_headroom (finer units; now "
                f"{v_headroom:g}), or the floating-point 'lava' target.")
        self.bias_mant, self.bias_exp = mant.astype(np.int64), exp
        self.errors = {"dv": abs(self.dv / _UNITY - lif.dv),
                       "du": abs((self.du + 1) / _UNITY - lif.du) if lif.currents else 0.0,
                       "vth": abs(self.vth * 2 ** _SHIFT / s - lif.vth),
                       "bias": float(np.max(np.abs(mant * 2.0 ** exp / s - lif.bias),
                                            initial=0.0)),
                       "resolution": 1.0 / s}

    def state(self, value):
        """A float value of ``v - v_reset`` or ``u`` as Loihi's integers."""
        out = np.round(self.scale * np.asarray(value, float))
        if np.any(np.abs(out) > _UV_MAX) or not np.all(np.isfinite(out)):
            raise FixedPointOverflow(f"The value {float(np.max(np.abs(value))):.6g} (in v's "
                                     f"units, from the reset) is beyond lava-fixed's 24-bit v "
                                     f"and u (±{_UV_MAX / self.scale:.6g}); give a larger "
                                     "v_headroom.")
        return out.astype(np.int64)


def check_headroom(v_headroom) -> float:
    """``v_headroom`` as a float, or a CircuitError saying what to give."""
    try:
        value = float(v_headroom)
        ok = 1 <= value <= 2 ** 16
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CircuitError(f"v_headroom={v_headroom!r}: give a number from 1 to 2**16, the "
                           "range of v on lava-fixed in multiples of the threshold above the "
                           "reset (default 4).")
    return value


def fixed_weights(name, w_v, scale, exp=None):
    """``(mantissas, largest error in v's units, exponent)`` of a projection's Lava
    matrix ``w_v`` (in v's units per spike) at ``scale``, with its exponent ``exp``
    (None: the smallest that holds ``w_v``)."""
    w = np.asarray(w_v, float) * scale / 2 ** _SHIFT
    if exp is None:
        exp = _exponent(float(w.min()), float(w.max())) if w.size else 0
    m, _sign, error, bad = _quantise(w, exp)
    if bad.any():
        worst = float(np.max(np.abs(np.asarray(w_v)[bad])))
        raise FixedPointOverflow(
            f"Projection {name!r}: the weight {worst:.6g} (in the target's v units) does not "
            f"fit its Lava Dense on lava-fixed (8-bit mantissas with the exponent {exp} chosen "
            "when it was built, from its initial weights). Fix: build the target with "
            "weights of this range (make_target(..., weights=...)).")
    return m, error * 2 ** _SHIFT / scale, exp


@functools.cache
def models():
    """``{Lava process class: its checked bit-accurate model}`` for LIF and
    LIFRefractory (module doc), built once Lava is importable."""
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
    from lava.proc.lif.models import PyLifModelBitAcc
    from lava.proc.lif.process import LIF, LIFRefractory

    class CheckedLifModelBitAcc(PyLifModelBitAcc):
        """Lava's bit-accurate LIF, raising where it would wrap u or clip v."""

        def _fail(self, what, value, top):
            p = self.proc_params
            scale = p["neurosim_scale"]
            raise FixedPointOverflow(
                f"{what} of population {p['neurosim_name']!r} reached {value / scale:.6g} (in "
                f"v's units) at Lava step {self.time_step}, beyond Loihi's {top} on lava-fixed "
                f"(±{_UV_MAX / scale if top != '16-bit input' else _ACT_MAX * 64 / scale:.6g} "
                f"with v_headroom={p['neurosim_headroom']:g}). Fix: a larger v_headroom "
                "(each doubling halves the resolution), or the floating-point 'lava' target.")

        def subthr_dynamics(self, activation_in):
            a = np.asarray(activation_in, np.int64)
            if a.size and np.max(np.abs(a)) > _ACT_MAX:
                self._fail("The synaptic input", float(np.max(np.abs(a))) * 64, "16-bit input")
            u = np.int64(self.u) * (_UNITY - self.du - self.ds_offset)
            u = np.sign(u) * (np.abs(u) >> 12) + (a << _SHIFT)
            if u.size and np.max(np.abs(u)) > _UV_MAX:
                self._fail("The current u", float(np.max(np.abs(u))), "24-bit u")
            super().subthr_dynamics(activation_in)
            if self.v.size and np.max(np.abs(self.v)) >= _UV_MAX:
                self._fail("v", float(np.max(np.abs(self.v))), "24-bit v")

    @implements(proc=LIFRefractory, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class LifRefractoryModelBitAcc(CheckedLifModelBitAcc):
        """Lava's float LIFRefractory logic on the bit-accurate LIF: v is held
        for ``refractory_period`` steps after a spike, u integrates."""
        implements_process = None  # Lava's implements() refuses to re-target a subclass
        refractory_period_end: np.ndarray = LavaPyType(np.ndarray, int)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.refractory_period = proc_params["refractory_period"]

        def subthr_dynamics(self, activation_in):
            held = self.refractory_period_end >= self.time_step
            v = self.v.copy()
            super().subthr_dynamics(activation_in)
            self.v[held] = v[held]

        def reset_voltage(self, spike_vector):
            self.refractory_period_end[spike_vector] = self.time_step + self.refractory_period
            super().reset_voltage(spike_vector)

    return {LIF: CheckedLifModelBitAcc, LIFRefractory: LifRefractoryModelBitAcc}

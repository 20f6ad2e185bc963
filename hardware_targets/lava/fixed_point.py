"""Fixed point (``lava-fixed``): the constants of the quantisation scheme, its
errors and their messages (raised by the process models and the target alike),
and the weight quantisation (package doc, Fixed point)."""
from __future__ import annotations

import math

import numpy as np

from neurosim.circuit import CircuitError

_ROUNDING_FLOOR = 4  # grid steps: an estimate within them is the resolution itself
ROUNDING_TOLERANCE = 0.01  # default rounding_tolerance (package doc, Fixed point)
_STATE_BITS = 24
_STATE_MAX = 2 ** (_STATE_BITS - 1) - 1  # the largest state / message integer
_MAX_DELAY = 63  # Lava steps a fixed-point (Loihi 2) delay holds: 6 bits
_MANTISSA = {"mixed": (-256, 254), "single": (-255, 255)}  # mixed-sign: even values


class FixedPointOverflow(CircuitError, OverflowError):
    """A state, message or weight of ``lava-fixed`` left the range of its integers,
    or a stored variable's rounding-error estimate passed ``rounding_tolerance``
    (``overflow='raise'``, the default). The message names the variable, the value
    or the estimate, the range or the tolerance, and the fix."""


class FixedPointWarning(RuntimeWarning):
    """The same with ``overflow='warn'``: the value was saturated (or kept its
    rounding error) and the run went on."""


def _state_overflow(what: str, value: float, frac_bits: int) -> str:
    """The message for a state or message value outside the 24-bit range."""
    top = _STATE_MAX / 2.0 ** frac_bits
    if not math.isfinite(value):
        return (f"{what} became {value} on lava-fixed (24-bit values, frac_bits={frac_bits}, "
                f"range ±{top:.6g}): the computation diverged; check the equations and "
                "parameters (the floating-point 'lava' target shows the same values).")
    fit = math.floor(math.log2(_STATE_MAX / abs(value)))
    fix = (f"use frac_bits={fit} or fewer (range ±{_STATE_MAX / 2.0 ** fit:.6g}) or express "
           "the variable in larger units" if fit >= 0 else
           "express the variable in larger units (no frac_bits holds it)")
    return (f"{what} reached {value:.6g}, outside the range of lava-fixed's 24-bit values "
            f"with frac_bits={frac_bits} (±{top:.6g}). Fix: {fix}; or pass overflow='warn' "
            "to saturate with a warning.")


def _rounding_error(what: str, err: float, scale: float, tolerance: float, frac_bits: int,
                    fit: int) -> str:
    """The message for a rounding-error estimate beyond ``rounding_tolerance``
    (package doc, Fixed point): the estimate halves with each fractional bit."""
    q = 2.0 ** -frac_bits
    more = frac_bits + max(1, math.ceil(math.log2(err / max(tolerance * scale, 1e-300))))
    if more <= fit:
        fix = (f"more fractional bits, frac_bits={more} to {fit} (each bit halves the "
               f"rounding; {fit} is the most that holds the population's values so far), "
               "or express the variable in smaller units")
    else:
        fix = ("express the variable in smaller units (no frac_bits both resolves it and "
               "holds the population's values so far), or run on the floating-point 'lava' "
               "target")
    return (f"{what} carries an estimated rounding error of {err:.3g} ({err / q:.3g} steps "
            f"of the resolution 2**-{frac_bits}), beyond rounding_tolerance={tolerance:g} "
            f"times its scale {scale:.3g} (its largest magnitude so far) on lava-fixed: "
            f"changes smaller than half a step ({q / 2:.3g}) are lost at every write, so a "
            f"slowly changing variable stalls. Fix: {fix}; or pass a larger "
            "rounding_tolerance to accept it, or overflow='warn' to run on with a warning.")


def _exponent(lo: float, hi: float) -> int:
    """The smallest weight exponent whose 8-bit mantissas hold ``[lo, hi]``
    (mixed-sign ones are even: at most 254)."""
    top = max(abs(lo), abs(hi))
    limit = 254 if lo < 0 < hi else 255
    return math.ceil(math.log2(top / limit)) if top > 0 else 0


def _quantise(w, e):
    """8-bit mantissas ``m`` with ``w ~ m * 2**e``, single-sign or mixed-sign as
    the weights are now (Lava's sign modes): (mantissas, sign mode, largest
    rounding error, mask of the weights that saturated)."""
    w = np.asarray(w, dtype=float)
    sign = "mixed" if w.size and np.nanmin(w) < 0 < np.nanmax(w) else "single"
    lo, hi = _MANTISSA[sign]
    if sign == "mixed":  # Lava drops the lowest mantissa bit of mixed-sign weights
        raw = 2 * np.round(np.asarray(w) / 2.0 ** (e + 1))
    else:
        raw = np.round(np.asarray(w) / 2.0 ** e)
    m = np.clip(np.nan_to_num(raw), lo, hi)
    bad = ~(raw == m)  # NaN too
    error = float(np.max(np.abs(m * 2.0 ** e - w), initial=0.0))
    return m.astype(np.int32), sign, error, bad

"""The circuit library: published microcircuits declared as Brian2 equations.

Installed as ``neurosim.circuits``. ``CIRCUITS`` maps names to factories.
"""
from .predictive_coding import ACTIVATIONS, relaxed_predictive_coding

CIRCUITS = {
    "relaxed-pc": relaxed_predictive_coding,
}

__all__ = ["ACTIVATIONS", "CIRCUITS", "relaxed_predictive_coding"]

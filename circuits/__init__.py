"""The circuit library: published microcircuits declared as Brian2 equations.

Installed as ``neurosim.circuits``. ``CIRCUITS`` maps names to factories.
"""
from functools import partial

from .backprop import backprop_network
from .predictive_coding import ACTIVATIONS, relaxed_predictive_coding
from .spiking_predictive_coding import spiking_predictive_coding
from .spiking import dopamine_stdp, reward_task, song_abbott_stdp

CIRCUITS = {
    "relaxed-pc": relaxed_predictive_coding,
    "backprop": backprop_network,
    "feedback-alignment": partial(backprop_network, feedback_alignment=True),
    "spiking-pc": spiking_predictive_coding,
    "song-abbott-stdp": song_abbott_stdp,
    "dopamine-stdp": dopamine_stdp,
    "reward-task": reward_task,
}

__all__ = ["ACTIVATIONS", "CIRCUITS", "backprop_network", "relaxed_predictive_coding"]

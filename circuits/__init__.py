"""The circuit library: published microcircuits declared as Brian2 equations.

Installed as ``neurosim.circuits``. ``CIRCUITS`` maps names to factories;
``RATE_CIRCUITS`` names those trained with the clamp-settle-infer-learn trial
protocol of :mod:`neurosim.target` (``neurosim train``); ``PROTOCOLS`` gives a
rate circuit that comes with its authors' protocol the values it was published
with (circuit keywords and :class:`neurosim.training.TrainSettings` fields,
``sizes`` input first), which the command line takes as its defaults for that
circuit. The spiking circuits bring their own protocols (``circuits.spiking``,
``circuits.spiking_predictive_coding``).
"""
from functools import partial

from .backprop import backprop_network
from .brainprop import BRAINPROP, BRAINPROP_TRAINING, brainprop
from .node_perturbation import NODE_PERTURBATION, NODE_PERTURBATION_TRAINING, node_perturbation
from .predictive_coding import (ACTIVATIONS, AUTHORS, AUTHORS_TRAINING, SWITCHES, VARIANTS,
                                authors_predictive_coding, relaxed_predictive_coding)
from .spiking_predictive_coding import spiking_predictive_coding
from .spiking import dopamine_stdp, reward_task, song_abbott_stdp

CIRCUITS = {
    "relaxed-pc": relaxed_predictive_coding,
    "authors-pc": authors_predictive_coding,
    "backprop": backprop_network,
    "feedback-alignment": partial(backprop_network, feedback_alignment=True),
    "brainprop": brainprop,
    "node-perturbation": node_perturbation,
    "spiking-pc": spiking_predictive_coding,
    "song-abbott-stdp": song_abbott_stdp,
    "dopamine-stdp": dopamine_stdp,
    "reward-task": reward_task,
}

RATE_CIRCUITS = {name: CIRCUITS[name] for name in ("relaxed-pc", "authors-pc", "backprop",
                                                   "feedback-alignment", "brainprop",
                                                   "node-perturbation")}
PROTOCOLS = {"authors-pc": {**AUTHORS, **AUTHORS_TRAINING},
             "brainprop": {**BRAINPROP, **BRAINPROP_TRAINING},
             "node-perturbation": {**NODE_PERTURBATION, **NODE_PERTURBATION_TRAINING}}

#: the variants ``neurosim sweep`` runs for each circuit: name -> the train options
#: that make it (``backprop``, where a circuit does not define it: the backprop
#: network of the same shape with the options it takes; a mapping with
#: ``circuit='backprop'`` adjusts that network)
SWEEP_VARIANTS = {
    "relaxed-pc": VARIANTS,
    "authors-pc": VARIANTS,
    "node-perturbation": {"node_perturbation": {"feedback": "perturbation"},
                          "feedback_alignment": {"feedback": "fixed"},
                          "backprop": {"feedback": "reciprocal"}},
    "brainprop": {"brainprop": {}, "learned_feedback": {"learned_feedback": True},
                  # the paper's error backprop: softmax outputs, cross-entropy
                  "backprop": {"circuit": "backprop", "output_activation": "softmax"}},
}

__all__ = ["SWEEP_VARIANTS", "ACTIVATIONS", "AUTHORS", "AUTHORS_TRAINING", "BRAINPROP", "BRAINPROP_TRAINING",
           "brainprop", "CIRCUITS", "NODE_PERTURBATION", "NODE_PERTURBATION_TRAINING",
           "node_perturbation", "PROTOCOLS", "RATE_CIRCUITS",
           "authors_predictive_coding", "backprop_network", "dopamine_stdp",
           "relaxed_predictive_coding", "reward_task", "song_abbott_stdp",
           "spiking_predictive_coding", "SWITCHES", "VARIANTS"]

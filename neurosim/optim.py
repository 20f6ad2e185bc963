"""Optimisers of learning-rule increments (not a backend's: any target that
applies a rule's increment as a descent direction can pass it through one).

:class:`Adam` works on arrays of the module ``xp`` the target computes with."""
from __future__ import annotations

import numpy as np

__all__ = ["Adam"]


class Adam:
    """Adam (Kingma & Ba 2015) on learning-rule increments.

    A learning rule's increment is the descent direction ``-g`` of its
    weights; Adam rescales it per synapse. Being invariant to the scale of
    the increment, the rule's own learning rate only matters through ``eps``.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.moments: dict[str, list] = {}   # key -> [t, m, v]

    def step(self, key, delta, xp):
        t, m, v = self.moments.get(key, (0, xp.zeros_like(delta), xp.zeros_like(delta)))
        t += 1
        m = self.beta1 * m + (1 - self.beta1) * delta
        v = self.beta2 * v + (1 - self.beta2) * delta * delta
        self.moments[key] = [t, m, v]
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)

    def state(self) -> dict:
        out = {}
        for key, (t, m, v) in self.moments.items():
            out[f"adam/{key}/t"] = np.array([t])
            out[f"adam/{key}/m"] = np.asarray(m)
            out[f"adam/{key}/v"] = np.asarray(v)
        return out

    def load(self, state: dict, xp, dtype) -> None:
        keys = {k.rsplit("/", 1)[0][len("adam/"):] for k in state if k.startswith("adam/")}
        self.moments = {k: [int(state[f"adam/{k}/t"][0]),
                            xp.asarray(state[f"adam/{k}/m"], dtype=dtype),
                            xp.asarray(state[f"adam/{k}/v"], dtype=dtype)] for k in keys}

"""Projections: which Lava ``Dense`` / ``Sparse`` carries what (summed variables,
``on_pre`` spikes, delays), and the Lava connection models neurosim adapts (the
clipped ``LearningDense``, delay models with a cached weight stack, a ``Sparse``
whose weights keep their pattern; package doc, Mapping)."""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse

from neurosim.circuit import CircuitError
from neurosim.lowering import product


class _DiagonalTraces:
    """Mixin for Lava's learning-connection models: the traces each dependency
    reads, as Lava's ``_extract_applier_evaluated_traces`` gives them (the same
    values and shapes), without the (n, n) matrices it indexes to take their
    diagonals: with 1000 pre neurons that was 2 of the 3 ms of a learning step."""

    def _extract_applier_evaluated_traces(self, x_hist, y_hist):
        pre, post = np.arange(x_hist.shape[-1]), np.arange(y_hist.shape[-1])
        out = {}
        for k, x in enumerate(("x1", "x2")):
            out[f"{x}_x0"] = x_hist[self.tx, k, pre][np.newaxis, :]
            out[f"{x}_y0"] = x_hist[self.ty, k]
            out[f"{x}_u"] = x_hist[-1, k][np.newaxis, :]
        for k, y in enumerate(("y1", "y2", "y3")):
            out[f"{y}_x0"] = y_hist[self.tx, k].T
            out[f"{y}_y0"] = y_hist[self.ty, k, post][:, np.newaxis]
            out[f"{y}_u"] = y_hist[-1, k][:, np.newaxis]
        return out


@functools.cache
def _clipped_learning_dense_model():
    """Lava's floating-point LearningDense model, with the weights also held in
    [wmin, wmax] after every learning epoch (PairSTDP clips there; Lava's
    engine only saturates at 0 for excitatory weights)."""
    from lava.proc.dense.models import PyLearningDenseModelFloat

    class ClippedLearningDenseModel(_DiagonalTraces, PyLearningDenseModelFloat):
        def _saturate_synaptic_variable(self, name, values):
            values = super()._saturate_synaptic_variable(name, values)
            if name == "weights":
                values = np.clip(values, self.proc_params["wmin"], self.proc_params["wmax"])
            return values
    return ClippedLearningDenseModel


class _CachedDelayStack:
    """Mixin for Lava's DelayDense / DelaySparse models: Lava rebuilds the stack of
    per-delay weight matrices (``get_delay_wgts_mat``) at every Lava step, which
    costs (max delay + 1) times the synapses per step; here it is built once, as
    a CSC matrix, and again after the weights are set. Binary spikes add the
    columns of the neurons that spiked (Lava's ``Dense`` does the same)."""

    _stack = None

    def calc_act(self, s_in):
        if self._stack is None:
            self._stack = scipy.sparse.csc_matrix(self.get_delay_wgts_mat(
                self.weights, self.delays, self.a_buff.shape[-1] - 1))
        if self.num_message_bits.item() > 0:
            acc = self._stack @ s_in
        else:
            acc = np.asarray(self._stack[:, np.flatnonzero(s_in)].sum(axis=1)).ravel()
        return acc.reshape(self.a_buff.shape[-1], self.weights.shape[0]).T.astype(
            self.a_buff.dtype)

    def _set_var(self):
        super()._set_var()
        self._stack = None


def _delay_dense_model(precision):
    """Lava's DelayDense model with the cached delay stack."""
    from lava.proc.dense import models
    base = (models.PyDelayDenseModelFloat if precision == "floating_pt"
            else models.PyDelayDenseModelBitAcc)
    return type("CachedDelayDenseModel", (_CachedDelayStack, base), {})


def _fixed_pattern_sparse_model(precision, delayed=False):
    """Lava's Sparse model whose weights keep the pattern they were built with,
    zeros included. Written here because Lava's own ``_set_var`` rebuilds the
    matrix from the non-zero entries of the old one (``find`` drops explicit
    zeros), so setting the weights of a Sparse holding a zero (a weight, or a
    mantissa that rounds to 0) fails. In fixed point, the mantissas arrive
    clipped and truncated already (:func:`.fixed_point._quantise`): Lava's first-step
    clipping, which would rebuild the matrix, is skipped (and the delay bound it
    checks is checked by ``LavaTarget._lava_delays``)."""
    from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE
    from lava.proc.sparse import models

    base = getattr(models, f"Py{'Delay' if delayed else ''}SparseModel"
                           f"{'Float' if precision == 'floating_pt' else 'BitAcc'}")

    class FixedPatternSparseModel(*((_CachedDelayStack,) if delayed else ()), base):
        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.weights_set = True

        def _set_var(self):
            port = self.service_to_process
            name = self.var_id_to_var_map[int(port.recv()[0].item())]
            var = getattr(self, name)
            n = int(port.recv()[0].item())
            values = np.array([port.recv()[0] for _ in range(n)], dtype=float).ravel()
            if scipy.sparse.issparse(var):
                var = var.copy()
                var.data[:] = values.astype(var.dtype)
            else:
                var = np.array(var)
                var.flat[:n] = values
            setattr(self, name, var)
            self._stack = None
            self.process_to_service.send(MGMT_RESPONSE.SET_COMPLETE)
    return FixedPatternSparseModel


# --- projections: which Dense carries what ------------------------------------------

def _dense_parts(factors, expr: str, where: str) -> dict:
    """What a Lava Dense carries for a product of the plan (``neurosim.lowering``):
    ``{'syn': one synaptic variable or None, 'pre', 'post', 'scalar'}`` factor
    strings ('1' where there are none), or CircuitError."""
    if factors is None:
        raise CircuitError(
            f"{where} = {expr!r} (a Lava Dense computes W @ s, so the expression must "
            "be one synaptic variable times factors that each depend on one side, like "
            "'x_post = w * f(a_pre) * g(b_post)': split it into several summed "
            "variables)")
    syn = factors["syn"]
    if len(syn) > 1 or syn and not syn[0].isidentifier():
        raise CircuitError(
            f"{where} = {expr!r}, whose synaptic factor is {product(factors, 'syn')!r} "
            "(Lava maps one synaptic variable onto the weights of a Dense: declare the "
            "product as one weight variable)")
    return {"syn": syn[0] if syn else None,
            **{k: product(factors, k) or "1" for k in ("pre", "post", "scalar")}}


class _Link:
    """One Lava connection (Dense or Sparse): which projection variable it holds,
    in which direction, and (fixed point) its weight format."""

    def __init__(self, proj, syn, transpose, binary, rule=None):
        self.proj, self.syn, self.transpose, self.binary = proj, syn, transpose, binary
        self.rule = rule  # a PairSTDP or ThreeFactorSTDP carried by a LearningDense
        self.trace_k = None  # index of the y1/y2/y3 ports feeding a 3-factor rule
        self.dense = None
        self.pattern = None  # (columns, indptr, synapse -> entry, shape) of a Sparse
        self.delays = None  # delays in neurosim steps per synapse (spike links)
        self.exp, self.sign = 0, "single"
        self.weight_error = 0.0


def _delay_steps(circuit, proj, seed) -> np.ndarray | None:
    """Per-synapse delays in time steps, rounded as Brian2's spike queue rounds
    them (``int(delay / dt + 0.5)``), or None without a delay."""
    delays = circuit.delays(proj.name, seed)
    if delays is None:
        return None
    return np.floor(delays / float(circuit.dt) + 0.5).astype(np.int64)


def _spike_statement(proj, stmt) -> tuple[str, dict]:
    """The target variable and the factors of an ``on_pre`` statement ``x_post +=
    w * constants`` (a :class:`neurosim.lowering.Statement`, where ``v += w`` is
    already ``v_post += w`` as in Brian2), or CircuitError."""
    where = f"Projection {proj.name!r}: the on_pre statement '{stmt.line}'"
    if not (stmt.var.endswith("_post") and stmt.op in ("+=", "-=")):
        raise CircuitError(f"{where} (Lava maps spike transmission 'x_post += w' onto a "
                           "Dense; use a plasticity rule for learning)")
    parts = _dense_parts(stmt.factors, stmt.expr, where)
    if parts["pre"] != "1" or parts["post"] != "1":
        raise CircuitError(f"{where}, whose increment reads neuron variables (a spike "
                           "delivers a weight times constants through a Dense)")
    rule = proj.plasticity
    if rule is not None and parts["syn"] != rule.weight:
        raise CircuitError(f"{where} (with {type(rule).__name__} the spike must deliver "
                           f"the learned weight {rule.weight!r})")
    return stmt.var, parts

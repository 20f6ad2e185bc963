"""A projection's ``learning_rule`` applied to arrays: shared by the array targets.

The dense engine and the Lava target (on the host, between runs) apply a rate
circuit's trial-level plasticity the same way, from the plan's statements
(:class:`neurosim.lowering.ProjectionPlan`). Values are batches, ``(B, n)`` per
population variable (``B = 1`` on a target without batches); a synaptic
variable is ``(n_post, n_pre)`` for an all-to-all projection, one value per
synapse otherwise (in the order of ``Circuit.synapses``). An increment
(``+=``/``-=``) is the sum over the batch of the per-sample increments and
is divided by ``B`` with ``batch_mean``, then passes through the optimiser,
if any (:mod:`neurosim.optim`, keyed ``'projection/variable'``); an assignment that depends on the sample is refused for
a batch. An all-to-all increment that is a product of one-sided factors, ``w +=
eta * f(a_pre) * g(b_post)``, is computed as ``g(b).T @ f(a)`` without the
``(B, n_post, n_pre)`` intermediate.
"""
from __future__ import annotations

import numpy as np

from .codegen import projection_expr
from .errors import CircuitError
from .lowering import product


def evaluate(expr, globals_, value, syn=None, per_synapse=None, synapses=None, B=1, xp=np,
             t=0.0, sizes=None):
    """``expr`` (a :class:`neurosim.codegen.Expr`): ``value(pop, var)`` gives a
    population value, ``syn`` the synaptic arrays; ``per_synapse``, the
    projection's kind, spreads population values over its synapses:
    ``(B, 1, n_pre)`` / ``(B, n_post, 1)`` for ``'all'``, ``(B, n_syn)`` at each
    synapse's pre / post neuron for ``'sparse'`` (``synapses``: its ``(i, j)``;
    ``sizes``: population sizes)."""
    ns = {}
    for name, kind, pop, var, axis in expr.refs:
        if kind == "pop":
            v = value(pop, var)
            if per_synapse in ("all", "sparse"):
                v = xp.broadcast_to(v, (B, sizes[pop]))
                v = (xp.expand_dims(v, axis) if per_synapse == "all" else
                     v[:, synapses[axis - 1]])
        elif kind == "syn":
            v = syn[var]
        else:  # 't'
            v = t
        ns[name] = v
    return eval(expr.code, globals_, ns)


class LearningRule:
    """The ``learning_rule`` statements of one projection, compiled once."""

    def __init__(self, proj, populations, globals_):
        where = f"Projection {proj.name!r} learning_rule"
        self.proj, self.globals = proj, globals_
        self.sizes = {p: populations[p].n for p in (proj.source, proj.target)}
        self.statements = []
        for st in proj.learning:  # var is a synaptic variable (checked at declaration)
            fast = None
            if st.op in ("+=", "-=") and proj.kind == "all" and st.factors is not None:
                fast = {k: (projection_expr(product(st.factors, k), where, proj, populations,
                                            globals_) if f else None)
                        for k, f in st.factors.items()}
            full = st.expr if st.op in ("=", "+=", "-=") else f"{st.var} {st.op[:-1]} ({st.expr})"
            self.statements.append((st.var, -1.0 if st.op == "-=" else 1.0,
                                    st.op in ("+=", "-="), fast,
                                    projection_expr(full, where, proj, populations, globals_)))

    def apply(self, weights: dict, value, B: int = 1, xp=np, dtype=np.float64, synapses=None,
              optimizer=None, batch_mean: bool = False, t=0.0) -> dict:
        """New synaptic arrays (the statements in order, each reading the values the
        ones before it wrote)."""
        proj, syn = self.proj, dict(weights)

        def step(var, delta):  # the change applied for an increment (the batch sum)
            if batch_mean and B > 1:
                delta = delta / B
            if proj.learning_bound is not None:   # bounds the batch's change
                delta = xp.clip(delta, -proj.learning_bound, proj.learning_bound)
            return delta if optimizer is None else optimizer.step(f"{proj.name}/{var}",
                                                                  delta, xp)
        for var, sign, increment, fast, expr in self.statements:
            old = syn[var]
            if fast is not None:  # all-to-all separable increment: post.T @ pre
                def side(key):
                    n = self.sizes[proj.target if key == "post" else proj.source]
                    if fast[key] is None:
                        return xp.ones((B, n), dtype=dtype)
                    return xp.broadcast_to(evaluate(fast[key], self.globals, value, syn,
                                                    t=t), (B, n))
                inc = side("post").T @ side("pre")
                for key in ("syn", "scalar"):
                    if fast[key] is not None:
                        inc = inc * evaluate(fast[key], self.globals, value, syn, t=t)
                syn[var] = old + step(var, sign * inc)
                continue
            new = xp.asarray(evaluate(expr, self.globals, value, syn, proj.kind, synapses, B,
                                      xp, t, self.sizes))
            per_sample = new.ndim == old.ndim + 1
            if increment:
                inc = new.sum(axis=0) if per_sample else B * new
                syn[var] = old + step(var, sign * xp.broadcast_to(inc, old.shape))
                continue
            if per_sample:
                if B != 1:
                    raise CircuitError(
                        f"Projection {proj.name!r} learning_rule: the assignment to {var!r} "
                        f"depends on the sample, which is ambiguous for a batch of {B}; write "
                        "it as an increment (+= / -=) or use a batch of 1.")
                new = new[0]
            syn[var] = xp.broadcast_to(new, old.shape)
        return syn

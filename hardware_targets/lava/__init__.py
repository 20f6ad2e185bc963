"""Lava target: every population a Lava Process, every projection a Lava ``Dense`` or ``Sparse``.

:class:`LavaTarget` runs a :class:`~neurosim.circuit.Circuit` on Lava's
``Loihi2SimCfg`` (lava-nc 0.10, imported only through
:func:`neurosim.hardware_targets.lava.compat.import_lava`), in floating point
(``precision='floating_pt'``, target ``"lava"``) or in Loihi-style fixed point
(``precision='fixed_pt'``, target ``"lava-fixed"``).

Mapping
-------
* **Population** -> one ``AbstractProcess`` subclass built for it, with a
  ``Var`` per stored variable (differential equations and parameters), an
  ``InPort`` per summed variable or spike projection it receives, an
  ``OutPort`` per quantity that projections read from it, and ``Var`` s
  ``_mode``, ``_active`` and ``_params`` (the numeric namespace values) the
  host sets between runs, ``_overflow`` (fixed point, ``overflow='warn'``)
  and ``_spike_buf`` (the spikes of the last steps, packed 48 to a float) it
  reads (internal names start with ``_``, which Brian2 names never do). Its
  ``PyLoihiProcessModel`` executes the code Brian2 generates for the
  equations, from the plan :func:`neurosim.lowering.lower` makes once (shared
  with :mod:`neurosim.hardware_targets.dense`): the state updater's abstract
  code (``StateUpdater.update_abstract_code``, the population's ``method``),
  the threshold, reset and ``init`` code, each line split by Brian2's
  ``parse_statement``, rendered by Brian2's ``NumpyNodeRenderer`` and written
  out, one Python function per block and expression, by
  :class:`neurosim.codegen.Source` (the writer of the dense engine's step
  loop: subexpressions computed where read and again after a write). The model classes are built per
  population (Lava matches ``Var`` s and ports to model attributes by name) and
  handed to the compiler through ``exception_proc_model_map``.
* **Projection**, summed variables ``x_post = w * f(a_pre) * g(b_post)`` ->
  a Lava ``Dense`` (weights ``W``, graded messages ``f(a)``; ``g(b)`` and
  constant factors are applied by the receiving process); ``x_pre = w *
  f(a_pre) * g(b_post)`` -> a ``Dense`` holding ``W.T`` from target to source;
  ``one_to_one`` and sparse connectivity (``connect={'p': ...}``, explicit
  ``i``/``j``, ...) -> a Lava ``Sparse`` holding the synapses of
  ``Circuit.synapses(name, seed)`` (several synapses between one pair share an
  entry holding their sum; the pattern keeps its zeros, see
  :func:`.connections._fixed_pattern_sparse_model`). ``on_pre`` statements ``x_post += w``
  (``-=``, times constants) -> a ``Dense``/``Sparse`` fed by binary spikes; with
  a synaptic delay, Lava's ``DelayDense``/``DelaySparse``: a delay of ``D``
  steps (``Circuit.delays``, rounded as Brian2's spike queue rounds,
  ``int(d/dt + 0.5)``) is ``D*K`` Lava steps, so the spike arrives in the
  ``on_pre`` phase of step ``k + D``, as in Brian2; spikes in flight stay in
  Lava's buffers across calls (Lava's delay models, with their per-delay
  weight stack built once instead of at every Lava step:
  :class:`.connections._CachedDelayStack`). :meth:`LavaTarget.unsupported` names what has
  no mapping.
* **PairSTDP** (``Projection(..., plasticity=PairSTDP(...))``) -> Lava's
  ``STDPLoihi`` rule on a ``LearningDense`` (floating point), the post
  population's spikes wired to its ``s_in_bap``; the constants go into the
  trace impulses so that the rule strings hold only exact literals, the trace
  time constants are counted in Lava steps, and a subclass of Lava's float
  ``LearningDense`` model holds the weights in ``[wmin, wmax]`` as the Brian2
  rule does. Identical to Brian2's event-driven STDP except when a pre and a
  post spike of one synapse fall in the same step (Brian2 applies the
  depression of the pre spike before the post spike's trace jump; Lava's
  engine pairs both).
* **ThreeFactorSTDP** -> a ``Loihi3FLearningRule`` on a ``LearningDense``
  (``dw = u0*t*y2``, ``dt = x0*y1 + y0*x1 - u0*t*y3``): the eligibility is
  Lava's synaptic tag, the pre trace is Lava's ``x1``, and the post population
  sends, per plastic projection, ``y1 = apost`` (its post trace, before its
  own spike), ``y2 = dt*eta*M`` and ``y3 = dt/tau_e`` once per neurosim step
  (zeros otherwise), scaled up by Lava's one-step decay of received y traces.
  That is Brian2's Euler step of the rule, the transmission using the weight
  just updated. Brian2 gates growth at ``wmax`` (a weight may overshoot by
  one step); here the weight is clipped to ``[wmin, wmax]``: identical while
  no weight reaches a bound. The modulator must be a post-synaptic variable.
  On generated processes plasticity rules run in floating point only
  (``lava-fixed`` raises :class:`CircuitError`); PairSTDP between LIF
  populations runs on Lava's standard ``LearningDense``, in floating point and
  on Lava's fixed-point learning engine (:mod:`.standard`, :mod:`.stdp_fixed`).
* **learning_rule** (trial-level plasticity of rate circuits): applied by the
  target between runs -- summed variables are recomputed by one Lava step in
  which nothing else is updated, then the host reads the population state
  and the ``Dense`` weights, applies the rule with
  :class:`neurosim.learning.LearningRule` (the dense engine's, with a batch of
  one) and writes the new weights back (Lava's learning engine runs per-step spike-trace rules, not
  end-of-trial rules on arbitrary state).

Time steps
----------
Lava's ``Dense`` delivers at step ``s+1`` what it received at step ``s`` (its
buffer keeps recurrent networks free of deadlock). To keep one neurosim step
an exact forward-Euler step -- identical to the Brian2 and dense targets --
a neurosim step is ``K`` Lava steps, with ``L`` the number of summed levels
(:func:`~neurosim.lowering.summed_order`):

* phase ``p < L``: write the level ``p-1`` summed variables just received
  (``p >= 1``), send what level ``p`` reads;
* phase ``L``: write the last level (the state Brian2's monitors see; ``run``
  with ``record`` pauses Lava here to read it);
* phase ``L+1``: state update (or ``init`` when settling), threshold, spikes
  sent;
* phase ``L+2`` (only with spike projections): ``on_pre`` increments received,
  then the reset of the neurons that spiked (Brian2's order: thresholds,
  synapses, resets).

All ports send and receive at every Lava step (zeros outside their phase), as
Lava's synchronous ``LoihiProtocol`` requires.

A circuit of parts not connected to each other gets 1-element "tie" ports
from each part to the next: Lava compiles only the processes connected to the
one it runs, and would otherwise leave the other parts frozen.

Recording and parameters
------------------------
``run(n, record=[(pop, var), (pop, var, indices), (pop, 'spikes')])``:
variables are read at every step (Lava pauses at phase ``L``); spikes come
from each population's spike buffer, read every ``spike_rows`` steps, as
``[step, neuron]`` rows like the Brian2 target's. Namespace values changed
between runs (``circuit.namespace['I0'] = 2.0``) reach the process models
through their ``_params`` Var before the next run, and the host's own code
(``learning_rule``, subexpressions); a value must keep its shape.

Fixed point (``fixed_pt``)
--------------------------
A documented, Loihi-style quantisation scheme (``F = frac_bits``, default 12):

* **state and messages**: every stored variable and every graded message is a
  signed 24-bit integer with ``F`` fractional bits (value ``k * 2**-F``,
  ``|k| < 2**23``; beyond, see below); a stored value is rounded to nearest whenever
  it is written, so each write adds at most ``2**-(F+1)``;
* **weights**: an 8-bit weight mantissa with one shared exponent ``e`` per
  ``Dense`` (``w ~ m * 2**e``), the layout of Lava's own ``fixed_pt`` ``Dense``
  model (``PyDenseModelBitAcc``), which does the integer accumulation
  ``sum(m * s)`` and the shift by ``weight_exp``. Single-sign matrices use
  ``0 <= |m| <= 255`` (error ``<= 2**(e-1)``); mixed-sign ones Lava's even
  mantissas in ``[-256, 254]`` (error ``<= 2**e``); ``e`` is the smallest that
  holds ``max|w|``. Graded input arrives with ``weight_exp = e`` (exact
  integer product, then Lava's arithmetic shift, which floors: ``< 2**-F``);
  binary spikes with ``weight_exp = e + F``;
* **weights on the host**: the target keeps float64 master weights
  (``get_weights``; ``learning_rule`` updates them), and every write sends their
  quantisation to Lava, with the exponent fixed when the ``Dense`` was built:
  the smallest that holds the declared ``weight_range={'proj': (lo, hi)}`` of
  the projection, else its initial weights (a learned projection whose initial
  weights are all zero must declare its range);
* **no silent saturation**: a stored value or graded message outside
  ``±(2**23 - 1) * 2**-F`` (checked, vectorised, in the process model at every
  write; NaN included), a value given by ``set`` or as an initial value, a
  weight that does not fit its exponent, and an array of values that would
  all be stored as 0 (below the resolution ``2**-F``) raise
  :class:`FixedPointOverflow` (a :class:`CircuitError`) when they happen,
  naming the variable, the value, the range and the fix (the largest
  ``frac_bits`` that holds it, a ``weight_range``). A process model's error
  stops Lava at that step and reaches the host through ``runtime._wait``. With
  ``overflow='warn'`` the value saturates instead, and a
  :class:`FixedPointWarning` names it (workers count saturations in their
  ``_overflow`` Var; the host reads it at the end of ``run``/``settle``/
  ``learn``);
* **no silent rounding loss**: a change smaller than ``q/2`` (``q = 2**-F``) is
  lost at the write that rounds it, so a variable that changes slowly stalls
  (in ``tests/test_lava_fixed_point.py``, Izhikevich neurons in volts at
  ``F = 12``: ``v`` stops in the slow phase before the second spike, 1 spike
  instead of 8). The process model keeps, per neuron and stored variable, a
  first-order estimate ``e`` of the rounding error the value carries, updated
  at every write as ``e <- g * e + |r|``: ``r`` is the write's rounding residual
  (the value computed minus the value stored) and ``g`` how much of the old
  error the write keeps -- ``min(1, |d x_new / d x_old|)`` for the state update
  (the diagonal of its Jacobian, from the generated update evaluated once more
  per variable, with that variable raised by ``q`` and the same random draws:
  one more evaluation per state variable and step, affordable in an emulation),
  0 where a value is replaced (a summed input, ``init``, the reset of a neuron
  that spiked), 1 for an ``on_pre`` increment. A leaky variable (``g = 1 -
  dt/tau``) keeps ``e <= q/2 * tau/dt``, its honest precision; a stalled one
  (``g ~ 1``, every residual the whole lost change) grows ``e`` without bound.
  ``g`` is capped at 1 because where the dynamics amplify (a spike's upswing,
  chaos) they amplify any perturbation, on every target alike: what is
  estimated is the rounding the dynamics have not forgotten. An estimate
  beyond ``rounding_tolerance`` (default 0.01) times the variable's scale (its
  largest magnitude so far, over the population), and beyond 4 steps ``q`` (the
  resolution itself: a variable growing from 0 is not judged on its first
  small values), raises :class:`FixedPointOverflow` when it happens or, with
  ``overflow='warn'``, is counted and warned about (:class:`FixedPointWarning`),
  naming the variable, the estimate and the fix (more ``frac_bits``, up to the
  most that holds the population's values, or smaller units). So a leaky
  variable is flagged only where its precision, at worst ``q/2 * tau/dt``, is
  worse than the tolerance. A value the host sets starts with estimate 0. Calibration,
  the largest estimate over the scale in 2000 steps of those Izhikevich
  neurons: 2.8 at ``F = 12`` (stalled), 0.039 at 13, about halving with each
  bit, 0.0046 at 16, 0.0011 at 18 (the spikes of Brian2, step for step); every
  leaky and rate model of the Lava tests also runs clean at 0.002. The estimate bounds
  state errors, not spike times: a neuron near its threshold amplifies small
  differences into later spikes (up to 12 steps at ``F = 16`` there);
* **neuron update**: the generated update is evaluated on the dequantised
  state and the result rounded to the grid above (Loihi 2 runs custom neuron
  programs in fixed-point microcode; here the rounding of every stored value
  is what is emulated, not the bit-exact microcode).

Error of one summed input ``x = sum_j w_j s_j``, with ``q = 2**-F``::

    |x_fixed - x_float| <= sum_j |dw_j| |s_j| + sum_j |w_j| q/2 + q       (*)

(weight rounding, message rounding, the shift's floor; ``|dw_j| <= 2**e`` or
``2**(e-1)``). :meth:`LavaTarget.quantisation` reports ``e`` and the weight
error per ``Dense``; ``tests/test_lava_target.py`` checks (*) at every step
and a bound propagated with it through a leaky integration.

Runtime
-------
Lava compiles the network and starts its runtime (worker processes, started
with ``fork``) at the first run; until then ``get``/``set`` use the ``Var`` s'
initial values. :meth:`LavaTarget.close` stops it -- also on any error inside
a run, when the target is garbage collected, used as a context manager, or at
interpreter exit. Runs are waited for by polling, so that a process model
that raises stops the run at once with its traceback instead of hanging in
Lava's own wait (see ``runtime._wait``).

Random functions ``rand()``/``randn()`` draw from one seeded numpy stream per
population (seeded by the target's seed), not Brian2's stream: random circuits
agree with the other targets in distribution, not spike by spike.

Not supported (:meth:`LavaTarget.unsupported`; the constructor's
:class:`CircuitError` names the construct and the registered targets that
accept the circuit): refractoriness on ``lava-fixed``'s generated processes
(on ``lava`` it is Brian2's own: its ``not_refractory`` update and gated
threshold; a LIF population with a refractory period runs on ``lava-fixed`` as
Lava's ``LIFRefractory`` with the bit-accurate model of :mod:`.lif_fixed`), stochastic
equations (``xi``), Brian2 functions and ``TimedArray`` s in the namespace,
``on_post`` code and synaptic differential equations other than a plasticity
rule's, summed variables that are not a product of one synaptic variable and
one-sided factors, ``on_pre`` code other than ``x_post += w * constant``,
plasticity rules other than PairSTDP and ThreeFactorSTDP, plasticity rules on
``lava-fixed``, on projections that are not all-to-all or with delays, and
fixed-point delays beyond Loihi 2's 63 Lava steps.

Standard processes
------------------
Circuits of LIF populations (recognised in the equations) and static spike
projections run on Lava's own ``LIF``, ``LIFRefractory``, ``Dense`` and
``DelayDense`` instead (:mod:`.standard`; on ``lava-fixed`` Lava's bit-accurate
models, with the scaling derived in :mod:`.lif_fixed`): what Loihi's compiler
takes. ``LavaTarget.deployment()`` says, per population, which it is and why.

Modules
-------
One concern per file: :mod:`.target` (:class:`LavaTarget`: plan, build, run,
state and weights), :mod:`.process` (the population process and its models),
:mod:`.connections` (which ``Dense``/``Sparse`` carries what, and the Lava
connection models adapted here), :mod:`.plasticity` (plasticity rules on Lava's
learning engine), :mod:`.fixed_point` (the quantisation scheme and its errors),
:mod:`.standard` and :mod:`.lif_fixed` (Lava's standard processes, float and
fixed point), :mod:`.runtime` (Lava's worker processes) and :mod:`.compat` (the Python 3.11
import fix for lava-nc 0.10).
"""
from __future__ import annotations

from .fixed_point import ROUNDING_TOLERANCE, FixedPointOverflow, FixedPointWarning
from .target import OVERFLOW, PRECISIONS, LavaTarget

__all__ = ["LavaTarget", "PRECISIONS", "OVERFLOW", "ROUNDING_TOLERANCE", "FixedPointOverflow",
           "FixedPointWarning"]

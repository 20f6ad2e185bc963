"""Brian2 runtime target: numpy or cython code generation.

The circuit is translated by :mod:`neurosim.brian2_build` into one Brian2
``Network``; Brian2 parses the equations, picks the state updater and
generates the code. Clamping a population switches its state updater off;
``settle`` and ``learn`` run single steps with the state updaters off and the
circuit's ``init`` / ``learning_rule`` operations on.
"""
from __future__ import annotations

import contextlib
import gc

import numpy as np
from brian2 import SpikeMonitor, StateMonitor, prefs, seed as brian2_seed

from neurosim.brian2_build import build, get_synaptic, set_synaptic
from neurosim.circuit import Circuit
from neurosim.errors import CircuitError
from neurosim.target import (Capabilities, Target, check_steps, is_spikes, parse_record,
                             weight_values)

CODEGEN_TARGETS = ("numpy", "cython")


class Brian2Target(Target):
    """Run a circuit with Brian2's runtime device (``codegen='numpy'`` or ``'cython'``)."""

    name = "brian2"
    #: Brian2 is the reference: every construct, one sample at a time (the
    #: standalone targets inherit this)
    capabilities = Capabilities(spikes=True, plasticity=True, random=True)

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 codegen: str = "numpy", **options):
        if codegen not in CODEGEN_TARGETS:
            raise CircuitError(f"Unknown Brian2 code generation target {codegen!r}; use one "
                               f"of {CODEGEN_TARGETS}.")
        # options: those of a subclass (the standalone targets), for its check
        super().__init__(circuit, seed, weights, codegen=codegen, **options)
        self.codegen = codegen
        brian2_seed(seed)
        self.objs = build(circuit, weights or circuit.initial_weights(seed), seed=seed)
        self.net = self.objs.network
        self.dt = circuit.dt

    @contextlib.contextmanager
    def _codegen(self):
        """Brian2's code generation target for this target's runs only: the
        preference is global, and another target (or the user) may set it."""
        old = prefs.codegen.target
        prefs.codegen.target = self.codegen
        try:
            yield
        finally:
            prefs.codegen.target = old

    # state ------------------------------------------------------------------------
    def _group(self, population):
        try:
            return self.objs.groups[population]
        except KeyError:
            self.circuit.population(population)  # raises with the list of names
            raise

    def get(self, population, variable):
        self.circuit.check_variable(population, variable)
        return np.array(getattr(self._group(population), variable + "_")[:], dtype=float)

    def set(self, population, variable, values):
        values = self.state_values(population, variable, values)  # (n,): one sample
        setattr(self._group(population), variable + "_", values)

    def get_weights(self):
        return {name: {v: get_synaptic(self.objs.synapses[name], proj, v) for v in proj.parameters}
                for name, proj in self.circuit.projections.items()}

    def set_weights(self, weights):
        for name, params in weight_values(self.circuit, weights).items():
            proj = self.circuit.projection(name)
            for var, value in params.items():
                set_synaptic(self.objs.synapses[name], proj, var, value)

    # dynamics ---------------------------------------------------------------------
    def _updaters(self, active: bool):
        for name, g in self.objs.groups.items():
            g.state_updater.active = active and name not in self.clamped

    def _run(self, n_steps):
        # Network.run starts with a full gc.collect() (to warn about objects
        # left out of the network); with a large circuit alive that costs
        # ~70 ms per call. Freezing the objects that exist before the run
        # keeps that collection to the run's own new objects.
        gc.freeze()
        try:
            with self._codegen():
                self.net.run(n_steps * self.dt, namespace=self.circuit.namespace)
        finally:
            gc.unfreeze()

    def _single_steps(self, ops, n_steps):
        self.circuit.check_constants()  # the namespace may have changed since
        self._updaters(False)
        for op in ops:
            op.active = True
        try:
            self._run(n_steps)
        finally:
            for op in ops:
                op.active = False

    def settle(self):
        # one step per population with init code, and at least one, so that
        # derived (summed) variables reflect the clamped inputs
        ops = [op for pop, op in self.objs.settle_ops.items() if pop not in self.clamped]
        self._single_steps(ops, max(1, len(self.objs.settle_ops)))

    def learn(self):
        if self.objs.learn_ops:
            self._single_steps(list(self.objs.learn_ops.values()), 1)

    def run(self, n_steps, record=()):
        n_steps = check_steps(n_steps)
        self.circuit.check_constants()  # the namespace may have changed since
        monitors, spikes = {}, {}
        record = parse_record(self.circuit, record)
        by_pop: dict = {}
        for pop, var, indices in record:
            if is_spikes(self.circuit, pop, var):  # a declared variable named 'spikes' wins
                spikes[pop] = SpikeMonitor(self.objs.groups[pop], record=True)
                continue
            key = (pop, None if indices is None else tuple(indices))
            by_pop.setdefault(key, []).append(var)
        for (pop, indices), variables in by_pop.items():
            # after the summed variables, before the state update: the state at step start
            mon = StateMonitor(self.objs.groups[pop], variables, when="before_groups",
                               order=1000, record=True if indices is None else list(indices))
            monitors.update({(pop, var): mon for var in variables})
        objects = list({id(m): m for m in [*monitors.values(), *spikes.values()]}.values())
        self.net.add(*objects)
        self._updaters(True)
        start = int(round(float(self.net.t) / float(self.dt)))
        try:
            self._run(n_steps)
        finally:
            self.net.remove(*objects)
        out = {}
        for pop, var, indices in record:
            if is_spikes(self.circuit, pop, var):
                mon = spikes[pop]
                steps = np.round(np.asarray(mon.t_) / float(self.dt)).astype(np.int64) - start
                rows = np.stack([steps, np.asarray(mon.i, dtype=np.int64)], axis=1)
                out[(pop, var)] = rows if indices is None else rows[np.isin(rows[:, 1], indices)]
            else:
                out[(pop, var)] = np.array(getattr(monitors[(pop, var)], var + "_")).T.reshape(
                    n_steps, -1)
        return out

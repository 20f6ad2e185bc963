"""Wall time per target on the same circuits, in one run.

Circuits (both declared once, run unchanged on every target):

* ``pc``: relaxed predictive coding 784-300-100-10 relu; ``--trials`` training
  trials of ``--steps`` inference steps (clamp, settle, infer, learn), the
  paper's protocol;
* ``lif-stdp``: 100 Poisson inputs -> 1000 LIF neurons through all-to-all pair
  STDP (``benchmarks/target_scaling.py``), ``--chunks`` run() calls of 100 ms.

For every target the first trial / chunk is timed apart (``first``: for the
standalone targets it includes compiling each phase's program) from the
following ones (``per trial`` / ``per chunk``: medians). A target that cannot
run a circuit says why (the dense engine runs rate circuits only). Targets
are names of ``neurosim.hardware_targets.TARGETS``: a target registered there
later (Lava) is measured by naming it in ``--targets``.

    python benchmarks/target_walltime.py [--targets brian2-numpy brian2-cython
        brian2-cpp dense] [--circuits pc lif-stdp] [--trials 5] [--chunks 5]
"""
import argparse
import statistics
import time

import numpy as np

from neurosim.circuit import CircuitError
from neurosim.circuits import relaxed_predictive_coding
from neurosim.hardware_targets import TARGETS, make_target
from neurosim.target import train_trial
from target_scaling import lif_stdp_circuit

DEFAULT_TARGETS = ["brian2-numpy", "brian2-cython", "brian2-cpp", "dense"]


def pc_workload(args):
    circuit = relaxed_predictive_coding((784, 300, 100, 10), "relu")
    rng = np.random.default_rng(0)
    xs = rng.random((args.trials + 1, 784))
    ys = np.full((args.trials + 1, 10), 0.1)
    ys[np.arange(args.trials + 1), rng.integers(0, 10, args.trials + 1)] = 1.0

    def step(target, k):
        train_trial(target, xs[k], ys[k], args.steps)
    return circuit, step, args.trials + 1, f"{args.steps}-step training trial"


def lif_workload(args):
    circuit = lif_stdp_circuit(1000)

    def step(target, k):
        target.run(1000)
    return circuit, step, args.chunks + 1, "100 ms chunk"


WORKLOADS = {"pc": pc_workload, "lif-stdp": lif_workload}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, choices=sorted(TARGETS))
    ap.add_argument("--circuits", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=5)
    args = ap.parse_args()
    for name in args.circuits:
        circuit, step, n, unit = WORKLOADS[name](args)
        print(f"\n{circuit.description}: {n} x {unit}")
        print(f"{'target':>14s} {'build':>7s} {'first':>8s} {'per ' + unit.split()[-1]:>10s}")
        for target_name in args.targets:
            t = time.perf_counter()
            try:
                target = make_target(target_name, circuit, seed=0)
            except CircuitError as exc:
                print(f"{target_name:>14s}  n/a: {str(exc).split('. ')[0]}")
                continue
            build = time.perf_counter() - t
            times = []
            for k in range(n):
                t = time.perf_counter()
                step(target, k)
                times.append(time.perf_counter() - t)
            print(f"{target_name:>14s} {build:6.2f}s {times[0]:7.2f}s "
                  f"{statistics.median(times[1:]):9.3f}s", flush=True)
            target.close()


if __name__ == "__main__":
    main()

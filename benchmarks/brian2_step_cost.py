"""Per-step cost of the Brian2 target on the 784-300-100-10 predictive-coding circuit.

Measured side by side in one run, interleaved, medians over repeats:
  * Brian2 runtime, numpy code generation
  * Brian2 runtime, cython code generation
  * a plain hand-written numpy integration of the same equations (one sample)
Per-step cost = (time of a run of N steps - time of a run of 0 steps) / N,
so the fixed per-run overhead of Brian2 is reported separately.

    python benchmarks/brian2_step_cost.py [--steps 200] [--repeats 5]
"""
import argparse
import statistics
import time

import numpy as np

from neurosim.circuits import relaxed_predictive_coding
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.target import train_trial


def plain_numpy_step_cost(weights, x, steps):
    """Hand-written Euler steps of eqs 1-2 (relu, weight transport)."""
    th = [None] + [weights[f"weights{l}"]["w"] for l in range(1, 4)]
    mu = [None] * 4
    mu[3] = x
    for l in (2, 1, 0):
        mu[l] = np.maximum(th[l + 1] @ mu[l + 1], 0)
    t = time.perf_counter()
    for _ in range(steps):
        pred = [th[l + 1] @ mu[l + 1] for l in range(3)]
        eps = [mu[l] - np.maximum(pred[l], 0) for l in range(3)]
        g = [eps[l] * (pred[l] > 0) for l in range(3)]
        for l in (1, 2):
            mu[l] = mu[l] + 0.1 * (-eps[l] + th[l].T @ g[l - 1])
    return (time.perf_counter() - t) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    circuit = relaxed_predictive_coding((784, 300, 100, 10), "relu")
    x = np.random.default_rng(0).random(784)
    y = np.full(10, 0.1)
    y[3] = 1.0
    targets = {cg: Brian2Target(circuit, seed=0, codegen=cg) for cg in ("numpy", "cython")}
    for t in targets.values():  # compile / warm up
        train_trial(t, x, y, 5)
    per_step = {k: [] for k in (*targets, "plain numpy")}
    overhead = {k: [] for k in targets}
    trial = {k: [] for k in targets}
    for _ in range(args.repeats):
        for name, t in targets.items():
            t0 = time.perf_counter()
            t.run(0)
            t1 = time.perf_counter()
            t.run(args.steps)
            t2 = time.perf_counter()
            train_trial(t, x, y, 100)
            t3 = time.perf_counter()
            overhead[name].append(t1 - t0)
            per_step[name].append(((t2 - t1) - (t1 - t0)) / args.steps)
            trial[name].append(t3 - t2)
        per_step["plain numpy"].append(
            plain_numpy_step_cost(targets["numpy"].get_weights(), x, args.steps))
    med = {k: statistics.median(v) for k, v in per_step.items()}
    print(f"784-300-100-10 relu PC, {args.steps} steps, median of {args.repeats} interleaved runs")
    print(f"{'':18s} {'per step':>10s} {'vs plain':>9s} {'run overhead':>13s} "
          f"{'100-step trial':>15s}")
    for name in per_step:
        ov = f"{1e3 * statistics.median(overhead[name]):10.1f} ms" if name in overhead else ""
        tr = f"{statistics.median(trial[name]):13.3f} s" if name in trial else ""
        print(f"{'brian2 ' + name if name in targets else name:18s} {1e3 * med[name]:8.3f} ms "
              f"{med[name] / med['plain numpy']:8.1f}x {ov:>13s} {tr:>15s}")


if __name__ == "__main__":
    main()

"""Overhead of the neurosim Brian2 target over a plain Brian2 script, and numpy
against cython code generation, on Brian2's STDP example (Song, Miller &
Abbott 2000: 1000 Poisson inputs onto one LIF neuron, dt = 0.1 ms).

The contenders run interleaved (neurosim numpy, plain numpy, neurosim cython,
plain cython, repeated; every other repeat the plain script goes first), after
one untimed warm-up each (cython compiles its
code then). Reported: medians of the run phase (``Network.run`` of the whole
duration) and of build + run, and the ratios from the same session; the goal
is neurosim / plain <= 1.05 for the run phase. Both contenders end with the
same weights (checked every repetition), so they did the same work.

    python benchmarks/stdp_overhead.py --duration 5 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import second

from neurosim.circuits.spiking import song_abbott_stdp
from neurosim.hardware_targets import make_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from plain_brian2_stdp import run_plain  # noqa: E402  (the reference script of the tests)


def run_neurosim(codegen: str, duration: float, seed: int, timings: dict):
    t0 = time.perf_counter()
    circuit = song_abbott_stdp()
    target = make_target(f"brian2-{codegen}", circuit, seed=seed)
    t1 = time.perf_counter()
    target.run(int(round(duration / float(circuit.dt))))
    t2 = time.perf_counter()
    timings.update(build=t1 - t0, run=t2 - t1)
    return target.get_weights()["synapses"]["w"][0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=5.0, help="simulated seconds per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--codegen", nargs="+", default=["numpy", "cython"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    w0 = song_abbott_stdp().initial_weights(args.seed)["synapses"]["w"][0]
    times = {(who, cg, phase): [] for who in ("neurosim", "plain") for cg in args.codegen
             for phase in ("run", "total")}

    def once(cg, record: bool, plain_first: bool = False):
        t_ns, t_pl = {}, {}
        if plain_first:
            plain = run_plain(w0, args.duration * second, args.seed, codegen=cg, timings=t_pl)
        ours = run_neurosim(cg, args.duration, args.seed, t_ns)
        if not plain_first:
            plain = run_plain(w0, args.duration * second, args.seed, codegen=cg, timings=t_pl)
        if not np.array_equal(ours, plain):
            raise SystemExit(f"{cg}: neurosim and the plain script ended with different weights")
        if record:
            for who, t in (("neurosim", t_ns), ("plain", t_pl)):
                times[(who, cg, "run")].append(t["run"])
                times[(who, cg, "total")].append(t["build"] + t["run"])

    for cg in args.codegen:
        once(cg, record=False)  # warm-up: cython compiles here
    for rep in range(args.repeats):
        for cg in args.codegen:
            once(cg, record=True, plain_first=rep % 2 == 1)  # alternate who goes first
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Song-Abbott STDP, {args.duration:g} s simulated ({int(args.duration / 1e-4)} steps), "
          f"medians of {args.repeats} interleaved repeats")
    print(f"{'codegen':8} {'phase':6} {'neurosim s':>11} {'plain s':>9} {'neurosim/plain':>15}")
    result = {"duration_s": args.duration, "repeats": args.repeats, "medians_s": {},
              "ratios": {}}
    for cg in args.codegen:
        for phase in ("run", "total"):
            a, b = med[("neurosim", cg, phase)], med[("plain", cg, phase)]
            print(f"{cg:8} {phase:6} {a:11.3f} {b:9.3f} {a / b:15.3f}")
            result["medians_s"][f"{cg}_{phase}"] = {"neurosim": a, "plain": b}
            result["ratios"][f"neurosim/plain_{cg}_{phase}"] = a / b
    if {"numpy", "cython"} <= set(args.codegen):
        for who in ("neurosim", "plain"):
            r = med[(who, "numpy", "run")] / med[(who, "cython", "run")]
            print(f"{who}: numpy / cython run time {r:.2f}")
            result["ratios"][f"numpy/cython_{who}_run"] = r
    print(json.dumps(result))


if __name__ == "__main__":
    main()

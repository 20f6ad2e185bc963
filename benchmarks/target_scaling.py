"""brian2-cuda against brian2-cpp: wall time as the network grows.

The circuit: ``n`` LIF neurons driven by 100 Poisson inputs (10 Hz) through an
all-to-all pair-STDP projection, so 1e3..1e5 neurons carry 1e5..1e7 plastic
synapses. For every size and target it reports, from one process:

* ``host``: building the target (the host copy of the state in Brian2's runtime);
* ``compile``: the first ``run`` call (code generation + compilation + one run);
* ``call``: a later ``run`` call of the same length (the compiled program is
  reused; the median over ``--repeats`` calls), split into ``binary`` (the
  program itself, Brian2's own timer) and the state transfer (run_args in,
  results back);
* the speedup of brian2-cuda over brian2-cpp per call and per binary run.

A target that cannot run here is reported with the reason (brian2-cuda needs
a GPU to run; without one it still compiles, which is timed).

    python benchmarks/target_scaling.py [--sizes 1000 10000 100000]
        [--targets brian2-cpp brian2-cuda] [--duration-ms 100] [--repeats 3]
"""
import argparse
import statistics
import time

from brian2 import Hz, ms

from neurosim.circuit import Circuit, Population, Projection, constant
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import gpu_available
from neurosim.plasticity import PairSTDP

N_INPUTS = 100


def lif_stdp_circuit(n: int, n_inputs: int = N_INPUTS, rate=10 * Hz) -> Circuit:
    """Poisson inputs -> ``n`` LIF neurons through all-to-all pair STDP."""
    c = Circuit("lif_stdp_scaling", dt=0.1 * ms,
                namespace={"taum": 10 * ms, "taue": 5 * ms, "El": -74.0, "vt": -54.0,
                           "vr": -60.0, "Ee": 0.0},
                description=f"{n_inputs} Poisson inputs -> {n} LIF, all-to-all pair STDP")
    c.add(Population("inputs", n_inputs, "rates : Hz", threshold="rand() < rates * dt",
                     values={"rates": float(rate)}))
    c.add(Population("neurons", n, "dv/dt = (ge * (Ee - v) + El - v) / taum : 1\n"
                                   "dge/dt = -ge / taue : 1",
                     threshold="v > vt", reset="v = vr", values={"v": -60.0}))
    c.add(Projection("stdp", "inputs", "neurons", on_pre="ge += w",
                     plasticity=PairSTDP(Apre=0.005, Apost=-0.00525, wmax=0.1),
                     init={"w": constant(0.05)}))
    return c


def measure(name, circuit, steps, repeats):
    out = {}
    t = time.perf_counter()
    gpu = gpu_available()[0]
    options = {"compile_only": True} if name == "brian2-cuda" and not gpu else {}
    target = make_target(name, circuit, seed=0, **options)
    out["host"] = time.perf_counter() - t
    try:
        if options:  # no GPU here: compile only, and say why it does not run
            t = time.perf_counter()
            target.compile(steps)
            out["compile"] = time.perf_counter() - t
            out["note"] = "compiled; not run: " + gpu_available()[1]
            return out
        t = time.perf_counter()
        target.run(steps)
        out["compile"] = time.perf_counter() - t
        calls, binary = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            target.run(steps)
            calls.append(time.perf_counter() - t)
            binary.append(target.last_binary_s)
        out["call"], out["binary"] = statistics.median(calls), statistics.median(binary)
        w = target.get_weights()["stdp"]["w"]
        out["w"] = f"{w.mean():.4f}±{w.std():.4f}"
    finally:
        target.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--targets", nargs="+", default=["brian2-cpp", "brian2-cuda"])
    ap.add_argument("--duration-ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    steps = int(round(args.duration_ms / 0.1))
    print(f"LIF + pair STDP, {N_INPUTS} Poisson inputs at 10 Hz, {args.duration_ms:g} ms "
          f"({steps} steps) per call; times in s, medians of {args.repeats} calls")
    print(f"{'neurons':>8s} {'synapses':>9s} {'target':>12s} {'host':>7s} {'compile':>8s} "
          f"{'call':>7s} {'binary':>7s} {'transfer':>8s}  weights / note")
    for n in args.sizes:
        circuit = lif_stdp_circuit(n)
        rows = {}
        for name in args.targets:
            rows[name] = r = measure(name, circuit, steps, args.repeats)
            call = f"{r['call']:7.3f} {r['binary']:7.3f} {r['call'] - r['binary']:8.3f}" \
                if "call" in r else f"{'-':>7s} {'-':>7s} {'-':>8s}"
            print(f"{n:8d} {n * N_INPUTS:9d} {name:>12s} {r['host']:7.2f} {r['compile']:8.1f} "
                  f"{call}  {r.get('w', r.get('note', ''))}", flush=True)
        cpp, cuda = rows.get("brian2-cpp", {}), rows.get("brian2-cuda", {})
        if "call" in cpp and "call" in cuda:
            print(f"{'':8s} {'':9s} {'speedup':>12s} per call {cpp['call'] / cuda['call']:.2f}x, "
                  f"per binary run {cpp['binary'] / cuda['binary']:.2f}x")


if __name__ == "__main__":
    main()

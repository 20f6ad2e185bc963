"""The Brian2 targets (numpy, cython, cpp_standalone, cuda_standalone): wall time
as the network grows.

The circuit: ``n`` LIF neurons driven by 1,000 Poisson inputs (10 Hz) through
a sparse (p = 0.1, Brian2's ``connect(p=0.1)``) pair-STDP projection, so 1e3..1e5
neurons carry about 1e5..1e7 plastic synapses. For every size and target it
reports, from one process:

* ``host``: building the target (the host copy of the state in Brian2's runtime);
* ``compile``: the first ``run`` call (code generation + compilation + one run);
* ``call``: a later ``run`` call of the same length (the compiled program is
  reused; the median over ``--repeats`` calls), split, for the standalone
  targets, into ``binary`` (the program itself, Brian2's own timer) and the
  state transfer (run_args in, results back);
* each target's speed relative to brian2-cpp per call (and, for brian2-cuda,
  per binary run), and the weights' mean ± std after the calls.

A target that cannot run here is reported with the reason (brian2-cuda needs
a GPU to run; without one it still compiles, which is timed).

    python benchmarks/target_scaling.py [--sizes 1000 10000 100000]
        [--targets brian2-numpy brian2-cython brian2-cpp brian2-cuda]
        [--duration-ms 100] [--repeats 3] [--p 0.1]
"""
import argparse
import statistics
import time

from brian2 import Hz, ms

from neurosim.circuit import Circuit, Population, Projection, constant
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import gpu_available
from neurosim.hardware_targets.brian2.cuda import circuit_size
from neurosim.plasticity import PairSTDP

N_INPUTS = 1000
P = 0.1


def lif_stdp_circuit(n: int, n_inputs: int = N_INPUTS, rate=10 * Hz, p: float = P) -> Circuit:
    """Poisson inputs -> ``n`` LIF neurons through pair STDP, connected with
    probability ``p`` (all-to-all for p = 1)."""
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
                     init={"w": constant(5 / (n_inputs * p))},  # 100 inputs x 0.05 per neuron
                     connect="all" if p >= 1 else {"p": p}))
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
            binary.append(getattr(target, "last_binary_s", None))
        out["call"] = statistics.median(calls)
        out["binary"] = None if None in binary else statistics.median(binary)
        w = target.get_weights()["stdp"]["w"]
        out["w"] = f"{w.mean():.4f}±{w.std():.4f}"
    finally:
        target.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--targets", nargs="+",
                    default=["brian2-numpy", "brian2-cython", "brian2-cpp", "brian2-cuda"])
    ap.add_argument("--duration-ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--p", type=float, default=P, help="connection probability")
    args = ap.parse_args()
    steps = int(round(args.duration_ms / 0.1))
    print(f"LIF + pair STDP, {N_INPUTS} Poisson inputs at 10 Hz, p = {args.p:g}, "
          f"{args.duration_ms:g} ms ({steps} steps) per call; times in s, medians of "
          f"{args.repeats} calls")
    print(f"{'neurons':>8s} {'synapses':>9s} {'target':>13s} {'host':>7s} {'compile':>8s} "
          f"{'call':>7s} {'binary':>7s} {'transfer':>8s} {'vs cpp':>7s}  weights / note")
    for n in args.sizes:
        circuit = lif_stdp_circuit(n, p=args.p)
        synapses = circuit_size(circuit, seed=0)[1]
        rows = {}
        for name in args.targets:
            rows[name] = r = measure(name, circuit, steps, args.repeats)
        cpp = rows.get("brian2-cpp", {})
        for name, r in rows.items():
            if "call" not in r:
                call = f"{'-':>7s} {'-':>7s} {'-':>8s} {'-':>7s}"
            else:
                split = (f"{r['binary']:7.3f} {r['call'] - r['binary']:8.3f}"
                         if r["binary"] is not None else f"{'-':>7s} {'-':>8s}")
                ratio = f"{cpp['call'] / r['call']:6.2f}x" if "call" in cpp else f"{'-':>7s}"
                call = f"{r['call']:7.3f} {split} {ratio}"
            print(f"{n:8d} {synapses:9d} {name:>13s} {r['host']:7.2f} {r['compile']:8.1f} "
                  f"{call}  {r.get('w', r.get('note', ''))}", flush=True)
        cuda = rows.get("brian2-cuda", {})
        if "call" in cpp and "call" in cuda:
            print(f"{'':8s} {'':9s} {'cuda/cpp':>13s} per binary run "
                  f"{cpp['binary'] / cuda['binary']:.2f}x faster")


if __name__ == "__main__":
    main()

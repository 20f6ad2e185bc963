"""Speed of the Lava targets against plain Lava, in one run.

One LIF network (``--n`` current-based LIF neurons with a tonic drive, sparse
excitatory and inhibitory recurrence, p = 0.1), ``--steps`` steps, run by:

* plain Lava: a hand-written script, Lava's ``LIF`` and ``Dense`` (the anchor:
  Lava's own speed),
* neurosim ``lava`` (Lava's standard processes, one Lava step per step),
* neurosim ``lava`` with ``processes='generated'`` (generated process models,
  several Lava steps per step),
* neurosim ``brian2-numpy``.

Each contender builds, runs the steps recording the spikes, and closes; the
wall time includes Lava's compile and start, as a user pays it. The median
of ``--repeats`` interleaved rounds is printed, with the ratio to plain Lava,
and the spike counts (equal for the first two and Brian2).

    python benchmarks/lava_speed.py [--n 400] [--steps 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from brian2 import ms, mV

from neurosim.circuit import Circuit, Population, Projection
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.lava.compat import import_lava
from neurosim.hardware_targets.lava.target import LavaTarget


def circuit(n: int) -> Circuit:
    rng = np.random.default_rng(0)
    c = Circuit("lif_speed", dt=0.1 * ms, namespace={
        "taum": 20 * ms, "taus": 5 * ms, "Vt": -50 * mV, "Vr": -65 * mV})
    c.add(Population("E", n, """dv/dt = (I0 - v + g * mV) / taum : volt
                                dg/dt = -g / taus : 1
                                I0 : volt (constant)""",
                     threshold="v > Vt", reset="v = Vr", method="exact",
                     values={"v": rng.uniform(-65, -50, n) * mV,
                             "I0": rng.uniform(-52, -45, n) * mV}))
    scale = 40 / n
    c.add(Projection("exc", "E", "E", "w : 1", on_pre="g_post += w", connect={"p": 0.1},
                     init={"w": lambda r, s: r.uniform(0, 3 * scale, s)}))
    c.add(Projection("inh", "E", "E", "w : 1", on_pre="g_post -= w", connect={"p": 0.1},
                     init={"w": lambda r, s: r.uniform(0, 4 * scale, s)}))
    return c


def plain_lava(c: Circuit, steps: int) -> int:
    """The same network written directly in Lava (parameters as the Lava LIF
    docs define them, exact integration done by hand)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer
    from lava.proc.lif.process import LIF
    pop = c.population("E")
    n, dt, tm, ts = pop.n, 1e-4, 0.02, 0.005
    a_v, a_g = np.exp(-dt / tm), np.exp(-dt / ts)
    k = 1e-3 * ts / (ts - tm) * (a_g - a_v)   # a unit of g into v over one step
    vr = -0.065
    v_leak = np.asarray(pop.values["I0"] / mV) * 1e-3
    w = np.zeros((n, n))
    for name, sign in (("exc", 1), ("inh", -1)):
        i, j = c.synapses(name, 0)
        np.add.at(w, (j, i), sign * c.initial_weights(0)[name]["w"])
    lif = LIF(shape=(n,), v=np.asarray(pop.values["v"] / mV) * 1e-3 - vr, u=0, du=1 - a_g,
              dv=1 - a_v, bias_mant=(v_leak - vr) * (1 - a_v), vth=0.015)
    dense = Dense(weights=k * w)
    sink = RingBuffer(shape=(n,), buffer=steps)
    lif.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
    count = int(sink.data.get().sum())
    lif.stop()
    return count


def neurosim(c: Circuit, steps: int, name: str, **options) -> int:
    target = (LavaTarget(c, **options) if name == "lava" else make_target(name, c))
    try:
        return len(target.run(steps, record=[("E", "spikes")])[("E", "spikes")])
    finally:
        if hasattr(target, "close"):
            target.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import_lava()
    c = circuit(args.n)
    contenders = {
        "plain Lava (LIF + Dense)": lambda: plain_lava(c, args.steps),
        "neurosim lava (standard processes)": lambda: neurosim(c, args.steps, "lava"),
        "neurosim lava (generated processes)":
            lambda: neurosim(c, args.steps, "lava", processes="generated"),
        "neurosim brian2-numpy": lambda: neurosim(c, args.steps, "brian2-numpy"),
    }
    times = {k: [] for k in contenders}
    counts = {}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            t0 = time.perf_counter()
            counts[name] = run()
            times[name].append(time.perf_counter() - t0)
    anchor = float(np.median(times["plain Lava (LIF + Dense)"]))
    print(f"{args.n} LIF neurons, {args.steps} steps, median of {args.repeats} "
          "interleaved rounds (build + run + close):")
    print(f"{'':38s} {'seconds':>8s} {'vs plain Lava':>14s} {'spikes':>7s}")
    for name in contenders:
        t = float(np.median(times[name]))
        print(f"{name:38s} {t:8.2f} {t / anchor:14.2f} {counts[name]:7d}")


if __name__ == "__main__":
    main()

"""Speed of the Lava targets against plain Lava, in one run.

One LIF network (``--n`` current-based LIF neurons with a tonic drive, sparse
excitatory and inhibitory recurrence, p = 0.1), or with ``--circuit stdp`` the
library's Song-Abbott STDP circuit (``--n`` Poisson inputs at 15 Hz onto one
LIF through PairSTDP synapses), ``--steps`` steps, run by:

* plain Lava: a hand-written script, Lava's ``LIF`` and ``Dense`` (for STDP:
  ``LearningDense`` with ``STDPLoihi``, the inputs drawn beforehand and played
  by ``io.source.RingBuffer``; the anchor: Lava's own speed),
* neurosim ``lava`` (Lava's standard processes, one Lava step per step),
* neurosim ``lava`` with ``processes='generated'`` (generated process models,
  several Lava steps per step),
* neurosim ``brian2-numpy``.

Each contender builds, runs the steps recording the spikes, and closes; the
wall time includes Lava's compile and start, as a user pays it. The median
of ``--repeats`` interleaved rounds is printed, with the ratio to plain Lava,
and the spike counts (equal for the first two and Brian2).

    python benchmarks/lava_speed.py [--n 400] [--steps 2000] [--repeats 3]
    python benchmarks/lava_speed.py --circuit stdp --n 1000 --steps 2000
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


def _spike_count(lif, sink, steps: int) -> int:
    """Run a plain Lava network for ``steps`` and count the spikes in its sink."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
    count = int(sink.data.get().sum())
    lif.stop()
    return count


def plain_lava(c: Circuit, steps: int) -> int:
    """The same network written directly in Lava (parameters as the Lava LIF
    docs define them, exact integration done by hand)."""
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
    return _spike_count(lif, sink, steps)


def plain_lava_stdp(c: Circuit, steps: int) -> int:
    """Song-Abbott STDP written directly in Lava: Lava's LIF, a LearningDense with
    STDPLoihi (the post spikes into its s_in_bap), Poisson inputs drawn with numpy."""
    from lava.proc.dense.process import LearningDense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.learning_rules.stdp_learning_rule import STDPLoihi
    from lava.proc.lif.process import LIF
    ns, rule = c.namespace, c.projection("synapses").plasticity
    n, dt = c.population("inputs").n, float(c.dt)
    tm, ts = float(ns["taum"]), float(ns["taue"])
    a_v, a_g = np.exp(-dt / tm), np.exp(-dt / ts)
    k = float(ns["Ee"] - ns["vr"]) * ts / (ts - tm) * (a_g - a_v)  # a unit of ge into v
    rate = float(c.population("inputs").values["rates"])
    spikes = np.random.default_rng(0).random((n, steps)) < rate * dt
    source = Source(data=spikes.astype(float))
    dense = LearningDense(weights=k * c.initial_weights(0)["synapses"]["w"],
                          learning_rule=STDPLoihi(
                              learning_rate=1, A_plus=1, A_minus=-1,
                              tau_plus=float(rule.taupre) / dt, tau_minus=float(rule.taupost) / dt,
                              x1_impulse=k * rule.Apre, y1_impulse=-k * rule.Apost, t_epoch=1))
    lif = LIF(shape=(1,), v=0, u=0, du=1 - a_g, dv=1 - a_v,
              bias_mant=float(ns["El"] - ns["vr"]) * (1 - a_v), vth=float(ns["vt"] - ns["vr"]))
    sink = Sink(shape=(1,), buffer=steps)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(dense.s_in_bap)
    lif.s_out.connect(sink.a_in)
    return _spike_count(lif, sink, steps)


def neurosim(c: Circuit, steps: int, name: str, **options) -> int:
    target = (LavaTarget(c, **options) if name == "lava" else make_target(name, c))
    record = "neuron" if "neuron" in c.populations else "E"
    try:
        return len(target.run(steps, record=[(record, "spikes")])[(record, "spikes")])
    finally:
        if hasattr(target, "close"):
            target.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--circuit", choices=("lif", "stdp"), default="lif")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import_lava()
    if args.circuit == "stdp":
        from neurosim.circuits.spiking import song_abbott_stdp
        c, plain = song_abbott_stdp(n_inputs=args.n), plain_lava_stdp
    else:
        c, plain = circuit(args.n), plain_lava
    anchor = "plain Lava (LIF + " + ("LearningDense)" if args.circuit == "stdp" else "Dense)")
    contenders = {
        anchor: lambda: plain(c, args.steps),
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
    anchor = float(np.median(times[anchor]))
    what = (f"Song-Abbott STDP, {args.n} Poisson inputs" if args.circuit == "stdp" else
            f"{args.n} LIF neurons")
    print(f"{what}, {args.steps} steps, median of {args.repeats} "
          "interleaved rounds (build + run + close):")
    print(f"{'':38s} {'seconds':>8s} {'vs plain Lava':>14s} {'spikes':>7s}")
    for name in contenders:
        t = float(np.median(times[name]))
        print(f"{name:38s} {t:8.2f} {t / anchor:14.2f} {counts[name]:7d}")


if __name__ == "__main__":
    main()

"""Spiking predictive coding (ON/OFF error populations) against the rate circuit.

Both circuits are declared with neurosim and run on the Brian2 target (numpy
code generation), with the same θ, the same held input and target and the same
inference time constant (50 ms: the rate circuit's inference rate is
1 ms / 50 ms, :func:`rate_counterpart`). Measured and printed:

  * inference: the spiking circuit's rate-averaged hidden values µ₁ and errors
    (ON − OFF, over the counting window after settling) against the rate
    circuit's fixed point (its state after 20 time constants);
  * learning: the prediction error F = ½Σ‖ε‖² at the end of each trial, both
    circuits trained with the same rule (θ += lr ε µᵀ) on the same patterns.

The figure (rate-averaged µ trajectories against the rate trajectories, ON/OFF
error rasters, F over trials) is written to
benchmarks/results/spiking_pc/spiking_vs_rate.png.

    python benchmarks/spiking_pc_vs_rate.py [--trials 24] [--out DIR]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
from brian2 import ms

from neurosim.circuits.spiking_predictive_coding import (rate_counterpart, rate_weights,
                                                         spiking_predictive_coding, spiking_trial)
from neurosim.hardware_targets.brian2 import Brian2Target
from neurosim.target import train_trial

SIZES = (3, 3, 2)       # input (top) first: 3 input, 3 hidden, 2 output values
AVERAGE = 50 * ms       # averaging window of the rate-averaged spiking trajectories


def circuits(sizes=SIZES, learning_rate=0.1, weight_seed=0, **spiking_options):
    """The spiking circuit and its rate counterpart, with the same θ (Brian2 targets)."""
    spiking = spiking_predictive_coding(sizes, learning_rate=learning_rate,
                                        weight_seed=weight_seed, **spiking_options)
    s = Brian2Target(spiking)
    r = Brian2Target(rate_counterpart(spiking), weights=rate_weights(s.get_weights()))
    return s, r


def task(sizes=SIZES, n_patterns=4, seed=1):
    """Positive inputs and targets from a positive linear teacher (values stay ≥ 0)."""
    rng = np.random.default_rng(seed)
    teacher = np.abs(rng.normal(0, 0.5, (sizes[-1], sizes[0])))
    x = rng.uniform(0.2, 1.0, (n_patterns, sizes[0]))
    return x, x @ teacher.T


def spike_steps(counts):
    """(step, neuron) of every spike, from a recorded spike-count trace."""
    steps, neurons = np.nonzero(np.diff(counts, axis=0) > 0)
    return steps + 1, neurons


def rate_averaged(counts, circuit, every=5 * ms):
    """Values read from spikes, every ``every``: the spikes in a centred window of
    length AVERAGE divided by gain · AVERAGE; returns (times in ms, values)."""
    spikes = np.zeros(counts.shape)
    steps, neurons = spike_steps(counts)
    np.add.at(spikes, (steps, neurons), 1)
    cumulative = np.concatenate([np.zeros((1, spikes.shape[1])), np.cumsum(spikes, 0)])
    half, stride = (int(round(float(v / circuit.dt))) for v in (AVERAGE / 2, every))
    centres = np.arange(half, len(spikes) - half + 1, stride)
    values = (cumulative[centres + half] - cumulative[centres - half]) / float(
        circuit.namespace["gain"] * AVERAGE)
    return centres * float(circuit.dt / ms), values


def inference(s, r, x, y, settle_steps=3000, fixed_point_steps=1000):
    """Both circuits from the rate circuit's top-down start µ₁ = θ₂x; returns the
    rate trajectory, the spiking records and rate averages, and the fixed point."""
    top = len(s.circuit.populations) // 3  # value, error_on, error_off per layer
    hidden = range(1, top)
    r.clamp(*r.circuit.input, x)
    r.clamp(*r.circuit.output, y)
    r.settle()                                        # µ_l = prior (the rate circuit's init)
    for l in hidden:
        s.set(f"value{l}", "u", r.get(f"value{l}", "mu"))
    record_r = [(f"value{l}", "mu") for l in hidden] + [(f"error{l}", "eps") for l in range(top)]
    rate_trace = r.run(fixed_point_steps, record=record_r)
    fixed = {f"value{l}": r.get(f"value{l}", "mu") for l in hidden}
    fixed.update({f"error{l}": rate_trace[(f"error{l}", "eps")][-1] for l in range(top)})
    record_s = [(f"value{l}", "count") for l in hidden] + [(f"value{l}", "u") for l in hidden] + \
        [(f"error_{k}{l}", "count") for l in range(top) for k in ("on", "off")]
    averages, spike_trace = spiking_trial(s, x, y, settle_steps=settle_steps, record=record_s)
    return rate_trace, spike_trace, averages, fixed


def energy(errors) -> float:
    return float(sum(0.5 * np.sum(e ** 2) for e in errors))


def learning(s, r, xs, ys, trials, settle_steps=1500):
    """F at the end of each trial for both circuits (same θ start, same rule)."""
    top = len(s.circuit.populations) // 3
    window_steps = int(round(float(s.circuit.namespace["window"] / s.circuit.dt)))
    rate_steps = int(round(float((settle_steps + window_steps) * s.circuit.dt / r.circuit.dt)))
    f_spiking, f_rate = [], []
    for k in range(trials):
        x, y = xs[k % len(xs)], ys[k % len(ys)]
        averages, _ = spiking_trial(s, x, y, settle_steps=settle_steps, learn=True)
        f_spiking.append(energy(averages[f"error{l}"] for l in range(top)))
        trace = train_trial(r, x, y, rate_steps, record=[(f"error{l}", "eps") for l in range(top)])
        f_rate.append(energy(trace[(f"error{l}", "eps")][-1] for l in range(top)))
    return np.array(f_spiking), np.array(f_rate)


def figure(s, r, rate_trace, spike_trace, fixed, f_spiking, f_rate, path=None):
    import matplotlib.pyplot as plt
    c = s.circuit
    dt_ms = float(c.dt / ms)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    mu = rate_trace[("value1", "mu")]
    t_avg, rates = rate_averaged(spike_trace[("value1", "count")], c)
    soma = spike_trace[("value1", "u")]
    for i in range(mu.shape[1]):
        color = f"C{i}"
        ax.plot(np.arange(len(mu)) * float(r.circuit.dt / ms), mu[:, i], color=color, lw=1.5,
                label="rate circuit" if i == 0 else None)
        ax.plot(np.arange(len(soma)) * dt_ms, soma[:, i], color=color, lw=0.5, alpha=0.35,
                label="spiking, soma u (not seen by other neurons)" if i == 0 else None)
        ax.plot(t_avg, rates[:, i], color=color, lw=0.9, ls="--",
                label=f"spiking, rate-averaged ({float(AVERAGE / ms):g} ms window)"
                if i == 0 else None)
        ax.axhline(fixed["value1"][i], color=color, ls=":", lw=0.8)
    ax.set_xlim(0, len(soma) * dt_ms)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("hidden value µ₁")
    ax.set_title("inference: spiking vs rate (dotted: rate fixed point)")
    ax.legend(fontsize=7, loc="lower right")
    for ax, l in zip((axes[0, 1], axes[1, 0]), (0, 1)):
        n = c.population(f"error_on{l}").n
        for k, color, offset in (("on", "C3", 0), ("off", "C0", n)):
            steps, neurons = spike_steps(spike_trace[(f"error_{k}{l}", "count")])
            ax.plot(steps * dt_ms, neurons + offset, "|", color=color, ms=6,
                    label=f"{k.upper()} (fires for {'+' if k == 'on' else '−'}ε)")
        eps = fixed[f"error{l}"]
        ax.set_yticks(range(2 * n), [f"ON {i}: ε*={e:+.2f}" for i, e in enumerate(eps)] +
                      [f"OFF {i}" for i in range(n)], fontsize=7)
        ax.set_xlabel("time (ms)")
        ax.set_title(f"error layer {l}: ON / OFF spikes")
        ax.legend(fontsize=7, loc="upper right")
    ax = axes[1, 1]
    trials = np.arange(1, len(f_spiking) + 1)
    ax.semilogy(trials, f_spiking, "o-", ms=3, label="spiking (rate-averaged ε)")
    ax.semilogy(trials, f_rate, "s-", ms=3, label="rate circuit")
    ax.set_xlabel("training trial")
    ax.set_ylabel("prediction error F = ½Σ‖ε‖²")
    ax.set_title("learning: θ += lr ε µᵀ on both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "spiking_pc")
    args = ap.parse_args()
    matplotlib.use("Agg")
    s, r = circuits()
    xs, ys = task()
    c = s.circuit
    window = c.namespace["window"]
    quantum = 1 / float(c.namespace["gain"] * window)
    rate_trace, spike_trace, averages, fixed = inference(s, r, xs[0], ys[0])
    print(f"circuit: {c.description}; gain {c.namespace['gain']}, tau {c.namespace['tau']}, "
          f"window {window}, dt {c.dt}; one spike in the window = {quantum:.4f}")
    for name in fixed:
        dev = np.abs(averages[name] - fixed[name])
        print(f"{name}: rate fixed point {np.round(fixed[name], 4)}, spiking rate-averaged "
              f"{np.round(averages[name], 4)}, max |deviation| {dev.max():.4f} "
              f"({dev.max() / quantum:.2f} spikes)")
    for l in range(sum(name.startswith("error") for name in fixed)):
        on, off = averages[f"error_on{l}"], averages[f"error_off{l}"]
        print(f"error layer {l}: ON + OFF spikes {np.sum(on + off) / quantum:.0f}, of which "
              f"|ON − OFF| {np.sum(np.abs(on - off)) / quantum:.0f} carry ε (the rest: both "
              "firing where the balanced current fluctuates around 0)")
    s, r = circuits()  # learning starts from the initial θ again
    f_spiking, f_rate = learning(s, r, xs, ys, args.trials)
    n = len(xs)
    print(f"F over {args.trials} trials ({n} patterns, mean over the first and last {n}):")
    print(f"  spiking: {f_spiking[:n].mean():.4f} -> {f_spiking[-n:].mean():.4f}")
    print(f"  rate:    {f_rate[:n].mean():.4f} -> {f_rate[-n:].mean():.4f}")
    theta_s, theta_r = rate_weights(s.get_weights()), r.get_weights()
    print("  max |θ_spiking − θ_rate| after training: " + ", ".join(
        f"{k} {np.abs(theta_s[k]['w'] - theta_r[k]['w']).max():.4f}" for k in theta_s))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "spiking_vs_rate.png"
    figure(s, r, rate_trace, spike_trace, fixed, f_spiking, f_rate, path)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()

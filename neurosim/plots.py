"""Figures written as PNG by the CLI and shown in notebooks (matplotlib)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def _save(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


#: a learning curve's metric -> (its axis label, the factor it is shown with)
METRICS = {"test_accuracy": ("test accuracy (%)", 100),
           "test_mse": ("test reconstruction error (MSE per input element)", 1)}


def learning_curve(history: list[dict], path: Path | None = None, title: str = ""):
    """The test metric (accuracy, or reconstruction error) against training
    samples seen."""
    metric = next(m for m in METRICS if m in history[0])
    label, factor = METRICS[metric]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([h["samples"] for h in history], [factor * h[metric] for h in history], "o-")
    ax.set_xlabel("training samples seen")
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def alignment_curves(history: list[dict], path: Path | None = None, title: str = ""):
    """The alignment measures of each feedback projection (``neurosim.alignment``)
    against training samples seen: relative error, angle, sign congruence."""
    from .alignment import MEASURES
    labels = {"relative_error": "‖W − Bᵀ‖ / ‖W‖", "angle": "angle to backprop's signal (°)",
              "sign_congruence": "sign congruence"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    samples = [h["samples"] for h in history]
    for ax, measure in zip(axes, MEASURES):
        for key in sorted(k for k in history[0] if k.startswith(measure + "/")):
            values = [np.nan if h.get(key) is None else h[key] for h in history]
            ax.plot(samples, values, "o-", ms=3, label=key.split("/", 1)[1])
        ax.set_xlabel("training samples seen")
        ax.set_ylabel(labels[measure])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def trajectories(traces: dict, dt_ms: float = 1.0, path: Path | None = None, title: str = ""):
    """One panel per recorded (population, variable): every neuron over time."""
    fig, axes = plt.subplots(len(traces), 1, figsize=(6, 2.0 * len(traces)), sharex=True,
                             squeeze=False)
    for ax, ((pop, var), values) in zip(axes[:, 0], traces.items()):
        t = np.arange(len(values)) * dt_ms
        ax.plot(t, values, lw=0.8)
        ax.set_ylabel(f"{pop}.{var}")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].set_title(title)
    return _save(fig, path)


def raster(spikes: dict, dt_ms: float = 1.0, path: Path | None = None, title: str = ""):
    """Spike raster, one panel per population: ``spikes[name]`` is a (k, 2)
    array of ``[step, neuron]`` rows, as ``Target.run`` records them."""
    fig, axes = plt.subplots(len(spikes), 1, figsize=(6, 1.2 + 1.6 * len(spikes)),
                             sharex=True, squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], spikes.items()):
        rows = np.asarray(rows).reshape(-1, 2)
        ax.plot(rows[:, 0] * dt_ms, rows[:, 1], "|k", ms=2, mew=0.5)
        ax.set_ylabel(f"{name}\nneuron")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].set_title(title)
    return _save(fig, path)


def rates(spikes: dict, sizes: dict, n_steps: int, dt_ms: float = 1.0, bin_ms: float = 50.0,
          path: Path | None = None, title: str = ""):
    """Population firing rate (Hz per neuron) in bins of ``bin_ms``."""
    fig, ax = plt.subplots(figsize=(6, 3))
    edges = np.arange(0.0, n_steps * dt_ms + bin_ms, bin_ms)
    unit, scale = ("s", 1e-3) if n_steps * dt_ms > 1e4 else ("ms", 1.0)
    for name, rows in spikes.items():
        counts, _ = np.histogram(np.asarray(rows).reshape(-1, 2)[:, 0] * dt_ms, bins=edges)
        ax.step(edges[:-1] * scale, counts / sizes[name] / (bin_ms / 1000.0), where="post",
                label=name)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("rate (Hz per neuron)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def weight_histogram(weights: dict, wmax: dict | None = None, bins: int = 20,
                     path: Path | None = None, title: str = ""):
    """Histogram of each projection's weights (``weights[name]`` any array),
    as a fraction of ``wmax[name]`` where given."""
    fig, axes = plt.subplots(1, len(weights), figsize=(4 * len(weights), 3), squeeze=False)
    for ax, (name, w) in zip(axes[0], weights.items()):
        scale = (wmax or {}).get(name)
        ax.hist(np.ravel(w) / (scale or 1.0), bins=bins, color="0.3")
        ax.set_xlabel(f"{name} weight" + (" / wmax" if scale else ""))
        ax.set_ylabel("synapses")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def sweep_curves(rows: list[dict], path: Path | None = None, title: str = ""):
    """A sweep's test metric (accuracy or reconstruction error) against epoch, one
    panel per activation, one line per variant with a ± std band over seeds
    (``rows`` of one data set, as :func:`neurosim.sweep.table` makes them)."""
    from matplotlib.ticker import MaxNLocator
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    fig, axes = plt.subplots(1, len(activations), figsize=(4.5 * len(activations), 3.5),
                             squeeze=False, sharey=True)
    for ax, activation in zip(axes[0], activations):
        mine = [r for r in rows if r["activation"] == activation]
        for variant in dict.fromkeys(r["variant"] for r in mine):
            curve = [r for r in mine if r["variant"] == variant]
            x = [r["epoch"] for r in curve]
            metric = curve[0]["metric"]
            factor = METRICS[metric][1]
            mean = factor * np.array([r[f"mean_{metric}"] for r in curve])
            std = factor * np.array([r[f"std_{metric}"] for r in curve])
            line, = ax.plot(x, mean, "o-", ms=3,
                            label=f"{variant} (n={max(r['seeds'] for r in curve)})")
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_title(activation)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel(" / ".join(dict.fromkeys(METRICS[r["metric"]][0] for r in rows)))
    fig.suptitle(title)
    return _save(fig, path)

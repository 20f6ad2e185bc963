"""Figures written as PNG by the CLI and shown in notebooks (matplotlib)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def learning_curve(history: list[dict], path: Path | None = None, title: str = ""):
    """Test accuracy against training samples seen."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([h["samples"] for h in history], [100 * h["test_accuracy"] for h in history],
            "o-")
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


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
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig

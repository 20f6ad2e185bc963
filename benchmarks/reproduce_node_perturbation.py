"""Reproduce Lansdell et al. (2020), Fig. 2: node perturbation against feedback
alignment and backprop on MNIST, 784-50-20-10 sigmoid, MSE, batch 32.

One ``neurosim sweep --circuit node-perturbation`` over the three feedback
modes of the same circuit (B learned by node perturbation, B fixed, Wᵀ) and
the seeds, with the test accuracy and the alignment measures
(``neurosim.alignment``) after every epoch. From the run folders alone:
``<results>/table.md`` (test error per epoch, mean ± std over seeds, and the
alignment after the last epoch) and ``<results>/fig2_alignment.png`` (the
three alignment curves per layer and the test error, mean ± std).

    python benchmarks/reproduce_node_perturbation.py                # 5 seeds, 10 epochs
    python benchmarks/reproduce_node_perturbation.py --report       # table and figure only
    python benchmarks/reproduce_node_perturbation.py --learning-rate 0.1 \
        --feedback-learning-rate 0.002 --results benchmarks/results/node_perturbation_lr0.1
"""
import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from neurosim.alignment import MEASURES
from neurosim.cli import main as neurosim

VARIANTS = ("node_perturbation", "feedback_alignment", "backprop")
LAYERS = {"weights1": "B next to the output (20 x 10)", "weights2": "B of hidden layer 1 (50 x 20)"}


def curves(results: Path) -> dict:
    """variant -> {column: (epochs, seeds) array} from every finished run's
    metrics.csv (the last evaluation of each epoch)."""
    out = {}
    for variant in VARIANTS:
        runs = []
        for path in sorted((results / "mnist" / "sigmoid" / variant).glob("seed*/metrics.json")):
            rows = list(csv.DictReader(open(path.with_name("metrics.csv"))))
            last = {int(r["epoch"]): r for r in rows}          # the end of each epoch
            runs.append([last[e] for e in sorted(last)])
        if runs:
            n = min(len(r) for r in runs)
            keys = [k for k in runs[0][0] if k not in ("epoch", "samples", "seconds")]
            out[variant] = {k: np.array([[np.nan if r[e][k] == "" else float(r[e][k])
                                          for r in runs] for e in range(n)]) for k in keys}
    return out


def report(results: Path) -> str:
    import matplotlib.pyplot as plt
    data = curves(results)
    epochs = max((len(c["test_accuracy"]) for c in data.values()), default=0)
    lines = ["| variant | " + " | ".join(f"epoch {e}" for e in range(1, epochs)) + " |",
             "|---|" + "---|" * (epochs - 1)]
    lines[0] = lines[0].replace(" |", " | diverged |", 1)
    lines[1] += "---|"
    for variant, c in data.items():
        err = 100 * (1 - c["test_accuracy"])
        diverged = len(list((results / "mnist" / "sigmoid" / variant).glob("seed*/diverged.json")))
        lines.append(f"| {variant} | {diverged}/{diverged + err.shape[1]} | " + " | ".join(
            f"{err[e].mean():.2f} ± {err[e].std():.2f} ({err.shape[1]})" for e in range(1, len(err)))
            + " |")
    lines += ["", "After the last epoch (mean ± std over seeds):", "",
              "| variant | layer | ‖W − Bᵀ‖/‖W‖ | angle (°) | sign congruence |", "|---|---|---|---|---|"]
    for variant, c in data.items():
        for layer in LAYERS:
            if f"relative_error/{layer}" in c:
                lines.append(f"| {variant} | {layer} | " + " | ".join(
                    f"{c[f'{m}/{layer}'][-1].mean():.3f} ± {c[f'{m}/{layer}'][-1].std():.3f}"
                    for m in MEASURES) + " |")
    text = "test error (%) after each epoch, mean ± std (seeds)\n\n" + "\n".join(lines) + "\n"
    (results / "table.md").write_text(text)
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
    labels = ("‖W − Bᵀ‖ / ‖W‖", "angle to backprop's signal (°)", "sign congruence")
    for row, layer in enumerate(LAYERS):
        for col, (measure, label) in enumerate(zip(MEASURES, labels)):
            ax = axes[row, col]
            for variant, color in zip(VARIANTS[:2], ("C1", "C0")):
                if variant in data and f"{measure}/{layer}" in data[variant]:
                    v = data[variant][f"{measure}/{layer}"]
                    x = np.arange(len(v))
                    ax.plot(x, np.nanmean(v, 1), "o-", ms=3, color=color, label=variant)
                    ax.fill_between(x, np.nanmean(v, 1) - np.nanstd(v, 1),
                                    np.nanmean(v, 1) + np.nanstd(v, 1), color=color, alpha=0.2)
            ax.set_title(f"{layer}: {LAYERS[layer]}", fontsize=8)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    for row in range(2):
        ax = axes[row, 3]
        for variant, color in zip(VARIANTS, ("C1", "C0", "C2")):
            if variant in data:
                err = 100 * (1 - data[variant]["test_accuracy"][1:])
                x = np.arange(1, len(err) + 1)
                ax.plot(x, err.mean(1), "o-", ms=3, color=color, label=variant)
                ax.fill_between(x, err.mean(1) - err.std(1), err.mean(1) + err.std(1),
                                color=color, alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test error (%)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Node perturbation vs feedback alignment vs backprop, MNIST 784-50-20-10 "
                 "sigmoid (Lansdell et al., Fig. 2)", fontsize=10)
    fig.tight_layout()
    fig.savefig(results / "fig2_alignment.png", dpi=110)
    plt.close(fig)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ap.add_argument("--learning-rate", default="0.2", help="of W (batch mean)")
    ap.add_argument("--feedback-learning-rate", default="0.005", help="of B (batch mean)")
    ap.add_argument("--report", action="store_true", help="only write the table and figure")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "node_perturbation")
    args = ap.parse_args()
    code = 0
    if not args.report:
        code = neurosim(["sweep", "--circuit", "node-perturbation", "--variants", ",".join(VARIANTS),
                         "--datasets", "mnist", "--activations", "sigmoid", "--seeds", args.seeds,
                         "--epochs", str(args.epochs), "--evaluations", "1", "--train-size", "0",
                         "--test-size", "0", "--target", "dense", "--out", str(args.results),
                         "--learning-rate", args.learning_rate,
                         "--feedback-learning-rate", args.feedback_learning_rate,
                         *(["--scheduler", args.scheduler] if args.scheduler else
                           ["--workers", str(args.workers)])])
    print(report(args.results))
    return code


if __name__ == "__main__":
    sys.exit(main())

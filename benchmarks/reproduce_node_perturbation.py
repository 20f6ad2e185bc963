"""Reproduce Lansdell et al. (2020), Figs. 2 and 3: node perturbation against
feedback alignment and backprop on MNIST, 784-50-20-10 sigmoid, MSE, batch 32
(Fig. 2), and the 784-200-2-200-784 autoencoder (Fig. 3, ``--autoencoder``).

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
    python benchmarks/reproduce_node_perturbation.py --autoencoder  # Fig. 3, 3 seeds, 20 epochs

Fig. 3 (``--autoencoder``): the same circuit and sweep with ``--task reconstruction``
(the output learns the input), hidden layers tanh, linear (the 2-unit
bottleneck), tanh and a relu output, the rates of the authors' configuration
(``nodepert_ae5_sgd_correctgeom``: 1e-4 and 8e-6 on batch sums of 32, here
their batch means 0.0032 and 0.000256, c_h = 0.019). From the run folders and
their trained weights: ``<results>/table.md`` (test reconstruction error per
epoch) and ``<results>/fig3_autoencoder.png`` (that error, the bottleneck's
activity for 2,000 test digits coloured by digit, and reconstructions).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from neurosim.alignment import MEASURES
from neurosim.cli import main as neurosim
from neurosim.sweep import seed_curves

VARIANTS = ("node_perturbation", "feedback_alignment", "backprop")
LAYERS = {"weights1": "B next to the output (20 x 10)", "weights2": "B of hidden layer 1 (50 x 20)"}
AUTOENCODER = {"activation": "tanh-linear-tanh", "options": [
    "--task", "reconstruction", "--hidden", "200,2,200", "--output-activation", "relu",
    "--learning-rate", "0.0032", "--feedback-learning-rate", "0.000256", "--noise", "0.019"]}


def curves(results: Path, activation: str = "sigmoid") -> dict:
    """variant -> {column: (epochs, seeds) array} of its finished runs."""
    found = {v: seed_curves(results / "mnist" / activation / v) for v in VARIANTS}
    return {v: c for v, c in found.items() if c}


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


def report_autoencoder(results: Path, shown: int = 2000) -> str:
    import matplotlib.pyplot as plt
    from neurosim.cli import load_run
    from neurosim.target import predict
    data = curves(results, AUTOENCODER["activation"])
    epochs = max((len(c["test_mse"]) for c in data.values()), default=0)
    lines = ["| variant | " + " | ".join(f"epoch {e}" for e in range(epochs)) + " |",
             "|---|" + "---|" * epochs]
    for variant, c in data.items():
        mse = c["test_mse"]
        lines.append(f"| {variant} | " + " | ".join(
            f"{mse[e].mean():.4f} ± {mse[e].std():.4f} ({mse.shape[1]})" for e in range(len(mse)))
            + " |")
    text = ("test reconstruction error (mean squared error per pixel; epoch 0: before "
            "training) after each epoch, mean ± std (seeds)\n\n" + "\n".join(lines) + "\n")
    (results / "table.md").write_text(text)
    fig = plt.figure(figsize=(15, 5.5))
    grid = fig.add_gridspec(2, 4, height_ratios=(3, 1))
    ax = fig.add_subplot(grid[:, 0])
    for variant, color in zip(VARIANTS, ("C1", "C0", "C2")):
        if variant in data:
            mse = data[variant]["test_mse"]
            x = np.arange(len(mse))
            ax.plot(x, mse.mean(1), "o-", ms=3, color=color, label=f"{variant} (n={mse.shape[1]})")
            ax.fill_between(x, mse.mean(1) - mse.std(1), mse.mean(1) + mse.std(1), color=color,
                            alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test reconstruction error (MSE)")
    ax.set_yscale("log")
    ax.set_title("a: reconstruction loss", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    scatters = []
    for col, variant in enumerate(VARIANTS, start=1):
        folder = results / "mnist" / AUTOENCODER["activation"] / variant / "seed0"
        if not (folder / "weights.npz").exists():
            continue
        target, ds = load_run(folder)      # its trained weights, its test set
        x = ds.x_test[:shown]
        out = predict(target, x)
        bottleneck = min((p for p in target.circuit.populations.values()
                          if p.name.startswith("layer")), key=lambda p: p.n).name
        latent = target.get(bottleneck, "h")
        ax = fig.add_subplot(grid[0, col])
        scatters.append(ax)
        points = ax.scatter(latent[:, 0], latent[:, 1], c=ds.y_test[:shown], cmap="tab10", s=3,
                            vmin=-0.5, vmax=9.5)
        ax.set_title(f"b: the 2-unit bottleneck\n{variant.replace('_', ' ')}", fontsize=9)
        ax = fig.add_subplot(grid[1, col])
        side = int(round(np.sqrt(x.shape[1])))
        pairs = [np.vstack([x[i].reshape(side, side), out[i].reshape(side, side)])
                 for i in range(8)]
        ax.imshow(np.hstack(pairs), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title("c: test digits and reconstructions", fontsize=8)
        target.close()
    if scatters:
        fig.colorbar(points, ax=scatters, ticks=range(10), label="digit", shrink=0.8)
    fig.suptitle("Node perturbation vs feedback alignment vs backprop, MNIST autoencoder "
                 "784-200-2-200-784 (Lansdell et al., Fig. 3)", fontsize=10)
    fig.savefig(results / "fig3_autoencoder.png", dpi=110)
    plt.close(fig)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default=None, help="default: 0-4 (Fig. 2), 0-2 (Fig. 3)")
    ap.add_argument("--epochs", type=int, default=None, help="default: 10 (Fig. 2), 20 (Fig. 3)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ap.add_argument("--learning-rate", default="0.2", help="of W (batch mean)")
    ap.add_argument("--feedback-learning-rate", default="0.005", help="of B (batch mean)")
    ap.add_argument("--autoencoder", action="store_true",
                    help="Fig. 3: the 784-200-2-200-784 autoencoder (its own rates: the "
                         "learning-rate options apply to Fig. 2)")
    ap.add_argument("--report", action="store_true", help="only write the table and figure")
    ap.add_argument("--results", type=Path, default=None,
                    help="default: benchmarks/results/node_perturbation (Fig. 2), "
                         "node_perturbation_autoencoder (Fig. 3)")
    args = ap.parse_args()
    results = args.results or Path(__file__).parent / "results" / (
        "node_perturbation_autoencoder" if args.autoencoder else "node_perturbation")
    seeds = args.seeds or ("0-2" if args.autoencoder else "0-4")
    epochs = args.epochs or (20 if args.autoencoder else 10)
    if args.autoencoder:
        activation, options = AUTOENCODER["activation"], AUTOENCODER["options"]
    else:
        activation = "sigmoid"
        options = ["--learning-rate", args.learning_rate,
                   "--feedback-learning-rate", args.feedback_learning_rate]
    code = 0
    if not args.report:
        code = neurosim(["sweep", "--circuit", "node-perturbation", "--variants", ",".join(VARIANTS),
                         "--datasets", "mnist", "--activations", activation, "--seeds", seeds,
                         "--epochs", str(epochs), "--evaluations", "1", "--train-size", "0",
                         "--test-size", "0", "--target", "dense", "--out", str(results), *options,
                         *(["--scheduler", args.scheduler] if args.scheduler else
                           ["--workers", str(args.workers)])])
    print(report_autoencoder(results) if args.autoencoder else report(results))
    return code


if __name__ == "__main__":
    sys.exit(main())

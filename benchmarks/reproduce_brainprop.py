"""Reproduce Pozzi, Bohté & Roelfsema (2020), Table 1, fully connected MNIST:
BrainProp against error backprop of the same shape, 784-1500-1000-500-10 relu.

One ``neurosim sweep --circuit brainprop`` over the variants and seeds with the
authors' protocol (``neurosim.circuits.BRAINPROP``: batch 128, the batch mean,
no biases, SGD at 0.1, weights N(0, 0.01²), Max-Boltzmann ε = 0.02), the test
accuracy after every epoch. ``backprop`` is the paper's error backprop: the backprop
network of the same shape and options with softmax outputs trained on the
cross-entropy. The authors train up to 500 epochs,
halve the rate every 100 and stop a run after 45 epochs without a better
validation accuracy; they report the epochs to that plateau (BrainProp 51 ±
19, EBP 33 ± 19) and the accuracy there (98.68 ± 0.07 against 98.54 ± 0.16;
10 seeds). Here every run gets the same budget (60 epochs: past BrainProp's
mean plateau plus its spread, before the first halving) and a run's plateau is
the first epoch whose test accuracy is within ``--plateau`` (0.1 percentage
points) of the best it reached within the budget.

Run folders ``<results>/mnist/relu/<variant>/seed<k>/`` resume where they
stopped, so the runs can be spread over several sessions (a larger
``--epochs`` continues finished runs); ``--seeds 0`` first gives both variants
one seed early. From the folders
alone: ``<results>/table.md`` and ``<results>/table1_curves.png``.

    python benchmarks/reproduce_brainprop.py                  # 3 seeds, 60 epochs each
    python benchmarks/reproduce_brainprop.py --report         # table and figure only
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from neurosim.cli import main as neurosim
from neurosim.sweep import seed_curves

VARIANTS = ("brainprop", "backprop")
PAPER = {"brainprop": (98.68, 0.07, 51, 19), "backprop": (98.54, 0.16, 33, 19)}


def plateau(accuracy: np.ndarray, within: float) -> np.ndarray:
    """Per seed (columns of ``accuracy``, epochs 0.. in rows): the first epoch whose
    accuracy is within ``within`` of that seed's best."""
    return np.argmax(accuracy >= accuracy.max(0) - within, axis=0)


def report(results: Path, within: float) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    data = {v: c["test_accuracy"] * 100 for v in VARIANTS
            if (c := seed_curves(results / "mnist" / "relu" / v))}
    lines = ["| variant | seeds | epochs run | test accuracy, last epoch (%) | best (%) | "
             f"epochs to plateau (within {within} points of the best) | paper: accuracy (%), "
             "epochs |", "|---|---|---|---|---|---|---|"]
    for variant, acc in data.items():
        at = plateau(acc, within)
        best = acc.max(0)
        paper = PAPER[variant]
        lines.append(f"| {variant} | {acc.shape[1]} | {len(acc) - 1} | {acc[-1].mean():.2f} ± "
                     f"{acc[-1].std():.2f} | {best.mean():.2f} ± {best.std():.2f} | "
                     f"{at.mean():.1f} ± {at.std():.1f} | {paper[0]} ± {paper[1]}, "
                     f"{paper[2]} ± {paper[3]} |")
    rising = {v: int(np.sum(np.argmax(acc, 0) >= len(acc) - 5)) for v, acc in data.items()}
    if any(rising.values()):
        lines += ["", "Runs whose best epoch is among the last 5 of the budget (perhaps still "
                      "rising): " + ", ".join(f"{v} {k}/{data[v].shape[1]}"
                                              for v, k in rising.items()) + "."]
    if len(data) == 2:
        ratio = plateau(data["brainprop"], within).mean() / plateau(data["backprop"], within).mean()
        lines += ["", f"BrainProp reaches its plateau {ratio:.2f}x as late as backprop "
                      "(the paper: 1-3.5x, 51/33 = 1.55x for this network)."]
    text = "\n".join(lines) + "\n"
    results.mkdir(parents=True, exist_ok=True)
    (results / "table.md").write_text(text)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (variant, acc), color in zip(data.items(), ("C1", "C2")):
        x = np.arange(1, len(acc))
        mean, std = acc[1:].mean(1), acc[1:].std(1)
        ax.plot(x, mean, "o-", ms=3, color=color, label=f"{variant} (n={acc.shape[1]})")
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
        ax.axhline(PAPER[variant][0], color=color, ls=":", lw=1,
                   label=f"{variant}, paper (plateau)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("BrainProp vs backprop, MNIST 784-1500-1000-500-10 "
                 "(Pozzi et al., Table 1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(results / "table1_curves.png", dpi=110)
    plt.close(fig)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--epochs", type=int, default=60, help="the epoch budget of every run")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", choices=("numpy", "jax"), default="numpy",
                    help="the dense engine's array backend (results equal to rounding; "
                         "BrainProp's draws are the backend's own)")
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ap.add_argument("--plateau", type=float, default=0.1,
                    help="a run's plateau: the first epoch within this many percentage points "
                         "of its best accuracy")
    ap.add_argument("--report", action="store_true", help="only write the table and figure")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "brainprop")
    args = ap.parse_args()
    code = 0
    if not args.report:
        code = neurosim(["sweep", "--circuit", "brainprop", "--variants", args.variants,
                         "--datasets", "mnist", "--activations", "relu", "--seeds", args.seeds,
                         "--epochs", str(args.epochs), "--evaluations", "1", "--train-size", "0",
                         "--test-size", "0", "--target", "dense", "--float32",
                         "--backend", args.backend,
                         "--out", str(args.results),
                         *(["--scheduler", args.scheduler] if args.scheduler else
                           ["--workers", str(args.workers)])])
    print(report(args.results, args.plateau))
    return code


if __name__ == "__main__":
    sys.exit(main())

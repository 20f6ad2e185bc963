"""Reproduce the relaxed predictive coding results (Millidge et al., figures 3, 4, 6, 8).

Two formulations side by side, each a ``neurosim sweep`` (Dask distributed; a
LocalCluster here by default, ``--scheduler`` for an existing cluster) over
data sets x activations x variants x seeds, with the test accuracy after
every epoch:

* ``printed``: relaxed-pc as the paper prints it (ψ on the value, eq. 7),
  784-300-100-10, 100 inference steps at 0.1, weights N(0, 0.02²), labels
  1 / 0.1, with neurosim's batch training: batch 64, Adam 1e-3 on the rules'
  increments, float32.
* ``authors``: authors-pc, the formulation and protocol of the authors' code
  (ψ on the prediction, fixed predictions, feed-forward initialisation,
  biases, linear output; 784-300-100-100-10, 500 steps at 0.02, SGD 1e-3 on the
  batch sum, plain one-hot labels; ``neurosim.circuits.AUTHORS``), in float32
  and without its ±50 clamp of the summed updates (``--update-clip 0``): it
  does not bind there (6,400 MNIST samples with and without it end with
  identical weights, tanh standard and fully relaxed, relu learned ψ), and the
  first sweeps ran before neurosim could declare it (``learning_bound``).
* ``authors-clamped``: the same with the clamp (``learning_bound``), run for
  the variants that diverge without it (feedback alignment).

backprop is the backprop network of each formulation's shape and options.
Every run is a folder ``<results>/<formulation>/<dataset>/<activation>/
<variant>/seed<k>/`` (what ``neurosim train`` writes; finished runs are skipped,
unfinished ones resume), so the reproduction can be completed over several
sessions and its results committed as they come. Then, from the folders alone:
``<results>/<formulation>/table.csv`` (every epoch), ``<results>/table.md``
(the last epoch, both formulations), ``<results>/table_epochs.md`` (every
epoch, mean ± std (seeds)) and one PNG per paper figure with the epoch
on the x axis.

    python benchmarks/reproduce_relaxed_pc.py                     # the whole grid
    python benchmarks/reproduce_relaxed_pc.py --formulations authors --datasets mnist \\
        --activations tanh --variants standard,learned_errors,fully_relaxed
    python benchmarks/reproduce_relaxed_pc.py --report            # table and figures only
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from neurosim.cli import main as neurosim
from neurosim.sweep import table

FORMULATIONS = {
    "printed": ["--circuit", "relaxed-pc", "--batch-size", "64", "--optimizer", "adam",
                "--float32", "--weight-std", "0.02"],
    "authors": ["--circuit", "authors-pc", "--float32", "--update-clip", "0"],
    # the whole protocol, its ±50 clamp included: for the variants that diverge without it
    "authors-clamped": ["--circuit", "authors-pc", "--float32"],
}
VARIANTS = ("standard", "learned_feedback", "no_fprime", "learned_errors", "fully_relaxed",
            "feedback_alignment", "backprop")
FIGURES = {  # paper figure -> the relaxation it shows against standard PC and backprop
    "fig3_learned_feedback": "learned_feedback",
    "fig4_no_fprime": "no_fprime",
    "fig6_learned_errors": "learned_errors",
    "fig8_fully_relaxed": "fully_relaxed",
}
CHANCE = 0.15   # a mean within 5 points of chance (10 classes): learned nothing


def sweep(formulation: str, args) -> int:
    return neurosim(["sweep", *FORMULATIONS[formulation], "--datasets", args.datasets,
                     "--activations", args.activations, "--variants", args.variants,
                     "--seeds", args.seeds, "--epochs", str(args.epochs),
                     "--evaluations", "2", "--train-size", "0", "--test-size", "0",
                     "--target", "dense", "--backend", args.backend,
                     "--out", str(args.results / formulation),
                     *(["--scheduler", args.scheduler] if args.scheduler else
                       ["--workers", str(args.workers)])])


def cell(rows) -> str:
    """The last epoch's mean ± std (n seeds); failed seeds and learned-nothing named."""
    if not rows:
        return "–"
    last = max((r for r in rows if r["epoch"] is not None), key=lambda r: r["epoch"],
               default=None)
    text = ""
    if last is not None:
        text = f"{100 * last['mean_test_accuracy']:.2f} ± {100 * last['std_test_accuracy']:.2f} " \
               f"(n={last['seeds']}, epoch {last['epoch']})"
        if last["mean_test_accuracy"] < CHANCE:
            text += ", at chance"
    failed = max(r["failed_seeds"] for r in rows)
    return text + (f"{', ' if text else ''}{failed} seed(s) failed" if failed else "")


def report(results: Path) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    rows = {}
    for formulation in FORMULATIONS:
        if (results / formulation).is_dir():
            for r in table(results / formulation)["rows"]:
                rows.setdefault((formulation, r["dataset"], r["activation"], r["variant"]),
                                []).append(r)
    keys = sorted({k[:3] for k in rows})
    lines = ["| formulation | data set | activation | " + " | ".join(VARIANTS) + " |",
             "|---|---|---|" + "---|" * len(VARIANTS)]
    for key in keys:
        lines.append("| " + " | ".join(key) + " | "
                     + " | ".join(cell(rows.get((*key, v), [])) for v in VARIANTS) + " |")
    text = "\n".join(lines) + "\n"
    (results / "table.md").write_text(text)
    epochs = sorted({r["epoch"] for rs in rows.values() for r in rs if r["epoch"]})
    lines = ["| formulation | data set | activation | variant | "
             + " | ".join(f"epoch {e}" for e in epochs) + " |",
             "|---|---|---|---|" + "---|" * len(epochs)]
    for key in sorted(rows, key=lambda k: (*k[:3], VARIANTS.index(k[3]))):
        at = {r["epoch"]: r for r in rows[key] if r["epoch"]}
        lines.append("| " + " | ".join(key) + " | " + " | ".join(
            f"{100 * at[e]['mean_test_accuracy']:.2f} ± {100 * at[e]['std_test_accuracy']:.2f} "
            f"({at[e]['seeds']})" if e in at else "–" for e in epochs) + " |")
    (results / "table_epochs.md").write_text("\n".join(lines) + "\n")
    panels = sorted({k[1:3] for k in rows})
    for name, variant in FIGURES.items():
        fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 4.2 * len(panels)), 3.8),
                                 squeeze=False, sharey=True)
        for ax, (dataset, activation) in zip(axes[0], panels):
            for formulation, dash in (("authors", "-"), ("printed", "--")):
                for v, color in (("standard", "C0"), ("backprop", "C2"), (variant, "C1")):
                    curve = [r for r in rows.get((formulation, dataset, activation, v), [])
                             if r["epoch"]]     # from the first epoch on, as the paper
                    if not curve:
                        continue
                    x = [r["epoch"] for r in curve]
                    mean = 100 * np.array([r["mean_test_accuracy"] for r in curve])
                    std = 100 * np.array([r["std_test_accuracy"] for r in curve])
                    ax.plot(x, mean, dash, color=color, marker="o", ms=3,
                            label=f"{v}, {formulation} (n={max(r['seeds'] for r in curve)})")
                    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15)
            ax.set_title(f"{dataset}, {activation}")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="best")
        axes[0, 0].set_ylabel("test accuracy (%)")
        fig.suptitle(f"{name.split('_', 1)[0]}: {variant}\n(solid: the authors' formulation, "
                     "dashed: as printed)", fontsize=9)
        fig.tight_layout()
        fig.savefig(results / f"{name}.png", dpi=110)
        plt.close(fig)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formulations", default="printed,authors",
                    help="comma-separated: " + ", ".join(FORMULATIONS))
    ap.add_argument("--datasets", default="mnist,fashion-mnist")
    ap.add_argument("--activations", default="relu,tanh")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--backend", choices=("numpy", "jax"), default="numpy",
                    help="the dense engine's array backend (jax: 2.6x faster per authors-pc "
                         "trial here; results equal to rounding)")
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ap.add_argument("--report", action="store_true", help="only write the table and figures")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "relaxed_pc")
    args = ap.parse_args()
    code = 0
    if not args.report:
        for formulation in args.formulations.split(","):
            if formulation not in FORMULATIONS:
                ap.error(f"--formulations: {formulation!r} is not one of "
                         f"{', '.join(FORMULATIONS)}")
            code = max(code, sweep(formulation, args))
    print(report(args.results))
    return code


if __name__ == "__main__":
    sys.exit(main())

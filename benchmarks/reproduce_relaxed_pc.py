"""Reproduce the relaxed predictive coding results (Millidge et al., figures 3, 4, 6, 8).

Every variant -- standard PC, learned feedback, no f', learned error
connections ψ, fully relaxed, fixed random feedback (feedback alignment) and
a backprop network of the same shape -- is trained with the batched dense
engine on MNIST and Fashion-MNIST, relu and tanh, over several seeds, through
the same data pipeline and training loop (neurosim.training.fit).

Each finished run is saved at once as one JSON file under --results, so the
benchmark resumes where it stopped and can be completed over several runs;
a run that diverges is saved as diverged, never as a number. Then the table
(mean ± std of the final test accuracy) and one PNG per paper figure are
written from whatever results exist.

    python benchmarks/reproduce_relaxed_pc.py              # 3 seeds x 1 epoch
    python benchmarks/reproduce_relaxed_pc.py --seeds 0 1 2 3 4 --epochs 3
    python benchmarks/reproduce_relaxed_pc.py --quick      # 10k/2k subsets, 1 seed
    python benchmarks/reproduce_relaxed_pc.py --report     # table and figures only
    python benchmarks/reproduce_relaxed_pc.py --quick --sgd 0.05   # plain SGD instead of Adam

Set-up (documented deviations from the paper in the README): batch 64, Adam
1e-3 on the learning-rule increments, float32, 100 inference steps at rate
0.1, weights N(0, 0.02²), label 1 / 0.1.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from neurosim import data
from neurosim.circuits import VARIANTS as PC_VARIANTS, backprop_network, relaxed_predictive_coding
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.optim import Adam
from neurosim.target import DivergenceError
from neurosim.training import TrainSettings, fit

VARIANTS = {**PC_VARIANTS, "backprop": None}  # None: the backprop network of the same shape
FIGURES = {  # paper figure -> the relaxation it shows against standard PC and backprop
    "fig3_learned_feedback": "learned_feedback",
    "fig4_no_fprime": "no_fprime",
    "fig6_learned_errors": "learned_errors",
    "fig8_fully_relaxed": "fully_relaxed",
}
SIZES_HIDDEN = (300, 100)
WEIGHT_STD = 0.02


def run_one(ds, variant, activation, seed, epochs, evaluations, sgd_lr=None):
    sizes = (ds.x_train.shape[1], *SIZES_HIDDEN, ds.n_classes)
    if VARIANTS[variant] is None:
        circuit = backprop_network(sizes, activation, weight_std=WEIGHT_STD,
                                   learning_rate=sgd_lr or 0.02)
        steps = 0
    else:
        circuit = relaxed_predictive_coding(sizes, activation, inference_rate=0.1,
                                            weight_std=WEIGHT_STD, learning_rate=sgd_lr or 5e-4,
                                            **VARIANTS[variant])
        steps = 100
    # Adam rescales the rules' increments, so their learning rate only matters with SGD
    target = DenseTarget(circuit, seed=seed, dtype=np.float32, batch_mean=True,
                         optimizer=None if sgd_lr else Adam(1e-3))
    settings = TrainSettings(epochs=epochs, steps=steps, batch_size=64,
                             evaluations_per_epoch=evaluations, seed=seed)
    t0 = time.perf_counter()
    try:
        history = fit(target, ds, settings, progress=False)
        return {"diverged": False, "history": history,
                "final_test_accuracy": history[-1]["test_accuracy"],
                "seconds": round(time.perf_counter() - t0, 1)}
    except DivergenceError as exc:
        return {"diverged": True, "error": str(exc),
                "seconds": round(time.perf_counter() - t0, 1)}


def load_results(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def at_chance(run) -> bool:
    """A run that ends within 5 points of chance (10 classes) learned nothing: it is
    reported as such, not averaged in as a number."""
    return run["final_test_accuracy"] < 0.15


def report(results, folder: Path, epochs: int) -> str:
    import matplotlib.pyplot as plt
    rows = {}
    for r in results:
        if r["epochs"] != epochs:
            continue
        rows.setdefault((r["dataset"], r["activation"], r["variant"]), []).append(r)
    lines = ["| data set | activation | " + " | ".join(VARIANTS) + " |",
             "|---|---|" + "---|" * len(VARIANTS)]
    for dataset in ("mnist", "fashion-mnist"):
        for act in ("relu", "tanh"):
            cells = []
            for v in VARIANTS:
                runs = rows.get((dataset, act, v), [])
                done = [r for r in runs if not r["diverged"]]
                ok = [r for r in done if not at_chance(r)]
                cell = "–" if not runs else ""
                if ok:
                    acc = 100 * np.array([r["final_test_accuracy"] for r in ok])
                    cell = f"{acc.mean():.2f} ± {acc.std():.2f} (n={len(acc)})"
                for label, n in (("diverged", len(runs) - len(done)),
                                 ("at chance", len(done) - len(ok))):
                    if n:
                        cell += f"{', ' if cell else ''}{label} {n}/{len(runs)}"
                cells.append(cell)
            lines.append(f"| {dataset} | {act} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (folder / f"table_{epochs}epoch.md").write_text(table + "\n")
    for fig_name, variant in FIGURES.items():
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
        for ax, (dataset, act) in zip(axes, [(d, a) for d in ("mnist", "fashion-mnist")
                                              for a in ("tanh", "relu")]):
            for v, style in ((variant, "C1"), ("standard", "C0"), ("backprop", "C2")):
                runs = [r for r in rows.get((dataset, act, v), [])
                        if not r["diverged"] and not at_chance(r)]
                if not runs:
                    if rows.get((dataset, act, v)):
                        ax.text(0.5, 0.5, f"{v}: diverged or at chance",
                                transform=ax.transAxes, ha="center", color=style)
                    continue
                x = [h["samples"] for h in runs[0]["history"]]
                acc = 100 * np.array([[h["test_accuracy"] for h in r["history"]] for r in runs])
                ax.plot(x, acc.mean(0), color=style, label=v)
                ax.fill_between(x, acc.mean(0) - acc.std(0), acc.mean(0) + acc.std(0),
                                color=style, alpha=0.25)
            ax.set_title(f"{dataset}, {act}")
            ax.set_xlabel("training samples")
            ax.set_ylim(50, 100)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("test accuracy (%)")
        axes[0].legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(folder / f"{fig_name}.png", dpi=110)
        plt.close(fig)
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--activations", nargs="+", default=["relu", "tanh"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--evaluations", type=int, default=4, help="test evaluations per epoch")
    ap.add_argument("--quick", action="store_true", help="10k/2k subsets, seed 0 only")
    ap.add_argument("--report", action="store_true", help="only write the table and figures")
    ap.add_argument("--sgd", type=float, default=None, metavar="LR",
                    help="plain SGD with this learning rate (batch mean) instead of Adam 1e-3; "
                         "results go to a separate folder")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "relaxed_pc")
    args = ap.parse_args()
    folder = args.results / (("quick" if args.quick else "full")
                             + (f"_sgd{args.sgd:g}" if args.sgd else ""))
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [0] if args.quick else args.seeds
    jobs = [(d, v, a, s) for s in seeds for d in args.datasets for a in args.activations
            for v in args.variants]
    if not args.report:
        cache = {}
        for dataset, variant, act, seed in tqdm(jobs, desc="runs"):
            path = folder / f"{dataset}_{act}_{variant}_seed{seed}_{args.epochs}epoch.json"
            if path.exists():
                continue
            if dataset not in cache:
                ds = data.load(dataset, download=True)
                cache[dataset] = ds.subset(10000, 2000, seed=0) if args.quick else ds
            result = run_one(cache[dataset], variant, act, seed, args.epochs, args.evaluations,
                             args.sgd)
            result.update(dataset=dataset, variant=variant, activation=act, seed=seed,
                          epochs=args.epochs)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=1))
            tmp.replace(path)
    print(report(load_results(folder), folder, args.epochs))


if __name__ == "__main__":
    main()

"""``neurosim`` command line: train circuits, fetch data sets.

    neurosim train --dataset mnist --train-size 1000 --out results/main
    neurosim run song-abbott-stdp --duration 10 --out results/stdp
    neurosim data fetch mnist fashion-mnist
    neurosim data info
"""
from __future__ import annotations

import argparse
import csv
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import data
from .circuit import CircuitError
from .target import DivergenceError


SWITCHES = ("learned_feedback", "no_fprime", "learned_errors", "fully_relaxed",
            "fixed_random_feedback")
CIRCUIT_PARAMETERS = ("inference_rate", "learning_rate", "weight_std")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden {text!r}: give comma-separated integers, "
                                         "e.g. 300,100") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("--hidden: layer sizes must be positive")
    return sizes


def _weight_std(text: str):
    if text == "fan-in":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weight-std {text!r}: give a number or "
                                         "'fan-in'") from None


def build_parser() -> argparse.ArgumentParser:
    from neurosim.circuits import ACTIVATIONS, CIRCUITS, RATE_CIRCUITS
    from neurosim.hardware_targets import TARGETS

    parser = argparse.ArgumentParser(
        prog="neurosim",
        description="Declare microcircuits once as Brian2 equations; run them on many targets.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train", help="train a rate circuit on a data set",
        description="Train a rate circuit with the paper's protocol (both ends clamped, "
                    "inference steps, one weight update per sample) and write config.json, "
                    "metrics.json, metrics.csv and learning_curve.png to --out. A finished "
                    "run with the same settings is skipped; an interrupted one resumes from "
                    "its checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--circuit", choices=sorted(RATE_CIRCUITS), default="relaxed-pc",
                   help="circuit from the library")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    t.add_argument("--hidden", type=_sizes, default=(300, 100),
                   help="hidden layer sizes from the input side, comma-separated")
    g = t.add_argument_group("relaxations (combine freely)")
    g.add_argument("--learned-feedback", action="store_true",
                   help="separate feedback weights θ̃ learned by eq. 4")
    g.add_argument("--no-fprime", action="store_true", help="drop f' from eqs 2-4")
    g.add_argument("--learned-errors", action="store_true",
                   help="learned error connections ψ (eqs 7, 8)")
    g.add_argument("--fully-relaxed", action="store_true", help="all three above")
    g.add_argument("--fixed-random-feedback", action="store_true",
                   help="random fixed θ̃: the feedback-alignment baseline")
    t.add_argument("--inference-rate", type=float, default=0.1, help="Euler step dt/tau")
    t.add_argument("--learning-rate", type=float, default=0.02,
                   help="per-sample learning rate of the weight updates")
    t.add_argument("--weight-std", type=_weight_std, default=0.05,
                   help="std of the Gaussian initial weights, or 'fan-in' for uniform in "
                        "±1/sqrt(fan_in); the authors' code uses std 0.05 (the paper's text "
                        "says variance 0.05, std 0.22, which leaves per-sample relu training "
                        "at chance on MNIST)")
    t.add_argument("--steps", type=int, default=100,
                   help="inference steps per training sample (0 for backprop)")
    t.add_argument("--dataset", choices=data.DATASETS, default="mnist")
    t.add_argument("--idx-dir", type=Path, default=None,
                   help="read the data set from standard IDX files in this folder instead")
    t.add_argument("--data-dir", type=Path, default=None,
                   help="data cache (default $NEUROSIM_DATA or ~/.cache/neurosim)")
    t.add_argument("--train-size", type=int, default=2000,
                   help="training samples (stratified subset; 0 = all)")
    t.add_argument("--test-size", type=int, default=500,
                   help="test samples (stratified subset; 0 = all)")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--evaluations", type=int, default=4, help="test evaluations per epoch")
    t.add_argument("--target", choices=sorted(TARGETS), default="brian2-cython")
    t.add_argument("--seed", type=int, default=0)
    b = t.add_argument_group("batched training (dense target)")
    b.add_argument("--batch-size", type=int, default=1,
                   help="samples per trial; updates are averaged over the batch")
    b.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd applies the learning rules as written; adam rescales them")
    b.add_argument("--adam-lr", type=float, default=1e-3, help="Adam step size")
    b.add_argument("--float32", action="store_true", help="single precision")
    t.add_argument("--out", type=Path, default=Path("results/train"), help="output folder")
    t.add_argument("--force", action="store_true", help="retrain even if results exist")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    r = sub.add_parser(
        "run", help="run a spiking circuit and plot its spikes and weights",
        description="Run a spiking circuit from the library (built with its default "
                    "parameters) for --duration and write raster.png (the last second), "
                    "rates.png, weights.png (histogram of each plastic projection's "
                    "weights) and metrics.json to --out. The circuit runs as declared, "
                    "with no environment: reward-driven circuits (dopamine-stdp, "
                    "reward-task) get no reward here; their protocols are "
                    "neurosim.circuits.spiking.rewarded_pairing and reward_trials.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("circuit", choices=sorted(CIRCUITS), help="circuit from the library")
    r.add_argument("--duration", type=float, default=1.0, help="simulated time (seconds)")
    r.add_argument("--target", choices=sorted(TARGETS), default="brian2-cython")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--chunks", type=int, default=20, help="progress-bar steps of the run")
    r.add_argument("--out", type=Path, default=Path("results/run"), help="output folder")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    d = sub.add_parser("data", help="fetch and inspect data sets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download, verify (sha256) and cache data sets")
    f.add_argument("names", nargs="+", choices=data.DATASETS)
    f.add_argument("--data-dir", type=Path, default=None)
    i = dsub.add_parser("info", help="where data sets are cached and whether they verify")
    i.add_argument("--data-dir", type=Path, default=None)
    return parser


def _train(args) -> int:
    from neurosim.circuits import CIRCUITS
    from neurosim.hardware_targets import make_target
    from .plots import learning_curve
    from .training import TrainSettings, fit

    out: Path = args.out
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("command", "out", "force", "no_progress", "func")}
    config["hidden"] = list(args.hidden)
    metrics_path = out / "metrics.json"
    if metrics_path.exists() and not args.force:
        done = json.loads(metrics_path.read_text())
        if done.get("config") == config:
            print(f"{out}: already trained with these settings "
                  f"(test accuracy {done['final_test_accuracy']:.4f}); use --force to retrain.")
            return 0
    previous = out / "config.json"
    if (out / "checkpoint.npz").exists() and not args.force and previous.exists() \
            and json.loads(previous.read_text()) != config:
        raise CircuitError(f"{out} holds an unfinished run with other settings; resume it "
                           "with the same options, or use --force or another --out.")
    out.mkdir(parents=True, exist_ok=True)
    if args.idx_dir:
        ds = data.load_idx_folder(args.idx_dir)
    else:
        ds = data.load(args.dataset, root=args.data_dir)
    ds = ds.subset(args.train_size or None, args.test_size or None, seed=args.seed)
    sizes = (ds.x_train.shape[1], *args.hidden, ds.n_classes)
    factory = CIRCUITS[args.circuit]
    accepted = inspect.signature(factory).parameters
    unsupported = [k for k in SWITCHES if getattr(args, k) and k not in accepted]
    if unsupported:
        raise CircuitError(f"--{unsupported[0].replace('_', '-')} applies to relaxed-pc, not "
                           f"to the {args.circuit} circuit.")
    kwargs = {k: getattr(args, k) for k in SWITCHES + CIRCUIT_PARAMETERS if k in accepted}
    circuit = factory(sizes, args.activation, **kwargs)
    options = {}
    if args.batch_size > 1 or args.optimizer != "sgd" or args.float32:
        if args.target != "dense":
            raise CircuitError("--batch-size, --optimizer and --float32 need --target dense "
                               f"(the {args.target} target runs one sample at a time).")
        from neurosim.hardware_targets.dense import Adam
        options = {"batch_mean": True}
        if args.optimizer == "adam":
            options["optimizer"] = Adam(args.adam_lr)
        if args.float32:
            options["dtype"] = np.float32
    target = make_target(args.target, circuit, seed=args.seed, **options)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    settings = TrainSettings(epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
                             evaluations_per_epoch=args.evaluations, seed=args.seed)
    checkpoint = out / "checkpoint.npz"
    if checkpoint.exists() and args.force:
        checkpoint.unlink()
    elif checkpoint.exists():
        print(f"resuming from {checkpoint}")
    t0 = time.perf_counter()
    try:
        history = fit(target, ds, settings, checkpoint=checkpoint,
                      progress=not args.no_progress)
    except DivergenceError as exc:
        (out / "diverged.json").write_text(json.dumps({"config": config, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 3
    metrics = {"config": config, "circuit": circuit.description, "target": target.name,
               "sizes": list(sizes), "train_samples": len(ds.y_train),
               "test_samples": len(ds.y_test), "final_test_accuracy": history[-1]["test_accuracy"],
               "seconds_this_session": round(time.perf_counter() - t0, 2), "history": history}
    metrics_path.write_text(json.dumps(metrics, indent=2))
    checkpoint.unlink(missing_ok=True)  # finished: only an unfinished run keeps one
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    learning_curve(history, out / "learning_curve.png",
                   title=f"{args.dataset}: {circuit.description}")
    print(f"test accuracy {history[-1]['test_accuracy']:.4f} after {len(ds.y_train)} x "
          f"{args.epochs} samples; wrote {out}/metrics.json, metrics.csv, learning_curve.png")
    return 0


def _run(args) -> int:
    from tqdm.auto import tqdm
    from neurosim.circuits import CIRCUITS
    from neurosim.hardware_targets import make_target
    from .plots import raster, rates, weight_histogram

    try:
        circuit = CIRCUITS[args.circuit]()
    except TypeError:
        raise CircuitError(f"{args.circuit} needs arguments (sizes, ...): `neurosim run` runs "
                           "circuits that have defaults, such as the spiking ones; train rate "
                           "circuits with `neurosim train`.") from None
    spiking = [name for name, pop in circuit.populations.items() if pop.threshold]
    if not spiking:
        raise CircuitError(f"{args.circuit} has no spiking population (none has a "
                           "threshold): nothing to plot as spikes; use `neurosim train`.")
    if not args.duration > 0 or args.chunks < 1:
        raise CircuitError("--duration must be positive and --chunks at least 1.")
    dt = float(circuit.dt)
    n_steps = max(1, int(round(args.duration / dt)))
    target = make_target(args.target, circuit, seed=args.seed)
    bounds = np.linspace(0, n_steps, min(args.chunks, n_steps) + 1).astype(int)
    spikes = {name: [] for name in spiking}
    t0 = time.perf_counter()
    for start, stop in tqdm(list(zip(bounds[:-1], bounds[1:])), desc=args.circuit,
                            unit="chunk", disable=args.no_progress):
        rec = target.run(stop - start, record=[(name, "spikes") for name in spiking])
        for name in spiking:
            spikes[name].append(rec[(name, "spikes")] + [start, 0])
    seconds = time.perf_counter() - t0
    spikes = {k: np.concatenate(v) for k, v in spikes.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    title = circuit.description or circuit.name
    last = max(0, n_steps - int(round(1.0 / dt)))
    raster({k: v[v[:, 0] >= last] for k, v in spikes.items()}, dt * 1e3,
           args.out / "raster.png", title)
    sizes = {k: circuit.populations[k].n for k in spiking}
    rates(spikes, sizes, n_steps, dt * 1e3, bin_ms=max(1e3 * dt, args.duration * 1e3 / 50),
          path=args.out / "rates.png", title=title)
    weights = target.get_weights()
    plastic = {name: proj.plasticity for name, proj in circuit.projections.items()
               if proj.plasticity is not None}
    shown = {name: weights[name][rule.weight] for name, rule in plastic.items()} or \
        {name: next(iter(w.values())) for name, w in weights.items() if w}
    if shown:
        weight_histogram(shown, {name: float(rule.wmax) for name, rule in plastic.items()},
                         path=args.out / "weights.png", title=title)
    metrics = {
        "circuit": args.circuit, "description": circuit.description, "target": args.target,
        "seed": args.seed, "duration_s": args.duration, "steps": n_steps,
        "wall_seconds": round(seconds, 3),
        "spikes": {k: int(len(v)) for k, v in spikes.items()},
        "rate_hz": {k: len(v) / sizes[k] / (n_steps * dt) for k, v in spikes.items()},
        "weights": {name: {"mean": float(np.mean(w)), "min": float(np.min(w)),
                           "max": float(np.max(w))} for name, w in shown.items()},
    }
    for name, rule in plastic.items():
        w = shown[name] / float(rule.wmax)
        metrics["weights"][name].update(fraction_near_0=float(np.mean(w < 0.1)),
                                        fraction_near_wmax=float(np.mean(w > 0.9)))
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"{args.circuit}: {n_steps} steps in {seconds:.1f} s; wrote {args.out}/raster.png, "
          "rates.png, " + ("weights.png, " if shown else "") + "metrics.json")
    return 0


def _data(args) -> int:
    if args.data_command == "fetch":
        for name in args.names:
            if name == "digits":
                print("digits ships with scikit-learn: nothing to fetch")
                continue
            path = data.fetch(name, root=args.data_dir)
            print(f"{name}: {path}")
    else:
        root = data.data_dir(args.data_dir)
        print(f"data folder: {root}")
        for name in data.DATASETS:
            try:
                ds = data.load(name, root=args.data_dir)
                print(f"  {name}: {len(ds.y_train)} train / {len(ds.y_test)} test, verified")
            except data.DataError as exc:
                print(f"  {name}: {exc}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "run": _run, "data": _data}[args.command](args)
    except (CircuitError, data.DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"stopped: {exc}; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

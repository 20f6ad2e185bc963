"""``neurosim`` command line: train circuits, fetch data sets.

    neurosim train --dataset mnist --train-size 1000 --out results/main
    neurosim run song-abbott-stdp --duration 10 --out results/stdp
    neurosim data fetch mnist fashion-mnist
    neurosim data info

Every option is checked where it is parsed (its valid range is in the message);
every user error ends with ``error: ...`` naming the option or file and the fix,
and one of the exit codes in :data:`EXIT_CODES`, never a Python traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import data
from .data import atomic_write_bytes
from .errors import CircuitError, DataError, DivergenceError, NeurosimError, OutputError
from .outdir import WEIGHTS, check_writable, claim, write_json


CIRCUIT_PARAMETERS = ("inference_rate", "learning_rate", "weight_std")
#: circuit keywords that only some rate circuits take: passed when given
#: (not None), refused by a circuit that does not take them
OPTIONAL_PARAMETERS = ("output_activation", "weight_gain", "update_clip", "error_weight_init",
                       "error_weight_decay", "epsilon", "temperature", "feedback_decay",
                       "feedback", "feedback_learning_rate", "noise")
EXIT_CODES = {
    0: "success (or the run was already finished with these settings)",
    2: "bad input: an option, a circuit or target that cannot run, a data file or folder",
    3: "the run diverged (NaN or exploding weights); nothing was written after it",
    4: "output folder: not writable, no room, in use by another run, results or checkpoint\n"
       "       of other settings (--force replaces them), a damaged checkpoint",
    5: "sweep: some runs failed (each is listed in table.csv with its error); the others\n"
       "       are written",
    130: "interrupted (Ctrl-C); the same command resumes from the checkpoint",
}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers, "
                                         "e.g. 300,100") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: layer sizes must be positive")
    return sizes


def _number(kind, low, high=None, open_low=False, words=None):
    """An argparse ``type``: ``kind`` (int or float) in ``[low, high]`` (``(low, ...``
    with ``open_low``), finite; ``words`` maps accepted words to values."""
    words = words or {}
    span = ("(" if open_low else "[") + f"{low}, " + (f"{high}]" if high is not None
                                                      else "inf)")
    what = ("an integer" if kind is int else "a finite number") + f" in {span}" \
        + "".join(f" or {w!r}" for w in words)

    def parse(text: str):
        if text in words:
            return words[text]
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {what}") from None
        if not math.isfinite(value) or value < low or (open_low and value == low) \
                or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: give {what}")
        return value
    parse.__name__ = "integer" if kind is int else "number"
    return parse


def _path(text: str) -> Path:
    """A path option: an empty one would silently mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path: give a folder (use . for the current one)")
    return Path(text)


SEED = _number(int, 0, 2**32 - 1)        # Brian2 and numpy's legacy seeding take 32 bits
COUNT = _number(int, 1)
POSITIVE = _number(float, 0, open_low=True)


def _names(choices, what: str):
    """An argparse ``type``: a comma-separated list of distinct names from ``choices``
    (or each parsed by ``choices``, an argparse type, e.g. :func:`_activation`)."""
    def parse(text: str) -> tuple[str, ...]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more {what}s, "
                                             "comma-separated")
        for name in names:
            if not callable(choices) and name not in choices:
                raise argparse.ArgumentTypeError(f"{name!r} is not a known {what}; choose "
                                                 f"from {', '.join(choices)}")
        if callable(choices):           # a type that checks each name
            names = [choices(name) for name in names]
        _distinct(names, text)
        return tuple(names)
    parse.__name__ = what.replace(" ", "-") + "-list"
    return parse


def _activation(choices):
    """An argparse ``type``: an activation from ``choices``, or one per hidden layer
    from the input side joined by '-' (``tanh-linear-tanh``; the circuits that take
    per-layer activations say so, the others refuse them by name)."""
    def parse(text: str) -> str:
        parts = text.split("-")
        for part in parts:
            if part not in choices:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: {part!r} is not a known activation; choose from "
                    f"{', '.join(choices)}, or one per hidden layer joined by '-' "
                    "(e.g. tanh-linear-tanh)")
        return text
    parse.__name__ = "activation"
    return parse


def _distinct(items, text: str) -> None:
    """A name or seed listed twice would be one run folder claimed by two tasks."""
    twice = sorted({str(i) for i in items if items.count(i) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{text!r} lists {', '.join(twice)} more than once")


def _seeds(text: str) -> tuple[int, ...]:
    """Seeds as integers and inclusive ranges: ``0-4``, ``0,3,7-9``."""
    seeds = []
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        if not part or (dash and not (low.strip() and high.strip())):
            raise argparse.ArgumentTypeError(f"{text!r}: give seeds as integers and ranges, "
                                             "e.g. 0-4 or 0,3,7-9")
        low = SEED(low.strip())
        high = SEED(high.strip()) if dash else low
        if high < low:
            raise argparse.ArgumentTypeError(f"{part!r}: a range goes from low to high, "
                                             f"e.g. {high}-{low}")
        seeds.extend(range(low, high + 1))
    _distinct(seeds, text)
    return tuple(seeds)


def _add_training_options(p) -> None:
    """The options ``train`` and ``sweep`` share (a sweep passes them to every run)."""
    from neurosim.circuits import ACTIVATIONS
    from neurosim.hardware_targets import TARGETS
    from .training import TASKS
    p.add_argument("--hidden", type=_sizes, default=(300, 100),
                   help="hidden layer sizes from the input side, comma-separated")
    p.add_argument("--inference-rate", type=_number(float, 0, 1, open_low=True), default=0.1,
                   help="Euler step dt/tau, in (0, 1]")
    p.add_argument("--learning-rate", type=POSITIVE, default=0.02,
                   help="per-sample learning rate of the weight updates")
    p.add_argument("--weight-std", type=_number(float, 0, open_low=True, words={"fan-in": None}),
                   default=0.05,
                   help="std of the Gaussian initial weights, or 'fan-in' for uniform in "
                        "±1/sqrt(fan_in); the authors' code uses std 0.05 (the paper's text "
                        "says variance 0.05, std 0.22, which leaves per-sample relu training "
                        "at chance on MNIST)")
    p.add_argument("--output-activation", choices=sorted(ACTIVATIONS) + ["softmax"],
                   default=None,
                   help="activation of the last layer (default: --activation); softmax "
                        "(backprop, feedback-alignment): trained on the cross-entropy")
    p.add_argument("--weight-gain", type=POSITIVE, default=None,
                   help="factor of the θ and θ̃ increments (authors-pc: 2, the 2 of "
                        "∂‖ε‖²; default 1)")
    p.add_argument("--update-clip", type=_number(float, 0), default=None,
                   help="bound each weight's change in a trial (a batch's sum) to "
                        "±learning rate x this, as the authors clamp their updates (0: no "
                        "bound; authors-pc: 50)")
    p.add_argument("--error-weight-init", choices=("abs_normal", "identity"), default=None,
                   help="start of the printed learned ψ (eq. 7): the paper's |N(0, 0.05²)| "
                        "(default) or the identity")
    p.add_argument("--error-weight-decay", type=_number(float, 0), default=None,
                   help="decay λ of the printed learned ψ to the identity, ψ ← ψ − lr(εµᵀ + "
                        "λ(ψ − I)) (default 0; with --error-weight-init identity, 0.01 "
                        "keeps it learning: README)")
    p.add_argument("--epsilon", type=_number(float, 0, 1), default=None,
                   help="brainprop: probability of a Boltzmann draw instead of the most "
                        "active output (default 0.02)")
    p.add_argument("--temperature", type=POSITIVE, default=None,
                   help="brainprop: temperature of the Boltzmann draw (default 1)")
    p.add_argument("--feedback-decay", type=_number(float, 0), default=None,
                   help="brainprop --learned-feedback: weight decay λ of the forward and "
                        "feedback weights, which makes them converge (default 0)")
    p.add_argument("--feedback", choices=("perturbation", "fixed", "reciprocal"), default=None,
                   help="node-perturbation: what carries the error down: B learned by node "
                        "perturbation (default), B fixed (feedback alignment), or the forward "
                        "weights (backprop)")
    p.add_argument("--feedback-learning-rate", type=_number(float, 0), default=None,
                   help="node-perturbation: learning rate of B")
    p.add_argument("--noise", type=POSITIVE, default=None,
                   help="node-perturbation: std c_h of the hidden layers' perturbation")
    p.add_argument("--steps", type=_number(int, 0), default=100,
                   help="inference steps per training sample (0 for backprop)")
    p.add_argument("--task", choices=tuple(TASKS), default=None,
                   help="classification (default): the output learns the labels, the test "
                        "metric is accuracy; reconstruction: an autoencoder, the last layer "
                        "as large as the input learns the input, the test metric is the mean "
                        "squared error per input element")
    p.add_argument("--label-off", type=_number(float, 0, 1), default=None,
                   help="target value of the wrong classes, in [0, 1) (default 0.1; "
                        "authors-pc: 0, plain one-hot)")
    p.add_argument("--data-dir", type=_path, default=None,
                   help="data cache (default $NEUROSIM_DATA or ~/.cache/neurosim)")
    p.add_argument("--train-size", type=_number(int, 0), default=2000,
                   help="training samples (stratified subset; 0 = all)")
    p.add_argument("--test-size", type=_number(int, 0), default=500,
                   help="test samples (stratified subset; 0 = all)")
    p.add_argument("--evaluations", type=COUNT, default=4,
                   help="test evaluations per epoch (at most one per batch)")
    p.add_argument("--target", choices=sorted(TARGETS), default="brian2-cython")
    b = p.add_argument_group("batched training (targets that declare it, e.g. dense)")
    b.add_argument("--batch-size", type=COUNT, default=1,
                   help="samples per trial; updates are averaged over the batch")
    b.add_argument("--batch-sum", action="store_true",
                   help="sum a batch's updates instead of averaging them (authors-pc)")
    b.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd applies the learning rules as written; adam rescales them")
    b.add_argument("--adam-lr", type=POSITIVE, default=1e-3, help="Adam step size")
    b.add_argument("--float32", action="store_true", help="single precision")
    b.add_argument("--backend", choices=("numpy", "jax"), default="numpy",
                   help="array backend of the dense engine: jax compiles each training "
                        "trial into one program (CPU, or an NVIDIA GPU where JAX has one)")


def build_parser(circuit: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``circuit``, ``train`` and ``sweep`` take the
    defaults of that circuit's published protocol where it has one
    (``neurosim.circuits.PROTOCOLS``: see :func:`parse`)."""
    from neurosim.circuits import (ACTIVATIONS, CIRCUITS, PROTOCOLS, RATE_CIRCUITS,
                                   SWEEP_VARIANTS as CIRCUIT_VARIANTS, SWITCHES)
    from neurosim.circuits.brian2_examples import EXAMPLES
    from neurosim.hardware_targets import TARGETS
    SWEEP_CIRCUITS = tuple(CIRCUIT_VARIANTS)
    SWEEP_VARIANTS = tuple(dict.fromkeys(v for vs in CIRCUIT_VARIANTS.values() for v in vs))
    SWEEP_VARIANTS += ("backprop",) * ("backprop" not in SWEEP_VARIANTS)

    parser = argparse.ArgumentParser(
        prog="neurosim",
        description="Declare microcircuits once as Brian2 equations; run them on many targets.",
        epilog="exit codes:\n" + "\n".join(f"  {k:>3}  {v}" for k, v in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train", help="train a rate circuit on a data set",
        description="Train a rate circuit with the paper's protocol (both ends clamped, "
                    "inference steps, one weight update per sample) and write config.json, "
                    "metrics.json, metrics.csv, learning_curve.png and the trained weights "
                    "(weights.npz) to --out. A finished "
                    "run with the same settings is skipped; an interrupted one resumes from "
                    "its checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--circuit", choices=sorted(RATE_CIRCUITS), default="relaxed-pc",
                   help="circuit from the library; authors-pc is relaxed-pc in the form and "
                        "with the protocol of the authors' code, which then give the "
                        "defaults of the other options (--hidden 300,100,100, --steps 500, "
                        "...; see neurosim.circuits.AUTHORS)")
    t.add_argument("--activation", type=_activation(sorted(ACTIVATIONS)), default="relu",
                   help="activation of the hidden layers: " + ", ".join(sorted(ACTIVATIONS))
                        + ", or one per hidden layer joined by '-' (node-perturbation)")
    g = t.add_argument_group("relaxations (combine freely)")
    for switch, what in SWITCHES.items():
        g.add_argument("--" + switch.replace("_", "-"), action="store_true", help=what)
    t.add_argument("--dataset", choices=data.DATASETS, default="mnist")
    t.add_argument("--idx-dir", type=_path, default=None,
                   help="read the data set from standard IDX files in this folder instead")
    t.add_argument("--epochs", type=COUNT, default=1)
    t.add_argument("--seed", type=SEED, default=0)
    _add_training_options(t)
    t.add_argument("--out", type=_path, default=Path("results/train"), help="output folder")
    t.add_argument("--force", action="store_true",
                   help="replace the results or checkpoint of --out (other settings, or retrain)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    w = sub.add_parser(
        "sweep", help="train a grid of runs (variants x data sets x activations x seeds) "
                      "on Dask",
        description="Train every point of the grid --datasets x --activations x --variants x "
                    "--seeds (relaxed-pc, the other options shared) as one `neurosim train` "
                    "run each, in <out>/<dataset>/<activation>/<variant>/seed<k>/, as tasks "
                    "on a Dask LocalCluster of --workers processes on this machine, or on an "
                    "existing Dask cluster (--scheduler; dask-jobqueue's SLURMCluster or "
                    "PBSCluster gives one on a batch system). Finished points are skipped, "
                    "unfinished ones resume from their checkpoints, a task whose worker dies "
                    "is run again elsewhere. Then <out>/table.csv (test accuracy per epoch: "
                    "mean and std over seeds) and <out>/<dataset>.png are written from the "
                    "run folders; a failed point is listed there with its error and the "
                    "exit code is 5.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    w.add_argument("--circuit", choices=SWEEP_CIRCUITS, default="relaxed-pc",
                   help="the circuit whose variants are swept (one with a published "
                        "protocol takes it as its defaults, as for train); its variants: "
                        + "; ".join(f"{c}: {', '.join(dict.fromkeys([*v, 'backprop']))}"
                                    for c, v in CIRCUIT_VARIANTS.items()))
    grid = w.add_argument_group("the grid (comma-separated lists)")
    grid.add_argument("--variants", type=_names(SWEEP_VARIANTS, "variant"), default="standard",
                      help="variants: " + ", ".join(SWEEP_VARIANTS) + " (backprop: the "
                           "backprop network of the same shape, trained with the same "
                           "options where it takes them)")
    grid.add_argument("--datasets", type=_names(data.DATASETS, "data set"),
                      default="mnist", help="data sets: " + ", ".join(data.DATASETS))
    grid.add_argument("--activations", type=_names(_activation(sorted(ACTIVATIONS)),
                                                   "activation"),
                      default="relu", help="activations: " + ", ".join(sorted(ACTIVATIONS))
                      + ", or one per hidden layer joined by '-' (node-perturbation)")
    grid.add_argument("--seeds", type=_seeds, default="0",
                      help="seeds: integers and ranges, e.g. 0-4 or 0,3,7-9")
    w.add_argument("--epochs", type=COUNT, default=1,
                   help="epochs of every run (the table has one row per epoch)")
    _add_training_options(w)
    w.add_argument("--out", type=_path, default=Path("results/sweep"), help="output folder")
    w.add_argument("--force", action="store_true",
                   help="retrain the points whose folders hold results or checkpoints of "
                        "other settings (without it they stop the sweep before it starts)")
    w.add_argument("--workers", type=_number(int, 0), default=min(4, os.cpu_count() or 1),
                   help="worker processes of the LocalCluster; 0 runs the points one after "
                        "the other in this process, without Dask")
    w.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on the existing Dask cluster of this scheduler (e.g. "
                        "tcp://host:8786) instead of a LocalCluster; its workers need "
                        "neurosim and --out on a shared file system")
    w.add_argument("--retries", type=_number(int, 0), default=2,
                   help="times a task is run again after its worker died or it raised an "
                        "unexpected error (a named error, such as divergence, is not retried)")
    w.add_argument("--table-only", action="store_true",
                   help="only rewrite table.csv and the figures from the run folders")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")

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
    r.add_argument("--duration", type=POSITIVE, default=1.0, help="simulated time (seconds)")
    r.add_argument("--target", choices=sorted(TARGETS), default="brian2-cython")
    r.add_argument("--seed", type=SEED, default=0)
    r.add_argument("--v-headroom", type=POSITIVE, default=None,
                   help="lava-fixed: the range of v in multiples of the threshold above "
                        "the reset (Lava's fixed-point LIF; default 4)")
    r.add_argument("--trace-headroom", type=POSITIVE, default=None,
                   help="lava-fixed: the pairings' worth of spikes a 7-bit STDP trace holds "
                        "(Lava's fixed-point learning engine; default 8)")
    r.add_argument("--chunks", type=COUNT, default=20, help="progress-bar steps of the run")
    r.add_argument("--out", type=_path, default=Path("results/run"), help="output folder")
    r.add_argument("--force", action="store_true",
                   help="replace the results of --out made with other settings")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    x = sub.add_parser(
        "export-nir", help="export a spiking circuit as a NIR graph",
        description="Write a spiking circuit from the library, or a conformance model, as a "
                    "NIR file (HDF5, nir.write), with its weights and synapses for --seed. "
                    "LIF and current-based LIF populations become LIF/CubaLIF nodes, Poisson "
                    "sources Input nodes, spike projections Linear (and Delay) nodes; what "
                    "NIR cannot describe is refused by name. What the export leaves out "
                    "(plasticity, refractory periods with --drop-refractory) is printed. "
                    "neurosim.nir_graph.from_nir reads it back as a circuit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    x.add_argument("circuit", choices=sorted({*CIRCUITS, *EXAMPLES}),
                   help="circuit from the library or conformance model")
    x.add_argument("--scale", type=POSITIVE, default=1.0,
                   help="size of a conformance model (0 < scale <= 1)")
    x.add_argument("--seed", type=SEED, default=0)
    x.add_argument("--drop-refractory", action="store_true",
                   help="export refractory populations without their refractory period "
                        "(NIR has none)")
    x.add_argument("--out", type=_path, default=Path("results/circuit.nir"),
                   help="the NIR file to write")

    d = sub.add_parser("data", help="fetch and inspect data sets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download, verify (sha256) and cache data sets")
    f.add_argument("names", nargs="+", choices=data.DATASETS)
    f.add_argument("--data-dir", type=_path, default=None)
    i = dsub.add_parser("info", help="where data sets are cached and whether they verify")
    i.add_argument("--data-dir", type=_path, default=None)
    if circuit in PROTOCOLS:
        for command in (t, w):
            command.set_defaults(**_protocol_defaults(PROTOCOLS[circuit], command))
    if circuit in CIRCUIT_VARIANTS:   # the sweep's default variant: the circuit's first
        w.set_defaults(variants=(next(iter(CIRCUIT_VARIANTS[circuit])),))
    return parser


def _protocol_defaults(protocol: dict, command) -> dict:
    """A circuit's published protocol as option defaults: ``sizes`` gives
    --hidden, ``batch_mean=False`` --batch-sum, a key named like an option that
    option's default; the other keys (e.g. ``error_weight_std``) are the
    circuit's or TrainSettings' own defaults (tests/test_pc_authors.py checks both)."""
    dests = {a.dest for a in command._actions}
    defaults = {"hidden": tuple(protocol["sizes"][1:-1]), "batch_sum": not protocol["batch_mean"]}
    defaults.update({k: v for k, v in protocol.items() if k in dests})
    return defaults


def parse(argv=None) -> argparse.Namespace:
    """Parse the command line; a ``--circuit`` with a published protocol
    (``authors-pc``) is parsed again with that protocol's defaults, so that
    every option the user gives still overrides it."""
    from neurosim.circuits import PROTOCOLS
    args = build_parser().parse_args(argv)
    if getattr(args, "circuit", None) in PROTOCOLS:
        args = build_parser(args.circuit).parse_args(argv)
    return args


def _config(args) -> dict:
    """The settings that define a run (what its folder is compared against)."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("command", "out", "force", "no_progress", "func")}
    if "hidden" in config:
        config["hidden"] = list(config["hidden"])
    if config.get("backend") == "numpy":   # the default: as runs recorded before --backend
        del config["backend"]
    return config


def _checkpoint_bytes(target) -> int:
    """Room a run needs: two copies of a checkpoint (the old one stays until the
    new one is complete) with optimiser state, plus a few MB of results."""
    weights = sum(a.nbytes for vs in target.get_weights().values() for a in vs.values())
    extra = sum(a.nbytes for a in target.extra_state().values())
    return 2 * (weights + extra) + 4 * 10**6


def _check_training_options(args) -> None:
    """The batched-training options need a target that declares them (its
    ``capabilities``); the message lists the registered targets that do."""
    from neurosim.hardware_targets import capabilities, having
    caps = capabilities(args.target)
    for given, option, needs, wanted in (
            (args.batch_size > 1, f"--batch-size {args.batch_size}", "runs batches of that size",
             lambda c: c.batch >= args.batch_size),
            (args.optimizer != "sgd", f"--optimizer {args.optimizer}", "takes an optimiser",
             lambda c: c.optimizer),
            (args.float32, "--float32", "computes in single precision", lambda c: c.float32),
            (args.backend != "numpy", f"--backend {args.backend}", "has that array backend",
             lambda c: args.backend in c.backends)):
        if given and not wanted(caps):
            able = having(wanted)
            raise CircuitError(f"{option} needs a target that {needs}: "
                               f"{', '.join(able) or 'none is registered'} (the "
                               f"{args.target} target does not).")


def _dataset(args):
    """The data set of a train run, subset as asked (sizes checked against it)."""
    ds = data.load_idx_folder(args.idx_dir) if args.idx_dir else \
        data.load(args.dataset, root=args.data_dir)
    for part, n in (("train", args.train_size), ("test", args.test_size)):
        have = len(getattr(ds, f"y_{part}"))
        if n > have:
            raise CircuitError(f"--{part}-size {n}: {ds.name} has {have} {part} samples; "
                               f"give at most {have}, or 0 for all.")
    return ds.subset(args.train_size or None, args.test_size or None, seed=args.seed)


def _settings(args, n_train: int):
    from .training import TrainSettings
    given = {} if args.label_off is None else {"label_off": args.label_off}
    return TrainSettings(epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
                         evaluations_per_epoch=args.evaluations, seed=args.seed,
                         task=args.task or "classification", **given).check(n_train)


def _takes(factory, keyword: str) -> bool:
    """Whether a circuit factory takes ``keyword`` (one with ``**switches``
    takes any and names its own the wrong ones)."""
    parameters = inspect.signature(factory).parameters
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _circuit_keywords(args):
    """The circuit factory of the train options ``args`` and its keywords; an
    option the circuit does not take is refused, naming the circuits that do."""
    from neurosim.circuits import CIRCUITS, RATE_CIRCUITS, SWITCHES
    factory = CIRCUITS[args.circuit]
    # switches that are on and optional parameters that are given, as keywords
    # (those left out keep the circuit's own defaults: authors-pc's differ)
    given = {k: getattr(args, k) for k in SWITCHES if getattr(args, k)}
    given.update({k: getattr(args, k) for k in OPTIONAL_PARAMETERS
                  if getattr(args, k) is not None})
    unsupported = [k for k in given if not _takes(factory, k)]
    if unsupported:
        takes = [name for name, f in RATE_CIRCUITS.items() if _takes(f, unsupported[0])]
        raise CircuitError(f"--{unsupported[0].replace('_', '-')} applies to "
                           f"{', '.join(takes)}, not to the {args.circuit} circuit.")
    if given.get("update_clip") == 0:
        given["update_clip"] = None       # --update-clip 0: no clip
    return factory, {**{k: getattr(args, k) for k in CIRCUIT_PARAMETERS if _takes(factory, k)},
                     **given}


def _build(args, ds):
    """The layer sizes, circuit and target of the train options ``args`` for the
    data set ``ds`` (sizes from the data and ``--hidden``)."""
    from neurosim.hardware_targets import make_target
    factory, kwargs = _circuit_keywords(args)
    sizes = (ds.x_train.shape[1], *args.hidden,
             ds.x_train.shape[1] if args.task == "reconstruction" else ds.n_classes)
    _check_memory(sizes)
    circuit = factory(sizes, args.activation, **kwargs)
    options = {}
    if args.batch_size > 1 or args.optimizer != "sgd" or args.float32:
        # the target declares these options (checked by _check_training_options)
        from .optim import Adam
        options = {"batch_mean": not args.batch_sum}
        if args.optimizer == "adam":
            options["optimizer"] = Adam(args.adam_lr)
        if args.float32:
            options["dtype"] = np.float32
    if args.backend != "numpy":
        options["backend"] = args.backend
    return sizes, circuit, make_target(args.target, circuit, seed=args.seed, **options)


def _check_memory(sizes) -> None:
    """MemoryError (main names it) before anything is built when the forward
    weights alone, in float64, need more memory than is available: building
    would otherwise fill the machine first (a target allocates piece by piece)."""
    import psutil
    need = 8 * sum(a * b for a, b in zip(sizes, sizes[1:]))
    if need > psutil.virtual_memory().available:
        raise MemoryError(f"the weights of {'-'.join(map(str, sizes))} need "
                          f"{need / 2 ** 30:.3g} GiB")


def load_run(folder: Path):
    """The target of a finished ``neurosim train`` (or sweep point) folder with its
    trained weights, and the data set it was trained on (the same subsets):
    ``(target, dataset)``, e.g. to look at a hidden layer's activity."""
    from .outdir import read_json
    from .training import load_checkpoint
    folder = Path(folder)
    fix = f"train it first (neurosim train --out {folder})"
    config = read_json(folder / "config.json", fix)
    if not (folder / WEIGHTS).exists():
        raise OutputError(f"{folder} holds no {WEIGHTS} (an unfinished run, or one "
                          f"finished before runs kept their weights); {fix}.")
    args = argparse.Namespace(**{**vars(parse(["train", "--circuit", config["circuit"]])),
                                 **config})
    args.hidden = tuple(args.hidden)
    ds = _dataset(args)
    target = _build(args, ds)[2]
    load_checkpoint(folder / WEIGHTS, target)
    return target, ds


def _train(args) -> int:
    from .plots import alignment_curves, learning_curve
    from .training import TASKS, fit

    out: Path = args.out
    config = _config(args)
    _circuit_keywords(args)           # options the circuit does not take: before anything
    _check_training_options(args)
    with claim(out, config, args.force) as state:
        if state == "done":
            print(f"{out}: already trained with these settings; use --force to retrain.")
            return 0
        ds = _dataset(args)
        settings = _settings(args, len(ds.y_train))
        sizes, circuit, target = _build(args, ds)
        check_writable(out, _checkpoint_bytes(target))
        checkpoint = out / "checkpoint.npz"
        if state == "extend":   # finished with fewer epochs: on from its trained weights
            if not checkpoint.exists():
                (out / WEIGHTS).replace(checkpoint)
            (out / "metrics.json").unlink()          # no longer finished
            state = "resume"
        write_json(out / "config.json", config)
        if state == "resume":
            print(f"resuming from {checkpoint}")
        t0 = time.perf_counter()
        try:
            history = fit(target, ds, settings, checkpoint=checkpoint,
                          progress=not args.no_progress, record=config)
        except DivergenceError as exc:
            write_json(out / "diverged.json", {"config": config, "error": str(exc)})
            raise
        metric = TASKS[settings.task]
        metrics = {"config": config, "circuit": circuit.description, "target": target.name,
                   "sizes": list(sizes), "train_samples": len(ds.y_train),
                   "test_samples": len(ds.y_test),
                   f"final_{metric}": history[-1][metric],
                   "seconds_this_session": round(time.perf_counter() - t0, 2),
                   "history": history}
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_bytes(out / "metrics.csv", table.getvalue().encode())
        learning_curve(history, out / "learning_curve.png",
                       title=f"{ds.name}: {circuit.description}")
        pictures = "learning_curve.png"
        if any("/" in key for key in history[0]):   # feedback projections: their alignment
            alignment_curves(history, out / "alignment.png",
                             title=f"{ds.name}: {circuit.description}")
            pictures += ", alignment.png"
        write_json(out / "metrics.json", metrics)   # last: its presence means finished
        # finished: the last checkpoint holds the trained weights (its last evaluation
        # is the end of training); only an unfinished run keeps a checkpoint
        if checkpoint.exists():
            checkpoint.replace(out / WEIGHTS)
            pictures += f", {WEIGHTS}"
    print(f"{metric.replace('_', ' ')} {history[-1][metric]:.4f} after {len(ds.y_train)} x "
          f"{args.epochs} samples; wrote {out}/metrics.json, metrics.csv, {pictures}")
    return 0


def _sweep(args) -> int:
    from . import sweep
    out = args.out.resolve()   # the workers' working folder may be another
    if not args.table_only:
        sweep.run(_sweep_jobs(args, out), _sweep_task, _sweep_check, workers=args.workers,
                  scheduler=args.scheduler, retries=args.retries, force=args.force,
                  progress=not args.no_progress)
    result = sweep.table(out)
    for folder, error in result["failed"]:
        print(f"failed: {folder.relative_to(out)}: {error}", file=sys.stderr)
    if result["unfinished"]:
        print(f"{len(result['unfinished'])} run(s) unfinished, not in the table: "
              + ", ".join(str(f.relative_to(out)) for f in result["unfinished"]))
    print(f"wrote {', '.join(str(p) for p in result['written'])}")
    return 5 if result["failed"] else 0


def _sweep_jobs(args, out: Path) -> list:
    """Each point of the sweep ``args`` with the ``train`` options that run it:
    train's defaults, the sweep's shared options, the point's data set,
    activation, variant switches and seed, ``--out`` its folder under ``out``."""
    from neurosim.circuits import SWEEP_VARIANTS, SWITCHES, backprop_network
    from .sweep import Job, points

    own = SWEEP_VARIANTS[args.circuit]
    unknown = [v for v in args.variants if v not in own and v != "backprop"]
    if unknown:
        raise CircuitError(f"--variants: {unknown[0]!r} is not a variant of {args.circuit}; "
                           f"its variants are {', '.join(dict.fromkeys([*own, 'backprop']))}.")

    base = vars(parse(["train", "--circuit", args.circuit]))
    shared = {k: v for k, v in vars(args).items()
              if k in base and k not in ("command", "out", "force", "no_progress")}
    if shared.get("data_dir") is not None:      # the workers may run in another folder
        shared["data_dir"] = shared["data_dir"].resolve()
    # backprop of the same shape takes the shared options it has, no inference steps
    backprop = {"circuit": "backprop", "steps": 0, **{k: False for k in SWITCHES},
                **{k: None for k in OPTIONAL_PARAMETERS if not _takes(backprop_network, k)}}
    jobs = []
    for point in points(args.datasets, args.activations, args.variants, args.seeds):
        options = own.get(point.variant)
        if options is None or options.get("circuit") == "backprop":    # the generic backprop
            options = {**backprop, **(options or {})}
        train = argparse.Namespace(**{
            **base, **shared, **options,
            "dataset": point.dataset, "activation": point.activation,
            "seed": point.seed, "out": point.folder(out), "force": False, "no_progress": True})
        jobs.append(Job(point, train, _config(train)))
    return jobs


def _sweep_task(args) -> dict:
    """One sweep point, in whichever process runs it: ``train`` in-process. A named
    error (divergence, bad data, ...) is returned, not raised: a rerun would fail
    the same way, so it is not for Dask to retry."""
    from .outdir import read_json
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # train's own report: not here
            _train(args)
    except NeurosimError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    metrics = read_json(args.out / "metrics.json", "run the sweep again")
    return {k: v for k, v in metrics.items() if k.startswith("final_")}


def _sweep_check(args) -> None:
    """What ``train`` refuses before training, checked once per data set before a
    sweep submits anything."""
    _check_training_options(args)
    _settings(args, len(_dataset(args).y_train))


def _fixed_options(args) -> dict:
    """``--v-headroom``, ``--trace-headroom``: lava-fixed's options, refused elsewhere."""
    options = {k: v for k in ("v_headroom", "trace_headroom")
               if (v := getattr(args, k)) is not None}
    if options and args.target != "lava-fixed":
        raise CircuitError(f"--{next(iter(options)).replace('_', '-')} is an option of "
                           f"lava-fixed (Lava's fixed-point LIF and learning engine), not of "
                           f"{args.target}: leave it out, or use --target lava-fixed.")
    return options


def _run(args) -> int:
    from neurosim.circuits import CIRCUITS

    options = _fixed_options(args)  # refused before anything is built or written

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
    dt = float(circuit.dt)
    n_steps = max(1, int(round(args.duration / dt)))
    config = _config(args)
    with claim(args.out, config, args.force) as state:
        if state == "done":
            print(f"{args.out}: already run with these settings; use --force to run again.")
            return 0
        return _run_into(args, circuit, spiking, n_steps, config, options)


def _run_into(args, circuit, spiking, n_steps, config, options) -> int:
    from tqdm.auto import tqdm
    from neurosim.hardware_targets import make_target
    from .plots import raster, rates, weight_histogram

    dt = float(circuit.dt)
    target = make_target(args.target, circuit, seed=args.seed, **options)
    for name, how in getattr(target, "deployment", dict)().items():
        print(f"{name}: {how}")
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
        "config": config, "circuit": args.circuit, "description": circuit.description, "target": args.target,
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
    write_json(args.out / "metrics.json", metrics)
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
        if root.exists() and not root.is_dir():
            raise DataError(f"{root}: the data folder is a file, not a folder; choose "
                                 "another with --data-dir FOLDER or $NEUROSIM_DATA")
        print(f"data folder: {root}")
        for name in data.DATASETS:
            try:
                ds = data.load(name, root=args.data_dir)
                print(f"  {name}: {len(ds.y_train)} train / {len(ds.y_test)} test, verified")
            except DataError as exc:
                print(f"  {name}: {exc}")
    return 0


def _export_nir(args) -> int:
    import warnings
    from neurosim.circuits import CIRCUITS
    from neurosim.circuits.brian2_examples import EXAMPLES
    from neurosim.nir_graph import write

    if args.circuit in EXAMPLES:
        if args.scale > 1:
            raise CircuitError(f"--scale {args.scale}: give 0 < scale <= 1.")
        circuit = EXAMPLES[args.circuit][0](scale=args.scale, seed=args.seed)
    else:
        circuit = CIRCUITS[args.circuit]()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the notes are printed below
        warnings.simplefilter("ignore", UserWarning)
        graph = write(args.out, circuit, seed=args.seed, drop_refractory=args.drop_refractory)
    kinds = ", ".join(f"{k}: {type(v).__name__}" for k, v in graph.nodes.items())
    print(f"{args.out}: NIR graph of {circuit.name} ({kinds})")
    for note in filter(None, str(graph.metadata.get("neurosim_notes", "")).split("; ")):
        print(f"  note: {note}")
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    try:
        return {"train": _train, "sweep": _sweep, "run": _run, "export-nir": _export_nir,
                "data": _data}[args.command](args)
    except (CircuitError, DataError) as exc:
        return _fail(exc, 2)
    except DivergenceError as exc:
        return _fail(exc, 3)
    except OutputError as exc:
        return _fail(exc, 4)
    except OSError as exc:   # a full disk or a folder gone read-only during the run
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}; free some space or choose another "
                     "--out (the last checkpoint is kept).", 4)
    except MemoryError as exc:
        return _fail(f"out of memory{f' ({exc})' if str(exc) else ''}; choose smaller "
                     "--hidden, --batch-size, --train-size or --test-size.", 2)
    except KeyboardInterrupt as exc:
        then = ("run the same command again to resume" if args.command in ("train", "sweep")
                else "nothing was written; run the command again to start over")
        print(f"stopped{f': {exc}' if str(exc) else ''}; {then}", file=sys.stderr)
        return 130


def _fail(exc, code: int) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

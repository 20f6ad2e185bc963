"""Train and evaluate a rate circuit on a data set, on any target.

The loop is the paper's protocol (:func:`neurosim.target.train_trial` per
sample), with a tqdm progress bar, periodic evaluation on the test set,
divergence detection, and an atomic checkpoint after every evaluation so that
an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .target import DivergenceError, Target, predict, train_trial


@dataclass
class TrainSettings:
    epochs: int = 1
    steps: int = 100            # inference steps per training trial
    test_steps: int = 0         # extra inference steps at test time (after settling)
    label_off: float = 0.1      # smoothed one-hot: value on the wrong classes
    evaluations_per_epoch: int = 4
    seed: int = 0


def encode_labels(labels: np.ndarray, n_classes: int, off: float) -> np.ndarray:
    out = np.full((len(labels), n_classes), off)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def evaluate(target: Target, x: np.ndarray, y: np.ndarray, steps: int = 0,
             progress: bool = False) -> float:
    """Test accuracy: the output population's argmax against the labels."""
    correct = 0
    for xi, yi in zip(x, tqdm(y, desc="test", leave=False, disable=not progress)):
        out = predict(target, xi, steps)
        if not np.all(np.isfinite(out)):
            raise DivergenceError(f"{target.circuit.name}: the prediction became NaN or "
                                  "infinite; the run diverged.")
        correct += int(np.argmax(out) == yi)
    return correct / len(y)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: Path, target: Target, state: dict) -> None:
    arrays = {f"{p}/{v}": a for p, vs in target.get_weights().items() for v, a in vs.items()}
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    _atomic_write(path, write)


def load_checkpoint(path: Path, target: Target) -> dict:
    with np.load(path) as data:
        state = json.loads(bytes(data["__state__"]).decode())
        weights: dict = {}
        for key in data.files:
            if key != "__state__":
                proj, var = key.split("/")
                weights.setdefault(proj, {})[var] = data[key]
    target.set_weights(weights)
    return state


def fit(target: Target, dataset, settings: TrainSettings, checkpoint: Path | None = None,
        progress: bool = True) -> list[dict]:
    """Train ``target`` on ``dataset``; returns the learning curve (one dict per
    evaluation: epoch, samples seen, test accuracy, elapsed seconds)."""
    s = settings
    n = len(dataset.y_train)
    labels = encode_labels(dataset.y_train, dataset.n_classes, s.label_off)
    eval_at = set(np.linspace(0, n, s.evaluations_per_epoch + 1, dtype=int)[1:])
    state = {"epoch": 0, "index": 0, "history": [], "elapsed": 0.0}
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, target)
    else:
        acc = evaluate(target, dataset.x_test, dataset.y_test, s.test_steps)
        state["history"].append({"epoch": 0, "samples": 0, "test_accuracy": acc, "seconds": 0.0})
    total = s.epochs * n
    bar = tqdm(total=total, initial=state["epoch"] * n + state["index"], disable=not progress,
               desc="train", unit="sample")
    start = time.perf_counter() - state["elapsed"]
    for epoch in range(state["epoch"], s.epochs):
        order = np.random.default_rng([s.seed, epoch]).permutation(n)
        for i in range(state["index"], n):
            k = order[i]
            train_trial(target, dataset.x_train[k], labels[k], s.steps)
            bar.update(1)
            if i + 1 in eval_at:
                target.check_finite(f" in epoch {epoch + 1}, sample {i + 1}")
                acc = evaluate(target, dataset.x_test, dataset.y_test, s.test_steps)
                elapsed = time.perf_counter() - start
                state["history"].append({"epoch": epoch + 1, "samples": epoch * n + i + 1,
                                         "test_accuracy": acc, "seconds": round(elapsed, 2)})
                bar.set_postfix(test_accuracy=f"{acc:.3f}")
                state.update(epoch=epoch if i + 1 < n else epoch + 1,
                             index=(i + 1) % n, elapsed=elapsed)
                if checkpoint is not None:
                    save_checkpoint(checkpoint, target, state)
        state["index"] = 0
    bar.close()
    return state["history"]


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)

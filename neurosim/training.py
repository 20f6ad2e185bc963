"""Train and evaluate a rate circuit on a data set, on any target.

The loop is the paper's protocol (:func:`neurosim.target.train_trial` per
sample), with a tqdm progress bar, periodic evaluation on the test set,
divergence detection, and an atomic checkpoint after every evaluation so that
an interrupted run resumes where it stopped (Ctrl-C finishes the current
trial, writes a checkpoint and stops).
"""
from __future__ import annotations

import contextlib
import io
import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data import atomic_write_bytes
from .target import DivergenceError, Target, predict, train_trial


@dataclass
class TrainSettings:
    epochs: int = 1
    steps: int = 100            # inference steps per training trial
    test_steps: int = 0         # extra inference steps at test time (after settling)
    label_off: float = 0.1      # smoothed one-hot: value on the wrong classes
    evaluations_per_epoch: int = 4
    batch_size: int = 1         # samples per trial (targets with max_batch > 1)
    seed: int = 0


def encode_labels(labels: np.ndarray, n_classes: int, off: float) -> np.ndarray:
    out = np.full((len(labels), n_classes), off)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def evaluate(target: Target, x: np.ndarray, y: np.ndarray, steps: int = 0,
             progress: bool = False, batch: int = 1000) -> float:
    """Test accuracy: the readout's argmax against the labels (in batches where
    the target runs batches)."""
    batch = max(1, min(batch, target.max_batch))
    correct = 0
    for start in tqdm(range(0, len(y), batch), desc="test", leave=False, disable=not progress):
        xb = x[start:start + batch]
        out = predict(target, xb if batch > 1 else xb[0], steps)
        if not np.all(np.isfinite(out)):
            raise DivergenceError(f"{target.circuit.name}: the prediction became NaN or "
                                  "infinite; the run diverged.")
        correct += int(np.sum(np.argmax(np.atleast_2d(out), axis=-1) == y[start:start + batch]))
    return correct / len(y)


def save_checkpoint(path: Path, target: Target, state: dict) -> None:
    arrays = {f"{p}/{v}": a for p, vs in target.get_weights().items() for v, a in vs.items()}
    arrays.update({f"__extra__/{k}": a for k, a in target.extra_state().items()})
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, target: Target) -> dict:
    with np.load(path) as data:
        state = json.loads(bytes(data["__state__"]).decode())
        weights: dict = {}
        extra = {}
        for key in data.files:
            if key.startswith("__extra__/"):
                extra[key[len("__extra__/"):]] = data[key]
            elif key != "__state__":
                proj, var = key.split("/")
                weights.setdefault(proj, {})[var] = data[key]
    target.set_weights(weights)
    target.load_extra_state(extra)
    return state


@contextlib.contextmanager
def _deferred_interrupt():
    """Ctrl-C during a trial is held until the trial has finished, so that a
    checkpoint never holds a half-applied update. Yields a function that says
    whether an interrupt is pending."""
    pending = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, lambda *_: pending.append(True))
    try:
        yield lambda: bool(pending)
    finally:
        signal.signal(signal.SIGINT, previous)


def fit(target: Target, dataset, settings: TrainSettings, checkpoint: Path | None = None,
        progress: bool = True) -> list[dict]:
    """Train ``target`` on ``dataset``; returns the learning curve (one dict per
    evaluation: epoch, samples seen, test accuracy, elapsed seconds)."""
    s = settings
    n = len(dataset.y_train)
    labels = encode_labels(dataset.y_train, dataset.n_classes, s.label_off)
    eval_at = set(np.linspace(0, n, s.evaluations_per_epoch + 1, dtype=int)[1:])
    if s.batch_size > target.max_batch:
        raise ValueError(f"batch_size={s.batch_size}: the {target.name} target runs at most "
                         f"{target.max_batch} sample(s) at a time; use the dense target.")
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
    with _deferred_interrupt() as interrupted:
        for epoch in range(state["epoch"], s.epochs):
            order = np.random.default_rng([s.seed, epoch]).permutation(n)
            for i in range(state["index"], n, s.batch_size):
                # one sample as 1-d arrays (every target), a batch as (B, n)
                k = order[i] if s.batch_size == 1 else order[i:i + s.batch_size]
                train_trial(target, dataset.x_train[k], labels[k], s.steps)
                done = min(i + s.batch_size, n)
                bar.update(done - i)
                # after every trial: a blow-up stops the run here, before any
                # checkpoint is written, so the last one on disk is a good one
                target.check_finite(f" in epoch {epoch + 1}, batch {i // s.batch_size + 1} "
                                    f"(samples {i + 1}-{done})")
                state.update(epoch=epoch if done < n else epoch + 1, index=done % n,
                             elapsed=time.perf_counter() - start)
                if any(i < e <= done for e in eval_at):
                    acc = evaluate(target, dataset.x_test, dataset.y_test, s.test_steps)
                    state["elapsed"] = time.perf_counter() - start
                    state["history"].append({"epoch": epoch + 1, "samples": epoch * n + done,
                                             "test_accuracy": acc,
                                             "seconds": round(state["elapsed"], 2)})
                    bar.set_postfix(test_accuracy=f"{acc:.3f}")
                    if checkpoint is not None:
                        save_checkpoint(checkpoint, target, state)
                if interrupted():
                    if checkpoint is not None:
                        save_checkpoint(checkpoint, target, state)
                    bar.close()
                    raise KeyboardInterrupt(f"interrupted after {epoch * n + done} samples"
                                            + (f"; checkpoint saved to {checkpoint}"
                                               if checkpoint is not None else ""))
            state["index"] = 0
    bar.close()
    return state["history"]

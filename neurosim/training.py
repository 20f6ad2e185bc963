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
import math
import signal
import zipfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import alignment
from .circuit import check_seed
from .data import atomic_write_bytes
from .errors import CheckpointError, CircuitError, DivergenceError
from .target import Target, predict, train_trial

#: what a circuit is trained to do -> the test metric its learning curve records:
#: ``classification`` trains the output towards the (smoothed one-hot) label and
#: measures the readout's argmax against it; ``reconstruction`` trains it towards
#: the input itself (an autoencoder: the output layer as large as the input) and
#: measures the mean squared error per input element
TASKS = {"classification": "test_accuracy", "reconstruction": "test_mse"}


@dataclass
class TrainSettings:
    epochs: int = 1
    steps: int = 100            # inference steps per training trial
    test_steps: int = 0         # extra inference steps at test time (after settling)
    label_off: float = 0.1      # smoothed one-hot: value on the wrong classes
    evaluations_per_epoch: int = 4
    batch_size: int = 1         # samples per trial (targets with capabilities.batch > 1)
    seed: int = 0
    task: str = "classification"   # or "reconstruction" (TASKS)

    def check(self, n_train: int | None = None) -> "TrainSettings":
        """Refuse settings that would train nothing or report something else than
        was run, for a training set of ``n_train`` samples if given (``--option``
        names the command line's spelling)."""
        counts = {"epochs": (1, "--epochs"), "steps": (0, "--steps"),
                  "test_steps": (0, None), "evaluations_per_epoch": (1, "--evaluations"),
                  "batch_size": (1, "--batch-size")}
        for field, (low, option) in counts.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < low:
                raise CircuitError(f"TrainSettings.{field}={value!r}"
                                   + (f" ({option})" if option else "")
                                   + f": give an integer of at least {low}.")
        try:
            check_seed(self.seed)
        except CircuitError as exc:
            raise CircuitError(f"TrainSettings.{exc} (--seed)") from None
        if self.task not in TASKS:
            raise CircuitError(f"TrainSettings.task={self.task!r} (--task): choose one of "
                               f"{', '.join(TASKS)}.")
        if not (isinstance(self.label_off, (int, float)) and 0 <= self.label_off < 1):
            raise CircuitError(f"TrainSettings.label_off={self.label_off!r}: give a number in "
                               "[0, 1) (the target value of the wrong classes).")
        if n_train is not None:
            if self.batch_size > n_train:
                raise CircuitError(f"batch_size={self.batch_size} (--batch-size) is larger "
                                   f"than the {n_train} training samples; give at most "
                                   f"{n_train}.")
            batches = math.ceil(n_train / self.batch_size)
            if self.evaluations_per_epoch > batches:
                raise CircuitError(
                    f"evaluations_per_epoch={self.evaluations_per_epoch} (--evaluations): an "
                    f"epoch of {n_train} samples has {batches} batch(es) of {self.batch_size}, "
                    f"so it can be evaluated at most {batches} times.")
        return self


def encode_labels(labels: np.ndarray, n_classes: int, off: float) -> np.ndarray:
    out = np.full((len(labels), n_classes), off)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def evaluate(target: Target, x: np.ndarray, y: np.ndarray, steps: int = 0,
             progress: bool = False, batch: int = 1000, task: str = "classification") -> float:
    """The test metric of ``task`` (:data:`TASKS`), in batches where the target
    runs batches: for classification the accuracy of the readout's argmax against
    the labels ``y``; for reconstruction the mean squared error of the readout
    against the input ``x`` (``y`` unused)."""
    batch = max(1, min(batch, target.capabilities.batch))
    total = 0.0
    for start in tqdm(range(0, len(x), batch), desc="test", leave=False, disable=not progress):
        xb = x[start:start + batch]
        out = np.atleast_2d(predict(target, xb if batch > 1 else xb[0], steps))
        if not np.all(np.isfinite(out)):
            raise DivergenceError(f"{target.circuit.name}: the prediction became NaN or "
                                  "infinite; the run diverged.")
        if task == "reconstruction":
            total += float(np.sum((out - xb.reshape(out.shape)) ** 2)) / xb[0].size
        else:
            total += int(np.sum(np.argmax(out, axis=-1) == y[start:start + batch]))
    return total / len(x)


def save_checkpoint(path: Path, target: Target, state: dict) -> None:
    arrays = {f"{p}/{v}": a for p, vs in target.get_weights().items() for v, a in vs.items()}
    arrays.update({f"__extra__/{k}": a for k, a in target.extra_state().items()})
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, target: Target, record=None) -> dict:
    """Restore ``target`` from ``path``; returns the loop state. A damaged file, or
    one whose parameters, state or ``record`` (the settings saved with it) do not
    fit, raises :class:`CheckpointError` naming the file, and the target is left
    as it was."""
    fix = "delete it (or pass --force) to start the run over"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        state = json.loads(bytes(arrays.pop("__state__")).decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is damaged or not a neurosim checkpoint "
                              f"({type(exc).__name__}: {exc}); {fix}.") from None
    expected = target.get_weights()
    weights: dict = {}
    extra = {}
    for key, value in arrays.items():
        if key.startswith("__extra__/"):
            extra[key[len("__extra__/"):]] = value
            continue
        proj, _, var = key.partition("/")
        want = expected.get(proj, {}).get(var)
        if want is None or value.shape != want.shape or not np.all(np.isfinite(value)):
            raise CheckpointError(
                f"checkpoint {path}: {key} " + ("is not a parameter of this circuit"
                                                if want is None else
                                                f"has shape {value.shape}, the circuit's is "
                                                f"{want.shape}" if value.shape != want.shape
                                                else "holds NaN or infinite values")
                + f"; it was made by another circuit or is damaged: {fix}.")
        weights.setdefault(proj, {})[var] = value
    missing = [f"{p}/{v}" for p, vs in expected.items() for v in vs
               if v not in weights.get(p, {})]
    ok = isinstance(state, dict) and all(
        isinstance(state.get(k), int) and state[k] >= 0 for k in ("epoch", "index")) \
        and isinstance(state.get("history"), list) \
        and isinstance(state.get("elapsed"), (int, float))
    if missing or not ok:
        raise CheckpointError(f"checkpoint {path} lacks "
                              + (", ".join(missing) if missing else "a valid loop state")
                              + f"; {fix}.")
    if record is not None and not _continues(state.get("record"), record):
        raise CheckpointError(f"checkpoint {path} was made with other settings "
                              f"({state.get('record')!r}); resume with those, or {fix}.")
    target.set_weights(weights)
    target.load_extra_state(extra)
    return state


def _continues(saved, record) -> bool:
    """Whether a checkpoint saved with ``saved`` goes on in a run of ``record``: the
    same settings, but for a larger epoch budget (fit checks the position)."""
    if isinstance(saved, dict) and isinstance(record, dict):
        saved, record = ({k: v for k, v in r.items() if k != "epochs"} for r in (saved, record))
    return saved == record


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
        progress: bool = True, record=None) -> list[dict]:
    """Train ``target`` on ``dataset``; returns the learning curve (one dict per
    evaluation: epoch, samples seen, the task's test metric (``test_accuracy`` or
    ``test_mse``, :data:`TASKS`), elapsed seconds, and for a
    circuit with feedback projections their :mod:`neurosim.alignment` measures,
    of the last training trial before the evaluation).

    ``record`` (JSON-able, e.g. the command line's settings) is saved in every
    checkpoint, and a checkpoint is resumed only with the same ``record``."""
    n = len(dataset.y_train)
    s = settings.check(n)
    batches = math.ceil(n / s.batch_size)
    metric = TASKS[s.task]
    if s.task == "reconstruction":      # the input is the target
        size, want = target.circuit.population(target.circuit.output[0]).n, \
            dataset.x_train[0].size
        if size != want:
            raise CircuitError(f"task 'reconstruction' (--task): the output population "
                               f"{target.circuit.output[0]!r} has {size} neurons and "
                               f"{dataset.name}'s inputs {want} elements; make the last layer "
                               f"as large as the input ({want}).")
        labels = dataset.x_train
    else:
        labels = encode_labels(dataset.y_train, dataset.n_classes, s.label_off)
    # evaluate after these batches of each epoch (distinct, as there are at least as many)
    eval_at = set(np.linspace(0, batches, s.evaluations_per_epoch + 1, dtype=int)[1:])
    if s.batch_size > target.capabilities.batch:
        from neurosim.hardware_targets import having
        able = having(lambda caps: caps.batch >= s.batch_size)
        raise CircuitError(f"batch_size={s.batch_size}: the {target.name} target runs at most "
                           f"{target.capabilities.batch} sample(s) at a time; use a target "
                           f"that runs batches: {', '.join(able) or 'none is registered'}.")
    state = {"epoch": 0, "index": 0, "history": [], "elapsed": 0.0, "record": record}
    feedback = alignment.pairs(target.circuit)   # feedback projections: their alignment
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, target, record)
        if state["epoch"] > s.epochs or state["index"] >= n or (
                state["epoch"] == s.epochs and state["index"]):
            raise CheckpointError(f"checkpoint {checkpoint} stopped at epoch "
                                  f"{state['epoch']}, sample {state['index']}, outside this "
                                  f"run ({s.epochs} epoch(s) of {n} samples); delete it (or "
                                  "pass --force) to start the run over.")
    else:
        aligned = alignment.measures(target, trained=False, found=feedback)
        acc = evaluate(target, dataset.x_test, dataset.y_test, s.test_steps, task=s.task)
        state["history"].append({"epoch": 0, "samples": 0, metric: acc, "seconds": 0.0,
                                 **aligned})
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
                if i // s.batch_size + 1 in eval_at:
                    aligned = alignment.measures(target, found=feedback)  # before the test
                    acc = evaluate(target, dataset.x_test, dataset.y_test, s.test_steps,
                                   task=s.task)
                    state["elapsed"] = time.perf_counter() - start
                    state["history"].append({"epoch": epoch + 1, "samples": epoch * n + done,
                                             metric: acc,
                                             "seconds": round(state["elapsed"], 2), **aligned})
                    bar.set_postfix({metric: f"{acc:.4g}"})
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

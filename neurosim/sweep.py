"""Grids of training runs (``neurosim sweep``) as tasks on Dask distributed.

A sweep is the product data sets x activations x variants x seeds of
``neurosim train`` runs of the relaxed-pc circuit that share every other
option. Each point is one train run in its own folder::

    <out>/<dataset>/<activation>/<variant>/seed<k>/

holding exactly what ``neurosim train --out`` that folder writes (same
settings, same ``config.json``/``metrics.json``), so every guarantee of the
train command holds per point: files are written atomically, a finished point
(``metrics.json`` with the same settings) is skipped, an unfinished one resumes
from its checkpoint. The sweep adds only the scheduling: the points run as Dask
tasks (a ``LocalCluster`` of worker processes by default, or an existing cluster
given its scheduler's address), a task whose worker dies is run again on
another worker (and resumes from the checkpoint the dead one left), and a point
that fails is written down as ``failed.json`` with its error instead of
stopping the others.

:func:`table` reads only the run folders, so the table and figures can be
remade at any time (``neurosim sweep --table-only``), whatever ran the points.
The train command itself is handed in by the command line (:func:`run`'s
``task`` and ``check``), so that this module does not import it back.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data import atomic_write_bytes
from .errors import CircuitError, OutputError
from .outdir import _state, check_writable, read_json, write_json

FAILED = "failed.json"   # a point that failed: its settings and error (the table lists it)
TABLE = "table.csv"
COLUMNS = ("dataset", "activation", "variant", "epoch", "seeds", "mean_test_accuracy",
           "std_test_accuracy", "failed_seeds", "errors", "metric", "mean_test_mse",
           "std_test_mse")


@dataclass(frozen=True)
class Point:
    dataset: str
    activation: str
    variant: str
    seed: int

    def folder(self, out: Path) -> Path:
        return Path(out) / self.dataset / self.activation / self.variant / f"seed{self.seed}"

    def __str__(self) -> str:
        return f"{self.dataset}/{self.activation}/{self.variant}/seed{self.seed}"


def points(datasets, activations, variants, seeds) -> list[Point]:
    """The grid, in a fixed order (data set, activation, variant, seed)."""
    return [Point(*p) for p in itertools.product(datasets, activations, variants, seeds)]


@dataclass
class Job:
    """A point with the ``neurosim train`` options that run it (``args``, an
    ``argparse.Namespace``; sent to the worker) and the settings its folder is
    compared against (``config``, as train records it)."""
    point: Point
    args: argparse.Namespace
    config: dict


def run(jobs: list[Job], task, check, workers: int = 2, scheduler: str | None = None,
        retries: int = 2, force: bool = False,
        progress: bool = True) -> list[tuple[Point, str]]:
    """Run the unfinished points of ``jobs``; returns the failed ones with their
    errors (each also written to its folder's failed.json).

    ``task(args)`` runs one point wherever it is called and returns a dict, with
    ``"error"`` for a point that failed in a way a rerun would repeat; it must be
    a module-level function (a Dask worker imports it by name). ``check(args)``
    raises the named error of options that cannot run, before anything is
    submitted: it is called once per data set, so that a mistake stops the sweep
    instead of failing every task. Folders holding other settings stop it too
    (:class:`OutputError`), unless ``force``, which retrains those points.

    ``scheduler`` (an address) runs the tasks on that Dask cluster; else
    ``workers`` > 0 starts a LocalCluster of that many single-threaded processes,
    and ``workers`` = 0 runs the points one after the other in this process,
    without Dask."""
    if not jobs:
        return []
    check_writable(jobs[0].args.out.parents[3])      # <out>, above the point's folders
    todo = []
    for job in jobs:
        try:
            state = _state(job.args.out, job.config, False) if job.args.out.exists() else "new"
        except OutputError as exc:
            if not force:
                raise OutputError(f"sweep point {job.point}: {exc}") from None
            job.args.force, state = True, "new"
        if state != "done":
            todo.append(job)
    checked = set()
    for job in todo:
        if job.point.dataset not in checked:
            check(job.args)
            checked.add(job.point.dataset)
    where = (f"the Dask cluster of {scheduler}" if scheduler else
             f"a LocalCluster of {workers} worker processes" if workers else
             "this process, one after the other")
    print(f"{len(jobs)} runs: {len(jobs) - len(todo)} already finished (skipped), "
          f"{len(todo)} to run on {where}", flush=True)
    if not todo:
        return []
    failed = []

    def finish(job, result):
        if "error" in result:
            failed.append((job.point, result["error"]))
            write_json(job.args.out / FAILED, {"config": job.config, "error": result["error"]})
        else:
            (job.args.out / FAILED).unlink(missing_ok=True)

    bar = dict(total=len(todo), desc="sweep", unit="run", disable=not progress)
    if not scheduler and workers == 0:
        for job in tqdm(todo, **bar):
            finish(job, _attempt(lambda: task(job.args), job.args))
        return failed
    from distributed import as_completed
    with _client(workers, scheduler, retries) as client:
        client.register_plugin(_import_circuits_plugin())
        # in the grid's order: a higher priority runs first (on a LocalCluster; an
        # existing cluster's scheduler may queue them otherwise)
        futures = {client.submit(task, job.args, key=_key(job), pure=False, retries=retries,
                                 priority=len(todo) - i): job for i, job in enumerate(todo)}
        for future in tqdm(as_completed(futures), **bar):
            job = futures[future]
            finish(job, _attempt(future.result, job.args))
    return failed


def _attempt(call, args) -> dict:
    """``call()``, or its error after Dask's retries (a worker killed too often
    is ``KilledWorker``): the point fails, the sweep goes on."""
    try:
        return call()
    except (Exception, asyncio.CancelledError) as exc:   # recorded in failed.json, the table
        args.out.mkdir(parents=True, exist_ok=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _key(job: Job) -> str:
    """A stable task key: the point and a digest of its settings (two sweeps of
    other settings on one cluster never share a key)."""
    digest = hashlib.sha256(json.dumps(job.config, sort_keys=True).encode()).hexdigest()
    return f"neurosim-train-{str(job.point).replace('/', '-')}-{digest[:12]}"


def _import_circuits_plugin():
    """A worker plugin that imports the circuit library when a worker starts
    (and when a killed one is replaced). Brian2 installs a SIGINT handler when it
    is imported, which only a main thread may do, and tasks run in the worker's
    other threads: imported there first, it would fail every task."""
    from distributed import WorkerPlugin

    class ImportCircuits(WorkerPlugin):
        name = "neurosim-import-circuits"

        def setup(self, worker):
            import neurosim.circuits  # noqa: F401

    return ImportCircuits()


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None, retries: int):
    import dask
    from distributed import Client, LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise CircuitError(f"--scheduler {scheduler}: no Dask scheduler answers there "
                               f"({type(exc).__name__}: {exc}); give the address the "
                               "scheduler prints (e.g. tcp://host:8786), or leave --scheduler "
                               "out to run on a LocalCluster on this machine.") from None
        with client:
            yield client
        return
    # a task is given up after its worker died more than --retries times; tasks go to
    # the workers at once (no scheduler-side queue, which ignores their priorities),
    # so they run in the grid's order, and work stealing balances the workers
    with dask.config.set({"distributed.scheduler.allowed-failures": retries,
                          "distributed.scheduler.worker-saturation": float("inf")}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    with cluster, Client(cluster) as client:
        yield client


def seed_curves(folder: Path) -> dict:
    """Column -> (epochs, seeds) array, from the ``metrics.csv`` of every finished
    ``seed<k>`` run under ``folder`` (one variant of a sweep): the last evaluation
    of each epoch (epoch 0 is before training), cut to the epochs every seed has
    reached; blank cells (a measure undefined there) are NaN. Empty without runs."""
    runs = []
    for path in sorted(Path(folder).glob("seed*/metrics.json")):
        with open(path.with_name("metrics.csv"), newline="") as f:
            last = {int(r["epoch"]): r for r in csv.DictReader(f)}
        runs.append([last[e] for e in sorted(last)])
    if not runs:
        return {}
    n = min(len(r) for r in runs)
    keys = [k for k in runs[0][0] if k not in ("epoch", "samples", "seconds")]
    return {k: np.array([[np.nan if r[e][k] == "" else float(r[e][k]) for r in runs]
                         for e in range(n)]) for k in keys}


def table(out: Path) -> dict:
    """Rewrite ``out/table.csv`` and ``out/<dataset>.png`` from the run folders
    under ``out`` alone. Returns ``rows`` (one per data set, activation, variant
    and epoch: the test metric at the end of that epoch, mean and std over the
    finished seeds, as ``mean_<metric>``/``std_<metric>``, ``metric`` naming it:
    ``test_accuracy``, or ``test_mse`` for reconstruction; epoch 0 is before
    training), ``failed`` ((folder, error) of
    the points with a failed.json), ``unfinished`` (folders with neither result)
    and ``written`` (the files)."""
    from neurosim.circuits import VARIANTS
    from .plots import METRICS, sweep_curves

    out = Path(out)
    folders = sorted((p for p in out.glob("*/*/*/seed*") if p.is_dir() and p.name[4:].isdigit()),
                     key=lambda p: (*p.relative_to(out).parts[:3], int(p.name[4:])))
    if not folders:
        raise OutputError(f"--out {out} holds no sweep runs (<dataset>/<activation>/<variant>/"
                          "seed<k>/ folders); run the sweep first, or give the --out of one.")
    groups, failed, unfinished = {}, [], []
    for folder in folders:
        dataset, activation, variant = folder.relative_to(out).parts[:3]
        group = groups.setdefault((dataset, activation, variant),
                                  {"acc": [], "errors": [], "metric": "test_accuracy"})
        fix = f"delete {folder} and run the sweep again"
        if (folder / "metrics.json").exists():
            metrics = read_json(folder / "metrics.json", fix)
            try:   # the last evaluation of each epoch is the one at its end
                history = metrics["history"]
                group["metric"] = next(m for m in METRICS if m in history[0])
                group["acc"].append({h["epoch"]: h[group["metric"]] for h in history})
            except (KeyError, TypeError, IndexError, StopIteration):
                raise OutputError(f"{folder / 'metrics.json'} has no learning curve (history "
                                  f"of epoch and {' or '.join(METRICS)}); {fix}.") from None
        elif (folder / FAILED).exists():
            error = str(read_json(folder / FAILED, fix).get("error"))
            failed.append((folder, error))
            group["errors"].append(f"{folder.name}: {error}")
        else:
            unfinished.append(folder)
    order = {name: i for i, name in enumerate(VARIANTS)}
    rows = []
    for (dataset, activation, variant), group in sorted(
            groups.items(), key=lambda kv: (*kv[0][:2], order.get(kv[0][2], len(order)),
                                            kv[0][2])):
        metric = group["metric"]
        common = {"dataset": dataset, "activation": activation, "variant": variant,
                  "failed_seeds": len(group["errors"]), "errors": " | ".join(group["errors"]),
                  "metric": metric, **{f"{s}_{m}": None for m in METRICS
                                       for s in ("mean", "std")}}
        epochs = sorted({e for acc in group["acc"] for e in acc})
        if not epochs and group["errors"]:
            rows.append({**common, "epoch": None, "seeds": 0})
        for epoch in epochs:
            values = np.array([acc[epoch] for acc in group["acc"] if epoch in acc])
            rows.append({**common, "epoch": epoch, "seeds": len(values),
                         # population std over seeds, as benchmarks/reproduce_relaxed_pc.py
                         f"mean_{metric}": float(values.mean()),
                         f"std_{metric}": float(values.std())})
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: ("" if r[k] is None else f"{r[k]:.6f}" if isinstance(r[k], float)
                          else r[k]) for k in COLUMNS} for r in rows)
    atomic_write_bytes(out / TABLE, text.getvalue().encode())
    written = [out / TABLE]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        curves = [r for r in rows if r["dataset"] == dataset and r["epoch"] is not None]
        if curves:
            sweep_curves(curves, out / f"{dataset}.png", title=dataset)
            written.append(out / f"{dataset}.png")
    return {"rows": rows, "failed": failed, "unfinished": unfinished, "written": written}

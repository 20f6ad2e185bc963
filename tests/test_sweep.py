"""`neurosim sweep`: a grid of train runs on Dask gives the table of a serial run, even
when a worker is killed mid-task; finished runs are skipped; bad grids are named errors.

Digits (no download) on the dense target (deterministic for a seed), tiny sizes.
"""
import csv
import json
import os
import shutil
import signal
import threading
import time

import pytest

from neurosim.cli import main

pytest.importorskip("distributed")

# 2 variants x 2 seeds, one epoch; each run lasts long enough (about a second) for the
# kill test to catch one between its first checkpoint and its end
GRID = ["sweep", "--datasets", "digits", "--variants", "standard,learned_errors",
        "--seeds", "0-1", "--epochs", "1", "--train-size", "600", "--test-size", "50",
        "--hidden", "8", "--steps", "40", "--evaluations", "4", "--target", "dense",
        "--no-progress"]
# one quick run, for the tests of what the sweep does around the runs
ONE = ["sweep", "--datasets", "digits", "--variants", "standard", "--seeds", "0",
       "--train-size", "40", "--test-size", "20", "--hidden", "8", "--steps", "5",
       "--evaluations", "2", "--target", "dense", "--no-progress"]
POINTS = [f"digits/relu/{v}/seed{s}" for v in ("standard", "learned_errors") for s in (0, 1)]


def accuracies(out):
    return {p: [h["test_accuracy"] for h in
                json.loads((out / p / "metrics.json").read_text())["history"]] for p in POINTS}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The grid run point after point in this process (--workers 0, no Dask)."""
    out = tmp_path_factory.mktemp("sweep") / "serial"
    assert main(GRID + ["--workers", "0", "--out", str(out)]) == 0
    return out


def test_serial_sweep_writes_the_table_and_figure(serial):
    lines = (serial / "table.csv").read_text().splitlines()
    assert lines[0] == ("dataset,activation,variant,epoch,seeds,mean_test_accuracy,"
                        "std_test_accuracy,failed_seeds,errors,metric,mean_test_mse,std_test_mse")
    assert all(row.split(",")[-3:] == ["test_accuracy", "", ""] for row in lines[1:])
    # one row per variant and epoch (0 = before training, 1), both seeds in each
    assert [row.split(",")[:5] for row in lines[1:]] == [
        ["digits", "relu", v, e, "2"] for v in ("standard", "learned_errors") for e in "01"]
    assert (serial / "digits.png").read_bytes()[:4] == b"\x89PNG"
    acc = accuracies(serial)
    assert acc[POINTS[0]] != acc[POINTS[1]]           # the seeds differ: a real mean and std


def test_localcluster_gives_the_serial_table(tmp_path, serial, capsys):
    out = tmp_path / "cluster"
    assert main(GRID + ["--workers", "2", "--out", str(out)]) == 0
    assert "to run on a LocalCluster of 2 worker processes" in capsys.readouterr().out
    assert accuracies(out) == accuracies(serial)
    assert (out / "table.csv").read_text() == (serial / "table.csv").read_text()


def test_points_run_in_the_grid_order(tmp_path):
    """One worker runs the points in the order the grid lists them (its variants as
    given, then seeds), so the points a user names first finish first."""
    out = tmp_path / "order"
    grid = [a if a != "standard" else "learned_errors,standard" for a in ONE]
    grid = [a if a != "0" else "0-2" for a in grid]
    assert main(grid + ["--workers", "1", "--out", str(out)]) == 0
    finished = sorted(out.glob("digits/relu/*/seed*/metrics.json"), key=lambda p: p.stat().st_mtime_ns)
    assert [str(p.parent.relative_to(out / "digits/relu")) for p in finished] == \
        [f"{v}/seed{k}" for v in ("learned_errors", "standard") for k in range(3)]


def _running_point(client, out, deadline):
    """(folder, pid) of a run that a worker is processing and that has written its
    first checkpoint (so the rerun resumes from it): the pid is in the run's lock."""
    while time.monotonic() < deadline:
        processing = client.processing()
        busy = {pid for address, pid in client.run(os.getpid).items()
                if processing.get(address)}
        for folder in out.glob("*/*/*/seed*"):
            if (folder / "checkpoint.npz").exists() and not (folder / "metrics.json").exists():
                lock = (folder / ".lock").read_text().split()
                if len(lock) > 1 and int(lock[1]) in busy:
                    return folder, int(lock[1])
        time.sleep(0.01)
    raise AssertionError("no run was caught between its first checkpoint and its end")


def test_killed_worker_task_is_rerun_and_the_table_is_the_serial_one(tmp_path, serial):
    from distributed import Client, LocalCluster
    out = tmp_path / "killed"
    code = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        sweep = threading.Thread(target=lambda: code.update(rc=main(
            GRID + ["--scheduler", cluster.scheduler_address, "--out", str(out)])))
        sweep.start()
        folder, pid = _running_point(client, out, time.monotonic() + 60)
        os.kill(pid, signal.SIGKILL)
        sweep.join(120)
        assert not sweep.is_alive()
        assert pid not in client.run(os.getpid).values()      # the worker was replaced
    assert code["rc"] == 0
    assert accuracies(out) == accuracies(serial)
    assert (out / "table.csv").read_text() == (serial / "table.csv").read_text()
    metrics = json.loads((folder / "metrics.json").read_text())
    # the rerun resumed from the killed run's checkpoint: its session trained only the rest
    assert metrics["history"][-1]["seconds"] > metrics["seconds_this_session"] + 0.02


def test_finished_runs_are_skipped(tmp_path, serial, capsys):
    out = tmp_path / "again"
    shutil.copytree(serial, out)
    stamps = {p: (out / p / "metrics.json").stat().st_mtime_ns for p in POINTS}
    capsys.readouterr()
    assert main(GRID + ["--out", str(out)]) == 0        # the default LocalCluster: not started
    assert "4 runs: 4 already finished (skipped), 0 to run" in capsys.readouterr().out
    assert {p: (out / p / "metrics.json").stat().st_mtime_ns for p in POINTS} == stamps
    (out / POINTS[3] / "metrics.json").unlink()
    assert main(GRID + ["--workers", "0", "--out", str(out)]) == 0
    assert "4 runs: 3 already finished (skipped), 1 to run" in capsys.readouterr().out
    assert {p: (out / p / "metrics.json").stat().st_mtime_ns for p in POINTS[:3]} == \
        {p: stamps[p] for p in POINTS[:3]}
    assert accuracies(out) == accuracies(serial)
    (out / "table.csv").unlink()
    (out / "digits.png").unlink()
    assert main(GRID + ["--table-only", "--out", str(out)]) == 0   # from the files alone
    assert (out / "table.csv").read_text() == (serial / "table.csv").read_text()
    assert (out / "digits.png").exists()


BAD = [
    (["--variants", "standard,bogus"], "argument --variants: 'bogus' is not a known variant; "
                                       "choose from standard, learned_feedback"),
    (["--variants", ","], "give one or more variants"),
    (["--variants", "standard,standard"], "lists standard more than once"),
    (["--datasets", "cifar"], "'cifar' is not a known data set; choose from mnist"),
    (["--activations", "swish"], "'swish' is not a known activation; choose from linear"),
    (["--seeds", "3-1"], "'3-1': a range goes from low to high, e.g. 1-3"),
    (["--seeds", "0-2,1"], "lists 1 more than once"),
    (["--seeds", "a"], "argument --seeds: 'a': give an integer in [0, 4294967295]"),
    (["--seeds", "0-"], "give seeds as integers and ranges"),
    (["--seeds", str(2**32)], "out of range"),
    (["--workers", "-1"], "argument --workers: '-1' is out of range: give an integer in [0, inf)"),
    (["--retries", "x"], "argument --retries"),
    (["--epochs", "0"], "argument --epochs"),
    (["--steps", "-1"], "argument --steps"),
]


@pytest.mark.parametrize("extra,words", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_grid_value_is_a_named_error(tmp_path, capsys, extra, words):
    with pytest.raises(SystemExit) as exc:
        main(ONE + extra + ["--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_options_that_cannot_run_stop_the_sweep_before_it_starts(tmp_path, capsys):
    for extra, words in ((["--evaluations", "41"], "evaluated at most 40 times"),
                         (["--train-size", "5000"], "give at most 1347"),
                         (["--target", "brian2-numpy", "--float32"], "--float32 needs")):
        assert main(ONE + extra + ["--out", str(tmp_path / "o")]) == 2
        assert words in capsys.readouterr().err
        assert not list(tmp_path.glob("o/*/*/*/seed0/*.json"))
    assert main(ONE + ["--table-only", "--out", str(tmp_path / "none")]) == 4
    assert "holds no sweep runs" in capsys.readouterr().err


def test_other_settings_stop_the_sweep_unless_force(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(ONE + ["--workers", "0", "--out", str(out)]) == 0
    assert main(ONE + ["--steps", "6", "--workers", "0", "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert "sweep point digits/relu/standard/seed0" in err and "steps 5 -> 6" in err
    assert main(ONE + ["--steps", "6", "--workers", "0", "--force", "--out", str(out)]) == 0
    config = json.loads((out / "digits/relu/standard/seed0/metrics.json").read_text())["config"]
    assert config["steps"] == 6


def test_failed_run_is_in_the_table_and_the_exit_code(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(ONE + ["--learning-rate", "1e30", "--seeds", "0-1", "--workers", "0",
                       "--out", str(out)]) == 5
    assert "failed: digits/relu/standard/seed0: DivergenceError" in capsys.readouterr().err
    (row,) = csv.DictReader((out / "table.csv").open())   # one row: no epoch, no seed done
    assert (row["variant"], row["epoch"], row["seeds"], row["mean_test_accuracy"],
            row["failed_seeds"]) == ("standard", "", "0", "", "2")
    assert row["errors"].startswith("seed0: DivergenceError") and "seed1: " in row["errors"]
    assert json.loads((out / "digits/relu/standard/seed1/failed.json").read_text())[
        "config"]["seed"] == 1
    assert main(ONE + ["--table-only", "--out", str(out)]) == 5     # still failed, from files


def test_each_circuit_sweeps_its_own_variants(tmp_path, capsys):
    """node-perturbation's variants are its feedback modes (its backprop the same
    circuit with reciprocal feedback), brainprop's backprop is the backprop
    network with a softmax output (the paper's); a variant of another circuit is refused."""
    from neurosim.cli import _sweep_jobs, parse
    args = parse(["sweep", "--circuit", "node-perturbation", "--variants",
                  "node_perturbation,feedback_alignment,backprop", "--activations", "sigmoid"])
    jobs = {j.point.variant: j.args for j in _sweep_jobs(args, tmp_path)}
    assert {v: (a.circuit, a.feedback) for v, a in jobs.items()} == {
        "node_perturbation": ("node-perturbation", "perturbation"),
        "feedback_alignment": ("node-perturbation", "fixed"),
        "backprop": ("node-perturbation", "reciprocal")}
    assert all(a.hidden == (50, 20) and a.batch_size == 32 for a in jobs.values())
    assert parse(["sweep", "--circuit", "brainprop"]).variants == ("brainprop",)
    args = parse(["sweep", "--circuit", "brainprop", "--variants", "learned_feedback,backprop"])
    jobs = {j.point.variant: j.args for j in _sweep_jobs(args, tmp_path)}
    assert jobs["learned_feedback"].learned_feedback and jobs["backprop"].circuit == "backprop"
    assert jobs["backprop"].output_activation == "softmax" and jobs["backprop"].epsilon is None
    assert main(["sweep", "--circuit", "brainprop", "--variants", "fully_relaxed",
                 "--out", str(tmp_path / "x"), "--workers", "0"]) == 2
    assert "'fully_relaxed' is not a variant of brainprop" in capsys.readouterr().err

"""The command line end to end on scikit-learn's digits (no download)."""
import json

import pytest

from neurosim.cli import build_parser, main

ARGS = ["train", "--dataset", "digits", "--train-size", "60", "--test-size", "30",
        "--hidden", "12", "--steps", "10", "--evaluations", "2", "--target", "brian2-numpy",
        "--no-progress"]
DENSE = [a if a != "brian2-numpy" else "dense" for a in ARGS]  # the CLI's logic, fast


def test_train_writes_metrics_and_skips_when_done(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(ARGS + ["--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sizes"] == [64, 12, 10]
    assert metrics["train_samples"] == 60 and metrics["test_samples"] == 30
    assert [h["samples"] for h in metrics["history"]] == [0, 30, 60]
    assert 0.0 <= metrics["final_test_accuracy"] <= 1.0
    assert (out / "metrics.csv").read_text().startswith("epoch,samples,test_accuracy")
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "checkpoint.npz").exists()          # finished runs keep no checkpoint
    assert (out / "weights.npz").exists()                 # but their trained weights
    capsys.readouterr()
    mtime = (out / "metrics.json").stat().st_mtime_ns
    assert main(ARGS + ["--out", str(out)]) == 0
    assert "already trained" in capsys.readouterr().out
    assert (out / "metrics.json").stat().st_mtime_ns == mtime


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--circuit", "--learned-feedback", "--no-fprime", "--learned-errors",
                   "--fully-relaxed", "--fixed-random-feedback", "--activation", "--dataset",
                   "--train-size", "--epochs", "--target", "--seed", "--out"):
        assert option in text


def test_bad_idx_folder_is_a_clear_error(tmp_path, capsys):
    assert main(ARGS + ["--idx-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err


def test_batched_dense_training_and_clear_option_errors(tmp_path, capsys):
    out = tmp_path / "dense"
    assert main(DENSE + ["--batch-size", "8", "--optimizer", "adam", "--float32",
                         "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["batch_size"] == 8
    assert main(ARGS + ["--batch-size", "8", "--out", str(tmp_path / "x")]) == 2
    assert "--batch-size 8 needs a target that runs batches of that size: dense" \
        in capsys.readouterr().err
    for option in ("--optimizer adam", "--float32"):  # read from the registry's capabilities
        assert main(ARGS + option.split() + ["--out", str(tmp_path / "x")]) == 2
        assert f"{option} needs a target that " in capsys.readouterr().err
    assert main(ARGS + ["--circuit", "backprop", "--no-fprime", "--out", str(tmp_path / "y")]) == 2
    assert "applies to relaxed-pc" in capsys.readouterr().err


def test_unfinished_run_with_other_settings_is_not_resumed(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"seed": 99}')
    (out / "checkpoint.npz").write_bytes(b"")
    assert main(ARGS + ["--out", str(out)]) == 4
    assert "other settings" in capsys.readouterr().err


def test_finished_run_is_redone_with_other_settings_only_with_force(tmp_path):
    out = tmp_path / "run"
    assert main(DENSE + ["--out", str(out)]) == 0
    assert main(DENSE + ["--seed", "1", "--out", str(out)]) == 4
    assert main(DENSE + ["--seed", "1", "--force", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


@pytest.mark.parametrize("finished,backend", [(True, "numpy"), (False, "numpy"),
                                              (False, "jax")])
def test_more_epochs_continue_a_run_to_where_a_longer_run_ends(tmp_path, capsys, finished,
                                                               backend):
    """--epochs 3 on a run of 1 epoch (finished: from its weights.npz; or stopped at
    its checkpoint) goes on from there and ends exactly where a 3-epoch run from
    the start ends: the same weights and learning curve, on either backend of
    the dense engine. Fewer epochs than a finished run are other settings (exit
    4). Another backend is the same finished run, but does not continue it; the
    default one is not recorded (runs made before --backend existed are the
    same settings)."""
    import numpy as np
    DENSE = globals()["DENSE"] + ["--backend", backend]
    short, full = tmp_path / "short", tmp_path / "full"
    assert main(DENSE + ["--epochs", "1", "--out", str(short)]) == 0
    if not finished:       # as a run of 1 epoch that was stopped at its last checkpoint
        (short / "weights.npz").replace(short / "checkpoint.npz")
        (short / "metrics.json").unlink()
    assert main(DENSE + ["--epochs", "3", "--out", str(short)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert main(DENSE + ["--epochs", "3", "--out", str(full)]) == 0
    got, want = (json.loads((f / "metrics.json").read_text()) for f in (short, full))
    assert [h["epoch"] for h in got["history"]] == [0, 1, 1, 2, 2, 3, 3]
    for g, w in zip(got["history"], want["history"]):
        assert (g["samples"], g["test_accuracy"]) == (w["samples"], w["test_accuracy"])
    with np.load(short / "weights.npz") as a, np.load(full / "weights.npz") as b:
        weights = [k for k in b.files if not k.startswith("__")]
        assert weights and all(np.array_equal(a[k], b[k]) for k in weights)
    assert json.loads((short / "config.json").read_text())["epochs"] == 3
    assert main(DENSE + ["--epochs", "2", "--out", str(short)]) == 4
    assert "epochs 3 -> 2" in capsys.readouterr().err
    config = json.loads((short / "config.json").read_text())
    assert config.get("backend", "numpy") == backend and ("backend" in config) == (
        backend != "numpy")
    other = "numpy" if backend == "jax" else "jax"   # how, not what: the run is done
    assert main(DENSE + ["--epochs", "3", "--backend", other, "--out", str(short)]) == 0
    assert "already trained" in capsys.readouterr().out
    # but it continues only on its own backend (whose random streams it holds)
    assert main(DENSE + ["--epochs", "4", "--backend", other, "--out", str(short)]) == 4
    assert "backend" in capsys.readouterr().err


def test_train_offers_only_rate_circuits(capsys):
    """Spiking circuits have their own protocols; `train` refuses them by name."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "--circuit", "song-abbott-stdp", "--out", "unused"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "relaxed-pc" in err

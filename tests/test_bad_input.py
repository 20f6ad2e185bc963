"""Bad command-line input: every probe ends in a named error with a documented exit
code (2 bad input, 3 diverged, 4 output folder), never a traceback or a silently
wrong result. The README's table of bad inputs is checked against this module."""
import errno
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurosim.outdir as outdir
import neurosim.training as training
from neurosim import data
from neurosim.circuit import CircuitError
from neurosim.circuits import relaxed_predictive_coding
from neurosim.cli import EXIT_CODES, build_parser, main
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.training import CheckpointError, TrainSettings, fit

ARGS = ["train", "--dataset", "digits", "--train-size", "40", "--test-size", "20",
        "--hidden", "8", "--steps", "5", "--evaluations", "2", "--target", "dense",
        "--no-progress"]
RUN = ["run", "song-abbott-stdp", "--duration", "0.02", "--target", "brian2-numpy",
       "--no-progress"]

# (option, value, words the message must hold): refused by argparse, exit 2
OPTIONS = [
    ("--epochs", "0", "[1, inf)"), ("--epochs", "-3", "[1, inf)"),
    ("--epochs", "1.5", "an integer"), ("--epochs", "many", "an integer"),
    ("--steps", "-1", "[0, inf)"), ("--steps", "2.5", "an integer"),
    ("--evaluations", "0", "[1, inf)"), ("--evaluations", "-2", "[1, inf)"),
    ("--batch-size", "-4", "[1, inf)"), ("--batch-size", "0", "[1, inf)"),
    ("--weight-std", "-1", "'fan-in'"), ("--weight-std", "0", "(0, inf)"),
    ("--weight-std", "nan", "finite"), ("--weight-std", "inf", "finite"),
    ("--weight-std", "fanin", "'fan-in'"),
    ("--learning-rate", "nan", "finite"), ("--learning-rate", "inf", "finite"),
    ("--learning-rate", "-0.1", "(0, inf)"), ("--learning-rate", "0", "(0, inf)"),
    ("--inference-rate", "0", "(0, 1]"), ("--inference-rate", "1.5", "(0, 1]"),
    ("--inference-rate", "nan", "(0, 1]"), ("--inference-rate", "-inf", "(0, 1]"),
    ("--adam-lr", "nan", "finite"), ("--adam-lr", "0", "(0, inf)"),
    ("--seed", "-1", "[0, 4294967295]"), ("--seed", str(2**32), "[0, 4294967295]"),
    ("--seed", "1.5", "an integer"),
    ("--train-size", "-5", "[0, inf)"), ("--test-size", "-1", "[0, inf)"),
    ("--hidden", "0", "positive"), ("--hidden", "-3", "positive"),
    ("--hidden", "a,b", "comma-separated integers"),
    ("--target", "gpu", "invalid choice"), ("--optimizer", "rmsprop", "invalid choice"),
    ("--backend", "torch", "invalid choice"),
]
RUN_OPTIONS = [
    ("--duration", "inf", "finite"), ("--duration", "nan", "finite"),
    ("--duration", "0", "(0, inf)"), ("--duration", "-1", "(0, inf)"),
    ("--chunks", "0", "[1, inf)"), ("--seed", "-1", "[0, 4294967295]"),
    ("--v-headroom", "0", "(0, inf)"), ("--trace-headroom", "nan", "finite"),
]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


PARSED = [(ARGS, *o) for o in OPTIONS] + [(RUN, *o) for o in RUN_OPTIONS]


@pytest.mark.parametrize("argv,option,value,words", PARSED,
                         ids=[f"{a[0]} {o}={v}" for a, o, v, _ in PARSED])
def test_option_out_of_range_is_refused_where_parsed(tmp_path, capsys, argv, option, value,
                                                     words):
    with pytest.raises(SystemExit) as exc:
        main(argv + [f"{option}={value}", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and words in err
    assert not (tmp_path / "o").exists()                 # nothing written


SEMANTIC = [
    (["--evaluations", "41"], "evaluated at most 40 times"),
    (["--evaluations", "3", "--batch-size", "20"], "at most 2 times"),
    (["--batch-size", "41"], "larger than the 40 training samples"),
    (["--train-size", "5000"], "give at most 1347"),
    (["--test-size", "5000"], "give at most 450"),
    (["--target", "brian2-numpy", "--batch-size", "4"],
     "--batch-size 4 needs a target that runs batches of that size: dense"),
    (["--target", "brian2-numpy", "--float32"],
     "--float32 needs a target that computes in single precision: dense"),
    (["--target", "brian2-numpy", "--backend", "jax"],
     "--backend jax needs a target that has that array backend: dense"),
    (["--circuit", "backprop", "--no-fprime"], "applies to relaxed-pc"),
]


@pytest.mark.parametrize("extra,words", SEMANTIC, ids=[" ".join(e) for e, _ in SEMANTIC])
def test_inconsistent_options_are_refused_before_training(tmp_path, capsys, extra, words):
    code, err = run_cli(ARGS + extra + ["--out", tmp_path / "o"], capsys)
    assert code == 2 and words in err
    assert not (tmp_path / "o" / "checkpoint.npz").exists()
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_exit_codes_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for code in EXIT_CODES:
        assert f"{code:>3}  " in text


# --- output folders ---------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under a file", "read-only"])
def test_unusable_output_folder_is_refused(tmp_path, capsys, where):
    (tmp_path / "f").write_text("not a folder")
    out = {"file": tmp_path / "f", "under a file": tmp_path / "f" / "sub",
           "read-only": "/sys/neurosim-probe"}[where]        # sysfs refuses even root
    code, err = run_cli(ARGS + ["--out", out], capsys)
    assert code == 4 and f"--out {out}" in err and "folder" in err


def test_too_little_free_space_is_refused_before_training(tmp_path, capsys, monkeypatch):
    # a full disk cannot be made here without root mounts: the disk's answer is replaced
    monkeypatch.setattr(outdir.shutil, "disk_usage",
                        lambda path: type("usage", (), {"free": 1000})())
    code, err = run_cli(ARGS + ["--out", tmp_path / "o"], capsys)
    assert code == 4 and "MB free" in err and "--out" in err


def test_disk_full_during_the_run_is_a_named_error(tmp_path, capsys, monkeypatch):
    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(training, "atomic_write_bytes", full)   # checkpoints
    code, err = run_cli(ARGS + ["--out", tmp_path / "o"], capsys)
    assert code == 4 and "checkpoint.npz: No space left on device" in err


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from neurosim.outdir import claim
            with claim({str(out)!r}, {{}}, False):
                print("held", flush=True)
                sys.stdin.readline()
            """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = run_cli(ARGS + ["--out", out], capsys)
        assert code == 4 and "in use by another run" in err and f"pid {holder.pid}" in err
        code, err = run_cli(ARGS + ["--seed", "1", "--out", out], capsys)
        assert code == 4 and "in use" in err
    finally:
        holder.communicate("\n", timeout=30)
    code, _ = run_cli(ARGS + ["--out", out], capsys)   # released when the holder ends
    assert code == 0


def test_killed_holder_releases_the_folder(tmp_path, capsys):
    out = tmp_path / "o"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from neurosim.outdir import claim
        with claim({str(out)!r}, {{}}, False):
            print("held", flush=True)
            time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    code, _ = run_cli(ARGS + ["--out", out], capsys)
    assert code == 0


def test_finished_run_is_not_replaced_by_other_settings(tmp_path, capsys):
    out = tmp_path / "o"
    assert run_cli(ARGS + ["--out", out], capsys)[0] == 0
    before = (out / "metrics.json").read_bytes()
    code, err = run_cli(ARGS + ["--seed", "1", "--out", out], capsys)
    assert code == 4 and "finished run with other settings (seed 0 -> 1)" in err
    assert "--force" in err and (out / "metrics.json").read_bytes() == before
    assert run_cli(ARGS + ["--seed", "1", "--force", "--out", out], capsys)[0] == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


def test_a_run_recorded_before_an_option_existed_counts_it_as_off(tmp_path, capsys):
    """A folder trained before a switch was added lacks its key: the switch off is
    the same run, the switch on is not."""
    out = tmp_path / "o"
    assert run_cli(ARGS + ["--out", out], capsys)[0] == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"].pop("learned_errors") is False
    (out / "metrics.json").write_text(json.dumps(metrics))
    before = (out / "metrics.json").read_bytes()
    assert run_cli(ARGS + ["--out", out], capsys)[0] == 0  # "already trained": not rerun
    assert (out / "metrics.json").read_bytes() == before
    code, err = run_cli(ARGS + ["--learned-errors", "--out", out], capsys)
    assert code == 4 and "learned_errors '(unset)' -> True" in err


@pytest.mark.parametrize("content,words", [
    ("{not json", "unreadable"), ('{"accuracy": 1}', "not written by a neurosim run"),
    ("[1, 2]", "JSON object"), ('{"config": NaN}', "unreadable")])
def test_foreign_or_broken_metrics_are_not_overwritten(tmp_path, capsys, content, words):
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.json").write_text(content)
    code, err = run_cli(ARGS + ["--out", out], capsys)
    assert code == 4 and words in err and "metrics.json" in err and "--force" in err
    assert (out / "metrics.json").read_text() == content


def interrupted_run(out, capsys, monkeypatch, extra=()):
    """A real unfinished run: Ctrl-C after the first evaluation's checkpoint."""
    calls = {"n": 0}
    real = training.train_trial

    def trial(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(training, "train_trial", trial)
    assert run_cli(ARGS + list(extra) + ["--out", out], capsys)[0] == 130
    monkeypatch.setattr(training, "train_trial", real)
    assert (out / "checkpoint.npz").exists() and not (out / "metrics.json").exists()


def test_unfinished_run_resumes_only_with_its_own_settings(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    interrupted_run(out, capsys, monkeypatch)
    code, err = run_cli(ARGS + ["--seed", "3", "--out", out], capsys)
    assert code == 4 and "unfinished run with other settings (seed 0 -> 3)" in err
    assert run_cli(ARGS + ["--out", out], capsys)[0] == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert run_cli(ARGS + ["--out", tmp_path / "whole"], capsys)[0] == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert [h["test_accuracy"] for h in resumed["history"]] == \
        [h["test_accuracy"] for h in whole["history"]]


def test_checkpoint_without_its_config_is_not_resumed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    interrupted_run(out, capsys, monkeypatch)
    (out / "config.json").unlink()
    code, err = run_cli(ARGS + ["--seed", "3", "--out", out], capsys)
    assert code == 4 and "no config.json" in err and "--force" in err


def test_checkpoint_with_an_edited_config_is_not_resumed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    interrupted_run(out, capsys, monkeypatch)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "seed": 3}))
    code, err = run_cli(ARGS + ["--seed", "3", "--out", out], capsys)
    assert code == 4 and "made with other settings" in err and "checkpoint.npz" in err


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty", "other circuit"])
def test_damaged_checkpoint_names_the_file_and_the_fix(tmp_path, capsys, monkeypatch, damage):
    out = tmp_path / "o"
    interrupted_run(out, capsys, monkeypatch)
    path = out / "checkpoint.npz"
    good = path.read_bytes()
    if damage == "other circuit":
        other = tmp_path / "other"
        interrupted_run(other, capsys, monkeypatch, ["--hidden", "9"])
        good = (other / "checkpoint.npz").read_bytes()
    path.write_bytes({"random bytes": np.random.default_rng(0).bytes(len(good)),
                      "truncated": good[:len(good) // 2], "empty": b"",
                      "other circuit": good}[damage])
    code, err = run_cli(ARGS + ["--out", out], capsys)
    assert code == 4 and f"checkpoint {path}" in err and "--force" in err
    assert run_cli(ARGS + ["--force", "--out", out], capsys)[0] == 0


def test_divergence_exits_3_with_strict_json(tmp_path, capsys):
    out = tmp_path / "o"
    code, err = run_cli(ARGS + ["--learning-rate", "1e30", "--out", out], capsys)
    assert code == 3 and "diverged" in err
    for name in ("config.json", "diverged.json"):
        json.loads((out / name).read_text(), parse_constant=pytest.fail)
    assert not (out / "metrics.json").exists()


def test_written_json_is_strict(tmp_path):
    with pytest.raises(ValueError):
        outdir.write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_lava_fixed_options_elsewhere_are_refused_before_anything_is_written(tmp_path,
                                                                               capsys):
    code, err = run_cli(RUN + ["--trace-headroom", "8", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "--trace-headroom is an option of lava-fixed" in err
    assert "brian2-numpy" in err and not (tmp_path / "r").exists()


def test_run_folder_is_guarded_like_train(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(RUN + ["--out", out], capsys)[0] == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 0
    code, err = run_cli(RUN + ["--seed", "2", "--out", out], capsys)
    assert code == 4 and "other settings (seed 0 -> 2)" in err
    assert main([str(a) for a in RUN + ["--out", out]]) == 0
    assert "already run with these settings" in capsys.readouterr().out


# --- the same checks through the Python API ---------------------------------------------
@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("epochs", -3), ("epochs", 1.5), ("steps", -1), ("batch_size", 0),
    ("evaluations_per_epoch", 0), ("seed", -1), ("seed", 2 ** 32), ("label_off", float("nan")),
    ("label_off", 1.0), ("epochs", True)])
def test_training_settings_are_checked(field, value):
    ds = data.load("digits").subset(20, 10, seed=0)
    target = DenseTarget(relaxed_predictive_coding((64, 4, 10), "tanh"))
    settings = TrainSettings(**{field: value})
    with pytest.raises(CircuitError, match=f"TrainSettings.{field}="):
        fit(target, ds, settings, progress=False)


def test_api_checkpoint_from_another_run_is_refused(tmp_path):
    ds = data.load("digits").subset(20, 10, seed=0)
    circuit = relaxed_predictive_coding((64, 4, 10), "tanh")
    settings = TrainSettings(steps=3, evaluations_per_epoch=2)
    path = tmp_path / "c.npz"
    training.save_checkpoint(path, DenseTarget(circuit),
                             {"epoch": 0, "index": 10, "history": [], "elapsed": 0.0,
                              "record": {"run": 1}})
    with pytest.raises(CheckpointError, match="other settings"):
        fit(DenseTarget(circuit), ds, settings, checkpoint=path, progress=False,
            record={"run": 2})
    training.save_checkpoint(path, DenseTarget(circuit),
                             {"epoch": 0, "index": 30, "history": [], "elapsed": 0.0})
    with pytest.raises(CheckpointError, match="outside this run"):
        fit(DenseTarget(circuit), ds, settings, checkpoint=path, progress=False)


def test_fetch_into_an_unwritable_data_folder_stops_before_downloading(capsys):
    code, err = run_cli(["data", "fetch", "mnist", "--data-dir", "/sys/neurosim-data"], capsys)
    assert code == 2 and "/sys/neurosim-data" in err and "--data-dir" in err


@pytest.mark.parametrize("option", ["--out", "--data-dir", "--idx-dir"])
def test_empty_path_is_refused_not_taken_as_the_current_folder(tmp_path, capsys, monkeypatch,
                                                                option):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(ARGS + [f"{option}=", "--out", "o"] if option != "--out" else ARGS + ["--out="])
    assert exc.value.code == 2 and f"argument {option}: empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_a_gpu_is_refused_naming_the_targets_that_run(tmp_path, capsys):
    from neurosim.hardware_targets.brian2 import gpu_available
    if gpu_available()[0]:
        pytest.skip("this machine has a GPU")
    code, err = run_cli(ARGS + ["--target", "brian2-cuda", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "no NVIDIA GPU" in err and "brian2-cython" in err


def test_out_of_memory_is_a_named_error(tmp_path, capsys):
    code, err = run_cli(ARGS + ["--hidden", "2000000000", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "out of memory" in err and "--hidden" in err


def test_data_info_on_a_file_says_so(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, err = run_cli(["data", "info", "--data-dir", tmp_path / "f"], capsys)
    assert code == 2 and "is a file, not a folder" in err


def test_interrupted_spiking_run_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    from neurosim.hardware_targets.brian2 import Brian2Target

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(Brian2Target, "run", interrupt)   # Ctrl-C inside the first chunk
    code, err = run_cli(RUN + ["--out", tmp_path / "r"], capsys)
    assert code == 130 and "nothing was written" in err and "resume" not in err
    assert not (tmp_path / "r" / "metrics.json").exists()

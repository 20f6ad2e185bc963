"""Output folders that are safe to write: one run at a time, no result replaced
by a run with other settings, strict JSON, room on the disk checked first.

A run folder holds ``config.json`` (the settings), ``metrics.json`` (written
when the run finishes, with the settings under ``"config"``) and, while the run
is unfinished, ``checkpoint.npz``, which becomes ``weights.npz`` (the trained
weights) when it finishes. A finished run given more epochs (and nothing else
changed) continues from those weights. :func:`claim` is what the command line does
before any long work: it checks the folder can be written and has room, takes
an exclusive lock for the life of the run, and compares the settings with what
the folder already holds.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from .data import atomic_write_bytes
from .errors import OutputError

#: what a finished train run keeps of its target: the trained weights (and the
#: target's extra state), as :func:`neurosim.training.load_checkpoint` reads them
WEIGHTS = "weights.npz"


def write_json(path: Path, obj) -> None:
    """Atomically write strict JSON (NaN and infinity are refused, not written
    as the bare ``NaN`` that other JSON readers reject)."""
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def read_json(path: Path, fix: str) -> dict:
    """A JSON object written by :func:`write_json`, or an :class:`OutputError`
    naming the file and ``fix``."""
    try:
        obj = json.loads(Path(path).read_text(), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OutputError(f"{path} is unreadable ({exc}); {fix}.") from None
    if not isinstance(obj, dict):
        raise OutputError(f"{path} does not hold a JSON object; {fix}.")
    return obj


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _differing(old: dict, new: dict) -> list[str]:
    """The settings whose values differ. A setting one side lacks (a run recorded
    before the option existed) is the same as that option off (False or None)."""
    keys = []
    for k in {**old, **new}:
        if k not in old or k not in new:
            value = new[k] if k in new else old[k]
            if value is False or value is None:
                continue
        if old.get(k, "(unset)") != new.get(k, "(unset)"):
            keys.append(k)
    return keys


#: settings that choose how a run is computed, not what: the dense engine's array
#: backend (results equal to rounding). A finished run made with another value is
#: the same run; an unfinished one continues only with its own (each backend has
#: its own random streams, so a continuation would not end where the run would).
EXECUTION = ("backend",)


def same_settings(old: dict, new: dict, ignore=()) -> bool:
    return all(k in ignore for k in _differing(old, new))


def more_epochs(old: dict, new: dict) -> bool:
    """Whether the settings ``new`` are ``old`` with a larger epoch budget and
    nothing else changed: a run of ``old`` continues into one of ``new`` (an
    epoch's sample order depends on the seed and the epoch alone, and the dense
    engine checkpoints its random streams, so there it ends where a run of
    ``new`` from the start would)."""
    return _differing(old, new) == ["epochs"] and all(
        isinstance(c.get("epochs"), int) for c in (old, new)) and new["epochs"] > old["epochs"]


def differences(old: dict, new: dict) -> str:
    """The settings that differ, as ``"seed 0 -> 1, epochs 2 -> 3"``."""
    return ", ".join(f"{k} {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}"
                     for k in _differing(old, new)) or "none"


def check_writable(out: Path, need_bytes: int = 1 << 20) -> None:
    """Create ``out`` if missing and check that a file can be written there and
    that its disk has ``need_bytes`` free, before any long work starts."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder; give a folder path "
                          "(it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose "
                          "a writable folder with --out.") from None
    free = shutil.disk_usage(out).free
    if free < need_bytes:
        raise OutputError(f"--out {out}: {free / 1e6:.1f} MB free on its disk, but the run "
                          f"needs about {need_bytes / 1e6:.1f} MB (results and checkpoints); "
                          "free some space or choose another --out.")


@contextlib.contextmanager
def claim(out: Path, config: dict, force: bool, need_bytes: int = 1 << 20):
    """Hold ``out`` for one run; yields ``'done'`` (a finished run with these
    settings is there), ``'resume'`` (an unfinished one with these settings, or
    with fewer epochs), ``'extend'`` (a finished one with fewer epochs, whose
    ``weights.npz`` the caller turns back into its checkpoint) or ``'new'``. Raises :class:`OutputError` if the folder cannot be written or
    lacks ``need_bytes`` of room, if another run holds it (an ``fcntl`` lock on
    ``out/.lock``, released by the system even if that run is killed), or if it
    holds results or a checkpoint of other settings and ``force`` is false.
    With ``force`` the old results and checkpoint are removed."""
    out = Path(out)
    check_writable(out, need_bytes)
    lock = open(out / ".lock", "a+")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise OutputError(f"--out {out} is in use by another run ({holder}); wait for it "
                              "to finish or choose another --out.") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}\n")
        lock.flush()
        yield _state(out, config, force)
    finally:
        lock.close()  # releases the lock; the file stays (removing it would race)


def _state(out: Path, config: dict, force: bool) -> str:
    metrics, recorded, checkpoint = (out / "metrics.json", out / "config.json",
                                     out / "checkpoint.npz")
    if force:
        for path in (metrics, checkpoint, out / "diverged.json", out / WEIGHTS):
            path.unlink(missing_ok=True)
        return "new"
    fix = "use --force to replace it, or choose another --out"
    if metrics.exists():
        done = read_json(metrics, fix)
        if "config" in done and same_settings(done["config"], config, EXECUTION):
            return "done"
        if "config" not in done:
            raise OutputError(f"{metrics} was not written by a neurosim run of this kind; "
                              f"{fix}.")
        if more_epochs(done["config"], config) and ((out / WEIGHTS).exists()
                                                    or checkpoint.exists()):
            return "extend"
        raise OutputError(f"{out} holds a finished run with other settings "
                          f"({differences(done['config'], config)}); {fix}.")
    if checkpoint.exists():
        if not recorded.exists():
            raise OutputError(f"{checkpoint} has no config.json beside it, so the settings it "
                              f"was made with are unknown and it cannot be resumed; {fix}.")
        old = read_json(recorded, fix)
        if not same_settings(old, config) and not more_epochs(old, config):
            raise OutputError(f"{out} holds an unfinished run with other settings "
                              f"({differences(old, config)}); resume it with the same "
                              f"options, or {fix}.")
        return "resume"
    return "new"

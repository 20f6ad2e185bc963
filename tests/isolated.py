"""Run Python in a fresh interpreter that cannot hang the test session.

Lava's runtime forks worker processes; a child that hangs, or workers left
behind, must not outlive a test. The child gets its own session, and the whole
session is killed on timeout and after the child exits.
"""
import os
import signal
import subprocess
import sys

import pytest


def run_isolated(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``python *argv`` in a new session; fail the test on timeout."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{argv[0]} timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

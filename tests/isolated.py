"""Run Python in a fresh interpreter that cannot hang the test session.

Lava's runtime forks worker processes; a child that hangs, or workers left
behind, must not outlive a test. The child gets its own session, and the whole
session is killed on timeout and after the child exits.
"""
import functools
import json
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


def fresh(module_file: str):
    """A decorator for the tests of ``module_file``: each runs in a fresh interpreter
    (Lava's runtime sets the multiprocessing start method when it is imported, which
    fails in a pytest worker where another test, Dask's LocalCluster, set it first).
    The module ends with ``run_fresh(globals())``."""
    def decorate(test):
        @functools.wraps(test)
        def run(**kwargs):
            proc = run_isolated([module_file, test.__name__, json.dumps(kwargs)], timeout=600)
            assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
        return run
    return decorate


def run_fresh(namespace: dict) -> None:
    """In the interpreter :func:`fresh` started: run the one test named on the
    command line."""
    if namespace["__name__"] == "__main__":
        namespace[sys.argv[1]].__wrapped__(**json.loads(sys.argv[2]))


def skip_without_lava() -> None:
    """Skip the calling test module when lava-nc is not installed."""
    import importlib.metadata
    try:
        importlib.metadata.version("lava-nc")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pytest.skip("lava-nc is not installed (scripts/setup_env.sh installs it)",
                    allow_module_level=True)


def case_runner(script: str, timeout: float):
    """``run_case(name)``: ``case_<name>`` of ``script`` in a fresh interpreter
    (:func:`run_isolated`), its JSON result; run once per session, however many
    tests read it. ``script`` ends with ``main(globals())``."""
    @functools.lru_cache(maxsize=None)
    def run_case(name: str) -> dict:
        proc = run_isolated([script, name], timeout)
        assert proc.returncode == 0, f"case {name} failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])
    return run_case


def main(namespace: dict) -> None:
    """Run the case named on the command line and print its result as JSON."""
    print(json.dumps(namespace[f"case_{sys.argv[1]}"]()))

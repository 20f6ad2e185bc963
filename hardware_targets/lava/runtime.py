"""Lava's runtime workers: waiting for a run (failing fast when a worker fails),
stopping and killing them, and closing every open target at interpreter exit."""
from __future__ import annotations

import atexit
import threading
import time
import weakref

import numpy as np
import scipy.sparse

from neurosim.circuit import CircuitError

_STOP_TIMEOUT = 10.0  # seconds
#: the targets whose Lava runtime may be running
_OPEN = weakref.WeakSet()


def _kill_workers(runtime):
    for actor in runtime._messaging_infrastructure.actors:
        if actor.is_alive():
            actor.kill()
    try:
        runtime._messaging_infrastructure.smm.shutdown()
    except Exception:
        pass


def _wait(runtime):
    """Wait for a non-blocking Lava run to finish, and fail fast if a worker fails.

    Written here because Lava's own wait, on an error reported by a process
    model, joins every worker -- and the healthy ones, blocked on their ports,
    never exit, so the interpreter hangs. This polls the runtime services'
    replies and the workers instead; on an error it kills the workers and
    raises with the worker's traceback -- or, for a :class:`CircuitError`
    raised by a process model (a fixed-point overflow), that error itself:
    Lava's worker wrapper sends the exception object to the host."""
    from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE, enum_equal
    ports = list(runtime.service_to_runtime)
    actors = runtime._messaging_infrastructure.actors
    replies = {}
    while len(replies) < len(ports):
        for i, port in enumerate(ports):
            if i not in replies and port.probe():
                replies[i] = port.recv()
        if len(replies) < len(ports):
            failed = [a for a in actors if a.exception or not a.is_alive()]
            if failed:
                replies[-1] = MGMT_RESPONSE.ERROR
                break
            time.sleep(2e-4)
    if all(enum_equal(r, MGMT_RESPONSE.DONE) for r in replies.values()):
        runtime._is_running = False
        return
    deadline = time.monotonic() + 2.0  # the failed worker's exception is on its way
    while not any(a.exception for a in actors) and time.monotonic() < deadline:
        time.sleep(1e-3)
    errors = [a.exception for a in actors if a.exception]
    details = "\n".join(tb for _exc, tb in errors)
    _kill_workers(runtime)
    runtime._is_running = runtime._is_started = False
    for exc, _tb in errors:
        if isinstance(exc, CircuitError):
            raise exc
    raise RuntimeError(f"A Lava process model failed; the run was stopped.\n{details}")


def _stop_quietly(proc):
    try:
        proc.stop()
    except Exception:
        pass


@atexit.register
def _close_all():
    for target in list(_OPEN):
        target.close()


class LavaRuntime:
    """Running a built Lava graph, shared by the Lava targets: ``_runtime_proc`` (a
    process of the graph), ``_cfg`` (its run configuration) and ``_steps`` (Lava
    steps run so far) are set by the target."""

    _runtime_proc = None  # also on an object whose construction failed: close() is safe

    def close(self):
        """Stop Lava's runtime and its worker processes (idempotent). If
        ``stop()`` does not return within ``_STOP_TIMEOUT`` seconds, the workers
        are killed."""
        proc, self._runtime_proc = self._runtime_proc, None
        _OPEN.discard(self)
        runtime = proc.runtime if proc is not None else None
        if runtime is None:
            return
        stopper = threading.Thread(target=_stop_quietly, args=(proc,), daemon=True)
        stopper.start()
        stopper.join(timeout=_STOP_TIMEOUT)
        if stopper.is_alive():
            _kill_workers(runtime)

    def __del__(self):
        self.close()

    def _lava_steps(self, n):
        from lava.magma.core.run_conditions import RunSteps
        if self._runtime_proc is None:
            raise CircuitError("This Lava target was closed; build a new one.")
        proc = self._runtime_proc
        try:
            condition = RunSteps(num_steps=n, blocking=False)
            if proc.runtime is None:
                _OPEN.add(self)
                proc.run(condition=condition, run_cfg=self._cfg)
            else:
                proc.run(condition=condition)
            _wait(proc.runtime)
        except BaseException:
            self.close()
            raise
        self._steps += n

    def _set_var(self, var, value):
        if not scipy.sparse.issparse(value):
            value = np.asarray(value)
        if var.process.runtime is None:  # not compiled yet: the initial value
            var.init = value if scipy.sparse.issparse(value) else value.reshape(var.shape)
            return
        try:
            var.set(value)
        except BaseException:
            self.close()
            raise

    def _get_var(self, var):
        try:
            return np.array(var.get())
        except BaseException:
            self.close()
            raise

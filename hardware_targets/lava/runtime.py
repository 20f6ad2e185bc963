"""Lava's runtime workers: waiting for a run (failing fast when a worker fails),
stopping and killing them, and closing every open target at interpreter exit."""
from __future__ import annotations

import atexit
import time
import weakref

from neurosim.circuit import CircuitError

_STOP_TIMEOUT = 10.0  # seconds
#: the targets whose Lava runtime may be running (``LavaTarget._open``)
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

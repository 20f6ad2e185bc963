"""The errors neurosim raises: one hierarchy, in a leaf module.

This module imports nothing from neurosim, so every other module (the
declarations, the code helpers, the Brian2 build, the targets, the command
line) can import it without an import cycle. Each class is also importable
from the module that raised it before this one existed
(``neurosim.circuit.CircuitError``, ``neurosim.data.DataError``,
``neurosim.target.DivergenceError``, ``neurosim.outdir.OutputError``,
``neurosim.training.CheckpointError``): those names are these classes.

Every message names the thing at fault (option, file, variable, construct)
and the fix; the command line maps the classes to its exit codes.
"""
from __future__ import annotations

__all__ = ["NeurosimError", "CircuitError", "UnsupportedConstruct", "DataError",
           "DivergenceError", "OutputError", "CheckpointError", "SmallCircuitWarning",
           "root_cause"]


class NeurosimError(Exception):
    """Base of every error neurosim raises for a problem it can name."""


class CircuitError(NeurosimError, ValueError):
    """A declaration problem (a circuit, a target option, a value given to a
    target). The message names the problem and the fix."""


class UnsupportedConstruct(CircuitError):
    """A target that cannot run a circuit: ``target`` (its registry name),
    ``construct`` (the sentence naming what it has no mapping for) and
    ``alternatives`` (the registered targets that accept the circuit)."""

    def __init__(self, message: str, *, target: str, construct: str,
                 alternatives: tuple[str, ...] = ()):
        super().__init__(message)
        self.target = target
        self.construct = construct
        self.alternatives = tuple(alternatives)


class DataError(NeurosimError):
    """Any problem with a data set; the message names the file, the problem and the fix."""


class DivergenceError(NeurosimError, RuntimeError):
    """A run produced NaN, infinite or exploding values. Nothing was written after it."""


class OutputError(NeurosimError):
    """The output folder cannot be used as asked (command-line exit code 4)."""


class CheckpointError(OutputError):
    """A checkpoint cannot be resumed: damaged, or made by another circuit or settings."""


class SmallCircuitWarning(UserWarning):
    """A circuit too small to run faster on a GPU than on a CPU (brian2-cuda)."""


def root_cause(exc: BaseException) -> BaseException:
    """The original error under Brian2's wrapping exceptions."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return exc

"""Brian2 targets: the reference implementation of every construct.

:mod:`.runtime` is Brian2's runtime device (``brian2-numpy``, ``brian2-cython``);
:mod:`.standalone` compiles each phase of a protocol with ``cpp_standalone``
(``brian2-cpp``), keeping the runtime network as the host copy of the state;
:mod:`.cuda` runs that design on brian2cuda's ``cuda_standalone``
(``brian2-cuda``).
"""
from __future__ import annotations

from .cuda import CudaStandaloneTarget, gpu_available, nvcc_available
from .runtime import CODEGEN_TARGETS, Brian2Target
from .standalone import CppStandaloneTarget

__all__ = ["Brian2Target", "CODEGEN_TARGETS", "CppStandaloneTarget", "CudaStandaloneTarget",
           "gpu_available", "nvcc_available"]

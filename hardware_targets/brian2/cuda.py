"""brian2-cuda: the design of :mod:`.standalone` (brian2-cpp) on brian2cuda's
``cuda_standalone`` device, and the checks for a GPU, nvcc and cuRAND.

brian2cuda set-up (all in :func:`cuda_prefs`, applied only while compiling)
    brian2cuda 1.0b1 with CUDA 13 needs: the cuRAND headers and library from
    the ``nvidia-curand`` wheel (the wheel ships only ``libcurand.so.10`` while
    brian2cuda links ``-lcurand``, so a ``libcurand.so`` link to it is made in
    the build folder); C++17 for nvcc and the host compiler (CUDA 13's
    Thrust/CUB refuse C++11); and, on a machine without a GPU,
    ``detect_gpus=False`` with ``compute_capability=8.0`` and ``gpu_id=0`` so
    the code compiles.
"""
from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import warnings

from brian2 import NeuronGroup, defaultclock, prefs

from neurosim.circuit import Circuit
from neurosim.errors import CircuitError, SmallCircuitWarning

from .standalone import RUN_FILE, CppStandaloneTarget, named_run_args

__all__ = ["CudaStandaloneTarget", "SmallCircuitWarning", "circuit_size", "gpu_available",
           "nvcc_available", "cuda_prefs"]


def circuit_size(circuit: Circuit, seed: int = 0) -> tuple[int, int]:
    """(neurons, synapses) of ``circuit`` with the synapses drawn for ``seed``."""
    pops = circuit.populations
    synapses = 0
    for name, proj in circuit.projections.items():
        if proj.kind == "all":
            synapses += pops[proj.source].n * pops[proj.target].n
        elif proj.kind == "one_to_one":
            synapses += pops[proj.source].n
        else:
            synapses += len(circuit.synapses(name, seed)[0])
    return sum(p.n for p in pops.values()), synapses


@functools.lru_cache(maxsize=1)
def gpu_available() -> tuple[bool, str]:
    """Whether an NVIDIA GPU can run CUDA programs here, and why not (asked once
    per process: every refusal message asks every target)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "no NVIDIA GPU: nvidia-smi is not installed"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"no NVIDIA GPU: nvidia-smi failed ({exc})"
    if out.returncode != 0 or "GPU" not in out.stdout:
        return False, f"no NVIDIA GPU: nvidia-smi -L found none ({out.stderr.strip()})"
    return True, out.stdout.strip().splitlines()[0]


def nvcc_available() -> tuple[bool, str]:
    """Whether the CUDA compiler is installed, and where (or why not)."""
    nvcc = shutil.which("nvcc")
    cuda = os.environ.get("CUDA_PATH") or os.environ.get("CUDA_HOME")
    for candidate in ([os.path.join(cuda, "bin", "nvcc")] if cuda else []) + \
            [os.path.join(os.sep, "usr", "local", "cuda", "bin", "nvcc")]:
        if nvcc is None and os.path.isfile(candidate):
            nvcc = candidate
    if nvcc is None:
        return False, "nvcc (the CUDA compiler) is not installed or not on PATH"
    return True, nvcc


def _curand_wheel() -> tuple[str, str]:
    """Include and library folders of the nvidia-curand wheel."""
    try:
        files = importlib.metadata.files("nvidia-curand") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = {f.name: os.path.dirname(str(f.locate())) for f in files
             if f.name in ("curand.h", "libcurand.so.10")}
    if len(found) != 2:
        raise CircuitError("The brian2-cuda target needs cuRAND: install the pinned "
                           "'nvidia-curand' wheel (requirements/base.txt).")
    return found["curand.h"], found["libcurand.so.10"]


def cuda_prefs(link_dir: str, gpu: bool) -> dict:
    """Every Brian2 preference brian2cuda 1.0b1 needs here, in one place.

    ``link_dir`` receives a ``libcurand.so`` link to the wheel's
    ``libcurand.so.10`` (brian2cuda links ``-lcurand``); ``gpu=False`` compiles
    for compute capability 8.0 without looking for a device.
    """
    include, lib = _curand_wheel()
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "libcurand.so")
    if not os.path.exists(link):
        os.symlink(os.path.join(lib, "libcurand.so.10"), link)
    gcc = [a for a in prefs["codegen.cpp.extra_compile_args_gcc"] if not a.startswith("-std=")]
    nvcc = [a for a in prefs["devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc"]
            if not a.startswith("-std=")]
    values = {
        "codegen.cpp.include_dirs": prefs["codegen.cpp.include_dirs"] + [include],
        "codegen.cpp.library_dirs": prefs["codegen.cpp.library_dirs"] + [link_dir],
        "codegen.cpp.runtime_library_dirs": prefs["codegen.cpp.runtime_library_dirs"] + [lib],
        "codegen.cpp.extra_compile_args_gcc": gcc + ["-std=c++17"],
        "devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc": nvcc + ["-std=c++17"],
    }
    if not gpu:
        values["devices.cuda_standalone.cuda_backend.detect_gpus"] = False
        values["devices.cuda_standalone.cuda_backend.compute_capability"] = 8.0
        values["devices.cuda_standalone.cuda_backend.gpu_id"] = 0
    return values


class CudaStandaloneTarget(CppStandaloneTarget):
    """Run a circuit on an NVIDIA GPU through brian2cuda (``cuda_standalone``).

    Compiling needs nvcc only; running needs a GPU (a clear error otherwise).
    """

    name = "brian2-cuda"
    device_name = "cuda_standalone"

    #: below both, a circuit is too small to gain on a GPU (warned at construction):
    #: brian2cuda launches several kernels per step, at a fixed cost each that only
    #: many neurons and synapses in parallel amortise (Alevi et al. 2022, the
    #: brian2cuda paper; brian2cuda issue 313 is a user meeting exactly this)
    SMALL = (10_000, 1_000_000)

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 directory: str | None = None, compile_only: bool = False):
        self.compile_only = compile_only
        self.gpu, self.gpu_reason = gpu_available()
        super().__init__(circuit, seed, weights, directory, compile_only=compile_only)
        neurons, synapses = circuit_size(circuit, seed)
        if neurons < self.SMALL[0] and synapses < self.SMALL[1]:
            warnings.warn(
                f"brian2-cuda: circuit {circuit.name!r} has {neurons} neurons and "
                f"{synapses} synapses, fewer than {self.SMALL[0]:,} and {self.SMALL[1]:,}: "
                "too small to gain on a GPU (every step launches kernels whose fixed cost "
                "only a large network amortises); brian2-cpp is likely as fast or faster "
                "here. Compare both with benchmarks/target_scaling.py.", SmallCircuitWarning,
                stacklevel=2)

    @staticmethod
    def _codeobject_class():
        from brian2cuda.codeobject import CUDAStandaloneCodeObject
        return CUDAStandaloneCodeObject

    @classmethod
    def _unsupported(cls, circuit, directory=None, compile_only=False):
        ok, why = nvcc_available()
        if not ok:
            return f"circuit {circuit.name!r} here: {why} (install the CUDA toolkit)"
        try:
            import brian2cuda  # noqa: F401  (registers the cuda_standalone device and prefs)
            _curand_wheel()
        except (ImportError, CircuitError) as exc:
            return f"circuit {circuit.name!r} here: {exc}"
        for proj in circuit.projections.values():
            if proj.delay is not None and (proj.homogeneous_delay is None
                                           or float(proj.homogeneous_delay) != 0):
                return (f"Projection {proj.name!r}: a synaptic delay (brian2cuda keeps its "
                        "spike queues on the GPU, where this target cannot carry them from "
                        "one call to the next, so spikes in flight would be lost)")
        reason = cls._untranslatable(circuit)
        if reason:
            return reason
        gpu, why = gpu_available()
        if not gpu and not compile_only:
            return (f"circuit {circuit.name!r} on this machine: {why} (compile_only=True "
                    "generates and compiles the program without running it)")
        return None

    def _new_device(self):
        from brian2cuda.device import CUDAStandaloneDevice
        return named_run_args(CUDAStandaloneDevice)()

    def _build_prefs(self):
        return cuda_prefs(os.path.join(self.directory, "curand-link"), self.gpu)

    runtime_duration = False
    early_run_args = False  # brian2cuda: kept at its default place (delays are refused)

    def _start_code(self):
        return (f'int64_t _neurosim_step; {{ std::ifstream _in("{RUN_FILE}"); '
                'unsigned long long _seed; _in >> _neurosim_step >> _seed; '
                "random_number_buffer.set_seed(_seed); }")

    def _pathways(self, objs):
        # brian2cuda's spike queues live on the GPU and have no C++ state dump;
        # circuits with delays are refused (see _unsupported), and without a delay
        # nothing is in flight between calls
        return iter(())

    def _extra_objects(self):
        # brian2cuda 1.0b1's synapses template reads the C++ object `defaultclock`
        # (for the spike delay), which exists only if something runs on Brian2's
        # default clock; the circuit runs on its own clock. An empty group on the
        # default clock, set to the circuit's dt, declares it and keeps it in step.
        defaultclock.dt = self.dt
        return [NeuronGroup(1, "", name="neurosim_defaultclock*")]

    def _check_can_run(self):
        if not self.gpu:
            raise CircuitError(
                f"The brian2-cuda target compiled circuit {self.circuit.name!r} but cannot "
                f"run it: {self.gpu_reason}. Run it on a machine with an NVIDIA GPU, or use "
                "the brian2-cpp target (same code generation, on the CPU).")

"""Brian2 standalone targets: compiled C++ (``cpp_standalone``) and CUDA (brian2cuda).

Both run any circuit through the same :func:`neurosim.brian2_build.build` as the
runtime target, on a Brian2 standalone device: Brian2 generates a C++ (or CUDA)
project, compiles it and runs the binary. This module holds the design and
brian2-cpp; :mod:`.cuda` the parts brian2-cuda changes.

Design (why the host keeps a runtime copy)
    The :class:`~neurosim.target.Target` interface is interactive: between runs
    a trial protocol sets and reads variables (clamp, settle, run, learn), and
    each phase switches ``state_updater.active`` / ``run_regularly.active``. A
    standalone binary, in contrast, runs a fixed program. So these targets
    subclass :class:`~neurosim.hardware_targets.brian2.runtime.Brian2Target`: the inherited
    runtime network is the *host copy* of the state (``get``/``set``, weights,
    clamping, monitors, subexpressions are Brian2's own, unchanged), and every
    time the protocol advances the network (``run``, ``settle``, ``learn``) the
    steps are executed by a compiled *program* instead:

    * one program per configuration (the ``active`` switches of every Brian2
      object, the monitors, the types and units of the namespace's scalars
      and any other namespace entries; for CUDA also the number of steps),
      compiled once into its own folder and cached for the life of the target;
    * every call runs the cached binary with Brian2's ``run_args``: all stored
      state (neuron and synapse variables, ``lastspike``, ``lastupdate``,
      per-synapse delays ...) and the current values of the namespace's
      scalars go in, the final state, the spike queues and the monitors'
      recordings come back into the host. A few lines of C++ inserted with
      ``device.insert_code`` start the binary at the host's time step (every
      clock's ``timestep`` *and* ``t``, so refractoriness, event-driven
      synapses and recorded times continue exactly), seed the random numbers
      with a per-call seed derived from ``seed`` (so successive calls draw
      fresh, and reproducible, random numbers), restore the spike queues and,
      for C++, read the number of steps.

    A training loop therefore compiles each phase once (about 10-30 s each on
    2 cores) and then pays only the binary run and the state transfer per call
    (see ``benchmarks/target_scaling.py`` for measured figures).

Synaptic delays (brian2-cpp)
    Homogeneous and per-synapse delays run, with the spikes in flight carried
    from one call to the next: each program writes its spike queues when it
    ends (Brian2's own dump, ``results/<pathway>_queue``), the host keeps them,
    and the next call, of whichever program, reads them back before Brian2
    prepares the queues. A run split into calls gives the spikes of one
    uninterrupted call. brian2-cuda refuses delays: brian2cuda's queues live
    on the GPU, and this target cannot carry them.

Parameters between runs
    A scalar namespace value (a number, or a Quantity such as ``10*ms``)
    changed between calls (``circuit.namespace["I0"] = 2.0``) takes effect at
    the next call without recompiling: programs hold these names as shared,
    constant variables, set through ``run_args`` (see
    :func:`_parameter_circuit`). Changing a value's unit or type (an integer
    to a float), or any other namespace entry (a ``TimedArray``, a
    ``Function``), compiles a new program at the next call, which then also
    takes effect.

What a standalone target refuses (:class:`CircuitError`)
    At construction (:meth:`CppStandaloneTarget.unsupported`, the message
    names the targets that accept the circuit): a namespace function the
    circuit calls that has no C++/CUDA implementation; for ``brian2-cuda``
    also synaptic delays, a missing nvcc or cuRAND wheel, and a machine
    without a GPU unless ``compile_only=True`` (which builds the programs;
    running them is then refused with the reason). While running: batches
    of samples (one sample at a time, like the runtime target), monitors
    other than Brian2 ``StateMonitor`` / ``SpikeMonitor``, and code Brian2
    fails to translate or compile (the error names the construct; the
    runtime targets ``brian2-numpy``/``brian2-cython`` run it).

Build folders
    By default every target compiles into a fresh temporary folder, removed
    when the target is closed (:meth:`CppStandaloneTarget.close`), garbage
    collected or the interpreter exits. A folder that failed to build is
    removed at once. ``directory=`` keeps the programs in a folder of the
    user's choice instead (not removed; a later process that generates the
    same code finds the compiled objects there and recompiles nothing).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass

import numpy as np
from brian2 import Equations, Function, Quantity, SpikeMonitor, StateMonitor, prefs
from brian2.core.variables import ArrayVariable
from brian2.units.fundamentalunits import (DIMENSIONLESS, fail_for_dimension_mismatch,
                                          get_dimensions, get_unit)
from brian2.utils.stringtools import get_identifiers
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from brian2.devices.device import reset_device, set_device

from neurosim.brian2_build import build, mark_used
from neurosim.circuit import Circuit
from neurosim.errors import CircuitError, root_cause
from neurosim.target import check_steps

from .runtime import Brian2Target

__all__ = ["CppStandaloneTarget"]

RUN_FILE = "neurosim_run.txt"  # start step, seed and duration of a call, read at start


@dataclass
class Program:
    """One compiled configuration: its device, folder and Brian2 objects."""
    device: CPPStandaloneDevice
    directory: str
    objs: object                  # Brian2Objects of this build
    pairs: list                   # (host, program object, their carried variables)
    parameters: list              # (program object, namespace name) set at every call
    monitors: list                # program monitors, in the order of the host's
    binary: str
    runs: int = 0


def _switches(objs):
    """Every Brian2 object of a build whose ``active`` flag a phase may switch,
    in a deterministic order (the same for every build of one circuit)."""
    for obj in [*objs.groups.values(), *objs.synapses.values()]:
        yield obj
        yield from obj.contained_objects


def _explain(exc: BaseException) -> str:
    """The Brian2 object (if named) and the first message under Brian2's wrappers."""
    where, e = "", exc
    while e is not None:
        found = re.search(r"object named '([^']+)'", str(e))
        if found is None:
            return f"{str(e).splitlines()[0] if str(e) else type(e).__name__}{where}"
        where = where or f" (in {found.group(1)})"
        e = e.__cause__ or e.__context__
    return str(root_cause(exc)) + where


def _carried(obj, per_synapse_delay: bool = False) -> dict:
    """State variables of a group/synapses that a call must carry over: its own
    writable arrays (user variables, lastspike, not_refractory, lastupdate, ...),
    not Brian2's internal buffers (names starting with '_'); with
    ``per_synapse_delay``, also the presynaptic pathway's ``delay``, which is not
    among the Synapses' own variables (Brian2 keeps it in the pathway's)."""
    out = {name: var for name, var in obj.variables.items()
           if isinstance(var, ArrayVariable) and var.owner.name == obj.name
           and not var.read_only and not name.startswith("_")}
    if per_synapse_delay:
        out["delay"] = obj.pre.variables["delay"]
    return out


def _queue_file(projection: str, k: int) -> str:
    """The file a program reads the spike queue of a projection's k-th pathway from."""
    return f"neurosim_queue_{projection}_{k}.txt"


# --- namespace parameters ------------------------------------------------------------
# Brian2 compiles a namespace value into the generated code as a literal, so a
# changed value would need a new program; run_args, on the other hand, set group
# variables when the binary starts. So every program is built from a copy of the
# circuit in which each scalar namespace entry is a shared, constant variable of
# the populations whose code, or whose incoming projections' code, names it (the
# same name, unit and type: the code, its units and Brian2's choice of integrator
# are unchanged), and each call passes the namespace's current values through
# run_args. Functions and TimedArrays stay in the namespace (changing one
# compiles a new program).

def named_run_args(device_class):
    """``device_class`` (Brian2's ``CPPStandaloneDevice`` or a subclass such as
    brian2cuda's) writing each call's run_args files under the variable's name
    and the call's number instead of the md5 of their contents. Brian2 hashes
    them so that a value passed again is written once; this target passes the
    whole state at every call and removes the files after it, so the hash buys
    nothing and was two thirds of the host's cost per call at 1e6 synapses (the
    checks and the file layout are Brian2's)."""
    class NamedRunArgs(device_class):
        _neurosim_calls = 0

        def run(self, *args, **kwargs):
            self._neurosim_calls += 1
            return super().run(*args, **kwargs)

        def _prepare_variableview_run_arg(self, key, value):
            fail_for_dimension_mismatch(key.dim, value)
            value_ar = np.asarray(value, dtype=key.dtype)
            if value_ar.ndim == 0 or value_ar.size == 1:
                return f"{key.group_name}.{key.name}", repr(value_ar.item()), None, value_ar
            if value_ar.ndim != 1 or (not key.variable.dynamic
                                      and value_ar.size != key.shape[0]):
                raise TypeError(f"Incorrect size for variable '{key.group_name}.{key.name}'. "
                                f"Shape {key.shape} ≠ {value_ar.shape}.")
            value_name = f"init_{key.group_name}_{key.name}_call{self._neurosim_calls}.dat"
            return (f"{key.group_name}.{key.name}", os.path.join("static_arrays", value_name),
                    value_name, value_ar)
    NamedRunArgs.__name__ = NamedRunArgs.__qualname__ = f"NamedRunArgs{device_class.__name__}"
    return NamedRunArgs


def _is_parameter(value) -> bool:
    """Whether a namespace value is a scalar number that a call can pass in."""
    return (isinstance(value, (int, float, np.number, np.bool_)) or
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf")


def _declaration(name: str, value) -> str:
    kind = np.asarray(value).dtype.kind
    if kind == "b":
        unit = "boolean"
    elif kind in "iu":
        unit = "integer"
    else:
        dim = get_dimensions(value)
        unit = "1" if dim is DIMENSIONLESS else repr(get_unit(dim))
    return f"{name} : {unit} (shared, constant)"


def _code(item) -> str:
    """Every piece of Brian2 code of a population or projection."""
    parts = [str(item.equations)]
    for attr in ("threshold", "reset", "refractory", "init", "pre_code", "post_code",
                 "learning_rule"):
        value = getattr(item, attr, None)
        if isinstance(value, str):
            parts.append(value)
    return "\n".join(parts)


def _parameter_circuit(circuit: Circuit, host) -> tuple[Circuit, list]:
    """The copy of ``circuit`` that programs are built from (see above), and the
    ``(population, parameter)`` pairs whose values each call passes.

    A population declares the parameters its code reads; a projection's are
    declared by its target population, since Brian2 resolves an unsuffixed name
    in synapse code to the target's variable (a synaptic variable of that name
    would clash with a source population that declares it too). ``host``, the
    runtime build, tells which names an object already defines (its variables,
    Brian2's own such as ``N`` or ``t``, in a Synapses the target's): those do
    not read the namespace there."""
    params = {k for k, v in circuit.namespace.items() if _is_parameter(v)}
    if not params:
        return circuit, []
    declare = {name: set() for name in circuit.populations}
    for kind, table in (("groups", circuit.populations), ("synapses", circuit.projections)):
        for name, item in table.items():
            used = params & get_identifiers(_code(item)) - set(getattr(host, kind)[name].variables)
            declare[item.target if kind == "synapses" else name] |= used
    out = copy.copy(circuit)
    out.namespace = {k: v for k, v in circuit.namespace.items() if k not in params}
    out.populations = {}
    for name, pop in circuit.populations.items():
        if declare[name]:
            pop = dataclasses.replace(pop, model=pop.equations + Equations(
                "\n".join(_declaration(k, circuit.namespace[k]) for k in sorted(declare[name]))))
        out.populations[name] = pop
    return out, [(name, k) for name in declare for k in sorted(declare[name])]


@contextlib.contextmanager
def _temporary_prefs(values: dict):
    """Set Brian2 preferences for the duration of a build, then restore them
    (preferences are global: later runtime use must not see them)."""
    old = {key: prefs[key] for key in values}
    try:
        for key, value in values.items():
            prefs[key] = value
        yield
    finally:
        for key, value in old.items():
            prefs[key] = value


class CppStandaloneTarget(Brian2Target):
    """Run a circuit as compiled C++ (Brian2 ``cpp_standalone``).

    ``directory``: where programs are compiled (default: a temporary folder
    removed with the target). See the module documentation for the design.
    """

    name = "brian2-cpp"
    device_name = "cpp_standalone"

    def __init__(self, circuit: Circuit, seed: int = 0, weights: dict | None = None,
                 directory: str | None = None, **options):
        # the host copy runs numpy code; ``options`` are a subclass's, for its check
        if "codegen" in options:
            raise CircuitError(f"{type(self).__name__} compiles its own program: the codegen "
                               "option applies to Brian2Target (brian2-numpy, brian2-cython).")
        super().__init__(circuit, seed, weights, codegen="numpy", directory=directory,
                         **options)
        self._programs: dict = {}
        self._calls = 0
        self._queues: dict = {}    # (projection, pathway index) -> spike queue state
        self.last_binary_s = 0.0
        if directory is None:
            self.directory = tempfile.mkdtemp(prefix=f"neurosim-{self.name}-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        else:
            self.directory = os.path.abspath(directory)
            os.makedirs(self.directory, exist_ok=True)
            self._cleanup = None

    #: Brian2's code object class of this device (for the function check)
    @staticmethod
    def _codeobject_class():
        from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject
        return CPPStandaloneCodeObject

    @classmethod
    def unsupported(cls, circuit: Circuit, codegen: str = "numpy", **options) -> str | None:
        """The first construct of ``circuit`` this target cannot run, or None
        (``codegen`` is the host copy's, always numpy)."""
        return cls._unsupported(circuit, **options)

    @classmethod
    def _unsupported(cls, circuit: Circuit, directory: str | None = None) -> str | None:
        return cls._untranslatable(circuit)

    @classmethod
    def _untranslatable(cls, circuit: Circuit) -> str | None:
        """A namespace function the circuit's code calls that has no implementation
        for this device (a Python function, say): Brian2 would fail to generate code."""
        codeobject = cls._codeobject_class()
        for table in (circuit.populations, circuit.projections):
            for item in table.values():
                for name in sorted(get_identifiers(_code(item))):
                    value = circuit.namespace.get(name)
                    if not isinstance(value, Function):
                        continue
                    try:
                        value.implementations[codeobject]
                    except KeyError:
                        return (f"{type(item).__name__} {item.name!r}: the function {name!r}, "
                                f"which has no {cls.device_name} implementation (give it one "
                                "with brian2's implementation decorator, or use a runtime "
                                "target)")
        return None

    def close(self) -> None:
        """Forget the compiled programs and remove the temporary build folder."""
        self._programs.clear()
        if self._cleanup is not None:
            self._cleanup()

    # --- device-specific parts (overridden by the CUDA target) ----------------------
    def _new_device(self):
        return named_run_args(CPPStandaloneDevice)()

    def _build_prefs(self) -> dict:
        return {}

    #: whether the number of steps is read at run time (one program serves every
    #: length) or compiled in (brian2cuda sizes its monitors' memory from it)
    runtime_duration = True

    #: whether the state passed in (run_args) is applied before Brian2 prepares
    #: the spike queues from the delays (a changed per-synapse delay takes effect)
    #: rather than just before the network runs, Brian2's default
    early_run_args = True

    def _start_code(self) -> str:
        """C++ run before the network: read the host's time step, this call's seed
        and the duration of the run (``_neurosim_duration``, see :meth:`_compile`)."""
        return (f'double _neurosim_duration; int64_t _neurosim_step; {{ std::ifstream _in('
                f'"{RUN_FILE}"); unsigned long _seed; '
                f'_in >> _neurosim_step >> _seed >> _neurosim_duration; '
                "for (size_t _k = 0; _k < _random_generators.size(); _k++) "
                "_random_generators[_k].seed(_seed + _k); }")

    @staticmethod
    def _clock_code(network, clocks) -> str:
        """C++ run just before ``network.run``: every clock at the host's step.
        Brian2 resets each clock to step 0 there, and ``Clock::set_interval`` then
        moves the step to the network's start time but leaves the clock's ``t``
        at 0 until the first tick, so the first step of a call would compute
        refractoriness (``t - lastspike``) and anything else that reads ``t``
        with t = 0. Setting both, as Brian2's Python ``Clock.set_interval`` does,
        continues the run exactly."""
        # Brian2's network_run renames a clock named "clock" (the first Clock alive in
        # the process) to "_clock" in C++, after this code is written: name it so
        names = sorted(f"brian::{'_clock' if c.name == 'clock' else c.name}" for c in clocks)
        lines = [f"{c}.timestep[0] = _neurosim_step; {c}.t[0] = _neurosim_step * {c}.dt[0];"
                 for c in names]
        return " ".join(lines) + f" brian::{network.name}.t = {names[0]}.t[0];"

    def _check_can_run(self) -> None:
        pass

    def _extra_objects(self) -> list:
        """Objects a device needs in every program beside the circuit's."""
        return []

    # --- programs -------------------------------------------------------------------
    def _monitors(self):
        base = set(self.objs.groups.values()) | set(self.objs.synapses.values())
        out = []
        for obj in self.net.objects:
            if obj in base:
                continue
            if type(obj) not in (StateMonitor, SpikeMonitor):
                raise CircuitError(
                    f"The {self.name} target records with Brian2 StateMonitor and "
                    f"SpikeMonitor only, not {type(obj).__name__} {obj.name!r}; record "
                    "state or spikes instead, or use the brian2-numpy target.")
            out.append(obj)
        return sorted(out, key=lambda m: repr(self._monitor_spec(m)))  # net.objects is a set

    def _source_name(self, source) -> tuple[str, str]:
        for kind, table in (("groups", self.objs.groups), ("synapses", self.objs.synapses)):
            for name, obj in table.items():
                if obj is source:
                    return kind, name
        raise CircuitError(f"The {self.name} target can record only the circuit's own "
                           f"populations and projections, not {source.name!r}.")

    def _monitor_spec(self, mon) -> tuple:
        record = mon.record if isinstance(mon.record, bool) else tuple(np.asarray(mon.record))
        return (type(mon).__name__, self._source_name(mon.source),
                tuple(sorted(mon.record_variables)), record, mon.when, mon.order)

    def _key(self, n_steps: int, monitors) -> str:
        # scalar parameters enter by declaration only (their values are passed in)
        namespace = sorted((k, _declaration(k, v) if _is_parameter(v) else repr(v))
                           for k, v in self.circuit.namespace.items())
        parts = (None if self.runtime_duration else n_steps,
                 tuple(obj.active for obj in _switches(self.objs)),
                 tuple(self._monitor_spec(m) for m in monitors), repr(namespace))
        return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]

    def _program(self, n_steps: int, monitors=()) -> Program:
        key = self._key(n_steps, monitors)
        if key not in self._programs:
            self._programs[key] = self._compile(key, n_steps, monitors)
        return self._programs[key]

    def _compile(self, key: str, n_steps: int, monitors) -> Program:
        directory = os.path.join(self.directory, f"{self.name}-{key}")
        device = self._new_device()
        with _temporary_prefs(self._build_prefs()):
            set_device(device, build_on_run=False)
            objs = None
            try:
                circuit, parameters = _parameter_circuit(self.circuit, self.objs)
                objs = build(circuit, {}, seed=self.seed)  # values come through run_args
                for host, own in zip(_switches(self.objs), _switches(objs)):
                    own.active = host.active
                pairs = [(self.objs.groups[n], objs.groups[n], False) for n in objs.groups]
                for name, syn in objs.synapses.items():
                    proj = self.circuit.projection(name)
                    per_synapse = proj.delay is not None and proj.homogeneous_delay is None
                    pairs.append((self.objs.synapses[name], syn, per_synapse))
                pairs = [(host, own, _carried(host, delay), _carried(own, delay))
                         for host, own, delay in pairs]
                mons = []
                for mon in monitors:
                    kind, name = self._source_name(mon.source)
                    source = getattr(objs, kind)[name]
                    if isinstance(mon, StateMonitor):
                        own = StateMonitor(source, sorted(mon.record_variables),
                                           record=mon.record, when=mon.when, order=mon.order)
                    else:
                        own = SpikeMonitor(source, sorted(mon.record_variables - {"i", "t"}),
                                           record=mon.record, when=mon.when, order=mon.order)
                    objs.network.add(own)
                    mons.append(own)
                objs.network.add(*self._extra_objects())
                device.insert_code("main", self._start_code())
                device.insert_code("main", self._queue_code(objs))
                if self.early_run_args:
                    device.apply_run_args()
                device.insert_code("before_network_run", self._clock_code(
                    objs.network, {obj.clock for obj in objs.network.objects}))
                objs.network.run(n_steps * self.dt, namespace=circuit.namespace)
                if self.runtime_duration:
                    self._duration_from_start_code(device, objs.network.name)
                device.build(directory=directory, run=False, with_output=False)
            except Exception as exc:
                shutil.rmtree(directory, ignore_errors=True)
                if objs is not None:  # the monitors added after build()
                    mark_used(objs.network)
                raise CircuitError(
                    f"The {self.name} target could not generate or compile circuit "
                    f"{self.circuit.name!r}: {_explain(exc).rstrip('.')}. Constructs that "
                    "Brian2 "
                    f"cannot translate for {self.device_name} (for example Python "
                    "functions without a C++ implementation) run on the brian2-numpy "
                    "and brian2-cython targets.") from exc
            finally:
                reset_device()
        parameters = [(objs.groups[name], k) for name, k in parameters]
        return Program(device, directory, objs, pairs, parameters, mons,
                       binary=os.path.join(directory, "main"))

    @staticmethod
    def _duration_from_start_code(device, network: str) -> None:
        """Let the compiled ``network.run(<duration>, ...)`` line read the duration
        from the start code, so that runs of any length share one program.
        (Brian2 writes the duration as a literal; this is the one line changed.)"""
        for kind, args in device.main_queue:
            if kind == "run_network" and args[0].name == network:
                lines = args[1]
                k = next(k for k, line in enumerate(lines) if line.startswith(f"{network}.run("))
                lines[k] = re.sub(r"\.run\([^,]+,", ".run(_neurosim_duration,", lines[k], count=1)
                return
        raise RuntimeError(f"no run of network {network!r} in the standalone program")

    def compile(self, n_steps: int) -> str:
        """Compile (without running) the program that ``run(n_steps)`` would use
        with the current clamps; return the path of its binary."""
        self._updaters(True)
        return self._program(check_steps(n_steps)).binary

    # --- running --------------------------------------------------------------------
    def _run(self, n_steps):
        if n_steps == 0:
            return
        monitors = self._monitors()
        mark_used(self.net)
        program = self._program(n_steps, monitors)
        self._check_can_run()
        self._calls += 1
        call_seed = (self.seed * 1_000_003 + self._calls) % 2 ** 31
        with open(os.path.join(program.directory, RUN_FILE), "w") as f:
            f.write(f"{self._step()} {call_seed} {n_steps * float(self.dt)!r}\n")
        run_args = {}
        for _host, own, host_vars, own_vars in program.pairs:
            for name, var in host_vars.items():
                value = np.asarray(var.get_value())
                # the view names the Synapses as the group, as Brian2's C++ does for
                # the pathway's delay ("syn.delay")
                key = own_vars[name].get_addressable_value_with_unit(name, own)
                run_args[key] = value if var.dim.is_dimensionless \
                    else Quantity(value, dim=var.dim)
        for own, k in program.parameters:
            run_args[own.state(k)] = self.circuit.namespace[k]
        self._write_queues(program)
        device = program.device
        try:
            device.run(directory=program.directory, with_output=False, run_args=run_args)
        except Exception as exc:
            raise CircuitError(f"The {self.name} program of circuit {self.circuit.name!r} "
                               f"failed to run ({root_cause(exc)}); its project is in "
                               f"{program.directory}.") from exc
        finally:
            device.delete(code=False, data=False, run_args=True, directory=False)
        program.runs += 1
        self.last_binary_s = device.timers["run_binary"]  # the program alone, without transfers
        for _host, _own, host_vars, own_vars in program.pairs:
            for name, var in host_vars.items():
                var.get_value()[:] = own_vars[name].get_value()
        self._read_queues(program, device)
        for host, own in zip(monitors, program.monitors):
            self._copy_recording(host, own, device)
        self.net.t_ = (self._step() + n_steps) * float(self.dt)

    # --- spikes in flight ----------------------------------------------------------
    # Brian2's C++ spike queue (CSpikeQueue) can write and read its whole state
    # (operator<< / operator>> around _full_state / _restore_from_full_state, used
    # by Brian2 for store/restore); every cpp_standalone program already writes
    # each pathway's queue to results/<pathway>_queue when it ends. The host keeps
    # that text per (projection, pathway) and the next call, of whichever program,
    # reads it back before the queues are prepared (see _queue_code), so spikes
    # still in flight at the end of one call arrive in the next.
    def _pathways(self, objs):
        for name, syn in objs.synapses.items():
            for k, path in enumerate(syn._pathways):
                yield name, k, path

    def _queue_code(self, objs) -> str:
        """C++ (main slot, before the queues are prepared): restore every queue."""
        return " ".join(
            f'{{ std::ifstream _q("{_queue_file(name, k)}"); if (_q.good()) '
            f"for (size_t _k = 0; _k < brian::{path.name}.queue.size(); _k++) "
            f"_q >> *brian::{path.name}.queue[_k]; }}"
            for name, k, path in self._pathways(objs))

    def _write_queues(self, program) -> None:
        for name, k, _path in self._pathways(program.objs):
            file = os.path.join(program.directory, _queue_file(name, k))
            if (name, k) in self._queues:
                with open(file, "w") as f:
                    f.write(self._queues[(name, k)])
            elif os.path.exists(file):
                os.remove(file)

    def _read_queues(self, program, device) -> None:
        for name, k, path in self._pathways(program.objs):
            with open(os.path.join(device.results_dir, f"{path.name}_queue")) as f:
                self._queues[(name, k)] = f.read()

    def _step(self) -> int:
        """The host's time as a whole number of steps (its clock's ``timestep``)."""
        return int(round(float(self.net.t_) / float(self.dt)))

    @staticmethod
    def _copy_recording(host, own, device):
        """Append what a program's monitor recorded to the host's monitor."""
        start = int(host.variables["N"].get_value())
        if isinstance(host, StateMonitor):
            new = {"t": np.asarray(own.variables["t"].get_value())}
            for v in host.record_variables:
                # read (steps, neurons) from the file: Brian2 would reshape it with the
                # step count of the compiled duration, not of this call
                var = own.variables[v]
                data = np.fromfile(os.path.join(device.results_dir,
                                                device.get_array_filename(var)), dtype=var.dtype)
                new[v] = data.reshape(len(new["t"]), -1)
        else:
            new = {v: np.asarray(own.variables[v].get_value()) for v in host.record_variables}
            host.variables["count"].get_value()[:] += own.variables["count"].get_value()
        n = len(new["t"])
        host.resize(start + n)
        for v, values in new.items():
            host.variables[v].get_value()[start:start + n] = values

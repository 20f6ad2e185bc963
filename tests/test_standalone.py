"""The Brian2 standalone targets (brian2-cpp, brian2-cuda) against the Brian2 runtime.

Tolerances, and why:

* rate predictive coding: the same forward-Euler steps in float64, compiled
  C++ (-O3 -ffast-math) against numpy; only the order and fusion of
  floating-point operations differ, so trajectories and weights agree to
  1e-9 (absolute), as between the runtime target and the dense engine.
* deterministic spiking (regular pacemaker inputs -> LIF with refractoriness,
  through a pair-STDP projection): the same spikes in the same steps (exact),
  membrane trajectories to 1e-9 and STDP weights to 1e-9. A threshold
  crossing decided by a rounding difference would break the exact check; the
  pacemaker frequencies are chosen so that none lies that close.
* Poisson inputs (``threshold='rand() < rates*dt'``): the random streams of
  the devices differ, so only statistics can agree: each target's total
  spike count lies within 5 standard deviations of the Poisson expectation
  N*rate*T (a false failure has probability < 1e-6).
* brian2-cuda on a GPU: spike counts of the deterministic populations equal
  those of brian2-cpp, STDP weights agree to 1e-6 (CUDA may use fused
  multiply-adds), Poisson counts within the same 5-sigma band.

Run boundaries: a LIF population with a refractory period run in uneven
calls spikes in exactly the steps of brian2-numpy (issue 10, defect 1), and
scalar namespace values changed between calls take effect without a new
program (the results equal the runtime's to 1e-9). Delays: see
``test_standalone_delays.py``.

Costs: each distinct phase configuration is compiled once (10-40 s on two
shared cores); module fixtures share the compiled programs between tests.
The CUDA compile test needs nvcc (about 70 s on two idle cores, 250 s measured
with the cores shared) and runs in CI (not marked slow).
"""
import os

import numpy as np
import pytest
from brian2 import ms
from brian2.devices.device import RuntimeDevice, get_device

from test_pc_equivalence import LR, RATE, SEED, SIZES, STEPS
from neurosim.circuit import Circuit, CircuitError, Population, Projection, constant
from neurosim.circuits.predictive_coding import relaxed_predictive_coding
from neurosim.hardware_targets import make_target
from neurosim.hardware_targets.brian2 import (Brian2Target, CppStandaloneTarget,
                                              CudaStandaloneTarget, gpu_available,
                                              nvcc_available)
from neurosim.plasticity import PairSTDP
from neurosim.target import predict, train_trial

ATOL = 1e-9
TOP = len(SIZES) - 1
RECORD = [(f"value{l}", "mu") for l in range(TOP + 1)] + [(f"error{l}", "eps") for l in range(TOP)]
N_POISSON, POISSON_RATE = 40, 200.0
CHUNK = 500              # steps per run() call (50 ms at dt = 0.1 ms)


def spiking_circuit() -> Circuit:
    """Deterministic pacemakers -> LIF neurons through pair STDP, plus an
    unconnected Poisson population."""
    c = Circuit("standalone_check", namespace={"taum": 10 * ms}, dt=0.1 * ms)
    c.add(Population("pacers", 8, "dphase/dt = freq : 1\nfreq : Hz", threshold="phase > 1",
                     reset="phase -= 1", values={"freq": np.linspace(41.3, 117.7, 8)}))
    c.add(Population("neurons", 3, "dv/dt = -v / taum : 1 (unless refractory)\nn_spikes : 1",
                     threshold="v > 1", reset="v = 0\nn_spikes += 1", refractory=2 * ms))
    c.add(Population("poisson", N_POISSON, "rates : Hz\nn_spikes : 1",
                     threshold="rand() < rates * dt", reset="n_spikes += 1",
                     values={"rates": POISSON_RATE}))
    c.add(Projection("stdp", "pacers", "neurons", on_pre="v += w",
                     plasticity=PairSTDP(Apre=0.01, Apost=-0.0105, wmax=1.0),
                     init={"w": constant(0.3)}))
    return c


SPIKE_RECORD = [("neurons", "v"), ("pacers", "spikes")]


def run_chunks(target, n_calls=2):
    out = []
    for _ in range(n_calls):
        trace = target.run(CHUNK, record=SPIKE_RECORD)
        out.append({"v": trace[("neurons", "v")], "spikes": trace[("pacers", "spikes")],
                    "neurons": target.get("neurons", "n_spikes").copy(),
                    "pacers_phase": target.get("pacers", "phase").copy(),
                    "poisson": target.get("poisson", "n_spikes").copy(),
                    "w": target.get_weights()["stdp"]["w"].copy()})
    return out


@pytest.fixture(scope="module")
def spiking_runs():
    circuit = spiking_circuit()
    runtime = Brian2Target(circuit, seed=1)
    cpp = CppStandaloneTarget(circuit, seed=1)
    results = {"runtime": run_chunks(runtime), "cpp": run_chunks(cpp)}
    yield circuit, cpp, results
    cpp.close()


def assert_poisson_count(total, calls):
    expected = N_POISSON * POISSON_RATE * calls * CHUNK * 1e-4
    assert abs(total - expected) < 5 * np.sqrt(expected), (total, expected)


# --- (a) rate predictive coding ----------------------------------------------------

def pc():
    return relaxed_predictive_coding(SIZES, "tanh", inference_rate=RATE, learning_rate=LR)


def clamp_both(target, circuit, x, y):
    target.clamp(*circuit.input, x)
    target.clamp(*circuit.output, y)


def test_pc_inference_trajectories_match_runtime():
    circuit = pc()
    runtime, cpp = Brian2Target(circuit, seed=SEED), make_target("brian2-cpp", circuit, seed=SEED)
    assert isinstance(cpp, CppStandaloneTarget)
    x, y = np.linspace(0, 1, SIZES[0]), np.array([0.1, 1.0, 0.1])
    for target in (runtime, cpp):
        clamp_both(target, circuit, x, y)
    for call in range(2):  # the second call reuses the compiled program, state carried over
        want, got = runtime.run(STEPS, record=RECORD), cpp.run(STEPS, record=RECORD)
        for key in RECORD:
            assert got[key].shape == want[key].shape == (STEPS, circuit.population(key[0]).n)
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0,
                                       err_msg=f"{key}, call {call}")
    moved = np.abs(got[("value1", "mu")][-1] - want[("value1", "mu")][0]).max()
    assert moved > 1e-4, "the hidden values must relax (the comparison is not trivial)"
    want, got = runtime.run(7, record=RECORD), cpp.run(7, record=RECORD)  # another length
    for key in RECORD:
        assert got[key].shape == (7, circuit.population(key[0]).n)
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0)
    assert len(cpp._programs) == 1, "runs of any length share one compiled program"
    assert float(cpp.net.t) == pytest.approx((2 * STEPS + 7) * float(circuit.dt))
    # the standalone builds left Brian2 on its runtime device, and it still runs
    assert isinstance(get_device(), RuntimeDevice)
    before = runtime.get("value1", "mu")
    runtime.run(1)
    assert not np.array_equal(runtime.get("value1", "mu"), before)
    cpp.close()
    assert not os.path.exists(cpp.directory)


@pytest.mark.slow
def test_pc_training_trials_match_runtime():
    """The whole protocol: settle, run and learn phases (three programs) and a
    test-phase prediction (a fourth), several trials in one process."""
    circuit = pc()
    runtime, cpp = Brian2Target(circuit, seed=SEED), CppStandaloneTarget(circuit, seed=SEED)
    rng = np.random.default_rng(7)
    for trial in range(3):
        x = 2 * rng.random(SIZES[0])
        y = np.full(SIZES[-1], 0.1)
        y[trial % SIZES[-1]] = 1.0
        want = train_trial(runtime, x, y, STEPS, record=RECORD)
        got = train_trial(cpp, x, y, STEPS, record=RECORD)
        for key in RECORD:
            np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0)
    for name, params in runtime.get_weights().items():
        for var, value in params.items():
            np.testing.assert_allclose(cpp.get_weights()[name][var], value, atol=ATOL, rtol=0)
    assert not np.allclose(cpp.get_weights()["weights1"]["w"],
                           circuit.initial_weights(SEED)["weights1"]["w"])
    x = rng.random(SIZES[0])
    np.testing.assert_allclose(predict(cpp, x), predict(runtime, x), atol=ATOL, rtol=0)
    cpp.close()


# --- (b, c) LIF network, Poisson inputs, STDP; several runs in one process ---------

def test_deterministic_spiking_and_stdp_match_runtime_exactly(spiking_runs):
    _, cpp, results = spiking_runs
    for call, (want, got) in enumerate(zip(results["runtime"], results["cpp"])):
        np.testing.assert_array_equal(got["neurons"], want["neurons"], err_msg=f"call {call}")
        np.testing.assert_allclose(got["pacers_phase"], want["pacers_phase"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(got["v"], want["v"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(got["w"], want["w"], atol=ATOL, rtol=0)
    final = results["cpp"][-1]
    assert final["neurons"].min() >= 5, "the LIF neurons must spike (refractoriness matters)"
    assert np.ptp(final["w"]) > 0.01, "STDP must change the weights unequally"
    assert len(cpp._programs) == 1, "the second call reuses the compiled program"


def test_poisson_counts_agree_statistically_and_each_call_draws_fresh_numbers(spiking_runs):
    _, _, results = spiking_runs
    for name in ("runtime", "cpp"):
        first, second = results[name]
        assert_poisson_count(second["poisson"].sum(), calls=2)
        # a call must not replay the random numbers of the previous one
        assert not np.array_equal(first["poisson"], second["poisson"] - first["poisson"])


def test_spike_recording_is_inherited(spiking_runs):
    """(pop, 'spikes') recording of the runtime target works unchanged: the same
    [step, neuron] rows, steps counted from the start of each call."""
    _, _, results = spiking_runs
    for want, got in zip(results["runtime"], results["cpp"]):
        assert got["spikes"].shape[1] == 2 and len(got["spikes"]) > 20
        assert 0 <= got["spikes"][:, 0].min() and got["spikes"][:, 0].max() < CHUNK
        np.testing.assert_array_equal(got["spikes"], want["spikes"])


# --- run() boundaries -----------------------------------------------------------------

UNEVEN_CALLS = (100, 37, 37, 100)


def refractory_lif() -> Circuit:
    """Issue 10, defect 1: unconnected LIF neurons with a refractory period."""
    c = Circuit("refractory_lif", namespace={"tau": 10 * ms}, dt=0.1 * ms)
    c.add(Population("lif", 5, "dv/dt = (I - v) / tau : 1 (unless refractory)\nI : 1",
                     threshold="v > 1", reset="v = 0", refractory=2 * ms,
                     values={"I": np.linspace(1.5, 3.0, 5)}))
    return c


def spike_steps(target, calls, pop="lif"):
    """(step, neuron) of every spike, steps counted from the first call."""
    rows, start = [], 0
    for n in calls:
        got = target.run(n, record=[(pop, "spikes")])[(pop, "spikes")]
        rows.append(got + [start, 0])
        start += n
    return np.concatenate(rows)


def test_refractory_period_continues_across_uneven_calls():
    """The compiled program starts each call at the host's time: on its first step
    a neuron that spiked long ago is not refractory (it was, with the clock's
    time left at 0 while ``lastspike`` came from the previous call)."""
    circuit = refractory_lif()
    want = spike_steps(Brian2Target(circuit), UNEVEN_CALLS)
    cpp = CppStandaloneTarget(circuit)
    got = spike_steps(cpp, UNEVEN_CALLS)
    assert len(want) > 10 and set(want[:, 1]) == set(range(5))
    np.testing.assert_array_equal(got, want)
    assert len(cpp._programs) == 1
    cpp.close()


def parameter_circuit() -> Circuit:
    """LIF neurons whose drive, time constant, threshold, an integer and a switch
    are namespace values, read by populations and by a projection's on_pre (I0
    by both the projection and its source)."""
    c = Circuit("parameters", namespace={"tau": 10 * ms, "I0": 1.5, "vth": 1.0, "K": 2,
                                         "on": True, "g": 0.05}, dt=0.1 * ms)
    c.add(Population("lif", 4, "dv/dt = (I0 * int(on) + (i % K) * 0.1 - v) / tau : 1 "
                     "(unless refractory)\nn : 1", threshold="v > vth",
                     reset="v = 0\nn += 1", refractory=2 * ms))
    c.add(Population("out", 2, "dx/dt = -x / tau : 1"))
    c.add(Projection("syn", "lif", "out", "w : 1", on_pre="x += w * g * I0",
                     init={"w": constant(1.0)}))
    return c


PARAMETER_CALLS = [(100, {"I0": 1.5}), (57, {"I0": 3.0, "g": 0.2}), (80, {"on": False}),
                   (60, {"on": True, "tau": 5 * ms, "vth": 0.8, "K": 3})]


def run_with_parameters(target, length=None):
    """``length``: every call that many steps (brian2-cuda compiles per length)."""
    out = []
    for n, changes in PARAMETER_CALLS:
        target.circuit.namespace.update(changes)
        target.run(length or n)
        out.append((target.get("lif", "n"), target.get("lif", "v"), target.get("out", "x")))
    return out


def test_namespace_values_changed_between_calls_take_effect_without_recompiling():
    """Scalar namespace values are passed in at every call (no new program);
    each change must show in the result, exactly as on the runtime target."""
    runtime = Brian2Target(parameter_circuit())
    cpp = CppStandaloneTarget(parameter_circuit())
    want, got = run_with_parameters(runtime), run_with_parameters(cpp)
    assert len(cpp._programs) == 1, "a changed value must not compile a new program"
    for call, (w, g) in enumerate(zip(want, got)):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"spike counts, call {call}")
        for a, b in zip(g[1:], w[1:]):
            np.testing.assert_allclose(a, b, atol=ATOL, rtol=0, err_msg=f"call {call}")
    counts = np.diff([w[0].sum() for w in want])
    assert counts[0] > counts[1] == 0 < counts[2], "the changes must matter (I0, on, tau)"
    # a changed type (an integer becomes a float) is a new declaration: a new program
    cpp.circuit.namespace["K"] = 3.0
    runtime.circuit.namespace["K"] = 3.0
    cpp.run(10)
    runtime.run(10)
    assert len(cpp._programs) == 2
    np.testing.assert_allclose(cpp.get("lif", "v"), runtime.get("lif", "v"), atol=ATOL, rtol=0)
    cpp.close()


# --- errors and build folders --------------------------------------------------------

def test_untranslatable_code_names_the_problem_and_leaves_nothing_behind(tmp_path):
    from brian2 import Function, check_units

    @check_units(x=1, result=1)
    def python_only(x):
        return x

    c = Circuit("python_function", namespace={"python_only": Function(python_only, arg_units=[1],
                                                                      return_unit=1)})
    c.add(Population("p", 2, "dv/dt = python_only(v) / ms : 1"))
    before = sorted(os.listdir("."))
    # refused at construction (nothing built), naming the targets that accept it
    assert "'python_only'" in CppStandaloneTarget.unsupported(c)
    with pytest.raises(CircuitError, match=r"(?s)brian2-cpp.*'p'.*python_only.*accept.*"
                                           r"brian2-numpy, brian2-cython"):
        CppStandaloneTarget(c, directory=str(tmp_path))
    assert os.listdir(tmp_path) == [], "nothing may be built"
    assert sorted(os.listdir(".")) == before, "nothing may be written to the working folder"
    # a construct found only while generating code: the error names it, the failed
    # build folder is removed, Brian2 is left on its runtime device
    c.namespace["python_only"].implementations.add_implementation(
        "cpp", "double python_only(double x) { return x + ; }")  # does not compile
    target = CppStandaloneTarget(c, directory=str(tmp_path))
    with pytest.raises(CircuitError, match=r"(?s)brian2-cpp.*could not generate or compile"):
        target.run(5)
    assert os.listdir(tmp_path) == [], "the failed build folder must be removed"
    assert sorted(os.listdir(".")) == before, "nothing may be written to the working folder"
    assert isinstance(get_device(), RuntimeDevice)
    Brian2Target(c).run(2)  # the runtime target still runs it


def test_batches_are_refused():
    circuit = pc()
    target = CppStandaloneTarget(circuit)
    with pytest.raises(CircuitError, match="one sample at a time"):
        target.set("value0", "mu", np.zeros((2, SIZES[-1])))
    target.close()


# --- CUDA ----------------------------------------------------------------------------

NVCC, NVCC_WHY = nvcc_available()
GPU, GPU_WHY = gpu_available()


def poisson_to_lif() -> Circuit:
    """The smallest spiking circuit worth compiling: Poisson inputs -> LIF (few
    code objects, since nvcc needs 10-30 s for each on two cores)."""
    c = Circuit("poisson_to_lif", namespace={"taum": 10 * ms}, dt=0.1 * ms)
    c.add(Population("inputs", 20, "rates : Hz", threshold="rand() < rates * dt",
                     values={"rates": 50.0}))
    c.add(Population("neurons", 5, "dv/dt = -v / taum : 1", threshold="v > 1", reset="v = 0"))
    c.add(Projection("input", "inputs", "neurons", "w : 1", on_pre="v += w",
                     init={"w": constant(0.2)}))
    return c


@pytest.mark.skipif(GPU or not NVCC, reason="runs where nvcc is installed and no GPU is")
def test_cuda_without_a_gpu_is_refused_at_construction():
    with pytest.raises(CircuitError, match=r"(?s)brian2-cuda.*GPU.*compile_only=True.*"
                                           r"accept.*brian2-cpp"):
        make_target("brian2-cuda", poisson_to_lif())
    assert "GPU" in CudaStandaloneTarget.unsupported(poisson_to_lif())
    assert CudaStandaloneTarget.unsupported(poisson_to_lif(), compile_only=True) is None


@pytest.mark.skipif(not NVCC, reason=f"CUDA target test: {NVCC_WHY}")
def test_cuda_warns_about_circuits_too_small_for_a_gpu(recwarn):
    from neurosim.hardware_targets.brian2.cuda import SmallCircuitWarning, circuit_size
    with pytest.warns(SmallCircuitWarning, match=r"25 neurons and 100 synapses.*too small"
                                                 r".*brian2-cpp"):
        make_target("brian2-cuda", poisson_to_lif(), compile_only=True).close()
    big = Circuit("big")
    big.add(Population("a", 20_000, "v : 1"))
    big.add(Population("b", 3_000, "v : 1"))
    big.add(Projection("ab", "a", "b", "w : 1", connect={"p": 0.02}))
    neurons, synapses = circuit_size(big, seed=1)
    assert neurons == 23_000 and abs(synapses - 0.02 * 6e7) < 5 * np.sqrt(0.02 * 6e7)
    assert circuit_size(poisson_to_lif()) == (25, 100)
    recwarn.clear()
    make_target("brian2-cuda", big, compile_only=True).close()
    assert not [w for w in recwarn if issubclass(w.category, SmallCircuitWarning)]


@pytest.mark.skipif(not NVCC, reason=f"CUDA compile test: {NVCC_WHY}")
def test_cuda_compiles_a_spiking_circuit():
    """brian2cuda generates and compiles the circuit with nvcc (no GPU needed
    with ``compile_only=True``); without a GPU, running it is refused with the
    reason."""
    target = make_target("brian2-cuda", poisson_to_lif(), seed=1, compile_only=True)
    assert isinstance(target, CudaStandaloneTarget)
    binary = target.compile(CHUNK)
    assert os.path.isfile(binary) and os.access(binary, os.X_OK)
    assert isinstance(get_device(), RuntimeDevice)
    if not GPU:
        with pytest.raises(CircuitError, match=r"(?s)cannot run.*GPU.*brian2-cpp"):
            target.run(CHUNK)
    target.close()
    assert not os.path.exists(target.directory)


@pytest.mark.skipif(not GPU, reason=f"CUDA run test: {GPU_WHY}")
def test_cuda_run_agrees_with_cpp(spiking_runs):
    circuit, _, results = spiking_runs
    target = CudaStandaloneTarget(circuit, seed=1)
    got = run_chunks(target)
    for call, want in enumerate(results["cpp"]):
        np.testing.assert_array_equal(got[call]["neurons"], want["neurons"])
        np.testing.assert_allclose(got[call]["w"], want["w"], atol=1e-6, rtol=0)
    assert_poisson_count(got[-1]["poisson"].sum(), calls=2)
    target.close()


@pytest.mark.skipif(not GPU, reason=f"CUDA run test: {GPU_WHY}")
def test_cuda_continues_refractoriness_and_takes_new_parameters():
    """The clock and parameter code is shared with brian2-cpp; calls of one length
    (brian2cuda compiles the number of steps in), so one program each."""
    calls = (37, 37, 37)
    circuit = refractory_lif()
    want = spike_steps(Brian2Target(circuit), calls)
    cuda = CudaStandaloneTarget(circuit)
    np.testing.assert_array_equal(spike_steps(cuda, calls), want)
    runtime, cuda_p = Brian2Target(parameter_circuit()), CudaStandaloneTarget(parameter_circuit())
    want, got = run_with_parameters(runtime, 60), run_with_parameters(cuda_p, 60)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g[0], w[0])
        np.testing.assert_allclose(g[1], w[1], atol=1e-6, rtol=0)
    assert len(cuda._programs) == len(cuda_p._programs) == 1
    cuda.close()
    cuda_p.close()

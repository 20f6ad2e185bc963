"""Contracts of the package layout: one error hierarchy, an acyclic import
graph, and the Target lifecycle and capabilities every target shares."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: import name -> folder (setup.cfg installs circuits/ and hardware_targets/
#: under the neurosim namespace)
PACKAGES = {"neurosim": ROOT / "neurosim",
            "neurosim.circuits": ROOT / "circuits",
            "neurosim.hardware_targets": ROOT / "hardware_targets"}


def _modules() -> dict[str, pathlib.Path]:
    """Import name -> file of every module, subpackages included."""
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the neurosim modules it imports anywhere in its body (a
    function-level import is an edge too: it only hides a cycle). ``from P
    import x`` is an edge to ``P.x`` when that is a module, else to ``P``."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.stem == "__init__" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                           else base for alias in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "neurosim.circuit" in graph["neurosim.brian2_build"]
    assert "neurosim.hardware_targets.brian2.runtime" in graph[
        "neurosim.hardware_targets.brian2.standalone"]
    assert "neurosim.circuits.predictive_coding" in graph["neurosim.circuits"]
    # subpackages (one per target) are in the graph, their relative imports too
    assert {"neurosim.hardware_targets.lava.fixed_point",
            "neurosim.hardware_targets.lava.plasticity"} <= graph[
        "neurosim.hardware_targets.lava.process"]


def test_import_graph_is_acyclic():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_errors_is_a_leaf_module():
    assert import_graph()["neurosim.errors"] == set()


# --- one error hierarchy, importable where it used to live ----------------------------

def test_one_error_hierarchy_behind_the_old_import_paths():
    from neurosim import circuit, data, errors, outdir, target, training
    assert circuit.CircuitError is errors.CircuitError
    assert circuit.root_cause is errors.root_cause
    assert data.DataError is errors.DataError
    assert target.DivergenceError is errors.DivergenceError
    assert outdir.OutputError is errors.OutputError
    assert training.CheckpointError is errors.CheckpointError
    for cls, bases in ((errors.CircuitError, (ValueError,)),
                       (errors.UnsupportedConstruct, (errors.CircuitError,)),
                       (errors.DataError, ()), (errors.OutputError, ()),
                       (errors.DivergenceError, (RuntimeError,)),
                       (errors.CheckpointError, (errors.OutputError,))):
        assert issubclass(cls, (errors.NeurosimError, *bases))
        assert all(issubclass(cls, b) for b in (errors.NeurosimError, *bases))


# --- small circuits --------------------------------------------------------------------

RATE = "dr/dt = (-r + I) / tau : 1\nI : 1"


def rate_circuit(**pop):
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection
    c = Circuit("rate", namespace={"tau": 10 * ms})
    c.add(Population("a", 3, RATE, **pop))
    c.add(Population("b", 2, RATE))
    c.add(Projection("p", "a", "b", "w : 1\nI_post = w * r_pre : 1 (summed)"))
    return c


def spiking_circuit(plasticity=None):
    from brian2 import ms
    from neurosim.circuit import Circuit, Population, Projection
    c = Circuit("spiking", namespace={"tau": 10 * ms})
    for name in ("a", "b"):
        c.add(Population(name, 2, "dv/dt = (1.5 - v) / tau : 1", threshold="v > 1",
                         reset="v = 0"))
    c.add(Projection("p", "a", "b", "w : 1" if plasticity is None else "", on_pre="v_post += w",
                     plasticity=plasticity))
    return c


def test_refusal_is_an_unsupported_construct_naming_target_construct_and_alternatives():
    from neurosim.circuit import CircuitError
    from neurosim.errors import UnsupportedConstruct
    from neurosim.hardware_targets import make_target
    with pytest.raises(UnsupportedConstruct) as e:
        make_target("dense", spiking_circuit())
    err = e.value
    assert isinstance(err, CircuitError)
    assert err.target == "dense" and "Population 'a': spikes" in err.construct
    assert "brian2-numpy" in err.alternatives and "dense" not in err.alternatives
    assert str(err).startswith("The dense target cannot run Population 'a': spikes")
    assert ", ".join(err.alternatives) in str(err)


# --- lifecycle -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["brian2-numpy", "dense"])
def test_every_target_closes_idempotently_and_is_a_context_manager(name):
    from neurosim.hardware_targets import make_target
    with make_target(name, rate_circuit()) as t:
        assert t.run(2, record=[("b", "r")])[("b", "r")].shape[0] == 2
    t.close()  # a second close does nothing


# --- declared capabilities -------------------------------------------------------------

def _targets_here():
    """Registered targets that import here and accept a plain rate circuit (a
    target whose hardware is missing refuses everything: nothing to test)."""
    from neurosim.hardware_targets import accepting, target_class
    return [(name, *target_class(name)) for name in accepting(rate_circuit())]


def test_declared_capabilities_are_honoured():
    """A capability a target declares is one it has: the command line and the
    trainer offer it for that reason alone."""
    from neurosim.hardware_targets import capabilities
    from neurosim.plasticity import PairSTDP
    checked = []
    for name, cls, fixed in _targets_here():
        caps = capabilities(name)
        claims = {"spikes": (caps.spikes, spiking_circuit()),
                  "plasticity": (caps.plasticity, spiking_circuit(PairSTDP())),
                  "random": (caps.random, rate_circuit(init="r = rand()"))}
        for what, (claimed, circuit) in claims.items():
            if claimed:
                assert cls.unsupported(circuit, **fixed) is None, (name, what)
                checked.append((name, what))
    assert ("brian2-numpy", "spikes") in checked and ("brian2-numpy", "random") in checked


def test_declared_batches_and_options_are_accepted():
    import numpy as np
    from neurosim.hardware_targets import capabilities, having, make_target
    assert having(lambda caps: caps.batch > 1) == ["dense"]
    assert capabilities("brian2-numpy").batch == 1
    caps = capabilities("dense")
    assert caps.batch > 1 and caps.optimizer and caps.float32
    with make_target("dense", rate_circuit(), batch_mean=True, dtype=np.float32) as t:
        t.set("a", "r", np.ones((4, 3)))
        assert t.get("a", "r").shape == (4, 3) and t.max_batch == caps.batch


def test_trainer_names_the_targets_that_run_batches():
    import numpy as np
    from neurosim.circuit import CircuitError
    from neurosim.data import Dataset
    from neurosim.hardware_targets import make_target
    from neurosim.training import TrainSettings, fit
    c = rate_circuit()
    c.set_io(input=("a", "r"), output=("b", "r"))
    rng = np.random.default_rng(0)
    ds = Dataset("toy", rng.random((4, 3)), np.array([0, 1, 0, 1]), rng.random((2, 3)),
                 np.array([0, 1]), n_classes=2, image_shape=(3,))
    with make_target("brian2-numpy", c) as t, pytest.raises(CircuitError) as e:
        fit(t, ds, TrainSettings(batch_size=2, steps=1, evaluations_per_epoch=1), progress=False)
    assert "batch_size=2" in str(e.value) and "runs batches: dense" in str(e.value)


# --- the variant table of relaxed predictive coding ------------------------------------

def test_variant_table_is_what_the_command_line_offers():
    import inspect
    from neurosim.circuits import SWITCHES, VARIANTS, relaxed_predictive_coding
    from neurosim.cli import build_parser
    accepted = inspect.signature(relaxed_predictive_coding).parameters
    assert set(SWITCHES) <= set(accepted)
    assert {k for switches in VARIANTS.values() for k in switches} <= set(SWITCHES)
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {a.dest for a in train._actions if a.option_strings}
    assert set(SWITCHES) <= flags
    args = build_parser().parse_args(["train", "--fully-relaxed"])
    assert args.fully_relaxed and not args.learned_feedback

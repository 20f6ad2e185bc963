"""Tests for neurosim.hardware_targets.lava.compat, the Python 3.11 fix for
lava-nc 0.10.0.

Everything that imports Lava runs in a fresh interpreter (``sys.executable``),
so each test starts from a clean import state and a clean ``sys.meta_path``.
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap

import pytest
from isolated import run_isolated

from neurosim.hardware_targets.lava import compat as lava_compat

try:
    LAVA_VERSION = importlib.metadata.version("lava-nc")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover
    LAVA_VERSION = None

pytestmark = pytest.mark.skipif(
    LAVA_VERSION is None, reason="lava-nc is not installed (scripts/setup_env.sh installs it)")

TARGET = lava_compat.TARGET_MODULE


def run_python(code: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run *code* in a fresh interpreter (see tests/isolated.py)."""
    return run_isolated(["-c", textwrap.dedent(code), *args], timeout)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# (1) The fix is needed.
# --------------------------------------------------------------------------

def test_unpatched_lava_fails_to_import_on_this_python():
    result = last_json(run_python(f"""
        import json, sys
        try:
            import {TARGET}
        except ValueError as exc:
            print(json.dumps({{"error": str(exc)}}))
        else:
            print(json.dumps({{"error": None}}))
        """))
    if result["error"] is None:
        pytest.fail(
            f"{TARGET} (lava-nc {LAVA_VERSION}) now imports without the fix on "
            f"Python {sys.version.split()[0]}: neurosim.hardware_targets.lava.compat "
            "may be removed (install() is a no-op here anyway).")
    assert "mutable default" in result["error"]
    assert "ByteEncoder" in result["error"]
    assert "default_factory" in result["error"]


# --------------------------------------------------------------------------
# (2) With the fix, a real LIF -> Dense -> LIF network runs and spikes.
# --------------------------------------------------------------------------

NETWORK_SCRIPT = """
    import json, multiprocessing, sys
    from neurosim.hardware_targets.lava.compat import import_lava
    import_lava()
    import numpy as np
    from lava.proc.lif.process import LIF
    from lava.proc.dense.process import Dense
    from lava.proc.monitor.process import Monitor
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.magma.core.run_conditions import RunSteps

    tag, steps = sys.argv[1], 20
    if tag == "floating_pt":
        # lif1: v grows by 0.3 a step, spikes when v > 1, i.e. every 4th step.
        lif1 = LIF(shape=(2,), du=0.0, dv=0.0, bias_mant=0.3, vth=1.0, name="lif1")
        weights = np.array([[0.5, 0.25], [1.0, 0.0], [0.0, 2.0]])
        # lif2: current forgets each step (du=1), voltage integrates (dv=0),
        # threshold out of reach, so v = sum of everything received.
        lif2 = LIF(shape=(3,), du=1.0, dv=0.0, bias_mant=0.0, vth=1e9, name="lif2")
    else:
        # Integers: effective bias 100 << 6 = 6400 a step, effective threshold
        # 100 << 6 = 6400 and spiking needs v > threshold: every 2nd step.
        lif1 = LIF(shape=(2,), du=0, dv=0, bias_mant=100, bias_exp=6, vth=100, name="lif1")
        weights = np.array([[50, 25], [100, 0], [0, 7]])
        # du=4095: current fully decays each step; input arrives as w << 6.
        lif2 = LIF(shape=(3,), du=4095, dv=0, bias_mant=0, bias_exp=0, vth=131071, name="lif2")
    dense = Dense(weights=weights)
    lif1.s_out.connect(dense.s_in)
    dense.a_out.connect(lif2.a_in)
    monitor = Monitor()
    monitor.probe(lif1.s_out, steps)
    try:
        lif2.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        spikes = monitor.get_data()["lif1"]["s_out"]
        v2 = lif2.v.get()
    finally:
        lif2.stop()
    print(json.dumps({
        "spikes": spikes.tolist(), "v2": v2.tolist(), "weights": weights.tolist(),
        "children_after_stop": len(multiprocessing.active_children()),
    }))
"""


@pytest.mark.parametrize("tag, period, input_scale", [
    ("floating_pt", 4, 1.0),
    ("fixed_pt", 2, 2 ** 6),   # Loihi's activation shift in the bit-accurate LIF
])
def test_lif_dense_lif_runs_with_fix(tag, period, input_scale):
    result = last_json(run_python(NETWORK_SCRIPT, tag))
    import numpy as np

    spikes = np.array(result["spikes"])          # (steps, 2), the Monitor's raster
    weights = np.array(result["weights"], dtype=float)
    v2 = np.array(result["v2"])
    steps = spikes.shape[0]
    assert spikes.shape == (20, 2)

    # The first LIF spikes from its bias alone, exactly on its period.
    expected = np.zeros(steps)
    expected[period - 1::period] = 1
    np.testing.assert_array_equal(spikes, np.column_stack([expected, expected]))

    # The second LIF received them through Dense, one step late (the spike of
    # the last step is still in flight when the run ends).
    delivered = spikes[:-1].sum(axis=0)
    assert delivered.sum() > 0
    np.testing.assert_allclose(v2, weights @ delivered * input_scale)
    assert np.all(v2 > 0)

    assert result["children_after_stop"] == 0, "Lava runtime processes left after stop()"


# --------------------------------------------------------------------------
# (3) install() is idempotent and touches exactly one module.
# --------------------------------------------------------------------------

def test_install_is_idempotent_and_affects_only_var_model():
    result = last_json(run_python(f"""
        import importlib.util, json, sys
        from pathlib import Path
        from neurosim.hardware_targets.lava import compat as lc

        before = list(sys.meta_path)
        assert not lc.is_installed()
        assert lc.install() is True
        assert lc.install() is True
        finders = [f for f in sys.meta_path if isinstance(f, lc.LavaCompatFinder)]
        assert len(finders) == 1 and sys.meta_path[0] is finders[0], sys.meta_path
        assert sys.meta_path[1:] == before

        finder = finders[0]
        for name in ["lava", "lava.magma", "lava.magma.compiler",
                     "lava.magma.compiler.compiler", "{TARGET}_x", "{TARGET}.x",
                     "json", "numpy"]:
            assert finder.find_spec(name, None) is None, name

        # The installed files, to check afterwards that nothing was written.
        spec = importlib.util.find_spec("{TARGET}")
        source_path = Path(spec.origin)
        pyc_path = Path(importlib.util.cache_from_source(spec.origin))
        def state(p):
            return (p.read_bytes(), p.stat().st_mtime_ns) if p.exists() else None
        snapshot = {{p: state(p) for p in (source_path, pyc_path)}}

        # Import a good part of Lava.
        import {TARGET} as vm
        import lava.proc.lif.process, lava.proc.dense.process
        import lava.magma.core.run_configs, lava.magma.compiler.compiler

        patched = sorted(n for n, m in sys.modules.items()
                         if isinstance(getattr(m, "__loader__", None), lc._PatchedVarModelLoader))
        assert patched == ["{TARGET}"], patched
        assert vm.__file__ == str(source_path)

        # What changed: the one decorator line, nothing else.
        original = source_path.read_text().splitlines()
        fixed = vm.__loader__.get_source("{TARGET}").splitlines()
        diff = [(a, b) for a, b in zip(original, fixed) if a != b]
        assert len(original) == len(fixed)
        assert diff == [("@dataclass", "@dataclass(unsafe_hash=True)")], diff
        assert fixed[fixed.index("@dataclass(unsafe_hash=True)") + 1] == "class ByteEncoder:"

        # ByteEncoder is hashable; the encoders still behave as dataclasses.
        enc = vm.ByteEncoder(base=1, len=2)
        assert hash(enc) == hash(vm.ByteEncoder(base=1, len=2))
        assert vm.CoreEncoder().x == vm.ByteEncoder()

        # Calling again after the import changes nothing.
        assert lc.install() is True
        assert [f for f in sys.meta_path if isinstance(f, lc.LavaCompatFinder)] == [finder]

        # Neither the source nor its .pyc was written (nor a .pyc created).
        for p, before in snapshot.items():
            assert state(p) == before, p
        print(json.dumps({{"pyc_existed": snapshot[pyc_path] is not None}}))
        """))
    assert "pyc_existed" in result


def test_install_is_a_noop_when_not_needed():
    result = last_json(run_python(f"""
        import json, sys, types
        from neurosim.hardware_targets.lava import compat as lc

        # A Python that accepts unhashable dataclass defaults (before 3.11).
        real = lc._python_rejects_instance_defaults
        assert real() is (sys.version_info >= (3, 11))
        lc._python_rejects_instance_defaults = lambda: False
        first = lc.install()
        lc._python_rejects_instance_defaults = real

        # The module already imported fine by some other means.
        sys.modules["{TARGET}"] = types.ModuleType("{TARGET}")
        second = lc.install()
        del sys.modules["{TARGET}"]

        print(json.dumps({{"results": [first, second], "installed": lc.is_installed()}}))
        """))
    assert result == {"results": [False, False], "installed": False}


# --------------------------------------------------------------------------
# The substitution is checked.
# --------------------------------------------------------------------------

def test_unexpected_source_raises_import_error_naming_versions():
    with pytest.raises(ImportError) as info:
        lava_compat.patch_source("@dataclass(frozen=True)\nclass ByteEncoder:\n    base: int = 0\n")
    message = str(info.value)
    assert lava_compat.EXPECTED_LAVA_VERSION in message
    assert "'@dataclass\\nclass ByteEncoder:\\n'" in message
    assert f"lava-nc {LAVA_VERSION}" in message

    doubled = "@dataclass\nclass ByteEncoder:\n" * 2
    with pytest.raises(ImportError, match="occurs 2 times"):
        lava_compat.patch_source(doubled)


def test_loader_raises_import_error_when_text_missing():
    """End to end: if the installed source did not match, the import itself
    fails with the explicit message rather than with Lava's ValueError."""
    result = last_json(run_python(f"""
        import json
        from neurosim.hardware_targets.lava import compat as lc
        assert lc.install()
        lc._OLD = "@dataclass\\nclass NoSuchEncoder:\\n"   # simulate a different Lava
        try:
            import {TARGET}
        except ImportError as exc:
            print(json.dumps({{"type": type(exc).__name__, "message": str(exc)}}))
        """))
    assert result["type"] == "LavaCompatError"
    assert f"lava-nc {lava_compat.EXPECTED_LAVA_VERSION}" in result["message"]
    assert "NoSuchEncoder" in result["message"]


def test_install_raises_when_source_unknown_and_still_broken():
    """If the installed source still uses ``ByteEncoder()`` defaults but not
    with the decorator this fix expects, install() tries the real import and,
    as it fails, says why instead of installing a fix that cannot apply."""
    result = last_json(run_python("""
        import json
        from neurosim.hardware_targets.lava import compat as lc
        lc._OLD = "@dataclass\\nclass NoSuchEncoder:\\n"   # simulate a different Lava
        try:
            lc.install()
        except ImportError as exc:
            print(json.dumps({"type": type(exc).__name__, "message": str(exc),
                              "cause": type(exc.__cause__).__name__,
                              "installed": lc.is_installed()}))
        """))
    assert result["type"] == "LavaCompatError"
    assert result["cause"] == "ValueError"
    assert result["installed"] is False
    assert f"lava-nc {lava_compat.EXPECTED_LAVA_VERSION}" in result["message"]

"""Brian2's examples/synapses/STDP.py: the plain script the library's STDP circuit
is already checked against (tests/plain_brian2_stdp.py), reused."""
from brian2 import second

from plain_brian2_stdp import run_plain


def run(drawn, scale=1.0, seed=0, codegen="numpy"):
    w0 = drawn["weights"]["synapses"]["w"][0]
    w = run_plain(w0, max(0.001, scale) * 100 * second, seed=seed, codegen=codegen)
    return {"w": w, "dw": w - w0}

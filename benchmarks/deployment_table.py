"""Which populations of the library's spiking circuits and of the conformance
models run on Lava's standard processes (what Loihi's compiler takes), and
which can be exported to NIR (float and fixed point), with the reason where not. Prints a Markdown
table (the README's).

    python benchmarks/deployment_table.py
"""
from __future__ import annotations

import warnings

from neurosim.circuit import CircuitError
from neurosim.circuits import CIRCUITS
from neurosim.circuits.brian2_examples import EXAMPLES
from neurosim.hardware_targets.lava.standard import standard_plan
from neurosim.nir_graph import to_nir


def rows():
    circuits = {name: CIRCUITS[name]() for name in
                ("song-abbott-stdp", "dopamine-stdp", "reward-task")}
    circuits.update({name: make(scale=0.05) for name, (make, _run, _src) in EXAMPLES.items()})
    for name, c in circuits.items():
        lava = [_describe(*standard_plan(c, precision))
                for precision in ("floating_pt", "fixed_pt")]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = to_nir(c)
            nir = ", ".join(f"{k}: {type(v).__name__}" for k, v in graph.nodes.items()
                            if type(v).__name__ in ("LIF", "CubaLIF", "Input"))
        except CircuitError as exc:
            nir = "refused: " + str(exc).split(": ", 1)[1].split(". NIR export takes")[0]
        yield name, *lava, nir


def _describe(plan, reason):
    if plan is None:
        return f"generated: {reason}"
    return ", ".join(f"{p}: " + ("host source" if m == "source" else
                                 "LIFRefractory" if m.frozen else "LIF")
                     for p, m in plan.items())


def main():
    print("| circuit | Lava (float) | Lava (fixed point) | NIR export |")
    print("|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

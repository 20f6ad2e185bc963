"""Can the printed learned ψ (eq. 7, ψ on the value) learn? Starting points and a decay.

With ε = ψµ − f(θµ) the value neurons decay through −ψµ, so ψ's eigenvalues must
stay in the right half-plane; the paper's |N(0, 0.05²)| start has half of them
in the left one. This trains the printed formulation (the reproduction's
"printed" settings: 784-300-100-10 tanh, 100 steps at 0.1, batch 64, Adam 1e-3,
float32, weights N(0, 0.02²)) on MNIST with learned ψ and fully relaxed, from
|N(0, 0.05²)| or the identity, with and without a decay of ψ to the identity
(``error_weight_decay`` λ: ψ ← ψ − lr (ε µᵀ + λ (ψ − I))), and prints the test
accuracy through training, the smallest real part of layer 1's ψ eigenvalues and
its distance from the identity ‖ψ − I‖_F / ‖I‖_F at the end. Writes
``results/relaxed_pc/printed_psi_stability.md``.

    python benchmarks/printed_psi_stability.py            # one epoch of MNIST
    python benchmarks/printed_psi_stability.py --train-size 20000
"""
import argparse
import time
from pathlib import Path

import numpy as np

from neurosim import data
from neurosim.circuits import relaxed_predictive_coding
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.optim import Adam
from neurosim.target import DivergenceError
from neurosim.training import TrainSettings, fit

#: (label, relaxation, ψ start, decay λ)
RUNS = [("standard PC (ψ = I, fixed)", {}, None, 0.0),
        ("learned ψ", {"learned_errors": True}, "abs_normal", 0.0),
        ("learned ψ", {"learned_errors": True}, "abs_normal", 0.1),
        ("learned ψ", {"learned_errors": True}, "identity", 0.0),
        ("learned ψ", {"learned_errors": True}, "identity", 0.01),
        ("learned ψ", {"learned_errors": True}, "identity", 0.1),
        ("fully relaxed", {"fully_relaxed": True}, "identity", 0.0),
        ("fully relaxed", {"fully_relaxed": True}, "identity", 0.01),
        ("fully relaxed", {"fully_relaxed": True}, "identity", 0.1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-size", type=int, default=0, help="0: all 60,000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "relaxed_pc"
                    / "printed_psi_stability.md")
    args = ap.parse_args()
    ds = data.load("mnist", download=True).subset(args.train_size or None, None, seed=0)
    lines = [f"MNIST, {len(ds.y_train)} training samples (one pass), 10,000 test images, "
             f"seed {args.seed}; `python benchmarks/printed_psi_stability.py`",
             "", "| circuit | ψ start | decay λ | test accuracy (%) through the pass | "
             "min Re eig ψ₁ | ‖ψ₁ − I‖/‖I‖ | s |", "|---|---|---|---|---|---|---|"]
    for label, relax, start, decay in RUNS:
        kw = {} if start is None else {"error_weight_init": start, "error_weight_decay": decay}
        circuit = relaxed_predictive_coding((784, 300, 100, 10), "tanh", weight_std=0.02,
                                            **relax, **kw)
        target = DenseTarget(circuit, seed=args.seed, dtype=np.float32, batch_mean=True,
                             optimizer=Adam(1e-3))
        t0 = time.perf_counter()
        try:
            history = fit(target, ds, TrainSettings(steps=100, batch_size=64,
                                                    evaluations_per_epoch=4, seed=args.seed),
                          progress=False)
            curve = ", ".join(f"{100 * h['test_accuracy']:.1f}" for h in history[1:])
        except DivergenceError as exc:
            curve = f"diverged ({exc})"
        psi = target.get_weights().get("error_weights1", {}).get("w")
        if psi is None:
            eig = dist = "–"
        else:
            psi = np.asarray(psi, float).reshape(100, 100)
            eig = f"{np.linalg.eigvals(psi).real.min():.3f}"
            dist = f"{np.linalg.norm(psi - np.eye(100)) / 10:.3f}"
        row = (f"| {label} | {start or 'I'} | {decay:g} | {curve} | {eig} | {dist} | "
               f"{time.perf_counter() - t0:.0f} |")
        print(row, flush=True)
        lines.append(row)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

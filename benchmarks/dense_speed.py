"""Speed of the batched dense engine, on both of its backends (numpy, and jax:
the whole trial compiled), against a plain hand-written batched numpy version
of the same training run, measured side by side in one run.

The run (the issue's reference set-up): 784-300-100-10 relu predictive coding,
batch 64 (``--batch``), float32, 100 inference steps at rate 0.1, Adam 1e-3 on
the weight updates, one pass over (a subset of) MNIST. Contenders alternate;
each is timed ``--repeats`` times and the median is reported, with the ratio
to the hand-written version, the achieved FLOP/s (useful multiply-adds only),
that as a fraction of this machine's matrix-multiply rate on the same shapes
(measured here first: the per-step products, chained, by numpy's BLAS and by
XLA, the better of the two) and the test accuracy after the pass. The jax
contender's compilation is done by a warm-up on the same target, whose state
is then put back, and not counted (as for pcx).

    python benchmarks/dense_speed.py [--samples 60000] [--repeats 3] [--batch 64]

Peers (pcx, the paper's reference code, ngclearn) are not installed by the
project; their figures measured on this machine are quoted in the README.
With ``--pcx PYTHON`` (the python of the environment made by
benchmarks/peers/setup_peers.sh), each repeat also runs
benchmarks/peers/pcx_mnist.py in that interpreter, interleaved with the others,
and the table gets a pcx row (its own training time, JIT compilation excluded).
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import time

import numpy as np

from neurosim import data
from neurosim.circuits import relaxed_predictive_coding
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.optim import Adam
from neurosim.target import train_trial
from neurosim.training import encode_labels, evaluate

SIZES = (784, 300, 100, 10)
PCX_NAME = "pcx 0.6.3 (JAX, CPU)"
PCX_SCRIPT = pathlib.Path(__file__).resolve().parent / "peers" / "pcx_mnist.py"
STEPS, RATE, ADAM_LR, STD = 100, 0.1, 1e-3, 0.02
B = 64   # --batch


def matmul_rate(batch, reps=500):
    """GFLOP/s of this machine on the inference step's products at this batch
    (float32, each product's input the last one's output, so that nothing is
    hoisted), by numpy's BLAS and by XLA."""
    import jax
    rng = np.random.default_rng(0)
    pairs = [(SIZES[i + 1], SIZES[i + 2]) for i in range(len(SIZES) - 2)]  # hidden ones
    W = [rng.normal(0, 0.05, (a, b)).astype(np.float32) for a, b in pairs]
    flops = reps * sum(2 * 2 * batch * a * b for a, b in pairs)

    def chain(xp, x, W):
        for w in W:
            x = x + 1e-3 * ((x @ w) @ w.T)
        return x
    xs = [rng.random((batch, a)).astype(np.float32) for a, _ in pairs]
    t0 = time.perf_counter()
    for _ in range(reps):
        xs = [chain(np, x, [w]) for x, w in zip(xs, W)]
    numpy_rate = flops / (time.perf_counter() - t0) / 1e9

    def loop(xs, W):
        return jax.lax.fori_loop(0, reps, lambda i, xs: [chain(None, x, [w])
                                                         for x, w in zip(xs, W)], xs)
    compiled = jax.jit(loop)
    jax.block_until_ready(compiled(xs, W))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(xs, W))
    return numpy_rate, flops / (time.perf_counter() - t0) / 1e9


def useful_flops(n_samples):
    """Multiply-adds x 2 of the matrix products the algorithm needs."""
    pairs = [(SIZES[i], SIZES[i + 1]) for i in range(len(SIZES) - 1)]
    first = pairs[0][0] * pairs[0][1]
    rest = sum(a * b for a, b in pairs[1:])
    per_step = 2 * 2 * rest                 # predictions + errors sent up (hidden layers)
    per_sample = 2 * (first + rest)         # forward initialisation (incl. the clamped input)
    per_sample += 2 * (first + rest)        # final prediction before the update
    per_sample += 2 * (first + rest)        # weight updates (outer products)
    return n_samples * (STEPS * per_step + per_sample)


class HandWritten:
    """Plain batched numpy PC with Adam, float32 (no neurosim code)."""

    def __init__(self, weights):
        self.W = {l: weights[f"weights{l}"]["w"].astype(np.float32) for l in (1, 2, 3)}
        self.m = {l: np.zeros_like(w) for l, w in self.W.items()}
        self.v = {l: np.zeros_like(w) for l, w in self.W.items()}
        self.t = 0

    def train(self, x, y):
        W = self.W
        mu = {3: x}
        pred3 = W[3] @ x.T                                    # constant: input is clamped
        mu[2] = np.maximum(pred3.T, 0)
        mu[1] = np.maximum(mu[2] @ W[2].T, 0)
        mu[0] = y
        for _ in range(STEPS):
            p1, p0 = mu[2] @ W[2].T, mu[1] @ W[1].T
            e2 = mu[2] - np.maximum(pred3.T, 0)
            e1, e0 = mu[1] - np.maximum(p1, 0), mu[0] - np.maximum(p0, 0)
            g1, g0 = e1 * (p1 > 0), e0 * (p0 > 0)
            mu[1] = mu[1] + RATE * (-e1 + g0 @ W[1])
            mu[2] = mu[2] + RATE * (-e2 + g1 @ W[2])
        p2, p1, p0 = pred3.T, mu[2] @ W[2].T, mu[1] @ W[1].T
        grads = {3: (mu[2] - np.maximum(p2, 0)) * (p2 > 0),
                 2: (mu[1] - np.maximum(p1, 0)) * (p1 > 0),
                 1: (mu[0] - np.maximum(p0, 0)) * (p0 > 0)}
        self.t += 1
        for l in (1, 2, 3):
            d = grads[l].T @ mu[l] / len(x)
            self.m[l] = 0.9 * self.m[l] + 0.1 * d
            self.v[l] = 0.999 * self.v[l] + 0.001 * d * d
            mh, vh = self.m[l] / (1 - 0.9 ** self.t), self.v[l] / (1 - 0.999 ** self.t)
            W[l] += (ADAM_LR * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)

    def accuracy(self, x, y):
        h = x
        for l in (3, 2, 1):
            h = np.maximum(h @ self.W[l].T, 0)
        return float(np.mean(np.argmax(h, 1) == y))


def main():
    global B
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=B)
    ap.add_argument("--pcx", metavar="PYTHON", default=None,
                    help="also time pcx, running benchmarks/peers/pcx_mnist.py in PYTHON")
    args = ap.parse_args()
    B = args.batch
    ds = data.load("mnist").subset(args.samples, None, seed=0)
    x = ds.x_train.astype(np.float32)
    y = encode_labels(ds.y_train, 10, 0.1).astype(np.float32)
    circuit = relaxed_predictive_coding(SIZES, "relu", inference_rate=RATE, weight_std=STD)
    weights = circuit.initial_weights(0)
    numpy_rate, xla_rate = matmul_rate(B)
    times = {"neurosim dense": [], "neurosim dense (jax)": [], "hand-written numpy": []}
    if args.pcx:
        times[PCX_NAME] = []
    acc = {}
    for _ in range(args.repeats):
        target = DenseTarget(circuit, weights=weights, dtype=np.float32,
                             optimizer=Adam(ADAM_LR), batch_mean=True)
        t0 = time.perf_counter()
        for i in range(0, len(x), B):
            train_trial(target, x[i:i + B], y[i:i + B], STEPS)
        times["neurosim dense"].append(time.perf_counter() - t0)
        acc["neurosim dense"] = evaluate(target, ds.x_test, ds.y_test)
        target = DenseTarget(circuit, weights=weights, dtype=np.float32, backend="jax",
                             optimizer=Adam(ADAM_LR), batch_mean=True)
        start = target.extra_state()
        # warm-up: every program the pass needs (Adam's first step and the others, the
        # last batch's size), compiled; the target's state is then put back
        for n in sorted({B, len(x) % B or B}, reverse=True) + [B]:
            train_trial(target, x[:n], y[:n], STEPS)
        target.check_finite()
        target.set_weights(weights)
        target.optimizer.moments, target.t = {}, target.t * 0
        target.load_extra_state(start)
        t0 = time.perf_counter()
        for i in range(0, len(x), B):
            train_trial(target, x[i:i + B], y[i:i + B], STEPS)
        target.check_finite()   # waits for the last trial
        times["neurosim dense (jax)"].append(time.perf_counter() - t0)
        acc["neurosim dense (jax)"] = evaluate(target, ds.x_test, ds.y_test)
        hand = HandWritten(weights)
        t0 = time.perf_counter()
        for i in range(0, len(x), B):
            hand.train(x[i:i + B], y[i:i + B])
        times["hand-written numpy"].append(time.perf_counter() - t0)
        acc["hand-written numpy"] = hand.accuracy(ds.x_test.astype(np.float32), ds.y_test)
        if args.pcx:
            run = subprocess.run([args.pcx, str(PCX_SCRIPT), "--samples", str(args.samples),
                                  "--batch", str(B)],
                                 check=True, capture_output=True, text=True)
            res = json.loads(run.stdout.strip().splitlines()[-1])
            times[PCX_NAME].append(res["seconds_train"])
            acc[PCX_NAME] = res["test_accuracy"]
    flops = useful_flops(len(x))
    ref = statistics.median(times["hand-written numpy"])
    print(f"784-300-100-10 relu PC, batch {B}, float32, {STEPS} steps, Adam {ADAM_LR}, "
          f"{len(x)} MNIST samples, median of {args.repeats} interleaved runs; "
          f"{flops / 1e12:.2f} TFLOP useful work")
    print(f"matrix-multiply rate on the step's products at batch {B}: numpy "
          f"{numpy_rate:.0f} GFLOP/s, XLA {xla_rate:.0f} GFLOP/s")
    peak = max(numpy_rate, xla_rate)
    print(f"{'':22s} {'seconds':>8s} {'ratio':>6s} {'GFLOP/s':>8s} {'of rate':>8s} "
          f"{'test acc':>9s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:22s} {med:8.2f} {med / ref:6.2f} {flops / med / 1e9:8.1f} "
              f"{flops / med / 1e9 / peak:8.0%} {100 * acc[name]:8.2f}%")
    if args.pcx:
        pcx = statistics.median(times[PCX_NAME])
        for name in ("neurosim dense", "neurosim dense (jax)"):
            print(f"{name} / pcx ratio: {statistics.median(times[name]) / pcx:.2f}")


if __name__ == "__main__":
    main()

"""How the dense engine's cost grows with width: BrainProp on its paper's network
(784-1500-1000-500-10 relu, batch 128, float32, SGD 0.1 on the batch mean)
on both backends of the dense engine, against error backprop of the same
shape written directly in JAX (softmax, cross-entropy, one jitted step per
batch: the reference a JAX user would write), side by side in one run.

    python benchmarks/brainprop_speed.py [--samples 12800] [--repeats 3] [--batch 128]

Each contender trains on the same ``--samples`` MNIST images; compilation is
warmed up first and not counted. Useful work: BrainProp's forward pass, the
feedback of the selected unit through every layer but the first and the
weight updates (2 + 2 + 2 multiply-adds per weight and sample, the feedback
counted for the layers that send it); backprop's forward pass, backward pass
and updates (the same count). The matrix-multiply rate is that of XLA on
the forward pass's products at this batch.
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from neurosim import data
from neurosim.circuits import BRAINPROP, brainprop
from neurosim.hardware_targets.dense import DenseTarget
from neurosim.target import train_trial
from neurosim.training import encode_labels, evaluate

SIZES = BRAINPROP["sizes"]
LR = BRAINPROP["learning_rate"]


def useful_flops(n, sizes=SIZES):
    pairs = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    return n * sum(2 * a * b * (3 if k else 2) for k, (a, b) in enumerate(pairs))


def backprop_jax(weights, batch):
    """Plain JAX backprop of the same shape (no biases, as BrainProp here)."""
    W = [jnp.asarray(weights[f"weights{l}"]["w"], jnp.float32)
         for l in range(len(SIZES) - 1, 0, -1)]          # input side first, (out, in)

    def loss(W, x, y):
        h = x
        for w in W[:-1]:
            h = jax.nn.relu(h @ w.T)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h @ W[-1].T), axis=-1))

    @jax.jit
    def step(W, x, y):
        g = jax.grad(loss)(W, x, y)
        return [w - LR * d for w, d in zip(W, g)]

    @jax.jit
    def predict(W, x):
        h = x
        for w in W[:-1]:
            h = jax.nn.relu(h @ w.T)
        return jnp.argmax(h @ W[-1].T, axis=-1)
    return W, step, predict


def matmul_rate(batch, reps=50):
    rng = np.random.default_rng(0)
    W = [rng.normal(0, 0.01, (b, a)).astype(np.float32) for a, b in zip(SIZES[:-1], SIZES[1:])]
    x = rng.random((batch, SIZES[0])).astype(np.float32)

    def chain(x, W):
        def body(i, x):
            h = x
            for w in W:
                h = h @ w.T
            return x + 1e-6 * jnp.sum(h)
        return jax.lax.fori_loop(0, reps, body, x)
    f = jax.jit(chain)
    jax.block_until_ready(f(x, W))
    t0 = time.perf_counter()
    jax.block_until_ready(f(x, W))
    return reps * 2 * batch * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:])) / (
        time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=12800)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    B = args.batch
    ds = data.load("mnist").subset(args.samples, 2000, seed=0)
    x = ds.x_train.astype(np.float32)
    y = encode_labels(ds.y_train, 10, 0.0).astype(np.float32)
    circuit = brainprop()
    weights = circuit.initial_weights(0)
    rate = matmul_rate(B)
    names = ("neurosim dense (numpy)", "neurosim dense (jax)", "backprop in JAX")
    times, acc = {k: [] for k in names}, {}
    for _ in range(args.repeats):
        for name, backend in zip(names[:2], ("numpy", "jax")):
            target = DenseTarget(circuit, weights=weights, dtype=np.float32, backend=backend,
                                 batch_mean=True)
            train_trial(target, x[:B], y[:B], 0)      # warm-up (compiles on jax)
            target.check_finite()
            target.set_weights(weights)
            t0 = time.perf_counter()
            for i in range(0, len(x), B):
                train_trial(target, x[i:i + B], y[i:i + B], 0)
            target.check_finite()
            times[name].append(time.perf_counter() - t0)
            acc[name] = evaluate(target, ds.x_test, ds.y_test)
        W, step, predict = backprop_jax(weights, B)
        jax.block_until_ready(step(W, x[:B], y[:B]))   # warm-up
        t0 = time.perf_counter()
        for i in range(0, len(x), B):
            W = step(W, x[i:i + B], y[i:i + B])
        jax.block_until_ready(W)
        times[names[2]].append(time.perf_counter() - t0)
        acc[names[2]] = float(np.mean(np.asarray(predict(W, ds.x_test.astype(np.float32)))
                                      == ds.y_test))
    flops = useful_flops(len(x))
    ref = statistics.median(times[names[2]])
    print(f"{'-'.join(map(str, SIZES))} relu, batch {B}, float32, SGD {LR}, {len(x)} MNIST "
          f"samples, median of {args.repeats} interleaved runs; {flops / 1e12:.3f} TFLOP "
          f"useful work; XLA's rate on the forward products: {rate:.0f} GFLOP/s")
    print(f"{'':24s} {'seconds':>8s} {'vs JAX backprop':>16s} {'GFLOP/s':>8s} {'of rate':>8s} "
          f"{'test acc':>9s}")
    for name in names:
        med = statistics.median(times[name])
        print(f"{name:24s} {med:8.2f} {med / ref:16.2f} {flops / med / 1e9:8.1f} "
              f"{flops / med / 1e9 / rate:8.0%} {100 * acc[name]:8.2f}%")


if __name__ == "__main__":
    main()

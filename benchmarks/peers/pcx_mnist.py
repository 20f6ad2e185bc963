"""The dense-speed training run with pcx 0.6.3 (JAX, CPU), for side-by-side timing.

784-300-100-10 relu predictive coding, batch 64 (``--batch``), float32, 100 inference steps,
Adam 1e-3 on the weights, one pass over (a subset of) MNIST, then the accuracy
on the 10,000 test images. Set up the standard pcx way: value nodes (Vodes)
after each layer, forward-initialised (STATUS.INIT), the image as the input of
the first layer, the one-hot label clamped at the output Vode (its h frozen),
energy = sum over Vodes and batch of 0.5 (h - u)^2 (pxc.se_energy); inference
by plain SGD (step 0.1) on the unfrozen value nodes, then one Adam step on the
weights per batch from the energy after inference. Hidden layers apply relu;
the output layer is linear, as in pcx's own classification examples. Weights
are pcx's default (equinox) initialisation.

Run it in the peers environment (benchmarks/peers/setup_peers.sh), not in the
project's: it reads neurosim's MNIST cache with plain numpy and does not import
neurosim.

    .venv-peers/bin/python benchmarks/peers/pcx_mnist.py [--samples 60000] [--batch 64] [--energy sum]

``--energy mean`` averages the energy over the batch instead, as pcx's own MNIST
example does, which divides the inference step by the batch size (see ENERGY).

Prints one JSON line: seconds_train (the pass, JIT compilation excluded),
test_accuracy, jit_seconds (the warm-up that compiles), and the set-up.
"""
import argparse
import json
import os
import pathlib
import time

import numpy as np

import jax
import jax.numpy as jnp
import optax

import pcx
import pcx.functional as pxf
import pcx.nn as pxnn
import pcx.predictive_coding as pxc
import pcx.utils as pxu

SIZES = (784, 300, 100, 10)
B, STEPS, RATE, ADAM_LR = 64, 100, 0.1, 1e-3


# --- data: neurosim's converted cache, read with numpy only ---------------------------
def cache_path():
    """Same places neurosim.data looks: $NEUROSIM_DATA, $XDG_CACHE_HOME/neurosim,
    ~/.cache/neurosim."""
    env = os.environ.get("NEUROSIM_DATA")
    if env:
        root = pathlib.Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
        root = base / "neurosim"
    return root / "mnist.npz"


def stratified_sample(y, n, rng):
    """Same draw as neurosim.data.stratified_sample, so --samples N trains on the
    subset Dataset.subset(N, None, seed=0) gives the other contenders."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * n / counts.sum()
    share = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - share), kind="stable")
    share[order[:n - int(share.sum())]] += 1
    share = np.minimum(share, counts)
    picked = [rng.permutation(np.flatnonzero(y == c))[:s] for c, s in zip(classes, share)]
    return rng.permutation(np.concatenate(picked))


def load_mnist(n_train):
    path = cache_path()
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `neurosim data fetch mnist` with the "
                         "project's environment first")
    with np.load(path, allow_pickle=False) as z:
        x_tr, y_tr, x_te, y_te = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if n_train is not None and n_train < len(y_tr):
        idx = stratified_sample(y_tr, n_train, np.random.default_rng([0, 0]))
        x_tr, y_tr = x_tr[idx], y_tr[idx]
    scale = lambda x: (x.astype(np.float64) / 255.0).astype(np.float32)  # noqa: E731
    return scale(x_tr), y_tr.astype(np.int64), scale(x_te), y_te.astype(np.int64)


# --- the pcx model ---------------------------------------------------------------------
class Model(pxc.EnergyModule):
    def __init__(self, sizes, act_fn):
        super().__init__()
        self.act_fn = pcx.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode() for _ in sizes[1:]]
        self.vodes[-1].h.frozen = True          # the output is clamped to the label

    def __call__(self, x, y=None):
        for v, layer in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(layer(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


BATCHED = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model):
    return model(x, y)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=0)
def predict(x, *, model):
    return model(x, None)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy_sum(x, *, model):
    y_ = model(x, None)
    return jax.lax.psum(model.energy(), "batch"), y_


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy_mean(x, *, model):
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), y_


# --energy: "sum" (default) sums the energy over the batch, so each sample's value
# nodes get the gradient of their own energy and the inference step is 0.1 per
# sample, as in the other contenders. "mean" averages it over the batch, as pcx's
# discriminative MNIST example does: the value-node gradients are then divided by
# the batch size (an effective inference step of 0.1 / 64). Adam makes the weight
# updates nearly the same either way.
ENERGY = {"sum": energy_sum, "mean": energy_mean}
energy = energy_sum


@pxf.jit(static_argnums=0)
def train_on_batch(T, x, y, *, model, optim_w, optim_h):
    model.train()
    inference_grad = pxf.value_and_grad(
        pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True)(energy)
    learning_grad = pxf.value_and_grad(
        pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)

    # value nodes cleared first: the previous batch may have had another size
    with pxu.step(model, pxc.STATUS.INIT, clear_params=(pxc.VodeParam, pxc.VodeParam.Cache)):
        forward(x, y, model=model)               # forward initialisation, label clamped
    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
    for _ in range(T):                           # inference: SGD on the value nodes
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = inference_grad(x, model=model)
        optim_h.step(model, g["model"])
    optim_h.clear()
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = learning_grad(x, model=model)     # weights: one Adam step per batch
    optim_w.step(model, g["model"])


@pxf.jit()
def eval_on_batch(x, *, model):
    model.eval()
    # value nodes cleared first: they hold the last training batch's shape
    with pxu.step(model, pxc.STATUS.INIT, clear_params=(pxc.VodeParam, pxc.VodeParam.Cache)):
        return predict(x, model=model).argmax(axis=-1)


def build(seed):
    pcx.RKG.seed(seed)
    model = Model(SIZES, jax.nn.relu)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((B, SIZES[0])), jnp.zeros((B, SIZES[-1])), model=model)
        optim_h = pxu.Optim(lambda: optax.sgd(RATE))
        optim_w = pxu.Optim(lambda: optax.adam(ADAM_LR), pxu.M(pxnn.LayerParam)(model))
    return model, optim_w, optim_h


def _params(*objs):
    return [p for p in jax.tree_util.tree_leaves(
        objs, is_leaf=lambda p: isinstance(p, pcx.BaseParam)) if isinstance(p, pcx.BaseParam)]


def snapshot(*objs):
    """The values of every pcx parameter in ``objs`` (JAX arrays are immutable)."""
    return [(p, p.get()) for p in _params(*objs)]


def restore(saved):
    for p, value in saved:
        p.set(value)


def block(model):
    jax.block_until_ready(jax.tree_util.tree_leaves(model))


def batches(n):
    return [(i, min(i + B, n)) for i in range(0, n, B)]


def main():
    global B
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=B)
    ap.add_argument("--energy", choices=sorted(ENERGY), default="sum",
                    help="batch reduction of the energy (see ENERGY above); default sum")
    args = ap.parse_args()
    global energy
    B = args.batch                               # read by build() and batches()
    energy = ENERGY[args.energy]                 # read when train_on_batch is traced
    x, labels, x_test, y_test = load_mnist(args.samples)
    y = np.eye(SIZES[-1], dtype=np.float32)[labels]
    spans = batches(len(x))

    # Warm-up: compiles train_on_batch for everything the pass will meet. pcx's jit
    # keys its cache on the model and optimiser objects and on the shapes they hold,
    # i.e. on (previous batch size, this batch size), so the warm-up runs each such
    # transition of the pass once, in order, on the very objects that are then
    # trained; their state (weights, Adam moments, random key) is put back after.
    model, optim_w, optim_h = build(args.seed)
    saved = snapshot(model, optim_w, optim_h, pcx.RKG)
    warm, seen, prev = [], set(), B              # build() leaves batch-B value nodes
    for n in (b - a for a, b in spans):
        if (prev, n) not in seen:
            seen.add((prev, n))
            warm.append(n)
        prev = n
    t0 = time.perf_counter()
    for n in warm:
        train_on_batch(STEPS, jnp.asarray(x[:n]), jnp.asarray(y[:n]),
                       model=model, optim_w=optim_w, optim_h=optim_h)
    block(model)
    jit_seconds = time.perf_counter() - t0
    restore(saved)
    block(model)

    t0 = time.perf_counter()
    for a, b in spans:
        train_on_batch(STEPS, jnp.asarray(x[a:b]), jnp.asarray(y[a:b]),
                       model=model, optim_w=optim_w, optim_h=optim_h)
    block(model)
    seconds_train = time.perf_counter() - t0

    correct = 0
    for a in range(0, len(x_test), 1000):
        pred = eval_on_batch(jnp.asarray(x_test[a:a + 1000]), model=model)
        correct += int(np.sum(np.asarray(pred) == y_test[a:a + 1000]))
    print(json.dumps({"seconds_train": seconds_train,
                      "test_accuracy": correct / len(x_test),
                      "jit_seconds": jit_seconds,
                      "samples": len(x), "batch": B, "energy": args.energy, "pcx": "0.6.3", "jax": jax.__version__,
                      "backend": jax.default_backend()}))


if __name__ == "__main__":
    main()

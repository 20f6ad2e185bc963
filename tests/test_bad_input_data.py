"""Bad data files and folders: each one stops with a DataError naming the file and the fix.

Every bad input is a real file or folder written under tmp_path; nothing is downloaded
(running pip or npm fails the test, so a fetch that gets past its checks is caught).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pathlib

import brian2  # noqa: F401  (before no_downloads: importing it runs 'file' in a subprocess)
import numpy as np
import pytest

from neurosim import data
from neurosim.cli import main
from neurosim.data import DataError

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")


pytestmark = pytest.mark.usefixtures("no_downloads")


# --- IDX files -------------------------------------------------------------------------
_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D}


def idx_bytes(a: np.ndarray, dims=None) -> bytes:
    code = _CODES[a.dtype.str[1:]]
    dims = a.shape if dims is None else dims
    head = bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def idx_folder(folder, n_train=6, n_test=4, shape=(3, 2), y_train=None, gz=False):
    """A valid folder of the four standard files; returns {key: path}."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 3).astype(np.uint8)
        if y_train is None else y_train,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 3).astype(np.uint8),
    }
    paths = {}
    for base, a in arrays.items():
        raw = idx_bytes(a)
        p = folder / (base + (".gz" if gz else ""))
        p.write_bytes(gzip.compress(raw) if gz else raw)
        paths[base.split("-idx")[0]] = p
    return paths


def raises(fn, *names):
    """The DataError of ``fn()``; its message must contain every one of ``names``."""
    with pytest.raises(DataError) as e:
        fn()
    msg = str(e.value)
    for n in names:
        assert str(n) in msg, (n, msg)
    return msg


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dimensions_overflow(tmp_path, gz):
    # 2**31 * 2**31 * 4 = 2**64 bytes: an int64 product wraps to 0 and matched the empty data
    raw = idx_bytes(np.zeros(0, np.uint8), dims=(2**31, 2**31, 4))
    p = tmp_path / "huge.idx"
    p.write_bytes(gzip.compress(raw) if gz else raw)
    raises(lambda: data.read_idx(p), p, "(2147483648, 2147483648, 4)", str(2**64),
           "download it again")


@pytest.mark.parametrize("value,dtype,pos", [(2**31 - 1, "i4", 3), (-3, "i1", 2),
                                             (1000, "i2", 5)])
def test_idx_label_out_of_range(tmp_path, value, dtype, pos):
    y = (np.arange(6) % 3).astype(dtype)
    y[pos] = value
    paths = idx_folder(tmp_path / "f", y_train=y)
    msg = raises(lambda: data.load_idx_folder(tmp_path / "f"), paths["train-labels"],
                 f"label {value} at entry {pos}", "0..999", "labels file")
    assert "t10k" not in msg


def test_idx_label_bound_is_inclusive(tmp_path):
    y = (np.arange(6) % 3).astype("i2")
    y[0] = data.MAX_CLASSES - 1
    idx_folder(tmp_path / "f", y_train=y)
    assert data.load_idx_folder(tmp_path / "f").n_classes == data.MAX_CLASSES


def test_idx_bad_magic_in_folder(tmp_path):
    paths = idx_folder(tmp_path / "f")
    p = paths["t10k-images"]
    p.write_bytes(b"PK\x03\x04" + p.read_bytes()[4:])
    raises(lambda: data.load_idx_folder(tmp_path / "f"), p, "bad IDX magic", "download it again")


def test_idx_images_not_uint8(tmp_path):
    paths = idx_folder(tmp_path / "f")
    p = paths["train-images"]
    p.write_bytes(idx_bytes(np.ones((6, 3, 2), "i2")))
    raises(lambda: data.load_idx_folder(tmp_path / "f"), p, "int16", "convert the images to uint8")


def test_idx_labels_not_integers(tmp_path):
    paths = idx_folder(tmp_path / "f")
    p = paths["t10k-labels"]
    p.write_bytes(idx_bytes(np.zeros(4, "f4")))
    raises(lambda: data.load_idx_folder(tmp_path / "f"), p, "float32", "is it a labels file")


@pytest.mark.parametrize("cut,text", [(-5, "truncated"), (+3, "3 bytes after")])
def test_idx_size_differs_from_header(tmp_path, cut, text):
    paths = idx_folder(tmp_path / "f")
    p = paths["train-images"]
    raw = p.read_bytes()
    p.write_bytes(raw[:cut] if cut < 0 else raw + b"\x00" * cut)
    raises(lambda: data.load_idx_folder(tmp_path / "f"), p, text, "download it again")


def test_idx_counts_differ(tmp_path):
    paths = idx_folder(tmp_path / "f")
    paths["t10k-labels"].write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    raises(lambda: data.load_idx_folder(tmp_path / "f"), paths["t10k-images"],
           paths["t10k-labels"], "4 images", "3 labels", "matching files")


@pytest.mark.parametrize("n_train,n_test,shape,which", [(0, 4, (3, 2), "train-images"),
                                                        (6, 0, (3, 2), "t10k-images"),
                                                        (6, 4, (3, 0), "train-images")])
def test_idx_no_images_or_no_pixels(tmp_path, n_train, n_test, shape, which):
    paths = idx_folder(tmp_path / "f", n_train=n_train, n_test=n_test, shape=shape)
    raises(lambda: data.load_idx_folder(tmp_path / "f"), paths[which], "holds no images",
           "use the full files")


def test_idx_folder_missing_file_absent_folder_and_file(tmp_path):
    paths = idx_folder(tmp_path / "f")
    paths["train-labels"].unlink()
    raises(lambda: data.load_idx_folder(tmp_path / "f"), tmp_path / "f",
           "missing train-labels-idx1-ubyte", "put the four standard IDX files")
    raises(lambda: data.load_idx_folder(tmp_path / "nope"), "no such folder",
           "give the folder that holds")
    (tmp_path / "plain").write_text("not a folder")
    raises(lambda: data.load_idx_folder(tmp_path / "plain"), tmp_path / "plain",
           "is a file, not a folder", "give the folder that holds")


def test_idx_truncated_gzip_in_folder(tmp_path):
    paths = idx_folder(tmp_path / "f", n_train=300, gz=True)
    p = paths["train-images"]
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    raises(lambda: data.load_idx_folder(tmp_path / "f"), p, "broken gzip stream",
           "download it again")


def test_idx_path_is_a_folder(tmp_path):
    (tmp_path / "d.idx").mkdir()
    raises(lambda: data.read_idx(tmp_path / "d.idx"), tmp_path / "d.idx",
           "is a folder, not a file", "give the path of an IDX file")


@needs_non_root
def test_idx_unreadable_file(tmp_path):
    p = tmp_path / "a.idx"
    p.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    p.chmod(0)
    raises(lambda: data.read_idx(p), p, "cannot be read", "check its permissions")


# --- caches whose checksum matches but whose content is wrong --------------------------
def good_arrays(n_train=8, n_test=4):
    rng = np.random.default_rng(1)
    return {"x_train": rng.integers(0, 256, (n_train, 784), dtype=np.uint8),
            "y_train": (np.arange(n_train) % 10).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 784), dtype=np.uint8),
            "y_test": (np.arange(n_test) % 10).astype(np.uint8)}


def write_raw_cache(folder, meta, arrays):
    """A mnist cache as write_cache lays it out, with any meta and arrays, and a matching
    sha256 sidecar: only the content checks can refuse it."""
    folder.mkdir(exist_ok=True)
    path = folder / "mnist.npz"
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(meta if isinstance(meta, str) else json.dumps(meta)),
                        **arrays)
    path.write_bytes(buf.getvalue())
    (folder / "mnist.npz.sha256").write_text(
        f"{hashlib.sha256(buf.getvalue()).hexdigest()}  mnist.npz\n")
    return path


GOOD_META = {"format": data.CACHE_FORMAT, "name": "mnist", "image_shape": [28, 28],
             "n_classes": 10, "source": "test"}


def _without(key):
    return {k: v for k, v in GOOD_META.items() if k != key}


def _arrays(**changes):
    a = good_arrays()
    a.update(changes)
    return a


CACHE_CASES = {  # name: (meta, arrays, text the message must contain)
    "meta is a list": (["format", 1], good_arrays(), "not a JSON object"),
    "meta is a number": ("5", good_arrays(), "not a JSON object"),
    "no image_shape": (_without("image_shape"), good_arrays(), "lacks image_shape"),
    "no n_classes": (_without("n_classes"), good_arrays(), "lacks n_classes"),
    "image_shape a string": ({**GOOD_META, "image_shape": "28x28"}, good_arrays(),
                             "image_shape='28x28'"),
    "image_shape negative": ({**GOOD_META, "image_shape": [-28, -28]}, good_arrays(),
                             "image_shape=[-28, -28]"),
    "image_shape of other arrays": ({**GOOD_META, "image_shape": [10, 10]}, good_arrays(),
                                    "(N, 100)"),
    "n_classes a string": ({**GOOD_META, "n_classes": "ten"}, good_arrays(), "n_classes='ten'"),
    "n_classes a fraction": ({**GOOD_META, "n_classes": 10.5}, good_arrays(), "n_classes=10.5"),
    "n_classes huge": ({**GOOD_META, "n_classes": 2**40}, good_arrays(), "1 to 1000"),
    "n_classes below the labels": ({**GOOD_META, "n_classes": 5}, good_arrays(),
                                   "labels outside 0..4"),
    "n_classes not mnist's": ({**GOOD_META, "n_classes": 12}, good_arrays(),
                              "records 12 classes of (28, 28) images; mnist has 10 classes"),
    "image_shape not mnist's": ({**GOOD_META, "image_shape": [784]},
                                good_arrays(), "records 10 classes of (784,) images"),
    "x float": (GOOD_META, _arrays(x_train=np.zeros((8, 784))), "float64"),
    "x three-d": (GOOD_META, _arrays(x_test=np.zeros((4, 28, 28), np.uint8)), "x_test has shape"),
    "x and y lengths differ": (GOOD_META, _arrays(y_train=np.zeros(7, np.uint8)),
                               "8 train images but labels of shape (7,)"),
    "array missing": (GOOD_META, {k: v for k, v in good_arrays().items() if k != "y_test"},
                      "cannot be read"),
}


@pytest.mark.parametrize("case", list(CACHE_CASES))
def test_cache_with_bad_content_is_corrupt(tmp_path, case):
    meta, arrays, text = CACHE_CASES[case]
    path = write_raw_cache(tmp_path / "c", meta, arrays)
    raises(lambda: data.load("mnist", root=tmp_path / "c"), path, text,
           "corrupt or incomplete", "delete it", "`neurosim data fetch mnist`")


def test_fetch_refetches_cache_with_bad_meta(tmp_path):
    """A bad meta makes the cache count as not there: fetch goes on to download it."""
    write_raw_cache(tmp_path / "c", _without("n_classes"), good_arrays())
    with pytest.raises(AssertionError, match="tried to run a subprocess"):
        data.fetch("mnist", root=tmp_path / "c", progress=False)


def test_good_raw_cache_loads(tmp_path):
    """The helper writes caches load() accepts, so the refusals above are about content."""
    write_raw_cache(tmp_path / "c", GOOD_META, good_arrays())
    ds = data.load("mnist", root=tmp_path / "c")
    assert ds.n_classes == 10 and ds.x_train.shape == (8, 784)


@needs_non_root
def test_unreadable_cache(tmp_path):
    path = write_raw_cache(tmp_path / "c", GOOD_META, good_arrays())
    path.chmod(0)
    raises(lambda: data.load("mnist", root=tmp_path / "c"), path, "cannot be read",
           "check its permissions")


# --- the data folder of a fetch --------------------------------------------------------
FOLDER_FIX = ("--data-dir", "$NEUROSIM_DATA")


def test_fetch_into_a_regular_file(tmp_path):
    f = tmp_path / "datafile"
    f.write_text("x")
    raises(lambda: data.fetch("mnist", root=f, progress=False), f, "is a file, not a folder",
           *FOLDER_FIX)
    raises(lambda: data.load("fashion-mnist", root=f, download=True), f, *FOLDER_FIX)


def test_fetch_below_a_regular_file(tmp_path):
    f = tmp_path / "datafile"
    f.write_text("x")
    raises(lambda: data.fetch("mnist", root=f / "sub", progress=False), f / "sub",
           "cannot be created or written", *FOLDER_FIX)


@needs_non_root
def test_fetch_into_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        raises(lambda: data.fetch("mnist", root=ro, progress=False), ro,
               "cannot be created or written", *FOLDER_FIX)
        raises(lambda: data.fetch("mnist", root=ro / "new", progress=False), ro / "new",
               "cannot be created or written", *FOLDER_FIX)
    finally:
        ro.chmod(0o700)


def test_fetch_into_a_read_only_file_system():
    # sysfs refuses new entries even to root (the chmod test above is skipped as root)
    ro = pathlib.Path("/sys/neurosim-data")
    raises(lambda: data.fetch("mnist", root=ro, progress=False), ro,
           "cannot be created or written", *FOLDER_FIX)


def test_fetch_without_free_space(tmp_path, monkeypatch):
    # a full disk cannot be made here: disk_usage reports 1 MB free in the data folder
    folder = tmp_path / "d"
    real = data.shutil.disk_usage

    def usage(p):
        return type("U", (), {"free": 1 << 20}) if p == folder else real(p)
    monkeypatch.setattr(data.shutil, "disk_usage", usage)
    raises(lambda: data.fetch("mnist", root=folder, progress=False), folder, "1 MB free",
           "fetching mnist needs about", "free some space", *FOLDER_FIX)


def test_cli_data_fetch_into_a_file(tmp_path, capsys):
    f = tmp_path / "datafile"
    f.write_text("x")
    assert main(["data", "fetch", "mnist", "--data-dir", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(f) in err and "--data-dir" in err
    assert "Traceback" not in err

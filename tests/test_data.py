"""Every MNIST source yields the same MNIST(train, val, test); every bad input is a DataError."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from hw5jax import data
from hw5jax.data import DataError, load_mnist


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty data cache, and no tfds dataset anywhere."""
    monkeypatch.setenv("HW5JAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return tmp_path / "cache"


def nielsen_pickle(path, sizes=(60, 20, 20), seed=0):
    """A small file in Nielsen's format: float32 pixels k/256, int64 labels, protocol 2."""
    rng = np.random.default_rng(seed)
    splits, raw = [], []
    for n in sizes:
        k = rng.integers(0, 256, (n, 784))
        y = rng.integers(0, 10, n)
        splits.append(((k / 256.0).astype(np.float32), y.astype(np.int64)))
        raw.append((k.astype(np.uint8), y.astype(np.int32)))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(splits), f, protocol=2)
    return raw


def check_layout(mnist, sizes):
    for split, n in zip(mnist, sizes, strict=True):
        assert split.images.dtype == np.uint8 and split.images.shape == (n, 28, 28, 1)
        assert split.labels.dtype == np.int32 and split.labels.shape == (n,)


def test_nielsen_pickle_from_a_path_recovers_uint8_exactly(tmp_path):
    raw = nielsen_pickle(tmp_path / "m.pkl.gz")
    mnist = load_mnist(str(tmp_path / "m.pkl.gz"))
    check_layout(mnist, (60, 20, 20))
    for split, (k, y) in zip(mnist, raw, strict=True):
        np.testing.assert_array_equal(split.images.reshape(-1, 784), k)
        np.testing.assert_array_equal(split.labels, y)


class _Boom:
    """Unpickling this would run os.system: the loader must refuse it without running it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_foreign_global_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((_Boom(marker), np.zeros(1)),) * 3, f, protocol=2)
    with pytest.raises(DataError, match="refused global posix.system|refused global os.system"):
        load_mnist(str(path))
    assert not marker.exists()


def test_truncated_gzip_is_a_data_error(tmp_path):
    nielsen_pickle(tmp_path / "m.pkl.gz")
    blob = (tmp_path / "m.pkl.gz").read_bytes()
    (tmp_path / "cut.pkl.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        load_mnist(str(tmp_path / "cut.pkl.gz"))


def test_embedded_file_with_a_wrong_sha256_is_refused(cache):
    cache.mkdir(parents=True)
    nielsen_pickle(cache / data.EMBEDDED_FILE)
    with pytest.raises(DataError, match="sha256"):
        load_mnist("embedded")


def test_auto_without_any_data_names_the_fix(cache):
    with pytest.raises(DataError, match="python -m hw5jax.data fetch"):
        load_mnist("auto")


def test_unknown_source_is_a_data_error(cache):
    with pytest.raises(DataError, match="unknown data source"):
        load_mnist("no-such-thing")


# ---------------------------------------------------------------------------- IDX


@pytest.fixture(autouse=True)
def small_splits(monkeypatch):
    """IDX and tfds tests use a 20-image training split: same code path, tiny files."""
    monkeypatch.setitem(data.SPLIT_SIZES, "train", 20)


def write_idx(directory, n_train=30, n_test=7, gz=False, bad=None):
    rng = np.random.default_rng(0)
    directory.mkdir(exist_ok=True)
    arrays = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[part] = (images, labels)
        img = struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        lab = struct.pack(">II", 2049, n) + labels.tobytes()
        if bad == "magic" and part == "train":
            img = struct.pack(">I", 1234) + img[4:]
        if bad == "count" and part == "t10k":
            lab = struct.pack(">II", 2049, n + 3) + labels.tobytes()
        for name, blob in ((f"{part}-images-idx3-ubyte", img), (f"{part}-labels-idx1-ubyte", lab)):
            if gz:
                (directory / (name + ".gz")).write_bytes(gzip.compress(blob))
            else:
                (directory / name).write_bytes(blob)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_splits_train_and_validation(tmp_path, gz):
    arrays = write_idx(tmp_path / "idx", gz=gz)
    mnist = load_mnist(str(tmp_path / "idx"))
    check_layout(mnist, (20, 10, 7))
    np.testing.assert_array_equal(mnist.val.images[..., 0], arrays["train"][0][20:])
    np.testing.assert_array_equal(mnist.test.labels, arrays["t10k"][1])


def test_idx_with_a_wrong_magic_number(tmp_path):
    write_idx(tmp_path / "idx", bad="magic")
    with pytest.raises(DataError, match="bad IDX magic number"):
        load_mnist(str(tmp_path / "idx"))


def test_idx_with_inconsistent_counts(tmp_path):
    write_idx(tmp_path / "idx", bad="count")
    with pytest.raises(DataError, match="header says 10 items"):
        load_mnist(str(tmp_path / "idx"))


def test_idx_directory_missing_a_file(tmp_path):
    write_idx(tmp_path / "idx")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_mnist(str(tmp_path / "idx"))


# ---------------------------------------------------------------------------- tfds


def test_tfds_source_with_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=50):
        mnist = load_mnist("tfds")
    # mock_data gives every split the same size; the loader slices train / validation.
    check_layout(mnist, (20, 30, 50))
    assert set(np.unique(mnist.train.labels)) <= set(range(10))


# ---------------------------------------------------------------------------- real MNIST


@pytest.mark.mnist
def test_embedded_mnist_is_nielsens_split(mnist):
    check_layout(mnist, (50_000, 10_000, 10_000))
    # The uint8 cache and the verified pickle agree exactly.
    from_pickle = data.mnist._load_nielsen_pickle(data.embedded_path())
    for cached, decoded in zip(mnist, from_pickle, strict=True):
        np.testing.assert_array_equal(cached.images, decoded.images)
        np.testing.assert_array_equal(cached.labels, decoded.labels)
    assert data.sha256_file(data.embedded_path()) == data.EMBEDDED_SHA256
    # Nielsen's first training label is a 5 (the famous first MNIST digit).
    assert mnist.train.labels[0] == 5
    assert np.bincount(mnist.test.labels).min() > 800

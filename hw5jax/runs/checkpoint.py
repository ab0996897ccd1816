"""Orbax checkpoints: one directory holds a pytree (params, optimizer state, step, ...) and
a JSON metadata record (hyperparameters, provenance).

    save(path, {"params": ..., "opt_state": ..., "step": ...}, {"optimizer": "adam", ...})
    state, meta = restore(path)                 # arrays as saved (dicts/lists of jax arrays)
    state, meta = restore(path, like=state0)    # same pytree structure/classes as `like`
    meta = read_metadata(path)                  # the record alone, no arrays read

Saving is synchronous and atomic: the checkpoint is written into a hidden sibling directory
and renamed to `path` only once it is complete, so `path` never holds a half-written
checkpoint (a failed save leaves the previous checkpoint, if any, in place, and no temporary
directory behind). Every file of a checkpoint is recorded with its size and sha256 in
`hw5jax-sha256.json`; `restore` verifies them first, so a truncated or bit-flipped file is
refused instead of restored as garbage (orbax's own reads do not detect a flipped byte).
Checkpoints written before the digests existed are restored without that check.

Every failure is a `CheckpointError` whose one-line message names the checkpoint's path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from hw5jax.core.sharding import is_primary, to_host
from hw5jax.data.fetch import sha256_file
from hw5jax.errors import CheckpointError

DIGESTS = "hw5jax-sha256.json"
_STAGING_PREFIX = ".hw5jax-saving-"
_REPLACED_PREFIX = ".hw5jax-replaced-"


def _checkpointer() -> ocp.Checkpointer:
    # One process reads or writes the whole checkpoint (of several, process 0 writes): no
    # waiting for the others.
    me = jax.process_index()
    alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    handler = ocp.CompositeCheckpointHandler(
        composite_options=ocp.CompositeOptions(multiprocessing_options=alone)
    )
    return ocp.Checkpointer(handler, multiprocessing_options=alone)


# ----------------------------------------------------------------------------- helpers


def error_reason(err: BaseException) -> str:
    """One short line saying why an operation failed: the OS error if there is one (orbax
    and tensorstore wrap it in ValueError/RuntimeError text), else the first line."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    text = str(err).strip()
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        return os.strerror(int(code.group(1)))
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= 240 else line[:237] + "..."


class _HeldLogs(logging.Filter):
    """Holds back orbax's warnings and errors (it logs a background thread's exception with
    its whole traceback before re-raising it): the exception itself becomes one clear line."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.records.append(record)
            return False
        return True

    def discard(self) -> None:
        """Drop what was held (the failure it explains is being reported otherwise)."""
        self.records.clear()


@contextlib.contextmanager
def orbax_logs_held() -> Iterator[_HeldLogs]:
    """While open, orbax's (absl's) warnings and errors are held back; they are logged at
    the end only if the block succeeds (a failure is reported by its exception instead, or
    by whoever calls `discard()` on the object this yields)."""
    logger = logging.getLogger("absl")
    held = _HeldLogs()
    logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)
    for record in held.records:  # success: nothing to hide after all
        logger.handle(record)


def _utf8(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeError:
        return False
    return True


@contextlib.contextmanager
def native_dir(directory: Path) -> Iterator[Path]:
    """`directory` in a form tensorstore accepts. Its paths must be valid UTF-8, so a
    directory whose name is not (a byte 0xff in it, say) is reached through
    /proc/self/fd/N of an open descriptor, where the kernel resolves the bytes."""
    if _utf8(directory) or not Path("/proc/self/fd").is_dir():
        yield directory
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (outermost first)."""
    missing = []
    for d in (directory, *directory.parents):
        if d.exists():
            if not d.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(d))
            break
        missing.append(d)
    directory.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` looks like a checkpoint written by `save` (state/ and metadata/)."""
    path = Path(path)
    return (path / "state").is_dir() and (path / "metadata").is_dir()


# ----------------------------------------------------------------------------- digests


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != DIGESTS)


def write_digests(root: Path, skip: Collection[str] = ()) -> None:
    """Record every file under `root` (a checkpoint directory) but those of `skip` (paths
    relative to it) with its size and sha256 in `root/hw5jax-sha256.json` (fsynced);
    `verify_digests` checks them."""
    files = {
        rel: {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in _files(root)
        if (rel := p.relative_to(root).as_posix()) not in skip
    }
    with open(root / DIGESTS, "w", encoding="utf-8") as f:
        json.dump({"format": 1, "files": files}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def verify_digests(path: Path) -> None:
    """Check every file `write_digests` recorded under `path`: a missing, truncated or altered
    one is a CheckpointError naming it. A checkpoint without the record (written before the
    digests existed) passes: orbax's own checks only."""
    record = path / DIGESTS
    if not record.exists():
        return  # written before digests existed: orbax's own checks only
    try:
        files = json.loads(record.read_text(encoding="utf-8"))["files"]
        entries = [(str(rel), int(e["size"]), str(e["sha256"])) for rel, e in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"{path}: corrupt checkpoint: unreadable {DIGESTS} ({error_reason(err)})"
        ) from err
    if not entries:
        raise CheckpointError(f"{path}: corrupt checkpoint: {DIGESTS} lists no files")
    for rel, size, sha256 in entries:
        file = path / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute() or not file.is_file():
            raise CheckpointError(f"{path}: incomplete checkpoint: {rel} is missing")
        got = file.stat().st_size
        if got != size:
            raise CheckpointError(
                f"{path}: corrupt checkpoint: {rel} has {got} bytes, "
                f"expected {size} (truncated or damaged)"
            )
        try:
            digest = sha256_file(file)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read {rel}: {error_reason(err)}") from err
        if digest != sha256:
            raise CheckpointError(
                f"{path}: corrupt checkpoint: {rel} does not match its "
                "recorded sha256 (damaged or modified)"
            )


# `save` calls it by this name (tests/test_hostile.py replaces it there to cut a save short).
_write_digests = write_digests

# ----------------------------------------------------------------------------- save


def _check_replaceable(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CheckpointError(
            f"{path}: exists and is not a checkpoint directory; refusing to replace it"
        )
    if path.is_dir() and not is_checkpoint(path) and any(path.iterdir()):
        raise CheckpointError(
            f"{path}: a non-empty directory that is not a checkpoint; refusing to replace it"
        )


def _swap_into_place(staging: Path, path: Path) -> None:
    """Rename the complete checkpoint `staging` to `path`; an old checkpoint there is moved
    aside first and deleted only once the new one is in place."""
    if not path.exists():
        os.rename(staging, path)
        return
    replaced = path.parent / f"{_REPLACED_PREFIX}{secrets.token_hex(6)}"
    os.rename(path, replaced)
    try:
        os.rename(staging, path)
    except BaseException:
        os.rename(replaced, path)
        raise
    _remove(replaced)


def save(path: str | os.PathLike, state: Any, metadata: dict | None = None) -> Path:
    """Write `state` (any pytree of arrays) and `metadata` (JSON-able dict) to `path`.

    An existing checkpoint at `path` is replaced (anything else there is refused). Returns
    the absolute path. Raises CheckpointError (the disk is full, the directory read-only,
    ...) after removing everything it wrote: `path` then holds what it held before.
    Of several processes (`hw5jax.core.sharding`), every one must call it; process 0 writes.
    """
    path = Path(path).absolute()
    state = to_host(state)
    if not is_primary():
        return path
    _check_replaceable(path)
    try:
        created = _make_parents(path.parent)
    except OSError as err:
        where = f" {err.filename}" if err.filename and err.filename != str(path.parent) else ""
        raise CheckpointError(
            f"{path}: cannot create its directory:{where} {error_reason(err)}"
        ) from err
    name = f"{_STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    staging = path.parent / name
    try:
        with native_dir(path.parent) as parent, orbax_logs_held(), _checkpointer() as ckptr:
            ckptr.save(
                parent / name,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    metadata=ocp.args.JsonSave(metadata or {}),
                ),
            )
        _write_digests(staging)
        _swap_into_place(staging, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        # orbax's writer threads may still be finishing after the failure: sweep until
        # nothing of this save is left (bounded: ~2 s).
        for _ in range(20):
            leftovers = [staging, *path.parent.glob(f"{name}.orbax-checkpoint-tmp*")]
            if not any(p.exists() for p in leftovers):
                break
            for leftover in leftovers:
                _remove(leftover)
            time.sleep(0.1)
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty
        if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit
            raise
        raise CheckpointError(f"{path}: cannot save checkpoint: {error_reason(err)}") from err
    return path


# ----------------------------------------------------------------------------- restore


def _abstract(leaf: Any) -> Any:
    if isinstance(leaf, np.generic):  # numpy scalars: orbax only takes arrays or Python ones
        return jax.ShapeDtypeStruct((), leaf.dtype)
    return ocp.utils.to_shape_dtype_struct(leaf)


def restore(path: str | os.PathLike, like: Any = None) -> tuple[Any, dict]:
    """Read a checkpoint written by `save`: returns `(state, metadata)`.

    `like` (optional) is a pytree with the expected structure, shapes and dtypes (concrete
    arrays or `jax.ShapeDtypeStruct`s); the restored state then has its exact structure, and
    a checkpoint of another structure or shape is refused with a `CheckpointError`. So is a
    checkpoint with a missing, truncated or altered file.
    """
    path = _existing(path)
    verify_digests(path)
    abstract = None
    if like is not None:
        abstract = jax.tree.map(_abstract, like)
    try:
        with native_dir(path) as native, orbax_logs_held(), _checkpointer() as ckptr:
            if like is not None:
                _compare_with_like(path, native, abstract)
            restored = ckptr.restore(
                native,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    metadata=ocp.args.JsonRestore(),
                ),
            )
    except CheckpointError:
        raise
    except Exception as err:  # orbax raises many kinds (ValueError, KeyError, OSError, ...)
        raise CheckpointError(f"{path}: cannot restore checkpoint: {error_reason(err)}") from err
    state = restored["state"]
    if like is not None:
        _check_shapes(path, state, like)
    return state, _metadata_record(path, restored["metadata"])


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata record of a checkpoint written by `save`, without reading its arrays
    (e.g. the hyperparameters needed to build the `like` of `restore`, which then verifies
    every file)."""
    path = _existing(path)
    try:
        with native_dir(path) as native, orbax_logs_held(), _checkpointer() as ckptr:
            restored = ckptr.restore(
                native, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
            )
    except Exception as err:  # orbax raises many kinds (ValueError, KeyError, OSError, ...)
        raise CheckpointError(
            f"{path}: cannot read checkpoint metadata: {error_reason(err)}"
        ) from err
    return _metadata_record(path, restored["metadata"])


def _existing(path: str | os.PathLike) -> Path:
    """`path` made absolute, if it holds a checkpoint written by `save`."""
    path = Path(path).absolute()
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory here")
    if not is_checkpoint(path):
        raise CheckpointError(
            f"{path}: not an hw5jax checkpoint (expected 'state/' and 'metadata/' inside)"
        )
    return path


def _metadata_record(path: Path, metadata: Any) -> dict:
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(
            f"{path}: corrupt checkpoint: metadata is a "
            f"{type(metadata).__name__}, not a JSON object"
        )
    return dict(metadata or {})


def _describe(shape: Any, dtype: Any) -> str:
    return f"{dtype}[{','.join(map(str, shape))}]"


def _compare_with_like(path: Path, native: Path, abstract: Any) -> None:
    """Refuse a checkpoint whose arrays (names, shapes, dtypes, read from its metadata,
    before any data) differ from the expected `abstract` tree: orbax would raise a long
    message for another structure, and silently cast another dtype."""
    from etils import epath

    try:
        saved = ocp.tree.to_flat_dict(
            ocp.StandardCheckpointHandler().metadata(epath.Path(native / "state"))
        )
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint's metadata: {error_reason(err)}"
        ) from err
    want = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(abstract, keep_empty_nodes=False))

    def name(key: tuple) -> str:
        return "/".join(map(str, key))

    missing = sorted(name(k) for k in want if k not in saved)
    unexpected = sorted(name(k) for k in saved if k not in want)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} expected array(s) missing ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''})"
            )
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                f"{', ...' if len(unexpected) > 3 else ''})"
            )
        raise CheckpointError(f"{path}: checkpoint of another model: " + "; ".join(parts))
    for key, w in want.items():
        s = saved[key]
        if not (hasattr(w, "shape") and hasattr(s, "shape")):
            continue  # a Python scalar: restored as whatever number was saved
        same_dtype = (
            w.dtype is None
            or s.dtype is None
            or jax.dtypes.issubdtype(w.dtype, jax.dtypes.prng_key)
            or np.dtype(s.dtype) == np.dtype(w.dtype)
        )
        if tuple(s.shape) != tuple(w.shape) or not same_dtype:
            raise CheckpointError(
                f"{path}: checkpoint of another shape or dtype: {name(key)} is "
                f"{_describe(s.shape, s.dtype)}, expected {_describe(w.shape, w.dtype)}"
            )


def _check_shapes(path: Path, state: Any, like: Any) -> None:
    got = jax.tree.leaves(state)
    want = jax.tree.leaves(like)
    if len(got) != len(want):
        raise CheckpointError(f"{path}: checkpoint has {len(got)} arrays, expected {len(want)}")
    for g, w in zip(got, want, strict=True):
        if tuple(np.shape(g)) != tuple(np.shape(w)):
            raise CheckpointError(
                f"{path}: checkpoint of another shape ({tuple(np.shape(g))} vs expected "
                f"{tuple(np.shape(w))})"
            )

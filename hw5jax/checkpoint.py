"""Orbax checkpoints: one directory holds a pytree (params, optimizer state, step, ...) and
a JSON metadata record (hyperparameters, provenance).

    save(path, {"params": ..., "opt_state": ..., "step": ...}, {"optimizer": "adam", ...})
    state, meta = restore(path)                 # arrays as saved (dicts/lists of jax arrays)
    state, meta = restore(path, like=state0)    # same pytree structure/classes as `like`

Saving is synchronous (the checkpoint is complete and committed when `save` returns), so a
process that exits right after never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(Exception):
    """A checkpoint is missing, incomplete, or not what the caller expects."""


def _checkpointer() -> ocp.Checkpointer:
    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def save(path: str | os.PathLike, state: Any, metadata: dict | None = None) -> Path:
    """Write `state` (any pytree of arrays) and `metadata` (JSON-able dict) to `path`.

    An existing checkpoint at `path` is replaced. Returns the absolute path.
    """
    path = Path(path).absolute()
    state = jax.device_get(state)
    with _checkpointer() as ckptr:
        ckptr.save(
            path,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                metadata=ocp.args.JsonSave(metadata or {}),
            ),
            force=True,
        )
    return path


def restore(path: str | os.PathLike, like: Any = None) -> tuple[Any, dict]:
    """Read a checkpoint written by `save`: returns `(state, metadata)`.

    `like` (optional) is a pytree with the expected structure, shapes and dtypes (concrete
    arrays or `jax.ShapeDtypeStruct`s); the restored state then has its exact structure, and
    a checkpoint of another shape is refused with a `CheckpointError`.
    """
    path = Path(path).absolute()
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory here")
    if not (path / "state").is_dir() or not (path / "metadata").is_dir():
        raise CheckpointError(
            f"{path}: not an hw5jax checkpoint (expected 'state/' and 'metadata/' inside)"
        )
    abstract = None
    if like is not None:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        with _checkpointer() as ckptr:
            restored = ckptr.restore(
                path,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    metadata=ocp.args.JsonRestore(),
                ),
            )
    except Exception as err:  # orbax raises many kinds (ValueError, KeyError, OSError, ...)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot restore checkpoint: {first_line}") from err
    state = restored["state"]
    if like is not None:
        _check_shapes(path, state, like)
    return state, dict(restored["metadata"] or {})


def _check_shapes(path: Path, state: Any, like: Any) -> None:
    got = jax.tree.leaves(state)
    want = jax.tree.leaves(like)
    if len(got) != len(want):
        raise CheckpointError(f"{path}: checkpoint has {len(got)} arrays, expected {len(want)}")
    for g, w in zip(got, want, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            raise CheckpointError(
                f"{path}: checkpoint of another shape ({tuple(g.shape)} vs expected "
                f"{tuple(w.shape)})"
            )

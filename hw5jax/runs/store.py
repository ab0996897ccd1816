"""Per-epoch checkpoints of one program (one run, or a stack of runs trained as one vmapped
program): the training state and a JSON record (epoch, history so far). `ProgramStore` is
the `hw5jax.core.train.Store` the training loop is given by the experiment layer.

    OUT/state/<program>/<epoch>/   orbax checkpoints, the latest two kept

Written asynchronously (orbax) while the next epoch trains, awaited at `close()`. A
checkpoint cut short (kill -9 during the write) is an uncommitted temporary directory:
orbax removes it and the previous epoch's is used. A committed checkpoint that cannot be
read is an error, never a silent restart.

Every file of an epoch's checkpoint is recorded with its sha256 (`hw5jax-sha256.json`, as
the final checkpoints are, `hw5jax.runs.checkpoint`) once orbax has written them all (of
several processes: every one's), before its temporary directory is renamed into place: a
committed epoch always carries its digests, and `latest` verifies them before restoring,
so a flipped bit in an array is an error naming the checkpoint, not a resume from garbage.
Checkpoints written before the digests existed are restored without that check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from hw5jax.core.sharding import is_primary
from hw5jax.errors import CheckpointError
from hw5jax.runs.checkpoint import (
    error_reason,
    native_dir,
    orbax_logs_held,
    verify_digests,
    write_digests,
)

# Where orbax writes a step before renaming it into place (orbax's atomicity.TMP_DIR_SUFFIX),
# and the one file it still changes after the digests are written (the step's bookkeeping,
# stamped with the commit time as it is renamed; no array or record in it).
_ORBAX_TMP = ".orbax-checkpoint-tmp"
_ORBAX_STEP_METADATA = "_CHECKPOINT_METADATA"


def plain(value: Any) -> Any:
    """A value as JSON would give it back (tuples -> lists)."""
    return json.loads(json.dumps(value))


class ProgramStore:
    """Per-epoch checkpoints of one program under `directory`: the (stacked) training state
    and a JSON record (epoch, history so far, ...). Use as a context manager, or `close()`:
    pending asynchronous writes are awaited there."""

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.directory = Path(directory).absolute()
        self._saving: int | None = None  # the epoch whose save is in flight
        # For the store's whole life (its writes finish in background threads): orbax's
        # tracebacks held back (a failure is one CheckpointError line), and a directory whose
        # name is not UTF-8 handed to tensorstore through a descriptor.
        self._context = contextlib.ExitStack()
        self._held = self._context.enter_context(orbax_logs_held())
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            native = self._context.enter_context(native_dir(self.directory))
            self.manager = ocp.CheckpointManager(
                native,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep,
                    cleanup_tmp_directories=True,
                    enable_async_checkpointing=True,
                    async_options=ocp.AsyncOptions(post_finalization_callback=self._seal),
                ),
            )
        except Exception as err:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            self._context.close()
            raise CheckpointError(f"{self.directory}: cannot open: {error_reason(err)}") from err

    def latest(self, like: Any) -> tuple[Any, dict] | None:
        """(state, record) of the latest committed epoch, state shaped (and sharded) like
        `like`; None if nothing was saved yet."""
        step = self.manager.latest_step()
        if step is None:
            return None
        where = self.directory / str(step)
        try:
            verify_digests(where)
        except CheckpointError as err:
            raise CheckpointError(
                f"{where}: cannot resume from this checkpoint "
                f"({str(err).removeprefix(f'{where}: ')}); delete {self.directory} to train "
                "this program again from its start"
            ) from err
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()
                ),
            )
        except Exception as err:  # noqa: BLE001
            raise CheckpointError(
                f"{self.directory / str(step)}: cannot resume from this checkpoint "
                f"({_first_line(err)}); delete {self.directory} to train this program "
                "again from its start"
            ) from err
        state, record = restored["state"], dict(restored["record"])
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(like), strict=True):
            if got.shape != want.shape or got.dtype != want.dtype:
                raise CheckpointError(
                    f"{self.directory / str(step)}: checkpoint of another "
                    f"shape ({got.shape} vs {want.shape})"
                )
        if record.get("epoch") != step:
            raise CheckpointError(
                f"{self.directory / str(step)}: record of epoch "
                f"{record.get('epoch')} in the checkpoint of epoch {step}"
            )
        return state, record

    def save(self, epoch: int, state: Any, record: Mapping[str, Any]) -> None:
        try:
            self.manager.wait_until_finished()  # as orbax's save would: one save in flight
            self._saving = epoch
            self.manager.save(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    record=ocp.args.JsonSave({**plain(_lists(record)), "epoch": epoch}),
                ),
            )
        except Exception as err:  # noqa: BLE001
            self._held.discard()
            raise CheckpointError(
                f"{self.directory}: cannot save epoch {epoch}: {error_reason(err)}"
            ) from err

    def _seal(self) -> None:
        """Orbax's callback (in its writer thread, on the process that commits) once every
        file of the save in flight is written, before its directory is renamed into place:
        record their digests in it."""
        if self._saving is None or not is_primary():
            return
        pending = self.directory / f"{self._saving}{_ORBAX_TMP}"
        if not pending.is_dir():
            raise CheckpointError(f"{pending}: the epoch being saved is not there")
        write_digests(pending, skip={_ORBAX_STEP_METADATA})

    def close(self) -> None:
        """Wait for pending writes and release the manager. A write that failed in the
        background (disk full, ...) is a CheckpointError here; its temporary directory is
        removed (a resumed run restarts from the last committed epoch)."""
        try:
            self.manager.wait_until_finished()
        except Exception as err:  # noqa: BLE001
            self._held.discard()  # orbax's tracebacks of the failure: this error says it
            # Its abandoned asyncio futures would also print their tracebacks at exit.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            for _ in range(20):  # orbax's writer threads may still be finishing: ~2 s at most
                leftovers = list(self.directory.glob("*.orbax-checkpoint-tmp*"))
                if not leftovers:
                    break
                for tmp in leftovers:
                    shutil.rmtree(tmp, ignore_errors=True)
                time.sleep(0.1)
            raise CheckpointError(
                f"{self.directory}: cannot save a checkpoint: {error_reason(err)}"
            ) from err
        finally:
            try:
                self.manager.close()
            finally:
                self._context.close()

    def __enter__(self) -> ProgramStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lists(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

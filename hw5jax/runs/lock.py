"""One process at a time in an output directory: an exclusive `flock` on OUT/run.lock, held
open for the run's life. A second process pointed at the same directory is refused at once,
naming the process (pid, host) that holds it; the kernel drops the lock of a process that
dies, however it dies, so a lock left by `kill -9` never blocks the next start.

    lease = DirLock.take(out)     # ConfigError "--out OUT: in use by process 1234 on host h"
    ...
    lease.release()               # also at garbage collection and interpreter exit

The file names its holder (JSON: pid, host, since) for that message only; the lock itself is
the `flock`, not the file's content. A lock released normally removes the file (while it is
still held: a process that opened the old file finds it gone and opens the new one); one
left by a killed process is taken over by the next. Within one process the directory's lock
is shared: claiming it again (a library caller, the tests) takes another lease on it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path

from hw5jax.errors import ConfigError

LOCK_FILE = "run.lock"

_held: dict[tuple[int, int], _Held] = {}  # (st_dev, st_ino) of OUT -> this process's lock
_guard = threading.Lock()


class _Held:
    """This process's open, locked OUT/run.lock, and how many leases share it."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd
        self.leases = 0

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            if _same_file(self.fd, self.path):
                os.unlink(self.path)  # still held: nobody can be between open and flock here
        os.close(self.fd)  # the lock goes with the descriptor


class DirLock:
    """A lease on the lock of one output directory (see module doc)."""

    def __init__(self, key: tuple[int, int], held: _Held):
        self._key = key
        self._held: _Held | None = held
        self._finalizer = weakref.finalize(self, _release, key, held)

    @classmethod
    def take(cls, directory: str | os.PathLike) -> DirLock:
        """Lock `directory` (an existing directory) for this process, or raise ConfigError
        naming the process that holds it."""
        directory = Path(directory)
        info = os.stat(directory)
        key = (info.st_dev, info.st_ino)
        with _guard:
            held = _held.get(key)
            if held is None:
                held = _held[key] = _Held(directory / LOCK_FILE, _lock(directory))
            held.leases += 1
        return cls(key, held)

    @property
    def path(self) -> Path | None:
        """The lock file while this lease holds it, else None."""
        return None if self._held is None else self._held.path

    def release(self) -> None:
        """Give this lease back; the lock goes with the last one. Idempotent."""
        self._held = None
        self._finalizer()


def _release(key: tuple[int, int], held: _Held) -> None:
    with _guard:
        held.leases -= 1
        if held.leases > 0:
            return
        if _held.get(key) is held:
            del _held[key]
    held.drop()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _lock(directory: Path) -> int:
    """The descriptor of `directory`/run.lock, exclusively locked, naming this process."""
    path = directory / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise ConfigError(
                f"--out {directory}: cannot lock {LOCK_FILE}: {err.strerror or err}"
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _holder(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(
                    f"--out {directory}: cannot lock {LOCK_FILE}: {err.strerror or err}"
                ) from err
            raise ConfigError(
                f"--out {directory}: in use by {holder}; wait for it to end, or choose "
                "another --out"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # removed by its holder between our open and our lock: open the new one
    note = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with contextlib.suppress(OSError):  # the note is for messages only (a full disk: none)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
    return fd


def _holder(fd: int) -> str:
    """Who holds the lock, as its note says: "process PID on host HOST (since TIME)"."""
    for _ in range(10):  # the holder writes its note just after locking: wait a moment
        try:
            note = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            return f"process {int(note['pid'])} on host {note['host']} (since {note['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another process"

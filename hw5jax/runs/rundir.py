"""Runs that survive interruption. An output directory remembers the command that made it;
every program (one run, or a stack of runs trained as one vmapped program) checkpoints its
whole state at the end of each epoch; finished stages are recorded. The same command pointed
at the same `--out` therefore continues where it stopped, and gives the same results as a run
never interrupted (the RNG state is part of every checkpoint).

    OUT/run.json                  the experiment and its effective config (another is refused),
                                  the source's git commit and requirements.lock's sha256,
                                  the command, versions, CPU and start time (`environment`)
    OUT/run.lock                  locked by the process running in OUT (`hw5jax.runs.lock`)
    OUT/state/<stage>.json        the record of a finished stage (e.g. one optimizer's entry)
    OUT/state/<program>/<epoch>/  orbax checkpoints of a program, the latest two kept

    run_dir = RunDir.claim(out, "optim_sweep", config)  # a second process: refused at once
    with run_dir:                       # Ctrl-C, SIGTERM -> Interrupted("... to resume ...")
        entry = run_dir.stage("sgd", lambda: tune_and_retrain(..., stop_check=stop_point))

Checkpoints are written asynchronously (orbax) while the next epoch trains, and awaited
before the program returns or the process exits. A checkpoint cut short (kill -9 during the
write) is an uncommitted temporary directory: orbax removes it and the previous epoch's is
used. A committed checkpoint that cannot be read is an error, never a silent restart.

The directory is locked from `claim` until the run ends: an error or interruption inside
`with run_dir:` releases it at once, a normal end when the RunDir goes (or the process
exits; a killed process's lock goes with it). Resuming under another git commit or another
requirements.lock than the run started with warns on stderr; `strict` refuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hw5jax.core.sharding import barrier, is_primary
from hw5jax.data.fetch import sha256_file
from hw5jax.errors import ConfigError, Interrupted
from hw5jax.runs.files import json_text, write_json
from hw5jax.runs.lock import LOCK_FILE, DirLock
from hw5jax.runs.store import plain

RUN_FILE = "run.json"
_CLAIMED = "hw5jax: output directory claimed"
# Options that say where a run goes and how it is resumed or watched, not what it trains:
# never part of the stamped config, so a run resumes with or without them.
NOT_STAMPED = ("out", "strict_resume", "tensorboard")
SOURCE = Path(__file__).resolve().parents[2]  # the source tree: its git commit, its lock


class RunDir:
    """The output directory of one experiment run, claimed for one command (see module doc)."""

    def __init__(
        self,
        path: Path,
        experiment: str,
        config: Mapping[str, Any],
        lock: DirLock | None = None,
    ):
        self.path = Path(path)
        self.experiment = experiment
        self.config = dict(config)
        self.state = self.path / "state"
        self.lock = lock

    @classmethod
    def claim(
        cls, path: str | os.PathLike, experiment: str, config: Any, *, strict: bool = False
    ) -> RunDir:
        """Take `path` for this command: lock it (another process running there is refused
        at once, naming it); an empty (or new) directory is stamped with the experiment, its
        config and the source's provenance; one stamped by the same command is resumed;
        anything else (another command, or files that are not a run of ours) is refused with
        a ConfigError. A resume under another git commit or requirements.lock warns on
        stderr, or with `strict` is refused.

        `config`: a dataclass or mapping of every option that changes results; its `out`
        and `strict_resume` fields, if any, are left out (NOT_STAMPED). Of several processes
        (`hw5jax.core.sharding`), process 0 takes the lock.
        """
        config = stamped_config(config)
        path = Path(path)
        primary = is_primary()
        lock, refused = None, None
        if primary:
            try:
                path.mkdir(parents=True, exist_ok=True)
                lock = DirLock.take(path)
            except (ConfigError, OSError) as err:
                refused = err
        if not _process_zero_holds(refused is None):
            if refused is not None:
                raise refused
            raise ConfigError(f"--out {path}: process 0 could not lock it (see its error)")
        try:
            if not primary:  # several processes: process 0 claims (and stamps) first
                barrier(_CLAIMED)
            try:
                cls._check_or_stamp(path, experiment, config, primary, strict)
            finally:  # the others then check what process 0 left (and fail as it did, if so)
                if primary:
                    barrier(_CLAIMED)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(path, experiment, config, lock)

    def release(self) -> None:
        """Unlock the directory (idempotent; also when the RunDir is garbage-collected)."""
        if self.lock is not None:
            self.lock.release()

    @staticmethod
    def _check_or_stamp(
        path: Path, experiment: str, config: dict, primary: bool, strict: bool
    ) -> None:
        stamp = path / RUN_FILE
        if stamp.is_file():
            try:
                previous = json.loads(stamp.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                raise ConfigError(f"--out {path}: unreadable {RUN_FILE} ({err})") from err
            if previous.get("experiment") != experiment:
                raise ConfigError(
                    f"--out {path}: holds a run of {previous.get('experiment')!r}, not "
                    f"{experiment!r}; choose another --out"
                )
            old = previous.get("config", {})
            changed = sorted(k for k in {*old, *config} if old.get(k) != config.get(k))
            if changed:
                diffs = ", ".join(
                    f"--{k.replace('_', '-')} {_show(config.get(k))} (was {_show(old.get(k))})"
                    for k in changed
                )
                raise ConfigError(
                    f"--out {path}: holds a run of another command ({diffs}); "
                    "rerun that command to resume it, or choose another --out"
                )
            if not (path / "results.json").is_file():  # a resume (a finished run: a read)
                _check_provenance(path, previous, strict, primary)
            for leftover in path.rglob(".*.tmp") if primary else ():  # a write cut short
                if leftover.is_file():
                    leftover.unlink()
        elif path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise ConfigError(
                f"--out {path}: not empty and not a run of this project "
                f"(no {RUN_FILE}); choose another --out"
            )
        else:
            path.mkdir(parents=True, exist_ok=True)
            write_json(stamp, run_record(experiment, config))

    # ------------------------------------------------------------------ state

    def finished(self) -> dict | None:
        """The results of a finished run in this directory (its results.json), else None."""
        results = self.path / "results.json"
        return json.loads(results.read_text()) if results.is_file() else None

    def started(self) -> bool:
        """Whether an earlier, interrupted invocation left state to continue from."""
        return self.state.is_dir() and any(self.state.iterdir())

    def stage(
        self, name: str, compute: Callable[[], dict], on_skip: Callable[[], Any] | None = None
    ) -> dict:
        """`compute()`'s record, saved as OUT/state/<name>.json when it returns; if that file
        exists (a finished stage of an earlier, interrupted invocation), it is read instead
        (and `on_skip()` called, e.g. to advance a progress bar)."""
        done = self.state / f"{name}.json"
        if done.is_file():
            if on_skip is not None:
                on_skip()
            return json.loads(done.read_text())
        record = compute()
        self.state.mkdir(parents=True, exist_ok=True)
        write_json(done, record)
        return json.loads(json_text(record))  # exactly what a resumed run would read

    def __enter__(self) -> RunDir:
        self._previous_handlers = _defer_stops()
        return self

    def __exit__(self, kind, err, tb) -> None:
        _restore_stops(self._previous_handlers)
        if kind is None:
            return  # results are still to be written: the lock stays until the run ends
        self.release()  # the run ends here, by an error or an interruption
        if issubclass(kind, KeyboardInterrupt):
            code = getattr(err, "exit_code", 130)
            what = "stopped by SIGTERM" if code == Terminated.exit_code else "interrupted"
            raise Stopped(
                f"{what}; what finished is saved in {self.path}. To continue, rerun the "
                f"same command with --out {self.path}",
                code,
            ) from err


# ------------------------------------------------------- Ctrl-C and SIGTERM between epochs
#
# Inside a RunDir, Ctrl-C (SIGINT) and SIGTERM (what SLURM, Kubernetes and `timeout` send)
# do not raise wherever the main thread happens to be (inside orbax's event loop it can be
# swallowed, or cut a checkpoint's bookkeeping in half); the first is noted, and
# `stop_point()` (called by the training loop after each epoch's checkpoint) raises there:
# KeyboardInterrupt for Ctrl-C, Terminated for SIGTERM (exit codes 130 and 143). A second
# signal of either kind raises at once.


class Terminated(KeyboardInterrupt):
    """A stop asked for by SIGTERM: handled as Ctrl-C is, exit code 143 (128 + SIGTERM)."""

    exit_code = 128 + signal.SIGTERM


class Stopped(Interrupted):
    """An interrupted run, with how to resume it and the exit code of what stopped it."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


_STOPS: dict[int, tuple[str, type[KeyboardInterrupt]]] = {
    signal.SIGINT: ("Ctrl-C", KeyboardInterrupt),
    signal.SIGTERM: ("SIGTERM", Terminated),
}
_deferred: dict[str, int | None] = {"signal": None}


def _on_stop(signum, frame) -> None:
    if _deferred["signal"] is not None:
        raise _STOPS[signum][1]
    _deferred["signal"] = signum
    print(
        f"\n{_STOPS[signum][0]}: stopping after this epoch's checkpoint (Ctrl-C or SIGTERM "
        "again to stop at once)",
        file=sys.stderr,
        flush=True,
    )


def _defer_stops() -> dict | None:
    _deferred["signal"] = None
    if threading.current_thread() is not threading.main_thread():
        return None
    return {signum: signal.signal(signum, _on_stop) for signum in _STOPS}


def _restore_stops(previous: dict | None) -> None:
    _deferred["signal"] = None
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


def stop_point() -> None:
    """Raise KeyboardInterrupt (Terminated, for SIGTERM) if Ctrl-C or SIGTERM came inside a
    RunDir (a safe place to stop: everything up to here is checkpointed)."""
    signum = _deferred["signal"]
    if signum is not None:
        raise _STOPS[signum][1]


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While open (on the main thread), SIGTERM raises Terminated where the program is, as
    Ctrl-C raises KeyboardInterrupt: `finally` blocks run (pending checkpoints are awaited)
    and the command exits 143, not killed outright. Inside a RunDir it is deferred."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- provenance and processes


def stamped_config(config: Any) -> dict:
    """A dataclass or mapping of options as run.json records it: plain JSON values, without
    the options of NOT_STAMPED."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return plain({k: v for k, v in dict(config).items() if k not in NOT_STAMPED})


def run_record(experiment: str, config: Any) -> dict[str, Any]:
    """run.json: the experiment, its config (`stamped_config`), the source (`provenance`)
    and where it started (`environment`)."""
    return {
        "experiment": experiment,
        "config": stamped_config(config),
        **provenance(),
        "environment": environment(),
    }


def stamp(out: str | os.PathLike, experiment: str, config: Any) -> None:
    """Write OUT/run.json (`run_record`) for a command that is not resumed (theory_checks,
    alexnet_readout, cnn_eval, benchmark): a rerun into the same OUT replaces it, as it
    replaces the results."""
    write_json(Path(out) / RUN_FILE, run_record(experiment, config))


def source_commit(root: Path = SOURCE) -> str | None:
    """`git rev-parse HEAD` of the source tree `root`; None outside a git checkout of it (an
    installed copy), or when git is missing or fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    try:
        ours = os.path.samefile(top, root)  # not a repository that merely contains an install
    except OSError:
        return None
    return commit.strip() if ours else None


def provenance(root: Path = SOURCE) -> dict[str, str | None]:
    """What run.json records of the source a run started with: its git commit and the
    sha256 of the project's requirements.lock (None where there is none)."""
    lock = root / "requirements.lock"
    try:
        lock_sha256 = sha256_file(lock) if lock.is_file() else None
    except OSError:
        lock_sha256 = None
    return {"git_commit": source_commit(root), "requirements_lock_sha256": lock_sha256}


PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "torch")


def environment() -> dict[str, Any]:
    """What run.json records of where a run started: the command line (`python -m
    experiments.NAME ...` when started so), the UTC time, Python's and the stack's versions
    (those installed; None for one that is not), the CPU model and the cores this process
    may use, and XLA_FLAGS."""
    from importlib import metadata

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None and spec.name else sys.argv[:1]
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "command": shlex.join([*head, *sys.argv[1:]]),
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions,
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo's, else `platform.processor()`, else the
    machine's architecture)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _check_provenance(path: Path, previous: dict, strict: bool, primary: bool) -> None:
    """A resume under another commit or requirements.lock than the run started with: one
    warning line on stderr, or with `strict` a ConfigError. A run.json from before these
    stamps (or started outside a checkout) has nothing to compare."""
    now = provenance()
    changed = []
    for key, what in (("git_commit", "commit"), ("requirements_lock_sha256", "lock")):
        then = previous.get(key)
        if then is not None and now[key] != then:
            if what == "commit":
                changed.append(f"commit {_short(then)} (this source: {_short(now[key])})")
            else:
                changed.append(f"requirements.lock sha256 {_short(then)} (now {_short(now[key])})")
    if not changed:
        return
    started = f"--out {path}: started under {' and '.join(changed)}"
    if strict:
        raise ConfigError(
            f"{started}; --strict-resume refuses to resume it under another source (check out "
            "what it started with, or resume without --strict-resume)"
        )
    if primary:
        print(f"warning: {started}; resuming it anyway", file=sys.stderr, flush=True)


def _short(value: str | None) -> str:
    return "none" if value is None else value[:12]


def _process_zero_holds(held: bool) -> bool:
    """Whether process 0 holds the lock (`held` is its answer; the others learn it here,
    a collective of every process). With one process: `held`."""
    import jax

    if not jax.distributed.is_initialized() or jax.process_count() < 2:
        return held
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(held)))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)

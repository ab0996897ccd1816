"""Runs that survive interruption. An output directory remembers the command that made it;
every program (one run, or a stack of runs trained as one vmapped program) checkpoints its
whole state at the end of each epoch; finished stages are recorded. The same command pointed
at the same `--out` therefore continues where it stopped, and gives the same results as a run
never interrupted (the RNG state is part of every checkpoint).

    OUT/run.json                  the experiment and its effective config (another is refused)
    OUT/state/<stage>.json        the record of a finished stage (e.g. one optimizer's entry)
    OUT/state/<program>/<epoch>/  orbax checkpoints of a program, the latest two kept

    run_dir = RunDir.claim(out, "optim_sweep", config)
    with run_dir:                                 # Ctrl-C -> Interrupted("... to resume ...")
        entry = run_dir.stage("sgd", lambda: tune_and_retrain(..., stop_check=stop_point))

Checkpoints are written asynchronously (orbax) while the next epoch trains, and awaited
before the program returns or the process exits. A checkpoint cut short (kill -9 during the
write) is an uncommitted temporary directory: orbax removes it and the previous epoch's is
used. A committed checkpoint that cannot be read is an error, never a silent restart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hw5jax.core.sharding import barrier, is_primary
from hw5jax.errors import ConfigError, Interrupted
from hw5jax.runs.files import json_text, write_json
from hw5jax.runs.store import plain

RUN_FILE = "run.json"
_CLAIMED = "hw5jax: output directory claimed"


class RunDir:
    """The output directory of one experiment run, claimed for one command (see module doc)."""

    def __init__(self, path: Path, experiment: str, config: Mapping[str, Any]):
        self.path = Path(path)
        self.experiment = experiment
        self.config = dict(config)
        self.state = self.path / "state"

    @classmethod
    def claim(cls, path: str | os.PathLike, experiment: str, config: Any) -> RunDir:
        """Take `path` for this command: an empty (or new) directory is stamped with the
        experiment and its config; one stamped by the same command is resumed; anything else
        (another command, or files that are not a run of ours) is refused with a ConfigError.

        `config`: a dataclass or mapping of every option that changes results; its `out`
        field, if any, is left out (the directory is where, not what).
        """
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            config = dataclasses.asdict(config)
        config = plain({k: v for k, v in dict(config).items() if k != "out"})
        path = Path(path)
        primary = is_primary()
        if not primary:  # several processes: process 0 claims (and stamps) first
            barrier(_CLAIMED)
        try:
            cls._check_or_stamp(path, experiment, config, primary)
        finally:  # the others then check what process 0 left (and fail as it did, if so)
            if primary:
                barrier(_CLAIMED)
        return cls(path, experiment, config)

    @staticmethod
    def _check_or_stamp(path: Path, experiment: str, config: dict, primary: bool) -> None:
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
            for leftover in path.rglob(".*.tmp") if primary else ():  # a write cut short
                if leftover.is_file():
                    leftover.unlink()
        elif path.is_dir() and any(path.iterdir()):
            raise ConfigError(
                f"--out {path}: not empty and not a run of this project "
                f"(no {RUN_FILE}); choose another --out"
            )
        else:
            path.mkdir(parents=True, exist_ok=True)
            write_json(stamp, {"experiment": experiment, "config": config})

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
        self._previous_handler = _defer_ctrl_c()
        return self

    def __exit__(self, kind, err, tb) -> None:
        _restore_ctrl_c(self._previous_handler)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            raise Interrupted(
                f"interrupted; what finished is saved in {self.path}. To continue, rerun the "
                f"same command with --out {self.path}"
            ) from err


# ---------------------------------------------------------------- Ctrl-C between epochs
#
# Inside a RunDir, Ctrl-C does not raise wherever the main thread happens to be (inside
# orbax's event loop it can be swallowed, or cut a checkpoint's bookkeeping in half); it is
# noted, and `stop_point()` (called by the training loop after each epoch's checkpoint)
# raises KeyboardInterrupt there. A second Ctrl-C raises at once.

_ctrl_c = {"pressed": False}


def _on_ctrl_c(signum, frame) -> None:
    if _ctrl_c["pressed"]:
        raise KeyboardInterrupt
    _ctrl_c["pressed"] = True
    print(
        "\nCtrl-C: stopping after this epoch's checkpoint (Ctrl-C again to stop at once)",
        file=sys.stderr,
        flush=True,
    )


def _defer_ctrl_c():
    _ctrl_c["pressed"] = False
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _on_ctrl_c)


def _restore_ctrl_c(previous) -> None:
    _ctrl_c["pressed"] = False
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def stop_point() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed inside a RunDir (a safe place to stop:
    everything up to here is checkpointed)."""
    if _ctrl_c["pressed"]:
        raise KeyboardInterrupt


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)

"""Watching a run while it trains: one JSON line per epoch per run in OUT/metrics.jsonl, and
with `--tensorboard` the same scalars as TensorBoard event files (tensorboardX), one
TensorBoard run per grid point or seed.

    OUT/metrics.jsonl                      {"experiment", "stage", "run", "seed", "hparams",
                                            "epoch", "train_cost", "val_accuracy",
                                            "learning_rate", "seconds"} per line
    OUT/tensorboard/<stage>/<run>/         events.out.tfevents.* (train_cost, val_accuracy,
                                            learning_rate; step = epoch)

    with MetricsLog(out, "optim_sweep", tensorboard=True) as log:
        log.program_epoch(stage, epoch, metrics, step_size(trainer))

Each line is written, flushed and fsynced at the end of its epoch (`tail -f` follows it), by
process 0 only. A resumed run continues the file: an epoch already there (the restored epoch
a resumed program reports again, or one trained again after a kill) is not written twice, and
a last line cut short by a kill is dropped when the file is opened. The file is a log for
watching; results.json stays the record of the run.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np

from hw5jax.core.sharding import is_primary
from hw5jax.errors import ConfigError

FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_INSTALL = "pip install tensorboardX==2.6.5"
# Seconds between the TensorBoard writer's flushes (tensorboardX's default is 120).
TENSORBOARD_FLUSH_SECS = 2
# The scalars of a line that TensorBoard shows (a null one is left out).
SCALARS = ("train_cost", "val_accuracy", "learning_rate")

StepSize = Callable[[Mapping[str, float], int], float | None]


def require_tensorboard() -> None:
    """A ConfigError naming the install command if tensorboardX is missing (`--tensorboard`
    checks it before anything is written)."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--tensorboard needs tensorboardX, which is not installed: `{TENSORBOARD_INSTALL}`"
        ) from None


def step_size(trainer: Any) -> StepSize:
    """(hparams, epoch) -> the step size of that epoch's last update for a
    `hw5jax.core.train.Trainer`: the optimizer's learning rate times the schedule's factor
    at that update (update u, counted from 0, is scaled by `schedule(u)`; epoch e ends with
    update e * steps_per_epoch - 1). None for hparams without a learning rate."""
    steps = trainer.n_train // trainer.batch_size
    schedule = trainer.schedule

    @functools.cache
    def factor(epoch: int) -> np.float32:  # one per epoch, for every run of a grid
        return np.float32(1.0 if schedule is None else schedule(max(0, epoch * steps - 1)))

    def at(hparams: Mapping[str, float], epoch: int) -> float | None:
        if "learning_rate" not in hparams:
            return None
        return float(np.float32(hparams["learning_rate"]) * factor(int(epoch)))

    return at


def _number(value: Any) -> float | None:
    """A float, or None for NaN/inf (JSON has no NaN; a diverged run's cost is null)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _slug(text: str) -> str:
    """`text` as one directory name: runs of other characters than [A-Za-z0-9.=+-] -> "_"."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_") or "_"


def run_label(run: int, seed: int, hparams: Mapping[str, float]) -> str:
    """The TensorBoard run of one grid point or seed, e.g. "run03_seed0_lr0.3_momentum0.9"."""
    short = {"learning_rate": "lr"}
    parts = [f"run{run:02d}", f"seed{seed}"]
    parts += [f"{short.get(k, k)}{float(v):g}" for k, v in hparams.items()]
    return _slug("_".join(parts))


def read_lines(path: str | os.PathLike) -> list[dict]:
    """The complete lines of a metrics file as dicts (a trailing partial line, and any line
    that is not a JSON object, are left out)."""
    text = Path(path).read_bytes().decode("utf-8", "replace")
    complete = text[: text.rfind("\n") + 1]
    lines = []
    for line in complete.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            lines.append(record)
    return lines


class MetricsLog:
    """OUT/metrics.jsonl of one run directory (and OUT/tensorboard/ with `tensorboard`),
    continued where an earlier invocation left it. Inert on processes other than 0. Use as a
    context manager, or `close()`."""

    def __init__(self, out: str | os.PathLike, experiment: str, *, tensorboard: bool = False):
        self.path = Path(out) / FILE
        self.experiment = experiment
        self.tensorboard = tensorboard
        self.active = is_primary()
        # (stage, run) -> {epoch: seconds} of the lines in the file
        self.seen: dict[tuple[str, int], dict[int, float]] = {}
        # (stage, run) -> what this invocation adds to its elapsed seconds (see `_seconds`)
        self.offset: dict[tuple[str, int], float] = {}
        self.writers: dict[tuple[str, int], Any] = {}
        self.file: TextIO | None = None
        if not self.active:
            return
        if tensorboard:
            require_tensorboard()
        if self.path.is_file():
            self._drop_partial_line()
            for record in read_lines(self.path):
                try:
                    key = (str(record["stage"]), int(record["run"]))
                    epoch, seconds = int(record["epoch"]), float(record["seconds"] or 0.0)
                except (KeyError, TypeError, ValueError):
                    continue
                self.seen.setdefault(key, {})[epoch] = seconds

    def _drop_partial_line(self) -> None:
        """Cut the file after its last newline (a line cut short by a kill)."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            os.truncate(self.path, data.rfind(b"\n") + 1)

    def _seconds(self, key: tuple[str, int], epoch: int, elapsed: float) -> float | None:
        """Seconds since the run started for a new line, continuing an earlier invocation's:
        an epoch already in the file (a resumed program's restored epoch) sets the offset
        from this invocation's elapsed time to that line's seconds; without one, a run found
        in the file continues from its last line's seconds. None: the epoch is there."""
        seen = self.seen.get(key, {})
        if epoch in seen:
            self.offset[key] = seen[epoch] - elapsed
            return None
        if key not in self.offset:
            earlier = [e for e in seen if e < epoch]
            self.offset[key] = seen[max(earlier)] if earlier else 0.0
        return self.offset[key] + elapsed

    def write(
        self,
        stage: str,
        run: int,
        *,
        epoch: int,
        seed: int,
        hparams: Mapping[str, float],
        train_cost: float,
        val_accuracy: float | None,
        learning_rate: float | None,
        elapsed: float,
    ) -> bool:
        """One epoch of one run (its index `run` within its program); `elapsed`: seconds
        since the run started in this invocation. Returns whether a line was written (not if
        the file already holds this epoch of this run)."""
        if not self.active:
            return False
        key = (stage, int(run))
        seconds = self._seconds(key, int(epoch), float(elapsed))
        if seconds is None:
            return False
        record = {
            "experiment": self.experiment,
            "stage": stage,
            "run": int(run),
            "seed": int(seed),
            "hparams": {k: float(v) for k, v in hparams.items()},
            "epoch": int(epoch),
            "train_cost": _number(train_cost),
            "val_accuracy": None if val_accuracy is None else _number(val_accuracy),
            "learning_rate": None if learning_rate is None else _number(learning_rate),
            "seconds": seconds,
        }
        self._append(json.dumps(record, allow_nan=False) + "\n")
        self.seen.setdefault(key, {})[int(epoch)] = seconds
        if self.tensorboard:
            self._scalars(key, record)
        return True

    def _append(self, line: str) -> None:
        """One line, flushed and fsynced; the file is opened at the first (no empty file
        for a run that never finished an epoch). An OSError names the file."""
        try:
            if self.file is None:
                self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - close()
            self.file.write(line)
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as err:
            raise OSError(
                err.errno, f"cannot write: {err.strerror or err}", str(self.path)
            ) from err

    def program_epoch(
        self, stage: str, epoch: int, metrics: Mapping[str, Any], step_size: StepSize
    ) -> None:
        """One epoch of a program (one run or a stack), as `hw5jax.core.sweep.tune_and_retrain`
        reports it: per row "train_cost", "val_accuracy" (NaN: nothing held out) and "runs"
        ({"run", "seed", "hparams"}, None for a padding row), and "seconds" since the program
        started in this invocation."""
        if not self.active:
            return
        costs = np.atleast_1d(np.asarray(metrics["train_cost"], np.float64))
        vals = np.atleast_1d(np.asarray(metrics["val_accuracy"], np.float64))
        for row, who in enumerate(metrics["runs"]):
            if who is None:
                continue
            self.write(
                stage,
                who["run"],
                epoch=epoch,
                seed=who["seed"],
                hparams=who["hparams"],
                train_cost=float(costs[row]),
                val_accuracy=None if np.isnan(vals[row]) else float(vals[row]),
                learning_rate=step_size(who["hparams"], epoch),
                elapsed=float(metrics["seconds"]),
            )

    def _scalars(self, key: tuple[str, int], record: dict) -> None:
        writer = self.writers.get(key)
        if writer is None:
            from tensorboardX import SummaryWriter

            for other in [k for k in self.writers if k[0] != key[0]]:  # stages run in turn
                self.writers.pop(other).close()
            logdir = (
                self.path.parent
                / TENSORBOARD_DIR
                / _slug(key[0])
                / run_label(key[1], record["seed"], record["hparams"])
            )
            writer = SummaryWriter(str(logdir), flush_secs=TENSORBOARD_FLUSH_SECS)
            self.writers[key] = writer
        now = time.time()
        for tag in SCALARS:
            if record[tag] is not None:
                writer.add_scalar(tag, record[tag], global_step=record["epoch"], walltime=now)

    def close(self) -> None:
        """Close the file and the TensorBoard writers (their pending events written)."""
        while self.writers:
            self.writers.popitem()[1].close()
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

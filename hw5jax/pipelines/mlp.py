"""What both MLP experiments run on (Problem 3.1's `hw5jax.pipelines.optim_sweep` and
Problem 3.2's `hw5jax.pipelines.batchnorm`): the rows (`Entry`) trained resumably in one run
directory, the learning-rate schedule, the header of results.json, the files written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import optax
from flax import nnx

from hw5jax.configs.common import MLPConfig
from hw5jax.core.sweep import progress_ticks
from hw5jax.core.train import Trainer
from hw5jax.data import MNIST
from hw5jax.pipelines.common import tune
from hw5jax.reporting.progress import Progress
from hw5jax.runs.files import write_json, write_text
from hw5jax.runs.metrics import MetricsLog
from hw5jax.runs.rundir import RunDir


@dataclass(frozen=True)
class Entry:
    """One row of an MLP experiment: a model and an optimizer, tuned on `grid`.

    name: its key in results.json, its stage and its checkpoints' prefix; model: its record in
    its checkpoints' metadata; schedule: step -> factor on every update (None: constant)."""

    name: str
    model_fn: Callable[..., nnx.Module]
    model: dict[str, Any]
    optimizer: str
    grid: list[dict[str, float]]
    schedule: optax.Schedule | None = None


def step_schedule(name: str, epochs: int, steps_per_epoch: int) -> optax.Schedule | None:
    """The factor on every update of a run: "constant" (None) or "cosine", decaying it from 1
    to 0 over the run's `epochs * steps_per_epoch` steps."""
    if name == "cosine":
        return optax.cosine_decay_schedule(1.0, epochs * steps_per_epoch)
    return None


def results_header(
    experiment: str,
    config: MLPConfig,
    *,
    data_record: dict,
    model: dict,
    quick: bool,
    **settings: Any,
) -> dict[str, Any]:
    """What results.json records of an MLP experiment before its rows: the data, the model,
    the training settings (`settings`: the experiment's own, e.g. the schedule), the seeds,
    whether it was a --quick run, the devices; "wall_seconds" is filled in at the end."""
    return {
        "experiment": experiment,
        "data": data_record,
        "model": model,
        "epochs": config.epochs,
        "grid_epochs": config.grid_epochs or config.epochs,
        "prune_at": config.prune_at or None,
        "prune_factor": config.prune_factor,
        **settings,
        "batch_size": config.batch_size,
        "lam": config.lam,
        "seeds": list(range(config.seeds)),
        "quick": quick,
        "devices": jax.device_count(),
        "wall_seconds": None,
    }


def tune_entries(
    run_dir: RunDir,
    config: MLPConfig,
    mnist: MNIST,
    experiment: str,
    entries: Sequence[Entry],
) -> dict[str, dict]:
    """Every entry tuned on its grid and retrained on the config's seeds
    (`hw5jax.pipelines.common.tune`), one after the other under one progress bar, each epoch
    of each run a line of OUT/metrics.jsonl; an entry an earlier invocation finished is read
    back. Returns name -> its results.json record."""
    ticks = progress_ticks(config.seeds, config.epochs, config.grid_epochs)
    tuned = {}
    log = MetricsLog(run_dir.path, experiment, tensorboard=config.tensorboard)
    with run_dir, Progress(len(entries) * ticks, experiment) as progress, log:
        for entry in entries:
            trainer = Trainer(
                entry.model_fn,
                entry.optimizer,
                batch_size=config.batch_size,
                lam=config.lam,
                n_train=len(mnist.train.labels),
                schedule=entry.schedule,
            )
            tuned[entry.name] = tune(
                run_dir,
                progress,
                config,
                trainer,
                mnist,
                entry.grid,
                entry.name,
                metadata={
                    "experiment": experiment,
                    "model": entry.model,
                    "batch_size": config.batch_size,
                    "lam": config.lam,
                },
                log=log,
            )
    return tuned


def write_results(out: Path, results: dict, table: str) -> dict:
    """OUT/table.md and OUT/results.json (atomically; results.json last: it marks the run
    finished). Returns the results with "out"."""
    write_text(out / "table.md", table)
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}

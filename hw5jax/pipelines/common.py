"""What the training experiments share at run time: the data loaded before anything is
written, the output directory claimed (`prepare`), a finished run recognised (`finished`),
and one MLP entry trained resumably into it (`tune`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hw5jax import data as mnist_data
from hw5jax.configs.common import MLPConfig
from hw5jax.core.fit import FitResult
from hw5jax.core.sweep import progress_ticks, tune_and_retrain
from hw5jax.reporting.progress import Progress
from hw5jax.runs import checkpoint
from hw5jax.runs.files import output_dir
from hw5jax.runs.metrics import MetricsLog, step_size
from hw5jax.runs.rundir import RunDir, stop_point
from hw5jax.runs.store import ProgramStore


def save_final(
    directory: Path,
    name: str,
    optimizer: str,
    epochs: int,
    metadata: dict,
    result: FitResult,
    test_accuracy: float,
) -> str:
    """Keep one final model of an entry as DIR/<name>_seed<k> (an orbax checkpoint whose
    metadata records how it was trained and what it scored); returns its path."""
    path = directory / f"{name}_seed{result.seed}"
    checkpoint.save(
        path,
        result.state,
        {
            **metadata,
            "name": name,
            "optimizer": optimizer,
            "hparams": result.hparams,
            "seed": result.seed,
            "epochs": epochs,
            "val_accuracy": result.history["val_accuracy"][-1],
            "test_accuracy": test_accuracy,
            "diverged": result.diverged,
        },
    )
    return str(path)


def tune(
    run_dir: RunDir,
    progress: Progress,
    config: MLPConfig,
    trainer,
    data,
    grid,
    name: str,
    metadata: dict,
    log: MetricsLog | None = None,
) -> dict:
    """One entry of an MLP experiment (`hw5jax.core.sweep.tune_and_retrain` on `grid` with the
    config's epochs, seeds and pruning), resumable: a stage of `run_dir`, checkpointed per
    epoch, final models under OUT/checkpoints/<name>_seed<k>; every epoch of every run also
    a line of `log` (OUT/metrics.jsonl), if given."""
    grid_epochs = config.grid_epochs or config.epochs
    seeds = list(range(config.seeds))
    sizes = step_size(trainer)

    def report(stage: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        progress(stage, epoch, metrics)
        if log is not None:
            log.program_epoch(stage, epoch, metrics, sizes)

    return run_dir.stage(
        name,
        lambda: tune_and_retrain(
            trainer,
            data,
            grid,
            seeds,
            config.epochs,
            grid_epochs=grid_epochs,
            prune_at=config.prune_at or None,
            prune_factor=config.prune_factor,
            store=lambda key: ProgramStore(run_dir.state / f"{name}_{key}"),
            stop_check=stop_point,
            save_final=functools.partial(
                save_final,
                run_dir.path / "checkpoints",
                name,
                trainer.optimizer,
                config.epochs,
                metadata,
            ),
            name=name,
            progress=report,
        ),
        on_skip=lambda: progress.skip(progress_ticks(config.seeds, config.epochs, grid_epochs)),
    )


def prepare(
    config: Any, experiment: str, resolved: dict | None = None
) -> tuple[mnist_data.MNIST, dict, RunDir]:
    """Load the data (`config.data`), then claim the output directory (`config.out`) for this
    command (`hw5jax.runs.rundir.RunDir.claim`): bad input fails before anything is written, and
    an earlier run of another command is refused. `resolved`: values the options stand for
    (e.g. a recipe's hyperparameters), stamped with them, so that a run is never resumed
    under defaults that have changed since it started. Returns (mnist, the "data" record of
    results.json, the run directory); says on stderr when it continues an interrupted run."""
    mnist = mnist_data.load_mnist(config.data)
    source = config.data
    if source == "auto":
        source = "embedded" if mnist_data.embedded_path().is_file() else "tfds"
    record = {"source": source, **mnist_data.describe(mnist)}
    stamp = {**asdict(config), **(resolved or {})}  # RunDir.claim leaves out NOT_STAMPED
    run_dir = RunDir.claim(
        output_dir(config.out, experiment),
        experiment,
        stamp,
        strict=getattr(config, "strict_resume", False),
    )
    if run_dir.finished() is None and run_dir.started():
        print(f"{experiment}: continuing the interrupted run in {run_dir.path}", file=sys.stderr)
    return mnist, record, run_dir


def finished(run_dir: RunDir) -> dict | None:
    """The results of `run_dir` if an earlier invocation finished it (saying so on stderr:
    nothing is trained again), else None."""
    done = run_dir.finished()
    if done is not None:
        print(
            f"{run_dir.experiment}: {run_dir.path} is already finished; nothing to train "
            "(results.json is from the earlier run)",
            file=sys.stderr,
        )
        done["out"] = str(run_dir.path)
    return done

"""What the training experiments share: the common options (a frozen dataclass that each
experiment's config extends), loading the data before anything is written, and a progress bar.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from hw5jax import data as mnist_data
from hw5jax.cli import ConfigError
from hw5jax.distributed import is_primary
from hw5jax.models.mlp import ACTIVATIONS
from hw5jax.results import output_dir
from hw5jax.resume import RunDir
from hw5jax.sweep import progress_ticks, tune_and_retrain


@dataclass(frozen=True)
class CommonConfig:
    """Options every training experiment takes (the CLI is derived from the fields)."""

    out: str | None = field(
        default=None,
        metadata={
            "help": "output directory (default runs/<experiment>/<UTC time>)",
            "metavar": "DIR",
        },
    )
    epochs: int = field(default=30, metadata={"help": "epochs of every final run"})
    seeds: int = field(default=3, metadata={"help": "seeds of the final runs"})
    batch_size: int = field(default=128, metadata={"help": "mini-batch size m"})
    data: str = field(
        default="auto",
        metadata={
            "help": "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz",
            "metavar": "SOURCE",
        },
    )
    quick: bool = field(default=False, metadata={"help": "smoke run: tiny grid, 1 seed, 1 epoch"})

    def __post_init__(self):
        for option in ("epochs", "seeds", "batch_size"):
            value = getattr(self, option)
            if value < 1:
                raise ConfigError(f"--{option.replace('_', '-')} {value}: must be at least 1")


def prune_at_field(default: int):
    """The `--prune-at` option (an experiment may choose its own default)."""
    return field(
        default=default,
        metadata={
            "help": "successive halving: after this many epochs only the best 1/--prune-factor "
            "of each grid (by validation accuracy) trains on; 0 = every grid point trains "
            "to the end"
        },
    )


@dataclass(frozen=True)
class MLPConfig(CommonConfig):
    """Options of the experiments on the homework's MLP (optimizer sweep, batch norm)."""

    grid_epochs: int | None = field(
        default=None,
        metadata={"help": "epochs of every grid run, scored on validation (default: --epochs)"},
    )
    activation: str = field(default="relu", metadata={"help": "hidden activation: relu|sigmoid"})
    lam: float = field(
        default=0.0, metadata={"help": "L2 strength lambda: cost + lambda/(2n) * sum w^2"}
    )
    prune_at: int = prune_at_field(10)
    prune_factor: int = field(
        default=3, metadata={"help": "successive halving keeps ceil(grid size / this) points"}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.grid_epochs is not None and not 1 <= self.grid_epochs <= self.epochs:
            raise ConfigError(f"--grid-epochs {self.grid_epochs}: must be in 1..--epochs")
        if self.prune_at < 0:
            raise ConfigError(f"--prune-at {self.prune_at}: must be >= 0")
        if self.prune_factor < 1:
            raise ConfigError(f"--prune-factor {self.prune_factor}: must be at least 1")
        if self.lam < 0:
            raise ConfigError(f"--lam {self.lam}: must be >= 0")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"--activation {self.activation!r}: use one of {', '.join(ACTIVATIONS)}"
            )


def tune(
    run_dir: RunDir,
    progress: Progress,
    config: MLPConfig,
    trainer,
    data,
    grid,
    name: str,
    metadata: dict,
) -> dict:
    """One entry of an MLP experiment (`hw5jax.sweep.tune_and_retrain` on `grid` with the
    config's epochs, seeds and pruning), resumable: a stage of `run_dir`, checkpointed per
    epoch, final models under OUT/checkpoints/<name>_seed<k>."""
    grid_epochs = config.grid_epochs or config.epochs
    seeds = list(range(config.seeds))
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
            checkpoint_dir=run_dir.path / "checkpoints",
            state_dir=run_dir.state,
            name=name,
            progress=progress,
            metadata=metadata,
        ),
        on_skip=lambda: progress.skip(progress_ticks(config.seeds, config.epochs, grid_epochs)),
    )


def check_positive(flag: str, values, low: float = 0.0, high: float | None = None) -> None:
    """Every value of a grid option must lie in (low, high) (or [0, high) if low is None)."""
    if not values:
        raise ConfigError(f"{flag}: give at least one value")
    for v in values:
        ok = (v >= 0 if low is None else v > low) and (high is None or v < high)
        if not ok:
            what = "positive" if high is None else f"in [0, {high:g})"
            raise ConfigError(f"{flag}: {v:g} is not {what}")


def prepare(
    config: Any, experiment: str, resolved: dict | None = None
) -> tuple[mnist_data.MNIST, dict, RunDir]:
    """Load the data (`config.data`), then claim the output directory (`config.out`) for this
    command (`hw5jax.resume.RunDir.claim`): bad input fails before anything is written, and
    an earlier run of another command is refused. `resolved`: values the options stand for
    (e.g. a recipe's hyperparameters), stamped with them, so that a run is never resumed
    under defaults that have changed since it started. Returns (mnist, the "data" record of
    results.json, the run directory); says on stderr when it continues an interrupted run."""
    mnist = mnist_data.load_mnist(config.data)
    source = config.data
    if source == "auto":
        source = "embedded" if mnist_data.embedded_path().is_file() else "tfds"
    record = {"source": source, **mnist_data.describe(mnist)}
    stamp = config if resolved is None else {**asdict(config), **resolved}
    run_dir = RunDir.claim(output_dir(config.out, experiment), experiment, stamp)
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


class Progress:
    """A tqdm bar on stderr, advanced once per epoch of a (possibly vmapped) program:
    `progress(stage, epoch, metrics)` is what `hw5jax.sweep.tune_and_retrain` calls."""

    def __init__(self, total: int, desc: str):
        self.bar = tqdm(
            total=total,
            unit="epoch",
            desc=desc,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not is_primary(),
        )
        self.done: dict[str, int] = {}  # last epoch seen per stage (a resumed one jumps)

    def __call__(self, stage: str, epoch: int, metrics: dict[str, np.ndarray]) -> None:
        """`metrics`: this epoch's val_accuracy (NaN when nothing is held out: then the
        training cost is shown, if given) and train_cost, per run."""
        self.bar.set_description(stage)
        val = np.asarray(metrics["val_accuracy"], float)
        if np.isfinite(val).any():
            self.bar.set_postfix(best_val=f"{np.nanmax(val):.4f}")
        elif "train_cost" in metrics:
            self.bar.set_postfix(cost=f"{np.nanmin(np.asarray(metrics['train_cost'])):.4f}")
        self.bar.update(epoch - self.done.get(stage, 0))
        self.done[stage] = epoch

    def skip(self, ticks: int) -> None:
        """Advance over work an earlier invocation finished (a recorded stage)."""
        self.bar.update(ticks)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # before any message about an interruption, not after it

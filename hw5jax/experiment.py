"""What the training experiments share: the common options (a frozen dataclass that each
experiment's config extends), loading the data before anything is written, and a progress bar.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hw5jax import data as mnist_data
from hw5jax.cli import ConfigError
from hw5jax.models.mlp import ACTIVATIONS
from hw5jax.results import output_dir


@dataclass(frozen=True)
class CommonConfig:
    """Options every training experiment takes (the CLI is derived from the fields)."""

    out: str | None = field(default=None, metadata={
        "help": "output directory (default runs/<experiment>/<UTC time>)", "metavar": "DIR"})
    epochs: int = field(default=30, metadata={"help": "epochs of every final run"})
    seeds: int = field(default=3, metadata={"help": "seeds of the final runs"})
    batch_size: int = field(default=128, metadata={"help": "mini-batch size m"})
    data: str = field(default="auto", metadata={
        "help": "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz",
        "metavar": "SOURCE"})
    quick: bool = field(default=False, metadata={
        "help": "smoke run: tiny grid, 1 seed, 1 epoch"})

    def __post_init__(self):
        for option in ("epochs", "seeds", "batch_size"):
            value = getattr(self, option)
            if value < 1:
                raise ConfigError(f"--{option.replace('_', '-')} {value}: must be at least 1")


@dataclass(frozen=True)
class MLPConfig(CommonConfig):
    """Options of the experiments on the homework's MLP (optimizer sweep, batch norm)."""

    grid_epochs: int | None = field(default=None, metadata={
        "help": "epochs of every grid run, scored on validation (default: --epochs)"})
    activation: str = field(default="relu", metadata={"help": "hidden activation: relu|sigmoid"})
    lam: float = field(default=0.0, metadata={
        "help": "L2 strength lambda: cost + lambda/(2n) * sum w^2"})

    def __post_init__(self):
        super().__post_init__()
        if self.grid_epochs is not None and not 1 <= self.grid_epochs <= self.epochs:
            raise ConfigError(f"--grid-epochs {self.grid_epochs}: must be in 1..--epochs")
        if self.lam < 0:
            raise ConfigError(f"--lam {self.lam}: must be >= 0")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation {self.activation!r}: use one of "
                              f"{', '.join(ACTIVATIONS)}")


def check_positive(flag: str, values, low: float = 0.0, high: float | None = None) -> None:
    """Every value of a grid option must lie in (low, high) (or [0, high) if low is None)."""
    if not values:
        raise ConfigError(f"{flag}: give at least one value")
    for v in values:
        ok = (v >= 0 if low is None else v > low) and (high is None or v < high)
        if not ok:
            what = "positive" if high is None else f"in [0, {high:g})"
            raise ConfigError(f"{flag}: {v:g} is not {what}")


def prepare(config: CommonConfig, experiment: str) -> tuple[mnist_data.MNIST, dict, Path]:
    """Load the data, then create the output directory: bad input fails before anything is
    written. Returns (mnist, the "data" record of results.json, output dir)."""
    mnist = mnist_data.load_mnist(config.data)
    source = config.data
    if source == "auto":
        source = "embedded" if mnist_data.embedded_path().is_file() else "tfds"
    record = {"source": source, **mnist_data.describe(mnist)}
    return mnist, record, output_dir(config.out, experiment)


class Progress:
    """A tqdm bar on stderr, advanced once per epoch of a (possibly vmapped) program:
    `progress(stage, epoch, metrics)` is what `hw5jax.sweep.tune_and_retrain` calls."""

    def __init__(self, total: int, desc: str):
        self.bar = tqdm(total=total, unit="epoch", desc=desc, file=sys.stderr,
                        dynamic_ncols=True)

    def __call__(self, stage: str, epoch: int, metrics: dict[str, np.ndarray]) -> None:
        self.bar.set_description(stage)
        self.bar.set_postfix(best_val=f"{np.max(metrics['val_accuracy']):.4f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

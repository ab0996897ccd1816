"""The options every training experiment shares: frozen dataclasses that each experiment's
config extends (the command line is derived from the fields, `hw5jax.cli.parse_config`), and
the checks their values must pass (a bad value is a `ConfigError` before anything runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw5jax.errors import ConfigError
from hw5jax.models.mlp import ACTIVATIONS


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


def check_positive(flag: str, values, low: float = 0.0, high: float | None = None) -> None:
    """Every value of a grid option must lie in (low, high) (or [0, high) if low is None)."""
    if not values:
        raise ConfigError(f"{flag}: give at least one value")
    for v in values:
        ok = (v >= 0 if low is None else v > low) and (high is None or v < high)
        if not ok:
            what = "positive" if high is None else f"in [0, {high:g})"
            raise ConfigError(f"{flag}: {v:g} is not {what}")

"""The options every training experiment shares: frozen dataclasses that each experiment's
config extends (the command line is derived from the fields, `hw5jax.cli.parse_config`), and
the checks their values must pass (a bad value is a `ConfigError` before anything runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hw5jax.errors import ConfigError
from hw5jax.models.mlp import ACTIVATIONS
from hw5jax.runs.metrics import require_tensorboard

# --tensorboard: watching only (left out of run.json: a run may be resumed with or without it)
TENSORBOARD_HELP = (
    "also write TensorBoard event files, OUT/tensorboard/<stage>/<run> (tensorboardX), "
    "beside OUT/metrics.jsonl"
)
# --strict-resume: how strictly a run is resumed, not what it trains: left out of run.json
STRICT_RESUME_HELP = (
    "refuse to resume a run started under another git commit or requirements.lock "
    "(default: resume it, with a warning)"
)


def option(
    default: Any,
    help: str,
    *,
    metavar: str | None = None,
    minimum: float | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """A config field that is also a command-line option: its help, and the bounds or choices
    that `check_declared` enforces (declared once, on the field)."""
    metadata: dict[str, Any] = {"help": help}
    if metavar is not None:
        metadata["metavar"] = metavar
    if minimum is not None:
        metadata["minimum"] = minimum
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return field(default=default, metadata=metadata)


def check_declared(config: Any) -> None:
    """Every field's declared bounds and choices (`option(minimum=..., choices=...)`): the
    first value outside them is a ConfigError naming the option. None means "not given"."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        low = f.metadata.get("minimum")
        if low is not None and value < low:
            bound = "at least 1" if low == 1 else f">= {low:g}"
            raise ConfigError(f"{flag} {value}: must be {bound}")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{flag} {value!r}: use one of {', '.join(choices)}")


@dataclass(frozen=True)
class CommonConfig:
    """Options every training experiment takes (the CLI is derived from the fields)."""

    out: str | None = field(
        default=None,
        metadata={
            "help": "output directory (default: runs/<experiment>/<UTC time>)",
            "metavar": "DIR",
        },
    )
    epochs: int = option(30, "epochs of every final run", minimum=1)
    seeds: int = option(3, "seeds of the final runs", minimum=1)
    batch_size: int = option(128, "mini-batch size m", minimum=1)
    data: str = field(
        default="auto",
        metadata={
            "help": "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz",
            "metavar": "SOURCE",
        },
    )
    quick: bool = field(default=False, metadata={"help": "smoke run: tiny grid, 1 seed, 1 epoch"})
    strict_resume: bool = option(False, STRICT_RESUME_HELP)
    tensorboard: bool = option(False, TENSORBOARD_HELP)

    def __post_init__(self):
        check_declared(self)
        if self.tensorboard:
            require_tensorboard()


def prune_at_field(default: int):
    """The `--prune-at` option (an experiment may choose its own default)."""
    return option(
        default,
        "successive halving: after this many epochs only the best 1/--prune-factor of each "
        "grid (by validation accuracy) trains on; 0 = every grid point trains to the end",
        minimum=0,
    )


@dataclass(frozen=True)
class MLPConfig(CommonConfig):
    """Options of the experiments on the homework's MLP (optimizer sweep, batch norm)."""

    grid_epochs: int | None = field(
        default=None,
        metadata={"help": "epochs of every grid run, scored on validation (default: --epochs)"},
    )
    activation: str = option("relu", "hidden activation: relu|sigmoid", choices=tuple(ACTIVATIONS))
    lam: float = option(0.0, "L2 strength lambda: cost + lambda/(2n) * sum w^2", minimum=0)
    prune_at: int = prune_at_field(10)
    prune_factor: int = option(
        3, "successive halving keeps ceil(grid size / this) points", minimum=1
    )

    def __post_init__(self):
        super().__post_init__()
        if self.grid_epochs is not None and not 1 <= self.grid_epochs <= self.epochs:
            raise ConfigError(f"--grid-epochs {self.grid_epochs}: must be in 1..--epochs")


def check_positive(flag: str, values, low: float = 0.0, high: float | None = None) -> None:
    """Every value of a grid option must lie in (low, high) (or [0, high) if low is None)."""
    if not values:
        raise ConfigError(f"{flag}: give at least one value")
    for v in values:
        ok = (v >= 0 if low is None else v > low) and (high is None or v < high)
        if not ok:
            what = "positive" if high is None else f"in [0, {high:g})"
            raise ConfigError(f"{flag}: {v:g} is not {what}")

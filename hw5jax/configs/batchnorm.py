"""Problem 3.2: the batch-norm comparison's options, its grid, its quick settings and the
homework's answer beside which ours is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hw5jax.configs import optim_sweep
from hw5jax.configs.common import MLPConfig, check_positive, option

LAYERS = optim_sweep.LAYERS  # Problem 3.2: "using the same network"
HOMEWORK = {"learning_rate": 2.0, "test_accuracy": 0.971}  # the homework's BN answer
# Variant name -> BatchNorm after each hidden layer's affine map; the table's rows, in order.
VARIANTS = {"batchnorm": True, "plain": False}


@dataclass(frozen=True)
class BatchnormConfig(MLPConfig):
    """Problem 3.2: the sweep's MLP with and without BatchNorm, plain SGD, eta retuned.

    run: python -m experiments.batchnorm
    expected: test batchnorm 98.02% (eta 0.5), plain 97.93% (eta 0.5) (3 seeds), ~140 s on 2 cores
    """

    # Powers of two, 1/32 .. 8: log-spaced and wide enough to hold the homework's 2.0.
    lr_grid: tuple[float, ...] = option(
        tuple(2.0**k for k in range(-5, 4)),
        "SGD learning rates tried by both variants",
        metavar="V,V,...",
    )

    def __post_init__(self):
        super().__post_init__()
        check_positive("--lr-grid", self.lr_grid)

    def effective(self) -> BatchnormConfig:
        """The config actually run: `--quick` shrinks the grid, seeds and epochs."""
        if not self.quick:
            return self
        return replace(self, epochs=1, grid_epochs=None, seeds=1, lr_grid=(0.5, 2.0), quick=False)

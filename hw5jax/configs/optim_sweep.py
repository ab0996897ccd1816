"""Problem 3.1: the optimizer sweep's options, its grids, its quick settings and the
homework's results table beside which ours is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hw5jax.configs.common import MLPConfig, check_positive, option, prune_at_field
from hw5jax.core.optim import check_name
from hw5jax.core.sweep import grid_points
from hw5jax.errors import ConfigError

# The homework's network (Problem 3.1; Problem 3.2 reuses it: "using the same network").
LAYERS = (784, 100, 100, 10)
SCHEDULES = ("constant", "cosine")
# The homework's results table (Problem 3.1), for the side-by-side:
# optimizer -> (its tuned setting, its final test accuracy).
HOMEWORK = {
    "sgd": ("eta = 0.8", 0.9792),
    "momentum": ("eta = 0.05, momentum = 0.9", 0.9806),
    "adagrad": ("eta = 0.003, eta_decay = 1e-8", 0.9753),
    "adam": ("eta = 0.003, betas = (0.9, 0.999), eps = 1e-8", 0.9761),
}
GRIDS = ("sgd_grid", "momentum_grid", "adagrad_grid", "adam_grid")


def _grid(default: tuple[float, ...], help_text: str):
    return option(default, help_text, metavar="V,V,...")


@dataclass(frozen=True)
class SweepConfig(MLPConfig):
    """Problem 3.1: SGD, momentum, AdaGrad and Adam on the MLP, tuned on validation.

    run: python -m experiments.optim_sweep
    expected: test sgd 97.92%, momentum 98.13%, adagrad 97.54%, adam 98.28% (3 seeds), 3 min 2 cores
    """

    optimizers: tuple[str, ...] = option(
        tuple(HOMEWORK), "optimizers to compare", metavar="NAME,NAME,..."
    )
    schedule: str = option(
        "cosine",
        "learning-rate schedule of every run: constant | cosine (decays the step to 0 over "
        "--epochs)",
        choices=SCHEDULES,
    )
    # Overrides MLPConfig's field, so its bound is declared again.
    lam: float = option(
        5.0, "L2 strength lambda: cost + lambda/(2n) * sum w^2 (5: Nielsen's ch. 3)", minimum=0
    )
    prune_at: int = prune_at_field(5)  # 5, not 10: the 3-minute budget (docs/optimizers.md)
    sgd_grid: tuple[float, ...] = _grid((0.01, 0.03, 0.1, 0.3, 1.0, 3.0), "SGD learning rates")
    momentum_grid: tuple[float, ...] = _grid(
        (0.001, 0.003, 0.01, 0.03, 0.1, 0.3), "momentum learning rates"
    )
    momentum_mu: tuple[float, ...] = _grid((0.5, 0.9), "momentum coefficients mu")
    adagrad_grid: tuple[float, ...] = _grid(
        (0.001, 0.003, 0.01, 0.03, 0.1, 0.3), "AdaGrad learning rates"
    )
    adam_grid: tuple[float, ...] = _grid(
        (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "Adam learning rates"
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.optimizers:
            raise ConfigError("--optimizers: name at least one optimizer")
        for name in self.optimizers:
            check_name(name)
        for name in GRIDS:
            check_positive("--" + name.replace("_", "-"), getattr(self, name))
        check_positive("--momentum-mu", self.momentum_mu, low=None, high=1.0)

    def effective(self) -> SweepConfig:
        """The config actually run: `--quick` shrinks grids, seeds and epochs."""
        if not self.quick:
            return self
        return replace(
            self,
            epochs=1,
            grid_epochs=None,
            seeds=1,
            sgd_grid=(0.1, 0.3),
            momentum_grid=(0.03,),
            momentum_mu=(0.5, 0.9),
            adagrad_grid=(0.01, 0.03),
            adam_grid=(1e-3, 3e-3),
            quick=False,
        )

    def grid(self, name: str) -> list[dict[str, float]]:
        """The hyperparameter points optimizer `name` is tuned on (momentum: eta x mu)."""
        if name == "momentum":
            return grid_points({"learning_rate": self.momentum_grid, "momentum": self.momentum_mu})
        return grid_points({"learning_rate": getattr(self, f"{name}_grid")})

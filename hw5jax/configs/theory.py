"""Problems 1, 2 and 5.1: the options of the theory checks (the two parts that train on MNIST,
1.2 and 2.3 on the MLP, are the only ones with settings; the rest is fixed mathematics)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hw5jax.configs.common import check_declared, option
from hw5jax.errors import ConfigError

# --quick: the first images of each split; 1.2's tail-off needs about 20 epochs on 10,000.
QUICK_SIZES = {"train": 10_000, "val": 2_000, "test": 2_000}
QUICK_L2_EPOCHS = 24
# --quick: the sizes of the measurements that need no MNIST (keyword arguments of each
# problem's measure_* function), small enough for a smoke run, large enough for every claim.
QUICK_MEASURE: dict[str, dict[str, Any]] = {
    "2.2": {"n_width": 40, "bs": (-2.0, 0.0, 1.5)},
    "2.1": {"layers": 12, "chains": 300},
    "2.3": {"n_mu": 61, "n_eta": 91, "kappa": 50.0},
    "5.1": {"n": 400},
    "1.1": {"steps": 200, "n_grid": 13, "outer_iters": 30, "n_eta0": 7, "betas": (0.0, 0.1, 0.2)},
}


@dataclass(frozen=True)
class TheoryConfig:
    """Problems 1, 2 and 5.1: the homework's derivations as numerical checks that can fail.

    run: python -m experiments.theory_checks
    expected: every check passes but the two 1.2(c) heuristics, which do not hold, ~90 s
    """

    out: str | None = option(
        None, "output directory (default: runs/theory_checks/<UTC timestamp>/)", metavar="DIR"
    )
    data: str = option("auto", "MNIST source for 1.2 and 2.3 (MLP)", metavar="SOURCE")
    l2_epochs: int = option(
        30, "1.2: epochs (Nielsen's 30; at least 8 to see the tail-off)", minimum=8
    )
    l2_layers: tuple[int, ...] = option(
        (784, 30, 10), "1.2: layers (Nielsen's network for eta=0.5, lam=5, m=10)"
    )
    l2_seeds: int = option(
        3, "1.2: seeds (--seed, --seed + 1, ...) whose tail-off levels are assessed", minimum=1
    )
    mlp_epochs: int = option(3, "2.3 on the MLP: epochs", minimum=2)
    mlp_eta: float = option(0.1, "2.3 on the MLP: learning rate (> 0)")
    seed: int = option(0, "seed of every random draw (chains, networks, data, training)")
    quick: bool = option(
        False,
        "smoke run: the first 10,000 / 2,000 / 2,000 MNIST images, --l2-epochs 24, "
        "--mlp-epochs 2, smaller grids and fewer random draws",
    )

    def __post_init__(self):
        check_declared(self)
        if not self.mlp_eta > 0:  # strictly positive: `minimum` would admit 0
            raise ConfigError(f"--mlp-eta {self.mlp_eta}: must be > 0")

    def effective(self) -> TheoryConfig:
        """What runs: --quick shortens the two trainings (its data subset is QUICK_SIZES)."""
        if not self.quick:
            return self
        return replace(self, l2_epochs=QUICK_L2_EPOCHS, mlp_epochs=2)

    def measure_options(self, problem: str) -> dict[str, Any]:
        """Keyword arguments of `problem`'s measure_* function: none (its defaults) unless
        --quick."""
        return dict(QUICK_MEASURE.get(problem, {})) if self.quick else {}

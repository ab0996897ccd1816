"""Problems 1, 2 and 5.1: the options of the theory checks (the two parts that train on MNIST,
1.2 and 2.3 on the MLP, are the only ones with settings; the rest is fixed mathematics)."""

from __future__ import annotations

from dataclasses import dataclass

from hw5jax.configs.common import check_declared, option
from hw5jax.errors import ConfigError


@dataclass(frozen=True)
class TheoryConfig:
    """Problems 1, 2 and 5.1: the homework's derivations as numerical checks that can fail.

    run: python -m experiments.theory_checks
    expected: 35 of 36 checks pass; the 1.2(c) heuristic does not hold (RMS 40x 1/sqrt(n)), ~45 s
    """

    out: str | None = option(
        None, "output directory (default runs/theory_checks/<UTC timestamp>/)", metavar="DIR"
    )
    data: str = option("auto", "MNIST source for 1.2 and 2.3 (MLP)", metavar="SOURCE")
    l2_epochs: int = option(
        30, "1.2: epochs (Nielsen's 30; at least 8 to see the tail-off)", minimum=8
    )
    l2_layers: tuple[int, ...] = option(
        (784, 30, 10), "1.2: layers (Nielsen's network for eta=0.5, lam=5, m=10)"
    )
    mlp_epochs: int = option(3, "2.3 on the MLP: epochs", minimum=2)
    mlp_eta: float = option(0.1, "2.3 on the MLP: learning rate (> 0)")
    seed: int = option(0, "seed of every random draw (chains, networks, data, training)")

    def __post_init__(self):
        check_declared(self)
        if not self.mlp_eta > 0:  # strictly positive: `minimum` would admit 0
            raise ConfigError(f"--mlp-eta {self.mlp_eta}: must be > 0")

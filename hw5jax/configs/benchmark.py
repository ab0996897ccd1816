"""The benchmark's options: which cases (`hw5jax.bench.cases.REGISTRY`), on which data and
device, how many timed repeats and steps, the grid sizes of `grid_scaling`, the epochs of the
end-to-end `sweep`, and the --quick smoke run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hw5jax.bench.cases import DEFAULT_CASES, REGISTRY
from hw5jax.bench.device import DEVICES
from hw5jax.bench.plan import GRID_SIZES, Plan
from hw5jax.bench.scaling import check_grid_sizes
from hw5jax.configs.common import check_declared, option
from hw5jax.errors import ConfigError

CASE_CHOICES = tuple(REGISTRY)  # every case --cases accepts, the defaults first
QUICK_GRID_SIZES = (1, 2, 4)  # grid_scaling in a --quick run (unless --grid-sizes is given)


@dataclass(frozen=True)
class BenchmarkConfig:
    """hw5jax against the homework's PyTorch loop: same data, weights and steps, one process.

    run: python -m experiments.benchmark
    expected: PyTorch s / hw5jax s: MLP SGD 1.96, Adam 2.96, grid 3.69, CNN 0.83; ~5-7.5 min 2 cores
    """

    out: str | None = option(
        None, "output directory (default: runs/benchmark/<UTC time>)", metavar="DIR"
    )
    repeats: int = option(5, "timed epochs per side; medians reported", minimum=1)
    # Not `choices=`: that checks one value, this is a list (checked in __post_init__).
    cases: tuple[str, ...] = option(
        DEFAULT_CASES, f"cases to run, of {', '.join(CASE_CHOICES)}", metavar="A,B,..."
    )
    data: str = option(
        "auto",
        "MNIST source (auto, embedded, tfds, IDX dir, .pkl.gz) or 'synthetic' "
        "(random MNIST-shaped data)",
        metavar="SOURCE",
    )
    steps: int | None = option(
        None, "steps per epoch (default: a full epoch of the training split, 390)", minimum=1
    )
    torch_threads: int | None = option(
        None,
        "torch.set_num_threads (default: os.cpu_count(), the homework's setting)",
        minimum=1,
    )
    device: str = option(
        "cpu",
        "where both sides run: cpu (JAX: one single-threaded device per core) or gpu (JAX "
        "on jax.devices('gpu'), PyTorch on CUDA)",
        choices=DEVICES,
    )
    grid_sizes: tuple[int, ...] = option(
        GRID_SIZES,
        "grid_scaling: the numbers of SGD learning rates, one grid each",
        metavar="N,N,...",
    )
    sweep_epochs: int | None = option(
        None,
        "sweep: epochs of the optimizer sweep, both sides (default: the sweep's own, 30; "
        "as `optim_sweep --epochs N`)",
        minimum=1,
    )
    quick: bool = option(
        False,
        "smoke run: synthetic data, 1 repeat, a few steps; grids of 1, 2, 4; the sweep's own "
        "--quick (tiny grids, 1 seed, 1 epoch) on 8 steps per epoch",
    )

    def __post_init__(self):
        check_declared(self)
        if not self.cases:
            raise ConfigError("--cases: name at least one case")
        for case in self.cases:
            if case not in CASE_CHOICES:
                raise ConfigError(f"--cases: unknown case {case!r}; use {', '.join(CASE_CHOICES)}")
        check_grid_sizes(self.grid_sizes)

    def effective(self) -> BenchmarkConfig:
        """The settings that run: --quick means synthetic data, one repeat and small grids."""
        if not self.quick:
            return self
        sizes = QUICK_GRID_SIZES if self.grid_sizes == GRID_SIZES else self.grid_sizes
        return replace(self, data="synthetic", repeats=1, grid_sizes=sizes)

    def plan(self) -> Plan:
        """How much of every case runs (`hw5jax.bench.plan.Plan`); the command line adds
        the output directory and what runs the sweep."""
        config = self.effective()
        return Plan(
            repeats=config.repeats,
            steps=config.steps,
            quick=config.quick,
            device="cuda" if config.device == "gpu" else "cpu",
            grid_sizes=config.grid_sizes,
            sweep_epochs=config.sweep_epochs,
            data=config.data,
        )

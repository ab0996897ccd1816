"""The benchmark's options: which cases (`hw5jax.bench.cases.REGISTRY`), on which data, how
many timed repeats and steps, and the --quick smoke run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hw5jax.bench.cases import DEFAULT_CASES, REGISTRY, Plan
from hw5jax.configs.common import check_declared, option
from hw5jax.errors import ConfigError

CASE_CHOICES = tuple(REGISTRY)  # every case --cases accepts, the defaults first


@dataclass(frozen=True)
class BenchmarkConfig:
    """hw5jax against the homework's PyTorch loop: same data, weights and steps, one process.

    run: python -m experiments.benchmark
    expected: PyTorch s / hw5jax s: MLP SGD 1.96, Adam 2.96, grid 3.69, CNN 0.83; ~5-7.5 min 2 cores
    """

    out: str | None = option(
        None, "output directory (default runs/benchmark/<UTC time>)", metavar="DIR"
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
    quick: bool = option(False, "smoke run: synthetic data, 1 repeat, a few steps")

    def __post_init__(self):
        check_declared(self)
        if not self.cases:
            raise ConfigError("--cases: name at least one case")
        for case in self.cases:
            if case not in CASE_CHOICES:
                raise ConfigError(f"--cases: unknown case {case!r}; use {', '.join(CASE_CHOICES)}")

    def effective(self) -> BenchmarkConfig:
        """The settings that run: --quick means synthetic data and one repeat."""
        return replace(self, data="synthetic", repeats=1) if self.quick else self

    def plan(self) -> Plan:
        """How much of every case runs (`hw5jax.bench.cases.Plan`)."""
        config = self.effective()
        return Plan(repeats=config.repeats, steps=config.steps, quick=config.quick)

"""How much of every case runs, on which device, and what the end-to-end case needs (`Plan`):
what the command line's options become, handed to every case's measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw5jax.bench.networks import Network

# The grid sizes of `grid_scaling` (learning rates of one SGD grid), and the one its target is at.
GRID_SIZES = (1, 2, 4, 8, 16, 32, 64)
GRID_TARGET_SIZE = 32

# (output directory, MNIST source, epochs or None for the sweep's default, quick) -> the
# optimizer sweep's results (its results.json), run as `python -m experiments.optim_sweep`
# runs it. The command line provides it (the sweep's config and pipeline sit above the
# benchmark's floor).
SweepRunner = Callable[[Path, str, "int | None", bool], dict[str, Any]]


@dataclass(frozen=True)
class Plan:
    """How much of every case runs: `repeats` timed epochs per side, `steps` steps per
    epoch (None: all the data). `quick`: a smoke run, each network's few quick steps and one
    untimed PyTorch warm-up step. `device`: PyTorch's device ("cpu", "cuda"; JAX uses its
    default backend, which the command line has checked). `grid_sizes`: the grids of
    `grid_scaling`. The end-to-end `sweep`: `sweep_epochs` (None: the sweep's own),
    `data` (the MNIST source as given), `workdir` (where its run goes while it runs; the
    benchmark's output directory) and `sweep` (what runs it)."""

    repeats: int
    steps: int | None = None
    quick: bool = False
    device: str = "cpu"
    grid_sizes: tuple[int, ...] = GRID_SIZES
    sweep_epochs: int | None = None
    data: str = "auto"
    workdir: Path | None = None
    sweep: SweepRunner | None = None

    def warmup(self, network: Network) -> int:
        return 1 if self.quick else network.warmup_steps

    def steps_for(self, network: Network) -> int | None:
        return network.quick_steps if self.quick else self.steps

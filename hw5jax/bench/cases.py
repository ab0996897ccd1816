"""The benchmark's cases as a registry: each `Case` names its network (both sides), how it
is measured, its optimizer, and the PyTorch s / hw5jax s it is meant to reach. Adding a case
is adding an entry to `REGISTRY`.

The PyTorch side is the homework's loop: eager, `torch.optim`, a shuffled index loop over
in-memory float tensors, batch 128. The hw5jax side is `Trainer.epoch_jit` (one scanned,
compiled epoch) or, for the grids, `Trainer.epoch_shared` (one vmapped program, the runs
sharing every batch, sharded over the devices: how `fit_grid` trains a tuning grid). Two
cases live in their own modules: `grid_scaling` (`hw5jax.bench.scaling`) and the optimizer
sweep end to end, `sweep` (`hw5jax.bench.sweep`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.bench.device import synced
from hw5jax.bench.formulations import run_formulations
from hw5jax.bench.networks import (
    BATCH,
    CNN_NETWORK,
    LEARNING_RATES,
    MLP_NETWORK,
    Network,
    init_grid,
    init_state,
)
from hw5jax.bench.parity import numpy_params, parity
from hw5jax.bench.plan import Plan
from hw5jax.bench.scaling import measure_grid_scaling
from hw5jax.bench.sweep import measure_sweep
from hw5jax.bench.timing import block, compare, timed
from hw5jax.core.sharding import runs_mesh, shard_runs
from hw5jax.reference.pytorch import torch_epoch, torch_optimizer, torch_tensors

GRID_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# (case, torch or None, images, labels, plan) -> the case's measurements
Measure = Callable[["Case", Any, np.ndarray, np.ndarray, Plan], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One entry of the benchmark. `target`: the PyTorch s / hw5jax s to reach; None marks a
    probe (hw5jax only; its results go under its own name, not with the compared cases).
    `runs`: training runs in one epoch (its work is `runs` times the network's; a measurement
    may say otherwise with "run_epochs"). `default`: run when no cases are named.
    `own_data`: the case loads its own data (the sweep: all three splits), and reports its
    own "steps" per epoch."""

    name: str
    network: Network
    measure: Measure
    optimizer: str
    target: float | None = None
    runs: int = 1
    default: bool = True
    own_data: bool = False

    @property
    def is_probe(self) -> bool:
        return self.target is None

    def epoch_flops(self, steps: int) -> int:
        """The work of one epoch of `steps` steps (every run of it)."""
        return self.network.example_flops * steps * BATCH * self.runs


def measure_single(
    case: Case, torch: Any, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> dict[str, Any]:
    """One network, one optimizer: a compiled hw5jax epoch against the eager PyTorch loop,
    from the same weights, after checking that both compute the same steps."""
    network, lr = case.network, LEARNING_RATES[case.optimizer]
    trainer = network.trainer(case.optimizer)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    holder = {"state": init_state(trainer, lr)}
    start = numpy_params(holder["state"])

    def jax_epoch():
        holder["state"], metrics = trainer.epoch_jit(holder["state"], x, y)
        block(metrics)

    first = timed(jax_epoch)  # compiles (before the parity check can)
    result: dict[str, Any] = {}
    torch_run = None
    if torch is not None:
        result["parity"] = parity(
            torch,
            trainer,
            network.torch_model,
            lr,
            images,
            labels,
            network.parity_steps,
            nchw=network.nchw,
            device=plan.device,
        )
        model = network.torch_model(torch, start).to(plan.device)
        opt = torch_optimizer(torch, case.optimizer, model, lr)
        tx, ty = torch_tensors(torch, images, labels, nchw=network.nchw, device=plan.device)
        torch_epoch(torch, model, opt, tx, ty, steps=plan.warmup(network))  # untimed
        torch_run = synced(
            torch, plan.device, functools.partial(torch_epoch, torch, model, opt, tx, ty)
        )
    return {**result, **compare(jax_epoch, torch_run, plan.repeats, case.name, first)}


def measure_grid(
    case: Case, torch: Any, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> dict[str, Any]:
    """The rates as a tuning sweep trains them (`fit_grid`): one program, the runs sharing
    the seed and so every batch (`Trainer.epoch_shared`), the stack split over the devices
    (`runs_mesh`; one single-threaded device per core, as the command line sets up), against
    PyTorch training them one after another."""
    network = case.network
    trainer = network.trainer(case.optimizer)
    state = init_grid(trainer, GRID_RATES)
    start = numpy_params(jax.tree.map(lambda leaf: leaf[0], state))
    mesh = runs_mesh()
    if mesh is not None and len(GRID_RATES) % mesh.size:
        mesh = None  # the runs do not split evenly (fit_grid would pad): one device
    state, data_sharding = shard_runs(state, mesh)
    x, y = jax.device_put((images, labels), data_sharding)
    holder = {"state": state}

    def jax_epoch():
        holder["state"], metrics = trainer.epoch_shared(holder["state"], x, y)
        block(metrics)

    torch_run = None
    if torch is not None:
        tx, ty = torch_tensors(torch, images, labels, nchw=network.nchw, device=plan.device)
        runs = []
        for lr in GRID_RATES:
            model = network.torch_model(torch, start).to(plan.device)
            runs.append((model, torch_optimizer(torch, case.optimizer, model, lr)))
        torch_epoch(torch, *runs[0], tx, ty, steps=plan.warmup(network))

        def one_after_another():
            for model, opt in runs:  # the homework's way: one run after another
                torch_epoch(torch, model, opt, tx, ty)

        torch_run = synced(torch, plan.device, one_after_another)

    return {
        "learning_rates": list(GRID_RATES),
        "devices": 1 if mesh is None else mesh.size,
        **compare(jax_epoch, torch_run, plan.repeats, case.name),
    }


def measure_formulations(
    case: Case, torch: Any, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> dict[str, Any]:
    """The CNN formulations probe (`hw5jax.bench.formulations`): hw5jax only."""
    return run_formulations(images, labels, plan.repeats)


REGISTRY: dict[str, Case] = {
    case.name: case
    for case in (
        # 784-100-100-10 ReLU, one epoch (390 steps of 128)
        Case("mlp_epoch_sgd", MLP_NETWORK, measure_single, "sgd", target=2.5),
        Case("mlp_epoch_adam", MLP_NETWORK, measure_single, "adam", target=2.5),
        # one epoch of 8 SGD learning rates: one vmapped program vs 8 PyTorch runs in turn
        Case(
            "grid8_mlp_epoch",
            MLP_NETWORK,
            measure_grid,
            "sgd",
            target=4.0,
            runs=len(GRID_RATES),
        ),
        # the homework CNN (Problem 5.2) with Adam, one epoch
        Case("cnn_epoch", CNN_NETWORK, measure_single, "adam", target=1.2),
        # one epoch per run of SGD grids of 1..64 learning rates, per run-epoch
        Case("grid_scaling", MLP_NETWORK, measure_grid_scaling, "sgd", target=4.0),
        # the optimizer sweep end to end (python -m experiments.optim_sweep) against its runs
        # trained one after another in PyTorch
        Case("sweep", MLP_NETWORK, measure_sweep, "all", target=3.0, own_data=True),
        # the CNN epoch with each way of writing its convolutions and pooling in JAX
        Case("cnn_formulations", CNN_NETWORK, measure_formulations, "adam", default=False),
    )
}
DEFAULT_CASES = tuple(name for name, case in REGISTRY.items() if case.default)

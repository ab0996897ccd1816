"""Problem 3.2: the optimizer sweep's MLP with BatchNorm after each hidden layer's affine map,
plain SGD, learning rate retuned on validation; side by side with the same MLP without it
(same grid, epochs and seeds). Evaluation uses BatchNorm's running averages.

    python -m experiments.batchnorm
    python -m experiments.batchnorm --quick --out /tmp/bn

Writes OUT/results.json, val_accuracy.png, table.md and OUT/checkpoints/<variant>_seed<k>/.

The grids are split over every visible device; started once per host with
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set (or HW5JAX_DISTRIBUTED=1
under SLURM), over the devices of all hosts (hw5jax/core/sharding.py; README).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import jax

from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.configs.common import MLPConfig, check_positive
from hw5jax.core.sweep import grid_points, progress_ticks
from hw5jax.core.train import Trainer
from hw5jax.models.mlp import MLP
from hw5jax.reporting.plots import plot_curves
from hw5jax.reporting.progress import Progress
from hw5jax.runs.experiment import finished, prepare, tune
from hw5jax.runs.files import write_json, write_text

LAYERS = (784, 100, 100, 10)
TARGET = 0.97  # "epochs to 97% validation accuracy"
HOMEWORK = {"learning_rate": 2.0, "test_accuracy": 0.971}  # the homework's BN answer


@dataclass(frozen=True)
class BatchnormConfig(MLPConfig):
    # Powers of two, 1/32 .. 8: log-spaced and wide enough to hold the homework's 2.0.
    lr_grid: tuple[float, ...] = field(
        default=tuple(2.0**k for k in range(-5, 4)),
        metadata={"help": "SGD learning rates tried by both variants", "metavar": "V,V,..."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_positive("--lr-grid", self.lr_grid)

    def effective(self) -> BatchnormConfig:
        if not self.quick:
            return self
        return replace(self, epochs=1, grid_epochs=None, seeds=1, lr_grid=(0.5, 2.0), quick=False)


def epochs_to(history: list[float], target: float = TARGET) -> int | None:
    """First (1-based) epoch whose validation accuracy reaches `target`; None if none does."""
    return next((i + 1 for i, acc in enumerate(history) if acc >= target), None)


def table(results: dict) -> str:
    seeds = len(results["seeds"])
    lines = [
        f"| variant | selected eta | test accuracy, mean ± std over {seeds} seed(s) | "
        "epochs to 97% validation (per seed) |",
        "|---|---|---|---|",
    ]
    for name, v in results["variants"].items():
        if v.get("selected") is None:
            lines.append(f"| {name} | all diverged | | |")
            continue
        reach = ", ".join("never" if e is None else str(e) for e in v["epochs_to_97"])
        lines.append(
            f"| {name} | {v['selected']['learning_rate']:g} | "
            f"{100 * v['test_accuracy_mean']:.2f}% ± {100 * v['test_accuracy_std']:.2f}"
            f" | {reach} |"
        )
    lines.append(
        f"| homework (BatchNorm, SGD) | {HOMEWORK['learning_rate']:g} | "
        f"{100 * HOMEWORK['test_accuracy']:.1f}% | |"
    )
    lines.append("")
    lines.append(
        f"{results['model']['activation']} MLP, SGD, batch {results['batch_size']}, "
        f"{results['epochs']} epochs, grid scored after {results['grid_epochs']} "
        f"epochs; wall time {results['wall_seconds']:.0f} s."
    )
    return "\n".join(lines) + "\n"


def run(config: BatchnormConfig) -> dict:
    start = time.perf_counter()
    requested, config = config, config.effective()
    mnist, data_record, run_dir = prepare(config, "batchnorm")
    if (done := finished(run_dir)) is not None:
        return done
    out = run_dir.path
    grid_epochs = config.grid_epochs or config.epochs
    seeds = list(range(config.seeds))
    grid = grid_points({"learning_rate": config.lr_grid})
    model = {"layers": list(LAYERS), "activation": config.activation}
    results = {
        "experiment": "batchnorm",
        "data": data_record,
        "model": model,
        "optimizer": "sgd",
        "epochs": config.epochs,
        "grid_epochs": grid_epochs,
        "prune_at": config.prune_at or None,
        "prune_factor": config.prune_factor,
        "batch_size": config.batch_size,
        "lam": config.lam,
        "seeds": seeds,
        "quick": requested.quick,
        "devices": jax.device_count(),
        "wall_seconds": None,
        "variants": {},
    }
    ticks = progress_ticks(config.seeds, config.epochs, grid_epochs)
    with run_dir, Progress(2 * ticks, "batchnorm") as progress:
        for name, batch_norm in (("batchnorm", True), ("plain", False)):
            trainer = Trainer(
                functools.partial(MLP, LAYERS, activation=config.activation, batch_norm=batch_norm),
                "sgd",
                batch_size=config.batch_size,
                lam=config.lam,
                n_train=len(mnist.train.labels),
            )
            entry = tune(
                run_dir,
                progress,
                config,
                trainer,
                mnist,
                grid,
                name,
                metadata={
                    "experiment": "batchnorm",
                    "model": {**model, "batch_norm": batch_norm},
                    "batch_size": config.batch_size,
                    "lam": config.lam,
                },
            )
            if entry.get("selected") is not None:
                entry["epochs_to_97"] = [epochs_to(h) for h in entry["history"]["val_accuracy"]]
            results["variants"][name] = entry
    results["wall_seconds"] = time.perf_counter() - start

    plot_curves(
        {
            f"{k} (eta={v['selected']['learning_rate']:g})": v["history"]["val_accuracy"]
            for k, v in results["variants"].items()
            if v.get("selected") is not None
        },
        ylabel="validation accuracy",
        path=out / "val_accuracy.png",
        title="Problem 3.2: SGD with and without BatchNorm",
    )
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        BatchnormConfig, argv, description=__doc__, prog="python -m experiments.batchnorm"
    )
    one_device_per_core()  # stacks of runs: one shard per core
    results = run(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main, several_processes=True)

"""Problem 3.1: SGD, SGD+momentum, AdaGrad and Adam on the 784-100-100-10 MLP, tuned on the
validation split, mean +- std test accuracy over seeds.

    python -m experiments.optim_sweep                      # the full sweep (the main job)
    python -m experiments.optim_sweep --quick --out /tmp/q # a smoke run

Writes OUT/results.json, train_cost.png, val_accuracy.png, table.md and
OUT/checkpoints/<optimizer>_seed<k>/ (orbax).

The grids are split over every visible device; started once per host with
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set (or HW5JAX_DISTRIBUTED=1
under SLURM), over the devices of all hosts (hw5jax/core/sharding.py; README).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import jax
import optax

from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.configs.common import MLPConfig, check_positive, option, prune_at_field
from hw5jax.core.optim import check_name
from hw5jax.core.sweep import grid_points, progress_ticks
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.models.mlp import MLP
from hw5jax.reporting.plots import plot_curves
from hw5jax.reporting.progress import Progress
from hw5jax.runs.experiment import finished, prepare, tune
from hw5jax.runs.files import write_json, write_text

LAYERS = (784, 100, 100, 10)
SCHEDULES = ("constant", "cosine")
# The homework's results table (Problem 3.1), for the side-by-side.
HOMEWORK = {
    "sgd": ("eta = 0.8", 0.9792),
    "momentum": ("eta = 0.05, momentum = 0.9", 0.9806),
    "adagrad": ("eta = 0.003, eta_decay = 1e-8", 0.9753),
    "adam": ("eta = 0.003, betas = (0.9, 0.999), eps = 1e-8", 0.9761),
}


def _grid(default: tuple[float, ...], help_text: str):
    return field(default=default, metadata={"help": help_text, "metavar": "V,V,..."})


@dataclass(frozen=True)
class SweepConfig(MLPConfig):
    optimizers: tuple[str, ...] = field(
        default=tuple(HOMEWORK),
        metadata={"help": "optimizers to compare", "metavar": "NAME,NAME,..."},
    )
    schedule: str = field(
        default="cosine",
        metadata={
            "help": "learning-rate schedule of every run: constant | cosine (decays the step to 0 "
            "over --epochs)"
        },
    )
    lam: float = option(
        5.0, "L2 strength lambda: cost + lambda/(2n) * sum w^2 (5: Nielsen's ch. 3)", minimum=0
    )
    prune_at: int = prune_at_field(5)  # 5, not 10: the 3-minute budget (README)
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
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        for name in ("sgd_grid", "momentum_grid", "adagrad_grid", "adam_grid"):
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
        if name == "momentum":
            return grid_points({"learning_rate": self.momentum_grid, "momentum": self.momentum_mu})
        return grid_points({"learning_rate": getattr(self, f"{name}_grid")})


def _fmt_hparams(hparams: dict[str, float]) -> str:
    names = {"learning_rate": "eta", "momentum": "mu"}
    return ", ".join(f"{names.get(k, k)} = {v:g}" for k, v in hparams.items())


def table(results: dict) -> str:
    """The results table in Markdown, with the homework's figures beside ours."""
    seeds = len(results["seeds"])
    lines = [
        f"| optimizer | selected (validation) | test accuracy, mean ± std over {seeds} "
        "seed(s) | homework's setting | homework's test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, entry in results["optimizers"].items():
        hw_setting, hw_acc = HOMEWORK.get(name, ("", float("nan")))
        if entry.get("selected") is None:
            ours = mine = "all diverged"
        else:
            ours = _fmt_hparams(entry["selected"])
            mine = (
                f"{100 * entry['test_accuracy_mean']:.2f}% ± {100 * entry['test_accuracy_std']:.2f}"
            )
        lines.append(f"| {name} | {ours} | {mine} | {hw_setting} | {100 * hw_acc:.2f}% |")
    lines.append("")
    prune = (
        ""
        if not results.get("prune_at")
        else f" (the best 1/{results['prune_factor']} of each grid after "
        f"{results['prune_at']} epochs)"
    )
    lines.append(
        f"{results['model']['activation']} MLP {'-'.join(map(str, LAYERS))}, batch "
        f"{results['batch_size']}, {results['epochs']} epochs, {results.get('schedule')} "
        f"learning rate, lambda = {results['lam']:g}; grid scored after "
        f"{results['grid_epochs']} epochs on validation{prune}; wall time "
        f"{results['wall_seconds']:.0f} s on {results.get('devices')} device(s)."
    )
    return "\n".join(lines) + "\n"


def run(config: SweepConfig) -> dict:
    start = time.perf_counter()
    requested = config
    config = config.effective()
    mnist, data_record, run_dir = prepare(config, "optim_sweep")
    if (done := finished(run_dir)) is not None:
        return done
    out = run_dir.path
    model_fn = functools.partial(MLP, LAYERS, activation=config.activation)
    schedule = None
    if config.schedule == "cosine":
        steps = config.epochs * (len(mnist.train.labels) // config.batch_size)
        schedule = optax.cosine_decay_schedule(1.0, steps)
    ticks = progress_ticks(config.seeds, config.epochs, config.grid_epochs)

    results = {
        "experiment": "optim_sweep",
        "data": data_record,
        "model": {"layers": list(LAYERS), "activation": config.activation},
        "epochs": config.epochs,
        "grid_epochs": config.grid_epochs or config.epochs,
        "prune_at": config.prune_at or None,
        "prune_factor": config.prune_factor,
        "schedule": config.schedule,
        "batch_size": config.batch_size,
        "lam": config.lam,
        "seeds": list(range(config.seeds)),
        "quick": requested.quick,
        "devices": jax.device_count(),
        "wall_seconds": None,
        "optimizers": {},
    }
    with run_dir, Progress(len(config.optimizers) * ticks, "optim_sweep") as progress:
        for name in config.optimizers:
            trainer = Trainer(
                model_fn,
                name,
                batch_size=config.batch_size,
                lam=config.lam,
                n_train=len(mnist.train.labels),
                schedule=schedule,
            )
            entry = tune(
                run_dir,
                progress,
                config,
                trainer,
                mnist,
                config.grid(name),
                name,
                metadata={
                    "experiment": "optim_sweep",
                    "model": results["model"],
                    "batch_size": config.batch_size,
                    "lam": config.lam,
                },
            )
            if name in HOMEWORK:
                entry["homework_test_accuracy"] = HOMEWORK[name][1]
            results["optimizers"][name] = entry
    results["wall_seconds"] = time.perf_counter() - start

    done = {k: v for k, v in results["optimizers"].items() if v.get("selected") is not None}
    for metric, ylabel, kw in (
        ("train_cost", "training cost (cross-entropy)", {"logy": True}),
        ("val_accuracy", "validation accuracy", {}),
    ):
        plot_curves(
            {k: v["history"][metric] for k, v in done.items()},
            ylabel=ylabel,
            title=f"Problem 3.1: {ylabel} per epoch",
            path=out / f"{metric}.png",
            **kw,
        )
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        SweepConfig, argv, description=__doc__, prog="python -m experiments.optim_sweep"
    )
    one_device_per_core()  # a sweep is stacks of runs: one shard per core
    results = run(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main, several_processes=True)

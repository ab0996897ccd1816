"""Problem 3.1 end to end: SGD, SGD+momentum, AdaGrad and Adam on the 784-100-100-10 MLP,
each tuned on its validation grid, retrained on every seed, tested once (on the machinery
both MLP experiments share, `hw5jax.pipelines.mlp`).

Writes OUT/results.json, train_cost.png, val_accuracy.png, table.md and
OUT/checkpoints/<optimizer>_seed<k>/ (orbax).
"""

from __future__ import annotations

import functools
import time

from hw5jax.configs.optim_sweep import HOMEWORK, LAYERS, SweepConfig
from hw5jax.models.mlp import MLP
from hw5jax.pipelines.common import finished, prepare
from hw5jax.pipelines.mlp import Entry, results_header, step_schedule, tune_entries, write_results
from hw5jax.reporting import optimizers


def table(results: dict) -> str:
    """Problem 3.1's results table in Markdown, the homework's figures beside ours."""
    return optimizers.results_table(results, HOMEWORK)


def run(config: SweepConfig) -> dict:
    """Problem 3.1's sweep into `config.out` (resumed if interrupted there; read back if
    finished). Returns results.json's content with "out", the run directory."""
    start = time.perf_counter()
    requested, config = config, config.effective()
    mnist, data_record, run_dir = prepare(config, "optim_sweep")
    if (done := finished(run_dir)) is not None:
        return done
    out = run_dir.path
    model = {"layers": list(LAYERS), "activation": config.activation}
    steps_per_epoch = len(mnist.train.labels) // config.batch_size
    schedule = step_schedule(config.schedule, config.epochs, steps_per_epoch)
    entries = [
        Entry(
            name,
            functools.partial(MLP, LAYERS, activation=config.activation),
            model,
            name,
            config.grid(name),
            schedule,
        )
        for name in config.optimizers
    ]
    results = results_header(
        "optim_sweep",
        config,
        data_record=data_record,
        model=model,
        quick=requested.quick,
        schedule=config.schedule,
    )
    results["optimizers"] = tune_entries(run_dir, config, mnist, "optim_sweep", entries)
    for name, entry in results["optimizers"].items():
        if name in HOMEWORK:
            entry["homework_test_accuracy"] = HOMEWORK[name][1]
    results["wall_seconds"] = time.perf_counter() - start

    for metric, ylabel, kw in optimizers.SWEEP_FIGURES:
        optimizers.plot_entries(
            results["optimizers"],
            metric,
            ylabel=ylabel,
            title=f"Problem 3.1: {ylabel} per epoch",
            path=out / f"{metric}.png",
            **kw,
        )
    return write_results(out, results, table(results))

"""Problem 3.2 end to end: the optimizer sweep's MLP with BatchNorm after each hidden layer's
affine map, plain SGD, learning rate retuned on validation; beside it the same MLP without it
(same grid, epochs and seeds). Evaluation uses BatchNorm's running averages. Runs on the
MLP experiments' machinery (`hw5jax.pipelines.mlp`).

Writes OUT/results.json, val_accuracy.png, table.md and OUT/checkpoints/<variant>_seed<k>/.
"""

from __future__ import annotations

import functools
import time

from hw5jax.configs.batchnorm import HOMEWORK, LAYERS, VARIANTS, BatchnormConfig
from hw5jax.core.sweep import grid_points
from hw5jax.models.mlp import MLP
from hw5jax.pipelines.common import finished, prepare
from hw5jax.pipelines.mlp import Entry, results_header, tune_entries, write_results
from hw5jax.reporting import batchnorm as report
from hw5jax.reporting.optimizers import plot_entries


def table(results: dict) -> str:
    """Problem 3.2's results table in Markdown, the homework's answer below ours."""
    return report.results_table(results, HOMEWORK)


def run(config: BatchnormConfig) -> dict:
    """Both variants into `config.out` (resumed if interrupted there; read back if finished).
    Returns results.json's content with "out", the run directory."""
    start = time.perf_counter()
    requested, config = config, config.effective()
    mnist, data_record, run_dir = prepare(config, "batchnorm")
    if (done := finished(run_dir)) is not None:
        return done
    out = run_dir.path
    grid = grid_points({"learning_rate": config.lr_grid})
    model = {"layers": list(LAYERS), "activation": config.activation}
    entries = [
        Entry(
            name,
            functools.partial(MLP, LAYERS, activation=config.activation, batch_norm=batch_norm),
            {**model, "batch_norm": batch_norm},
            "sgd",
            grid,
        )
        for name, batch_norm in VARIANTS.items()
    ]
    results = results_header(
        "batchnorm",
        config,
        data_record=data_record,
        model=model,
        quick=requested.quick,
        optimizer="sgd",
    )
    results["variants"] = tune_entries(run_dir, config, mnist, "batchnorm", entries)
    for entry in results["variants"].values():
        if entry.get("selected") is not None:
            entry["epochs_to_97"] = [report.epochs_to(h) for h in entry["history"]["val_accuracy"]]
    results["wall_seconds"] = time.perf_counter() - start

    plot_entries(
        results["variants"],
        "val_accuracy",
        label=lambda name, entry: f"{name} (eta={entry['selected']['learning_rate']:g})",
        ylabel="validation accuracy",
        path=out / "val_accuracy.png",
        title="Problem 3.2: SGD with and without BatchNorm",
    )
    return write_results(out, results, table(results))

"""The results of the MLP experiments as Markdown and figures: Problem 3.1's table (our
selected settings and test accuracies beside the homework's), and what Problem 3.2's table
and both experiments' figures share (the accuracy column, the curves of the entries).

An entry is one row's `hw5jax.core.sweep.tune_and_retrain` result: "selected" (None if every
grid point diverged), "test_accuracy_mean", "test_accuracy_std",
"history": {"train_cost", "val_accuracy"}: float[seeds][epochs].
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from hw5jax.reporting.plots import plot_curves

# Problem 3.1's figures: the training cost (log scale) and the validation accuracy per epoch.
SWEEP_FIGURES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("train_cost", "training cost (cross-entropy)", {"logy": True}),
    ("val_accuracy", "validation accuracy", {}),
)


def accuracy_column(n_seeds: int) -> str:
    """The test-accuracy column's heading, shared by the MLP experiments' tables."""
    return f"test accuracy, mean ± std over {n_seeds} seed(s)"


def accuracy_cell(entry: Mapping) -> str:
    """An entry's test accuracy in percent, mean ± std over its seeds."""
    return f"{100 * entry['test_accuracy_mean']:.2f}% ± {100 * entry['test_accuracy_std']:.2f}"


def trained(entries: Mapping[str, Mapping]) -> dict[str, Mapping]:
    """The entries that have a selected setting (not every grid point diverged)."""
    return {name: e for name, e in entries.items() if e.get("selected") is not None}


def plot_entries(
    entries: Mapping[str, Mapping],
    metric: str,
    *,
    ylabel: str,
    title: str,
    path: str | os.PathLike,
    label: Callable[[str, Mapping], str] = lambda name, entry: name,
    logy: bool = False,
) -> None:
    """One curve per trained entry: `metric` of its history per epoch, mean over seeds with
    the seeds' band (`plot_curves`), labelled `label(name, entry)`."""
    plot_curves(
        {label(name, e): e["history"][metric] for name, e in trained(entries).items()},
        ylabel=ylabel,
        title=title,
        path=path,
        logy=logy,
    )


def format_hparams(hparams: Mapping[str, float]) -> str:
    """{"learning_rate": 0.1, "momentum": 0.9} -> "eta = 0.1, mu = 0.9"."""
    names = {"learning_rate": "eta", "momentum": "mu"}
    return ", ".join(f"{names.get(k, k)} = {v:g}" for k, v in hparams.items())


def results_table(results: Mapping, homework: Mapping[str, tuple[str, float]]) -> str:
    """Problem 3.1's results table in Markdown, with the homework's figures beside ours.

    results: the sweep's results.json; homework: optimizer -> (its setting, its test
    accuracy) as the homework reports them."""
    lines = [
        f"| optimizer | selected (validation) | {accuracy_column(len(results['seeds']))} "
        "| homework's setting | homework's test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, entry in results["optimizers"].items():
        hw_setting, hw_acc = homework.get(name, ("", float("nan")))
        if entry.get("selected") is None:
            ours = mine = "all diverged"
        else:
            ours = format_hparams(entry["selected"])
            mine = accuracy_cell(entry)
        lines.append(f"| {name} | {ours} | {mine} | {hw_setting} | {100 * hw_acc:.2f}% |")
    lines.append("")
    prune = (
        ""
        if not results.get("prune_at")
        else f" (the best 1/{results['prune_factor']} of each grid after "
        f"{results['prune_at']} epochs)"
    )
    lines.append(
        f"{results['model']['activation']} MLP {'-'.join(map(str, results['model']['layers']))}"
        f", batch {results['batch_size']}, {results['epochs']} epochs, {results.get('schedule')} "
        f"learning rate, lambda = {results['lam']:g}; grid scored after "
        f"{results['grid_epochs']} epochs on validation{prune}; wall time "
        f"{results['wall_seconds']:.0f} s on {results.get('devices')} device(s)."
    )
    return "\n".join(lines) + "\n"

"""Problem 3.2's results: how fast each variant reaches 97% validation accuracy, and the table
of both variants beside the homework's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hw5jax.reporting.optimizers import accuracy_cell, accuracy_column

TARGET = 0.97  # "epochs to 97% validation accuracy": results.json's "epochs_to_97"


def epochs_to(history: Sequence[float], target: float = TARGET) -> int | None:
    """First (1-based) epoch whose validation accuracy reaches `target`; None if none does."""
    return next((i + 1 for i, acc in enumerate(history) if acc >= target), None)


def results_table(results: Mapping, homework: Mapping[str, float]) -> str:
    """Problem 3.2's results table in Markdown: per variant the selected eta, the test
    accuracy and the epochs to 97% per seed; then the homework's answer.

    results: the experiment's results.json; homework: {"learning_rate", "test_accuracy"}."""
    lines = [
        f"| variant | selected eta | {accuracy_column(len(results['seeds']))} | "
        "epochs to 97% validation (per seed) |",
        "|---|---|---|---|",
    ]
    for name, v in results["variants"].items():
        if v.get("selected") is None:
            lines.append(f"| {name} | all diverged | | |")
            continue
        reach = ", ".join("never" if e is None else str(e) for e in v["epochs_to_97"])
        lines.append(
            f"| {name} | {v['selected']['learning_rate']:g} | {accuracy_cell(v)} | {reach} |"
        )
    lines.append(
        f"| homework (BatchNorm, SGD) | {homework['learning_rate']:g} | "
        f"{100 * homework['test_accuracy']:.1f}% | |"
    )
    lines.append("")
    lines.append(
        f"{results['model']['activation']} MLP, SGD, batch {results['batch_size']}, "
        f"{results['epochs']} epochs, grid scored after {results['grid_epochs']} "
        f"epochs; wall time {results['wall_seconds']:.0f} s."
    )
    return "\n".join(lines) + "\n"

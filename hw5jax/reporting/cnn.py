"""Problem 5.2's reports: a CNN run's results.json, table.md and curve (`report`, `table`;
`cnn_mnist` and `cnn_torch` write the same keys, so the two compare line by line) and the
table of runs evaluated again with test-time augmentation, and as one ensemble (`eval_table`,
`cnn_eval`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hw5jax.reporting.plots import plot_curves
from hw5jax.runs.files import write_json, write_text


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def table(results: dict) -> str:
    """Markdown: our test accuracy beside the homework's (results["homework_test_accuracy"])."""
    hp = results["hparams"]
    seeds = len(results["seeds"])
    if results["test_accuracy"] is None:
        ours = "not evaluated (--no-test)"
    else:
        ours = f"{_pct(results['test_accuracy_mean'])} ± {100 * results['test_accuracy_std']:.2f}"
    if results["history"]["val_accuracy"] is None:
        val_text = "none (trained on train+val)"
    else:
        val_text = _pct(float(np.asarray(results["history"]["val_accuracy"])[:, -1].mean()))
    lines = [
        f"| recipe | epochs | test accuracy, mean ± std over {seeds} seed(s) | "
        "final val accuracy (mean) | seconds per seed | homework's test accuracy |",
        "|---|---|---|---|---|---|",
        f"| {results['recipe']} | {results['epochs']} | {ours} | {val_text} | "
        f"{np.mean(results['seconds_per_seed']):.0f} | "
        f"{_pct(results['homework_test_accuracy'])} |",
        "",
        "hyperparameters: " + ", ".join(f"{k} = {v}" for k, v in hp.items()),
        f"data: {results['data']}; wall time {results['wall_seconds']:.0f} s.",
    ]
    if hp.get("tta", "none") != "none":
        lines.append(
            f"Test accuracy with test-time augmentation {hp['tta']!r} (the mean "
            "softmax over its views); validation: the plain forward pass."
        )
    if results["history"]["val_accuracy"] is None:
        lines.append(
            f"Trained on train+val ({results['data']['train']:,} images): no "
            "validation split was held out, so no validation accuracy was measured."
        )
    return "\n".join(lines) + "\n"


def report(
    out: Path,
    done_seeds: list[dict],
    record: dict[str, Any],
    *,
    start: float,
    homework_test_accuracy: float,
    n_val: int,
    held_out: bool,
    tested: bool,
    label: str,
    name: str,
) -> dict:
    """A CNN run's results from its seeds' records ({"test", "seconds", "history"}), after
    `record` (experiment, recipe, hparams, ...): results.json, table.md and the validation
    curve (the training cost when nothing was held out). `start`: the run's
    `time.perf_counter()` at its start. Returns the results and "out"."""
    test = [d["test"] for d in done_seeds]
    history = {k: [d["history"][k] for d in done_seeds] for k in ("train_cost", "val_accuracy")}
    results = {
        **record,
        "test_accuracy": test if tested else None,
        "test_accuracy_mean": float(np.mean(test)) if tested else None,
        "test_accuracy_std": float(np.std(test)) if tested else None,
        "homework_test_accuracy": homework_test_accuracy,
        "validation": (
            f"held out: the {n_val:,} val images, not trained on"
            if held_out
            else f"none: the {n_val:,} val images were trained on (train+val); val_accuracy is null"
        ),
        "seconds_per_seed": [d["seconds"] for d in done_seeds],
        "wall_seconds": None,
        "history": history if held_out else {**history, "val_accuracy": None},
    }
    curve, ylabel = (
        ("val_accuracy", "validation accuracy") if held_out else ("train_cost", "training cost")
    )  # nothing held out: the cost instead
    trained_on = "" if held_out else ", trained on train+val"
    plot_curves(
        {label: history[curve]},
        ylabel=ylabel,
        title=f"Problem 5.2: {name}{trained_on}, {ylabel}",
        path=out / f"{curve}.png",
    )
    results["wall_seconds"] = time.perf_counter() - start
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def _cell(summary: dict) -> str:
    if summary["per_seed"] is None:
        return "none held out"
    per_seed = ", ".join(f"{100 * v:.2f}" for v in summary["per_seed"])
    return f"{per_seed} → **{100 * summary['mean']:.2f}% ± {100 * summary['std']:.2f}**"


def _pct_or_none(x: float | None) -> str:
    return "none held out" if x is None else f"**{_pct(x)}**"


def eval_table(results: dict) -> str:
    """Markdown of a `cnn_eval` run: plain against test-time augmentation, per seed and mean
    ± std, and the ensemble of all the seeds when it was evaluated."""
    runs = results.get("runs") or [results["run"]]  # results.json before "runs": one run
    label_tta = f"test-time augmentation {results['tta']!r} ({len(results['views'])} views)"
    lines = [
        f"Checkpoints of {', '.join(runs)}, seeds {results['seeds']}.",
        "",
        "| evaluation | validation accuracy (%) | test accuracy (%) | "
        "seconds per seed (validation + test) |",
        "|---|---|---|---|",
    ]
    for name, label in (("plain", "plain forward pass"), ("with_tta", label_tta)):
        r = results[name]
        lines.append(
            f"| {label} | {_cell(r['val_accuracy'])} | {_cell(r['test_accuracy'])} | "
            f"{np.mean(r['seconds_per_seed']):.1f} |"
        )
    ensemble = results.get("ensemble")
    if ensemble is not None:
        n = len(ensemble["members"])
        for name, label in (("plain", "plain forward pass"), ("with_tta", label_tta)):
            e = ensemble[name]
            lines.append(
                f"| ensemble of the {n} checkpoints (mean probabilities), {label} | "
                f"{_pct_or_none(e['val_accuracy'])} | {_pct_or_none(e['test_accuracy'])} | "
                f"+{np.mean(e['seconds_per_member']):.1f} per member |"
            )
    return "\n".join(lines) + "\n"


def write_eval_report(out: Path, results: dict) -> dict:
    """A `cnn_eval` run's OUT/table.md and OUT/results.json; returns the results and "out"."""
    write_text(out / "table.md", eval_table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}

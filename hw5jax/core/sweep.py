"""Validation selects, test reports: tune one optimizer on a grid, retrain the best setting
for every seed, evaluate each final model once on the test split.

The result is one entry of `results.json["optimizers"]` (docs/results-format.md):
    {"grid": [{"hparams", "val_accuracy", "diverged"}], "selected": {...},
     "test_accuracy": [per seed], "test_accuracy_mean", "test_accuracy_std",
     "history": {"train_cost": [[per epoch] per seed], "val_accuracy": [[...]]},
     "checkpoints": [per seed], "seconds": wall time}
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hw5jax.core.fit import FitResult, StopCheck, Store, accuracy_on, fit_grid
from hw5jax.core.optim import full_hparams
from hw5jax.core.train import Trainer
from hw5jax.data import MNIST

# progress(stage, epoch, metrics): fit_grid's per-row metrics, plus "runs" (per row: the
# run's {"run": index in its program, "seed", "hparams"}, None for a padding row) and
# "seconds" (since the program started in this call).
Progress = Callable[[str, int, Mapping[str, Any]], None]


def grid_points(axes: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The cartesian product of hyperparameter axes, e.g. {"learning_rate": [...],
    "momentum": [0.5, 0.9]} -> [{"learning_rate": .., "momentum": ..}, ...]."""
    names = list(axes)
    return [
        dict(zip(names, map(float, values), strict=True))
        for values in itertools.product(*(axes[n] for n in names))
    ]


def select(results: Sequence[FitResult]) -> int:
    """Index of the best run by final validation accuracy among the runs that trained
    longest (successive halving stops the others early); diverged runs are never chosen.
    Returns -1 if every run diverged."""
    longest = max(r.epochs for r in results)
    scores = [
        -np.inf if r.diverged or r.epochs < longest else r.history["val_accuracy"][-1]
        for r in results
    ]
    best = int(np.argmax(scores))
    return -1 if scores[best] == -np.inf else best


def progress_ticks(n_seeds: int, epochs: int, grid_epochs: int | None = None) -> int:
    """How many times `tune_and_retrain` calls `progress` (once per epoch of each program)."""
    grid_epochs = grid_epochs or epochs
    reuse = grid_epochs == epochs
    return grid_epochs + (epochs if (n_seeds > 1 or not reuse) else 0)


def tune_and_retrain(
    trainer: Trainer,
    data: MNIST,
    grid: Sequence[Mapping[str, float]],
    seeds: Sequence[int],
    epochs: int,
    *,
    grid_epochs: int | None = None,
    prune_at: int | None = None,
    prune_factor: int = 3,
    store: Callable[[str], Store] | None = None,
    stop_check: StopCheck | None = None,
    save_final: Callable[[FitResult, float], str] | None = None,
    name: str = "run",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train `grid` on seeds[0] for `grid_epochs` (default `epochs`) as one vmapped program,
    pick the best on validation, train it for `epochs` on every seed, test each once.

    prune_at: successive halving; after that many epochs only the best 1/`prune_factor` of
    the grid (by validation accuracy, rounded up) trains on, and the best is chosen among
    those.
    When the grid ran the full `epochs`, its seeds[0] run *is* that seed's final run (same
    seed, same arithmetic), so it is reused rather than trained twice.
    store: opens the per-epoch `Store` of one program segment, by name ("grid/part0",
    "grid/part1", "seeds/part0"), so an interrupted call repeated with the same stores
    continues and gives the same entry. stop_check: called after every epoch.
    save_final(result, test_accuracy): keeps one final model and returns where (the entry's
    "checkpoints"); the models are not kept without it.
    progress(stage, epoch, metrics): after every epoch of each program (stage
    "<name>: grid of N", then "<name>: K seed(s)"); see `Progress` for the metrics.
    """
    start = time.perf_counter()
    grid_epochs = grid_epochs or epochs

    def report(stage: str, runs: list):
        """fit_grid's on_epoch -> `progress`, told which run each row is (`runs[i]` for the
        row fit_grid labels i) and the seconds since the program started."""
        if progress is None:
            return None
        began = time.perf_counter()

        def on_epoch(epoch: int, _state, metrics: dict[str, np.ndarray]) -> None:
            who = [None if i < 0 else runs[i] for i in metrics["run"]]
            seconds = time.perf_counter() - began
            progress(stage, epoch, {**metrics, "runs": who, "seconds": seconds})

        return on_epoch

    def stores(program: str) -> Callable[[str], Store] | None:
        return None if store is None else (lambda part: store(f"{program}/{part}"))

    keep = None if prune_at is None else (prune_at, -(-len(grid) // prune_factor))
    tuned = fit_grid(
        trainer,
        data,
        grid,
        [seeds[0]] * len(grid),
        grid_epochs,
        keep=keep,
        on_epoch=report(
            f"{name}: grid of {len(grid)}",
            [
                {"run": i, "seed": int(seeds[0]), "hparams": full_hparams(trainer.optimizer, hp)}
                for i, hp in enumerate(grid)
            ],
        ),
        store=stores("grid"),
        stop_check=stop_check,
    )
    entry: dict[str, Any] = {
        "grid": [
            {
                "hparams": r.hparams,
                "val_accuracy": r.history["val_accuracy"][-1],
                "epochs": r.epochs,
                "diverged": r.diverged,
            }
            for r in tuned
        ],
        "grid_epochs": grid_epochs,
        "prune_at": prune_at,
    }
    best = select(tuned)
    if best < 0:
        entry.update(selected=None, error="every grid point diverged")
        return entry
    selected = tuned[best].hparams
    reuse = grid_epochs == epochs
    todo = list(seeds[1:] if reuse else seeds)
    finals = [tuned[best]] if reuse else []
    if todo:
        finals += fit_grid(
            trainer,
            data,
            [selected] * len(todo),
            todo,
            epochs,
            on_epoch=report(
                f"{name}: {len(todo)} seed(s)",
                [{"run": j, "seed": int(s), "hparams": selected} for j, s in enumerate(todo)],
            ),
            store=stores("seeds"),
            stop_check=stop_check,
        )
    test = [accuracy_on(trainer, r.state, data.test) for r in finals]
    paths = (
        [] if save_final is None else [save_final(r, a) for r, a in zip(finals, test, strict=True)]
    )
    entry.update(
        selected=selected,
        seeds=[r.seed for r in finals],
        test_accuracy=test,
        test_accuracy_mean=float(np.mean(test)),
        test_accuracy_std=float(np.std(test)),
        diverged=[r.diverged for r in finals],
        history={k: [r.history[k] for r in finals] for k in ("train_cost", "val_accuracy")},
        checkpoints=paths,
        seconds=time.perf_counter() - start,
    )
    return entry

"""Progress of long work: a bar on stderr, advanced once per epoch of a program."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from hw5jax.core.sharding import is_primary


class Progress:
    """A tqdm bar on stderr, advanced once per epoch of a (possibly vmapped) program:
    `progress(stage, epoch, metrics)` is what `hw5jax.core.sweep.tune_and_retrain` calls."""

    def __init__(self, total: int, desc: str):
        self.bar = tqdm(
            total=total,
            unit="epoch",
            desc=desc,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not is_primary(),
        )
        self.done: dict[str, int] = {}  # last epoch seen per stage (a resumed one jumps)

    def __call__(self, stage: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        """`metrics`: this epoch's val_accuracy (NaN when nothing is held out: then the
        training cost is shown, if given) and train_cost, per run."""
        self.bar.set_description(stage)
        val = np.asarray(metrics["val_accuracy"], float)
        if np.isfinite(val).any():
            self.bar.set_postfix(best_val=f"{np.nanmax(val):.4f}")
        elif "train_cost" in metrics:
            self.bar.set_postfix(cost=f"{np.nanmin(np.asarray(metrics['train_cost'])):.4f}")
        self.bar.update(epoch - self.done.get(stage, 0))
        self.done[stage] = epoch

    def skip(self, ticks: int) -> None:
        """Advance over work an earlier invocation finished (a recorded stage)."""
        self.bar.update(ticks)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # before any message about an interruption, not after it

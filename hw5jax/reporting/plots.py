"""Matplotlib figures shared by the experiments (headless: the Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hw5jax.runs.files import save_figure  # noqa: E402


def plot_curves(
    curves: Mapping[str, Any],
    *,
    ylabel: str,
    title: str,
    path: str | os.PathLike,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
) -> None:
    """One line per label: the mean over seeds of `curves[label]` (float[seeds, epochs]),
    with a band from the lowest to the highest seed; epochs on the x axis (1-based)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        epochs = np.arange(1, values.shape[1] + 1)
        seeds = values.shape[0]
        (line,) = ax.plot(
            epochs,
            values.mean(0),
            lw=1.8,
            marker="o",
            markersize=3,
            label=f"{label} (mean of {seeds} seed{'s' * (seeds > 1)})",
        )
        if seeds > 1:
            ax.fill_between(
                epochs, values.min(0), values.max(0), color=line.get_color(), alpha=0.2, lw=0
            )
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    ax.legend()
    save_figure(fig, path)

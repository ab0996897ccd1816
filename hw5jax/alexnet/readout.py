"""Problems 4.2-4.4: what AlexNet makes of one photo (conv1's output, the final layer's size,
the top-5 ImageNet classes), its figure, and the notice for weights that are not
torchvision's pretrained file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from hw5jax.alexnet import convert
from hw5jax.models import alexnet


@dataclass(frozen=True)
class Readout:
    """AlexNet on one image: conv1 float[h, w, 64] (pre-ReLU, NHWC without N), the size of
    the final layer (1000) and the top-5 classes [{"index", "name", "probability"}]."""

    conv1: np.ndarray
    final_layer_dim: int
    top5: list[dict]

    @property
    def conv1_chw(self) -> list[int]:
        """conv1's shape as channels x height x width (Problem 4.2's "64 arrays of 56x56")."""
        h, w, c = self.conv1.shape
        return [c, h, w]


def reader(params: Any) -> Callable[[np.ndarray], Readout]:
    """A function from one normalised image float[S, S, 3] to its `Readout` under `params`
    (compiled once per input size)."""
    forward = jax.jit(alexnet.apply, static_argnames="names")

    def read(x: np.ndarray) -> Readout:
        acts = forward(params, x[None], names=("conv1", "logits"))
        logits = acts["logits"][0]
        return Readout(
            conv1=np.asarray(acts["conv1"][0]),
            final_layer_dim=int(logits.shape[-1]),
            top5=alexnet.top_k_classes(jax.nn.softmax(logits), 5),
        )

    return read


def weights_notice(meta: dict) -> str | None:
    """The announcement for weights that are not torchvision's pretrained file, else None."""
    if meta.get("pretrained"):
        return None
    return (
        f"weights {meta.get('source')!r} are not torchvision's pretrained "
        f"{convert.PRETRAINED_FILE} (sha256 {str(meta.get('sha256'))[:8]}...): "
        "the top-5 classes are meaningless"
    )


def conv1_figure(
    rgb: np.ndarray, conv1: np.ndarray, title: str, top5: list[dict], notice: str | None
):
    """The input (rgb: float[H, W, 3] in [0, 1]) beside an 8x8 grid of conv1's channels
    (conv1: float[h, w, 64], each channel on its own grey scale); returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = conv1.shape[-1]
    cols = 8
    rows = -(-channels // cols)
    fig = plt.figure(figsize=(15, 7.5))
    grid = fig.add_gridspec(rows, cols + rows, wspace=0.08, hspace=0.25)
    ax = fig.add_subplot(grid[:, :rows])
    ax.imshow(rgb)
    ax.set_title(f"input {rgb.shape[0]}x{rgb.shape[1]}x3", fontsize=11)
    ax.axis("off")
    lines = [f"{p['probability']:6.1%}  {p['name'][:56]}" for p in top5]
    ax.text(
        0.0,
        -0.03,
        "top-5:\n" + "\n".join(lines),
        transform=ax.transAxes,
        va="top",
        fontsize=10,
        family="monospace",
    )
    for k in range(channels):
        a = fig.add_subplot(grid[k // cols, rows + k % cols])
        a.imshow(conv1[..., k], cmap="gray")  # autoscaled per channel: shows its pattern
        a.set_title(str(k), fontsize=7, pad=2)
        a.axis("off")
    suptitle = f"{title}: conv1 output {channels} x {conv1.shape[0]} x {conv1.shape[1]}"
    if notice:
        suptitle += "\n(random / non-pretrained weights: classes are meaningless)"
    fig.suptitle(suptitle, fontsize=13, color="black" if not notice else "darkred")
    return fig

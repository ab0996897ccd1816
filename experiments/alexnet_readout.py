"""AlexNet's conv1 output and top-5 classes for some photos (Problems 4.2-4.4).

    python -m experiments.alexnet_readout IMAGE... --weights weights/alexnet --out DIR \\
        [--size 227] [--fit crop|pad|resize]

Restores the converted checkpoint (experiments.convert_alexnet), and per image prints and
records the input shape, conv1's output shape as channels x height x width (64 x 56 x 56 for
a 227 input), the final layer's size (1000) and the top-5 ImageNet classes; saves
`conv1_NN_<name>.png` (the input and all 64 conv1 channels) and `results.json` in DIR
(default runs/alexnet_readout/<UTC timestamp>/). Weights that are not torchvision's pretrained
file are announced on every run (stderr, results.json, figures): their classes mean nothing.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from hw5jax.alexnet import convert
from hw5jax.alexnet.images import DEFAULT_SIZE, FITS, denormalize, load_image
from hw5jax.cli import build_parser, run_main
from hw5jax.errors import ConfigError
from hw5jax.models import alexnet
from hw5jax.runs import files as results


@dataclass(frozen=True)
class Config:
    images: tuple[str, ...] = field(default=(), metadata={"cli": False})
    weights: str = field(
        default="weights/alexnet",
        metadata={"help": "converted checkpoint directory", "metavar": "DIR"},
    )
    out: str | None = field(
        default=None,
        metadata={
            "help": "output directory; if not given, runs/alexnet_readout/<UTC timestamp>",
            "metavar": "DIR",
        },
    )
    size: int = field(default=DEFAULT_SIZE, metadata={"help": "input size S (S x S)"})
    fit: str = field(
        default="crop", metadata={"help": "crop | pad | resize (see hw5jax.alexnet.images)"}
    )

    def __post_init__(self):
        if not self.images:
            raise ConfigError("give at least one IMAGE")
        if self.fit not in FITS:
            raise ConfigError(f"--fit {self.fit!r}: choose one of {', '.join(FITS)}")
        if self.size < alexnet.MIN_INPUT_SIZE:
            raise ConfigError(
                f"--size {self.size}: AlexNet needs at least {alexnet.MIN_INPUT_SIZE}"
            )


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
    (conv1: float[h, w, 64], each channel on its own grey scale)."""
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


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(Config, description=__doc__, prog="python -m experiments.alexnet_readout")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    args = vars(parser.parse_args(argv))
    config = Config(**{**args, "images": tuple(args["images"])})
    start = time.perf_counter()

    # Everything that can fail on bad input happens before anything is written.
    # (images first: they are cheap to check, the 240 MB of weights are not).
    inputs = [load_image(p, config.size, config.fit) for p in config.images]
    params, meta = convert.restore_params(config.weights)
    notice = weights_notice(meta)
    if notice:
        print(f"warning: {notice}", file=sys.stderr)
    out = results.output_dir(config.out, "alexnet_readout")

    forward = jax.jit(alexnet.apply, static_argnames="names")
    records = []
    for index, (path, x) in enumerate(zip(config.images, inputs, strict=True)):
        acts = forward(params, x[None], names=("conv1", "logits"))
        conv1 = np.asarray(acts["conv1"][0])  # [h, w, 64]
        logits = acts["logits"][0]
        top5 = alexnet.top_k_classes(jax.nn.softmax(logits), 5)
        conv1_chw = [conv1.shape[2], conv1.shape[0], conv1.shape[1]]
        figure = f"conv1_{index:02d}_{Path(path).stem}.png"
        results.save_figure(
            conv1_figure(denormalize(x), conv1, Path(path).name, top5, notice), out / figure
        )
        records.append(
            {
                "path": str(path),
                "input_shape": list(x.shape),
                "conv1_shape": conv1_chw,
                "final_layer_dim": int(logits.shape[-1]),
                "top5": top5,
                "figure": figure,
            }
        )
        best = ", ".join(f"{p['name'].split(',')[0]} {p['probability']:.1%}" for p in top5)
        print(
            f"{path}: input {'x'.join(map(str, x.shape))}; conv1 output "
            f"{' x '.join(map(str, conv1_chw))} ({conv1_chw[0]} arrays of "
            f"{conv1_chw[1]}x{conv1_chw[2]}); final layer {logits.shape[-1]}; top-5: {best}"
        )

    results.write_json(
        out / "results.json",
        {
            "experiment": "alexnet_readout",
            "weights": {
                "pretrained": bool(meta.get("pretrained")),
                "source": meta.get("source"),
                "sha256": meta.get("sha256"),
                "checkpoint": str(config.weights),
                "notice": notice,
            },
            "size": config.size,
            "fit": config.fit,
            "images": records,
            "wall_seconds": time.perf_counter() - start,
        },
    )
    print(f"wrote {out / 'results.json'} and {len(records)} figure(s)")
    if notice:  # again at the end, where it is seen
        print(f"warning: {notice}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)

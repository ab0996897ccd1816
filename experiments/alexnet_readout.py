"""AlexNet's conv1 output and top-5 classes for some photos (Problems 4.2-4.4).

    python -m experiments.alexnet_readout IMAGE... --weights weights/alexnet --out DIR \\
        [--size 227] [--fit crop|pad|resize]

Restores the converted checkpoint (experiments.convert_alexnet), and per image prints and
records the input shape, conv1's output shape as channels x height x width (64 x 56 x 56 for
a 227 input), the final layer's size (1000) and the top-5 ImageNet classes; saves
`conv1_NN_<name>.png` (the input and all 64 conv1 channels) and `results.json` in DIR
(default runs/alexnet_readout/<UTC timestamp>/). Weights that are not torchvision's pretrained
file are announced on every run (stderr, results.json, figures): their classes mean nothing.
An IMAGE `sample:NAME` is a photo bundled with matplotlib (grace_hopper) or scikit-image
(chelsea, coffee, astronaut), e.g. `sample:chelsea`.
"""

from __future__ import annotations

from hw5jax.alexnet.images import SAMPLES
from hw5jax.cli import build_parser, run_main
from hw5jax.configs.alexnet import ReadoutConfig
from hw5jax.pipelines import alexnet


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(
        ReadoutConfig, description=__doc__, prog="python -m experiments.alexnet_readout"
    )
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help=f"image files, or sample:NAME for a bundled photo ({', '.join(SAMPLES)})",
    )
    args = vars(parser.parse_args(argv))
    alexnet.readout(ReadoutConfig(**{**args, "images": tuple(args["images"])}))


if __name__ == "__main__":
    run_main(main)

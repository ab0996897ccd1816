"""Convert a torchvision AlexNet .pth to an hw5jax checkpoint (Problem 4.1).

    python -m experiments.convert_alexnet alexnet-owt-7be5be79.pth --out weights/alexnet
    python -m experiments.convert_alexnet --make-random-reference weights/alexnet_random.pth

The first reads the state_dict with torch.load(weights_only=True), checks every key and shape,
converts it (OIHW -> HWIO, Linear .T, fc6 reordered to NHWC flatten order) and saves an orbax
checkpoint whose metadata records the source file name, its sha256 and whether it is
torchvision's pretrained file. The second writes a random-weight AlexNet state_dict with
torchvision's key names: the stand-in used when the pretrained file cannot be downloaded
(then convert it with the first command). Needs torch (pip install torch==2.13.0).
"""

from __future__ import annotations

from hw5jax.cli import build_parser, run_main
from hw5jax.configs.alexnet import ConvertConfig
from hw5jax.pipelines import alexnet


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(
        ConvertConfig, description=__doc__, prog="python -m experiments.convert_alexnet"
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL.pth",
        help="torchvision AlexNet state_dict (e.g. alexnet-owt-7be5be79.pth)",
    )
    alexnet.convert(ConvertConfig(**vars(parser.parse_args(argv))))


if __name__ == "__main__":
    run_main(main)

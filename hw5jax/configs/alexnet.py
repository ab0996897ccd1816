"""Problem 4: the options of the AlexNet commands (`convert_alexnet` turns torchvision's
weights into a checkpoint, `alexnet_readout` reads conv1 and the top-5 classes of photos).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw5jax.alexnet.images import DEFAULT_SIZE, FITS
from hw5jax.configs.common import check_declared, option
from hw5jax.errors import ConfigError
from hw5jax.models import alexnet


@dataclass(frozen=True)
class ConvertConfig:
    """Problem 4.1: a torchvision AlexNet .pth -> an orbax checkpoint of our parameters.

    run: python -m experiments.convert_alexnet alexnet-owt-7be5be79.pth --out weights/alexnet
    expected: weights/alexnet/ (state + metadata: source, sha256, pretrained), a few seconds
    """

    model: str | None = field(default=None, metadata={"cli": False})  # the positional MODEL.pth
    out: str = option("weights/alexnet", "checkpoint directory to write", metavar="DIR")
    make_random_reference: str | None = option(
        None,
        "write a random-weight torchvision-layout AlexNet .pth here and exit",
        metavar="PTH",
    )
    seed: int = option(0, "seed for --make-random-reference")

    def __post_init__(self):
        if (self.model is None) == (self.make_random_reference is None):
            raise ConfigError("give either MODEL.pth to convert or --make-random-reference PTH")


@dataclass(frozen=True)
class ReadoutConfig:
    """Problems 4.2-4.4: conv1's output and the top-5 ImageNet classes of some photos.

    run: python -m experiments.alexnet_readout IMAGE... --weights weights/alexnet
    expected: per image conv1 output 64 x 56 x 56 (227 input), final layer 1000, a top-5
    """

    images: tuple[str, ...] = field(default=(), metadata={"cli": False})  # the positional IMAGEs
    weights: str = option("weights/alexnet", "converted checkpoint directory", metavar="DIR")
    out: str | None = option(
        None,
        "output directory; if not given, runs/alexnet_readout/<UTC timestamp>",
        metavar="DIR",
    )
    # Below MIN_INPUT_SIZE (63) pool5 has no output left: the network cannot run.
    size: int = option(DEFAULT_SIZE, "input size S (S x S)", minimum=alexnet.MIN_INPUT_SIZE)
    fit: str = option("crop", "crop | pad | resize (see hw5jax.alexnet.images)", choices=FITS)

    def __post_init__(self):
        if not self.images:
            raise ConfigError("give at least one IMAGE")
        check_declared(self)

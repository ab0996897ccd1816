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

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hw5jax.alexnet import convert
from hw5jax.cli import build_parser, run_main
from hw5jax.errors import ConfigError


@dataclass(frozen=True)
class Config:
    model: str | None = field(default=None, metadata={"cli": False})
    out: str = field(
        default="weights/alexnet",
        metadata={"help": "checkpoint directory to write", "metavar": "DIR"},
    )
    make_random_reference: str | None = field(
        default=None,
        metadata={
            "help": "write a random-weight torchvision-layout AlexNet .pth here and exit",
            "metavar": "PTH",
        },
    )
    seed: int = field(default=0, metadata={"help": "seed for --make-random-reference"})

    def __post_init__(self):
        if (self.model is None) == (self.make_random_reference is None):
            raise ConfigError("give either MODEL.pth to convert or --make-random-reference PTH")


def _check_out(out: Path) -> None:
    """Refuse to replace anything that is not an hw5jax checkpoint (orbax's overwrite would
    delete the directory)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / "state").is_dir() and (out / "metadata").is_dir()):
            raise ConfigError(
                f"--out {out}: a non-empty directory that is not a checkpoint; "
                "refusing to overwrite it (choose another --out)"
            )


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(Config, description=__doc__, prog="python -m experiments.convert_alexnet")
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL.pth",
        help="torchvision AlexNet state_dict (e.g. alexnet-owt-7be5be79.pth)",
    )
    config = Config(**vars(parser.parse_args(argv)))

    if config.make_random_reference is not None:
        path = convert.save_random_reference(config.make_random_reference, config.seed)
        print(
            f"wrote a random-weight AlexNet state_dict (seed {config.seed}) to {path}\n"
            f"convert it with: python -m experiments.convert_alexnet {path} --out "
            "weights/alexnet"
        )
        return

    out = Path(config.out)
    _check_out(out)
    state_dict = convert.load_torch_state_dict(config.model)
    convert.check_state_dict(state_dict, source=config.model)
    params = convert.convert_state_dict(state_dict)
    meta = convert.provenance(config.model)
    convert.save_params(out, params, meta)
    print(f"converted {config.model} (sha256 {meta['sha256'][:16]}...) -> {out}")
    if not meta["pretrained"]:
        print(
            f"note: {meta['source']} is not torchvision's pretrained {convert.PRETRAINED_FILE} "
            "(sha256 differs): predictions will be meaningless",
            file=sys.stderr,
        )


if __name__ == "__main__":
    run_main(main)

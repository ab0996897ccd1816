"""Problem 4, end to end: convert torchvision's AlexNet weights (`convert`, 4.1) and read out
conv1 and the top-5 classes of some photos (`readout`, 4.2-4.4). Everything that can fail on
bad input fails before anything is written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import cast

from hw5jax.alexnet import convert as conversion
from hw5jax.alexnet.images import Fit, denormalize, load_image, resolve
from hw5jax.alexnet.readout import conv1_figure, reader, weights_notice
from hw5jax.configs.alexnet import ConvertConfig, ReadoutConfig
from hw5jax.errors import ConfigError
from hw5jax.runs import files as results
from hw5jax.runs.rundir import stamp


def check_out(out: Path) -> None:
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


def convert(config: ConvertConfig) -> None:
    """Problem 4.1: write the random-weight stand-in .pth (`--make-random-reference`), or
    convert `config.model` into the checkpoint `config.out`; says what it wrote on stdout."""
    if config.make_random_reference is not None:
        path = conversion.save_random_reference(config.make_random_reference, config.seed)
        print(
            f"wrote a random-weight AlexNet state_dict (seed {config.seed}) to {path}\n"
            f"convert it with: python -m experiments.convert_alexnet {path} --out "
            "weights/alexnet"
        )
        return

    out = Path(config.out)
    check_out(out)
    model = str(config.model)  # ConvertConfig: given whenever no reference is asked for
    state_dict = conversion.load_torch_state_dict(model)
    conversion.check_state_dict(state_dict, source=model)
    params = conversion.convert_state_dict(state_dict)
    meta = conversion.provenance(model)
    conversion.save_params(out, params, meta)
    print(f"converted {config.model} (sha256 {meta['sha256'][:16]}...) -> {out}")
    if not meta["pretrained"]:
        print(
            f"note: {meta['source']} is not torchvision's pretrained "
            f"{conversion.PRETRAINED_FILE} (sha256 differs): predictions will be meaningless",
            file=sys.stderr,
        )


def readout(config: ReadoutConfig) -> Path:
    """Problems 4.2-4.4: per image print and record the input shape, conv1's output shape
    (channels x height x width), the final layer's size and the top-5; save its figure
    `conv1_NN_<name>.png` and `results.json` in the output directory, which is returned."""
    start = time.perf_counter()

    # Everything that can fail on bad input happens before anything is written.
    # (images first: they are cheap to check, the 240 MB of weights are not).
    inputs = [load_image(p, config.size, cast(Fit, config.fit)) for p in config.images]
    params, meta = conversion.restore_params(config.weights)
    notice = weights_notice(meta)
    if notice:
        print(f"warning: {notice}", file=sys.stderr)
    out = results.output_dir(config.out, "alexnet_readout")
    stamp(out, "alexnet_readout", config)

    read = reader(params)
    records = []
    for index, (path, x) in enumerate(zip(config.images, inputs, strict=True)):
        seen = read(x)
        conv1_chw = seen.conv1_chw
        figure = f"conv1_{index:02d}_{resolve(path).stem}.png"
        results.save_figure(
            conv1_figure(denormalize(x), seen.conv1, resolve(path).name, seen.top5, notice),
            out / figure,
        )
        records.append(
            {
                "path": str(path),
                "input_shape": list(x.shape),
                "conv1_shape": conv1_chw,
                "final_layer_dim": seen.final_layer_dim,
                "top5": seen.top5,
                "figure": figure,
            }
        )
        best = ", ".join(f"{p['name'].split(',')[0]} {p['probability']:.1%}" for p in seen.top5)
        print(
            f"{path}: input {'x'.join(map(str, x.shape))}; conv1 output "
            f"{' x '.join(map(str, conv1_chw))} ({conv1_chw[0]} arrays of "
            f"{conv1_chw[1]}x{conv1_chw[2]}); final layer {seen.final_layer_dim}; top-5: {best}"
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
    return out

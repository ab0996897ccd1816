"""Evaluate the trained CNNs of a `cnn_mnist` run again, plain and with test-time
augmentation: no training, the saved checkpoints only.

    python -m experiments.cnn_eval RUN_DIR [--tta shift1rot5] [--out DIR] [--data auto]

RUN_DIR is a `cnn_mnist` output directory; every `RUN_DIR/checkpoints/<recipe>_seed<k>` is
restored and its validation and test accuracy measured with the plain forward pass and with
the views of `--tta` (`hw5jax.core.augment.TTA_VIEWS`). Writes OUT/results.json and table.md
(default OUT: runs/cnn_eval/<UTC time>). Validation is null for a run trained on train+val.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from experiments.cnn_mnist import make_trainer
from hw5jax import data as mnist_data
from hw5jax.cli import build_parser, run_main
from hw5jax.core.augment import TTA_VIEWS, tta_views
from hw5jax.core.fit import accuracy_on
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.runs import checkpoint
from hw5jax.runs.files import output_dir, write_json, write_text


@dataclass(frozen=True)
class EvalConfig:
    run: str = field(default="", metadata={"cli": False})
    tta: str = field(
        default="shift1rot5",
        metadata={
            "help": f"views of test-time augmentation: {' | '.join(TTA_VIEWS)}",
            "metavar": "VIEWS",
        },
    )
    out: str | None = field(
        default=None,
        metadata={"help": "output directory (default runs/cnn_eval/<UTC time>)", "metavar": "DIR"},
    )
    data: str = field(
        default="auto",
        metadata={
            "help": "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz",
            "metavar": "SOURCE",
        },
    )

    def __post_init__(self):
        tta_views(self.tta)
        if not (Path(self.run) / "checkpoints").is_dir():
            raise ConfigError(f"{self.run}: not a cnn_mnist run directory (no checkpoints/ in it)")


def _seed_of(path: Path) -> int:
    return int(path.name.rsplit("_seed", 1)[1])


def checkpoints_of(run: Path) -> list[Path]:
    """The run's final checkpoints, by seed."""
    found = [
        p
        for p in (run / "checkpoints").iterdir()
        if "_seed" in p.name
        and p.name.rsplit("_seed", 1)[1].isdigit()
        and checkpoint.is_checkpoint(p)
    ]
    if not found:
        raise ConfigError(f"{run}: no <recipe>_seed<k> checkpoints in {run / 'checkpoints'}")
    return sorted(found, key=_seed_of)


def _summary(values: list[float | None]) -> dict:
    if any(v is None for v in values):
        return {"per_seed": None, "mean": None, "std": None}
    return {"per_seed": values, "mean": float(np.mean(values)), "std": float(np.std(values))}


def evaluate_run(config: EvalConfig) -> dict:
    start = time.perf_counter()
    run = Path(config.run)
    paths = checkpoints_of(run)
    mnist = mnist_data.load_mnist(config.data)
    views = tta_views(config.tta)
    out = output_dir(config.out, "cnn_eval")
    rows = []
    trainers: dict[str, Trainer] = {}  # one per recipe: its evaluation compiles once
    with tqdm(total=len(paths), unit="seed", desc="cnn_eval", file=sys.stderr) as bar:
        for path in paths:
            meta = checkpoint.read_metadata(path)  # says how to build the trainer
            hp = meta["hparams"]
            key = json.dumps(hp, sort_keys=True)
            if key not in trainers:
                trainers[key] = make_trainer(hp, n_train=len(mnist.train.labels))
            trainer = trainers[key]
            state, _ = checkpoint.restore(path, like=trainer.abstract_state())
            held_out = hp.get("train_on", "train") == "train"
            row = {"seed": meta["seed"], "checkpoint": str(path)}
            for name, v in (("plain", None), ("with_tta", views)):
                t0 = time.perf_counter()
                row[name] = {
                    "val": accuracy_on(trainer, state, mnist.val, v) if held_out else None,
                    "test": accuracy_on(trainer, state, mnist.test, v),
                }
                row[name]["seconds"] = time.perf_counter() - t0
            rows.append(row)
            bar.update(1)
            bar.set_postfix_str(
                f"seed {row['seed']}: test {row['plain']['test']:.4f} -> "
                f"{row['with_tta']['test']:.4f}"
            )
    results = {
        "experiment": "cnn_eval",
        "run": str(run),
        "tta": config.tta,
        "views": [list(v) for v in views],
        "seeds": [r["seed"] for r in rows],
        "data": {"source": config.data, **mnist_data.describe(mnist)},
        **{
            name: {
                "val_accuracy": _summary([r[name]["val"] for r in rows]),
                "test_accuracy": _summary([r[name]["test"] for r in rows]),
                "seconds_per_seed": [r[name]["seconds"] for r in rows],
            }
            for name in ("plain", "with_tta")
        },
        "checkpoints": [r["checkpoint"] for r in rows],
        "wall_seconds": time.perf_counter() - start,
    }
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def _cell(summary: dict) -> str:
    if summary["per_seed"] is None:
        return "none held out"
    per_seed = ", ".join(f"{100 * v:.2f}" for v in summary["per_seed"])
    return f"{per_seed} → **{100 * summary['mean']:.2f}% ± {100 * summary['std']:.2f}**"


def table(results: dict) -> str:
    """Markdown: plain against test-time augmentation, per seed and mean ± std."""
    lines = [
        f"Checkpoints of {results['run']}, seeds {results['seeds']}.",
        "",
        "| evaluation | validation accuracy (%) | test accuracy (%) | "
        "seconds per seed (validation + test) |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("plain", "plain forward pass"),
        ("with_tta", f"test-time augmentation {results['tta']!r} ({len(results['views'])} views)"),
    ):
        r = results[name]
        lines.append(
            f"| {label} | {_cell(r['val_accuracy'])} | {_cell(r['test_accuracy'])} | "
            f"{np.mean(r['seconds_per_seed']):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(EvalConfig, description=__doc__, prog="python -m experiments.cnn_eval")
    parser.add_argument("run", metavar="RUN_DIR", help="a cnn_mnist output directory")
    config = EvalConfig(**vars(parser.parse_args(argv)))
    results = evaluate_run(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

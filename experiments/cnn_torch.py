"""Problem 5.2's homework recipe trained the homework's way, in PyTorch: the reference for
what that recipe scores, beside hw5jax's `python -m experiments.cnn_mnist --recipe homework`.

    python -m experiments.cnn_torch                        # seeds 0-2, 4 epochs, 50,000 images
    python -m experiments.cnn_torch --seeds 10 --out runs/cnn_torch/homework_10seeds
    python -m experiments.cnn_torch --train-on train+val --normalize true  # the tutorial's data
    python -m experiments.cnn_torch --quick --out /tmp/q   # a smoke run (2,000 images)

The network (conv 5x5x32, ReLU, max-pool 2x2; conv 5x5x64, ReLU, max-pool 2x2; dense
100-100-10 with ReLU), PyTorch's default initialisation, `torch.optim.Adam` (lr 1e-3),
cross-entropy, batch 128 from a fresh shuffle every epoch with the last short batch kept (a
`DataLoader(shuffle=True)`), eager, on the CPU. `torch.manual_seed(seed)` fixes the
initialisation and the shuffles. Needs torch (`pip install torch==2.13.0`, in the test extra).

Writes OUT/results.json (the keys of cnn_mnist's, plus "framework" and "threads"),
val_accuracy.png (train_cost.png with train+val), table.md and the trained weights,
OUT/checkpoints/homework_seed<k>.pt (`torch.save` of the state_dict). Resumable per seed: an
interrupted run continues with the first seed it had not finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from experiments.cnn_mnist import QUICK_SIZES, RECIPES, TRAIN_ON, report, table
from hw5jax import data as mnist_data
from hw5jax.cli import parse_config, run_main
from hw5jax.errors import ConfigError
from hw5jax.reference.pytorch import TORCH_INSTALL, import_torch, torch_tensors, train_cnn
from hw5jax.reporting.progress import Progress
from hw5jax.runs.experiment import finished, prepare
from hw5jax.runs.files import write_file
from hw5jax.runs.rundir import stop_point

HOMEWORK = RECIPES["homework"]
LABEL = "homework (PyTorch)"


@dataclass(frozen=True)
class TorchCNNConfig:
    out: str | None = field(
        default=None,
        metadata={"help": "output directory (default runs/cnn_torch/<UTC time>)", "metavar": "DIR"},
    )
    seeds: int = field(
        default=3, metadata={"help": "K seeds: F..F+K-1 (torch.manual_seed; F = --first-seed)"}
    )
    first_seed: int = field(default=0, metadata={"help": "the first seed F", "metavar": "F"})
    epochs: int = field(default=HOMEWORK["epochs"], metadata={"help": "training epochs"})
    data: str = field(
        default="auto",
        metadata={
            "help": "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz",
            "metavar": "SOURCE",
        },
    )
    train_on: str = field(
        default="train",
        metadata={
            "help": "train (50,000 images; validate on the other 10,000) | train+val (all "
            "60,000, no validation)",
            "metavar": "SPLITS",
        },
    )
    # BOOL, as cnn_mnist's --normalize takes it (None: false, the homework's raw pixels)
    normalize: bool | None = field(
        default=None,
        metadata={
            "help": "true: standardise the pixels with MNIST's mean and std (0.1307, 0.3081); "
            "default false",
            "metavar": "BOOL",
        },
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "torch.set_num_threads (default: os.cpu_count(), PyTorch's own default)"},
    )
    quick: bool = field(
        default=False, metadata={"help": "smoke run: 2,000 training images, 1 epoch, 1 seed"}
    )

    def __post_init__(self):
        if self.train_on not in TRAIN_ON:
            raise ConfigError(f"--train-on {self.train_on!r}: use one of {', '.join(TRAIN_ON)}")
        if self.first_seed < 0:
            raise ConfigError(f"--first-seed {self.first_seed}: must be >= 0")
        for name in ("seeds", "epochs", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name} {value}: must be at least 1")

    def hparams(self) -> dict[str, Any]:
        keep = ("batch_size", "learning_rate", "channels", "hidden")
        return {
            "epochs": 1 if self.quick else self.epochs,
            **{k: HOMEWORK[k] for k in keep},
            "optimizer": "torch.optim.Adam",
            "weight_init": "torch",
            "normalize": bool(self.normalize),
            "last_batch": "kept",
            "train_on": self.train_on,
        }

    def effective(self) -> TorchCNNConfig:
        return replace(self, seeds=1) if self.quick else self


def run(config: TorchCNNConfig) -> dict:
    start = time.perf_counter()
    torch = import_torch(config.threads)
    if torch is None:
        raise ConfigError(f"torch is not installed; this command needs it: `{TORCH_INSTALL}`")
    requested, config = config, config.effective()
    hp = config.hparams()
    mnist, data_record, run_dir = prepare(config, "cnn_torch", {"hparams": hp})
    if (done := finished(run_dir)) is not None:
        return done
    if requested.quick:
        mnist = mnist_data.subset(mnist, QUICK_SIZES)
    held_out = config.train_on == "train"
    n_val = len(mnist.val.labels)
    if not held_out:
        mnist = mnist_data.merge_val_into_train(mnist)
    data_record.update(mnist_data.describe(mnist))
    data = [
        torch_tensors(torch, s.images, s.labels, nchw=True, normalize=hp["normalize"])
        for s in mnist
    ]
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    out = run_dir.path

    with run_dir, Progress(len(seeds) * hp["epochs"], "cnn_torch") as bar:

        def one(seed: int) -> dict:
            def on_epoch(epoch: int, acc: float, cost: float) -> None:
                bar(f"cnn_torch: seed {seed}", epoch, {"val_accuracy": [acc], "train_cost": [cost]})
                stop_point()  # Ctrl-C: stop here; this seed trains again on resume

            record = train_cnn(torch, hp, data, seed, on_epoch)
            weights = record.pop("model").state_dict()
            (out / "checkpoints").mkdir(exist_ok=True)
            write_file(
                out / "checkpoints" / f"homework_seed{seed}.pt", lambda f: torch.save(weights, f)
            )
            return record

        done_seeds = [
            run_dir.stage(f"seed{s}", lambda s=s: one(s), on_skip=lambda: bar.skip(hp["epochs"]))
            for s in seeds
        ]
    return report(
        out,
        done_seeds,
        {
            "experiment": "cnn_torch",
            "recipe": LABEL,
            "framework": f"torch {torch.__version__}, eager, CPU",
            "threads": torch.get_num_threads(),
            "epochs": hp["epochs"],
            "hparams": hp,
            "data": data_record,
            "seeds": seeds,
            "quick": requested.quick,
        },
        start=start,
        n_val=n_val,
        held_out=held_out,
        tested=True,
        label=LABEL,
        name="the homework CNN in PyTorch",
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        TorchCNNConfig, argv, description=__doc__, prog="python -m experiments.cnn_torch"
    )
    results = run(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

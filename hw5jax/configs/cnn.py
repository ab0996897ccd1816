"""Problem 5.2: the CNN's recipes and the options of its three commands (`cnn_mnist` trains a
recipe in JAX, `cnn_torch` the homework's recipe in PyTorch, `cnn_eval` evaluates
the checkpoints of `cnn_mnist` runs again, plain and with test-time augmentation, also as one
ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hw5jax.configs.common import STRICT_RESUME_HELP, TENSORBOARD_HELP, check_declared, option
from hw5jax.core.augment import TTA_VIEWS
from hw5jax.errors import ConfigError
from hw5jax.kernels.conv import CONVS
from hw5jax.models.cnn import WEIGHT_INITS
from hw5jax.runs.metrics import require_tensorboard

HOMEWORK_TEST_ACCURACY = 0.9915  # the homework's reported result (Problem 5.2)
SCHEDULES = ("constant", "cosine")
# "train": Nielsen's 50,000 training images, validation on the held-out 10,000.
# "train+val": all 60,000 (MNIST's official training set, as a PyTorch homework would use);
# nothing is held out, so there is no validation accuracy (recorded as null).
TRAIN_ON = ("train", "train+val")
# --quick: the first images of each split (a smoke run).
QUICK_SIZES = {"train": 2_000, "val": 1_000, "test": 1_000}

# Every hyperparameter of a recipe; the command line overrides single ones.
RECIPES: dict[str, dict[str, Any]] = {
    # The homework's network and settings exactly, with PyTorch's default initialisation (the
    # homework's framework; see docs/cnn.md).
    "homework": {
        "epochs": 4,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "schedule": "constant",
        "channels": (32, 64),
        "hidden": (100, 100),
        "batch_norm": False,
        "dropout": 0.0,
        "max_shift": 0.0,
        "max_degrees": 0.0,
        "label_smoothing": 0.0,
        "ema_decay": 0.0,
        "weight_init": "torch",
        "normalize": False,
        "tta": "none",
    },
    # Still two conv + max-pool layers; see docs/cnn.md for which choices mattered.
    "best": {
        "epochs": 15,
        "batch_size": 128,
        "learning_rate": 3e-3,
        "schedule": "cosine",
        "channels": (32, 64),
        "hidden": (256, 128),
        "batch_norm": True,
        "dropout": 0.3,
        "max_shift": 2.0,
        "max_degrees": 10.0,
        "label_smoothing": 0.1,
        "ema_decay": 0.0,
        "weight_init": "he",
        "normalize": False,
        "tta": "shift1rot5",
    },
}
HOMEWORK = RECIPES["homework"]

DATA_HELP = "MNIST source: auto, embedded, tfds, an IDX directory or a .pkl.gz"
TRAIN_ON_HELP = (
    "train (50,000 images; validate on the other 10,000) | train+val (all 60,000, no validation)"
)
QUICK_HELP = "smoke run: 2,000 training images, 1 epoch, 1 seed"
CONV_HELP = (
    "the convolutions: xla (im2col + matmul) | onednn (hw5jax.kernels, built by `make setup`) | "
    "auto (onednn where built, else xla); the same parameters and numbers to 1e-5 "
    "(default: auto)"
)


def _out(experiment: str) -> Any:
    return option(None, f"output directory (default: runs/{experiment}/<UTC time>)", metavar="DIR")


def _override(
    help_text: str,
    metavar: str | None = None,
    *,
    minimum: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A recipe hyperparameter's option: None (the recipe's value) unless given."""
    return option(
        None,
        f"{help_text}; overrides the recipe's",
        metavar=metavar,
        minimum=minimum,
        choices=choices,
    )


@dataclass(frozen=True)
class CNNConfig:
    """A recipe of the two-conv-layer CNN trained on MNIST, mean +- std test accuracy.

    python -m experiments.cnn_mnist --recipe homework  # test 98.96% +- 0.11 (homework 99.15%)
    python -m experiments.cnn_mnist --seeds 5  # the best recipe, seeds 0-4: test 99.61% +- 0.04
    """

    recipe: str = option("best", "homework | best", choices=tuple(RECIPES))
    out: str | None = _out("cnn_mnist")
    seeds: int = option(3, "K seeds: F..F+K-1 (F = --first-seed)", minimum=1)
    first_seed: int = option(
        0, "the first seed F (more seeds of a recipe in another run)", metavar="F", minimum=0
    )
    data: str = option("auto", DATA_HELP, metavar="SOURCE")
    epochs: int | None = _override("training epochs", minimum=1)
    batch_size: int | None = _override("mini-batch size m", minimum=1)
    learning_rate: float | None = _override("Adam's peak learning rate eta")
    schedule: str | None = _override(
        "learning-rate schedule: constant | cosine (linear "
        "warm-up over 10%% of the steps, then cosine to 0)",
        choices=SCHEDULES,
    )
    # Tuples: empty means "the recipe's" (hw5jax.cli cannot show a None tuple default).
    channels: tuple[int, ...] = option(
        (), "filters of the two conv layers; overrides the recipe's", metavar="C1,C2"
    )
    hidden: tuple[int, ...] = option(
        (), "hidden dense widths; overrides the recipe's", metavar="H,H,..."
    )
    batch_norm: bool | None = _override("BatchNorm after each conv / hidden dense", "BOOL")
    dropout: float | None = _override("dropout rate before the dense layers after the first")
    max_shift: float | None = _override(
        "augmentation: random shift up to this many pixels", minimum=0
    )
    max_degrees: float | None = _override(
        "augmentation: random rotation up to +-degrees", minimum=0
    )
    label_smoothing: float | None = _override("label smoothing of the cross-entropy")
    ema_decay: float | None = _override(
        "exponential moving average of the weights for evaluation (0 = off)"
    )
    weight_init: str | None = _override(
        "he (N(0, 2/fan_in)) | torch (PyTorch's default, U(+-1/sqrt(fan_in)))",
        choices=WEIGHT_INITS,
    )
    normalize: bool | None = _override(
        "standardise the pixels with MNIST's mean and std "
        "(0.1307, 0.3081), as PyTorch's MNIST examples do",
        "BOOL",
    )
    tta: str | None = _override(
        "test-time augmentation of the test evaluation: "
        f"{' | '.join(TTA_VIEWS)} (shift1rot5: the mean softmax of "
        "the image, its four one-pixel shifts and two 5-degree "
        "rotations)",
        "VIEWS",
        choices=tuple(TTA_VIEWS),
    )
    train_on: str = option("train", TRAIN_ON_HELP, metavar="SPLITS", choices=TRAIN_ON)
    no_test: bool = option(False, "validation only, the test split untouched (for ablations)")
    # None stands for auto: a run stamped before this option existed resumes as it was.
    conv: str | None = option(None, CONV_HELP, metavar="CONV", choices=CONVS)
    quick: bool = option(False, QUICK_HELP)
    strict_resume: bool = option(False, STRICT_RESUME_HELP)
    tensorboard: bool = option(False, TENSORBOARD_HELP)

    def __post_init__(self):
        check_declared(self)
        if self.tensorboard:
            require_tensorboard()
        if self.train_on == "train+val" and self.no_test:
            raise ConfigError(
                "--train-on train+val with --no-test: nothing would be evaluated "
                "(train+val holds no validation split out)"
            )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate {self.learning_rate}: must be positive")
        if self.channels and (len(self.channels) != 2 or min(self.channels) < 1):
            raise ConfigError(
                f"--channels {self.channels}: give two positive filter counts "
                "(the network has exactly two conv layers)"
            )
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"--hidden {self.hidden}: widths must be positive")
        for name in ("dropout", "label_smoothing", "ema_decay"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value}: must be in [0, 1)")

    def hparams(self) -> dict[str, Any]:
        """The recipe with this config's overrides: every hyperparameter of the run."""
        recipe = dict(RECIPES[self.recipe])
        for name in recipe:
            value = getattr(self, name)
            if value is not None and value != ():
                recipe[name] = value
        if self.quick:
            recipe["epochs"] = 1
        recipe["train_on"] = self.train_on
        return recipe

    def effective(self) -> CNNConfig:
        """What runs: --quick trains one seed."""
        return replace(self, seeds=1) if self.quick else self


@dataclass(frozen=True)
class TorchCNNConfig:
    """The homework's recipe trained the homework's way, in PyTorch (eager, CPU).

    python -m experiments.cnn_torch  # test 98.80% +- 0.22 (seeds 0-2), as cnn_mnist's homework
    """

    out: str | None = _out("cnn_torch")
    seeds: int = option(3, "K seeds: F..F+K-1 (torch.manual_seed; F = --first-seed)", minimum=1)
    first_seed: int = option(0, "the first seed F", metavar="F", minimum=0)
    epochs: int = option(HOMEWORK["epochs"], "training epochs", minimum=1)
    data: str = option("auto", DATA_HELP, metavar="SOURCE")
    train_on: str = option("train", TRAIN_ON_HELP, metavar="SPLITS", choices=TRAIN_ON)
    # BOOL, as cnn_mnist's --normalize takes it (None: false, the homework's raw pixels)
    normalize: bool | None = option(
        None,
        "true: standardise the pixels with MNIST's mean and std (0.1307, 0.3081); default false",
        metavar="BOOL",
    )
    threads: int | None = option(
        None, "torch.set_num_threads (default: os.cpu_count(), PyTorch's own default)", minimum=1
    )
    quick: bool = option(False, QUICK_HELP)
    strict_resume: bool = option(False, STRICT_RESUME_HELP)
    tensorboard: bool = option(False, TENSORBOARD_HELP)

    def __post_init__(self):
        check_declared(self)
        if self.tensorboard:
            require_tensorboard()

    def hparams(self) -> dict[str, Any]:
        """The homework recipe's hyperparameters as `hw5jax.reference.pytorch.train_cnn`
        takes them."""
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
        """What runs: --quick trains one seed."""
        return replace(self, seeds=1) if self.quick else self


@dataclass(frozen=True)
class EvalConfig:
    """The checkpoints of one or more `cnn_mnist` runs evaluated again, plain and with
    test-time augmentation, each seed alone and, with `ensemble`, all of them as one ensemble
    (the argmax of the mean of their probabilities). `runs`: the run directories, in order
    (the positional RUN_DIR...).

    python -m experiments.cnn_eval RUN_DIR  # best recipe's seeds 0-2: test 99.60% -> 99.61%
    python -m experiments.cnn_eval RUN_A RUN_B --ensemble  # the seeds of both, one ensemble
    """

    runs: tuple[str, ...] = field(default=(), metadata={"cli": False})
    tta: str = option(
        "shift1rot5",
        f"views of test-time augmentation: {' | '.join(TTA_VIEWS)}",
        metavar="VIEWS",
        choices=tuple(TTA_VIEWS),
    )
    ensemble: bool = option(
        False,
        "also evaluate all the checkpoints as one ensemble: the argmax of their mean "
        "probabilities, plain and with the views",
    )
    out: str | None = _out("cnn_eval")
    data: str = option("auto", DATA_HELP, metavar="SOURCE")

    def __post_init__(self):
        check_declared(self)
        if not self.runs:
            raise ConfigError("no RUN_DIR: give one or more cnn_mnist run directories")
        for run in self.runs:
            if not Path(run).is_dir():
                raise ConfigError(f"{run}: no such directory (a cnn_mnist run directory)")
            if not (Path(run) / "checkpoints").is_dir():
                raise ConfigError(f"{run}: not a cnn_mnist run directory (no checkpoints/ in it)")

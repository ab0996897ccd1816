"""hw5jax: Nielsen's *Neural Networks and Deep Learning* homework (ch. 3-6) reproduced, checked
and extended in JAX/Flax. The public API, for use from a notebook or another project:

    from hw5jax import MLP, Trainer, fit, fit_grid, load_mnist
    mnist = load_mnist()
    trainer = Trainer(MLP, "adam")
    result = fit(trainer, mnist, {"learning_rate": 3e-3}, seed=0, epochs=5)

The package by floor (imports only go down): `errors`; `core` (the training core), `models`,
`data`; `runs` (checkpoints, run directories), `reporting`, `theory`, `alexnet`,
`reference` (PyTorch twins), `bench`; `configs`; `pipelines` (what each experiment runs);
`cli`. The command lines are `python -m experiments.NAME`.
"""

from hw5jax.core.fit import FitResult, Store, accuracy_on, fit, fit_grid
from hw5jax.core.optim import OPTIMIZERS, make_optimizer
from hw5jax.core.sweep import grid_points, tune_and_retrain
from hw5jax.core.train import Trainer
from hw5jax.data import MNIST, Split, load_mnist
from hw5jax.errors import CheckpointError, ConfigError, DataError, UserError
from hw5jax.models.cnn import CNN
from hw5jax.models.mlp import MLP

__all__ = [
    "CNN",
    "MLP",
    "MNIST",
    "OPTIMIZERS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FitResult",
    "Split",
    "Store",
    "Trainer",
    "UserError",
    "accuracy_on",
    "fit",
    "fit_grid",
    "grid_points",
    "load_mnist",
    "make_optimizer",
    "tune_and_retrain",
]

"""The four optimizers of Problem 3.1, by name, from optax.

Each is wrapped in `optax.inject_hyperparams`, so its hyperparameters live in the optimizer
state (`opt_state.hyperparams["learning_rate"]`) as data, not as constants baked into the
compiled program: one program trains a whole learning-rate grid under `jax.vmap`.

Conventions (chosen to match the homework's PyTorch optimizers):
  sgd       w <- w - eta*g
  momentum  heavy ball as torch.optim.SGD: v <- mu*v + g; w <- w - eta*v
  adagrad   torch.optim.Adagrad's defaults: accumulator starts at 0 (optax's default is 0.1,
            which damps the first steps), eps 1e-10. optax adds eps inside the square root and
            PyTorch outside: the two agree for gradients above about 1e-2; smaller ones (the
            L2 gradient of a weight whose input pixel is 0) take smaller steps here
            (docs/optimizers.md, "What each optimizer computes"; tests/test_optimizers.py).
  adam      b1=0.9, b2=0.999, eps=1e-8 (torch.optim.Adam's and optax's defaults agree)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import optax

from hw5jax.errors import UnknownOptimizerError

# name -> (factory, default hyperparameters); the defaults also fix which hparams exist.
OPTIMIZERS: dict[str, tuple[Callable[..., optax.GradientTransformation], dict[str, float]]] = {
    "sgd": (lambda learning_rate: optax.sgd(learning_rate), {"learning_rate": 0.1}),
    "momentum": (
        lambda learning_rate, momentum: optax.sgd(learning_rate, momentum=momentum),
        {"learning_rate": 0.05, "momentum": 0.9},
    ),
    "adagrad": (
        lambda learning_rate: optax.adagrad(
            learning_rate, initial_accumulator_value=0.0, eps=1e-10
        ),
        {"learning_rate": 0.01},
    ),
    "adam": (
        lambda learning_rate: optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8),
        {"learning_rate": 1e-3},
    ),
}


def check_name(name: str) -> str:
    if name not in OPTIMIZERS:
        raise UnknownOptimizerError(
            f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}"
        )
    return name


def hparam_names(name: str) -> tuple[str, ...]:
    return tuple(OPTIMIZERS[check_name(name)][1])


def make_optimizer(name: str, **hparams: float) -> optax.GradientTransformation:
    """`optax.inject_hyperparams(<name>)(**hparams)`; missing hparams take the defaults.

    The values given here only seed `init`; `update` reads them from the state, so a state
    built by one instance can be stepped by another instance of the same name.
    """
    factory, defaults = OPTIMIZERS[check_name(name)]
    unknown = set(hparams) - set(defaults)
    if unknown:
        raise UnknownOptimizerError(
            f"optimizer {name!r} has no hyperparameter(s) {sorted(unknown)}; it takes "
            f"{sorted(defaults)}"
        )
    return optax.inject_hyperparams(factory)(**{**defaults, **hparams})


def full_hparams(name: str, hparams: Mapping[str, float]) -> dict[str, float]:
    """`hparams` completed with the optimizer's defaults (what a run really used)."""
    return {**OPTIMIZERS[check_name(name)][1], **{k: float(v) for k, v in hparams.items()}}

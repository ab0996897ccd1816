"""The benchmark's two networks, each with both sides (the hw5jax `Trainer`, the PyTorch
module with the same weights), the data they train on, and the work of one training step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw5jax import data as mnist_data
from hw5jax.core.optim import full_hparams
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.kernels.conv import resolve
from hw5jax.models.cnn import CNN
from hw5jax.models.mlp import MLP
from hw5jax.reference.pytorch import torch_cnn, torch_mlp

SYNTHETIC_EPOCH = 50_000  # images: as many as MNIST's training split

MLP_LAYERS = (784, 100, 100, 10)
CNN_CHANNELS, CNN_HIDDEN, KERNEL = (32, 64), (100, 100), 5
BATCH = 128
LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}
SEED = 0


def mlp_example_flops(layers: tuple[int, ...] = MLP_LAYERS) -> int:
    """Multiply-adds x2 of one training example: forward (x @ W), weight gradients (x^T @ g)
    and input gradients (g @ W^T) for every layer but the first (the image needs none)."""
    macs = [i * o for i, o in zip(layers[:-1], layers[1:], strict=True)]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def cnn_example_flops(
    channels: tuple[int, int] = CNN_CHANNELS,
    hidden: tuple[int, ...] = CNN_HIDDEN,
    k: int = KERNEL,
) -> int:
    """The same count for the CNN: a 'same' conv on an HxW map costs H*W*C_out*k*k*C_in
    multiply-adds; pooling, ReLU and the optimizer are not counted."""
    convs = [28 * 28 * channels[0] * k * k * 1, 14 * 14 * channels[1] * k * k * channels[0]]
    widths = [7 * 7 * channels[-1], *hidden, 10]
    dense = [i * o for i, o in zip(widths[:-1], widths[1:], strict=True)]
    macs = convs + dense
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def mlp_trainer(optimizer: str) -> Trainer:
    """hw5jax's side of the MLP: the homework's 784-100-100-10 ReLU network."""
    return Trainer(
        functools.partial(MLP, MLP_LAYERS, activation="relu"), optimizer, batch_size=BATCH
    )


@functools.cache
def cnn_conv() -> str:
    """The convolutions the benchmark's CNN runs: `--conv auto`'s choice (oneDNN on the CPU
    when built, else XLA's), decided once per process."""
    return resolve("auto")


def cnn_trainer(
    optimizer: str = "adam", model_fn: Callable[..., nnx.Module] | None = None
) -> Trainer:
    """hw5jax's side of the homework CNN (Problem 5.2) with `cnn_conv()`'s convolutions, or of
    `model_fn` (one of its formulations)."""
    model_fn = model_fn or functools.partial(
        CNN, CNN_CHANNELS, CNN_HIDDEN, kernel_size=KERNEL, conv=cnn_conv()
    )
    return Trainer(model_fn, optimizer, batch_size=BATCH)


def init_state(trainer: Trainer, learning_rate: float, seed: int = SEED) -> dict[str, Any]:
    """A fresh training state of `trainer` at `learning_rate`."""
    hp = full_hparams(trainer.optimizer, {"learning_rate": learning_rate})
    return trainer.init_jit(jnp.uint32(seed), {k: jnp.float32(v) for k, v in hp.items()})


def init_grid(trainer: Trainer, rates: tuple[float, ...]) -> Any:
    """A stack of training states, one per learning rate, all from seed 0."""
    hp = [full_hparams(trainer.optimizer, {"learning_rate": r}) for r in rates]
    return trainer.init_many([0] * len(rates), hp)


@dataclass(frozen=True)
class Network:
    """One network of the benchmark: both sides of it and its step counts.

    trainer: optimizer name -> the hw5jax side. torch_model: (torch, hw5jax params) -> the
    PyTorch side holding those weights. nchw: the PyTorch side takes NCHW images (else flat).
    quick_steps: steps of an epoch in a --quick run, and of every parity check (the same
    shapes: no extra compilation). warmup_steps: untimed PyTorch steps before timing (its
    thread pool and allocator start on the first steps)."""

    name: str
    trainer: Callable[[str], Trainer]
    torch_model: Callable[..., Any]
    nchw: bool
    example_flops: int
    quick_steps: int
    warmup_steps: int

    @property
    def parity_steps(self) -> int:
        return self.quick_steps


MLP_NETWORK = Network("mlp", mlp_trainer, torch_mlp, False, mlp_example_flops(), 8, 20)
CNN_NETWORK = Network("cnn", cnn_trainer, torch_cnn, True, cnn_example_flops(), 2, 3)


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST-shaped examples: a class prototype plus noise (uint8[n, 28, 28, 1], int32[n]).
    Never clipped, so no flat regions: no tied maxima in the max-pools, where PyTorch and
    hw5jax pick different (equally valid) subgradients."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 200, (10, 28, 28, 1))
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = prototypes[labels] + rng.uniform(0, 55, (n, 28, 28, 1))
    return images.astype(np.uint8), labels


def load_train(source: str, steps: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The training images and labels of `source` ("synthetic": `steps` batches of
    `synthetic`, a full epoch if None; else an MNIST source), and the source's name."""
    if source == "synthetic":
        if steps is not None and steps * BATCH > SYNTHETIC_EPOCH:
            raise ConfigError(
                f"--steps {steps}: synthetic data hold one epoch, {SYNTHETIC_EPOCH // BATCH} steps"
            )
        n = BATCH * (steps or SYNTHETIC_EPOCH // BATCH)
        return (*synthetic(n), "synthetic")
    mnist = mnist_data.load_mnist(source)
    if source == "auto":
        source = "embedded" if mnist_data.embedded_path().is_file() else "tfds"
    return mnist.train.images, mnist.train.labels, source

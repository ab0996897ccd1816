"""The homework's fully connected network: 784-100-100-10 (Problem 3.1), optionally with
BatchNorm after each hidden layer's affine map (Problem 3.2)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}
WEIGHT_INITS = ("scaled", "standard")


def _kernel_init(weight_init: str, activation: str):
    if weight_init == "standard":
        # The "old" initialisation of Nielsen ch. 3: w ~ N(0, 1) (Problem 1.2 starts here).
        return nnx.initializers.normal(1.0)
    # Nielsen's improved init w ~ N(0, 1/n_in); ReLU halves the variance it passes on, so it
    # gets N(0, 2/n_in) (He et al. 2015) to keep activations the same size layer to layer.
    gain = 2.0 if activation == "relu" else 1.0
    return nnx.initializers.variance_scaling(gain, "fan_in", "normal")


class MLP(nnx.Module):
    """Fully connected classifier.

    images: float[B, 28, 28, 1] or float[B, 784]  ->  logits: float[B, 10]

    activation: "sigmoid" (the book's) or "relu"; batch_norm: BatchNorm after each hidden
    affine map (before the activation, as in Ioffe & Szegedy); weight_init: "scaled"
    (N(0, 1/n_in), N(0, 2/n_in) for ReLU) or "standard" (N(0, 1), the book's old default).
    """

    def __init__(
        self,
        layers: Sequence[int] = (784, 100, 100, 10),
        *,
        activation: str = "relu",
        batch_norm: bool = False,
        weight_init: str = "scaled",
        rngs: nnx.Rngs,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: use one of {list(ACTIVATIONS)}")
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"unknown weight_init {weight_init!r}: use one of {WEIGHT_INITS}")
        kernel_init = _kernel_init(weight_init, activation)
        bias_init = (
            nnx.initializers.normal(1.0) if weight_init == "standard" else nnx.initializers.zeros
        )
        self.activation = activation
        self.dense = nnx.List(
            [
                nnx.Linear(n_in, n_out, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)
                for n_in, n_out in zip(layers[:-1], layers[1:], strict=True)
            ]
        )
        self.norms = nnx.List(
            [nnx.BatchNorm(n, momentum=0.9, rngs=rngs) for n in layers[1:-1]] if batch_norm else []
        )

    def __call__(
        self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None
    ) -> jax.Array:
        del rngs  # no randomness in this model; accepted so every model has one signature
        act = ACTIVATIONS[self.activation]
        x = jnp.reshape(x, (x.shape[0], -1))
        for i, layer in enumerate(self.dense[:-1]):
            x = layer(x)
            if self.norms:
                # Training normalises with the batch's statistics and updates the running
                # averages; evaluation uses the running averages (Problem 3.2).
                x = self.norms[i](x, use_running_average=not train)
            x = act(x)
        return self.dense[-1](x)

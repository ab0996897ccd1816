"""The homework CNN's epoch with each way of writing its convolutions and pooling in JAX,
timed, and checked against lax.conv + reduce_window at the highest matmul precision.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw5jax.bench.networks import (
    BATCH,
    CNN_CHANNELS,
    CNN_HIDDEN,
    KERNEL,
    LEARNING_RATES,
    cnn_trainer,
    init_state,
)
from hw5jax.bench.timing import block, compare
from hw5jax.kernels.conv import available, onednn_conv
from hw5jax.models.cnn import CNN, conv_as_matmul, max_pool_2x2


def conv_lax(lhs, rhs, *args, **kwargs):
    """XLA's own convolution (what nnx.Conv uses by default)."""
    return jax.lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


def conv_patches(lhs, rhs, window_strides=(1, 1), padding="SAME", *_, precision=None, **__):
    """im2col by `lax.conv_general_dilated_patches` (itself a convolution with a 0/1 kernel),
    then one matmul. Its patch features are ordered (c_in, kh, kw)."""
    kh, kw, c_in, c_out = rhs.shape
    patches = jax.lax.conv_general_dilated_patches(
        lhs, (kh, kw), window_strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    kernel = jnp.transpose(rhs, (2, 0, 1, 3)).reshape(c_in * kh * kw, c_out)
    return jnp.einsum("bhwk,ko->bhwo", patches, kernel, precision=precision)


def conv_nchw(lhs, rhs, window_strides=(1, 1), padding="SAME", *_, precision=None, **__):
    """XLA's convolution in PyTorch's layout (NCHW input, OIHW kernel), transposed around."""
    out = jax.lax.conv_general_dilated(
        jnp.transpose(lhs, (0, 3, 1, 2)),
        jnp.transpose(rhs, (3, 2, 0, 1)),
        window_strides,
        padding,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=precision,
    )
    return jnp.transpose(out, (0, 2, 3, 1))


def pool_reduce_window(x):
    """flax's max-pool: `lax.reduce_window`; its gradient is XLA's select-and-scatter."""
    return nnx.max_pool(x, (2, 2), strides=(2, 2))


FORMULATIONS: dict[str, tuple[Callable, Callable]] = {
    "lax.conv NHWC + reduce_window pool (flax defaults)": (conv_lax, pool_reduce_window),
    "lax.conv NHWC + reshape-max pool": (conv_lax, max_pool_2x2),
    "lax.conv NCHW/OIHW + reshape-max pool": (conv_nchw, max_pool_2x2),
    "conv_general_dilated_patches + matmul + reshape-max": (conv_patches, max_pool_2x2),
    "im2col (shifted slices) + matmul + reduce_window pool": (conv_as_matmul, pool_reduce_window),
    "im2col (shifted slices) + matmul + reshape-max (hw5jax.models.cnn)": (
        conv_as_matmul,
        max_pool_2x2,
    ),
}
if available():  # built by `python -m hw5jax.kernels.build`
    FORMULATIONS["oneDNN via jax.ffi (hw5jax.kernels)"] = (onednn_conv, max_pool_2x2)


class CNNVariant(CNN):
    """The homework CNN (no BatchNorm, no dropout) with its conv and pooling swapped."""

    def __init__(self, conv: Callable, pool: Callable, *, rngs: nnx.Rngs):
        super().__init__(CNN_CHANNELS, CNN_HIDDEN, kernel_size=KERNEL, rngs=rngs)
        for layer in self.convs:
            layer.conv_general_dilated = conv
        self.pool = pool

    def features(self, x, *, train: bool = False):
        maps = []
        for layer in self.convs:
            x = jax.nn.relu(self.pool(layer(x)))
            maps.append(x)
        return maps


def run_formulations(images: np.ndarray, labels: np.ndarray, repeats: int) -> dict[str, Any]:
    """Each formulation: an Adam epoch of `steps` steps (first call, median of `repeats`), and
    its logits and gradients on one batch against lax.conv + reduce_window at 'highest'."""
    lr = LEARNING_RATES["adam"]
    x, y = jnp.asarray(images), jnp.asarray(labels)
    batch = x[:BATCH].astype(jnp.float32) / 255.0

    def loss_and_grad(model_fn, precision):
        trainer = cnn_trainer(model_fn=model_fn)
        state = init_state(trainer, lr)

        def loss(p):
            with jax.default_matmul_precision(precision):
                logits, _ = trainer.apply(p, state["model_state"], batch, train=False)
            return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(BATCH), y[:BATCH]])

        value, grads = jax.jit(jax.value_and_grad(loss))(state["params"])
        return value, jax.tree.leaves(grads)

    ref_loss, ref_grads = loss_and_grad(
        functools.partial(CNNVariant, conv_lax, pool_reduce_window), "highest"
    )
    out = {}
    for name, (conv, pool) in FORMULATIONS.items():
        model_fn = functools.partial(CNNVariant, conv, pool)
        value, grads = loss_and_grad(model_fn, "default")
        grad_err = max(
            float(jnp.max(jnp.abs(g - r)) / (jnp.max(jnp.abs(r)) + 1e-30))
            for g, r in zip(grads, ref_grads, strict=True)
        )
        trainer = cnn_trainer(model_fn=model_fn)
        holder = {"state": init_state(trainer, lr)}

        def jax_epoch(trainer=trainer, holder=holder):
            holder["state"], metrics = trainer.epoch_jit(holder["state"], x, y)
            block(metrics)

        timing = compare(jax_epoch, None, repeats, name)
        out[name] = {
            "epoch_s": timing["hw5jax_s"],
            "compile_s": timing["compile_s"],
            "loss_diff": abs(float(value - ref_loss)),
            "max_rel_grad_diff": grad_err,
        }
        print(f"{name}: {timing['hw5jax_s']:.3f} s, grad diff {grad_err:.1e}", file=sys.stderr)
    return {
        "steps": len(labels) // BATCH,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "variants": out,
    }

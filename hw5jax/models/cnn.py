"""The convolutional network of Problem 5.2: exactly two conv + max-pool layers, then dense.

Homework recipe (the defaults):
    conv 5x5, 32, ReLU, max-pool 2x2   28x28x1  -> 14x14x32
    conv 5x5, 64, ReLU, max-pool 2x2   14x14x32 -> 7x7x64
    dense 3136 -> 100 -> 100 -> 10     (ReLU between)
with SAME padding. Options for the best recipe: BatchNorm after every conv / hidden dense
(before the ReLU), dropout before every dense layer after the first, other widths.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from hw5jax.kernels.conv import onednn_conv

# ReLU halves the variance it passes on: N(0, 2/fan_in) keeps activations the same size.
HE_INIT = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
WEIGHT_INITS = ("he", "torch")
# The convolutions that run: "xla" (`conv_as_matmul`) or "onednn" (hw5jax.kernels; the caller
# resolves "auto" with `hw5jax.kernels.conv.resolve`). The parameters are the same either way.
CONVS = ("xla", "onednn")
# MNIST's pixel mean and standard deviation (in [0, 1] units), the constants of PyTorch's
# MNIST examples (`transforms.Normalize((0.1307,), (0.3081,))`).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _inits(weight_init: str, fan_in: int):
    """(kernel_init, bias_init). "he": N(0, 2/fan_in), zero biases. "torch": PyTorch's
    default for Conv2d/Linear (the homework's framework): weights and biases
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    if weight_init == "he":
        return HE_INIT, nnx.initializers.zeros
    bound = fan_in**-0.5
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )
    return uniform, uniform


def conv_as_matmul(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides=(1, 1),
    padding="SAME",
    lhs_dilation=(1, 1),
    rhs_dilation=(1, 1),
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    **_,
) -> jax.Array:
    """`lax.conv_general_dilated` for the case used here (NHWC input, HWIO kernel, stride 1,
    SAME padding, odd kernel): the kh*kw shifted copies of the padded input side by side
    (im2col), times the kernel as a [kh*kw*C_in, C_out] matrix.

    Why: XLA:CPU runs a convolution inside a loop body (our epoch is a `lax.scan`) through
    a slow generic path for the transposed convolutions of the backward pass (jax#12868);
    slices, pads and one matmul stay fast in a loop. Same numbers as `lax.conv` (tested).
    """
    kh, kw, c_in, c_out = rhs.shape
    unsupported = (
        tuple(window_strides) != (1, 1)
        or tuple(lhs_dilation or (1, 1)) != (1, 1)
        or tuple(rhs_dilation or (1, 1)) != (1, 1)
        or feature_group_count != 1
        or kh % 2 == 0
        or kw % 2 == 0
        or lhs.shape[-1] != c_in
    )
    if unsupported:
        raise ValueError(
            "conv_as_matmul: only stride 1, no dilation, one group, odd kernels, NHWC x HWIO"
        )
    if isinstance(padding, str):
        if padding != "SAME":
            raise ValueError(f"conv_as_matmul: padding {padding!r}")
        padding = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    b = lhs.shape[0]
    x = jnp.pad(lhs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    h_out, w_out = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    patches = jnp.concatenate(
        [x[:, i : i + h_out, j : j + w_out, :] for i in range(kh) for j in range(kw)], axis=-1
    )
    out = jnp.dot(
        patches.reshape(b * h_out * w_out, kh * kw * c_in),
        rhs.reshape(kh * kw * c_in, c_out),
        precision=precision,
    )
    return out.reshape(b, h_out, w_out, c_out)


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2: float[B, H, W, C] -> float[B, H/2, W/2, C] (H, W even).

    A reshape and a max instead of `lax.reduce_window`: the same numbers (tests check it);
    its gradient is an elementwise mask rather than XLA's select-and-scatter (not timed
    against it here: the conv dominated).
    """
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class CNN(nnx.Module):
    """images: float[B, 28, 28, 1] in [0, 1]  ->  logits: float[B, 10].

    channels: filters of the two conv layers; hidden: widths of the dense layers before the
    10-way output; weight_init: "he" or "torch" (PyTorch's default); batch_norm: BatchNorm
    after each conv and hidden dense map (biases dropped, BatchNorm's shift replaces them);
    dropout: rate applied to the input of every dense layer after the first (training only);
    normalize: standardise the pixels first, (x - MNIST_MEAN) / MNIST_STD; conv: "xla"
    (`conv_as_matmul`) or "onednn" (`hw5jax.kernels.conv.onednn_conv`), same parameters.
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64),
        hidden: Sequence[int] = (100, 100),
        *,
        kernel_size: int = 5,
        batch_norm: bool = False,
        dropout: float = 0.0,
        bn_momentum: float = 0.9,
        weight_init: str = "he",
        normalize: bool = False,
        conv: str = "xla",
        rngs: nnx.Rngs,
    ):
        if len(channels) != 2:
            raise ValueError(f"channels {tuple(channels)}: the network has exactly two conv layers")
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"unknown weight_init {weight_init!r}: use one of {WEIGHT_INITS}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout {dropout}: must be in [0, 1)")
        if conv not in CONVS:
            raise ValueError(f"unknown conv {conv!r}: use one of {CONVS}")
        self.batch_norm = batch_norm
        self.normalize = normalize
        c_in = (1, *channels[:-1])
        self.convs = nnx.List(
            [
                nnx.Conv(
                    i,
                    o,
                    (kernel_size, kernel_size),
                    padding="SAME",
                    use_bias=not batch_norm,
                    conv_general_dilated=onednn_conv if conv == "onednn" else conv_as_matmul,
                    rngs=rngs,
                    **dict(
                        zip(
                            ("kernel_init", "bias_init"),
                            _inits(weight_init, kernel_size * kernel_size * i),
                            strict=True,
                        )
                    ),
                )
                for i, o in zip(c_in, channels, strict=True)
            ]
        )
        widths = [7 * 7 * channels[-1], *hidden, 10]
        self.dense = nnx.List(
            [
                nnx.Linear(
                    i,
                    o,
                    use_bias=not (batch_norm and k < len(hidden)),
                    rngs=rngs,
                    **dict(zip(("kernel_init", "bias_init"), _inits(weight_init, i), strict=True)),
                )
                for k, (i, o) in enumerate(zip(widths[:-1], widths[1:], strict=True))
            ]
        )
        norm = lambda n: nnx.BatchNorm(n, momentum=bn_momentum, rngs=rngs)
        self.conv_norms = nnx.List([norm(c) for c in channels] if batch_norm else [])
        self.dense_norms = nnx.List([norm(h) for h in hidden] if batch_norm else [])
        self.dropout = nnx.Dropout(dropout) if dropout else None

    def features(self, x: jax.Array, *, train: bool = False) -> list[jax.Array]:
        """The output of each conv + ReLU + max-pool block:
        [float[B, 14, 14, c1], float[B, 7, 7, c2]]."""
        if self.normalize:
            x = (x - MNIST_MEAN) / MNIST_STD
        maps = []
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.batch_norm:
                x = self.conv_norms[i](x, use_running_average=not train)
            # ReLU and max-pool commute; pooling first does the ReLU on a quarter of the values.
            x = jax.nn.relu(max_pool_2x2(x))
            maps.append(x)
        return maps

    def __call__(
        self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None
    ) -> jax.Array:
        x = self.features(x, train=train)[-1]
        x = jnp.reshape(x, (x.shape[0], -1))
        for i, layer in enumerate(self.dense):
            if i > 0 and self.dropout is not None:
                x = self.dropout(x, deterministic=not train, rngs=rngs)
            x = layer(x)
            if i < len(self.dense) - 1:
                if self.batch_norm:
                    x = self.dense_norms[i](x, use_running_average=not train)
                x = jax.nn.relu(x)
        return x

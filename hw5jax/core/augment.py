"""Data augmentation on the device, inside the jitted training step: each image gets its own
random small rotation and shift (one affine warp, bilinear, zero outside the image).

    augment = make_augment(max_shift=2.0, max_degrees=10.0)   # None when both are 0
    Trainer(model_fn, "adam", augment=augment)

Only images are touched: the labels never pass through here, so they cannot change.

The same warp with fixed angles and shifts gives the views of test-time augmentation
(`TTA_VIEWS`): evaluation averages the softmax of each view (`Trainer.evaluate(views=...)`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from hw5jax.errors import ConfigError

# (key, images float32[B, 28, 28, 1] in [0, 1]) -> images of the same shape; training only.
Augment = Callable[[jax.Array, jax.Array], jax.Array]
# One view of test-time augmentation: (degrees, dy, dx), a rotation about the centre and a
# shift in pixels (positive dy moves the digit down, positive dx to the right).
View = tuple[float, float, float]
_IDENTITY: View = (0.0, 0.0, 0.0)
_SHIFTS1: tuple[View, ...] = ((0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0))
_ROT5: tuple[View, ...] = ((5.0, 0.0, 0.0), (-5.0, 0.0, 0.0))
# The candidates compared on validation (docs/cnn.md); the best recipe uses "shift1rot5".
TTA_VIEWS: dict[str, tuple[View, ...]] = {
    "none": (_IDENTITY,),
    "shift1": (_IDENTITY, *_SHIFTS1),  # the image and its four one-pixel shifts
    "shift1grid": tuple((0.0, float(dy), float(dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)),
    "rot5": (_IDENTITY, *_ROT5),  # the image and its two 5-degree rotations
    "shift1rot5": (_IDENTITY, *_SHIFTS1, *_ROT5),  # both: 7 views
}


def tta_views(name: str) -> tuple[View, ...]:
    """The views named `name` in `TTA_VIEWS`; a ConfigError naming the choices otherwise."""
    if name not in TTA_VIEWS:
        raise ConfigError(f"--tta {name!r}: use one of {', '.join(TTA_VIEWS)}")
    return TTA_VIEWS[name]


def affine(images: jax.Array, radians: jax.Array, shift: jax.Array) -> jax.Array:
    """float[B, H, W, C] -> float[B, H, W, C]: image b rotated about its centre by
    radians[b] and shifted by shift[b] = (dy, dx) pixels (bilinear, zeros outside)."""
    b, h, w, _ = images.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32) - cy, jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij"
    )
    cos, sin = jnp.cos(radians)[:, None, None], jnp.sin(radians)[:, None, None]
    # Inverse map: output pixel (y, x) reads the input at R(-angle) ((y, x) - shift).
    y0 = yy[None] - shift[:, 0, None, None]
    x0 = xx[None] - shift[:, 1, None, None]
    src_y = cos * y0 + sin * x0 + cy
    src_x = -sin * y0 + cos * x0 + cx
    return jax.vmap(_bilinear)(images, src_y, src_x)


def view(images: jax.Array, v: View) -> jax.Array:
    """Every image warped by the one view v = (degrees, dy, dx); the identity view returns
    the images untouched."""
    degrees, dy, dx = v
    if degrees == 0 and dy == 0 and dx == 0:
        return images
    b = images.shape[0]
    return affine(
        images,
        jnp.full((b,), math.radians(degrees), jnp.float32),
        jnp.tile(jnp.array([[dy, dx]], jnp.float32), (b, 1)),
    )


def random_affine(
    key: jax.Array, images: jax.Array, *, max_shift: float = 2.0, max_degrees: float = 10.0
) -> jax.Array:
    """float[B, H, W, C] -> float[B, H, W, C]: image b rotated about its centre by an angle
    uniform in [-max_degrees, max_degrees] and shifted by (dy, dx) each uniform in
    [-max_shift, max_shift] pixels. Exactly the identity when both are 0."""
    if max_shift == 0 and max_degrees == 0:
        return images
    b = images.shape[0]
    k_angle, k_shift = jax.random.split(key)
    angle = jax.random.uniform(k_angle, (b,), minval=-1.0, maxval=1.0) * math.radians(max_degrees)
    shift = jax.random.uniform(k_shift, (b, 2), minval=-max_shift, maxval=max_shift)
    return affine(images, angle, shift)


def _bilinear(image: jax.Array, y: jax.Array, x: jax.Array) -> jax.Array:
    """image float[H, W, C] sampled at float[H, W] coordinates; zeros outside."""
    h, w, _ = image.shape
    y0, x0 = jnp.floor(y), jnp.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)

    def at(yi, xi):
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        value = image[jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)]
        return jnp.where(inside[..., None], value, 0.0)

    return (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * (
        (1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1)
    )


def make_augment(max_shift: float = 0.0, max_degrees: float = 0.0) -> Augment | None:
    """The Trainer's `augment` hook, or None (no augmentation) when both are 0."""
    if max_shift < 0 or max_degrees < 0:
        raise ValueError(f"max_shift {max_shift}, max_degrees {max_degrees}: must be >= 0")
    if max_shift == 0 and max_degrees == 0:
        return None

    def augment(key: jax.Array, images: jax.Array) -> jax.Array:
        return random_affine(key, images, max_shift=max_shift, max_degrees=max_degrees)

    return augment

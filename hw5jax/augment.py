"""Data augmentation on the device, inside the jitted training step: each image gets its own
random small rotation and shift (one affine warp, bilinear, zero outside the image).

    augment = make_augment(max_shift=2.0, max_degrees=10.0)   # None when both are 0
    Trainer(model_fn, "adam", augment=augment)

Only images are touched: the labels never pass through here, so they cannot change.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from hw5jax.train import Augment


def random_affine(key: jax.Array, images: jax.Array, *, max_shift: float = 2.0,
                  max_degrees: float = 10.0) -> jax.Array:
    """float[B, H, W, C] -> float[B, H, W, C]: image b rotated about its centre by an angle
    uniform in [-max_degrees, max_degrees] and shifted by (dy, dx) each uniform in
    [-max_shift, max_shift] pixels. Exactly the identity when both are 0."""
    if max_shift == 0 and max_degrees == 0:
        return images
    b, h, w, _ = images.shape
    k_angle, k_shift = jax.random.split(key)
    angle = jax.random.uniform(k_angle, (b,), minval=-1.0, maxval=1.0) * math.radians(max_degrees)
    shift = jax.random.uniform(k_shift, (b, 2), minval=-max_shift, maxval=max_shift)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy,
                          jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")
    cos, sin = jnp.cos(angle)[:, None, None], jnp.sin(angle)[:, None, None]
    # Inverse map: output pixel (y, x) reads the input at R(-angle) ((y, x) - shift).
    y0 = yy[None] - shift[:, 0, None, None]
    x0 = xx[None] - shift[:, 1, None, None]
    src_y = cos * y0 + sin * x0 + cy
    src_x = -sin * y0 + cos * x0 + cx
    return jax.vmap(_bilinear)(images, src_y, src_x)


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

    return ((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1))
            + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1)))


def make_augment(max_shift: float = 0.0, max_degrees: float = 0.0) -> Augment | None:
    """The Trainer's `augment` hook, or None (no augmentation) when both are 0."""
    if max_shift < 0 or max_degrees < 0:
        raise ValueError(f"max_shift {max_shift}, max_degrees {max_degrees}: must be >= 0")
    if max_shift == 0 and max_degrees == 0:
        return None

    def augment(key: jax.Array, images: jax.Array) -> jax.Array:
        return random_affine(key, images, max_shift=max_shift, max_degrees=max_degrees)

    return augment

"""The sigmoid σ and its derivatives, shared by Problems 1.1, 2.1, 2.2 and 5.1.

σ', σ'' come from autodiff (elementwise), so nothing that uses them assumes
σ'(z) = σ(z)(1 - σ(z)); `sigmoid_np` is the numpy twin for the hand-written float64 code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{-z})."""
    return 1.0 / (1.0 + jnp.exp(-z))


# σ', σ'' by autodiff (elementwise).
sigmoid_prime = jnp.vectorize(jax.grad(sigmoid))
sigmoid_second = jnp.vectorize(jax.grad(jax.grad(sigmoid)))


def sigmoid_np(z: np.ndarray) -> np.ndarray:
    """σ(z) in numpy, any shape."""
    return 1.0 / (1.0 + np.exp(-z))

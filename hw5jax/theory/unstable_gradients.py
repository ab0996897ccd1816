"""Problem 2.1: would an activation with a larger derivative avoid unstable gradients?

In a chain of one-neuron sigmoid layers the gradient at layer j is a product of factors
|w σ'(z)|: with N(0, 1) weights they shrink it (vanishing), with large weights whose biases keep
every z at 0 they grow it by w/4 per layer (exploding).

    checks = check_unstable_gradients(measure_unstable_gradients())
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.theory.checks import Check, float64
from hw5jax.theory.sigmoid import sigmoid, sigmoid_prime

Array = jax.Array


def chain_cost(b: Array, w: Array, x: Array, y: float = 0.0) -> Array:
    """A chain of L one-neuron layers (Nielsen ch. 5): z_j = w_j a_{j-1} + b_j, a_j = σ(z_j),
    a_0 = x, cost C = (a_L - y)²/2.   b, w: float[L]; x: scalar."""

    def layer(a, wb):
        z = wb[0] * a + wb[1]
        return sigmoid(z), z

    a_L, _ = jax.lax.scan(layer, x, jnp.stack([w, b], axis=1))
    return 0.5 * (a_L - y) ** 2


def chain_preactivations(b: Array, w: Array, x: Array) -> Array:
    """z_1 .. z_L of `chain_cost`.  -> float[L]"""

    def layer(a, wb):
        z = wb[0] * a + wb[1]
        return sigmoid(z), z

    return jax.lax.scan(layer, x, jnp.stack([w, b], axis=1))[1]


@dataclasses.dataclass(frozen=True)
class UnstableGradientsResult:
    """Problem 2.1, measured: per-layer gradients of random N(0, 1) chains (vanishing) and of
    one large-weight chain kept at z = 0 (exploding)."""

    layers: int
    vanish_log10_grad: np.ndarray  # float[K, L]  log10 |∂C/∂b_j|, w_j ~ N(0, 1), K chains
    vanish_factor_err: float  # max rel. error of ∂C/∂b_j = w_{j+1} σ'(z_j) ∂C/∂b_{j+1}
    vanish_geomean_factor: float  # geometric mean of |∂C/∂b_j / ∂C/∂b_{j+1}|
    vanish_bound: float  # 1/4 * exp(E ln|w|) for w ~ N(0,1)
    vanish_frac_below_one: float  # fraction of layer-to-layer factors < 1
    explode_w: float
    explode_log10_grad: np.ndarray  # float[L]
    explode_log10_factor: float  # mean log10 |∂C/∂b_j / ∂C/∂b_{j+1}|


def measure_unstable_gradients(
    layers: int = 20, chains: int = 2000, seed: int = 0, explode_w: float = 100.0
) -> UnstableGradientsResult:
    """Per-layer gradients |∂C/∂b_j| of `chain_cost` (jax.grad), for many random N(0,1) chains
    (vanishing) and for one chain with large weights whose biases keep every wa+b at 0
    (exploding)."""
    with float64():
        kw, kb, kx = jax.random.split(jax.random.key(seed), 3)
        w = jax.random.normal(kw, (chains, layers), jnp.float64)
        b = jax.random.normal(kb, (chains, layers), jnp.float64)
        x = jax.random.uniform(kx, (chains,), jnp.float64)
        grads = jax.vmap(jax.grad(chain_cost))(b, w, x)  # float[K, L]
        z = jax.vmap(chain_preactivations)(b, w, x)
        # BP2 for a chain: ∂C/∂b_j = w_{j+1} σ'(z_j) ∂C/∂b_{j+1}.
        predicted = w[:, 1:] * sigmoid_prime(z[:, :-1]) * grads[:, 1:]
        factor_err = jnp.max(jnp.abs(predicted - grads[:, :-1]) / jnp.abs(grads[:, :-1]))
        ratio = jnp.abs(grads[:, :-1] / grads[:, 1:])
        geomean = jnp.exp(jnp.mean(jnp.log(ratio)))
        # E ln|w| for w ~ N(0, 1) is -(γ + ln 2)/2, and σ' <= 1/4: the factor's geometric mean
        # can be at most exp(E ln|w|)/4.
        bound = 0.25 * math.exp(-(np.euler_gamma + math.log(2.0)) / 2.0)

        # Exploding: w_j = w, b_j = -w a_{j-1} so that z_j = 0 and σ'(z_j) = 1/4 everywhere.
        we = jnp.full((layers,), explode_w)
        # x0 = 1/4 and a_j = σ(0) = 1/2 are exact in floating point, so every z_j is exactly
        # 0: any error ε in z_1 would itself grow like (w/4)^j on the way forward.
        x0 = jnp.asarray(0.25)
        be = -we * jnp.concatenate([x0[None], jnp.full((layers - 1,), 0.5)])  # a_j = σ(0)
        ge = jax.grad(chain_cost)(be, we, x0, 1.0)
        log_ge = jnp.log10(jnp.abs(ge))
        return UnstableGradientsResult(
            layers=layers,
            vanish_log10_grad=np.asarray(jnp.log10(jnp.abs(grads))),
            vanish_factor_err=float(factor_err),
            vanish_geomean_factor=float(geomean),
            vanish_bound=bound,
            vanish_frac_below_one=float(jnp.mean(ratio < 1.0)),
            explode_w=explode_w,
            explode_log10_grad=np.asarray(log_ge),
            explode_log10_factor=float(jnp.mean(log_ge[:-1] - log_ge[1:])),
        )


def check_unstable_gradients(r: UnstableGradientsResult) -> list[Check]:
    """Problem 2.1: the chain rule per layer holds; N(0, 1) weights vanish; large weights
    (kept at z = 0) explode by exactly w/4 per layer."""
    k = r.vanish_log10_grad.shape[0]
    first_vs_last = float(np.median(r.vanish_log10_grad[:, 0] - r.vanish_log10_grad[:, -1]))
    expected_explode = math.log10(r.explode_w / 4.0)
    return [
        Check(
            "2.1",
            "chain rule per layer",
            "jax.grad's ∂C/∂b_j equals w_{j+1} σ'(z_j) ∂C/∂b_{j+1} in every layer of "
            f"{k} random {r.layers}-layer chains (max relative error)",
            expected=0.0,
            measured=r.vanish_factor_err,
            tolerance=1e-10,
            passed=r.vanish_factor_err < 1e-10,
        ),
        Check(
            "2.1",
            "vanishing with N(0,1) weights",
            f"w_j, b_j ~ N(0,1): the layer-to-layer factor |wσ'(z)| has geometric mean <= "
            f"exp(E ln|w|)/4 = {r.vanish_bound:.4f} < 1, so gradients shrink toward the input "
            f"({100 * r.vanish_frac_below_one:.2f}% of factors < 1; median "
            f"|∂C/∂b_1|/|∂C/∂b_{r.layers}| = 10^{first_vs_last:.1f})",
            expected=f"<= {r.vanish_bound:.4f}",
            measured=r.vanish_geomean_factor,
            tolerance=0.0,
            passed=r.vanish_geomean_factor <= r.vanish_bound,
        ),
        Check(
            "2.1",
            "exploding with large weights",
            f"w_j = {r.explode_w:g} and b_j = -w a_(j-1) (so every z_j = 0): each layer "
            "multiplies the gradient by wσ'(0) = w/4; measured: mean log10 factor",
            expected=expected_explode,
            measured=r.explode_log10_factor,
            tolerance=1e-9,
            passed=abs(r.explode_log10_factor - expected_explode) < 1e-9,
        ),
    ]

"""Problem 2.1: would an activation with a larger derivative avoid unstable gradients?

In a chain of one-neuron sigmoid layers the gradient at layer j is a product of factors
|w σ'(z)|: with N(0, 1) weights they shrink it (vanishing); with large random weights whose
pre-activations stay small (|z| of order 0.1-1) they grow it (exploding), by a per-layer
factor predicted from the distributions of w and z alone.

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


def balanced_chain_cost(
    delta: Array, w: Array, eps: Array, x: Array, y: float = 0.0
) -> tuple[Array, Array]:
    """A chain like `chain_cost` whose biases put every pre-activation at a chosen value:
    b_j = eps_j - w_j a_(j-1), computed on the activations of this very forward pass (a
    second pass would differ by rounding, and with |w σ'| >> 1 per layer a rounding error in
    z_1 grows like the gradient does). The biases are constants (stop_gradient), and z_j =
    w_j a_(j-1) + b_j + delta_j, so at delta = 0 the gradient in delta is ∂C/∂b_j of the chain
    with those biases.  delta, w, eps: float[L]; x: scalar.  -> (C, z: float[L])"""

    def layer(a, wed):
        w_j, eps_j, d_j = wed[0], wed[1], wed[2]
        b_j = jax.lax.stop_gradient(eps_j - w_j * a)
        z = w_j * a + b_j + d_j
        return sigmoid(z), z

    a_L, z = jax.lax.scan(layer, x, jnp.stack([w, eps, delta], axis=1))
    return 0.5 * (a_L - y) ** 2, z


def expected_log_sigma_prime(z_scale: float, points: int = 200_001) -> float:
    """E ln σ'(z) for z ~ N(0, z_scale²), by quadrature on ±12 standard deviations."""
    z = np.linspace(-12.0, 12.0, points) * z_scale
    density = np.exp(-0.5 * (z / z_scale) ** 2)
    log_sp = -np.logaddexp(0.0, z) - np.logaddexp(0.0, -z)  # ln σ(z) + ln(1 - σ(z))
    return float(np.sum(log_sp * density) / np.sum(density))


def expected_log_uniform(low: float, high: float) -> float:
    """E ln|w| for |w| ~ U[low, high]:  (h ln h - l ln l)/(h - l) - 1."""
    return (high * math.log(high) - low * math.log(low)) / (high - low) - 1.0


@dataclasses.dataclass(frozen=True)
class UnstableGradientsResult:
    """Problem 2.1, measured: per-layer gradients of random N(0, 1) chains (vanishing) and of
    random large-weight chains whose pre-activations stay small (exploding)."""

    layers: int
    vanish_log10_grad: np.ndarray  # float[K, L]  log10 |∂C/∂b_j|, w_j ~ N(0, 1), K chains
    vanish_factor_err: float  # max rel. error of ∂C/∂b_j = w_{j+1} σ'(z_j) ∂C/∂b_{j+1}
    vanish_geomean_factor: float  # geometric mean of |∂C/∂b_j / ∂C/∂b_{j+1}|
    vanish_bound: float  # 1/4 * exp(E ln|w|) for w ~ N(0,1)
    vanish_frac_below_one: float  # fraction of layer-to-layer factors < 1
    explode_w_range: tuple[float, float]  # |w_j| ~ U[low, high], random signs
    explode_z_scale: float  # z_j ~ N(0, scale²), set through the biases
    explode_log10_grad: np.ndarray  # float[K, L]
    explode_max_abs_z: float  # the largest |z_j| the chains actually reached
    explode_log_factor: float  # mean ln |∂C/∂b_j / ∂C/∂b_{j+1}| over chains and layers
    explode_log_factor_sem: float  # its standard error
    explode_log_factor_expected: float  # E ln|w| + E ln σ'(z), from the distributions

    @property
    def explode_w(self) -> float:
        """The geometric-mean |w| of the exploding chains (for labels)."""
        return math.exp(expected_log_uniform(*self.explode_w_range))


def measure_unstable_gradients(
    layers: int = 20,
    chains: int = 2000,
    seed: int = 0,
    explode_w_range: tuple[float, float] = (20.0, 100.0),
    explode_z_scale: float = 0.5,
) -> UnstableGradientsResult:
    """Per-layer gradients |∂C/∂b_j| of `chain_cost` (jax.grad), for many random N(0,1) chains
    (vanishing) and for many random chains with |w_j| ~ U[explode_w_range], random signs, and
    biases that put each z_j at a random N(0, explode_z_scale²) value (exploding)."""
    with float64():
        kw, kb, kx, ke, ks, kz = jax.random.split(jax.random.key(seed), 6)
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

        # Exploding: large random weights, biases that keep each z_j small and random.
        low, high = explode_w_range
        sign = jnp.where(jax.random.bernoulli(ks, 0.5, (chains, layers)), 1.0, -1.0)
        we = sign * jax.random.uniform(ke, (chains, layers), jnp.float64, low, high)
        eps = explode_z_scale * jax.random.normal(kz, (chains, layers), jnp.float64)
        grad_balanced = jax.vmap(jax.grad(balanced_chain_cost, has_aux=True))
        ge, ze = grad_balanced(jnp.zeros_like(we), we, eps, x)
        log_ratio = np.asarray(jnp.log(jnp.abs(ge[:, :-1] / ge[:, 1:])))
        return UnstableGradientsResult(
            layers=layers,
            vanish_log10_grad=np.asarray(jnp.log10(jnp.abs(grads))),
            vanish_factor_err=float(factor_err),
            vanish_geomean_factor=float(geomean),
            vanish_bound=bound,
            vanish_frac_below_one=float(jnp.mean(ratio < 1.0)),
            explode_w_range=(float(low), float(high)),
            explode_z_scale=float(explode_z_scale),
            explode_log10_grad=np.asarray(jnp.log10(jnp.abs(ge))),
            explode_max_abs_z=float(jnp.max(jnp.abs(ze))),
            explode_log_factor=float(log_ratio.mean()),
            explode_log_factor_sem=float(log_ratio.std() / math.sqrt(log_ratio.size)),
            explode_log_factor_expected=expected_log_uniform(low, high)
            + expected_log_sigma_prime(explode_z_scale),
        )


def first_vs_last(log10_grad: np.ndarray) -> tuple[float, float]:
    """(median over chains of log10 |∂C/∂b_1| / |∂C/∂b_L|, fraction of chains with
    |∂C/∂b_1| < |∂C/∂b_L|).  log10_grad: float[K, L]."""
    d = log10_grad[:, 0] - log10_grad[:, -1]
    return float(np.median(d)), float(np.mean(d < 0))


def check_unstable_gradients(r: UnstableGradientsResult) -> list[Check]:
    """Problem 2.1: the chain rule per layer holds; N(0, 1) weights vanish (and layer 1's
    gradient is far below layer L's); large random weights with small z explode, by the
    per-layer factor that the distributions of w and z predict."""
    k = r.vanish_log10_grad.shape[0]
    v_median, v_below = first_vs_last(r.vanish_log10_grad)
    e_median, e_below = first_vs_last(r.explode_log10_grad)
    low, high = r.explode_w_range
    e_factor = math.exp(r.explode_log_factor)
    e_expected = math.exp(r.explode_log_factor_expected)
    e_tol = 5 * r.explode_log_factor_sem  # five standard errors, in ln
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
            f"({100 * r.vanish_frac_below_one:.2f}% of factors < 1): the median "
            f"|∂C/∂b_1|/|∂C/∂b_{r.layers}| is 10^{v_median:.1f}, and |∂C/∂b_1| < "
            f"|∂C/∂b_{r.layers}| in {100 * v_below:.1f}% of chains (passes if >= 90%); "
            "measured: the factor's geometric mean",
            expected=f"<= {r.vanish_bound:.4f}",
            measured=r.vanish_geomean_factor,
            tolerance=0.0,
            passed=bool(
                r.vanish_geomean_factor <= r.vanish_bound and v_median < 0 and v_below >= 0.9
            ),
        ),
        Check(
            "2.1",
            "exploding with large weights",
            f"{k} random chains with |w_j| ~ U[{low:g}, {high:g}] (random signs) and biases "
            f"that put each z_j at a random N(0, {r.explode_z_scale:g}²) value (largest |z| "
            f"reached {r.explode_max_abs_z:.2f}): the per-layer factor's geometric mean, "
            f"predicted from the distributions alone as exp(E ln|w| + E ln σ'(z)) = "
            f"{e_expected:.3f} > 1, is measured {e_factor:.3f}; layer 1's gradient exceeds "
            f"layer {r.layers}'s in {100 * (1 - e_below):.1f}% of chains (median 10^"
            f"{e_median:.1f}); passes if within 5 standard errors ({e_tol:.1e} in ln) and > 1",
            expected=e_expected,
            measured=e_factor,
            tolerance=f"{e_tol:.1e} in ln",
            passed=bool(
                abs(r.explode_log_factor - r.explode_log_factor_expected) < e_tol
                and r.explode_log_factor > 0
                and e_median > 0
                and e_below <= 0.1
            ),
        ),
    ]

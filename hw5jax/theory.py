"""The homework's analytic answers (Problems 1, 2 and 5.1) as functions, checked with jax.grad.

Every result here is a pure function in the book's notation (eta = learning rate, lam = L2
strength, mu = momentum, n = training-set size, m = mini-batch size), and every claim of the
homework becomes a `Check`: an expected value, a measured value, a tolerance and a verdict.

    with jax.enable_x64(True):          # done inside each measure_* function, never globally
        checks = checks_2_2(measure_2_2())

The computations run in float64 *locally* (`jax.enable_x64(True)` as a context manager, or numpy
float64), so the 1e-6 .. 1e-12 tolerances are about the mathematics, not about float32 rounding;
other modules in the same process keep JAX's float32 default.

The parts that train the MNIST MLP (1.2 and the MLP half of 2.3) go through `hw5jax.core.fit.fit`;
this module only analyses what `fit` hands back (per-epoch weights and costs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Check:
    """One numerical check of one claim; `passed` is computed, never asserted by hand."""

    problem: str  # "2.2(c)"
    name: str
    claim: str
    expected: Any
    measured: Any
    tolerance: Any
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def float64():
    """Context manager: float64 for the JAX code inside it only (thread-local config)."""
    return jax.enable_x64(True)


# --------------------------------------------------------------------------------------------
# Problem 2.2: |w σ'(wa + b)| >= 1 needs |w| >= 4, and then only on a narrow interval of a
# --------------------------------------------------------------------------------------------


def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{-z})."""
    return 1.0 / (1.0 + jnp.exp(-z))


# σ', σ'', σ''' by autodiff (elementwise): nothing below assumes σ'(z) = σ(z)(1 - σ(z)).
sigmoid_prime = jnp.vectorize(jax.grad(sigmoid))
sigmoid_second = jnp.vectorize(jax.grad(jax.grad(sigmoid)))


def newton(f: Callable[[Array], Array], x0: Array, steps: int = 40) -> Array:
    """Newton's method for f(x) = 0 with f' from jax.grad: x <- x - f(x)/f'(x).  x0: scalar."""
    df = jax.grad(f)
    return jax.jit(lambda x0: jax.lax.fori_loop(0, steps, lambda _, x: x - f(x) / df(x), x0))(x0)


def gain(a: Array, w: Array, b: Array) -> Array:
    """The factor a gradient picks up crossing one sigmoid neuron: |w σ'(wa + b)|."""
    return jnp.abs(w * sigmoid_prime(w * a + b))


def width_formula(w: Array) -> Array:
    """Problem 2.2(b): width of {a : |w σ'(wa+b)| >= 1}, for |w| >= 4:

    (2/|w|) ln( |w| (1 + sqrt(1 - 4/|w|)) / 2 - 1 )
    """
    x = jnp.abs(w)
    return (2.0 / x) * jnp.log(x * (1.0 + jnp.sqrt(1.0 - 4.0 / x)) / 2.0 - 1.0)


def _boundary(w: Array, b: Array, inside: Array, outside: Array, iters: int = 80) -> Array:
    """A root of f(a) = |w| σ'(wa+b) - 1 between `inside` (f > 0) and `outside` (f < 0):
    Newton's method driven by jax.grad, falling back to bisection whenever a Newton step
    would leave the bracket (so it cannot diverge). All arguments scalars."""

    def f(a):
        return jnp.abs(w) * sigmoid_prime(w * a + b) - 1.0

    df = jax.grad(f)

    def body(_, state):
        pos, neg, a = state  # f(pos) > 0 >= f(neg); a: current iterate
        step = a - f(a) / df(a)
        in_bracket = (step - pos) * (step - neg) < 0  # False for NaN/inf too
        a = jnp.where(in_bracket, step, 0.5 * (pos + neg))
        positive = f(a) > 0
        return jnp.where(positive, a, pos), jnp.where(positive, neg, a), a

    _, _, a = jax.lax.fori_loop(0, iters, body, (inside, outside, 0.5 * (inside + outside)))
    return a


@jax.jit
def measured_width(w: Array, b: Array) -> tuple[Array, Array, Array]:
    """Problem 2.2(b), measured: the set {a : |w σ'(wa+b)| >= 1} is an interval around the peak
    a0 = -b/w (where wa+b = 0); both ends found by `_boundary`.  w, b: float[...] (|w| > 4).
    Returns (width, left end, right end), each float[...]."""

    def one(w, b):
        a0 = -b / w
        reach = 40.0 / jnp.abs(w)  # |wa + b| = 40 there: |w| σ'(40) ~ 1e-16, far outside
        lo = _boundary(w, b, a0, a0 - reach)
        hi = _boundary(w, b, a0, a0 + reach)
        return hi - lo, lo, hi

    fn = one
    for _ in range(jnp.ndim(w)):
        fn = jax.vmap(fn)
    return fn(w, b)


@dataclasses.dataclass(frozen=True)
class Result22:
    z_star: np.ndarray  # float[S]  roots of σ'' found by Newton from several starts
    sigma_prime_max: float  # σ'(z*)
    sigma_prime_grid_max: float  # max of σ' on a dense z grid (independent of Newton)
    gain_w: np.ndarray  # float[G]  w values (|w| != 4)
    gain_max: np.ndarray  # float[G]  max over a of |w σ'(wa+b)| (at the Newton peak)
    gain_grid_max: np.ndarray  # float[G]  max over a dense a grid
    width_w: np.ndarray  # float[W]  w values, both signs, 4 < |w| <= 50
    width_b: np.ndarray  # float[B]
    width_measured: np.ndarray  # float[W, B]
    width_expected: np.ndarray  # float[W]
    w_star: float  # argmax of the width (Newton on d width / d|w|)
    width_star: float
    width_curvature: float  # d² width / d|w|² at w_star (< 0: a maximum)
    w_star_grid: float  # the same maximum on a dense grid, for comparison


def measure_2_2(n_width: int = 200, bs: Sequence[float] = (-5.0, -1.0, 0.0, 0.7, 3.0)) -> Result22:
    """Everything Problem 2.2 claims, measured in float64."""
    with float64():
        # Problem 2.2(a): the maximum of σ' where σ''(z) = 0, by Newton on σ'' (not assumed).
        # (from |z0| >~ 1 Newton overshoots: σ''' changes sign at z = ±1.317)
        starts = jnp.array([-0.6, -0.3, 0.2, 0.6])
        z_star = jax.vmap(lambda z0: newton(lambda z: jax.grad(jax.grad(sigmoid))(z), z0))(starts)
        s_max = sigmoid_prime(z_star[0])
        z_grid = jnp.linspace(-30.0, 30.0, 60_001)
        grid_max = jax.jit(lambda z: jnp.max(sigmoid_prime(z)))(z_grid)

        # ... hence max over a of |w σ'(wa+b)| = |w| σ'(z*), reached at a = (z* - b)/w.
        ws = jnp.linspace(-10.0, 10.0, 400)  # even count: 0 is not on it, nor is |w| = 4
        ws = ws[jnp.abs(jnp.abs(ws) - 4.0) > 1e-9]
        b = 0.37
        peak = gain((z_star[0] - b) / ws, ws, b)
        a_grid = jnp.linspace(-20.0, 20.0, 8_001)
        grid_gain = jax.jit(lambda a, w: jnp.max(gain(a, w, b), axis=1))(
            a_grid[None, :], ws[:, None]
        )

        # Problem 2.2(b): the interval's width, measured for both signs of w and several b.
        mags = jnp.linspace(4.0, 50.0, n_width + 1)[1:]  # (4, 50]
        w_all = jnp.concatenate([mags, -mags])
        b_all = jnp.asarray(bs)
        width, _, _ = measured_width(
            w_all[:, None] * jnp.ones_like(b_all)[None, :],
            jnp.ones_like(w_all)[:, None] * b_all[None, :],
        )

        # Problem 2.2(c): the maximum of the width, by Newton on its derivative (jax.grad).
        dwidth = jax.grad(width_formula)
        w_star = newton(dwidth, jnp.asarray(6.0))
        curvature = jax.hessian(width_formula)(w_star)
        dense = jnp.linspace(4.001, 50.0, 460_001)
        w_star_grid = dense[jax.jit(lambda x: jnp.argmax(width_formula(x)))(dense)]
        return Result22(
            z_star=np.asarray(z_star),
            sigma_prime_max=float(s_max),
            sigma_prime_grid_max=float(grid_max),
            gain_w=np.asarray(ws),
            gain_max=np.asarray(peak),
            gain_grid_max=np.asarray(grid_gain),
            width_w=np.asarray(w_all),
            width_b=np.asarray(b_all),
            width_measured=np.asarray(width),
            width_expected=np.asarray(width_formula(w_all)),
            w_star=float(w_star),
            width_star=float(width_formula(w_star)),
            width_curvature=float(curvature),
            w_star_grid=float(w_star_grid),
        )


def checks_2_2(r: Result22) -> list[Check]:
    gain_ok = (r.gain_max >= 1.0) == (np.abs(r.gain_w) > 4.0)
    gain_dev = float(np.max(np.abs(r.gain_max - np.abs(r.gain_w) / 4.0)))
    formula_err = float(np.max(np.abs(r.width_measured - r.width_expected[:, None])))
    b_spread = float(np.max(np.ptp(r.width_measured, axis=1)))
    sig4 = f"|w|* = {r.w_star:.4g}, width* = {r.width_star:.4g}"
    return [
        Check(
            "2.2(a)",
            "max of sigma' from sigma''=0",
            "Newton on σ''(z) = 0 (jax.grad) from 4 starts finds z* = 0, and σ'(z*) = 1/4 "
            "is the maximum of σ' (no point of a dense grid on [-30, 30] exceeds it)",
            expected=0.25,
            measured=r.sigma_prime_max,
            tolerance=1e-12,
            passed=bool(
                abs(r.sigma_prime_max - 0.25) < 1e-12
                and np.all(np.abs(r.z_star) < 1e-12)
                and r.sigma_prime_grid_max <= r.sigma_prime_max + 1e-15
            ),
        ),
        Check(
            "2.2(a)",
            "|w sigma'(wa+b)| >= 1 iff |w| >= 4",
            "max over a of |wσ'(wa+b)| = |w|/4 (so it is < 1 for |w| < 4 and > 1 for "
            f"|w| > 4); {len(r.gain_w)} values of w in [-10, 10]; measured: largest deviation "
            "from |w|/4 (a dense a-grid never beats the Newton peak)",
            expected=0.0,
            measured=gain_dev,
            tolerance=1e-12,
            passed=bool(
                gain_dev < 1e-12
                and np.all(gain_ok)
                and np.all(r.gain_grid_max <= r.gain_max + 1e-12)
            ),
        ),
        Check(
            "2.2(b)",
            "width formula",
            "the width of {a : |wσ'(wa+b)| >= 1}, its two ends found by a jax.grad-driven "
            "root finder, equals (2/|w|) ln(|w|(1+√(1-4/|w|))/2 - 1); measured: max abs error "
            f"over {r.width_measured.size} (w, b) pairs, 4 < |w| <= 50, both signs of w",
            expected=0.0,
            measured=formula_err,
            tolerance=1e-6,
            passed=formula_err < 1e-6,
        ),
        Check(
            "2.2(b)",
            "width independent of b",
            f"for each w the width is the same for b in {list(map(float, r.width_b))}; "
            "measured: the largest spread over b",
            expected=0.0,
            measured=b_spread,
            tolerance=1e-9,
            passed=b_spread < 1e-9,
        ),
        Check(
            "2.2(c)",
            "argmax of the width",
            f"Newton on d(width)/d|w| (jax.grad; jax.hessian for its slope) gives {sig4}; "
            "the homework says |w| ≈ 6.9",
            expected=6.9,
            measured=round(r.w_star, 4 - 1 - int(math.floor(math.log10(r.w_star)))),
            tolerance=0.05,
            passed=bool(
                abs(r.w_star - 6.9) < 0.05
                and r.width_curvature < 0
                and abs(r.w_star - r.w_star_grid) < 1e-4
            ),
        ),
        Check(
            "2.2(c)",
            "maximum width",
            f"the largest width is {r.width_star:.4g} at |w| = {r.w_star:.4g}; the homework "
            "says ≈ 0.45",
            expected=0.45,
            measured=float(f"{r.width_star:.4g}"),
            tolerance=0.005,
            passed=abs(r.width_star - 0.45) < 0.005,
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 2.1: unstable gradients in a deep chain of sigmoid neurons
# --------------------------------------------------------------------------------------------


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
class Result21:
    layers: int
    vanish_log10_grad: np.ndarray  # float[K, L]  log10 |∂C/∂b_j|, w_j ~ N(0, 1), K chains
    vanish_factor_err: float  # max rel. error of ∂C/∂b_j = w_{j+1} σ'(z_j) ∂C/∂b_{j+1}
    vanish_geomean_factor: float  # geometric mean of |∂C/∂b_j / ∂C/∂b_{j+1}|
    vanish_bound: float  # 1/4 * exp(E ln|w|) for w ~ N(0,1)
    vanish_frac_below_one: float  # fraction of layer-to-layer factors < 1
    explode_w: float
    explode_log10_grad: np.ndarray  # float[L]
    explode_log10_factor: float  # mean log10 |∂C/∂b_j / ∂C/∂b_{j+1}|


def measure_2_1(
    layers: int = 20, chains: int = 2000, seed: int = 0, explode_w: float = 100.0
) -> Result21:
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
        return Result21(
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


def checks_2_1(r: Result21) -> list[Check]:
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


# --------------------------------------------------------------------------------------------
# Problem 2.3: heavy-ball momentum on the quadratic C(w) = h w² / 2
# --------------------------------------------------------------------------------------------


def momentum_step(state: Array, eta: Array, mu: Array, h: Array) -> Array:
    """One step of the homework's momentum on C(w) = h w²/2 (so ∇C = h w):
    v' = mu v - eta ∇C,   w' = w + v'.      state: float[2] = (w, v)."""
    w, v = state[0], state[1]
    v_new = mu * v - eta * h * w
    return jnp.stack([w + v_new, v_new])


def iteration_matrix(eta: Array, mu: Array, h: Array) -> Array:
    """The step is linear in (w, v); its matrix, by jax.jacobian:
    A = [[1 - eta h, mu], [-eta h, mu]],   det A = mu,  tr A = 1 + mu - eta h.  -> [2, 2]"""
    return jax.jacobian(momentum_step)(jnp.zeros(2), eta, mu, h)


def spectral_radius(eta_h: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """max |eigenvalue| of A from its trace and determinant: λ² - (1 + mu - eta h) λ + mu = 0."""
    t = 1.0 + mu - eta_h
    disc = np.sqrt((t * t - 4.0 * mu).astype(complex))
    return np.maximum(np.abs((t + disc) / 2), np.abs((t - disc) / 2))


def simulate_rate(eta_h: Array, mu: Array, steps: int = 300, window: int = 20) -> Array:
    """Measured convergence factor per step of the momentum iteration from (w, v) = (1, 0):
    (max_{t in last window} |x_t| / max_{t in the window ending at steps/2} |x_t|)^(2/steps).
    The window maxima iron out the oscillation of complex eigenvalues.  -> float[...]"""

    def run(eh, mu):
        def body(x, _):
            x = momentum_step(x, eh, mu, 1.0)
            return x, jnp.max(jnp.abs(x))  # not the 2-norm: its squares underflow

        _, norms = jax.lax.scan(body, jnp.array([1.0, 0.0]), None, length=steps)
        half = steps // 2
        late = jnp.max(norms[steps - window :])
        mid = jnp.max(norms[half - window : half])
        return jnp.exp((jnp.log(late) - jnp.log(mid)) / (steps - half))

    fn = run
    for _ in range(jnp.ndim(eta_h)):
        fn = jax.vmap(fn)
    return fn(eta_h, mu)


def best_rate_single(mu: float, eta_h_grid: np.ndarray) -> tuple[float, float]:
    """min over eta h of the spectral radius, for one curvature h: (rate, eta h)."""
    rho = spectral_radius(eta_h_grid, np.full_like(eta_h_grid, mu))
    i = int(np.argmin(rho))
    return float(rho[i]), float(eta_h_grid[i])


def best_rate_condition(
    mu: float, kappa: float, n_eta: int = 1001, n_h: int = 128
) -> tuple[float, float]:
    """min over eta of max over h in [1, kappa] of the spectral radius (the rate guaranteed for
    every direction of a quadratic with condition number kappa): (rate, eta).  A coarse
    log-grid in eta, then a fine grid around its best point."""
    h = np.concatenate([[1.0, kappa], np.geomspace(1.0, kappa, n_h)])

    def worst(etas):
        return spectral_radius(etas[:, None] * h[None, :], np.full((1, 1), mu)).max(axis=1)

    etas = np.geomspace(1e-4, 4.0, n_eta) / kappa * 2.0
    rho = worst(etas)
    i = int(np.argmin(rho))
    fine = np.linspace(etas[max(i - 1, 0)], etas[min(i + 1, n_eta - 1)], n_eta)
    rho_f = worst(fine)
    j = int(np.argmin(rho_f))
    return float(rho_f[j]), float(fine[j])


def polyak_optimum(kappa: float) -> tuple[float, float]:
    """Heavy ball's best (mu, rate) for condition number kappa (Polyak 1964):
    mu* = ((√κ-1)/(√κ+1))², rate* = (√κ-1)/(√κ+1)."""
    q = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
    return q * q, q


def negative_mu_rate(mu: float, kappa: float) -> float:
    """Best worst-case rate for mu in (-1, 0] (derived here): both eigenvalues are real
    (tr² - 4 det > 0 when det = mu < 0); tr = 1 + mu - eta h spans [(1+mu)q', ...] and the best
    eta centres it, giving |tr| <= (1+mu) q with q = (κ-1)/(κ+1), so
        rate(mu) = ((1+mu) q + sqrt((1+mu)² q² - 4 mu)) / 2,      rate(0) = q (plain GD)."""
    q = (kappa - 1.0) / (kappa + 1.0)
    return ((1 + mu) * q + math.sqrt((1 + mu) ** 2 * q * q - 4 * mu)) / 2


@dataclasses.dataclass(frozen=True)
class Result23:
    mus: np.ndarray  # float[M]
    eta_hs: np.ndarray  # float[E]
    rho: np.ndarray  # float[M, E]  spectral radius from jax.jacobian + eigvals
    rho_closed: np.ndarray  # float[M, E]  from trace/determinant
    jac_err: float  # max |jax.jacobian - [[1-ηh, μ], [-ηh, μ]]|
    det_err: float  # max |det A - μ|
    sim_rate: np.ndarray  # float[M, E]  measured per-step factor from simulated runs
    single_mus: np.ndarray  # float[S]   mu in (-1, 0]
    single_best: np.ndarray  # float[S]   min over eta h of rho
    single_best_eta_h: np.ndarray
    kappa: float
    cond_mus: np.ndarray  # float[C]
    cond_best: np.ndarray  # float[C]   min over eta of max over h in [1, kappa] of rho


def measure_2_3(
    n_mu: int = 121, n_eta: int = 181, steps: int = 300, kappa: float = 100.0
) -> Result23:
    """Problem 2.3 on the quadratic: the whole (mu, eta h) plane, simulated runs, and the best
    rates for one curvature and for condition number kappa."""
    mus = np.linspace(-1.5, 1.5, n_mu)
    eta_hs = np.linspace(0.0, 4.5, n_eta)
    with float64():
        mm, ee = np.meshgrid(mus, eta_hs, indexing="ij")
        mats = jax.vmap(iteration_matrix, in_axes=(0, 0, None))(
            jnp.asarray(ee.ravel()), jnp.asarray(mm.ravel()), 1.0
        )
        mats = np.asarray(mats)
        analytic = np.stack(
            [np.stack([1 - ee.ravel(), mm.ravel()], -1), np.stack([-ee.ravel(), mm.ravel()], -1)],
            -2,
        )
        rho = np.abs(np.linalg.eigvals(mats)).max(axis=-1).reshape(mm.shape)
        sim = np.asarray(simulate_rate(jnp.asarray(ee), jnp.asarray(mm), steps=steps))
    single_mus = np.linspace(-0.9, 0.0, 10)
    eh_fine = np.linspace(0.0, 2.0, 200_001)
    single = np.array([best_rate_single(m, eh_fine) for m in single_mus])
    mu_star, _ = polyak_optimum(kappa)
    cond_mus = np.unique(np.concatenate([np.linspace(-0.9, 0.95, 38), [0.0, mu_star]]))
    cond = np.array([best_rate_condition(m, kappa)[0] for m in cond_mus])
    return Result23(
        mus=mus,
        eta_hs=eta_hs,
        rho=rho,
        rho_closed=spectral_radius(ee, mm),
        jac_err=float(np.max(np.abs(mats - analytic))),
        det_err=float(np.max(np.abs(np.linalg.det(mats) - mm.ravel()))),
        sim_rate=sim,
        single_mus=single_mus,
        single_best=single[:, 0],
        single_best_eta_h=single[:, 1],
        kappa=kappa,
        cond_mus=cond_mus,
        cond_best=cond,
    )


def checks_2_3(r: Result23) -> list[Check]:
    mm, ee = np.meshgrid(r.mus, r.eta_hs, indexing="ij")
    above = (mm > 1.0) & (ee > 0.0)
    below = mm <= -1.0
    inside = np.abs(mm) < 1.0
    # Stability triangle (Jury's conditions for λ² - tr λ + det): |det| < 1, |tr| < 1 + det,
    # i.e. -1 < mu < 1 and 0 < eta h < 2 (1 + mu).
    predicted = inside & (ee > 0.0) & (ee < 2.0 * (1.0 + mm))
    margin = np.minimum.reduce([np.abs(np.abs(mm) - 1.0), ee, np.abs(ee - 2 * (1 + mm))])
    clear = margin > 1e-9
    region_disagree = int(np.sum(((r.rho < 1.0) != predicted) & clear))
    # (at eta = 0 a run that starts at rest never moves: not a test of the radius)
    usable = (r.rho > 0.2) & (r.rho < 1.2) & (ee > 0.0)
    sim_err = float(np.max(np.abs(r.sim_rate[usable] - r.rho[usable])))
    sim_above = float(np.min(r.sim_rate[above]))
    sim_below = float(np.min(r.sim_rate[below]))
    single_err = float(np.max(np.abs(r.single_best - np.sqrt(-r.single_mus))))
    q_gd = (r.kappa - 1) / (r.kappa + 1)
    neg = r.cond_mus < 0
    neg_formula = np.array([negative_mu_rate(m, r.kappa) for m in r.cond_mus[neg]])
    neg_err = float(np.max(np.abs(r.cond_best[neg] - neg_formula)))
    mu_star, rate_star = polyak_optimum(r.kappa)
    best_i = int(np.argmin(r.cond_best))
    rate_gd = float(r.cond_best[r.cond_mus == 0.0][0])
    return [
        Check(
            "2.3",
            "iteration matrix and det = mu",
            "jax.jacobian of one momentum step (v' = μv - η∇C, w' = w + v') on C = hw²/2 is "
            "[[1-ηh, μ], [-ηh, μ]] and its determinant is μ, over the whole (μ, ηh) grid",
            expected=0.0,
            measured=max(r.jac_err, r.det_err),
            tolerance=1e-12,
            passed=max(r.jac_err, r.det_err) < 1e-12,
        ),
        Check(
            "2.3",
            "mu > 1 diverges for every eta > 0",
            "det = μ > 1 forces spectral radius >= √μ > 1: min over μ in (1, 1.5], "
            "ηh in (0, 4.5] of the spectral radius, and of the simulated per-step growth",
            expected="> 1",
            measured=min(float(r.rho[above].min()), sim_above),
            tolerance=0.0,
            passed=bool(
                r.rho[above].min() > 1.0
                and sim_above > 1.0
                and np.all(r.rho[above] >= np.sqrt(mm[above]) - 1e-12)
            ),
        ),
        Check(
            "2.3",
            "mu <= -1 never converges",
            "|det| = |μ| >= 1 forces spectral radius >= 1: min over μ in [-1.5, -1], all ηh, "
            "of the spectral radius, and of the simulated per-step factor",
            expected=">= 1",
            measured=min(float(r.rho[below].min()), sim_below),
            tolerance=1e-9,
            passed=bool(r.rho[below].min() >= 1.0 - 1e-9 and sim_below >= 1.0 - 1e-3),
        ),
        Check(
            "2.3",
            "convergence region",
            "for |μ| < 1 the run converges iff 0 < ηh < 2(1+μ) (so μ in (-1,0) converges, "
            "with a smaller stable η range than μ = 0); measured: grid points where "
            "spectral radius < 1 disagrees with that triangle",
            expected=0,
            measured=region_disagree,
            tolerance=0,
            passed=region_disagree == 0,
        ),
        Check(
            "2.3",
            "simulated runs match the spectral radius",
            "per-step factor of simulated runs (300 steps) vs the spectral radius, "
            "where 0.2 < radius < 1.2 and η > 0; measured: max abs difference",
            expected=0.0,
            measured=sim_err,
            tolerance=0.02,
            passed=sim_err < 0.02,
        ),
        Check(
            "2.3",
            "mu in (-1,0): best rate on one curvature",
            "for one curvature h, min over η of the rate is √(-μ) (at ηh = 1+μ) for μ in "
            "(-1, 0], against 0 for μ = 0 (ηh = 1 solves it in one step); measured: max abs "
            "difference from √(-μ)",
            expected=0.0,
            measured=single_err,
            tolerance=1e-3,
            passed=single_err < 1e-3,
        ),
        Check(
            "2.3",
            "mu in (-1,0) never beats mu = 0",
            f"condition number κ = {r.kappa:g}: best worst-case rate over h in [1, κ], "
            f"optimised over η; μ = 0 gives (κ-1)/(κ+1) = {q_gd:.4f}, μ < 0 gives "
            "((1+μ)q + √((1+μ)²q² - 4μ))/2 (worse); measured: its max deviation from that",
            expected=0.0,
            measured=neg_err,
            tolerance=1e-3,
            passed=bool(
                neg_err < 1e-3 and np.all(r.cond_best[neg] > rate_gd) and abs(rate_gd - q_gd) < 1e-3
            ),
        ),
        Check(
            "2.3",
            "optimal mu for condition number",
            f"κ = {r.kappa:g}: the best μ is Polyak's ((√κ-1)/(√κ+1))² = {mu_star:.4f} with "
            f"rate (√κ-1)/(√κ+1) = {rate_star:.4f} vs {q_gd:.4f} for μ = 0; measured: the "
            f"best rate over the μ grid (at μ = {r.cond_mus[best_i]:.4f})",
            expected=rate_star,
            measured=float(r.cond_best[best_i]),
            tolerance=2e-3,
            passed=bool(
                abs(r.cond_best[best_i] - rate_star) < 2e-3
                and abs(r.cond_mus[best_i] - mu_star) < 1e-9
            ),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 5.1: backpropagation through conv -> max-pool -> dense, by hand vs jax.grad
# --------------------------------------------------------------------------------------------
# The homework's tiny network (one channel):
#   x      float[4, 4]   input
#   z^c    float[3, 3]   z^c_ij = Σ_pq W_pq x_(i+p)(j+q) + b_c   (2x2 filter, stride 1, "valid";
#                        cross-correlation, as every DL library computes a "convolution")
#   a^c    float[3, 3]   σ(z^c)
#   m      float[2, 2]   m_rs = max_(p,q in {0,1}) a^c_(r+p)(s+q)  (2x2 max-pool, stride 1:
#                        the windows overlap, the centre a^c_11 belongs to all four)
#   z^L    float[2]      W^L vec(m) + b^L          (W^L: float[2, 4])
#   a^L    float[2]      σ(z^L);   C = ||a^L - y||² / 2

CONV_PARAMS = ("W", "b_c", "W_L", "b_L")


def conv_net_cost(params: dict[str, Array], x: Array, y: Array) -> Array:
    """The cost C of the network above, written with jnp so jax.grad can differentiate it.
    params: W float[2,2], b_c float[], W_L float[2,4], b_L float[2]; x float[4,4]; y float[2]."""
    W = params["W"]
    z_c = sum(W[p, q] * x[p : p + 3, q : q + 3] for p in range(2) for q in range(2)) + params["b_c"]
    a_c = sigmoid(z_c)
    windows = jnp.stack([a_c[p : p + 2, q : q + 2] for p in range(2) for q in range(2)])
    m = jnp.max(windows, axis=0)  # float[2, 2]
    a_L = sigmoid(params["W_L"] @ m.reshape(4) + params["b_L"])
    return 0.5 * jnp.sum((a_L - y) ** 2)


def _np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def pool_routing(a_c: np.ndarray) -> np.ndarray:
    """The max-pool as a 0/1 matrix R: float[..., 4, 9], R[k, u] = 1 iff conv unit u (row-major
    in the 3x3 map) is the argmax of pooling window k (row-major in the 2x2 output), so that
    vec(m) = R vec(a^c).  a_c: float[..., 3, 3]."""
    batch = a_c.shape[:-2]
    R = np.zeros(batch + (4, 9))
    for k, (r, s) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        window = a_c[..., r : r + 2, s : s + 2].reshape(batch + (4,))
        p, q = np.divmod(np.argmax(window, axis=-1), 2)
        np.put_along_axis(R[..., k, :], ((r + p) * 3 + (s + q))[..., None], 1.0, axis=-1)
    return R


def conv_net_backprop(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, variant: str = "correct"
) -> dict[str, np.ndarray]:
    """Problem 5.1: the backpropagation equations of the network above, written out by hand
    (numpy float64, batched over a leading axis N).

    params: W float[N,2,2], b_c float[N], W_L float[N,2,4], b_L float[N,2]; x float[N,4,4];
    y float[N,2].  Returns ∂C/∂(W, b_c, W_L, b_L) and ∂C/∂x, same shapes.

    variant: "correct"; "homework" (the homework's δ^pool = ((W^L)ᵀ δ^L) ⊙ σ'(z^pool): an extra
    σ' at the pooling layer, which has no activation of its own); "overwrite" (route each
    pooled δ to its argmax by assignment, so a unit that is the max of two windows gets one
    window's δ instead of the sum).
    """
    W, b_c, W_L, b_L = (params[k] for k in CONV_PARAMS)
    n = x.shape[0]
    # Feedforward.
    z_c = np.einsum(
        "npq,npqij->nij",
        W,
        np.stack(
            [np.stack([x[:, p : p + 3, q : q + 3] for q in range(2)], 1) for p in range(2)], 1
        ),
    )
    z_c = z_c + b_c[:, None, None]
    a_c = _np_sigmoid(z_c)
    R = pool_routing(a_c)  # float[N, 4, 9]
    m = np.einsum("nku,nu->nk", R, a_c.reshape(n, 9))  # vec(m) = R vec(a^c)
    z_L = np.einsum("nok,nk->no", W_L, m) + b_L
    a_L = _np_sigmoid(z_L)

    # BP1: δ^L = ∇_a C ⊙ σ'(z^L), with ∇_a C = a^L - y for the quadratic cost.
    delta_L = (a_L - y) * a_L * (1 - a_L)  # float[N, 2]
    # BP3, BP4 for the dense layer: ∂C/∂W^L = δ^L vec(m)ᵀ, ∂C/∂b^L = δ^L.
    g_W_L = delta_L[:, :, None] * m[:, None, :]
    g_b_L = delta_L
    # BP2 through the dense layer: ∂C/∂m = (W^L)ᵀ δ^L.  No σ' here: m feeds z^L directly.
    g_m = np.einsum("nok,no->nk", W_L, delta_L)  # float[N, 4]
    if variant == "homework":
        z_pool = np.einsum("nku,nu->nk", R, z_c.reshape(n, 9))
        s = _np_sigmoid(z_pool)
        g_m = g_m * s * (1 - s)
    # Through the max-pool: each window's δ goes to its argmax unit, and a unit that is the
    # argmax of several (overlapping) windows receives the *sum*: ∂C/∂a^c = Rᵀ ∂C/∂m.
    if variant == "overwrite":
        g_a = np.zeros((n, 9))
        for k in range(4):
            u = np.argmax(R[:, k, :], axis=1)
            g_a[np.arange(n), u] = g_m[:, k]
    else:
        g_a = np.einsum("nku,nk->nu", R, g_m)
    # δ^conv = ∂C/∂z^c = (Rᵀ ∂C/∂m) ⊙ σ'(z^c)   (zero at units that are no window's max).
    delta_c = (g_a * (a_c * (1 - a_c)).reshape(n, 9)).reshape(n, 3, 3)
    # The filter's gradient is the valid cross-correlation of the input with δ^conv:
    #   ∂C/∂W_pq = Σ_ij x_(i+p)(j+q) δ^conv_ij      (9 terms per filter weight)
    g_W = np.stack(
        [
            np.stack(
                [np.sum(x[:, p : p + 3, q : q + 3] * delta_c, axis=(1, 2)) for q in range(2)], 1
            )
            for p in range(2)
        ],
        1,
    )
    g_b_c = delta_c.sum(axis=(1, 2))  # ∂C/∂b_c = Σ_ij δ^conv_ij
    # And δ for the input (what an earlier layer would receive): the "full" convolution of
    # δ^conv with the filter, ∂C/∂x_kl = Σ_pq W_pq δ^conv_(k-p)(l-q).
    g_x = np.zeros_like(x)
    for p in range(2):
        for q in range(2):
            g_x[:, p : p + 3, q : q + 3] += W[:, p, q, None, None] * delta_c
    return {"W": g_W, "b_c": g_b_c, "W_L": g_W_L, "b_L": g_b_L, "x": g_x}


def random_conv_problems(
    n: int, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """n random (params, x, y) for the network above, float64."""
    rng = np.random.default_rng(seed)
    params = {
        "W": rng.normal(size=(n, 2, 2)),
        "b_c": rng.normal(size=n),
        "W_L": rng.normal(size=(n, 2, 4)),
        "b_L": rng.normal(size=(n, 2)),
    }
    return params, rng.uniform(size=(n, 4, 4)), rng.uniform(size=(n, 2))


def conv_net_autodiff(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """jax.grad of `conv_net_cost` (float64), batched: same returns as `conv_net_backprop`."""
    with float64():
        grad = jax.jit(jax.vmap(jax.grad(conv_net_cost, argnums=(0, 1))))
        g_params, g_x = grad(
            {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), jnp.asarray(y)
        )
        out = {k: np.asarray(v) for k, v in g_params.items()}
        out["x"] = np.asarray(g_x)
        return out


def relative_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """Per example: max over all gradient entries of |a - b| / (|b| + 1e-12 max|b|)."""
    n = next(iter(a.values())).shape[0]
    flat_a = np.concatenate([a[k].reshape(n, -1) for k in sorted(a)], axis=1)
    flat_b = np.concatenate([b[k].reshape(n, -1) for k in sorted(a)], axis=1)
    return np.max(np.abs(flat_a - flat_b), axis=1) / np.max(np.abs(flat_b), axis=1)


@dataclasses.dataclass(frozen=True)
class Result51:
    n: int
    max_abs_err: float  # hand-derived vs jax.grad, all gradients, all examples
    max_rel_err: float
    homework_rel_err: np.ndarray  # float[N] the homework's extra-σ' variant vs jax.grad
    shared_argmax: np.ndarray  # bool[N]  some unit is the argmax of >= 2 windows
    overwrite_rel_err: np.ndarray  # float[N] routing by assignment instead of sum
    example_V: np.ndarray  # the homework's 3x3 example
    example_M: np.ndarray  # its max-pool
    example_R: np.ndarray  # its routing matrix float[4, 9]


HOMEWORK_V = np.array([[3.0, 2.0, 5.0], [4.0, 1.0, 7.0], [3.0, 5.0, 0.0]])


def measure_5_1(n: int = 2000, seed: int = 0) -> Result51:
    params, x, y = random_conv_problems(n, seed)
    auto = conv_net_autodiff(params, x, y)
    hand = conv_net_backprop(params, x, y)
    abs_err = max(float(np.max(np.abs(hand[k] - auto[k]))) for k in auto)
    R = pool_routing(np.stack([HOMEWORK_V]))[0]
    with np.errstate(all="ignore"):
        routed = pool_routing(
            _np_sigmoid(
                np.einsum(
                    "npq,npqij->nij",
                    params["W"],
                    np.stack(
                        [
                            np.stack([x[:, p : p + 3, q : q + 3] for q in range(2)], 1)
                            for p in range(2)
                        ],
                        1,
                    ),
                )
                + params["b_c"][:, None, None]
            )
        )
    return Result51(
        n=n,
        max_abs_err=abs_err,
        max_rel_err=float(np.max(relative_error(hand, auto))),
        homework_rel_err=relative_error(conv_net_backprop(params, x, y, "homework"), auto),
        shared_argmax=routed.sum(axis=1).max(axis=1) >= 2,
        overwrite_rel_err=relative_error(conv_net_backprop(params, x, y, "overwrite"), auto),
        example_V=HOMEWORK_V,
        example_M=(R @ HOMEWORK_V.reshape(9)).reshape(2, 2),
        example_R=R,
    )


def checks_5_1(r: Result51) -> list[Check]:
    hw_med = float(np.median(r.homework_rel_err))
    shared = r.shared_argmax
    ow = float(np.median(r.overwrite_rel_err[shared])) if shared.any() else 0.0
    ow_clean = float(np.max(r.overwrite_rel_err[~shared])) if (~shared).any() else 0.0
    expected_M = np.array([[4.0, 7.0], [5.0, 7.0]])
    return [
        Check(
            "5.1",
            "hand backprop = jax.grad",
            "δ^L = (a^L - y) ⊙ σ'(z^L); ∂C/∂m = (W^L)ᵀ δ^L; δ^conv = (Rᵀ ∂C/∂m) ⊙ σ'(z^c) "
            "(R: the max-pool's argmax routing, summed over overlapping windows); "
            "∂C/∂W = x ⋆ δ^conv (valid cross-correlation), ∂C/∂b_c = Σ δ^conv, ∂C/∂x = "
            f"δ^conv full-convolved with W — against jax.grad on {r.n} random networks and "
            "inputs (float64); measured: max abs error over every gradient entry",
            expected=0.0,
            measured=r.max_abs_err,
            tolerance=1e-6,
            passed=r.max_abs_err < 1e-6 and r.max_rel_err < 1e-6,
        ),
        Check(
            "5.1",
            "homework's extra sigma' is wrong",
            "the homework's δ^pool = ((W^L)ᵀ δ^L) ⊙ σ'(z^pool) multiplies by a σ' the network "
            "does not have (max-pool has no activation; the conv layer's one σ' is applied "
            "again in δ^conv); measured: median relative error of the resulting gradients "
            "vs jax.grad",
            expected="> 0.01 (wrong)",
            measured=hw_med,
            tolerance=0.01,
            passed=hw_med > 0.01,
        ),
        Check(
            "5.1",
            "overlapping windows must add",
            f"with stride 1 the pooling windows overlap: in {100 * shared.mean():.1f}% of "
            "random inputs one conv unit is the max of 2+ windows, and routing by assignment "
            "instead of summing gives wrong gradients exactly there; measured: median "
            "relative error on those inputs (and 0 on the others)",
            expected="> 0.01 (wrong)",
            measured=ow,
            tolerance=0.01,
            passed=bool(ow > 0.01 and ow_clean < 1e-9),
        ),
        Check(
            "5.1",
            "homework's pooling example",
            "the homework's example V = [[3,2,5],[4,1,7],[3,5,0]] pools to M = [[4,7],[5,7]], "
            "and its 7 is the max of two windows (so its δ is the sum of two pooled δ's); "
            "measured: M, and how many windows route to the 7",
            expected={"M": expected_M.tolist(), "windows_at_7": 2},
            measured={"M": r.example_M.tolist(), "windows_at_7": int(r.example_R[:, 5].sum())},
            tolerance=0,
            passed=bool(np.array_equal(r.example_M, expected_M) and r.example_R[:, 5].sum() == 2),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 1.1: gradient descent on the hyperparameters lam and eta, through unrolled training
# --------------------------------------------------------------------------------------------
# A problem small enough to unroll and differentiate end to end: logistic regression (one
# sigmoid neuron, cross-entropy) trained by full-batch gradient descent for T steps on n
# examples with more features than examples, so that it can overfit and L2 has work to do.


@dataclasses.dataclass(frozen=True)
class Classification:
    x_train: np.ndarray  # float[n, d]
    y_train: np.ndarray  # float[n]  in {0, 1}
    x_val: np.ndarray  # float[n_val, d]
    y_val: np.ndarray  # float[n_val]


def synthetic_classification(
    n: int = 50, n_val: int = 2000, d: int = 100, signal: float = 3.0, seed: int = 0
) -> Classification:
    """Labels y ~ Bernoulli(σ(signal · x·u)) for a random unit vector u, x ~ N(0, I_d)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    x = rng.normal(size=(n + n_val, d))
    y = (rng.uniform(size=n + n_val) < _np_sigmoid(signal * x @ u)).astype(np.float64)
    return Classification(x[:n], y[:n], x[n:], y[n:])


def cross_entropy(params: tuple[Array, Array], x: Array, y: Array) -> Array:
    """C0 = -(1/n) Σ [y ln a + (1-y) ln(1-a)],  a = σ(x·w + b).   x: float[n, d], y: float[n]."""
    w, b = params
    z = x @ w + b
    # ln σ(z) = -softplus(-z), ln(1 - σ(z)) = -softplus(z): stable for large |z|.
    return jnp.mean(y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z))


def regularized_cost(params: tuple[Array, Array], lam: Array, x: Array, y: Array) -> Array:
    """C = C0 + (lam / 2n) Σ w²   (biases not penalised; n = number of training examples)."""
    n = x.shape[0]
    return cross_entropy(params, x, y) + lam / (2 * n) * jnp.sum(params[0] ** 2)


def unrolled_training(
    lam: Array, eta: Array, x: Array, y: Array, steps: int
) -> tuple[Array, Array]:
    """`steps` full-batch gradient-descent steps on C from w = 0, b = 0, as one differentiable
    function of (lam, eta):  w <- (1 - eta lam / n) w - eta ∂C0/∂w,  b <- b - eta ∂C0/∂b."""
    params = (jnp.zeros(x.shape[1], x.dtype), jnp.zeros((), x.dtype))

    def step(params, _):
        grads = jax.grad(regularized_cost)(params, lam, x, y)
        return jax.tree.map(lambda p, g: p - eta * g, params, grads), None

    return jax.lax.scan(step, params, None, length=steps)[0]


def costs_after_training(
    lam: Array, eta: Array, data: Classification, steps: int
) -> dict[str, Array]:
    """After `steps` steps with this lam: the regularised training cost C, the plain training
    cross-entropy C0 and the validation cross-entropy."""
    xt, yt = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    params = unrolled_training(lam, eta, xt, yt, steps)
    return {
        "train_C": regularized_cost(params, lam, xt, yt),
        "train_C0": cross_entropy(params, xt, yt),
        "val": cross_entropy(params, jnp.asarray(data.x_val), jnp.asarray(data.y_val)),
    }


def hypergradient_descent_lam(
    cost: Callable[[Array], Array], lam0: float, alpha: float, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Projected gradient descent on lam >= 0:  lam <- max(0, lam - alpha dcost/dlam), the
    derivative through the whole unrolled training.  -> (lam per iterate, cost per iterate)."""
    value_and_grad = jax.jit(jax.value_and_grad(cost))
    lam, lams, costs = jnp.asarray(lam0), [], []
    for _ in range(iters):
        c, g = value_and_grad(lam)
        lams.append(float(lam))
        costs.append(float(c))
        lam = jnp.maximum(0.0, lam - alpha * g)
    return np.asarray(lams), np.asarray(costs)


def hd_training(
    eta0: Array, beta: Array, lam: Array, x: Array, y: Array, steps: int
) -> tuple[Array, Array, Array]:
    """Gradient descent on C = C0 + lam/(2n) Σw² whose learning rate is itself learned by
    hypergradient descent (Baydin et al. 2018, multiplicative form). With g_t = ∇C(θ_t),

        θ_t = θ_(t-1) - eta_t g_(t-1)
        ∂C(θ_t)/∂eta_t = -g_t · g_(t-1)        (the one-step hypergradient)
        eta_(t+1) = eta_t (1 - beta ∂C/∂eta_t / (|g_t| |g_(t-1)|))
                  = eta_t (1 + beta cos(g_t, g_(t-1)))

    beta = 0 is plain gradient descent with eta = eta0. beta is dimensionless: eta changes by
    at most a factor (1 ± beta) per step whatever the scale of the problem.
    -> (final C, C per step float[steps], eta per step float[steps])
    """
    params = (jnp.zeros(x.shape[1], x.dtype), jnp.zeros((), x.dtype))
    grad = jax.grad(regularized_cost)

    def flat(g):
        return jnp.concatenate([g[0], g[1][None]])

    def step(carry, _):
        params, g_prev, eta = carry
        params = jax.tree.map(lambda p, g: p - eta * g, params, g_prev)
        g = grad(params, lam, x, y)
        gf, pf = flat(g), flat(g_prev)
        cos = jnp.dot(gf, pf) / (jnp.linalg.norm(gf) * jnp.linalg.norm(pf) + 1e-300)
        return (params, g, eta * (1.0 + beta * cos)), (regularized_cost(params, lam, x, y), eta)

    g0 = grad(params, lam, x, y)
    _, (costs, etas) = jax.lax.scan(step, (params, g0, eta0), None, length=steps)
    return costs[-1], costs, etas


def minimum_by_newton(lam: Array, x: Array, y: Array, iters: int = 30) -> Array:
    """min over (w, b) of C = C0 + lam/(2n) Σw², by Newton's method with jax.hessian
    (C is strictly convex for lam > 0)."""

    def cost(theta):
        return regularized_cost((theta[:-1], theta[-1]), lam, x, y)

    def body(_, theta):
        return theta - jnp.linalg.solve(jax.hessian(cost)(theta), jax.grad(cost)(theta))

    return cost(jax.lax.fori_loop(0, iters, body, jnp.zeros(x.shape[1] + 1, x.dtype)))


def one_step_hypergradient(
    params: tuple[Array, Array], eta: Array, x: Array, y: Array
) -> tuple[Array, Array]:
    """∂C0(θ - eta ∇C0(θ))/∂eta two ways: jax.grad of the one-step look-ahead, and the
    closed form -∇C0(θ') · ∇C0(θ) that hypergradient descent uses."""
    g = jax.grad(cross_entropy)(params, x, y)

    def ahead(eta):
        return cross_entropy(jax.tree.map(lambda p, gi: p - eta * gi, params, g), x, y)

    g_next = jax.grad(cross_entropy)(jax.tree.map(lambda p, gi: p - eta * gi, params, g), x, y)
    closed = -(jnp.dot(g_next[0], g[0]) + g_next[1] * g[1])
    return jax.grad(ahead)(eta), closed


@dataclasses.dataclass(frozen=True)
class Result11:
    n: int
    d: int
    eta: float
    steps: int
    lams: np.ndarray  # float[G]  grid of lam (0 first)
    train_C: np.ndarray  # float[G]  regularised training cost after `steps` steps
    train_C0: np.ndarray  # float[G]  its cross-entropy part
    val: np.ndarray  # float[G]  validation cross-entropy
    d_train_C: np.ndarray  # float[G]  d train_C / d lam through the unrolled training
    d_train_C0: np.ndarray  # float[G]
    d_val: np.ndarray  # float[G]
    jvp_err: float  # reverse mode vs forward mode (jax.jvp), relative
    fd_err: float  # reverse mode vs central finite differences, relative
    alpha_train: float
    descent_train_lam: np.ndarray  # float[K]  lam iterates descending the training cost
    alpha_val: float
    descent_val_lam: np.ndarray  # float[K]  lam iterates descending the validation cost
    descent_val_cost: np.ndarray  # float[K]
    hd_lam: float  # lam of the regularised problem that (iii) trains on
    hd_steps: int
    hd_cost_star: float  # min of that cost (long GD run)
    eta0s: np.ndarray  # float[E]  initial learning rates, 3 orders of magnitude
    betas: np.ndarray  # float[B]  hyper-learning rates; 0 = plain gradient descent
    hd_final: np.ndarray  # float[B, E]  final cost
    hd_curves: np.ndarray  # float[B, E, steps]  cost per step
    hd_etas: np.ndarray  # float[B, E, steps]  eta per step
    one_step_err: float  # jax.grad one-step look-ahead vs -g_t·g_(t-1)


def measure_1_1(
    n: int = 100,
    d: int = 50,
    eta: float = 0.5,
    steps: int = 300,
    n_grid: int = 25,
    outer_iters: int = 40,
    hd_lam: float = 1.0,
    betas: Sequence[float] = (0.0, 0.01, 0.05, 0.1, 0.2),
    n_eta0: int = 13,
    seed: int = 0,
) -> Result11:
    """Problem 1.1 on `synthetic_classification(n, d)`: hypergradients of the training and
    validation costs with respect to lam through `steps` unrolled steps of gradient descent,
    descent on lam, and hypergradient descent on eta (float64)."""
    data = synthetic_classification(n=n, d=d, signal=4.0, seed=seed)
    with float64():

        def cost(name):
            return lambda lam: costs_after_training(lam, eta, data, steps)[name]

        lams = jnp.concatenate([jnp.zeros(1), jnp.geomspace(1e-2, 100.0, n_grid - 1)])
        all_costs = functools.partial(costs_after_training, eta=eta, data=data, steps=steps)
        values = jax.jit(jax.vmap(all_costs))(lams)
        # On the grid, all three hypergradients in one forward-mode pass (a scalar input) ...
        grads = jax.jit(jax.vmap(jax.jacfwd(all_costs)))(lams)
        # ... checked against reverse mode (jax.grad, what the descent below uses) and central
        # finite differences, centred at lam + h so that no lam < 0 is evaluated.
        probe = jnp.asarray([0.0, 0.3, 3.0, 30.0])
        h = 1e-5
        val = jax.vmap(cost("val"))
        rev, at_h, fd = jax.jit(
            lambda p: (
                jax.vmap(jax.grad(cost("val")))(p),
                jax.vmap(jax.grad(cost("val")))(p + h),
                (val(p + 2 * h) - val(p)) / (2 * h),
            )
        )(probe)
        fwd = jax.jit(jax.vmap(jax.jacfwd(cost("val"))))(probe)
        jvp_err = float(jnp.max(jnp.abs(rev - fwd) / jnp.abs(fwd)))
        fd_err = float(jnp.max(jnp.abs(at_h - fd) / jnp.abs(fd)))

        # (i) Descending the training cost drives lam to 0; (ii) the validation cost does not.
        alpha_train, alpha_val = 30.0, 10.0
        train_lams, _ = hypergradient_descent_lam(cost("train_C"), 5.0, alpha_train, outer_iters)
        val_lams, val_costs = hypergradient_descent_lam(cost("val"), 0.0, alpha_val, outer_iters)

        # (iii) Hypergradient descent on eta, on the regularised (strongly convex) training cost.
        xt, yt = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
        cost_star = float(minimum_by_newton(hd_lam, xt, yt))
        eta0s = np.geomspace(1e-3, 1.0, n_eta0)
        run = jax.jit(
            jax.vmap(
                jax.vmap(lambda e, b: hd_training(e, b, hd_lam, xt, yt, steps), in_axes=(0, None)),
                in_axes=(None, 0),
            )
        )
        final, curves, etas = run(jnp.asarray(eta0s), jnp.asarray(betas))

        params = unrolled_training(jnp.asarray(hd_lam), jnp.asarray(0.1), xt, yt, 5)
        by_grad, closed = one_step_hypergradient(params, jnp.asarray(0.3), xt, yt)
        return Result11(
            n=n,
            d=d,
            eta=eta,
            steps=steps,
            lams=np.asarray(lams),
            train_C=np.asarray(values["train_C"]),
            train_C0=np.asarray(values["train_C0"]),
            val=np.asarray(values["val"]),
            d_train_C=np.asarray(grads["train_C"]),
            d_train_C0=np.asarray(grads["train_C0"]),
            d_val=np.asarray(grads["val"]),
            jvp_err=jvp_err,
            fd_err=fd_err,
            alpha_train=alpha_train,
            descent_train_lam=train_lams,
            alpha_val=alpha_val,
            descent_val_lam=val_lams,
            descent_val_cost=val_costs,
            hd_lam=hd_lam,
            hd_steps=steps,
            hd_cost_star=cost_star,
            eta0s=eta0s,
            betas=np.asarray(betas),
            hd_final=np.asarray(final),
            hd_curves=np.asarray(curves),
            hd_etas=np.asarray(etas),
            one_step_err=float(jnp.abs(by_grad - closed) / jnp.abs(closed)),
        )


def checks_1_1(r: Result11) -> list[Check]:
    min_dC = float(min(r.d_train_C.min(), r.d_train_C0.min()))
    neg, pos = int(np.sum(r.d_val < 0)), int(np.sum(r.d_val > 0))
    lam_hd, val_hd = float(r.descent_val_lam[-1]), float(r.descent_val_cost[-1])
    val_0 = float(r.val[0])
    hit_zero = np.flatnonzero(r.descent_train_lam == 0.0)
    gd = r.betas == 0.0
    spread = np.ptp(r.hd_final, axis=1)  # over eta0, per beta
    gd_spread = float(spread[gd][0])
    good = r.betas >= 0.05
    hd_spread = float(spread[good].max())
    e0 = f"eta0 in [{r.eta0s[0]:g}, {r.eta0s[-1]:g}] ({len(r.eta0s)} values)"
    return [
        Check(
            "1.1",
            "hypergradient = forward mode = finite differences",
            "d(validation cost after T steps)/dλ by reverse mode (jax.grad through the "
            f"unrolled T = {r.steps} steps) equals forward mode (jax.jacfwd) and central finite "
            "differences; measured: max relative disagreement",
            expected=0.0,
            measured=max(r.jvp_err, r.fd_err),
            tolerance=1e-5,
            passed=r.jvp_err < 1e-8 and r.fd_err < 1e-5,
        ),
        Check(
            "1.1(i)",
            "training-cost hypergradient >= 0",
            f"d/dλ of the training cost after T steps is >= 0 at all {len(r.lams)} λ in "
            f"[0, {r.lams[-1]:g}], both for C = C0 + λ/(2n)Σw² and for C0 alone; measured: "
            "its minimum",
            expected=">= 0",
            measured=min_dC,
            tolerance=0.0,
            passed=min_dC >= 0.0,
        ),
        Check(
            "1.1(i)",
            "descending the training cost drives lam to 0",
            f"projected gradient descent on λ >= 0 (step {r.alpha_train:g}) on the training "
            f"cost, from λ = {r.descent_train_lam[0]:g}; measured: final λ (reached 0 at "
            f"iteration {int(hit_zero[0]) if hit_zero.size else -1})",
            expected=0.0,
            measured=float(r.descent_train_lam[-1]),
            tolerance=0.0,
            passed=float(r.descent_train_lam[-1]) == 0.0,
        ),
        Check(
            "1.1(ii)",
            "validation hypergradient changes sign",
            f"d(validation cost)/dλ is < 0 at {neg} and > 0 at {pos} of the {len(r.lams)} grid "
            "λ: not sign-definite, so there is an interior optimum; measured: number of sign "
            "changes along the grid",
            expected=">= 1",
            measured=int(np.sum(np.diff(np.sign(r.d_val)) != 0)),
            tolerance=0,
            passed=neg > 0 and pos > 0,
        ),
        Check(
            "1.1(ii)",
            "descending the validation cost finds lam > 0",
            f"projected gradient descent on λ (step {r.alpha_val:g}, {len(r.descent_val_lam)} "
            f"iterations, from λ = 0) ends at λ = {lam_hd:.3g} with validation cost "
            f"{val_hd:.4f}, vs {val_0:.4f} at λ = 0 and {r.val.min():.4f} at the grid's best "
            f"λ = {r.lams[np.argmin(r.val)]:.3g}; measured: validation cost found",
            expected=f"< {val_0:.4f} and <= grid best + 0.005",
            measured=val_hd,
            tolerance=0.005,
            passed=bool(lam_hd > 0 and val_hd < val_0 and val_hd <= r.val.min() + 0.005),
        ),
        Check(
            "1.1(iii)",
            "one-step hypergradient",
            "hypergradient descent's ∂C(θ_t)/∂η = -∇C(θ_t)·∇C(θ_(t-1)) equals jax.grad of the "
            "one-step look-ahead C(θ - η∇C(θ)); measured: relative difference",
            expected=0.0,
            measured=r.one_step_err,
            tolerance=1e-10,
            passed=r.one_step_err < 1e-10,
        ),
        Check(
            "1.1(iii)",
            "hypergradient descent on eta is insensitive to eta0",
            f"after {r.hd_steps} steps on C (λ = {r.hd_lam:g}, min {r.hd_cost_star:.4f}), "
            f"{e0}: plain GD's final cost spreads over {gd_spread:.3g}; hypergradient descent "
            f"with any β in {[float(b) for b in r.betas[good]]} spreads over at most "
            f"{hd_spread:.2g}; measured: ratio of the spreads",
            expected="< 0.01",
            measured=hd_spread / gd_spread,
            tolerance=0.01,
            passed=hd_spread / gd_spread < 0.01,
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 2.3 on the MLP of the sweep: what the quadratic predicts, measured by training
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResultMomentumMLP:
    eta: float
    epochs: int
    layers: tuple[int, ...]
    n_train: int
    mus: tuple[float, ...]
    train_cost: dict[float, list[float]]  # mu -> per-epoch mean training cost (NaN: diverged)
    diverged: dict[float, bool]


def checks_2_3_mlp(r: ResultMomentumMLP) -> list[Check]:
    """Expected from the quadratic (for a small eta h every curvature direction is in the
    stable triangle for |mu| < 1, and the effective step is eta/(1 - mu)): mu = 1.1 diverges;
    mu = -0.5 converges, more slowly than mu = 0; mu = 0.9 converges faster than mu = 0."""
    final = {mu: r.train_cost[mu][-1] for mu in r.mus}
    setup = (
        f"MLP {'-'.join(map(str, r.layers))} sigmoid, η = {r.eta:g}, batch 128, "
        f"{r.epochs} epochs on {r.n_train} examples"
    )

    def converged(mu):
        c = np.asarray(r.train_cost[mu], dtype=float)
        return bool(not r.diverged[mu] and np.all(np.isfinite(c)) and c[-1] < c[0])

    return [
        Check(
            "2.3",
            "MLP: mu = 1.1 diverges",
            f"{setup}: with μ = 1.1 the run diverges (NaN/inf parameters or a cost that "
            "grows); measured: diverged flag of the training core",
            expected=True,
            measured=bool(r.diverged[1.1] or not converged(1.1)),
            tolerance=0,
            passed=bool(r.diverged[1.1] or not converged(1.1)),
        ),
        Check(
            "2.3",
            "MLP: mu = -0.5 converges, more slowly than mu = 0",
            f"{setup}: μ = -0.5 trains (cost falls every epoch count) but ends higher than "
            f"μ = 0 (effective step η/(1-μ) = η/1.5); measured: final training cost "
            f"(μ = 0: {final[0.0]:.4f})",
            expected=f"finite, > {final[0.0]:.4f}",
            measured=final[-0.5],
            tolerance=0.0,
            passed=bool(converged(-0.5) and final[-0.5] > final[0.0]),
        ),
        Check(
            "2.3",
            "MLP: mu = 0.9 converges faster than mu = 0",
            f"{setup}: μ = 0.9 ends lower than μ = 0 (effective step 10η); measured: final "
            f"training cost (μ = 0: {final[0.0]:.4f})",
            expected=f"< {final[0.0]:.4f}",
            measured=final[0.9],
            tolerance=0.0,
            passed=bool(converged(0.9) and converged(0.0) and final[0.9] < final[0.0]),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 1.2: L2 regularisation starting from the old N(0, 1) initialisation
# --------------------------------------------------------------------------------------------


def decay_per_epoch(eta: float, lam: float, n: int, m: int) -> tuple[float, float]:
    """Problem 1.2(b): pure weight decay over one epoch of n/m steps, exactly and as the
    homework approximates it:  (1 - eta lam / n)^(n/m)  and  exp(-eta lam / m)."""
    steps = n // m
    return (1.0 - eta * lam / n) ** steps, math.exp(-eta * lam / m)


def rms(weights: Sequence[np.ndarray]) -> float:
    """Root mean square over all entries of a list of weight matrices."""
    return float(np.sqrt(np.mean(np.concatenate([np.ravel(w) ** 2 for w in weights]))))


@dataclasses.dataclass(frozen=True)
class EpochDecomposition:
    shrink: float  # |w_(e+1)| / |w_e|
    decay_share: float  # share of the radial shrink that the decay term accounts for
    grad_to_decay: float  # |gradient part| / |decay part|


def decompose_epoch(
    w_prev: np.ndarray, w_next: np.ndarray, eta: float, lam: float, n: int, m: int, epochs: int = 1
) -> EpochDecomposition:
    """Split `epochs` epochs of SGD with L2 into decay and gradient, exactly. Per step
    w <- d w - eta ∂C0/∂w with d = 1 - eta lam / n, so after the epoch's s = n/m steps

        w_(e+1) = d^s w_e  -  eta Σ_k d^(s - k) g_k
                  \\____/     \\______________/
                decay D + w_e     gradient G

    D = (d^s - 1) w_e and G = w_(e+1) - d^s w_e. The radial (norm-changing) part of the change
    is measured along w_e.  w_prev, w_next: float[P] (all weights, flattened)."""
    factor = decay_per_epoch(eta, lam, n, m)[0] ** epochs
    D = (factor - 1.0) * w_prev
    G = w_next - factor * w_prev
    u = w_prev / np.linalg.norm(w_prev)
    radial = np.dot(D + G, u)
    return EpochDecomposition(
        shrink=float(np.linalg.norm(w_next) / np.linalg.norm(w_prev)),
        decay_share=float(np.dot(D, u) / radial),
        grad_to_decay=float(np.linalg.norm(G) / np.linalg.norm(D)),
    )


@dataclasses.dataclass(frozen=True)
class ResultL2:
    eta: float
    lam: float
    n: int  # training examples
    m: int  # mini-batch size
    layers: tuple[int, ...]
    rms: np.ndarray  # float[E+1] RMS of all weights, epoch 0 = initialisation
    layer_rms: np.ndarray  # float[E+1, L] per weight matrix
    decomposition: list[EpochDecomposition]  # one per epoch
    first_two: EpochDecomposition  # epochs 1 and 2 together
    val_accuracy: list[float]

    @property
    def n_weights(self) -> int:
        return sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:], strict=True))


def analyse_l2(
    weights: Sequence[Sequence[np.ndarray]],
    eta: float,
    lam: float,
    n: int,
    m: int,
    layers: Sequence[int],
    val_accuracy: Sequence[float],
) -> ResultL2:
    """weights[e]: the weight matrices after epoch e (e = 0: at initialisation)."""
    flat = [np.concatenate([np.ravel(w) for w in ws]).astype(np.float64) for ws in weights]
    return ResultL2(
        eta=eta,
        lam=lam,
        n=n,
        m=m,
        layers=tuple(layers),
        rms=np.array([rms(ws) for ws in weights]),
        layer_rms=np.array([[rms([w]) for w in ws] for ws in weights]),
        decomposition=[
            decompose_epoch(a, b, eta, lam, n, m) for a, b in zip(flat[:-1], flat[1:], strict=True)
        ],
        first_two=decompose_epoch(flat[0], flat[2], eta, lam, n, m, epochs=2),
        val_accuracy=list(val_accuracy),
    )


def tail_off_epoch(r: ResultL2, threshold: float = 0.98) -> int | None:
    """First epoch whose RMS shrink factor exceeds `threshold` (the decay has tailed off:
    at most 2% per epoch, against exp(-eta lam/m) for pure decay)."""
    shrink = r.rms[1:] / r.rms[:-1]
    above = np.flatnonzero(shrink > threshold)
    return int(above[0]) + 1 if above.size else None


def checks_1_2(r: ResultL2, heuristic_factor: float = 3.0) -> list[Check]:
    """1.2(a, b): the first epochs' shrink is the decay's; 1.2(c): where it tails off.
    The 1.2(c) level check is a heuristic assessed honestly: it passes only if the RMS at the
    tail-off is within `heuristic_factor` of 1/sqrt(n_weights), a criterion fixed in advance."""
    exact, approx = decay_per_epoch(r.eta, r.lam, r.n, r.m)
    shrink = r.rms[1:] / r.rms[:-1]
    first = float(np.sqrt(shrink[0] * shrink[1]))
    tail = tail_off_epoch(r)
    target = 1.0 / math.sqrt(r.n_weights)
    level = float(r.rms[tail]) if tail is not None else float(r.rms[-1])
    late = r.rms[-5:]
    setting = (
        f"η = {r.eta:g}, λ = {r.lam:g}, m = {r.m}, n = {r.n}, N(0,1) init, "
        f"{'-'.join(map(str, r.layers))} sigmoid + cross-entropy"
    )
    per_layer = ", ".join(
        f"layer {i + 1}: {r.layer_rms[tail if tail is not None else -1, i]:.3f} vs "
        f"1/√{n_in} = {1 / math.sqrt(n_in):.3f}"
        for i, n_in in enumerate(r.layers[:-1])
    )
    return [
        Check(
            "1.2(b)",
            "n/m steps of (1 - eta lam/n) = exp(-eta lam/m)",
            f"η λ = {r.eta * r.lam:g} << n = {r.n}: (1 - ηλ/n)^(n/m) = {exact:.6f} vs "
            f"exp(-ηλ/m) = {approx:.6f}; measured: their difference",
            expected=0.0,
            measured=abs(exact - approx),
            tolerance=1e-4,
            passed=abs(exact - approx) < 1e-4,
        ),
        Check(
            "1.2(b)",
            "first epochs shrink by exp(-eta lam/m)",
            f"{setting}: RMS of the weights shrinks per epoch by {shrink[0]:.4f}, "
            f"{shrink[1]:.4f} in epochs 1, 2 (then {', '.join(f'{s:.3f}' for s in shrink[2:5])})"
            f" vs exp(-ηλ/m) = {approx:.4f}; measured: geometric mean of epochs 1-2 / "
            "exp(-ηλ/m)",
            expected=1.0,
            measured=first / approx,
            tolerance=0.03,
            passed=abs(first / approx - 1.0) < 0.03,
        ),
        Check(
            "1.2(a)",
            "first epochs are dominated by weight decay",
            f"{setting}: over epochs 1-2 the decay term accounts for "
            f"{100 * r.first_two.decay_share:.1f}% of the weights' shrink (radial change); "
            f"the gradient term is not small ({r.first_two.grad_to_decay:.2f}× the decay's "
            "size) but nearly orthogonal to w: it turns the weights, the decay shrinks them; "
            "measured: decay share",
            expected=">= 0.9",
            measured=r.first_two.decay_share,
            tolerance=0.1,
            passed=r.first_two.decay_share >= 0.9,
        ),
        Check(
            "1.2(c)",
            "the decay tails off",
            f"{setting}: the per-epoch shrink rises from {shrink[0]:.3f} to above 0.98 "
            f"(epoch {tail}) and the RMS then holds (last 5 epochs within "
            f"{100 * (late.max() / late.min() - 1):.1f}%); measured: tail-off epoch",
            expected="an epoch <= " + str(len(shrink)),
            measured=tail,
            tolerance=0,
            passed=bool(tail is not None and late.max() / late.min() < 1.05),
        ),
        Check(
            "1.2(c)",
            "tail-off level ~ 1/sqrt(n) (heuristic)",
            f"{setting}: at the tail-off the weights' RMS is {level:.4f} against "
            f"1/√n = {target:.5f} for n = {r.n_weights} weights: off by a factor "
            f"{level / target:.1f} (per layer: {per_layer}); passes only within a factor "
            f"{heuristic_factor:g}, fixed before measuring",
            expected=target,
            measured=level,
            tolerance=f"factor {heuristic_factor:g}",
            passed=bool(1 / heuristic_factor <= level / target <= heuristic_factor),
        ),
    ]

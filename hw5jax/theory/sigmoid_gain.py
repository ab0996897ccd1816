"""Problem 2.2: |w σ'(wa + b)| >= 1 needs |w| >= 4, and then holds only on a narrow interval of a.

(a) the maximum of σ' is σ'(0) = 1/4 (Newton on σ'' = 0), so max_a |wσ'(wa+b)| = |w|/4 (checked
    on a dense a-grid, not at the Newton peak: below 1 for every |w| < 4, reaching 1 above);
(b) the interval {a : |wσ'(wa+b)| >= 1} has width (2/|w|) ln(|w|(1+√(1-4/|w|))/2 - 1), for any b;
(c) that width is largest, ≈ 0.45, at |w| ≈ 6.9.

    checks = check_sigmoid_gain(measure_sigmoid_gain())   # float64 inside, locally
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.theory.checks import Check, float64
from hw5jax.theory.sigmoid import sigmoid, sigmoid_prime

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def newton(f: Callable[[Array], Array], x0: Array, steps: int = 40) -> Array:
    """Newton's method for f(x) = 0 with f' from jax.grad: x <- x - f(x)/f'(x).  x0: scalar."""
    df = jax.grad(f)
    return jax.jit(lambda x0: jax.lax.fori_loop(0, steps, lambda _, x: x - f(x) / df(x), x0))(x0)


def gain(a: ArrayLike, w: ArrayLike, b: ArrayLike) -> Array:
    """The factor a gradient picks up crossing one sigmoid neuron: |w σ'(wa + b)|."""
    return jnp.abs(w * sigmoid_prime(w * a + b))


def width_formula(w: ArrayLike) -> Array:
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
class SigmoidGainResult:
    """Problem 2.2 (a), (b), (c), measured in float64."""

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


def measure_sigmoid_gain(
    n_width: int = 200, bs: Sequence[float] = (-5.0, -1.0, 0.0, 0.7, 3.0)
) -> SigmoidGainResult:
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
        return SigmoidGainResult(
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


def check_sigmoid_gain(r: SigmoidGainResult) -> list[Check]:
    """Problem 2.2: (a) max σ' = 1/4, and the grid maximum of |wσ'(wa+b)| reaches 1 only for
    |w| > 4; (b) the width formula, for any
    b; (c) its maximum ≈ 0.45 at |w| ≈ 6.9."""
    # (a) from the grid alone (no Newton peak): the largest |wσ'(wa+b)| on a dense a-grid
    # stays below 1 for every |w| < 4, reaches 1 for every |w| > 4, and approaches |w|/4.
    small = np.abs(r.gain_w) < 4.0
    below_max = float(np.max(r.gain_grid_max[small])) if small.any() else math.nan
    reaches = bool(np.all(r.gain_grid_max[~small] >= 1.0))
    grid_dev = float(np.max(np.abs(r.gain_grid_max - np.abs(r.gain_w) / 4.0)))
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
            f"on a dense a-grid (8001 points on [-20, 20], b = 0.37; no Newton peak), the "
            f"largest |wσ'(wa+b)| stays below 1 at all {int(small.sum())} values of w with "
            f"|w| < 4 and reaches 1 at all {int((~small).sum())} with 4 < |w| <= 10 (it "
            f"{'does' if reaches else 'does not'}); the grid maximum is |w|/4 to "
            f"{grid_dev:.1e}; measured: the largest grid maximum over |w| < 4",
            expected="< 1",
            measured=below_max,
            tolerance=0.0,
            passed=bool(below_max < 1.0 and reaches and grid_dev < 1e-3),
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

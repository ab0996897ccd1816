"""Problem 1.1: gradient descent on the hyperparameters λ and η, through unrolled training.

(i) the training cost's hypergradient in λ is >= 0, so descending it drives λ to 0; (ii) the
validation cost's is not, and descending it finds λ > 0; (iii) hypergradient descent on η
(Baydin et al. 2018) is insensitive to η0: the "η's within η's" regress stops after one level.

    checks = check_hypergradients(measure_hypergradients())
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.theory.checks import Check, float64
from hw5jax.theory.sigmoid import sigmoid_np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# A problem small enough to unroll and differentiate end to end: logistic regression (one
# sigmoid neuron, cross-entropy) trained by full-batch gradient descent for T steps on n
# examples of d features, few enough examples for their number of features that it overfits
# and L2 has work to do.


@dataclasses.dataclass(frozen=True)
class Classification:
    """A binary classification problem: training and validation examples, labels in {0, 1}."""

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
    y = (rng.uniform(size=n + n_val) < sigmoid_np(signal * x @ u)).astype(np.float64)
    return Classification(x[:n], y[:n], x[n:], y[n:])


def cross_entropy(params: tuple[Array, Array], x: Array, y: Array) -> Array:
    """C0 = -(1/n) Σ [y ln a + (1-y) ln(1-a)],  a = σ(x·w + b).   x: float[n, d], y: float[n]."""
    w, b = params
    z = x @ w + b
    # ln σ(z) = -softplus(-z), ln(1 - σ(z)) = -softplus(z): stable for large |z|.
    return jnp.mean(y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z))


def regularized_cost(params: tuple[Array, Array], lam: ArrayLike, x: Array, y: Array) -> Array:
    """C = C0 + (lam / 2n) Σ w²   (biases not penalised; n = number of training examples)."""
    n = x.shape[0]
    return cross_entropy(params, x, y) + lam / (2 * n) * jnp.sum(params[0] ** 2)


def unrolled_training(
    lam: ArrayLike, eta: ArrayLike, x: Array, y: Array, steps: int
) -> tuple[Array, Array]:
    """`steps` full-batch gradient-descent steps on C from w = 0, b = 0, as one differentiable
    function of (lam, eta):  w <- (1 - eta lam / n) w - eta ∂C0/∂w,  b <- b - eta ∂C0/∂b."""
    params = (jnp.zeros(x.shape[1], x.dtype), jnp.zeros((), x.dtype))

    def step(params, _):
        grads = jax.grad(regularized_cost)(params, lam, x, y)
        return jax.tree.map(lambda p, g: p - eta * g, params, grads), None

    return jax.lax.scan(step, params, None, length=steps)[0]


def costs_after_training(
    lam: ArrayLike, eta: ArrayLike, data: Classification, steps: int
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


def hypergradient_descent_eta(
    eta0: ArrayLike, beta: ArrayLike, lam: ArrayLike, x: Array, y: Array, steps: int
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


def minimum_by_newton(lam: ArrayLike, x: Array, y: Array, iters: int = 30) -> Array:
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
class HypergradientResult:
    """Problem 1.1, measured: costs and their λ-hypergradients on a grid of λ, the descents
    on λ ((i), (ii)) and hypergradient descent on η from many η0 and β ((iii))."""

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
    eta_descent_lam: float  # lam of the regularised problem that (iii) trains on
    eta_descent_steps: int
    eta_descent_cost_min: float  # min of that cost (Newton, `minimum_by_newton`)
    eta0s: np.ndarray  # float[E]  initial learning rates, 3 orders of magnitude
    betas: np.ndarray  # float[B]  hyper-learning rates; 0 = plain gradient descent
    eta_descent_final: np.ndarray  # float[B, E]  final cost
    eta_descent_costs: np.ndarray  # float[B, E, steps]  cost per step
    eta_descent_etas: np.ndarray  # float[B, E, steps]  eta per step
    one_step_err: float  # jax.grad one-step look-ahead vs -g_t·g_(t-1)


def measure_hypergradients(
    n: int = 100,
    d: int = 50,
    eta: float = 0.5,
    steps: int = 300,
    n_grid: int = 25,
    outer_iters: int = 40,
    eta_descent_lam: float = 1.0,
    betas: Sequence[float] = (0.0, 0.01, 0.05, 0.1, 0.2),
    n_eta0: int = 13,
    seed: int = 0,
) -> HypergradientResult:
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
        cost_star = float(minimum_by_newton(eta_descent_lam, xt, yt))
        eta0s = np.geomspace(1e-3, 1.0, n_eta0)
        run = jax.jit(
            jax.vmap(
                jax.vmap(
                    lambda e, b: hypergradient_descent_eta(e, b, eta_descent_lam, xt, yt, steps),
                    in_axes=(0, None),
                ),
                in_axes=(None, 0),
            )
        )
        final, curves, etas = run(jnp.asarray(eta0s), jnp.asarray(betas))

        params = unrolled_training(jnp.asarray(eta_descent_lam), jnp.asarray(0.1), xt, yt, 5)
        by_grad, closed = one_step_hypergradient(params, jnp.asarray(0.3), xt, yt)
        return HypergradientResult(
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
            eta_descent_lam=eta_descent_lam,
            eta_descent_steps=steps,
            eta_descent_cost_min=cost_star,
            eta0s=eta0s,
            betas=np.asarray(betas),
            eta_descent_final=np.asarray(final),
            eta_descent_costs=np.asarray(curves),
            eta_descent_etas=np.asarray(etas),
            one_step_err=float(jnp.abs(by_grad - closed) / jnp.abs(closed)),
        )


def check_hypergradients(r: HypergradientResult) -> list[Check]:
    """Problem 1.1 (i), (ii), (iii): the hypergradients agree three ways; the training cost
    drives λ to 0, the validation cost does not; learning η makes η0 matter little."""
    min_dC = float(min(r.d_train_C.min(), r.d_train_C0.min()))
    neg, pos = int(np.sum(r.d_val < 0)), int(np.sum(r.d_val > 0))
    lam_hd, val_hd = float(r.descent_val_lam[-1]), float(r.descent_val_cost[-1])
    val_0 = float(r.val[0])
    hit_zero = np.flatnonzero(r.descent_train_lam == 0.0)
    gd = r.betas == 0.0
    spread = np.ptp(r.eta_descent_final, axis=1)  # over eta0, per beta
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
            f"after {r.eta_descent_steps} steps on C (λ = {r.eta_descent_lam:g}, "
            f"min {r.eta_descent_cost_min:.4f}), "
            f"{e0}: plain GD's final cost spreads over {gd_spread:.3g}; hypergradient descent "
            f"with any β in {[float(b) for b in r.betas[good]]} spreads over at most "
            f"{hd_spread:.2g}; measured: ratio of the spreads",
            expected="< 0.01",
            measured=hd_spread / gd_spread,
            tolerance=0.01,
            passed=hd_spread / gd_spread < 0.01,
        ),
    ]

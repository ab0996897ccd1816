"""Problem 2.3: what goes wrong with momentum μ > 1, and with μ < 0?

On the quadratic C(w) = h w²/2 one heavy-ball step is linear in (w, v), with det = μ: μ > 1 and
μ <= -1 never converge, -1 < μ < 0 converges for 0 < ηh < 2(1+μ) but never beats μ = 0; then
the same four μ trained on the MLP (`MomentumMLPResult`, filled in by the theory_checks
pipeline).

    checks = check_momentum_quadratic(measure_momentum_quadratic())
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from hw5jax.theory.checks import Check, float64

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def momentum_step(state: Array, eta: Array, mu: Array, h: Array) -> Array:
    """One step of the homework's momentum on C(w) = h w²/2 (so ∇C = h w):
    v' = mu v - eta ∇C,   w' = w + v'.      state: float[2] = (w, v)."""
    w, v = state[0], state[1]
    v_new = mu * v - eta * h * w
    return jnp.stack([w + v_new, v_new])


def iteration_matrix(eta: ArrayLike, mu: ArrayLike, h: ArrayLike) -> Array:
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
class MomentumQuadraticResult:
    """Problem 2.3 on C(w) = hw²/2, measured: spectral radius and simulated rate over the
    (μ, ηh) grid, and the best rates for one curvature and for condition number κ."""

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
    search_mu: float  # argmin over mu of that rate, by a bounded scalar minimiser
    search_rate: float  # the rate there


def measure_momentum_quadratic(
    n_mu: int = 121, n_eta: int = 181, steps: int = 300, kappa: float = 100.0
) -> MomentumQuadraticResult:
    """Problem 2.3 on the quadratic: the whole (mu, eta h) plane, simulated runs, and the best
    rates for one curvature and for condition number kappa."""
    mus = np.linspace(-1.5, 1.5, n_mu)
    eta_hs = np.linspace(0.0, 4.5, n_eta)
    with float64():
        mm, ee = np.meshgrid(mus, eta_hs, indexing="ij")
        mats = np.asarray(
            jax.vmap(iteration_matrix, in_axes=(0, 0, None))(
                jnp.asarray(ee.ravel()), jnp.asarray(mm.ravel()), 1.0
            )
        )
        analytic = np.stack(
            [np.stack([1 - ee.ravel(), mm.ravel()], -1), np.stack([-ee.ravel(), mm.ravel()], -1)],
            -2,
        )
        rho = np.abs(np.linalg.eigvals(mats)).max(axis=-1).reshape(mm.shape)
        sim = np.asarray(simulate_rate(jnp.asarray(ee), jnp.asarray(mm), steps=steps))
    single_mus = np.linspace(-0.9, 0.0, 10)
    eh_fine = np.linspace(0.0, 2.0, 200_001)
    single = np.array([best_rate_single(m, eh_fine) for m in single_mus])
    cond_mus = np.unique(np.concatenate([np.linspace(-0.9, 0.95, 38), [0.0]]))
    cond = np.array([best_rate_condition(m, kappa)[0] for m in cond_mus])
    # The best mu, searched for on its own (Brent's bounded method on mu in [-0.9, 0.99]; the
    # rate is unimodal in mu): nothing here knows Polyak's formula.
    search = scipy.optimize.minimize_scalar(
        lambda mu: best_rate_condition(mu, kappa)[0],
        bounds=(-0.9, 0.99),
        method="bounded",
        options={"xatol": 1e-7},
    )
    return MomentumQuadraticResult(
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
        search_mu=float(search.x),
        search_rate=float(search.fun),
    )


def check_momentum_quadratic(r: MomentumQuadraticResult) -> list[Check]:
    """Problem 2.3 on the quadratic: μ > 1 diverges, μ <= -1 never converges, -1 < μ < 0
    converges in the triangle 0 < ηh < 2(1+μ) but is never faster than μ = 0."""
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
            f"κ = {r.kappa:g}: a bounded scalar minimiser over μ in [-0.9, 0.99] of the best "
            f"worst-case rate (optimised over η; the search knows no formula) finds μ = "
            f"{r.search_mu:.5f}, rate {r.search_rate:.5f}; Polyak's optimum is "
            f"((√κ-1)/(√κ+1))² = {mu_star:.5f} with rate (√κ-1)/(√κ+1) = {rate_star:.5f} "
            f"(vs {q_gd:.4f} for μ = 0); passes if μ agrees to 1e-3 and the rate to 1e-4; "
            "measured: the μ found",
            expected=mu_star,
            measured=r.search_mu,
            tolerance=1e-3,
            passed=bool(
                abs(r.search_mu - mu_star) < 1e-3 and abs(r.search_rate - rate_star) < 1e-4
            ),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Problem 2.3 on the MLP of the sweep: what the quadratic predicts, measured by training
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MomentumMLPResult:
    """Problem 2.3 on the MLP: per-epoch training cost for each μ (what the pipeline trains)."""

    eta: float
    epochs: int
    layers: tuple[int, ...]
    n_train: int
    mus: tuple[float, ...]
    train_cost: dict[float, list[float]]  # mu -> per-epoch mean training cost (NaN: diverged)
    diverged: dict[float, bool]


def blow_up(costs: list[float], diverged: bool) -> tuple[bool, str | float]:
    """A real divergence: non-finite parameters or cost (the training core's flag, or a NaN/inf
    in the per-epoch costs), or a cost that rises at least 10x above its first epoch's.
    Returns (diverged, what was seen: "non-finite" or the largest rise factor)."""
    c = np.asarray(costs, dtype=float)
    if diverged or not np.all(np.isfinite(c)):
        return True, "non-finite"
    rise = float(np.max(c) / c[0])
    return rise >= 10.0, rise


def falls_every_epoch(costs: list[float], diverged: bool) -> bool:
    """Finite, and lower after every epoch than after the one before."""
    c = np.asarray(costs, dtype=float)
    return bool(not diverged and np.all(np.isfinite(c)) and np.all(np.diff(c) < 0))


def check_momentum_mlp(r: MomentumMLPResult) -> list[Check]:
    """Expected from the quadratic (for a small eta h every curvature direction is in the
    stable triangle for |mu| < 1, and the effective step is eta/(1 - mu)): mu = 1.1 diverges
    (non-finite, or a >= 10x rise of the cost); mu = -0.5 trains (the cost falls every epoch)
    but more slowly than mu = 0 (higher at every epoch); mu = 0.9 trains faster (lower at
    every epoch)."""
    cost = {mu: np.asarray(r.train_cost[mu], dtype=float) for mu in r.mus}
    final = {mu: float(c[-1]) for mu, c in cost.items()}
    setup = (
        f"MLP {'-'.join(map(str, r.layers))} sigmoid, η = {r.eta:g}, batch 128, "
        f"{r.epochs} epochs on {r.n_train} examples"
    )
    blew, seen = blow_up(r.train_cost[1.1], r.diverged[1.1])
    falls = {mu: falls_every_epoch(r.train_cost[mu], r.diverged[mu]) for mu in r.mus}
    base = cost[0.0]

    def per_epoch(mu: float) -> str:
        return ", ".join(f"{c:.4g}" for c in cost[mu])

    return [
        Check(
            "2.3",
            "MLP: mu = 1.1 diverges",
            f"{setup}: with μ = 1.1 the run diverges: its parameters or cost become NaN/inf, "
            f"or the cost rises at least 10× above its first epoch's (per-epoch cost "
            f"{per_epoch(1.1)}); measured: non-finite, or the largest rise factor",
            expected="non-finite or >= 10",
            measured=seen,
            tolerance=0,
            passed=blew,
        ),
        Check(
            "2.3",
            "MLP: mu = -0.5 converges, more slowly than mu = 0",
            f"{setup}: μ = -0.5 trains (its cost is finite and falls at every epoch: "
            f"{per_epoch(-0.5)}) but more slowly than μ = 0 (a higher cost at every epoch; "
            f"μ = 0: {per_epoch(0.0)}), as an effective step η/(1-μ) = η/1.5 predicts; "
            "measured: final training cost",
            expected=f"falling, > μ = 0's at every epoch (final {final[0.0]:.4f})",
            measured=final[-0.5],
            tolerance=0.0,
            passed=bool(falls[-0.5] and falls[0.0] and np.all(cost[-0.5] > base)),
        ),
        Check(
            "2.3",
            "MLP: mu = 0.9 converges faster than mu = 0",
            f"{setup}: μ = 0.9 trains (falls at every epoch: {per_epoch(0.9)}) and ends each "
            f"epoch lower than μ = 0 (effective step 10η); measured: final training cost",
            expected=f"falling, < μ = 0's at every epoch (final {final[0.0]:.4f})",
            measured=final[0.9],
            tolerance=0.0,
            passed=bool(falls[0.9] and falls[0.0] and np.all(cost[0.9] < base)),
        ),
    ]

"""One figure per problem of `hw5jax.theory`, drawn from its measured results (matplotlib, Agg).

figures = all_figures(results)   # {"width_vs_w.png": Figure, ...}, `results` keyed "2.2", ...
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np

from hw5jax.theory import l2_decay, momentum
from hw5jax.theory.checks import float64
from hw5jax.theory.hyperparameter_gradients import HypergradientResult
from hw5jax.theory.l2_decay import L2DecayResult
from hw5jax.theory.momentum import MomentumMLPResult, MomentumQuadraticResult
from hw5jax.theory.sigmoid_gain import SigmoidGainResult, width_formula
from hw5jax.theory.unstable_gradients import UnstableGradientsResult

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def sigmoid_gain_figure(r: SigmoidGainResult) -> Figure:
    """Problem 2.2(c): the width of {a : |wσ'(wa+b)| >= 1} against |w|, formula and measured."""
    x = np.linspace(4.0001, 50, 4000)
    with float64():
        y = np.asarray(width_formula(x))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, y, lw=2, label=r"$\frac{2}{|w|}\ln\left(\frac{|w|(1+\sqrt{1-4/|w|})}{2}-1\right)$")
    mags = np.abs(r.width_w)
    ax.plot(
        mags[::8],
        r.width_measured[::8, 0],
        "o",
        ms=4,
        mfc="none",
        label=f"measured (root finder on jax.grad), b = {r.width_b[0]:g}",
    )
    ax.plot(
        [r.w_star],
        [r.width_star],
        "r*",
        ms=14,
        label=f"maximum: |w| = {r.w_star:.4g}, width = {r.width_star:.4g}",
    )
    ax.axvline(4, color="gray", ls=":", lw=1)
    ax.set(
        xlabel="|w|",
        ylabel=r"width of $\{a : |w\,\sigma'(wa+b)| \geq 1\}$",
        title="Problem 2.2(c): where a sigmoid neuron can pass on a gradient undiminished",
    )
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def unstable_gradients_figure(r: UnstableGradientsResult) -> Figure:
    """Problem 2.1: |∂C/∂b_j| per layer, vanishing (N(0,1) chains) and exploding."""
    layers = np.arange(1, r.layers + 1)
    v = r.vanish_log10_grad - r.vanish_log10_grad[:, -1:]
    e = r.explode_log10_grad - r.explode_log10_grad[:, -1:]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.fill_between(
        layers,
        np.percentile(v, 10, 0),
        np.percentile(v, 90, 0),
        alpha=0.25,
        label="N(0,1) weights and biases: 10-90% of chains",
    )
    ax.plot(layers, np.median(v, 0), lw=2, label="N(0,1): median (vanishing)")
    low, high = r.explode_w_range
    ax.fill_between(
        layers, np.percentile(e, 10, 0), np.percentile(e, 90, 0), color="C3", alpha=0.25
    )
    ax.plot(
        layers,
        np.median(e, 0),
        lw=2,
        color="C3",
        label=f"|w| ~ U[{low:g}, {high:g}], z ~ N(0, {r.explode_z_scale:g}²): median, 10-90% "
        f"(exploding, ×{math.exp(r.explode_log_factor):.3g} per layer)",
    )
    ax.axhline(0, color="gray", lw=1)
    ax.set(
        xlabel="layer j (1 = nearest the input)",
        ylabel=r"$\log_{10}\,|\partial C/\partial b_j|\,/\,|\partial C/\partial b_L|$",
        title=f"Problem 2.1: gradients in a {r.layers}-layer chain of sigmoid neurons",
    )
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def momentum_quadratic_figure(r: MomentumQuadraticResult) -> Figure:
    """Problem 2.3: spectral radius over (ηh, μ), and the best rate per μ for condition κ."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
    im = a1.pcolormesh(r.eta_hs, r.mus, np.minimum(r.rho, 2.0), cmap="viridis", shading="auto")
    a1.contour(r.eta_hs, r.mus, r.rho, levels=[1.0], colors="w", linewidths=2)
    eh = np.linspace(0, 4.5, 10)
    a1.plot(eh, eh / 2 - 1, "r--", lw=1.5, label=r"$\eta h = 2(1+\mu)$")
    a1.axhline(1, color="r", ls=":", lw=1.5, label=r"$\mu = \pm 1$ (det = $\mu$)")
    a1.axhline(-1, color="r", ls=":", lw=1.5)
    a1.set(
        xlabel=r"$\eta h$",
        ylabel=r"$\mu$",
        ylim=(r.mus[0], r.mus[-1]),
        title="spectral radius of the momentum iteration (white: = 1)",
    )
    a1.legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=a1, label="spectral radius (clipped at 2)")
    mu_star, rate_star = momentum.polyak_optimum(r.kappa)
    a2.plot(r.cond_mus, r.cond_best, "o-", ms=3, label="measured: best η for each μ")
    neg = np.linspace(-0.9, 0, 50)
    a2.plot(
        neg,
        [momentum.negative_mu_rate(m, r.kappa) for m in neg],
        "k--",
        lw=1,
        label=r"formula for $\mu \leq 0$",
    )
    a2.plot(
        [0],
        [(r.kappa - 1) / (r.kappa + 1)],
        "s",
        color="C2",
        ms=8,
        label=f"μ = 0 (plain GD): {(r.kappa - 1) / (r.kappa + 1):.3f}",
    )
    a2.plot(
        [mu_star], [rate_star], "r*", ms=14, label=f"Polyak μ* = {mu_star:.3f}: {rate_star:.3f}"
    )
    a2.set(
        xlabel=r"$\mu$",
        ylabel="worst-case rate per step (lower is faster)",
        title=f"best rate on a quadratic with condition number κ = {r.kappa:g}",
    )
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.suptitle("Problem 2.3: heavy-ball momentum on C(w) = h w²/2")
    return fig


def momentum_mlp_figure(r: MomentumMLPResult) -> Figure:
    """Problem 2.3 on the MLP: training cost per epoch for each μ (diverged runs listed)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    epochs = np.arange(1, r.epochs + 1)
    top = 3.0
    for mu in r.mus:
        cost = np.asarray(r.train_cost[mu], float)
        finite = np.isfinite(cost)
        if r.diverged[mu] or not finite.all() or cost.max() > top:
            shown = ", ".join(f"{c:.0e}" if np.isfinite(c) else "NaN" for c in cost)
            ax.plot([], [], "x", label=f"μ = {mu:g}: diverged (cost per epoch {shown})")
            continue
        ax.plot(epochs, cost, "o-", label=f"μ = {mu:g}")
    ax.set_xticks(epochs)
    ax.set(
        xlabel="epoch",
        ylabel="mean training cost",
        ylim=(0, None),
        title=f"Problem 2.3 on the MLP {'-'.join(map(str, r.layers))} (η = {r.eta:g})",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def l2_decay_figure(r: L2DecayResult) -> Figure:
    """Problem 1.2: RMS weight per epoch (all, per layer) against pure decay and 1/√n."""
    epochs = np.arange(len(r.rms))
    _, approx = l2_decay.decay_per_epoch(r.eta, r.lam, r.n, r.m)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.semilogy(epochs, r.rms, "o-", lw=2, label="RMS of all weights (measured)")
    for i, n_in in enumerate(r.layers[:-1]):
        ax.semilogy(epochs, r.layer_rms[:, i], "--", label=f"layer {i + 1} ({n_in} inputs)")
        ax.axhline(1 / math.sqrt(n_in), color=f"C{i + 1}", ls=":", lw=1)
    ax.semilogy(
        epochs,
        r.rms[0] * approx**epochs,
        "k:",
        lw=1.5,
        label=r"pure decay: $\exp(-\eta\lambda/m)$ per epoch",
    )
    ax.axhline(
        1 / math.sqrt(r.n_weights), color="r", lw=1.5, label=f"1/√n, n = {r.n_weights} weights"
    )
    ax.set(
        xlabel="epoch",
        ylabel="RMS weight",
        ylim=(1e-3, 5),
        title=f"Problem 1.2: L2 from N(0,1) init (η={r.eta:g}, λ={r.lam:g}, m={r.m})",
    )
    ax.text(
        0.98,
        0.02,
        "dotted lines: 1/√n_in of each layer",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
    )
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3, which="both")
    return fig


def lam_descent_figure(r: HypergradientResult) -> Figure:
    """Problem 1.1(i, ii): costs and hypergradients over λ, and the descent on λ."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6))
    lam = np.maximum(r.lams, 1e-3)
    a1.semilogx(lam, r.val, "o-", label="validation cost")
    a1.semilogx(lam, r.train_C, "s-", label="training cost C = C0 + λ/(2n)Σw²")
    a1.semilogx(lam, r.train_C0, "^-", label="training C0")
    steps = np.maximum(r.descent_val_lam, 1e-3)
    a1.semilogx(steps, r.descent_val_cost, "r.", ms=6)
    a1.semilogx(
        steps[-1],
        r.descent_val_cost[-1],
        "r*",
        ms=14,
        label=f"descent on validation: λ → {r.descent_val_lam[-1]:.3g}",
    )
    a1.set(
        xlabel="λ (λ = 0 drawn at 1e-3)",
        ylabel="cost after T steps",
        title=f"costs after T = {r.steps} steps (n = {r.n}, d = {r.d})",
    )
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a2.semilogx(lam, r.d_val, "o-", label="d(validation)/dλ")
    a2.semilogx(lam, r.d_train_C, "s-", label="d(training C)/dλ")
    a2.axhline(0, color="k", lw=1)
    a2.set_yscale("symlog", linthresh=1e-3)
    a2.set(
        xlabel="λ",
        ylabel="hypergradient (symlog)",
        title="hypergradients through the unrolled training (jax.grad)",
    )
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.suptitle("Problem 1.1(i, ii): gradient descent on λ")
    return fig


def eta_descent_figure(r: HypergradientResult) -> Figure:
    """Problem 1.1(iii): hypergradient descent on η, final cost against η0 and learned η_t."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6))
    for i, beta in enumerate(r.betas):
        label = "plain GD (β = 0)" if beta == 0 else f"hypergradient descent, β = {beta:g}"
        a1.loglog(
            r.eta0s, r.eta_descent_final[i] - r.eta_descent_cost_min + 1e-16, "o-", label=label
        )
    a1.set(
        xlabel="initial learning rate η0",
        ylabel="final cost − min cost (+1e-16)",
        title=f"after {r.eta_descent_steps} steps: sensitivity to η0",
    )
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3, which="both")
    k = int(np.flatnonzero(r.betas == 0.1)[0]) if np.any(r.betas == 0.1) else len(r.betas) - 1
    for j in range(0, len(r.eta0s), 3):
        a2.semilogy(r.eta_descent_etas[k, j], label=f"η0 = {r.eta0s[j]:.2g}")
    a2.set(xlabel="step", ylabel="η_t", title=f"learned η_t (β = {r.betas[k]:g})")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3, which="both")
    fig.suptitle("Problem 1.1(iii): hypergradient descent on η (Baydin et al. 2018)")
    return fig


def all_figures(results: dict) -> dict[str, Figure]:
    """Every figure of the answer key, by file name. `results`: the measured results keyed by
    problem ("1.1", "1.2", "2.1", "2.2", "2.3", and "2.3mlp" for 2.3 on the MLP)."""
    return {
        "width_vs_w.png": sigmoid_gain_figure(results["2.2"]),
        "unstable_gradients.png": unstable_gradients_figure(results["2.1"]),
        "momentum_spectral_radius.png": momentum_quadratic_figure(results["2.3"]),
        "momentum_mlp.png": momentum_mlp_figure(results["2.3mlp"]),
        "l2_weight_rms.png": l2_decay_figure(results["1.2"].primary),
        "hypergradient_lambda.png": lam_descent_figure(results["1.1"]),
        "hypergradient_eta.png": eta_descent_figure(results["1.1"]),
    }

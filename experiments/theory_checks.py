"""Problems 1, 2 and 5.1: the homework's derivations turned into numerical checks that can fail.

    python -m experiments.theory_checks [--out DIR]

Writes DIR/results.json ({"experiment", "checks": [...], "wall_seconds"}), one PNG per figure
and DIR/theory.md (the answer key). Exit code 1 if any check fails; the one heuristic the
issue asks to *assess* (1.2(c)'s "weights tail off around 1/sqrt(n)") is reported with its
honest verdict but does not decide the exit code. The formulas live in hw5jax/theory.py; the
MNIST training (1.2, and 2.3 on the MLP) goes through hw5jax.core.train.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, field

import jax
import matplotlib
import numpy as np
from tqdm import tqdm

from hw5jax import theory as T
from hw5jax.cli import parse_config, run_main
from hw5jax.errors import ConfigError
from hw5jax.runs.files import output_dir, save_figure, write_json, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Config:
    out: str | None = field(
        default=None,
        metadata={"help": "output directory (default runs/theory_checks/<UTC timestamp>/)"},
    )
    data: str = field(default="auto", metadata={"help": "MNIST source for 1.2 and 2.3 (MLP)"})
    l2_epochs: int = field(default=30, metadata={"help": "1.2: epochs (Nielsen's 30)"})
    l2_layers: tuple[int, ...] = field(
        default=(784, 30, 10),
        metadata={"help": "1.2: layers (Nielsen's network for eta=0.5, lam=5, m=10)"},
    )
    mlp_epochs: int = field(default=3, metadata={"help": "2.3 on the MLP: epochs"})
    mlp_eta: float = field(default=0.1, metadata={"help": "2.3 on the MLP: learning rate"})
    seed: int = 0

    def __post_init__(self):
        if self.l2_epochs < 8:
            raise ConfigError(f"--l2-epochs {self.l2_epochs}: needs >= 8 to see the tail-off")
        if self.mlp_epochs < 2:
            raise ConfigError(f"--mlp-epochs {self.mlp_epochs}: needs >= 2")
        if self.mlp_eta <= 0:
            raise ConfigError(f"--mlp-eta {self.mlp_eta}: must be > 0")


def is_heuristic(check: T.Check) -> bool:
    return check.name.endswith("(heuristic)")


# ------------------------------------------------------------------------- training parts


def _kernels(params) -> list[np.ndarray]:
    """The weight matrices of an MLP's parameter state (what L2 penalises)."""
    return [
        np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if any(getattr(k, "key", None) == "kernel" for k in path)
    ]


def run_l2(mnist, config: Config, eta: float = 0.5, lam: float = 5.0, m: int = 10) -> T.ResultL2:
    """Problem 1.2: Nielsen's setting, weights recorded after every epoch."""
    from hw5jax.core.fit import fit
    from hw5jax.core.train import Trainer
    from hw5jax.models.mlp import MLP

    n = len(mnist.train.labels)
    trainer = Trainer(
        functools.partial(
            MLP, layers=config.l2_layers, activation="sigmoid", weight_init="standard"
        ),
        "sgd",
        batch_size=m,
        lam=lam,
        n_train=n,
    )
    # The same initial state `fit` starts from (same seed, same hyperparameters).
    state0 = trainer.init_jit(np.uint32(config.seed), {"learning_rate": np.float32(eta)})
    weights = [_kernels(state0["params"])]
    bar = tqdm(
        total=config.l2_epochs,
        desc="1.2 L2 from N(0,1) init",
        unit="epoch",
        file=sys.stderr,
        leave=False,
    )

    def on_epoch(epoch, state, metrics):
        weights.append(_kernels(state["params"]))
        bar.update()

    result = fit(
        trainer,
        mnist,
        {"learning_rate": eta},
        seed=config.seed,
        epochs=config.l2_epochs,
        on_epoch=on_epoch,
    )
    bar.close()
    return T.analyse_l2(weights, eta, lam, n, m, config.l2_layers, result.history["val_accuracy"])


def run_momentum_mlp(mnist, config: Config, mus=(1.1, -0.5, 0.0, 0.9)) -> T.ResultMomentumMLP:
    """Problem 2.3 on the sweep's MLP: the four mu in one vmapped program."""
    from hw5jax.core.fit import fit_grid
    from hw5jax.core.train import Trainer
    from hw5jax.models.mlp import MLP

    layers = (784, 100, 100, 10)
    trainer = Trainer(
        functools.partial(MLP, layers=layers, activation="sigmoid"),
        "momentum",
        batch_size=128,
        n_train=len(mnist.train.labels),
    )
    bar = tqdm(
        total=config.mlp_epochs,
        desc="2.3 momentum on the MLP",
        unit="epoch",
        file=sys.stderr,
        leave=False,
    )
    runs = fit_grid(
        trainer,
        mnist,
        [{"learning_rate": config.mlp_eta, "momentum": mu} for mu in mus],
        seeds=[config.seed] * len(mus),
        epochs=config.mlp_epochs,
        on_epoch=lambda *_: bar.update(),
    )
    bar.close()
    return T.ResultMomentumMLP(
        eta=config.mlp_eta,
        epochs=config.mlp_epochs,
        layers=layers,
        n_train=len(mnist.train.labels),
        mus=tuple(mus),
        train_cost={
            mu: [float(c) for c in r.history["train_cost"]] for mu, r in zip(mus, runs, strict=True)
        },
        diverged={mu: r.diverged for mu, r in zip(mus, runs, strict=True)},
    )


# ------------------------------------------------------------------------------- figures


def fig_2_2(r: T.Result22):
    x = np.linspace(4.0001, 50, 4000)
    with T.float64():
        y = np.asarray(T.width_formula(x))
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


def fig_2_1(r: T.Result21):
    layers = np.arange(1, r.layers + 1)
    v = r.vanish_log10_grad - r.vanish_log10_grad[:, -1:]
    e = r.explode_log10_grad - r.explode_log10_grad[-1]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.fill_between(
        layers,
        np.percentile(v, 10, 0),
        np.percentile(v, 90, 0),
        alpha=0.25,
        label="N(0,1) weights and biases: 10-90% of chains",
    )
    ax.plot(layers, np.median(v, 0), lw=2, label="N(0,1): median (vanishing)")
    ax.plot(
        layers,
        e,
        lw=2,
        color="C3",
        label=f"w = {r.explode_w:g}, b = -w·a (all z = 0): ×{r.explode_w / 4:g} per layer "
        "(exploding)",
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


def fig_2_3(r: T.Result23):
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
    mu_star, rate_star = T.polyak_optimum(r.kappa)
    a2.plot(r.cond_mus, r.cond_best, "o-", ms=3, label="measured: best η for each μ")
    neg = np.linspace(-0.9, 0, 50)
    a2.plot(
        neg,
        [T.negative_mu_rate(m, r.kappa) for m in neg],
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


def fig_2_3_mlp(r: T.ResultMomentumMLP):
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


def fig_1_2(r: T.ResultL2):
    epochs = np.arange(len(r.rms))
    _, approx = T.decay_per_epoch(r.eta, r.lam, r.n, r.m)
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


def fig_1_1_lam(r: T.Result11):
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


def fig_1_1_eta(r: T.Result11):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6))
    for i, beta in enumerate(r.betas):
        label = "plain GD (β = 0)" if beta == 0 else f"hypergradient descent, β = {beta:g}"
        a1.loglog(r.eta0s, r.hd_final[i] - r.hd_cost_star + 1e-16, "o-", label=label)
    a1.set(
        xlabel="initial learning rate η0",
        ylabel="final cost − min cost (+1e-16)",
        title=f"after {r.hd_steps} steps: sensitivity to η0",
    )
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3, which="both")
    k = int(np.flatnonzero(r.betas == 0.1)[0]) if np.any(r.betas == 0.1) else len(r.betas) - 1
    for j in range(0, len(r.eta0s), 3):
        a2.semilogy(r.hd_etas[k, j], label=f"η0 = {r.eta0s[j]:.2g}")
    a2.set(xlabel="step", ylabel="η_t", title=f"learned η_t (β = {r.betas[k]:g})")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3, which="both")
    fig.suptitle("Problem 1.1(iii): hypergradient descent on η (Baydin et al. 2018)")
    return fig


# --------------------------------------------------------------------------- answer key


def _table(checks: list[T.Check]) -> str:
    rows = ["| check | expected | measured | tolerance | verdict |", "|---|---|---|---|---|"]
    for c in checks:
        verdict = "pass" if c.passed else ("**does not hold**" if is_heuristic(c) else "**FAIL**")
        rows.append(
            f"| {_fmt(c.name)} | {_fmt(c.expected)} | {_fmt(c.measured)} | "
            f"{_fmt(c.tolerance)} | {verdict} |"
        )
    rows.append("")
    rows += [f"- *{c.name}*: {c.claim}" for c in checks]
    return "\n".join(rows)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v).replace("|", "\\|")


def answer_key(
    results: dict, checks: dict[str, list[T.Check]], argv: list[str], wall: float
) -> str:
    r22, r21, r23, rmlp = results["2.2"], results["2.1"], results["2.3"], results["2.3mlp"]
    r12, r11, r51 = results["1.2"], results["1.1"], results["5.1"]
    exact, approx = T.decay_per_epoch(r12.eta, r12.lam, r12.n, r12.m)
    shrink = r12.rms[1:] / r12.rms[:-1]
    tail = T.tail_off_epoch(r12)
    level = r12.rms[tail] if tail is not None else r12.rms[-1]
    target = 1 / math.sqrt(r12.n_weights)
    mu_star, rate_star = T.polyak_optimum(r23.kappa)
    q = (r23.kappa - 1) / (r23.kappa + 1)
    gd_spread = float(np.ptp(r11.hd_final[r11.betas == 0][0]))
    hd_spread = float(np.ptp(r11.hd_final[r11.betas >= 0.05], axis=1).max())
    early = 100 * float(np.max(np.abs(r12.rms[1:3] / r12.rms[:2] / approx - 1)))
    cmd = "python -m experiments.theory_checks " + " ".join(argv)
    d = r12.decomposition
    return f"""# Problems 1, 2 and 5.1, checked numerically — answer key

Produced by `{cmd.strip()}` in {wall:.0f} s. Every number below comes from this run
(`results.json` next to this file); the code is `hw5jax/theory.py`.

## Problem 1.1 — gradient descent on λ and η

**Claim (homework).** Gradient descent on λ drives λ to 0, which defeats regularisation; gradient
descent on η needs its own η, and so on forever ("η's within η's").

**How it was checked.** Logistic regression (one sigmoid neuron, cross-entropy) with d = {r11.d}
features on n = {r11.n} training examples (synthetic, so it overfits), trained by T = {r11.steps}
full-batch gradient-descent steps (η = {r11.eta:g}) written as one differentiable function of λ;
`jax.grad` through the whole unrolled training gives d(cost after T steps)/dλ, confirmed by
forward mode (`jax.jacfwd`) and finite differences.

**Numbers and verdict.**
- (i) The homework is right about the *training* cost: its hypergradient is ≥ 0 at every λ
  (smallest value {min(r11.d_train_C.min(), r11.d_train_C0.min()):.2e}), and descending it takes
  λ from {r11.descent_train_lam[0]:g} to exactly 0 (projected onto λ ≥ 0).
- (ii) But that is only an obstacle if one descends the wrong cost. The hypergradient of the
  *validation* cost changes sign (negative up to λ = {_sign_change(r11)[0]:.3g}, positive from
  λ = {_sign_change(r11)[1]:.3g} on), and
  descending it from λ = 0 reaches λ = {r11.descent_val_lam[-1]:.3g} with validation cost
  {r11.descent_val_cost[-1]:.4f} against {r11.val[0]:.4f} at λ = 0 (grid optimum
  {r11.val.min():.4f}). This is gradient-based hyperparameter optimisation (Maclaurin et al.
  2015). The real obstacles are cost (differentiating through all of training) and that the
  validation cost is noisy and non-convex in λ — not that λ collapses to 0.
- (iii) Hypergradient descent on η (Baydin et al. 2018): η is updated by the derivative of the
  cost with respect to the *last* step's η, -∇C(θ_t)·∇C(θ_(t-1)) (checked against `jax.grad` of
  the one-step look-ahead), here in its multiplicative form η ← η(1 + β cos(g_t, g_(t-1))). Over
  η0 from {r11.eta0s[0]:g} to {r11.eta0s[-1]:g}, plain GD's final cost spreads over
  {gd_spread:.3g}; with β in {[float(b) for b in r11.betas[r11.betas >= 0.05]]} the spread is at
  most {hd_spread:.1e} — every start reaches the minimum
  {r11.hd_cost_star:.4f}. The regress stops after one level because β is dimensionless (η
  changes by at most a factor 1 ± β per step, whatever the problem's scale) and a wide range of β
  works. It does not vanish: β = 0.01 is too timid to fix a bad η0 in {r11.hd_steps} steps
  (see the figure), so the homework's worry is half right — one hyperparameter remains, but a far
  less sensitive one.

{_table(checks["1.1"])}

Figures: `hypergradient_lambda.png`, `hypergradient_eta.png`.

## Problem 1.2 — L2 regularisation from the old N(0,1) initialisation

**How it was checked.** Nielsen's setting: network {"-".join(map(str, r12.layers))} (sigmoid,
cross-entropy), weights and biases N(0,1), plain SGD with η = {r12.eta:g}, λ = {r12.lam:g}, m =
{r12.m}, n = {r12.n}, {len(r12.rms) - 1} epochs, trained by `hw5jax.core.train`; the weights are
recorded after every epoch. Each epoch's change splits exactly into a decay part
D = (d^(n/m) − 1)w and a gradient part G = w_next − d^(n/m)w, with d = 1 − ηλ/n.

**(a) Dominated by weight decay — holds, for a different reason than the homework gives.** Over
epochs 1–2 the decay accounts for {100 * r12.first_two.decay_share:.1f}% of the weights' shrink.
The homework argues the gradient term is negligible because "η is very small": here η = 0.5 and
the gradient part is *not* small ({r12.first_two.grad_to_decay:.2f}× the decay part's size in
epochs 1-2; {d[0].grad_to_decay:.2f}× in epoch 1) — it is nearly orthogonal to w, so it rotates
the weights while the decay shrinks them. The reason decay wins is that with N(0,1) weights the
weights are far larger than the cost needs (and the hidden sigmoids are saturated), so C0 gives
no systematic pull on their size.

**(b) exp(−ηλ/m) per epoch — holds in the first epochs.** n/m steps of (1 − ηλ/n) give
{exact:.6f}, and exp(−ηλ/m) = {approx:.6f} (the homework's Taylor argument is right, given
ηλ ≪ n). Measured per-epoch shrink of the RMS weight: {", ".join(f"{s:.3f}" for s in shrink[:6])},
… — within {early:.1f}% of {approx:.4f} for two epochs, then rising towards 1 as the gradient
term starts
to resist.

**(c) Tails off around 1/√n — the tail-off is real, the level is not.** The decay tails off at
epoch {tail} (shrink > 0.98 per epoch) and the RMS then stays at {level:.3f}. The heuristic's
1/√n with n = {r12.n_weights} weights is {target:.5f}: **off by a factor {level / target:.0f}**.
Per layer against the "new" initialisation scale 1/√n_in: {_layers(r12, tail)}. So L2 does bring
N(0,1) weights down by a large factor, but not to the level of the 1/√n_in initialisation, let
alone 1/√n; and the output layer's weights *grow*. The homework's derivation sets C0 = 0 and all
weights equal, and gets w ∝ 1/√n only as a scaling at fixed total penalty (it also writes λ/2m
for λ/2n and puts the 1/√n inside the square root): it says nothing about where the decay
*stops*, which is where λw/n balances the typical ∂C0/∂w — a property of the data and network,
not of n alone.

{_table(checks["1.2"])}

Figure: `l2_weight_rms.png`.

## Problem 2.1 — would an activation with a larger derivative avoid unstable gradients?

**Homework's answer: no — vanishing turns into exploding.** Right, and the numbers show why:
in a chain of one-neuron layers jax.grad's ∂C/∂b_j equals w_(j+1)σ'(z_j)·∂C/∂b_(j+1) exactly (max
relative error {r21.vanish_factor_err:.1e}), so the gradient at layer 1 is a product of L − 1
factors |wσ'(z)|. With N(0,1) weights their geometric mean is {r21.vanish_geomean_factor:.3f}
(≤ exp(E ln|w|)/4 = {r21.vanish_bound:.3f}), so over {r21.layers} layers the gradient at layer 1
is a median 10^{np.median(r21.vanish_log10_grad[:, 0] - r21.vanish_log10_grad[:, -1]):.0f} of the
last layer's. With w = {r21.explode_w:g} and biases keeping every z = 0 each factor is exactly
{r21.explode_w / 4:g} and the gradient grows by 10^{r21.explode_log10_factor:.3f} per layer. A
larger σ' only moves the factors; the product of many factors is stable only if they stay
balanced near 1 — which is the real answer ("unstable", not just "exploding"). Even the balanced
exploding chain is fragile: any error ε in z_1 itself grows like (w/4)^j on the way forward.

{_table(checks["2.1"])}

Figure: `unstable_gradients.png`.

## Problem 2.2 — |wσ'(wa+b)| ≥ 1

**(a) Needs |w| ≥ 4 — right** (with ≤, not the homework's strict "< 1/4": σ'(0) = 1/4 is
attained). Newton on σ''(z) = 0 (jax.grad) finds z* = 0 and σ'(z*) = {r22.sigma_prime_max:.15g}; so
max_a |wσ'(wa+b)| = |w|/4 exactly (measured on {len(r22.gain_w)} values of w), below 1 for
|w| < 4 and above for |w| > 4. The homework's last line drops the absolute value ("w ≥ 4").

**(b) The width formula — right, but the derivation's last step needs a reason.** The two ends
of the interval, found by a root finder driven by jax.grad for 4 < |w| ≤ 50, both signs of w and
b ∈ {list(map(float, r22.width_b))}, give widths equal to the formula to
{checks["2.2"][2].measured:.1e}, independent of b to {checks["2.2"][3].measured:.1e}. The
homework doubles the "+" root "because of the ±"; the actual reason is that the two roots
y± = e^(-z) of y² + (2 − |w|)y + 1 = 0 multiply to 1, so ln y₋ = −ln y₊ and the z-interval
[−ln y₊, ln y₊] has width 2 ln y₊; dividing by |w| turns z-width into a-width. And "no greater
than" is in fact "exactly".

**(c) Maximum ≈ 0.45 at |w| ≈ 6.9 — right.** Newton on d(width)/d|w| gives |w|* =
{r22.w_star:.4g}, width {r22.width_star:.4g} (second derivative {r22.width_curvature:.4f} < 0; a
dense grid agrees). So even at the best |w| only inputs in a window 0.45 wide avoid shrinking the
gradient.

{_table(checks["2.2"])}

Figure: `width_vs_w.png`.

## Problem 2.3 — momentum with μ > 1 and μ < 0

**How it was checked.** On C(w) = hw²/2, one step of v' = μv − η∇C, w' = w + v' is linear in
(w, v) with matrix A = [[1−ηh, μ], [−ηh, μ]] (from `jax.jacobian`), det A = μ,
tr A = 1 + μ − ηh. The spectral radius ρ over a {len(r23.mus)}×{len(r23.eta_hs)} grid of (μ, ηh)
was compared with simulated runs, then measured on the MLP.

**Verdict.**
- μ > 1: **the homework's conclusion is right, its mechanism is not quite.** It diverges for every
  η > 0 — det A = μ > 1 forces ρ ≥ √μ > 1 (min over the grid {
        r23.rho[
            (r23.mus[:, None] > 1) & (r23.eta_hs[None, :] > 0)
        ].min():.4f}). The cause is not "steps in the gradient direction get
  larger" but negative friction: even at the minimum a nonzero velocity is multiplied by μ every
  step.
- μ ≤ −1: never converges (|det| ≥ 1 ⇒ ρ ≥ 1).
- −1 < μ < 0: **the homework's answer is wrong.** It does converge, exactly when
  0 < ηh < 2(1+μ) (the grid agrees with that triangle at every point). What goes wrong is milder:
  the velocity reverses each step (over-damping), the stable range of η shrinks from ηh < 2 to
  ηh < 2(1+μ), and the best rate gets worse — on one curvature it is √(−μ) at ηh = 1 + μ (vs 0 for
  μ = 0), and for condition number κ = {r23.kappa:g} the best worst-case rate is
  ((1+μ)q + √((1+μ)²q² − 4μ))/2 > q = {q:.4f} (plain GD), against Polyak's μ* = {mu_star:.4f} with
  {rate_star:.4f}. The homework's "speeds up when the gradient is small, slows down when it is
  large" is not what the iteration does: for small ηh momentum simply rescales the step to
  η/(1 − μ), so μ < 0 is gradient descent with a *smaller* learning rate.
- On the MLP ({"-".join(map(str, rmlp.layers))}, sigmoid, η = {rmlp.eta:g}, {rmlp.epochs} epochs):
  final training costs {", ".join(f"μ = {mu:g}: {_cost(rmlp, mu)}" for mu in rmlp.mus)} — μ = 1.1
  diverges, μ = −0.5 trains but more slowly than μ = 0, μ = 0.9 fastest, as the quadratic
  predicts.

{_table(checks["2.3"])}

Figures: `momentum_spectral_radius.png`, `momentum_mlp.png`.

## Problem 5.1 — backpropagation through conv → max-pool → dense

The network: x (4×4) → z^c = W ⋆ x + b_c (2×2 filter, stride 1, 3×3; ⋆ is cross-correlation, what
libraries call convolution) → a^c = σ(z^c) → m = 2×2 max-pool, stride 1 (2×2) → z^L = W^L vec(m) +
b^L (2) → a^L = σ(z^L), C = ‖a^L − y‖²/2. The correct equations:

1. δ^L = (a^L − y) ⊙ σ'(z^L);  ∂C/∂W^L = δ^L vec(m)ᵀ,  ∂C/∂b^L = δ^L  (unchanged from BP1, BP3, BP4)
2. ∂C/∂m = (W^L)ᵀ δ^L — **no σ' factor**: the pooled values feed z^L directly.
3. Max-pool: ∂C/∂a^c = Rᵀ ∂C/∂m, where R (4×9) has R_ku = 1 iff conv unit u is the argmax of
   window k. With stride 1 the windows overlap, so a unit that is the max of several windows
   receives the **sum** of their δ's; units that are no window's max receive 0.
4. δ^conv = (Rᵀ ∂C/∂m) ⊙ σ'(z^c)  (3×3).
5. ∂C/∂W_pq = Σ_ij x_(i+p)(j+q) δ^conv_ij — the valid cross-correlation of the input with δ^conv
   (9 terms per weight, of which only the argmax units are non-zero); ∂C/∂b_c = Σ_ij δ^conv_ij;
   and for a layer below, ∂C/∂x = the full convolution of δ^conv with W.

Checked against jax.grad on {r51.n} random networks and inputs in float64: max abs error
{r51.max_abs_err:.1e}. **Where the homework differs:**
- its δ^pool = ((W^L)ᵀ δ^L) ⊙ σ'(z^pool) applies σ' twice (once at the pool, again in δ^conv);
  coded literally it is off by a median {np.median(r51.homework_rel_err):.0%} relative error;
- its "W_pool" is 4×4, but the routing matrix maps 4 pooled units to 9 conv units (4×9; its
  transpose spreads δ^pool over the 3×3 map); the "4×1 δ^conv matches the 4×1 filter" remark is a
  coincidence, not a rule: the filter gradient is a 2×2 correlation over the 3×3 δ^conv;
- its ∂C/∂v_11 = δ₁^pool · δ₁^conv multiplies two deltas; the derivative is ∂C/∂m_rs routed to
  the argmax (then times σ'(z^c));
- overlapping windows must add: in {100 * r51.shared_argmax.mean():.0f}% of random inputs one unit
  is the max of 2+ windows, and routing by assignment instead of summing is off by a median
  {np.median(r51.overwrite_rel_err[r51.shared_argmax]):.0%} there. The homework's own example
  shows it: V = [[3,2,5],[4,1,7],[3,5,0]] pools to M = [[4,7],[5,7]] and the 7 wins two windows;
- right as written: δ^L (BP1), and applying σ' at the argmax is the same as at the pooled value
  (σ is monotone, so max-pooling commutes with it).

{_table(checks["5.1"])}
"""


def _sign_change(r: T.Result11) -> tuple[float, float]:
    """The grid interval where d(validation)/dλ first changes sign."""
    i = np.flatnonzero(np.diff(np.sign(r.d_val)) != 0)
    return (float(r.lams[i[0]]), float(r.lams[i[0] + 1])) if i.size else (math.nan, math.nan)


def _layers(r: T.ResultL2, tail: int | None) -> str:
    e = tail if tail is not None else -1
    return "; ".join(
        f"layer {i + 1}: {r.layer_rms[e, i]:.3f} vs {1 / math.sqrt(n):.3f} "
        f"({r.layer_rms[e, i] * math.sqrt(n):.1f}×)"
        for i, n in enumerate(r.layers[:-1])
    )


def _cost(r: T.ResultMomentumMLP, mu: float) -> str:
    c = r.train_cost[mu][-1]
    return "diverged" if (r.diverged[mu] or not math.isfinite(c)) else f"{c:.4f}"


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(Config, argv, description=__doc__, prog="experiments.theory_checks")
    from hw5jax.data import load_mnist

    mnist = load_mnist(config.data)  # bad --data fails before anything is computed or written
    out = output_dir(config.out, "theory_checks")
    start = time.perf_counter()
    results: dict = {}
    checks: dict[str, list[T.Check]] = {}
    stages = [
        ("2.2", lambda: T.measure_2_2(), T.checks_2_2),
        ("2.1", lambda: T.measure_2_1(seed=config.seed), T.checks_2_1),
        ("2.3", lambda: T.measure_2_3(), T.checks_2_3),
        ("5.1", lambda: T.measure_5_1(seed=config.seed), T.checks_5_1),
        ("1.1", lambda: T.measure_1_1(seed=config.seed), T.checks_1_1),
        ("1.2", None, T.checks_1_2),
        ("2.3mlp", None, T.checks_2_3_mlp),
    ]
    with tqdm(stages, desc="theory checks", unit="part", file=sys.stderr) as bar:
        for key, measure, check in bar:
            bar.set_postfix_str(key)
            if key == "1.2":
                results[key] = run_l2(mnist, config)
            elif key == "2.3mlp":
                results[key] = run_momentum_mlp(mnist, config)
            else:
                results[key] = measure()
            checks[key] = check(results[key])
    checks["2.3"] = checks["2.3"] + checks.pop("2.3mlp")

    figures = {
        "width_vs_w.png": fig_2_2(results["2.2"]),
        "unstable_gradients.png": fig_2_1(results["2.1"]),
        "momentum_spectral_radius.png": fig_2_3(results["2.3"]),
        "momentum_mlp.png": fig_2_3_mlp(results["2.3mlp"]),
        "l2_weight_rms.png": fig_1_2(results["1.2"]),
        "hypergradient_lambda.png": fig_1_1_lam(results["1.1"]),
        "hypergradient_eta.png": fig_1_1_eta(results["1.1"]),
    }
    for name, fig in figures.items():
        save_figure(fig, out / name)

    order = ["1.1", "1.2", "2.1", "2.2", "2.3", "5.1"]
    flat = [c for key in order for c in checks[key]]
    wall = time.perf_counter() - start
    write_json(
        out / "results.json",
        {
            "experiment": "theory_checks",
            "checks": [c.as_dict() for c in flat],
            "wall_seconds": round(wall, 2),
        },
    )
    write_text(out / "theory.md", answer_key(results, checks, argv, wall))

    failed = [c for c in flat if not c.passed and not is_heuristic(c)]
    heuristic = [c for c in flat if not c.passed and is_heuristic(c)]
    for c in flat:
        mark = "ok  " if c.passed else ("HEUR" if is_heuristic(c) else "FAIL")
        print(f"{mark} {c.problem:9s} {c.name}: measured {_fmt(c.measured)}", file=sys.stderr)
    print(
        f"{len(flat) - len(failed) - len(heuristic)}/{len(flat)} checks passed, "
        f"{len(heuristic)} heuristic(s) do not hold, {len(failed)} failed; "
        f"{wall:.0f} s",
        file=sys.stderr,
    )
    print(out / "results.json")
    return 1 if failed else 0


if __name__ == "__main__":

    def _main(argv):
        code = main(argv)
        if code:
            sys.exit(code)

    run_main(_main)

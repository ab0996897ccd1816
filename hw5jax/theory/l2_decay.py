"""Problem 1.2: L2 regularisation starting from the old N(0, 1) initialisation.

(a) the first epochs are dominated by weight decay; (b) each epoch shrinks the weights by
exp(-ηλ/m); (c) the decay tails off. Where it tails off is assessed as a heuristic in two
readings, over several seeds: the homework's "around 1/√n" (n: all weights of the network) and
the reading that links the exercise to the 1/√n_in initialisation (each layer's weights against
1/√n_in of that layer).
The MNIST training itself is the theory_checks pipeline's (`hw5jax.pipelines.theory_checks`);
this module analyses the per-epoch weights it records.

    runs = L2DecaySeeds((analyse_l2_decay(weights, eta, lam, n, m, layers, val_accuracy),))
    checks = check_l2_decay(runs)       # runs[0]: (a, b, tail-off); every run: the levels
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from hw5jax.theory.checks import Check


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
    """Problem 1.2(a): one epoch's change of the weights split into decay and gradient."""

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
class L2DecayResult:
    """Problem 1.2, measured: RMS weights after every epoch (all, per layer) and each epoch's
    decay/gradient decomposition, for SGD with L2 from N(0, 1) weights."""

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


def analyse_l2_decay(
    weights: Sequence[Sequence[np.ndarray]],
    eta: float,
    lam: float,
    n: int,
    m: int,
    layers: Sequence[int],
    val_accuracy: Sequence[float],
) -> L2DecayResult:
    """weights[e]: the weight matrices after epoch e (e = 0: at initialisation)."""
    flat = [np.concatenate([np.ravel(w) for w in ws]).astype(np.float64) for ws in weights]
    return L2DecayResult(
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


def tail_off_epoch(r: L2DecayResult, threshold: float = 0.98) -> int | None:
    """First epoch whose RMS shrink factor exceeds `threshold` (the decay has tailed off:
    at most 2% per epoch, against exp(-eta lam/m) for pure decay)."""
    shrink = r.rms[1:] / r.rms[:-1]
    above = np.flatnonzero(shrink > threshold)
    return int(above[0]) + 1 if above.size else None


@dataclasses.dataclass(frozen=True)
class L2DecaySeeds:
    """Problem 1.2 over several seeds: the same training, one `L2DecayResult` per seed (the
    first is the one (a), (b) and the tail-off check and the figure read)."""

    seeds: tuple[int, ...]
    runs: tuple[L2DecayResult, ...]

    @property
    def primary(self) -> L2DecayResult:
        return self.runs[0]


@dataclasses.dataclass(frozen=True)
class TailLevels:
    """Problem 1.2(c): where the decay stopped, per seed: the RMS at the tail-off epoch (the
    last epoch if it never tails off) of all weights, and of each weight matrix against 1/√n_in."""

    tails: list[int | None]  # per seed
    level: np.ndarray  # float[S]  RMS of all weights
    target: float  # 1/sqrt(number of weights)
    layer_level: np.ndarray  # float[S, L]  RMS per weight matrix
    layer_target: np.ndarray  # float[L]  1/sqrt(n_in) per weight matrix

    @property
    def ratio(self) -> np.ndarray:  # float[S]
        return self.level / self.target

    @property
    def layer_ratio(self) -> np.ndarray:  # float[S, L]
        return self.layer_level / self.layer_target[None, :]


def tail_levels(runs: L2DecaySeeds) -> TailLevels:
    tails = [tail_off_epoch(r) for r in runs.runs]
    at = [t if t is not None else -1 for t in tails]
    first = runs.primary
    return TailLevels(
        tails=tails,
        level=np.array([r.rms[e] for r, e in zip(runs.runs, at, strict=True)]),
        target=1.0 / math.sqrt(first.n_weights),
        layer_level=np.array([r.layer_rms[e] for r, e in zip(runs.runs, at, strict=True)]),
        layer_target=1.0 / np.sqrt(np.asarray(first.layers[:-1], dtype=float)),
    )


def within_factor(ratio: np.ndarray, factor: float) -> bool:
    """Every ratio in [1/factor, factor]."""
    return bool(np.all((1 / factor <= ratio) & (ratio <= factor)))


def check_l2_decay(runs: L2DecaySeeds, heuristic_factor: float = 3.0) -> list[Check]:
    """1.2(a, b): the first epochs' shrink is the decay's; 1.2(c): where it tails off (the
    first seed). The two 1.2(c) level checks are heuristics assessed honestly, over every
    seed: all weights' RMS at the tail-off against 1/sqrt(n_weights), and each layer's RMS
    against 1/sqrt(n_in); each passes only if every seed (and layer) is within
    `heuristic_factor`, a criterion fixed in advance."""
    r = runs.primary
    exact, approx = decay_per_epoch(r.eta, r.lam, r.n, r.m)
    shrink = r.rms[1:] / r.rms[:-1]
    first = float(np.sqrt(shrink[0] * shrink[1]))
    tail = tail_off_epoch(r)
    late = r.rms[-5:]
    levels = tail_levels(runs)
    k = len(runs.runs)
    seeds = ", ".join(map(str, runs.seeds))
    setting = (
        f"η = {r.eta:g}, λ = {r.lam:g}, m = {r.m}, n = {r.n}, N(0,1) init, "
        f"{'-'.join(map(str, r.layers))} sigmoid + cross-entropy"
    )
    per_seed = ", ".join(
        f"{lv:.4f} (×{q:.1f}, epoch {t})"
        for lv, q, t in zip(levels.level, levels.ratio, levels.tails, strict=True)
    )
    layer_ratio = levels.layer_ratio
    per_layer = "; ".join(
        f"layer {i + 1} ({n_in} inputs): RMS {levels.layer_level[:, i].mean():.3f} vs "
        f"1/√{n_in} = {levels.layer_target[i]:.3f}, ×{layer_ratio[:, i].min():.1f}"
        f"-{layer_ratio[:, i].max():.1f}"
        for i, n_in in enumerate(r.layers[:-1])
    )
    worst = float(layer_ratio.flat[int(np.argmax(np.abs(np.log(layer_ratio))))])
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
            f"the gradient term is {r.first_two.grad_to_decay:.2f}× the decay's size; "
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
            f"{setting}, seeds {seeds}: at the tail-off the RMS of all weights is {per_seed} "
            f"against 1/√n = {levels.target:.5f} for n = {r.n_weights} weights; passes only if "
            f"every seed is within a factor {heuristic_factor:g}, fixed before measuring; "
            f"measured: the mean RMS over the {k} seeds",
            expected=levels.target,
            measured=float(levels.level.mean()),
            tolerance=f"factor {heuristic_factor:g}",
            passed=within_factor(levels.ratio, heuristic_factor),
        ),
        Check(
            "1.2(c)",
            "tail-off level ~ 1/sqrt(n_in) per layer (heuristic)",
            f"{setting}, seeds {seeds}: each weight matrix's RMS at the tail-off against the "
            f"1/√n_in initialisation of that layer ({per_layer}; the range is over seeds); "
            f"passes only if every layer of every seed is within a factor "
            f"{heuristic_factor:g}; measured: the ratio RMS·√n_in farthest from 1",
            expected=1.0,
            measured=worst,
            tolerance=f"factor {heuristic_factor:g}",
            passed=within_factor(layer_ratio, heuristic_factor),
        ),
    ]

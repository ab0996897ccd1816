"""Every check of experiments/theory_checks.py (Problems 1, 2, 5.1) as a test, at smaller sizes
where the claim still holds. Expensive measurements are shared through module-scoped fixtures;
the MNIST parts use a subset and skip if MNIST has not been fetched (`make setup`)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from hw5jax.configs.theory import TheoryConfig
from hw5jax.theory import (
    conv_backprop,
    hyperparameter_gradients,
    l2_decay,
    momentum,
    sigmoid_gain,
    unstable_gradients,
)
from hw5jax.theory.checks import Check, float64


def _assert_passed(check: Check) -> None:
    assert check.passed, (
        f"{check.problem} {check.name}: expected {check.expected}, measured "
        f"{check.measured} (tolerance {check.tolerance})\n{check.claim}"
    )


def _by_name(checks: list[Check], name: str) -> Check:
    (check,) = [c for c in checks if c.name == name]
    return check


# ------------------------------------------------------------------------------ Problem 2.2


@pytest.fixture(scope="module")
def gain_result() -> sigmoid_gain.SigmoidGainResult:
    return sigmoid_gain.measure_sigmoid_gain(n_width=40, bs=(-2.0, 0.0, 1.5))


@pytest.mark.parametrize(
    "name",
    [
        "max of sigma' from sigma''=0",
        "|w sigma'(wa+b)| >= 1 iff |w| >= 4",
        "width formula",
        "width independent of b",
        "argmax of the width",
        "maximum width",
    ],
)
def test_2_2(gain_result, name):
    _assert_passed(_by_name(sigmoid_gain.check_sigmoid_gain(gain_result), name))


def test_2_2_gain_check_fails_when_a_small_w_reaches_one(gain_result):
    """The |w| >= 4 check reads the grid maximum, not the Newton peak: a grid that reached 1
    at some |w| < 4 (as if σ' peaked at 0.3) fails it, and so does one that never reaches 1."""
    name = "|w sigma'(wa+b)| >= 1 iff |w| >= 4"
    steeper = dataclasses.replace(gain_result, gain_grid_max=gain_result.gain_grid_max * 1.2)
    assert not _by_name(sigmoid_gain.check_sigmoid_gain(steeper), name).passed
    flatter = dataclasses.replace(gain_result, gain_grid_max=gain_result.gain_grid_max * 0.9)
    assert not _by_name(sigmoid_gain.check_sigmoid_gain(flatter), name).passed


def test_2_2_root_finder_finds_both_ends():
    """The two ends really are roots of |wσ'(wa+b)| = 1, on both sides of the peak."""
    with float64():
        w, b = np.array([5.0, -12.0, 40.0]), np.array([0.3, -1.0, 4.0])
        _, lo, hi = sigmoid_gain.measured_width(w, b)
        for end in (lo, hi):
            np.testing.assert_allclose(np.asarray(sigmoid_gain.gain(end, w, b)), 1.0, atol=1e-12)
        assert np.all(np.asarray(lo) < -b / w) and np.all(-b / w < np.asarray(hi))


def test_2_2_stays_local_to_float64(gain_result):
    assert gain_result.width_measured.dtype == np.float64
    assert not jax.config.jax_enable_x64


# ------------------------------------------------------------------------------ Problem 2.1


@pytest.fixture(scope="module")
def chain_result() -> unstable_gradients.UnstableGradientsResult:
    return unstable_gradients.measure_unstable_gradients(layers=12, chains=300)


@pytest.mark.parametrize(
    "name",
    ["chain rule per layer", "vanishing with N(0,1) weights", "exploding with large weights"],
)
def test_2_1(chain_result, name):
    _assert_passed(_by_name(unstable_gradients.check_unstable_gradients(chain_result), name))


def test_2_1_exploding_check_fails_when_z_is_not_small():
    """With |z| of order 5 the factor |wσ'(z)| drops below 1 even for |w| ~ 60: the chains
    no longer explode, and the check says so (its prediction, from the distributions, agrees)."""
    r = unstable_gradients.measure_unstable_gradients(layers=12, chains=300, explode_z_scale=5.0)
    check = _by_name(unstable_gradients.check_unstable_gradients(r), "exploding with large weights")
    assert check.expected < 1 and not check.passed


def test_2_1_exploding_check_fails_on_a_wrong_prediction(chain_result):
    """A measured factor 20% off the distributions' prediction fails (synthetic result)."""
    off = dataclasses.replace(
        chain_result, explode_log_factor=chain_result.explode_log_factor_expected + math.log(1.2)
    )
    check = _by_name(
        unstable_gradients.check_unstable_gradients(off), "exploding with large weights"
    )
    assert not check.passed


def test_2_1_balanced_chain_gradient_is_the_chain_gradient():
    """∂C/∂δ of the balanced chain equals jax.grad of `chain_cost` at its biases, and every z
    is the one asked for (few layers, where a second forward pass does not drift)."""
    with float64():
        rng = np.random.default_rng(1)
        w = rng.uniform(5, 10, 6) * rng.choice([-1, 1], 6)
        eps = rng.normal(0, 0.5, 6)
        grad, z = jax.grad(unstable_gradients.balanced_chain_cost, has_aux=True)(
            np.zeros(6), w, eps, 0.3
        )
        np.testing.assert_allclose(np.asarray(z), eps, atol=1e-12)
        b = np.asarray(eps) - np.asarray(w) * np.concatenate(
            [[0.3], np.asarray(jax.nn.sigmoid(np.asarray(z)))[:-1]]
        )
        np.testing.assert_allclose(
            np.asarray(jax.grad(unstable_gradients.chain_cost)(b, w, 0.3)),
            np.asarray(grad),
            rtol=1e-8,
        )


def test_2_1_vanishing_check_fails_when_layer_one_is_not_smaller(chain_result):
    """The vanishing check compares layer 1's bias gradient with layer L's: chains whose first
    layer's gradient is the larger fail it even with the same per-layer factor."""
    flipped = dataclasses.replace(
        chain_result, vanish_log10_grad=chain_result.vanish_log10_grad[:, ::-1]
    )
    check = _by_name(
        unstable_gradients.check_unstable_gradients(flipped), "vanishing with N(0,1) weights"
    )
    assert not check.passed


# ------------------------------------------------------------------------------ Problem 2.3


@pytest.fixture(scope="module")
def quadratic_result() -> momentum.MomentumQuadraticResult:
    return momentum.measure_momentum_quadratic(n_mu=61, n_eta=91, kappa=50.0)


@pytest.mark.parametrize(
    "name",
    [
        "iteration matrix and det = mu",
        "mu > 1 diverges for every eta > 0",
        "mu <= -1 never converges",
        "convergence region",
        "simulated runs match the spectral radius",
        "mu in (-1,0): best rate on one curvature",
        "mu in (-1,0) never beats mu = 0",
        "optimal mu for condition number",
    ],
)
def test_2_3(quadratic_result, name):
    _assert_passed(_by_name(momentum.check_momentum_quadratic(quadratic_result), name))


def test_2_3_optimal_mu_is_searched_not_inserted(quadratic_result):
    """Polyak's mu* is not on the figure's mu grid; the check's mu comes from the search, and
    a claimed optimum for another condition number (a wrong claim) fails."""
    mu_star, _ = momentum.polyak_optimum(quadratic_result.kappa)
    assert np.min(np.abs(quadratic_result.cond_mus - mu_star)) > 1e-4
    name = "optimal mu for condition number"
    assert abs(quadratic_result.search_mu - mu_star) < 1e-3
    wrong = dataclasses.replace(quadratic_result, kappa=2 * quadratic_result.kappa)
    assert not _by_name(momentum.check_momentum_quadratic(wrong), name).passed


def _mlp(costs: dict[float, list[float]], diverged: dict[float, bool] | None = None):
    mus = (1.1, -0.5, 0.0, 0.9)
    return momentum.MomentumMLPResult(
        eta=0.1,
        epochs=3,
        layers=(784, 100, 100, 10),
        n_train=1000,
        mus=mus,
        train_cost=costs,
        diverged=diverged or {mu: False for mu in mus},
    )


GOOD_COSTS = {
    1.1: [3.0, 1e3, 1e9],
    -0.5: [2.2, 1.6, 0.94],
    0.0: [2.1, 1.1, 0.63],
    0.9: [0.8, 0.3, 0.2],
}


def test_2_3_mlp_checks_on_synthetic_results():
    """The MLP checks pass on costs that behave as claimed and fail on each wrong claim: a
    mu = 1.1 run whose cost merely fails to fall is no divergence; a mu = -0.5 run that does
    not fall at every epoch, or is faster than mu = 0 in some epoch, fails."""
    names = [
        "MLP: mu = 1.1 diverges",
        "MLP: mu = -0.5 converges, more slowly than mu = 0",
        "MLP: mu = 0.9 converges faster than mu = 0",
    ]
    for name in names:
        _assert_passed(_by_name(momentum.check_momentum_mlp(_mlp(GOOD_COSTS)), name))
    nan = GOOD_COSTS | {1.1: [5.0, float("nan"), float("nan")]}
    _assert_passed(_by_name(momentum.check_momentum_mlp(_mlp(nan)), names[0]))
    stalled = GOOD_COSTS | {1.1: [2.3, 2.4, 2.5]}  # not falling, but no blow-up
    assert not _by_name(momentum.check_momentum_mlp(_mlp(stalled)), names[0]).passed
    bumpy = GOOD_COSTS | {-0.5: [2.2, 2.3, 0.94]}  # ends lower than it started only
    assert not _by_name(momentum.check_momentum_mlp(_mlp(bumpy)), names[1]).passed
    fast_early = GOOD_COSTS | {-0.5: [2.0, 1.6, 0.94]}  # below mu = 0 in epoch 1
    assert not _by_name(momentum.check_momentum_mlp(_mlp(fast_early)), names[1]).passed
    slow = GOOD_COSTS | {0.9: [2.5, 1.0, 0.5]}
    assert not _by_name(momentum.check_momentum_mlp(_mlp(slow)), names[2]).passed


def test_2_3_spectral_radius_closed_form_matches_eigvals(quadratic_result):
    np.testing.assert_allclose(quadratic_result.rho_closed, quadratic_result.rho, atol=1e-7)


def test_2_3_region_check_catches_a_wrong_boundary(quadratic_result):
    """The region check can fail: a wrong rule (the homework's "mu < 0 fails") disagrees."""
    mm, ee = np.meshgrid(quadratic_result.mus, quadratic_result.eta_hs, indexing="ij")
    wrong = (mm >= 0) & (mm < 1) & (ee > 0) & (ee < 2 * (1 + mm))
    assert np.sum((quadratic_result.rho < 1) != wrong) > 100


# ------------------------------------------------------------------------------ Problem 5.1


@pytest.fixture(scope="module")
def conv_result() -> conv_backprop.ConvBackpropResult:
    return conv_backprop.measure_conv_backprop(n=400)


@pytest.mark.parametrize(
    "name",
    [
        "hand backprop = jax.grad",
        "homework's extra sigma' is wrong",
        "overlapping windows must add",
        "homework's pooling example",
    ],
)
def test_5_1(conv_result, name):
    _assert_passed(_by_name(conv_backprop.check_conv_backprop(conv_result), name))


def test_5_1_hand_backprop_sees_a_perturbed_weight():
    """Perturbing one dense weight changes the hand-derived gradients as jax.grad's do."""
    params, x, y = conv_backprop.random_conv_problems(5, seed=3)
    before = conv_backprop.conv_net_backprop(params, x, y)
    params["W_L"][:, 0, 0] += 0.5
    hand, auto = (
        conv_backprop.conv_net_backprop(params, x, y),
        conv_backprop.conv_net_autodiff(params, x, y),
    )
    for k in auto:
        np.testing.assert_allclose(hand[k], auto[k], rtol=1e-9, atol=1e-12)
    # ... and they did change: every example's gradients moved well beyond rounding.
    moved = conv_backprop.relative_error(hand, before)
    assert np.all(moved > 1e-3), moved


# ------------------------------------------------------------------------------ Problem 1.1


@pytest.fixture(scope="module")
def hyper_result() -> hyperparameter_gradients.HypergradientResult:
    return hyperparameter_gradients.measure_hypergradients(
        steps=200, n_grid=13, outer_iters=30, n_eta0=7, betas=(0.0, 0.1, 0.2)
    )


@pytest.mark.parametrize(
    "name",
    [
        "hypergradient = forward mode = finite differences",
        "training-cost hypergradient >= 0",
        "descending the training cost drives lam to 0",
        "validation hypergradient changes sign",
        "descending the validation cost finds lam > 0",
        "one-step hypergradient",
        "hypergradient descent on eta is insensitive to eta0",
    ],
)
def test_1_1(hyper_result, name):
    _assert_passed(_by_name(hyperparameter_gradients.check_hypergradients(hyper_result), name))


def test_1_1_plain_gd_is_sensitive_to_eta0(hyper_result):
    """The contrast the (iii) check relies on: plain GD's final cost varies a lot with eta0."""
    gd = hyper_result.eta_descent_final[hyper_result.betas == 0][0]
    assert gd[0] - gd[-1] > 0.1


# ------------------------------------------------------------- MNIST parts (1.2, 2.3 on MLP)


_TRAINED: dict[str, Any] = {}


def _once(key: str, make: Callable[[], Any]) -> Any:
    """The MNIST parts train once per test run: conftest's `mnist` (which skips if MNIST has
    not been fetched) is a per-test fixture, so the results are kept here instead."""
    if key not in _TRAINED:
        _TRAINED[key] = make()
    return _TRAINED[key]


@pytest.fixture
def mnist_subset(mnist):
    """10k training examples of the real MNIST (conftest's `mnist` skips if not fetched)."""
    from hw5jax.data import MNIST, Split

    def head(split, n):
        return Split(split.images[:n], split.labels[:n])

    return _once(
        "subset",
        lambda: MNIST(head(mnist.train, 10_000), head(mnist.val, 2_000), head(mnist.test, 2_000)),
    )


@pytest.fixture
def l2_result(mnist_subset) -> l2_decay.L2DecaySeeds:
    from hw5jax.pipelines.theory_checks import train_l2_decay

    return _once(
        "1.2", lambda: train_l2_decay(mnist_subset, TheoryConfig(l2_epochs=24, l2_seeds=3))
    )


@pytest.mark.mnist
@pytest.mark.parametrize(
    "name",
    [
        "n/m steps of (1 - eta lam/n) = exp(-eta lam/m)",
        "first epochs shrink by exp(-eta lam/m)",
        "first epochs are dominated by weight decay",
        "the decay tails off",
    ],
)
def test_1_2(l2_result, name):
    _assert_passed(_by_name(l2_decay.check_l2_decay(l2_result), name))


@pytest.mark.mnist
def test_1_2_heuristics_are_reported_over_seeds(l2_result):
    """Both 1.2(c) readings are reported over the 3 seeds: on 10k examples, as on the full
    set, all weights end far above 1/sqrt(n), each layer nearer its 1/sqrt(n_in)."""
    assert len(l2_result.runs) == 3
    levels = l2_decay.tail_levels(l2_result)
    assert np.all(levels.ratio > 3) and levels.layer_ratio.max() < levels.ratio.min()


def _synthetic_l2(layer_levels: list[float], seeds: int = 3) -> l2_decay.L2DecaySeeds:
    """Weights of a 100-10-10 network that decay by exactly exp(-ηλ/m) per epoch from N(0, 1)
    until each layer's RMS reaches `layer_levels[i]`, then stay (20 epochs; each seed its own
    random matrices)."""
    eta, lam, n, m = 0.5, 5.0, 50_000, 10
    _, factor = l2_decay.decay_per_epoch(eta, lam, n, m)
    layers = (100, 10, 10)
    runs = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        base = [rng.normal(size=(a, b)) for a, b in zip(layers[:-1], layers[1:], strict=True)]
        base = [w / np.sqrt(np.mean(w**2)) for w in base]  # RMS exactly 1
        weights = [
            [w * max(factor**e, level) for w, level in zip(base, layer_levels, strict=True)]
            for e in range(21)
        ]
        runs.append(l2_decay.analyse_l2_decay(weights, eta, lam, n, m, layers, [0.0] * 20))
    return l2_decay.L2DecaySeeds(seeds=tuple(range(seeds)), runs=tuple(runs))


def test_1_2_heuristic_checks_on_synthetic_weights():
    """Where the weights stop decides each 1.2(c) reading: weights that stop at their layer's
    1/sqrt(n_in) pass the per-layer reading and fail the all-weights one (RMS 4.5x 1/sqrt(n));
    weights that all stop at 1/sqrt(n) pass that one and fail per layer."""
    all_name = "tail-off level ~ 1/sqrt(n) (heuristic)"
    layer_name = "tail-off level ~ 1/sqrt(n_in) per layer (heuristic)"
    per_layer = l2_decay.check_l2_decay(_synthetic_l2([1 / math.sqrt(100), 1 / math.sqrt(10)]))
    assert _by_name(per_layer, layer_name).passed
    assert not _by_name(per_layer, all_name).passed
    assert _by_name(per_layer, "the decay tails off").passed
    overall = 1 / math.sqrt(100 * 10 + 10 * 10)
    flat = l2_decay.check_l2_decay(_synthetic_l2([overall, overall]))
    assert _by_name(flat, all_name).passed
    assert not _by_name(flat, layer_name).passed
    np.testing.assert_allclose(_by_name(flat, all_name).measured, overall, rtol=1e-9)


def test_decompose_epoch_pure_decay():
    """With no gradient at all the decomposition is 100% decay and the exact factor."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=1000)
    factor, _ = l2_decay.decay_per_epoch(0.5, 5.0, 50_000, 10)
    d = l2_decay.decompose_epoch(w, factor * w, 0.5, 5.0, 50_000, 10)
    assert math.isclose(d.shrink, factor) and math.isclose(d.decay_share, 1.0)
    assert d.grad_to_decay < 1e-12


@pytest.fixture
def mlp_result(mnist_subset) -> momentum.MomentumMLPResult:
    from hw5jax.pipelines.theory_checks import train_momentum_mlp

    return _once("2.3mlp", lambda: train_momentum_mlp(mnist_subset, TheoryConfig(mlp_epochs=3)))


@pytest.mark.mnist
@pytest.mark.parametrize(
    "name",
    [
        "MLP: mu = 1.1 diverges",
        "MLP: mu = -0.5 converges, more slowly than mu = 0",
        "MLP: mu = 0.9 converges faster than mu = 0",
    ],
)
def test_2_3_mlp(mlp_result, name):
    _assert_passed(_by_name(momentum.check_momentum_mlp(mlp_result), name))


# ------------------------------------------------------------------------------ results file


def test_results_format(gain_result, tmp_path):
    """results.json entries carry exactly the documented keys and survive a JSON round trip."""
    from hw5jax.runs.files import write_json

    checks = sigmoid_gain.check_sigmoid_gain(gain_result)
    path = write_json(
        tmp_path / "results.json",
        {
            "experiment": "theory_checks",
            "checks": [c.as_dict() for c in checks],
            "wall_seconds": 1.0,
        },
    )
    data = json.loads(path.read_text())
    assert set(data) == {"experiment", "checks", "wall_seconds"}
    for entry in data["checks"]:
        assert set(entry) == {
            "problem",
            "name",
            "claim",
            "expected",
            "measured",
            "tolerance",
            "passed",
        }
        assert isinstance(entry["passed"], bool)


# ------------------------------------------------------------------- answer key and options


@pytest.mark.mnist
def test_answer_key_renders_every_problem_and_check(
    hyper_result,
    l2_result,
    chain_result,
    gain_result,
    quadratic_result,
    mlp_result,
    conv_result,
):
    """theory.md from the template: every problem's section, every check's table row and claim
    (undefined template names would raise: the environment is strict)."""
    from hw5jax.theory.answer_key import render_answer_key

    results = {
        "1.1": hyper_result,
        "1.2": l2_result,
        "2.1": chain_result,
        "2.2": gain_result,
        "2.3": quadratic_result,
        "2.3mlp": mlp_result,
        "5.1": conv_result,
    }
    checks = {
        "1.1": hyperparameter_gradients.check_hypergradients(hyper_result),
        "1.2": l2_decay.check_l2_decay(l2_result),
        "2.1": unstable_gradients.check_unstable_gradients(chain_result),
        "2.2": sigmoid_gain.check_sigmoid_gain(gain_result),
        "2.3": momentum.check_momentum_quadratic(quadratic_result)
        + momentum.check_momentum_mlp(mlp_result),
        "5.1": conv_backprop.check_conv_backprop(conv_result),
    }
    text = render_answer_key(results, checks, ["--out", "/tmp/x"], 12.3)
    assert text.startswith("# Problems 1, 2 and 5.1, checked numerically")
    assert "`python -m experiments.theory_checks --out /tmp/x` in 12 s" in text
    for problem in ("1.1", "1.2", "2.1", "2.2", "2.3", "5.1"):
        assert f"## Problem {problem} —" in text
        for c in checks[problem]:
            assert f"- *{c.name}*: {c.claim}" in text
    assert text.count("| check | expected | measured | tolerance | verdict |") == 6
    assert "**does not hold**" in text  # the 1.2(c) heuristic, as on the full set
    flat = [c for problem in checks for c in checks[problem]]
    assert _verdicts(text) == {c.name: _verdict(c) for c in flat}

    # A failing check shows as failing: in its table row and in the prose verdict above it.
    flipped = dict(checks)
    flipped["2.2"] = [
        dataclasses.replace(c, passed=not c.passed) if c.name == "width formula" else c
        for c in checks["2.2"]
    ]
    text2 = render_answer_key(results, flipped, ["--out", "/tmp/x"], 12.3)
    assert _verdicts(text2)["width formula"] == "**FAIL**"
    assert "**(b) The width formula — **not confirmed by this run**" in text2
    assert "**(b) The width formula — right" in text
    assert _verdicts(text2) == {c.name: _verdict(c) for p in flipped for c in flipped[p]}


_CELL = re.compile(r"(?<!\\)\|")


def _verdict(check: Check) -> str:
    from hw5jax.theory.checks import is_heuristic

    if check.passed:
        return "pass"
    return "**does not hold**" if is_heuristic(check) else "**FAIL**"


def _verdicts(text: str) -> dict[str, str]:
    """{check name: verdict cell} of every check table of a rendered theory.md."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| check |", "|---")):
            continue
        cells = [c.strip() for c in _CELL.split(line)[1:-1]]
        if len(cells) == 5:
            out[cells[0].replace("\\|", "|")] = cells[4]
    return out


@pytest.mark.slow
@pytest.mark.mnist
def test_cli_quick_end_to_end(mnist, tmp_path):
    """`experiments.theory_checks --quick` end to end (MNIST subset, short trainings, small
    grids): exit 0, the documented results.json, the figures, and theory.md's verdicts equal
    to the checks' `passed` fields."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.theory_checks", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert set(data) == {"experiment", "checks", "wall_seconds"}
    assert data["experiment"] == "theory_checks" and data["wall_seconds"] > 0
    keys = {"problem", "name", "claim", "expected", "measured", "tolerance", "passed"}
    assert all(set(c) == keys and isinstance(c["passed"], bool) for c in data["checks"])
    names = [c["name"] for c in data["checks"]]
    assert len(names) == len(set(names)) == 37
    failed = [c["name"] for c in data["checks"] if not c["passed"]]
    assert all(name.endswith("(heuristic)") for name in failed), failed
    for png in ("width_vs_w.png", "unstable_gradients.png", "l2_weight_rms.png"):
        assert (out / png).stat().st_size > 0
    text = (out / "theory.md").read_text()
    assert "python -m experiments.theory_checks --quick --out" in text
    expected = {
        c["name"]: "pass"
        if c["passed"]
        else ("**does not hold**" if c["name"].endswith("(heuristic)") else "**FAIL**")
        for c in data["checks"]
    }
    assert _verdicts(text) == expected


def test_table_cell_escapes_pipes_and_rounds_floats():
    from hw5jax.theory.answer_key import table_cell

    assert table_cell("|w| >= 4") == "\\|w\\| >= 4"
    assert table_cell(0.123456789) == "0.123457"
    assert table_cell(2) == "2"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("l2_epochs", 7, "--l2-epochs 7: must be >= 8"),
        ("mlp_epochs", 1, "--mlp-epochs 1: must be >= 2"),
        ("l2_seeds", 0, "--l2-seeds 0: must be at least 1"),
        ("mlp_eta", 0.0, "--mlp-eta 0.0: must be > 0"),
        ("mlp_eta", math.nan, "--mlp-eta nan: must be > 0"),
    ],
)
def test_config_refuses_out_of_range_values(field, value, message):
    from hw5jax.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        TheoryConfig(**{field: value})


def test_quick_config_shortens_the_trainings_and_measurements():
    from hw5jax.configs.theory import QUICK_L2_EPOCHS, QUICK_MEASURE

    quick = TheoryConfig(quick=True).effective()
    assert (quick.l2_epochs, quick.mlp_epochs) == (QUICK_L2_EPOCHS, 2)
    assert quick.measure_options("5.1") == QUICK_MEASURE["5.1"]
    assert TheoryConfig().effective() == TheoryConfig()
    assert TheoryConfig().measure_options("5.1") == {}

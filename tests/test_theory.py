"""Every check of experiments/theory_checks.py (Problems 1, 2, 5.1) as a test, at smaller sizes
where the claim still holds. Expensive measurements are shared through module-scoped fixtures;
the MNIST parts use a subset and skip if MNIST has not been fetched (`make setup`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
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
    params["W_L"][:, 0, 0] += 0.5
    hand, auto = (
        conv_backprop.conv_net_backprop(params, x, y),
        conv_backprop.conv_net_autodiff(params, x, y),
    )
    for k in auto:
        np.testing.assert_allclose(hand[k], auto[k], rtol=1e-9, atol=1e-12)


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
def l2_result(mnist_subset) -> l2_decay.L2DecayResult:
    from hw5jax.pipelines.theory_checks import train_l2_decay

    return _once("1.2", lambda: train_l2_decay(mnist_subset, TheoryConfig(l2_epochs=24)))


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
def test_1_2_heuristic_is_reported_honestly(l2_result):
    """1.2(c)'s level is a heuristic: its check reports the real factor, and the factor is what
    the verdict says (here, on 10k examples, far above 1/sqrt(n) as on the full set)."""
    check = _by_name(l2_decay.check_l2_decay(l2_result), "tail-off level ~ 1/sqrt(n) (heuristic)")
    factor = check.measured / check.expected
    assert check.passed == (1 / 3 <= factor <= 3)
    assert factor > 3, f"RMS at tail-off is only {factor:.1f}x 1/sqrt(n)"


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
        ("mlp_eta", 0.0, "--mlp-eta 0.0: must be > 0"),
        ("mlp_eta", math.nan, "--mlp-eta nan: must be > 0"),
    ],
)
def test_config_refuses_out_of_range_values(field, value, message):
    from hw5jax.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        TheoryConfig(**{field: value})

"""Test-time augmentation: the fixed views, `Trainer.evaluate(views=...)` against a hand
computation, the best recipe's `tta` hyperparameter and `experiments.cnn_eval`."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import cnn_eval, cnn_mnist
from hw5jax import data as mnist_data
from hw5jax.cli import run_main
from hw5jax.configs.cnn import RECIPES
from hw5jax.core.augment import TTA_VIEWS, view
from hw5jax.core.fit import accuracy_on, device_split
from hw5jax.core.train import as_float
from hw5jax.pipelines.cnn import make_trainer
from hw5jax.runs import checkpoint

SMALL = ["--channels", "4,8", "--hidden", "16", "--epochs", "1"]


def test_the_identity_view_returns_the_images():
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 28, 28, 1))
    assert view(x, (0.0, 0.0, 0.0)) is x


def test_a_one_pixel_view_shifts_with_zeros_coming_in():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1))
    down = np.zeros_like(x)
    down[:, 1:] = x[:, :-1]  # dy = +1: the digit moves down one row
    np.testing.assert_allclose(view(x, (0.0, 1.0, 0.0)), down, atol=1e-6)
    left = np.zeros_like(x)
    left[:, :, :-1] = x[:, :, 1:]  # dx = -1: one column to the left
    np.testing.assert_allclose(view(x, (0.0, 0.0, -1.0)), left, atol=1e-6)


def test_a_90_degree_view_is_a_quarter_turn_about_the_centre():
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 28, 28, 1))
    np.testing.assert_allclose(view(x, (90.0, 0.0, 0.0)), np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)


def test_named_views():
    assert TTA_VIEWS["none"] == ((0.0, 0.0, 0.0),)
    assert len(TTA_VIEWS["shift1rot5"]) == 7 and TTA_VIEWS["shift1rot5"][0] == (0.0, 0.0, 0.0)
    assert set(TTA_VIEWS["shift1rot5"]) == set(TTA_VIEWS["shift1"]) | set(TTA_VIEWS["rot5"])
    assert len(set(TTA_VIEWS["shift1grid"])) == 9
    assert set(TTA_VIEWS["shift1"]) < set(TTA_VIEWS["shift1grid"])


@pytest.fixture  # as `tiny` (function scope); one test uses it
def trained(tiny):
    """A small best-recipe CNN after one epoch on the synthetic digits, evaluated in chunks of
    100 (the test split's 256 images: the last chunk padded)."""
    hp = {**RECIPES["best"], "channels": (4, 8), "hidden": (16,), "epochs": 1}
    trainer = make_trainer(hp, n_train=len(tiny.train.labels))
    trainer.eval_batch_size = 100
    state = trainer.init_jit(jnp.uint32(0), {"learning_rate": jnp.float32(3e-3)})
    state, _ = trainer.epoch_jit(state, *device_split(tiny.train))
    return trainer, state


@pytest.mark.slow
def test_tta_evaluation_is_the_mean_softmax_over_the_views(trained, tiny):
    trainer, state = trained
    x, y = device_split(tiny.test)
    views = TTA_VIEWS["shift1rot5"]
    images = as_float(x)
    probs = np.mean(
        [
            jax.nn.softmax(
                trainer.apply(state["params"], state["model_state"], view(images, v), train=False)[
                    0
                ]
            )
            for v in views
        ],
        axis=0,
    )
    metrics = trainer.evaluate_jit(state, x, y, views=views)
    assert float(metrics["accuracy"]) == pytest.approx(np.mean(probs.argmax(-1) == y))
    assert float(metrics["cost"]) == pytest.approx(
        -np.mean(np.log(probs[np.arange(len(y)), y])), rel=1e-4
    )
    # One identity view is the plain forward pass.
    plain = trainer.evaluate_jit(state, x, y)
    one = trainer.evaluate_jit(state, x, y, views=TTA_VIEWS["none"])
    assert float(one["accuracy"]) == float(plain["accuracy"])
    np.testing.assert_allclose(one["cost"], plain["cost"], rtol=1e-5)


@pytest.mark.slow
def test_the_best_recipe_evaluates_with_tta_and_cnn_eval_agrees(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    assert RECIPES["best"]["tta"] == "shift1rot5"
    assert RECIPES["homework"]["tta"] == "none"
    run = tmp_path / "run"
    run_main(cnn_mnist.main, [*SMALL, "--seeds", "2", "--out", str(run)])
    results = json.loads((run / "results.json").read_text())
    assert results["hparams"]["tta"] == "shift1rot5"
    assert "test-time augmentation 'shift1rot5'" in (run / "table.md").read_text()

    # The recorded test accuracy is the restored model's with the views, not without.
    hp = results["hparams"]
    trainer = make_trainer(hp, n_train=len(tiny.train.labels))
    views = TTA_VIEWS["shift1rot5"]
    with_tta, plain = {"val": [], "test": []}, {"val": [], "test": []}
    for seed in (0, 1):
        state, meta = checkpoint.restore(
            run / "checkpoints" / f"best_seed{seed}", like=trainer.abstract_state()
        )
        for split in ("val", "test"):
            with_tta[split].append(accuracy_on(trainer, state, getattr(tiny, split), views))
            plain[split].append(accuracy_on(trainer, state, getattr(tiny, split)))
        assert meta["test_accuracy"] == with_tta["test"][-1]
    assert results["test_accuracy"] == with_tta["test"]
    # Validation, per epoch and in the table, is the plain forward pass.
    assert [v[-1] for v in results["history"]["val_accuracy"]] == pytest.approx(plain["val"])
    assert with_tta != plain  # the views change some predictions of these weak models

    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "eval"
    run_main(cnn_eval.main, [str(run), "--out", str(out)])
    evaluated = json.loads((out / "results.json").read_text())
    assert evaluated["seeds"] == [0, 1] and evaluated["tta"] == "shift1rot5"
    for name, expected in (("plain", plain), ("with_tta", with_tta)):
        assert evaluated[name]["test_accuracy"]["per_seed"] == expected["test"]
        assert evaluated[name]["val_accuracy"]["per_seed"] == expected["val"]
        assert evaluated[name]["test_accuracy"]["mean"] == pytest.approx(np.mean(expected["test"]))
    assert "(7 views)" in (out / "table.md").read_text()


def test_tta_none_tests_with_the_plain_forward_pass(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    run = tmp_path / "run"
    run_main(cnn_mnist.main, [*SMALL, "--seeds", "1", "--tta", "none", "--out", str(run)])
    results = json.loads((run / "results.json").read_text())
    assert results["hparams"]["tta"] == "none"
    hp = results["hparams"]
    trainer = make_trainer(hp, n_train=len(tiny.train.labels))
    state, _ = checkpoint.restore(run / "checkpoints" / "best_seed0", like=trainer.abstract_state())
    assert results["test_accuracy"] == [accuracy_on(trainer, state, tiny.test)]
    assert "test-time augmentation" not in (run / "table.md").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--tta", "flip"], "--tta 'flip': use one of none, shift1, shift1grid, rot5, shift1rot5"),
    ],
)
def test_cnn_mnist_refuses_unknown_views(argv, message, tmp_path, bad_input):
    bad_input(cnn_mnist.main, argv, message, tmp_path / "out")


def test_cnn_eval_refuses_what_is_not_a_run(tmp_path, bad_input):
    bad_input(cnn_eval.main, [str(tmp_path)], "not a cnn_mnist run directory", tmp_path / "out")
    (tmp_path / "checkpoints").mkdir()
    bad_input(cnn_eval.main, [str(tmp_path)], "no <recipe>_seed<k> checkpoints", tmp_path / "out")
    bad_input(cnn_eval.main, [str(tmp_path), "--tta", "flip"], "--tta 'flip'", tmp_path / "out")

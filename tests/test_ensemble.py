"""Ensembles of CNN checkpoints: `probabilities_on` against a hand computation, an ensemble
of one model against that model's accuracy, the argmax of the members' mean probabilities,
and `experiments.cnn_eval RUN_DIR... --ensemble` (several run directories, the same model
twice refused)."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import cnn_eval
from hw5jax import data as mnist_data
from hw5jax.cli import run_main
from hw5jax.configs.cnn import RECIPES
from hw5jax.core.augment import TTA_VIEWS, view
from hw5jax.core.fit import accuracy_of, accuracy_on, device_split, probabilities_on
from hw5jax.core.train import as_float
from hw5jax.data import Split
from hw5jax.pipelines.cnn import _ensemble, make_trainer
from hw5jax.runs import checkpoint

# A small best-recipe CNN (BatchNorm, dropout); three views keep the compiles short.
HP = {
    **RECIPES["best"],
    "channels": (4, 8),
    "hidden": (16,),
    "epochs": 1,
    "tta": "rot5",
    "train_on": "train",
}
VIEWS = TTA_VIEWS["rot5"]


@pytest.fixture(scope="module")
def models(tiny):
    """One trainer (evaluating in chunks of 100: the 256 test images end in a padded chunk)
    and the freshly initialised states of seeds 0 and 1: two models that disagree."""
    trainer = make_trainer(HP, n_train=len(tiny.train.labels))
    trainer.eval_batch_size = 100
    states = [
        trainer.init_jit(jnp.uint32(seed), {"learning_rate": jnp.float32(3e-3)}) for seed in (0, 1)
    ]
    return trainer, states


def softmax_by_hand(trainer, state, split: Split, views=None) -> np.ndarray:
    """The mean softmax over `views` (None: the plain forward pass), on all images at once."""
    images = as_float(device_split(split)[0])

    def softmax(x):
        logits = trainer.apply(state["params"], state["model_state"], x, train=False)[0]
        return np.asarray(jax.nn.softmax(logits))

    if views is None:
        return softmax(images)
    return np.mean([softmax(view(images, v)) for v in views], axis=0)


@pytest.mark.slow
def test_probabilities_are_the_mean_softmax_and_the_ensemble_their_mean(models, tiny):
    trainer, states = models
    y = tiny.test.labels
    for views in (None, VIEWS):
        by_hand = [softmax_by_hand(trainer, s, tiny.test, views) for s in states]
        probs = [probabilities_on(trainer, s, tiny.test, views) for s in states]
        for p, h in zip(probs, by_hand, strict=True):
            assert p.shape == (len(y), 10) and p.dtype == np.float32
            np.testing.assert_allclose(p, h, atol=1e-6)
            np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
        ensemble = np.mean(by_hand, axis=0).argmax(-1)
        assert accuracy_of(np.mean(probs, axis=0), y) == pytest.approx(np.mean(ensemble == y))
        # The two members disagree, and the ensemble is not the first one: a check against
        # that member's predictions would not pass for the mean.
        members = [h.argmax(-1) for h in by_hand]
        assert (members[0] != members[1]).any()
        assert (ensemble != members[0]).any()


@pytest.mark.slow
def test_an_ensemble_of_one_model_is_that_model(models, tiny):
    trainer, states = models
    for split in (tiny.val, tiny.test):
        for views in (None, VIEWS):
            probs = probabilities_on(trainer, states[0], split, views)
            assert accuracy_of(probs, split.labels) == accuracy_on(trainer, states[0], split, views)


def test_the_ensemble_of_three_examples_by_hand(tiny):
    """`_ensemble` on hand-made probabilities: 3 test images, labels 0, 1, 2."""
    labels = np.array([0, 1, 2])
    mnist = mnist_data.MNIST(
        tiny.train, Split(tiny.val.images[:3], labels), Split(tiny.test.images[:3], labels)
    )
    a = np.array([[0.6, 0.4, 0.0], [0.6, 0.4, 0.0], [0.0, 0.3, 0.7]], np.float32)
    b = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.0, 0.9, 0.1]], np.float32)
    # member a: 2 of 3 right, b: 1 of 3; their mean [[.35, .65, 0], [.4, .6, 0], [0, .6, .4]]
    # predicts 1, 1, 1: 1 of 3 right, not a's 2 of 3.
    rows = [{"seed": 0, "checkpoint": "A/checkpoints/best_seed0"}]
    rows.append({"seed": 3, "checkpoint": "B/checkpoints/best_seed3"})

    def member(p, val):
        return {"val": val, "test": p, "seconds": 1.0}

    probs = [
        {"plain": member(a, a), "with_tta": member(b, a)},
        {"plain": member(b, b), "with_tta": member(b, None)},  # trained on train+val
    ]
    result = _ensemble(rows, probs, mnist)
    assert result["members"] == [0, 3]
    assert result["checkpoints"] == [r["checkpoint"] for r in rows]
    assert result["plain"]["test_accuracy"] == pytest.approx(1 / 3)
    assert result["plain"]["val_accuracy"] == pytest.approx(1 / 3)
    assert result["with_tta"]["test_accuracy"] == pytest.approx(1 / 3)  # b alone
    assert result["with_tta"]["val_accuracy"] is None  # a member trained on validation
    assert result["plain"]["seconds_per_member"] == [1.0, 1.0]
    assert accuracy_of(a, labels) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def run_dirs(models, tmp_path_factory):
    """Two cnn_mnist-like run directories: A with seed 0, B with seed 1 (the checkpoints
    and metadata as `cnn_mnist` writes them)."""
    _, states = models
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for name, seed, state in (("A", 0, states[0]), ("B", 1, states[1])):
        checkpoint.save(
            root / name / "checkpoints" / f"best_seed{seed}",
            state,
            {
                "experiment": "cnn_mnist",
                "recipe": "best",
                "hparams": HP,
                "seed": seed,
                "val_accuracy": None,
                "test_accuracy": None,
                "diverged": False,
            },
        )
        dirs.append(root / name)
    return dirs


def evaluated_by_hand(tiny, dirs, views) -> dict:
    """Each checkpoint's accuracy and the ensemble's, from `probabilities_on` here."""
    trainer = make_trainer(HP, n_train=len(tiny.train.labels))
    probs: dict = {"val": [], "test": []}
    alone: dict = {"val": [], "test": []}
    for run in dirs:
        (path,) = (run / "checkpoints").iterdir()
        state, _ = checkpoint.restore(path, like=trainer.abstract_state())
        for split in ("val", "test"):
            probs[split].append(probabilities_on(trainer, state, getattr(tiny, split), views))
            alone[split].append(accuracy_on(trainer, state, getattr(tiny, split), views))
    ensemble = {
        split: accuracy_of(np.mean(p, axis=0), getattr(tiny, split).labels)
        for split, p in probs.items()
    }
    return {"alone": alone, "ensemble": ensemble}


@pytest.mark.slow
def test_cnn_eval_ensembles_the_checkpoints_of_two_runs(run_dirs, tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "eval"
    args = [*map(str, run_dirs), "--tta", "rot5", "--ensemble", "--out", str(out)]
    run_main(cnn_eval.main, args)
    results = json.loads((out / "results.json").read_text())
    assert "run" not in results and results["runs"] == [str(d) for d in run_dirs]
    assert results["seeds"] == [0, 1]
    ensemble = results["ensemble"]
    assert ensemble["members"] == [0, 1]
    assert ensemble["checkpoints"] == results["checkpoints"]
    assert ensemble["checkpoints"] == [
        str(run_dirs[0] / "checkpoints" / "best_seed0"),
        str(run_dirs[1] / "checkpoints" / "best_seed1"),
    ]
    for name, views in (("plain", None), ("with_tta", VIEWS)):
        expected = evaluated_by_hand(tiny, run_dirs, views)
        assert results[name]["test_accuracy"]["per_seed"] == expected["alone"]["test"]
        assert results[name]["val_accuracy"]["per_seed"] == expected["alone"]["val"]
        assert ensemble[name]["test_accuracy"] == expected["ensemble"]["test"]
        assert ensemble[name]["val_accuracy"] == expected["ensemble"]["val"]
        assert len(ensemble[name]["seconds_per_member"]) == 2
    table = (out / "table.md").read_text()
    assert f"Checkpoints of {run_dirs[0]}, {run_dirs[1]}, seeds [0, 1]." in table
    plain_row = "| ensemble of the 2 checkpoints (mean probabilities), plain forward pass |"
    assert plain_row in table
    assert "| ensemble of the 2 checkpoints (mean probabilities), test-time augmentation" in table
    assert f"**{100 * ensemble['plain']['test_accuracy']:.2f}%**" in table
    assert "→ **" in table  # the single seeds' mean ± std stay reported
    stamped = json.loads((out / "run.json").read_text())
    assert stamped["experiment"] == "cnn_eval"
    assert stamped["config"]["runs"] == [str(d) for d in run_dirs]
    assert stamped["config"]["ensemble"] is True


@pytest.mark.slow
def test_cnn_eval_ensemble_of_one_checkpoint_is_that_seed(run_dirs, tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "eval"
    run_main(cnn_eval.main, [str(run_dirs[0]), "--tta", "none", "--ensemble", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["run"] == str(run_dirs[0]) and results["runs"] == [str(run_dirs[0])]
    assert results["ensemble"]["members"] == [0]
    for name in ("plain", "with_tta"):
        for split in ("val", "test"):
            (alone,) = results[name][f"{split}_accuracy"]["per_seed"]
            assert results["ensemble"][name][f"{split}_accuracy"] == alone
    # without --ensemble: no "ensemble" key and no ensemble rows
    out2 = tmp_path / "eval2"
    run_main(cnn_eval.main, [str(run_dirs[0]), "--tta", "none", "--out", str(out2)])
    assert "ensemble" not in json.loads((out2 / "results.json").read_text())
    assert "ensemble" not in (out2 / "table.md").read_text()


def test_cnn_eval_refuses_the_same_checkpoint_twice_and_bad_dirs(run_dirs, tmp_path, bad_input):
    copy = tmp_path / "copy_of_A"
    shutil.copytree(run_dirs[0], copy)
    err = bad_input(
        cnn_eval.main,
        [str(run_dirs[0]), str(run_dirs[1]), str(copy), "--ensemble"],
        "seed 0 with the same hyperparameters as",
        tmp_path / "out",
    )
    assert str(copy / "checkpoints" / "best_seed0") in err
    bad_input(
        cnn_eval.main,
        [str(run_dirs[0]), str(run_dirs[0])],
        "give each checkpoint once",
        tmp_path / "out",
    )
    missing = tmp_path / "nowhere"
    bad_input(
        cnn_eval.main, [str(run_dirs[0]), str(missing)], "no such directory", tmp_path / "out"
    )
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    bad_input(
        cnn_eval.main,
        [str(run_dirs[0]), str(empty)],
        "no <recipe>_seed<k> checkpoints",
        tmp_path / "out",
    )

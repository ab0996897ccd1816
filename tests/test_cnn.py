"""Problem 5.2: the CNN's shapes and fast conv/pool, on-device augmentation, a jitted CNN step,
and the `cnn_mnist` command line (bad input; a --quick run)."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import cnn_mnist
from hw5jax import data as mnist_data
from hw5jax.cli import run_main
from hw5jax.configs.cnn import RECIPES, CNNConfig
from hw5jax.core.augment import make_augment, random_affine
from hw5jax.core.train import as_float
from hw5jax.models.cnn import CNN, conv_as_matmul, max_pool_2x2
from hw5jax.pipelines.cnn import make_trainer


def images(n=8, seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), (n, 28, 28, 1))


def shapes(model_fn, x_shape=(3, 28, 28, 1), train=False):
    """Output shapes of the blocks and of the logits, and the abstract model: traced only,
    nothing allocated or compiled."""
    abstract = nnx.eval_shape(lambda: model_fn(rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)

    def run(state, x):
        model = nnx.merge(graphdef, state)
        return model.features(x), model(x, train=train, rngs=nnx.Rngs(dropout=0))

    maps, logits = jax.eval_shape(run, state, jax.ShapeDtypeStruct(x_shape, jnp.float32))
    return [m.shape for m in maps], logits.shape, abstract


def test_homework_cnn_shapes():
    maps, logits, model = shapes(CNN)
    assert maps == [(3, 14, 14, 32), (3, 7, 7, 64)] and logits == (3, 10)
    assert model.convs[0].kernel.shape == (5, 5, 1, 32)
    assert model.convs[1].kernel.shape == (5, 5, 32, 64)
    assert [layer.kernel.shape for layer in model.dense] == [(3136, 100), (100, 100), (100, 10)]


def test_cnn_options_change_widths_not_the_two_conv_layers():
    maps, logits, _ = shapes(
        functools.partial(CNN, (16, 24), (50,), batch_norm=True, dropout=0.5), train=True
    )
    assert maps == [(3, 14, 14, 16), (3, 7, 7, 24)] and logits == (3, 10)
    with pytest.raises(ValueError, match="exactly two conv layers"):
        CNN((8, 8, 8), rngs=nnx.Rngs(0))


def test_torch_weight_init_is_pytorchs_default_range():
    model = nnx.jit(lambda: CNN((4, 6), (8,), weight_init="torch", rngs=nnx.Rngs(0)))()
    for layer, fan_in in [
        (model.convs[0], 25),
        (model.convs[1], 100),
        (model.dense[0], 294),
        (model.dense[1], 8),
    ]:
        for p in (layer.kernel[...], layer.bias[...]):
            assert 0.5 * fan_in**-0.5 < np.abs(np.asarray(p)).max() <= fan_in**-0.5
    with pytest.raises(ValueError, match="weight_init"):
        CNN(weight_init="xavier", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("c_in,c_out,size", [(1, 32, 28), (32, 64, 14)])
def test_conv_as_matmul_equals_lax_conv(c_in, c_out, size):
    kx, kw = jax.random.split(jax.random.PRNGKey(c_in))
    x = jax.random.normal(kx, (2, size, size, c_in))
    w = jax.random.normal(kw, (5, 5, c_in, c_out))
    lax_conv = functools.partial(
        jax.lax.conv_general_dilated,
        window_strides=(1, 1),
        padding="SAME",
        precision="highest",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    ours = functools.partial(conv_as_matmul, precision="highest")

    # Outputs and the kernel gradient (the backward pass is what the reimplementation is for).
    @jax.jit
    def both(x, w):
        return [
            (conv(x, w), jax.grad(lambda w, conv=conv: jnp.sum(jnp.sin(conv(x, w))))(w))
            for conv in (lax_conv, ours)
        ]

    (ref, g_ref), (got, g_got) = both(x, w)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(g_got, g_ref, rtol=1e-4, atol=1e-3)


def test_max_pool_by_reshape_equals_reduce_window():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 3))
    np.testing.assert_array_equal(max_pool_2x2(x), nnx.max_pool(x, (2, 2), strides=(2, 2)))


def test_augmentation_off_is_the_identity():
    x = images()
    assert make_augment(0.0, 0.0) is None  # the Trainer then skips augmentation entirely
    np.testing.assert_array_equal(
        random_affine(jax.random.PRNGKey(0), x, max_shift=0.0, max_degrees=0.0), x
    )
    with pytest.raises(ValueError):
        make_augment(-1.0, 0.0)


def centre_of_mass(x):
    grid = jnp.arange(28, dtype=jnp.float32)[None, :]
    mass = x[..., 0].sum((1, 2))
    return jnp.stack(
        [(x[..., 0].sum(2) * grid).sum(1) / mass, (x[..., 0].sum(1) * grid).sum(1) / mass], axis=-1
    )


def test_augmentation_keeps_shapes_and_moves_digits_a_little(mnist_or_tiny):
    x = as_float(jnp.asarray(mnist_or_tiny.train.images[:64]))
    augment = jax.jit(make_augment(max_shift=2.0, max_degrees=10.0))
    y = augment(jax.random.PRNGKey(0), x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 + 1e-6
    np.testing.assert_array_equal(y, augment(jax.random.PRNGKey(0), x))  # keyed, not stateful
    assert not np.allclose(y, augment(jax.random.PRNGKey(1), x))
    assert not np.allclose(y, x)
    moved = jnp.linalg.norm(centre_of_mass(y) - centre_of_mass(x), axis=-1)
    assert float(moved.max()) < 2.0 * np.sqrt(2) + 1.0  # a shift of <= 2 px per axis (+ rotation)
    # Ink is kept (small transforms of a centred digit lose almost nothing off the border).
    np.testing.assert_allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.1)


def test_shift_moves_a_pixel_by_the_drawn_amount():
    x = jnp.zeros((1, 28, 28, 1)).at[0, 10, 12, 0].set(1.0)
    # No rotation: the output is the input moved by the drawn (dy, dx) (read back here).
    key = jax.random.PRNGKey(3)
    y = jax.jit(functools.partial(random_affine, max_shift=3.0, max_degrees=0.0))(key, x)
    (r, c) = np.unravel_index(int(jnp.argmax(y[0, ..., 0])), (28, 28))
    shift = jax.random.uniform(jax.random.split(key)[1], (1, 2), minval=-3.0, maxval=3.0)[0]
    assert abs(r - (10 + float(shift[0]))) <= 0.5 and abs(c - (12 + float(shift[1]))) <= 0.5
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)  # bilinear weights sum to one


@pytest.fixture(scope="module")
def mnist_or_tiny(request):
    from hw5jax.data import embedded_path, load_mnist

    if embedded_path().is_file():
        return load_mnist("embedded")
    return request.getfixturevalue("tiny")


def test_jitted_cnn_step_lowers_the_loss_on_a_fixed_batch(tiny):
    hp = RECIPES["homework"]
    trainer = make_trainer(hp, n_train=len(tiny.train.labels))
    state = trainer.init_jit(jnp.uint32(0), {"learning_rate": jnp.float32(1e-3)})
    x, y = jnp.asarray(tiny.train.images[:64]), jnp.asarray(tiny.train.labels[:64])
    step = jax.jit(trainer.train_step)
    costs = []
    # 25 steps: PyTorch's default init (the homework recipe's) starts with tiny logits and
    # halves the cost after about 20 steps here (He-normal: after about 8).
    for i in range(25):
        state, cost = step(state, x, y, jax.random.PRNGKey(i))
        costs.append(float(cost))
    assert costs[-1] < 0.5 * costs[0], costs


def test_best_recipe_trains_a_scanned_epoch(tiny):
    """BatchNorm + dropout + augmentation + schedule through the Trainer's scanned epoch
    (narrow, so it compiles fast): finite, and only training moves BatchNorm's statistics."""
    hp = {**RECIPES["best"], "channels": (8, 16), "hidden": (32,), "batch_size": 32}
    trainer = make_trainer(hp, n_train=96)
    assert trainer.augment is not None and trainer.schedule is not None
    state = trainer.init_jit(jnp.uint32(0), {"learning_rate": jnp.float32(1e-3)})
    before = jax.tree.map(jnp.copy, state["model_state"])
    x, y = jnp.asarray(tiny.train.images[:96]), jnp.asarray(tiny.train.labels[:96])
    state, metrics = trainer.epoch_jit(state, x, y)
    assert bool(metrics["finite"]) and int(state["step"]) == 3
    moved = [
        not np.allclose(a, b)
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state["model_state"]), strict=True)
    ]
    assert moved and all(moved)
    after = jax.tree.map(jnp.copy, state["model_state"])
    trainer.evaluate_jit(state, x, y)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(state["model_state"]), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--recipe", "fancy"], "--recipe 'fancy': use one of homework, best"),
        (["--epochs", "0"], "--epochs 0: must be at least 1"),
        (["--seeds", "0"], "--seeds 0: must be at least 1"),
        (["--first-seed", "-1"], "--first-seed -1: must be >= 0"),
        (["--channels", "32,64,128"], "exactly two conv layers"),
        (["--dropout", "1.5"], "--dropout 1.5: must be in [0, 1)"),
        (["--schedule", "step"], "--schedule 'step'"),
        (["--weight-init", "xavier"], "--weight-init 'xavier'"),
        (["--train-on", "val"], "--train-on 'val': use one of train, train+val"),
        (["--train-on", "train+val", "--no-test"], "nothing would be evaluated"),
        (["--data", "/no/such/mnist"], "unknown data source"),
    ],
)
def test_bad_input_is_one_line_nonzero_exit_and_nothing_written(argv, message, tmp_path, bad_input):
    bad_input(cnn_mnist.main, argv, message, tmp_path / "out")


def test_normalize_standardises_the_pixels_before_the_first_conv():
    plain = nnx.jit(lambda: CNN((4, 6), (8,), rngs=nnx.Rngs(0)))()
    normed = nnx.jit(lambda: CNN((4, 6), (8,), normalize=True, rngs=nnx.Rngs(0)))()
    x = images(4)
    standardised = (x - 0.1307) / 0.3081
    np.testing.assert_allclose(
        normed.features(x)[-1], plain.features(standardised)[-1], rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(normed(x), plain(x))


def test_recipes_are_the_homework_and_overrides_apply():
    hw = CNNConfig(recipe="homework").hparams()
    assert hw["epochs"] == 4 and hw["batch_size"] == 128 and hw["learning_rate"] == 1e-3
    assert hw["channels"] == (32, 64) and hw["hidden"] == (100, 100)
    assert not hw["batch_norm"] and hw["dropout"] == 0 and hw["max_shift"] == 0
    assert hw["weight_init"] == "torch"  # the homework trained in PyTorch
    best = CNNConfig(dropout=0.0, hidden=(64,)).hparams()
    assert best["dropout"] == 0.0 and best["hidden"] == (64,) and best["batch_norm"]
    assert hw["train_on"] == best["train_on"] == "train"  # recorded in results.json hparams
    assert CNNConfig(train_on="train+val").hparams()["train_on"] == "train+val"


def test_merge_val_into_train_keeps_every_image_and_holds_nothing_out(tiny):
    merged = mnist_data.merge_val_into_train(tiny)
    assert len(merged.train.labels) == len(tiny.train.labels) + len(tiny.val.labels)
    assert len(merged.val.labels) == 0 and merged.val.images.shape[1:] == (28, 28, 1)
    np.testing.assert_array_equal(merged.train.images[:512], tiny.train.images)
    np.testing.assert_array_equal(merged.train.images[512:], tiny.val.images)
    np.testing.assert_array_equal(merged.train.labels[512:], tiny.val.labels)
    assert merged.test is tiny.test


def test_train_plus_val_run_reports_no_validation(tiny, tmp_path, capsys, monkeypatch):
    """--train-on train+val: trains on train + val, evaluates test; the validation history is
    null (nothing held out), not an accuracy on images it trained on."""
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "cnn"
    run_main(
        cnn_mnist.main,
        ["--recipe", "homework", "--quick", "--train-on", "train+val", "--out", str(out)],
    )
    printed = capsys.readouterr()
    assert "none (trained on train+val)" in printed.out
    assert "cost=" in printed.err and "nan" not in printed.err  # the progress bar
    results = json.loads((out / "results.json").read_text())
    assert results["hparams"]["train_on"] == "train+val"
    assert (results["data"]["train"], results["data"]["val"]) == (512 + 256, 0)
    assert results["history"]["val_accuracy"] is None
    assert results["validation"].startswith("none")
    assert len(results["history"]["train_cost"][0]) == 1
    assert len(results["test_accuracy"]) == 1 and 0 <= results["test_accuracy"][0] <= 1
    assert "no validation accuracy was measured" in (out / "table.md").read_text()
    assert (out / "train_cost.png").stat().st_size > 0 and not (out / "val_accuracy.png").exists()


def test_first_seed_trains_the_same_run_as_that_seed_of_a_longer_list(tiny, tmp_path, monkeypatch):
    """--first-seed 1 --seeds 1 is seed 1 of --seeds 2: more seeds of a recipe, later."""
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    small = ["--recipe", "homework", "--channels", "4,8", "--hidden", "16", "--epochs", "1"]
    run_main(cnn_mnist.main, [*small, "--seeds", "2", "--out", str(tmp_path / "both")])
    run_main(
        cnn_mnist.main,
        [*small, "--first-seed", "1", "--seeds", "1", "--out", str(tmp_path / "one")],
    )
    both, one = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("both", "one"))
    assert both["seeds"] == [0, 1] and one["seeds"] == [1]
    assert one["test_accuracy"] == both["test_accuracy"][1:]
    assert one["history"]["train_cost"] == both["history"]["train_cost"][1:]
    assert both["history"]["train_cost"][0] != both["history"]["train_cost"][1]
    assert [p.name for p in (tmp_path / "one" / "checkpoints").iterdir()] == ["homework_seed1"]


@pytest.mark.mnist
@pytest.mark.slow
def test_quick_run_writes_the_contracted_results(mnist, tmp_path, capsys):
    out = tmp_path / "cnn"
    run_main(cnn_mnist.main, ["--recipe", "homework", "--quick", "--out", str(out)])
    assert f"results: {out}/results.json" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "cnn_mnist" and results["recipe"] == "homework"
    assert results["epochs"] == 1 and results["hparams"]["learning_rate"] == 1e-3
    assert results["hparams"]["train_on"] == "train" and results["validation"].startswith("held")
    assert results["data"]["train"] == 2_000
    assert len(results["test_accuracy"]) == 1 and results["test_accuracy"][0] > 0.5
    assert results["test_accuracy_mean"] == results["test_accuracy"][0]
    assert results["test_accuracy_std"] == 0.0
    assert len(results["seconds_per_seed"]) == 1 and results["wall_seconds"] > 0
    assert [len(v) for v in results["history"]["val_accuracy"]] == [1]
    assert (out / "val_accuracy.png").stat().st_size > 0
    assert "99.15%" in (out / "table.md").read_text()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["homework_seed0"]

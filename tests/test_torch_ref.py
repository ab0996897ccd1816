"""The PyTorch side (`hw5jax.reference.pytorch`) and `experiments.cnn_torch`, the homework's CNN
recipe trained in PyTorch."""

from __future__ import annotations

import json
import math
import signal

import numpy as np
import pytest

from experiments import cnn_torch
from hw5jax import data as mnist_data
from hw5jax.cli import run_main
from hw5jax.pipelines import cnn as cnn_pipeline
from hw5jax.reference.pytorch import (
    import_torch,
    torch_accuracy,
    torch_cnn,
    torch_epoch,
    torch_optimizer,
    torch_tensors,
)

torch = pytest.importorskip("torch")


def test_torch_cnn_has_the_homework_shapes_and_pytorchs_own_initialisation():
    import_torch(1)
    torch.manual_seed(0)
    model = torch_cnn(torch, None)
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [tuple(c.weight.shape) for c in convs] == [(32, 1, 5, 5), (64, 32, 5, 5)]
    assert [tuple(d.weight.shape) for d in dense] == [(100, 3136), (100, 100), (10, 100)]
    for layer in convs + dense:  # PyTorch's default: U(+-1/sqrt(fan_in)), weights and biases
        bound = 1 / math.sqrt(layer.weight[0].numel())
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    torch.manual_seed(0)
    again = torch_cnn(torch, None)  # the seed fixes the initialisation
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )


@pytest.mark.parametrize("drop_last,sizes", [(True, [128, 128]), (False, [128, 128, 44])])
def test_torch_epoch_keeps_the_last_short_batch_only_when_asked(tiny, drop_last, sizes):
    x, y = torch_tensors(torch, tiny.train.images[:300], tiny.train.labels[:300], nchw=False)
    model = torch.nn.Linear(784, 10)
    seen: list[torch.Tensor] = []
    model.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    torch_epoch(torch, model, torch_optimizer(torch, "sgd", model, 0.1), x, y, drop_last=drop_last)
    assert [len(b) for b in seen] == sizes
    if not drop_last:  # a permutation: every example exactly once
        rows = torch.cat(seen)
        assert len(torch.unique(rows, dim=0)) == len(torch.unique(x, dim=0))


def test_torch_accuracy_counts_correct_predictions_in_eval_mode():
    class Fixed(torch.nn.Module):  # predicts the first pixel as the class
        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0].long(), 10).float()

    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    y = torch.tensor([1, 2, 0, 4])
    model = Fixed().train()
    assert torch_accuracy(torch, model, x, y, batch_size=3) == 0.75
    assert not model.training
    assert math.isnan(torch_accuracy(torch, model, x[:0], y[:0]))


def test_torch_tensors_standardise_like_torchvision(tiny):
    x, _ = torch_tensors(
        torch, tiny.train.images[:4], tiny.train.labels[:4], nchw=True, normalize=True
    )
    raw = tiny.train.images[:4].transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(x.numpy(), (raw - 0.1307) / 0.3081, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_cnn_torch_trains_and_writes_the_cnn_mnist_result_keys(tiny, tmp_path, capsys, monkeypatch):
    """Ten epochs on synthetic digits: the cost falls, the network learns them, and
    results.json has cnn_mnist's keys (so the two compare line by line)."""
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "torch"
    run_main(
        cnn_torch.main, ["--epochs", "10", "--seeds", "2", "--threads", "1", "--out", str(out)]
    )
    assert "homework (PyTorch)" in capsys.readouterr().out
    r = json.loads((out / "results.json").read_text())
    for key in (
        "experiment",
        "recipe",
        "epochs",
        "hparams",
        "test_accuracy",
        "test_accuracy_mean",
        "test_accuracy_std",
        "seconds_per_seed",
        "wall_seconds",
        "history",
    ):
        assert key in r, key
    assert r["experiment"] == "cnn_torch" and r["seeds"] == [0, 1] and r["threads"] == 1
    assert r["hparams"]["learning_rate"] == 1e-3 and r["hparams"]["last_batch"] == "kept"
    cost = np.array(r["history"]["train_cost"])
    val = np.array(r["history"]["val_accuracy"])
    assert cost.shape == val.shape == (2, 10) and np.all(cost[:, -1] < cost[:, 0])
    assert min(r["test_accuracy"]) > 0.9 and val[:, -1].min() > 0.9
    assert r["test_accuracy"][0] != r["test_accuracy"][1] or cost[0, 0] != cost[1, 0]
    assert (out / "val_accuracy.png").is_file() and (out / "table.md").is_file()
    weights = torch.load(out / "checkpoints" / "homework_seed1.pt")
    model = torch_cnn(torch, None)
    model.load_state_dict(weights)  # the trained network, as PyTorch saves one
    x, y = torch_tensors(torch, tiny.test.images, tiny.test.labels, nchw=True)
    assert torch_accuracy(torch, model, x, y) == r["test_accuracy"][1]
    # run again: finished, nothing trained, the same results
    run_main(
        cnn_torch.main, ["--epochs", "10", "--seeds", "2", "--threads", "1", "--out", str(out)]
    )
    assert "already finished" in capsys.readouterr().err


@pytest.mark.slow
def test_cnn_torch_stops_on_ctrl_c_and_resumes(tiny, tmp_path, capsys, monkeypatch):
    """Ctrl-C during seed 1: exit 130 with how to resume; the rerun keeps seed 0, trains
    seed 1 again, and ends as an uninterrupted run does."""
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    argv = ["--epochs", "2", "--seeds", "2", "--threads", "1"]
    real = cnn_pipeline.train_cnn

    def interrupted(torch_, hp, data, seed, on_epoch):
        def press_ctrl_c(epoch, *args):
            if (seed, epoch) == (1, 1):
                signal.raise_signal(signal.SIGINT)  # once, as a user would, mid-seed
            on_epoch(epoch, *args)

        return real(torch_, hp, data, seed, press_ctrl_c)

    monkeypatch.setattr(cnn_pipeline, "train_cnn", interrupted)
    with pytest.raises(SystemExit) as stopped:
        run_main(cnn_torch.main, [*argv, "--out", str(tmp_path / "a")])
    assert stopped.value.code == 130
    assert "rerun the same command" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "a" / "state").iterdir()) == ["seed0.json"]
    monkeypatch.setattr(cnn_pipeline, "train_cnn", real)
    run_main(cnn_torch.main, [*argv, "--out", str(tmp_path / "a")])
    run_main(cnn_torch.main, [*argv, "--out", str(tmp_path / "b")])
    resumed, straight = (
        json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b")
    )
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert resumed["history"] == straight["history"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--train-on", "val"], "--train-on 'val'"),
        (["--seeds", "0"], "--seeds 0"),
        (["--threads", "0"], "--threads 0"),
        (["--first-seed", "-1"], "--first-seed -1"),
    ],
)
def test_cnn_torch_refuses_bad_input_in_one_line(bad_input, tmp_path, argv, message):
    bad_input(cnn_torch.main, argv, message, tmp_path / "out")


def test_cnn_torch_without_torch_says_how_to_install_it(bad_input, tmp_path, monkeypatch):
    monkeypatch.setattr(cnn_pipeline, "import_torch", lambda threads=None: None)
    bad_input(cnn_torch.main, [], "pip install torch==2.13.0", tmp_path / "out")

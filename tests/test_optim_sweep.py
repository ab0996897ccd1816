"""The main job's command line: bad input ends as one line and writes nothing; --quick runs."""

from __future__ import annotations

import json

import pytest

from experiments import optim_sweep
from hw5jax.cli import run_main


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--optimizers", "sgd,rmsprop"], "unknown optimizer 'rmsprop'"),
        (["--epochs", "0"], "--epochs 0: must be at least 1"),
        (["--sgd-grid=0.1,-0.3"], "--sgd-grid: -0.3 is not positive"),
        (["--momentum-mu=0.5,1.2"], "--momentum-mu: 1.2 is not in [0, 1)"),
        (["--seeds", "0"], "--seeds 0: must be at least 1"),
        (["--epochs", "three"], "invalid int value"),
        (["--data", "/no/such/mnist"], "unknown data source"),
    ],
)
def test_bad_input_is_one_line_nonzero_exit_and_nothing_written(argv, message, tmp_path, bad_input):
    bad_input(optim_sweep.main, argv, message, tmp_path / "out")


@pytest.mark.mnist
def test_out_that_is_a_file_is_refused(mnist, tmp_path, bad_input):
    target = tmp_path / "file"
    target.write_text("keep me")
    bad_input(optim_sweep.main, ["--quick", "--optimizers", "sgd"], "is not a directory", target)
    assert target.read_text() == "keep me"


@pytest.mark.mnist
def test_quick_sweep_writes_the_contracted_results(mnist, tmp_path, capsys):
    out = tmp_path / "sweep"
    run_main(optim_sweep.main, ["--quick", "--optimizers", "sgd,adam", "--out", str(out)])
    assert f"results: {out}/results.json" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "optim_sweep"
    assert results["data"] == {"source": "embedded", "train": 50_000, "val": 10_000, "test": 10_000}
    assert results["model"]["layers"] == [784, 100, 100, 10]
    assert results["seeds"] == [0] and results["epochs"] == 1
    assert set(results["optimizers"]) == {"sgd", "adam"}
    for entry in results["optimizers"].values():
        assert len(entry["grid"]) == 2
        assert entry["selected"] in [g["hparams"] for g in entry["grid"]]
        best = max(g["val_accuracy"] for g in entry["grid"] if not g["diverged"])
        assert entry["history"]["val_accuracy"][0][-1] == best
        assert len(entry["test_accuracy"]) == 1 and entry["test_accuracy_mean"] > 0.9
        assert len(entry["history"]["train_cost"][0]) == 1
    for name in ("train_cost.png", "val_accuracy.png", "table.md"):
        assert (out / name).stat().st_size > 0
    assert "97.92%" in (out / "table.md").read_text()  # the homework's figure beside ours
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["adam_seed0", "sgd_seed0"]


def test_result_files_are_written_atomically_and_readable(tmp_path):
    from hw5jax.runs.files import write_json

    path = write_json(tmp_path / "r.json", {"x": float("nan"), "y": [1, 2]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1, 2]}
    assert path.stat().st_mode & 0o044  # group/other may read, as with a plain open()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind

"""Interrupted runs continue where they stopped and give the results of a run never
interrupted; an output directory belongs to one command; broken state is an error."""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import SHORT_SWEEP

from experiments import optim_sweep
from hw5jax.cli import run_main
from hw5jax.core.fit import fit, fit_grid
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.models.mlp import MLP
from hw5jax.runs.checkpoint import CheckpointError
from hw5jax.runs.rundir import RunDir
from hw5jax.runs.store import ProgramStore


def segments(directory: Path):
    """fit_grid's stores: one ProgramStore per segment, under `directory`."""
    return lambda part: ProgramStore(directory / part)


GRID = [{"learning_rate": lr} for lr in (0.01, 0.03, 0.1, 0.3)]


@pytest.fixture(scope="module")
def trainer():
    return Trainer(functools.partial(MLP, (784, 16, 10)), "sgd", batch_size=64)


class Stop(KeyboardInterrupt):
    """Ctrl-C, raised from inside the loop after a given epoch."""


def stop_after(epoch):
    def on_epoch(e, _state, _metrics):
        if e == epoch:
            raise Stop

    return on_epoch


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.history == y.history and x.diverged == y.diverged and x.epochs == y.epochs
        for p, q in zip(jax.tree.leaves(x.state), jax.tree.leaves(y.state), strict=True):
            np.testing.assert_array_equal(np.asarray(p), np.asarray(q))


# Epochs the repeated call reports: a restored segment once (its last epoch), then training.
@pytest.mark.parametrize("stop_at,reported", [(1, [1, 2, 3, 4]), (2, [2, 3, 4]), (3, [2, 3, 4])])
def test_grid_interrupted_then_repeated_equals_uninterrupted(
    trainer, tiny, tmp_path, stop_at, reported
):
    # keep=(2, 2): the halving happens between epochs 2 and 3, so this stops before, at and
    # after it.
    kw = dict(epochs=4, keep=(2, 2), mesh=None)
    plain = fit_grid(trainer, tiny, GRID, [0] * 4, **kw)
    assert [r.epochs for r in plain].count(4) == 2  # two stopped after epoch 2
    with pytest.raises(Stop):
        fit_grid(
            trainer,
            tiny,
            GRID,
            [0] * 4,
            store=segments(tmp_path),
            on_epoch=stop_after(stop_at),
            **kw,
        )
    seen = []
    resumed = fit_grid(
        trainer,
        tiny,
        GRID,
        [0] * 4,
        store=segments(tmp_path),
        on_epoch=lambda e, s, m: seen.append(e),
        **kw,
    )
    assert_same(resumed, plain)
    assert seen == reported  # continued from the checkpoint, to the end
    # A finished program only restores.
    seen.clear()
    assert_same(
        fit_grid(
            trainer,
            tiny,
            GRID,
            [0] * 4,
            store=segments(tmp_path),
            on_epoch=lambda e, s, m: seen.append(e),
            **kw,
        ),
        plain,
    )
    assert seen == [2, 4]  # each segment reports its restored last epoch once


def test_single_run_resumes(trainer, tiny, tmp_path):
    plain = fit(trainer, tiny, {"learning_rate": 0.1}, seed=3, epochs=3)
    with pytest.raises(Stop):
        fit(
            trainer,
            tiny,
            {"learning_rate": 0.1},
            seed=3,
            epochs=3,
            store=ProgramStore(tmp_path),
            on_epoch=stop_after(2),
        )
    assert_same(
        [
            fit(
                trainer,
                tiny,
                {"learning_rate": 0.1},
                seed=3,
                epochs=3,
                store=ProgramStore(tmp_path),
            )
        ],
        [plain],
    )


def test_only_the_latest_two_epochs_are_kept(trainer, tiny, tmp_path):
    fit(trainer, tiny, {"learning_rate": 0.1}, seed=0, epochs=4, store=ProgramStore(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3", "4"]


def test_corrupt_checkpoint_is_refused_not_restarted(trainer, tiny, tmp_path):
    fit(trainer, tiny, {"learning_rate": 0.1}, seed=0, epochs=2, store=ProgramStore(tmp_path))
    for f in (tmp_path / "2").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "record" not in f.parts:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot resume") as info:
        fit(trainer, tiny, {"learning_rate": 0.1}, seed=0, epochs=2, store=ProgramStore(tmp_path))
    assert len(str(info.value).splitlines()) == 1


def test_checkpoint_of_another_shape_is_refused(tiny, tmp_path):
    small = Trainer(functools.partial(MLP, (784, 16, 10)), "sgd", batch_size=64)
    wide = Trainer(functools.partial(MLP, (784, 32, 10)), "sgd", batch_size=64)
    fit(small, tiny, {"learning_rate": 0.1}, seed=0, epochs=1, store=ProgramStore(tmp_path))
    with pytest.raises(CheckpointError):
        fit(wide, tiny, {"learning_rate": 0.1}, seed=0, epochs=2, store=ProgramStore(tmp_path))


# ---------------------------------------------------------------- the output directory


def test_run_dir_is_claimed_by_one_command(tmp_path):
    out = tmp_path / "out"
    RunDir.claim(out, "optim_sweep", {"epochs": 30, "out": "x", "grid": (0.1, 0.3)})
    again = RunDir.claim(out, "optim_sweep", {"epochs": 30, "out": "y", "grid": (0.1, 0.3)})
    assert again.finished() is None and not again.started()
    with pytest.raises(ConfigError, match=r"--epochs 5 \(was 30\)"):
        RunDir.claim(out, "optim_sweep", {"epochs": 5, "grid": (0.1, 0.3)})
    with pytest.raises(ConfigError, match="holds a run of 'optim_sweep'"):
        RunDir.claim(out, "batchnorm", {"epochs": 30, "grid": (0.1, 0.3)})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run of this project"):
        RunDir.claim(tmp_path / "other", "optim_sweep", {})


def test_stage_is_computed_once(tmp_path):
    run_dir = RunDir.claim(tmp_path, "x", {})
    calls = []
    compute = lambda: calls.append(1) or {"value": 0.1 + 0.2}  # noqa: E731
    assert run_dir.stage("a", compute) == {"value": 0.1 + 0.2}
    skipped = []
    again = run_dir.stage("a", compute, on_skip=lambda: skipped.append(1))
    assert again == {"value": 0.30000000000000004}  # read back exactly
    assert calls == [1] and skipped == [1]


QUICK = SHORT_SWEEP


@pytest.mark.mnist
def test_finished_directory_trains_nothing_and_other_commands_are_refused(
    mnist, tmp_path, capsys, bad_input
):
    out = tmp_path / "sweep"
    argv = ["--quick", "--optimizers", "sgd", "--out", str(out)]
    run_main(optim_sweep.main, argv)
    first = (out / "results.json").read_text()
    capsys.readouterr()
    run_main(optim_sweep.main, argv)
    captured = capsys.readouterr()
    assert "already finished; nothing to train" in captured.err
    assert "| sgd |" in captured.out  # the table again, from results.json
    assert (out / "results.json").read_text() == first
    bad_input(
        optim_sweep.main,
        ["--quick", "--optimizers", "adam"],
        "holds a run of another command (--optimizers adam (was sgd))",
        out,
    )


def _sweep(out: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.optim_sweep", *QUICK, "--out", str(out)],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _results(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {
        name: {k: entry[k] for k in ("grid", "selected", "test_accuracy", "history")}
        for name, entry in results["optimizers"].items()
    }


@pytest.mark.slow
@pytest.mark.mnist
def test_sweep_killed_at_random_points_resumes_to_the_same_results(mnist, tmp_path):
    """A real interruption: the process is SIGKILLed (mid-epoch, mid-checkpoint, wherever
    the clock says) several times, then finishes; every number equals an uninterrupted run."""
    clean = tmp_path / "clean"
    start = time.monotonic()
    done = _sweep(clean)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err[-2000:]
    took = time.monotonic() - start

    out = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for _ in range(6):  # until killed 3 times (a rerun has less left to do: it may finish)
        proc = _sweep(out)
        try:
            # a rerun starts with a warm compilation cache and less left to do: kill early
            proc.wait(timeout=rng.uniform(0.15, 0.45) * took)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
        if kills == 3 or proc.returncode == 0:
            break
    final = _sweep(out)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]
    assert kills >= 2, "the runs finished before they could be killed"
    assert _results(out) == _results(clean)
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"


@pytest.mark.slow
@pytest.mark.mnist
def test_ctrl_c_exits_cleanly_and_says_how_to_resume(mnist, tmp_path):
    out = tmp_path / "sweep"
    proc = _sweep(out)
    deadline = time.monotonic() + 120
    while not (out / "state").is_dir() and time.monotonic() < deadline:  # training started
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"rerun the same command with --out {out}" in last and "Traceback" not in err
    assert not (out / "results.json").exists()
    resumed = _sweep(out)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and "continuing the interrupted run" in err, err[-2000:]
    assert os.path.isfile(out / "results.json")


@pytest.mark.slow
@pytest.mark.mnist
def test_cnn_records_each_seed_and_a_rerun_trains_nothing(mnist, tmp_path, capsys):
    from experiments import cnn_mnist

    out = tmp_path / "cnn"
    argv = ["--recipe", "homework", "--quick", "--out", str(out)]
    run_main(cnn_mnist.main, argv)
    assert (out / "state" / "seed0.json").is_file()  # the finished seed's record
    assert sorted(p.name for p in (out / "state" / "seed0").iterdir()) == ["1"]  # its epoch
    first = (out / "results.json").read_text()
    capsys.readouterr()
    run_main(cnn_mnist.main, argv)
    assert "nothing to train" in capsys.readouterr().err
    assert (out / "results.json").read_text() == first


@pytest.mark.slow
@pytest.mark.mnist
def test_cnn_run_is_not_resumed_under_changed_recipe_defaults(mnist, tmp_path, monkeypatch, capsys):
    from experiments import cnn_mnist
    from hw5jax.configs.cnn import RECIPES

    out = tmp_path / "cnn"
    argv = ["--recipe", "homework", "--quick", "--out", str(out)]
    run_main(cnn_mnist.main, argv)
    # The same command line, but the recipe's default has changed since the run started.
    monkeypatch.setitem(RECIPES, "homework", {**RECIPES["homework"], "learning_rate": 3e-3})
    with pytest.raises(SystemExit) as exit_info:
        run_main(cnn_mnist.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--hparams" in err and "0.003" in err, err

"""Watching a run: OUT/metrics.jsonl holds one line per epoch per run, the numbers of
results.json's histories, continued without duplicates by a resumed run; --tensorboard's event
files hold the same scalars."""

from __future__ import annotations

import json
import math
import struct
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

from experiments import cnn_mnist, cnn_torch, optim_sweep
from hw5jax import data as mnist_data
from hw5jax.cli import run_main
from hw5jax.configs.optim_sweep import SweepConfig
from hw5jax.errors import Interrupted
from hw5jax.pipelines import common
from hw5jax.pipelines import optim_sweep as sweep_pipeline
from hw5jax.runs import metrics as metrics_module
from hw5jax.runs.metrics import FILE, MetricsLog, read_lines, run_label, step_size

FIELDS = [
    "experiment",
    "stage",
    "run",
    "seed",
    "hparams",
    "epoch",
    "train_cost",
    "val_accuracy",
    "learning_rate",
    "seconds",
]
# A sweep small enough for the tiny data: a grid of 3 cut to 1 after epoch 1 (successive
# halving), then a seeds program for seed 1 (seed 0 is the grid's own run).
SWEEP = [
    "--optimizers",
    "sgd",
    "--sgd-grid",
    "0.03,0.3,1.0",
    "--epochs",
    "3",
    "--prune-at",
    "1",
    "--seeds",
    "2",
]
STEPS = 512 // 128  # the tiny data's mini-batches per epoch


def read_events(path: Path) -> list[event_pb2.Event]:
    """The events of one TensorBoard file: TFRecord framing (uint64 length, its masked
    crc32c, the data, its masked crc32c), each record an `Event`; every crc checked."""
    data, pos, events = path.read_bytes(), 0, []
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        body = data[pos + 12 : pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        assert header_crc == masked_crc32c(header) and body_crc == masked_crc32c(body)
        event = event_pb2.Event()
        event.ParseFromString(body)
        events.append(event)
        pos += 16 + length
    assert pos == len(data)
    return events


def tensorboard_scalars(run_dir: Path) -> dict[tuple[str, int], float]:
    """(tag, step) -> value of every scalar in every event file of one TensorBoard run."""
    found: dict[tuple[str, int], float] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in read_events(path):
            for value in event.summary.value:
                key = (value.tag, int(event.step))
                assert key not in found, f"{key} written twice"
                found[key] = value.simple_value
    return found


def by_run(lines: list[dict]) -> dict[tuple[str, int], list[dict]]:
    runs: dict[tuple[str, int], list[dict]] = {}
    for line in lines:
        runs.setdefault((line["stage"], line["run"]), []).append(line)
    return runs


def check_against_results(lines: list[dict], entry: dict, name: str, epochs: int) -> None:
    """Every line's numbers are results.json's: the grid's last epochs and the seeds'
    histories (seed 0 being the grid's selected run)."""
    runs = by_run(lines)
    grid = f"{name}: grid of {len(entry['grid'])}"
    for i, point in enumerate(entry["grid"]):
        mine = runs[(grid, i)]
        assert [m["epoch"] for m in mine] == list(range(1, point["epochs"] + 1))
        assert mine[-1]["val_accuracy"] == point["val_accuracy"]
        assert all(m["hparams"] == point["hparams"] and m["seed"] == 0 for m in mine)
    best = [g["hparams"] for g in entry["grid"]].index(entry["selected"])
    later = entry["seeds"][1:]
    for k, seed in enumerate(entry["seeds"]):
        mine = runs[(grid, best)] if k == 0 else runs[(f"{name}: {len(later)} seed(s)", k - 1)]
        assert [m["seed"] for m in mine] == [seed] * epochs
        assert [m["train_cost"] for m in mine] == entry["history"]["train_cost"][k]
        assert [m["val_accuracy"] for m in mine] == entry["history"]["val_accuracy"][k]


def no_duplicates(lines: list[dict]) -> bool:
    counts = Counter((m["stage"], m["run"], m["epoch"]) for m in lines)
    return max(counts.values()) == 1


@pytest.fixture(scope="module")
def sweep(tiny, tmp_path_factory):
    """A sweep on the tiny data, never interrupted, with --tensorboard."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist_data, "load_mnist", lambda source: tiny)
        run_main(optim_sweep.main, [*SWEEP, "--tensorboard", "--out", str(out)])
    return out


@pytest.mark.slow
def test_a_sweep_writes_one_line_per_epoch_per_run_with_the_results_numbers(sweep):
    results = json.loads((sweep / "results.json").read_text())
    lines = read_lines(sweep / FILE)
    assert all(list(m) == FIELDS for m in lines)
    assert {m["experiment"] for m in lines} == {"optim_sweep"}
    assert no_duplicates(lines)
    # every grid point up to the cut, the survivors on (1, or 2 with two devices), seed 1
    entry = results["optimizers"]["sgd"]
    assert sorted(g["epochs"] for g in entry["grid"])[0] == 1  # at least one was cut
    assert len(lines) == sum(g["epochs"] for g in entry["grid"]) + 3
    check_against_results(lines, results["optimizers"]["sgd"], "sgd", epochs=3)
    for line in lines:  # cosine from 1 to 0 over the run; the epoch's last update
        update = line["epoch"] * STEPS - 1
        factor = 0.5 * (1 + math.cos(math.pi * update / (3 * STEPS)))
        eta = line["hparams"]["learning_rate"]
        assert line["learning_rate"] == pytest.approx(eta * factor, rel=1e-6, abs=1e-7 * eta)
    for mine in by_run(lines).values():
        seconds = [m["seconds"] for m in mine]
        assert seconds == sorted(seconds) and seconds[0] > 0


@pytest.mark.slow
def test_tensorboard_files_hold_the_lines_scalars(sweep):
    lines = read_lines(sweep / FILE)
    for (stage, run), mine in by_run(lines).items():
        label = run_label(run, mine[0]["seed"], mine[0]["hparams"])
        stage_dir = metrics_module._slug(stage)
        scalars = tensorboard_scalars(sweep / "tensorboard" / stage_dir / label)
        expected = {
            (tag, m["epoch"]): m[tag]
            for m in mine
            for tag in ("train_cost", "val_accuracy", "learning_rate")
        }
        assert scalars.keys() == expected.keys()
        for key, value in expected.items():
            assert scalars[key] == np.float32(value), key  # TensorBoard keeps float32


@pytest.mark.slow
def test_an_interrupted_sweep_continues_the_file_without_duplicates(sweep, tiny, tmp_path):
    """Ctrl-C after grid epoch 2 (past the halving cut), then a kill between the epoch's
    checkpoint and its line (the line removed) and in the middle of a line (half of one
    appended): the resumed run writes the missing line once and every line equals the
    uninterrupted run's, but for the seconds."""
    out = tmp_path / "run"
    calls = {"n": 0}

    def ctrl_c_at_the_second_epoch() -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    config = optim_sweep_config(out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist_data, "load_mnist", lambda source: tiny)
        patch.setattr(common, "stop_point", ctrl_c_at_the_second_epoch)
        with pytest.raises(Interrupted):
            sweep_pipeline.run(config)
    before = [m["epoch"] for m in read_lines(out / FILE)]
    assert before[:3] == [1, 1, 1] and set(before[3:]) == {2}  # the survivors' epoch 2
    text = (out / FILE).read_text().splitlines(keepends=True)
    (out / FILE).write_text("".join(text[:3]) + text[3][:40])  # epoch 2 lost, half a line
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist_data, "load_mnist", lambda source: tiny)
        run_main(optim_sweep.main, [*SWEEP, "--tensorboard", "--out", str(out)])
    lines = read_lines(out / FILE)
    assert (out / FILE).read_text().count("\n") == len(lines)  # the half line is gone
    assert no_duplicates(lines)
    drop = {"seconds"}
    expected = [{k: v for k, v in m.items() if k not in drop} for m in read_lines(sweep / FILE)]
    assert [{k: v for k, v in m.items() if k not in drop} for m in lines] == expected
    results = json.loads((out / "results.json").read_text())
    check_against_results(lines, results["optimizers"]["sgd"], "sgd", epochs=3)


def optim_sweep_config(out: Path) -> SweepConfig:
    return SweepConfig(
        optimizers=("sgd",),
        sgd_grid=(0.03, 0.3, 1.0),
        epochs=3,
        prune_at=1,
        seeds=2,
        out=str(out),
    )


def write_some(log: MetricsLog, stage: str, epochs, elapsed) -> None:
    for epoch, seconds in zip(epochs, elapsed, strict=True):
        log.write(
            stage,
            0,
            epoch=epoch,
            seed=0,
            hparams={"learning_rate": 0.1},
            train_cost=1.0 / epoch,
            val_accuracy=None,
            learning_rate=0.1,
            elapsed=seconds,
        )


def test_a_trailing_partial_line_is_dropped_on_open(tmp_path):
    with MetricsLog(tmp_path, "x") as log:
        write_some(log, "seed 0", [1, 2], [1.0, 2.0])
    with open(tmp_path / FILE, "a") as f:
        f.write('{"experiment": "x", "stage": "seed 0", "ru')  # a kill mid-line
    with MetricsLog(tmp_path, "x") as log:
        assert (tmp_path / FILE).read_text().endswith("}\n")
        write_some(log, "seed 0", [2, 3], [0.5, 1.5])  # epoch 2 restored, 3 trained
    lines = read_lines(tmp_path / FILE)
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    assert all(json.loads(t) for t in (tmp_path / FILE).read_text().splitlines())
    # seconds go on from the restored epoch's: 2.0 + (1.5 - 0.5)
    assert [m["seconds"] for m in lines] == [1.0, 2.0, 3.0]
    assert lines[0]["val_accuracy"] is None and lines[1]["train_cost"] == 0.5


def test_a_missing_epoch_is_written_and_continues_the_seconds(tmp_path):
    with MetricsLog(tmp_path, "x") as log:
        write_some(log, "seed 0", [1], [4.0])
    with MetricsLog(tmp_path, "x") as log:  # epoch 2's checkpoint was saved, its line not
        write_some(log, "seed 0", [2, 3], [0.5, 1.0])
        write_some(log, "seed 1", [1], [0.25])
    lines = read_lines(tmp_path / FILE)
    assert [(m["stage"], m["epoch"], m["seconds"]) for m in lines] == [
        ("seed 0", 1, 4.0),
        ("seed 0", 2, 4.5),
        ("seed 0", 3, 5.0),
        ("seed 1", 1, 0.25),
    ]


def test_non_finite_numbers_are_null_and_other_processes_write_nothing(tmp_path, monkeypatch):
    with MetricsLog(tmp_path, "x") as log:
        log.write(
            "s",
            0,
            epoch=1,
            seed=0,
            hparams={},
            train_cost=float("nan"),
            val_accuracy=float("inf"),
            learning_rate=None,
            elapsed=1.0,
        )
    (line,) = read_lines(tmp_path / FILE)
    assert line["train_cost"] is None and line["val_accuracy"] is None
    monkeypatch.setattr(metrics_module, "is_primary", lambda: False)
    other = tmp_path / "other"
    other.mkdir()
    with MetricsLog(other, "x", tensorboard=True) as log:
        write_some(log, "seed 0", [1], [1.0])
    assert list(other.iterdir()) == []


def test_step_size_is_the_learning_rate_times_the_schedule_at_the_epochs_last_update():
    class Stub:
        n_train, batch_size = 1000, 100
        schedule = None

    assert step_size(Stub())({"learning_rate": 0.5}, 3) == 0.5
    assert step_size(Stub())({"momentum": 0.9}, 3) is None
    Stub.schedule = staticmethod(lambda update: 1.0 - update / 20)
    assert step_size(Stub())({"learning_rate": 0.5}, 1) == pytest.approx(0.5 * (1 - 9 / 20))


@pytest.mark.slow
def test_a_cnn_run_writes_a_line_per_epoch(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "cnn"
    small = ["--recipe", "homework", "--channels", "4,8", "--hidden", "16", "--epochs", "2"]
    run_main(cnn_mnist.main, [*small, "--seeds", "2", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    lines = read_lines(out / FILE)
    assert [(m["stage"], m["run"], m["seed"], m["epoch"]) for m in lines] == [
        ("seed 0", 0, 0, 1),
        ("seed 0", 0, 0, 2),
        ("seed 1", 0, 1, 1),
        ("seed 1", 0, 1, 2),
    ]
    for k, stage in enumerate(("seed 0", "seed 1")):
        mine = [m for m in lines if m["stage"] == stage]
        assert [m["train_cost"] for m in mine] == results["history"]["train_cost"][k]
        assert [m["val_accuracy"] for m in mine] == results["history"]["val_accuracy"][k]
    assert all(m["learning_rate"] == pytest.approx(1e-3) for m in lines)  # constant Adam
    assert all(m["hparams"] == {"learning_rate": 1e-3} for m in lines)
    assert not (out / "tensorboard").exists()


@pytest.mark.slow
def test_the_torch_twin_writes_a_line_per_epoch_and_tensorboard(tiny, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(mnist_data, "load_mnist", lambda source: tiny)
    out = tmp_path / "torch"
    run_main(cnn_torch.main, ["--quick", "--threads", "1", "--tensorboard", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    (line,) = read_lines(out / FILE)
    assert (line["experiment"], line["stage"], line["run"], line["seed"]) == (
        "cnn_torch",
        "seed 0",
        0,
        0,
    )
    assert line["learning_rate"] == 1e-3 and line["hparams"] == {"learning_rate": 1e-3}
    assert [line["train_cost"]] == results["history"]["train_cost"][0]
    assert [line["val_accuracy"]] == results["history"]["val_accuracy"][0]
    scalars = tensorboard_scalars(out / "tensorboard" / "seed_0" / "run00_seed0_lr0.001")
    assert scalars == {
        (tag, 1): np.float32(line[tag]) for tag in ("train_cost", "val_accuracy", "learning_rate")
    }


def test_tensorboard_without_tensorboardx_is_one_line_and_writes_nothing(
    tmp_path, monkeypatch, bad_input
):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    bad_input(optim_sweep.main, ["--tensorboard"], "needs tensorboardX", tmp_path / "out")

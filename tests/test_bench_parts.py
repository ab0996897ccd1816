"""The benchmark's parts: where it runs (`--device`), the grid sizes, the per-run-epoch
arithmetic and figure of the grid scaling, and the sweep's runs as PyTorch retrains them."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import optax
import pytest

from experiments import benchmark
from hw5jax.bench import device as device_mod
from hw5jax.bench import scaling, sweep
from hw5jax.bench.device import resolve_device, synced
from hw5jax.errors import ConfigError


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--grid-sizes", "0"], "--grid-sizes: 0 is not in 1..1024"),
        (["--grid-sizes", "4,8,4"], "--grid-sizes: 4,8,4 repeats a size"),
        (["--device", "tpu"], "--device"),
        (["--device", "gpu"], "--device gpu: JAX sees no GPU"),
    ],
)
def test_bad_benchmark_input_is_one_line(argv, message, tmp_path, bad_input):
    bad_input(benchmark.main, argv, message, tmp_path / "out")


def fake_torch(cuda: bool):
    calls = []
    cuda_mod = types.SimpleNamespace(
        is_available=lambda: cuda,
        get_device_name=lambda i: "Fake GPU",
        synchronize=lambda: calls.append("sync"),
    )
    return types.SimpleNamespace(cuda=cuda_mod, __version__="0.0"), calls


def fake_gpus(monkeypatch, backend: str = "gpu"):
    gpu = types.SimpleNamespace(device_kind="Fake H")
    monkeypatch.setattr(device_mod.jax, "devices", lambda kind=None: [gpu, gpu])
    monkeypatch.setattr(device_mod.jax, "default_backend", lambda: backend)


def test_the_gpu_is_taken_when_both_sides_see_it(monkeypatch):
    fake_gpus(monkeypatch)
    torch, _ = fake_torch(cuda=True)
    d = resolve_device("gpu", torch)
    assert (d.name, d.torch) == ("gpu", "cuda") and len(d.jax_devices) == 2
    assert d.record() == {
        "device": "gpu",
        "gpu_names": {"jax": ["Fake H", "Fake H"], "torch": "Fake GPU"},
    }
    assert resolve_device("gpu", None).gpu_names == {"jax": ["Fake H", "Fake H"], "torch": None}


def test_a_gpu_missing_on_either_side_is_named(monkeypatch):
    fake_gpus(monkeypatch)
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        resolve_device("gpu", fake_torch(cuda=False)[0])
    fake_gpus(monkeypatch, backend="cpu")
    with pytest.raises(ConfigError, match="default backend is 'cpu', not the GPU"):
        resolve_device("gpu", fake_torch(cuda=True)[0])
    assert resolve_device("cpu", None).record() == {"device": "cpu", "gpu_names": None}


def test_timing_waits_for_cuda_and_only_for_cuda():
    torch, calls = fake_torch(cuda=True)
    assert synced(torch, "cpu", lambda: 1)() == 1 and calls == []
    assert synced(torch, "cuda", lambda: 2)() == 2 and calls == ["sync"]


def test_per_run_epoch_divides_each_side_by_its_runs():
    timing = {
        "hw5jax_s": 3.2,
        "torch_s": 2.0,
        "hw5jax_all_s": [3.2, 4.0],
        "torch_all_s": [2.0, 1.6],
        "hw5jax_first_call_s": 5.0,
        "compile_s": 1.0,
    }
    r = scaling.per_run_epoch(timing, size=32, torch_runs=4, run_flops=10**10, peak=100.0)
    assert r["hw5jax_run_epoch_s"] == pytest.approx(0.1)
    assert r["torch_run_epoch_s"] == pytest.approx(0.5)
    assert r["ratio"] == pytest.approx(5.0)
    assert r["ratio_range"] == pytest.approx([(1.6 / 4) / (4.0 / 32), 5.0])
    assert r["hw5jax_gflops"] == pytest.approx(1e10 * 32 / 3.2 / 1e9)
    assert r["limit_run_epoch_s"] == pytest.approx(0.1)
    untimed = dict(timing, torch_s=None, torch_all_s=[])
    r = scaling.per_run_epoch(untimed, size=32, torch_runs=0, run_flops=10**10, peak=100.0)
    assert r["ratio"] is None and r["ratio_range"] is None


def test_the_scaling_figure_is_written(tmp_path):
    rows = {
        str(n): {
            "runs": n,
            "hw5jax_run_epoch_s": 0.2 / n**0.5,
            "torch_run_epoch_s": None if n == 4 else 0.4,
            "limit_run_epoch_s": 0.1,
        }
        for n in (1, 2, 4)
    }
    scaling.plot_scaling({"sizes": rows}, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def sweep_results(grid_epochs: int) -> dict:
    """A finished sweep's results, as `sweep_runs` reads them: two optimizers, two seeds."""
    return {
        "seeds": [0, 1],
        "epochs": 3,
        "grid_epochs": grid_epochs,
        "optimizers": {
            "sgd": {
                "selected": {"learning_rate": 0.1},
                "grid": [
                    {"hparams": {"learning_rate": 0.01}, "epochs": 1},
                    {"hparams": {"learning_rate": 0.1}, "epochs": grid_epochs},
                ],
            },
            "adam": {
                "selected": None,  # every point diverged: no final runs
                "grid": [{"hparams": {"learning_rate": 1.0}, "epochs": 1}],
            },
        },
    }


def test_the_sweeps_runs_come_from_its_results():
    runs = sweep.sweep_runs(sweep_results(grid_epochs=3))
    keys = [(r.optimizer, r.stage, r.hparams, r.seed, r.epochs, r.tested) for r in runs]
    assert keys == [
        ("sgd", "grid", (("learning_rate", 0.01),), 0, 1, False),
        ("sgd", "grid", (("learning_rate", 0.1),), 0, 3, True),  # seed 0's final run
        ("sgd", "seeds", (("learning_rate", 0.1),), 1, 3, True),
        ("adam", "grid", (("learning_rate", 1.0),), 0, 1, False),
    ]
    # A grid shorter than the sweep: every seed trains its final run again.
    runs = sweep.sweep_runs(sweep_results(grid_epochs=2))
    assert [(r.stage, r.seed, r.tested) for r in runs if r.optimizer == "sgd"] == [
        ("grid", 0, False),
        ("grid", 0, False),
        ("seeds", 0, True),
        ("seeds", 1, True),
    ]


def write_log(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_derived_runs_are_checked_against_the_log(tmp_path):
    runs = sweep.sweep_runs(sweep_results(grid_epochs=3))
    grid = "sgd: grid of 2"
    records = [
        {"stage": grid, "run": 0, "seed": 0, "hparams": {"learning_rate": 0.01}, "epoch": 1},
        *(
            {"stage": grid, "run": 1, "seed": 0, "hparams": {"learning_rate": 0.1}, "epoch": e}
            for e in (1, 2, 3)
        ),
        *(
            {"stage": "sgd: 1 seed(s)", "run": 0, "seed": 1, "hparams": {"learning_rate": 0.1}}
            | {"epoch": e}
            for e in (1, 2, 3)
        ),
        {"stage": "adam: grid of 1", "run": 0, "seed": 0, "hparams": {"learning_rate": 1.0}}
        | {"epoch": 1},
    ]
    log = tmp_path / "metrics.jsonl"
    write_log(log, records)
    sweep.check_runs(runs, sweep.logged_runs(log))  # they agree
    # A wrong claim: the log shows a run trained 2 epochs where the results say 3.
    write_log(log, [r for r in records if not (r["stage"] == "sgd: 1 seed(s)" and r["epoch"] == 3)])
    with pytest.raises(ValueError, match="differ from those it logged"):
        sweep.check_runs(runs, sweep.logged_runs(log))


def test_the_torch_schedule_is_optaxs_cosine():
    total = 40
    factor = sweep.cosine_factor(total)
    schedule = optax.cosine_decay_schedule(1.0, total)
    for step in (0, 1, 17, 39, 40, 55):
        assert math.isclose(factor(step), float(schedule(step)), abs_tol=1e-6), step


def test_synthetic_splits_load_like_mnist(tmp_path):
    from hw5jax import data as mnist_data

    source = sweep.write_synthetic(tmp_path / "s.pkl.gz", {"train": 64, "val": 16, "test": 8})
    train, val, test = mnist_data.load_mnist(source)
    assert [len(s.labels) for s in (train, val, test)] == [64, 16, 8]
    assert train.images.shape == (64, 28, 28, 1) and train.images.dtype == np.uint8
    assert set(np.unique(np.concatenate([s.labels for s in (train, val, test)]))) <= set(range(10))


def test_an_option_whose_help_names_its_default_says_it_once():
    from hw5jax.cli import build_parser
    from hw5jax.configs.benchmark import BenchmarkConfig

    text = " ".join(build_parser(BenchmarkConfig).format_help().split())
    assert "(default: the sweep's own, 30; as `optim_sweep --epochs N`) --quick" in text
    assert "(default: None)" not in text
    assert "(default: 1,2,4,8,16,32,64)" in text  # the others keep theirs

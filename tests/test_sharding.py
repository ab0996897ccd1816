"""A sweep's stack of runs sharded over several devices computes what one device computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import free_port, run_as_two_processes

pytestmark = pytest.mark.slow  # the long tier: several processes and devices, each a fresh JAX

SCRIPT = textwrap.dedent("""
    import functools, jax, numpy as np
    from hw5jax.models.mlp import MLP
    from hw5jax.core.sharding import runs_mesh
    from hw5jax.core.fit import fit_grid
    from hw5jax.core.train import Trainer
    from conftest import tiny_mnist

    assert jax.device_count() == 4, jax.devices()
    data = tiny_mnist()
    trainer = Trainer(functools.partial(MLP, (784, 32, 10)), "momentum", batch_size=64)
    grid = [{"learning_rate": lr, "momentum": 0.9} for lr in (0.01, 0.03, 0.1)]  # 3: padded
    spread = []
    record = lambda epoch, state, metrics: spread.append(
        len(jax.tree.leaves(state["params"])[0].sharding.device_set))
    sharded = fit_grid(trainer, data, grid, [0, 1, 2], epochs=2, on_epoch=record)
    assert runs_mesh().size == 4 and spread == [4, 4], spread  # the stack lives on 4 devices
    single = fit_grid(trainer, data, grid, [0, 1, 2], epochs=2, mesh=None)
    assert len(sharded) == len(single) == 3
    worst = 0.0
    for a, b in zip(sharded, single):
        for key in ("train_cost", "val_accuracy"):
            worst = max(worst, float(np.max(np.abs(np.subtract(a.history[key], b.history[key])))))
        for x, y in zip(jax.tree.leaves(a.state["params"]), jax.tree.leaves(b.state["params"])):
            worst = max(worst, float(np.max(np.abs(np.asarray(x) - np.asarray(y)))))
    print("max abs difference", worst)
    assert worst <= 1e-6, worst
""")


def test_sharded_grid_equals_unsharded_on_four_cpu_devices():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": os.path.dirname(__file__),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "max abs difference" in done.stdout


CORES = textwrap.dedent("""
    import os, jax
    from hw5jax.cli import one_device_per_core
    asked = one_device_per_core()
    devices = jax.device_count()
    print(asked, devices, os.environ.get("XLA_FLAGS", ""))
    one_device_per_core()  # JAX has started: a second call changes nothing
    assert jax.device_count() == devices
""")


def test_one_device_per_core_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run(
        [sys.executable, "-c", CORES], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    asked, devices, flags = done.stdout.split(maxsplit=2)
    cores = len(os.sched_getaffinity(0))
    assert int(asked) == int(devices) == cores
    assert "--xla_cpu_multi_thread_eigen=false" in flags
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"  # the user's choice wins
    done = subprocess.run(
        [sys.executable, "-c", CORES], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["0", "3"]


@pytest.mark.usefixtures("mnist")  # both processes train on the real MNIST
def test_a_sweep_run_as_two_processes_equals_one_process(tmp_path):
    """The same command as two processes of a "cluster" (jax.distributed over gloo, one CPU
    device each) trains what one process with two devices trains, and writes one set of
    result files (process 0's) into the shared --out."""
    argv = [sys.executable, "-m", "experiments.optim_sweep", "--quick", "--optimizers", "sgd,adam"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    one = {**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    ran = run_as_two_processes([*argv, "--out", str(tmp_path / "cluster")], one, timeout=600)
    for code, _, err in ran:
        assert code == 0, err[-3000:]
    assert all("on 2 device(s)" in out for _, out, _ in ran)
    done = subprocess.run(
        [*argv, "--out", str(tmp_path / "single")],
        env={**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cluster_results, single_results = (
        json.loads((tmp_path / name / "results.json").read_text()) for name in ("cluster", "single")
    )
    for name in ("sgd", "adam"):
        a, b = cluster_results["optimizers"][name], single_results["optimizers"][name]
        assert a["selected"] == b["selected"]
        assert [g["val_accuracy"] for g in a["grid"]] == [g["val_accuracy"] for g in b["grid"]]
        assert a["test_accuracy"] == b["test_accuracy"]
        for key in ("train_cost", "val_accuracy"):
            np.testing.assert_allclose(a["history"][key], b["history"][key], atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "cluster" / "checkpoints").iterdir()) == [
        "adam_seed0",
        "sgd_seed0",
    ]
    assert not list((tmp_path / "cluster").rglob("*.tmp"))


@pytest.mark.parametrize(
    "module, env, message",
    [
        (
            "experiments.cnn_mnist",
            {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"},
            "error: this command runs as one process",
        ),
        (
            "experiments.optim_sweep",
            {"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"},
            "error: JAX_NUM_PROCESSES='two': not an integer",
        ),
        (
            "experiments.batchnorm",
            {"JAX_COORDINATOR_ADDRESS": "", "HW5JAX_DISTRIBUTED": "1"},
            "error: cannot start as one of several processes",
        ),  # no cluster to detect
    ],
)
def test_bad_requests_for_several_processes_are_one_line_and_write_nothing(
    module, env, message, tmp_path
):
    cluster_managers = ("SLURM_", "OMPI_", "PMI_", "KUBERNETES_")  # JAX would detect these
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(cluster_managers)},
        "JAX_COORDINATOR_ADDRESS": f"localhost:{free_port()}",
        **env,
    }
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr[-2000:]
    assert not out.exists()

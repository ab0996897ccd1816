"""A sweep's stack of runs sharded over several devices computes what one device computes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import functools, jax, numpy as np
    from hw5jax.models.mlp import MLP
    from hw5jax.train import Trainer, fit_grid, runs_mesh
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
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": os.path.dirname(__file__)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
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
    done = subprocess.run([sys.executable, "-c", CORES], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    asked, devices, flags = done.stdout.split(maxsplit=2)
    cores = len(os.sched_getaffinity(0))
    assert int(asked) == int(devices) == cores
    assert "--xla_cpu_multi_thread_eigen=false" in flags
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"  # the user's choice wins
    done = subprocess.run([sys.executable, "-c", CORES], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["0", "3"]

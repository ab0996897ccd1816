"""`hw5jax.bench.profile`: per-operation times from a profiler trace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from hw5jax.bench import profile


def test_op_times_names_the_operations_of_the_program():
    a = jnp.ones((256, 256))
    matmul = jax.jit(lambda x: jnp.tanh(x @ x))
    matmul(a).block_until_ready()
    times = profile.op_times(lambda: matmul(a).block_until_ready(), calls=3)
    assert times and all(ms > 0 for ms in times.values())
    assert not any("::" in name for name in times)  # the runtime's own spans are left out
    assert list(times) == sorted(times, key=lambda k: -times[k])  # largest first


def test_op_times_reads_nothing_but_device_threads(monkeypatch):
    # A wrong thread name: no operation is found (the figures come only from device threads).
    monkeypatch.setattr(profile, "DEVICE_THREADS", ("no-such-thread",))
    f = jax.jit(lambda x: x * 2)
    f(jnp.ones(4)).block_until_ready()
    assert profile.op_times(lambda: f(jnp.ones(4)).block_until_ready()) == {}


@pytest.mark.slow
def test_grid_profile_reports_the_epoch_and_its_operations():
    r = profile.grid_profile(grid=2, steps=4, top=3)
    assert r["grid"] == 2 and r["steps"] == 4 and r["epoch_s"] > 0
    assert r["run_epoch_s"] == pytest.approx(r["epoch_s"] / 2)
    assert 1 <= len(r["ms_per_step"]) <= 3
    assert sum(r["ms_per_step"].values()) <= 2 * r["step_ms"]

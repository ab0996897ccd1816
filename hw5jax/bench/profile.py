"""Where a compiled program's time goes: the time of each XLA:CPU operation (thunk) of one
call, read from a `jax.profiler` trace, and the probe that applies it to a vmapped
learning-rate grid of the MLP (one epoch of `Trainer.epoch_shared`, as the sweeps train one).

    python -m hw5jax.bench.profile --grid 32 --steps 100   # the top operations per step

The trace holds one event per operation and device thread; `op_times` sums them by name
and divides by the number of device threads that ran them (the devices run in parallel), so
each figure is the wall time of that operation per call on one device.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

# XLA:CPU runs a program's operations on its client's thread (one device) or its device
# threads (several); the Python thread only dispatches and waits.
DEVICE_THREADS = ("tf_XLAEigen", "tf_XLAPjRtCpuClient")


def is_operation(name: str) -> bool:
    """An HLO operation's span, not the runtime's own (`Pool::Await`, `end: ...`)."""
    return "::" not in name and not name.startswith("end: ")


def op_times(run: Callable[[], Any], calls: int = 1) -> dict[str, float]:
    """Milliseconds per call of `run` (which must block until its result is ready) spent in
    each XLA operation, by operation name, over `calls` traced calls, largest first."""
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        try:
            for _ in range(calls):
                run()
        finally:
            jax.profiler.stop_trace()
        (path,) = Path(trace_dir).rglob("*.xplane.pb")
        profile = jax.profiler.ProfileData.from_file(str(path))
    spent: collections.Counter[str] = collections.Counter()
    threads: dict[str, set[str]] = collections.defaultdict(set)
    for plane in profile.planes:
        for line in plane.lines:
            if not line.name.startswith(DEVICE_THREADS):
                continue
            for event in line.events:
                if not is_operation(event.name):
                    continue
                spent[event.name] += event.duration_ns
                threads[event.name].add(line.name)
    times = {name: ns / 1e6 / calls / len(threads[name]) for name, ns in spent.items()}
    return dict(sorted(times.items(), key=lambda kv: -kv[1]))


def grid_profile(grid: int, steps: int, top: int = 12) -> dict[str, Any]:
    """One epoch of `steps` steps of a `grid`-point SGD grid on the MLP, sharded over the
    devices as `hw5jax.bench.cases.measure_grid` runs it: its wall time (median of 3) and
    the `top` operations' milliseconds per step on one device (from one traced epoch; the
    trace slows it a little)."""
    from hw5jax.bench.networks import init_grid, mlp_example_flops, mlp_trainer, synthetic
    from hw5jax.bench.timing import block, timed
    from hw5jax.core.sharding import runs_mesh, shard_runs

    trainer = mlp_trainer("sgd")
    state = init_grid(trainer, tuple(np.geomspace(0.01, 0.5, grid)))
    mesh = runs_mesh()
    if mesh is not None and grid % mesh.size:
        mesh = None
    state, data_sharding = shard_runs(state, mesh)
    x, y = jax.device_put(synthetic(steps * 128), data_sharding)
    holder = {"state": state}

    def epoch() -> None:
        holder["state"], metrics = trainer.epoch_shared(holder["state"], x, y)
        block(metrics)

    epoch()  # compiles
    seconds = float(np.median([timed(epoch) for _ in range(3)]))
    ops = op_times(epoch)
    per_step = {name: ms / steps for name, ms in list(ops.items())[:top]}
    return {
        "grid": grid,
        "steps": steps,
        "devices": 1 if mesh is None else mesh.size,
        "epoch_s": seconds,
        "run_epoch_s": seconds / grid,
        "step_ms": seconds / steps * 1e3,
        "gflops": mlp_example_flops() * 128 * steps * grid / seconds / 1e9,
        "ms_per_step": per_step,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hw5jax.bench.profile", description=__doc__)
    parser.add_argument("--grid", type=int, default=32, help="learning rates in the grid")
    parser.add_argument("--steps", type=int, default=100, help="steps of the profiled epoch")
    parser.add_argument("--top", type=int, default=12, help="operations listed")
    parser.add_argument(
        "--devices", type=int, default=2, help="CPU devices, one single-threaded per core"
    )
    args = parser.parse_args(argv)
    if min(args.grid, args.steps, args.top, args.devices) < 1:
        parser.error("--grid, --steps, --top and --devices must be at least 1")
    # As the sweeps run (`hw5jax.cli.one_device_per_core`); before JAX starts its backend.
    flags = os.environ.get("XLA_FLAGS", "")
    if "device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={args.devices} "
            "--xla_cpu_multi_thread_eigen=false"
        ).strip()
    r = grid_profile(args.grid, args.steps, args.top)
    print(
        f"grid {r['grid']} over {r['devices']} device(s), {r['steps']} steps: "
        f"{r['epoch_s']:.3f} s, {r['run_epoch_s'] * 390 / r['steps']:.4f} s per run-epoch "
        f"of 390 steps, {r['gflops']:.0f} GFLOP/s; {r['step_ms']:.3f} ms per step, of which:"
    )
    for name, ms in r["ms_per_step"].items():
        print(f"  {ms:8.3f} ms/step  {name}")


if __name__ == "__main__":
    main()

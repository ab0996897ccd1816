"""Where the runs go: a stack of runs (grid points, seeds) split over every device
(`runs_mesh`, `shard_runs`), and one command run as several processes (the hosts of a
cluster): start-up from the environment, which process writes the files, and arrays
brought back to the host.

Every process runs the same command; `jax.devices()` then spans all of them and a sweep's
stack of runs is split over every device (`runs_mesh`). Process 0 writes the
output directory (results, figures, checkpoints), which must be one shared directory for
all processes (orbax's per-epoch checkpoints are written by all of them, each its shards).
With one process (no variables set) everything here is a no-op.

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python -m ...
    HW5JAX_DISTRIBUTED=1 srun python -m ...      # SLURM, Open MPI, ...: JAX detects them
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from hw5jax.errors import ConfigError

ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _int_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: not an integer") from None


def requested() -> bool:
    """Whether the environment asks for several processes."""
    return bool(
        os.environ.get("JAX_COORDINATOR_ADDRESS")
        or os.environ.get("HW5JAX_DISTRIBUTED", "") not in ("", "0")
    )


def initialize_from_env(allowed: bool = True) -> bool:
    """`jax.distributed.initialize()` when the environment asks for several processes
    (JAX_COORDINATOR_ADDRESS, with JAX_NUM_PROCESSES and JAX_PROCESS_ID unless a cluster
    manager JAX knows provides them; or HW5JAX_DISTRIBUTED=1 for JAX's own detection).
    On CPUs the processes exchange arrays through gloo. Must run before JAX starts. Returns
    whether it initialised; a ConfigError if it cannot, or if the command is not `allowed`
    to run as several processes."""
    if not requested():
        return False
    if not allowed:
        raise ConfigError(
            "this command runs as one process: only the sweeps (optim_sweep, "
            "batchnorm) run as several; unset JAX_COORDINATOR_ADDRESS and "
            "HW5JAX_DISTRIBUTED"
        )
    num_processes, process_id = _int_env("JAX_NUM_PROCESSES"), _int_env("JAX_PROCESS_ID")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"cannot start as one of several processes ({first}); set "
            f"{', '.join(ENV)}, or unset them and HW5JAX_DISTRIBUTED for one "
            "process"
        ) from err
    return True


def is_primary() -> bool:
    """Whether this process writes the output files (process 0; the only one, usually)."""
    return not jax.distributed.is_initialized() or jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (nothing to wait for with one process)."""
    if jax.distributed.is_initialized() and jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def to_host(tree: Any) -> Any:
    """`tree` (an array, or a pytree of them) with its JAX arrays as numpy arrays on this
    process (`jax.device_get`). An array spread over the devices of several processes is
    gathered from all of them: every process must make the same call."""

    def local(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return x

    return jax.device_get(jax.tree.map(local, tree))


def runs_mesh() -> jax.sharding.Mesh | None:
    """A 1-D mesh ("runs") over every visible device, or None on a single device.

    A stack of runs (grid points, seeds) is split along it: each device trains its share of
    the runs, the data are replicated. The same code runs on one CPU, on the devices of a
    multi-GPU host, or on all hosts of a cluster after `jax.distributed.initialize()`.
    """
    if jax.device_count() == 1:
        return None
    return jax.make_mesh((jax.device_count(),), ("runs",), axis_types=(jax.sharding.AxisType.Auto,))


def shard_runs(stack: Any, mesh: jax.sharding.Mesh | None) -> tuple[Any, NamedSharding | None]:
    """A stack of runs split along `mesh`'s "runs" axis (its length a multiple of the mesh
    size), and the sharding that replicates the data over the mesh; unchanged and None
    without a mesh."""
    if mesh is None:
        return stack, None
    return (
        jax.device_put(stack, NamedSharding(mesh, PartitionSpec("runs"))),
        NamedSharding(mesh, PartitionSpec()),
    )

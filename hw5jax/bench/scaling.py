"""Grid scaling: one epoch per run of SGD learning-rate grids of growing size, as the sweeps
train them (`Trainer.epoch_shared`: one vmapped program whose runs share every batch, the
stack sharded over the devices with `runs_mesh` / `shard_runs`), against PyTorch training the
runs one after another. Reported per run-epoch, with hw5jax's GFLOP/s and the physical limit:
one run-epoch's work at the measured matmul peak of the devices the grid ran on.

PyTorch's runs are independent and alike, so its seconds per run-epoch are the mean over at
most `TORCH_RUNS` of each grid's runs (spread over the grid's rates), which keeps the case to
a few minutes at full size.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.bench.device import synced
from hw5jax.bench.networks import BATCH, init_grid
from hw5jax.bench.parity import numpy_params
from hw5jax.bench.plan import GRID_TARGET_SIZE, Plan
from hw5jax.bench.timing import MATMUL_SIZE, block, compare, timed
from hw5jax.core.sharding import runs_mesh, shard_runs
from hw5jax.errors import ConfigError
from hw5jax.reference.pytorch import torch_epoch, torch_optimizer, torch_tensors

TORCH_RUNS = 4  # PyTorch runs timed per grid size and repeat (the mean is per run-epoch)
MAX_GRID_SIZE = 1024
QUICK_MATMUL_SIZE = 512
FIGURE = "grid_scaling.png"


def check_grid_sizes(sizes: tuple[int, ...]) -> None:
    """--grid-sizes: at least one, each in 1..MAX_GRID_SIZE, no repeats (a ConfigError)."""
    if not sizes:
        raise ConfigError("--grid-sizes: give at least one grid size")
    for size in sizes:
        if not 1 <= size <= MAX_GRID_SIZE:
            raise ConfigError(f"--grid-sizes: {size} is not in 1..{MAX_GRID_SIZE}")
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"--grid-sizes: {','.join(map(str, sizes))} repeats a size")


def grid_rates(size: int) -> tuple[float, ...]:
    """`size` SGD learning rates, log-spaced over [0.01, 1] (0.1 alone for a grid of 1)."""
    if size == 1:
        return (0.1,)
    return tuple(float(r) for r in np.geomspace(0.01, 1.0, size))


def peak_on(mesh: jax.sharding.Mesh | None, size: int, repeats: int) -> float:
    """GFLOP/s of float32 size x size matmuls, one per device of `mesh` at once (one device
    if None): the matmul peak of the devices a grid runs on."""
    n = 1 if mesh is None else mesh.size
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (n, size, size), jnp.float32)
    b = jax.random.normal(jax.random.fold_in(key, 1), (n, size, size), jnp.float32)
    (a, b), _ = shard_runs((a, b), mesh)
    matmul = jax.jit(jax.vmap(jnp.dot))
    block(matmul(a, b))
    return 2 * n * size**3 / min(timed(lambda: block(matmul(a, b))) for _ in range(repeats)) / 1e9


def measure_grid_scaling(
    case: Any, torch: Any, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> dict[str, Any]:
    """Every grid size of `plan.grid_sizes`: an epoch of the whole grid (hw5jax) against
    `TORCH_RUNS` of its runs one after another (PyTorch), interleaved, `plan.repeats` times;
    per size the seconds per run-epoch of each side, their ratio, hw5jax's GFLOP/s and the
    limit. The case's own fields are those of the target size (32, else the largest)."""
    network = case.network
    trainer = network.trainer(case.optimizer)
    steps = len(labels) // BATCH
    run_flops = network.example_flops * steps * BATCH
    full_mesh = runs_mesh()
    data: dict[int, Any] = {}  # devices -> the data put there
    matmul = QUICK_MATMUL_SIZE if plan.quick else MATMUL_SIZE
    peaks: dict[int, float] = {}
    tx = ty = None
    if torch is not None:
        tx, ty = torch_tensors(torch, images, labels, nchw=network.nchw, device=plan.device)
    sizes: dict[str, Any] = {}
    for size in plan.grid_sizes:
        rates = grid_rates(size)
        mesh = full_mesh if full_mesh is not None and size % full_mesh.size == 0 else None
        devices = 1 if mesh is None else mesh.size
        state = init_grid(trainer, rates)
        start = numpy_params(jax.tree.map(lambda leaf: leaf[0], state))
        state, sharding = shard_runs(state, mesh)
        if devices not in data:
            data[devices] = jax.device_put((images, labels), sharding)
        x, y = data[devices]
        holder = {"state": state}

        def jax_epoch(x=x, y=y, holder=holder):
            holder["state"], metrics = trainer.epoch_shared(holder["state"], x, y)
            block(metrics)

        torch_run, timed_runs = None, 0
        if torch is not None:
            picks = sorted({int(i) for i in np.linspace(0, size - 1, min(size, TORCH_RUNS))})
            runs = []
            for i in picks:
                model = network.torch_model(torch, start).to(plan.device)
                runs.append((model, torch_optimizer(torch, case.optimizer, model, rates[i])))
            torch_epoch(torch, *runs[0], tx, ty, steps=plan.warmup(network))  # untimed
            timed_runs = len(runs)

            def one_after_another(runs=runs):
                for model, opt in runs:
                    torch_epoch(torch, model, opt, tx, ty)

            torch_run = synced(torch, plan.device, one_after_another)
        print(f"grid_scaling: {size} run(s) on {devices} device(s)", file=sys.stderr)
        timing = compare(jax_epoch, torch_run, plan.repeats, f"grid_scaling {size}")
        if devices not in peaks:
            peaks[devices] = peak_on(mesh, matmul, 1 if plan.quick else 3)
        sizes[str(size)] = per_run_epoch(timing, size, timed_runs, run_flops, peaks[devices])
        sizes[str(size)]["devices"] = devices
    headline = str(GRID_TARGET_SIZE if GRID_TARGET_SIZE in plan.grid_sizes else max(sizes, key=int))
    h = sizes[headline]
    result = {
        # the target size's grid epoch, as grid8_mlp_epoch reports its 8 runs
        "hw5jax_s": h["hw5jax_epoch_s"],
        "torch_s": None
        if h["torch_run_epoch_s"] is None
        else h["torch_run_epoch_s"] * int(headline),
        "ratio": h["ratio"],
        "ratio_range": h["ratio_range"],
        "hw5jax_first_call_s": h["hw5jax_first_call_s"],
        "compile_s": h["compile_s"],
        "run_epochs": int(headline),
        "target_size": int(headline),
        "torch_runs_timed": TORCH_RUNS,
        "run_epoch_gflop": run_flops / 1e9,
        "matmul_size": matmul,
        "peak_matmul_gflops_by_devices": {str(k): v for k, v in peaks.items()},
        "sizes": sizes,
        "figure": None,
    }
    if plan.workdir is not None:
        plot_scaling(result, plan.workdir / FIGURE)
        result["figure"] = FIGURE
    return result


def per_run_epoch(
    timing: dict[str, Any], size: int, torch_runs: int, run_flops: int, peak: float
) -> dict[str, Any]:
    """One grid size's `compare` result per run-epoch: seconds of each side, their ratio
    (median, and the lowest and highest of the repeats), hw5jax's GFLOP/s, and the limit
    (one run-epoch at `peak` GFLOP/s)."""
    hw = timing["hw5jax_s"] / size
    th = timing["torch_s"] / torch_runs if timing["torch_s"] else None
    paired = (
        [
            (t / torch_runs) / (j / size)
            for j, t in zip(timing["hw5jax_all_s"], timing["torch_all_s"], strict=True)
        ]
        if timing["torch_all_s"]
        else []
    )
    return {
        "runs": size,
        "hw5jax_epoch_s": timing["hw5jax_s"],
        "hw5jax_run_epoch_s": hw,
        "torch_run_epoch_s": th,
        "torch_runs": torch_runs,
        "ratio": th / hw if th else None,
        "ratio_range": [min(paired), max(paired)] if paired else None,
        "hw5jax_gflops": run_flops * size / timing["hw5jax_s"] / 1e9,
        "limit_run_epoch_s": run_flops / (peak * 1e9),
        "hw5jax_first_call_s": timing["hw5jax_first_call_s"],
        "compile_s": timing["compile_s"],
        "hw5jax_all_s": timing["hw5jax_all_s"],
        "torch_all_s": timing["torch_all_s"],
    }


def plot_scaling(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Seconds per run-epoch against grid size, log-log: hw5jax, PyTorch (one run after
    another) and the limit (a run-epoch's work at the matmul peak of the devices used)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hw5jax.runs.files import save_figure

    rows = sorted(result["sizes"].values(), key=lambda r: r["runs"])
    runs = [r["runs"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(runs, [r["hw5jax_run_epoch_s"] for r in rows], "o-", label="hw5jax (one program)")
    torch_rows = [r for r in rows if r["torch_run_epoch_s"] is not None]
    if torch_rows:
        ax.plot(
            [r["runs"] for r in torch_rows],
            [r["torch_run_epoch_s"] for r in torch_rows],
            "s-",
            label="PyTorch (one run after another)",
        )
    ax.plot(
        runs,
        [r["limit_run_epoch_s"] for r in rows],
        "k--",
        label="limit: matmul peak of the devices used",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("learning rates in the grid (runs)")
    ax.set_ylabel("seconds per run-epoch")
    ax.set_title("SGD grid, one epoch per run: seconds per run-epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure(fig, path)

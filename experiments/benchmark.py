"""hw5jax against the homework's way of training, written plainly in PyTorch, in one process
on one machine: same data, same network, same initial weights, same number of steps.

    python -m experiments.benchmark                          # everything, 5 repeats
    python -m experiments.benchmark --cases cnn_epoch --repeats 3 --out /tmp/b
    python -m experiments.benchmark --quick --out /tmp/q     # smoke run (synthetic data)
    python -m experiments.benchmark --cases cnn_formulations --steps 40   # CNN variants
    python -m experiments.benchmark --cases sweep --sweep-epochs 2        # the sweep, shorter
    python -m experiments.benchmark --cases grid_scaling --grid-sizes 1,8,64
    python -m experiments.benchmark --device gpu                          # JAX and torch on GPU

The PyTorch side is the homework's loop: eager, `torch.optim`, a shuffled index loop over
in-memory float tensors, batch 128, `torch.set_num_threads(os.cpu_count())`. The hw5jax side
is `Trainer.epoch_jit` (one scanned, compiled epoch) or, for the grid, `Trainer.epoch_shared`
(one vmapped program, the runs sharing every batch, sharded over one single-threaded device
per core: how `fit_grid` trains a tuning grid).
Both sides of a case run interleaved in the same process; each reports the median of
`--repeats` epochs. The first hw5jax call compiles: `compile_s` is that call minus the
steady-state median, reported separately, never hidden. A torch warm-up of a few steps is not
timed (its allocator and thread pool start on the first steps).

Cases (`--cases`):
  mlp_epoch_sgd, mlp_epoch_adam  784-100-100-10 ReLU, one epoch (390 steps of 128)
  grid8_mlp_epoch                one epoch of 8 SGD learning rates: one vmapped program vs
                                 8 PyTorch runs one after another
  cnn_epoch                      the homework CNN (Problem 5.2) with Adam, one epoch
  grid_scaling                   one epoch per run of SGD grids of --grid-sizes rates, per
                                 run-epoch, with hw5jax's GFLOP/s and the matmul-peak limit
  sweep                          the optimizer sweep end to end (optim_sweep's defaults,
                                 --sweep-epochs), against the runs it trained, in PyTorch
                                 one after another
  cnn_formulations               (not run by default) the CNN epoch with each way of writing
                                 its convolutions and pooling in JAX, timed, and checked
                                 against lax.conv + reduce_window at highest precision

Before timing, a parity check runs both sides from the same weights over the same batches
(hw5jax's own shuffle) and records the costs and the largest parameter difference.

Writes OUT/results.json and OUT/table.md (and OUT/grid_scaling.png, OUT/sweep_results.json).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jax

from hw5jax.bench.device import resolve_device
from hw5jax.bench.networks import load_train
from hw5jax.bench.report import table
from hw5jax.bench.suite import TORCH_MISSING, run_benchmark
from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.configs.benchmark import BenchmarkConfig
from hw5jax.configs.optim_sweep import SweepConfig
from hw5jax.pipelines import optim_sweep
from hw5jax.reference.pytorch import import_torch
from hw5jax.runs.files import output_dir, write_json, write_text
from hw5jax.runs.rundir import stamp


def run_sweep(out: Path, data: str, epochs: int | None, quick: bool) -> dict[str, Any]:
    """The optimizer sweep as `python -m experiments.optim_sweep [--epochs N] [--quick]
    --data DATA --out OUT` runs it (the benchmark's `sweep` case times this)."""
    config = SweepConfig(out=str(out), data=data, quick=quick)
    return optim_sweep.run(config if epochs is None else replace(config, epochs=epochs))


def run(config: BenchmarkConfig) -> dict[str, Any]:
    """The benchmark of `config`, written to its output directory (results.json, table.md);
    the results, with "out": that directory."""
    start = time.perf_counter()
    plan, config = config.plan(), config.effective()
    torch = import_torch(config.torch_threads)
    if torch is None:
        print(TORCH_MISSING, file=sys.stderr)
    device = resolve_device(config.device, torch)  # no GPU: an error before anything is written
    images, labels, source = load_train(config.data, config.steps)
    out = output_dir(config.out, "benchmark")
    stamp(out, "benchmark", config)
    plan = replace(plan, workdir=out, sweep=run_sweep)
    results = run_benchmark(config.cases, torch, images, labels, source, plan, device)
    results["wall_seconds"] = time.perf_counter() - start
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        BenchmarkConfig, argv, description=__doc__, prog="python -m experiments.benchmark"
    )
    # As the sweeps run: each core a single-threaded device. The grid cases shard their runs
    # over them; a single run (MLP, CNN) uses one of them, which measured as fast as one
    # device with a 2-thread pool here (docs/performance.md). On the GPU: JAX's own devices.
    if config.device == "cpu":
        one_device_per_core()
        if not os.environ.get("JAX_PLATFORMS"):  # a GPU, if any, stays out of it
            jax.config.update("jax_platforms", "cpu")
    # Compile time is part of what is measured: no reuse of a previous run's programs
    # (except in a --quick smoke run, whose times mean nothing).
    cache = bool(jax.config.values["jax_enable_compilation_cache"])
    jax.config.update("jax_enable_compilation_cache", config.quick and cache)
    try:
        results = run(config)
    finally:
        jax.config.update("jax_enable_compilation_cache", cache)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

"""Problem 3.1: SGD, SGD+momentum, AdaGrad and Adam on the 784-100-100-10 MLP, tuned on the
validation split, mean +- std test accuracy over seeds.

    python -m experiments.optim_sweep                      # the full sweep (the main job)
    python -m experiments.optim_sweep --quick --out /tmp/q # a smoke run

Writes OUT/results.json, train_cost.png, val_accuracy.png, table.md and
OUT/checkpoints/<optimizer>_seed<k>/ (orbax).

The grids are split over every visible device; started once per host with
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set (or HW5JAX_DISTRIBUTED=1
under SLURM), over the devices of all hosts (hw5jax/core/sharding.py; docs/scaling.md).
"""

from __future__ import annotations

from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.configs.optim_sweep import SweepConfig
from hw5jax.pipelines import optim_sweep as pipeline


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        SweepConfig, argv, description=__doc__, prog="python -m experiments.optim_sweep"
    )
    one_device_per_core()  # a sweep is stacks of runs: one shard per core
    results = pipeline.run(config)
    print(pipeline.table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main, several_processes=True)

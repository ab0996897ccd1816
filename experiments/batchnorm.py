"""Problem 3.2: the optimizer sweep's MLP with BatchNorm after each hidden layer's affine map,
plain SGD, learning rate retuned on validation; side by side with the same MLP without it
(same grid, epochs and seeds). Evaluation uses BatchNorm's running averages.

    python -m experiments.batchnorm
    python -m experiments.batchnorm --quick --out /tmp/bn

Writes OUT/results.json, val_accuracy.png, table.md and OUT/checkpoints/<variant>_seed<k>/.

The grids are split over every visible device; started once per host with
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set (or HW5JAX_DISTRIBUTED=1
under SLURM), over the devices of all hosts (hw5jax/core/sharding.py; docs/scaling.md).
"""

from __future__ import annotations

from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.configs.batchnorm import BatchnormConfig
from hw5jax.pipelines import batchnorm as pipeline


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        BatchnormConfig, argv, description=__doc__, prog="python -m experiments.batchnorm"
    )
    one_device_per_core()  # stacks of runs: one shard per core
    results = pipeline.run(config)
    print(pipeline.table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main, several_processes=True)

"""Problem 5.2: a CNN with exactly two conv + max-pool layers on MNIST, the homework's recipe
and the best one we found (chosen on the validation split only), mean +- std test accuracy.

    python -m experiments.cnn_mnist --recipe homework       # the homework's network, 4 epochs
    python -m experiments.cnn_mnist                         # the best recipe (default), 15 epochs
    python -m experiments.cnn_mnist --quick --out /tmp/q    # a smoke run (2,000 images)
    python -m experiments.cnn_mnist --dropout 0 --no-test   # an ablation: validation only
    python -m experiments.cnn_mnist --recipe homework --train-on train+val  # all 60,000 images

Every hyperparameter of a recipe can be overridden (`--learning-rate`, `--dropout`, ...).
`--train-on train+val` trains on all 60,000 training images (no validation: null in
results.json). Writes OUT/results.json, val_accuracy.png (train_cost.png with train+val),
table.md and OUT/checkpoints/<recipe>_seed<k>/.
"""

from __future__ import annotations

from hw5jax.cli import parse_config, run_main
from hw5jax.configs.cnn import CNNConfig
from hw5jax.pipelines.cnn import run_cnn_mnist
from hw5jax.reporting.cnn import table


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        CNNConfig, argv, description=__doc__, prog="python -m experiments.cnn_mnist"
    )
    results = run_cnn_mnist(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

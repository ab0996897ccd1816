"""Problem 5.2's homework recipe trained the homework's way, in PyTorch: the reference for
what that recipe scores, beside hw5jax's `python -m experiments.cnn_mnist --recipe homework`.

    python -m experiments.cnn_torch                        # seeds 0-2, 4 epochs, 50,000 images
    python -m experiments.cnn_torch --seeds 10 --out runs/cnn_torch/homework_10seeds
    python -m experiments.cnn_torch --train-on train+val --normalize true  # the tutorial's data
    python -m experiments.cnn_torch --quick --out /tmp/q   # a smoke run (2,000 images)

The network (conv 5x5x32, ReLU, max-pool 2x2; conv 5x5x64, ReLU, max-pool 2x2; dense
100-100-10 with ReLU), PyTorch's default initialisation, `torch.optim.Adam` (lr 1e-3),
cross-entropy, batch 128 from a fresh shuffle every epoch with the last short batch kept (a
`DataLoader(shuffle=True)`), eager, on the CPU. `torch.manual_seed(seed)` fixes the
initialisation and the shuffles. Needs torch (`pip install torch==2.13.0`, in the test extra).

Writes OUT/results.json (the keys of cnn_mnist's, plus "framework" and "threads"),
val_accuracy.png (train_cost.png with train+val), table.md and the trained weights,
OUT/checkpoints/homework_seed<k>.pt (`torch.save` of the state_dict). Resumable per seed: an
interrupted run continues with the first seed it had not finished.
"""

from __future__ import annotations

from hw5jax.cli import parse_config, run_main
from hw5jax.configs.cnn import TorchCNNConfig
from hw5jax.pipelines.cnn import run_cnn_torch
from hw5jax.reporting.cnn import table


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        TorchCNNConfig, argv, description=__doc__, prog="python -m experiments.cnn_torch"
    )
    results = run_cnn_torch(config)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

"""Evaluate the trained CNNs of a `cnn_mnist` run again, plain and with test-time
augmentation: no training, the saved checkpoints only.

    python -m experiments.cnn_eval RUN_DIR [--tta shift1rot5] [--out DIR] [--data auto]

RUN_DIR is a `cnn_mnist` output directory; every `RUN_DIR/checkpoints/<recipe>_seed<k>` is
restored and its validation and test accuracy measured with the plain forward pass and with
the views of `--tta` (`hw5jax.core.augment.TTA_VIEWS`). Writes OUT/results.json and table.md
(default OUT: runs/cnn_eval/<UTC time>). Validation is null for a run trained on train+val.
"""

from __future__ import annotations

from hw5jax.cli import build_parser, run_main
from hw5jax.configs.cnn import EvalConfig
from hw5jax.pipelines.cnn import run_cnn_eval
from hw5jax.reporting.cnn import eval_table


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(EvalConfig, description=__doc__, prog="python -m experiments.cnn_eval")
    parser.add_argument("run", metavar="RUN_DIR", help="a cnn_mnist output directory")
    config = EvalConfig(**vars(parser.parse_args(argv)))
    results = run_cnn_eval(config)
    print(eval_table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

"""Evaluate the trained CNNs of one or more `cnn_mnist` runs again, plain and with test-time
augmentation, each seed alone and optionally as one ensemble: no training, the saved
checkpoints only.

    python -m experiments.cnn_eval RUN_DIR... [--tta shift1rot5] [--ensemble] [--out DIR]
        [--data auto]

Each RUN_DIR is a `cnn_mnist` output directory; every `RUN_DIR/checkpoints/<recipe>_seed<k>`
is restored (the runs in the order given, each one's by seed; the same seed with the same
hyperparameters in two of them is refused) and its validation and test accuracy measured with
the plain forward pass and with the views of `--tta` (`hw5jax.core.augment.TTA_VIEWS`).
`--ensemble` also measures the ensemble of all those checkpoints, whatever their recipes: the
argmax of the mean over them of each one's probabilities (its softmax, or with the views the
mean softmax over them). Writes OUT/run.json, results.json and table.md (default OUT:
runs/cnn_eval/<UTC time>). Validation is null for a run trained on train+val (and for an
ensemble with such a member).
"""

from __future__ import annotations

from hw5jax.cli import build_parser, run_main
from hw5jax.configs.cnn import EvalConfig
from hw5jax.pipelines.cnn import run_cnn_eval
from hw5jax.reporting.cnn import eval_table


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(EvalConfig, description=__doc__, prog="python -m experiments.cnn_eval")
    parser.add_argument(
        "runs", metavar="RUN_DIR", nargs="+", help="cnn_mnist output directories, one or more"
    )
    args = vars(parser.parse_args(argv))
    config = EvalConfig(**{**args, "runs": tuple(args["runs"])})
    results = run_cnn_eval(config)
    print(eval_table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)

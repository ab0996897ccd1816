"""`python -m hw5jax.data fetch | check [--data SOURCE]`: extract Nielsen's MNIST into the
cache (idempotent), or load a source and print its split sizes."""

from __future__ import annotations

import argparse

from hw5jax.cli import run_main
from hw5jax.data.fetch import fetch
from hw5jax.data.mnist import describe, load_mnist


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hw5jax.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="extract Nielsen's mnist.pkl.gz into the cache (idempotent)")
    check = sub.add_parser("check", help="load a source and print its split sizes")
    check.add_argument("--data", default="auto")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        fetch()
    else:
        print(describe(load_mnist(args.data)))


if __name__ == "__main__":
    run_main(main)

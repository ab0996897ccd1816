"""The answer key: every problem of the homework on one page, read from the results files.

    python -m experiments.report [--out DIR] [--pdf] [--strict]      # from results/
    python -m experiments.report --runs RUN_DIR... [--out DIR]       # from fresh runs
    python -m experiments.report --promote RUN_DIR...                # runs -> results/
    python -m experiments.report --refresh-docs                      # results/ -> README, docs

Writes OUT/index.html (default runs/report/<UTC time>/), its figures under OUT/figures/ and,
with --pdf, OUT/report.pdf printed by headless Chromium. One section per problem, in the
homework's order: the question, the homework's answer, ours (tables and figures), a verdict
computed from the results, and the provenance of the run it came from. An experiment not run
shows as "not run" with its command (with --strict: an error). `--promote` copies finished,
full (not --quick) runs into results/<entry>/ with a provenance.json; then `make docs`
refreshes the README's and docs' result blocks.
"""

from __future__ import annotations

from hw5jax.cli import build_parser, run_main
from hw5jax.configs.report import ReportConfig
from hw5jax.pipelines import blocks, report
from hw5jax.runs.results import load_set, promote


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(ReportConfig, description=__doc__, prog="python -m experiments.report")
    parser.add_argument(
        "--runs", nargs="+", default=[], metavar="RUN_DIR", help="read these runs, not results/"
    )
    parser.add_argument(
        "--promote",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="copy finished runs into results/ and exit",
    )
    args = vars(parser.parse_args(argv))
    config = ReportConfig(
        **{**args, "runs": tuple(args["runs"]), "promote": tuple(args["promote"])}
    )
    if config.promote:
        for path in promote(config.promote, config.results):
            print(f"promoted: {path}")
        print("refresh the README's and docs' result blocks with: make docs")
        return
    if config.refresh_docs:
        changed = blocks.refresh(load_set(config.results))
        print(f"refreshed {len(changed)} page(s): " + ", ".join(p.name for p in changed))
        return
    out = report.write_report(config)
    print(f"wrote {out / 'index.html'}" + (f" and {out / 'report.pdf'}" if config.pdf else ""))


if __name__ == "__main__":
    run_main(main)

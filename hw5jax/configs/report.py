"""The answer key's options (`python -m experiments.report`): which results it reads, where
the page goes, and the promotion of finished runs into `results/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw5jax.configs.common import option
from hw5jax.errors import ConfigError
from hw5jax.runs.results import RESULTS


@dataclass(frozen=True)
class ReportConfig:
    """Every problem of the homework answered on one page, from the results files.

    run: python -m experiments.report --out runs/report/latest
    expected: OUT/index.html (one section per problem, in the homework's order) and
    OUT/figures/; with --pdf also OUT/report.pdf (headless Chromium); a few seconds
    """

    results: str = option(str(RESULTS), "the results set to read", metavar="DIR")
    # `--runs DIR...` and `--promote RUN_DIR...` (several paths each) are added by the CLI.
    runs: tuple[str, ...] = field(default=(), metadata={"cli": False})
    promote: tuple[str, ...] = field(default=(), metadata={"cli": False})
    out: str | None = option(
        None, "output directory (default: runs/report/<UTC time>)", metavar="DIR"
    )
    pdf: bool = option(False, "also print OUT/report.pdf with headless Chromium")
    strict: bool = option(False, "refuse to render while an experiment is not run")
    refresh_docs: bool = option(
        False, "rewrite the README's and docs' result blocks from --results, and exit"
    )

    def __post_init__(self):
        if self.promote and (self.runs or self.pdf or self.out or self.refresh_docs):
            raise ConfigError("--promote copies runs into results/; give it alone")
        if self.refresh_docs and (self.runs or self.pdf or self.out):
            raise ConfigError("--refresh-docs reads --results only; give it alone")

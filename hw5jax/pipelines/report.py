"""The answer key as one page: every problem of the homework, in its order, with the question,
the homework's answer, ours (tables and figures read from the results files), a verdict
computed from those results, and the provenance of the run it came from.

    sections = build_sections(load_set())      # results/ -> one dict per problem
    write_report(config)                       # OUT/index.html, OUT/figures/, OUT/report.pdf

Nothing here types a number of ours: each comes from a results.json (or theory.md, written
from one); each verdict is computed from the checks' `passed` fields and measured values.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hw5jax.configs import homework as hw
from hw5jax.configs.report import ReportConfig
from hw5jax.errors import BrowserMissing, ConfigError
from hw5jax.pipelines import answers
from hw5jax.reporting import browser, page
from hw5jax.runs.files import output_dir, write_text
from hw5jax.runs.results import BY_NAME, Result, load_runs, load_set
from hw5jax.theory.answer_key import theory_parts


def build_sections(found: answers.Found) -> list[dict[str, Any]]:
    """One dict per problem, in the homework's order (`hw5jax.configs.homework.PROBLEMS`)."""
    theory = found["theory_checks"]
    parts = {}
    if theory is not None and theory.file("theory.md").is_file():
        parts = theory_parts(theory.file("theory.md").read_text())
    sections = []
    for problem in hw.PROBLEMS:
        if problem.id == "3.1":
            body = answers.optimizers_section(found)
        elif problem.id == "3.2":
            body = answers.batchnorm_section(found)
        elif problem.id.startswith("4."):
            body = answers.alexnet_section(problem, found)
        elif problem.id == "5.2":
            body = answers.cnn_section(found)
        else:
            body = answers.theory_section(problem, found, parts)
        used = [r for name in problem.entries if (r := found[name]) is not None]
        missing = [BY_NAME[name] for name in problem.entries if found[name] is None]
        if "verdict" not in body:
            body["verdict"] = answers.verdict(
                "not-run", "not run — " + "; ".join(f"`{e.command}`" for e in missing)
            )
        sections.append(
            {
                "id": problem.id,
                "anchor": "p" + re.sub(r"[^0-9a-z]+", "-", problem.id).strip("-"),
                "title": problem.title,
                "question": problem.question,
                "homework": problem.homework,
                "missing": [{"name": e.name, "command": e.command} for e in missing],
                "provenance": [answers.provenance_line(r) for r in used],
                **{"tables": [], "figures": [], "ours_html": "", "notice": None, **body},
            }
        )
    return sections


def load(config: ReportConfig) -> dict[str, Result | None]:
    found = load_runs(config.runs) if config.runs else load_set(config.results)
    missing = [BY_NAME[n] for n, r in found.items() if r is None]
    if config.strict and missing:
        raise ConfigError(
            "--strict: not run: "
            + "; ".join(f"{e.name} (`{e.command}`)" for e in missing)
            + " — `make reproduce` runs them all"
        )
    return found


def write_report(config: ReportConfig) -> Path:
    """Read the results (config.results, or config.runs), check everything (and, with --pdf,
    that Chromium is there) before writing; then OUT/index.html, its figures under
    OUT/figures/<entry>/ and with --pdf OUT/report.pdf. Returns OUT."""
    found = load(config)
    sections = build_sections(found)
    if config.pdf and browser.find_chromium() is None:
        raise BrowserMissing(browser.MISSING)
    out = output_dir(config.out, "report")
    for section in sections:
        for fig in section["figures"]:
            target = out / "figures" / fig["entry"] / fig["name"]
            if fig["path"].is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fig["path"], target)
                fig["src"] = f"figures/{fig['entry']}/{fig['name']}"
            else:
                fig["src"] = None  # named by the results but not there: shown as missing
    source = ", ".join(config.runs) if config.runs else str(config.results)
    html = page.render(
        sections,
        source=source,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        entries=[
            {"name": n, "found": r is not None, "command": BY_NAME[n].command}
            for n, r in found.items()
        ],
    )
    write_text(out / "index.html", html)
    if config.pdf:
        browser.print_pdf(out / "index.html", out / "report.pdf")
    return out

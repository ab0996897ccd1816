"""The answer key in a real browser (Debian's Chromium, driven by Playwright): rendered from
the small fixture results set and from the committed results/, every image loads, nothing
is logged to the console, every problem's section is there, the page is not blank at laptop
or phone width, light or dark, and it prints to a PDF of a sensible length."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from browser import chromium_or_skip, inspect_page, is_blank, pdf_pages

from hw5jax.configs.homework import PROBLEMS
from hw5jax.configs.report import ReportConfig
from hw5jax.pipelines import report
from hw5jax.runs.results import RESULTS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results"
ANCHORS = ["p" + p.id.replace("(", "-").replace(")", "").replace(".", "-") for p in PROBLEMS]


@pytest.fixture(scope="module", params=["fixture", "committed"])
def rendered(request, tmp_path_factory) -> Path:
    chromium_or_skip()
    source = FIXTURE if request.param == "fixture" else RESULTS
    out = tmp_path_factory.mktemp(request.param)
    report.write_report(ReportConfig(results=str(source), out=str(out / "page"), pdf=True))
    return out / "page"


def test_the_page_in_a_browser(rendered):
    page = inspect_page(rendered / "index.html")
    assert page.console_errors == []
    assert page.failed_requests == []
    assert page.broken_images == []
    assert page.ids == ANCHORS
    for problem in PROBLEMS:
        assert f"Problem {problem.id} — {problem.title}" in page.text
    assert not is_blank(page.screenshot)
    assert not is_blank(page.phone_screenshot) and not page.horizontal_overflow
    assert not is_blank(page.dark_screenshot) and page.dark_screenshot != page.screenshot


def test_the_pdf(rendered):
    pages = pdf_pages(rendered / "report.pdf")
    assert 8 <= pages <= 80, pages  # 17 problems, tables and figures: neither 1 page nor 500


def test_a_changed_value_changes_the_page(tmp_path):
    """The numbers are read: one accuracy changed in a results.json shows in the browser."""
    chromium_or_skip()
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root)
    path = root / "cnn_homework" / "results.json"
    record = json.loads(path.read_text())
    record["test_accuracy_mean"] = 0.91234
    path.write_text(json.dumps(record))
    report.write_report(ReportConfig(results=str(root), out=str(tmp_path / "page")))
    text = inspect_page(tmp_path / "page" / "index.html").text
    assert "91.23%" in text

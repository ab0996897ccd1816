"""The headless-Chromium layer on small synthetic pages: the browser checks (tests/browser.py)
pass a good page and catch each kind of bad one, and `print_pdf` prints exactly the pages a
page asks for, or fails with one line and leaves no file behind."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from browser import chromium_or_skip, inspect_page, is_blank, pdf_pages
from matplotlib.figure import Figure
from PIL import Image

from hw5jax.errors import BrowserError, BrowserMissing
from hw5jax.reporting.browser import print_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CSS = """
body { font-family: sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; }
img { max-width: 100%; height: auto; }
@media (prefers-color-scheme: dark) { body { background: #111; color: #eee; } }
"""


def write_page(folder: Path, body: str, css: str = CSS, title: str = "Answer key") -> Path:
    """`folder`/index.html with `body`, an inline stylesheet and fig.png (a matplotlib plot)
    beside it."""
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([0, 1, 2, 3], [3, 1, 2, 0])
    fig.savefig(folder / "fig.png", dpi=80)
    html = folder / "index.html"
    html.write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title><style>{css}</style></head>\n<body>{body}</body></html>\n"
    )
    return html


GOOD = """
<section id="ch3"><h2>Chapter 3</h2><p>Cross-entropy learns faster.</p>
<img src="fig.png" alt="a plot"></section>
<section id="ch4"><h2>Chapter 4</h2><p>A network can compute any function.</p></section>
"""


def test_a_good_page_passes_every_check(tmp_path):
    report = inspect_page(write_page(tmp_path, GOOD))
    assert report.console_errors == []
    assert report.failed_requests == []
    assert report.broken_images == []
    assert report.ids == ["ch3", "ch4"]
    assert report.title == "Answer key"
    assert "Cross-entropy learns faster." in report.text
    assert not is_blank(report.screenshot)
    assert not is_blank(report.phone_screenshot)
    assert not is_blank(report.dark_screenshot)
    assert report.dark_screenshot != report.screenshot
    assert not report.horizontal_overflow


def test_a_missing_image_is_named(tmp_path):
    html = write_page(tmp_path, GOOD + '<section id="ch5"><img src="missing.png"></section>')
    report = inspect_page(html)
    assert report.broken_images == ["missing.png"]
    assert [url.rsplit("/", 1)[-1] for url in report.failed_requests] == ["missing.png"]
    assert report.ids == ["ch3", "ch4", "ch5"]


def test_console_errors_and_uncaught_exceptions_are_caught(tmp_path):
    script = '<script>console.error("x"); throw new Error("uncaught y");</script>'
    report = inspect_page(write_page(tmp_path, GOOD + script))
    assert "x" in report.console_errors
    assert any("uncaught y" in error for error in report.console_errors)


def test_a_blank_page_is_blank(tmp_path):
    report = inspect_page(write_page(tmp_path, "", css="body { background: white; }"))
    assert is_blank(report.screenshot)
    assert is_blank(report.phone_screenshot)


def test_blank_means_a_handful_of_pixels_at_most():
    def png(pixels: np.ndarray) -> bytes:
        buffer = BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    tall = np.full((4000, 1280, 3), 255, dtype=np.uint8)
    assert is_blank(png(tall))
    tall[10:13, 10:13] = 0  # nine dark pixels: specks
    assert is_blank(png(tall))
    tall[100:110, 100:110] = 0  # a word's worth, on a page 4000 px tall
    assert not is_blank(png(tall))
    assert is_blank(png(np.full((50, 50, 3), 17, dtype=np.uint8)))  # dark is a colour too


def test_a_page_wider_than_a_phone_overflows(tmp_path):
    report = inspect_page(write_page(tmp_path, GOOD + '<div style="width: 2000px">wide</div>'))
    assert report.horizontal_overflow


def test_print_pdf_prints_one_page_per_forced_break(tmp_path):
    chromium_or_skip()
    sections = "".join(f'<section id="s{i}"><h2>Part {i}</h2></section>' for i in range(3))
    css = CSS + "section { page-break-after: always; }"
    html = write_page(tmp_path, sections, css=css)
    pdf = print_pdf(html, tmp_path / "out" / "answers.pdf")
    assert pdf == tmp_path / "out" / "answers.pdf"
    assert pdf_pages(pdf) == 3
    assert sorted(p.name for p in pdf.parent.iterdir()) == ["answers.pdf"]
    # No header or footer: Chromium's margins would print the file:// URL and the date.
    import pypdf

    text = "".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "Part 2" in text and "file:" not in text


def test_print_pdf_without_chromium_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HW5JAX_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrowserMissing) as caught:
        print_pdf(write_page(tmp_path, GOOD), tmp_path / "answers.pdf")
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install chromium" in message and "HW5JAX_CHROMIUM" in message
    assert not (tmp_path / "answers.pdf").exists()


# Stand-ins for a Chromium that fails: each is (shell script, what the error must say).
FAKE_CHROMIUMS = {
    # writes half a PDF to --print-to-pdf=..., then fails
    "exits 1": (
        'for a in "$@"; do case "$a" in --print-to-pdf=*) printf "%%PDF-1.4 half" '
        '> "${a#--print-to-pdf=}";; esac; done\n'
        'echo "noise" >&2\necho "[1:2:0101/000000.0:ERROR:x.cc(1)] boom: cannot print" >&2\n'
        "exit 1",
        "exit 1): boom: cannot print",
    ),
    "exits 0, prints nothing": ('echo "Page load failed" >&2', "exit 0): Page load failed"),
    "hangs": ('echo "starting" >&2\nsleep 60', "timed out after 1 s: starting"),
}


@pytest.mark.parametrize("fake", FAKE_CHROMIUMS, ids=list(FAKE_CHROMIUMS))
def test_a_failing_chromium_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, fake):
    script, expected = FAKE_CHROMIUMS[fake]
    chromium = tmp_path / "chromium"
    chromium.write_text(f"#!/bin/sh\n{script}\n")
    chromium.chmod(0o755)
    monkeypatch.setenv("HW5JAX_CHROMIUM", str(chromium))
    html = write_page(tmp_path, GOOD)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BrowserError) as caught:
        print_pdf(html, out / "answers.pdf", timeout=1)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{html}: ") and message.endswith(expected)
    assert list(out.iterdir()) == []

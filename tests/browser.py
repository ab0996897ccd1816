"""A page as a reader's browser shows it: the system Chromium (`find_chromium`), driven by
Playwright, loads an HTML file and records what went wrong (console errors, failed requests,
broken images), what it holds (section ids, title, text) and how it looks (screenshots at a
laptop's and a phone's width, and in dark mode). Tests import it as `from browser import ...`,
as they import conftest's functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hw5jax.reporting.browser import find_chromium

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Every <img> once loaded (lazy ones are made eager first): the src of each that did not.
_BROKEN_IMAGES = """async () => {
  const images = [...document.images];
  await Promise.all(images.map((img) => {
    img.loading = "eager";
    return img.complete ? null : new Promise((done) => {
      img.addEventListener("load", done, {once: true});
      img.addEventListener("error", done, {once: true});
    });
  }));
  return images.filter((img) => !(img.complete && img.naturalWidth > 0))
               .map((img) => img.getAttribute("src"));
}"""


@dataclass
class PageReport:
    title: str
    text: str
    ids: list[str]  # of the <section> elements, in document order
    console_errors: list[str] = field(default_factory=list)  # console.error and uncaught
    failed_requests: list[str] = field(default_factory=list)  # URLs
    broken_images: list[str] = field(default_factory=list)  # src attributes
    horizontal_overflow: bool = False  # at the phone's width
    screenshot: bytes = b""  # full page, laptop width
    phone_screenshot: bytes = b""  # full page, phone width
    dark_screenshot: bytes = b""  # full page, laptop width, prefers-color-scheme: dark


def chromium_or_skip() -> str:
    """The system Chromium's path; skips the test when it or Playwright is not installed."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed: apt-get install chromium (CI installs it)")
    pytest.importorskip("playwright", reason="Playwright is not installed: pip install '.[test]'")
    return chromium


def inspect_page(html: Path) -> PageReport:
    """Load `html` (a file) in the system Chromium and report on it (see `PageReport`)."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    url = Path(html).resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport=LAPTOP).new_page()
            errors: list[str] = []
            failed: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            broken = _load(page, url)
            report = PageReport(
                title=page.title(),
                text=page.evaluate("document.body.innerText"),
                ids=page.eval_on_selector_all("section", "ss => ss.map(s => s.id)"),
                broken_images=broken,
                screenshot=page.screenshot(full_page=True),
            )
            report.console_errors, report.failed_requests = errors, failed

            phone = browser.new_context(viewport=PHONE).new_page()
            _load(phone, url)
            report.horizontal_overflow = phone.evaluate(
                "document.documentElement.scrollWidth > window.innerWidth"
            )
            report.phone_screenshot = phone.screenshot(full_page=True)

            dark = browser.new_context(viewport=LAPTOP, color_scheme="dark").new_page()
            _load(dark, url)
            report.dark_screenshot = dark.screenshot(full_page=True)
        finally:
            browser.close()
    return report


def _load(page, url: str) -> list[str]:
    """Open `url` in `page` and wait for every image: the src of each that did not load."""
    page.goto(url, wait_until="load")
    return page.evaluate(_BROKEN_IMAGES)


def is_blank(png: bytes, max_pixels: int = 16) -> bool:
    """Whether the image is (nearly) one colour: at most `max_pixels` pixels differ by more
    than a few levels from its most common colour. A count, not a spread such as the standard
    deviation: one line of text on a tall page is a tiny share of its pixels, yet not blank."""
    rgb = np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int32).reshape(-1, 3)
    _, first, counts = np.unique(rgb @ [1 << 16, 1 << 8, 1], return_index=True, return_counts=True)
    background = rgb[first[counts.argmax()]]
    return int((np.abs(rgb - background).max(axis=1) > 8).sum()) <= max_pixels


def pdf_pages(pdf: Path) -> int:
    """The number of pages of a PDF file."""
    pypdf = pytest.importorskip("pypdf")
    return len(pypdf.PdfReader(pdf).pages)

"""Headless Chromium for the HTML answer key, in two uses:

- `print_pdf` prints a rendered page (`OUT/index.html` and the PNGs beside it) to a PDF;
- `find_chromium` is also the browser the browser tests (tests/browser.py) drive through
  Playwright, to load the page the way a reader does.

Chromium is the system's (Debian: `apt-get install chromium`), or `$HW5JAX_CHROMIUM`.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from hw5jax.errors import BrowserError, BrowserMissing

ENV = "HW5JAX_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# --headless is the new headless mode; --no-pdf-header-footer drops the date, URL and page
# numbers Chromium prints in the margins (the older --print-to-pdf-no-header is ignored now).
MISSING = f"Chromium not found: install it (apt-get install chromium) or set {ENV} to its path"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer")


def find_chromium() -> str | None:
    """`$HW5JAX_CHROMIUM` if it names an executable, else the first of `NAMES` on PATH (None
    if there is none)."""
    for name in (os.environ.get(ENV), *NAMES):
        if name and (found := shutil.which(name)):
            return found
    return None


def print_pdf(html: Path, pdf: Path, *, timeout: float = 120) -> Path:
    """Print the page `html` to `pdf` (no header or footer) and return `pdf`. Chromium writes
    a temporary file beside `pdf`, renamed to it only once it holds a PDF: a failure leaves
    neither behind."""
    browser = find_chromium()
    if browser is None:
        raise BrowserMissing(MISSING)
    html, pdf = Path(html).resolve(), Path(pdf)
    if not html.is_file():
        raise BrowserError(f"{html}: no such page to print")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf.absolute().with_name(f".{pdf.name}.{os.getpid()}.tmp")
    try:
        # A throwaway profile: works as root and leaves nothing in ~/.config.
        with tempfile.TemporaryDirectory(prefix="hw5jax-chromium-") as profile:
            command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}"]
            code, stderr = _run([*command, html.as_uri()], timeout)
        if code is None:
            raise BrowserError(f"{html}: Chromium timed out after {timeout:g} s: {stderr}")
        if code != 0 or not _is_pdf(tmp):
            raise BrowserError(f"{html}: Chromium printed no PDF (exit {code}): {stderr}")
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf


def _run(command: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit code, last line of stderr) of `command`; the code is None after a timeout, when
    the command and every process it started are killed."""
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            _, stderr = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            code = None
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # Chromium's log lines start with [pid:tid:time:LEVEL:file(line)]; the message is the rest.
    return code, re.sub(r"^\[[^\]]*\]\s*", "", lines[-1]) if lines else "(no stderr)"


def _is_pdf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(5) == b"%PDF-"
    except OSError:
        return False

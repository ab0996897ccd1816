"""The documentation's links resolve, and the README stays a short user's page.

Every relative link and image path in README.md and docs/*.md must name a file or folder of
the repository (http(s), mailto and pure #anchor links are not checked; a #anchor on a file
link is stripped). Links inside code blocks and inline code are not links and are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 200

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title"; <target> is allowed.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# Reference definitions: [label]: target
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
# <img src="..."> in raw HTML
_IMG = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.I)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, //host


def link_targets(markdown: str) -> list[str]:
    """The link and image targets of a Markdown text, outside code."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    return [m.group(1) for pattern in (_LINK, _REFERENCE, _IMG) for m in pattern.finditer(text)]


def local_path(target: str) -> str | None:
    """The repository path a link target names, or None for external links and pure anchors."""
    if _EXTERNAL.match(target) or target.startswith("#"):
        return None
    path = target.split("#", 1)[0].split("?", 1)[0]
    return path or None


def broken_links(markdown: str, base: Path, root: Path = ROOT) -> list[str]:
    """The targets of `markdown` (a file in folder `base`) that name nothing in `root`."""
    root = root.resolve()
    broken = []
    for target in link_targets(markdown):
        path = local_path(target)
        if path is None:
            continue
        resolved = (root / path.lstrip("/")) if path.startswith("/") else (base / path)
        resolved = resolved.resolve()
        if not resolved.is_relative_to(root) or not resolved.exists():
            broken.append(target)
    return broken


def code_blocks(markdown: str) -> list[str]:
    return [m.group(0) for m in _FENCE.finditer(markdown)]


# --------------------------------------------------------------------------- the checker


def test_link_extraction_finds_links_and_images_but_not_code():
    text = (
        'See [a page](docs/page.md#part), ![a figure](fig.png "title"), '
        '[ext](https://example.org/x.md), [anchor](#here), <img src="pic.png">.\n'
        "[ref]: notes.md\n"
        "`[not a link](inline.md)`\n"
        "```\n[nor this](fenced.md)\n```\n"
    )
    assert link_targets(text) == [
        "docs/page.md#part",
        "fig.png",
        "https://example.org/x.md",
        "#here",
        "notes.md",
        "pic.png",
    ]
    assert [local_path(t) for t in link_targets(text)] == [
        "docs/page.md",
        "fig.png",
        None,
        None,
        "notes.md",
        "pic.png",
    ]


def test_a_broken_link_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("x")
    (tmp_path / "fig.png").write_bytes(b"")
    text = "[ok](docs/page.md#a) ![ok](fig.png) [broken](docs/missing.md) [out](../../etc/passwd)"
    assert broken_links(text, tmp_path, root=tmp_path) == ["docs/missing.md", "../../etc/passwd"]
    # From a page inside docs/, the same targets resolve relative to docs/.
    assert broken_links("[up](../fig.png) [here](page.md)", tmp_path / "docs", root=tmp_path) == []
    assert broken_links("[wrong](fig.png)", tmp_path / "docs", root=tmp_path) == ["fig.png"]


# --------------------------------------------------------------------------- the pages


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page.read_text(encoding="utf-8"), page.parent) == []


def test_the_docs_pages_are_there():
    names = {p.name for p in PAGES}
    for name in (
        "optimizers.md",
        "batchnorm.md",
        "cnn.md",
        "alexnet.md",
        "theory.md",
        "performance.md",
        "scaling.md",
        "robustness.md",
        "results-format.md",
    ):
        assert name in names


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    blocks = code_blocks(text)
    assert blocks, "README.md has no code block"
    assert "make run" in blocks[0] and "make test" in blocks[0]

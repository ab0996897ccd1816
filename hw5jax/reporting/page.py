"""The answer key's HTML: one Jinja2 template (`templates/answer_key.html.j2`, plain HTML and
CSS, no JavaScript) filled with the sections that `hw5jax.pipelines.report` builds, and
markdown (theory.md's prose) turned into HTML by markdown-it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

VERDICTS = {
    "agrees": "agrees",
    "partly": "agrees in part",
    "disagrees": "disagrees",
    "fails": "check fails",
    "not-checkable": "not checkable here",
    "not-run": "not run",
}


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hw5jax.reporting", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["code"] = code
    return env


@cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str) -> Markup:
    """Markdown -> HTML (raw HTML in the text is escaped, not passed through)."""
    return Markup(_markdown().render(text)) if text.strip() else Markup("")


def code(text: str) -> Markup:
    """Text with `backquoted` spans as <code> (everything else escaped)."""
    parts = str(text).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(p) if i % 2 else Markup("{}").format(p)
        for i, p in enumerate(parts)
    )


def render(sections: Sequence[dict[str, Any]], **context: Any) -> str:
    """The whole page: `sections` (see `hw5jax.pipelines.report.build_sections`) and the
    template's other variables (source, generated, entries)."""
    template = _environment().get_template("answer_key.html.j2")
    return template.render(sections=sections, verdicts=VERDICTS, **context)

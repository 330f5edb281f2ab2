"""Markdown pieces for the report, and its HTML rendering (raw HTML in messages stays text)."""

from __future__ import annotations

import re
from collections.abc import Sequence

SPECIAL = re.compile(r"([\\`*_\[\]<>|])")  # what could format or break a line or table cell

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid
#ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}img{max-width:100%}
blockquote{border-left:3px solid #ccc;margin:.5em 0;padding:0 1em;color:#333}
code{background:#f3f3f3}"""


def escape(text: str) -> str:
    """Message text as one Markdown-safe line."""
    return SPECIAL.sub(r"\\\1", " ".join(text.split()))


def number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_html(markdown: str, title: str) -> str:
    """A self-contained page; images stay relative links (plots/...)."""
    from html import escape as html_escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html_escape(title)}</title>"
        f"<style>{CSS}</style></head>\n<body>\n{body}</body></html>\n"
    )

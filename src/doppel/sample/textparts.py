"""A tiny markup for formatted sample messages, and its rendering as Telegram's `text` fields.

`<bold:word>`, `<link:https://...>`, `<text_link:label|https://...>`, `<phone:+1 ...>`... mark
entities inside a message. Styles must not touch them (a URL must not be upper-cased), so
`protect` swaps them for placeholders while a persona's style rewrites the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ENTITY_TYPES = ("bold", "italic", "link", "text_link", "mention", "hashtag", "phone", "email",
                "bank_card", "code")
_TOKEN = re.compile(r"<(" + "|".join(ENTITY_TYPES) + r"):([^<>|]+)(?:\|([^<>]+))?>")
_HOLE = re.compile("\ue000(\\d+)\ue001")


def styled(markup: str, style: Callable[[str], list[str]]) -> list[str]:
    """Apply `style` (text -> burst of messages) to the plain words only, entities intact."""
    tokens: list[str] = []

    def hole(match: re.Match[str]) -> str:
        tokens.append(match.group(0))
        return f"\ue000{len(tokens) - 1}\ue001"

    messages = style(_TOKEN.sub(hole, markup))
    return [_HOLE.sub(lambda m: tokens[int(m.group(1))], message) for message in messages]


def parts(markup: str) -> list[dict[str, str]]:
    """Split markup into Telegram text parts: {"type": "plain"|entity, "text", ["href"]}."""
    out: list[dict[str, str]] = []
    pos = 0
    for match in _TOKEN.finditer(markup):
        if match.start() > pos:
            out.append({"type": "plain", "text": markup[pos:match.start()]})
        kind, text, href = match.groups()
        part = {"type": kind, "text": text}
        if kind == "text_link":
            part["href"] = href or text
        out.append(part)
        pos = match.end()
    if pos < len(markup):
        out.append({"type": "plain", "text": markup[pos:]})
    return out


def export_text(markup: str) -> tuple[str | list[Any], list[dict[str, str]]]:
    """The `text` and `text_entities` fields Telegram Desktop writes for this message.

    Plain text is a string; formatted text is a list of strings (plain runs) and entity objects.
    `text_entities` always lists objects, plain runs included.
    """
    runs = parts(markup)
    if not runs:
        return "", []
    if len(runs) == 1 and runs[0]["type"] == "plain":
        return runs[0]["text"], runs
    return [p["text"] if p["type"] == "plain" else p for p in runs], runs


def plain(markup: str) -> str:
    """The message as a reader reassembles it (every part's text joined)."""
    return "".join(p["text"] for p in parts(markup))

"""Whole-file JSON for the sources whose files are one chat each (Discord, Meta): orjson, with
the problems a user can cause (not UTF-8, cut short, nested past orjson's limit) as one line."""

from __future__ import annotations

from typing import Any

import orjson

from doppel.errors import DoppelError

BOM = b"\xef\xbb\xbf"


def load_json(data: bytes, label: str, what: str) -> Any:
    """`data` parsed; `what` names the export for the error ("a Discord export")."""
    try:
        return orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError as bad:
        reason = str(bad).split(":", 1)[0]
        raise DoppelError(f"{label} is not valid JSON ({reason}); {what} is JSON: export it "
                          "again") from None


def as_list(value: Any) -> list[Any]:
    """A field that should hold a list, as a list whatever it holds."""
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str:
    """A field that should hold text, as text whatever it holds."""
    if isinstance(value, str):
        return value
    return "" if value is None or isinstance(value, dict | list) else str(value)

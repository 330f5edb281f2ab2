"""Export readers: each turns one app's export into Chat/Message records (see records.py).

`open_export(path)` picks the reader. A new source (WhatsApp, say) is one module with a reader
class offering the ExportReader attributes, plus one `register(...)` line below; the rest of doppel
only ever sees the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from doppel.sources.records import Chat, Message
from doppel.sources.telegram import TelegramExport, normalize_peer_id

__all__ = ["Chat", "ExportReader", "Message", "TelegramExport", "normalize_peer_id",
           "open_export", "register"]


class ExportReader(Protocol):
    """What every source offers: a layout name, progress counters, the owner when the export
    says who made it, the chats seen so far, and the message stream in file order."""

    layout: str
    size_bytes: int
    bytes_read: int
    owner: tuple[str, str] | None
    chats: list[Chat]

    def messages(self) -> Iterator[Message]: ...


# (name, claims(path) -> bool, open(path) -> reader); the first source that claims a path reads it
_SOURCES: list[tuple[str, Callable[[Path], bool], Callable[[Path], ExportReader]]] = []


def register(name: str, claims: Callable[[Path], bool],
             opener: Callable[[Path], ExportReader]) -> None:
    """Add a source; `claims` must be cheap (a file name or the first bytes)."""
    _SOURCES.append((name, claims, opener))


def open_export(path: Path | str) -> ExportReader:
    """The reader for `path`. Telegram is the fallback, so anything no source claims gets
    Telegram's precise error (not JSON, looks like WhatsApp, not UTF-8, ...)."""
    path = Path(path)
    for _name, claims, opener in _SOURCES:
        if claims(path):
            return opener(path)
    return TelegramExport(path)

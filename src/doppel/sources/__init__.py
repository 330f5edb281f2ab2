"""Export readers: each turns one app's export into Chat/Message records (see records.py).

`open_export(path)` looks at what the path holds (probe.py) and lets each registered source claim
it by content, never by file name. A new source is one module with a reader offering the
ExportReader attributes, plus one `register(...)` line below; the rest of doppel only ever sees
the records. Telegram is registered like the others, last: it takes any other JSON, so a broken
Telegram file still gets Telegram's precise error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from doppel.errors import DoppelError
from doppel.sources import (
    chatlab,
    discord,
    imessage,
    kakaotalk,
    line,
    meta,
    signal,
    telegram,
    whatsapp,
)
from doppel.sources.probe import Probe, probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.telegram import TelegramExport, normalize_peer_id

__all__ = ["SOURCES", "Chat", "ExportReader", "Message", "ReadSettings", "Tally", "TelegramExport",
           "normalize_peer_id", "open_export", "register", "supported"]


class ExportReader(Protocol):
    """What every source offers: its source name, a layout name, progress counters, the owner
    when the export says who made it, the chats seen so far, the message stream, and the tally
    of the last pass (what it could not read, by reason: sources/tally.py)."""

    source: str
    path: Path
    layout: str
    size_bytes: int
    bytes_read: int
    owner: tuple[str, str] | None
    chats: list[Chat]
    tally: Tally

    def messages(self) -> Iterator[Message]: ...


@dataclass(frozen=True)
class Source:
    """One app's export format: `claims(probe)` must be cheap (the head of a file, the names in a
    folder or zip); `open(path, settings)` returns its reader."""

    name: str
    label: str
    claims: Callable[[Probe], bool]
    open: Callable[[Path, ReadSettings], ExportReader]


SOURCES: list[Source] = []


def register(name: str, label: str, claims: Callable[[Probe], bool],
             opener: Callable[[Path, ReadSettings], ExportReader]) -> None:
    """Add a source; the first one that claims a path reads it."""
    SOURCES.append(Source(name, label, claims, opener))


def supported() -> str:
    """The supported sources, for error messages."""
    return "; ".join(source.label for source in SOURCES)


def open_export(path: Path | str, settings: ReadSettings | None = None) -> ExportReader:
    """The reader for `path`, chosen by content; anything no source claims is one clear line."""
    path = Path(path)
    seen = probe(path)
    if seen.kind == "file":
        _check_text(seen)
    for source in SOURCES:
        if source.claims(seen):
            return source.open(path, settings or ReadSettings())
    what = {"dir": "a folder with no export doppel knows",
            "zip": "a zip with no export doppel knows"}.get(seen.kind, "not an export doppel knows")
    raise DoppelError(f"{path} is {what}; doppel reads: {supported()}")


def _check_text(seen: Probe) -> None:
    """The problems every file source shares, said once: an empty file, UTF-16 text."""
    if not seen.raw.strip(b" \t\r\n\xef\xbb\xbf"):
        raise DoppelError(f"{seen.path} is empty; export it again from the app")
    if seen.raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DoppelError(f"{seen.path} is UTF-16 text, not UTF-8; convert it, e.g. "
                          f"`iconv -f utf-16 -t utf-8 '{seen.path.name}' > fixed.txt`")


# the order matters only where two could claim one path: specific shapes first, Telegram last
register("whatsapp", "WhatsApp 'Export chat' (.txt or .zip)", whatsapp.claims, whatsapp.open_reader)
register("imessage", "iMessage (Messages' chat.db on a Mac, or an iPhone backup's sms.db)",
         imessage.claims, imessage.open_reader)
register("signal", "Signal text export ([YYYY-MM-DD, HH:MM] Name: text)", signal.claims,
         signal.open_reader)
register("line", "LINE text export ([LINE] Chat history with ...)", line.claims, line.open_reader)
register("kakaotalk", "KakaoTalk chat export (PC or phone text, or CSV)", kakaotalk.claims,
         kakaotalk.open_reader)
register("chatlab", "ChatLab JSON or JSONL (what WeChat and QQ exporters write)", chatlab.claims,
         chatlab.open_reader)
register("discord", "Discord (DiscordChatExporter JSON)", discord.claims, discord.open_reader)
register("meta", "Messenger/Instagram ('Download your information' JSON: folder, zip or "
         "message_1.json)", meta.claims, meta.open_reader)
register("telegram", "Telegram Desktop JSON (result.json or its folder)", telegram.claims,
         telegram.open_reader)

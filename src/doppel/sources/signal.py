"""Read Signal's text export: `[YYYY-MM-DD, HH:MM] Name: text`, continuation lines after.

One file is one chat, read twice as a stream: the first pass counts the writers (more than two:
a group), the second yields the messages. Times are local, read as UTC (the file has no zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from doppel.errors import DoppelError
from doppel.sources.ids import HEAD_ENTRIES, in_chat, key
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.textlines import TextFile
from doppel.sources.whatsapp import MAX_LINES

__all__ = ["SignalExport", "claims", "open_reader"]

SOURCE = "signal"
HEADER = re.compile(r"\[(\d{4})-(\d{2})-(\d{2}), (\d{2}):(\d{2})\] ")
_EPOCH = datetime(1970, 1, 1)


def claims(seen: Probe) -> bool:
    if seen.kind != "file":
        return False
    first = next((line for line in seen.head.splitlines()[:5] if line.strip()), "")
    return bool(HEADER.match(first.lstrip("\ufeff\u200e ")))


def open_reader(path: Path, settings: ReadSettings) -> SignalExport:
    return SignalExport(path)


def _time(found: re.Match[str]) -> float | None:
    try:
        when = datetime(*map(int, found.groups()))
    except ValueError:
        return None
    return (when - _EPOCH).total_seconds()


class SignalExport:
    """One Signal text export; `messages()` streams it."""

    source = SOURCE
    layout = "txt"

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        self.path = Path(path)
        self.file = TextFile(self.path)
        self.size_bytes = self.path.stat().st_size * 2
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: dict[str, int] = {}
        self.tally = Tally()

    def _writers(self) -> tuple[set[str], list[str]]:
        """Who wrote, and the first message lines (what names the chat: ids.py)."""
        writers: set[str] = set()
        head: list[str] = []
        for line in self.file.lines(self._progress(0)):
            found = HEADER.match(line)
            if found:
                writers.add(line[found.end():].partition(": ")[0])
                if len(head) < HEAD_ENTRIES:
                    head.append(line)
        if not writers:
            raise DoppelError(f"{self.path} has no Signal message lines ([YYYY-MM-DD, HH:MM] "
                              "Name: text)")
        return writers, head

    def _progress(self, done: int):
        return lambda n: setattr(self, "bytes_read", done + n)

    def messages(self) -> Iterator[Message]:
        self.tally = tally = Tally()
        writers, head = self._writers()
        name = self.path.stem
        chat = Chat(f"{SOURCE}:{key(head)}", name,
                    "private_group" if len(writers) > 2 else "personal_chat", SOURCE)
        self.chats = [chat]
        head: tuple[float, str] | None = None
        body: list[str] = []
        count, last = 0, 0.0
        for line in self.file.lines(self._progress(self.size_bytes // 2)):
            tally.read += 1
            found = HEADER.match(line)
            if found is None:
                tally.follow(line, None if head is None else body, MAX_LINES)
                continue
            tally.started += 1
            if head is not None:
                count += 1
                yield self._message(chat, count, head, body)
            when = _time(found)
            last = last if when is None else when
            head, body = (last, line[found.end():]), []
        if head is not None:
            yield self._message(chat, count + 1, head, body)
        self.bytes_read = self.size_bytes

    @staticmethod
    def _message(chat: Chat, count: int, head: tuple[float, str], more: list[str]) -> Message:
        when, rest = head
        author, colon, text = rest.partition(": ")
        if not colon or not author.strip():
            return Message(chat, count, when, None, None, rest, drop="system")
        text = "\n".join((text, *more)) if more else text
        name = author.strip()
        return Message(chat, count, when, in_chat(chat.id, name), name, text)

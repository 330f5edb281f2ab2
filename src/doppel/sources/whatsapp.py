"""Read WhatsApp "Export chat" files (.txt, the .zip the app writes, or its unzipped folder).

Each text file is one chat, read twice as a stream: the first pass collects every header's date
fields (the date order comes from the whole file, wa_header.DateOrder) and the writers (more than
two: a group); the second yields the messages. A line with no header continues the message
before it. Who wrote a line is the text before the first ": "; a line without one is a system
line (joins, subject changes, the encryption notice), as are the few that a locale or iOS writes
with a name (wa_body.ALWAYS_SYSTEM, ACTION). Times are the phone's local time, read as UTC: the
export carries no time zone, and gaps within a chat come out right.

The file never says which participant exported it: "me" comes from --me or --identities.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from doppel.errors import DoppelError
from doppel.sources import wa_header
from doppel.sources.ids import Head, in_chat, key
from doppel.sources.probe import MARKS, Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.textlines import TextFile
from doppel.sources.wa_body import (
    ACTION,
    ALWAYS_SYSTEM,
    ENCRYPTION,
    NOTICE_MESSAGES,
    SYSTEM_INITIALS,
    attached_name,
    read_body,
)

__all__ = ["WhatsAppExport", "claims", "open_reader"]

SOURCE = "whatsapp"
MAX_AUTHORS = 10_000  # writers remembered per chat (a group has at most 1,024 members)
MAX_LINES = 10_000  # lines kept per message (the app caps a message at 65,536 characters)
_SIGNAL = re.compile(r"\[\d{4}-\d{2}-\d{2}, \d{2}:\d{2}\] ")
_CHAT_NAME = re.compile(r"(?i)^(?:WhatsApp Chat(?: with| mit| met| com| con| avec| -)?|"
                        r"Chat de WhatsApp con|Discussion WhatsApp avec|Чат WhatsApp с|"
                        r"Conversa do WhatsApp com|Chat WhatsApp con)\s+(.+)$")
_NOT_A_NAME = re.compile(r"[\"“”«»„]")
_PHONE = re.compile(r"\+?[\d\s().-]{6,}")  # a writer not in the contacts: their number
_MARKS = re.compile(f"[{MARKS}]")
_AUDIO = frozenset({"[voice]", "[audio]"})  # media whose file transcription may hear


def looks_like(head: str) -> bool:
    """One of the first lines starts with a WhatsApp header (and none is Signal's): a file cut
    by hand may start inside a message."""
    lines = [line for line in map(str.strip, _MARKS.sub("", head[:4096]).split("\n")) if line]
    for line in lines[:5]:
        if _SIGNAL.match(line):
            return False
        if wa_header.DATE_FIRST.match(line) or wa_header.TIME_FIRST.match(line):
            return True
    return False


def _text_members(seen: Probe) -> list[str]:
    return [name for name in seen.names if name.lower().endswith(".txt")
            and name.count("/") <= 1 and looks_like(seen.member_head(name))]


def claims(seen: Probe) -> bool:
    if seen.kind == "file":
        return looks_like(seen.head)
    return bool(_text_members(seen))


def open_reader(path: Path, settings: ReadSettings) -> WhatsAppExport:
    return WhatsAppExport(path, settings)


def chat_name(file: TextFile) -> str:
    """The chat's name from the file names the app chose ("WhatsApp Chat with Sam.txt", a zip
    "WhatsApp Chat - Sam.zip" holding _chat.txt), else the file's own name."""
    stems = [Path(file.member).stem] if file.member else []
    stems += [file.path.stem]
    for stem in stems:
        found = _CHAT_NAME.match(stem.strip())
        if found:
            return found.group(1).strip()
    return next((s for s in stems if s.strip("_ ") and s != "_chat"), file.path.stem) or "chat"


def _speaker(author: str) -> str:
    """A writer's name without the "~ " WhatsApp puts before people not in the contacts."""
    return author.lstrip("~\u202f\u00a0 ").strip() or author


class _Scan:
    """What the first pass learned about one file."""

    def __init__(self) -> None:
        self.dates = wa_header.DateOrder()
        self.authors: Counter[str] = Counter()
        self.time_first: bool | None = None
        self.headers = 0
        self.group_events = 0
        self.head: list[str] = []  # the first header lines: what names the chat (ids.py)


class WhatsAppExport:
    """One or more WhatsApp chat files; `messages()` streams them chat by chat."""

    source = SOURCE

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        self.path = Path(path)
        self.settings = settings or ReadSettings()
        self.files = self._find_files()
        self.layout = "zip" if self.files[0].member and self.path.is_file() else (
            "folder" if self.path.is_dir() else "txt")
        self.size_bytes = sum(f.size for f in self.files) * 2  # read twice
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.tally = Tally()

    def _find_files(self) -> list[TextFile]:
        from doppel.sources.probe import probe

        seen = probe(self.path)
        if seen.kind == "file":
            return [TextFile(self.path)]
        members = _text_members(seen)
        if not members:
            raise DoppelError(f"{self.path} holds no WhatsApp chat text (.txt); pass the .zip "
                              "or .txt that 'Export chat' wrote")
        if seen.kind == "dir":
            return [TextFile(self.path / name) for name in members]
        return [TextFile(self.path, name) for name in members]

    def messages(self) -> Iterator[Message]:
        self.chats, self.unknown, self.tally, done = [], Counter(), Tally(), 0
        for file in self.files:
            size = file.size
            scan = self._scan(file, done)
            yield from self._read(file, scan, done + size)
            done += 2 * size
        self.bytes_read = self.size_bytes

    def _folder(self, file: TextFile) -> str:
        """Where the chat's media files sit, relative to the export's root (the zip, the folder,
        or the .txt's folder): next to its text file."""
        if file.member:
            return posixpath.dirname(file.member)
        if self.path.is_dir():
            folder = file.path.relative_to(self.path).parent.as_posix()
            return "" if folder == "." else folder
        return ""

    def _scan(self, file: TextFile, done: int) -> _Scan:
        """The first pass: one regex search per block of lines finds every header."""
        scan = _Scan()
        finder = None
        for block in file.blocks(lambda n: setattr(self, "bytes_read", done + n)):
            if finder is None:
                finder = self._pick_finder(block, scan)
                if finder is None:
                    continue
                scan.head = _head(finder, block)
            self._count(finder, block, scan)
        if not scan.headers:
            raise DoppelError(f"{file.label} has no WhatsApp message lines; pass the .txt or "
                              ".zip that 'Export chat' wrote")
        return scan

    @staticmethod
    def _count(finder: re.Pattern[str], block: str, scan: _Scan) -> None:
        """Every header of a block: its date fields, and who wrote (or a group event)."""
        add, authors, last = scan.dates.add, scan.authors, None
        for found in finder.finditer(block):
            a, b, c, rest = found.group("a", "b", "c", "rest")
            scan.headers += 1
            if (a, b, c) != last:
                last = (a, b, c)
                add(a, b, c)
            at = rest.find(": ")
            if at > 0:
                if len(authors) < MAX_AUTHORS or rest[:at] in authors:
                    authors[rest[:at]] += 1
            elif ACTION.search(rest):
                scan.group_events += 1

    @staticmethod
    def _pick_finder(block: str, scan: _Scan) -> re.Pattern[str] | None:
        """The header shape of the first header in the file (date first or time first)."""
        starts = [(found.start(), time_first, finder) for time_first, finder in (
            (False, wa_header.SCAN_DATE_FIRST), (True, wa_header.SCAN_TIME_FIRST))
            if (found := finder.search(block))]
        if not starts:
            return None
        _, scan.time_first, finder = min(starts, key=lambda start: start[:2])
        return finder

    def _read(self, file: TextFile, scan: _Scan, done: int) -> Iterator[Message]:
        order = scan.dates.decide(self.settings.date_order, file.label)
        name = chat_name(file)
        writers = [a for a in scan.authors if not _NOT_A_NAME.search(a)]
        group = len(writers) > 2 or scan.group_events > 0
        chat = Chat(f"{SOURCE}:{key(scan.head)}", name,
                    "private_group" if group else "personal_chat", SOURCE)
        self.chats.append(chat)
        lines = _Lines(chat, order, set(scan.authors), group, self.unknown, self.tally,
                       self._folder(file))
        regex = wa_header.TIME_FIRST if scan.time_first else wa_header.DATE_FIRST
        for line in file.lines(lambda n: setattr(self, "bytes_read", done + n)):
            found = regex.match(line)
            if found is None:
                lines.more(line)
                continue
            message = lines.flush()
            if message is not None:
                yield message
            lines.start(found, line)
        message = lines.flush()
        if message is not None:
            yield message


class _Lines:
    """Builds one chat's messages from header lines and the continuation lines after them."""

    def __init__(self, chat: Chat, order: str, authors: set[str], group: bool,
                 unknown: Counter[str], tally: Tally, folder: str = "") -> None:
        self.chat = chat
        self.tally = tally
        self.folder = folder
        self.order = order
        self.authors = authors
        self.group = group
        self.unknown = unknown
        self.system_authors: set[str] = set()  # iOS: the group's name writes its system lines
        # caches: most headers repeat a date, a clock reading and a writer seen before
        self.days: dict[tuple[str, str, str], int | None] = {}
        self.clock: dict[tuple[str, str, str | None, str | None, str | None], int | None] = {}
        self.speakers: dict[str, tuple[str, str] | None] = {}  # author -> (id, name); None: not
        self.count = 0
        self.time = 0.0
        self.rest: str | None = None
        self.extra: list[str] = []

    def more(self, line: str) -> None:
        tally = self.tally
        tally.read += 1
        if self.rest is None:
            if line.strip():
                tally.skip("line outside any message")
            else:
                tally.layout += 1
        elif len(self.extra) < MAX_LINES:
            self.extra.append(line)
            tally.continued += 1
        else:
            tally.skip("line beyond a message's size")

    def start(self, found: re.Match[str], line: str) -> None:
        self.tally.read += 1
        self.tally.started += 1
        a, b, c, pre, h, mi, s, post = found.group(*wa_header.FIELDS)
        day = self.days.get((a, b, c), -1)
        if day == -1:
            day = self.days[(a, b, c)] = wa_header.day_of(a, b, c, self.order)
        clock = self.clock.get((h, mi, s, pre, post), -1)
        if clock == -1:
            clock = self.clock[(h, mi, s, pre, post)] = self._seconds(h, mi, s, pre, post)
        if day is None or clock is None:
            self.unknown["header with an impossible date or time"] += 1
        else:
            self.time = day * 86400.0 + clock
        self.rest = line[found.end():]

    def _seconds(self, h: str, mi: str, s: str | None, pre: str | None,
                 post: str | None) -> int | None:
        hour, known = wa_header.hour24(int(h), pre, post)
        if not known:
            self.unknown[f"clock marker {pre or post}"] += 1
        if hour > 23 or int(mi) > 59 or (s and int(s) > 60):
            return None
        return hour * 3600 + int(mi) * 60 + (int(s) if s else 0)

    def flush(self) -> Message | None:
        rest = self.rest
        if rest is None:
            return None
        self.rest = None
        self.count += 1
        at = rest.find(": ")
        if at > 0:
            author, body = rest[:at], rest[at + 2:]
        else:
            at = rest.find(":")
            if at <= 0 or rest[:at] not in self.authors:
                return self._system_line(rest)
            author, body = rest[:at], rest[at + 1:].lstrip(" ")
        if self.extra:
            body = "\n".join((body, *self.extra))
            self.extra = []
        speaker = self.speakers.get(author, False)
        if speaker is False:
            speaker = self.speakers[author] = self._speaker(author)
        if speaker is None or self._system(author, body):
            return self._system_line(rest)
        drop, media, text = read_body(body)
        message = Message(self.chat, self.count, self.time, speaker[0], speaker[1], text,
                          "message", drop, media)
        if media in _AUDIO:
            name = attached_name(body)
            if name:
                message.media_path = posixpath.join(self.folder, name)
        return message

    def _system_line(self, rest: str) -> Message:
        if self.extra:
            rest = "\n".join((rest, *self.extra))
            self.extra = []
        return Message(self.chat, self.count, self.time, None, None, rest, drop="system")

    def _speaker(self, author: str) -> tuple[str, str] | None:
        """(speaker id, name) of a writer, or None when the "writer" is a system line's start
        (too long, or quoting a group subject)."""
        if len(author) > 80 or _NOT_A_NAME.search(author) or author in self.system_authors:
            return None
        name = _speaker(author)
        if _PHONE.fullmatch(name):  # the id must not carry the number (prepare masks the name)
            digest = hashlib.sha256(name.encode()).hexdigest()[:12]
            return f"{SOURCE}:phone-{digest}", name
        return in_chat(self.chat.id, name), name

    def _system(self, author: str, body: str) -> bool:
        """A system line written with a "Name: " part (iOS, some locales)."""
        if len(body) > 400:
            return False
        if (self.count <= NOTICE_MESSAGES or "WhatsApp" in body) and ENCRYPTION.search(body):
            if self.group:
                self.system_authors.add(author)
                self.speakers[author] = None
            return True
        if body[:1] in SYSTEM_INITIALS and ALWAYS_SYSTEM.match(body):
            return True
        return body.startswith(author) and ACTION.search(body, len(author), 200) is not None


def _head(finder: re.Pattern[str], block: str) -> list[str]:
    """The header lines that name the chat (ids.Head: the first ones, on to the second writer)."""
    head = Head()
    for found in finder.finditer(block):
        if not head.wants():
            break
        rest = found.group("rest")
        at = rest.find(": ")
        head.add(found.group(0), rest[:at] if at > 0 else None)
    return head.entries

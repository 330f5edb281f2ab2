"""Read KakaoTalk's chat exports, Korean or English: the PC text file, the phone's text file and
the CSV (`Date,User,Message`).

PC: `[Name] [오전 10:15] text` (`[10:15 AM]` in English) under day lines `----- 2024년 3월 12일
화요일 -----`. Phone: `2024년 3월 12일 오전 10:15, Name : text` (iOS `2024. 3. 12. 오전 10:15`,
English `Mar 12, 2024 at 10:15 AM`); the same date and time followed by `: text` or nothing is a
system or date line. Lines that match none continue the message before, except the system lines
the PC file writes bare (joins, leaves, invitations). Media arrive as words (`사진`, `이모티콘`,
`Photo`); a deleted message is `삭제된 메시지입니다.`. Times are local, read as UTC.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from doppel.sources.chatlines import ChatLines, Entry, Parse, local_seconds
from doppel.sources.ids import in_chat
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings

__all__ = ["KakaoTalkExport", "claims", "open_reader"]

SOURCE = "kakaotalk"
CSV_HEADER = "Date,User,Message"
_TITLES = (re.compile(r"^(.+?) 님과 카카오톡 대화$"), re.compile(r"^KakaoTalk Chats with (.+)$"),
           re.compile(r"^(.+?) KakaoTalk Chats$"))
_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), 1)}
_DATE = (r"(?:(?P<ky>\d{4})년 (?P<km>\d{1,2})월 (?P<kd>\d{1,2})일|"
         r"(?P<iy>\d{4})\. (?P<im>\d{1,2})\. (?P<id>\d{1,2})\.|"
         r"(?P<em>[A-Z][a-z]{2,8})\.? (?P<ed>\d{1,2}), (?P<ey>\d{4}))")
_TIME = r"(?:(?P<half>오전|오후) )?(?P<h>\d{1,2}):(?P<m>\d{2})(?: ?(?P<ampm>AM|PM))?"
_PHONE = re.compile(rf"^{_DATE}(?:,| at)? {_TIME}(?P<rest>.*)$")
_PC = re.compile(rf"^\[(?P<name>[^\]]+)\] \[{_TIME}\] (?P<text>.*)$")
_PC_DAY = re.compile(rf"^-{{5,}} (?:[A-Z][a-z]+, )?{_DATE}.*-{{5,}}$")
_PC_SYSTEM = re.compile(r"님이 (?:들어왔습니다|나갔습니다|.+초대(?:하였|했)습니다)\.?$|"
                        r"^.+ (?:joined this chatroom|left this chatroom|invited .+)\.?$")
_DELETED = ("삭제된 메시지입니다.", "This message was deleted.", "Deleted message.")
_MEDIA = ((re.compile(r"^(?:사진(?: \d+장)?|Photo|Photos|\d+ Photos)$"), "[photo]"),
          (re.compile(r"^(?:동영상|Video)$"), "[video]"),
          (re.compile(r"^(?:이모티콘|Emoticons?)$"), "[sticker]"),
          (re.compile(r"^(?:음성메시지|Voice Message)$"), "[voice]"),
          (re.compile(r"^(?:파일|File): .+$"), "[file]"))


def _first_line(head: str) -> str:
    return next((line.strip() for line in head.lstrip("\ufeff").splitlines()[:3]
                 if line.strip()), "")


def claims(seen: Probe) -> bool:
    if seen.kind != "file":
        return False
    first = _first_line(seen.head)
    return first == CSV_HEADER or any(title.match(first) for title in _TITLES)


def open_reader(path: Path, settings: ReadSettings) -> KakaoTalkExport:
    return KakaoTalkExport(path)


def _day(found: re.Match[str]) -> tuple[int, int, int] | None:
    parts = found.groupdict()
    if parts.get("ky"):
        return int(parts["ky"]), int(parts["km"]), int(parts["kd"])
    if parts.get("iy"):
        return int(parts["iy"]), int(parts["im"]), int(parts["id"])
    month = _MONTHS.get((parts.get("em") or "")[:3].lower())
    return (int(parts["ey"]), month, int(parts["ed"])) if month else None


def _hour(found: re.Match[str]) -> tuple[int, int]:
    hour, half = int(found["h"]), found["half"] or found["ampm"]
    if half:
        hour = hour % 12 + (12 if half in ("오후", "PM") else 0)
    return hour, int(found["m"])


class KakaoTalkExport(ChatLines):
    """One KakaoTalk chat, any of its three export shapes."""

    source = SOURCE
    what = "a KakaoTalk export"

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        super().__init__(path)
        with open(self.path, "rb") as handle:
            first = _first_line(handle.read(4096).decode("utf-8", "replace"))
        self.csv = first == CSV_HEADER
        self.layout = "csv" if self.csv else "txt"
        title = next((found.group(1) for t in _TITLES if (found := t.match(first))), None)
        self.title = (title or self.path.stem).strip()

    def parser(self) -> Parse:
        day: list[tuple[int, int, int] | None] = [None]

        def parse(line: str) -> Entry | bool | None:
            found = _PC.match(line)
            if found is not None:
                when = local_seconds(*day[0], *_hour(found)) if day[0] else None
                return Entry(when, found["name"].strip(), found["text"])
            found = _PHONE.match(line)
            if found is not None:
                return _phone_line(found)
            found = _PC_DAY.match(line)
            if found is not None:
                day[0] = _day(found) or day[0]
                return False
            if _PC_SYSTEM.search(line):
                return Entry(None, None, line)
            return None
        return parse

    def entries(self, on_read: Callable[[int], None]) -> Iterator[Entry]:
        if not self.csv:
            yield from super().entries(on_read)
            return
        rows = csv.reader(line + "\n" for line in self.file.lines(on_read))
        next(rows, None)
        for row in rows:
            if len(row) < 3:
                continue
            stamp = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})(?::(\d{2}))?", row[0])
            when = local_seconds(*(int(g or 0) for g in stamp.groups())) if stamp else None
            yield Entry(when, row[1].strip() or None, ",".join(row[2:]))

    def message(self, chat: Chat, count: int, entry: Entry, last: float) -> Message:
        text = entry.body
        if entry.author is None:
            return Message(chat, count, last, None, None, text, drop="system")
        sid, name = in_chat(chat.id, entry.author), entry.author
        if text.strip() in _DELETED:
            return Message(chat, count, last, sid, name, "", drop="deleted")
        marker = next((mark for pattern, mark in _MEDIA if pattern.match(text.strip())), None)
        if marker:
            return Message(chat, count, last, sid, name, "", media=marker)
        return Message(chat, count, last, sid, name, text)


def _phone_line(found: re.Match[str]) -> Entry | bool:
    day = _day(found)
    when = local_seconds(*day, *_hour(found)) if day else None
    rest = found["rest"]
    if rest.startswith(", ") and " : " in rest:
        author, _, text = rest[2:].partition(" : ")
        return Entry(when, author.strip(), text)
    if rest.startswith((": ", ", ")):
        return Entry(when, None, rest[2:])
    return False  # a date line

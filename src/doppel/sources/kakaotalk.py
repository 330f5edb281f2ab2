"""Read KakaoTalk's chat exports, Korean or English: the PC text file, the phone's text file and
the CSV (`Date,User,Message`).

PC: `[Name] [오전 10:15] text` (`[10:15 AM]` in English) under day lines `----- 2024년 3월 12일
화요일 -----`. Phone: `2024년 3월 12일 오전 10:15, Name : text` (iOS `2024. 3. 12. 오전 10:15`,
English `Mar 12, 2024 at 10:15 AM`); the same date and time followed by `: text` or nothing is a
system or date line. Lines that match none continue the message before, except the system lines
the PC file writes bare (joins, leaves, invitations). Media arrive as words (`사진`, `이모티콘`,
`Photo`); a deleted message is `삭제된 메시지입니다.`. Times are local, read as UTC. A CSV row
starts at a line that starts with its date; a row csv cannot read (a field past its 128 KiB
limit) is skipped and counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from doppel.sources.chatlines import MAX_LINES, ChatLines, Entry, Parse, local_seconds
from doppel.sources.ids import in_chat
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally

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
# the start of a PC day line; its end ("-----") is checked with endswith: a `.*-{5,}$` tail
# backtracks quadratically on a long line of dashes
_PC_DAY = re.compile(rf"^-{{5,}}+ (?:[A-Z][a-z]+, )?{_DATE}")
# a CSV row's date; a line starting with one starts a row (a quoted message's lines are read on
# until the next such line: a stray quote cannot swallow the rest of the file)
_STAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})(?::(\d{2}))?")
_ROW = re.compile(_STAMP.pattern + ",")
_SAVED = re.compile(r"^(?:저장한 날짜|Date Saved) ?:")  # the header's second line
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
        started = [False]

        def parse(line: str) -> Entry | bool | None:
            found = _parse(line)
            if found is None and not started[0] and (
                    _SAVED.match(line) or any(t.match(line) for t in _TITLES)):
                return False  # the header: title and date saved
            started[0] = started[0] or found is not None
            return found

        def _parse(line: str) -> Entry | bool | None:
            found = _PC.match(line)
            if found is not None:
                when = local_seconds(*day[0], *_hour(found)) if day[0] else None
                return Entry(when, found["name"].strip(), found["text"])
            found = _PHONE.match(line)
            if found is not None:
                return _phone_line(found)
            found = _PC_DAY.match(line) if line.endswith("-----") else None
            if found is not None:
                day[0] = _day(found) or day[0]
                return False
            if _pc_system(line):
                return Entry(None, None, line)
            return None
        return parse

    def entries(self, on_read: Callable[[int], None],
                tally: Tally | None = None) -> Iterator[Entry]:
        if not self.csv:
            yield from super().entries(on_read, tally)
            return
        tally = tally or Tally()
        row: list[str] = []
        for number, line in enumerate(self.file.lines(on_read)):
            tally.read += 1
            if number == 0 or (not row and not line.strip()):
                tally.layout += 1  # the Date,User,Message header; a blank line between rows
            elif _ROW.match(line):
                if row:
                    yield from _row_entry(row, tally)
                row = [line]
            elif row and len(row) <= MAX_LINES:
                row.append(line)  # a quoted message's next line
            else:
                tally.skip("line beyond a message's size" if row else "line outside any message")
        if row:
            yield from _row_entry(row, tally)

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


def _row_entry(lines: list[str], tally: Tally) -> Iterator[Entry]:
    """One CSV row (a date line and the lines its quoted message goes on over) as an entry."""
    try:
        row = next(csv.reader(io.StringIO("\n".join(lines) + "\n")), [])
    except csv.Error:  # a field past csv's size limit (128 KiB): no message is that long
        tally.skip("row csv cannot read", len(lines))
        return
    if len(row) < 3:
        tally.skip("row with fewer than 3 fields", len(lines))
        return
    stamp = _STAMP.match(row[0])
    when = local_seconds(*(int(g or 0) for g in stamp.groups())) if stamp else None
    tally.started += 1
    tally.continued += len(lines) - 1
    yield Entry(when, row[1].strip() or None, ",".join(row[2:]))


def _pc_system(line: str) -> bool:
    """A join, leave or invitation line of the PC file ("X님이 들어왔습니다.", "X joined this
    chatroom.", "X님이 Y님을 초대했습니다.", "X invited Y.")."""
    end = line.removesuffix(".")
    if end.endswith(("님이 들어왔습니다", "님이 나갔습니다")):
        return True
    for suffix in ("초대하였습니다", "초대했습니다"):
        if end.endswith(suffix):
            return 0 <= end.find("님이 ") < len(end) - len(suffix) - 3
    for suffix in (" joined this chatroom", " left this chatroom"):
        if end.endswith(suffix):
            return len(end) > len(suffix)
    return 0 < line.find(" invited ", 1) < len(line) - len(" invited ")


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

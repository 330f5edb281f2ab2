"""Read LINE's text export ("Send chat history" / "Export chat history": `[LINE] Chat history
with NAME`), in English, Japanese, Chinese or Thai.

After the header and "Saved on" lines, a date line (`2024/03/12(Tue)`, `Tue, 3/12/2024`,
`2024/03/12（週二）`, `อ. 12/03/2567`) sets the day; then `HH:MM<TAB>Name<TAB>text` starts a message
(`午前/午後`, `上午/下午`, `AM/PM` for 12-hour clocks) and `HH:MM<TAB>text` is a system line
(joins, unsent messages). A multi-line message is wrapped in double quotes. Media are localised
placeholders such as `[Photo]` / `[写真]`; a call is `☎ ...`. A 12-hour suffix may be glued to the
minutes (`08:01pm`). Group exports of some LINE versions have no header: a `2025.12.10 Wednesday`
date line first, then `08:01pm Name text` (spaces: the name is the first word) or tabbed lines;
the file's name names the chat. The header's language decides how a date like 3/12/2024 is
read; a header in a language doppel does not know is an error, not a guess. Times are local,
read as UTC.
"""

from __future__ import annotations

import re
from pathlib import Path

from doppel.errors import DoppelError
from doppel.sources.chatlines import ChatLines, Entry, Parse, local_seconds
from doppel.sources.ids import in_chat
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings

__all__ = ["LineExport", "claims", "open_reader"]

SOURCE = "line"
# language -> the header that names the chat
HEADERS = {
    "en": re.compile(r"^\[LINE\]\s*Chat history (?:with|in) (.+?)\s*$"),
    "ja": re.compile(r"^\[LINE\]\s*(.+?)(?:との|の)トーク履歴\s*$"),
    "zh": re.compile(r"^\[LINE\]\s*(?:與|与)?(.+?)(?:的聊天記錄|的聊天记录)\s*$"),
    "th": re.compile(r"^\[LINE\]\s*ประวัติการแชท(?:กับ)?\s*(.+?)\s*$"),
}
DAY_FIRST = {"th"}  # D/M/Y dates when the year comes last; English is M/D/Y
MAX_DATE_LINE = 64  # characters; a longer line is never a date line (nor matched as one)
# possessive and bounded: a date line is tried on every line, and a long one must cost O(n)
_DATE = re.compile(r"^(?:[^\d\t]{0,24}?[,\s.]\s*+)?(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
                   r"\s*+(?:[（(][^)）\t]{1,12}[)）]|[A-Za-z]{3,9})?\s*+$")
# 12-hour markers before the time, or after it (`10:15 PM`, `08:01pm` glued to the minutes)
_HALF = r"午前|午後|上午|下午|(?i:am|pm)"
_TIME = re.compile(rf"^(?:({_HALF})\s?)?(\d{{1,2}})[:：](\d{{2}})(?:\s?({_HALF}))?\t")
# group exports of some LINE versions: no header, a `2025.12.10 Wednesday` date line first, and
# messages with spaces, not tabs: `08:01pm Name text` (the name is the first word)
_BARE_DAY = re.compile(r"^\d{4}\.\d{2}\.\d{2} (?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day$")
_SPACED = re.compile(rf"^(?:({_HALF}) ?)?(\d{{1,2}}):(\d{{2}})(?: ?({_HALF}))? (\S++) ?")
_PM = {"午後", "下午", "PM"}
MEDIA = {
    "[photo]": ("[Photo]", "[Photos]", "[Album]", "[写真]", "[アルバム]", "[照片]", "[相片]",
                "[รูป]", "[รูปภาพ]"),
    "[sticker]": ("[Sticker]", "[スタンプ]", "[貼圖]", "[贴图]", "[สติกเกอร์]"),
    "[video]": ("[Video]", "[動画]", "[影片]", "[视频]", "[วิดีโอ]"),
    "[voice]": ("[Voice message]", "[Audio]", "[ボイスメッセージ]", "[語音訊息]", "[语音消息]",
                "[ข้อความเสียง]"),
    "[file]": ("[File]", "[ファイル]", "[檔案]", "[文件]", "[ไฟล์]"),
    "[location]": ("[Location]", "[位置情報]", "[位置資訊]", "[位置信息]", "[ตำแหน่ง]"),
    "[contact]": ("[Contact]", "[連絡先]", "[聯絡資訊]", "[联系人]", "[ผู้ติดต่อ]"),
}
_MARKER = {text.casefold(): marker for marker, texts in MEDIA.items() for text in texts}


def _first_line(head: str) -> str:
    return next((line.strip() for line in head.splitlines()[:3] if line.strip()), "")


def _bare(head: str) -> str | None:
    """A headerless group export (a bare date line, then a message line): "tab" or "space",
    how its message lines are split; None for any other file."""
    lines = [line.rstrip("\r") for line in head.splitlines()[:6] if line.strip()]
    if len(lines) < 2 or not _BARE_DAY.match(lines[0].strip()):
        return None
    if _TIME.match(lines[1]):
        return "tab"
    return "space" if _SPACED.match(lines[1]) else None


def claims(seen: Probe) -> bool:
    if seen.kind != "file":
        return False
    head = seen.head.lstrip("\ufeff")
    return _first_line(head).startswith("[LINE]") or _bare(head) is not None


def open_reader(path: Path, settings: ReadSettings) -> LineExport:
    return LineExport(path)


class LineExport(ChatLines):
    """One LINE chat; the header read at once (its language decides the date order)."""

    source = SOURCE
    what = "a LINE export (HH:MM<TAB>Name<TAB>text)"

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        super().__init__(path)
        with open(self.path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace").lstrip("\ufeff")
        first = _first_line(head)
        self.bare = _bare(head)
        if self.bare is not None:  # no header: the file's name names the chat; dates year first
            self.language, self.title = "en", self.path.stem
            return
        for language, pattern in HEADERS.items():
            found = pattern.match(first)
            if found:
                self.language, self.title = language, found.group(1).strip("\"「」“” ")
                break
        else:
            raise DoppelError(f"{self.path} is a LINE export in a language doppel does not know "
                              f"(header {first[:60]!r}); set LINE to English, Japanese, Chinese "
                              "or Thai and export the chat again")

    def parser(self) -> Parse:
        day: list[tuple[int, int, int] | None] = [None]
        header = [0 if self.bare is None else 2]  # the header's non-blank lines seen (two at most)
        day_first = self.language in DAY_FIRST
        spaced = self.bare == "space"
        clock_of = _SPACED.match if spaced else _TIME.match

        def parse(line: str) -> Entry | bool | None:
            clock = clock_of(line)
            if clock is None:
                date = (_DATE.match(line) if "\t" not in line and len(line) <= MAX_DATE_LINE
                        else None)
                if date is not None:
                    day[0] = _ymd(date.groups(), day_first) or day[0]
                    return False
                if day[0] is None and header[0] < 2 and line.strip():
                    header[0] += 1  # the "[LINE] ..." and "Saved on ..." lines
                    return False
                return None  # a continuation (before the first date: counted as skipped)
            if day[0] is None:
                return None
            half, hour, minute, after = clock.groups()[:4]
            half = (half or after or "").upper()
            hour = int(hour) % 12 + 12 * (half in _PM) if half else int(hour)
            when = local_seconds(*day[0], hour, int(minute))
            rest = line[clock.end():]
            if spaced:
                return Entry(when, clock.group(5), rest)
            author, tab, text = rest.partition("\t")
            return Entry(when, author.strip(), text) if tab and author.strip() else \
                Entry(when, None, rest)
        return parse

    def message(self, chat: Chat, count: int, entry: Entry, last: float) -> Message:
        if entry.author is None:
            return Message(chat, count, last, None, None, entry.body, drop="system")
        text = _unquote(entry.body)
        sid, name = in_chat(chat.id, entry.author), entry.author
        if text.startswith("☎"):
            return Message(chat, count, last, sid, name, "", kind="boundary", drop="service")
        marker = _MARKER.get(text.strip().casefold())
        if marker:
            return Message(chat, count, last, sid, name, "", media=marker)
        return Message(chat, count, last, sid, name, text)


def _ymd(groups: tuple[str, ...], day_first: bool) -> tuple[int, int, int] | None:
    a, b, c = map(int, groups)
    if a > 31:
        year, month, day = a, b, c
    elif day_first:
        day, month, year = a, b, c
    else:
        month, day, year = a, b, c
    year = year - 543 if year > 2400 else year  # the Thai Buddhist calendar
    year = year + 2000 if year < 100 else year
    return (year, month, day) if local_seconds(year, month, day) is not None else None


def _unquote(text: str) -> str:
    """A multi-line message comes wrapped in double quotes, its own quotes doubled."""
    if "\n" in text and len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text

"""The shape LINE and KakaoTalk text exports share with Signal's: one chat per file, a line that
starts an entry (a message `author: text`, or a system line with no author) and lines that
continue it, dates sometimes given once on a line of their own. A reader supplies `parse(line)`;
this streams the file twice (writers first, to tell a group from a two-person chat; then the
entries), in flat memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from doppel.errors import DoppelError
from doppel.sources.ids import Head, key
from doppel.sources.records import Chat, Message
from doppel.sources.tally import Tally
from doppel.sources.textlines import TextFile

MAX_LINES = 10_000  # continuation lines kept per message
_EPOCH = datetime(1970, 1, 1)


@dataclass(slots=True)
class Entry:
    """A line that starts something: its time (None: unknown), author (None: a system line),
    and its text, to which continuation lines are added."""

    time: float | None
    author: str | None
    text: str
    more: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        """The text with its continuation lines; blank lines before the next entry (LINE puts one
        before each date) are not part of it."""
        return "\n".join((self.text, *self.more)).rstrip("\n") if self.more else self.text


# parse(line) -> an Entry that the line starts, None for a continuation, or False for a line that
# only sets state (a date line, a header) and is not part of any message
Parse = Callable[[str], "Entry | bool | None"]


def local_seconds(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
                  second: int = 0) -> float | None:
    """Epoch seconds of a local time read as UTC (the exports carry no zone); None if invalid."""
    try:
        return (datetime(year, month, day, hour, minute, second) - _EPOCH).total_seconds()
    except (ValueError, OverflowError):
        return None


def entries(file: TextFile, parse: Parse, on_read: Callable[[int], None],
            tally: Tally | None = None) -> Iterator[Entry]:
    """Every entry of the file with its continuation lines; `tally` counts where each line went
    (a blank line outside any message is layout, other text there is skipped)."""
    tally = tally or Tally()
    entry: Entry | None = None
    for line in file.lines(on_read):
        tally.read += 1
        found = parse(line)
        if found is None:
            tally.follow(line, None if entry is None else entry.more, MAX_LINES)
            continue
        if entry is not None:
            yield entry
        if isinstance(found, Entry):
            entry = found
            tally.started += 1
        else:
            entry = None
            tally.layout += 1
    if entry is not None:
        yield entry


class ChatLines:
    """A reader over `entries`: subclasses give SOURCE, `parser()` (a fresh parse function per
    pass), `what` (for errors) and `message(chat, count, entry)`."""

    source = "text"
    layout = "txt"
    what = "a chat export"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file = TextFile(self.path)
        self.size_bytes = self.path.stat().st_size * 2
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: dict[str, int] = {}
        self.tally = Tally()
        self.title = self.path.stem

    def parser(self) -> Parse:
        raise NotImplementedError

    def entries(self, on_read: Callable[[int], None],
                tally: Tally | None = None) -> Iterator[Entry]:
        """One pass over the file's entries (a CSV reader overrides this)."""
        return entries(self.file, self.parser(), on_read, tally)

    def message(self, chat: Chat, count: int, entry: Entry, last: float) -> Message:
        raise NotImplementedError

    def _progress(self, done: int) -> Callable[[int], None]:
        return lambda n: setattr(self, "bytes_read", done + n)

    def messages(self) -> Iterator[Message]:
        self.tally = Tally()  # this pass's; the first pass below only finds the writers
        writers: set[str] = set()
        head = Head()  # what names the chat (ids.py)
        for entry in self.entries(self._progress(0)):
            head.add((entry.time, entry.author, entry.body), entry.author)
            if entry.author is not None and len(writers) < 10_000:
                writers.add(entry.author)
        if not writers:
            raise DoppelError(f"{self.path} has no message lines that {self.what} has; export "
                              "the chat again as text")
        chat = Chat(f"{self.source}:{key(head.entries)}", self.title,
                    "private_group" if len(writers) > 2 else "personal_chat", self.source)
        self.chats = [chat]
        last = 0.0
        for count, entry in enumerate(self.entries(self._progress(self.size_bytes // 2),
                                                   self.tally), 1):
            last = entry.time if entry.time is not None else last
            yield self.message(chat, count, entry, last)
        self.bytes_read = self.size_bytes

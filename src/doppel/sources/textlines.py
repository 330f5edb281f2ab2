"""Lines of a text export (WhatsApp, Signal), streamed from a file, a folder or a zip member.

Text is read in chunks of about a MiB, decoded strictly as UTF-8 (a file in another encoding is a
one-line error naming the byte, never mojibake), cleaned of the invisible direction marks and
byte-order marks exporters scatter through lines, and split at "\\n" only (str.splitlines would
also split at characters such as U+2028 that messages may hold). Memory: one chunk.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from doppel.errors import DoppelError
from doppel.sources.probe import MARKS

CHUNK = 1 << 20
MAX_LINE = 8 << 20  # characters; chat apps cap a message far below this
_MARKS = re.compile(f"[{MARKS}]")


@dataclass(frozen=True)
class TextFile:
    """A text export: a plain file, or `member` inside the zip at `path`."""

    path: Path
    member: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def size(self) -> int:
        if self.member is None:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.path) as archive:
            return archive.getinfo(self.member).file_size

    def lines(self, on_read: Callable[[int], None] | None = None) -> Iterator[str]:
        """Every line, cleaned; `on_read(bytes so far)` after each chunk."""
        for block in self.blocks(on_read):
            yield from block.split("\n")

    def blocks(self, on_read: Callable[[int], None] | None = None) -> Iterator[str]:
        """The text in pieces of whole lines (no line end after the last line of a piece), CRLF
        read as LF; for passes that search many lines with one regex call."""
        try:
            if self.member is None:
                with open(self.path, "rb") as raw:
                    yield from _blocks(raw, self.label, on_read)
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as raw:
                    yield from _blocks(raw, self.label, on_read)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError) as bad:
            raise DoppelError(f"{self.path} is a damaged zip file ({bad}); export the chat "
                              "again") from None
        except OSError as bad:
            raise DoppelError(f"cannot read {self.label}: {bad.strerror or bad}") from None


def _blocks(raw: BinaryIO, label: str, on_read: Callable[[int], None] | None) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    done, carry = 0, ""
    while True:
        data = raw.read(CHUNK)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as bad:
            raise not_utf8(label, data[bad.start] if bad.start < len(data) else 0,
                           done + bad.start) from None
        done += len(data)
        if on_read is not None:
            on_read(done)
        text = _MARKS.sub("", carry + text) if _MARKS.search(text) else carry + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if not data:
            text = text.removesuffix("\n").removesuffix("\r")
            if text:
                yield text
            return
        cut = text.rfind("\n")
        carry = text[cut + 1:]
        if len(carry) > MAX_LINE:
            raise DoppelError(f"{label} has a line longer than {MAX_LINE:,} characters near byte "
                              f"{done:,}: not a chat export")
        if cut >= 0:
            yield text[:cut]


def not_utf8(label: str, byte: int, at: int) -> DoppelError:
    return DoppelError(
        f"{label} is not UTF-8 text (byte 0x{byte:02x} at byte {at:,}); the apps write UTF-8, "
        "so export it again, or convert the file, e.g. `iconv -f cp1252 -t utf-8 chat.txt > "
        "fixed.txt`")

"""Walk a huge JSON file a value at a time, with the C decoder doing the per-value work.

Why not ijson: its fast path (`items` on one prefix) cannot also report which chat a message belongs
to, and every way of following chat boundaries next to it (ijson.parse events, push coroutines, two
parsers side by side) measured 2-3x slower. Here Python only steps through the few structural
characters around chats; each message is one call of the json module's C scanner on a bounded text
buffer (bench/prepare.py and docs/benchmarks.md have the numbers).

The buffer is refilled chunk by chunk: bytes are fixed (`\\xHH` escapes, see EscapeFixer), decoded
as UTF-8 incrementally, and appended after the unread rest, so memory holds one chunk plus the value
being decoded.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from doppel.errors import DoppelError

CHUNK = 1 << 18  # bytes per read: small enough that even a 4-byte-per-character buffer stays small
# A value still failing to decode with this much text after its start is broken, not cut short.
MAX_VALUE_CHARS = 32 << 20
TOP_UP = 1 << 16  # refill before decoding an item once fewer characters than this are left
BOM = b"\xef\xbb\xbf"

_WS = re.compile(r"[ \t\n\r]*")
_AFTER_ITEM = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_HEX2 = re.compile(rb"[0-9A-Fa-f]{2}")
_MAYBE_HEX = re.compile(rb"(?:x[0-9A-Fa-f]?)?")


def not_utf8(name: str, byte: int, at: int) -> DoppelError:
    return DoppelError(
        f"{name} is not UTF-8 text (byte 0x{byte:02x} at byte {at:,}); Telegram Desktop writes "
        "UTF-8, so re-export it, or convert the file, e.g. `iconv -f cp1251 -t utf-8 result.json "
        "> fixed.json` for a Windows-1251 copy"
    )


class EscapeFixer:
    """Rewrite the exporter's invalid `\\xHH` string escapes to `\\u00HH`, across chunk edges.

    A chunk that ends inside a run of backslashes (or `\\x`, `\\xH`) keeps that tail back until the
    next chunk, so the odd/even test always sees the whole run.
    """

    def __init__(self) -> None:
        self._carry = b""

    def fix(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if not final:
            data = self._hold_back_tail(data)
        return _fix_escapes(data) if b"\\x" in data else data

    def _hold_back_tail(self, data: bytes) -> bytes:
        """Keep a trailing backslash run that may start an unfinished escape for the next chunk."""
        last = data.rfind(b"\\", max(0, len(data) - 3))
        if last < 0 or not _MAYBE_HEX.fullmatch(data, last + 1):
            return data
        start = len(data[: last + 1].rstrip(b"\\"))  # where the backslash run begins
        self._carry = data[start:]
        return data[:start]


def _fix_escapes(data: bytes) -> bytes:
    """`\\xHH` -> `\\u00HH` where the backslash run before the x is odd (an even run is escaped
    backslashes and a literal x). A find() loop: a regex for this measured 5-20x slower."""
    parts, start = [], 0
    at = data.find(b"\\x")
    while at >= 0:
        run_start = at
        while run_start > 0 and data[run_start - 1] == 0x5C:
            run_start -= 1
        if (at - run_start) % 2 == 0 and _HEX2.fullmatch(data, at + 2, at + 4):
            parts += (data[start:at], b"\\u00")
            start = at + 2
        at = data.find(b"\\x", at + 2)
    if not parts:
        return data
    parts.append(data[start:])
    return b"".join(parts)


def _failed_at(error: StopIteration | json.JSONDecodeError) -> int:
    return error.value if isinstance(error, StopIteration) else error.pos


def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    """The json module's C scanner, called directly (`raw_decode` adds a Python frame per value).

    Returns (value, end); raises StopIteration(position) when no value starts there, and
    JSONDecodeError (whose message counts the buffer's newlines: slow) for a broken one.
    """
    return json.scanner.make_scanner(json.JSONDecoder(strict=False))


class JsonStream:
    """A text buffer over a binary file with just the steps a streaming walker needs."""

    def __init__(self, raw: BinaryIO, name: str, on_read: Callable[[int], None] | None = None,
                 chunk_size: int | None = None) -> None:
        self._raw = raw
        self._name = name
        self._on_read = on_read
        self._chunk = chunk_size or CHUNK
        self._fixer = EscapeFixer()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decode = _scanner()
        self._bytes = 0
        self._first = True
        self.buf = ""
        self.pos = 0
        self.eof = False

    # -- buffer ---------------------------------------------------------------------------------
    def fill(self) -> bool:
        """Append the next chunk after the unread text; False once the file is exhausted."""
        if self.eof:
            return False
        data = self._raw.read(self._chunk)
        self._bytes += len(data)
        if self._on_read is not None:
            self._on_read(self._bytes)
        final = not data
        try:
            text = self._utf8.decode(self._fixer.fix(data, final), final)
        except UnicodeDecodeError as bad:
            at = self._bytes - len(data) + max(bad.start, 0)
            raise not_utf8(self._name, bad.object[bad.start], at) from None
        if self._first and text:  # a UTF-8 byte order mark is allowed (and may span reads)
            self._first = False
            text = text.removeprefix("\ufeff")
        self.buf = self.buf[self.pos:] + text if self.pos < len(self.buf) else text
        self.pos = 0
        self.eof = final
        return True

    def where(self) -> str:
        unread = len(self.buf) - self.pos
        return f"around byte {max(self._bytes - unread, 0):,}"

    def ends_early(self, what: str) -> DoppelError:
        return DoppelError(
            f"the export ends early: {self._name} stops in the middle of {what} ({self.where()}); "
            "the file was cut short, so re-export it from Telegram Desktop"
        )

    def broken(self, what: str) -> DoppelError:
        return DoppelError(
            f"{self._name} is not valid JSON {self.where()}: {what}; re-export it from Telegram "
            "Desktop (Machine-readable JSON)"
        )

    # -- tokens ---------------------------------------------------------------------------------
    def peek(self) -> str:
        """The next non-blank character, not consumed ("" at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, allowed: str, what: str) -> str:
        """Consume the next non-blank character, which must be one of `allowed`."""
        char = self.peek()
        if not char:
            raise self.ends_early(what)
        if char not in allowed:
            raise self.broken(f"expected {' or '.join(map(repr, allowed))} in {what}, "
                              f"found {char!r}")
        self.pos += 1
        return char

    def value(self, what: str = "a value") -> Any:
        """Decode one complete JSON value (object, list, string, number, ...)."""
        if not self.peek():
            raise self.ends_early(what)
        while True:
            try:
                value, end = self._decode(self.buf, self.pos)
            except (StopIteration, json.JSONDecodeError) as error:
                self._refill_after(_failed_at(error), what)
                continue
            if end < len(self.buf) or not self.fill():  # a number may go on in the next chunk
                self.pos = end
                return value

    def _refill_after(self, failed_at: int, what: str) -> None:
        """A value did not decode: read on if it may be cut by the chunk edge, else say why."""
        if len(self.buf) - self.pos > MAX_VALUE_CHARS:
            raise self.broken(f"{self._reason()} in {what}")
        if not self.fill():
            reason = self._reason()
            if failed_at >= len(self.buf) - 1 or reason.startswith("Unterminated"):
                raise self.ends_early(what)
            raise self.broken(f"{reason} in {what}")

    def _reason(self) -> str:
        """The json module's wording of why the value at `pos` fails (slow; only for errors)."""
        try:
            json.JSONDecoder(strict=False).raw_decode(self.buf, self.pos)
        except json.JSONDecodeError as error:
            return error.msg
        return "unexpected data"

    def members(self, what: str) -> Iterator[str]:
        """Step through an object's keys; the caller consumes each key's value before the next."""
        self.expect("{", what)
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                self.expect('"', what)
            key = self.value(what)
            self.expect(":", what)
            yield key
            if self.expect(",}", what) == "}":
                return

    def array(self, what: str) -> Iterator[Any]:
        """Decode a list's items one at a time: one C call per item, a refill at each chunk edge."""
        self.expect("[", what)
        if self.peek() == "]":
            self.pos += 1
            return
        decode, after = self._decode, _AFTER_ITEM.match
        while True:
            buf, pos = self.buf, self.pos
            if len(buf) - pos < TOP_UP and self.fill():
                continue  # keep a whole item in the buffer: a failed decode costs a newline count
            try:
                item, end = decode(buf, pos)
            except (StopIteration, json.JSONDecodeError) as error:
                self._refill_after(_failed_at(error), what)
                continue
            sep = after(buf, end)
            if (sep is None or sep.end() == len(buf)) and self.fill():
                continue  # the separator (or what follows it) is in the next chunk: decode again
            if sep is None:
                self.pos = end
                raise self.ends_early(what) if not buf[end:].strip() else self.broken(
                    f"expected ',' or ']' between items of {what}")
            self.pos = sep.end()
            yield item
            if sep.group(1) == "]":
                return

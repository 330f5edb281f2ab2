"""Walk a huge JSON file a value at a time: orjson for runs of messages, json for the rest.

Why not ijson: its fast path (`items` on one prefix) cannot also report which chat a message belongs
to, and every way of following chat boundaries next to it (ijson.parse events, push coroutines, two
parsers side by side) measured 2-3x slower. Here Python only steps through the few structural
characters around chats, and messages are decoded many at a time.

The buffer holds bytes: a chunk is read, its `\\xHH` escapes fixed (see EscapeFixer), and appended
after the unread rest, so memory holds one chunk plus the value being decoded. In a pretty-printed
export (Telegram Desktop always indents) every item of an array ends with a newline, the item's
own indentation and `}`; JSON strings cannot hold a raw newline, so the last such line in the
buffer ends a run of whole items, and one `orjson.loads` of `[` + run + `]` decodes them all. A run
that does not parse (it crossed the end of the array, or holds something orjson refuses: a lone
surrogate, a raw control character, NaN) is cut at the array's end and tried again, or read item
by item with the json module's C scanner on decoded text, the slow path that also names errors.
orjson reads integers beyond 64 bits as floats; Telegram writes none.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, BinaryIO

import orjson

from doppel.errors import DoppelError

CHUNK = 1 << 18  # bytes per read: small enough that even a 4-byte-per-character buffer stays small
# A value still failing to decode with this much text after its start is broken, not cut short.
MAX_VALUE_CHARS = 32 << 20
TOP_UP = 1 << 16  # refill before decoding items once fewer bytes than this are left
MIN_WINDOW = 256  # bytes decoded to text for a value on the slow path (grows while it fails)
MAX_WINDOW = 1 << 16  # the window starts at twice the last value's size, at most this
BOM = b"\xef\xbb\xbf"

_WS = re.compile(rb"[ \t\n\r]*")
_HEX2 = re.compile(rb"[0-9A-Fa-f]{2}")
_ESCAPE_X = re.compile(rb"\\x")
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
        return _fix_escapes(data) if _ESCAPE_X.search(data) else data

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
    backslashes and a literal x). A loop over a literal search: a regex that checks the run
    itself (a lookbehind) measured 5-20x slower, and `bytes.find` for two bytes 3x slower than
    this one (it scans at ~0.5 GB/s, and every chunk of the export goes through here)."""
    parts, start = [], 0
    for found in _ESCAPE_X.finditer(data):
        at = found.start()
        run_start = at
        while run_start > 0 and data[run_start - 1] == 0x5C:
            run_start -= 1
        if (at - run_start) % 2 == 0 and _HEX2.fullmatch(data, at + 2, at + 4):
            parts += (data[start:at], b"\\u00")
            start = at + 2
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


def _item_close(buf: bytes, pos: int) -> bytes | None:
    """`\\n<indent>}`, the line that ends the object starting at `pos` if the file is indented."""
    line = buf.rfind(b"\n", max(0, pos - 256), pos)
    if line < 0 or buf[line + 1:pos].strip(b" \t"):
        return None
    return buf[line:pos] + b"}"


class JsonStream:
    """A byte buffer over a binary file with just the steps a streaming walker needs."""

    def __init__(self, raw: BinaryIO, name: str, on_read: Callable[[int], None] | None = None,
                 chunk_size: int | None = None) -> None:
        self._raw = raw
        self._name = name
        self._on_read = on_read
        self._chunk = chunk_size or CHUNK
        self._fixer = EscapeFixer()
        self._decode = _scanner()
        self._bytes = 0
        self._first = True
        self._window = MIN_WINDOW
        self.buf = b""
        self.pos = 0
        self.eof = False

    # -- buffer ---------------------------------------------------------------------------------
    def fill(self) -> bool:
        """Append the next chunk after the unread bytes; False once the file is exhausted."""
        if self.eof:
            return False
        data = self._read()
        final = not data
        data = self._fixer.fix(data, final)
        if self._first and (data or final):  # a UTF-8 byte order mark is allowed
            self._first = False
            data = data.removeprefix(BOM)
        self.buf = self.buf[self.pos:] + data if self.pos < len(self.buf) else data
        self.pos = 0
        self.eof = final
        return True

    def _read(self) -> bytes:
        data = self._raw.read(self._chunk)
        while self._first and data and len(data) < len(BOM):  # the mark may span tiny reads
            more = self._raw.read(self._chunk)
            if not more:
                break
            data += more
        self._bytes += len(data)
        if self._on_read is not None:
            self._on_read(self._bytes)
        return data

    def _offset(self, index: int) -> int:
        """The file offset of buf[index] (near it: fixed escapes are two bytes longer)."""
        return max(self._bytes - len(self.buf) + index, 0)

    def where(self) -> str:
        return f"around byte {self._offset(self.pos):,}"

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

    def _text(self, size: int) -> str:
        """Up to `size` bytes from `pos` as text, without a character the window edge cuts."""
        end = self.pos + size
        data = self.buf[self.pos:end]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as bad:
            cut = bad.reason == "unexpected end of data" and (end < len(self.buf) or not self.eof)
            if not cut:
                raise not_utf8(self._name, data[bad.start], self._offset(self.pos + bad.start)) \
                    from None
            return data[:bad.start].decode("utf-8")

    # -- tokens ---------------------------------------------------------------------------------
    def peek(self) -> str:
        """The next non-blank character, not consumed ("" at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                byte = self.buf[self.pos]
                return chr(byte) if byte < 0x80 else (self._text(4)[:1] or "\ufffd")
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
        size = self._window
        while True:
            text = self._text(size)
            whole = self.pos + size >= len(self.buf)  # the text reaches the end of the buffer
            try:
                value, end = self._decode(text, 0)
            except (StopIteration, json.JSONDecodeError) as error:
                if whole:
                    self._refill_after(_failed_at(error), text, what)
                else:
                    size *= 8  # the value may go on past the window
                continue
            except RecursionError:  # no export nests this deep; the json scanner recurses
                raise self.broken(f"values nested too deeply in {what}") from None
            if end == len(text) and (not whole or self.fill()):
                size *= 8  # a number may go on in the next chunk
                continue
            used = len(text[:end].encode("utf-8"))
            self._window = min(max(MIN_WINDOW, 2 * used), MAX_WINDOW)
            self.pos += used
            return value

    def _refill_after(self, failed_at: int, text: str, what: str) -> None:
        """A value did not decode: read on if it may be cut by the chunk edge, else say why."""
        if len(self.buf) - self.pos > MAX_VALUE_CHARS:
            raise self.broken(f"{_reason(text)} in {what}")
        if not self.fill():
            reason = _reason(text)
            if failed_at >= len(text) - 1 or reason.startswith("Unterminated"):
                raise self.ends_early(what)
            raise self.broken(f"{reason} in {what}")

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
        """Decode a list's items: runs of whole items with one orjson call, else one at a time.

        Iterating over this is a C loop but for one generator step per run (chain.from_iterable
        over `batches`), which matters once per message of a million.
        """
        return chain.from_iterable(self.batches(what))

    def batches(self, what: str) -> Iterator[list[Any]]:
        """A list's items, a list of them at a time."""
        self.expect("[", what)
        if self.peek() == "]":
            self.pos += 1
            return
        close: bytes | None = None
        slow_until = 0  # after a run orjson refused, read item by item up to here
        while True:
            if len(self.buf) - self.pos < TOP_UP:
                self.fill()
            if close is None:
                close = _item_close(self.buf, self.pos)
            items = None
            if close is not None and self._offset(self.pos) >= slow_until:
                items = self._run(close)
                if items is None:
                    slow_until = self._offset(len(self.buf))
            yield [self.value(what)] if items is None else items
            if self.expect(",]", f"{what} (between items)") == "]":
                return
            self.peek()

    def _run(self, close: bytes) -> list[Any] | None:
        """The whole items from `pos` up to the buffer's last `close` line, decoded at once."""
        buf, pos = self.buf, self.pos
        if buf[pos:pos + 1] != b"{":
            return None
        end = buf.rfind(close, pos)
        while end < 0 and len(buf) - pos <= MAX_VALUE_CHARS and self.fill():
            buf, pos = self.buf, self.pos  # one item longer than the buffer: read on
            end = buf.rfind(close, pos)
        if end < 0:
            return None
        end += len(close)
        try:
            items = orjson.loads(b"[" + buf[pos:end] + b"]")
        except orjson.JSONDecodeError:  # crossed the array's end? cut there and try once more
            last = re.compile(re.escape(close) + rb"[ \t\n\r]*\]").search(buf, pos, end + 64)
            if last is None or last.start() + len(close) >= end:
                return None
            end = last.start() + len(close)
            try:
                items = orjson.loads(b"[" + buf[pos:end] + b"]")
            except orjson.JSONDecodeError:
                return None
        self.pos = end
        return items


def _reason(text: str) -> str:
    """The json module's wording of why the value at the start of `text` fails (slow: errors)."""
    try:
        json.JSONDecoder(strict=False).raw_decode(text, 0)
    except json.JSONDecodeError as error:
        return error.msg
    except RecursionError:
        return "values nested too deeply"
    return "unexpected data"

"""The text inside an iMessage `attributedBody`: an Apple "typedstream" archive of an
NSAttributedString, whose string follows the NSString class as `84 01 2b LEN UTF-8-bytes`.

LEN is one byte below 0x80, or 0x81 and a u16 little-endian, or 0x82 and a u32 (the classic bug
here is an off-by-one in those forms). Only the string is needed, so only it is read; the rest of
the archive (fonts, links, attachment runs) is not decoded.
"""

from __future__ import annotations

MAGIC = b"\x04\x0bstreamtyped"
_CLASSES = (b"NSString", b"NSMutableString")  # the class the string is archived as
_MARK = b"\x84\x01\x2b"
_SEARCH = 48  # bytes after the class name where the string's mark must be
_END = b"\x86\x84"  # what follows the string: the archive's next object


class Truncated(ValueError):
    """The blob says its string is longer than the bytes it holds: the row is damaged."""


def body_text(blob: bytes) -> str | None:
    """The string an attributedBody holds; None when the blob holds no string we know (not a
    typedstream, or no NSString in it). Raises Truncated when the string runs past the end."""
    at = _string_field(blob)
    if at is None:
        return None
    start, size = _length(blob, at)
    if start + size > len(blob):
        raise Truncated(f"the string says {size} bytes, the blob holds {len(blob) - start}")
    return blob[start:start + size].decode("utf-8", errors="replace")


def salvage(blob: bytes) -> str | None:
    """The string of a blob whose length field is wrong (other apps write such blobs): the
    bytes from the string's start to the next object's marker, as other iMessage tools read
    them; None when nothing is there."""
    at = _string_field(blob)
    if at is None or at >= len(blob):
        return None
    start = at + 1 + {0x81: 2, 0x82: 4}.get(blob[at], 0)
    end = blob.find(_END, start)
    text = blob[start:end if end >= 0 else len(blob)].decode("utf-8", errors="replace")
    return text.strip("\x00") or None


def _string_field(blob: bytes) -> int | None:
    """Where the string's length field starts, or None when the blob holds no string."""
    if not blob.startswith(MAGIC):
        return None
    for name in _CLASSES:
        at = blob.find(name)
        if at >= 0:
            break
    else:
        return None
    mark = blob.find(_MARK, at + len(name), at + len(name) + _SEARCH)
    return None if mark < 0 else mark + len(_MARK)


def _length(blob: bytes, at: int) -> tuple[int, int]:
    """(where the string starts, its length in bytes) for the length field at `at`."""
    if at >= len(blob):
        raise Truncated("the blob ends before the string's length")
    tag = blob[at]
    if tag < 0x80:
        return at + 1, tag
    width = {0x81: 2, 0x82: 4}.get(tag)
    if width is None or at + 1 + width > len(blob):
        raise Truncated(f"the string's length field (0x{tag:02x}) is cut or unknown")
    return at + 1 + width, int.from_bytes(blob[at + 1:at + 1 + width], "little")


def encode(text: str) -> bytes:
    """An attributedBody as Messages writes one (enough of it for body_text): for tests and
    benchmarks that build databases."""
    data = text.encode("utf-8")
    size = len(data)
    if size < 0x80:
        length = bytes([size])
    elif size < 0x10000:
        length = b"\x81" + size.to_bytes(2, "little")
    else:
        length = b"\x82" + size.to_bytes(4, "little")
    head = (MAGIC + b"\x81\xe8\x03\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08"
            b"NSObject\x00\x85\x92\x84\x84\x84\x08NSString\x01\x94")
    tail = b"\x86\x84\x02iI\x01" + bytes([min(len(text), 0x7F)]) + b"\x92\x84\x84\x84\x0c"
    return head + _MARK + length + data + tail + b"NSDictionary\x00\x94\x84\x01i\x00\x86\x86"

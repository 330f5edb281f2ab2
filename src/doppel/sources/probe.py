"""What a path holds, looked at once and cheaply, so each source can claim it by content.

A file: its first bytes as text. A folder or a zip: the names inside (a bounded number) and a way
to read the first bytes of one of them. Nothing here decides what an export is: sources do.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from doppel.errors import DoppelError

HEAD_BYTES = 1 << 16
MAX_NAMES = 100_000  # text files listed in a folder or zip (media files are never listed)
TEXT_SUFFIXES = (".txt", ".json", ".html")  # the only files a source looks for inside
BOM = b"\xef\xbb\xbf"
# invisible marks that exporters put at line starts (WhatsApp: U+200E, U+202A..., U+FEFF)
MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"


def decode_head(data: bytes) -> str:
    """The first bytes as text: a BOM dropped, a character cut at the end dropped, bad bytes
    replaced (a claim only needs to recognise the shape; the reader checks the encoding)."""
    return data.removeprefix(BOM).decode("utf-8", errors="replace").rstrip("\ufffd")


@dataclass
class Probe:
    """`kind` is "file", "dir" or "zip"; `names` lists a folder's text files (relative,
    '/'-separated) or a zip's; `head` is a file's first bytes as text."""

    path: Path
    kind: str
    raw: bytes = b""
    names: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return decode_head(self.raw)

    def member_head(self, name: str) -> str:
        """The first bytes of one file in the folder or zip, as text ("" if unreadable)."""
        try:
            if self.kind == "dir":
                with open(self.path / name, "rb") as handle:
                    return decode_head(handle.read(HEAD_BYTES))
            with zipfile.ZipFile(self.path) as archive, archive.open(name) as handle:
                return decode_head(handle.read(HEAD_BYTES))
        except (OSError, zipfile.BadZipFile, KeyError, EOFError, RuntimeError, ValueError,
                NotImplementedError):
            return ""


def probe(path: Path) -> Probe:
    """Look at `path`: a missing one is a DoppelError; a zip is listed, a file's head read."""
    if not path.exists():
        raise DoppelError(f"{path} does not exist; pass the export file or folder the app wrote")
    if path.is_dir():
        return Probe(path, "dir", names=_walk(path))
    with open(path, "rb") as handle:
        raw = handle.read(HEAD_BYTES)
    if raw.startswith(b"PK\x03\x04") or raw.startswith(b"PK\x05\x06"):
        return Probe(path, "zip", raw=raw, names=zip_names(path))
    return Probe(path, "file", raw=raw)


def zip_names(path: Path) -> list[str]:
    """The files in a zip; a damaged or truncated one is a DoppelError."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist()
                     if info.filename.lower().endswith(TEXT_SUFFIXES)]
            return names[:MAX_NAMES]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as bad:
        raise DoppelError(f"{path} is a damaged zip file ({bad}); download or export it "
                          "again") from None


def _walk(root: Path) -> list[str]:
    names: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = Path(folder).relative_to(root)
        names += [(rel / name).as_posix() for name in sorted(files)
                  if name.lower().endswith(TEXT_SUFFIXES)]
        if len(names) >= MAX_NAMES:
            break
    return names

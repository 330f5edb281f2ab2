"""The media files an export holds, read by the path a Message's `media_path` gives.

A path is relative to the export's root: its zip, its folder, or the folder of the file passed
(Telegram's result.json, a WhatsApp .txt). A path that leaves the root is not read: an export is
someone else's file, and its paths must not reach the rest of the disk.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from pathlib import Path

MAX_BYTES = 64 << 20  # a voice note is kilobytes a minute; a bigger "audio" file is not one
# what a damaged zip raises: a bad CRC, a broken deflate stream, a cut file, an encrypted member
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
               RuntimeError, ValueError)


class MediaFiles:
    """Reads attachments of one export; `read` returns None for a file that is not there."""

    def __init__(self, export_path: Path) -> None:
        path = Path(export_path)
        self.zip: zipfile.ZipFile | None = None
        self.root = path if path.is_dir() else path.parent
        self._members: dict[str, zipfile.ZipInfo] = {}
        if path.is_file() and zipfile.is_zipfile(path):
            try:  # a zip that cannot be listed has no audio to read (its reader says why)
                self.zip = zipfile.ZipFile(path)
                self._members = {info.filename: info for info in self.zip.infolist()}
            except _ZIP_ERRORS:
                self._members = {}

    def read(self, media_path: str) -> bytes | None:
        relative = _inside(media_path)
        if relative is None:
            return None
        if self.zip is not None:
            info = self._members.get(relative)
            if info is None or info.is_dir() or info.file_size > MAX_BYTES:
                return None
            try:
                return self.zip.read(info)
            except _ZIP_ERRORS:  # a bad CRC or a damaged member: that note keeps its marker
                return None
        file = self.root / relative
        try:
            if not file.is_file() or file.stat().st_size > MAX_BYTES:
                return None
            if not file.resolve().is_relative_to(self.root.resolve()):  # a link out of the root
                return None
            return file.read_bytes()
        except OSError:
            return None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _inside(media_path: str) -> str | None:
    """The path normalised, or None when it is absolute or climbs out of the root."""
    path = media_path.replace("\\", "/")
    if not path or path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None
    path = posixpath.normpath(path)
    if path == "." or path == ".." or path.startswith("../"):
        return None
    return path

"""The exports a dataset is made from: opening several, their fingerprint and manifest entries,
and the speaker list (`doppel prepare --list-speakers`) that helps a user find their own name."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from doppel.data.options import PrepareOptions
from doppel.errors import DoppelError

FINGERPRINT_CHUNK = 1 << 20
MAX_LISTED_FILES = 10_000  # files of a folder export that go into its fingerprint


def open_exports(paths: Sequence[Path], options: PrepareOptions) -> list[Any]:
    """One reader per export path, each chosen by content (a path given twice is an error)."""
    from doppel.sources import ReadSettings, open_export

    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        twice = next(p for p in paths if resolved.count(Path(p).resolve()) > 1)
        raise DoppelError(f"{twice} is given twice; pass each export once")
    if not paths:
        raise DoppelError("no export given; pass at least one export file or folder")
    settings = ReadSettings(date_order=options.date_order)
    return [open_export(Path(p), settings) for p in paths]


def source_of(reader: Any) -> str:
    return getattr(reader, "source", "telegram")


def fingerprint(path: Path) -> str:
    """sha256 of the file's size, first MiB and last MiB: content-based, and instant on 2 GB.
    A folder: of its files' names and sizes."""
    digest = hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        for number, file in enumerate(sorted(p for p in path.rglob("*") if p.is_file())):
            if number >= MAX_LISTED_FILES:
                break
            digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
        return "sha256:" + digest.hexdigest()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_CHUNK))
        if size > FINGERPRINT_CHUNK:
            handle.seek(max(FINGERPRINT_CHUNK, size - FINGERPRINT_CHUNK))
            digest.update(handle.read(FINGERPRINT_CHUNK))
    return "sha256:" + digest.hexdigest()


def export_file(reader: Any, given: Path) -> Path:
    """The file or folder the reader read (Telegram: result.json inside a given folder)."""
    source = Path(getattr(reader, "path", None) or given)
    if source.is_dir() and (source / "result.json").is_file() and source_of(reader) == "telegram":
        return source / "result.json"
    return source


def exports_fingerprint(files: list[Path]) -> str:
    """One export: its fingerprint as always; several: sha256 over theirs, in order."""
    prints = [fingerprint(file) for file in files]
    if len(prints) == 1:
        return prints[0]
    return "sha256:" + hashlib.sha256("\n".join(prints).encode()).hexdigest()


def export_entry(reader: Any, file: Path) -> dict[str, Any]:
    """The manifest's description of one export."""
    return {"path": str(file.resolve()), "source": source_of(reader),
            "reader": type(reader).__name__, "layout": getattr(reader, "layout", None),
            "size_bytes": file.stat().st_size if file.is_file() else getattr(
                reader, "size_bytes", 0),
            "owner": list(getattr(reader, "owner", None) or []) or None,
            "unknown": dict(getattr(reader, "unknown", None) or {})}


def chained(readers: list[Any]) -> Iterator[Any]:
    for reader in readers:
        yield from reader.messages()


def list_speakers(readers: list[Any]) -> list[tuple[str, int, str]]:
    """(name, messages, source) of everyone who wrote something, most active first; nothing is
    selected or dropped here but what is not someone's own words (service lines, forwards).
    A name that is an id only inside its chat (sources/ids.py) is listed once for all chats:
    it is what `--me NAME` takes."""
    from doppel.sources.ids import is_in_chat

    counts: Counter[tuple[str, str]] = Counter()
    names: dict[tuple[str, str], str] = {}
    for message in chained(readers):
        if message.drop is None and message.speaker_id is not None and (
                message.text.strip() or message.media):
            sid = message.speaker_id
            named = message.speaker is not None and is_in_chat(sid, message.chat.id)
            key = (message.chat.source, f"name:{message.speaker}" if named else sid)
            counts[key] += 1
            names.setdefault(key, message.speaker or message.speaker_id)
    return [(names[key], n, key[0]) for key, n in counts.most_common()]

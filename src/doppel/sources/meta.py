"""Read Messenger and Instagram "Download your information" JSON: a folder, a zip or one file.

A thread is a folder (`messages/inbox/<name>_<id>/`, Instagram under `your_instagram_activity/`)
holding `message_1.json ... message_N.json` (2018: `message.json`), newest first; a thread is read
whole, oldest first. Every string is UTF-8 whose bytes Meta wrote as `\\u00XX` escapes, so `ü`
arrives as `Ã¼`: `repair` undoes that. Unsent messages, reactions, calls and notices such as
"X sent an attachment." are not speech. Times are `timestamp_ms`, real UTC. When two or more
threads are read, the one participant present in all of them is the owner ("me").
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from doppel.errors import DoppelError
from doppel.sources.ids import HEAD_ENTRIES, in_chat, key
from doppel.sources.jsonfile import as_list, as_text, load_json
from doppel.sources.probe import Probe, probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally

__all__ = ["MetaExport", "claims", "open_reader", "repair"]

_FILE = re.compile(r"(?:^|/)message(?:_\d+)?\.json$")
_HEAD = re.compile(r'(?<!\\)"(?:sender_name|participants)"\s*:')
_NUMBER = re.compile(r"message_(\d+)\.json$")
_NOTICE = re.compile(r"(?:sent an attachment\.|unsent a message\.?|[Rr]eacted .{1,12} to your "
                     r"message|set the nickname .*|named the group .*|changed the group photo\.?|"
                     r"left the group\.?|added .+ to the group\.?|removed .+ from the group\.?|"
                     r"started a (?:video )?call\.?|joined the (?:video )?call\.?|"
                     r"missed (?:a|your) (?:video )?call\.?|The (?:video )?call ended\.?)$")
_MEDIA = (("photos", "[photo]"), ("videos", "[video]"), ("gifs", "[gif]"),
          ("audio_files", "[voice]"), ("files", "[file]"))


def repair(text: str) -> str:
    """Meta's mojibake undone: the UTF-8 bytes it escaped one by one, decoded as UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text  # not mojibake (or a broken one): keep what is there


def claims(seen: Probe) -> bool:
    if seen.kind == "file":
        head = seen.head.lstrip()
        return head[:1] == "{" and bool(_HEAD.search(head)) and '"guild"' not in head[:200]
    return any(_FILE.search(name) for name in seen.names)


def open_reader(path: Path, settings: ReadSettings) -> MetaExport:
    return MetaExport(path)


def _order(name: str) -> int:
    found = _NUMBER.search(name)
    return int(found.group(1)) if found else 0


class MetaExport:
    """Meta JSON threads; each is read whole, one at a time (threads are small)."""

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        self.path = Path(path)
        seen = probe(self.path)
        self.kind = seen.kind
        names = [n for n in seen.names if _FILE.search(n)] if seen.kind != "file" else [""]
        if not names:
            raise DoppelError(f"{self.path} holds no message_1.json; pass the folder or zip "
                              "that 'Download your information' (JSON) wrote")
        self.threads: dict[str, list[str]] = defaultdict(list)
        for name in names:
            self.threads[str(PurePosixPath(name).parent)].append(name)
        where = " ".join([str(self.path), *names[:50]]).lower()
        self.source = "instagram" if "instagram" in where else "messenger"
        self.layout = seen.kind
        self.size_bytes = self.path.stat().st_size if seen.kind != "dir" else sum(
            (self.path / n).stat().st_size for n in names)
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.tally = Tally()

    def _read(self, name: str) -> bytes:
        try:
            if self.kind == "file":
                return self.path.read_bytes()
            if self.kind == "dir":
                return (self.path / name).read_bytes()
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as bad:
            raise DoppelError(f"{self.path} is a damaged zip file ({bad}); download it "
                              "again") from None

    def _thread(self, folder: str) -> tuple[dict[str, Any], list[Any]]:
        """The thread's metadata (from its first file) and all its messages, oldest first."""
        meta: dict[str, Any] = {}
        messages: list[Any] = []
        for name in sorted(self.threads[folder], key=_order):
            label = f"{self.path}/{name}" if name else str(self.path)
            data = self._read(name)
            self.bytes_read += len(data)
            root = load_json(data, label, "a Meta 'Download your information' export")
            if not isinstance(root, dict) or not isinstance(root.get("messages"), list):
                raise DoppelError(f"{label} holds no 'messages' list: not a Messenger or "
                                  "Instagram JSON export")
            meta = meta or root
            messages += root["messages"]
        messages.reverse()  # newest first within files and across message_1, message_2, ...
        messages.sort(key=_stamp)
        return meta, messages

    def messages(self) -> Iterator[Message]:
        self.chats, self.bytes_read, self.tally = [], 0, Tally()
        present: Counter[str] = Counter()
        for folder in self.threads:
            meta, items = self._thread(folder)
            people = {repair(as_text(p.get("name") if isinstance(p, dict) else p))
                      for p in as_list(meta.get("participants"))} - {""}
            present.update(people)
            chat = self._chat(folder, meta, people, items)
            self.chats.append(chat)
            self.tally.read += len(items)
            self.tally.started += len(items)
            for count, msg in enumerate(items, 1):
                yield self._message(chat, count, msg)
        shared = [name for name, n in present.items() if n == len(self.threads)]
        if len(self.threads) > 1 and len(shared) == 1:  # the name in every thread: the user's,
            # whose speaker ids are that name in each thread (data/identities.py owner_ids)
            self.owner = (f"{self.source}:{shared[0]}", shared[0])

    def _chat(self, folder: str, meta: dict[str, Any], people: set[str], items: list[Any]) -> Chat:
        title = repair(as_text(meta.get("title"))) or PurePosixPath(folder).name or self.path.stem
        kind = as_text(meta.get("thread_type"))
        group = kind == "RegularGroup" or (not kind and len(people) > 2)
        ident = _thread_id(meta, folder, title, people, items)
        return Chat(f"{self.source}:{ident}", title, "private_group" if group else "personal_chat",
                    self.source)

    def _message(self, chat: Chat, count: int, msg: Any) -> Message:
        if not isinstance(msg, dict):
            self.unknown["message that is not an object"] += 1
            return Message(chat, count, 0.0, None, None, "", drop="unknown")
        when = _stamp(msg)
        name = repair(as_text(msg.get("sender_name"))) or None
        text = repair(as_text(msg.get("content")))
        kind = as_text(msg.get("type"))
        sid = in_chat(chat.id, name) if name else None  # a name: an id only in its thread
        if kind == "Call":
            return Message(chat, count, when, sid, name, "", kind="boundary", drop="service")
        drop = None
        if msg.get("is_unsent"):
            drop = "unsent"
        elif kind in ("Subscribe", "Unsubscribe") or (len(text) < 200 and _NOTICE.search(text)):
            drop = "service"
        elif name is None:
            drop = "deleted_account"
        return Message(chat, count, when, sid, name, text, drop=drop, media=_media(msg, text))


def _thread_id(meta: dict[str, Any], folder: str, title: str, people: set[str],
               items: list[Any]) -> str:
    """The thread's folder (name_123, from its thread_path or where it lies, however the export
    is passed) names it in every download; a lone message_1.json: its title, people and first
    messages (ids.py)."""
    path = PurePosixPath(as_text(meta.get("thread_path")) or folder).name
    first = [(_stamp(item), item.get("sender_name"), item.get("content"))
             for item in items[:HEAD_ENTRIES] if isinstance(item, dict)]
    return path or key([title, *sorted(people), *first])


def _stamp(msg: Any) -> float:
    if not isinstance(msg, dict):
        return 0.0
    value = msg.get("timestamp_ms")
    scale = 1000.0
    if value is None:
        value, scale = msg.get("timestamp"), 1.0
    try:
        when = float(value) / scale
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return when if when == when and abs(when) < 1e11 else 0.0  # NaN or absurd: unknown


def _media(msg: dict[str, Any], text: str) -> str | None:
    marks = [marker for key, marker in _MEDIA if msg.get(key)]
    if msg.get("sticker"):
        marks.append("[sticker]")
    if msg.get("share") and not text:
        marks.append("[link]")
    return " ".join(marks) or None

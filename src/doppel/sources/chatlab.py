"""Read the ChatLab format (.json or .jsonl), which WeChat and QQ exporters write (and ChatLab
itself for any app): one chat per file, its members, and messages with a numeric type.

JSON is `{"chatlab": {version}, "meta": {name, platform, type, groupId, ownerId}, "members",
"messages"}`, read whole (ChatLab advises it below a million messages); JSONL is a header line
with `chatlab` and `meta`, then one `member` or `message` object a line (`#` lines are comments),
streamed (a line that is not valid JSON is skipped and counted). Each type maps to text, a
media marker or a counted reason it is not speech. The source is the platform for WeChat and
QQ ("wechat", "qq"), else "chatlab"; `meta.ownerId`, when present, is the owner ("me").
Timestamps are unix seconds (milliseconds are recognised).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from doppel.errors import DoppelError
from doppel.sources.ids import HEAD_MAX, Head, key
from doppel.sources.jsonfile import as_list, as_text, load_json
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.textlines import TextFile

__all__ = ["ChatLabExport", "claims", "open_reader"]

KNOWN_MAJOR = "0"  # ChatLab's format is 0.0.x (0.0.1, 0.0.2); a 1.x may change meanings
PLATFORMS = ("wechat", "qq")  # platforms that get their own source name
_JSON_HEAD = re.compile(r'^\s*\{[\s\S]{0,2000}?"chatlab"\s*:\s*\{')
_JSONL_HEAD = re.compile(r'"_type"\s*:\s*"header"')
_PLACEHOLDER = re.compile(r"^\s*\[[^\[\]]{1,16}\]")  # "[图片]", "[Image]", "[文件] a.pdf"
NO_CAPTION = (4, 7, 8, 24, 27)  # a file name, a URL, a place, a card: not the writer's words
MEDIA = {1: "[photo]", 2: "[voice]", 3: "[video]", 4: "[file]", 5: "[sticker]", 7: "[link]",
         8: "[location]", 24: "[link]", 27: "[contact]"}
NOT_SPEECH = {20: "service", 21: "service", 22: "service", 26: "forward", 80: "system",
              81: "unsent", 99: "other"}
TEXT_TYPES = (0, 25)  # text, a reply
ID_FIELDS = ("sender", "timestamp", "type", "content")  # what names a first message (ids.py)
CALL = 23


def claims(seen: Probe) -> bool:
    if seen.kind != "file":
        return False
    head = seen.head
    return bool(_JSON_HEAD.match(head)) or _is_jsonl(head)


def open_reader(path: Path, settings: ReadSettings) -> ChatLabExport:
    return ChatLabExport(path)


def _time(value: Any) -> float | None:
    """Unix seconds (or milliseconds) from a number or a string of ASCII digits; None for
    anything else ("²" is a digit to str.isdigit, and 4,000 digits overflow a float)."""
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 15):
            return None
        value = int(digits)
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return None
    if abs(value) >= 1e15:
        return None
    seconds = value / 1000 if abs(value) > 1e11 else float(value)
    return seconds if abs(seconds) < 1e11 else None


def _is_jsonl(head: str) -> bool:
    """JSONL: the first line that is not a `#` comment is the header object (which also
    matches _JSON_HEAD when no comment comes before it)."""
    first = next((line for line in head.splitlines()[:20]
                  if line.strip() and not line.lstrip().startswith("#")), "")
    return bool(_JSONL_HEAD.search(first)) and '"chatlab"' in first


def _kind_name(kind: Any) -> str:
    """A message type that is not a number, for the unknown counts (never the repr of a deeply
    nested value: that recurses)."""
    return repr(kind)[:20] if isinstance(kind, str | float) or kind is None else \
        type(kind).__name__


class ChatLabExport:
    """One ChatLab file; JSON is parsed whole, JSONL line by line."""

    layout = "chatlab"

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        self.path = Path(path)
        self.size_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.names: dict[str, str] = {}
        self.tally = Tally()
        head = self._head()
        self.jsonl = _is_jsonl(head) or not _JSON_HEAD.match(head)
        self.root: dict[str, Any] = self._header()
        meta = self.root.get("meta") if isinstance(self.root.get("meta"), dict) else {}
        self.meta: dict[str, Any] = meta
        platform = as_text(meta.get("platform")).strip().lower()
        self.source = platform if platform in PLATFORMS else "chatlab"
        self.layout = "jsonl" if self.jsonl else "json"
        for member in as_list(self.root.get("members")):
            self._member(member)
        owner = as_text(meta.get("ownerId")).strip()
        self.owner: tuple[str, str] | None = (
            (self._sid(owner), self.names.get(owner, owner)) if owner else None)

    def _head(self) -> str:
        with open(self.path, "rb") as handle:
            return handle.read(4096).removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")

    def _header(self) -> dict[str, Any]:
        """The JSON file whole, or the JSONL header line; the version checked."""
        if self.jsonl:
            line = next(self._lines(), None)
            root = self._parse(line or "", 1)
            if not isinstance(root, dict) or root.get("_type") != "header":
                raise DoppelError(f"{self.path} is not a ChatLab JSONL file: its first line is "
                                  "not the header")
        else:
            root = load_json(self.path.read_bytes(), str(self.path), "a ChatLab export")
            if not isinstance(root, dict) or not isinstance(root.get("messages"), list):
                raise DoppelError(f"{self.path} holds no 'messages' list: not a ChatLab JSON "
                                  "export")
        info = root.get("chatlab") if isinstance(root.get("chatlab"), dict) else {}
        version = as_text(info.get("version")).strip()
        if version.split(".")[0] != KNOWN_MAJOR:
            raise DoppelError(f"{self.path} is ChatLab format version {version or '(none)'}; "
                              f"doppel reads versions {KNOWN_MAJOR}.x: export with an older "
                              "setting or update doppel")
        return root

    def _lines(self, tally: Tally | None = None) -> Iterator[str]:
        """The JSON lines; comments and blank lines are counted as layout."""
        def progress(n: int) -> None:
            self.bytes_read = n

        tally = tally or Tally()
        for line in TextFile(self.path).lines(progress):
            tally.read += 1
            if line.strip() and not line.lstrip().startswith("#"):
                yield line
            else:
                tally.layout += 1

    def _parse(self, line: str, number: int) -> Any:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError as bad:
            raise DoppelError(f"{self.path}: line {number} is not valid JSON "
                              f"({str(bad).split(':', 1)[0]}); export it again") from None

    def _sid(self, platform_id: str) -> str:
        return f"{self.source}:{platform_id}"

    def _member(self, member: Any) -> None:
        if not isinstance(member, dict):
            self.unknown["member that is not an object"] += 1
            return
        key = as_text(member.get("platformId")).strip()
        name = as_text(member.get("groupNickname")).strip() or as_text(
            member.get("accountName")).strip()
        if key and name:
            self.names.setdefault(key, name)

    def _chat(self) -> Chat:
        meta = self.meta
        name = as_text(meta.get("name")).strip() or self.path.stem
        # the group's id where the file has one, else its name and first lines (ids.py)
        ident = as_text(meta.get("groupId")).strip() or key(
            [as_text(meta.get("name")), *self._first_lines()])
        group = as_text(meta.get("type")).strip().lower() == "group"
        return Chat(f"{self.source}:{ident}", name, "private_group" if group else "personal_chat",
                    self.source)

    def _first_lines(self) -> list[str]:
        """The first messages (JSON) or lines after the header (JSONL), as the file has them,
        on to the second sender (ids.Head)."""
        head = Head()
        if self.jsonl:
            for line in islice(self._lines(), 1, None):
                if not head.wants():
                    break
                try:  # a damaged line names nobody here; messages() counts it as skipped
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    item = None
                head.add(line, _sender(item))
        else:
            for item in as_list(self.root.get("messages"))[:HEAD_MAX]:
                if not head.wants():
                    break
                head.add(_flat(item), _sender(item))
        return head.entries

    def messages(self) -> Iterator[Message]:
        self.tally = tally = Tally()
        chat = self._chat()
        self.chats = [chat]
        if not self.jsonl:
            items = as_list(self.root.get("messages"))
            tally.read = tally.started = len(items)
            for count, item in enumerate(items, 1):
                yield self._message(chat, count, item)
                self.bytes_read = self.size_bytes * count // max(len(items), 1)
            self.bytes_read = self.size_bytes
            return
        count = 0
        for number, line in enumerate(self._lines(tally), 1):
            if number == 1:
                tally.layout += 1  # the header
                continue
            try:  # one damaged line costs that line only
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                tally.skip("line that is not valid JSON")
                continue
            kind = item.get("_type") if isinstance(item, dict) else None
            if kind == "member":
                tally.layout += 1
                self._member(item)
            elif kind == "message":
                tally.started += 1
                count += 1
                yield self._message(chat, count, item)
            else:
                tally.skip("line that is not a member or message")
        self.bytes_read = self.size_bytes

    def _message(self, chat: Chat, count: int, item: Any) -> Message:
        if not isinstance(item, dict):
            self.unknown["message that is not an object"] += 1
            return Message(chat, count, 0.0, None, None, "", drop="unknown")
        when = _time(item.get("timestamp"))
        sender = as_text(item.get("sender")).strip()
        name = (as_text(item.get("groupNickname")).strip() or self.names.get(sender) or as_text(
            item.get("accountName")).strip() or sender or None)
        sid = self._sid(sender) if sender else None
        text = as_text(item.get("content"))
        kind = item.get("type")
        kind = kind if isinstance(kind, int) and not isinstance(kind, bool) else _kind_name(kind)
        if when is None:
            self.unknown["message without a timestamp"] += 1
            return Message(chat, count, 0.0, sid, name, "", drop="unknown")
        if kind == CALL:
            return Message(chat, count, when, sid, name, "", kind="boundary", drop="service")
        if kind in TEXT_TYPES:
            return Message(chat, count, when, sid, name, text)
        if kind in MEDIA:
            caption = "" if kind in NO_CAPTION or _PLACEHOLDER.match(text) else text
            return Message(chat, count, when, sid, name, caption, media=MEDIA[kind])
        if kind in NOT_SPEECH:
            return Message(chat, count, when, sid, name, "", drop=NOT_SPEECH[kind])
        self.unknown[f"message type {kind}"] += 1
        return Message(chat, count, when, sid, name, "", drop="unknown")


def _flat(item: Any) -> str:
    """The fields that say who wrote what when, each as flat text: a nested value names nothing
    and must not recurse (a 10,000-deep `type` is one bad message, not a crash)."""
    if not isinstance(item, dict):
        return as_text(item)
    return "\0".join(as_text(item.get(field)) for field in ID_FIELDS)


def _sender(item: Any) -> str | None:
    """Who wrote a ChatLab message item (None: not a message)."""
    if not isinstance(item, dict) or item.get("_type", "message") != "message":
        return None
    return as_text(item.get("sender")).strip() or None

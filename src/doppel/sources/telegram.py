"""Stream a Telegram Desktop JSON export (result.json) as Message records, in file order.

Both layouts: a single-chat export (the root object is the chat) and a full-account export
(`chats.list` and `left_chats.list`, plus `personal_information` naming the exporting user).
The file is walked once per `messages()` call with memory bounded by one read chunk, however large
the export (see jsonstream.py for how, and bench/prepare.py for the speed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.sources.jsonstream import BOM, JsonStream, not_utf8
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.tgmessage import MessageMaker, make_chat, normalize_peer_id

__all__ = ["TelegramExport", "claims", "normalize_peer_id", "open_reader"]

CHAT_LISTS = ("chats", "left_chats")
_SNIFF_BYTES = 1 << 16
OTHER_SOURCES = ("doppel also reads WhatsApp, Signal, Discord (DiscordChatExporter), "
                 "Messenger/Instagram, iMessage, ChatLab (WeChat, QQ), LINE and KakaoTalk "
                 "exports")


def claims(seen: Probe) -> bool:
    """Telegram takes any JSON (or the HTML export, to say how to get JSON) no other source
    claimed, and a folder holding result.json or messages.html: its errors are the precise ones."""
    if seen.kind == "dir":
        return any(name in ("result.json", "messages.html") for name in seen.names)
    return seen.kind == "file" and seen.head.lstrip()[:1] in ("{", "[", "<")


def open_reader(path: Path, settings: ReadSettings) -> TelegramExport:
    return TelegramExport(path)


class TelegramExport:
    """A Telegram Desktop export, checked on open and streamed by `messages()`.

    `chats` fills in as `messages()` reaches each chat (one entry per chat id, even when the export
    lists a chat twice); `unknown` counts chat and message types this reader has never seen.
    """

    source = "telegram"

    def __init__(self, path: Path) -> None:
        self.path = self._locate(Path(path))
        self.size_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.tally = Tally()  # skipped only: a chat listed twice (the hot path counts nothing)
        self._sniff()
        self.layout = self._find_layout()

    # -- opening ----------------------------------------------------------------------------------
    @staticmethod
    def _locate(path: Path) -> Path:
        if not path.exists():
            raise DoppelError(f"{path} does not exist; pass the export folder Telegram Desktop "
                              "wrote (DataExport_... or ChatExport_...) or its result.json")
        if path.is_dir():
            found = path / "result.json"
            if found.is_file():
                return found
            hint = (" (it holds an HTML export: export again with format 'Machine-readable JSON')"
                    if (path / "messages.html").exists() else "")
            raise DoppelError(f"no result.json in {path}{hint}; pass the folder Telegram Desktop "
                              "wrote for a JSON export, or the result.json file itself")
        return path

    def _sniff(self) -> None:
        """Fail at once, with the reason, on files that are not a UTF-8 JSON export."""
        with open(self.path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DoppelError(f"{self.path} is UTF-16 text, not UTF-8; re-export it, or convert "
                              "it: `iconv -f utf-16 -t utf-8 result.json > fixed.json`")
        head = head.removeprefix(BOM)
        try:  # the cut at the end of the sniffed bytes may split a character
            text = head.decode("utf-8", errors="strict")
        except UnicodeDecodeError as bad:
            if bad.start < len(head) - 3:
                raise not_utf8(str(self.path), head[bad.start], bad.start) from None
            text = head[: bad.start].decode("utf-8")
        start = text.lstrip()[:1]
        if start in ("{", "["):
            return
        if not start:
            raise DoppelError(f"{self.path} is empty; export the chat again from Telegram Desktop")
        kind = "an HTML export" if start == "<" else "not JSON"
        raise DoppelError(f"{self.path} is {kind}; export from Telegram Desktop with format "
                          "'Machine-readable JSON' and pass its result.json")

    def _find_layout(self) -> str:
        """Read root keys up to the chat data: "single" or "full" (and the owner on the way)."""
        with open(self.path, "rb") as raw:
            stream = JsonStream(raw, str(self.path))
            if stream.peek() != "{":
                raise self._shape_error("a JSON list")
            seen = []
            for key in stream.members("the export"):
                if key == "messages":
                    return "single"
                if key in CHAT_LISTS:
                    return "full"
                seen.append(key)
                self._root_value(key, stream.value(f"'{key}'"))
        raise self._shape_error("a JSON object with keys " + (", ".join(seen[:8]) or "none"))

    def _shape_error(self, found: str) -> DoppelError:
        return DoppelError(f"{self.path} holds {found}, not a Telegram export: expected an object "
                           "with 'messages' (one chat) or 'chats' (a full export); pass the "
                           f"result.json Telegram Desktop wrote ({OTHER_SOURCES})")

    def _root_value(self, key: str, value: Any) -> None:
        if key == "personal_information" and isinstance(value, dict):
            user = value.get("user_id")
            if user is not None:
                name = " ".join(str(value.get(k) or "") for k in ("first_name", "last_name"))
                self.owner = (normalize_peer_id(user, shifted=False), name.strip() or "Me")

    # -- streaming --------------------------------------------------------------------------------
    def messages(self) -> Iterator[Message]:
        """Every message of every chat, in file order (a chat listed twice is read once)."""
        self.chats, self.unknown, self.bytes_read, self.tally = [], Counter(), 0, Tally()
        seen: set[str] = set()
        root: dict[str, Any] = {}  # a single-chat export's root is the chat
        with open(self.path, "rb") as raw:
            stream = JsonStream(raw, str(self.path), on_read=self._progress)
            for key in stream.members("the export"):
                if key == "messages" and self.layout == "single":
                    yield from self._chat_messages(stream, root, seen)
                elif key in CHAT_LISTS and self.layout == "full":
                    yield from self._chat_list(stream, key, seen)
                else:
                    value = stream.value(f"'{key}'")
                    self._root_value(key, value)
                    if self.layout == "single":
                        root[key] = value
        self.bytes_read = self.size_bytes

    def _progress(self, done: int) -> None:
        self.bytes_read = done

    def _chat_list(self, stream: JsonStream, key: str, seen: set[str]) -> Iterator[Message]:
        for part in stream.members(f"'{key}'"):
            if part != "list":
                stream.value(f"'{key}.{part}'")
                continue
            stream.expect("[", f"'{key}.list'")
            if stream.peek() == "]":
                stream.pos += 1
                continue
            while True:
                meta: dict[str, Any] = {}
                for field in stream.members("a chat"):
                    if field == "messages":
                        yield from self._chat_messages(stream, meta, seen)
                    else:
                        meta[field] = stream.value(f"a chat's '{field}'")
                if stream.expect(",]", f"'{key}.list'") == "]":
                    break

    def _chat_messages(self, stream: JsonStream, meta: dict[str, Any],
                       seen: set[str]) -> Iterator[Message]:
        """One chat's messages; its Chat is made at the first message (which tells the id's era).

        A map over the item generator, not a generator of its own: one Python frame less per
        message on the hot path.
        """
        items = stream.array("a chat's messages")
        first = next(items, None)
        chat = make_chat(meta, first if isinstance(first, dict) else None, self.unknown)
        if chat.id in seen:  # a chat listed twice (chats and left_chats): read once
            again = (first is not None) + sum(1 for _ in items)
            if again:
                self.tally.skip("message of a chat listed twice", again)
            return iter(())
        seen.add(chat.id)
        self.chats.append(chat)
        if first is None:
            return iter(())
        return map(MessageMaker(chat, self.unknown).make, chain((first,), items))

"""Read DiscordChatExporter JSON: one file per channel (DM, group DM, server channel, thread), or
a folder of them.

`{"guild", "channel": {id, type, name, ...}, "messages": [{id, type, timestamp, content, author:
{id, name, nickname, isBot}, attachments, stickers, embeds, mentions, reference}]}`. Speech is
`Default` and `Reply`; `Call` ends a conversation; joins, pins, renames and the other system types
are counted, not spoken; bots are left out. Raw mentions (`<@123>`) become `@name`, custom emoji
`:name:`, attachments, stickers and bare embeds markers. Timestamps carry their offset: times are
real UTC. A message id seen twice (re-exports merged) is read once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.sources.jsonfile import as_list, as_text, load_json
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.wa_body import file_marker

__all__ = ["DiscordExport", "claims", "open_reader"]

SOURCE = "discord"
# DiscordChatExporter writes "guild" first; a re-saved file may not: both keys near the start
_GUILD = re.compile(r'"guild"\s*:\s*\{')
_CHANNEL_KEY = re.compile(r'"channel"\s*:\s*\{')
_SPEECH = frozenset({"Default", "Reply", "ThreadStarterMessage"})
_CHAT_TYPES = {"DirectTextChat": "personal_chat", "DirectGroupTextChat": "private_group"}
_MENTION = re.compile(r"<@!?(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_EMOJI = re.compile(r"<a?(:\w+:)\d+>")


def _looks_like(head: str) -> bool:
    start = head[:4096]
    return start.lstrip()[:1] == "{" and bool(_GUILD.search(start) and _CHANNEL_KEY.search(start))


def claims(seen: Probe) -> bool:
    if seen.kind == "file":
        return _looks_like(seen.head)
    return seen.kind == "dir" and bool(_files(seen))


def _files(seen: Probe) -> list[str]:
    return [n for n in seen.names if n.lower().endswith(".json") and n.count("/") <= 1
            and _looks_like(seen.member_head(n))]


def open_reader(path: Path, settings: ReadSettings) -> DiscordExport:
    return DiscordExport(path)


def _time(value: Any) -> float | None:
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _chat(root: dict[str, Any], label: str) -> Chat:
    channel, guild = root.get("channel"), root.get("guild")
    if not isinstance(channel, dict) or not isinstance(root.get("messages"), list):
        raise DoppelError(f"{label} is not a DiscordChatExporter JSON export (no 'channel' and "
                          "'messages'); export the channel again with DiscordChatExporter, "
                          "format JSON")
    kind = _CHAT_TYPES.get(as_text(channel.get("type")), "group")
    name = as_text(channel.get("name")) or as_text(channel.get("id")) or "channel"
    if kind == "group" and isinstance(guild, dict) and as_text(guild.get("name")):
        name = f"{as_text(guild.get('name'))} #{name}"
    return Chat(f"{SOURCE}:{as_text(channel.get('id')) or name}", name, kind, SOURCE)


def _markers(msg: dict[str, Any], text: str) -> str | None:
    marks = [file_marker(as_text(a.get("fileName"))) for a in as_list(msg.get("attachments"))
             if isinstance(a, dict)]
    marks += ["[sticker]" for _ in as_list(msg.get("stickers"))]
    if not text and not marks and msg.get("embeds"):
        marks.append("[link]")
    return " ".join(marks) or None


def _text(msg: dict[str, Any]) -> str:
    text = as_text(msg.get("content"))
    if "<" not in text:
        return text
    names = {as_text(m.get("id")): as_text(m.get("nickname") or m.get("name"))
             for m in as_list(msg.get("mentions")) if isinstance(m, dict)}
    text = _MENTION.sub(lambda f: "@" + (names.get(f.group(1)) or "someone"), text)
    text = _CHANNEL.sub("#channel", text)
    return _EMOJI.sub(r"\1", text)


class DiscordExport:
    """DiscordChatExporter JSON files; each is read whole (one channel), one at a time."""

    source = SOURCE

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        from doppel.sources.probe import probe

        self.path = Path(path)
        seen = probe(self.path)
        self.files = [self.path] if seen.kind == "file" else [self.path / n for n in _files(seen)]
        self.layout = "json" if seen.kind == "file" else "folder"
        self.size_bytes = sum(f.stat().st_size for f in self.files)
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = None
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.tally = Tally()

    def messages(self) -> Iterator[Message]:
        self.chats, self.tally, done = [], Tally(), 0
        for file in self.files:
            root = load_json(file.read_bytes(), str(file), "a DiscordChatExporter export")
            if not isinstance(root, dict):
                raise DoppelError(f"{file} holds no DiscordChatExporter export (a JSON object "
                                  "with 'guild', 'channel' and 'messages')")
            chat = _chat(root, str(file))
            self.chats.append(chat)
            seen: set[str] = set()
            last = 0.0
            for count, msg in enumerate(root["messages"], 1):
                self.tally.read += 1
                message = self._message(chat, count, msg, last, seen)
                if message is None:
                    self.tally.skip("message id seen twice")
                    continue
                self.tally.started += 1
                last = message.time
                yield message
            done += file.stat().st_size
            self.bytes_read = done

    def _message(self, chat: Chat, count: int, msg: Any, last: float,
                 seen: set[str]) -> Message | None:
        if not isinstance(msg, dict):
            self.unknown["message that is not an object"] += 1
            return Message(chat, count, last, None, None, "", drop="unknown")
        msg_id = as_text(msg.get("id"))
        if msg_id and msg_id in seen:
            return None
        seen.add(msg_id)
        when = _time(msg.get("timestamp"))
        when = last if when is None else when
        author = msg.get("author") if isinstance(msg.get("author"), dict) else {}
        sid = as_text(author.get("id"))
        name = as_text(author.get("nickname") or author.get("name")) or None
        kind = as_text(msg.get("type"))
        if kind == "Call":
            return Message(chat, count, when, None, None, "", kind="boundary", drop="service")
        text = _text(msg)
        drop = None
        if kind not in _SPEECH:
            drop = "service"
        elif author.get("isBot") is True:
            drop = "bot"
        elif not sid:
            drop = "deleted_account"
        return Message(chat, count, when, f"{SOURCE}:{sid}" if sid else None, name, text,
                       drop=drop, media=_markers(msg, text))

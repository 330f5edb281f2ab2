"""Turn one Telegram export message (a dict) into a Message: ids, time, text, media, drop reason.

Field meanings and their history are in shared/docs/telegram-export-format.md; this module is the
one place that knows them, so the reader itself only walks the file.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from datetime import datetime
from typing import Any

from doppel.sources.records import Chat, Message

# Oct 2020 - Apr 2021 exports shifted ids: users 2**32 + id, groups and channels 2**33 + id.
_USER_SHIFT = 1 << 32
_CHAT_SHIFT = 2 << 32
_PEER = re.compile(r"(user|chat|channel)(\d+)")

USER_CHATS = frozenset({"personal_chat", "bot_chat", "saved_messages", "replies",
                        "verification_codes"})
_CHAT_KIND = {"private_group": "chat", "private_supergroup": "channel",
              "public_supergroup": "channel", "private_channel": "channel",
              "public_channel": "channel"}
KNOWN_CHAT_TYPES = USER_CHATS | _CHAT_KIND.keys()
DEFAULT_NAMES = {"saved_messages": "Saved Messages", "replies": "Replies",
                 "verification_codes": "Verification Codes"}
DELETED = "Deleted Account"

# service actions that end a conversation: a call, or a cleared history
BOUNDARY_ACTIONS = frozenset({"phone_call", "group_call", "conference_call", "clear_history",
                              "history_clear"})
PII_ENTITIES = frozenset({"phone", "email", "bank_card"})
_MEDIA_MARKERS = {"animation": "[gif]", "video_file": "[video]", "audio_file": "[audio]"}
_AUDIO = frozenset({"voice_message", "audio_file"})  # media whose file transcription may hear
_EPOCH = datetime(1970, 1, 1)
_MISSING = object()
_MEDIA_KEYS = frozenset({"photo", "media_type", "file", "poll", "location_information",
                         "place_name", "contact_information", "todo_list", "game_title",
                         "invoice_information"})


def normalize_peer_id(raw: int | str | None, kind: str = "user", *,
                      shifted: bool = True) -> str | None:
    """One string per peer ("user123", "chat123", "channel123") whatever the export's era.

    `raw` is a `from_id`/`actor_id` or a chat id: a string since Apr 2021, before that an int,
    shifted (2**32 + user, 2**33 + group/channel) from Oct 2020. `kind` says what a bare int is;
    `shifted=False` reads ints as bare ids (modern chat ids exceed 2**32).
    """
    if not isinstance(raw, (int, str)) or isinstance(raw, bool):  # a damaged export's list, ...
        return None
    if isinstance(raw, str):
        if _PEER.fullmatch(raw):
            return raw
        text = raw.strip()
        if not text.lstrip("-").isdigit():
            return raw or None
        raw = int(text)
    if raw < 0:  # Bot API style: -100<id> for channels, -<id> for basic groups
        return f"channel{-raw - 10**12}" if raw <= -(10**12) else f"chat{-raw}"
    if shifted and _USER_SHIFT <= raw < _CHAT_SHIFT:
        return f"user{raw - _USER_SHIFT}"
    if shifted and _CHAT_SHIFT <= raw < _CHAT_SHIFT + _USER_SHIFT:
        return f"{'chat' if kind == 'chat' else 'channel'}{raw - _CHAT_SHIFT}"
    return f"{kind}{raw}"


def make_chat(meta: dict[str, Any], first: dict[str, Any] | None, unknown: Counter) -> Chat:
    """The Chat for a chat object's name/type/id, reading the id in its export's era.

    Exports whose messages carry string `from_id`s (Apr 2021 on) write bare chat ids; older ones
    shifted ids. A chat with no messages is read as modern.
    """
    kind_name = meta.get("type")
    if not isinstance(kind_name, str) or kind_name not in KNOWN_CHAT_TYPES:
        unknown[f"chat type {kind_name}"] += 1
        kind_name = "unknown"
    sender = (first or {}).get("from_id", (first or {}).get("actor_id"))
    shifted = isinstance(sender, int) and not isinstance(sender, bool)
    kind = "user" if kind_name in USER_CHATS else _CHAT_KIND.get(kind_name, "chat")
    raw_id = meta.get("id")
    chat_id = normalize_peer_id(raw_id, kind, shifted=shifted) or f"chat-unknown-{id(meta)}"
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        name = DEFAULT_NAMES.get(kind_name) or (DELETED if "name" in meta else f"Chat {raw_id}")
    return Chat(id=chat_id, name=name, type=kind_name)


def join_text(parts: Any) -> str:
    """The message text exactly: a string, or the concatenation of every part's text."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "".join([p if p.__class__ is str else str(p.get("text") or "") if p.__class__ is dict
                    else "" for p in parts])


def _clock(seconds: Any) -> str:
    seconds = int(seconds) if isinstance(seconds, int | float) else 0
    return f"{seconds // 60}:{seconds % 60:02d}"


def media_marker(msg: dict[str, Any]) -> str | None:
    """A short marker for the message's media, or None: a sticker's emoji, "[photo]", ..."""
    if "photo" in msg:
        return "[photo]"
    media = msg.get("media_type")
    if media is not None:
        if media == "sticker":
            emoji = msg.get("sticker_emoji")
            return emoji if isinstance(emoji, str) and emoji else "[sticker]"
        if media == "voice_message":
            return f"[voice {_clock(msg.get('duration_seconds'))}]"
        if media == "video_message":
            return f"[video message {_clock(msg.get('duration_seconds'))}]"
        return _MEDIA_MARKERS.get(media, "[file]") if isinstance(media, str) else "[file]"
    if "file" in msg:
        return "[file]"
    if "poll" in msg:
        poll = msg["poll"]
        question = join_text(poll.get("question")) if isinstance(poll, dict) else ""
        return f"[poll: {question}]"
    if "location_information" in msg or "place_name" in msg:
        return "[location]"
    if "contact_information" in msg:
        return "[contact]"
    for key, marker in (("todo_list", "[todo list]"), ("game_title", "[game]"),
                        ("invoice_information", "[invoice]")):
        if key in msg:
            return marker
    return None


def media_path(msg: dict[str, Any]) -> str | None:
    """A voice or audio file's path relative to result.json's folder ("voice_messages/audio_1@
    ...ogg"), or None: other media, or the sentence an export without media writes instead."""
    path = msg.get("file")
    kind = msg.get("media_type")
    if kind.__class__ is not str or kind not in _AUDIO or path.__class__ is not str or not path \
            or path.startswith("(") or "\n" in path:
        return None
    return path


def _pii(parts: list[Any]) -> list[tuple[str, str]]:
    # `.__class__ is str` first: a list or dict there (not a real export's) is unhashable, and
    # the check costs less than a helper call on every message (bench/prepare.py)
    return [(kind, str(p.get("text") or "")) for p in parts if p.__class__ is dict
            and (kind := p.get("type")).__class__ is str and kind in PII_ENTITIES]


def _name(name: Any, speaker_id: str | None) -> str | None:
    """A sender name that is not a plain string: none (a deleted account), or something odd."""
    if name.__class__ is str:
        return name
    if name is None:
        return DELETED if speaker_id is not None else None
    return str(name)


class MessageMaker:
    """Converts the messages of one chat; remembers the last time for messages that lack one.

    `make` runs once per message of exports with millions of them, so it is written for speed:
    local lookups, one pass, the common shapes (a plain string, one plain entity) first.
    """

    def __init__(self, chat: Chat, unknown: Counter) -> None:
        self.chat = chat
        self.unknown = unknown
        self.last_time = 0.0
        self._one_to_one = chat.type in USER_CHATS
        self._ids: dict[Any, str | None] = {}

    def make(self, msg: Any) -> Message:
        """Build the Message: `drop` says why it is not someone's own words, or None."""
        if msg.__class__ is not dict:  # not a real export's message; counted, never a crash
            self.unknown["message that is not an object"] += 1
            return Message(self.chat, 0, self.last_time, None, None, "", drop="unknown")
        get = msg.get
        raw = get("from_id", _MISSING)
        if raw is _MISSING:
            raw = get("actor_id")
        try:
            speaker_id = self._ids[raw]
        except (KeyError, TypeError):
            speaker_id = self._speaker_id(raw)
        speaker = get("from", _MISSING)
        if speaker.__class__ is not str:
            speaker = _name(get("actor") if speaker is _MISSING else speaker, speaker_id)
        parts = get("text_entities")
        if parts is None:
            parts = get("text", "")
        pii: list[tuple[str, str]] = []
        if parts.__class__ is str:
            text = parts
        elif parts.__class__ is list and parts:
            first = parts[0]
            if len(parts) == 1 and first.__class__ is dict:
                text = first.get("text")
                text = text if text.__class__ is str else str(text or "")
                kind = first.get("type")
                if text and kind.__class__ is str and kind in PII_ENTITIES:
                    pii.append((kind, text))
            else:
                text = join_text(parts)
                pii = _pii(parts)
        else:
            text = ""
        media = None if _MEDIA_KEYS.isdisjoint(msg) else media_marker(msg)
        mtype = get("type")
        if mtype == "message":
            kind, drop = "message", self._drop(msg, speaker_id, text, media)
        else:
            kind, drop = self._not_a_message(msg, mtype)
        try:
            self.last_time = when = float(get("date_unixtime"))
        except (TypeError, ValueError):
            when = self._date(msg)
        msg_id = get("id")
        return Message(self.chat, msg_id if msg_id.__class__ is int else 0, when, speaker_id,
                       speaker, text, kind, drop, media, pii,
                       None if media is None else media_path(msg))

    def _date(self, msg: dict[str, Any]) -> float:
        """Older exports: `date` is the exporting PC's naive local time; read as UTC, which keeps
        gaps right within the file. No date at all: the previous message's time."""
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self.last_time = (datetime.fromisoformat(msg["date"]) - _EPOCH).total_seconds()
        return self.last_time

    def _speaker_id(self, raw: Any) -> str | None:
        try:
            speaker_id = self._ids[raw] = normalize_peer_id(raw)
        except TypeError:  # an unhashable id: not a real export, but never a crash
            return None
        return speaker_id

    def _not_a_message(self, msg: dict[str, Any], mtype: Any) -> tuple[str, str]:
        """(kind, drop) of a service event or an unknown record."""
        if mtype == "service":
            action = msg.get("action")
            boundary = action.__class__ is str and action in BOUNDARY_ACTIONS
            return "boundary" if boundary else "message", "service"
        if mtype == "unsupported":
            return "message", "unsupported"
        self.unknown[f"message type {mtype}"] += 1
        return "message", "unknown"

    def _drop(self, msg: dict[str, Any], speaker_id: str | None, text: str,
              media: str | None) -> str | None:
        if "forwarded_from" in msg or "saved_from" in msg:
            return "forward"
        if "via_bot" in msg:
            return "via_bot"
        if speaker_id is None:
            return "deleted_account"
        if not self._one_to_one and speaker_id.startswith("channel"):
            return "channel_post"  # an anonymous admin or a post "as the channel": not a person
        if not text and media is None:
            return "empty"
        return None

"""How every reader names chats and people: ids decide who may see what, names only display.

The rule (docs/architecture.md "Who is who"):
- A chat id is unique across every input of a dataset and the same in a newer export of the same
  chat: the source, then what the source itself calls the chat, never a file path or a row
  number. Telegram: its peer id (`user123`, `chat456`); iMessage: a hash of `chat.guid`;
  Discord: the channel id; Meta: the thread's folder (`name_123`); ChatLab: `groupId`; a text
  export (WhatsApp, Signal, LINE, KakaoTalk) and a ChatLab file without ids: a hash of its first
  entries, on to the second writer (`Head`, `key`).
- A person id comes from the source where it has one: Telegram's user id, the iMessage handle
  (a phone or email hashed), Discord's user id, ChatLab's platform id, a WhatsApp phone number
  (hashed). Where the export only has names (WhatsApp, Signal, LINE, KakaoTalk, Meta), the name
  is an id only inside its chat (`in_chat`): two "Sam"s in two exports are two people until the
  user says otherwise (`--me NAME` for themselves, `--identities` for anyone,
  data/identities.py). Display labels ("Sam (2)") are made later (data/speakers.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

KEY_CHARS = 12  # hex digits of a key: 48 bits, no collision among one user's chats
# the first entries of a text export that name it: a newer export of the chat keeps them (a
# chat shorter than this that grows gets a new id; more would make that likelier)
HEAD_ENTRIES = 8
# ...read on until this many people have written: the user's first messages alone (one broadcast
# sent to many chats, the same minutes and words in each) would name every such chat alike
HEAD_WRITERS = 2
HEAD_MAX = 256  # entries a head holds at most (a chat where nobody answers for long)
SCOPE = "/"  # between a chat id and a name that is an id only inside that chat


def key(parts: Iterable[object]) -> str:
    """A short, path-independent hash of what names a chat (its guid, its first entries)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(str(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:KEY_CHARS]


def in_chat(chat_id: str, name: str) -> str:
    """The id of a speaker the export knows only by name: the name, inside its chat."""
    return f"{chat_id}{SCOPE}{name}"


def is_in_chat(speaker_id: str, chat_id: str) -> bool:
    """Whether `speaker_id` is a name that is an id only inside `chat_id` (see in_chat)."""
    return speaker_id.startswith(chat_id + SCOPE)


class Head:
    """What names a text export (hashed by `key`): its first HEAD_ENTRIES entries, and on until
    HEAD_WRITERS people have written in it. A newer export of the chat starts alike and so keeps
    the name; two chats the user began with one broadcast differ at the first reply."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.writers: set[str] = set()

    def wants(self) -> bool:
        """Whether the next entry belongs to the head."""
        return len(self.entries) < HEAD_MAX and (
            len(self.entries) < HEAD_ENTRIES or len(self.writers) < HEAD_WRITERS)

    def add(self, entry: Any, writer: str | None) -> None:
        """Take `entry` (written by `writer`; None: a system line) while the head wants it."""
        if self.wants():
            self.entries.append(entry)
            if writer:
                self.writers.add(writer)

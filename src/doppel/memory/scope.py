"""Whose conversations a retrieval may read: the privacy rule lives here, once, over person ids.

Names only display: two people called Sam are two ids, and a label that changes (or a stranger
who shares a friend's first name) moves nobody into another's scope.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from doppel.data.dataset import Dataset


@dataclass(frozen=True)
class Scope:
    """Whose conversations a retrieval may read. The privacy rule: talking to Sam, only chats
    Sam was part of (the personal chat with Sam and groups Sam was in); talking to a group,
    only chats every member of it was part of (a group with Sam and Jo never hears what Sam
    told the twin alone).

    `members` None means everything (the owner's explicit `--memory-scope all`); otherwise a
    unit is readable when every one of these person ids took part in its chat. An empty set
    reads nothing: nobody to talk to, nothing to recall.
    """

    members: frozenset[str] | None

    @classmethod
    def of(cls, members: Collection[str]) -> Scope:
        """Only the chats all of `members` (person ids, the persona left out) were part of."""
        return cls(frozenset(members))

    @classmethod
    def with_partner(cls, person: str) -> Scope:
        """Only the chats one person (an id) was part of."""
        return cls(frozenset({person}))

    @classmethod
    def everything(cls) -> Scope:
        """Every chat: the owner opted in with `--memory-scope all`."""
        return cls(None)

    def allows(self, participants: Collection[str]) -> bool:
        """Whether a unit from a chat with these participants (person ids) may be read."""
        if self.members is None:
            return True
        return bool(self.members) and self.members <= frozenset(participants)


@dataclass(frozen=True)
class ChatPartners:
    """Whom a speaker talks to in a dataset's chat: every member of that chat (everyone with
    kept messages in it, as person ids) but the speaker, whoever spoke in the turns at hand.
    Training's memories and eval's memory tests take their scope from here."""

    members: Mapping[str, tuple[str, ...]]  # chat id -> person ids
    chats: Mapping[str, str]  # conversation id -> chat id
    ids: Mapping[str, str]  # label -> person id (labels are unique within a dataset)

    @classmethod
    def of(cls, dataset: Dataset) -> ChatPartners:
        from doppel.memory.units import chat_members

        chats = {c.id: c.chat_id for c in dataset.conversations()}
        return cls({chat: ids for chat, (ids, _) in chat_members(dataset).items()}, chats,
                   {s["name"]: pid for pid, s in dataset.manifest["speakers"].items()}
                   | {dataset.me_name: dataset.me_id})

    def in_chat(self, chat_id: str, speaker_id: str) -> frozenset[str]:
        """The partners of `speaker_id` (a person id) in chat `chat_id`."""
        return frozenset(self.members.get(chat_id, ())) - {speaker_id}

    def in_conversation(self, conversation_id: str, speaker: str) -> frozenset[str]:
        """The partners of `speaker` (a label) in the chat of conversation `conversation_id`."""
        return self.in_chat(self.chats.get(conversation_id, ""), self.ids.get(speaker, speaker))

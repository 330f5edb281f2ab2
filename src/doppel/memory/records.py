"""The records memory hands out (Memory) and takes in (NewUnit)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Memory:
    """One retrieved stretch of conversation (a few turns around a message), masked text only."""

    unit_id: int
    conversation_id: str  # dataset conversation id ("user42-0007") or a bot conversation key
    chat_id: str
    chat_name: str
    participants: tuple[str, ...]  # person ids of everyone in that chat (who was there)
    start: float  # epoch seconds of the first and last message of the unit
    end: float
    lines: tuple[tuple[str, str], ...]  # (speaker label, text)
    score: float = 0.0
    names: tuple[str, ...] = ()  # the participants' labels, for display only

    @property
    def who(self) -> tuple[str, ...]:
        """Who was there, as people read it: the labels (the ids where none were stored)."""
        return self.names or self.participants


@dataclass(frozen=True)
class NewUnit:
    """A stretch of conversation to add to an index (the bot's own finished exchanges).

    `participants` (person ids, or the bot's `telegram-bot:<user id>` keys) decides which scopes
    may read it: everyone in the chat and the persona, so what the twin told Sam is found in
    Sam's scope only. `names` are their labels, for display.
    """

    conversation_id: str  # e.g. "bot:<chat_id>:<n>"
    chat_id: str
    chat_name: str
    participants: tuple[str, ...]
    start: float
    end: float
    lines: tuple[tuple[str, str], ...]  # (speaker label, text)
    names: tuple[str, ...] = ()  # the participants' labels, same order

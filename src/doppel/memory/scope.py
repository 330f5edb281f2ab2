"""Whose conversations a retrieval may read: the privacy rule lives here, once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Whose conversations a retrieval may read. The privacy rule: talking to Sam, only chats
    Sam was part of (personal chat with Sam + groups Sam was in).

    `partners` None means everything (the owner's explicit `--memory-scope all`); otherwise a
    unit is readable when any of these names took part in its chat.
    """

    partners: frozenset[str] | None

    @classmethod
    def with_partner(cls, name: str) -> Scope:
        """Only the chats `name` was part of."""
        return cls(frozenset({name}))

    @classmethod
    def everything(cls) -> Scope:
        """Every chat: the owner opted in with `--memory-scope all`."""
        return cls(None)

    def allows(self, participants: tuple[str, ...] | frozenset[str]) -> bool:
        """Whether a unit from a chat with these participants may be read in this scope."""
        return self.partners is None or not self.partners.isdisjoint(participants)

"""Whose conversations a retrieval may read: the privacy rule lives here, once."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from doppel.errors import DoppelError


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


def resolve_partner(name: str, known: Collection[str]) -> str:
    """The speaker `name` means: an exact name, else the one whose name or first name matches
    ignoring case ("sam" -> "Sam Carter"); anything else is one clear line."""
    if name in known:
        return name
    wanted = name.casefold().strip()
    matches = sorted(n for n in known if n.casefold() == wanted
                     or n.casefold().split(" ")[0] == wanted)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DoppelError(f"--with {name}: several people match ({', '.join(matches)}); "
                          "give the full name")
    raise DoppelError(f"--with {name}: nobody of that name in the memory index; known: "
                      f"{', '.join(sorted(known)) or 'nobody'}")

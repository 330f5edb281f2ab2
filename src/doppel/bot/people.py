"""Who a Telegram user is to the twin: by their Telegram user id, never by their name.

A `--friend ID=NAME` is the dataset person NAME names (data/people.py's rule, checked at
start-up: nobody or several is one line) and reads that person's memories; every other user has
a scope of their own, `telegram-bot:<user id>`, which no dataset person id can be, so a stranger
called Sam never reads Sam's chats and two strangers called Jo never read each other's. Names are
what the twin and /whoami show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from doppel.bot.store import UNKNOWN_MEMBER
from doppel.data.people import People
from doppel.errors import DoppelError

STRANGER = "telegram-bot:"  # + the Telegram user id: the scope of a user who is not a --friend


@dataclass(frozen=True)
class Friend:
    person: str  # the dataset's person id (or the name, where the twin knows no dataset)
    name: str  # the label the twin knows them by


class Roster:
    """The --friend map, resolved: Telegram user id -> Friend; and the persona's scope key."""

    def __init__(self, friends: Mapping[int, Friend], persona: str, persona_key: str) -> None:
        self.friends = dict(friends)
        self.persona, self.persona_key = persona, persona_key

    @classmethod
    def resolve(cls, friends: Mapping[int, str], people: People | None, persona: str) -> Roster:
        """Each --friend NAME resolved to one person (nobody or several: one DoppelError line);
        `people` None (a base model with no data) takes names as they are."""
        if people is None:
            return cls({user: Friend(name, name) for user, name in friends.items()}, persona,
                       persona)
        resolved = {user: people.resolve(name, f"--friend {user}={name}")
                    for user, name in friends.items()}
        persona_key = people.lookup(persona) or persona
        for user, person in resolved.items():
            if person == persona_key:
                raise DoppelError(f"--friend {user}={friends[user]} is {persona}, whom the twin "
                                  "plays; name someone else")
        return cls({user: Friend(person, people.label(person))
                    for user, person in resolved.items()}, persona, persona_key)

    def names(self) -> dict[int, str]:
        """Telegram user id -> the friend's label (what the twin calls them)."""
        return {user: friend.name for user, friend in self.friends.items()}

    def key(self, user_id: int, chat_id: int) -> str:
        """The scope a Telegram user's memories are kept and read under (an old group's unknown
        members: a key of that chat's own, which no other chat shares)."""
        friend = self.friends.get(user_id)
        if friend is not None:
            return friend.person
        if user_id == UNKNOWN_MEMBER:
            return f"{STRANGER}unknown-in-{chat_id}"
        return f"{STRANGER}{user_id}"

    def keys(self, user_ids: Iterable[int], chat_id: int) -> frozenset[str]:
        """The scope keys of a chat's members (the persona's left out)."""
        return frozenset(self.key(user, chat_id) for user in user_ids) - {self.persona_key}


def people_of(engine) -> People | None:
    """Whom --friend names are resolved against: the dataset of the engine's memory, else the
    run's speakers; None for a base model that knows nobody."""
    recall = getattr(engine, "recall", None)
    if recall is not None:
        return recall.people
    personas = list(getattr(engine, "personas", []))
    return People.of_names(personas) if personas else None

"""Who is who in a dataset, and the one rule that turns what a user types into a person id.

Access is decided on person ids (memory scope, blind-test items, the bot's friends); labels are
what people read. Whatever names a person (`chat --me/--as`, the API's message `name`, `bot
--friend ID=NAME`, `blindtest --judge`, `memory search --with`) goes through `People.resolve`,
tier by tier, the first tier with any match deciding:

1. a person id ("user2", "imessage:...") or the exact label ("Sam Carter", "Sam (2)"), together:
   a label that is another person's id ("user2" for a friend whose name is that) names two
   people, never silently the one whose id it is;
2. the label ignoring case, Unicode form and runs of spaces ("sam  carter", "Zoe" + a combining
   diaeresis for "Zoë");
3. an alias: a raw name or id the person was merged from (`--identities`), exact, then ignoring
   case and form;
4. a first name ("sam" for "Sam Carter"), when one person has it.

Nobody, or several people in the deciding tier, is one DoppelError line naming candidates: a name
never silently means nobody (an empty memory scope) or the wrong one of two.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from doppel.errors import DoppelError

SHOWN = 12  # candidates an error lists at most


@dataclass(frozen=True)
class People:
    """Person id -> label and aliases (from a dataset's manifest, or a run's speaker list)."""

    labels: Mapping[str, str]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    me: str | None = None  # the exporting user's id, when known
    noun: str = "people"  # what errors call them (chats resolve by the same rule: "chats")

    @classmethod
    def of_manifest(cls, manifest: Mapping[str, Any]) -> People:
        """The speakers of a dataset's manifest.json (`aliases` read when present)."""
        speakers = manifest.get("speakers") or {}
        me = manifest.get("me") or {}
        labels = {str(pid): str(s.get("name", pid)) for pid, s in speakers.items()}
        if me.get("id") is not None:
            labels.setdefault(str(me["id"]), str(me.get("name", me["id"])))
        aliases = {str(pid): tuple(str(a) for a in s.get("aliases") or () if a)
                   for pid, s in speakers.items()}
        return cls(labels, aliases, str(me["id"]) if me.get("id") is not None else None)

    @classmethod
    def of_names(cls, names: Iterable[str]) -> People:
        """A run whose dataset is gone knows its speakers by label only: labels are the ids."""
        return cls({name: name for name in names})

    def label(self, person: str) -> str:
        """What to show for a person id (the id itself when it is nobody's)."""
        return self.labels.get(person, person)

    def matches(self, typed: str) -> list[str]:
        """The person ids the deciding tier finds for `typed` (see the module's rule)."""
        text = typed.strip()
        if not text:
            return []
        folded = fold(text)
        tiers = (
            lambda pid: pid == text or self.labels[pid] == text,
            lambda pid: fold(self.labels[pid]) == folded,
            lambda pid: text in self.aliases.get(pid, ()),
            lambda pid: any(fold(a) == folded for a in self.aliases.get(pid, ())),
            lambda pid: _first_name(self.labels[pid]) == folded,
        )
        for tier in tiers:
            found = [pid for pid in self.labels if tier(pid)]
            if found:
                return sorted(found, key=lambda pid: (self.labels[pid], pid))
        return []

    def lookup(self, typed: str) -> str | None:
        """The one person `typed` names, or None (nobody, or several)."""
        found = self.matches(typed)
        return found[0] if len(found) == 1 else None

    def resolve(self, typed: str, what: str = "name") -> str:
        """The one person id `typed` names; nobody or several is one DoppelError line.

        what: how the message calls the value ("--me", "--friend 123=Sam", "judge")."""
        found = self.matches(typed)
        if len(found) == 1:
            return found[0]
        raise DoppelError(self.problem(typed, what, found))

    def problem(self, typed: str, what: str, found: list[str] | None = None) -> str:
        """The line that says why `typed` names nobody or several (the API shows it as a
        warning; everything else raises it)."""
        found = self.matches(typed) if found is None else found
        if found:
            return (f"{what} {typed!r} matches several {self.noun} ({self._list(found)}); give "
                    "the full name or the id")
        return (f"{what} {typed!r} matches nobody in the data; known: "
                f"{self._list(sorted(self.labels, key=self.labels.__getitem__))}")

    def _list(self, ids: list[str]) -> str:
        labels = list(self.labels.values())
        shown = [self.labels[pid] if labels.count(self.labels[pid]) == 1 and (
                 self.labels[pid] == pid or self.labels[pid] not in self.labels)
                 else f"{self.labels[pid]} [{pid}]" for pid in ids[:SHOWN]]
        more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
        return (", ".join(shown) or "nobody") + more


def fold(name: str) -> str:
    """A name as typed, compared: case, Unicode form (NFKC: a combining accent, a full-width
    letter, a no-break space) and runs of whitespace ignored."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _first_name(label: str) -> str:
    return (fold(label).split() or [""])[0]

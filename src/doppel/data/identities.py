"""One person, several apps: who "me" is in each source, and friends merged across sources.

Telegram's full export names its owner; a WhatsApp, Signal or single-chat file does not, so the
user says (`--me NAME_OR_ID`, repeatable: one per source when the names differ) or gives a YAML
file (`--identities FILE`) listing people and their name or id in each source:

    - name: Alex            # the name the dataset uses (optional)
      me: true
      telegram: user1000001
      whatsapp: Alex Morgan
    - name: Sam
      telegram: user2
      whatsapp: [Sam, "Sam L"]

Every source with kept messages must have a "me": otherwise the error names its top speakers.

Ids are made by the readers (sources/ids.py has the rule): a person's id comes from the source
where it has one (a Telegram user id, an iMessage handle); where the export only has names
(WhatsApp, Signal, LINE, KakaoTalk, Meta) a name is an id only inside its chat, so two "Sam"s
are two people. This file is the one place ids become one person: `--me NAME` (every speaker
of that name in an app whose ids are names: the user says it is them) and `--identities`
(`whatsapp: Sam` merges every WhatsApp "Sam" into one person). A merged person keeps the id
of its member with the earliest message (then the smallest id): it does not move when a newer
export adds messages.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError

MAX_CANDIDATES = 10
PERSON_KEYS = {"name", "me"}


@dataclass
class Person:
    """An identities-file entry: display name, whether it is the user, names/ids per source."""

    name: str | None
    me: bool
    ids: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Identities:
    """The outcome: the user's final id, raw speaker id -> final id for merged speakers, and
    names chosen for final ids."""

    me: str
    final: dict[str, str]
    names: dict[str, str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Speakers:
    """What the read found: id -> name, id -> kept messages, id -> source name; the ids that are
    a name inside one chat (sources/ids.py in_chat), and id -> earliest message time."""

    names: dict[str, str]
    counts: Counter[str]
    sources: dict[str, str]
    in_chat: set[str] = field(default_factory=set)
    first: dict[str, float] = field(default_factory=dict)

    def stable(self, sids: list[str]) -> list[str]:
        return earliest_first(sids, self.first)


def earliest_first(sids: Iterable[str], first: dict[str, float]) -> list[str]:
    """`sids` by their earliest message, then by id: an order a newer export does not change
    (message counts do), for the id a merged person keeps and for labels' " (2)"."""
    return sorted(sids, key=lambda sid: (first.get(sid, math.inf), sid))


def load_identities(path: Path | str | None) -> list[Person]:
    """Read and check an identities YAML file (None: no file, no people)."""
    if path is None:
        return []
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as bad:
        raise DoppelError(f"cannot read --identities {path}: {bad.strerror or bad}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as bad:
        where = getattr(bad, "problem_mark", None)
        raise DoppelError(f"--identities {path} is not valid YAML"
                          f"{f' (line {where.line + 1})' if where else ''}") from None
    if isinstance(data, dict) and isinstance(data.get("people"), list):
        data = data["people"]
    if not isinstance(data, list):
        raise DoppelError(f"--identities {path} must be a YAML list of people, each with a name "
                          "and their name or id per source (telegram: user123, whatsapp: Alex)")
    return [_person(entry, path, n) for n, entry in enumerate(data, 1)]


def _person(entry: Any, path: Path, number: int) -> Person:
    if not isinstance(entry, dict):
        raise DoppelError(f"--identities {path}: entry {number} is not a mapping of source: "
                          "name or id")
    ids: dict[str, list[str]] = {}
    for key, value in entry.items():
        if key in PERSON_KEYS:
            continue
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int) for v in values):
            raise DoppelError(f"--identities {path}: entry {number}, {key}: give a name or id, "
                              "or a list of them")
        ids[str(key).lower()] = [str(v) for v in values]
    if not ids:
        raise DoppelError(f"--identities {path}: entry {number} names no source (telegram, "
                          "whatsapp, signal, discord, messenger, instagram, imessage, wechat, qq, "
                          "chatlab, line, kakaotalk)")
    name = entry.get("name")
    return Person(str(name) if name is not None else None, entry.get("me") is True, ids)


def lookup(wanted: str, names: dict[str, str]) -> list[str]:
    """Speaker ids matching an id (`user123`, `123`, `whatsapp:Sam`) or a display name."""
    wanted = wanted.strip()
    if wanted in names:
        return [wanted]
    hashed = _hashed_ids(wanted, names)
    if hashed:
        return hashed
    if wanted.isdigit():
        by_digits = [sid for sid in names if re.sub(r"\D", "", sid) == wanted]
        if by_digits:
            return by_digits
    exact = [sid for sid, name in names.items() if name == wanted]
    return exact or [sid for sid, name in names.items() if name.casefold() == wanted.casefold()]


def _hashed_ids(wanted: str, names: dict[str, str]) -> list[str]:
    """Speakers known by a phone number or email (WhatsApp, iMessage), whose ids carry a hash of
    it and whose names are masked: found from the number or address as the export wrote it."""
    if not any(ch.isdigit() for ch in wanted) and "@" not in wanted:
        return []
    digest = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    return [sid for sid in names if sid.endswith((f":phone-{digest}", f":email-{digest}"))]


def candidates(speakers: Speakers, source: str | None = None) -> str:
    """The top speakers (of one source), for an error that asks who someone is: by id, or by
    name where the name is the id (in each chat: what `--me NAME` takes)."""
    counts: Counter[tuple[str, str]] = Counter()
    for sid, n in speakers.counts.items():
        if source is None or speakers.sources.get(sid) == source:
            counts[(speakers.names[sid], "" if sid in speakers.in_chat else f"{sid}, ")] += n
    top = counts.most_common(MAX_CANDIDATES)
    listed = [f"{name} ({sid}{n} messages)" for (name, sid), n in top]
    more = len(counts) - len(listed)
    return "; ".join(listed) + (f"; and {more} more" if more > 0 else "")


def _by_source(found: list[str], speakers: Speakers, what: str) -> list[str]:
    """The matches, earliest first: one per source, or several names that are ids only inside
    their chats (the one name the user gave, in each chat); else ambiguous."""
    per: dict[str, list[str]] = defaultdict(list)
    for sid in found:
        per[speakers.sources.get(sid, "")].append(sid)
    for source, sids in per.items():
        if len(sids) > 1 and not all(sid in speakers.in_chat for sid in sids):
            raise DoppelError(f"{what} matches several speakers in {source or 'the export'}; "
                              f"use an id; candidates: {candidates(speakers, source or None)}")
    return speakers.stable(found)


def _scoped(person: Person, speakers: Speakers, warnings: list[str]) -> list[str]:
    members: list[str] = []
    for source, values in person.ids.items():
        pool = {sid: name for sid, name in speakers.names.items()
                if speakers.sources.get(sid) == source}
        for value in values:
            found = _by_source(lookup(value, pool), speakers, f"--identities {source}: {value!r}")
            if not found:
                warnings.append(f"--identities: {source} {value!r} matched no speaker")
            members += found
    return members


def owner_ids(owner: str, name: str, source: str, speakers: Speakers) -> list[str]:
    """The speakers an export's owner is: their id, or (an export that knows people only by
    name, like Meta's) every speaker of that source with the owner's name inside a chat."""
    if owner in speakers.names:
        return [owner]
    named = [sid for sid in speakers.in_chat
             if speakers.sources.get(sid) == source and speakers.names[sid] == name]
    return speakers.stable(named) or [owner]


def resolve_identities(wanted_me: tuple[str, ...], people: list[Person],
                       owners: list[tuple[str, str]], speakers: Speakers) -> Identities:
    """Who is "me" (owners, --me, identities `me: true`) and which speakers are one person.

    `owners`: (speaker id, source) of each export that names its owner.
    """
    warnings: list[str] = []
    for owner, source in owners:
        speakers.sources.setdefault(owner, source)
    me_ids = [owner for owner, _source in owners]
    for wanted in wanted_me:
        found = _by_source(lookup(wanted, speakers.names), speakers, f"--me {wanted!r}")
        if not found:
            raise DoppelError(f"--me {wanted!r} matches no speaker in the selected chats; "
                              f"candidates: {candidates(speakers)}")
        me_ids += found
    groups: list[tuple[Person, list[str]]] = []
    for person in people:
        members = _scoped(person, speakers, warnings)
        if person.me:
            me_ids += members
        elif members:
            groups.append((person, members))
    _check_every_source(me_ids, speakers)
    me = me_ids[0]
    final = {sid: me for sid in me_ids}
    names = {}
    me_person = next((p for p in people if p.me and p.name), None)
    if me_person is not None:
        names[me] = me_person.name
    for person, members in groups:
        head = speakers.stable(members)[0]
        final.update({sid: head for sid in members if sid not in final})
        if person.name:
            names[head] = person.name
    return Identities(me, final, names, warnings)


def _check_every_source(me_ids: list[str], speakers: Speakers) -> None:
    """Each source with kept messages needs its "me"; the error names that source's speakers."""
    if not speakers.counts:
        raise DoppelError("no messages in the selected chats; check the export and the filters")
    mine = {speakers.sources.get(sid) for sid in me_ids}
    for source in dict.fromkeys(speakers.sources[sid] for sid in speakers.counts):
        if source not in mine:
            hint = ("its export has no account owner, e.g. a single-chat export"
                    if source == "telegram" else "its export does not say which one is you")
            raise DoppelError(
                f"cannot tell who you are in the {source} chats ({hint}); pass --me with your "
                f"name or id there (repeat --me for each app), or --identities FILE; top "
                f"speakers: {candidates(speakers, source)}")

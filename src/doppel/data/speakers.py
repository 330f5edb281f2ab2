"""Who is who: telling which speaker is "me", and giving every speaker a unique name.

Names must be unique within a dataset because chatformat uses the name as the ChatML role.
"""

from __future__ import annotations

import re
from collections import Counter

from doppel.data.dataset import repair_surrogates
from doppel.errors import DoppelError

_SPACE = re.compile(r"\s+")
_SPECIAL = re.compile(r"<\|[^|>]*\|>")  # a name must not smuggle a chat token into the template
MAX_CANDIDATES = 10


def clean_name(name: str | None, fallback: str) -> str:
    name = _SPACE.sub(" ", _SPECIAL.sub("", repair_surrogates(name or ""))).strip()
    return name or fallback


def unique_names(names: dict[str, str], order: list[str]) -> dict[str, str]:
    """Speaker id -> unique name; earlier ids in `order` keep the plain name, later get " (2)"."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for speaker_id in order:
        base = names[speaker_id]
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base} ({n})"
        taken.add(name.casefold())
        out[speaker_id] = name
    return out


def _candidates(names: dict[str, str], counts: Counter[str]) -> str:
    top = counts.most_common(MAX_CANDIDATES)
    listed = [f"{names[sid]} ({sid}, {n} messages)" for sid, n in top]
    more = len(counts) - len(listed)
    return "; ".join(listed) + (f"; and {more} more" if more > 0 else "")


def _lookup(wanted: str, names: dict[str, str]) -> list[str]:
    wanted = wanted.strip()
    if wanted in names:
        return [wanted]
    if wanted.isdigit():
        by_digits = [sid for sid in names if re.sub(r"\D", "", sid) == wanted]
        if by_digits:
            return by_digits
    exact = [sid for sid, name in names.items() if name == wanted]
    return exact or [sid for sid, name in names.items() if name.casefold() == wanted.casefold()]


def resolve_me(
    wanted: str | None, owner: tuple[str, str] | None, names: dict[str, str], counts: Counter[str]
) -> str:
    """The speaker id of the exporting person: --me (id or name) if given, else the owner."""
    if wanted:
        found = _lookup(wanted, names)
        if len(found) == 1:
            return found[0]
        problem = ("matches several speakers" if found
                   else "matches no speaker in the selected chats")
        raise DoppelError(f"--me {wanted!r} {problem}; candidates: {_candidates(names, counts)}")
    if owner:
        return owner[0]
    if not counts:
        raise DoppelError("no messages in the selected chats; check the export and the filters")
    raise DoppelError(
        "cannot tell who you are in this export (it has no account owner, e.g. a single-chat "
        f"export); pass --me with your id or name; candidates: {_candidates(names, counts)}")

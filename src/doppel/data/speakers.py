"""Speaker names: cleaned, and unique within a dataset (who is "me" is identities.py's job).

Names must be unique within a dataset because chatformat uses the name as the ChatML role.
"""

from __future__ import annotations

import re

from doppel.data.dataset import repair_surrogates

_SPACE = re.compile(r"\s+")
_SPECIAL = re.compile(r"<\|[^|>]*\|>")  # a name must not smuggle a chat token into the template


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

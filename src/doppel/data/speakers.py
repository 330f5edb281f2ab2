"""Speaker names: cleaned, and made unique labels (who is "me" is identities.py's job).

Labels must be unique within a dataset because chatformat uses the name as the ChatML role.
They only display: ids decide who may see what (sources/ids.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from doppel.data.dataset import MANIFEST, repair_surrogates

_SPACE = re.compile(r"\s+")
_SPECIAL = re.compile(r"<\|[^|>]*\|>")  # a name must not smuggle a chat token into the template


def clean_name(name: str | None, fallback: str) -> str:
    name = _SPACE.sub(" ", _SPECIAL.sub("", repair_surrogates(name or ""))).strip()
    return name or fallback


def labels(names: dict[str, str], order: list[str],
           previous: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Speaker id -> unique label, and a line for each label that moved since `previous` (the
    labels of the dataset this one replaces).

    The user (first in `order`) keeps their name; an id that recurs keeps its previous label
    while that still fits its name ("Sam (2)" stays that Sam); the others take their name, or the
    next free " (n)", in `order` (earliest message first: an order a newer export keeps).
    """
    previous = previous or {}
    taken: set[str] = set()
    out: dict[str, str] = {}
    for position, speaker_id in enumerate(order):
        old = previous.get(speaker_id)
        if old is None or not _fits(old, names[speaker_id]):
            if position:
                continue
            old = names[speaker_id]  # the user (first) keeps their plain name before anyone
        if old.casefold() not in taken:
            taken.add(old.casefold())
            out[speaker_id] = old
    for speaker_id in order:
        if speaker_id in out:
            continue
        base = names[speaker_id]
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base} ({n})"
        taken.add(name.casefold())
        out[speaker_id] = name
    return {sid: out[sid] for sid in order}, _moved(out, previous)


def _fits(label: str, name: str) -> bool:
    """Whether `label` is `name` or `name (n)`."""
    if label == name:
        return True
    rest = label.removeprefix(f"{name} (")
    return rest != label and rest.endswith(")") and rest[:-1].isdigit()


def _moved(labels: dict[str, str], previous: dict[str, str]) -> list[str]:
    """A line per person whose label changed, and per label that now names someone else."""
    holder = {label.casefold(): sid for sid, label in previous.items()}
    lines = []
    for sid, label in labels.items():
        old = previous.get(sid)
        if old is not None and old != label:
            lines.append(f"speaker {sid} is now labelled {label!r} (was {old!r} in the dataset "
                         "this one replaced)")
        before = holder.get(label.casefold())
        if before is not None and before != sid:
            lines.append(f"label {label!r} now names {sid} (in the dataset this one replaced: "
                         f"{before})")
    return lines


def previous_labels(folder: Path) -> dict[str, str]:
    """Speaker id -> label in the dataset at `folder` (what `prepare --force` replaces); {} when
    there is none or it cannot be read."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    speakers = manifest.get("speakers") if isinstance(manifest, dict) else None
    if not isinstance(speakers, dict):
        return {}
    return {sid: row["name"] for sid, row in speakers.items()
            if isinstance(row, dict) and isinstance(row.get("name"), str)}

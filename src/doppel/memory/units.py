"""Cutting conversations into memory units: a few turns in a row, so a hit carries its context.

A unit is keyed by a hash of its chat and lines, so rebuilding after a newer export reuses the
vectors of every unit already seen and embeds only what is new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from doppel.data.dataset import Conversation, Dataset
from doppel.memory.records import NewUnit

TURNS = 4  # turns (bursts by one speaker) a unit holds
MAX_LINES = 12  # messages a unit holds at most
MAX_LINE_CHARS = 400  # a longer message is cut: memories are reminders, not transcripts
Members = tuple[tuple[str, ...], tuple[str, ...]]  # person ids, sorted, and their labels


def chat_members(dataset: Dataset) -> dict[str, Members]:
    """Chat id -> (person ids, labels) of everyone with kept messages in that chat (who was
    there): from the manifest's speakers, or, where a manifest lacks their chat lists, from one
    pass over the conversations."""
    members: dict[str, dict[str, str]] = {}
    speakers = dataset.manifest.get("speakers", {})
    if speakers and all(isinstance(s.get("chats"), list) for s in speakers.values()):
        for person, speaker in speakers.items():
            for chat in speaker["chats"]:
                members.setdefault(str(chat), {})[str(person)] = speaker["name"]
    else:
        for conversation in dataset.conversations():
            members.setdefault(conversation.chat_id, {}).update(
                (m.speaker_id, m.speaker) for m in conversation.messages)
    return {chat: _members(people) for chat, people in members.items()}


def _members(people: dict[str, str]) -> Members:
    ids = tuple(sorted(people))
    return ids, tuple(people[person] for person in ids)


def conversation_units(conversation: Conversation, members: Members | None = None
                       ) -> Iterator[NewUnit]:
    """The conversation cut into runs of TURNS turns (at most MAX_LINES messages) that overlap
    by one turn, so a remark and the answer to it always share a unit."""
    if not members:
        members = _members({m.speaker_id: m.speaker for m in conversation.messages})
    turns: list[list[tuple[str, str, float]]] = []
    for message in conversation.messages:
        if not message.text.strip():
            continue
        line = (message.speaker, message.text[:MAX_LINE_CHARS], message.time)
        if turns and turns[-1][0][0] == message.speaker:
            turns[-1].append(line)
        else:
            turns.append([line])
    start = 0
    while start < len(turns):
        end = min(start + TURNS, len(turns))
        if len(turns) - end == 1:  # a lone last turn joins this unit rather than make its own
            end += 1
        lines = [line for turn in turns[start:end] for line in turn][-MAX_LINES:]
        yield _unit(conversation, members, [(s, t) for s, t, _ in lines],
                    [time for _, _, time in lines])
        if end == len(turns):
            break
        start = end - 1


def _unit(conversation: Conversation, members: Members, lines: list[tuple[str, str]],
          times: list[float]) -> NewUnit:
    return NewUnit(conversation.id, conversation.chat_id, conversation.chat_name, members[0],
                   times[0], times[-1], tuple(lines), members[1])


def dataset_units(dataset: Dataset) -> Iterator[NewUnit]:
    """Every unit of every conversation (train and val), streamed in file order."""
    members = chat_members(dataset)
    for conversation in dataset.conversations():
        yield from conversation_units(conversation, members.get(conversation.chat_id))


def unit_text(unit: NewUnit | Any) -> str:
    """What the lexical index and the embedder read: "Name: text" a line."""
    return "\n".join(f"{speaker}: {text}" for speaker, text in unit.lines)


def unit_key(unit: NewUnit) -> str:
    """Same chat, same lines: same key (and the same vector, so it is never embedded twice)."""
    payload = orjson.dumps([unit.chat_id, unit.lines])
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def batched(units: Iterable[NewUnit], size: int) -> Iterator[list[NewUnit]]:
    batch: list[NewUnit] = []
    for unit in units:
        batch.append(unit)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

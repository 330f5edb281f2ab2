"""Cutting conversations into memory units: a few turns in a row, so a hit carries its context.

A unit's text is keyed by a hash of its lines (layout.py), so rebuilding after a newer export
reuses the vectors of every text already seen and embeds only what is new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
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
    return _cut(conversation.id, conversation.chat_id, conversation.chat_name,
                [(m.speaker, m.text, m.time) for m in conversation.messages], members)


def _cut(conversation_id: str, chat_id: str, chat_name: str,
         messages: list[tuple[str, str, float]], members: Members) -> Iterator[NewUnit]:
    turns: list[list[tuple[str, str, float]]] = []
    last = None
    for speaker, text, time in messages:
        if not text or text.isspace():
            continue
        line = (speaker, text[:MAX_LINE_CHARS], time)
        if speaker == last:
            turns[-1].append(line)
        else:
            turns.append([line])
            last = speaker
    start, count = 0, len(turns)
    while start < count:
        end = min(start + TURNS, count)
        if count - end == 1:  # a lone last turn joins this unit rather than make its own
            end += 1
        lines = [line for turn in turns[start:end] for line in turn][-MAX_LINES:]
        yield NewUnit(conversation_id, chat_id, chat_name, members[0], lines[0][2],
                      lines[-1][2], tuple((s, t) for s, t, _ in lines), members[1])
        if end == count:
            break
        start = end - 1


def dataset_units(dataset: Dataset) -> Iterator[NewUnit]:
    """Every unit of every conversation (train and val), streamed in file order (read as
    plain rows: a million messages need no message objects)."""
    members = chat_members(dataset)
    for row in dataset.rows():
        chat, messages = row["chat"], row["messages"]
        people = members.get(chat["id"]) or _members(
            {m["speaker_id"]: m["speaker"] for m in messages})
        yield from _cut(row["id"], chat["id"], chat["name"],
                        [(m["speaker"], m["text"], m["time"]) for m in messages], people)


def unit_key(chat_id: str, lines: Sequence[Sequence[str]]) -> str:
    """A unit's name in a forget record (data/forgotten.py): same chat, same lines, same key."""
    return hashlib.blake2b(orjson.dumps([chat_id, lines]), digest_size=16).hexdigest()


def unit_text(unit: NewUnit | Any) -> str:
    """What the lexical index and the embedder read: "Name: text" a line."""
    return "\n".join(f"{speaker}: {text}" for speaker, text in unit.lines)


def batched(units: Iterable[NewUnit], size: int) -> Iterator[list[NewUnit]]:
    batch: list[NewUnit] = []
    for unit in units:
        batch.append(unit)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

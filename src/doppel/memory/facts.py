"""Where a dataset's recurring facts are: the probes the fact tests and the bench query with.

A probe is a message holding a rare word (a name, a place, a pet) that an earlier conversation
in the same scope also holds: retrieval, asked with that message before its conversation,
should bring back a memory holding the word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from doppel.data.dataset import Dataset
from doppel.memory.records import Memory
from doppel.memory.units import chat_members


@dataclass(frozen=True)
class Probe:
    word: str
    query: str
    conversation_id: str
    chat_name: str
    partner: str  # whose scope the probe is asked in (a person id)
    before: float  # the probe's conversation start: memory holds only what came before


def fact_probes(dataset: Dataset, words: tuple[str, ...]) -> list[Probe]:
    """One probe per later message holding one of `words` (case-insensitive, whole word) whose
    chat already held the word in an earlier conversation; asked in the scope of a partner
    of that chat who is not "me"."""
    me = dataset.me_id
    members = {chat: ids for chat, (ids, _) in chat_members(dataset).items()}
    # a word start, not a whole word: "Звенигородом" and "Звенигороде" are one place
    patterns = {w: re.compile(rf"(?<!\w){re.escape(w)}", re.I) for w in words}
    first_seen: dict[tuple[str, str], float] = {}
    probes = []
    for conversation in sorted(dataset.conversations(), key=lambda c: c.messages[0].time):
        start = conversation.messages[0].time
        asked: set[str] = set()
        for message in conversation.messages:
            for word, pattern in patterns.items():
                if not pattern.search(message.text):
                    continue
                key = (conversation.chat_id, word)
                seen = first_seen.setdefault(key, start)
                if seen < start and word not in asked:
                    partner = next(n for n in members.get(conversation.chat_id,
                                                          (message.speaker_id,)) if n != me)
                    probes.append(Probe(word, message.text, conversation.id,
                                        conversation.chat_name, partner, start))
                    asked.add(word)
    return probes


def holds(memories: list[Memory], word: str) -> bool:
    """Whether any retrieved memory holds `word` (case-insensitive)."""
    wanted = word.casefold()
    return any(wanted in text.casefold() for memory in memories for _, text in memory.lines)

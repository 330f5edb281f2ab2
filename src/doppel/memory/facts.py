"""Where a dataset's recurring facts are: the probes the fact tests and the bench query with.

A probe is a message holding a fact word (memory/fact_words.py's rule: a name, a place, a pet, a
number that recurs in one chat) that an earlier conversation in the same chat also holds:
retrieval, asked with that message before its conversation, should bring back a memory holding
the word. Words are compared by stem, as the rule compares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from doppel.data.dataset import Dataset
from doppel.memory.fact_words import fact_words, stem, stems
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


def fact_probes(dataset: Dataset, words: Iterable[str] | None = None) -> list[Probe]:
    """One probe per later message holding one of `words` (default: the dataset's fact words)
    whose chat already held the word in an earlier conversation; asked in the scope of a
    partner of that chat who is not "me"."""
    me = dataset.me_id
    members = {chat: ids for chat, (ids, _) in chat_members(dataset).items()}
    if words is None:
        wanted = {key: fact.word for key, fact in sorted(fact_words(dataset).items())}
    else:
        wanted = {stem(w): w for w in words}
    first_seen: dict[tuple[str, str], float] = {}
    probes = []
    for conversation in sorted(dataset.conversations(), key=lambda c: c.messages[0].time):
        start = conversation.messages[0].time
        asked: set[str] = set()
        for message in conversation.messages:
            held = stems(message.text)
            for key, word in wanted.items():
                if key not in held:
                    continue
                seen = first_seen.setdefault((conversation.chat_id, key), start)
                if seen < start and key not in asked:
                    partner = next(n for n in members.get(conversation.chat_id,
                                                          (message.speaker_id,)) if n != me)
                    probes.append(Probe(word, message.text, conversation.id,
                                        conversation.chat_name, partner, start))
                    asked.add(key)
    return probes


def holds(memories: list[Memory], word: str) -> bool:
    """Whether any retrieved memory holds `word` (by stem: "Звенигороде" holds "звенигород")."""
    wanted = stem(word)
    return any(wanted in stems(text) for memory in memories for _, text in memory.lines)

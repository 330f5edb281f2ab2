"""Held-out contexts: the real history before a speaker's turn, and the reply they really sent.

Generation is compared with reality at these points, so they are chosen deterministically (seeded)
and balanced across the evaluated speakers: a chatty friend cannot crowd out the exporting user.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from doppel.chatformat import ChatTurn, group_turns
from doppel.data.dataset import Dataset


@dataclass(frozen=True, slots=True)
class Context:
    conversation_id: str
    history: tuple[tuple[str, str], ...]  # (speaker, text) messages before the reply, oldest first
    respondent: str
    reply: tuple[str, ...]  # the messages of the respondent's real turn


def conversation_turns(dataset: Dataset, split: str) -> list[tuple[str, list[ChatTurn]]]:
    """(conversation id, turns) for every conversation of a split."""
    return [
        (c.id, group_turns((m.speaker, m.text) for m in c.messages))
        for c in dataset.conversations(split)
    ]


def speaker_turns(
    dataset: Dataset, split: str, speakers: set[str]
) -> dict[str, list[tuple[str, ...]]]:
    """Every turn (its messages) of each speaker in a split."""
    found: dict[str, list[tuple[str, ...]]] = {s: [] for s in speakers}
    for _, turns in conversation_turns(dataset, split):
        for turn in turns:
            if turn.speaker in found:
                found[turn.speaker].append(turn.messages)
    return found


def top_friends(dataset: Dataset, candidates: list[str], count: int) -> list[str]:
    """Among candidates, the `count` speakers other than the user with the most messages."""
    speakers = dataset.manifest["speakers"].values()
    messages = Counter({s["name"]: s.get("messages", 0) for s in speakers})
    friends = [name for name in candidates if name != dataset.me_name]
    friends.sort(key=lambda name: (-messages[name], name))
    return friends[:count]


def build_contexts(
    dataset: Dataset, speakers: list[str], max_contexts: int, history_turns: int, seed: int,
    split: str = "val",
) -> list[Context]:
    """Up to max_contexts held-out points where one of `speakers` replies after someone else
    (points of the train split for `split="train"`: the preference stage's pairs).

    Each speaker's candidates are shuffled with the seed, then taken round-robin, so every
    speaker gets an equal share unless it runs out of held-out turns.
    """
    candidates: dict[str, list[Context]] = {s: [] for s in speakers}
    for conversation_id, turns in conversation_turns(dataset, split):
        for index in range(1, len(turns)):
            turn = turns[index]
            if turn.speaker not in candidates:
                continue
            before = turns[max(0, index - history_turns):index]
            history = tuple((t.speaker, text) for t in before for text in t.messages)
            context = Context(conversation_id, history, turn.speaker, turn.messages)
            candidates[turn.speaker].append(context)
    rng = random.Random(seed)
    for speaker in speakers:
        rng.shuffle(candidates[speaker])
    chosen: list[Context] = []
    depth = 0
    while len(chosen) < max_contexts and any(depth < len(c) for c in candidates.values()):
        for speaker in speakers:
            if depth < len(candidates[speaker]) and len(chosen) < max_contexts:
                chosen.append(candidates[speaker][depth])
        depth += 1
    return chosen

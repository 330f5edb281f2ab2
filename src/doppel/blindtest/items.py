"""Which held-out turns each judge is shown: only from conversations the judge wrote in.

A friend judges the twin on chats they were part of (they know how the persona talks to them),
and nobody is shown a chat they were not in; the owner (judge "me") may see any. The persona's
turns in the dataset's held-out split are the candidates, shuffled with the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from doppel.chatformat import group_turns
from doppel.data.dataset import Dataset
from doppel.errors import DoppelError

OWNER = "me"  # the judge name that stands for the exporting user


@dataclass(frozen=True)
class Point:
    """A held-out turn of the persona: the chat before it (at most history_turns turns) and the
    messages the persona really sent."""

    conversation: str
    turn: int
    history: tuple[tuple[str, str], ...]
    reply: tuple[str, ...]


def judge_name(dataset: Dataset, name: str) -> str:
    """A judge as the dataset names them ("me" is the exporting user, a unique first name the
    full name); an unknown one is an error that lists the names it knows."""
    if name.strip().lower() == OWNER:
        return dataset.me_name
    known = sorted(set(dataset.speakers.values()))
    if name in known:
        return name
    first = [k for k in known if (k.split() or [""])[0].casefold() == name.strip().casefold()]
    if len(first) != 1:  # "Sam" is "Sam Carter" when only one Sam is in the data
        raise DoppelError(f"unknown judge {name!r}: not a speaker in {dataset.path}; judges are "
                          f"{OWNER!r} or one of: {', '.join(known)}")
    return first[0]


def held_out_points(dataset: Dataset, persona: str, judge: str, history_turns: int
                    ) -> list[Point]:
    """The persona's held-out turns (after someone else's) in conversations `judge` wrote in;
    every one when the judge is the exporting user."""
    owner = judge == dataset.me_name
    points = []
    for conversation in dataset.conversations("val"):
        speakers = {m.speaker for m in conversation.messages}
        if not owner and judge not in speakers:
            continue
        turns = group_turns((m.speaker, m.text) for m in conversation.messages)
        for index, turn in enumerate(turns):
            if index == 0 or turn.speaker != persona:
                continue
            before = turns[max(0, index - history_turns):index]
            history = tuple((t.speaker, text) for t in before for text in t.messages)
            points.append(Point(conversation.id, index, history, tuple(turn.messages)))
    return points


def choose(dataset: Dataset, persona: str, judge: str, count: int, history_turns: int,
           seed: int) -> list[Point]:
    """`count` of the judge's points, a seeded choice; too few is an error that says how many."""
    points = held_out_points(dataset, persona, judge, history_turns)
    if len(points) < count:
        where = "the held-out chats" if judge == dataset.me_name else f"held-out chats {judge} " \
            "wrote in"
        raise DoppelError(f"judge {judge}: {persona} has {len(points)} held-out turns in {where}, "
                          f"fewer than --items {count}; pass --items {len(points)} or fewer"
                          if points else
                          f"judge {judge}: {persona} has no held-out turns in {where}; choose "
                          "another judge (or prepare the dataset with a larger --val-fraction)")
    rng = random.Random(f"{seed}:{judge}")
    return rng.sample(points, count)

"""Which held-out turns each judge is shown: only from conversations the judge wrote in.

A friend judges the twin on chats they were part of (they know how the persona talks to them),
and nobody is shown a chat they were not in; the owner (judge "me") may see any. Judges are
named by data/people.py's rule and chosen for by person id, so two friends called Sam never see
each other's chats. The persona's turns in the dataset's held-out split are the candidates,
shuffled with the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from doppel.chatformat import group_turns
from doppel.data.dataset import Dataset
from doppel.data.people import People, fold
from doppel.errors import DoppelError
from doppel.memory.scope import Scope

OWNER = "me"  # the judge name that stands for the exporting user


@dataclass(frozen=True)
class Point:
    """A held-out turn of the persona: the chat before it (at most history_turns turns) and the
    messages the persona really sent."""

    conversation: str
    turn: int
    history: tuple[tuple[str, str], ...]
    reply: tuple[str, ...]


def judge_person(dataset: Dataset, name: str) -> str:
    """A judge's person id ("me" is the exporting user; else an id, the name, a unique first
    name...: data/people.py's rule); nobody or several is an error that names candidates."""
    people = People.of_manifest(dataset.manifest)
    found = people.matches(name)
    if fold(name) == OWNER:  # the owner, who sees every chat: never a friend labelled "Me"
        others = [person for person in found if person != dataset.me_id]
        if others:
            listed = ", ".join(f"{people.label(person)} [{person}]" for person in others)
            raise DoppelError(f"judge {name!r} names both the exporting user ({OWNER!r}, who "
                              f"sees every chat) and {listed}; give that friend's id, or your "
                              "own name for yourself")
        return dataset.me_id
    if len(found) != 1:
        raise DoppelError(f"{people.problem(name, 'judge', found)}; or {OWNER!r}, the exporting "
                          "user")
    return found[0]


def held_out_points(dataset: Dataset, persona: str, judge: str, history_turns: int
                    ) -> list[Point]:
    """The persona's held-out turns (after someone else's) in conversations `judge` (a person
    id) wrote in; every one when the judge is the exporting user."""
    scope = Scope.everything() if judge == dataset.me_id else Scope.with_partner(judge)
    points = []
    for conversation in dataset.conversations("val"):
        if not scope.allows({m.speaker_id for m in conversation.messages}):
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
    """`count` of the judge's (a person id) points, a seeded choice; too few is an error that
    says how many."""
    points = held_out_points(dataset, persona, judge, history_turns)
    name = dataset.speakers.get(judge, judge)
    if len(points) < count:
        where = "the held-out chats" if judge == dataset.me_id else f"held-out chats {name} " \
            "wrote in"
        raise DoppelError(f"judge {name}: {persona} has {len(points)} held-out turns in {where}, "
                          f"fewer than --items {count}; pass --items {len(points)} or fewer"
                          if points else
                          f"judge {name}: {persona} has no held-out turns in {where}; choose "
                          "another judge (or prepare the dataset with a larger --val-fraction)")
    rng = random.Random(f"{seed}:{judge}")
    return rng.sample(points, count)

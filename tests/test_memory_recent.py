"""What we talked about last: a friend's "how's the dog?" names no word the memory holds, yet the
latest conversations in that friend's scope are always among the candidates, so the dog's name
comes back; and only ever from chats that friend was in (the scope rule, by person id)."""

from __future__ import annotations

from pathlib import Path

import pytest

from doppel.memory import Scope, build_index, open_index
from doppel.memory.facts import holds
from memory_builders import ALEX, JO, SAM, SECRET, write_memory_dataset

# Sam's latest conversation names his dog; Jo's latest names her own (the same name: only the
# scope tells them apart); neither says "dog"
LATEST = {14: ("user3", [(JO, "Biscuit the beagle chewed the sofa, he is in big trouble"),
                         (ALEX, "oh no, naughty Biscuit")]),
          15: ("user2", [(SAM, "took Biscuit to the beach, he would not leave the water"),
                         (ALEX, "haha Biscuit the swimmer")])}
QUESTION = "how's the dog?"
NEWS = "any news?"  # no word and no vector leads anywhere: only being the latest does


@pytest.fixture(scope="module")
def latest(tmp_path_factory) -> Path:
    path = write_memory_dataset(tmp_path_factory.mktemp("latest") / "dataset", planted=LATEST)
    build_index(path, progress=False)
    return path


def found(path: Path, person: str, question: str = QUESTION) -> list:
    with open_index(path) as memory:
        return memory.search(question, Scope.with_partner(person), k=3)


def test_the_latest_conversation_in_scope_answers_a_question_that_names_nothing(latest):
    sams = found(latest, SAM[0])
    assert holds(sams, "beach"), [m.lines for m in sams]
    assert all(SAM[0] in m.participants for m in sams)
    assert not holds(sams, "sofa")
    jos = found(latest, JO[0])
    assert holds(jos, "sofa"), [m.lines for m in jos]
    assert not holds(jos, "beach") and not holds(jos, SECRET)  # Sam's dog and secret: not Jo's


def test_any_news_is_what_was_said_last_and_nothing_without_the_idea(latest, monkeypatch):
    from doppel.memory import search

    assert holds(found(latest, SAM[0], NEWS), "beach")
    assert not holds(found(latest, SAM[0], NEWS), "sofa")
    monkeypatch.setattr(search, "RECENT_CONVERSATIONS", 0)
    assert not holds(found(latest, SAM[0], NEWS), "beach")


def test_the_latest_are_the_latest_before_the_turn(latest):
    """At eval time (`before` the conversation) a later conversation is never "the latest"."""
    with open_index(latest) as memory:
        beach = memory.search("Biscuit beach water", Scope.with_partner(SAM[0]), k=1)[0]
        earlier = memory.search(QUESTION, Scope.with_partner(SAM[0]), k=3, before=beach.start)
    assert earlier and not holds(earlier, "beach")
    assert all(m.end < beach.start for m in earlier)
    assert ALEX[1] in {s for m in earlier for s, _ in m.lines}


@pytest.mark.parametrize("share", [1.0, 0.05, 0.0005, 0.0])
def test_the_latest_rows_walk_back_in_blocks_to_what_a_full_sort_finds(share):
    """_latest_rows reads the time order from its end a block at a time (a scope of every chat
    costs one block at a million units); any scope, wide or narrow, gets a full sort's answer."""
    import numpy as np

    from doppel.memory.search import RECENT_LOOKBACK, Searcher

    rng = np.random.default_rng(7)
    searcher = Searcher(None, None)  # type: ignore[arg-type]  # arrays only, no SQLite
    searcher.units = 50_000
    searcher.ends = rng.uniform(0, 1e9, searcher.units)
    mask = rng.uniform(size=searcher.units) < share
    allowed = np.flatnonzero(mask)
    expected = allowed[np.argsort(-searcher.ends[allowed])][:RECENT_LOOKBACK]
    assert searcher._latest_rows(mask).tolist() == expected.tolist()

"""The authorship classifier and the held-out contexts it is applied to."""

from __future__ import annotations

import random

import pytest

from builders import ALEX_LINES, SAM_LINES, write_dataset
from doppel.data.dataset import load_dataset
from doppel.eval.attribution import ceiling, train_attributor
from doppel.eval.contexts import build_contexts, top_friends


def _bursts(lines: list[str], count: int, seed: int) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    return [tuple(rng.choice(lines) for _ in range(rng.randint(1, 3))) for _ in range(count)]


def test_classifier_separates_obviously_different_speakers():
    train = {"Alex": _bursts(ALEX_LINES[:8], 60, 0), "Sam": _bursts(SAM_LINES[:5], 60, 1)}
    attributor = train_attributor(train)
    assert attributor is not None and attributor.classes == ["Alex", "Sam"]
    held_out = {"Alex": [(line,) for line in ALEX_LINES[8:]],
                "Sam": [(line,) for line in SAM_LINES[5:]]}
    found = ceiling(attributor, held_out)
    assert found.accuracy >= 0.8
    assert found.turns == len(ALEX_LINES[8:]) + len(SAM_LINES[5:])
    assert attributor.share([("lol ok 😂",), ("nah lmao",)], "Alex") == 1.0
    assert attributor.share([("Good evening. I would appreciate your help.",)], "Sam") == 1.0


def test_empty_replies_count_as_misses_and_one_speaker_is_no_classifier():
    attributor = train_attributor({"Alex": _bursts(ALEX_LINES, 30, 0),
                                   "Sam": _bursts(SAM_LINES, 30, 1)})
    assert attributor.predict([(), ("lol",)])[0] is None
    assert attributor.share([(), ("lol",)], "Alex") == 0.5
    assert attributor.share([], "Alex") is None
    assert train_attributor({"Alex": _bursts(ALEX_LINES, 30, 0), "Sam": [("hi",)]}) is None


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset(write_dataset(tmp_path_factory.mktemp("data") / "d", conversations=40))


def test_contexts_are_balanced_real_and_seeded(dataset):
    contexts = build_contexts(dataset, ["Alex", "Sam"], max_contexts=10, history_turns=4, seed=0)
    assert [c.respondent for c in contexts].count("Alex") == 5
    assert [c.respondent for c in contexts].count("Sam") == 5
    val = {c.id: c for c in dataset.conversations("val")}
    for context in contexts:
        texts = [(m.speaker, m.text) for m in val[context.conversation_id].messages]
        whole = [*context.history, *((context.respondent, t) for t in context.reply)]
        assert any(texts[i:i + len(whole)] == whole for i in range(len(texts)))  # a real stretch
        assert context.history[-1][0] != context.respondent  # the reply begins a turn
    assert build_contexts(dataset, ["Alex", "Sam"], 10, 4, seed=0) == contexts
    assert build_contexts(dataset, ["Alex", "Sam"], 10, 4, seed=1) != contexts


def test_contexts_take_what_there_is_and_friends_rank_by_messages(dataset):
    everything = build_contexts(dataset, ["Alex"], max_contexts=10_000, history_turns=4, seed=0)
    turns = sum(
        1 for c in dataset.conversations("val") for i, m in enumerate(c.messages)
        if i and m.speaker == "Alex" and c.messages[i - 1].speaker != "Alex"
    )
    assert len(everything) == turns
    assert top_friends(dataset, ["Alex", "Sam"], 3) == ["Sam"]

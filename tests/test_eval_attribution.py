"""The authorship classifier and the held-out contexts it is applied to."""

from __future__ import annotations

import random

import pytest

from builders import ALEX_LINES, SAM_LINES, write_dataset
from doppel.data.dataset import load_dataset
from doppel.eval.attribution import ceiling, informative, not_informative_note, train_attributor
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


# Three speakers who share every word and every character: each only pairs the same words
# differently (Ann says "very good" and "not bad", Ben "very bad" and "not good"...), the word
# choice character n-grams within words cannot see.
PHRASES = {"Ann": ["very good", "not bad", "so late", "too early"],
           "Ben": ["very bad", "not good", "so early", "too late"],
           "Cat": ["very late", "not early", "so good", "too bad"]}
FILLER = ["it", "was", "the", "day", "and", "then", "we", "went", "home", "ok", "yeah", "well"]


def _phrased(speaker: str, count: int, rng: random.Random) -> list[tuple[str, ...]]:
    turns = []
    for _ in range(count):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        words.insert(rng.randint(0, len(words)), rng.choice(PHRASES[speaker]))
        turns.append((" ".join(words),))
    return turns


def _split(make, speakers, rng) -> tuple[dict, dict]:
    return ({s: make(s, 150, rng) for s in speakers}, {s: make(s, 60, rng) for s in speakers})


def test_word_choice_is_seen_by_word_and_char_ngrams_not_by_chars_alone():
    train, held_out = _split(_phrased, PHRASES, random.Random(0))
    both = ceiling(train_attributor(train), held_out)
    chars = ceiling(train_attributor(train, features="char"), held_out)
    assert chars.features == "char" and both.features == "word+char"
    assert both.accuracy >= 0.9
    assert both.accuracy >= chars.accuracy + 0.25
    assert both.informative and informative(both)
    assert both.interval[0] <= both.accuracy <= both.interval[1]


def test_speakers_of_one_distribution_are_not_informative():
    pool = [p for phrases in PHRASES.values() for p in phrases]

    def alike(speaker: str, count: int, rng: random.Random) -> list[tuple[str, ...]]:
        return [(" ".join([rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
                          + [rng.choice(pool)]),) for _ in range(count)]

    train, held_out = _split(alike, PHRASES, random.Random(1))
    found = ceiling(train_attributor(train), held_out)
    assert found.informative is False and not informative(found)
    assert found.accuracy < 0.6  # about chance (1/3), nowhere near what the test above reaches
    assert "too alike to tell generated replies apart" in not_informative_note(found)

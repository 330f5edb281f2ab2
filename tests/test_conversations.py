"""Cutting chats into conversations: real time gaps, boundaries, bursts, the auto gap, splits."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from doppel.data.conversations import (
    ChatOutline,
    Segmenter,
    join_segments,
    lone_speaker,
    split_of,
    validation_count,
)
from doppel.data.gaps import FALLBACK_GAP_S, GapHistogram
from doppel.data.options import AUTO_GAP_MAX_S, AUTO_GAP_MIN_S, PrepareOptions, parse_duration
from doppel.data.speakers import labels
from doppel.errors import DoppelError

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


def cut(times: list[float], gap_s: float, cut_s: float | None = None,
        boundaries_after: frozenset[int] = frozenset()) -> list[list[float]]:
    """Run rows through the two-step cutter as the pipeline does; the times per conversation."""
    segmenter = Segmenter(0, cut_s or gap_s)
    segments = []
    for index, t in enumerate(times):
        closed = segmenter.add(("a" if index % 2 else "b", t, f"m{index}"))
        segments.append(closed)
        if index in boundaries_after:
            segments.append(segmenter.boundary())
    segments.append(segmenter.finish())
    conversations = list(join_segments([s for s in segments if s is not None], gap_s))
    return [[row[1] for row in c] for c in conversations]


def test_a_day_apart_splits_and_five_minutes_apart_does_not():
    t = 1_700_000_000.0
    assert cut([t, t + 5 * MIN], gap_s=HOUR) == [[t, t + 5 * MIN]]
    assert cut([t, t + DAY], gap_s=HOUR) == [[t], [t + DAY]]


def test_segments_cut_short_are_joined_again_by_the_chosen_gap():
    t = 1_700_000_000.0
    times = [t, t + 30 * MIN, t + 60 * MIN, t + 60 * MIN + DAY]
    # read with the shortest automatic cut (20 min), then joined with a 2 h gap
    assert cut(times, gap_s=2 * HOUR, cut_s=AUTO_GAP_MIN_S) == [times[:3], times[3:]]
    assert cut(times, gap_s=AUTO_GAP_MIN_S) == [[x] for x in times]


def test_gaps_are_real_durations_across_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")  # clocks jump 02:00 -> 03:00 on 2023-03-26
    before = datetime(2023, 3, 26, 1, 55, tzinfo=berlin).timestamp()
    after = datetime(2023, 3, 26, 3, 5, tzinfo=berlin).timestamp()  # 70 min on the wall, 10 real
    assert after - before == 10 * MIN
    assert cut([before, after], gap_s=30 * MIN) == [[before, after]]


def test_boundaries_always_split_and_bursts_stay_separate_messages():
    t = 1_700_000_000.0
    times = [t, t + 10, t + 20, t + 30, t + 40]
    assert cut(times, gap_s=HOUR, boundaries_after=frozenset({1})) == [times[:2], times[2:]]
    segmenter = Segmenter(0, HOUR)
    for i, text in enumerate(["hey", "u there?", "hello??"]):
        segmenter.add(("user1", t + i, text))
    segmenter.add(("user2", t + 10, "yes"))
    (conversation,) = join_segments([segmenter.finish()], HOUR)
    assert [row[2] for row in conversation] == ["hey", "u there?", "hello??", "yes"]
    assert lone_speaker(conversation) is None
    assert lone_speaker(conversation[:3]) == "user1"


def test_outline_knows_the_monologues_before_joining():
    t = 1_700_000_000.0
    # (speaker, pause before): a lone "a", then a / a 30 min later (one speaker, joined by a 2 h
    # gap), then b answering an hour later, then a call and a lone "b"
    script = [("a", 0), ("a", DAY), ("a", 30 * MIN), ("b", HOUR), ("b", "call")]
    segmenter, outline, segments = Segmenter(0, AUTO_GAP_MIN_S), ChatOutline(), []
    for speaker, pause in script:
        if pause == "call":
            closed = segmenter.boundary()
            if closed:
                segments.append(closed)
            pause = 10.0
        t += pause
        closed = segmenter.add((speaker, t, "x"))
        if closed:
            segments.append(closed)
    segments.append(segmenter.finish())
    for segment in segments:
        outline.add(segment)
    joined = list(join_segments(segments, 2 * HOUR))
    assert [len(c) for c in joined] == [1, 3, 1]
    assert outline.monologues(2 * HOUR) == [True, False, True]
    assert outline.monologues(AUTO_GAP_MIN_S) == [True, True, True, True, True]


def _bimodal(seed: int = 0, n: int = 2000) -> GapHistogram:
    """Pauses of chatting people: mostly seconds-minutes, sometimes half a day or more."""
    rng = random.Random(seed)
    histogram = GapHistogram()
    for _ in range(n):
        within = rng.random() < 0.8
        histogram.add(10 ** rng.gauss(1.6, 0.5) if within else 10 ** rng.gauss(4.7, 0.35))
    return histogram


def test_auto_gap_sits_in_the_valley_between_the_two_humps():
    choice = _bimodal().choose()
    # the mixture's density is lowest near 10^3.5 s (~50 min); sampling noise moves it a little
    assert 25 * MIN <= choice.seconds <= 2 * HOUR
    assert "valley" in choice.reason and "clamped" not in choice.reason
    assert choice.seconds % 60 == 0  # whole minutes


def test_auto_gap_is_clamped_and_falls_back_when_data_is_thin():
    late = GapHistogram()
    # people who pause for hours inside a conversation and for weeks between conversations
    for pause, count in ((10.0, 100), (100.0, 80), (HOUR, 40), (5 * HOUR, 20), (10 * HOUR, 10),
                         (30 * DAY, 100)):
        for _ in range(count):
            late.add(pause)
    choice = late.choose()
    assert choice.seconds == AUTO_GAP_MAX_S and "clamped" in choice.reason
    thin = GapHistogram()
    for _ in range(5):
        thin.add(30.0)
    choice = thin.choose()
    assert choice.seconds == FALLBACK_GAP_S and "too few" in choice.reason


def test_fixed_gap_parsing():
    assert parse_duration("30m") == 30 * MIN
    assert parse_duration("1h30m") == 90 * MIN
    assert parse_duration("1d") == DAY
    assert PrepareOptions(gap="6h").gap_seconds == 6 * HOUR
    assert PrepareOptions().gap_seconds is None
    for bad in ("30", "soon", "0m", "5x"):
        with pytest.raises(DoppelError, match="--gap"):
            PrepareOptions(gap=bad)


@pytest.mark.parametrize(("conversations", "fraction", "expected"), [
    (1, 0.1, 0), (4, 0.1, 0), (5, 0.1, 1), (20, 0.1, 2), (25, 0.1, 3), (100, 0.0, 0),
    (10, 0.25, 3), (2, 0.5, 1),
])
def test_validation_count(conversations, fraction, expected):
    assert validation_count(conversations, fraction) == expected


def test_val_is_the_latest_conversations_of_the_chat():
    assert [split_of(i, 20, 0.1) for i in range(20)] == ["train"] * 18 + ["val"] * 2
    assert [split_of(i, 4, 0.1) for i in range(4)] == ["train"] * 4


def test_speaker_names_are_unique_and_earlier_speakers_keep_theirs():
    names = {"user1": "Alex", "user2": "Alex", "user3": "alex", "user4": "Sam"}
    unique, moved = labels(names, ["user1", "user4", "user2", "user3"])
    assert unique == {"user1": "Alex", "user4": "Sam", "user2": "Alex (2)", "user3": "alex (3)"}
    assert moved == []


def test_labels_of_a_replaced_dataset_stay_with_their_ids():
    names = {"user1": "Alex", "user2": "Sam", "user3": "Sam", "user5": "Sam"}
    previous = {"user1": "Alex", "user2": "Sam (2)", "user3": "Sam", "user4": "Sam (3)"}
    unique, moved = labels(names, ["user1", "user2", "user3", "user5"], previous)
    assert unique == {"user1": "Alex", "user2": "Sam (2)", "user3": "Sam", "user5": "Sam (3)"}
    assert moved == ["label 'Sam (3)' now names user5 (in the dataset this one replaced: user4)"]
    # the user keeps their plain name even when another id held it before
    mine, _ = labels({"user9": "Sam", "user3": "Sam"}, ["user9", "user3"], previous)
    assert mine == {"user9": "Sam", "user3": "Sam (2)"}
    renamed, moved = labels({"user1": "Alex", "user2": "Samuel"}, ["user1", "user2"], previous)
    assert renamed["user2"] == "Samuel" and moved == [
        "speaker user2 is now labelled 'Samuel' (was 'Sam (2)' in the dataset this one replaced)"]

"""Style metrics and the main-language guess, on strings whose answers are known."""

from __future__ import annotations

import math

import pytest

from doppel.eval import style
from doppel.eval.language import main_language


def test_reply_features_of_a_casual_burst():
    features = style.reply_features(["hey lol 😂😂", "ok"], vocab={"hey", "ok"})
    assert features["chars"] == pytest.approx((10 + 2) / 2)
    assert features["words"] == pytest.approx((2 + 1) / 2)
    assert features["messages"] == 2
    assert features["emoji"] == pytest.approx(0.5)  # one of two messages has emoji
    assert features["lowercase"] == 1.0
    assert features["punctuation"] == 0.0
    assert features["non_latin"] == 0.0
    assert features["vocab"] == pytest.approx(2 / 3)  # "lol" is new to this speaker


def test_reply_features_of_formal_and_cyrillic_text():
    formal = style.reply_features(["Hello, World."])
    assert formal["lowercase"] == 0.0
    assert formal["punctuation"] == 2
    assert formal["emoji"] == 0.0
    assert formal["vocab"] is None  # no vocabulary given
    mixed = style.reply_features(["Привет, как дела?", "ok"])
    assert mixed["non_latin"] == pytest.approx(13 / 15)  # 13 Cyrillic letters, 2 Latin
    assert style.reply_features(["👍"])["lowercase"] is None  # no letters: not lower, not upper


def test_words_keep_inner_apostrophes_and_drop_numbers():
    assert style.words("What's up, 2 of U?") == ["what's", "up", "of", "u"]


def test_distance_is_zero_for_the_same_style_and_grows_for_another():
    casual = [["heyy", "lol 😂"], ["omw"], ["haha ok", "ngl thats wild"]]
    formal = [["Hello, Alex. How are you doing today?"], ["I would like to discuss the plan."]]
    real = style.profile(casual)
    same, _ = style.distance(style.profile(casual), real)
    other, per_feature = style.distance(style.profile(formal), real)
    assert same == 0.0
    assert other > 0.5
    assert per_feature["lowercase"] == 1.0  # every real message is lowercase, no generated one
    assert per_feature["words"] == pytest.approx(math.log2((7 + 1) / (1.5 + 1)))  # 7 vs 1.5 words
    assert per_feature["emoji"] == pytest.approx(1 / 6)  # (1/2 + 0 + 0) / 3 replies
    assert max(per_feature.values()) <= style.DISTANCE_CAP


def test_counts_compare_as_ratios_and_are_capped():
    assert style.feature_distance("chars", 19.0, 9.0) == pytest.approx(1.0)  # twice as long
    assert style.feature_distance("chars", 4.0, 9.0) == pytest.approx(1.0)  # half as long
    assert style.feature_distance("words", 1000.0, 1.0) == style.DISTANCE_CAP
    assert style.feature_distance("lowercase", 0.25, 1.0) == pytest.approx(0.75)


def test_profile_skips_features_that_never_apply():
    profile = style.profile([["👍"], ["🙂"]])
    assert profile["emoji"] == 1.0
    assert profile["lowercase"] is None and profile["non_latin"] is None


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        (["hey what is up", "i think that the plan is fine"], "en"),
        (["привет, как дела?", "что делаешь сегодня"], "ru"),
        (["привіт, як справи?", "що ти робиш сьогодні, їси?"], "uk"),
        (["ich weiß nicht, das ist gut", "und du?"], "de"),
        (["👍", "123"], "en"),
    ],
)
def test_main_language(texts, language):
    assert main_language(texts) == language


def test_each_feature_mean_has_an_interval_around_it():
    from doppel.eval.style import feature_intervals, profile

    replies = [("hey 😂",), ("Good evening. How are you?", "fine"), ("lol",), ("ok!!",)] * 5
    spread = feature_intervals(replies, None, seed=0)
    means = profile(replies)
    for feature in ("chars", "emoji", "messages"):
        low, high = spread[feature]
        assert low <= means[feature] <= high and low < high
    assert spread["vocab"] is None  # no vocabulary: the feature applies to no reply
    assert feature_intervals(replies, None, seed=0) == spread

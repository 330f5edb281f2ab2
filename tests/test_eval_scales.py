"""Every score between a floor and a ceiling: the person against their own other real messages
(ceiling) and against other speakers' (floor), for style distance and attribution; chance for the
ranking test; and how much of the gap from the base model to the ceiling a run closed."""

from __future__ import annotations

import random

import pytest

from builders import ALEX_LINES, SAM_LINES
from doppel.eval.attribution import ceiling, train_attributor
from doppel.eval.metric import Scale
from doppel.eval.metrics.style import bounds
from doppel.eval.style import distance, profile


def _bursts(lines: list[str], count: int, seed: int) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    return [tuple(rng.choice(lines) for _ in range(rng.randint(1, 3))) for _ in range(count)]


def test_a_person_is_closer_to_their_own_other_messages_than_to_anyone_else():
    held_out = {"Alex": _bursts(ALEX_LINES, 40, 0), "Sam": _bursts(SAM_LINES, 40, 1)}
    replies = held_out["Alex"][:12]  # the contexts' real replies: never their own ceiling
    real = profile(replies)
    top, bottom = bounds("Alex", replies, held_out, None, real, seed=0)
    assert top is not None and bottom is not None and top < bottom
    assert bounds("Alex", replies, held_out, None, real, seed=0) == (top, bottom)  # seeded
    # drawn from the turns that are not the replies themselves (those would read as 0)
    only_replies = {"Alex": list(replies), "Sam": held_out["Sam"]}
    top, bottom = bounds("Alex", replies, only_replies, None, real, seed=0)
    assert top is None and bottom is not None
    # too few turns to draw: no bound rather than a noisy one
    assert bounds("Alex", replies[:2], {"Alex": replies[:4], "Sam": []}, None,
                  profile(replies[:2]), 0) == (None, None)
    assert distance(profile(held_out["Sam"][:12]), real)[0] > 0


def test_attribution_floor_is_the_share_of_other_speakers_real_turns_given_to_a_speaker():
    train = {"Alex": _bursts(ALEX_LINES[:8], 60, 0), "Sam": _bursts(SAM_LINES[:5], 60, 1)}
    attributor = train_attributor(train)
    held_out = {"Alex": [(line,) for line in ALEX_LINES[8:]],
                "Sam": [(line,) for line in SAM_LINES[5:]]}
    found = ceiling(attributor, held_out)
    sam_as_alex = attributor.predict(held_out["Sam"]).count("Alex") / len(held_out["Sam"])
    assert found.per_speaker_floor["Alex"] == pytest.approx(sam_as_alex)
    assert found.per_speaker_floor["Alex"] < found.per_speaker["Alex"]  # floor below ceiling
    # two speakers: one's floor is the other's misses
    assert found.per_speaker_floor["Sam"] == pytest.approx(1 - found.per_speaker["Alex"])


def test_the_gap_closed_runs_from_the_base_model_to_the_ceiling_either_way():
    assert Scale(0.1, 0.2, 0.6, 0.7).gap_closed == pytest.approx(0.8)
    # distances: lower is better, the ceiling is the smallest
    assert Scale(1.5, 1.2, 0.6, 0.4, lower_is_better=True).gap_closed == pytest.approx(0.75)
    assert Scale(1.5, 1.2, 1.4, 0.4, lower_is_better=True).gap_closed == pytest.approx(-0.25)
    # no ceiling, or a base already at or past it: nothing to close
    assert Scale(0.1, 0.2, 0.6, None).gap_closed is None
    assert Scale(1.5, 0.3, 0.6, 0.4, lower_is_better=True).gap_closed is None
    assert Scale(0.1, 0.7, 0.8, 0.7).gap_closed is None

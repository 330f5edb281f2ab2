"""The automatic blind test (eval/discriminator.py, eval/metrics/discriminator.py): a cross-fitted
discriminator spots a bad twin's replies among the sample export's real ones and reads real
replies against other real replies as a coin flip; it says what gave the twin away; the report
shows it between its floor (the base model) and 50%; and a run still worse than its floor is
said to be so, in the plain paragraph, the table and the bar."""

from __future__ import annotations

import json
import random

import pytest

from builders import write_dataset, write_tiny_model
from conftest import write_adapter_run
from doppel.eval.bootstrap import Intervals, interval, mean_of
from doppel.eval.contexts import build_contexts, speaker_turns
from doppel.eval.discriminator import MIN_PAIRS, describe, giveaways, halves, judge
from doppel.eval.options import EvalOptions, EvalSampling
from doppel.eval.report import write_report
from doppel.eval.results import (
    Ceiling,
    DatasetInfo,
    Discrimination,
    DiscriminatorRow,
    EvalResults,
    Giveaway,
    Perplexity,
    PerplexityRow,
    RankingRow,
    RunResult,
    StyleRow,
    Transcripts,
)
from doppel.eval.store import read_results
from doppel.eval.style import FEATURES

ASSISTANT = ("I'm sorry, but I can't help with that. Is there anything else I can do for you?",)


def _pairs(dataset, speakers: list[str], count: int):
    contexts = build_contexts(dataset, speakers, count, 8, seed=0)
    return ([c.reply for c in contexts], [c.conversation_id for c in contexts],
            [c.respondent for c in contexts])


def _share(judged) -> float:
    return sum(judged.picks) / len(judged.picks)


def test_a_twin_that_always_says_the_same_thing_is_spotted_and_says_why(sample_dataset):
    speakers = sorted(set(sample_dataset.speakers.values()))
    real, groups, _ = _pairs(sample_dataset, speakers, 96)
    judged = judge(real, [ASSISTANT] * len(real), groups, seed=0)
    assert judged.halves == "conversations" and _share(judged) >= 0.9
    found = giveaways(judged, range(len(real)))
    assert found and all(g.weight > 0 for g in found)
    # the assistant's long, capitalised sentences: its words or its habits gave it away
    assert any(g.more_in == "twin" and g.feature in ("habits__chars", "habits__words",
                                                     "words__sorry", "words__help")
               for g in found[:5])
    # seeded: the same pairs, the same verdicts
    assert judge(real, [ASSISTANT] * len(real), groups, seed=0).picks == judged.picks


def test_other_friends_real_replies_in_the_users_place_are_told_apart(sample_dataset):
    """A subtler bad twin: at each of the user's contexts, a real reply someone else wrote."""
    me = sample_dataset.me_name
    real, groups, _ = _pairs(sample_dataset, [me], 64)
    held = speaker_turns(sample_dataset, "val", set(sample_dataset.speakers.values()))
    others = [t for s in sorted(held) if s != me for t in held[s]]
    twin = random.Random(0).sample(others, len(real))
    share = _share(judge(real, twin, groups, seed=0))
    assert share >= 0.7


def test_real_replies_against_other_real_replies_read_near_a_coin_flip(sample_dataset):
    me = sample_dataset.me_name
    real, groups, _ = _pairs(sample_dataset, [me], 64)
    taken = {tuple(r) for r in real}
    mine = [t for t in speaker_turns(sample_dataset, "val", {me})[me] if tuple(t) not in taken]
    twin = random.Random(1).sample(mine, len(real))  # the user's own other held-out turns
    judged = judge(real, twin, groups, seed=0)
    low, high = interval(mean_of(judged.picks), len(judged.picks), seed=0)
    assert low <= 0.5 <= high and 0.3 <= _share(judged) <= 0.7
    # the very same replies on both sides: every pair a tie, exactly a coin flip
    assert judge(real, real, groups, seed=0).picks == [0.5] * len(real)


def test_halves_keep_each_conversation_whole_and_fall_back_to_contexts():
    groups = [f"c{i // 3}" for i in range(30)]
    (first, second), by = halves(groups, seed=0)
    assert by == "conversations" and sorted(first + second) == list(range(30))
    assert not {groups[i] for i in first} & {groups[i] for i in second}
    assert abs(len(first) - len(second)) <= 3
    # one conversation cannot be split in two: its contexts are
    (first, second), by = halves(["only"] * 10, seed=0)
    assert by == "contexts" and len(first) == len(second) == 5


def test_too_few_pairs_give_no_verdict():
    replies = [("lol",), ("ok",)] * 4
    assert judge(replies[:MIN_PAIRS - 1], replies[:MIN_PAIRS - 1], ["a"] * (MIN_PAIRS - 1),
                 0) is None
    empty = [("",)] * MIN_PAIRS  # replies without text (a photo): nothing to tell apart
    assert judge(empty, empty, [f"c{i}" for i in range(MIN_PAIRS)], 0) is None
    with pytest.raises(ValueError):
        judge(replies, replies[:-1], ["a"] * len(replies), 0)


def test_a_giveaway_reads_as_words():
    assert describe(Giveaway("words__lol", "real", 0.2)) == \
        'the word "lol" (more in the real replies)'
    assert describe(Giveaway("words__no way", "twin", 0.1)) == \
        "the words \"no way\" (more in the twin's replies)"
    assert describe(Giveaway("chars__ 😂", "real", 0.1)) == \
        'the characters " 😂" (more in the real replies)'
    assert describe(Giveaway("habits__chars", "twin", 0.3)) == \
        "characters per message (more in the twin's replies)"


def _results(style: StyleRow, found: Discrimination, ranking=None) -> EvalResults:
    run = RunResult(
        name="lora", path="/runs/lora", method="lora", base_model="m", baseline="m",
        base_shared=False, trained_speakers=["Alex", "Sam"], finished=True,
        speakers=["Alex", "Sam"], dataset_matches=True, contexts=40, training={}, timings={},
        metrics={"perplexity": Perplexity({"Alex": PerplexityRow(10, 20.0, 40.0)},
                                          PerplexityRow(10, 20.0, 40.0)),
                 "style": {"Alex": style}, "attribution": {}, "ranking": ranking or {},
                 "means": {},
                 "samples": [], "transcripts": Transcripts([], []), "canaries": None,
                 "discriminator": found})
    return EvalResults(DatasetInfo("/data", "abc", "Alex", "en", 3), EvalOptions(quick=True),
                       Ceiling(), [run], {"total": 1.0})


def test_the_report_shows_the_blind_test_and_a_run_still_worse_than_its_floor(tmp_path):
    """The export from issue 30: style distance 0.60 (base) -> 0.12 (run), ceiling 0.04 (the
    user's own other messages), floor 0.08 (the other friends' real messages): 86% of the gap
    closed, and still further from the user than the friends are."""
    profile = {feature: 0.5 for feature in FEATURES}
    style = StyleRow(20, profile, profile, profile, 0.12, 0.60, {}, {},
                     Intervals((0.08, 0.16), (0.5, 0.7), (-0.6, -0.4)), ceiling=0.04, floor=0.08)
    alex = DiscriminatorRow(20, 0.70, 0.95, Intervals((0.55, 0.85), (0.85, 1.0), (-0.4, -0.1)),
                            [Giveaway("habits__chars", "twin", 0.4),
                             Giveaway("words__lol", "real", 0.2)],
                            [Giveaway("habits__words", "twin", 0.9)])
    sam = DiscriminatorRow(20, 0.60, 0.90, Intervals((0.4, 0.8), (0.8, 1.0), (-0.5, -0.1)))
    everyone = DiscriminatorRow(40, 0.65, 0.93, Intervals((0.5, 0.8), (0.85, 1.0),
                                                           (-0.4, -0.15)))
    found = Discrimination({"Alex": alex, "Sam": sam}, everyone, "conversations")
    write_report(tmp_path, _results(style, found))
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    first = report.split("\n\n")[1]
    assert ("style distance closes 86% of the gap between the base model and yourself, but the "
            "twin is still further from you than other speakers' real messages are (0.12 "
            "against 0.08)") in first
    assert "an automatic blind test spots the twin 0.95 -> 0.70 (better)" in first
    # between floor (the base model) and 50%: 0.95 -> 0.70 closes 56% of the way to a coin flip
    assert ("automatic blind test (real reply picked) closes 56% of the gap between the base "
            "model and yourself;") in first
    scales = report.split("## Between floor and ceiling")[1].split("## 1.")[0]
    assert "| lora | Alex | 0.08 | 0.60 | 0.12 | 0.04 | 86%; worse than the floor |" in scales
    assert "| lora | Alex | 0.95 | 0.95 | 0.70 | 0.50 | 56% |" in scales
    for plot in ("style-scale", "discriminator-scale", "discriminator"):
        assert (tmp_path / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    section = report.split("Which one is real? An automatic blind test")[1]
    assert "(whole conversations to a half)" in section
    assert "| Alex | 20 | 0.95 [0.85, 1.00] | 0.70 [0.55, 0.85] |" in section
    assert "| (all speakers) | 40 | 0.93 [0.85, 1.00] | 0.65 [0.50, 0.80] |" in section
    assert ("- lora, Alex: characters per message (more in the twin's replies); the word "
            "\"lol\" (more in the real replies)") in section
    summary = report.split("## Summary")[1]
    assert "| automatic blind test, Alex: real reply picked (fine-tuned / base; 0.50 = " \
           "indistinguishable) | 0.70 [0.55, 0.85] / 0.95 [0.85, 1.00] |" in summary
    assert read_results(tmp_path).runs[0].metrics["discriminator"] == found
    # one speaker: their row is all of them, shown once
    alone = Discrimination({"Alex": alex}, alex, "conversations")
    write_report(tmp_path / "alone", _results(style, alone))
    report = (tmp_path / "alone" / "report.md").read_text(encoding="utf-8")
    assert "(all speakers)" not in report and "all speakers: real reply picked" not in report
    assert report.count("- lora, Alex: characters per message") == 1
    # a run past both: a floor it has not reached is said even with no gap to close; a ranking
    # below chance says so in its own words
    style.base_distance = 0.03
    below = RankingRow(20, 10, 0.10, 0.29, fine_tuned_hits=0.05, base_hits=0.10,
                       intervals=Intervals((0.0, 0.15), (0.0, 0.25), (-0.2, 0.1)))
    write_report(tmp_path / "again", _results(style, found, {"Alex": below}))
    first = (tmp_path / "again" / "report.md").read_text(encoding="utf-8").split("\n\n")[1]
    assert ("style distance: the twin is still further from you than other speakers' real "
            "messages are (0.12 against 0.08)") in first
    assert "the twin still ranks your real replies below chance (0.05 against 0.10)" in first


def test_a_run_within_its_floor_is_not_called_worse_and_too_few_pairs_are_said(tmp_path):
    profile = {feature: 0.5 for feature in FEATURES}
    style = StyleRow(20, profile, profile, profile, 0.06, 0.60, {}, {}, ceiling=0.04,
                     floor=0.08)
    note = Discrimination(note="6 held-out contexts; the discriminator needs at least 8 "
                               "(raise --max-contexts)")
    write_report(tmp_path, _results(style, note))
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "; worse than the floor" not in report and "further from you" not in report
    assert "| lora | Alex | 0.08 | 0.60 | 0.06 | 0.04 | 96% |" in report
    assert "No verdict:\n\n- lora: 6 held-out contexts; the discriminator needs at least 8" \
        in report
    assert not (tmp_path / "plots" / "discriminator.png").exists()
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    del data["runs"][0]["discriminator"]  # written before the metric existed
    (tmp_path / "results.json").write_text(json.dumps(data), encoding="utf-8")
    assert "discriminator" not in read_results(tmp_path).runs[0].metrics


@pytest.mark.slow
def test_the_eval_spots_an_untrained_tiny_models_replies(tmp_path):
    """A random tiny model writes token soup: the eval's discriminator tells it from the real
    replies, for the run and its base alike, on replies the eval generated anyway."""
    from doppel.eval.runner import evaluate

    data = write_dataset(tmp_path / "data", conversations=40)
    base = write_tiny_model(tmp_path / "base")
    run = write_adapter_run(tmp_path / "run", base, data, max_length=128)
    options = EvalOptions(max_contexts=24, batch_size=8, top_speakers=1, history_turns=4,
                          transcripts=False, rank_candidates=0, ppl_max_tokens=200,
                          fact_turns=0, sampling=EvalSampling(max_new_tokens=8))
    summary = evaluate([run], data, tmp_path / "eval", options, progress=False)
    found = summary.runs[0].metrics["discriminator"]
    assert found.overall.contexts == 24 and set(found.speakers) == {"Alex", "Sam"}
    assert found.overall.fine_tuned >= 0.8 and found.overall.base >= 0.8
    assert found.overall.giveaways
    assert summary.runs[0].timings["discriminator"] >= 0
    report = summary.report_md.read_text(encoding="utf-8")
    assert "an automatic blind test spots the twin" in report.split("\n\n")[1]
    assert read_results(tmp_path / "eval").runs[0].metrics["discriminator"] == found

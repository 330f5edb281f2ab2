"""results.json is the typed records, written and read back the same; the report reads them."""

from __future__ import annotations

import json

import pytest

from doppel.errors import DoppelError
from doppel.eval.bootstrap import Intervals
from doppel.eval.options import EvalOptions
from doppel.eval.report import columns, report_markdown, write_report
from doppel.eval.results import (
    SCHEMA_VERSION,
    AttributionRow,
    Ceiling,
    DatasetInfo,
    EvalResults,
    Perplexity,
    PerplexityRow,
    RunResult,
    Sample,
    StyleRow,
    Transcript,
    Transcripts,
)
from doppel.eval.store import read_results, to_json
from doppel.eval.style import FEATURES

SPREAD = Intervals((18.0, 23.0), (35.5, 47.0), (-25.0, -16.0))


def _run(name: str, base_shared: bool) -> RunResult:
    profile = {feature: 0.5 for feature in FEATURES} | {"vocab": None}
    chat = Transcript("Alex", "Sam", "en", [("Sam", "hey"), ("Alex", "yo")], trained=True)
    return RunResult(
        name=name, path=f"/runs/{name}", method="lora", base_model="smollm2-135m",
        baseline="smollm2-135m", base_shared=base_shared, trained_speakers=["Alex", "Sam"],
        finished=True, speakers=["Alex", "Sam"], dataset_matches=True, contexts=6,
        training={"wall_s": 12.5, "trainable_params": 4096}, timings={"generation": 1.25},
        metrics=dict(perplexity=Perplexity({"Alex": PerplexityRow(120, 20.5, 41.0, SPREAD),
                               "Sam": PerplexityRow(80, None, None)},
                              PerplexityRow(200, 20.5, 41.0)),
        style={"Alex": StyleRow(3, profile, profile, profile, 0.25, 1.5, {"chars": 0.25}, {},
                                ceiling=0.2, floor=1.8)},
        attribution={"Alex": AttributionRow(3, 0.67, 0.0, 0.9, Intervals((0.33, 1.0), (0.0, 0.0),
                                                                         (-0.33, 1.0)))},
        samples=[Sample("Alex", [("Sam", "hey")], ["yo"], ["sup"], ["Hello."])],
        transcripts=Transcripts([chat], [chat]), ranking={}, means={}, canaries=None),
    )


@pytest.fixture
def results() -> EvalResults:
    return EvalResults(
        DatasetInfo("/data", "abc", "Alex", "en", 3), EvalOptions(quick=True),
        Ceiling(0.8, {"Alex": 0.9, "Sam": None}, 10, ["Alex", "Sam"]),
        [_run("lora", False), _run("full", True)], {"total": 9.5})


def test_results_round_trip_through_results_json(results, tmp_path):
    write_report(tmp_path, results)
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["runs"][0]["perplexity"]["overall"] == {"tokens": 200, "fine_tuned": 20.5,
                                                        "base": 41.0, "intervals": None}
    assert data["runs"][0]["perplexity"]["speakers"]["Alex"]["intervals"] == {
        "fine_tuned": [18.0, 23.0], "base": [35.5, 47.0], "change": [-25.0, -16.0]}
    back = read_results(tmp_path)
    assert back == results
    assert back["full"].attribution_share == {"Alex": 0.67}
    cols = columns(back.runs)
    assert report_markdown(back, {}, cols) == report_markdown(results, {}, cols)
    text = report_markdown(back, {}, cols)
    assert "| Alex | 120 | 41.00 [35.50, 47.00] | 20.50 [18.00, 23.00] |" in text
    assert "- lora: perplexity changed beyond noise for Alex; within noise" in text
    assert "- lora: the attributed share changed beyond noise for nobody; within noise (the " \
           "95% interval of the change holds 0) for Alex." in text
    plots = {path.stem: f"plots/{path.name}" for path in (tmp_path / "plots").glob("*.png")}
    assert sorted(plots) == ["attribution", "attribution-scale", "perplexity", "style",
                             "style-scale"]
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == report_markdown(
        results, plots, cols)


def test_another_schema_version_or_shape_is_a_clear_error(results, tmp_path):
    data = to_json(results)
    (tmp_path / "results.json").write_text(json.dumps({**data, "schema_version": 0}))
    with pytest.raises(DoppelError, match="schema version 0; this doppel reads version 2"):
        read_results(tmp_path)
    del data["runs"][0]["perplexity"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(DoppelError, match=r"not a doppel eval result: Field required at runs.0"):
        read_results(tmp_path)


def test_the_report_leads_with_a_plain_paragraph_and_says_when_attribution_means_nothing(results):
    from doppel.eval.results import RankingRow

    results.runs[0].ranking = {"Alex": RankingRow(2, 10, 0.1, 0.29, note="too few held-out "
                                                  "turns to rank (2 contexts)")}
    text = report_markdown(results, {}, columns(results.runs))
    first = text.split("\n\n")[1]
    assert first == ("**lora**: replies sound more like you: perplexity of your held-out messages "
                     "41.00 -> 20.50 (better); style distance 1.50 -> 0.25 (within noise); "
                     "replies attributed to you 0.00 -> 0.67 (within noise); fit the "
                     "conversation: too few held-out turns to rank (2 contexts); against "
                     "yourself: style distance closes 96% of the gap between the base model and "
                     "yourself (within noise); attribution share closes 74% of the gap between "
                     "the base model and yourself (within noise); within noise: "
                     "style distance 1.50 -> 0.25; replies attributed to you 0.00 -> 0.67.")
    assert "| Alex | 2 | too few held-out turns to rank (2 contexts) |" in text
    # each score between its floor and ceiling, base and run on it
    scales = text.split("## Between floor and ceiling")[1].split("## 1.")[0]
    assert "| run | speaker | floor: other speakers' real messages | base | run | ceiling: the " \
           "speaker's own other messages | gap closed |" in scales
    assert "| lora | Alex | 1.80 | 1.50 | 0.25 | 0.20 | 96% |" in scales
    assert "| lora | Alex | n/a | 0.00 | 0.67 | 0.90 | 74% |" in scales  # attribution: no floor
    # six speakers in one register: 26% against a chance of 17% is no basis for a share
    results.classifier = Ceiling(0.26, {}, 120, ["A", "B", "C", "D", "E", "F"])
    text = report_markdown(results, {}, columns(results.runs))
    assert "replies attributed to you" not in text.split("\n\n")[1]
    assert "Attribution is not informative for this export: the classifier recognises 26% of " \
           "real held-out turns (chance 17%; shares mean something from 38%)" in text
    assert "| Alex | 3 |" not in text.split("## 3.")[1].split("## 4.")[0]


def test_the_summary_gives_every_compared_number_an_interval_and_says_what_is_noise(results):
    from doppel.eval.results import MeanRow

    lora = results.runs[0]
    lora.perplexity.overall.intervals = SPREAD
    lora.means = {"style": MeanRow(2, 0.30, 0.90, Intervals((0.2, 0.4), (0.8, 1.0), (-0.7, -0.5))),
                  "attribution": MeanRow(2, 0.5, 0.25, Intervals((0.3, 0.7), (0.1, 0.4),
                                                                 (-0.1, 0.5)))}
    summary = report_markdown(results, {}, columns(results.runs)).split("## Summary")[1]
    summary = summary.split("## 1.")[0]
    assert "| mean style distance across speakers (fine-tuned / base; lower is closer) | " \
           "0.30 [0.20, 0.40] / 0.90 [0.80, 1.00] |" in summary
    assert "| mean attribution share across speakers (fine-tuned / base) | 0.50 [0.30, 0.70] / " \
           "0.25 [0.10, 0.40] |" in summary
    assert "| perplexity of all trained speakers (fine-tuned / base) | 20.50 [18.00, 23.00] / " \
           "41.00 [35.50, 47.00] |" in summary
    assert ("- lora: the number against its base changed beyond noise for perplexity of all "
            "trained speakers, perplexity of Alex, mean style distance across speakers; within "
            "noise (the 95% interval of the change holds 0) for replies attributed to Alex, mean "
            "attribution share across speakers.") in summary
    # attribution that cannot tell real turns apart is not shown as a number, here either
    results.classifier = Ceiling(0.55, {}, 40, ["Alex", "Sam"], interval=(0.4, 0.7))
    summary = report_markdown(results, {}, columns(results.runs)).split("## 1.")[0]
    assert "| replies attributed to Alex | not informative for this export (section 3) |" \
           in summary
    assert "0.50 [0.30, 0.70]" not in summary


def test_a_user_with_nothing_held_out_is_said_in_words(results):
    lora = results.runs[0]
    lora.speakers = ["Sam"]
    lora.perplexity.speakers["Alex"] = PerplexityRow(0, None, None)
    lora.style, lora.attribution = {}, {}
    first = report_markdown(results, {}, columns(results.runs)).split("\n\n")[1]
    assert first.startswith("**lora**: replies sound more like you: not measured (the dataset "
                            "holds no held-out messages from you)")
    lora.trained_speakers = ["Sam"]
    first = report_markdown(results, {}, columns(results.runs)).split("\n\n")[1]
    assert "not measured (this run was not trained to play you)" in first


def test_the_commands_headline_does_not_quote_an_uninformative_share(results):
    from doppel.present import eval_headline

    lora = results.runs[0]
    assert "replies attributed to Alex: 0.67 (base 0.00, ceiling 0.90)" in eval_headline(lora)
    line = eval_headline(lora, attribution_informative=False)
    assert "attribution not informative for this export" in line and "0.67" not in line

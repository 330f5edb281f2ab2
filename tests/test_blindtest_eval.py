"""The blind test in `doppel eval`'s report: a registered metric that finds the run's blind test
next to the run folder and, when judges have answered, reports it (results.json keeps it typed)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from doppel.blindtest.results import Results
from doppel.blindtest.store import BlindStore, default_store_path
from doppel.eval.metrics import METRICS
from doppel.eval.metrics.blindtest import compute
from doppel.eval.options import EvalOptions
from doppel.eval.report import write_report
from doppel.eval.results import (
    Ceiling,
    DatasetInfo,
    EvalResults,
    Perplexity,
    PerplexityRow,
    RunResult,
    Transcripts,
)
from doppel.eval.store import read_results
from doppel.runs import RunInfo


def _store(run, answers: int) -> None:
    with BlindStore(default_store_path(run)) as store:
        store.set_meta({"test_id": "t", "run": os.path.abspath(run), "persona": "Alex"})
        items = []
        for n in range(4):
            sources = ["real", "twin"] if n % 2 else ["twin", "real"]
            items.append(store.add_item("c", n, [["Sam", f"hi {n}"]],
                                        [[f"{s} {n}"] for s in sources], sources))
        store.add_judge("Sam", "token", items)
        for item in items[:answers]:
            store.answer("Sam", item, 0, [None, None], "web")


def _measured(run) -> SimpleNamespace:
    return SimpleNamespace(info=RunInfo(base_model="m", method="lora", path=run))


def _results(row: Results | None) -> EvalResults:
    run = RunResult(
        name="lora", path="/runs/lora", method="lora", base_model="m", baseline="m",
        base_shared=False, trained_speakers=["Alex"], finished=True, speakers=["Alex"],
        dataset_matches=True, contexts=4, training={}, timings={},
        metrics={"perplexity": Perplexity({"Alex": PerplexityRow(10, 20.0, 40.0)},
                                          PerplexityRow(10, 20.0, 40.0)),
                 "style": {}, "attribution": {}, "ranking": {}, "means": {}, "samples": [],
                 "transcripts": Transcripts([], []), "canaries": None, "blindtest": row})
    return EvalResults(DatasetInfo("/data", "abc", "Alex", "en", 3), EvalOptions(quick=True),
                       Ceiling(), [run], {"total": 1.0})


def test_the_blind_test_is_a_registered_metric(tmp_path):
    assert "blindtest" in [metric.name for metric in METRICS]
    run = tmp_path / "run"
    run.mkdir()
    assert compute(_measured(run)) is None  # no test next to the run: no section
    _store(run, answers=0)
    assert compute(_measured(run)) is None  # prepared, nobody answered yet
    default_store_path(run).unlink()
    _store(run, answers=4)
    row = compute(_measured(run))
    assert row.overall.answers == 4 and row.overall.share == 0.5  # picks 0: twin every other
    assert compute(_measured(tmp_path)) is None  # another run's folder: not its test

    write_report(tmp_path / "eval", _results(row))
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    assert "Which one is real? Blind test\n\n**lora**\n\nJudges picked the reply" in report
    assert "| Sam | 4 | 50% |" in report and "| **all judges** | 4 | 50% |" in report
    assert read_results(tmp_path / "eval").runs[0].metrics["blindtest"] == row

    data = json.loads((tmp_path / "eval" / "results.json").read_text(encoding="utf-8"))
    assert data["runs"][0]["blindtest"]["overall"]["share"] == 0.5
    write_report(tmp_path / "none", _results(None))  # no answers: no section
    assert "Blind test" not in (tmp_path / "none" / "report.md").read_text(encoding="utf-8")

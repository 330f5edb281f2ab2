"""A metric is one registered record: a toy metric registered here (and nowhere else) is computed
by the runner, stored in results.json and read back typed, and shown in the report's sections,
summary, floor-to-ceiling bars and plain paragraph."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from builders import write_dataset, write_tiny_model
from conftest import write_adapter_run
from doppel.eval.bootstrap import Intervals, mean_of, paired
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.metrics import METRICS, register, unregister
from doppel.eval.options import EvalOptions, EvalSampling
from doppel.eval.plain import said
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
from doppel.eval.tables import pair, with_interval


@dataclass
class Variant:
    fine_tuned: float | None
    base: float | None
    intervals: Intervals | None = None


@dataclass
class ToyRow:
    """Messages per reply of each model, two variants side by side (as memory on/off would be),
    the real replies' value as the ceiling, and what the probe saw of each loaded model."""

    variants: dict[str, Variant]
    real: float | None
    vocab: dict[str, int]  # "fine_tuned" / "base" -> the loaded tokenizer's size (the probe)


def _messages(replies) -> list[float]:
    return [float(len(r)) for r in replies]


def compute(m) -> ToyRow:
    me = [i for i, c in enumerate(m.job.contexts) if c.respondent == m.dataset.me_name]
    tuned = _messages(m.tuned.replies[i] for i in me)
    base = _messages(m.base.replies[i] for i in me)
    variants = {}
    for name, scale in (("plain", 1.0), ("doubled", 2.0)):
        mine, theirs = [v * scale for v in tuned], [v * scale for v in base]
        variants[name] = Variant(sum(mine) / len(mine), sum(theirs) / len(theirs),
                                 paired(mean_of(mine), mean_of(theirs), len(me), m.seed))
    real = _messages(m.job.contexts[i].reply for i in me)
    return ToyRow(variants, sum(real) / len(real), {"fine_tuned": m.tuned.probes["toy"],
                                                    "base": m.base.probes["toy"]})


def probe(p) -> int:
    return len(p.loaded.tokenizer)


def section(r) -> str:
    lines = [f"- {run.name} {name}: "
             f"{with_interval(v.fine_tuned, v.intervals and v.intervals.fine_tuned)}"
             for run in r.runs for name, v in run.metrics["toy"].variants.items()]
    return "Messages per reply, two variants side by side.\n\n" + "\n".join(lines) + "\n"


def plain(run, me, r) -> list[Said]:
    return said("toy heading", "messages per reply", run.metrics["toy"].variants["plain"], False)


def summary(run, me, r) -> dict:
    row = run.metrics["toy"].variants["plain"]
    return {"toy messages per reply (fine-tuned / base)": (pair(row), row)}


def scales(run, r) -> dict[str, Scale]:
    row = run.metrics["toy"]
    plain_row = row.variants["plain"]
    return {r.me: Scale(0.0, plain_row.base, plain_row.fine_tuned, row.real,
                        floor_label="none", ceiling_label="real replies")}


TOY = Metric("toy", ToyRow, compute, probe=probe, title="Toy messages", section=section,
             plain=plain, summary=summary, scales=scales, scale_title="toy messages per reply",
             default=lambda: None)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister("toy")
    assert "toy" not in [m.name for m in METRICS]


def _results(row: ToyRow) -> EvalResults:
    run = RunResult(
        name="lora", path="/runs/lora", method="lora", base_model="m", baseline="m",
        base_shared=False, trained_speakers=["Alex"], finished=True, speakers=["Alex"],
        dataset_matches=True, contexts=4, training={}, timings={},
        metrics={"perplexity": Perplexity({"Alex": PerplexityRow(10, 20.0, 40.0)},
                                          PerplexityRow(10, 20.0, 40.0)),
                 "style": {}, "attribution": {}, "ranking": {}, "means": {}, "samples": [],
                 "transcripts": Transcripts([], []), "canaries": None, "toy": row})
    return EvalResults(DatasetInfo("/data", "abc", "Alex", "en", 3), EvalOptions(quick=True),
                       Ceiling(), [run], {"total": 1.0})


def test_a_registered_metric_reaches_results_json_the_report_and_the_plain_paragraph(
        toy, tmp_path):
    spread = Intervals((2.0, 3.0), (0.5, 1.5), (0.8, 2.2))
    row = ToyRow({"plain": Variant(2.5, 1.0, spread), "doubled": Variant(5.0, 2.0)}, 3.0,
                 {"fine_tuned": 99, "base": 97})
    write_report(tmp_path, _results(row))
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data["runs"][0]["toy"]["variants"]["plain"] == {
        "fine_tuned": 2.5, "base": 1.0, "intervals": {"fine_tuned": [2.0, 3.0],
                                                      "base": [0.5, 1.5], "change": [0.8, 2.2]}}
    back = read_results(tmp_path)
    assert back.runs[0].metrics["toy"] == row  # typed again, through the registered row type
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    first = report.split("\n\n")[1]
    assert "toy heading: messages per reply 1.00 -> 2.50 (better)" in first
    # the base model at 1.0, the run at 2.5, the ceiling (real replies) at 3.0: 75% of the gap
    assert ("against yourself: toy messages per reply closes 75% of the gap between the base "
            "model and yourself") in first
    assert "| toy messages per reply (fine-tuned / base) | 2.50 [2.00, 3.00] / 1.00 [0.50, " \
           "1.50] |" in report
    numbered = re.findall(r"^## (\d+)\. (.+)$", report, re.M)  # the sections shown, in order
    assert numbered[-1] == (str(len(numbered)), "Toy messages")  # the toy comes last
    assert "Toy messages\n\nMessages per reply, two variants side by side." in report
    assert "- lora doubled: 5.00" in report
    assert "| lora | Alex | 0.00 | 1.00 | 2.50 | 3.00 | 75% |" in report
    assert (tmp_path / "plots" / "toy-scale.png").read_bytes()[:4] == b"\x89PNG"
    assert "![toy-scale](plots/toy-scale.png)" in report
    # a file written before an optional metric existed reads back without it (its default None)
    del data["runs"][0]["toy"]
    (tmp_path / "results.json").write_text(json.dumps(data), encoding="utf-8")
    assert read_results(tmp_path).runs[0].metrics.get("toy", "absent") == "absent"


def test_the_registry_refuses_a_name_taken(toy):
    with pytest.raises(ValueError, match="'toy' is already taken"):
        register(TOY)
    with pytest.raises(ValueError, match="'speakers' is already taken"):
        register(Metric("speakers", int, lambda m: 0))


@pytest.mark.slow
def test_the_runner_computes_a_registered_metric_with_its_probe(toy, tmp_path):
    from doppel.eval.runner import evaluate

    data = write_dataset(tmp_path / "data", conversations=20)
    base = write_tiny_model(tmp_path / "base")
    run = write_adapter_run(tmp_path / "run", base, data, max_length=128)
    options = EvalOptions(max_contexts=4, batch_size=4, top_speakers=1, history_turns=4,
                          transcripts=False, rank_candidates=0,
                          sampling=EvalSampling(max_new_tokens=4))
    summary = evaluate([run], data, tmp_path / "eval", options, progress=False)
    row = summary.runs[0].metrics["toy"]
    assert row.vocab["fine_tuned"] == row.vocab["base"] > 0  # each model's probe ran
    assert row.variants["doubled"].fine_tuned == 2 * row.variants["plain"].fine_tuned
    assert read_results(tmp_path / "eval").runs[0].metrics["toy"] == row
    assert "## " in summary.report_md.read_text() and "Toy messages" in \
        summary.report_md.read_text()
    assert summary.runs[0].timings["toy"] >= 0  # the probe's time, per model

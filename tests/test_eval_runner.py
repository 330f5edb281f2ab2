"""`doppel eval` end to end on tiny local models, and its refusals of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders import run_cli, write_dataset, write_tiny_model
from conftest import write_adapter_run
from doppel.eval.options import QUICK, EvalOptions, EvalSampling
from doppel.eval.runner import evaluate
from doppel.runs import METRICS, RUN_INFO

TINY = EvalOptions(max_contexts=6, batch_size=4, top_speakers=2, history_turns=4,
                   sampling=EvalSampling(max_new_tokens=6))


def _retrain(run: Path, target: Path, speakers: list[str], summary: dict | None = None) -> Path:
    """A copy of a run folder that claims other trained speakers (and training numbers)."""
    shutil.copytree(run, target)
    info = json.loads((target / RUN_INFO).read_text())
    info["trained_speakers"] = speakers
    (target / RUN_INFO).write_text(json.dumps(info))
    if summary:
        (target / METRICS).write_text(json.dumps({"step": 1, "loss": 3.0}) + "\n"
                                      + json.dumps({"summary": summary}) + "\n")
    return target


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = write_dataset(root / "data", conversations=30)
    base = write_tiny_model(root / "base")
    both = write_adapter_run(root / "lora" / "run", base, data, max_length=128)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["speakers"]["user3"] = {"name": "Kim", "messages": 0, "chats": 0}  # nothing held out
    (data / "manifest.json").write_text(json.dumps(manifest))
    mine = _retrain(both, root / "mine", ["Alex", "Kim"],
                    {"wall_s": 12.5, "trainable_params": 4096, "peak_memory_mb": 321.0})
    again = shutil.copytree(both, root / "again" / "run")  # same name, same weights
    return root, data, base, both, mine, again


def _direct_perplexity(spec, data, speakers, max_length=128):
    from doppel.data.dataset import load_dataset
    from doppel.eval.contexts import conversation_turns
    from doppel.eval.perplexity import speaker_perplexity
    from doppel.hardware import torch_dtype
    from doppel.runs import load_run

    loaded = load_run(spec, merge=True, dtype=torch_dtype("auto"))  # eval's auto
    turns = [t for _, t in conversation_turns(load_dataset(data), "val")]
    scored = speaker_perplexity(loaded.model, loaded.tokenizer, turns, speakers, max_length)
    return {s: v.perplexity for s, v in scored.items()}


@pytest.mark.slow
def test_several_runs_side_by_side(setup):
    root, data, base, both, mine, again = setup
    summary = evaluate([both, mine, again], data, root / "report", TINY, progress=False)
    a, b, _ = summary.runs
    assert [r.name for r in summary.runs] == ["lora/run", "mine", "again/run"]
    # numbers are the models' own, not swapped between run and base
    direct = _direct_perplexity(both, data, ["Alex", "Sam"])
    assert a.speaker_perplexity == pytest.approx(direct, rel=1e-4)
    base_direct = _direct_perplexity(base, data, ["Alex", "Sam"])
    assert a.base_speaker_perplexity == pytest.approx(base_direct, rel=1e-4)
    assert a.speaker_perplexity != a.base_speaker_perplexity
    # a trained speaker with nothing held out is reported as such
    assert b.speaker_perplexity["Kim"] is None
    assert b.speaker_perplexity["Alex"] == pytest.approx(direct["Alex"])
    # contexts follow what each run trained; generation is seeded, so the same run repeats itself
    assert a.speakers == ["Alex", "Sam"] and b.speakers == ["Alex"]
    assert a.contexts == 6 and b.contexts == 6
    results = json.loads(summary.results_json.read_text())
    assert results["runs"][0]["samples"] == results["runs"][2]["samples"]
    assert [r["base_shared"] for r in results["runs"]] == [False, False, True]
    assert set(a.attribution_share) == {"Alex", "Sam"} and a.ceiling["Alex"] is not None
    assert 0.0 <= a.attribution_share["Alex"] <= 1.0
    assert set(a.style_distance) == {"Alex", "Sam"} and a.style_distance["Alex"] >= 0
    # the report: files, plots, the side-by-side table with training numbers and timings
    for name in ("report.md", "report.html", "results.json", "transcripts.md"):
        assert (root / "report" / name).stat().st_size > 0
    for plot in ("perplexity", "style", "attribution"):
        assert (root / "report" / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    report = summary.report_md.read_text()
    assert "|  | lora/run | mine | again/run |" in report
    assert "| trainable parameters | n/a | 4,096 | n/a |" in report
    assert "| generation |" in report and "| Kim | 0 | n/a |" in report
    from doppel.hardware import use_bf16

    auto = "bf16" if use_bf16("auto") else "fp32"  # what every command's auto means here
    assert a.perplexity.precision == a.perplexity.base_precision == auto
    assert f"Weights in {auto}" in report and f"| {auto} / {auto} |" in report
    # every share and mean has a seeded interval around it, and the report says what is noise
    alex = a.perplexity.speakers["Alex"]
    low, high = alex.intervals.fine_tuned
    assert low <= alex.fine_tuned <= high and alex.intervals.base[0] <= alex.base
    share = a.attribution["Alex"]
    assert share.intervals.fine_tuned[0] <= share.fine_tuned <= share.intervals.fine_tuned[1]
    assert a.style["Alex"].intervals is not None
    low, high = a.style["Alex"].feature_intervals["fine_tuned"]["chars"]
    assert low <= a.style["Alex"].fine_tuned["chars"] <= high
    assert results["runs"][0]["perplexity"]["overall"]["intervals"]["change"]
    assert results["runs"][0]["attribution"] == results["runs"][2]["attribution"]  # seeded
    assert "95% bootstrap intervals" in report and "within noise (the 95% interval" in report
    # 3 contexts each: too few to rank, said in words rather than as a number
    assert a.ranking["Alex"].contexts == 3 and a.ranking["Alex"].fine_tuned_hits is None
    assert "too few held-out turns to rank (3 contexts with 10 distinct" in report
    assert report.split("\n\n")[1].startswith("**lora/run**: replies sound more like you: ")
    assert '<img src="plots/perplexity.png"' in summary.report_html.read_text()
    transcripts = summary.transcripts_md.read_text()
    assert "The model as Alex, with Sam (en)" in transcripts
    assert "The model as Sam, with Alex (en)" in transcripts  # run `lora/run` trained Sam too
    assert "The model as Sam, with Alex (en; the run was not trained to play Sam)" in transcripts


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    code, _, err = run_cli(["eval", *args], monkeypatch, capsys)
    return code, err


@pytest.mark.slow
def test_cli_writes_a_quick_report(setup, monkeypatch, capsys):
    root, data, _, _, mine, _ = setup
    code, _ = _cli(monkeypatch, capsys, mine, "--data", data, "-o", root / "cli", "--quick",
                   "--max-contexts", "4", "--max-new-tokens", "4", "--no-transcripts")
    assert code == 0
    results = json.loads((root / "cli" / "results.json").read_text())
    assert results["options"]["max_contexts"] == 4 and results["options"]["top_speakers"] == 2
    assert results["runs"][0]["contexts"] == 4
    # 4 contexts for Alex: too few to rank, said in words (table and first paragraph), no number
    assert results["runs"][0]["ranking"]["Alex"]["fine_tuned_hits"] is None
    report = (root / "cli" / "report.md").read_text()
    candidates = QUICK["rank_candidates"]
    assert f"| Alex | 4 | too few held-out turns to rank (4 contexts with {candidates} distinct" \
        in report
    assert "fit the conversation: too few held-out turns to rank" in report.split("\n\n")[1]
    # the summary's mean across speakers carries its interval
    style_mean = results["runs"][0]["means"]["style"]
    assert style_mean["intervals"]["fine_tuned"][0] <= style_mean["fine_tuned"] \
        <= style_mean["intervals"]["fine_tuned"][1]
    code, err = _cli(monkeypatch, capsys, mine, "--data", data, "-o", root / "cli")
    assert code == 2 and "already exists" in err


def _one_line_error(code: int, err: str, words: str) -> None:
    assert code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert words in err


def _write_info(run: Path, trained: list[str]) -> None:
    info = {"schema_version": 1, "base_model": "x", "method": "lora", "trained_speakers": trained}
    (run / RUN_INFO).write_text(json.dumps(info))


def test_missing_run_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", conversations=10)
    code, err = _cli(monkeypatch, capsys, tmp_path / "nope", "--data", data, "-o", tmp_path / "out")
    _one_line_error(code, err, "does not exist")
    assert not (tmp_path / "out").exists()


def test_dataset_without_val_split_is_a_clear_error(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", conversations=10)
    lines = (data / "conversations.jsonl").read_text().replace('"split": "val"', '"split": "train"')
    (data / "conversations.jsonl").write_text(lines)
    run = tmp_path / "run"
    run.mkdir()
    _write_info(run, ["Alex"])
    code, err = _cli(monkeypatch, capsys, run, "--data", data, "-o", tmp_path / "out")
    _one_line_error(code, err, "no held-out (val) conversations")


def test_run_with_other_speakers_is_a_clear_error(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", conversations=10)
    run = tmp_path / "run"
    run.mkdir()
    _write_info(run, ["Alex", "Zed"])
    code, err = _cli(monkeypatch, capsys, run, "--data", data, "-o", tmp_path / "out")
    _one_line_error(code, err, "not in dataset")
    assert "Zed" in err


def test_dataset_without_the_users_messages_is_a_clear_error(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", conversations=10)
    rows = [json.loads(line) for line in (data / "conversations.jsonl").read_text().splitlines()]
    for row in rows:
        row["messages"] = [m for m in row["messages"] if m["speaker"] != "Alex"]
    (data / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    run.mkdir()
    _write_info(run, ["Sam"])
    code, err = _cli(monkeypatch, capsys, run, "--data", data, "-o", tmp_path / "out")
    _one_line_error(code, err, "has no messages from you (Alex)")
    assert not (tmp_path / "out").exists()
